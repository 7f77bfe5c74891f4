//! Fleet updates (issue 20), server side: the app version each gate reports
//! and its last update's outcome.

use chrono::{DateTime, Utc};
use rusqlite::params;

use crate::codec::{ts, Ts};
use crate::domain::sync::protocol::DeviceInfo;
use crate::domain::update::{
    check_report, DeviceVersion, UpdateOutcome, UpdateReport, UpdateState,
};
use crate::domain::{DomainError, Orq};
use crate::{Result, Store};

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

impl Store {
    /// Stores what a gate reported (its running version, its last update):
    /// the latest report replaces the previous one.
    pub fn record_update_report(
        &self,
        device: &DeviceInfo,
        report: &UpdateReport,
        now: DateTime<Utc>,
    ) -> Result<()> {
        check_report(report)?;
        let last = report.last.as_ref();
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE devices SET app_version = ?1, update_version = ?2, update_state = ?3, update_detail = ?4, app_reported_at = ?5
                 WHERE id = ?6 AND orq = ?7 AND revoked_at IS NULL",
                params![
                    report.running,
                    last.map(|l| l.version.as_str()),
                    last.map(|l| l.state.as_str()),
                    last.and_then(|l| l.detail.as_deref()),
                    ts(now),
                    device.device_id,
                    device.orq
                ],
            )?;
            if changed == 0 {
                return Err(DomainError::NotFound { entity: "device" }.into());
            }
            Ok(())
        })
    }

    /// The org's devices with the versions they last reported.
    pub fn device_versions(&self, orq: Orq) -> Result<Vec<DeviceVersion>> {
        self.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT id, venue_id, name, revoked_at IS NOT NULL, app_version, update_version, update_state, update_detail, app_reported_at
                 FROM devices WHERE orq = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([orq.0], |r| {
                let update_version: Option<String> = r.get(5)?;
                let update_state: Option<String> = r.get(6)?;
                Ok(DeviceVersion {
                    device_id: r.get(0)?,
                    venue_id: r.get(1)?,
                    name: r.get(2)?,
                    revoked: r.get(3)?,
                    app_version: r.get(4)?,
                    last_update: match (update_version, update_state.as_deref().and_then(state_from)) {
                        (Some(version), Some(state)) => Some(UpdateOutcome { version, state, detail: r.get(7)? }),
                        _ => None,
                    },
                    reported_at: r.get::<_, Option<Ts>>(8)?.map(|t| t.0),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
}
