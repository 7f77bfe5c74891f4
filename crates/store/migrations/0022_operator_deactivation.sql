-- Issue 16 (console staff): an operator can be deactivated. The column
-- travels to gates with the operator row (change feed), so a gate refuses a
-- deactivated operator's PIN offline after its next sync.
ALTER TABLE operators ADD COLUMN deactivated_at TEXT;
