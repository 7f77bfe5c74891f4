//! Reservations: reserve, cancel, reschedule, the month's offer. Each write
//! locks the rows it decides on (the ticket, then its slots in id order) from
//! the first read to the commit, so two instances can never both take the
//! last place of a slot, and never wait on each other in a circle.

use std::sync::LazyLock;

use crate::conn::{prefixed, Columns, Prefixed, Tx};
use chrono::{DateTime, Utc};

use crate::domain::customer::{check_cancel, check_change};
use crate::domain::{
    check_reservable, check_slot_bookable, slot_offer, Booked, ChangedBy, DomainError, Orq,
    Reservation, ReservationId, ReservationStatus, Slot, SlotId, SlotOffer, Ticket, TicketCode,
    Venue, VenueId,
};
use crate::reserve_batch::ReserveItem;
use crate::slots::{require_slot, slot, SLOT_COLUMNS};
use crate::tickets::require_ticket;
use crate::venues::{require_venue, venue, VENUE_COLUMNS};
use crate::{corrupt, db, on_constraint, ts, PgStore};
use entrada_store::{ReservationStore, ReserveRequest, Result, StoreError};

pub(crate) const RESERVATION_COLUMNS: &str =
    "id, ticket_id, slot_id, customer_email, customer_phone, \
     reserved_at, status, orq, created_at, updated_at, no_show_at";

pub(crate) fn reservation(row: &impl Columns) -> Result<Reservation> {
    Ok(Reservation {
        id: ReservationId(row.get("id")),
        ticket_id: TicketCode::parse(row.get("ticket_id"))
            .map_err(|e| corrupt("ticket code", e))?,
        slot_id: SlotId(row.get("slot_id")),
        customer_email: row.get("customer_email"),
        customer_phone: row.get("customer_phone"),
        reserved_at: row.get("reserved_at"),
        status: ReservationStatus::parse(row.get("status"))
            .map_err(|e| corrupt("reservation status", e))?,
        orq: Orq(row.get("orq")),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
        no_show_at: row.get("no_show_at"),
    })
}

pub(crate) fn reservation_of_ticket(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
) -> Result<Option<Reservation>> {
    tx.query_opt(
        &format!("SELECT {RESERVATION_COLUMNS} FROM ticket_reservations WHERE ticket_id = $1 AND orq = $2"),
        &[&code.as_str(), &orq.0],
    )
    .map_err(db)?
    .as_ref()
    .map(reservation)
    .transpose()
}

pub(crate) fn require_reservation(
    tx: &mut Tx<'_>,
    orq: Orq,
    id: ReservationId,
) -> Result<Reservation> {
    tx.query_opt(
        &format!(
            "SELECT {RESERVATION_COLUMNS} FROM ticket_reservations WHERE id = $1 AND orq = $2"
        ),
        &[&id.0, &orq.0],
    )
    .map_err(db)?
    .as_ref()
    .map(reservation)
    .transpose()?
    .ok_or_else(|| {
        DomainError::NotFound {
            entity: "reservation",
        }
        .into()
    })
}

/// Takes (`delta = 1`) or frees (`-1`) one place of a slot this transaction
/// has locked; the status follows the count.
pub(crate) fn change_booking(
    tx: &mut Tx<'_>,
    slot: &Slot,
    delta: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    let (booked, status) = slot.after_booking_change(delta);
    // The guard on booked_count makes a stale read fail loudly instead of
    // silently overwriting another writer's count.
    let changed = tx
        .execute(
            "UPDATE reservation_slots SET booked_count = $1, status = $2, updated_at = $3 \
             WHERE id = $4 AND booked_count = $5",
            &[
                &booked,
                &status.as_str(),
                &ts(now),
                &slot.id.0,
                &slot.booked_count,
            ],
        )
        .map_err(|e| on_constraint(e, DomainError::invalid("booked_count", "out of bounds")))?;
    if changed != 1 {
        return Err(StoreError::Engine(format!(
            "slot {} changed under a lock (booked_count {})",
            slot.id, slot.booked_count
        )));
    }
    Ok(())
}

