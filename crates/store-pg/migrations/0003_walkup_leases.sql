-- Venue operations (issue 15), the rest of SQLite's 0012 for the server:
-- walk-up leases, places of a slot held by one gate for walk-ups booked
-- offline. A lease's places are counted in the slot's booked_count
-- (customers cannot book them); a walk-up event from the gate turns one into
-- its reservation. Written only under the slot's row lock.
-- (0012's `UPDATE device_identity` is a gate replica's: not on a server.)
CREATE TABLE walkup_leases (
    orq        BIGINT      NOT NULL,
    device_id  BIGINT      NOT NULL,
    slot_id    UUID        NOT NULL,
    places     BIGINT      NOT NULL CHECK (places >= 0),
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (device_id, slot_id)
);
