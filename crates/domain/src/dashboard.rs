//! The console's live dashboard (issue 16): what a duty manager sees on a
//! busy morning, per organization, as of one instant. The store fills it
//! with a few indexed queries; the server pushes it over server-sent events
//! whenever it changes.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::Serialize;

use super::{SlotId, VenueId};

/// A gate that synced within this long is online.
pub const ONLINE_WITHIN_SECS: i64 = 120;
/// Admissions are counted per gate in buckets of this many seconds.
pub const BUCKET_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Dashboard {
    pub as_of: DateTime<Utc>,
    pub venues: Vec<VenueToday>,
    pub gates: Vec<GateStatus>,
}

/// One venue's day (its own calendar day, in its time zone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct VenueToday {
    pub venue_id: VenueId,
    pub name: String,
    pub date: NaiveDate,
    /// People inside now (entries minus exits today).
    pub inside: i64,
    pub occupancy_limit: Option<i64>,
    pub slots: Vec<SlotToday>,
    /// Entries per gate per 5 minutes today, in time order.
    pub admissions: Vec<AdmissionBucket>,
    /// Conflicts sync found at this venue today (since its midnight): per
    /// venue and per day like the rest, so a venue-bound caller's dashboard
    /// counts its venue's only. Conflicts are never closed, so the count is
    /// of those found, not of those still open.
    pub conflicts: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SlotToday {
    pub slot_id: SlotId,
    #[serde(with = "super::slot::hms")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "09:00:00"))]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub start_time: NaiveTime,
    #[serde(with = "super::slot::hms")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "12:00:00"))]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub end_time: NaiveTime,
    pub total_capacity: i64,
    pub booked_count: i64,
    pub admitted_count: i64,
    /// Reservations released as no-shows.
    pub no_show_count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AdmissionBucket {
    /// The gate device; None: admitted on the server itself (API or CLI).
    pub device_id: Option<i64>,
    pub bucket_start: DateTime<Utc>,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct GateStatus {
    pub device_id: i64,
    pub name: String,
    pub venue_id: VenueId,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub online: bool,
}

/// Whether a gate last seen at `last_seen` counts as online at `now`. A
/// clock ahead of the server's (a future `last_seen`) is online too.
pub fn gate_online(last_seen: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_seen.is_some_and(|seen| (now - seen).num_seconds() <= ONLINE_WITHIN_SECS)
}

/// The start of the 5-minute bucket `index` (seconds since the epoch / 300).
pub fn bucket_start(index: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(index.saturating_mul(BUCKET_SECS), 0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_gate_is_online_when_it_synced_within_two_minutes() {
        let now = Utc.with_ymd_and_hms(2025, 12, 1, 10, 0, 0).unwrap();
        let ago = |s: i64| Some(now - chrono::Duration::seconds(s));
        // (last seen, online)
        let cases = [
            (None, false),
            (ago(0), true),
            (ago(119), true),
            (ago(120), true),
            (ago(121), false),
            (ago(86_400), false),
            (ago(-30), true),
        ];
        for (seen, online) in cases {
            assert_eq!(gate_online(seen, now), online, "{seen:?}");
        }
    }

    #[test]
    fn buckets_start_on_five_minute_boundaries() {
        let at = Utc.with_ymd_and_hms(2025, 12, 1, 10, 7, 42).unwrap();
        let index = at.timestamp() / BUCKET_SECS;
        assert_eq!(
            bucket_start(index),
            Utc.with_ymd_and_hms(2025, 12, 1, 10, 5, 0).unwrap()
        );
        assert_eq!(bucket_start(0), DateTime::<Utc>::UNIX_EPOCH);
    }
}
