-- An admission an operator decided against an amber verdict records which
-- verdict was overruled (AUTHENTIC_NOT_SYNCED, OUTSIDE_SLOT_WINDOW), on the
-- device that decided and on the server that receives it.
ALTER TABLE verifications ADD COLUMN overruled TEXT
    CHECK (overruled IS NULL OR overruled IN ('AUTHENTIC_NOT_SYNCED', 'OUTSIDE_SLOT_WINDOW'));
