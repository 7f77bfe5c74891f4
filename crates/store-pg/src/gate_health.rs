//! The console's Gates page (issue 16) on PostgreSQL (as `entrada-store`'s
//! `gate_health`): gates as recorded, pending uploads reported, revocation.

use chrono::{DateTime, Utc};

use crate::domain::gate_health::GateHealth;
use crate::domain::sync::protocol::DeviceInfo;
use crate::domain::{DomainError, Orq};
use crate::{db, ts, PgStore};
use entrada_store::{GateHealthStore, Result};

impl GateHealthStore for PgStore {
    fn gate_health(&self, orq: Orq) -> Result<Vec<GateHealth>> {
        self.read(|tx| {
            let rows = tx
                .query(
                    "SELECT d.id, d.venue_id, d.name, d.revoked_at IS NOT NULL AS revoked, d.app_version, d.last_seen_at, \
                     d.clock_offset_ms, d.pending_uploads, d.pending_reported_at, \
                     (SELECT count(*) FROM sync_conflicts c WHERE c.orq = d.orq \
                       AND (c.first_device_id = d.id OR c.second_device_id = d.id)) AS conflicts \
                     FROM devices d WHERE d.orq = $1 ORDER BY d.id",
                    &[&orq.0],
                )
                .map_err(db)?;
            Ok(rows
                .iter()
                .map(|r| GateHealth {
                    device_id: r.get("id"),
                    venue_id: r.get("venue_id"),
                    name: r.get("name"),
                    revoked: r.get("revoked"),
                    app_version: r.get("app_version"),
                    last_seen_at: r.get("last_seen_at"),
                    clock_offset_ms: r.get("clock_offset_ms"),
                    pending_uploads: r.get("pending_uploads"),
                    pending_reported_at: r.get("pending_reported_at"),
                    conflicts: r.get("conflicts"),
                })
                .collect())
        })
    }

    fn record_pending_uploads(
        &self,
        device: &DeviceInfo,
        pending: u32,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE devices SET pending_uploads = $1, pending_reported_at = $2 \
                 WHERE id = $3 AND orq = $4 AND revoked_at IS NULL",
                &[
                    &i64::from(pending),
                    &ts(now),
                    &device.device_id,
                    &device.orq,
                ],
            )
            .map_err(db)?;
            Ok(())
        })
    }

    fn revoke_gate(&self, orq: Orq, device_id: i64, now: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE devices SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2 AND orq = $3",
                    &[&ts(now), &device_id, &orq.0],
                )
                .map_err(db)?;
            if n == 0 {
                return Err(DomainError::NotFound { entity: "device" }.into());
            }
            Ok(())
        })
    }
}
