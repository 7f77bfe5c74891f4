-- Issue 15 (closing time), as SQLite's 0022: when each venue was last
-- checked out (by the server's closing task or a supervisor's checkout), so
-- closing is due once per venue-day (`domain::venue_ops::closing_due`). A
-- table of its own: the venue row travels to gates, this does not.
CREATE TABLE venue_closings (
    venue_id   BIGINT      PRIMARY KEY REFERENCES venues (id) ON DELETE CASCADE,
    orq        BIGINT      NOT NULL,
    closed_at  TIMESTAMPTZ NOT NULL
);

-- Issue 16 (dashboard): a venue's conflicts found today, read every second
-- while a dashboard is open.
CREATE INDEX idx_sync_conflicts_venue_detected ON sync_conflicts (orq, venue_id, detected_at);
