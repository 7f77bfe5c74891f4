-- Venue operations (issue 15, domain::venue_ops): the venue's settings for
-- re-entry, walk-up leases, no-show release and its occupancy limit, kept
-- with its gate settings on the venue row (the change feed carries them to
-- its gates); when a ticket's holder last left; and every passage through a
-- gate, in or out, from which occupancy is counted.
ALTER TABLE venues ADD COLUMN reentry_allowed INTEGER NOT NULL DEFAULT 0
    CHECK (reentry_allowed IN (0, 1));
ALTER TABLE venues ADD COLUMN walkup_lease_places INTEGER NOT NULL DEFAULT 0
    CHECK (walkup_lease_places BETWEEN 0 AND 50);
ALTER TABLE venues ADD COLUMN no_show_release_minutes INTEGER
    CHECK (no_show_release_minutes IS NULL OR no_show_release_minutes BETWEEN 1 AND 1440);
ALTER TABLE venues ADD COLUMN occupancy_limit INTEGER
    CHECK (occupancy_limit IS NULL OR occupancy_limit BETWEEN 1 AND 1000000);

-- Set when the holder goes out, cleared when they come back in: a used
-- ticket with no left_at is inside. Travels with the ticket row.
ALTER TABLE tickets ADD COLUMN left_at TEXT;

-- One row per person through a gate: the facts occupancy is counted from
-- (entries minus exits since the venue's day began). On the server from
-- its own verifications and the gates' uploaded events (event_id: once);
-- on a gate, its own.
CREATE TABLE passages (
    id          INTEGER PRIMARY KEY,
    orq         INTEGER NOT NULL,
    venue_id    INTEGER NOT NULL,
    ticket_code TEXT    NOT NULL,
    direction   TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    reentry     INTEGER NOT NULL DEFAULT 0 CHECK (reentry IN (0, 1)),
    at          TEXT    NOT NULL,
    device_id   INTEGER,
    operator_id INTEGER,
    event_id    TEXT    UNIQUE,
    -- The judgement's reason when the server's rows disagreed (the person
    -- still walked through: the passage counts).
    conflict    TEXT
);
CREATE INDEX idx_passages_venue_at ON passages (orq, venue_id, at);

-- Walk-up leases: places of a slot held by one gate for walk-ups booked
-- offline. On the server a lease's places are counted in the slot's
-- booked_count (customers cannot book them); a walk-up event from the gate
-- turns one into its reservation. On a gate, the places it may still book
-- (device_id: its own).
CREATE TABLE walkup_leases (
    orq        INTEGER NOT NULL,
    device_id  INTEGER NOT NULL,
    slot_id    TEXT    NOT NULL,
    places     INTEGER NOT NULL CHECK (places >= 0),
    updated_at TEXT    NOT NULL,
    PRIMARY KEY (device_id, slot_id)
);

-- Gates pull the feed again from the start once, so that venue and ticket
-- rows pulled before these columns existed arrive with them.
UPDATE device_identity SET cursor = 0;
