-- Issue 13 (a gate's first sync, session 34): besides its indexes (0025),
-- a first sync drops the change log's AFTER INSERT triggers of the two big
-- synced tables while it fills them. On a gate they never write (their
-- WHEN clause: no device_identity row), but a statement with a trigger
-- runs the trigger's program for every row and keeps a statement journal
-- of every page it changes: about a fifth of a first sync's apply. Each
-- dropped trigger's name is kept here, in the same transaction as the
-- drop; it is created again from this program's own migrations (not from
-- a text kept in the file) at the sync's last page, the next round's end
-- or the next Store::open, like the deferred indexes.
CREATE TABLE deferred_triggers (
    name TEXT PRIMARY KEY
);
