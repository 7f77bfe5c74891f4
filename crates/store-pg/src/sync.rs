//! The server's side of sync on PostgreSQL: devices, uploaded events
//! (exactly once across instances), the change feed's rows and conflicts.
//!
//! A feed row travels as SQLite's `json_object` of its stored columns, so a
//! gate gets the same JSON from either engine and its replica (SQLite) binds
//! it unchanged: timestamps as ISO 8601 text with milliseconds, dates
//! `YYYY-MM-DD`, times `HH:MM:SS`, booleans 0/1, UUIDs as text, BYTEA as
//! upper-case hex (SQLite's `hex()`), JSON columns as their text.

use std::collections::HashMap;

use crate::conn::Tx;
use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, SubsecRound, Utc};
use postgres::types::Type;
use postgres::Row;
use serde_json::{Map, Value};

use crate::domain::sync::protocol::{
    sent_op, Change, ChangePage, DeviceInfo, Event, EventResult, EventStatus,
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
use crate::gate::write_use;
use crate::operators::require_operator;
use crate::reservations::reservation_of_ticket;
use crate::slots::{load_slot, update_slot_in};
use crate::tickets::{activate_in, load_ticket};
use crate::venues::{load_venue, require_venue};
use crate::{corrupt, db, ts, PgStore};
use entrada_store::{hash_token, random_token, Result, StoreError, SyncStore, TOKEN_PREFIX};

/// A synced table: its key (and the key's SQL type), the columns that
/// travel (never private keys), in SQLite's order.
struct Entity {
    table: &'static str,
    key: &'static str,
    key_type: &'static str,
    columns: &'static [&'static str],
}

const ENTITIES: &[Entity] = &[
    Entity {
        table: "venues",
        key: "id",
        key_type: "bigint",
        columns: &[
            "id",
            "orq",
            "name",
            "timezone",
            "early_grace_minutes",
            "late_grace_minutes",
            "created_at",
            "updated_at",
            "reentry_allowed",
            "walkup_lease_places",
            "no_show_release_minutes",
            "occupancy_limit",
            "closing_time",
        ],
    },
    Entity {
        table: "operators",
        key: "id",
        key_type: "bigint",
        columns: &[
            "id",
            "orq",
            "role",
            "display_name",
            "pin_hash",
            "created_at",
            "updated_at",
            "deactivated_at",
        ],
    },
    Entity {
        table: "org_settings",
        key: "orq",
        key_type: "bigint",
        columns: &["orq", "signed_codes_only", "updated_at"],
    },
    Entity {
        table: "signing_keys",
        key: "kid",
        key_type: "bigint",
        columns: &["kid", "orq", "public_key", "created_at", "retired_at"],
    },
    Entity {
        table: "reservation_slots",
        key: "id",
        key_type: "uuid",
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
    },
    Entity {
        table: "tickets",
        key: "ticket_code",
        key_type: "text",
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
            "left_at",
            "verified_gate",
        ],
    },
    Entity {
        table: "ticket_reservations",
        key: "id",
        key_type: "uuid",
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
            "no_show_at",
        ],
    },
    Entity {
        table: "sync_conflicts",
        key: "id",
        key_type: "bigint",
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
    },
];

fn entity(name: &str) -> Option<&'static Entity> {
    ENTITIES.iter().find(|e| e.table == name)
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// One column as SQLite stores it and `json_object` gives it back: an
/// integer, a string or null. Read once by [`cell`] and rendered either as
/// a [`Value`] (`changes_since`) or as JSON text (`changes_page_json`), so
/// the two pages cannot disagree on a column type.
enum Cell<'a> {
    Null,
    Int(i64),
    Str(std::borrow::Cow<'a, str>),
}

impl Cell<'_> {
    fn into_value(self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Int(n) => Value::from(n),
            Cell::Str(t) => Value::from(t.into_owned()),
        }
    }

    /// The text serde_json writes for [`Cell::into_value`]'s value.
    fn write(&self, out: &mut Vec<u8>) -> Result<()> {
        match self {
            Cell::Null => out.extend_from_slice(b"null"),
            Cell::Int(n) => {
                use std::io::Write as _;
                // Writing to a Vec cannot fail (it only grows); the error is
                // mapped rather than unwrapped to keep this free of panics.
                write!(out, "{n}").map_err(|e| corrupt("feed column", e))?;
            }
            Cell::Str(t) => write_json_str(out, t)?,
        }
        Ok(())
    }
}

