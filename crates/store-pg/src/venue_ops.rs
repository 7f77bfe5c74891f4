//! Venue operations (issue 15) on PostgreSQL: the passages occupancy is
//! counted from. The rules are `domain::venue_ops`'s; here only SQL.

use crate::conn::Tx;
use chrono::{DateTime, Utc};

use crate::domain::venue_ops::{day_start, occupancy_level, Occupancy};
use crate::domain::{OperatorId, Orq, TicketCode, VenueId};
use crate::venues::require_venue;
use crate::{db, ts, PgStore};
use entrada_store::{Result, StoreError, VenueOpsStore};

/// People inside `venue` from the passages since `since`
/// (`domain::venue_ops::inside_from`: per ticket, never below 0).
pub(crate) fn inside_today(
    tx: &mut Tx<'_>,
    orq: Orq,
    venue: VenueId,
    since: DateTime<Utc>,
) -> Result<i64> {
    let nets = tx
        .query(
            "SELECT SUM(CASE direction WHEN 'in' THEN 1 ELSE -1 END)::BIGINT FROM passages \
             WHERE orq = $1 AND venue_id = $2 AND at >= $3 GROUP BY ticket_code",
            &[&orq.0, &venue.0, &since],
        )
        .map_err(db)?
        .iter()
        .map(|r| r.get::<_, i64>(0))
        .collect::<Vec<_>>();
    Ok(crate::domain::venue_ops::inside_from(nets))
}

