//! This engine's migrations: numbered SQL files beside the crate, embedded,
//! applied in order, each recorded with its SHA-256 in `entrada_migrations`.
//! Several instances may start at once: one applies, the others wait on an
//! advisory lock and find the work done. A database migrated by a newer
//! program is refused, as SQLite's is.

use sha2::{Digest, Sha256};

use crate::{db, PgStore};
use entrada_store::{Result, StoreError};

/// The schema, oldest first. Append only: a released migration never changes
/// (`migrations/SHA256SUMS`, checked by a test).
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_schema.sql",
        include_str!("../migrations/0001_schema.sql"),
    ),
    (
        "0002_venue_operations.sql",
        include_str!("../migrations/0002_venue_operations.sql"),
    ),
    (
        "0003_walkup_leases.sql",
        include_str!("../migrations/0003_walkup_leases.sql"),
    ),
    (
        "0004_no_show_release.sql",
        include_str!("../migrations/0004_no_show_release.sql"),
    ),
    (
        "0005_device_keys.sql",
        include_str!("../migrations/0005_device_keys.sql"),
    ),
    (
        "0006_console_links.sql",
        include_str!("../migrations/0006_console_links.sql"),
    ),
    (
        "0007_gate_app_versions.sql",
        include_str!("../migrations/0007_gate_app_versions.sql"),
    ),
    (
        "0008_device_key_unique.sql",
        include_str!("../migrations/0008_device_key_unique.sql"),
    ),
    (
        "0009_lease_recall.sql",
        include_str!("../migrations/0009_lease_recall.sql"),
    ),
    (
        "0010_ticket_order_index.sql",
        include_str!("../migrations/0010_ticket_order_index.sql"),
    ),
    (
        "0011_operator_deactivation.sql",
        include_str!("../migrations/0011_operator_deactivation.sql"),
    ),
    (
        "0012_venue_closings.sql",
        include_str!("../migrations/0012_venue_closings.sql"),
    ),
    (
        "0013_feed_trigger_lookups.sql",
        include_str!("../migrations/0013_feed_trigger_lookups.sql"),
    ),
    (
        "0014_ticket_org_code_index.sql",
        include_str!("../migrations/0014_ticket_org_code_index.sql"),
    ),
    (
        "0015_verified_gate.sql",
        include_str!("../migrations/0015_verified_gate.sql"),
    ),
    (
        "0016_reservation_slot_fk_deferred.sql",
        include_str!("../migrations/0016_reservation_slot_fk_deferred.sql"),
    ),
    (
        "0017_feed_numbering_batches.sql",
        include_str!("../migrations/0017_feed_numbering_batches.sql"),
    ),
    // 0018 sets plan_cache_mode = auto on the
    // feed's trigger functions (log_ticket, log_ticket_reservation,
    // log_scoped_row): a later CREATE OR REPLACE FUNCTION of any of them
    // must repeat `SET plan_cache_mode = auto` in its definition, or it
    // drops the setting (tests/migrate.rs checks it on the final schema).
    (
        "0018_feed_trigger_plans.sql",
        include_str!("../migrations/0018_feed_trigger_plans.sql"),
    ),
    // 0019: the slot's own feed trigger function (log_reservation_slot,
    // plan_cache_mode = auto in its definition, as 0018 asks).
    (
        "0019_slot_feed_trigger.sql",
        include_str!("../migrations/0019_slot_feed_trigger.sql"),
    ),
    // 0020: fast paths in the ticket and reservation feed triggers (same
    // rows logged; plan_cache_mode = auto in their definitions, as 0018 asks).
    (
        "0020_feed_trigger_fast_paths.sql",
        include_str!("../migrations/0020_feed_trigger_fast_paths.sql"),
    ),
    // 0021: a verification's ticket and reservation UPDATEs are HOT (no
    // index on a column they change; fillfactor 60 and 70 leave room on a page).
    (
        "0021_hot_verify_updates.sql",
        include_str!("../migrations/0021_hot_verify_updates.sql"),
    ),
];

/// The schema version this program writes.
pub fn known_schema_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// 'entr' 'migr': one migrator at a time, across instances.
const MIGRATION_LOCK: i64 = 0x656e_7472_6d69_6772;

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl PgStore {
    pub(crate) fn migrate(&self) -> Result<()> {
        let mut conn = self.conn()?;
        let mut tx = conn.client.transaction().map_err(db)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(db)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS entrada_migrations (
                 version    BIGINT      PRIMARY KEY,
                 name       TEXT        NOT NULL,
                 sha256     TEXT        NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .map_err(db)?;
        let applied: Vec<(i64, String)> = tx
            .query(
                "SELECT version, sha256 FROM entrada_migrations ORDER BY version",
                &[],
            )
            .map_err(db)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let known = known_schema_version();
        if let Some(&(found, _)) = applied.last() {
            if found > known {
                return Err(StoreError::SchemaTooNew { found, known });
            }
        }
        for (version, sum) in &applied {
            let (name, sql) = MIGRATIONS[(*version - 1) as usize];
            if sha256_hex(sql.as_bytes()) != *sum {
                return Err(StoreError::Engine(format!(
                    "migration {name} differs from the one this database ran; \
                     released migrations are never edited"
                )));
            }
        }
        for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(applied.len()) {
            tx.batch_execute(sql)
                .map_err(|e| StoreError::Engine(format!("migration {name} failed: {e}")))?;
            tx.execute(
                "INSERT INTO entrada_migrations (version, name, sha256) VALUES ($1, $2, $3)",
                &[&(i as i64 + 1), name, &sha256_hex(sql.as_bytes())],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    /// The version of the schema in the database.
    pub fn schema_version(&self) -> Result<i64> {
        let mut conn = self.conn()?;
        let row = conn
            .client
            .query_one(
                "SELECT coalesce(max(version), 0) FROM entrada_migrations",
                &[],
            )
            .map_err(db)?;
        Ok(row.get(0))
    }
}