/// Column `i` of `row` as the feed sends it (see [`Cell`]). No synced
/// column is INT4 (integers are BIGINT): a new type fails here, on both
/// pages alike, until it is given its SQLite form.
fn cell(row: &Row, i: usize) -> Result<Cell<'_>> {
    use std::borrow::Cow;
    let ty = row.columns()[i].type_();
    let bad = |e: postgres::Error| corrupt("feed column", e);
    let owned = |t: String| Cell::Str(Cow::Owned(t));
    Ok(match *ty {
        Type::INT8 => row
            .try_get::<_, Option<i64>>(i)
            .map_err(bad)?
            .map(Cell::Int),
        Type::TEXT | Type::VARCHAR => row
            .try_get::<_, Option<&str>>(i)
            .map_err(bad)?
            .map(|t| Cell::Str(Cow::Borrowed(t))),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)
            .map_err(bad)?
            .map(|b| Cell::Int(i64::from(b))),
        Type::TIMESTAMPTZ => row
            .try_get::<_, Option<DateTime<Utc>>>(i)
            .map_err(bad)?
            .map(|t| owned(t.to_rfc3339_opts(SecondsFormat::Millis, true))),
        Type::DATE => row
            .try_get::<_, Option<NaiveDate>>(i)
            .map_err(bad)?
            .map(|d| owned(d.format("%Y-%m-%d").to_string())),
        Type::TIME => row
            .try_get::<_, Option<NaiveTime>>(i)
            .map_err(bad)?
            .map(|t| owned(t.format("%H:%M:%S").to_string())),
        Type::UUID => row
            .try_get::<_, Option<uuid::Uuid>>(i)
            .map_err(bad)?
            .map(|u| owned(u.to_string())),
        Type::BYTEA => row
            .try_get::<_, Option<&[u8]>>(i)
            .map_err(bad)?
            .map(|b| owned(hex_upper(b))),
        // SQLite keeps JSON as the text serde_json wrote (parsed first:
        // PostgreSQL's own jsonb text spaces and orders it otherwise).
        Type::JSONB | Type::JSON => row
            .try_get::<_, Option<Value>>(i)
            .map_err(bad)?
            .map(|j| owned(j.to_string())),
        ref other => return Err(corrupt("feed column type", other)),
    }
    .unwrap_or(Cell::Null))
}

fn column_json(row: &Row, i: usize) -> Result<Value> {
    Ok(cell(row, i)?.into_value())
}

fn row_json(e: &Entity, row: &Row) -> Result<Value> {
    let mut map = Map::new();
    for (i, c) in e.columns.iter().enumerate() {
        map.insert((*c).to_owned(), column_json(row, i)?);
    }
    Ok(Value::Object(map))
}

/// A row made for the page: a [`Value`] (`changes_since`) or its JSON text
/// (`changes_page_json`, the route's answer).
type RowMaker<'a, T> = &'a dyn Fn(&Entity, &Row) -> Result<T>;

/// The rows of `ids` (text keys) of one entity, by key, in one query.
/// Keyed by the text asked for (the log's `entity_id`), not by the row's
/// key written back as text: a key the log writes otherwise than
/// PostgreSQL prints it (an upper-case UUID) still finds its row, and a row
/// not found is one that is not there, never one under another spelling
/// (`feed_page` sends a missing row as a delete).
fn rows_by_key<T>(
    tx: &mut Tx<'_>,
    orq: Orq,
    e: &Entity,
    ids: &[String],
    make: RowMaker<'_, T>,
) -> Result<HashMap<String, T>> {
    // One primary-key probe per key, whatever the planner thinks of the
    // table: `key = ANY(array)` was planned as a scan of the whole table
    // for a page of a first sync (tickets: 38-87 ms a page of 1,000-2,000
    // keys on 100,000 rows, against 3-15 ms), and a plain join on
    // `unnest` as a hash of the whole table once the page has 2,000
    // UUIDs (82-88 ms). The `LIMIT 1` (right only because `key` is the
    // table's primary key, so a key matches at most one row) keeps the
    // subquery from being flattened into such a join. The org is checked on
    // the row too, not only on its log entry: the second read of a missing
    // row (`settle_missing_rows`) pairs an entry of this org with whatever
    // holds that key by then.
    let cols: Vec<String> = e.columns.iter().map(|c| format!("t.{c}")).collect();
    let sql = format!(
        "SELECT {cols}, k.wanted FROM unnest($1::text[]) AS k(wanted) \
         CROSS JOIN LATERAL (SELECT * FROM {table} WHERE {key} = k.wanted::{ty} AND orq = $2 \
         LIMIT 1) t",
        cols = cols.join(", "),
        key = e.key,
        table = e.table,
        ty = e.key_type
    );
    let rows = tx.query(&sql, &[&ids, &orq.0]).map_err(db)?;
    rows.iter()
        .map(|r| Ok((r.get::<_, String>(e.columns.len()), make(e, r)?)))
        .collect()
}

/// `text` as serde_json writes a string (its escaping, so the bytes are a
/// `Value::String`'s).
/// (Cannot fail on a Vec and a `str`; the error is mapped, not unwrapped.)
fn write_json_str(out: &mut Vec<u8>, text: &str) -> Result<()> {
    serde_json::to_writer(&mut *out, text).map_err(|e| corrupt("feed text", e))
}

/// A row as the text `serde_json` writes for [`row_json`]'s object (keys in
/// its map's order, sorted), written straight from the columns: a first
/// sync's 200,000 rows each built as a map, then serialised, cost the
/// server about as much as reading them.
fn row_json_text(e: &Entity, row: &Row) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64 * e.columns.len());
    out.push(b'{');
    for (n, (i, key)) in sorted_columns(e).iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(key);
        cell(row, *i)?.write(&mut out)?;
    }
    out.push(b'}');
    Ok(out)
}