impl VenueOpsStore for PgStore {
    fn release_no_shows(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<crate::domain::no_show::Released>> {
        crate::no_show::release_no_shows(self, now)
    }

    fn take_back_leases(
        &self,
        scope: Option<(Orq, VenueId)>,
        only_closed: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<crate::domain::venue_ops::SlotPlaces>> {
        crate::lease_return::take_back_leases(self, scope, only_closed, now)
    }

    fn checkout_venue(
        &self,
        orq: Orq,
        venue: VenueId,
        operator: Option<OperatorId>,
        now: DateTime<Utc>,
    ) -> Result<crate::domain::closing::Checkout> {
        crate::closing::checkout_venue(self, orq, venue, operator, now)
    }

    fn close_due_venues(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<crate::domain::closing::Checkout>> {
        crate::closing::close_due_venues(self, now)
    }

    fn occupancy(&self, orq: Orq, venue: VenueId, now: DateTime<Utc>) -> Result<Occupancy> {
        self.read(|tx| {
            let v = require_venue(tx, orq, venue)?;
            let inside = inside_today(tx, orq, venue, day_start(v.timezone, now))?;
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
}

// ---- uploaded exits, re-entries, walk-ups, undos; walk-up leases ----
//
// As `entrada_store::venue_ops` (SQLite) does, the same domain calls
// deciding; here the rows they decide on are locked first, in the engine's
// one order: the ticket, then slots by id.

use crate::domain::sync::protocol::{DeviceInfo, Event, EventResult, EventStatus};
use crate::domain::venue_ops::{
    lease_grant, no_place_left, not_activated, passage, recalled_grant, walkup_open,
    walkup_refusal, walkup_slots, walkup_step, walkup_was_online, Direction, Passage, Presence,
    SlotPlaces, Tz, VenueOps, WalkupBooking, WalkupStep, UTC,
};
use crate::domain::{DomainError, Gate, ReservationId, Slot, SlotId, Venue, Verdict, VerdictCode};
use crate::gate::verdict_in;
use crate::reservations::change_booking;
use crate::slots::load_slot;
use crate::tickets::load_ticket;
use crate::venues::load_venue;

/// One person through a gate, as a fact to count.
struct PassageFact<'a> {
    orq: Orq,
    venue: VenueId,
    code: &'a TicketCode,
    direction: Direction,
    reentry: bool,
    at: DateTime<Utc>,
    device: Option<i64>,
    operator: Option<OperatorId>,
    event_id: Option<uuid::Uuid>,
    conflict: Option<&'a str>,
}

fn record_passage(tx: &mut Tx<'_>, p: &PassageFact<'_>) -> Result<()> {
    tx.execute(
        "INSERT INTO passages (orq, venue_id, ticket_code, direction, reentry, at, device_id, operator_id, event_id, conflict) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &p.orq.0,
            &p.venue.0,
            &p.code.as_str(),
            &p.direction.as_str(),
            &p.reentry,
            &ts(p.at),
            &p.device,
            &p.operator.map(|o| o.0),
            &p.event_id.map(|e| e.to_string()),
            &p.conflict,
        ],
    )
    .map_err(db)?;
    Ok(())
}

/// An uploaded `verify` the gate showed as ADMIT: its passage, from the
/// gate's door, once (the event id) — with the server's reason when it
/// judged it a double entry or a conflict (the person walked in all the same).
pub(crate) fn record_uploaded_entry(
    tx: &mut Tx<'_>,
    device: &DeviceInfo,
    event: &Event,
    code: &TicketCode,
    operator: OperatorId,
    at: DateTime<Utc>,
    conflict: Option<&str>,
) -> Result<()> {
    record_passage(
        tx,
        &PassageFact {
            orq: Orq(device.orq),
            venue: VenueId(device.venue_id),
            code,
            direction: Direction::In,
            reentry: false,
            at,
            device: Some(device.device_id),
            operator: Some(operator),
            event_id: Some(event.event_id),
            conflict,
        },
    )
}

/// A ticket's entry and last exit, as the server has them.
fn presence(tx: &mut Tx<'_>, orq: Orq, code: &TicketCode) -> Result<Presence> {
    Ok(tx
        .query_opt(
            "SELECT verified_at, left_at FROM tickets WHERE ticket_code = $1 AND orq = $2",
            &[&code.as_str(), &orq.0],
        )
        .map_err(db)?
        .map_or_else(Presence::default, |r| Presence {
            entered_at: r.get(0),
            left_at: r.get(1),
        }))
}

/// The venue a verdict is about (its slot's), else the gate's; its settings
/// and clock (the defaults and UTC without a venue row).
fn venue_of(tx: &mut Tx<'_>, orq: Orq, verdict: &Verdict, gate: &Gate) -> Result<(VenueOps, Tz)> {
    let venue: Option<Venue> = match verdict.venue_id.or(gate.venue_id) {
        Some(id) => load_venue(tx, orq, id)?,
        None => None,
    };
    Ok(match venue {
        Some(v) => (v.gate.ops(), v.timezone),
        None => (VenueOps::default(), UTC),
    })
}

pub(crate) fn set_left_at(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
    left_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<()> {
    tx.execute(
        "UPDATE tickets SET left_at = $1, updated_at = $2 WHERE ticket_code = $3 AND orq = $4",
        &[&left_at.map(ts), &ts(now), &code.as_str(), &orq.0],
    )
    .map_err(db)?;
    Ok(())
}

fn payload_code(event: &Event) -> std::result::Result<TicketCode, DomainError> {
    event
        .payload
        .get("ticket_code")
        .and_then(|v| v.as_str())
        .ok_or_else(|| DomainError::invalid("ticket_code", "missing in event payload"))
        .and_then(TicketCode::parse)
}

fn gate_of(device: &DeviceInfo) -> Gate {
    Gate {
        venue_id: Some(VenueId(device.venue_id)),
        ..Default::default()
    }
}

fn applied(event: &Event, now: DateTime<Utc>) -> EventResult {
    EventResult {
        event_id: event.event_id,
        status: EventStatus::Applied,
        reason: None,
        facts: None,
        received_at: now,
    }
}

/// An uploaded exit or re-entry, judged by `domain::venue_ops::passage`
/// against the server's rows at the event's time (the ticket locked). The
/// passage always counts (the person went through); where the server's rows
/// disagree the ticket stays as it is and the answer is a conflict with the
/// reason.
pub(crate) fn apply_passage_event(
    tx: &mut Tx<'_>,
    device: &DeviceInfo,
    event: &Event,
    direction: Direction,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<std::result::Result<EventResult, DomainError>> {
    let orq = Orq(device.orq);
    let code = match payload_code(event) {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    let Some(operator) = event.operator_id.map(OperatorId) else {
        return Ok(Err(DomainError::invalid(
            "operator_id",
            "a passage names its operator",
        )));
    };
    if load_ticket(tx, orq, &code, true)?.is_none() {
        return Ok(Err(DomainError::NotFound { entity: "ticket" }));
    }
    let gate = gate_of(device);
    let entry = verdict_in(tx, orq, &code, &gate, at)?;
    let (ops, tz) = venue_of(tx, orq, &entry, &gate)?;
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
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM passages WHERE orq = $1 AND ticket_code = $2 \
                 AND direction = 'in' AND at > $3)",
                &[&orq.0, &code.as_str(), &ts(at)],
            )
            .map_err(db)?
            .get(0);
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
            event_id: Some(event.event_id),
            conflict,
        },
    )?;
    Ok(Ok(match conflict {
        None => applied(event, now),
        Some(reason) => EventResult {
            event_id: event.event_id,
            status: EventStatus::Conflict,
            reason: Some(reason.to_owned()),
            facts: Some(
                serde_json::json!({ "kind": reason, "ticket_code": code, "server": verdict }),
            ),
            received_at: now,
        },
    }))
}

/// Gives `code` its reservation in `slot` (its cancelled row if it has one,
/// else a new row `id`) and marks the ticket reserved; the slot's count is
/// the caller's.
fn write_walkup_reservation(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
    id: ReservationId,
    slot: &Slot,
    now: DateTime<Utc>,
) -> Result<()> {
    let contact = tx
        .query_one(
            "SELECT customer_email, customer_phone FROM tickets WHERE ticket_code = $1 AND orq = $2",
            &[&code.as_str(), &orq.0],
        )
        .map_err(db)?;
    let email: String = contact.get::<_, Option<String>>(0).unwrap_or_default();
    let phone: String = contact.get::<_, Option<String>>(1).unwrap_or_default();
    // One row per ticket: a cancelled reservation keeps its id (both sides
    // have it) and takes the walk-up.
    let reused = tx
        .execute(
            "UPDATE ticket_reservations SET slot_id = $1, reserved_at = $2, status = 'RESERVED', no_show_at = NULL, updated_at = $2 \
             WHERE ticket_id = $3 AND orq = $4 AND status = 'CANCELLED'",
            &[&slot.id.0, &ts(now), &code.as_str(), &orq.0],
        )
        .map_err(db)?;
    if reused == 0 {
        tx.execute(
            "INSERT INTO ticket_reservations (id, ticket_id, slot_id, customer_email, customer_phone, \
             reserved_at, status, orq, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'RESERVED', $7, $6, $6)",
            &[&id.0, &code.as_str(), &slot.id.0, &email, &phone, &ts(now), &orq.0],
        )
        .map_err(db)?;
    }
    tx.execute(
        "UPDATE tickets SET status = 'RESERVED', reserved_at = $1, updated_at = $1 WHERE ticket_code = $2 AND orq = $3",
        &[&ts(now), &code.as_str(), &orq.0],
    )
    .map_err(db)?;
    Ok(())
}

/// A walk-up refused with `v`: as an error, so that the transaction rolls
/// back what it did before (a deferred ticket's activation).
fn refused(v: Verdict) -> entrada_store::StoreError {
    DomainError::Refused(Box::new(v)).into()
}

/// An online walk-up (`POST /api/sync/walkup`), as the SQLite engine's
/// `Store::book_walkup_online` decides it: the ticket (locked) activated
/// first if deferred, then booked by the reservation path into the earliest
/// slot of the gate's venue open for entry now with a free place. Locks:
/// the ticket, then the candidate slots in id order (the engine's order),
/// and the choice is made again on the locked rows.
pub(crate) fn book_walkup_online_in(
    tx: &mut Tx<'_>,
    device: &DeviceInfo,
    code: &TicketCode,
    now: DateTime<Utc>,
) -> Result<WalkupBooking> {
    let orq = Orq(device.orq);
    let venue = require_venue(tx, orq, VenueId(device.venue_id))?;
    if load_ticket(tx, orq, code, true)?.is_none() {
        return Err(DomainError::NotFound { entity: "ticket" }.into());
    }
    let gate = gate_of(device);
    let entry = verdict_in(tx, orq, code, &gate, now)?;
    let activated_at = match walkup_step(&entry) {
        WalkupStep::No => return Err(refused(walkup_refusal(entry))),
        WalkupStep::Book => None,
        WalkupStep::ActivateThenBook => {
            if let Err(e) = crate::tickets::activate_in(tx, orq, code, now) {
                return Err(match e {
                    entrada_store::StoreError::Domain(e) => refused(not_activated(code, &e)),
                    e => e,
                });
            }
            let entry = verdict_in(tx, orq, code, &gate, now)?;
            if walkup_step(&entry) != WalkupStep::Book {
                return Err(refused(entry));
            }
            Some(now)
        }
    };
    // As any reservation: an active, paid, usable ticket.
    crate::tickets::require_ticket(tx, orq, code, false)?.check_can_reserve(now)?;
    // Tomorrow's too: a slot just after midnight is in its early grace
    // before it (slots end the day they start).
    let today = now.with_timezone(&venue.timezone).date_naive();
    let tomorrow = today.succ_opt().unwrap_or(today);
    let seen: Vec<Slot> = tx
        .query(
            &format!(
                "SELECT {} FROM reservation_slots WHERE orq = $1 AND venue_id = $2 AND date IN ($3, $4)",
                crate::slots::SLOT_COLUMNS
            ),
            &[&orq.0, &venue.id.0, &today, &tomorrow],
        )
        .map_err(db)?
        .iter()
        .map(crate::slots::slot)
        .collect::<Result<_>>()?;
    let mut ids: Vec<SlotId> = walkup_slots(&seen, &venue, now)
        .iter()
        .map(|s| s.id)
        .collect();
    ids.sort();
    let mut locked = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(slot) = load_slot(tx, orq, id, true)? {
            locked.push(slot);
        }
    }
    let Some(slot) = walkup_slots(&locked, &venue, now)
        .into_iter()
        .next()
        .cloned()
    else {
        return Err(refused(no_place_left(
            code,
            "no slot open now has a free place",
        )));
    };
    change_booking(tx, &slot, 1, now)?;
    write_walkup_reservation(
        tx,
        orq,
        code,
        ReservationId(uuid::Uuid::now_v7()),
        &slot,
        now,
    )?;
    // A cancelled reservation row was reused: its id is the one.
    let id: uuid::Uuid = tx
        .query_one(
            "SELECT id FROM ticket_reservations WHERE ticket_id = $1 AND orq = $2",
            &[&code.as_str(), &orq.0],
        )
        .map_err(db)?
        .get(0);
    Ok(WalkupBooking {
        ticket_code: code.clone(),
        reservation_id: ReservationId(id),
        slot_id: slot.id,
        reserved_at: now,
        activated_at,
    })
}

/// An uploaded walk-up: the gate booked `ticket_code` into `slot_id` from
/// its lease. One leased place becomes the reservation (the slot's count is
/// unchanged: the place was counted when leased). A ticket with a live
/// reservation by now, or no longer valid, is a conflict and nothing
/// changes; a lease already used up falls back to a free place of the slot,
/// and without one it is a NO_PLACE_LEFT conflict (never over capacity).
/// Locks: the ticket, then the slot.
pub(crate) fn apply_walkup_event(
    tx: &mut Tx<'_>,
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
    if load_ticket(tx, orq, &code, true)?.is_none() {
        return Ok(Err(DomainError::NotFound { entity: "ticket" }));
    }
    match load_slot(tx, orq, slot_id, false)? {
        Some(s) if s.venue_id.0 == device.venue_id => {}
        _ => return Ok(Err(DomainError::NotFound { entity: "slot" })),
    }
    if walkup_was_online(&event.payload) {
        // Booked by the server (`POST /api/sync/walkup`): reported so that
        // an undo of the admission releases it; nothing to book. Applied
        // when it is that ticket's live reservation in that slot.
        let live: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM ticket_reservations WHERE id = $1 AND ticket_id = $2 \
                 AND slot_id = $3 AND orq = $4 AND status IN ('RESERVED', 'VERIFIED'))",
                &[&id.0, &code.as_str(), &slot_id.0, &orq.0],
            )
            .map_err(db)?
            .get(0);
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
    let entry = verdict_in(tx, orq, &code, &gate_of(device), at)?;
    // A deferred ticket's activation is its own event, uploaded before the
    // walk-up: a ticket still inactive here was not activated (refused).
    if walkup_step(&entry) != WalkupStep::Book {
        return Ok(Ok(conflict(entry.verdict.code())));
    }
    // The slot's lock: its count and this gate's lease of it are read and
    // written by one writer at a time (a lease refresh takes it too).
    let Some(slot) = load_slot(tx, orq, slot_id, true)? else {
        return Ok(Err(DomainError::NotFound { entity: "slot" }));
    };
    let leased = tx
        .execute(
            "UPDATE walkup_leases SET places = places - 1, updated_at = $1 \
             WHERE device_id = $2 AND slot_id = $3 AND places > 0",
            &[&ts(now), &device.device_id, &slot_id.0],
        )
        .map_err(db)?;
    if leased == 0 {
        // Beyond its lease a gate books like the gate would online: only a
        // slot open for walk-ups at the time, never a closed or another
        // day's one (a forged upload must not get around the booking rules).
        let venue = crate::venues::require_venue(tx, orq, VenueId(device.venue_id))?;
        if !walkup_open(&slot, &venue, at) || slot.booked_count >= slot.total_capacity {
            return Ok(Ok(conflict(VerdictCode::NoPlaceLeft.code())));
        }
        change_booking(tx, &slot, 1, now)?;
    }
    write_walkup_reservation(tx, orq, &code, id, &slot, at)?;
    Ok(Ok(applied(event, now)))
}

/// The places `device` holds of `slot` (its walk-up lease; 0 without one).
pub(crate) fn leased_places(tx: &mut Tx<'_>, device: i64, slot: SlotId) -> Result<i64> {
    Ok(tx
        .query_opt(
            "SELECT places FROM walkup_leases WHERE device_id = $1 AND slot_id = $2",
            &[&device, &slot.0],
        )
        .map_err(db)?
        .map_or(0, |r| r.get::<_, i64>(0)))
}

/// A released no-show let in late takes a place back in `slot` (locked by
/// the caller), from where `domain::no_show::place_back` said: `device`'s
/// lease, or a free place. Its reservation is live again (the caller's
/// entry then verifies it).
pub(crate) fn take_place_back(
    tx: &mut Tx<'_>,
    orq: Orq,
    device: i64,
    slot: &Slot,
    reservation: ReservationId,
    place: crate::domain::no_show::PlaceBack,
    now: DateTime<Utc>,
) -> Result<()> {
    use crate::domain::no_show::PlaceBack;
    match place {
        PlaceBack::Lease => {
            let taken = tx
                .execute(
                    "UPDATE walkup_leases SET places = places - 1, updated_at = $1 \
                     WHERE device_id = $2 AND slot_id = $3 AND places > 0",
                    &[&ts(now), &device, &slot.id.0],
                )
                .map_err(db)?;
            // Defensive: the caller decided on a lease read under the slot's
            // lock (which a lease refresh or return also takes), so it cannot
            // have emptied since. Were that ever broken, the no-show would be
            // let in on no place: fail and roll back instead.
            if taken != 1 {
                return Err(StoreError::Engine(format!(
                    "the lease of slot {} emptied before a place was taken back",
                    slot.id
                )));
            }
        }
        PlaceBack::Free => change_booking(tx, slot, 1, now)?,
        PlaceBack::NoPlace => {
            return Err(DomainError::invalid("place", "no place to take back").into());
        }
    }
    let revived = tx
        .execute(
            "UPDATE ticket_reservations SET status = 'RESERVED', no_show_at = NULL, updated_at = $1 \
             WHERE id = $2 AND orq = $3 AND status = 'CANCELLED'",
            &[&ts(now), &reservation.0, &orq.0],
        )
        .map_err(db)?;
    // A place was taken for exactly this released reservation.
    if revived != 1 {
        return Err(StoreError::Engine(format!(
            "reservation {} was not a released no-show when its place was taken back",
            reservation.0
        )));
    }
    Ok(())
}

/// An uploaded undo, judged by `check_undo` against the server's rows at
/// the event's time (the ticket locked): the operator's own admission,
/// within 60 s. It takes the admission back (the ticket and reservation as
/// before it; the verification rows stay, for the audit) with an `out`
/// passage marked `UNDO`; otherwise a conflict, and the admission stands.
pub(crate) fn apply_undo_event(
    tx: &mut Tx<'_>,
    device: &DeviceInfo,
    event: &Event,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<std::result::Result<EventResult, DomainError>> {
    let orq = Orq(device.orq);
    let code = match payload_code(event) {
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
    let Some(row) = tx
        .query_opt(
            "SELECT verified_at, verified_by, left_at FROM tickets WHERE ticket_code = $1 AND orq = $2 FOR UPDATE",
            &[&code.as_str(), &orq.0],
        )
        .map_err(db)?
    else {
        return Ok(Err(DomainError::NotFound { entity: "ticket" }));
    };
    let verified_at: Option<DateTime<Utc>> = row.get(0);
    let by = row.get::<_, Option<i64>>(1).map(OperatorId);
    let left: Option<DateTime<Utc>> = row.get(2);
    // Only the gate that let the holder in may take it back: a device token
    // (or a stolen gate) may not undo admissions made elsewhere, at this or
    // another venue, whatever operator it names.
    let own = match verified_at {
        Some(v) => {
            let admitting: Option<i64> = tx
                .query_opt(
                    "SELECT device_id FROM verifications WHERE orq = $1 AND ticket_code = $2 AND verified_at = $3 \
                     ORDER BY id LIMIT 1",
                    &[&orq.0, &code.as_str(), &v],
                )
                .map_err(db)?
                .and_then(|r| r.get(0));
            admitting == Some(device.device_id)
        }
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
    let reserved = tx
        .execute(
            "UPDATE ticket_reservations SET status = 'RESERVED', updated_at = $1 \
             WHERE ticket_id = $2 AND orq = $3 AND status = 'VERIFIED'",
            &[&ts(now), &code.as_str(), &orq.0],
        )
        .map_err(db)?;
    tx.execute(
        "UPDATE tickets SET verified_at = NULL, verified_by = NULL, verified_gate = NULL, left_at = NULL, \
         status = CASE WHEN $1 THEN 'RESERVED' ELSE status END, \
         activation_status = CASE activation_status WHEN 'redeemed' THEN 'active' ELSE activation_status END, \
         updated_at = $2 WHERE ticket_code = $3 AND orq = $4",
        &[&(reserved > 0), &ts(now), &code.as_str(), &orq.0],
    )
    .map_err(db)?;
    record_passage(
        tx,
        &PassageFact {
            orq,
            venue: VenueId(device.venue_id),
            code: &code,
            direction: Direction::Out,
            reentry: false,
            at,
            device: Some(device.device_id),
            operator: Some(operator),
            event_id: Some(event.event_id),
            conflict: Some("UNDO"),
        },
    )?;
    // The admission undone was this gate's walk-up (applied from its
    // upload): the undo releases that reservation too, its place back on the
    // gate's lease (`domain::venue_ops::undo_place`), else on the slot
    // (locked after the ticket, the one order). The gate writes a walk-up and
    // its admission in one transaction at the same time: the walk-up is the
    // one whose device time is that of the verify event behind the ticket's
    // admission (its canonical verification). Another admission of the
    // ticket at this gate (a reservation made since) keeps its reservation.
    let walkup: Option<(uuid::Uuid, bool)> = match verified_at {
        Some(admitted) => tx
            .query_opt(
                "SELECT (w.payload->>'slot_id')::uuid, coalesce(w.payload->'online' = 'true'::jsonb, false) \
                 FROM verifications v \
                 JOIN sync_events e ON e.event_id = v.event_id \
                 JOIN sync_events w ON w.device_id = e.device_id AND w.device_time = e.device_time \
                 WHERE v.id = (SELECT id FROM verifications WHERE orq = $2 AND ticket_code = $3 \
                                 AND verified_at = $4 ORDER BY id LIMIT 1) \
                   AND v.device_id = $1 AND w.orq = $2 AND w.kind = 'walkup' \
                   AND w.payload->>'ticket_code' = $3 AND w.result->>'status' = 'applied' \
                 ORDER BY w.received_at DESC LIMIT 1",
                &[&device.device_id, &orq.0, &code.as_str(), &admitted],
            )
            .map_err(db)?
            .map(|r| (r.get(0), r.get(1))),
        None => None,
    };
    if let Some((slot, online)) = walkup {
        let cancelled = tx
            .execute(
                "UPDATE ticket_reservations SET status = 'CANCELLED', updated_at = $1 \
                 WHERE slot_id = $2 AND ticket_id = $3 AND orq = $4 AND status = 'RESERVED'",
                &[&ts(now), &slot, &code.as_str(), &orq.0],
            )
            .map_err(db)?;
        if cancelled > 0 {
            tx.execute(
                "UPDATE tickets SET status = 'ACTIVATED', reserved_at = NULL, updated_at = $1 \
                 WHERE ticket_code = $2 AND orq = $3",
                &[&ts(now), &code.as_str(), &orq.0],
            )
            .map_err(db)?;
            let Some(locked) = load_slot(tx, orq, SlotId(slot), true)? else {
                return Ok(Ok(applied(event, now)));
            };
            // An online walk-up's place came from the slot: it goes back there.
            let leased = if online {
                0
            } else {
                tx.execute(
                    "UPDATE walkup_leases SET places = places + 1, updated_at = $1 \
                     WHERE device_id = $2 AND slot_id = $3",
                    &[&ts(now), &device.device_id, &slot],
                )
                .map_err(db)?
            };
            if crate::domain::venue_ops::undo_place(!online, leased > 0)
                == crate::domain::venue_ops::UndoPlace::Slot
            {
                change_booking(tx, &locked, -1, now)?;
            }
        }
    }
    Ok(Ok(applied(event, now)))
}

/// During a gate's sync: its lease of each of today's slots at its venue is
/// set to what `domain::venue_ops::lease_grant` says, taken from or given
/// back to the slot's count under the slot's row lock (slots locked in id
/// order); a slot whose entry window has closed gets its unused places
/// back. Returns what the gate holds now.
pub(crate) fn refresh_leases_in(
    tx: &mut Tx<'_>,
    device: &DeviceInfo,
    pending: &[SlotPlaces],
    now: DateTime<Utc>,
) -> Result<Vec<SlotPlaces>> {
    let orq = Orq(device.orq);
    let venue = require_venue(tx, orq, VenueId(device.venue_id))?;
    let per_gate = venue.gate.ops().walkup_lease_places;
    let today = now.with_timezone(&venue.timezone).date_naive();
    let ids: Vec<uuid::Uuid> = tx
        .query(
            "SELECT id FROM reservation_slots WHERE orq = $1 AND venue_id = $2 AND date = $3 \
             UNION SELECT slot_id FROM walkup_leases WHERE device_id = $4 ORDER BY 1",
            &[&orq.0, &venue.id.0, &today, &device.device_id],
        )
        .map_err(db)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for id in ids.into_iter().map(SlotId) {
        let Some(slot) = load_slot(tx, orq, id, true)? else {
            continue;
        };
        let (held, recalled): (i64, bool) = tx
            .query_opt(
                "SELECT places, recalled_at IS NOT NULL FROM walkup_leases WHERE device_id = $1 AND slot_id = $2",
                &[&device.device_id, &id.0],
            )
            .map_err(db)?
            .map_or((0, false), |r| (r.get(0), r.get(1)));
        let owed = pending
            .iter()
            .filter(|p| p.slot_id == id)
            .map(|p| p.places)
            .sum::<i64>();
        let open = slot.venue_id == venue.id && walkup_open(&slot, &venue, now);
        // A recalled lease (a supervisor's take-back) keeps only what this
        // gate's walk-ups on their way need, then is gone.
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
            change_booking(tx, &slot, places - held, now)?;
        }
        if places == 0 {
            tx.execute(
                "DELETE FROM walkup_leases WHERE device_id = $1 AND slot_id = $2",
                &[&device.device_id, &id.0],
            )
            .map_err(db)?;
        } else {
            tx.execute(
                "INSERT INTO walkup_leases (orq, device_id, slot_id, places, updated_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (device_id, slot_id) DO UPDATE SET places = excluded.places, updated_at = excluded.updated_at",
                &[&orq.0, &device.device_id, &id.0, &places, &ts(now)],
            )
            .map_err(db)?;
        }
    }
    Ok(tx
        .query(
            "SELECT slot_id, places FROM walkup_leases WHERE device_id = $1 AND places > 0 ORDER BY slot_id",
            &[&device.device_id],
        )
        .map_err(db)?
        .iter()
        .map(|r| SlotPlaces {
            slot_id: SlotId(r.get(0)),
            places: r.get(1),
        })
        .collect())
}
