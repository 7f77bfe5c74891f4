-- Fleet updates (issue 20): the gate app version each device runs and the
-- outcome of its last update, as it reported them (POST /api/sync/update).
ALTER TABLE devices ADD COLUMN app_version TEXT;
ALTER TABLE devices ADD COLUMN update_version TEXT;
ALTER TABLE devices ADD COLUMN update_state TEXT
    CHECK (update_state IS NULL OR update_state IN ('pending', 'installed', 'rolled_back', 'refused'));
ALTER TABLE devices ADD COLUMN update_detail TEXT;
ALTER TABLE devices ADD COLUMN app_reported_at TIMESTAMPTZ;
