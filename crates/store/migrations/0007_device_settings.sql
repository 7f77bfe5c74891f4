-- Device: choices made on the gate's settings screen (camera, kiosk mode,
-- auto-lock). Local to this machine: never synced, and kept when a
-- standalone replica's demo data is replaced by a server's on pairing.
CREATE TABLE device_settings (
    key   TEXT PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 64),
    value TEXT NOT NULL
) WITHOUT ROWID;
