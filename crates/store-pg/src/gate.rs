//! The door: the verdict for a plain code (validate), the verification that
//! records it exactly once across instances (verify), and whether a ticket
//! may reserve.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::conn::{prefixed, qualified, Columns, Prefixed, Tx};
use chrono::{DateTime, SubsecRound, Utc};
use postgres::types::ToSql;

use crate::domain::signed::{self, Presented, Screening};
use crate::domain::{
    enter, gate_verdict, DomainError, Entry, Gate, OperatorId, Orq, Reservation, Slot, Ticket,
    TicketCode, TicketUse, Venue, VenueId, Verdict, VerdictCode, VerdictInput,
};
use crate::reservations::{reservation, reservation_of_ticket, RESERVATION_COLUMNS};
use crate::slots::{load_slot, slot, SLOT_COLUMNS};
use crate::tickets::{load_ticket, ticket, TICKET_COLUMNS};
use crate::venues::{venue, VENUE_COLUMNS};
use crate::{corrupt, db, ts, PgStore};
use entrada_store::{GateStore, HandOff, OrgSettings, Pending, Result, StoreError};

pub(crate) fn verdict_in(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
    gate: &Gate,
    now: DateTime<Utc>,
) -> Result<Verdict> {
    let ticket = load_ticket(tx, orq, code, false)?;
    Ok(verdict_on(tx, orq, code, ticket.as_ref(), gate, now)?.0)
}

/// `verdict_in` on a ticket already read; with the reservation it read.
fn verdict_on(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
    ticket: Option<&Ticket>,
    gate: &Gate,
    now: DateTime<Utc>,
) -> Result<(Verdict, Option<Reservation>)> {
    let door = match ticket {
        Some(_) => door_rows(tx, orq, code)?,
        None => (None, None, None),
    };
    verdict_with(tx, orq, code, ticket, door, gate, now)
}

/// `verdict_on` with the ticket's door rows already read.
fn verdict_with(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
    ticket: Option<&Ticket>,
    (reservation, slot, venue): DoorRows,
    gate: &Gate,
    now: DateTime<Utc>,
) -> Result<(Verdict, Option<Reservation>)> {
    let mut verdict = gate_verdict(
        VerdictInput {
            ticket,
            reservation: reservation.as_ref(),
            slot: slot.as_ref(),
            venue: venue.as_ref(),
        },
        now,
        gate,
    );
    if verdict.ticket_code.is_none() {
        verdict.ticket_code = Some(code.to_string());
    }
    // Another venue's gate names are not a venue-bound caller's to read
    // (ALREADY_VERIFIED comes before WRONG_VENUE).
    if verdict.verdict == VerdictCode::AlreadyVerified && gate.sees_gates_of(verdict.venue_id) {
        // The device that uploaded the admission, as its token named it
        // (SQLite's `verdict_in`; the server has no outbox or LAN log).
        let recorded: Option<String> = tx
            .query_opt(VERIFIED_GATE, &[&code.as_str(), &orq.0])
            .map_err(db)?
            .and_then(|r| r.get(0));
        verdict.verified_gate = crate::domain::sync::lan::admitting_gate(
            verdict.verified_at,
            verdict.verified_by.map(|o| o.0),
            recorded.as_deref(),
            &[],
        )
        .map(str::to_owned);
    }
    Ok((verdict, reservation))
}

/// The device name an admission was uploaded with (`verdict_with`). In a
/// verify batch it runs with the batch's generic-plan settings
/// (`GENERIC_PLANS`), so it is in `verify_batch_sql` and its plan test.
const VERIFIED_GATE: &str = "SELECT verified_gate FROM tickets WHERE ticket_code = $1 AND orq = $2";

/// A ticket's reservation, with its slot and the slot's venue (each of
/// this org): one statement, where they were three look-ups.
///
/// The org is checked as `r.orq + 0`, which no index serves: the row is found
/// by its ticket (a unique key) whatever the statistics say. With `r.orq =
/// $2` the planner, without statistics (a bulk import not yet analyzed),
/// sometimes started from the org-only index and read every reservation of
/// the org (`WRITE_ENTRIES` says more).
///
/// The slot and the venue are each read by a `LATERAL` subquery that
/// `OFFSET 0` keeps from being merged into the join: its own plan, made for
/// one row's `slot_id` (`venue_id`), can only look that row up by its key.
/// As plain joins, a batch's generic plan (`GENERIC_PLANS`) made while the
/// deployment had one slot and one venue (analyzed) read each of those
/// tables whole through an index with no condition (the same cost as by
/// key at one row), and would have kept doing so as they grew.
static DOOR_ROWS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {}, {}, {} FROM ticket_reservations r \
         LEFT JOIN LATERAL (SELECT * FROM reservation_slots s \
         WHERE s.id = r.slot_id AND s.orq + 0 = r.orq OFFSET 0) s ON true \
         LEFT JOIN LATERAL (SELECT * FROM venues v \
         WHERE v.id = s.venue_id AND v.orq + 0 = r.orq OFFSET 0) v ON true \
         WHERE r.ticket_id = $1 AND r.orq + 0 = $2",
        prefixed(RESERVATION_COLUMNS, "r", "r_"),
        prefixed(SLOT_COLUMNS, "s", "s_"),
        prefixed(VENUE_COLUMNS, "v", "v_"),
    )
});

