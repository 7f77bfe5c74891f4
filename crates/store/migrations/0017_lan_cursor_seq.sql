-- Gate to gate (issue 14, fix): the per-peer cursor is the outbox's rowid
-- (its insertion order), not the event id: UUID v7 ids from a second process
-- in the same millisecond, or after the clock stepped back, sort below an
-- older id and were never sent. Outbox rows are never deleted, so the rowid
-- only grows. NULL: nothing confirmed (a cursor kept as an event id is
-- dropped: the peer gets this gate's events again, each a no-op replay).
ALTER TABLE lan_peers ADD COLUMN sent_seq INTEGER;
