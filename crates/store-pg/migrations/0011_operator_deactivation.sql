-- Issue 16 (console staff): an operator can be deactivated (as SQLite's
-- 0022); the column travels to gates with the operator row.
ALTER TABLE operators ADD COLUMN deactivated_at TIMESTAMPTZ;

-- Issue 16 (console gates): how many events a gate said it still had to
-- upload (the `X-Entrada-Pending` header of its last upload), and when.
ALTER TABLE devices ADD COLUMN pending_uploads BIGINT CHECK (pending_uploads >= 0);
ALTER TABLE devices ADD COLUMN pending_reported_at TIMESTAMPTZ;
