-- Issue 13 (hot slot): a reservation's foreign key to its slot is checked at
-- commit instead of at the INSERT. Checked at the INSERT, it took a KEY
-- SHARE lock on the slot's row there, before the writer queued for that
-- row's NO KEY UPDATE lock (reservations.rs takes the slot's lock last): on
-- one hot slot every waiting writer held such a lock, so the row's lockers
-- became a MultiXact that each update of the count had to rebuild, while
-- the row was held. Checked at commit, the writer already holds the slot's
-- row (its own lock covers the check): the row has one locker at a time.
-- The guarantee is the same (no reservation commits without its slot; ON
-- DELETE RESTRICT still refuses a slot's deletion at once).
ALTER TABLE ticket_reservations
    ALTER CONSTRAINT ticket_reservations_slot_id_fkey DEFERRABLE INITIALLY DEFERRED;
