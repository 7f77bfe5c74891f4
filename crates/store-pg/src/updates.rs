//! Fleet updates (issue 20) on PostgreSQL: the app version each gate
//! reports and its last update's outcome (as `entrada-store`'s `updates`).

use chrono::{DateTime, Utc};

use crate::domain::sync::protocol::DeviceInfo;
use crate::domain::update::{
    check_report, DeviceVersion, UpdateOutcome, UpdateReport, UpdateState,
};
use crate::domain::{DomainError, Orq};
use crate::{db, ts, PgStore};
use entrada_store::{Result, UpdateStore};

fn state_from(text: &str) -> Option<UpdateState> {
    [
        UpdateState::Pending,
        UpdateState::Installed,
        UpdateState::RolledBack,
        UpdateState::Refused,
    ]
    .into_iter()
    .find(|s| s.as_str() == text)
}

impl UpdateStore for PgStore {
    fn record_update_report(
        &self,
        device: &DeviceInfo,
        report: &UpdateReport,
        now: DateTime<Utc>,
    ) -> Result<()> {
        check_report(report)?;
        let last = report.last.as_ref();
        let version = last.map(|l| l.version.as_str());
        let state = last.map(|l| l.state.as_str());
        let detail = last.and_then(|l| l.detail.as_deref());
        self.write(|tx| {
            let changed = tx
                .execute(
                    "UPDATE devices SET app_version = $1, update_version = $2, update_state = $3, update_detail = $4, app_reported_at = $5
                     WHERE id = $6 AND orq = $7 AND revoked_at IS NULL",
                    &[&report.running, &version, &state, &detail, &ts(now), &device.device_id, &device.orq],
                )
                .map_err(db)?;
            if changed == 0 {
                return Err(DomainError::NotFound { entity: "device" }.into());
            }
            Ok(())
        })
    }

    fn device_versions(&self, orq: Orq) -> Result<Vec<DeviceVersion>> {
        self.read(|tx| {
            let rows = tx
                .query(
                    "SELECT id, venue_id, name, revoked_at IS NOT NULL AS revoked, app_version, update_version, update_state, update_detail, app_reported_at
                     FROM devices WHERE orq = $1 ORDER BY id",
                    &[&orq.0],
                )
                .map_err(db)?;
            Ok(rows
                .iter()
                .map(|r| {
                    let update_version: Option<String> = r.get("update_version");
                    let update_state: Option<String> = r.get("update_state");
                    DeviceVersion {
                        device_id: r.get("id"),
                        venue_id: r.get("venue_id"),
                        name: r.get("name"),
                        revoked: r.get("revoked"),
                        app_version: r.get("app_version"),
                        last_update: match (update_version, update_state.as_deref().and_then(state_from)) {
                            (Some(version), Some(state)) => Some(UpdateOutcome { version, state, detail: r.get("update_detail") }),
                            _ => None,
                        },
                        reported_at: r.get("app_reported_at"),
                    }
                })
                .collect())
        })
    }
}
