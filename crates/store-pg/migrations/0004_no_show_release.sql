-- No-show release (issue 15, domain::no_show), as SQLite's 0013: when the
-- server released a RESERVED-but-unverified reservation as a no-show (status
-- CANCELLED, its place back on the slot); cleared when the row is reused.
ALTER TABLE ticket_reservations ADD COLUMN no_show_at TIMESTAMPTZ;

-- Closing time (issue 15, domain::closing), as SQLite's 0013: why a passage
-- was recorded other than by a scan (CLOSING: a supervisor's checkout).
ALTER TABLE passages ADD COLUMN reason TEXT;
