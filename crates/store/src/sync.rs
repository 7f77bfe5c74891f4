//! Sync, in SQL. Server side: device registration, the change feed, applying
//! pushed events exactly once, double-entry conflicts. Device side: pairing,
//! the outbox, applying pulled pages with their cursor in one transaction.

use chrono::{DateTime, SubsecRound, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use super::codec::{ts, Ts};
use super::column::Sql;
use super::reservations::reservation_of_ticket;
use super::slots::load_slot;
use super::tickets::{activate_in, load_ticket, write_use};
use super::tokens::hash_token;
use super::venues::load_venue;
use super::{Result, Store, StoreError};
use crate::domain::sync::protocol::{
    Change, ChangePage, DeviceInfo, Event, EventResult, EventStatus,
};
use crate::domain::{
    enter,
    slot::SlotChange,
    upload::{
        event_time, judge_admission, judge_slot_change, Actor, AdmissionOutcome, Rejection,
        UploadedAdmission,
    },
    DomainError, DoubleEntry, Entry, Operator, OperatorId, Orq, SlotId, SlotStatus, TicketCode,
    VenueId, VerdictCode, VerdictInput,
};

/// A synced table: its key and the columns that travel (never private keys).
struct Entity {
    table: &'static str,
    key: &'static str,
    columns: &'static [&'static str],
    /// BLOB columns travel as hex.
    blobs: &'static [&'static str],
}

const ENTITIES: &[Entity] = &[
    Entity {
        table: "venues",
        key: "id",
        columns: &[
            "id",
            "orq",
            "name",
            "timezone",
            "early_grace_minutes",
            "late_grace_minutes",
            "created_at",
            "updated_at",
        ],
        blobs: &[],
    },
    Entity {
        table: "operators",
        key: "id",
        columns: &[
            "id",
            "orq",
            "role",
            "display_name",
            "pin_hash",
            "created_at",
            "updated_at",
        ],
        blobs: &[],
    },
    Entity {
        table: "org_settings",
        key: "orq",
        columns: &["orq", "signed_codes_only", "updated_at"],
        blobs: &[],
    },
    Entity {
        table: "signing_keys",
        key: "kid",
        columns: &["kid", "orq", "public_key", "created_at", "retired_at"],
        blobs: &["public_key"],
    },
    Entity {
        table: "reservation_slots",
        key: "id",
        columns: &[
            "id",
            "date",
            "start_time",
            "end_time",
            "venue_id",
            "total_capacity",
            "booked_count",
            "status",
            "orq",
            "created_at",
            "updated_at",
        ],
        blobs: &[],
    },
    Entity {
        table: "tickets",
        key: "ticket_code",
        columns: &[
            "ticket_code",
            "orq",
            "order_id",
            "product_id",
            "user_id",
            "status",
            "entitlements",
            "expires_at",
            "created_at",
            "updated_at",
            "customer_email",
            "customer_phone",
            "reserved_at",
            "verified_at",
            "verified_by",
            "activation_status",
            "activated_at",
            "activation_mode",
            "code_serial",
        ],
        blobs: &[],
    },
    Entity {
        table: "ticket_reservations",
        key: "id",
        columns: &[
            "id",
            "ticket_id",
            "slot_id",
            "customer_email",
            "customer_phone",
            "reserved_at",
            "status",
            "orq",
            "created_at",
            "updated_at",
        ],
        blobs: &[],
    },
    Entity {
        table: "sync_conflicts",
        key: "id",
        columns: &[
            "id",
            "orq",
            "kind",
            "ticket_code",
            "first_device_id",
            "first_operator_id",
            "first_at",
            "second_device_id",
            "second_operator_id",
            "second_at",
            "second_event_id",
            "detected_at",
            "venue_id",
            "facts",
        ],
        blobs: &[],
    },
];

fn entity(name: &str) -> Option<&'static Entity> {
    ENTITIES.iter().find(|e| e.table == name)
}

fn select_json_sql(e: &Entity) -> String {
    let fields: Vec<String> = e
        .columns
        .iter()
        .map(|c| {
            if e.blobs.contains(c) {
                format!("'{c}', hex({c})")
            } else {
                format!("'{c}', {c}")
            }
        })
        .collect();
    format!(
        "SELECT json_object({}) FROM {} WHERE {} = ?1",
        fields.join(", "),
        e.table,
        e.key
    )
}

fn upsert_sql(e: &Entity) -> String {
    let params: Vec<String> = (1..=e.columns.len()).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT OR REPLACE INTO {} ({}) VALUES ({})",
        e.table,
        e.columns.join(", "),
        params.join(", ")
    )
}

/// A pulled row's values in `e.columns` order, bound directly (parsing the
/// JSON once in Rust rather than once per column in SQL).
fn row_values(e: &Entity, row: &serde_json::Value) -> Vec<rusqlite::types::Value> {
    use rusqlite::types::Value;
    e.columns
        .iter()
        .map(|c| match row.get(*c) {
            Some(serde_json::Value::String(text)) if e.blobs.contains(c) => {
                unhex(text).map_or(Value::Null, Value::Blob)
            }
            Some(serde_json::Value::String(text)) => Value::Text(text.clone()),
            Some(serde_json::Value::Number(n)) => match n.as_i64() {
                Some(i) => Value::Integer(i),
                None => n.as_f64().map_or(Value::Null, Value::Real),
            },
            Some(serde_json::Value::Bool(b)) => Value::Integer(i64::from(*b)),
            Some(other @ (serde_json::Value::Array(_) | serde_json::Value::Object(_))) => {
                Value::Text(other.to_string())
            }
            Some(serde_json::Value::Null) | None => Value::Null,
        })
        .collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A device's view of its own sync, for the app and `entrada sync`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SyncStatus {
    pub paired: bool,
    pub device_id: Option<i64>,
    pub orq: Option<i64>,
    pub venue_id: Option<i64>,
    pub server_url: Option<String>,
    pub cursor: i64,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub server_reachable: bool,
    pub pending: i64,
    pub rejected: i64,
    pub conflicts: i64,
    pub clock_offset_ms: Option<i64>,
    /// The device clock is more than 5 minutes off the server's.
    pub clock_suspect: bool,
}

