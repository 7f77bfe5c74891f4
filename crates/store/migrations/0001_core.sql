-- Entrada core schema: the spec's three collections plus venues and operators.
-- Timestamps are ISO 8601 UTC text (2025-11-25T10:30:00.000Z), dates YYYY-MM-DD,
-- times HH:MM:SS; all of them sort correctly as text.
-- Migrations are append-only: never edit this file once released, add 0002_….

CREATE TABLE venues (
    id          INTEGER PRIMARY KEY,
    orq         INTEGER NOT NULL,
    name        TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    timezone    TEXT    NOT NULL CHECK (length(timezone) BETWEEN 1 AND 64),
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX idx_venues_orq ON venues (orq);

CREATE TABLE operators (
    id            INTEGER PRIMARY KEY,
    orq           INTEGER NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('operator', 'supervisor', 'admin')),
    display_name  TEXT    NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    pin_hash      TEXT,
    created_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX idx_operators_orq ON operators (orq);

CREATE TABLE reservation_slots (
    id               TEXT    PRIMARY KEY CHECK (length(id) = 36),
    date             TEXT    NOT NULL CHECK (date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    start_time       TEXT    NOT NULL CHECK (start_time GLOB '[0-2][0-9]:[0-5][0-9]:[0-5][0-9]'),
    end_time         TEXT    NOT NULL CHECK (end_time GLOB '[0-2][0-9]:[0-5][0-9]:[0-5][0-9]'),
    venue_id         INTEGER NOT NULL REFERENCES venues (id) ON DELETE RESTRICT,
    total_capacity   INTEGER NOT NULL DEFAULT 200 CHECK (total_capacity > 0),
    booked_count     INTEGER NOT NULL DEFAULT 0 CHECK (booked_count >= 0),
    available_count  INTEGER GENERATED ALWAYS AS (total_capacity - booked_count) VIRTUAL,
    status           TEXT    NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'FULL', 'CLOSED')),
    orq              INTEGER NOT NULL,
    created_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CHECK (end_time > start_time),
    -- No overbooking, even if a bug in the code tried.
    CHECK (booked_count <= total_capacity),
    -- FULL exactly when an open slot is full.
    CHECK (status = 'CLOSED' OR (status = 'FULL') = (booked_count >= total_capacity)),
    UNIQUE (venue_id, date, start_time, orq)
);
CREATE INDEX idx_reservation_slots_date     ON reservation_slots (date);
CREATE INDEX idx_reservation_slots_venue_id ON reservation_slots (venue_id);
CREATE INDEX idx_reservation_slots_orq      ON reservation_slots (orq);
CREATE INDEX idx_reservation_slots_status   ON reservation_slots (status);
-- Availability by month and org reads (orq, date) ranges.
CREATE INDEX idx_reservation_slots_orq_date ON reservation_slots (orq, date);

CREATE TABLE tickets (
    ticket_code        TEXT    PRIMARY KEY CHECK (length(ticket_code) BETWEEN 1 AND 64),
    orq                INTEGER NOT NULL,
    order_id           INTEGER,
    product_id         INTEGER,
    user_id            INTEGER,
    status             TEXT    NOT NULL DEFAULT 'minted' CHECK (status IN (
                           'PENDING_PAYMENT', 'ACTIVATED', 'RESERVED', 'VERIFIED', 'EXPIRED',
                           'minted', 'active', 'redeemed', 'cancelled')),
    entitlements       TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(entitlements)),
    expires_at         TEXT,
    created_at         TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at         TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- Phase 1 (US-015)
    customer_email     TEXT,
    customer_phone     TEXT,
    reserved_at        TEXT,
    verified_at        TEXT,
    verified_by        INTEGER,
    -- Phase 2 (US-016)
    activation_status  TEXT    NOT NULL DEFAULT 'inactive'
                           CHECK (activation_status IN ('inactive', 'active', 'redeemed', 'cancelled')),
    activated_at       TEXT,
    activation_mode    TEXT    NOT NULL DEFAULT 'deferred'
                           CHECK (activation_mode IN ('immediate', 'deferred')),
    -- Only active tickets can be verified, so redeemed implies a verification.
    CHECK (activation_status <> 'redeemed' OR verified_at IS NOT NULL),
    CHECK (activation_status = 'inactive' OR activation_status = 'cancelled' OR activated_at IS NOT NULL)
);
CREATE INDEX idx_tickets_status ON tickets (status);
CREATE INDEX idx_tickets_orq    ON tickets (orq);
CREATE INDEX idx_tickets_user   ON tickets (orq, user_id);

CREATE TABLE ticket_reservations (
    id              TEXT    PRIMARY KEY CHECK (length(id) = 36),
    ticket_id       TEXT    NOT NULL UNIQUE REFERENCES tickets (ticket_code) ON DELETE CASCADE,
    slot_id         TEXT    NOT NULL REFERENCES reservation_slots (id) ON DELETE RESTRICT,
    customer_email  TEXT    NOT NULL,
    customer_phone  TEXT    NOT NULL,
    reserved_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    status          TEXT    NOT NULL DEFAULT 'RESERVED' CHECK (status IN ('RESERVED', 'CANCELLED', 'VERIFIED')),
    orq             INTEGER NOT NULL,
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
-- The UNIQUE on ticket_id is the spec's idx_ticket_id as well.
CREATE INDEX idx_ticket_reservations_slot_id ON ticket_reservations (slot_id);
CREATE INDEX idx_ticket_reservations_orq     ON ticket_reservations (orq);
-- Supporting the live count per slot (booked_count must equal it).
CREATE INDEX idx_ticket_reservations_slot_status ON ticket_reservations (slot_id, status);
