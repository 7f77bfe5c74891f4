//! Venue operations (issue 15): scans in a direction (exits, re-entry), the
//! passages occupancy is counted from, and the uploaded exits and re-entries
//! the server judges. The rules are `domain::venue_ops`'s; here only SQL.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::codec::{ts, Ts};
use crate::column::Sql;
use crate::domain::sync::protocol::{DeviceInfo, Event, EventResult, EventStatus};
use crate::domain::venue_ops::{
    day_start, occupancy_level, passage, Direction, Occupancy, Passage, Presence, Tz, VenueOps, UTC,
};
use crate::domain::{
    DomainError, Gate, OperatorId, Orq, TicketCode, Venue, VenueId, Verdict, VerdictCode,
};
use crate::signing::Screened;
use crate::venues::load_venue;
use crate::{Result, Store, StoreError};

/// One person through a gate, as a fact to count.
pub(crate) struct PassageFact<'a> {
    pub orq: Orq,
    pub venue: VenueId,
    pub code: &'a TicketCode,
    pub direction: Direction,
    pub reentry: bool,
    pub at: DateTime<Utc>,
    pub device: Option<i64>,
    pub operator: Option<OperatorId>,
    pub event_id: Option<String>,
    pub conflict: Option<&'a str>,
}

pub(crate) fn record_passage(tx: &Transaction<'_>, p: &PassageFact<'_>) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO passages (orq, venue_id, ticket_code, direction, reentry, at, device_id, operator_id, event_id, conflict) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        Sql(p.orq),
        Sql(p.venue),
        Sql(p.code),
        p.direction.as_str(),
        p.reentry,
        ts(p.at),
        p.device,
        p.operator.map(|o| o.0),
        p.event_id,
        p.conflict
    ])?;
    Ok(())
}

