//! What travels between a gate device and the server.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One row change, in the server's sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Change {
    pub seq: i64,
    /// Table name: tickets, ticket_reservations, reservation_slots, venues,
    /// operators, signing_keys, sync_conflicts. A device receives the
    /// org-wide rows and its own venue's only.
    pub entity: String,
    pub entity_id: String,
    /// `upsert` (with `row`, always an object) or `delete`. A server never
    /// sends an upsert without its row: an entry whose row is gone goes as
    /// a delete (`sent_op`).
    pub op: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub row: Option<serde_json::Value>,
}

/// The op a server sends a change-log entry with, once it has looked for
/// the entry's row: the logged op, except an `upsert` whose row is gone,
/// which goes as a `delete`. The log names a row a trigger saw written;
/// a DELETE the triggers did not see (triggers disabled, a TRUNCATE, a
/// restore by hand) leaves its entry an upsert with no row to send. A gate
/// refuses an upsert without a row (it cannot tell a lost row from a
/// broken server), which stopped its pulls at that entry for good; the row
/// is gone from the server, so a delete is what makes the gate converge.
/// The one rule of both servers (SQLite's `changes_since`, PostgreSQL's
/// `feed_page`). `row_found` means the row is not there at all: SQLite
/// reads log and rows in one snapshot that DDL cannot empty; PostgreSQL,
/// where a TRUNCATE or a table rewrite makes a table look empty to an
/// older snapshot, looks a missing row up again in a fresh snapshot first
/// (`settle_missing_rows`), and only a row missing from both is not found.
pub fn sent_op(logged: String, row_found: bool) -> String {
    if logged == "upsert" && !row_found {
        "delete".to_owned()
    } else {
        logged
    }
}

/// Its JSON layout is also written by hand by the PostgreSQL store
/// (`page_text` in store-pg's sync.rs, for speed): a field added or a serde
/// attribute changed here must be made there too (its test
/// `the_envelope_is_the_serialised_change_page` fails until it is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangePage {
    pub changes: Vec<Change>,
    /// Give this back as `cursor` for the next page.
    pub next_cursor: i64,
    /// Whether changes may be left after this page: ask again while true.
    /// False means none is left. True may come with nothing left for this
    /// device while a PostgreSQL server is still numbering a bulk import
    /// (a page numbers a bounded share of it; the entries it numbered may
    /// all be another venue's): the next page then says so.
    pub has_more: bool,
    /// How many changes are left after this page, for progress bars: an
    /// estimate (on the first page of a pull it is exact once the server's
    /// numbering caught up; before that it counts numbered entries only);
    /// 0 exactly when `has_more` is false, at least 1 while it is true.
    pub remaining: i64,
    pub server_time: DateTime<Utc>,
    /// The device's cursor predates the venue-scoped feed (it may hold other
    /// venues' rows): drop every synced row, then apply this page, which
    /// starts from the beginning.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset: bool,
}

/// A change made at a gate, pushed to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// UUID v7, made on the device; the server applies each id once.
    pub event_id: uuid::Uuid,
    /// `verify`, `slot_change` or `activate`.
    pub kind: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub payload: serde_json::Value,
    pub operator_id: Option<i64>,
    /// The device's clock when the change was made.
    pub device_time: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    pub events: Vec<Event>,
    /// The device's clock when it sent the batch (for its clock offset).
    pub sent_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    Applied,
    /// Already applied before (a replay): nothing changed now.
    Duplicate,
    /// Applied as a fact, but it collides with another device's (double entry).
    Conflict,
    /// Not applied, with a reason; retrying will not help.
    Rejected,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::Conflict => "conflict",
            Self::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventResult {
    pub event_id: uuid::Uuid,
    pub status: EventStatus,
    pub reason: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub facts: Option<serde_json::Value>,
    /// When the server first received this event.
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventResults {
    pub results: Vec<EventResult>,
    pub server_time: DateTime<Utc>,
}

/// Who a device token belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceInfo {
    pub device_id: i64,
    pub orq: i64,
    pub venue_id: i64,
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::sent_op;

    #[test]
    fn an_upsert_whose_row_is_gone_is_sent_as_a_delete() {
        assert_eq!(sent_op("upsert".into(), true), "upsert");
        assert_eq!(sent_op("upsert".into(), false), "delete");
        assert_eq!(sent_op("delete".into(), false), "delete");
        // Any other op is the server's own (a newer one's): left as logged.
        assert_eq!(sent_op("frobnicate".into(), false), "frobnicate");
    }
}