/// A device's pairing: who it is and how it reaches the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pairing {
    pub info: DeviceInfo,
    pub server_url: String,
    pub token: String,
    pub cursor: i64,
}

/// An outbox entry as the device shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct OutboxEntry {
    pub event_id: uuid::Uuid,
    pub kind: String,
    pub entity_id: String,
    pub state: String,
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    pub device_time: DateTime<Utc>,
    pub server_received_at: Option<DateTime<Utc>>,
    pub attempts: u32,
}

/// The ticket the demo data set is recognised by (`demo::populate` makes it).
pub const DEMO_MARKER_TICKET: &str = "DEMO-ADMIT";

/// What an unpaired database holds, as far as pairing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalData {
    /// Paired already: a replica.
    Replica,
    /// Nothing: a new file.
    Empty,
    /// The standalone demo data set (and nothing that served as a server).
    Demo,
    /// Venues, operators or tickets that are not the demo's.
    Other,
    /// It has served as a server: API tokens, devices or received events.
    Server,
}

fn local_data(tx: &Transaction<'_>) -> Result<LocalData> {
    if is_device(tx)? {
        return Ok(LocalData::Replica);
    }
    let flag = |sql: &str| -> Result<bool> { Ok(tx.query_row(sql, [], |r| r.get(0))?) };
    if flag("SELECT EXISTS (SELECT 1 FROM api_tokens) OR EXISTS (SELECT 1 FROM devices) OR EXISTS (SELECT 1 FROM sync_events)")? {
        return Ok(LocalData::Server);
    }
    if !flag("SELECT EXISTS (SELECT 1 FROM tickets) OR EXISTS (SELECT 1 FROM venues) OR EXISTS (SELECT 1 FROM operators)")? {
        return Ok(LocalData::Empty);
    }
    let demo: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM tickets WHERE ticket_code = ?1)",
        [DEMO_MARKER_TICKET],
        |r| r.get(0),
    )?;
    Ok(if demo {
        LocalData::Demo
    } else {
        LocalData::Other
    })
}

/// On a device: deletes every row the change feed brought, except the ones
/// with a local change the server has not answered yet (it will).
fn drop_synced_rows(tx: &Transaction<'_>) -> Result<()> {
    for e in ENTITIES {
        tx.execute(
            &format!(
                "DELETE FROM {} WHERE CAST({} AS TEXT) NOT IN \
                 (SELECT entity_id FROM outbox WHERE state = 'pending' AND entity = ?1)",
                e.table, e.key
            ),
            [e.table],
        )?;
    }
    Ok(())
}

fn is_device(tx: &Transaction<'_>) -> Result<bool> {
    Ok(tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM device_identity)")?
        .query_row([], |r| r.get(0))?)
}

