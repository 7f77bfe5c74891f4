-- Per-org Ed25519 keys that sign ticket codes. The private half lives only on
-- the server; devices receive the public half. Retired keys sign nothing and
-- their codes are refused.
CREATE TABLE signing_keys (
    kid          INTEGER PRIMARY KEY,
    orq          INTEGER NOT NULL,
    public_key   BLOB    NOT NULL CHECK (length(public_key) = 32),
    private_key  BLOB    CHECK (private_key IS NULL OR length(private_key) = 32),
    created_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    retired_at   TEXT
);
CREATE INDEX idx_signing_keys_orq ON signing_keys (orq);

-- Re-issuing a ticket bumps its serial; codes carrying an older serial are revoked.
ALTER TABLE tickets ADD COLUMN code_serial INTEGER NOT NULL DEFAULT 1 CHECK (code_serial >= 1);