/// What a reservation decides on beside the locked ticket (`RESERVE_ROWS`).
struct ReserveRows {
    /// The ticket's reservation row, if any (one per ticket).
    existing: Option<Reservation>,
    /// The venue of the slot `existing` holds.
    held_venue: Option<VenueId>,
    /// The slot asked for, unlocked (a first look), and its venue.
    slot: Option<Slot>,
    venue: Option<Venue>,
}

/// The ticket's reservation with its slot's venue, the slot asked for and
/// that slot's venue, each of this org: one statement, where they were four
/// look-ups. $1 ticket, $2 orq, $3 the slot asked for.
static RESERVE_ROWS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {}, hs.venue_id AS held_venue, {}, {} FROM (SELECT 1) one \
         LEFT JOIN ticket_reservations r ON r.ticket_id = $1 AND r.orq = $2 \
         LEFT JOIN reservation_slots hs ON hs.id = r.slot_id AND hs.orq = $2 \
         LEFT JOIN reservation_slots s ON s.id = $3 AND s.orq = $2 \
         LEFT JOIN venues v ON v.id = s.venue_id AND v.orq = $2",
        prefixed(RESERVATION_COLUMNS, "r", "r_"),
        prefixed(SLOT_COLUMNS, "s", "s_"),
        prefixed(VENUE_COLUMNS, "v", "v_"),
    )
});

fn reserve_rows(
    tx: &mut Tx<'_>,
    orq: Orq,
    code: &TicketCode,
    slot_id: SlotId,
) -> Result<ReserveRows> {
    let row = tx
        .query_one(RESERVE_ROWS.as_str(), &[&code.as_str(), &orq.0, &slot_id.0])
        .map_err(db)?;
    let part = |prefix| Prefixed { row: &row, prefix };
    let (r, s, v) = (part("r_"), part("s_"), part("v_"));
    Ok(ReserveRows {
        existing: match r.get::<_, Option<uuid::Uuid>>("id") {
            Some(_) => Some(reservation(&r)?),
            None => None,
        },
        held_venue: row.get::<_, Option<i64>>("held_venue").map(VenueId),
        slot: match s.get::<_, Option<uuid::Uuid>>("id") {
            Some(_) => Some(slot(&s)?),
            None => None,
        },
        venue: match v.get::<_, Option<i64>>("id") {
            Some(_) => Some(venue(&v)?),
            None => None,
        },
    })
}

/// The reservation row (a cancelled one reused, else a new one) and the
/// ticket's reserved fields, in one statement; the row as written comes
/// back (nothing later changes it). Each part must write exactly its one
/// row, as read under the ticket's lock (the reused row still this
/// ticket's and in the status read, the ticket in its status read), else
/// the statement is an error and the transaction rolls back: a row changed
/// since shows up as 0 rows written, never as an overwrite.
pub(crate) fn write_reservation(
    tx: &mut Tx<'_>,
    orq: Orq,
    req: &ReserveRequest,
    ticket: &Ticket,
    existing: Option<&Reservation>,
    now: DateTime<Utc>,
) -> Result<Reservation> {
    let now = ts(now);
    let (code, status) = (req.ticket.as_str(), ticket.status.as_str());
    let (email, phone) = (&req.contact.email, &req.contact.phone);
    // $1 slot, $2 email, $3 phone, $4 now, $5 ticket, $6 orq, $7 the
    // ticket's status read, $8 the reservation's id, $9 its status read.
    let set_ticket = "t AS (UPDATE tickets SET status = 'RESERVED', customer_email = $2, \
         customer_phone = $3, reserved_at = $4, updated_at = $4 \
         WHERE ticket_code = $5 AND orq = $6 AND status = $7 RETURNING 1)";
    let row = match existing {
        // One row per ticket: a cancelled reservation row is reused.
        Some(cancelled) => {
            let was = cancelled.status.as_str();
            tx.query_opt(
                &format!(
                    "WITH r AS (UPDATE ticket_reservations SET slot_id = $1, customer_email = $2, \
                     customer_phone = $3, reserved_at = $4, status = 'RESERVED', no_show_at = NULL, \
                     updated_at = $4 WHERE id = $8 AND orq = $6 AND ticket_id = $5 AND status = $9 \
                     RETURNING {RESERVATION_COLUMNS}), {set_ticket} \
                     SELECT r.*, (SELECT count(*) FROM t) AS tickets_written FROM r"
                ),
                &[&req.slot_id.0, email, phone, &now, &code, &orq.0, &status, &cancelled.id.0, &was],
            )
            .map_err(|e| on_constraint(e, DomainError::AlreadyReserved))?
        }
        None => tx
            .query_opt(
                &format!(
                    "WITH r AS (INSERT INTO ticket_reservations (id, ticket_id, slot_id, customer_email, \
                     customer_phone, reserved_at, status, orq, created_at, updated_at) \
                     VALUES ($8, $5, $1, $2, $3, $4, 'RESERVED', $6, $4, $4) RETURNING {RESERVATION_COLUMNS}), \
                     {set_ticket} SELECT r.*, (SELECT count(*) FROM t) AS tickets_written FROM r"
                ),
                &[&req.slot_id.0, email, phone, &now, &code, &orq.0, &status, &uuid::Uuid::now_v7()],
            )
            .map_err(|e| on_constraint(e, DomainError::AlreadyReserved))?,
    };
    let changed = |what: &str| {
        StoreError::Engine(format!(
            "ticket {code}'s reservation wrote no {what} row: changed under its lock"
        ))
    };
    let row = row.ok_or_else(|| changed("reservation"))?;
    if row.get::<_, i64>("tickets_written") != 1 {
        return Err(changed("ticket"));
    }
    reservation(&row)
}

