-- Issue 13 (a gate's first sync): the secondary indexes of the replica's
-- two big synced tables (tickets, ticket_reservations) are dropped while a
-- first sync fills the empty tables and built again, in one sort each, with
-- its last page. Each dropped index's definition is kept here, in the same
-- transaction as the drop, so a crash between pages leaves the rows, their
-- cursor and what to build: the sync's last page (or the next Store::open)
-- builds them again and empties this table. Only non-unique indexes are
-- deferred (a unique one is a rule of the table, not a lookup path).
CREATE TABLE deferred_indexes (
    name TEXT PRIMARY KEY,
    sql  TEXT NOT NULL
);