/// People inside `venue` from the passages since `since`
/// (`domain::venue_ops::inside_from`: per ticket, never below 0).
pub(crate) fn inside_today(
    tx: &Transaction<'_>,
    orq: Orq,
    venue: VenueId,
    since: &str,
) -> Result<i64> {
    let nets: Vec<i64> = tx
        .prepare_cached(
            "SELECT SUM(CASE direction WHEN 'in' THEN 1 ELSE -1 END) FROM passages \
             WHERE orq = ?1 AND venue_id = ?2 AND at >= ?3 GROUP BY ticket_code",
        )?
        .query_map(params![Sql(orq), Sql(venue), since], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(crate::domain::venue_ops::inside_from(nets))
}

/// A ticket's entry and last exit, as this database has them.
fn presence(tx: &Transaction<'_>, orq: Orq, code: &TicketCode) -> Result<Presence> {
    let row: Option<(Option<Ts>, Option<Ts>)> = tx
        .prepare_cached(
            "SELECT verified_at, left_at FROM tickets WHERE ticket_code = ?1 AND orq = ?2",
        )?
        .query_row(params![Sql(code), Sql(orq)], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(
        row.map_or_else(Presence::default, |(entered, left)| Presence {
            entered_at: entered.map(|t| t.0),
            left_at: left.map(|t| t.0),
        }),
    )
}

/// The venue a verdict is about (its slot's), else the gate's; its settings
/// and clock (the defaults and UTC without a venue row).
fn venue_of(
    tx: &Transaction<'_>,
    orq: Orq,
    verdict: &Verdict,
    gate: &Gate,
) -> Result<(Option<VenueId>, VenueOps, Tz)> {
    let id = verdict.venue_id.or(gate.venue_id);
    let venue: Option<Venue> = match id {
        Some(id) => load_venue(tx, orq, id)?,
        None => None,
    };
    Ok(match venue {
        Some(v) => (Some(v.id), v.gate.ops(), v.timezone),
        None => (id, VenueOps::default(), UTC),
    })
}

pub(crate) fn set_left_at(
    tx: &Transaction<'_>,
    orq: Orq,
    code: &TicketCode,
    left_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<()> {
    tx.prepare_cached(
        "UPDATE tickets SET left_at = ?1, updated_at = ?2 WHERE ticket_code = ?3 AND orq = ?4",
    )?
    .execute(params![left_at.map(ts), ts(now), Sql(code), Sql(orq)])?;
    Ok(())
}

/// An exit or a re-entry at this database's gate, in the caller's write
/// transaction: judged by `domain::venue_ops::passage`, written with its
/// outbox event (a gate device) in the same commit.
fn pass_in(
    tx: &Transaction<'_>,
    orq: Orq,
    code: &TicketCode,
    operator: OperatorId,
    gate: &Gate,
    direction: Direction,
    now: DateTime<Utc>,
) -> Result<Verdict> {
    let entry = crate::gate::verdict_in(tx, orq, code, gate, now)?;
    let (venue, ops, tz) = venue_of(tx, orq, &entry, gate)?;
    let (verdict, write) = passage(
        entry,
        presence(tx, orq, code)?,
        direction,
        ops,
        tz,
        gate.venue_id,
    );
    let (kind, left_at) = match write {
        Passage::Exit => ("exit", Some(now)),
        Passage::Reenter => ("reenter", None),
        Passage::Enter | Passage::Refused => return Ok(verdict),
    };
    let Some(venue) = venue else {
        return Ok(verdict);
    };
    set_left_at(tx, orq, code, left_at, now)?;
    record_passage(
        tx,
        &PassageFact {
            orq,
            venue,
            code,
            direction,
            reentry: write == Passage::Reenter,
            at: now,
            device: None,
            operator: Some(operator),
            event_id: None,
            conflict: None,
        },
    )?;
    crate::sync::record_local_event(
        tx,
        kind,
        "tickets",
        code.as_str(),
        serde_json::json!({ "ticket_code": code, "venue_id": venue }),
        Some(operator),
        now,
    )?;
    Ok(verdict)
}

impl Store {
    /// A scan in `direction` (the kiosk's toggle, `entrada gate verify
    /// --direction`): in is [`Store::scan`], and a holder who left comes
    /// back in as the venue allows; out records the exit of a holder inside.
    pub fn pass(
        &self,
        orq: Orq,
        raw: &[u8],
        operator: OperatorId,
        gate: &Gate,
        direction: Direction,
        now: DateTime<Utc>,
    ) -> Result<Verdict> {
        let now = chrono::SubsecRound::trunc_subsecs(now, 3);
        let code = match direction {
            Direction::In => {
                let v = self.scan(orq, raw, operator, gate, now)?;
                if v.verdict != VerdictCode::AlreadyVerified {
                    return Ok(v);
                }
                match v.ticket_code.as_deref().map(TicketCode::parse) {
                    Some(Ok(code)) => code,
                    _ => return Ok(v),
                }
            }
            Direction::Out => match self.screen(orq, raw, now)? {
                Screened::Code(code) => code,
                Screened::NotSynced(v) | Screened::Refused(v) => {
                    let (v, _) = passage(
                        *v,
                        Presence::default(),
                        direction,
                        VenueOps::default(),
                        UTC,
                        gate.venue_id,
                    );
                    return Ok(v);
                }
            },
        };
        self.write(|tx| pass_in(tx, orq, &code, operator, gate, direction, now))
    }

    /// People inside `venue` now, from every passage this database holds
    /// since the venue's day began (the server: its own verifications and
    /// every gate's uploaded entries and exits).
    pub fn occupancy(&self, orq: Orq, venue: VenueId, now: DateTime<Utc>) -> Result<Occupancy> {
        self.read(|tx| {
            let v = crate::venues::require_venue(tx, orq, venue)?;
            let inside = inside_today(tx, orq, venue, &ts(day_start(v.timezone, now)))?;
            let limit = v.gate.ops().occupancy_limit;
            Ok(Occupancy {
                venue_id: venue,
                inside,
                limit,
                level: occupancy_level(inside, limit),
                as_of: Some(now),
            })
        })
    }

    /// A gate's best knowledge of the people inside its venue: the tickets
    /// of the venue's slots used today and not left since, as its replica
    /// has them (every gate's, as of its last sync, and its own since);
    /// `as_of` is that last sync.
    pub fn gate_occupancy(
        &self,
        orq: Orq,
        venue: VenueId,
        now: DateTime<Utc>,
    ) -> Result<Occupancy> {
        self.read(|tx| {
            let v = crate::venues::require_venue(tx, orq, venue)?;
            let inside: i64 = tx
                .prepare_cached(
                    "SELECT count(*) FROM tickets t \
                     JOIN ticket_reservations r ON r.ticket_id = t.ticket_code \
                     JOIN reservation_slots s ON s.id = r.slot_id \
                     WHERE t.orq = ?1 AND s.venue_id = ?2 AND t.verified_at >= ?3 AND t.left_at IS NULL",
                )?
                .query_row(
                    params![Sql(orq), Sql(venue), ts(day_start(v.timezone, now))],
                    |r| r.get(0),
                )?;
            let as_of: Option<Ts> = tx
                .query_row("SELECT last_sync_at FROM device_identity", [], |r| r.get(0))
                .optional()?
                .flatten();
            let limit = v.gate.ops().occupancy_limit;
            Ok(Occupancy {
                venue_id: venue,
                inside,
                limit,
                level: occupancy_level(inside, limit),
                as_of: as_of.map(|t| t.0),
            })
        })
    }
}

/// An uploaded exit or re-entry on the server, judged by the same rule the
/// gate used (`domain::venue_ops::passage`) against the server's rows at the
/// event's time. The passage is a fact and always counts (the person went
/// through); where the server's rows disagree (an exit of a ticket the
/// server has not seen enter, a re-entry the venue no longer allows) the
/// ticket is left as it is and the answer is a conflict with the reason.
pub(crate) fn apply_passage_event(
    tx: &Transaction<'_>,
    device: &DeviceInfo,
    event: &Event,
    direction: Direction,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<std::result::Result<EventResult, DomainError>> {
    let orq = Orq(device.orq);
    let code = match event
        .payload
        .get("ticket_code")
        .and_then(|v| v.as_str())
        .ok_or_else(|| DomainError::invalid("ticket_code", "missing in event payload"))
        .and_then(TicketCode::parse)
    {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    let Some(operator) = event.operator_id.map(OperatorId) else {
        return Ok(Err(DomainError::invalid(
            "operator_id",
            "a passage names its operator",
        )));
    };
    if crate::tickets::load_ticket(tx, orq, &code)?.is_none() {
        return Ok(Err(DomainError::NotFound { entity: "ticket" }));
    }
    let gate = Gate {
        venue_id: Some(VenueId(device.venue_id)),
        ..Default::default()
    };
    let entry = crate::gate::verdict_in(tx, orq, &code, &gate, at)?;
    let (_, ops, tz) = venue_of(tx, orq, &entry, &gate)?;
    let (verdict, write) = passage(
        entry,
        presence(tx, orq, &code)?,
        direction,
        ops,
        tz,
        gate.venue_id,
    );
    // Another venue's ticket: not this gate's door to count (a forged or
    // confused upload changes nothing, there or here).
    if verdict.verdict == VerdictCode::WrongVenue {
        return Ok(Err(DomainError::invalid(
            "ticket_code",
            "reserved for another venue: only its gates record its passages",
        )));
    }
    let expected = match direction {
        Direction::Out => Passage::Exit,
        Direction::In => Passage::Reenter,
    };
    let conflict = (write != expected).then(|| verdict.verdict.code());
    if conflict.is_none() {
        // Gates upload in any order: an exit older than an entry already on
        // record (another gate's re-entry) leaves the holder inside.
        let later_entry: bool = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM passages WHERE orq = ?1 AND ticket_code = ?2 \
                 AND direction = 'in' AND at > ?3)",
            )?
            .query_row(params![Sql(orq), Sql(&code), ts(at)], |r| r.get(0))?;
        match crate::domain::venue_ops::left_mark(direction, at, later_entry) {
            crate::domain::venue_ops::LeftMark::Set(t) => {
                set_left_at(tx, orq, &code, Some(t), now)?
            }
            crate::domain::venue_ops::LeftMark::Clear => set_left_at(tx, orq, &code, None, now)?,
            crate::domain::venue_ops::LeftMark::Keep => {}
        }
    }
    // Counted at the gate's venue: that is the door the person went through.
    record_passage(
        tx,
        &PassageFact {
            orq,
            venue: VenueId(device.venue_id),
            code: &code,
            direction,
            reentry: direction == Direction::In,
            at,
            device: Some(device.device_id),
            operator: Some(operator),
            event_id: Some(event.event_id.to_string()),
            conflict,
        },
    )?;
    Ok(Ok(EventResult {
        event_id: event.event_id,
        status: if conflict.is_some() {
            EventStatus::Conflict
        } else {
            EventStatus::Applied
        },
        reason: conflict.map(str::to_owned),
        facts: conflict.map(|_| serde_json::json!({ "kind": verdict.verdict.code(), "ticket_code": code, "server": verdict })),
        received_at: now,
    }))
}

// ---- walk-ups and their leases ----

use crate::domain::no_show::PlaceBack;
use crate::domain::venue_ops::{
    lease_grant, no_place_left, not_activated, recalled_grant, walkup_open, walkup_refusal,
    walkup_slots, walkup_step, walkup_was_online, SlotPlaces, WalkupBooking, WalkupStep,
};
use crate::domain::{ReservationId, Slot, SlotId};

/// A walk-up refused with `v`: as an error, so that the write transaction
/// rolls back what it did before (a deferred ticket's activation).
fn refused(v: Verdict) -> crate::StoreError {
    DomainError::Refused(Box::new(v)).into()
}

/// A deferred ticket activated for its walk-up, under the activation rules;
/// a refusal (an unpaid order) is the NOT_ACTIVATED verdict saying why.
fn activate_for_walkup(
    tx: &Transaction<'_>,
    orq: Orq,
    code: &TicketCode,
    now: DateTime<Utc>,
) -> Result<()> {
    match crate::tickets::activate_in(tx, orq, code, now) {
        Ok(_) => Ok(()),
        Err(crate::StoreError::Domain(e)) => Err(refused(not_activated(code, &e))),
        Err(e) => Err(e),
    }
}

/// The device this database is (a paired gate), if any: (device id, venue).
fn this_device(tx: &Transaction<'_>) -> Result<Option<(i64, VenueId)>> {
    Ok(tx
        .query_row("SELECT device_id, venue_id FROM device_identity", [], |r| {
            Ok((r.get::<_, i64>(0)?, VenueId(r.get(1)?)))
        })
        .optional()?)
}

/// Gives `code` its reservation in `slot` (its cancelled row if it has one,
/// else a new row `id`) and marks the ticket reserved; the slot's count is
/// the caller's.
fn write_walkup_reservation(
    tx: &Transaction<'_>,
    orq: Orq,
    code: &TicketCode,
    id: ReservationId,
    slot: &Slot,
    now: DateTime<Utc>,
) -> Result<()> {
    let contact: (Option<String>, Option<String>) = tx.query_row(
        "SELECT customer_email, customer_phone FROM tickets WHERE ticket_code = ?1 AND orq = ?2",
        params![Sql(code), Sql(orq)],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (email, phone) = (contact.0.unwrap_or_default(), contact.1.unwrap_or_default());
    // One row per ticket: a cancelled reservation keeps its id (both sides
    // have it) and takes the walk-up.
    let reused = tx
        .prepare_cached(
            "UPDATE ticket_reservations SET slot_id = ?1, reserved_at = ?2, status = 'RESERVED', no_show_at = NULL, updated_at = ?2 \
             WHERE ticket_id = ?3 AND orq = ?4 AND status = 'CANCELLED'",
        )?
        .execute(params![Sql(slot.id), ts(now), Sql(code), Sql(orq)])?;
    if reused == 0 {
        tx.prepare_cached(
            "INSERT INTO ticket_reservations (id, ticket_id, slot_id, customer_email, customer_phone, \
             reserved_at, status, orq, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'RESERVED', ?7, ?6, ?6)",
        )?
        .execute(params![Sql(id), Sql(code), Sql(slot.id), email, phone, ts(now), Sql(orq)])?;
    }
    tx.prepare_cached(
        "UPDATE tickets SET status = 'RESERVED', reserved_at = ?1, updated_at = ?1 WHERE ticket_code = ?2 AND orq = ?3",
    )?
    .execute(params![ts(now), Sql(code), Sql(orq)])?;
    Ok(())
}

/// The walk-up at a gate, in the caller's write transaction: a holder with
/// a valid ticket and no live reservation is booked into a slot open for
/// entry now from this gate's lease, then admitted (both events queued in
/// this commit). A ticket already reserved is simply verified.
fn walkup_in(
    tx: &Transaction<'_>,
    orq: Orq,
    code: &TicketCode,
    operator: OperatorId,
    gate: &Gate,
    now: DateTime<Utc>,
) -> Result<Verdict> {
    let entry = crate::gate::verdict_in(tx, orq, code, gate, now)?;
    if entry.verdict == VerdictCode::Admit {
        return crate::gate::verify_in(
            tx,
            orq,
            code,
            operator,
            gate,
            now,
            crate::gate::Admission::ByRules,
        );
    }
    let no_place = |why: &str| refused(no_place_left(code, why));
    match walkup_step(&entry) {
        WalkupStep::No => return Ok(entry),
        WalkupStep::Book => {}
        WalkupStep::ActivateThenBook => {
            // Queued before the walk-up: the server applies the activation
            // first, then books the (now active) ticket.
            activate_for_walkup(tx, orq, code, now)?;
            let entry = crate::gate::verdict_in(tx, orq, code, gate, now)?;
            if walkup_step(&entry) != WalkupStep::Book {
                return Err(refused(entry));
            }
        }
    }
    let Some((device, device_venue)) = this_device(tx)? else {
        return Err(no_place("walk-ups at a gate need a paired gate's lease"));
    };
    let venue = crate::venues::require_venue(tx, orq, gate.venue_id.unwrap_or(device_venue))?;
    let leased: Vec<String> = tx
        .prepare_cached("SELECT slot_id FROM walkup_leases WHERE device_id = ?1 AND places > 0")?
        .query_map([device], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut open = Vec::new();
    for id in leased {
        let Ok(id) = id.parse::<SlotId>() else {
            continue;
        };
        if let Some(slot) = crate::slots::load_slot(tx, orq, id)? {
            if slot.venue_id == venue.id && walkup_open(&slot, &venue, now) {
                open.push(slot);
            }
        }
    }
    open.sort_by_key(|s| (s.date, s.start_time));
    let Some(slot) = open.into_iter().next() else {
        return Err(no_place("no leased place in a slot open now"));
    };
    let id = ReservationId(uuid::Uuid::now_v7());
    write_walkup_reservation(tx, orq, code, id, &slot, now)?;
    tx.prepare_cached(
        "UPDATE walkup_leases SET places = places - 1, updated_at = ?1 WHERE device_id = ?2 AND slot_id = ?3",
    )?
    .execute(params![ts(now), device, Sql(slot.id)])?;
    admit_walkup(tx, orq, code, &slot, id, false, operator, gate, now)
}

/// A walk-up's booking queued as a `walkup` event (`online`: booked by the
/// server, which only acknowledges it; else from this gate's lease) and
/// its holder admitted by the rules in the same transaction, at the same
/// time: an undo of that admission finds the walk-up by it and releases it.
#[allow(clippy::too_many_arguments)] // the walk-up's facts, one each
fn admit_walkup(
    tx: &Transaction<'_>,
    orq: Orq,
    code: &TicketCode,
    slot: &Slot,
    reservation: ReservationId,
    online: bool,
    operator: OperatorId,
    gate: &Gate,
    now: DateTime<Utc>,
) -> Result<Verdict> {
    let mut payload = serde_json::json!({
        "ticket_code": code,
        "slot_id": slot.id,
        "reservation_id": reservation,
        "venue_id": slot.venue_id,
    });
    if online {
        payload["online"] = serde_json::Value::Bool(true);
    }
    crate::sync::record_local_event(
        tx,
        "walkup",
        "tickets",
        code.as_str(),
        payload,
        Some(operator),
        now,
    )?;
    let mut v = crate::gate::verify_in(
        tx,
        orq,
        code,
        operator,
        gate,
        now,
        crate::gate::Admission::ByRules,
    )?;
    if v.admit {
        v.message = format!(
            "Walk-up booked into {}–{}: admit",
            slot.start_time.format("%H:%M"),
            slot.end_time.format("%H:%M")
        );
    }
    Ok(v)
}

impl Store {
    /// `entrada gate book` / the kiosk's walk-up: books the holder into the
    /// current slot from this gate's lease and admits them (ADMIT), or
    /// refuses (`NO_PLACE_LEFT`, or the ticket's own refusal).
    pub fn book_walkup(
        &self,
        orq: Orq,
        raw: &[u8],
        operator: OperatorId,
        gate: &Gate,
        now: DateTime<Utc>,
    ) -> Result<Verdict> {
        let now = chrono::SubsecRound::trunc_subsecs(now, 3);
        let code = match self.screen(orq, raw, now)? {
            Screened::Code(code) => code,
            Screened::NotSynced(v) | Screened::Refused(v) => return Ok(*v),
        };
        match self.write(|tx| walkup_in(tx, orq, &code, operator, gate, now)) {
            Err(crate::StoreError::Domain(DomainError::Refused(v))) => Ok(*v),
            other => other,
        }
    }

    /// The ticket a walk-up at this gate would ask the server to book
    /// (`domain::venue_ops::walkup_bookable` on the entry verdict, or an
    /// authentic signed code this replica does not hold yet: the server
    /// knows it); None when the scan keeps its own verdict (then
    /// [`Store::book_walkup`] answers it).
    pub fn walkup_candidate(
        &self,
        orq: Orq,
        raw: &[u8],
        gate: &Gate,
        now: DateTime<Utc>,
    ) -> Result<Option<TicketCode>> {
        let now = chrono::SubsecRound::trunc_subsecs(now, 3);
        match self.screen(orq, raw, now)? {
            Screened::Code(code) => {
                let entry = self.read(|tx| crate::gate::verdict_in(tx, orq, &code, gate, now))?;
                Ok(crate::domain::venue_ops::walkup_bookable(&entry).then_some(code))
            }
            Screened::NotSynced(v) => Ok(v
                .ticket_code
                .as_deref()
                .and_then(|c| TicketCode::parse(c).ok())),
            Screened::Refused(_) => Ok(None),
        }
    }

    /// The server's side of an online walk-up (`POST /api/sync/walkup`):
    /// `code`'s holder booked by the reservation path into the earliest slot
    /// of the gate's venue open for entry now with a free place
    /// (`domain::venue_ops::walkup_slots`), never from a lease; a deferred
    /// ticket is activated first, in the same transaction. Refusals are
    /// `DomainError::Refused`: the ticket's own verdict, or NO_PLACE_LEFT.
    /// One writer at a time (SQLite's), so the slot read is the slot written.
    pub fn book_walkup_online(
        &self,
        device: &DeviceInfo,
        raw: &[u8],
        now: DateTime<Utc>,
    ) -> Result<WalkupBooking> {
        let now = chrono::SubsecRound::trunc_subsecs(now, 3);
        let orq = Orq(device.orq);
        // The scan screened as a gate would: key, signature, the ticket's
        // current code (a superseded QR code books nothing), the org's policy.
        let code = &match self.screen(orq, raw, now)? {
            Screened::Code(code) => code,
            // Authentic but unknown here: the server holds every ticket.
            Screened::NotSynced(_) => return Err(DomainError::NotFound { entity: "ticket" }.into()),
            Screened::Refused(v) => return Err(refused(*v)),
        };
        self.write(|tx| {
            let venue = crate::venues::require_venue(tx, orq, VenueId(device.venue_id))?;
            if crate::tickets::load_ticket(tx, orq, code)?.is_none() {
                return Err(DomainError::NotFound { entity: "ticket" }.into());
            }
            let gate = Gate {
                venue_id: Some(venue.id),
                ..Default::default()
            };
            let entry = crate::gate::verdict_in(tx, orq, code, &gate, now)?;
            let activated_at = match walkup_step(&entry) {
                WalkupStep::No => return Err(refused(walkup_refusal(entry))),
                WalkupStep::Book => None,
                WalkupStep::ActivateThenBook => {
                    activate_for_walkup(tx, orq, code, now)?;
                    let entry = crate::gate::verdict_in(tx, orq, code, &gate, now)?;
                    if walkup_step(&entry) != WalkupStep::Book {
                        return Err(refused(entry));
                    }
                    Some(now)
                }
            };
            // As any reservation: an active, paid, usable ticket.
            crate::tickets::require_ticket(tx, orq, code)?.check_can_reserve(now)?;
            // Tomorrow's too: a slot just after midnight is in its early
            // grace before it (slots end the day they start).
            let today = now.with_timezone(&venue.timezone).date_naive();
            let slots: Vec<Slot> = tx
                .prepare_cached(&format!(
                    "SELECT {} FROM reservation_slots WHERE orq = ?1 AND venue_id = ?2 AND date IN (?3, ?4)",
                    crate::codec::SLOT_COLUMNS
                ))?
                .query_map(
                    params![
                        Sql(orq),
                        Sql(venue.id),
                        today.to_string(),
                        today.succ_opt().unwrap_or(today).to_string()
                    ],
                    crate::codec::slot,
                )?
                .collect::<rusqlite::Result<_>>()?;
            let Some(slot) = walkup_slots(&slots, &venue, now).into_iter().next().cloned() else {
                return Err(refused(no_place_left(code, "no slot open now has a free place")));
            };
            crate::slots::change_booking(tx, &slot, 1, now)?;
            write_walkup_reservation(tx, orq, code, ReservationId(uuid::Uuid::now_v7()), &slot, now)?;
            // A cancelled reservation row was reused: its id is the one.
            let id: Sql<ReservationId> = tx.query_row(
                "SELECT id FROM ticket_reservations WHERE ticket_id = ?1 AND orq = ?2",
                params![Sql(code), Sql(orq)],
                |r| r.get(0),
            )?;
            Ok(WalkupBooking {
                ticket_code: code.clone(),
                reservation_id: id.0,
                slot_id: slot.id,
                reserved_at: now,
                activated_at,
            })
        })
    }

    /// The gate's side of an online walk-up: the reservation the server
    /// made (`booking`) written into this replica as the next pull will
    /// bring it, then the holder admitted by the rules like any scan (the
    /// verification queued for upload). A `walkup` event marked online is
    /// queued too: it books nothing on the server, but lets an undo of this
    /// admission find the walk-up and release it. The slot's count stays as pulled: the next pull brings
    /// the server's, which counts this booking. `None`: the replica does
    /// not hold the ticket or the slot yet (a ticket never reserved at this
    /// venue): nothing written, pull first.
    pub fn apply_online_walkup(
        &self,
        orq: Orq,
        booking: &WalkupBooking,
        operator: OperatorId,
        gate: &Gate,
        now: DateTime<Utc>,
    ) -> Result<Option<Verdict>> {
        let now = chrono::SubsecRound::trunc_subsecs(now, 3);
        let code = &booking.ticket_code;
        let written = self.write(|tx| {
            let Some(slot) = crate::slots::load_slot(tx, orq, booking.slot_id)? else {
                return Ok(None);
            };
            if crate::tickets::load_ticket(tx, orq, code)?.is_none() {
                return Ok(None);
            }
            if let Some(at) = booking.activated_at {
                tx.prepare_cached(
                    "UPDATE tickets SET activation_status = 'active', activated_at = ?1, status = 'ACTIVATED', \
                     updated_at = ?1 WHERE ticket_code = ?2 AND orq = ?3 AND activation_status = 'inactive'",
                )?
                .execute(params![ts(at), Sql(code), Sql(orq)])?;
            }
            // Pulled already (a sync round since the booking): as it is.
            let pulled: bool = tx
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM ticket_reservations WHERE id = ?1 AND status IN ('RESERVED', 'VERIFIED'))",
                )?
                .query_row(params![Sql(booking.reservation_id)], |r| r.get(0))?;
            if !pulled {
                write_walkup_reservation(
                    tx,
                    orq,
                    code,
                    booking.reservation_id,
                    &slot,
                    booking.reserved_at,
                )?;
            }
            // Reported like a walk-up from the lease, marked online: an undo
            // of this admission finds it (here and on the server) and
            // releases the reservation; it spends no leased place.
            let v = admit_walkup(
                tx,
                orq,
                code,
                &slot,
                booking.reservation_id,
                true,
                operator,
                gate,
                now,
            )?;
            Ok(Some(v))
        });
        match written {
            Err(crate::StoreError::Domain(DomainError::Refused(v))) => Ok(Some(*v)),
            other => other,
        }
    }

    /// What a supervisor at this gate sees of the venue's operations today
    /// (the sync screen): the walk-up places this gate holds per slot, the
    /// admissions undone here, and the no-shows released at the venue, as
    /// this replica has them.
    pub fn gate_ops_summary(
        &self,
        orq: Orq,
        venue: VenueId,
        now: DateTime<Utc>,
    ) -> Result<GateOpsSummary> {
        self.read(|tx| {
            let v = crate::venues::require_venue(tx, orq, venue)?;
            let since = ts(day_start(v.timezone, now));
            let mut leases = Vec::new();
            let held: Vec<(String, i64)> = tx
                .prepare_cached("SELECT slot_id, places FROM walkup_leases WHERE places > 0 ORDER BY slot_id")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (id, places) in held {
                let Ok(id) = id.parse::<SlotId>() else { continue };
                if let Some(slot) = crate::slots::load_slot(tx, orq, id)? {
                    leases.push((slot, places));
                }
            }
            leases.sort_by_key(|(s, _)| (s.date, s.start_time));
            let undos = tx
                .prepare_cached(
                    "SELECT entity_id, operator_id, device_time, json_extract(payload, '$.reason') FROM outbox \
                     WHERE kind = 'undo' AND device_time >= ?1 ORDER BY device_time DESC LIMIT 50",
                )?
                .query_map([&since], |r| {
                    Ok(UndoneHere {
                        ticket_code: r.get(0)?,
                        operator_id: r.get::<_, Option<i64>>(1)?.map(OperatorId),
                        at: r.get::<_, Ts>(2)?.0,
                        reason: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let no_shows: i64 = tx
                .prepare_cached(
                    "SELECT count(*) FROM ticket_reservations r JOIN reservation_slots s ON s.id = r.slot_id \
                     WHERE r.orq = ?1 AND s.venue_id = ?2 AND r.no_show_at >= ?3",
                )?
                .query_row(params![Sql(orq), Sql(venue), since], |r| r.get(0))?;
            Ok(GateOpsSummary {
                leases,
                undos,
                no_shows_today: no_shows,
            })
        })
    }

    /// The places this gate may still book walk-ups from, per slot.
    pub fn walkup_leases(&self) -> Result<Vec<SlotPlaces>> {
        self.read(|tx| {
            let Some((device, _)) = this_device(tx)? else {
                return Ok(Vec::new());
            };
            lease_rows(tx, device)
        })
    }

    /// Before a lease refresh: this gate's walk-ups (and late no-shows let
    /// in on a leased place) not uploaded yet per slot (what the server must
    /// keep for them), and the outbox's high-water mark. The lease is NOT
    /// set aside: walk-ups go on being booked from it while the request is
    /// in flight, and [`Store::apply_leases`] counts them against the answer.
    pub fn lease_request(&self) -> Result<LeaseAsk> {
        self.read(|tx| {
            if this_device(tx)?.is_none() {
                return Ok(LeaseAsk::default());
            }
            let mark: i64 =
                tx.query_row("SELECT coalesce(max(rowid), 0) FROM outbox", [], |r| {
                    r.get(0)
                })?;
            let pending = lease_uses(tx, "state = 'pending'", 0)?;
            Ok(LeaseAsk { pending, mark })
        })
    }

    /// The server's answer to the refresh `ask`: the gate holds `granted`
    /// places per slot, of which `ask.pending` are its walk-ups on their
    /// way, and the walk-ups booked from the lease since the request (while
    /// it was in flight) are spent too; it may book the rest. An answer to a
    /// request older than one already applied (another sync engine's, on
    /// the same database) is ignored: it would restore a stale lease.
    /// Returns whether it was applied.
    pub fn apply_leases(
        &self,
        granted: &[SlotPlaces],
        ask: &LeaseAsk,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.write(|tx| {
            let Some((device, _)) = this_device(tx)? else {
                return Ok(false);
            };
            let applied: i64 = tx
                .query_row(
                    "SELECT value FROM device_settings WHERE key = 'lease_mark'",
                    [],
                    |r| r.get::<_, String>(0),
                )
                .optional()?
                .and_then(|v| v.parse().ok())
                .unwrap_or(-1);
            if ask.mark < applied {
                return Ok(false);
            }
            let orq: i64 = tx.query_row("SELECT orq FROM device_identity", [], |r| r.get(0))?;
            let since = lease_uses(tx, "1 = 1", ask.mark)?;
            let spent = |slot: SlotId| {
                ask.pending
                    .iter()
                    .chain(&since)
                    .filter(|p| p.slot_id == slot)
                    .map(|p| p.places)
                    .sum::<i64>()
            };
            let current = lease_rows(tx, device)?;
            for g in granted {
                let places = (g.places - spent(g.slot_id)).max(0);
                // Unchanged: not written.
                if current.iter().any(|c| c.slot_id == g.slot_id && c.places == places) {
                    continue;
                }
                tx.execute(
                    "INSERT INTO walkup_leases (orq, device_id, slot_id, places, updated_at) VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (device_id, slot_id) DO UPDATE SET places = excluded.places, updated_at = excluded.updated_at",
                    params![orq, device, Sql(g.slot_id), places, ts(now)],
                )?;
            }
            for c in current.iter().filter(|c| !granted.iter().any(|g| g.slot_id == c.slot_id)) {
                tx.execute(
                    "DELETE FROM walkup_leases WHERE device_id = ?1 AND slot_id = ?2",
                    params![device, Sql(c.slot_id)],
                )?;
            }
            tx.execute(
                "INSERT INTO device_settings (key, value) VALUES ('lease_mark', ?1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [ask.mark.to_string()],
            )?;
            Ok(true)
        })
    }

    /// On the server, during a gate's sync: its lease of each of today's
    /// slots at its venue is set to what `domain::venue_ops::lease_grant`
    /// says (taken from or given back to the slot's count in this same
    /// transaction); a slot whose entry window has closed gets its unused
    /// places back. Returns what the gate holds now.
    pub fn refresh_leases(
        &self,
        device: &DeviceInfo,
        pending: &[SlotPlaces],
        now: DateTime<Utc>,
    ) -> Result<Vec<SlotPlaces>> {
        let orq = Orq(device.orq);
        self.write(|tx| {
            let venue = crate::venues::require_venue(tx, orq, VenueId(device.venue_id))?;
            let per_gate = venue.gate.ops().walkup_lease_places;
            let today = now.with_timezone(&venue.timezone).date_naive();
            let mut ids: Vec<String> = tx
                .prepare_cached(
                    "SELECT id FROM reservation_slots WHERE orq = ?1 AND venue_id = ?2 AND date = ?3 \
                     UNION SELECT slot_id FROM walkup_leases WHERE device_id = ?4",
                )?
                .query_map(
                    params![Sql(orq), Sql(venue.id), today.to_string(), device.device_id],
                    |r| r.get(0),
                )?
                .collect::<rusqlite::Result<_>>()?;
            ids.sort();
            ids.dedup();
            for id in ids {
                let Ok(id) = id.parse::<SlotId>() else { continue };
                let Some(slot) = crate::slots::load_slot(tx, orq, id)? else { continue };
                let (held, recalled): (i64, bool) = tx
                    .prepare_cached(
                        "SELECT places, recalled_at IS NOT NULL FROM walkup_leases WHERE device_id = ?1 AND slot_id = ?2",
                    )?
                    .query_row(params![device.device_id, Sql(id)], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?
                    .unwrap_or((0, false));
                let owed = pending
                    .iter()
                    .filter(|p| p.slot_id == id)
                    .map(|p| p.places)
                    .sum::<i64>();
                let open = slot.venue_id == venue.id && walkup_open(&slot, &venue, now);
                // A recalled lease (a supervisor's take-back) keeps only what
                // this gate's walk-ups on their way need, then is gone.
                let places = if recalled {
                    recalled_grant(held, owed)
                } else {
                    lease_grant(
                        per_gate,
                        slot.total_capacity,
                        slot.booked_count,
                        held,
                        owed,
                        open,
                    )
                };
                // Nothing changed: nothing written (a refresh runs every round).
                if places == held && (places > 0 || !recalled) {
                    continue;
                }
                if places != held {
                    crate::slots::change_booking(tx, &slot, places - held, now)?;
                }
                if places == 0 {
                    tx.execute(
                        "DELETE FROM walkup_leases WHERE device_id = ?1 AND slot_id = ?2",
                        params![device.device_id, Sql(id)],
                    )?;
                } else {
                    tx.execute(
                        "INSERT INTO walkup_leases (orq, device_id, slot_id, places, updated_at) VALUES (?1, ?2, ?3, ?4, ?5) \
                         ON CONFLICT (device_id, slot_id) DO UPDATE SET places = excluded.places, updated_at = excluded.updated_at",
                        params![Sql(orq), device.device_id, Sql(id), places, ts(now)],
                    )?;
                }
            }
            lease_rows(tx, device.device_id)
        })
    }
}

fn lease_rows(tx: &Transaction<'_>, device: i64) -> Result<Vec<SlotPlaces>> {
    Ok(tx
        .prepare_cached(
            "SELECT slot_id, places FROM walkup_leases WHERE device_id = ?1 AND places > 0 ORDER BY slot_id",
        )?
        .query_map([device], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .filter_map(|(id, places)| Some(SlotPlaces { slot_id: id.parse().ok()?, places }))
        .collect())
}

/// What [`Store::gate_ops_summary`] shows a supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateOpsSummary {
    /// The slots this gate holds walk-up places of, and how many.
    pub leases: Vec<(Slot, i64)>,
    /// Admissions undone at this gate today, the latest first (at most 50).
    pub undos: Vec<UndoneHere>,
    /// Reservations at the venue released as no-shows today.
    pub no_shows_today: i64,
}

/// One admission an operator undid at this gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoneHere {
    pub ticket_code: String,
    pub operator_id: Option<OperatorId>,
    pub at: DateTime<Utc>,
    pub reason: String,
}

/// A gate's lease refresh request, as [`Store::lease_request`] makes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseAsk {
    /// Walk-ups (and late no-shows on a leased place) not uploaded yet.
    pub pending: Vec<SlotPlaces>,
    /// The outbox's last row when the request was made.
    pub mark: i64,
}

/// The leased places this gate's outbox events spent, per slot: walk-ups
/// and late no-shows let in on a leased place, of rows after `after`
/// matching `filter` (a fixed SQL condition).
fn lease_uses(tx: &Transaction<'_>, filter: &str, after: i64) -> Result<Vec<SlotPlaces>> {
    let sql = format!(
        "SELECT coalesce(json_extract(payload, '$.slot_id'), json_extract(payload, '$.lease_slot_id')), count(*) \
         FROM outbox WHERE {filter} AND rowid > ?1 \
           AND ((kind = 'walkup' AND json_type(payload, '$.online') IS NOT 'true') \
                OR (kind = 'verify' AND json_extract(payload, '$.lease_slot_id') IS NOT NULL)) \
         GROUP BY 1"
    );
    Ok(tx
        .prepare_cached(&sql)?
        .query_map([after], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .filter_map(|(id, places)| {
            Some(SlotPlaces {
                slot_id: id.parse().ok()?,
                places,
            })
        })
        .collect())
}

/// An uploaded walk-up on the server: the gate booked `ticket_code` into
/// `slot_id` from its lease. One leased place becomes the reservation (the
/// slot's count is unchanged: the place was counted when leased). Judged
/// like a gate would: a ticket with a live reservation by now, or no longer
/// valid, is a conflict and nothing changes; a lease already used up falls
/// back to a free place of the slot, and without one it is a NO_PLACE_LEFT
/// conflict (the slot never goes over capacity).
pub(crate) fn apply_walkup_event(
    tx: &Transaction<'_>,
    device: &DeviceInfo,
    event: &Event,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<std::result::Result<EventResult, DomainError>> {
    let orq = Orq(device.orq);
    let field = |name: &'static str| {
        event
            .payload
            .get(name)
            .and_then(|v| v.as_str())
            .ok_or_else(|| DomainError::invalid(name, "missing in event payload"))
    };
    let parsed = (|| -> std::result::Result<(TicketCode, SlotId, ReservationId), DomainError> {
        Ok((
            TicketCode::parse(field("ticket_code")?)?,
            field("slot_id")?.parse()?,
            ReservationId(
                uuid::Uuid::parse_str(field("reservation_id")?)
                    .map_err(|_| DomainError::invalid("reservation_id", "must be a UUID"))?,
            ),
        ))
    })();
    let (code, slot_id, id) = match parsed {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    if event.operator_id.is_none() {
        return Ok(Err(DomainError::invalid(
            "operator_id",
            "a walk-up names its operator",
        )));
    }
    let Some(slot) = crate::slots::load_slot(tx, orq, slot_id)? else {
        return Ok(Err(DomainError::NotFound { entity: "slot" }));
    };
    if slot.venue_id.0 != device.venue_id {
        return Ok(Err(DomainError::NotFound { entity: "slot" }));
    }
    if crate::tickets::load_ticket(tx, orq, &code)?.is_none() {
        return Ok(Err(DomainError::NotFound { entity: "ticket" }));
    }
    if walkup_was_online(&event.payload) {
        // Booked by this server (`POST /api/sync/walkup`): the gate reports
        // it so that an undo of the admission releases it. Nothing to book:
        // applied when it is that ticket's live reservation in that slot;
        // a claim about any other reservation changes nothing.
        let live: bool = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM ticket_reservations WHERE id = ?1 AND ticket_id = ?2 \
                 AND slot_id = ?3 AND orq = ?4 AND status IN ('RESERVED', 'VERIFIED'))",
            )?
            .query_row(params![Sql(id), Sql(&code), Sql(slot_id), Sql(orq)], |r| r.get(0))?;
        return Ok(Ok(EventResult {
            event_id: event.event_id,
            status: if live {
                EventStatus::Applied
            } else {
                EventStatus::Conflict
            },
            reason: (!live).then(|| "WALKUP_NOT_BOOKED".to_owned()),
            facts: (!live).then(|| {
                serde_json::json!({ "kind": "WALKUP_NOT_BOOKED", "ticket_code": code, "slot_id": slot_id, "reservation_id": id })
            }),
            received_at: now,
        }));
    }
    let conflict = |reason: &str| EventResult {
        event_id: event.event_id,
        status: EventStatus::Conflict,
        reason: Some(reason.to_owned()),
        facts: Some(serde_json::json!({ "kind": reason, "ticket_code": code, "slot_id": slot_id })),
        received_at: now,
    };
    let gate = Gate {
        venue_id: Some(VenueId(device.venue_id)),
        ..Default::default()
    };
    let entry = crate::gate::verdict_in(tx, orq, &code, &gate, at)?;
    // A deferred ticket's activation is its own event, uploaded before the
    // walk-up: a ticket still inactive here was not activated (refused).
    if walkup_step(&entry) != WalkupStep::Book {
        return Ok(Ok(conflict(entry.verdict.code())));
    }
    let leased = tx
        .prepare_cached(
            "UPDATE walkup_leases SET places = places - 1, updated_at = ?1 \
             WHERE device_id = ?2 AND slot_id = ?3 AND places > 0",
        )?
        .execute(params![ts(now), device.device_id, Sql(slot_id)])?;
    if leased == 0 {
        // Beyond its lease a gate books like the gate would online: only a
        // slot open for walk-ups at the time, never a closed or another
        // day's one (a forged upload must not get around the booking rules).
        let venue = crate::venues::require_venue(tx, orq, VenueId(device.venue_id))?;
        if !walkup_open(&slot, &venue, at) || slot.booked_count >= slot.total_capacity {
            return Ok(Ok(conflict(VerdictCode::NoPlaceLeft.code())));
        }
        crate::slots::change_booking(tx, &slot, 1, now)?;
    }
    write_walkup_reservation(tx, orq, &code, id, &slot, at)?;
    Ok(Ok(EventResult {
        event_id: event.event_id,
        status: EventStatus::Applied,
        reason: None,
        facts: None,
        received_at: now,
    }))
}

/// The places `device` holds of `slot` (its walk-up lease; 0 without one).
pub(crate) fn leased_places(tx: &Transaction<'_>, device: i64, slot: SlotId) -> Result<i64> {
    Ok(tx
        .prepare_cached("SELECT places FROM walkup_leases WHERE device_id = ?1 AND slot_id = ?2")?
        .query_row(params![device, Sql(slot)], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// A released no-show let in late takes a place back in `slot`, from where
/// `domain::no_show::place_back` said (`device`'s lease, or a free place):
/// its reservation is live again (the caller's entry then verifies it).
pub(crate) fn take_place_back(
    tx: &Transaction<'_>,
    orq: Orq,
    device: Option<i64>,
    slot: &Slot,
    reservation: ReservationId,
    place: PlaceBack,
    now: DateTime<Utc>,
) -> Result<()> {
    match (place, device) {
        (PlaceBack::Lease, Some(device)) => {
            let taken = tx
                .prepare_cached(
                    "UPDATE walkup_leases SET places = places - 1, updated_at = ?1 \
                     WHERE device_id = ?2 AND slot_id = ?3 AND places > 0",
                )?
                .execute(params![ts(now), device, Sql(slot.id)])?;
            // The caller decided on a lease read earlier: an empty one would
            // let the no-show in on no place. Fail and roll back instead.
            if taken != 1 {
                return Err(StoreError::Engine(format!(
                    "the lease of slot {} emptied before a place was taken back",
                    slot.id
                )));
            }
        }
        (PlaceBack::Free, _) => crate::slots::change_booking(tx, slot, 1, now)?,
        _ => {
            return Err(DomainError::invalid("place", "no place to take back").into());
        }
    }
    let revived = tx
        .prepare_cached(
            "UPDATE ticket_reservations SET status = 'RESERVED', no_show_at = NULL, updated_at = ?1 \
             WHERE id = ?2 AND orq = ?3 AND status = 'CANCELLED'",
        )?
        .execute(params![ts(now), Sql(reservation), Sql(orq)])?;
    // A place was taken for exactly this released reservation.
    if revived != 1 {
        return Err(StoreError::Engine(format!(
            "reservation {} was not a released no-show when its place was taken back",
            reservation.0
        )));
    }
    Ok(())
}

/// Where a released no-show shown `verdict` (`NO_SHOW_RELEASED`) would
/// take a place back at this database (a gate: its lease of the slot, else
/// a free place as its replica knows; the server: a free place), and the
/// verdict with it (`NO_PLACE_LEFT` when nowhere). Other verdicts pass.
pub(crate) fn no_show_place(
    tx: &Transaction<'_>,
    orq: Orq,
    verdict: Verdict,
) -> Result<(Verdict, Option<NoShowPlace>)> {
    if verdict.verdict != VerdictCode::NoShowReleased {
        return Ok((verdict, None));
    }
    let (Some(slot_id), Some(reservation)) = (verdict.slot_id, verdict.reservation_id) else {
        return Ok((verdict, None));
    };
    let Some(slot) = crate::slots::load_slot(tx, orq, slot_id)? else {
        return Ok((verdict, None));
    };
    let device = this_device(tx)?.map(|(d, _)| d);
    let leased = match device {
        Some(d) => leased_places(tx, d, slot.id)?,
        None => 0,
    };
    let place = crate::domain::no_show::place_back(leased, &slot);
    let verdict = crate::domain::no_show::without_place(verdict, place);
    Ok((
        verdict,
        Some(NoShowPlace {
            place,
            device,
            slot,
            reservation,
        }),
    ))
}

/// What [`no_show_place`] found for a released no-show.
pub(crate) struct NoShowPlace {
    pub place: PlaceBack,
    pub device: Option<i64>,
    pub slot: Slot,
    pub reservation: ReservationId,
}

/// An undone walk-up's reservation (the ticket's live one in `slot`; a
/// walk-up may have reused the ticket's cancelled row, so not by the event's
/// `reservation`) is cancelled and its place goes back where it came
/// from: `device`'s lease of the slot (`domain::venue_ops::undo_place`), or
/// the slot when that lease is gone. Returns whether it was released.
fn release_walkup(
    tx: &Transaction<'_>,
    orq: Orq,
    code: &TicketCode,
    (slot, online): &(String, bool),
    device: Option<i64>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let slot = slot.as_str();
    let cancelled = tx
        .prepare_cached(
            "UPDATE ticket_reservations SET status = 'CANCELLED', updated_at = ?1 \
             WHERE slot_id = ?2 AND ticket_id = ?3 AND orq = ?4 AND status = 'RESERVED'",
        )?
        .execute(params![ts(now), slot, Sql(code), Sql(orq)])?;
    if cancelled == 0 {
        return Ok(false);
    }
    tx.prepare_cached(
        "UPDATE tickets SET status = 'ACTIVATED', reserved_at = NULL, updated_at = ?1 \
         WHERE ticket_code = ?2 AND orq = ?3",
    )?
    .execute(params![ts(now), Sql(code), Sql(orq)])?;
    let leased = match device.filter(|_| !online) {
        Some(d) => tx
            .prepare_cached(
                "UPDATE walkup_leases SET places = places + 1, updated_at = ?1 \
                 WHERE device_id = ?2 AND slot_id = ?3",
            )?
            .execute(params![ts(now), d, slot])?,
        None => 0,
    };
    match crate::domain::venue_ops::undo_place(!online, leased > 0) {
        crate::domain::venue_ops::UndoPlace::Lease => {}
        crate::domain::venue_ops::UndoPlace::Slot => {
            if let Some(s) = crate::slots::load_slot(tx, orq, slot.parse()?)? {
                crate::slots::change_booking(tx, &s, -1, now)?;
            }
        }
    }
    Ok(true)
}

// ---- undo ----

/// Takes back an admission: the ticket and its reservation as they were
/// before it (the verification rows stay, for the audit), and `passage`
/// (an `out` marked `UNDO`) so occupancy counts the holder out again.
pub(crate) fn revert_admission(
    tx: &Transaction<'_>,
    orq: Orq,
    code: &TicketCode,
    passage: Option<&PassageFact<'_>>,
    now: DateTime<Utc>,
) -> Result<()> {
    let reserved = tx
        .prepare_cached(
            "UPDATE ticket_reservations SET status = 'RESERVED', updated_at = ?1 \
             WHERE ticket_id = ?2 AND orq = ?3 AND status = 'VERIFIED'",
        )?
        .execute(params![ts(now), Sql(code), Sql(orq)])?;
    tx.prepare_cached(
        "UPDATE tickets SET verified_at = NULL, verified_by = NULL, verified_gate = NULL, left_at = NULL, \
         status = CASE WHEN ?1 THEN 'RESERVED' ELSE status END, \
         activation_status = CASE activation_status WHEN 'redeemed' THEN 'active' ELSE activation_status END, \
         updated_at = ?2 WHERE ticket_code = ?3 AND orq = ?4",
    )?
    .execute(params![reserved > 0, ts(now), Sql(code), Sql(orq)])?;
    match passage {
        Some(p) => record_passage(tx, p),
        None => Ok(()),
    }
}

/// An undo's `out` passage.
fn undo_passage<'a>(
    orq: Orq,
    venue: VenueId,
    code: &'a TicketCode,
    operator: OperatorId,
    at: DateTime<Utc>,
) -> PassageFact<'a> {
    PassageFact {
        orq,
        venue,
        code,
        direction: Direction::Out,
        reentry: false,
        at,
        device: None,
        operator: Some(operator),
        event_id: None,
        conflict: Some("UNDO"),
    }
}

/// A ticket's (verified_at, verified_by, left_at).
type UseOf = (
    Option<DateTime<Utc>>,
    Option<OperatorId>,
    Option<DateTime<Utc>>,
);

/// (verified_at, verified_by, left_at) of a ticket.
/// The device whose uploaded admission is the ticket's canonical one (the
/// verification at `verified_at`); `None` for an admission made at the
/// server itself (no device).
fn admitting_device(
    tx: &Transaction<'_>,
    orq: Orq,
    code: &TicketCode,
    verified_at: DateTime<Utc>,
) -> Result<Option<i64>> {
    Ok(tx
        .prepare_cached(
            "SELECT device_id FROM verifications WHERE orq = ?1 AND ticket_code = ?2 AND verified_at = ?3 \
             ORDER BY id LIMIT 1",
        )?
        .query_row(params![Sql(orq), Sql(code), ts(verified_at)], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .optional()?
        .flatten())
}

fn use_of(tx: &Transaction<'_>, orq: Orq, code: &TicketCode) -> Result<Option<UseOf>> {
    Ok(tx
        .prepare_cached(
            "SELECT verified_at, verified_by, left_at FROM tickets WHERE ticket_code = ?1 AND orq = ?2",
        )?
        .query_row(params![Sql(code), Sql(orq)], |r| {
            Ok((
                r.get::<_, Option<Ts>>(0)?.map(|t| t.0),
                r.get::<_, Option<i64>>(1)?.map(OperatorId),
                r.get::<_, Option<Ts>>(2)?.map(|t| t.0),
            ))
        })
        .optional()?)
}

impl Store {
    /// An operator undoes their own admission of `code` within 60 s, with a
    /// reason (`domain::venue_ops::check_undo`): the ticket is as before it,
    /// and the undo goes to the server as an event like any other (the
    /// admission stays in the audit, the undo beside it). Returns what the
    /// gate says about the ticket now.
    pub fn undo_admission(
        &self,
        orq: Orq,
        code: &TicketCode,
        operator: OperatorId,
        reason: &str,
        gate: &Gate,
        now: DateTime<Utc>,
    ) -> Result<Verdict> {
        let now = chrono::SubsecRound::trunc_subsecs(now, 3);
        self.write(|tx| {
            let (verified_at, by, left) =
                use_of(tx, orq, code)?.ok_or(DomainError::NotFound { entity: "ticket" })?;
            let reason =
                crate::domain::venue_ops::check_undo(verified_at, by, left, operator, reason, now)?;
            let entry = crate::gate::verdict_in(tx, orq, code, gate, now)?;
            let venue = entry.venue_id.or(gate.venue_id);
            let passage = venue.map(|v| undo_passage(orq, v, code, operator, now));
            revert_admission(tx, orq, code, passage.as_ref(), now)?;
            // The admission undone was a walk-up this gate booked (the
            // walk-up and its admission are written in one transaction, at
            // the same time): the undo releases that reservation too, its
            // place back on this gate's lease. Any other admission of the
            // ticket (a reservation made since, verified here) keeps its
            // reservation.
            let walkup: Option<(String, bool)> = match verified_at {
                Some(admitted) => tx
                    .prepare_cached(
                        "SELECT json_extract(payload, '$.slot_id'), json_type(payload, '$.online') IS 'true' FROM outbox \
                         WHERE kind = 'walkup' AND entity_id = ?1 AND device_time = ?2 \
                         ORDER BY rowid DESC LIMIT 1",
                    )?
                    .query_row(params![code.as_str(), ts(admitted)], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?,
                None => None,
            };
            let device = this_device(tx)?.map(|(d, _)| d);
            if let Some(slot) = walkup {
                release_walkup(tx, orq, code, &slot, device, now)?;
            }
            crate::sync::record_local_event(
                tx,
                "undo",
                "tickets",
                code.as_str(),
                serde_json::json!({ "ticket_code": code, "reason": reason, "verified_at": verified_at }),
                Some(operator),
                now,
            )?;
            let mut v = crate::gate::verdict_in(tx, orq, code, gate, now)?;
            v.message = format!("Admission undone ({reason}): {}", v.message);
            Ok(v)
        })
    }
}

/// An uploaded undo on the server, judged by the same rule
/// (`check_undo`) against the server's rows at the event's time: the
/// operator's own admission, within 60 s. Otherwise a conflict with the
/// reason, and the admission stands.
pub(crate) fn apply_undo_event(
    tx: &Transaction<'_>,
    device: &DeviceInfo,
    event: &Event,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<std::result::Result<EventResult, DomainError>> {
    let orq = Orq(device.orq);
    let code = match event
        .payload
        .get("ticket_code")
        .and_then(|v| v.as_str())
        .ok_or_else(|| DomainError::invalid("ticket_code", "missing in event payload"))
        .and_then(TicketCode::parse)
    {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    let reason = event
        .payload
        .get("reason")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let Some(operator) = event.operator_id.map(OperatorId) else {
        return Ok(Err(DomainError::invalid(
            "operator_id",
            "an undo names its operator",
        )));
    };
    let Some((verified_at, by, left)) = use_of(tx, orq, &code)? else {
        return Ok(Err(DomainError::NotFound { entity: "ticket" }));
    };
    // Only the gate that let the holder in may take it back: a device token
    // (or a stolen gate) may not undo admissions made elsewhere, at this or
    // another venue, whatever operator it names.
    let own = match verified_at {
        Some(v) => admitting_device(tx, orq, &code, v)? == Some(device.device_id),
        None => true, // check_undo refuses: not let in
    };
    let judged = if own {
        crate::domain::venue_ops::check_undo(verified_at, by, left, operator, reason, at)
    } else {
        Err(DomainError::invalid(
            "device",
            "only the gate that let the holder in may undo it",
        ))
    };
    if let Err(e) = judged {
        let why = match &e {
            DomainError::InvalidInput {
                field: "reason", ..
            } => return Ok(Err(e)),
            _ => "UNDO_REFUSED",
        };
        return Ok(Ok(EventResult {
            event_id: event.event_id,
            status: EventStatus::Conflict,
            reason: Some(why.into()),
            facts: Some(
                serde_json::json!({ "kind": why, "ticket_code": code, "server": e.to_string() }),
            ),
            received_at: now,
        }));
    }
    let passage = PassageFact {
        device: Some(device.device_id),
        event_id: Some(event.event_id.to_string()),
        ..undo_passage(orq, VenueId(device.venue_id), &code, operator, at)
    };
    revert_admission(tx, orq, &code, Some(&passage), now)?;
    // The admission undone was this gate's walk-up (applied from its
    // upload): the undo releases that reservation too, its place back on the
    // lease. The gate writes a walk-up and its admission in one transaction
    // at the same time: the walk-up is the one whose device time is that of
    // the verify event behind the ticket's admission (its canonical
    // verification). Another admission of the ticket at this gate (a
    // reservation made since) is not a walk-up's: its reservation stays.
    let walkup: Option<(String, bool)> = match verified_at {
        Some(admitted) => tx
            .prepare_cached(
                "SELECT json_extract(w.payload, '$.slot_id'), json_type(w.payload, '$.online') IS 'true' \
                 FROM verifications v \
                 JOIN sync_events e ON e.event_id = v.event_id \
                 JOIN sync_events w ON w.device_id = e.device_id AND w.device_time = e.device_time \
                 WHERE v.id = (SELECT id FROM verifications WHERE orq = ?2 AND ticket_code = ?3 \
                                 AND verified_at = ?4 ORDER BY id LIMIT 1) \
                   AND v.device_id = ?1 AND w.orq = ?2 AND w.kind = 'walkup' \
                   AND json_extract(w.payload, '$.ticket_code') = ?3 \
                   AND json_extract(w.result, '$.status') = 'applied' \
                 ORDER BY w.received_at DESC LIMIT 1",
            )?
            .query_row(
                params![device.device_id, Sql(orq), code.as_str(), ts(admitted)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?,
        None => None,
    };
    if let Some(slot) = walkup {
        release_walkup(tx, orq, &code, &slot, Some(device.device_id), now)?;
    }
    Ok(Ok(EventResult {
        event_id: event.event_id,
        status: EventStatus::Applied,
        reason: None,
        facts: None,
        received_at: now,
    }))
}

#[cfg(test)]
mod no_show_place_tests {
    //! Capacity safety at the gate: a released no-show is let in late only
    //! on a place taken back (the gate's lease of the slot, else a free place
    //! its replica knows of); without one the verdict is a red NO_PLACE_LEFT.
    //! The lease refresh keeps a leased place taken until its upload arrives,
    //! and the server then honours the admission without going over capacity.
    use super::*;
    use crate::domain::{
        ActivationMode, Contact, NewSlot, NewTicket, ReservationStatus, Role, SlotStatus,
    };
    use crate::ReserveRequest;
    use chrono::TimeZone;

    fn utc(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 12, 1, h, m, 0).unwrap()
    }

    #[test]
    fn a_late_no_show_takes_the_gates_leased_place_or_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let server = Store::open(dir.path().join("server.db")).unwrap();
        let orq = Orq(1);
        let early = utc(7, 0);
        let venue = server.add_venue(orq, "Zoo", "UTC", early).unwrap();
        let patch: crate::domain::venue::VenuePatch =
            serde_json::from_str(r#"{"walkup_lease_places": 1, "no_show_release_minutes": 20}"#)
                .unwrap();
        server.update_venue(orq, venue.id, &patch, early).unwrap();
        let op = server
            .add_operator(orq, Role::Operator, "Ana", None, early)
            .unwrap();
        let new = NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(2)).unwrap();
        let slot = server.create_slot(orq, &new, early).unwrap();
        let mut reservations = Vec::new();
        for code in ["N-1", "N-2", "C-1"] {
            let t = NewTicket::plain(code, ActivationMode::Immediate).unwrap();
            server.insert_tickets(orq, &[t], early).unwrap();
            if code != "C-1" {
                let req = ReserveRequest {
                    ticket: TicketCode::parse(code).unwrap(),
                    slot_id: slot.id,
                    contact: Contact::validate("a@example.com", "+12025551234").unwrap(),
                };
                reservations.push(server.reserve_slot(orq, &req, early).unwrap());
            }
        }
        // 09:20: both no-shows released; gate A leases a place; C-1 books
        // the other: the slot is full.
        assert_eq!(server.release_no_shows(utc(9, 20)).unwrap().len(), 2);
        let (_, device) = server.add_device(orq, venue.id, "Gate A", early).unwrap();
        let granted = server.refresh_leases(&device, &[], utc(9, 21)).unwrap();
        assert_eq!(granted.len(), 1);
        let req = ReserveRequest {
            ticket: TicketCode::parse("C-1").unwrap(),
            slot_id: slot.id,
            contact: Contact::validate("a@example.com", "+12025551234").unwrap(),
        };
        server.reserve_slot(orq, &req, utc(9, 22)).unwrap();
        assert_eq!(server.get_slot(orq, slot.id).unwrap().booked_count, 2);

        let gate_db = Store::open(dir.path().join("gate.db")).unwrap();
        gate_db.pair(&device, "http://server", "token").unwrap();
        let page = server
            .changes_since(orq, venue.id, 0, 5000, utc(9, 23))
            .unwrap();
        gate_db.apply_change_page(&page, None, utc(9, 23)).unwrap();
        let ask = gate_db.lease_request().unwrap();
        assert!(gate_db.apply_leases(&granted, &ask, utc(9, 23)).unwrap());
        let gate = Gate {
            venue_id: Some(venue.id),
            ..Gate::default()
        };
        let at = utc(10, 0);
        let n1 = TicketCode::parse("N-1").unwrap();
        let n2 = TicketCode::parse("N-2").unwrap();

        // N-1: amber (a leased place to take back); the operator lets them in.
        let v = gate_db.validate_ticket(orq, &n1, &gate, at).unwrap();
        assert_eq!(v.verdict, VerdictCode::NoShowReleased, "{v:?}");
        let v = gate_db
            .admit_by_decision(orq, b"N-1", VerdictCode::NoShowReleased, op.id, &gate, at)
            .unwrap();
        assert!(v.admit, "{v:?}");
        assert_eq!(gate_db.walkup_leases().unwrap(), vec![]);

        // N-2: no leased place left and the replica's slot is full: red.
        let v = gate_db.validate_ticket(orq, &n2, &gate, at).unwrap();
        assert_eq!(v.verdict, VerdictCode::NoPlaceLeft, "{v:?}");
        assert!(!v.verdict.needs_operator_decision());
        let v = gate_db
            .admit_by_decision(orq, b"N-2", VerdictCode::NoShowReleased, op.id, &gate, at)
            .unwrap();
        assert_eq!((v.verdict, v.admit), (VerdictCode::NoPlaceLeft, false));

        // A refresh before the upload keeps the place N-1 took.
        let ask = gate_db.lease_request().unwrap();
        assert_eq!(
            ask.pending,
            vec![SlotPlaces {
                slot_id: slot.id,
                places: 1
            }]
        );
        let regranted = server.refresh_leases(&device, &ask.pending, at).unwrap();
        assert_eq!(regranted.len(), 1, "the server keeps the place for N-1");
        assert_eq!(server.get_slot(orq, slot.id).unwrap().booked_count, 2);

        // The upload: N-1's admission is honoured from the lease, in capacity.
        let events: Vec<Event> = gate_db
            .pending_events()
            .unwrap()
            .into_iter()
            .map(|(e, _)| e)
            .collect();
        let results = server.apply_events(&device, &events, at, at).unwrap();
        assert!(
            results.iter().all(|r| r.status == EventStatus::Applied),
            "{results:?}"
        );
        let r1 = server.get_reservation(orq, reservations[0].id).unwrap();
        assert_eq!(r1.status, ReservationStatus::Verified);
        let after = server.get_slot(orq, slot.id).unwrap();
        assert_eq!(
            (after.booked_count, after.total_capacity, after.status),
            (2, 2, SlotStatus::Full)
        );
        assert_eq!(
            server
                .get_reservation(orq, reservations[1].id)
                .unwrap()
                .status,
            ReservationStatus::Cancelled
        );
    }

    /// The lease a no-show's place is taken from was read before the write:
    /// an emptied lease, or a reservation that is no longer a released
    /// no-show, fails the write (the caller's transaction rolls back)
    /// instead of letting someone in on no place.
    #[test]
    fn a_place_is_taken_back_only_from_a_lease_that_still_holds_one() {
        let dir = tempfile::tempdir().unwrap();
        let server = Store::open(dir.path().join("server.db")).unwrap();
        let orq = Orq(1);
        let early = utc(7, 0);
        let venue = server.add_venue(orq, "Zoo", "UTC", early).unwrap();
        let patch: crate::domain::venue::VenuePatch =
            serde_json::from_str(r#"{"no_show_release_minutes": 20}"#).unwrap();
        server.update_venue(orq, venue.id, &patch, early).unwrap();
        let new = NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(2)).unwrap();
        let slot = server.create_slot(orq, &new, early).unwrap();
        let t = NewTicket::plain("N-1", ActivationMode::Immediate).unwrap();
        server.insert_tickets(orq, &[t], early).unwrap();
        let req = ReserveRequest {
            ticket: TicketCode::parse("N-1").unwrap(),
            slot_id: slot.id,
            contact: Contact::validate("a@example.com", "+12025551234").unwrap(),
        };
        let reserved = server.reserve_slot(orq, &req, early).unwrap();
        assert_eq!(server.release_no_shows(utc(9, 20)).unwrap().len(), 1);
        let (_, device) = server.add_device(orq, venue.id, "Gate A", early).unwrap();
        let slot = server.get_slot(orq, slot.id).unwrap();
        let at = utc(10, 0);

        // No lease row (or an emptied one): refused, nothing revived.
        let err = server
            .write(|tx| {
                take_place_back(
                    tx,
                    orq,
                    Some(device.device_id),
                    &slot,
                    reserved.id,
                    PlaceBack::Lease,
                    at,
                )
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::Engine(_)), "{err:?}");
        let r = server.get_reservation(orq, reserved.id).unwrap();
        assert_eq!(r.status, ReservationStatus::Cancelled);

        // A free place revives it once; a second take-back finds it live.
        server
            .write(|tx| take_place_back(tx, orq, None, &slot, reserved.id, PlaceBack::Free, at))
            .unwrap();
        let r = server.get_reservation(orq, reserved.id).unwrap();
        assert_eq!(r.status, ReservationStatus::Reserved);
        let slot = server.get_slot(orq, slot.id).unwrap();
        assert_eq!(slot.booked_count, 1);
        let err = server
            .write(|tx| take_place_back(tx, orq, None, &slot, reserved.id, PlaceBack::Free, at))
            .unwrap_err();
        assert!(matches!(err, StoreError::Engine(_)), "{err:?}");
        assert_eq!(
            server.get_slot(orq, slot.id).unwrap().booked_count,
            1,
            "rolled back"
        );
    }
}

#[cfg(test)]
mod lease_refresh_tests {
    //! The gate's lease while a refresh is in flight: still usable (a
    //! walk-up is booked, not refused), counted against the answer; an
    //! answer to an older request (another sync engine's) restores nothing;
    //! and the server writes nothing when a refresh changes nothing.
    use super::*;
    use crate::domain::{ActivationMode, NewSlot, NewTicket, Role};
    use chrono::TimeZone;

    fn utc(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 12, 1, h, m, 0).unwrap()
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        server: Store,
        gate_db: Store,
        device: DeviceInfo,
        slot: Slot,
        op: OperatorId,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let server = Store::open(dir.path().join("server.db")).unwrap();
        let orq = Orq(1);
        let early = utc(7, 0);
        let venue = server.add_venue(orq, "Zoo", "UTC", early).unwrap();
        let patch: crate::domain::venue::VenuePatch =
            serde_json::from_str(r#"{"walkup_lease_places": 2}"#).unwrap();
        server.update_venue(orq, venue.id, &patch, early).unwrap();
        let op = server
            .add_operator(orq, Role::Operator, "Ana", None, early)
            .unwrap()
            .id;
        let new = NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(5)).unwrap();
        let slot = server.create_slot(orq, &new, early).unwrap();
        let codes: Vec<NewTicket> = ["W-1", "W-2", "W-3"]
            .iter()
            .map(|c| NewTicket::plain(c, ActivationMode::Immediate).unwrap())
            .collect();
        server.insert_tickets(orq, &codes, early).unwrap();
        // A gate holds tickets once reserved at its venue: reserved, then
        // cancelled (walk-up material).
        for code in ["W-1", "W-2", "W-3"] {
            let req = crate::ReserveRequest {
                ticket: TicketCode::parse(code).unwrap(),
                slot_id: slot.id,
                contact: crate::domain::Contact::validate("a@example.com", "+12025551234").unwrap(),
            };
            let r = server.reserve_slot(orq, &req, early).unwrap();
            server
                .cancel_reservation(orq, r.id, crate::domain::ChangedBy::Staff, early)
                .unwrap();
        }
        let (_, device) = server.add_device(orq, venue.id, "Gate A", early).unwrap();
        let gate_db = Store::open(dir.path().join("gate.db")).unwrap();
        gate_db.pair(&device, "http://server", "token").unwrap();
        let page = server.changes_since(orq, venue.id, 0, 5000, early).unwrap();
        gate_db.apply_change_page(&page, None, early).unwrap();
        Fixture {
            _dir: dir,
            server,
            gate_db,
            device,
            slot,
            op,
        }
    }

    fn gate(f: &Fixture) -> Gate {
        Gate {
            venue_id: Some(f.slot.venue_id),
            ..Gate::default()
        }
    }

    /// One sync round's refresh, the request made at `ask`.
    fn answer(f: &Fixture, ask: &LeaseAsk, at: DateTime<Utc>) -> Vec<SlotPlaces> {
        f.server
            .refresh_leases(&f.device, &ask.pending, at)
            .unwrap()
    }

    #[test]
    fn a_walkup_while_the_refresh_is_in_flight_is_booked_and_counted() {
        let f = fixture();
        let at = utc(9, 30);
        let ask = f.gate_db.lease_request().unwrap();
        let granted = answer(&f, &ask, at);
        f.gate_db.apply_leases(&granted, &ask, at).unwrap();
        assert_eq!(f.gate_db.walkup_leases().unwrap()[0].places, 2);

        // The next round's request is in flight: a walk-up is booked from
        // the lease all the same (before: NO_PLACE_LEFT).
        let ask = f.gate_db.lease_request().unwrap();
        let v = f
            .gate_db
            .book_walkup(Orq(1), b"W-1", f.op, &gate(&f), at)
            .unwrap();
        assert_eq!(v.verdict, VerdictCode::Admit, "{v:?}");
        // The server answered before it saw that walk-up: 2 places; the
        // gate may book only the one left.
        let granted = answer(&f, &ask, at);
        assert_eq!(granted[0].places, 2);
        assert!(f.gate_db.apply_leases(&granted, &ask, at).unwrap());
        assert_eq!(f.gate_db.walkup_leases().unwrap()[0].places, 1);
        let v = f
            .gate_db
            .book_walkup(Orq(1), b"W-2", f.op, &gate(&f), at)
            .unwrap();
        assert_eq!(v.verdict, VerdictCode::Admit, "{v:?}");
        let v = f
            .gate_db
            .book_walkup(Orq(1), b"W-3", f.op, &gate(&f), at)
            .unwrap();
        assert_eq!(v.verdict, VerdictCode::NoPlaceLeft, "{v:?}");
        // Both walk-ups are honoured on upload, within the two places.
        let events: Vec<_> = f
            .gate_db
            .pending_events()
            .unwrap()
            .into_iter()
            .map(|(e, _)| e)
            .collect();
        let results = f.server.apply_events(&f.device, &events, at, at).unwrap();
        assert!(
            results
                .iter()
                .all(|r| r.status == crate::domain::sync::protocol::EventStatus::Applied),
            "{results:?}"
        );
        assert_eq!(
            f.server.get_slot(Orq(1), f.slot.id).unwrap().booked_count,
            2
        );
    }

    #[test]
    fn an_undone_walkup_gives_its_place_back_to_the_lease() {
        let f = fixture();
        let at = utc(9, 30);
        let ask = f.gate_db.lease_request().unwrap();
        let granted = answer(&f, &ask, at);
        f.gate_db.apply_leases(&granted, &ask, at).unwrap();
        let v = f
            .gate_db
            .book_walkup(Orq(1), b"W-1", f.op, &gate(&f), at)
            .unwrap();
        assert_eq!(v.verdict, VerdictCode::Admit, "{v:?}");
        assert_eq!(f.gate_db.walkup_leases().unwrap()[0].places, 1);
        let w1 = TicketCode::parse("W-1").unwrap();
        f.gate_db
            .undo_admission(
                Orq(1),
                &w1,
                f.op,
                "wrong phone",
                &gate(&f),
                at + chrono::Duration::seconds(10),
            )
            .unwrap();
        assert_eq!(f.gate_db.walkup_leases().unwrap()[0].places, 2);
        let v = f
            .gate_db
            .validate_ticket(Orq(1), &w1, &gate(&f), at)
            .unwrap();
        assert!(crate::domain::venue_ops::walkup_bookable(&v), "{v:?}");
    }

    /// A walk-up W-1 is undone (released); the holder then books the same
    /// slot online and is admitted at the same gate, a normal verify; the
    /// operator undoes that admission too. That undo is not the walk-up's:
    /// the customer's own reservation stays, and the gate's lease gains no
    /// place.
    #[test]
    fn undoing_a_later_admission_keeps_the_reservation_made_since_the_walkup() {
        let f = fixture();
        let orq = Orq(1);
        let at = utc(9, 30);
        let secs = chrono::Duration::seconds;
        let ask = f.gate_db.lease_request().unwrap();
        let granted = answer(&f, &ask, at);
        f.gate_db.apply_leases(&granted, &ask, at).unwrap();
        let w1 = TicketCode::parse("W-1").unwrap();
        let v = f
            .gate_db
            .book_walkup(orq, b"W-1", f.op, &gate(&f), at)
            .unwrap();
        assert_eq!(v.verdict, VerdictCode::Admit, "{v:?}");
        f.gate_db
            .undo_admission(orq, &w1, f.op, "wrong phone", &gate(&f), at + secs(10))
            .unwrap();
        assert_eq!(f.gate_db.walkup_leases().unwrap()[0].places, 2);
        // The round: the walk-up, its admission and the undo reach the server.
        let events: Vec<_> = f
            .gate_db
            .pending_events()
            .unwrap()
            .into_iter()
            .map(|(e, _)| e)
            .collect();
        let results = f
            .server
            .apply_events(&f.device, &events, at + secs(20), at + secs(20))
            .unwrap();
        f.gate_db.record_event_results(&results).unwrap();
        // The holder books the slot online; the gate learns it.
        let req = crate::ReserveRequest {
            ticket: w1.clone(),
            slot_id: f.slot.id,
            contact: crate::domain::Contact::validate("a@example.com", "+12025551234").unwrap(),
        };
        let online = f.server.reserve_slot(orq, &req, utc(9, 31)).unwrap();
        let page = f
            .server
            .changes_since(orq, f.slot.venue_id, 0, 5000, utc(9, 31))
            .unwrap();
        f.gate_db
            .apply_change_page(&page, None, utc(9, 31))
            .unwrap();
        // Admitted at the same gate, then undone.
        let admitted = utc(9, 32);
        let v = f
            .gate_db
            .verify_ticket(orq, &w1, f.op, &gate(&f), admitted)
            .unwrap();
        assert_eq!(v.verdict, VerdictCode::Admit, "{v:?}");
        let v = f
            .gate_db
            .undo_admission(
                orq,
                &w1,
                f.op,
                "wrong phone",
                &gate(&f),
                admitted + secs(10),
            )
            .unwrap();
        assert_eq!(v.verdict, VerdictCode::Admit, "reserved again: {v:?}");
        let r = f.gate_db.get_reservation(orq, online.id).unwrap();
        assert_eq!(r.status, crate::domain::ReservationStatus::Reserved);
        assert_eq!(f.gate_db.walkup_leases().unwrap()[0].places, 2);
    }

    #[test]
    fn an_older_answer_does_not_restore_a_stale_lease() {
        let f = fixture();
        let at = utc(9, 30);
        // Two sync engines on one database: engine 1 asks, a walk-up is
        // booked, engine 2 asks and is answered first.
        let ask = f.gate_db.lease_request().unwrap();
        let granted = answer(&f, &ask, at);
        f.gate_db.apply_leases(&granted, &ask, at).unwrap();
        let ask1 = f.gate_db.lease_request().unwrap();
        let answer1 = answer(&f, &ask1, at);
        f.gate_db
            .book_walkup(Orq(1), b"W-1", f.op, &gate(&f), at)
            .unwrap();
        let ask2 = f.gate_db.lease_request().unwrap();
        let answer2 = answer(&f, &ask2, at);
        assert!(f.gate_db.apply_leases(&answer2, &ask2, at).unwrap());
        assert_eq!(f.gate_db.walkup_leases().unwrap()[0].places, 1);
        // Engine 1's answer arrives late: ignored, the lease stays.
        assert!(!f.gate_db.apply_leases(&answer1, &ask1, at).unwrap());
        assert_eq!(f.gate_db.walkup_leases().unwrap()[0].places, 1);
    }

    #[test]
    fn a_refresh_that_changes_nothing_writes_nothing() {
        let f = fixture();
        let stamps = |s: &Store| -> (Option<String>, String) {
            s.read(|tx| {
                let lease = tx
                    .query_row("SELECT updated_at FROM walkup_leases", [], |r| r.get(0))
                    .optional()?;
                let slot =
                    tx.query_row("SELECT updated_at FROM reservation_slots", [], |r| r.get(0))?;
                Ok((lease, slot))
            })
            .unwrap()
        };
        f.server.refresh_leases(&f.device, &[], utc(9, 30)).unwrap();
        let first = stamps(&f.server);
        assert!(first.0.is_some());
        f.server.refresh_leases(&f.device, &[], utc(9, 31)).unwrap();
        assert_eq!(stamps(&f.server), first, "nothing changed: nothing written");
        // The gate side too: the same answer twice writes the lease once.
        let ask = f.gate_db.lease_request().unwrap();
        let granted = answer(&f, &ask, utc(9, 32));
        f.gate_db.apply_leases(&granted, &ask, utc(9, 32)).unwrap();
        let gate_first = stamps(&f.gate_db).0;
        let ask = f.gate_db.lease_request().unwrap();
        f.gate_db.apply_leases(&granted, &ask, utc(9, 33)).unwrap();
        assert_eq!(stamps(&f.gate_db).0, gate_first);
    }
}
