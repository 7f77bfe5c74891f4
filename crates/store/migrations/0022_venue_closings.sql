-- Issue 15 (closing time): when each venue was last checked out (by the
-- server's closing task or a supervisor's checkout). Closing is due once per
-- venue-day: when the venue's clock has passed that day's closing time and
-- the venue has not been closed since that instant (`domain::venue_ops::closing_due`).
-- A table of its own, not a venue column: the venue row travels to gates,
-- and a daily write to it would be sent to every gate of the venue.
CREATE TABLE venue_closings (
    venue_id   INTEGER PRIMARY KEY REFERENCES venues (id) ON DELETE CASCADE,
    orq        INTEGER NOT NULL,
    closed_at  TEXT    NOT NULL
);

-- Issue 16 (dashboard): a venue's conflicts found today, read every second
-- while a dashboard is open.
CREATE INDEX idx_sync_conflicts_venue_detected ON sync_conflicts (orq, venue_id, detected_at);