type DoorRows = (Option<Reservation>, Option<Slot>, Option<Venue>);

/// What a verdict reads beside the ticket: its reservation, the
/// reservation's slot, the slot's venue (`None` where the one before is
/// missing). In a write, call it once the ticket is locked: every writer of
/// a ticket's reservation locks the ticket first, so this statement (a
/// snapshot taken after the lock) sees their outcome.
fn door_rows(tx: &mut Tx<'_>, orq: Orq, code: &TicketCode) -> Result<DoorRows> {
    match tx
        .query_opt(DOOR_ROWS.as_str(), &[&code.as_str(), &orq.0])
        .map_err(db)?
    {
        Some(row) => door_row(&row),
        None => Ok((None, None, None)),
    }
}

/// One row of `DOOR_ROWS` (or `DOOR_ROWS_OF`) as its three parts.
fn door_row(row: &postgres::Row) -> Result<DoorRows> {
    let part = |prefix| Prefixed { row, prefix };
    let (r, s, v) = (part("r_"), part("s_"), part("v_"));
    let slot = match s.get::<_, Option<uuid::Uuid>>("id") {
        Some(_) => Some(slot(&s)?),
        None => None,
    };
    let venue = match v.get::<_, Option<i64>>("id") {
        Some(_) => Some(venue(&v)?),
        None => None,
    };
    Ok((Some(reservation(&r)?), slot, venue))
}

/// A released no-show's verdict on the server, as SQLite's `no_show_place`
/// says it (the server holds no lease): amber `NO_SHOW_RELEASED` while the
/// slot has a free place to take back, else a red `NO_PLACE_LEFT`
/// (`domain::no_show::place_back`, `without_place`). Other verdicts pass.
pub(crate) fn no_show_place(tx: &mut Tx<'_>, orq: Orq, verdict: Verdict) -> Result<Verdict> {
    if verdict.verdict != VerdictCode::NoShowReleased {
        return Ok(verdict);
    }
    let (Some(slot_id), Some(_)) = (verdict.slot_id, verdict.reservation_id) else {
        return Ok(verdict);
    };
    let Some(slot) = load_slot(tx, orq, slot_id, false)? else {
        return Ok(verdict);
    };
    let place = crate::domain::no_show::place_back(0, &slot);
    Ok(crate::domain::no_show::without_place(verdict, place))
}

/// The org's settings (the defaults until an admin sets one).
pub(crate) fn org_settings_in(tx: &mut Tx<'_>, orq: Orq) -> Result<OrgSettings> {
    let row = tx
        .query_opt(
            "SELECT signed_codes_only, updated_at FROM org_settings WHERE orq = $1",
            &[&orq.0],
        )
        .map_err(db)?;
    Ok(org_settings(
        orq,
        row.as_ref().map(|r| r.get(0)),
        row.map(|r| r.get(1)),
    ))
}

/// An org's settings from its `org_settings` row's columns, `None` where it
/// has no row: the defaults (plain codes accepted).
fn org_settings(
    orq: Orq,
    signed_codes_only: Option<bool>,
    updated_at: Option<DateTime<Utc>>,
) -> OrgSettings {
    OrgSettings {
        orq,
        signed_codes_only: signed_codes_only.unwrap_or(false),
        updated_at,
    }
}

/// A plain code's screening (`domain::signed::screen_code`): the refusal to
/// show if the org takes signed codes only or the code was re-issued.
fn screen_plain(tx: &mut Tx<'_>, orq: Orq, code: &TicketCode) -> Result<Option<Verdict>> {
    let serial = tx
        .query_opt(
            "SELECT code_serial FROM tickets WHERE ticket_code = $1 AND orq = $2",
            &[&code.as_str(), &orq.0],
        )
        .map_err(db)?
        .map(|r| code_serial(r.get(0)))
        .transpose()?;
    screen_serial(tx, orq, code, serial)
}

fn code_serial(serial: i64) -> Result<u32> {
    u32::try_from(serial).map_err(|e| corrupt("code serial", e))
}

/// `screen_plain` with the code's serial already read (`None`: no such
/// ticket).
fn screen_serial(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
    serial: Option<u32>,
) -> Result<Option<Verdict>> {
    let settings = org_settings_in(tx, orq)?;
    Ok(screen_with(&settings, code, serial))
}

