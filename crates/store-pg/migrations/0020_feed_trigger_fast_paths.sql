-- Issue 13 (session 37): the ticket and reservation feed triggers do less
-- for a row whose change moves nothing between scopes (a verification: the
-- ticket's and its reservation's status). Same rows logged, same scopes,
-- same order of writes: only statements that would have changed nothing
-- are skipped, and feed_log's INSERT is written out in place.
--
-- 1. feed_log's upsert inline. feed_log is an SQL function: PostgreSQL 15
--    parses and plans its INSERT again each time a statement calling it
--    starts (its plan lives with the caller's expression state, and
--    log_ticket's call, a statement with a subquery, starts anew on every
--    row). Written in the trigger, the INSERT is a PL/pgSQL statement whose
--    plan the function keeps (plan_cache_mode = auto, as 0018 set). Same
--    INSERT ... ON CONFLICT as feed_log with set_scope true.
-- 2. log_ticket_reservation: of its six statements for an INSERT or UPDATE,
--    four only matter when an entry is in another venue's scope than the
--    reservation's slot's (a `scope_exit` to write, a stale one to delete,
--    the ticket to log for the new venue). One statement first reads the
--    slot's venue and whether the row's entries already stand as those four
--    would leave them: the ticket's entry in the venue's scope (so neither
--    the ticket's `scope_exit` nor its upsert would be written), the
--    reservation's entry in no other venue's scope, and no `scope_exit` of
--    either in the venue. Then only the reservation's own upsert runs. Any
--    other state (a new or moved reservation, a ticket not yet logged for
--    the venue, a venue moved under a slot) runs all six as before.
--    Per row, under load: two statements instead of six.
CREATE OR REPLACE FUNCTION log_ticket() RETURNS trigger LANGUAGE plpgsql
SET plan_cache_mode = auto AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM feed_log(OLD.orq, 'tickets', OLD.ticket_code, 'delete', NULL, false);
        RETURN OLD;
    END IF;
    -- A ticket is in the scope of the venue of its reservation's slot
    -- (feed_log(..., 'upsert', that venue, true), written out).
    INSERT INTO change_log (orq, entity, entity_id, op, scope)
    VALUES (NEW.orq, 'tickets', NEW.ticket_code, 'upsert',
        (SELECT s.venue_id FROM ticket_reservations r JOIN reservation_slots s ON s.id = r.slot_id
         WHERE r.ticket_id = NEW.ticket_code))
    ON CONFLICT (entity, entity_id) DO UPDATE SET
        seq = NULL, written = nextval('change_log_written'),
        op = excluded.op, scope = excluded.scope;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION log_ticket_reservation() RETURNS trigger LANGUAGE plpgsql
SET plan_cache_mode = auto AS $$
DECLARE
    v_venue BIGINT;
    v_quiet BOOLEAN;
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
    -- The slot's venue, and whether the four statements below the fast
    -- path would change nothing (see the top of this file).
    SELECT x.venue,
           EXISTS (SELECT 1 FROM change_log c WHERE c.entity = 'tickets' AND c.entity_id = v_ticket
                   AND c.scope IS NOT DISTINCT FROM x.venue)
           AND NOT EXISTS (SELECT 1 FROM change_log c WHERE TG_OP = 'UPDATE'
                   AND c.entity = 'ticket_reservations' AND c.entity_id = NEW.id::text
                   AND c.scope > 0 AND c.scope IS DISTINCT FROM x.venue)
           AND NOT EXISTS (SELECT 1 FROM change_log c WHERE c.entity = 'scope_exit'
                   AND c.entity_id IN (x.venue || '/tickets/' || v_ticket,
                                       x.venue || '/ticket_reservations/' || NEW.id::text))
      INTO v_venue, v_quiet
      FROM (SELECT (SELECT venue_id FROM reservation_slots WHERE id = NEW.slot_id) AS venue) x;
    IF NOT v_quiet THEN
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
            INSERT INTO change_log (orq, entity, entity_id, op, scope)
            VALUES (NEW.orq, 'tickets', v_ticket, 'upsert', v_venue)
            ON CONFLICT (entity, entity_id) DO UPDATE SET
                seq = NULL, written = nextval('change_log_written'),
                op = excluded.op, scope = excluded.scope;
        END IF;
    END IF;
    INSERT INTO change_log (orq, entity, entity_id, op, scope)
    VALUES (NEW.orq, 'ticket_reservations', NEW.id::text, 'upsert', v_venue)
    ON CONFLICT (entity, entity_id) DO UPDATE SET
        seq = NULL, written = nextval('change_log_written'),
        op = excluded.op, scope = excluded.scope;
    RETURN NEW;
END;
$$;
