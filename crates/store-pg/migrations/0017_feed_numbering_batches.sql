-- Issue 13 (the first sync of 100,000 tickets): the feed's numbering
-- (0001's feed_sequence) in batches.
--
-- The rule is 0001's, unchanged: pending entries (seq NULL) that have
-- committed are numbered in write order, one numberer at a time (the same
-- advisory lock, held to its commit), rows a writer holds are skipped, so a
-- seq is only given to a committed entry and every later seq is higher.
-- What differs: the probe for pending entries (below), and
-- feed_sequence_batch(n) numbers at most n entries (the
-- oldest written), so that the numberer each server instance now runs
-- between pulls commits as it goes instead of holding the lock over a whole
-- import (numbering 226,023 entries in one UPDATE took 6.8 s in pg_http,
-- ~30 us an entry: a new version of each row and its index entries); NULL
-- numbers them all, as feed_sequence() still does for a pull. Leaving
-- entries pending is safe: they get higher seqs later, which no cursor can
-- have passed.
CREATE OR REPLACE FUNCTION feed_sequence_batch(p_limit BIGINT) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    numbered BIGINT;
BEGIN
    -- Most calls find nothing new: no lock then. Asked in the pending
    -- index's order, so that the index answers it whatever the planner's
    -- statistics say: 0001's NOT EXISTS, planned when an import had just
    -- made every entry pending, became a scan of the whole log on each pull
    -- once they were numbered (56 ms a pull at 226,023 entries).
    IF (SELECT written FROM change_log WHERE seq IS NULL ORDER BY written LIMIT 1) IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(1701737586);
    -- A new statement, so a new snapshot: the previous numberer's work is seen.
    UPDATE change_log c SET seq = p.new_seq
    FROM (
        SELECT entity, entity_id, nextval('change_log_seq') AS new_seq
        FROM (
            SELECT entity, entity_id FROM change_log
            WHERE seq IS NULL
            ORDER BY written
            LIMIT p_limit
            -- As in 0001: a row a writer holds now is left for later.
            FOR UPDATE SKIP LOCKED
        ) ready
    ) p
    -- Joined on the key alone (each row is locked by this statement, and
    -- pending): with 0001's "AND c.seq IS NULL", statistics taken while
    -- nothing was pending planned a scan of the log per entry.
    WHERE c.entity = p.entity AND c.entity_id = p.entity_id;
    GET DIAGNOSTICS numbered = ROW_COUNT;
    RETURN numbered;
END;
$$;

CREATE OR REPLACE FUNCTION feed_sequence() RETURNS BIGINT LANGUAGE sql AS $$
    SELECT feed_sequence_batch(NULL);
$$;