/// `signed::screen_code` for a plain code under `settings`.
fn screen_with(settings: &OrgSettings, code: &TicketCode, serial: Option<u32>) -> Option<Verdict> {
    match signed::screen_code(Presented::Plain(code), serial, settings.policy()) {
        Screening::Refuse(v) => Some(*v),
        Screening::Judge | Screening::NotSynced => None,
    }
}

/// Writes a ticket's first entry as `domain::enter` decided it, and its
/// reservation's. `device`: the device whose upload this is (the caller's
/// authenticated device token, never a field of the event), whose name the
/// row then carries to the venue's gates (`verified_gate`); None for an
/// admission made at the server itself.
pub(crate) fn write_use(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
    used: &TicketUse,
    device: Option<i64>,
    now: DateTime<Utc>,
) -> Result<()> {
    write_entry(tx, orq, code, used, device, None, now)
}

/// `write_use`, and the entry's passage (direction `in`) into `passage`'s
/// venue by its operator when given: one statement, the ticket's
/// UPDATE, its reservation's and the passage's INSERT as parts of one `WITH`
/// (each written as decided in Rust; the SQL only writes the values).
///
/// Each part must write exactly its one row, else the statement is an error
/// (and the caller's transaction rolls back): the ticket still unused and the
/// reservation still `RESERVED` (the only status `enter` writes one from) and
/// still this ticket's, as they were read under the ticket's lock. A row
/// changed since shows up as 0 rows written, never as an overwrite.
fn write_entry(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
    used: &TicketUse,
    device: Option<i64>,
    passage: Option<(VenueId, OperatorId)>,
    now: DateTime<Utc>,
) -> Result<()> {
    let (verified_at, activated_at, now) = (ts(used.verified_at), ts(used.activated_at), ts(now));
    let (status, activation, code) = (
        used.status.as_str(),
        used.activation_status.as_str(),
        code.as_str(),
    );
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &verified_at,
        &used.verified_by.0,
        &status,
        &activation,
        &activated_at,
        &now,
        &code,
        &orq.0,
        &device,
    ];
    let mut sql = String::from(
        "WITH t AS (UPDATE tickets SET verified_at = $1, verified_by = $2, status = $3, \
         activation_status = $4, activated_at = $5, updated_at = $6, \
         verified_gate = (SELECT name FROM devices WHERE id = $9 AND orq = $8) \
         WHERE ticket_code = $7 AND orq = $8 AND verified_at IS NULL RETURNING 1)",
    );
    let mut counts = String::from(" SELECT (SELECT count(*) FROM t)");
    let reservation = used.reservation.map(|(id, status)| (id.0, status.as_str()));
    if let Some((id, status)) = &reservation {
        let n = params.len();
        sql.push_str(&format!(
            ", r AS (UPDATE ticket_reservations SET status = ${}, updated_at = $6 \
             WHERE id = ${} AND orq = $8 AND ticket_id = $7 AND status = 'RESERVED' RETURNING 1)",
            n + 1,
            n + 2
        ));
        params.extend([status as &(dyn ToSql + Sync), id]);
        counts.push_str(", (SELECT count(*) FROM r)");
    }
    let passage = passage.map(|(venue, operator)| (venue.0, operator.0));
    if let Some((venue, operator)) = &passage {
        let n = params.len();
        sql.push_str(&format!(
            ", p AS (INSERT INTO passages (orq, venue_id, ticket_code, direction, at, operator_id) \
             VALUES ($8, ${}, $7, 'in', $6, ${}) RETURNING 1)",
            n + 1,
            n + 2
        ));
        params.extend([venue as &(dyn ToSql + Sync), operator]);
        counts.push_str(", (SELECT count(*) FROM p)");
    }
    sql.push_str(&counts);
    let row = tx.query_one(&sql, &params).map_err(db)?;
    let written = |i: usize| row.get::<_, i64>(i);
    let mut i = 0;
    let mut expect = |what: &str| {
        let n = written(i);
        i += 1;
        match n {
            1 => Ok(()),
            n => Err(StoreError::Engine(format!(
                "ticket {code}'s entry wrote {n} {what} rows, not 1: changed under its lock"
            ))),
        }
    };
    expect("ticket")?;
    if reservation.is_some() {
        expect("reservation")?;
    }
    if passage.is_some() {
        expect("passage")?;
    }
    Ok(())
}

/// The verification itself, in the caller's write transaction (the ticket
/// row locked first): the rules' verdict, and an ADMIT written exactly once.
pub(crate) fn verify_in(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
    operator: OperatorId,
    gate: &Gate,
    now: DateTime<Utc>,
) -> Result<Verdict> {
    let ticket = load_ticket(tx, orq, code, true)?;
    verify_locked(tx, orq, code, ticket, operator, gate, now)
}

