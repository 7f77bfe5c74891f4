-- API tokens: random secrets shown once, stored as SHA-256 hashes.
CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    token_hash  TEXT    NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    orq         INTEGER NOT NULL,
    role        TEXT    NOT NULL CHECK (role IN ('customer', 'operator', 'supervisor', 'admin')),
    user_id     INTEGER,
    venue_id    INTEGER,
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    revoked_at  TEXT,
    -- A customer token always speaks for one customer.
    CHECK (role <> 'customer' OR user_id IS NOT NULL)
);
CREATE INDEX idx_api_tokens_orq ON api_tokens (orq);
