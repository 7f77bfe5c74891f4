-- Customers reach their ticket with its code and the purchase e-mail: the
-- server then issues a short-lived token scoped to that one ticket.
ALTER TABLE tickets ADD COLUMN purchase_email TEXT;

-- api_tokens gains a ticket scope and an expiry; SQLite cannot change a
-- CHECK in place, so the table is rebuilt (ids and hashes kept).
CREATE TABLE api_tokens_new (
    id           INTEGER PRIMARY KEY,
    token_hash   TEXT    NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    orq          INTEGER NOT NULL,
    role         TEXT    NOT NULL CHECK (role IN ('customer', 'operator', 'supervisor', 'admin')),
    user_id      INTEGER,
    venue_id     INTEGER,
    ticket_code  TEXT,
    created_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    expires_at   TEXT,
    revoked_at   TEXT,
    -- A customer token speaks for one customer, or for one ticket.
    CHECK (role <> 'customer' OR user_id IS NOT NULL OR ticket_code IS NOT NULL)
);
INSERT INTO api_tokens_new (id, token_hash, orq, role, user_id, venue_id, created_at, revoked_at)
    SELECT id, token_hash, orq, role, user_id, venue_id, created_at, revoked_at FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_new RENAME TO api_tokens;
CREATE INDEX idx_api_tokens_orq ON api_tokens (orq);
