-- Issue 11: the server judges what gates upload, and each gate receives only
-- its own venue's rows.

-- 1. Conflicts of any reason. An admission the server would not have made
-- (reservation cancelled, wrong venue, ...) is recorded like a double entry,
-- with its reason as `kind` and both sides' facts. No CHECK on `kind`: the
-- domain decides the reasons (as for verifications.overruled). `venue_id` is
-- the venue of the gate that uploaded it: the devices that receive it.
CREATE TABLE sync_conflicts_v2 (
    id                  INTEGER PRIMARY KEY,
    orq                 INTEGER NOT NULL,
    kind                TEXT    NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
    ticket_code         TEXT    NOT NULL,
    first_device_id     INTEGER,
    first_operator_id   INTEGER,
    first_at            TEXT    NOT NULL,
    second_device_id    INTEGER,
    second_operator_id  INTEGER,
    second_at           TEXT    NOT NULL,
    second_event_id     TEXT,
    detected_at         TEXT    NOT NULL,
    venue_id            INTEGER,
    facts               TEXT    CHECK (facts IS NULL OR json_valid(facts))
);
INSERT INTO sync_conflicts_v2 (id, orq, kind, ticket_code, first_device_id, first_operator_id, first_at,
    second_device_id, second_operator_id, second_at, second_event_id, detected_at, venue_id)
SELECT c.id, c.orq, c.kind, c.ticket_code, c.first_device_id, c.first_operator_id, c.first_at,
    c.second_device_id, c.second_operator_id, c.second_at, c.second_event_id, c.detected_at,
    (SELECT d.venue_id FROM devices d WHERE d.id = c.second_device_id)
FROM sync_conflicts c;
DROP TABLE sync_conflicts;
ALTER TABLE sync_conflicts_v2 RENAME TO sync_conflicts;
CREATE INDEX idx_sync_conflicts_orq ON sync_conflicts (orq);

-- A verification the server would have refused: the refusal (it is a fact,
-- and a conflict; the ticket's state was left as the server had it).
ALTER TABLE verifications ADD COLUMN refused TEXT;

-- 2. The change feed, per venue. `scope` says which devices of the org
-- receive a row: 0 every device (operators, signing keys, org settings), a
-- venue id the devices of that venue, NULL none (a ticket without a
-- reservation). A row that leaves a venue's scope leaves a `scope_exit`
-- entry (entity_id `venue/entity/id`) that the feed hands to that venue's
-- devices as a delete.
ALTER TABLE change_log ADD COLUMN scope INTEGER DEFAULT 0;

UPDATE change_log SET scope = CASE entity
    WHEN 'venues' THEN CAST(entity_id AS INTEGER)
    WHEN 'reservation_slots' THEN (SELECT s.venue_id FROM reservation_slots s WHERE s.id = change_log.entity_id)
    WHEN 'ticket_reservations' THEN (SELECT s.venue_id FROM ticket_reservations r JOIN reservation_slots s ON s.id = r.slot_id
                                     WHERE r.id = change_log.entity_id)
    WHEN 'tickets' THEN (SELECT s.venue_id FROM ticket_reservations r JOIN reservation_slots s ON s.id = r.slot_id
                         WHERE r.ticket_id = change_log.entity_id)
    WHEN 'sync_conflicts' THEN (SELECT c.venue_id FROM sync_conflicts c WHERE c.id = CAST(change_log.entity_id AS INTEGER))
END
WHERE entity IN ('venues', 'reservation_slots', 'ticket_reservations', 'tickets', 'sync_conflicts');

-- Devices that synced before this migration hold every venue's rows: their
-- cursor (below `scoped_from`) makes the server answer a reset page (the
-- device drops its synced rows and starts over). Every existing entry moves
-- above the mark so that a reset device never falls below it again.
CREATE TABLE change_feed (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    scoped_from  INTEGER NOT NULL
);
INSERT INTO change_feed (id, scoped_from) VALUES (1, coalesce((SELECT max(seq) FROM change_log), 0) + 1);
UPDATE change_log SET seq = seq + (SELECT scoped_from FROM change_feed);
UPDATE sqlite_sequence SET seq = (SELECT max(seq) FROM change_log) WHERE name = 'change_log' AND EXISTS (SELECT 1 FROM change_log);

CREATE INDEX idx_change_log_scope ON change_log (orq, scope, seq);

-- The triggers of the venue-scoped tables, again, with their scope.
DROP TRIGGER tickets_log_insert;
DROP TRIGGER tickets_log_update;
DROP TRIGGER tickets_log_delete;
DROP TRIGGER ticket_reservations_log_insert;
DROP TRIGGER ticket_reservations_log_update;
DROP TRIGGER ticket_reservations_log_delete;
DROP TRIGGER reservation_slots_log_insert;
DROP TRIGGER reservation_slots_log_update;
DROP TRIGGER reservation_slots_log_delete;
DROP TRIGGER venues_log_insert;
DROP TRIGGER venues_log_update;
DROP TRIGGER venues_log_delete;

-- A ticket is in the scope of the venue of its reservation's slot.
CREATE TRIGGER tickets_log_insert AFTER INSERT ON tickets
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op, scope)
    VALUES (NEW.orq, 'tickets', NEW.ticket_code, 'upsert',
            (SELECT s.venue_id FROM ticket_reservations r JOIN reservation_slots s ON s.id = r.slot_id WHERE r.ticket_id = NEW.ticket_code))
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op, scope = excluded.scope;
END;

