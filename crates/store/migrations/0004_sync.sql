-- Offline-first sync. The same schema serves the server and the gate
-- devices: on the server the change log records every row change per org;
-- on a device (a row in device_identity) the log stays empty and the outbox
-- holds the device's own changes until the server acknowledges them.

-- Server: registered gate devices, one org and venue each.
CREATE TABLE devices (
    id            INTEGER PRIMARY KEY,
    orq           INTEGER NOT NULL,
    venue_id      INTEGER NOT NULL REFERENCES venues (id),
    name          TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    token_hash    TEXT    NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    created_at    TEXT    NOT NULL,
    revoked_at    TEXT,
    last_seen_at  TEXT,
    clock_offset_ms INTEGER
);

-- Server: the latest change per row, in a monotonically increasing sequence.
-- A row changed again moves to a new seq, so a first sync reads each row once.
CREATE TABLE change_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    orq        INTEGER NOT NULL,
    entity     TEXT    NOT NULL,
    entity_id  TEXT    NOT NULL,
    op         TEXT    NOT NULL CHECK (op IN ('upsert', 'delete')),
    UNIQUE (entity, entity_id)
);
CREATE INDEX idx_change_log_orq_seq ON change_log (orq, seq);

-- Server: every event a device pushed, applied exactly once (event_id is the key).
CREATE TABLE sync_events (
    event_id     TEXT    PRIMARY KEY CHECK (length(event_id) = 36),
    device_id    INTEGER NOT NULL,
    orq          INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    payload      TEXT    NOT NULL CHECK (json_valid(payload)),
    device_time  TEXT    NOT NULL,
    received_at  TEXT    NOT NULL,
    result       TEXT    NOT NULL CHECK (json_valid(result))
);

-- Server: who verified each ticket, from which device (the canonical one is
-- mirrored in tickets.verified_at / verified_by).
CREATE TABLE verifications (
    id           INTEGER PRIMARY KEY,
    orq          INTEGER NOT NULL,
    ticket_code  TEXT    NOT NULL,
    event_id     TEXT,
    device_id    INTEGER,
    operator_id  INTEGER,
    verified_at  TEXT    NOT NULL,
    received_at  TEXT    NOT NULL
);
CREATE INDEX idx_verifications_ticket ON verifications (ticket_code);

-- Server (synced to devices): the same ticket admitted twice.
CREATE TABLE sync_conflicts (
    id                  INTEGER PRIMARY KEY,
    orq                 INTEGER NOT NULL,
    kind                TEXT    NOT NULL CHECK (kind IN ('DOUBLE_ENTRY')),
    ticket_code         TEXT    NOT NULL,
    first_device_id     INTEGER,
    first_operator_id   INTEGER,
    first_at            TEXT    NOT NULL,
    second_device_id    INTEGER,
    second_operator_id  INTEGER,
    second_at           TEXT    NOT NULL,
    second_event_id     TEXT,
    detected_at         TEXT    NOT NULL
);
CREATE INDEX idx_sync_conflicts_orq ON sync_conflicts (orq);

-- Device: who this replica is and where its sync stands (one row at most).
CREATE TABLE device_identity (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    device_id       INTEGER NOT NULL,
    orq             INTEGER NOT NULL,
    venue_id        INTEGER NOT NULL,
    name            TEXT    NOT NULL,
    server_url      TEXT    NOT NULL,
    token           TEXT    NOT NULL,
    cursor          INTEGER NOT NULL DEFAULT 0,
    last_sync_at    TEXT,
    last_attempt_at TEXT,
    last_error      TEXT,
    server_reachable INTEGER NOT NULL DEFAULT 0,
    clock_offset_ms INTEGER
);

