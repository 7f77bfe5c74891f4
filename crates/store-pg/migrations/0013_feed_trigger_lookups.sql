-- Issue 13: the reservation feed trigger (0001) compared change_log's
-- entity_id (the database's default collation) with the reservation's
-- ticket_id (COLLATE "C"): a comparison in "C" cannot use change_log's
-- primary key, so every reservation scanned the whole change_log (pg_http's
-- seeding fell from 276 to 38 reservations/s past 70,000 rows). The ticket
-- code is now taken into a variable of the default collation, and the two
-- look-ups of the entries a reservation moves out of a venue's scope are one
-- statement each (one OR of both ran as a scan too). Same behaviour; the
-- function is replaced whole.
CREATE OR REPLACE FUNCTION log_ticket_reservation() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_venue BIGINT;
    -- change_log's collation, so that its primary key serves the look-ups.
    v_ticket TEXT COLLATE "default";
BEGIN
    IF TG_OP = 'DELETE' THEN v_ticket := OLD.ticket_id; ELSE v_ticket := NEW.ticket_id; END IF;
    IF TG_OP = 'DELETE' THEN
        INSERT INTO change_log (orq, entity, entity_id, op, scope)
        SELECT c.orq, 'scope_exit', c.scope || '/tickets/' || c.entity_id, 'delete', c.scope FROM change_log c
        WHERE c.entity = 'tickets' AND c.entity_id = v_ticket AND c.scope > 0
        ON CONFLICT (entity, entity_id) DO UPDATE SET
            seq = NULL, written = nextval('change_log_written'), op = 'delete';
        UPDATE change_log SET scope = NULL WHERE entity = 'tickets' AND entity_id = v_ticket AND scope > 0;
        PERFORM feed_log(OLD.orq, 'ticket_reservations', OLD.id::text, 'delete', NULL, false);
        RETURN OLD;
    END IF;
    SELECT venue_id INTO v_venue FROM reservation_slots WHERE id = NEW.slot_id;
    -- Two look-ups by the primary key, not one OR.
    INSERT INTO change_log (orq, entity, entity_id, op, scope)
    SELECT c.orq, 'scope_exit', c.scope || '/' || c.entity || '/' || c.entity_id, 'delete', c.scope FROM change_log c
    WHERE c.entity = 'tickets' AND c.entity_id = v_ticket
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
      AND entity_id IN (v_venue || '/tickets/' || v_ticket, v_venue || '/ticket_reservations/' || NEW.id::text);
    IF EXISTS (SELECT 1 FROM tickets WHERE ticket_code = NEW.ticket_id)
       AND NOT EXISTS (SELECT 1 FROM change_log WHERE entity = 'tickets' AND entity_id = v_ticket
                       AND scope IS NOT DISTINCT FROM v_venue) THEN
        PERFORM feed_log(NEW.orq, 'tickets', NEW.ticket_id, 'upsert', v_venue, true);
    END IF;
    PERFORM feed_log(NEW.orq, 'ticket_reservations', NEW.id::text, 'upsert', v_venue, true);
    RETURN NEW;
END;
$$;
