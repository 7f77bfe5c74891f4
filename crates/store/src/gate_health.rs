//! The console's Gates page (issue 16): each gate as the server recorded it,
//! a gate's report of its pending uploads, and revoking a gate.

use chrono::{DateTime, Utc};
use rusqlite::params;

use crate::codec::{ts, Ts};
use crate::column::Sql;
use crate::domain::gate_health::GateHealth;
use crate::domain::sync::protocol::DeviceInfo;
use crate::domain::{DomainError, Orq};
use crate::{Result, Store};

impl Store {
    /// The org's gates with what they last reported and their conflicts.
    pub fn gate_health(&self, orq: Orq) -> Result<Vec<GateHealth>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT d.id, d.venue_id, d.name, d.revoked_at IS NOT NULL, d.app_version, d.last_seen_at, \
                 d.clock_offset_ms, d.pending_uploads, d.pending_reported_at, \
                 (SELECT count(*) FROM sync_conflicts c WHERE c.orq = d.orq \
                   AND (c.first_device_id = d.id OR c.second_device_id = d.id)) \
                 FROM devices d WHERE d.orq = ?1 ORDER BY d.id",
            )?;
            let rows = stmt.query_map([Sql(orq)], |r| {
                Ok(GateHealth {
                    device_id: r.get(0)?,
                    venue_id: r.get(1)?,
                    name: r.get(2)?,
                    revoked: r.get(3)?,
                    app_version: r.get(4)?,
                    last_seen_at: r.get::<_, Option<Ts>>(5)?.map(|t| t.0),
                    clock_offset_ms: r.get(6)?,
                    pending_uploads: r.get(7)?,
                    pending_reported_at: r.get::<_, Option<Ts>>(8)?.map(|t| t.0),
                    conflicts: r.get(9)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Records how many events a gate said it still had to upload.
    pub fn record_pending_uploads(
        &self,
        device: &DeviceInfo,
        pending: u32,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE devices SET pending_uploads = ?1, pending_reported_at = ?2 \
                 WHERE id = ?3 AND orq = ?4 AND revoked_at IS NULL",
                params![pending, ts(now), device.device_id, device.orq],
            )?;
            Ok(())
        })
    }

    /// Revokes a gate (its device token stops working at once; its LAN key
    /// with it). Idempotent: a revoked gate keeps its first revocation time.
    pub fn revoke_gate(&self, orq: Orq, device_id: i64, now: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE devices SET revoked_at = coalesce(revoked_at, ?1) WHERE id = ?2 AND orq = ?3",
                params![ts(now), device_id, Sql(orq)],
            )?;
            if n == 0 {
                return Err(DomainError::NotFound { entity: "device" }.into());
            }
            Ok(())
        })
    }
}