/// The indexes of `e`'s columns in the order a `serde_json::Map` keeps
/// them (sorted by name: the workspace's serde_json has no
/// `preserve_order`; `a_pages_json_text_is_the_serialised_page` fails if it
/// ever does), each with its key written once as JSON (`"name":`).
fn sorted_columns(e: &Entity) -> &'static [(usize, Vec<u8>)] {
    /// Per entity: (column index, `"name":`) in key order.
    type Sorted = Vec<Vec<(usize, Vec<u8>)>>;
    use std::sync::OnceLock;
    static SORTED: OnceLock<Sorted> = OnceLock::new();
    let all = SORTED.get_or_init(|| {
        ENTITIES
            .iter()
            .map(|e| {
                let mut order: Vec<usize> = (0..e.columns.len()).collect();
                order.sort_by_key(|&i| e.columns[i]);
                order
                    .into_iter()
                    .map(|i| {
                        let mut key = serde_json::to_vec(e.columns[i]).unwrap_or_default();
                        key.push(b':');
                        (i, key)
                    })
                    .collect()
            })
            .collect()
    });
    // Every `Entity` is one of ENTITIES (`entity` hands out references
    // into it); a scan of eight names a row is noise beside the row.
    let at = ENTITIES
        .iter()
        .position(|x| x.table == e.table)
        .expect("an entity of ENTITIES");
    &all[at]
}

/// The page's envelope as serde_json writes [`ChangePage`] (its fields in
/// their order, `reset` left out when false), the rows already text. It
/// must stay in step with `ChangePage`'s derive:
/// `tests::the_envelope_is_the_serialised_change_page` (no database needed)
/// builds a `ChangePage` field by field, so a new field fails to compile
/// there and a changed layout fails the test.
fn page_text(page: &FeedPage<Vec<u8>>, now: DateTime<Utc>) -> Result<Vec<u8>> {
    let text = |e: serde_json::Error| corrupt("feed page", e);
    let rows: usize = page
        .changes
        .iter()
        .map(|c| c.4.as_ref().map_or(4, Vec::len) + 96)
        .sum();
    let mut out = Vec::with_capacity(rows + 160);
    // `ChangePage`'s fields in their order (serde's derive writes them so).
    out.extend_from_slice(b"{\"changes\":[");
    for (n, (seq, entity, entity_id, op, row)) in page.changes.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"seq\":");
        serde_json::to_writer(&mut out, seq).map_err(text)?;
        out.extend_from_slice(b",\"entity\":");
        write_json_str(&mut out, entity)?;
        out.extend_from_slice(b",\"entity_id\":");
        write_json_str(&mut out, entity_id)?;
        out.extend_from_slice(b",\"op\":");
        write_json_str(&mut out, op)?;
        out.extend_from_slice(b",\"row\":");
        match row {
            Some(row) => out.extend_from_slice(row),
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"next_cursor\":");
    serde_json::to_writer(&mut out, &page.next_cursor).map_err(text)?;
    out.extend_from_slice(b",\"has_more\":");
    serde_json::to_writer(&mut out, &page.has_more).map_err(text)?;
    out.extend_from_slice(b",\"remaining\":");
    serde_json::to_writer(&mut out, &page.remaining).map_err(text)?;
    out.extend_from_slice(b",\"server_time\":");
    serde_json::to_writer(&mut out, &now).map_err(text)?;
    // `reset` is left out when false, and PostgreSQL's feed never resets.
    out.push(b'}');
    Ok(out)
}

/// One page of the feed with its rows made by a [`RowMaker`].
struct FeedPage<T> {
    /// seq, entity, entity id, op, row.
    changes: Vec<(i64, String, String, String, Option<T>)>,
    next_cursor: i64,
    has_more: bool,
    remaining: i64,
}

