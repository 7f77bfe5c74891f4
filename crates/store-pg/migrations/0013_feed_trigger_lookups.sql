-- Issue 13: the reservation trigger (0001) looks up the entries it moves
-- out of a venue's scope by the primary key, one statement each, instead of
-- one OR that the cached plan ran as a scan of the whole change_log on every
-- reservation. Same behaviour; the function is replaced whole.
CREATE OR REPLACE FUNCTION log_ticket_reservation() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_venue BIGINT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO change_log (orq, entity, entity_id, op, scope)
        SELECT c.orq, 'scope_exit', c.scope || '/tickets/' || c.entity_id, 'delete', c.scope FROM change_log c
        WHERE c.entity = 'tickets' AND c.entity_id = OLD.ticket_id AND c.scope > 0
        ON CONFLICT (entity, entity_id) DO UPDATE SET
            seq = NULL, written = nextval('change_log_written'), op = 'delete';
        UPDATE change_log SET scope = NULL WHERE entity = 'tickets' AND entity_id = OLD.ticket_id AND scope > 0;
        PERFORM feed_log(OLD.orq, 'ticket_reservations', OLD.id::text, 'delete', NULL, false);
        RETURN OLD;
    END IF;
    SELECT venue_id INTO v_venue FROM reservation_slots WHERE id = NEW.slot_id;
    -- Two look-ups by the primary key, not one OR: PL/pgSQL's cached plan
    -- for `(ticket) OR (TG_OP = 'UPDATE' AND reservation)` scanned the whole
    -- change_log on every reservation (issue 13's bench: 85 then 38
    -- reservations/s as it grew past 100,000 rows).
    INSERT INTO change_log (orq, entity, entity_id, op, scope)
    SELECT c.orq, 'scope_exit', c.scope || '/' || c.entity || '/' || c.entity_id, 'delete', c.scope FROM change_log c
    WHERE c.entity = 'tickets' AND c.entity_id = NEW.ticket_id
      AND c.scope > 0 AND c.scope IS DISTINCT FROM v_venue
    ON CONFLICT (entity, entity_id) DO UPDATE SET
        seq = NULL, written = nextval('change_log_written'), op = 'delete';
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO change_log (orq, entity, entity_id, op, scope)
        SELECT c.orq, 'scope_exit', c.scope || '/' || c.entity || '/' || c.entity_id, 'delete', c.scope FROM change_log c
        WHERE c.entity = 'ticket_reservations' AND c.entity_id = NEW.id::text
          AND c.scope > 0 AND c.scope IS DISTINCT FROM v_venue
        ON CONFLICT (entity, entity_id) DO UPDATE SET
            seq = NULL, written = nextval('change_log_written'), op = 'delete';
    END IF;
    DELETE FROM change_log WHERE entity = 'scope_exit'
      AND entity_id IN (v_venue || '/tickets/' || NEW.ticket_id, v_venue || '/ticket_reservations/' || NEW.id::text);
    IF EXISTS (SELECT 1 FROM tickets WHERE ticket_code = NEW.ticket_id)
       AND NOT EXISTS (SELECT 1 FROM change_log WHERE entity = 'tickets' AND entity_id = NEW.ticket_id
                       AND scope IS NOT DISTINCT FROM v_venue) THEN
        PERFORM feed_log(NEW.orq, 'tickets', NEW.ticket_id, 'upsert', v_venue, true);
    END IF;
    PERFORM feed_log(NEW.orq, 'ticket_reservations', NEW.id::text, 'upsert', v_venue, true);
    RETURN NEW;
END;
$$;
