-- Issue 13 (verify-ticket on PostgreSQL): a verification's UPDATEs of its
-- ticket (verified_at, verified_by, status, activation_status, activated_at,
-- updated_at, verified_gate) and of its reservation (status, updated_at)
-- become HOT updates: the new row version goes on the same page and no
-- index gets a new entry. Before, each one inserted into all 9 of the
-- ticket's indexes and all 4 of the reservation's, because an index covered
-- a column it changes (PostgreSQL makes an update HOT only when no indexed
-- column, index expression or index predicate changes, and the new version
-- fits on the old one's page).
--
-- * idx_tickets_status (status) goes. Its only reader is the console's
--   ticket list / search filtered by status: search is found by its term's
--   indexes (code, order, e-mails, phone) and filters the status on those
--   few rows; a list page walks the org's codes (idx_tickets_orq_code) and
--   filters, so a page of a status few tickets have reads up to all of the
--   org's tickets, or the planner scans the table (40 ms for a status no
--   ticket has, 120,000 tickets, against 0.1 ms with the index), as the
--   other list filters (activation status, user) already did.
-- * idx_ticket_reservations_slot_status (slot_id, status) becomes
--   (slot_id): the per-slot counts (dashboard, slot board, a slot's removal)
--   still find a slot's reservations by the index and check the status on
--   those rows (a slot's reservations are bounded by its capacity and its
--   cancellations). It also keeps the slot foreign key's RESTRICT check on
--   an index.
-- * Both tables leave 20 % of each new page free, for the new versions of
--   the rows on it (fillfactor 80). It applies to pages filled from now on;
--   rows already on full pages get room as they move: a reservation's own
--   ticket UPDATE (contact columns, indexed) is not HOT and writes the new
--   version on a page with room, and VACUUM frees the old versions' space.
--   This migration does not rewrite the tables (it runs in one transaction
--   with the others, and a rewrite holds an exclusive lock for the whole of
--   it); `VACUUM FULL tickets, ticket_reservations` in a quiet moment does.
DROP INDEX idx_tickets_status;
DROP INDEX idx_ticket_reservations_slot_status;
CREATE INDEX idx_ticket_reservations_slot ON ticket_reservations (slot_id);
ALTER TABLE tickets SET (fillfactor = 80);
ALTER TABLE ticket_reservations SET (fillfactor = 80);
