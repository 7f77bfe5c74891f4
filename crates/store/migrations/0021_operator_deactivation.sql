-- Issue 16 (console staff): an operator can be deactivated. The column
-- travels to gates with the operator row (change feed), so a gate refuses a
-- deactivated operator's PIN offline after its next sync.
ALTER TABLE operators ADD COLUMN deactivated_at TEXT;

-- Issue 16 (console gates): how many events a gate said it still had to
-- upload (the `X-Entrada-Pending` header of its last upload), and when.
ALTER TABLE devices ADD COLUMN pending_uploads INTEGER CHECK (pending_uploads >= 0);
ALTER TABLE devices ADD COLUMN pending_reported_at TEXT;
