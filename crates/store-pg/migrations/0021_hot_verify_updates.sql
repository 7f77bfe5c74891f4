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
-- * Pages keep room for the rows' new versions: tickets fillfactor 60,
--   reservations 70. A ticket grows after its import (a reservation adds
--   its contact and time, a verification its own columns), so a page filled
--   at import must hold the grown rows and still one new version: with 80,
--   14 of 150 verifications in a row were not HOT in the test
--   (`a_verification_s_ticket_and_reservation_updates_are_hot`), 21 with
--   the default 100. A reservation does not grow when verified.
--   A fillfactor applies to pages filled from now on; rows already on full
--   pages get room as they move: a reservation's ticket UPDATE (contact
--   columns, indexed) is not HOT and writes the new version where there is
--   room, and VACUUM frees the old versions' space. This migration does not
--   rewrite the tables (it runs in one transaction with the others, and a
--   rewrite holds an exclusive lock for the whole of it); `VACUUM FULL
--   tickets, ticket_reservations` in a quiet moment does (3.8 s and 2.2 s
--   for 120,000 rows on the development machine, under load).
DROP INDEX idx_tickets_status;
DROP INDEX idx_ticket_reservations_slot_status;
CREATE INDEX idx_ticket_reservations_slot ON ticket_reservations (slot_id);
ALTER TABLE tickets SET (fillfactor = 60);
ALTER TABLE ticket_reservations SET (fillfactor = 70);
