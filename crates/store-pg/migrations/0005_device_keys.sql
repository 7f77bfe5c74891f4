-- Gate to gate (issue 14): each device's Ed25519 public key (hex),
-- registered by the device with its token; the other gates of the same
-- venue and org receive it through sync (POST /api/sync/peers).
ALTER TABLE devices ADD COLUMN public_key TEXT
    CHECK (public_key IS NULL OR length(public_key) = 64);