/// On a paired gate device, queues a local change for the server in the
/// caller's transaction. Elsewhere (the server) it does nothing.
pub(crate) fn record_local_event(
    tx: &Transaction<'_>,
    kind: &str,
    entity: &str,
    entity_id: &str,
    payload: serde_json::Value,
    operator: Option<OperatorId>,
    now: DateTime<Utc>,
) -> Result<()> {
    if !is_device(tx)? {
        return Ok(());
    }
    tx.prepare_cached(
        "INSERT INTO outbox (event_id, kind, entity, entity_id, payload, operator_id, device_time) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![uuid::Uuid::now_v7().to_string(), kind, entity, entity_id, payload.to_string(), Sql(operator), ts(now)])?;
    Ok(())
}

fn event_result(
    event: &Event,
    status: EventStatus,
    reason: Option<String>,
    facts: Option<serde_json::Value>,
    received_at: DateTime<Utc>,
) -> EventResult {
    EventResult {
        event_id: event.event_id,
        status,
        reason,
        facts,
        received_at,
    }
}

/// Loads the operator an event names (in the device's org only).
fn event_operator(tx: &Transaction<'_>, orq: Orq, event: &Event) -> Result<Option<Operator>> {
    match event.operator_id {
        Some(id) => match super::venues::require_operator(tx, orq, OperatorId(id)) {
            Ok(op) => Ok(Some(op)),
            Err(StoreError::Domain(DomainError::NotFound { .. })) => Ok(None),
            Err(e) => Err(e),
        },
        None => Ok(None),
    }
}

/// One device event on the server, judged by `domain::upload` against the
/// server's rows at `at` (the event's time on the server's clock). Rule
/// violations are `Rejected` results, refused admissions `Conflict`s, not
/// errors: only database failures abort the batch.
fn apply_event(
    tx: &Transaction<'_>,
    device: &DeviceInfo,
    event: &Event,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<EventResult> {
    let orq = Orq(device.orq);
    let venue = VenueId(device.venue_id);
    let reject = |r: &Rejection| {
        event_result(
            event,
            EventStatus::Rejected,
            Some(r.code().to_string()),
            Some(r.details()),
            now,
        )
    };
    let str_field = |name: &'static str| -> std::result::Result<String, DomainError> {
        event
            .payload
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| DomainError::invalid(name, "missing in event payload"))
    };
    let operator = event_operator(tx, orq, event)?;
    let actor = Actor {
        claimed: event.operator_id.map(OperatorId),
        found: operator.as_ref(),
    };
    match event.kind.as_str() {
        "verify" => {
            let code = match str_field("ticket_code").and_then(|c| TicketCode::parse(&c)) {
                Ok(c) => c,
                Err(e) => return Ok(reject(&e.into())),
            };
            let ticket = load_ticket(tx, orq, &code)?;
            let reservation = match &ticket {
                Some(_) => reservation_of_ticket(tx, orq, &code)?,
                None => None,
            };
            let slot = match &reservation {
                Some(r) => load_slot(tx, orq, r.slot_id)?,
                None => None,
            };
            let slot_venue = match &slot {
                Some(s) => load_venue(tx, orq, s.venue_id)?,
                None => None,
            };
            let overruled = event
                .payload
                .get("overruled")
                .and_then(|v| v.as_str())
                .and_then(VerdictCode::parse);
            let upload = UploadedAdmission {
                actor,
                rows: VerdictInput {
                    ticket: ticket.as_ref(),
                    reservation: reservation.as_ref(),
                    slot: slot.as_ref(),
                    venue: slot_venue.as_ref(),
                },
                overruled,
            };
            let outcome = judge_admission(&upload, at, venue);
            let (Some(ticket), Some(operator)) = (ticket.as_ref(), operator.as_ref()) else {
                return Ok(match outcome {
                    AdmissionOutcome::Rejected(r) => reject(&r),
                    _ => reject(&Rejection::Domain(DomainError::NotFound {
                        entity: "ticket",
                    })),
                });
            };
            let admission = Admission {
                device,
                event,
                operator: operator.id,
                at,
                now,
            };
            match outcome {
                AdmissionOutcome::Rejected(r) => Ok(reject(&r)),
                // The gate's transition (`domain::enter`), at the event's time:
                // used now, or a double entry where the earliest wins.
                AdmissionOutcome::Applied { overruled }
                | AdmissionOutcome::DoubleEntry { overruled } => {
                    admission.record(tx, &code, overruled, None)?;
                    match enter(ticket, reservation.as_ref(), at, operator.id) {
                        Entry::First(used) => {
                            write_use(tx, orq, &code, &used, now)?;
                            Ok(event_result(event, EventStatus::Applied, None, None, now))
                        }
                        Entry::Again(again) => admission.double_entry(tx, &code, again),
                    }
                }
                AdmissionOutcome::Conflict(verdict) => {
                    let reason = verdict.verdict.code();
                    admission.record(
                        tx,
                        &code,
                        overruled.filter(|c| c.needs_operator_decision()),
                        Some(reason),
                    )?;
                    admission.refused(tx, &code, ticket, reservation.as_ref(), &verdict)
                }
            }
        }
        "slot_change" => {
            let parsed = (|| -> std::result::Result<(SlotId, SlotChange), DomainError> {
                let id: SlotId = str_field("slot_id")?.parse()?;
                let total_capacity = event.payload.get("total_capacity").and_then(|v| v.as_i64());
                let status = match event.payload.get("status").and_then(|v| v.as_str()) {
                    Some(s) => Some(SlotStatus::parse(s)?),
                    None => None,
                };
                Ok((
                    id,
                    SlotChange {
                        total_capacity,
                        status,
                    },
                ))
            })();
            let (id, change) = match parsed {
                Ok(p) => p,
                Err(e) => return Ok(reject(&e.into())),
            };
            let slot = load_slot(tx, orq, id)?;
            if let Err(r) = judge_slot_change(actor, slot.as_ref(), venue) {
                return Ok(reject(&r));
            }
            match super::slots::update_slot_in(tx, orq, id, change, now, actor.claimed) {
                Ok(_) => Ok(event_result(event, EventStatus::Applied, None, None, now)),
                Err(StoreError::Domain(e)) => Ok(reject(&e.into())),
                Err(e) => Err(e),
            }
        }
        "activate" => {
            if let Err(r) = actor.check_optional() {
                return Ok(reject(&r));
            }
            let code = match str_field("ticket_code").and_then(|c| TicketCode::parse(&c)) {
                Ok(c) => c,
                Err(e) => return Ok(reject(&e.into())),
            };
            match activate_in(tx, orq, &code, at) {
                Ok(_) => Ok(event_result(event, EventStatus::Applied, None, None, now)),
                Err(StoreError::Domain(e)) => Ok(reject(&e.into())),
                Err(e) => Err(e),
            }
        }
        _ => Ok(reject(
            &DomainError::invalid("kind", "unknown event kind").into(),
        )),
    }
}

/// An uploaded admission being written: who, where, when.
struct Admission<'a> {
    device: &'a DeviceInfo,
    event: &'a Event,
    operator: OperatorId,
    /// The event's time on the server's clock.
    at: DateTime<Utc>,
    now: DateTime<Utc>,
}

