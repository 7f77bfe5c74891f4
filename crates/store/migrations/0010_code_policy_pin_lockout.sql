-- Per-org settings an admin sets on the server; synced to every gate of the
-- org (entity `org_settings`, keyed by orq). signed_codes_only: plain ticket
-- codes are refused (SIGNED_CODE_REQUIRED) at gates and on the server.
CREATE TABLE org_settings (
    orq               INTEGER PRIMARY KEY,
    signed_codes_only INTEGER NOT NULL DEFAULT 0 CHECK (signed_codes_only IN (0, 1)),
    updated_at        TEXT    NOT NULL
);

CREATE TRIGGER org_settings_log_insert AFTER INSERT ON org_settings
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (NEW.orq, 'org_settings', NEW.orq, 'upsert')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

CREATE TRIGGER org_settings_log_update AFTER UPDATE ON org_settings
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (NEW.orq, 'org_settings', NEW.orq, 'upsert')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

CREATE TRIGGER org_settings_log_delete AFTER DELETE ON org_settings
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op) VALUES (OLD.orq, 'org_settings', OLD.orq, 'delete')
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

-- Wrong PINs in a row per operator and the lock they earned. Local to the
-- database that checks the PIN (the server's, shared by all its instances;
-- a gate's replica, kept across restarts): never synced.
CREATE TABLE pin_attempts (
    orq           INTEGER NOT NULL,
    operator_id   INTEGER NOT NULL,
    failures      INTEGER NOT NULL CHECK (failures >= 0),
    locked_until  TEXT,
    updated_at    TEXT    NOT NULL,
    PRIMARY KEY (orq, operator_id)
) WITHOUT ROWID;
