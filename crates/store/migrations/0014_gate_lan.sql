-- Gate to gate (issue 14): device identity keys, the peers a gate may talk
-- to, the signed events it exchanged.

-- Server: each device's Ed25519 public key (hex), registered by the device
-- with its token; NULL until it registers one. The other gates of the same
-- venue and org receive it through sync (POST /api/sync/peers).
ALTER TABLE devices ADD COLUMN public_key TEXT
    CHECK (public_key IS NULL OR length(public_key) = 64);

-- Gate: its own key pair, made at pairing on the gate; the secret seed never
-- leaves this file.
ALTER TABLE device_identity ADD COLUMN device_key BLOB
    CHECK (device_key IS NULL OR length(device_key) = 32);

-- Gate: the signature (hex) of each outbox event, made in the transaction
-- that commits it, over domain::sync::lan::canonical.
ALTER TABLE outbox ADD COLUMN signature TEXT;

-- Gate: the other gates of its venue and org, as the server last listed
-- them (revoked devices drop out).
CREATE TABLE lan_peers (
    device_id   INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    public_key  TEXT    NOT NULL CHECK (length(public_key) = 64),
    last_seen_at TEXT,
    received    INTEGER NOT NULL DEFAULT 0,
    sent        INTEGER NOT NULL DEFAULT 0,
    -- The last own outbox event this peer confirmed (event ids are UUID v7,
    -- ordered by time): what it missed is what comes after.
    sent_cursor TEXT
);

-- Gate: every signed event received from a peer, once (a replay is a
-- no-op). Never uploaded by this gate: the origin uploads its own events.
CREATE TABLE lan_events (
    event_id          TEXT    PRIMARY KEY CHECK (length(event_id) = 36),
    origin_device_id  INTEGER NOT NULL,
    kind              TEXT    NOT NULL,
    entity_id         TEXT    NOT NULL,
    event             TEXT    NOT NULL CHECK (json_valid(event)),
    signature         TEXT    NOT NULL,
    received_at       TEXT    NOT NULL,
    outcome           TEXT    NOT NULL
);
CREATE INDEX idx_lan_events_entity ON lan_events (kind, entity_id);