CREATE TRIGGER tickets_log_update AFTER UPDATE ON tickets
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op, scope)
    VALUES (NEW.orq, 'tickets', NEW.ticket_code, 'upsert',
            (SELECT s.venue_id FROM ticket_reservations r JOIN reservation_slots s ON s.id = r.slot_id WHERE r.ticket_id = NEW.ticket_code))
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op, scope = excluded.scope;
END;

CREATE TRIGGER tickets_log_delete AFTER DELETE ON tickets
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op, scope) VALUES (OLD.orq, 'tickets', OLD.ticket_code, 'delete', NULL)
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

-- A reservation is in the scope of its slot's venue, and takes its ticket
-- along: a new or moved reservation logs the ticket for the new venue and
-- leaves an exit for the old one.
CREATE TRIGGER ticket_reservations_log_insert AFTER INSERT ON ticket_reservations
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op, scope)
    SELECT c.orq, 'scope_exit', c.scope || '/tickets/' || c.entity_id, 'delete', c.scope FROM change_log c
    WHERE c.entity = 'tickets' AND c.entity_id = NEW.ticket_id AND c.scope > 0
      AND c.scope IS NOT (SELECT venue_id FROM reservation_slots WHERE id = NEW.slot_id)
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = 'delete';
    DELETE FROM change_log WHERE entity = 'scope_exit'
      AND entity_id IN ((SELECT venue_id FROM reservation_slots WHERE id = NEW.slot_id) || '/tickets/' || NEW.ticket_id,
                        (SELECT venue_id FROM reservation_slots WHERE id = NEW.slot_id) || '/ticket_reservations/' || NEW.id);
    INSERT INTO change_log (orq, entity, entity_id, op, scope)
    SELECT NEW.orq, 'tickets', NEW.ticket_id, 'upsert', (SELECT venue_id FROM reservation_slots WHERE id = NEW.slot_id)
    WHERE EXISTS (SELECT 1 FROM tickets WHERE ticket_code = NEW.ticket_id)
      AND NOT EXISTS (SELECT 1 FROM change_log WHERE entity = 'tickets' AND entity_id = NEW.ticket_id
                      AND scope IS (SELECT venue_id FROM reservation_slots WHERE id = NEW.slot_id))
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = 'upsert', scope = excluded.scope;
    INSERT INTO change_log (orq, entity, entity_id, op, scope)
    VALUES (NEW.orq, 'ticket_reservations', NEW.id, 'upsert', (SELECT venue_id FROM reservation_slots WHERE id = NEW.slot_id))
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op, scope = excluded.scope;
END;

