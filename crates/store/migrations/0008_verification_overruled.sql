-- An admission an operator decided against an amber verdict records which
-- verdict was overruled (AUTHENTIC_NOT_SYNCED, OUTSIDE_SLOT_WINDOW), on the
-- device that decided and on the server that receives it. No CHECK: the
-- domain decides which verdicts may be overruled, and a new one must not
-- turn a device's upload into a database error.
ALTER TABLE verifications ADD COLUMN overruled TEXT;