/// `verify_in` once this transaction holds the ticket's lock and has read
/// it (`ticket`): the verdict and the entry are decided on the same rows,
/// each read once (the ticket's lock keeps them: every writer of a
/// ticket's reservation locks the ticket first).
fn verify_locked(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
    ticket: Option<Ticket>,
    operator: OperatorId,
    gate: &Gate,
    now: DateTime<Utc>,
) -> Result<Verdict> {
    let (verdict, entry) = decide_locked(tx, orq, code, ticket, None, operator, gate, now)?;
    // The same statement as a batch's admissions (one SQL text for both).
    write_entries(tx, orq, &[(code, entry, now)])?;
    Ok(verdict)
}

/// An admission decided (`domain::enter`), to be written.
struct EntryWrite {
    used: TicketUse,
    passage: Option<(VenueId, OperatorId)>,
}

/// `verify_locked`'s decision, nothing written: the verdict to answer once
/// `entry` is written, or the refusal.
#[allow(clippy::too_many_arguments)]
fn decide_locked(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
    ticket: Option<Ticket>,
    door: Option<DoorRows>,
    operator: OperatorId,
    gate: &Gate,
    now: DateTime<Utc>,
) -> Result<(Verdict, EntryWrite)> {
    let (verdict, reservation) = match door {
        Some(door) => verdict_with(tx, orq, code, ticket.as_ref(), door, gate, now)?,
        None => verdict_on(tx, orq, code, ticket.as_ref(), gate, now)?,
    };
    let mut verdict = no_show_place(tx, orq, verdict)?;
    if !verdict.admit {
        return Err(DomainError::Refused(Box::new(verdict)).into());
    }
    let ticket = ticket.ok_or(DomainError::NotFound { entity: "ticket" })?;
    let entry = match enter(&ticket, reservation.as_ref(), now, operator) {
        Entry::First(used) => EntryWrite {
            used,
            passage: verdict.venue_id.or(gate.venue_id).map(|v| (v, operator)),
        },
        // An admitted ticket is unused: only a verdict computed on other rows says otherwise.
        Entry::Again(_) => return Err(DomainError::TicketRedeemed.into()),
    };
    verdict.verified_at = Some(now);
    verdict.verified_by = Some(operator);
    Ok((verdict, entry))
}

/// `write_entry` for verify-ticket's admissions (distinct tickets of one
/// org, no device; a batch's, or a lone verification's one): the tickets'
/// UPDATE, their reservations' and the passages' INSERT as one statement
/// over the decided values (`unnest`), so a batch writes with one statement
/// planned once, and both paths with one SQL text. As `write_entry`, each part must
/// write exactly the rows decided (the tickets unused, the reservations
/// still `RESERVED` and their tickets'), else the statement is an error and
/// the batch rolls back.
///
/// The org is a column of `v` (`v.orq`, the same `$1` on every row), not a
/// constant in the UPDATEs' conditions: a constant `orq = $1` let the
/// planner start from the org-only indexes whenever the statistics were
/// stale (after a bulk import, before autovacuum's ANALYZE: without
/// statistics an org's share is guessed at 0.5 %), and each batch then read
/// every ticket and reservation of the org (~0.5 s at 5,000 tickets;
/// BENCHMARKS.md, session 35). As a join column it is no longer a value the
/// planner can start an index scan from; the per-row look-up by the key
/// (`ticket_code`, the reservation's `id`) is what the test
/// `the_write_finds_its_rows_by_their_keys_without_statistics` holds it to.
/// `v` is `MATERIALIZED` so that the planner cannot inline it and see the
/// org as a constant again. For the same reason the reservation's status
/// is compared as `status || ''`: a batch's generic plan (`GENERIC_PLANS`)
/// made while the tables were small (a near-empty database: they are
/// shared by all orgs) read every `RESERVED` one from the
/// `(slot_id, status)` index of the time, and kept doing so. That index is
/// `(slot_id)` since 0021, but a status an index could serve must not
/// become a plan's starting point again: the `|| ''` stays.
static WRITE_ENTRIES: &str =
    "WITH v AS MATERIALIZED (SELECT $1::bigint AS orq, * FROM unnest($2::text[], \
     $3::timestamptz[], $4::bigint[], $5::text[], $6::text[], $7::timestamptz[], \
     $8::timestamptz[], $9::uuid[], $10::text[], $11::bigint[], $12::bigint[]) AS v(code, \
     verified_at, verified_by, status, activation, activated_at, now, res_id, res_status, venue, \
     operator)), \
     t AS (UPDATE tickets SET verified_at = v.verified_at, verified_by = v.verified_by, \
     status = v.status, activation_status = v.activation, activated_at = v.activated_at, \
     updated_at = v.now, verified_gate = NULL FROM v \
     WHERE tickets.ticket_code = v.code AND tickets.orq = v.orq AND tickets.verified_at IS NULL \
     RETURNING 1), \
     r AS (UPDATE ticket_reservations SET status = v.res_status, updated_at = v.now FROM v \
     WHERE v.res_id IS NOT NULL AND ticket_reservations.id = v.res_id \
     AND ticket_reservations.orq = v.orq AND ticket_reservations.ticket_id = v.code \
     AND ticket_reservations.status || '' = 'RESERVED' RETURNING 1), \
     p AS (INSERT INTO passages (orq, venue_id, ticket_code, direction, at, operator_id) \
     SELECT $1, v.venue, v.code, 'in', v.now, v.operator FROM v WHERE v.venue IS NOT NULL \
     RETURNING 1) \
     SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM r), (SELECT count(*) FROM p)";