-- Device: changes made here, written in the same transaction as the change,
-- kept until the server answers for them (and afterwards, for the record).
CREATE TABLE outbox (
    event_id        TEXT    PRIMARY KEY CHECK (length(event_id) = 36),
    kind            TEXT    NOT NULL,
    entity          TEXT    NOT NULL,
    entity_id       TEXT    NOT NULL,
    payload         TEXT    NOT NULL CHECK (json_valid(payload)),
    operator_id     INTEGER,
    device_time     TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'applied', 'duplicate', 'conflict', 'rejected')),
    result          TEXT    CHECK (result IS NULL OR json_valid(result)),
    server_received_at TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT
);
CREATE INDEX idx_outbox_state ON outbox (state, event_id);
CREATE INDEX idx_outbox_entity ON outbox (entity, entity_id) WHERE state = 'pending';

CREATE TRIGGER tickets_log_insert AFTER INSERT ON tickets
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (NEW.orq, 'tickets', NEW.ticket_code, 'upsert')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

CREATE TRIGGER tickets_log_update AFTER UPDATE ON tickets
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (NEW.orq, 'tickets', NEW.ticket_code, 'upsert')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

CREATE TRIGGER tickets_log_delete AFTER DELETE ON tickets
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (OLD.orq, 'tickets', OLD.ticket_code, 'delete')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

CREATE TRIGGER ticket_reservations_log_insert AFTER INSERT ON ticket_reservations
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (NEW.orq, 'ticket_reservations', NEW.id, 'upsert')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

CREATE TRIGGER ticket_reservations_log_update AFTER UPDATE ON ticket_reservations
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (NEW.orq, 'ticket_reservations', NEW.id, 'upsert')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

CREATE TRIGGER ticket_reservations_log_delete AFTER DELETE ON ticket_reservations
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (OLD.orq, 'ticket_reservations', OLD.id, 'delete')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

CREATE TRIGGER reservation_slots_log_insert AFTER INSERT ON reservation_slots
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (NEW.orq, 'reservation_slots', NEW.id, 'upsert')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

CREATE TRIGGER reservation_slots_log_update AFTER UPDATE ON reservation_slots
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (NEW.orq, 'reservation_slots', NEW.id, 'upsert')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

CREATE TRIGGER reservation_slots_log_delete AFTER DELETE ON reservation_slots
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (OLD.orq, 'reservation_slots', OLD.id, 'delete')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

CREATE TRIGGER venues_log_insert AFTER INSERT ON venues
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (NEW.orq, 'venues', NEW.id, 'upsert')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

CREATE TRIGGER venues_log_update AFTER UPDATE ON venues
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (NEW.orq, 'venues', NEW.id, 'upsert')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

CREATE TRIGGER venues_log_delete AFTER DELETE ON venues
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (OLD.orq, 'venues', OLD.id, 'delete')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

CREATE TRIGGER operators_log_insert AFTER INSERT ON operators
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (NEW.orq, 'operators', NEW.id, 'upsert')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

CREATE TRIGGER operators_log_update AFTER UPDATE ON operators
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (NEW.orq, 'operators', NEW.id, 'upsert')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

CREATE TRIGGER operators_log_delete AFTER DELETE ON operators
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (OLD.orq, 'operators', OLD.id, 'delete')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

CREATE TRIGGER signing_keys_log_insert AFTER INSERT ON signing_keys
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (NEW.orq, 'signing_keys', NEW.kid, 'upsert')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

CREATE TRIGGER signing_keys_log_update AFTER UPDATE ON signing_keys
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (NEW.orq, 'signing_keys', NEW.kid, 'upsert')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

CREATE TRIGGER signing_keys_log_delete AFTER DELETE ON signing_keys
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (OLD.orq, 'signing_keys', OLD.kid, 'delete')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

CREATE TRIGGER sync_conflicts_log_insert AFTER INSERT ON sync_conflicts
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (NEW.orq, 'sync_conflicts', NEW.id, 'upsert')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

CREATE TRIGGER sync_conflicts_log_update AFTER UPDATE ON sync_conflicts
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (NEW.orq, 'sync_conflicts', NEW.id, 'upsert')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

CREATE TRIGGER sync_conflicts_log_delete AFTER DELETE ON sync_conflicts
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (OLD.orq, 'sync_conflicts', OLD.id, 'delete')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;
