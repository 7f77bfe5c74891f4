-- Issue 13 (session 32): a slot's feed trigger of its own. Every reservation
-- on a slot updates the slot's row (its count), and the generic
-- log_scoped_row logged it as any scoped row: the row turned into JSON for
-- two of its columns, and the slot's change_log entry written anew
-- (seq = NULL, a new `written`: a new row version with new entries in
-- change_log's four indexes) even while it was still pending. On a hot slot
-- that work runs while the writer holds the slot's row, and the one entry's
-- versions pile up in change_log's indexes.
--
-- log_reservation_slot logs what log_scoped_row('reservation_slots', 'id',
-- 'venue_id') logged (entity 'reservation_slots', the id as text, scope the
-- slot's venue, an upsert moves the scope, a delete keeps it), from the
-- row's own columns. An UPDATE whose entry is still pending, as an upsert in
-- the same scope, only locks that entry (FOR UPDATE, held to the commit)
-- instead of writing it again: the entry would not change but for its
-- `written`, and the lock keeps the numberer (FOR UPDATE SKIP LOCKED) from
-- numbering it before this transaction commits, as the write's lock did. If
-- the numberer holds it, the lock waits for it and finds it numbered: the
-- entry is then written (pending again), as before. So a device still gets
-- every slot change after it commits. The function keeps its plans
-- (plan_cache_mode = auto, as 0018 set for the other feed triggers).
CREATE OR REPLACE FUNCTION log_reservation_slot() RETURNS trigger LANGUAGE plpgsql
SET plan_cache_mode = auto AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM feed_log(OLD.orq, 'reservation_slots', OLD.id::text, 'delete', OLD.venue_id, false);
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        PERFORM 1 FROM change_log
        WHERE entity = 'reservation_slots' AND entity_id = NEW.id::text
          AND seq IS NULL AND op = 'upsert' AND scope IS NOT DISTINCT FROM NEW.venue_id
        FOR UPDATE;
        IF FOUND THEN
            RETURN NEW;
        END IF;
    END IF;
    PERFORM feed_log(NEW.orq, 'reservation_slots', NEW.id::text, 'upsert', NEW.venue_id, true);
    RETURN NEW;
END;
$$;
DROP TRIGGER IF EXISTS reservation_slots_log ON reservation_slots;
CREATE TRIGGER reservation_slots_log AFTER INSERT OR UPDATE OR DELETE ON reservation_slots
    FOR EACH ROW EXECUTE FUNCTION log_reservation_slot();