/// One admission of a batch: its ticket, what to write, when.
type BatchEntry<'a> = (&'a TicketCode, EntryWrite, DateTime<Utc>);

fn write_entries(tx: &mut Tx<'_>, orq: Orq, entries: &[BatchEntry<'_>]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let times = |f: &dyn Fn(&BatchEntry<'_>) -> DateTime<Utc>| -> Vec<DateTime<Utc>> {
        entries.iter().map(f).collect()
    };
    let codes: Vec<&str> = entries.iter().map(|(c, _, _)| c.as_str()).collect();
    let verified_at = times(&|(_, e, _)| ts(e.used.verified_at));
    let activated_at = times(&|(_, e, _)| ts(e.used.activated_at));
    let now = times(&|(_, _, now)| ts(*now));
    let verified_by: Vec<i64> = entries
        .iter()
        .map(|(_, e, _)| e.used.verified_by.0)
        .collect();
    let status: Vec<&str> = entries
        .iter()
        .map(|(_, e, _)| e.used.status.as_str())
        .collect();
    let activation: Vec<&str> = entries
        .iter()
        .map(|(_, e, _)| e.used.activation_status.as_str())
        .collect();
    let res_id: Vec<Option<uuid::Uuid>> = entries
        .iter()
        .map(|(_, e, _)| e.used.reservation.map(|(id, _)| id.0))
        .collect();
    let res_status: Vec<Option<&str>> = entries
        .iter()
        .map(|(_, e, _)| e.used.reservation.as_ref().map(|(_, s)| s.as_str()))
        .collect();
    let venue: Vec<Option<i64>> = entries
        .iter()
        .map(|(_, e, _)| e.passage.map(|(v, _)| v.0))
        .collect();
    let operator: Vec<Option<i64>> = entries
        .iter()
        .map(|(_, e, _)| e.passage.map(|(_, o)| o.0))
        .collect();
    let row = tx
        .query_one(
            WRITE_ENTRIES,
            &[
                &orq.0,
                &codes,
                &verified_at,
                &verified_by,
                &status,
                &activation,
                &activated_at,
                &now,
                &res_id,
                &res_status,
                &venue,
                &operator,
            ],
        )
        .map_err(db)?;
    let expected = [
        entries.len(),
        res_id.iter().flatten().count(),
        venue.iter().flatten().count(),
    ];
    for (i, (what, want)) in ["ticket", "reservation", "passage"]
        .iter()
        .zip(expected)
        .enumerate()
    {
        let n = row.get::<_, i64>(i);
        if n != want as i64 {
            return Err(StoreError::Engine(format!(
                "a batch of entries wrote {n} {what} rows, not {want}: changed under its locks"
            )));
        }
    }
    Ok(())
}

