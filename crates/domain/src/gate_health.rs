//! What the console's Gates page shows per gate (issue 16): what the server
//! recorded of each device — its last upload (last seen, clock offset, the
//! count of events it said it still had to send), the version it reported,
//! the conflicts it took part in — and who may see which gates.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One gate device as the server knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct GateHealth {
    pub device_id: i64,
    pub venue_id: i64,
    pub name: String,
    pub revoked: bool,
    /// The app version it last reported (None: never reported).
    pub app_version: Option<String>,
    /// Its last upload of events (None: never uploaded).
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Its clock minus the server's at that upload, in milliseconds.
    pub clock_offset_ms: Option<i64>,
    /// How many events it said it still had to upload after its last batch
    /// (None: it never said: an app older than this report).
    pub pending_uploads: Option<i64>,
    pub pending_reported_at: Option<DateTime<Utc>>,
    /// Double entries and refused admissions it took part in.
    pub conflicts: i64,
}

/// The gates a caller may see or revoke: all of its org's for an org-wide
/// token, only its venue's for a venue-bound one.
pub fn in_scope(gate: &GateHealth, venue: Option<i64>) -> bool {
    venue.is_none_or(|bound| gate.venue_id == bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_venue_bound_caller_sees_its_venues_gates_only() {
        let gate = GateHealth {
            device_id: 1,
            venue_id: 10,
            name: "g".into(),
            revoked: false,
            app_version: None,
            last_seen_at: None,
            clock_offset_ms: None,
            pending_uploads: None,
            pending_reported_at: None,
            conflicts: 0,
        };
        for (venue, seen) in [(None, true), (Some(10), true), (Some(20), false)] {
            assert_eq!(in_scope(&gate, venue), seen, "{venue:?}");
        }
    }
}