/// Takes one place of slot `id` for a reservation `allowed` says the slot
/// takes, deciding on the slot's row under its lock; an `Err` from
/// `allowed` is returned and the caller's transaction rolls back.
///
/// While the increment leaves an open slot below its capacity, the UPDATE
/// is the lock: it adds the place and returns the row, and `allowed`
/// decides on the row as it was just before (the same row, one place
/// fewer; its `updated_at` is the new time, which the rules do not read).
/// The statement's filter only picks this path; the rules decide
/// on the row it returns, and what was written must be what
/// `Slot::after_booking_change` says, else the transaction fails. So the
/// hot row is held for this statement and the COMMIT, one round trip less
/// than a locking read, the decision and the update. Otherwise (the last
/// place, a full or closed slot, no such slot) the slot is read locked, the
/// rules decide, and `change_booking` writes what they planned.
pub(crate) fn take_place(
    tx: &mut Tx<'_>,
    orq: Orq,
    id: SlotId,
    now: DateTime<Utc>,
    allowed: impl FnOnce(&Slot) -> Result<(), DomainError>,
) -> Result<Slot> {
    let taken = tx
        .query_opt(TAKE_PLACE.as_str(), &[&id.0, &orq.0, &ts(now)])
        .map_err(db)?;
    if let Some(row) = taken {
        let after = slot(&row)?;
        let before = Slot {
            booked_count: after.booked_count - 1,
            available_count: after.available_count + 1,
            ..after.clone()
        };
        allowed(&before)?;
        if before.after_booking_change(1) != (after.booked_count, after.status) {
            return Err(StoreError::Engine(format!(
                "slot {id}: a place taken as {} {:?}, not as the rules plan it",
                after.booked_count, after.status
            )));
        }
        return Ok(after);
    }
    let slot = require_slot(tx, orq, id, true)?;
    allowed(&slot)?;
    change_booking(tx, &slot, 1, now)?;
    Ok(Slot {
        updated_at: ts(now),
        ..slot.with_booking_change(1)
    })
}

/// `take_place`'s one statement: a place taken while the slot stays open
/// below its capacity (its status unchanged), the row returned as written.
/// The filter restates the domain's FULL threshold (no status is written):
/// entrada-domain's `one_booking_below_the_last_place_keeps_an_active_slot_active`
/// (crates/domain/src/slot.rs) states that such a slot stays ACTIVE after
/// one booking; change both together.
static TAKE_PLACE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE reservation_slots SET booked_count = booked_count + 1, updated_at = $3 \
         WHERE id = $1 AND orq = $2 AND status = 'ACTIVE' AND booked_count + 1 < total_capacity \
         RETURNING {SLOT_COLUMNS}"
    )
});