impl Admission<'_> {
    /// The fact: this person was let in here (always recorded).
    fn record(
        &self,
        tx: &Transaction<'_>,
        code: &TicketCode,
        overruled: Option<VerdictCode>,
        refused: Option<&str>,
    ) -> Result<()> {
        tx.execute(
            "INSERT INTO verifications (orq, ticket_code, event_id, device_id, operator_id, verified_at, received_at, overruled, refused) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                self.device.orq,
                Sql(&code),
                self.event.event_id.to_string(),
                self.device.device_id,
                Sql(self.operator),
                ts(self.at),
                ts(self.now),
                overruled.map(VerdictCode::code),
                refused
            ],
        )?;
        Ok(())
    }

    /// The ticket was used already: a DOUBLE_ENTRY conflict, and the ticket
    /// records the earliest entry (`DoubleEntry::replaces_record`).
    fn double_entry(
        &self,
        tx: &Transaction<'_>,
        code: &TicketCode,
        again: DoubleEntry,
    ) -> Result<EventResult> {
        let first_at = again.recorded_at;
        let event = self.event;
        let first_device: Option<i64> = tx
            .query_row(
                "SELECT device_id FROM verifications WHERE ticket_code = ?1 AND verified_at = ?2 AND event_id IS NOT ?3 \
                 AND refused IS NULL ORDER BY id LIMIT 1",
                params![Sql(&code), ts(first_at), event.event_id.to_string()],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let mut first = (first_at, first_device, again.recorded_by.map(|o| o.0));
        let mut second = (self.at, Some(self.device.device_id), Some(self.operator.0));
        if again.replaces_record {
            tx.execute(
                "UPDATE tickets SET verified_at = ?1, verified_by = ?2, updated_at = ?3 WHERE ticket_code = ?4",
                params![ts(self.at), Sql(self.operator), ts(self.now), Sql(&code)],
            )?;
            std::mem::swap(&mut first, &mut second);
        }
        let facts = serde_json::json!({
            "kind": "DOUBLE_ENTRY", "ticket_code": code,
            "first_at": first.0, "first_device_id": first.1, "first_operator_id": first.2,
            "second_at": second.0, "second_device_id": second.1, "second_operator_id": second.2,
        });
        tx.execute(
            "INSERT INTO sync_conflicts (orq, kind, ticket_code, first_device_id, first_operator_id, first_at, second_device_id, \
             second_operator_id, second_at, second_event_id, detected_at, venue_id, facts) \
             VALUES (?1, 'DOUBLE_ENTRY', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![self.device.orq, Sql(&code), first.1, first.2, ts(first.0), second.1, second.2, ts(second.0),
                event.event_id.to_string(), ts(self.now), self.device.venue_id, facts.to_string()],
        )?;
        Ok(event_result(
            event,
            EventStatus::Conflict,
            Some("DOUBLE_ENTRY".into()),
            Some(facts),
            self.now,
        ))
    }

    /// An admission the server would have refused: a conflict with the
    /// refusal as its reason and both sides' facts. The ticket and its
    /// reservation stay as the server had them ("first": the server's state,
    /// as of its last change; "second": the gate's admission).
    fn refused(
        &self,
        tx: &Transaction<'_>,
        code: &TicketCode,
        ticket: &crate::domain::Ticket,
        reservation: Option<&crate::domain::Reservation>,
        verdict: &crate::domain::Verdict,
    ) -> Result<EventResult> {
        let event = self.event;
        let reason = verdict.verdict.code();
        let server_since =
            reservation.map_or(ticket.updated_at, |r| r.updated_at.max(ticket.updated_at));
        let facts = serde_json::json!({
            "kind": reason,
            "ticket_code": code,
            "gate": {
                "device_id": self.device.device_id,
                "venue_id": self.device.venue_id,
                "operator_id": self.operator,
                "at": self.at,
                "device_time": event.device_time,
                "claimed_venue_id": event.payload.get("venue_id"),
                "overruled": event.payload.get("overruled"),
            },
            "server": {
                "verdict": verdict,
                "ticket_status": ticket.status.as_str(),
                "activation_status": ticket.activation_status.as_str(),
                "reservation_status": reservation.map(|r| r.status.as_str()),
                "since": server_since,
            },
        });
        tx.execute(
            "INSERT INTO sync_conflicts (orq, kind, ticket_code, first_device_id, first_operator_id, first_at, second_device_id, \
             second_operator_id, second_at, second_event_id, detected_at, venue_id, facts) \
             VALUES (?1, ?2, ?3, NULL, NULL, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![self.device.orq, reason, Sql(&code), ts(server_since), self.device.device_id, Sql(self.operator), ts(self.at),
                event.event_id.to_string(), ts(self.now), self.device.venue_id, facts.to_string()],
        )?;
        Ok(event_result(
            event,
            EventStatus::Conflict,
            Some(reason.into()),
            Some(facts),
            self.now,
        ))
    }
}