CREATE TRIGGER ticket_reservations_log_update AFTER UPDATE ON ticket_reservations
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op, scope)
    SELECT c.orq, 'scope_exit', c.scope || '/' || c.entity || '/' || c.entity_id, 'delete', c.scope FROM change_log c
    WHERE ((c.entity = 'tickets' AND c.entity_id = NEW.ticket_id) OR (c.entity = 'ticket_reservations' AND c.entity_id = NEW.id))
      AND c.scope > 0 AND c.scope IS NOT (SELECT venue_id FROM reservation_slots WHERE id = NEW.slot_id)
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = 'delete';
    DELETE FROM change_log WHERE entity = 'scope_exit'
      AND entity_id IN ((SELECT venue_id FROM reservation_slots WHERE id = NEW.slot_id) || '/tickets/' || NEW.ticket_id,
                        (SELECT venue_id FROM reservation_slots WHERE id = NEW.slot_id) || '/ticket_reservations/' || NEW.id);
    INSERT INTO change_log (orq, entity, entity_id, op, scope)
    SELECT NEW.orq, 'tickets', NEW.ticket_id, 'upsert', (SELECT venue_id FROM reservation_slots WHERE id = NEW.slot_id)
    WHERE EXISTS (SELECT 1 FROM tickets WHERE ticket_code = NEW.ticket_id)
      AND NOT EXISTS (SELECT 1 FROM change_log WHERE entity = 'tickets' AND entity_id = NEW.ticket_id
                      AND scope IS (SELECT venue_id FROM reservation_slots WHERE id = NEW.slot_id))
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = 'upsert', scope = excluded.scope;
    INSERT INTO change_log (orq, entity, entity_id, op, scope)
    VALUES (NEW.orq, 'ticket_reservations', NEW.id, 'upsert', (SELECT venue_id FROM reservation_slots WHERE id = NEW.slot_id))
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op, scope = excluded.scope;
END;

-- A deleted reservation: its venue's devices get the delete, and its ticket
-- (no longer reserved anywhere) leaves that venue.
CREATE TRIGGER ticket_reservations_log_delete AFTER DELETE ON ticket_reservations
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op, scope)
    SELECT c.orq, 'scope_exit', c.scope || '/tickets/' || c.entity_id, 'delete', c.scope FROM change_log c
    WHERE c.entity = 'tickets' AND c.entity_id = OLD.ticket_id AND c.scope > 0
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = 'delete';
    UPDATE change_log SET scope = NULL WHERE entity = 'tickets' AND entity_id = OLD.ticket_id AND scope > 0;
    INSERT INTO change_log (orq, entity, entity_id, op, scope) VALUES (OLD.orq, 'ticket_reservations', OLD.id, 'delete', NULL)
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

-- A slot never changes venue (no service moves one).
CREATE TRIGGER reservation_slots_log_insert AFTER INSERT ON reservation_slots
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op, scope) VALUES (NEW.orq, 'reservation_slots', NEW.id, 'upsert', NEW.venue_id)
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op, scope = excluded.scope;
END;

CREATE TRIGGER reservation_slots_log_update AFTER UPDATE ON reservation_slots
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op, scope) VALUES (NEW.orq, 'reservation_slots', NEW.id, 'upsert', NEW.venue_id)
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op, scope = excluded.scope;
END;

CREATE TRIGGER reservation_slots_log_delete AFTER DELETE ON reservation_slots
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op, scope) VALUES (OLD.orq, 'reservation_slots', OLD.id, 'delete', OLD.venue_id)
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

-- A device receives its own venue's row only.
CREATE TRIGGER venues_log_insert AFTER INSERT ON venues
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op, scope) VALUES (NEW.orq, 'venues', NEW.id, 'upsert', NEW.id)
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op, scope = excluded.scope;
END;

CREATE TRIGGER venues_log_update AFTER UPDATE ON venues
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op, scope) VALUES (NEW.orq, 'venues', NEW.id, 'upsert', NEW.id)
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op, scope = excluded.scope;
END;

CREATE TRIGGER venues_log_delete AFTER DELETE ON venues
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op, scope) VALUES (OLD.orq, 'venues', OLD.id, 'delete', OLD.id)
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;

-- The conflict table was rebuilt: its triggers, with the uploading gate's venue.
CREATE TRIGGER sync_conflicts_log_insert AFTER INSERT ON sync_conflicts
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op, scope) VALUES (NEW.orq, 'sync_conflicts', NEW.id, 'upsert', NEW.venue_id)
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op, scope = excluded.scope;
END;

CREATE TRIGGER sync_conflicts_log_update AFTER UPDATE ON sync_conflicts
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op, scope) VALUES (NEW.orq, 'sync_conflicts', NEW.id, 'upsert', NEW.venue_id)
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op, scope = excluded.scope;
END;

CREATE TRIGGER sync_conflicts_log_delete AFTER DELETE ON sync_conflicts
WHEN NOT EXISTS (SELECT 1 FROM device_identity)
BEGIN
    INSERT INTO change_log (orq, entity, entity_id, op, scope) VALUES (OLD.orq, 'sync_conflicts', OLD.id, 'delete', OLD.venue_id)
        ON CONFLICT (entity, entity_id) DO UPDATE SET seq = (SELECT max(seq) + 1 FROM change_log), op = excluded.op;
END;