/// One reservation in its own transaction (`reserve_slot_as` alone, or
/// handed back by its batch, `reserve_batch.rs`).
///
/// Five statements (session 32, issue 13): the ticket locked; its
/// reservation (with the venue of the slot it holds), the slot asked for
/// and that slot's venue in one read after the lock; the reservation and
/// the ticket written in one statement; the slot's place taken
/// (`take_place`: the slot's lock last, one statement while the rules
/// allow it); COMMIT.
pub(crate) fn reserve_one(
    tx: &mut Tx<'_>,
    orq: Orq,
    req: &ReserveRequest,
    by: ChangedBy,
    now: DateTime<Utc>,
) -> Result<Reservation> {
    let ticket = require_ticket(tx, orq, &req.ticket, true)?;
    // After the lock, a statement of its own: its snapshot sees every
    // writer of this ticket's reservation that held the lock before.
    let rows = reserve_rows(tx, orq, &req.ticket, req.slot_id)?;
    if rows.existing.is_some() {
        let held = rows
            .held_venue
            .ok_or(DomainError::NotFound { entity: "slot" })?;
        by.check_may_book(held)?;
    }
    let existing = rows.existing;
    // A first look without the slot's lock: most refusals (a full or
    // closed slot, a ticket that may not reserve) write nothing.
    let seen = rows.slot.ok_or(DomainError::NotFound { entity: "slot" })?;
    let venue = rows
        .venue
        .ok_or(DomainError::NotFound { entity: "venue" })?;
    check_reservable(&ticket, existing.as_ref(), &seen, &venue, now)?;
    let reserved = write_reservation(tx, orq, req, &ticket, existing.as_ref(), now)?;
    // The slot's lock last, so the hot row is held only for the
    // decision on it, its update and the commit: the rules decide
    // again on the locked row (another writer may have taken the
    // last place since the first look; a refusal rolls all back).
    take_place(tx, orq, req.slot_id, now, |slot| {
        check_reservable(&ticket, existing.as_ref(), slot, &venue, now)
    })?;
    Ok(reserved)
}

impl ReservationStore for PgStore {
    fn get_reservation(&self, orq: Orq, id: ReservationId) -> Result<Reservation> {
        self.read(|tx| require_reservation(tx, orq, id))
    }

    /// The spec's reservation transaction: lock the slot, check capacity,
    /// insert, increment; plus the ticket's reserved fields. As org-wide
    /// staff: a caller that may be bound to a venue books through
    /// `reserve_slot_as`.
    fn reserve_slot(
        &self,
        orq: Orq,
        req: &ReserveRequest,
        now: DateTime<Utc>,
    ) -> Result<Reservation> {
        self.reserve_slot_as(orq, req, ChangedBy::Staff, now)
    }

    /// A ticket whose reservation row is at another venue is NOT_FOUND to a
    /// bound caller, decided under the ticket's lock (a reschedule takes it
    /// too, so the row cannot move meanwhile) before anything else.
    ///
    /// Reservations asked at once on this instance for one slot share one
    /// transaction and one COMMIT (`reserve_batch.rs`); each is answered
    /// once that COMMIT returned. One alone runs `reserve_one`.
    fn reserve_slot_as(
        &self,
        orq: Orq,
        req: &ReserveRequest,
        by: ChangedBy,
        now: DateTime<Utc>,
    ) -> Result<Reservation> {
        self.reserve_grouped(ReserveItem {
            orq,
            req: req.clone(),
            by,
            now,
        })
    }

    /// Frees the place (a FULL slot becomes ACTIVE again); refused once
    /// verified, and to the customer once the visit has started.
    fn cancel_reservation(
        &self,
        orq: Orq,
        id: ReservationId,
        by: ChangedBy,
        now: DateTime<Utc>,
    ) -> Result<Reservation> {
        self.write(|tx| {
            let unlocked = require_reservation(tx, orq, id)?;
            let ticket = require_ticket(tx, orq, &unlocked.ticket_id, true)?;
            // Read again under the ticket's lock: what it decides on is current.
            let reservation = require_reservation(tx, orq, id)?;
            let slot = require_slot(tx, orq, reservation.slot_id, true)?;
            let venue = require_venue(tx, orq, slot.venue_id)?;
            let booked = Booked { reservation: &reservation, slot: &slot, venue: &venue };
            check_cancel(&ticket, booked, by, now)?;
            change_booking(tx, &slot, -1, now)?;
            tx.execute(
                "UPDATE ticket_reservations SET status = 'CANCELLED', updated_at = $1 WHERE id = $2",
                &[&ts(now), &id.0],
            )
            .map_err(db)?;
            tx.execute(
                "UPDATE tickets SET status = 'ACTIVATED', reserved_at = NULL, updated_at = $1 WHERE ticket_code = $2",
                &[&ts(now), &reservation.ticket_id.as_str()],
            )
            .map_err(db)?;
            require_reservation(tx, orq, id)
        })
    }

