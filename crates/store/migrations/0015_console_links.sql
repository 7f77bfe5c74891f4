-- Issue 16: one-time sign-in links of the admin console. `entrada admin
-- link` prints a random secret; only its SHA-256 is kept. Opening the link
-- once (used_at) opens a console session: an expiring api_tokens row whose
-- secret travels in an HttpOnly cookie (session_token_id).
CREATE TABLE console_links (
    id                INTEGER PRIMARY KEY,
    link_hash         TEXT    NOT NULL UNIQUE CHECK (length(link_hash) = 64),
    orq               INTEGER NOT NULL,
    role              TEXT    NOT NULL CHECK (role IN ('supervisor', 'admin')),
    operator_id       INTEGER,
    created_at        TEXT    NOT NULL,
    expires_at        TEXT    NOT NULL,
    used_at           TEXT,
    session_token_id  INTEGER REFERENCES api_tokens (id)
);
CREATE INDEX idx_console_links_orq ON console_links (orq);