/// The row an event changes, as the change log names it.
fn event_entity(event: &Event) -> Option<(&'static str, String)> {
    let field = |name: &str| {
        event
            .payload
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    match event.kind.as_str() {
        "verify" | "activate" => Some(("tickets", field("ticket_code")?)),
        "slot_change" => Some(("reservation_slots", field("slot_id")?)),
        _ => None,
    }
}

/// Moves a row's change-log entry to the end of the sequence, so every device
/// pulls the row again (it is unchanged on the server).
fn resend(tx: &Transaction<'_>, entity: &str, entity_id: &str) -> Result<()> {
    tx.prepare_cached(
        "UPDATE change_log SET seq = (SELECT max(seq) + 1 FROM change_log) WHERE entity = ?1 AND entity_id = ?2",
    )?
    .execute(params![entity, entity_id])?;
    Ok(())
}

/// Sends a ticket's reservation row again (see [`resend`]).
fn resend_reservation_of(tx: &Transaction<'_>, ticket_code: &str) -> Result<()> {
    tx.prepare_cached(
        "UPDATE change_log SET seq = (SELECT max(seq) + 1 FROM change_log) \
         WHERE entity = 'ticket_reservations' AND entity_id = (SELECT id FROM ticket_reservations WHERE ticket_id = ?1)",
    )?
    .execute([ticket_code])?;
    Ok(())
}

impl Store {
    // ---- server side ----

    /// Registers a gate device; returns its token (shown once).
    pub fn add_device(
        &self,
        orq: Orq,
        venue: VenueId,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, DeviceInfo)> {
        let name = crate::domain::venue::validate_name("name", name)?;
        let token = format!("dev_{}", super::tokens::random_hex()?);
        let id = self.write(|tx| {
            super::venues::require_venue(tx, orq, venue)?;
            tx.execute(
                "INSERT INTO devices (orq, venue_id, name, token_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![Sql(orq), Sql(venue), name, hash_token(&token), ts(now)],
            )?;
            Ok(tx.last_insert_rowid())
        })?;
        Ok((
            token,
            DeviceInfo {
                device_id: id,
                orq: orq.0,
                venue_id: venue.0,
                name,
            },
        ))
    }

    pub fn device_for_token(&self, token: &str) -> Result<Option<DeviceInfo>> {
        self.read(|tx| {
            Ok(tx
                .prepare_cached("SELECT id, orq, venue_id, name FROM devices WHERE token_hash = ?1 AND revoked_at IS NULL")?
                .query_row([hash_token(token.trim())], |r| {
                    Ok(DeviceInfo { device_id: r.get(0)?, orq: r.get(1)?, venue_id: r.get(2)?, name: r.get(3)? })
                })
                .optional()?)
        })
    }

    pub fn revoke_device(&self, orq: Orq, device_id: i64, now: DateTime<Utc>) -> Result<()> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE devices SET revoked_at = ?1 WHERE id = ?2 AND orq = ?3 AND revoked_at IS NULL",
                params![ts(now), device_id, Sql(orq)],
            )?;
            if n == 0 {
                return Err(DomainError::NotFound { entity: "device" }.into());
            }
            Ok(())
        })
    }

    /// One page of the changes after `cursor` that a device of `venue`
    /// receives: the org-wide rows (operators, signing keys) and its venue's
    /// (the venue row, its slots, the reservations on them and their tickets,
    /// its gates' conflicts), read in the same snapshot as the log. A row that
    /// left the venue's scope (a reservation moved elsewhere, its ticket)
    /// comes as a delete. A cursor from before the feed was scoped answers a
    /// `reset` page from the start: the device drops what it holds first.
    pub fn changes_since(
        &self,
        orq: Orq,
        venue: VenueId,
        cursor: i64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<ChangePage> {
        let limit = limit.clamp(1, 5000);
        self.read(|tx| {
            let scoped_from: i64 = tx
                .prepare_cached("SELECT scoped_from FROM change_feed")?
                .query_row([], |r| r.get(0))
                .optional()?
                .unwrap_or(0);
            let reset = cursor > 0 && cursor < scoped_from;
            let cursor = if reset { 0 } else { cursor };
            // Two index ranges (org-wide, this venue), merged in seq order.
            let mut log = tx.prepare_cached(
                "SELECT seq, entity, entity_id, op FROM ( \
                   SELECT * FROM (SELECT seq, entity, entity_id, op FROM change_log WHERE orq = ?1 AND scope = 0 AND seq > ?2 ORDER BY seq LIMIT ?3) \
                   UNION ALL \
                   SELECT * FROM (SELECT seq, entity, entity_id, op FROM change_log WHERE orq = ?1 AND scope = ?4 AND seq > ?2 ORDER BY seq LIMIT ?3) \
                 ) ORDER BY seq LIMIT ?3",
            )?;
            let entries: Vec<(i64, String, String, String)> = log
                .query_map(params![Sql(orq), cursor, limit, Sql(venue)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut changes = Vec::with_capacity(entries.len());
            let mut last_seq = None;
            for (seq, name, entity_id, op) in entries {
                last_seq = Some(seq);
                let (name, entity_id, op) = match name.as_str() {
                    // `venue/entity/id`: the row left this venue.
                    "scope_exit" => match entity_id.splitn(3, '/').collect::<Vec<_>>()[..] {
                        [_, entity, id] => (entity.to_string(), id.to_string(), "delete".to_string()),
                        _ => continue,
                    },
                    _ => (name, entity_id, op),
                };
                let Some(e) = entity(&name) else { continue };
                let row = if op == "upsert" {
                    let json: Option<String> = tx.prepare_cached(&select_json_sql(e))?.query_row([&entity_id], |r| r.get(0)).optional()?;
                    json.map(|j| serde_json::from_str(&j)).transpose().map_err(|_| StoreError::Db(rusqlite::Error::InvalidQuery))?
                } else {
                    None
                };
                changes.push(Change { seq, entity: name, entity_id, op, row });
            }
            let next_cursor = match last_seq {
                Some(seq) => seq,
                // A reset with nothing to send still leaves the old cursor behind.
                None if reset => scoped_from,
                None => cursor,
            };
            let remaining: i64 = tx
                .prepare_cached(
                    "SELECT (SELECT count(*) FROM change_log WHERE orq = ?1 AND scope = 0 AND seq > ?2) \
                          + (SELECT count(*) FROM change_log WHERE orq = ?1 AND scope = ?3 AND seq > ?2)",
                )?
                .query_row(params![Sql(orq), next_cursor, Sql(venue)], |r| r.get(0))?;
            Ok(ChangePage { changes, next_cursor, has_more: remaining > 0, remaining, server_time: now, reset })
        })
    }

    /// Applies a device's events, each exactly once: a replayed event id
    /// answers `duplicate` with the first answer's facts.
    pub fn apply_events(
        &self,
        device: &DeviceInfo,
        events: &[Event],
        sent_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<EventResult>> {
        let now = now.trunc_subsecs(3);
        // The device's clock against the server's, measured on this batch.
        let offset = sent_at - now;
        self.write(|tx| {
            tx.execute(
                "UPDATE devices SET last_seen_at = ?1, clock_offset_ms = ?2 WHERE id = ?3",
                params![ts(now), offset.num_milliseconds(), device.device_id],
            )?;
            let mut results = Vec::with_capacity(events.len());
            for event in events {
                let earlier: Option<(String, Ts)> = tx
                    .prepare_cached("SELECT result, received_at FROM sync_events WHERE event_id = ?1")?
                    .query_row([event.event_id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                if let Some((result, received_at)) = earlier {
                    let first: Option<EventResult> = serde_json::from_str(&result).ok();
                    results.push(EventResult {
                        event_id: event.event_id,
                        status: EventStatus::Duplicate,
                        reason: Some("ALREADY_APPLIED".into()),
                        facts: first.and_then(|f| serde_json::to_value(f).ok()),
                        received_at: received_at.0,
                    });
                    continue;
                }
                let at = event_time(event.device_time, offset, now).trunc_subsecs(3);
                let result = apply_event(tx, device, event, at, now)?;
                if matches!(result.status, EventStatus::Conflict | EventStatus::Rejected) {
                    // The device kept its own version of this row while the
                    // event was pending (and skipped the server's in pulls):
                    // send the server's row again so the replica converges.
                    if let Some((entity, id)) = event_entity(event) {
                        resend(tx, entity, &id)?;
                        if entity == "tickets" {
                            // Its admission also marked the reservation.
                            resend_reservation_of(tx, &id)?;
                        }
                    }
                }
                tx.prepare_cached(
                    "INSERT INTO sync_events (event_id, device_id, orq, kind, payload, device_time, received_at, result) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    event.event_id.to_string(),
                    device.device_id,
                    device.orq,
                    event.kind,
                    event.payload.to_string(),
                    ts(event.device_time),
                    ts(now),
                    serde_json::to_string(&result).unwrap_or_else(|_| "{}".into()),
                ])?;
                results.push(result);
            }
            Ok(results)
        })
    }

    /// Conflicts of the org (double entries, admissions the server would have
    /// refused), newest first (for supervisors).
    pub fn list_conflicts(&self, orq: Orq) -> Result<Vec<serde_json::Value>> {
        let e = entity("sync_conflicts").ok_or(StoreError::Db(rusqlite::Error::InvalidQuery))?;
        self.read(|tx| {
            let sql =
                select_json_sql(e).replace(" WHERE id = ?1", " WHERE orq = ?1 ORDER BY id DESC");
            let mut stmt = tx.prepare(&sql)?;
            let rows = stmt.query_map([Sql(orq)], |r| r.get::<_, String>(0))?;
            rows.map(|j| Ok(serde_json::from_str(&j?).unwrap_or_default()))
                .collect()
        })
    }

    // ---- device side ----

    /// Makes this database the replica of a paired device. From now on its
    /// local changes go to the outbox.
    ///
    /// - Already paired (a new URL, or a new token after a revocation): the
    ///   replica and its outbox are kept, pending events are delivered under
    ///   the new device. Another org's token is refused. A token of another
    ///   venue drops the synced rows and starts the feed over (a gate holds
    ///   its own venue's rows only).
    /// - Never paired: a new file, or the standalone demo, whose rows are
    ///   deleted in the transaction that pairs (a demo ticket must not admit
    ///   at a real gate; a failure leaves them as they were). The device's
    ///   own settings stay. Anything else is refused, never wiped: a
    ///   database that served as a server (`SERVER_DATABASE`) or holds data
    ///   that is not the demo's (`LOCAL_DATA`).
    ///
    /// Returns whether local data was replaced.
    pub fn pair(&self, info: &DeviceInfo, server_url: &str, token: &str) -> Result<bool> {
        self.write_without_foreign_keys(|tx| {
            let existing: Option<(i64, i64)> =
                tx.query_row("SELECT orq, venue_id FROM device_identity", [], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
            if let Some((orq, venue)) = existing {
                if orq != info.orq {
                    return Err(DomainError::invalid(
                        "token",
                        format!("this database holds org {orq}'s data; use a new database file for org {}", info.orq),
                    )
                    .into());
                }
                tx.execute(
                    "UPDATE device_identity SET device_id = ?1, venue_id = ?2, name = ?3, server_url = ?4, token = ?5, \
                     last_error = NULL",
                    params![info.device_id, info.venue_id, info.name, server_url, token],
                )?;
                if venue != info.venue_id {
                    // Another venue's gate now: what this one held is not
                    // its to keep, and the new venue's rows come from the start.
                    drop_synced_rows(tx)?;
                    tx.execute("UPDATE device_identity SET cursor = 0", [])?;
                    return Ok(true);
                }
                return Ok(false);
            }
            match local_data(tx)? {
                LocalData::Empty | LocalData::Demo => {}
                LocalData::Server => return Err(StoreError::ServerDatabase),
                LocalData::Other | LocalData::Replica => return Err(StoreError::LocalData),
            }
            let tables: Vec<String> = tx
                .prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
                     AND name NOT IN ('device_settings', 'change_log') ORDER BY name",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut replaced = false;
            for table in tables {
                replaced |= tx.execute(&format!("DELETE FROM \"{table}\""), [])? > 0;
            }
            // Last: the deletes above logged themselves through the triggers.
            tx.execute("DELETE FROM change_log", [])?;
            tx.execute(
                "INSERT INTO device_identity (id, device_id, orq, venue_id, name, server_url, token) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)",
                params![info.device_id, info.orq, info.venue_id, info.name, server_url, token],
            )?;
            Ok(replaced)
        })
    }

    /// What this database holds, as far as pairing it is concerned: only an
    /// empty file or the standalone demo becomes a gate's replica.
    pub fn local_data(&self) -> Result<LocalData> {
        self.read(local_data)
    }

    /// The device's own settings (camera, kiosk, auto-lock), by key.
    pub fn device_settings(&self) -> Result<std::collections::BTreeMap<String, String>> {
        self.read(|tx| {
            let mut stmt = tx.prepare("SELECT key, value FROM device_settings")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    pub fn set_device_setting(&self, key: &str, value: &str) -> Result<()> {
        if key.is_empty() || key.len() > 64 {
            return Err(DomainError::invalid("key", "1 to 64 characters").into());
        }
        self.write(|tx| {
            tx.execute(
                "INSERT INTO device_settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
    }

    pub fn pairing(&self) -> Result<Option<Pairing>> {
        self.read(|tx| {
            Ok(tx
                .query_row("SELECT device_id, orq, venue_id, name, server_url, token, cursor FROM device_identity", [], |r| {
                    Ok(Pairing {
                        info: DeviceInfo { device_id: r.get(0)?, orq: r.get(1)?, venue_id: r.get(2)?, name: r.get(3)? },
                        server_url: r.get(4)?,
                        token: r.get(5)?,
                        cursor: r.get(6)?,
                    })
                })
                .optional()?)
        })
    }

    /// Applies one pulled page and stores its cursor in the same transaction,
    /// so an interrupted pull resumes exactly where it stopped. Rows with a
    /// local change the server has not acknowledged yet are left alone.
    pub fn apply_change_page(
        &self,
        page: &ChangePage,
        clock_offset_ms: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        // Rows arrive in change order, not dependency order (a slot updated
        // after its reservations comes after them): foreign keys are checked
        // by the server, not by the replica.
        self.write_without_foreign_keys(|tx| {
            let mut applied = 0;
            if page.reset {
                drop_synced_rows(tx)?;
            }
            // Most pages meet an empty outbox: then no row needs the check.
            let any_pending: bool =
                tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM outbox WHERE state = 'pending')")?.query_row([], |r| r.get(0))?;
            for change in &page.changes {
                let Some(e) = entity(&change.entity) else { continue };
                if any_pending {
                    let pending: bool = tx
                        .prepare_cached("SELECT EXISTS (SELECT 1 FROM outbox WHERE state = 'pending' AND entity = ?1 AND entity_id = ?2)")?
                        .query_row(params![change.entity, change.entity_id], |r| r.get(0))?;
                    if pending {
                        continue;
                    }
                }
                match (&*change.op, &change.row) {
                    ("upsert", Some(row)) => {
                        tx.prepare_cached(&upsert_sql(e))?.execute(rusqlite::params_from_iter(row_values(e, row)))?;
                    }
                    _ => {
                        tx.prepare_cached(&format!("DELETE FROM {} WHERE {} = ?1", e.table, e.key))?.execute([&change.entity_id])?;
                    }
                }
                applied += 1;
            }
            tx.execute(
                "UPDATE device_identity SET cursor = ?1, last_sync_at = ?2, server_reachable = 1, last_error = NULL, \
                 clock_offset_ms = coalesce(?3, clock_offset_ms)",
                params![page.next_cursor, ts(now), clock_offset_ms],
            )?;
            Ok(applied)
        })
    }

    /// Pending outbox events, oldest first, with their retry state.
    pub fn pending_events(&self) -> Result<Vec<(Event, crate::domain::sync::plan::PendingEvent)>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT event_id, kind, payload, operator_id, device_time, attempts, next_attempt_at FROM outbox WHERE state = 'pending' ORDER BY event_id",
            )?;
            let rows = stmt.query_map([], |r| {
                let id: String = r.get(0)?;
                let payload: String = r.get(2)?;
                Ok((id, r.get::<_, String>(1)?, payload, r.get::<_, Option<i64>>(3)?, r.get::<_, Ts>(4)?, r.get::<_, u32>(5)?, r.get::<_, Option<Ts>>(6)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, kind, payload, operator_id, device_time, attempts, next) = row?;
                let Ok(event_id) = uuid::Uuid::parse_str(&id) else { continue };
                let event = Event {
                    event_id,
                    kind,
                    payload: serde_json::from_str(&payload).unwrap_or_default(),
                    operator_id,
                    device_time: device_time.0,
                };
                out.push((event, crate::domain::sync::plan::PendingEvent { event_id, attempts, next_attempt_at: next.map(|t| t.0) }));
            }
            Ok(out)
        })
    }

    /// Records the server's answers; each answered event leaves `pending`.
    pub fn record_event_results(&self, results: &[EventResult]) -> Result<()> {
        self.write(|tx| {
            for r in results {
                tx.prepare_cached(
                    "UPDATE outbox SET state = ?1, result = ?2, server_received_at = ?3, attempts = attempts + 1 WHERE event_id = ?4 AND state = 'pending'",
                )?
                .execute(params![
                    match r.status {
                        // A replay of an event applied before: its first answer counts.
                        EventStatus::Duplicate => r
                            .facts
                            .as_ref()
                            .and_then(|f| f.get("status"))
                            .and_then(|s| s.as_str())
                            .filter(|s| ["applied", "conflict", "rejected"].contains(s))
                            .unwrap_or("duplicate")
                            .to_string(),
                        other => other.as_str().to_string(),
                    },
                    serde_json::to_string(r).unwrap_or_default(),
                    ts(r.received_at),
                    r.event_id.to_string()
                ])?;
            }
            Ok(())
        })
    }

    /// After a failed push: schedule the retry and remember why.
    pub fn record_sync_failure(
        &self,
        event_ids: &[uuid::Uuid],
        error: &str,
        reachable: bool,
        now: DateTime<Utc>,
        jitter: f64,
    ) -> Result<()> {
        self.write(|tx| {
            for id in event_ids {
                let attempts: u32 = tx.query_row("SELECT attempts FROM outbox WHERE event_id = ?1", [id.to_string()], |r| r.get(0)).unwrap_or(0);
                let next = now + crate::domain::sync::plan::backoff(attempts, jitter);
                tx.execute(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?1 WHERE event_id = ?2 AND state = 'pending'",
                    params![ts(next), id.to_string()],
                )?;
            }
            tx.execute(
                "UPDATE device_identity SET last_error = ?1, last_attempt_at = ?2, server_reachable = ?3",
                params![error, ts(now), reachable],
            )?;
            Ok(())
        })
    }

    pub fn record_sync_attempt(
        &self,
        now: DateTime<Utc>,
        clock_offset_ms: Option<i64>,
    ) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE device_identity SET last_attempt_at = ?1, server_reachable = 1, clock_offset_ms = coalesce(?2, clock_offset_ms)",
                params![ts(now), clock_offset_ms],
            )?;
            Ok(())
        })
    }

    pub fn sync_status(&self) -> Result<SyncStatus> {
        self.read(|tx| {
            let counts = |state: &str| -> Result<i64> {
                Ok(tx.prepare_cached("SELECT count(*) FROM outbox WHERE state = ?1")?.query_row([state], |r| r.get(0))?)
            };
            let (pending, rejected) = (counts("pending")?, counts("rejected")?);
            let conflicts: i64 = tx.query_row("SELECT count(*) FROM sync_conflicts", [], |r| r.get(0))?;
            let identity = tx
                .query_row(
                    "SELECT device_id, orq, venue_id, server_url, cursor, last_sync_at, last_attempt_at, last_error, server_reachable, clock_offset_ms FROM device_identity",
                    [],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, Option<Ts>>(5)?,
                            r.get::<_, Option<Ts>>(6)?,
                            r.get::<_, Option<String>>(7)?,
                            r.get::<_, bool>(8)?,
                            r.get::<_, Option<i64>>(9)?,
                        ))
                    },
                )
                .optional()?;
            Ok(match identity {
                None => SyncStatus {
                    paired: false, device_id: None, orq: None, venue_id: None, server_url: None, cursor: 0, last_sync_at: None,
                    last_attempt_at: None, last_error: None, server_reachable: false, pending, rejected, conflicts, clock_offset_ms: None, clock_suspect: false,
                },
                Some((device_id, orq, venue_id, url, cursor, last_sync, last_attempt, last_error, reachable, offset)) => SyncStatus {
                    paired: true,
                    device_id: Some(device_id),
                    orq: Some(orq),
                    venue_id: Some(venue_id),
                    server_url: Some(url),
                    cursor,
                    last_sync_at: last_sync.map(|t| t.0),
                    last_attempt_at: last_attempt.map(|t| t.0),
                    last_error,
                    server_reachable: reachable,
                    pending,
                    rejected,
                    conflicts,
                    clock_offset_ms: offset,
                    clock_suspect: offset.is_some_and(crate::domain::sync::plan::clock_suspect),
                },
            })
        })
    }

    /// The outbox, newest first: what the device did and what the server said.
    pub fn outbox(&self, limit: u32) -> Result<Vec<OutboxEntry>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT event_id, kind, entity_id, state, result, device_time, server_received_at, attempts FROM outbox ORDER BY event_id DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit], |r| {
                Ok(OutboxEntry {
                    event_id: uuid::Uuid::parse_str(&r.get::<_, String>(0)?).unwrap_or_default(),
                    kind: r.get(1)?,
                    entity_id: r.get(2)?,
                    state: r.get(3)?,
                    result: r.get::<_, Option<String>>(4)?.and_then(|s| serde_json::from_str(&s).ok()),
                    device_time: r.get::<_, Ts>(5)?.0,
                    server_received_at: r.get::<_, Option<Ts>>(6)?.map(|t| t.0),
                    attempts: r.get(7)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::types::Value;

    #[test]
    fn pulled_rows_bind_in_column_order_with_blobs_unhexed() {
        let keys = entity("signing_keys").unwrap();
        let row = serde_json::json!({
            "kid": 3, "orq": 1, "public_key": "00ff10", "created_at": "2025-12-01T00:00:00.000Z", "retired_at": null
        });
        assert_eq!(
            row_values(keys, &row),
            vec![
                Value::Integer(3),
                Value::Integer(1),
                Value::Blob(vec![0x00, 0xff, 0x10]),
                Value::Text("2025-12-01T00:00:00.000Z".into()),
                Value::Null
            ]
        );
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
        assert_eq!(upsert_sql(keys), "INSERT OR REPLACE INTO signing_keys (kid, orq, public_key, created_at, retired_at) VALUES (?1, ?2, ?3, ?4, ?5)");
    }
}
