-- Issue 16 (console staff): an operator can be deactivated (as SQLite's
-- 0022); the column travels to gates with the operator row.
ALTER TABLE operators ADD COLUMN deactivated_at TIMESTAMPTZ;
