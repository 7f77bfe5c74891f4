-- Issue 15 (track 15), as SQLite's 0020: a supervisor's take-back of a
-- walk-up lease of a slot still open for walk-ups is a recall: the places
-- stay counted until the gate's next lease refresh. NULL: not recalled.
ALTER TABLE walkup_leases ADD COLUMN recalled_at TIMESTAMPTZ;

-- Closing time (issue 15, same track): the venue's local closing time, from
-- which the server checks everyone still inside out. NULL: none.
ALTER TABLE venues ADD COLUMN closing_time TIME;
