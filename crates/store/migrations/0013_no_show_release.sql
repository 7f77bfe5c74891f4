-- No-show release (issue 15, domain::no_show): when the server released a
-- RESERVED-but-unverified reservation as a no-show. Its status is then
-- CANCELLED (the place is back on the slot) and this says why; cleared when
-- the row is reused for a new reservation. Travels with the reservation row,
-- so a gate shows a late no-show as "operator decides".
ALTER TABLE ticket_reservations ADD COLUMN no_show_at TEXT;

-- Closing time (issue 15, domain::closing): why a passage was recorded other
-- than by a scan (CLOSING: a supervisor's checkout of everyone inside).
ALTER TABLE passages ADD COLUMN reason TEXT;