    /// Moves a live reservation to another slot in one step, or nothing changes.
    fn reschedule_reservation(
        &self,
        orq: Orq,
        id: ReservationId,
        new_slot: SlotId,
        by: ChangedBy,
        now: DateTime<Utc>,
    ) -> Result<Reservation> {
        self.write(|tx| {
            let unlocked = require_reservation(tx, orq, id)?;
            let ticket = require_ticket(tx, orq, &unlocked.ticket_id, true)?;
            let reservation = require_reservation(tx, orq, id)?;
            // Both slots locked together, in id order.
            let mut ids = vec![reservation.slot_id.0, new_slot.0];
            ids.sort();
            ids.dedup();
            tx.execute(
                "SELECT 1 FROM (SELECT id FROM reservation_slots WHERE id = ANY($1) AND orq = $2 \
                 ORDER BY id FOR NO KEY UPDATE) locked",
                &[&ids, &orq.0],
            )
            .map_err(db)?;
            let old = require_slot(tx, orq, reservation.slot_id, false)?;
            let old_venue = require_venue(tx, orq, old.venue_id)?;
            let booked = Booked {
                reservation: &reservation,
                slot: &old,
                venue: &old_venue,
            };
            check_change(&ticket, booked, by, now)?;
            if reservation.slot_id == new_slot {
                return Ok(reservation);
            }
            let target = require_slot(tx, orq, new_slot, false)?;
            // A venue-bound caller moves nothing into another venue's slot.
            if !by.reaches(target.venue_id) {
                return Err(DomainError::NotFound { entity: "slot" }.into());
            }
            let venue = require_venue(tx, orq, target.venue_id)?;
            check_slot_bookable(&ticket, &target, &venue, now)?;
            change_booking(tx, &old, -1, now)?;
            change_booking(tx, &target, 1, now)?;
            tx.execute(
                "UPDATE ticket_reservations SET slot_id = $1, updated_at = $2 WHERE id = $3",
                &[&new_slot.0, &ts(now), &id.0],
            )
            .map_err(db)?;
            require_reservation(tx, orq, id)
        })
    }

    /// The month's open and full slots (closed ones are not offered), each
    /// with whether it takes a reservation now on its venue's clock.
    fn offered_slots(
        &self,
        orq: Orq,
        month: &str,
        venue: Option<VenueId>,
        ticket: Option<&TicketCode>,
        now: DateTime<Utc>,
    ) -> Result<Vec<SlotOffer>> {
        let (first, last) = crate::domain::slot::parse_month(month)?;
        self.read(|tx| {
            let slots = tx
                .query(
                    &format!(
                        "SELECT {SLOT_COLUMNS} FROM reservation_slots \
                         WHERE orq = $1 AND date BETWEEN $2 AND $3 AND status <> 'CLOSED' \
                           AND ($4::BIGINT IS NULL OR venue_id = $4) \
                         ORDER BY date, start_time, venue_id"
                    ),
                    &[&orq.0, &first, &last, &venue.map(|v| v.0)],
                )
                .map_err(db)?
                .iter()
                .map(slot)
                .collect::<Result<Vec<_>>>()?;
            let ticket = match ticket {
                Some(code) => Some(require_ticket(tx, orq, code, false)?),
                None => None,
            };
            let mut venues = std::collections::HashMap::new();
            let mut offers = Vec::with_capacity(slots.len());
            for slot in slots {
                let venue = match venues.entry(slot.venue_id) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(require_venue(tx, orq, slot.venue_id)?)
                    }
                };
                offers.push(slot_offer(ticket.as_ref(), slot, venue, now));
            }
            Ok(offers)
        })
    }
}