/// The plans PostgreSQL makes now for a batch's door rows (`DOOR_ROWS_OF`)
/// and for `WRITE_ENTRIES`, for admissions of `codes` (with those
/// `reservations`, a passage each), as `EXPLAIN` shows them (planned with
/// these values, as every run is). For tests.
#[cfg(feature = "test-hooks")]
pub(crate) fn write_entries_plan(
    tx: &mut Tx<'_>,
    orq: Orq,
    codes: &[&str],
    reservations: &[uuid::Uuid],
) -> Result<String> {
    let n = codes.len();
    let at = vec![ts(Utc::now()); n];
    let by = vec![1_i64; n];
    let text = |t: &'static str| vec![t; n];
    let res: Vec<Option<uuid::Uuid>> = reservations.iter().copied().map(Some).collect();
    let ids = vec![Some(1_i64); n];
    let door = tx
        .query(
            format!("EXPLAIN {}", DOOR_ROWS_OF.as_str()).as_str(),
            &[&codes, &orq.0],
        )
        .map_err(db)?;
    let sql = format!("EXPLAIN {WRITE_ENTRIES}");
    let rows = tx
        .query(
            sql.as_str(),
            &[
                &orq.0,
                &codes,
                &at,
                &by,
                &text("redeemed"),
                &text("active"),
                &at,
                &at,
                &res,
                &text("VERIFIED"),
                &ids,
                &ids,
            ],
        )
        .map_err(db)?;
    Ok(door
        .iter()
        .chain(&rows)
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// The verification's first statement: the ticket, locked (only its row:
/// the org's settings beside it are read, not locked), with its code's
/// serial and its org's settings for the screening. The settings are those
/// of the statement's start: a change committed while it waited for the
/// ticket's lock applies from the next verification on (nobody orders
/// settings changes through a ticket's lock).
static LOCK_TICKET: LazyLock<String> =
    LazyLock::new(|| lock_tickets("t.ticket_code = $1", "FOR UPDATE OF t"));

/// `LOCK_TICKET` for a batch's tickets (one org's), in the order of their
/// codes, skipping any ticket another transaction holds: a batch never
/// waits on a ticket's lock (one ticket held by a closing venue, a device
/// upload or an idle session would otherwise hold every caller of the
/// batch, and the instance's batches behind it). A skipped ticket (or an
/// unknown one: no row either) goes back to its own caller, who runs it
/// alone (`verify_one`) and waits for that ticket only, as before batches.
static LOCK_TICKETS: LazyLock<String> = LazyLock::new(|| {
    lock_tickets(
        "t.ticket_code = ANY($1)",
        "ORDER BY t.ticket_code FOR UPDATE OF t SKIP LOCKED",
    )
});

/// The ticket lock's statement: the tickets `which` selects, then `lock`.
/// The org is checked as `t.orq + 0`, which no index serves (as the door
/// rows' `r.orq + 0`): the tickets are found by their codes, the primary
/// key. With `t.orq = $2`, a batch's generic plan made while the tables
/// had few tickets started from `(orq, ticket_code)` with the org alone as
/// its condition, and kept doing so once they had many. The org's settings
/// are a `LATERAL … OFFSET 0` subquery for the reason `DOOR_ROWS` gives: as
/// a join, a generic plan made with one row in `org_settings` read it whole.
fn lock_tickets(which: &str, lock: &str) -> String {
    format!(
        "SELECT {}, t.code_serial, os.signed_codes_only AS os_signed_codes_only, \
         os.updated_at AS os_updated_at \
         FROM tickets t LEFT JOIN LATERAL (SELECT * FROM org_settings os \
         WHERE os.orq = t.orq OFFSET 0) os ON true \
         WHERE {which} AND t.orq + 0 = $2 {lock}",
        qualified(TICKET_COLUMNS, "t"),
    )
}

/// `DOOR_ROWS` for several tickets (read once all of them are locked).
static DOOR_ROWS_OF: LazyLock<String> =
    LazyLock::new(|| DOOR_ROWS.replace("r.ticket_id = $1", "r.ticket_id = ANY($1)"));

/// One verification asked of `verify_ticket` (`now` already truncated to
/// what is stored).
#[derive(Debug, Clone)]
pub(crate) struct VerifyItem {
    pub(crate) orq: Orq,
    pub(crate) code: TicketCode,
    pub(crate) operator: OperatorId,
    pub(crate) gate: Gate,
    pub(crate) now: DateTime<Utc>,
}

/// One verification in its own transaction: the ticket locked first (its
/// lock is what queues two instances; this one waits for it), written by
/// the same statement as a batch's admissions.
pub(crate) fn verify_one(tx: &mut Tx<'_>, item: &VerifyItem) -> Result<Verdict> {
    let row = tx
        .query_opt(LOCK_TICKET.as_str(), &[&item.code.as_str(), &item.orq.0])
        .map_err(db)?;
    let (verdict, entry) = decide_row(tx, item, row.as_ref(), None)?;
    write_entries(tx, item.orq, &[(&item.code, entry, item.now)])?;
    Ok(verdict)
}

/// A verification's decision once its ticket is locked and read (`row`,
/// from `LOCK_TICKET(S)`; `None`: no such ticket): the screening (code
/// serial, org settings, both in the row), then the verdict and the entry
/// to write; nothing written.
fn decide_row(
    tx: &mut Tx<'_>,
    item: &VerifyItem,
    row: Option<&postgres::Row>,
    door: Option<DoorRows>,
) -> Result<(Verdict, EntryWrite)> {
    let (orq, code) = (item.orq, &item.code);
    let refused = match row {
        Some(row) => {
            let settings = org_settings(
                orq,
                row.get("os_signed_codes_only"),
                row.get("os_updated_at"),
            );
            let serial = code_serial(row.get("code_serial"))?;
            screen_with(&settings, code, Some(serial))
        }
        None => screen_serial(tx, orq, code, None)?,
    };
    if let Some(refused) = refused {
        return Err(DomainError::Refused(Box::new(refused)).into());
    }
    let ticket = row.map(ticket).transpose()?;
    decide_locked(
        tx,
        orq,
        code,
        ticket,
        door,
        item.operator,
        &item.gate,
        item.now,
    )
}

/// The planner settings of a verify batch's transaction: its three
/// statements (`LOCK_TICKETS`, `DOOR_ROWS_OF`, `WRITE_ENTRIES`) run with
/// the generic plan each connection makes once, not planned again with
/// their values at every batch as the server's connections otherwise are
/// (`plan_cache_mode=force_custom_plan`, lib.rs): that planning was ~1 ms
/// of the database's CPU per batch (session 36's profile), the largest
/// part of a verification's own. Their plans do not depend on the values:
/// each finds its rows by their keys (the tickets' codes, the
/// reservations' tickets and ids, the slots' and venues' ids) whatever the
/// statistics say, with or without them (the org is never a value an index
/// scan could start from: `t.orq + 0`, `r.orq + 0`, `v.orq`), which is what
/// `a_batch_s_generic_plans_find_rows_by_their_keys` holds them to.
///
/// `SET LOCAL` lasts for the whole transaction, not only those three: every
/// statement the batch's decisions make runs with these settings too —
/// `VERIFIED_GATE` (an ALREADY_VERIFIED at a gate that sees the venue),
/// `load_slot` (a NO_SHOW_RELEASED), the passages INSERT's foreign-key
/// checks and the feed triggers' statements (their functions set only
/// `plan_cache_mode`). The two reads are in `verify_batch_sql`, under the
/// same plan test; a statement added to `decide_row`'s path must be too.
/// Scoping the settings to the three statements instead would cost two
/// more round trips per batch (the decisions run between the door rows and
/// the write).
///
/// A generic plan is kept until the tables' statistics or size in
/// `pg_class` change (ANALYZE, VACUUM): one made while the tables were
/// small (a new deployment's near-empty database: the tables are shared by
/// all orgs, so a new org on a busy database does not make them small)
/// would read a table whole when it is not any more (a bulk import, before
/// autovacuum comes by). `enable_seqscan = off` while they are planned
/// keeps every plan on its indexes whatever the tables' size then, and no
/// hash or merge join (as the numberer's `NUMBERING_PLAN`) leaves a nested
/// loop that looks each row up by its key as the only way to join the
/// batch's codes to the tables (a hash join's other side would read a
/// table, or an index, whole). A seq scan is still taken where no index
/// serves, which none of these statements has, nor the feed triggers they
/// fire. `SET LOCAL`: for this transaction only, so the connection goes
/// back to the pool as it came. Sent with the batch's BEGIN, in one simple
/// query (`VERIFY_BATCH_BEGIN`): no round trip of their own.
const GENERIC_PLANS: &str = "SET LOCAL plan_cache_mode = force_generic_plan; \
     SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; \
     SET LOCAL enable_mergejoin = off";

/// A verify batch's first round trip (`Tx::begin`): its READ COMMITTED
/// BEGIN and `GENERIC_PLANS`.
pub(crate) static VERIFY_BATCH_BEGIN: LazyLock<String> =
    LazyLock::new(|| format!("{}; {GENERIC_PLANS}", crate::conn::BEGIN_WRITE));

/// The settings a verify batch runs with (`GENERIC_PLANS`), the SQL of its
/// three statements, in the order it runs them, and the two reads its
/// decisions may make in the same transaction (`VERIFIED_GATE`, `load_slot`
/// unlocked). For tests: their generic plans.
#[cfg(feature = "test-hooks")]
pub(crate) fn verify_batch_sql() -> (&'static str, [&'static str; 3], [String; 2]) {
    (
        GENERIC_PLANS,
        [LOCK_TICKETS.as_str(), DOOR_ROWS_OF.as_str(), WRITE_ENTRIES],
        [VERIFIED_GATE.to_owned(), crate::slots::load_slot_sql(false)],
    )
}

/// Several verifications of one org (`orq`), distinct tickets, in the
/// caller's one transaction, begun with `VERIFY_BATCH_BEGIN` (generic
/// plans, `GENERIC_PLANS`): the tickets no other transaction holds locked
/// by one statement (in the codes' order, `LOCK_TICKETS`), their door rows
/// read by one more, then each decided by the domain in the codes' order,
/// and the admissions written by one statement (`write_entries`). Each
/// item's answer in `items`' order: `Some` its verdict or its refusal (a
/// refusal wrote nothing), `None` when its ticket was not locked here (held
/// by another transaction, or unknown): its caller runs it alone. Any other
/// error is the batch's: the caller rolls it back whole.
pub(crate) fn verify_batch_in(
    tx: &mut Tx<'_>,
    orq: Orq,
    items: &[&VerifyItem],
) -> Result<Vec<Option<Result<Verdict>>>> {
    let codes: Vec<&str> = items.iter().map(|i| i.code.as_str()).collect();
    let mut locked: HashMap<String, postgres::Row> = tx
        .query(LOCK_TICKETS.as_str(), &[&codes, &orq.0])
        .map_err(db)?
        .into_iter()
        .map(|row| (row.get::<_, String>("ticket_code"), row))
        .collect();
    let present: Vec<&str> = codes
        .iter()
        .copied()
        .filter(|c| locked.contains_key(*c))
        .collect();
    let mut doors: HashMap<String, postgres::Row> = if present.is_empty() {
        HashMap::new()
    } else {
        tx.query(DOOR_ROWS_OF.as_str(), &[&present, &orq.0])
            .map_err(db)?
            .into_iter()
            .map(|row| (row.get::<_, String>("r_ticket_id"), row))
            .collect()
    };
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|a, b| codes[*a].cmp(codes[*b]));
    let mut answers: Vec<Option<Result<Verdict>>> = items.iter().map(|_| None).collect();
    let mut entries = Vec::with_capacity(items.len());
    for i in order {
        let Some(row) = locked.remove(codes[i]) else {
            continue;
        };
        let door = match doors.remove(codes[i]) {
            Some(door) => door_row(&door)?,
            None => (None, None, None),
        };
        answers[i] = Some(match decide_row(tx, items[i], Some(&row), Some(door)) {
            Ok((verdict, entry)) => {
                entries.push((&items[i].code, entry, items[i].now));
                Ok(verdict)
            }
            // A refusal is decided in Rust, nothing written, and leaves the
            // transaction usable for the others.
            Err(StoreError::Domain(e)) => Err(StoreError::Domain(e)),
            Err(e) => return Err(e),
        });
    }
    // The tickets differ, so no decision above depends on another's write.
    write_entries(tx, orq, &entries)?;
    Ok(answers)
}

