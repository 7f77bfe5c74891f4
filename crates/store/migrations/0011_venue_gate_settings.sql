-- Gate settings belong to the venue (domain::venue::GateSettings): how long
-- before its slot starts a holder may enter and how long after it ends. The
-- server, `entrada gate verify` and every gate read them from the venue row,
-- which the change feed already carries (entity `venues`).
ALTER TABLE venues ADD COLUMN early_grace_minutes INTEGER NOT NULL DEFAULT 30
    CHECK (early_grace_minutes BETWEEN 0 AND 240);
ALTER TABLE venues ADD COLUMN late_grace_minutes INTEGER NOT NULL DEFAULT 30
    CHECK (late_grace_minutes BETWEEN 0 AND 240);

-- A gate's replica pulls the feed again from the start once (no reset: rows
-- are upserted over what it holds), so that venue rows it pulled before it
-- knew these columns arrive again with them.
UPDATE device_identity SET cursor = 0;