fn event_result(
    event: &Event,
    status: EventStatus,
    reason: Option<String>,
    facts: Option<Value>,
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

fn event_operator(tx: &mut Tx<'_>, orq: Orq, event: &Event) -> Result<Option<Operator>> {
    match event.operator_id {
        Some(id) => match require_operator(tx, orq, OperatorId(id)) {
            Ok(op) => Ok(Some(op)),
            Err(StoreError::Domain(DomainError::NotFound { .. })) => Ok(None),
            Err(e) => Err(e),
        },
        None => Ok(None),
    }
}

/// One device event, judged by `domain::upload` as SQLite's store does.
fn apply_event(
    tx: &mut Tx<'_>,
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
            // Locked: an instance verifying it online queues behind us (or we behind it).
            let ticket = load_ticket(tx, orq, &code, true)?;
            let reservation = match &ticket {
                Some(_) => reservation_of_ticket(tx, orq, &code)?,
                None => None,
            };
            // A released no-show may take a place back in its slot: its
            // count and this gate's lease are then read under the slot's lock
            // (after the ticket's, as a walk-up takes them).
            let released = reservation.as_ref().is_some_and(|r| r.no_show_at.is_some());
            let slot = match &reservation {
                Some(r) => load_slot(tx, orq, r.slot_id, released)?,
                None => None,
            };
            let leased = match &slot {
                Some(s) if released => crate::venue_ops::leased_places(tx, device.device_id, s.id)?,
                _ => 0,
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
                leased,
                lease_slot: crate::domain::upload::lease_slot_of(&event.payload),
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
            // A released no-show let in late takes its place back first
            // (`domain::no_show::place_back`): its reservation is live again.
            let mut reservation = reservation;
            if let (
                AdmissionOutcome::Applied {
                    place: Some(place), ..
                },
                Some(slot),
                Some(r),
            ) = (&outcome, &slot, reservation.as_mut())
            {
                crate::venue_ops::take_place_back(
                    tx,
                    orq,
                    device.device_id,
                    slot,
                    r.id,
                    *place,
                    now,
                )?;
                r.status = crate::domain::ReservationStatus::Reserved;
                r.no_show_at = None;
            }
            match outcome {
                AdmissionOutcome::Rejected(r) => Ok(reject(&r)),
                AdmissionOutcome::Applied { overruled, .. }
                | AdmissionOutcome::DoubleEntry { overruled } => {
                    admission.record(tx, &code, overruled, None)?;
                    match enter(ticket, reservation.as_ref(), at, operator.id) {
                        Entry::First(used) => {
                            write_use(tx, orq, &code, &used, Some(device.device_id), now)?;
                            crate::venue_ops::record_uploaded_entry(
                                tx,
                                device,
                                event,
                                &code,
                                operator.id,
                                at,
                                None,
                            )?;
                            Ok(event_result(event, EventStatus::Applied, None, None, now))
                        }
                        // Two people on one code: both walked in.
                        Entry::Again(again) => {
                            crate::venue_ops::record_uploaded_entry(
                                tx,
                                device,
                                event,
                                &code,
                                operator.id,
                                at,
                                Some("DOUBLE_ENTRY"),
                            )?;
                            admission.double_entry(tx, &code, again)
                        }
                    }
                }
                AdmissionOutcome::Conflict(verdict) => {
                    let reason = verdict.verdict.code();
                    // The gate showed ADMIT: the person is inside all the same.
                    crate::venue_ops::record_uploaded_entry(
                        tx,
                        device,
                        event,
                        &code,
                        operator.id,
                        at,
                        Some(reason),
                    )?;
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
            let slot = load_slot(tx, orq, id, true)?;
            if let Err(r) = judge_slot_change(actor, slot.as_ref(), venue) {
                return Ok(reject(&r));
            }
            match update_slot_in(tx, orq, id, change, now) {
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
        kind @ ("exit" | "reenter" | "walkup" | "undo") => {
            if let Err(r) = actor.check_optional() {
                return Ok(reject(&r));
            }
            let judged = match kind {
                "walkup" => crate::venue_ops::apply_walkup_event(tx, device, event, at, now)?,
                "undo" => crate::venue_ops::apply_undo_event(tx, device, event, at, now)?,
                _ => {
                    let direction = if kind == "exit" {
                        crate::domain::venue_ops::Direction::Out
                    } else {
                        crate::domain::venue_ops::Direction::In
                    };
                    crate::venue_ops::apply_passage_event(tx, device, event, direction, at, now)?
                }
            };
            match judged {
                Ok(result) => Ok(result),
                Err(e) => Ok(reject(&e.into())),
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
    at: DateTime<Utc>,
    now: DateTime<Utc>,
}

impl Admission<'_> {
    fn record(
        &self,
        tx: &mut Tx<'_>,
        code: &TicketCode,
        overruled: Option<VerdictCode>,
        refused: Option<&str>,
    ) -> Result<()> {
        tx.execute(
            "INSERT INTO verifications (orq, ticket_code, event_id, device_id, operator_id, verified_at, received_at, overruled, refused) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &self.device.orq,
                &code.as_str(),
                &self.event.event_id,
                &self.device.device_id,
                &self.operator.0,
                &ts(self.at),
                &ts(self.now),
                &overruled.map(VerdictCode::code),
                &refused,
            ],
        )
        .map_err(db)?;
        Ok(())
    }

    fn double_entry(
        &self,
        tx: &mut Tx<'_>,
        code: &TicketCode,
        again: DoubleEntry,
    ) -> Result<EventResult> {
        let first_at = again.recorded_at;
        let event = self.event;
        let first_device: Option<i64> = tx
            .query_opt(
                "SELECT device_id FROM verifications WHERE ticket_code = $1 AND verified_at = $2 \
                 AND event_id IS DISTINCT FROM $3 AND refused IS NULL ORDER BY id LIMIT 1",
                &[&code.as_str(), &ts(first_at), &event.event_id],
            )
            .map_err(db)?
            .and_then(|r| r.get(0));
        let mut first = (first_at, first_device, again.recorded_by.map(|o| o.0));
        let mut second = (self.at, Some(self.device.device_id), Some(self.operator.0));
        if again.replaces_record {
            tx.execute(
                // The earlier admission is this upload's: its device (the
                // token's, as in `write_use`) is the gate the row names now.
                "UPDATE tickets SET verified_at = $1, verified_by = $2, updated_at = $3, \
                 verified_gate = (SELECT name FROM devices WHERE id = $5 AND orq = $6) WHERE ticket_code = $4",
                &[&ts(self.at), &self.operator.0, &ts(self.now), &code.as_str(), &self.device.device_id, &self.device.orq],
            )
            .map_err(db)?;
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
             VALUES ($1, 'DOUBLE_ENTRY', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            &[&self.device.orq, &code.as_str(), &first.1, &first.2, &ts(first.0), &second.1, &second.2, &ts(second.0),
                &event.event_id, &ts(self.now), &self.device.venue_id, &facts],
        )
        .map_err(db)?;
        Ok(event_result(
            event,
            EventStatus::Conflict,
            Some("DOUBLE_ENTRY".into()),
            Some(facts),
            self.now,
        ))
    }

    fn refused(
        &self,
        tx: &mut Tx<'_>,
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
             VALUES ($1, $2, $3, NULL, NULL, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[&self.device.orq, &reason, &code.as_str(), &ts(server_since), &self.device.device_id, &self.operator.0, &ts(self.at),
                &event.event_id, &ts(self.now), &self.device.venue_id, &facts],
        )
        .map_err(db)?;
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
        "verify" | "activate" | "exit" | "reenter" | "walkup" | "undo" => {
            Some(("tickets", field("ticket_code")?))
        }
        "slot_change" => Some(("reservation_slots", field("slot_id")?)),
        _ => None,
    }
}

/// Sends a row again (it is unchanged on the server): its entry goes back to
/// pending, and the next pull numbers it after everything before.
fn resend(tx: &mut Tx<'_>, entity: &str, entity_id: &str) -> Result<()> {
    tx.execute(
        "UPDATE change_log SET seq = NULL, written = nextval('change_log_written') WHERE entity = $1 AND entity_id = $2",
        &[&entity, &entity_id],
    )
    .map_err(db)?;
    Ok(())
}

fn resend_reservation_of(tx: &mut Tx<'_>, ticket_code: &str) -> Result<()> {
    tx.execute(
        "UPDATE change_log SET seq = NULL, written = nextval('change_log_written') \
         WHERE entity = 'ticket_reservations' AND entity_id = (SELECT id::text FROM ticket_reservations WHERE ticket_id = $1)",
        &[&ticket_code],
    )
    .map_err(db)?;
    Ok(())
}

/// Advisory-lock class of "this device's batch is being applied" (the key:
/// the device id). One lock per uploaded batch, not one per event: a batch
/// of 500 events no longer takes 500 entries of the server's shared lock
/// table. A replay racing the first upload comes from the same device (a gate
/// uploads only its own outbox), so it waits for it and answers `duplicate`;
/// an event id forged by another device racing it is stopped by
/// `sync_events`' primary key (that batch fails and is retried: duplicate).
pub const DEVICE_BATCH_LOCK: i32 = 0x6261_7463; // 'batc'

impl PgStore {
    /// Revokes a device's token.
    pub(crate) fn revoke_device_in(
        &self,
        orq: Orq,
        device_id: i64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE devices SET revoked_at = $1 WHERE id = $2 AND orq = $3 AND revoked_at IS NULL",
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

impl SyncStore for PgStore {
    /// An online walk-up (`venue_ops::book_walkup_online_in`: the ticket's
    /// lock, then the candidate slots' in id order).
    fn book_walkup_online(
        &self,
        device: &DeviceInfo,
        raw: &[u8],
        now: DateTime<Utc>,
    ) -> Result<crate::domain::venue_ops::WalkupBooking> {
        use crate::signing::Screened;
        let now = now.trunc_subsecs(3);
        // Screened as a gate would (a superseded QR code books nothing).
        let code = match self.screen(Orq(device.orq), raw, now)? {
            Screened::Code(code) => code,
            // Authentic but unknown: the server holds every ticket.
            Screened::Refused(v) if v.verdict == crate::domain::VerdictCode::AuthenticNotSynced => {
                return Err(DomainError::NotFound { entity: "ticket" }.into())
            }
            Screened::Refused(v) => return Err(DomainError::Refused(v).into()),
        };
        self.write(|tx| crate::venue_ops::book_walkup_online_in(tx, device, &code, now))
    }

    /// A gate's walk-up leases during its sync
    /// (`venue_ops::refresh_leases_in`: under each slot's row lock).
    fn refresh_leases(
        &self,
        device: &DeviceInfo,
        pending: &[crate::domain::venue_ops::SlotPlaces],
        now: DateTime<Utc>,
    ) -> Result<Vec<crate::domain::venue_ops::SlotPlaces>> {
        let now = now.trunc_subsecs(3);
        self.write(|tx| crate::venue_ops::refresh_leases_in(tx, device, pending, now))
    }

    fn add_device(
        &self,
        orq: Orq,
        venue: VenueId,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, DeviceInfo)> {
        let name = crate::domain::venue::validate_name("name", name)?;
        let secret = random_token()?;
        let token = format!("dev_{}", secret.trim_start_matches(TOKEN_PREFIX));
        let id: i64 = self.write(|tx| {
            require_venue(tx, orq, venue)?;
            Ok(tx
                .query_one(
                    "INSERT INTO devices (orq, venue_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    &[&orq.0, &venue.0, &name, &hash_token(&token), &ts(now)],
                )
                .map_err(db)?
                .get(0))
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

    /// Issue 14: the device's public key, and its venue's other gates'.
    fn register_device_key(
        &self,
        device: &DeviceInfo,
        public_key: &str,
        _now: DateTime<Utc>,
    ) -> Result<Vec<crate::domain::sync::lan::PeerKey>> {
        use crate::domain::sync::lan::{parse_public_key, PeerKey};
        if parse_public_key(public_key).is_none() {
            return Err(DomainError::invalid(
                "public_key",
                "64 hex characters of an Ed25519 public key",
            )
            .into());
        }
        let key = public_key.to_ascii_lowercase();
        self.write(|tx| {
            // One live gate per key (unique index, migration 0009): another
            // gate's key is refused, not taken over.
            tx.execute(
                "UPDATE devices SET public_key = $1 WHERE id = $2 AND orq = $3 AND revoked_at IS NULL",
                &[&key, &device.device_id, &device.orq],
            )
            .map_err(|e| crate::on_constraint(e, DomainError::DuplicateDeviceKey))?;
            Ok(tx
                .query(
                    "SELECT id, name, public_key FROM devices WHERE orq = $1 AND venue_id = $2 AND id <> $3 \
                     AND revoked_at IS NULL AND public_key IS NOT NULL ORDER BY id LIMIT $4",
                    &[&device.orq, &device.venue_id, &device.device_id, &(entrada_store::MAX_PEERS as i64)],
                )
                .map_err(db)?
                .iter()
                .map(|r| PeerKey { device_id: r.get(0), name: r.get(1), public_key: r.get(2) })
                .collect())
        })
    }

    fn device_for_token(&self, token: &str) -> Result<Option<DeviceInfo>> {
        // One statement on its own: this runs before every device request.
        Ok(self
            .read_row(
                "SELECT id, orq, venue_id, name FROM devices WHERE token_hash = $1 AND revoked_at IS NULL",
                &[&hash_token(token.trim())],
            )?
            .map(|r| DeviceInfo { device_id: r.get(0), orq: r.get(1), venue_id: r.get(2), name: r.get(3) }))
    }

    /// Each event exactly once, across instances too: a device's batch is
    /// applied under its device's advisory lock ([`DEVICE_BATCH_LOCK`]), so
    /// a replay racing the first upload on another instance waits for it and
    /// answers `duplicate`.
    fn apply_events(
        &self,
        device: &DeviceInfo,
        events: &[Event],
        sent_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<EventResult>> {
        let now = now.trunc_subsecs(3);
        let offset = sent_at - now;
        self.write(|tx| {
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, $2::int)",
                &[&DEVICE_BATCH_LOCK, &(device.device_id as i32)],
            )
            .map_err(db)?;
            tx.execute(
                "UPDATE devices SET last_seen_at = $1, clock_offset_ms = $2 WHERE id = $3",
                &[&ts(now), &offset.num_milliseconds(), &device.device_id],
            )
            .map_err(db)?;
            let mut results = Vec::with_capacity(events.len());
            for event in events {
                let earlier = tx
                    .query_opt("SELECT result, received_at FROM sync_events WHERE event_id = $1", &[&event.event_id])
                    .map_err(db)?;
                if let Some(r) = earlier {
                    let first: Option<EventResult> = serde_json::from_value(r.get::<_, Value>(0)).ok();
                    results.push(EventResult {
                        event_id: event.event_id,
                        status: EventStatus::Duplicate,
                        reason: Some("ALREADY_APPLIED".into()),
                        facts: first.and_then(|f| serde_json::to_value(f).ok()),
                        received_at: r.get(1),
                    });
                    continue;
                }
                let at = event_time(event.device_time, offset, now).trunc_subsecs(3);
                let result = apply_event(tx, device, event, at, now)?;
                if matches!(result.status, EventStatus::Conflict | EventStatus::Rejected) {
                    if let Some((entity, id)) = event_entity(event) {
                        resend(tx, entity, &id)?;
                        if entity == "tickets" {
                            resend_reservation_of(tx, &id)?;
                        }
                    }
                }
                let stored = serde_json::to_value(&result).unwrap_or_else(|_| serde_json::json!({}));
                tx.execute(
                    "INSERT INTO sync_events (event_id, device_id, orq, kind, payload, device_time, received_at, result) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[&event.event_id, &device.device_id, &device.orq, &event.kind, &event.payload, &ts(event.device_time), &ts(now), &stored],
                )
                .map_err(db)?;
                results.push(result);
            }
            Ok(results)
        })
    }

    /// One page of the changes after `cursor` for a device of `venue`; the
    /// log and the rows are read in one snapshot, after at most a few
    /// batches of the entries of ended transactions were numbered
    /// (`sequence_feed`: the background numberer and later pulls number the
    /// rest; what is still pending comes in a later page, with a higher
    /// seq). `has_more` is exact (one entry more than the page is read)
    /// once the numbering caught up, and true while it has not; `remaining`
    /// is counted on a pull's first page and carried to the next page this
    /// instance answers (`FeedCounts`: for up to a minute; a page another
    /// instance answered before counts again), and counts numbered entries
    /// only.
    fn changes_since(
        &self,
        orq: Orq,
        venue: VenueId,
        cursor: i64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<ChangePage> {
        let page = self.feed_page(orq, venue, cursor, limit, &|e, r| row_json(e, r))?;
        let changes = page
            .changes
            .into_iter()
            .map(|(seq, entity, entity_id, op, row)| Change {
                seq,
                entity,
                entity_id,
                op,
                row,
            })
            .collect();
        Ok(ChangePage {
            changes,
            next_cursor: page.next_cursor,
            has_more: page.has_more,
            remaining: page.remaining,
            server_time: now,
            reset: false,
        })
    }

    /// `changes_since`'s page as the JSON text `serde_json` writes for it,
    /// each row written straight from its columns (no `Value` per row, no
    /// second walk to serialise it). The same bytes: see
    /// `a_pages_json_text_is_the_serialised_page`.
    fn changes_page_json(
        &self,
        orq: Orq,
        venue: VenueId,
        cursor: i64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>> {
        let page = self.feed_page(orq, venue, cursor, limit, &row_json_text)?;
        page_text(&page, now)
    }

    fn settle_feed(&self) -> Result<i64> {
        PgStore::settle_feed(self)
    }

    fn list_conflicts(&self, orq: Orq) -> Result<Vec<Value>> {
        self.list_conflicts_in(orq, None)
    }

    fn list_conflicts_in(&self, orq: Orq, venue: Option<VenueId>) -> Result<Vec<Value>> {
        let e = entity("sync_conflicts").ok_or_else(|| corrupt("entity", "sync_conflicts"))?;
        self.read(|tx| {
            let sql = format!(
                "SELECT {} FROM sync_conflicts \
                 WHERE orq = $1 AND ($2::BIGINT IS NULL OR venue_id = $2) ORDER BY id DESC",
                e.columns.join(", ")
            );
            tx.query(&sql, &[&orq.0, &venue.map(|v| v.0)])
                .map_err(db)?
                .iter()
                .map(|r| row_json(e, r))
                .collect()
        })
    }
}

impl PgStore {
    /// The page `changes_since` answers, its rows made by `make`. The
    /// page is exact (one entry more than the page is read) once the
    /// numbering caught up (`sequence_feed`; until then it has more, its
    /// cursor at the highest seq numbered when it is short); `remaining`
    /// is counted on a pull's first page and carried to the next page this
    /// instance answers (`FeedCounts`: for up to a minute; a page another
    /// instance answered before counts again).
    fn feed_page<T>(
        &self,
        orq: Orq,
        venue: VenueId,
        cursor: i64,
        limit: u32,
        make: RowMaker<'_, T>,
    ) -> Result<FeedPage<T>> {
        let caught_up = self.sequence_feed()?;
        let limit = i64::from(limit.clamp(1, 5000));
        let carried = self.feed_counts.take(orq, venue, cursor);
        let page = self.read(|tx| {
            let mut entries: Vec<(i64, String, String, String)> = tx
                .query(
                    "SELECT seq, entity, entity_id, op FROM ( \
                       (SELECT seq, entity, entity_id, op FROM change_log \
                        WHERE orq = $1 AND scope = 0 AND seq > $2 ORDER BY seq LIMIT $3) \
                       UNION ALL \
                       (SELECT seq, entity, entity_id, op FROM change_log \
                        WHERE orq = $1 AND scope = $4 AND seq > $2 ORDER BY seq LIMIT $3) \
                     ) page ORDER BY seq LIMIT $3",
                    &[&orq.0, &cursor, &(limit + 1), &venue.0],
                )
                .map_err(db)?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect();
            #[cfg(feature = "test-hooks")]
            if let Some(pause) = self.feed_page_pause.lock().unwrap().take() {
                pause();
            }
            let mut has_more = entries.len() as i64 > limit;
            entries.truncate(limit as usize);
            let taken = entries.len() as i64;
            let mut page: Vec<(i64, String, String, String)> = Vec::with_capacity(entries.len());
            for (seq, name, entity_id, op) in entries {
                let (name, entity_id, op) = match name.as_str() {
                    "scope_exit" => match entity_id.splitn(3, '/').collect::<Vec<_>>()[..] {
                        [_, entity, id] => (entity.to_string(), id.to_string(), "delete".to_string()),
                        _ => {
                            page.push((seq, String::new(), String::new(), String::new()));
                            continue;
                        }
                    },
                    _ => (name, entity_id, op),
                };
                page.push((seq, name, entity_id, op));
            }
            // The rows to send, one query per entity.
            let mut rows: HashMap<&str, HashMap<String, T>> = HashMap::new();
            for e in ENTITIES {
                let ids: Vec<String> = page
                    .iter()
                    .filter(|(_, n, _, op)| n == e.table && op == "upsert")
                    .map(|(_, _, id, _)| id.clone())
                    .collect();
                if !ids.is_empty() {
                    rows.insert(e.table, rows_by_key(tx, orq, e, &ids, make)?);
                }
            }
            // Each entry with its op as logged: an upsert whose row this
            // snapshot lacks is settled after it (below).
            let mut changes = Vec::with_capacity(page.len());
            let mut last_seq = None;
            for (seq, name, entity_id, op) in page {
                last_seq = Some(seq);
                let Some(e) = entity(&name) else { continue };
                let row = if op == "upsert" {
                    rows.get_mut(e.table).and_then(|m| m.remove(&entity_id))
                } else {
                    None
                };
                changes.push((seq, name, entity_id, op, row));
            }
            let mut next_cursor = last_seq.unwrap_or(cursor);
            // The highest seq this snapshot sees: entries numbered after it
            // are the ones a carried count has not seen yet.
            let top: i64 = tx
                .query_one("SELECT coalesce(max(seq), 0) FROM change_log", &[])
                .map_err(db)?
                .get(0);
            // The pull's numbering stopped at its bound with entries still
            // pending (`sequence_feed`): they get seqs above `top` later, so
            // there is more for this device even when its page is short (the
            // numbered ones may be another venue's or org's). The cursor
            // moves to `top`: a short page holds every entry of this device
            // up to it (one numberer at a time, each committing before the
            // next draws its seqs, so no entry at or below `top` commits
            // after this snapshot), and a page with more must move the
            // cursor (the gate refuses one that does not). A cursor at or
            // above `top` (not one this feed gave) is left as it was.
            if !caught_up && !has_more && top > cursor {
                has_more = true;
                next_cursor = top;
            }
            let remaining = if !has_more {
                0
            } else {
                match carried {
                    // The count of an earlier page of this pull, less what
                    // this page sent, plus what was numbered since (a row
                    // changed again during the pull may be counted twice:
                    // a progress bar's estimate, never below 1 here).
                    Some(c) => {
                        let since: i64 = tx
                            .query_one(
                                "SELECT (SELECT count(*) FROM change_log WHERE orq = $1 AND scope = 0 AND seq > $2) \
                                      + (SELECT count(*) FROM change_log WHERE orq = $1 AND scope = $3 AND seq > $2)",
                                &[&orq.0, &c.top, &venue.0],
                            )
                            .map_err(db)?
                            .get(0);
                        (c.remaining - taken + since).max(1)
                    }
                    // A cursor this instance has not answered: counted.
                    None => tx
                        .query_one(
                            "SELECT (SELECT count(*) FROM change_log WHERE orq = $1 AND scope = 0 AND seq > $2) \
                                  + (SELECT count(*) FROM change_log WHERE orq = $1 AND scope = $3 AND seq > $2)",
                            &[&orq.0, &next_cursor, &venue.0],
                        )
                        .map_err(db)?
                        .get::<_, i64>(0)
                        .max(1),
                }
            };
            Ok((FeedPage { changes, next_cursor, has_more, remaining }, top))
        });
        let (mut page, top) = page?;
        self.settle_missing_rows(orq, &mut page.changes, make)?;
        if page.has_more {
            self.feed_counts
                .put(orq, venue, page.next_cursor, page.remaining, top);
        }
        Ok(page)
    }

    /// The op each entry of a page goes out with (`sent_op`), once the
    /// upserts whose row the page's snapshot lacked were looked up again in
    /// a fresh transaction. TRUNCATE and the table-rewriting forms of ALTER
    /// TABLE are not MVCC-safe: a snapshot taken before they committed sees
    /// the table empty when it reads it after, so a page whose log read
    /// came before a TRUNCATE and reload (triggers off: nothing logged) or
    /// a migration's rewrite would find none of that table's rows, and a
    /// delete sent for a row that exists is one the gate keeps until the
    /// row is written again. The second snapshot starts after the first
    /// ended, so after any such DDL that committed while the page read: a
    /// row found there goes as an upsert with that row (a change after it
    /// is logged with a higher seq, a venue move leaves a `scope_exit`
    /// after it), and only a key missing from both is gone for good and
    /// goes as a delete. Missing rows are rare (a delete behind the
    /// triggers), so the second read is seldom made.
    fn settle_missing_rows<T>(
        &self,
        orq: Orq,
        changes: &mut [(i64, String, String, String, Option<T>)],
        make: RowMaker<'_, T>,
    ) -> Result<()> {
        let missing = |e: &Entity| -> Vec<String> {
            changes
                .iter()
                .filter(|(_, n, _, op, row)| n == e.table && op == "upsert" && row.is_none())
                .map(|(_, _, id, _, _)| id.clone())
                .collect()
        };
        if ENTITIES.iter().any(|e| !missing(e).is_empty()) {
            let mut again = self.read(|tx| {
                let mut rows: HashMap<&str, HashMap<String, T>> = HashMap::new();
                for e in ENTITIES {
                    let ids = missing(e);
                    if !ids.is_empty() {
                        rows.insert(e.table, rows_by_key(tx, orq, e, &ids, make)?);
                    }
                }
                Ok(rows)
            })?;
            for (_, name, entity_id, op, row) in changes.iter_mut() {
                if op == "upsert" && row.is_none() {
                    *row = again
                        .get_mut(name.as_str())
                        .and_then(|m| m.remove(entity_id.as_str()));
                }
            }
        }
        for (_, _, _, op, row) in changes.iter_mut() {
            // A row gone behind the triggers' back goes as a delete.
            *op = sent_op(std::mem::take(op), row.is_some());
        }
        Ok(())
    }

    /// Tests only: `pause` runs once, in the next feed page, after its
    /// change-log read and before its row reads (in that page's snapshot),
    /// so a test can commit something in between.
    #[cfg(feature = "test-hooks")]
    pub fn set_feed_page_pause(&self, pause: impl FnOnce() + Send + 'static) {
        *self.feed_page_pause.lock().unwrap() = Some(Box::new(pause));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_is_the_serialised_change_page() {
        let row = serde_json::json!({"a": "x\"\n é", "b": null, "c": -1});
        let now = "2025-11-25T10:00:00.123456Z".parse().unwrap();
        let page = ChangePage {
            changes: vec![
                Change {
                    seq: 7,
                    entity: "tickets".into(),
                    entity_id: "T-\"1".into(),
                    op: "upsert".into(),
                    row: Some(row.clone()),
                },
                Change {
                    seq: i64::MAX,
                    entity: "ticket_reservations".into(),
                    entity_id: "é".into(),
                    op: "delete".into(),
                    row: None,
                },
            ],
            next_cursor: i64::MAX,
            has_more: true,
            remaining: 3,
            server_time: now,
            reset: false,
        };
        let text = FeedPage {
            changes: page
                .changes
                .iter()
                .map(|c| {
                    let row = c.row.as_ref().map(|r| serde_json::to_vec(r).unwrap());
                    (
                        c.seq,
                        c.entity.clone(),
                        c.entity_id.clone(),
                        c.op.clone(),
                        row,
                    )
                })
                .collect(),
            next_cursor: page.next_cursor,
            has_more: page.has_more,
            remaining: page.remaining,
        };
        assert_eq!(
            String::from_utf8(page_text(&text, now).unwrap()).unwrap(),
            serde_json::to_string(&page).unwrap()
        );
    }
}