impl HandOff for PgStore {
    /// `verify_ticket` from an async caller: queued from its thread, led on
    /// the blocking pool (`verify_batch.rs`), answered after the COMMIT.
    fn verify_ticket_handed_off(
        self: std::sync::Arc<Self>,
        orq: Orq,
        code: TicketCode,
        operator: OperatorId,
        gate: Gate,
        now: DateTime<Utc>,
    ) -> Option<Pending<Verdict>> {
        self.verify_handed_off(VerifyItem {
            orq,
            code,
            operator,
            gate,
            // Stored with millisecond precision, as `verify_ticket`'s.
            now: now.trunc_subsecs(3),
        })
    }
}

impl GateStore for PgStore {
    /// What the gate would say now to this plain code; changes nothing.
    fn validate_ticket(
        &self,
        orq: Orq,
        code: &TicketCode,
        gate: &Gate,
        now: DateTime<Utc>,
    ) -> Result<Verdict> {
        self.read(|tx| match screen_plain(tx, orq, code)? {
            Some(refused) => Ok(refused),
            None => {
                let v = verdict_in(tx, orq, code, gate, now)?;
                no_show_place(tx, orq, v)
            }
        })
    }

    /// Verifies an admissible ticket exactly once: the ticket row is locked
    /// first, so two instances verifying it at once queue, and the second
    /// sees the first's entry (ALREADY_VERIFIED). A refusal writes nothing.
    /// Verifications made at once on this instance share one transaction
    /// and one COMMIT (`verify_batch.rs`); each is answered once that
    /// COMMIT returned.
    fn verify_ticket(
        &self,
        orq: Orq,
        code: &TicketCode,
        operator: OperatorId,
        gate: &Gate,
        now: DateTime<Utc>,
    ) -> Result<Verdict> {
        self.verify_grouped(VerifyItem {
            orq,
            code: code.clone(),
            operator,
            gate: *gate,
            // Stored with millisecond precision; answer with what was stored.
            now: now.trunc_subsecs(3),
        })
    }

    /// May this ticket make a reservation now?
    fn reservation_eligibility(
        &self,
        orq: Orq,
        code: &TicketCode,
        now: DateTime<Utc>,
    ) -> Result<Verdict> {
        self.read(|tx| {
            let ticket = load_ticket(tx, orq, code, false)?;
            let reservation = match &ticket {
                Some(_) => reservation_of_ticket(tx, orq, code)?,
                None => None,
            };
            let mut v =
                crate::domain::reservation_verdict(ticket.as_ref(), reservation.as_ref(), now);
            v.ticket_code.get_or_insert_with(|| code.to_string());
            Ok(v)
        })
    }
}
