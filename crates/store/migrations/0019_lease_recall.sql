-- Issue 15 (track 15): a supervisor's take-back of a walk-up lease of a slot
-- still open for walk-ups is a recall, not a return: the places stay counted
-- until the gate's next lease refresh says which of them its offline
-- walk-ups used (every ADMIT a gate showed is honoured, and the slot never
-- goes over capacity). NULL: not recalled.
ALTER TABLE walkup_leases ADD COLUMN recalled_at TEXT;

-- Closing time (issue 15, same track): the venue's local closing time
-- (`HH:MM:SS`), from which the server checks everyone still inside out.
-- NULL: none. Synced to the gates with the venue row.
ALTER TABLE venues ADD COLUMN closing_time TEXT
    CHECK (closing_time IS NULL OR closing_time GLOB '[0-2][0-9]:[0-5][0-9]:[0-5][0-9]');
