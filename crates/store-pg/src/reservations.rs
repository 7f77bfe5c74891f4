//! Reservations: reserve, cancel, reschedule, the month's offer. Each write
//! locks the rows it decides on (the ticket, then its slots in id order) from
//! the first read to the commit, so two instances can never both take the
//! last place of a slot, and never wait on each other in a circle.

use crate::conn::Tx;
use chrono::{DateTime, Utc};
use postgres::Row;

use crate::domain::customer::{check_cancel, check_change};
use crate::domain::{
    check_reservable, check_slot_bookable, slot_offer, Booked, ChangedBy, DomainError, Orq,
    Reservation, ReservationId, ReservationStatus, Slot, SlotId, SlotOffer, TicketCode, VenueId,
};
use crate::slots::{require_slot, slot, SLOT_COLUMNS};
use crate::tickets::require_ticket;
use crate::venues::require_venue;
use crate::{corrupt, db, on_constraint, ts, PgStore};
use entrada_store::{ReservationStore, ReserveRequest, Result, StoreError};

pub(crate) const RESERVATION_COLUMNS: &str =
    "id, ticket_id, slot_id, customer_email, customer_phone, \
     reserved_at, status, orq, created_at, updated_at, no_show_at";

pub(crate) fn reservation(row: &Row) -> Result<Reservation> {
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
    fn reserve_slot_as(
        &self,
        orq: Orq,
        req: &ReserveRequest,
        by: ChangedBy,
        now: DateTime<Utc>,
    ) -> Result<Reservation> {
        self.write(|tx| {
            let ticket = require_ticket(tx, orq, &req.ticket, true)?;
            let existing = reservation_of_ticket(tx, orq, &req.ticket)?;
            if let Some(held) = &existing {
                by.check_may_book(require_slot(tx, orq, held.slot_id, false)?.venue_id)?;
            }
            // A first look without the slot's lock: most refusals (a full or
            // closed slot, a ticket that may not reserve) write nothing.
            let seen = require_slot(tx, orq, req.slot_id, false)?;
            let venue = require_venue(tx, orq, seen.venue_id)?;
            check_reservable(&ticket, existing.as_ref(), &seen, &venue, now)?;
            // The row as written comes back with it (RETURNING): nothing
            // below changes it, and reading it again after the slot's lock
            // would hold the hot row one round trip longer.
            let written = match existing.clone() {
                // One row per ticket: a cancelled reservation row is reused.
                Some(cancelled) => tx
                    .query_one(
                        &format!(
                            "UPDATE ticket_reservations SET slot_id = $1, customer_email = $2, customer_phone = $3, \
                             reserved_at = $4, status = 'RESERVED', no_show_at = NULL, updated_at = $4 WHERE id = $5 \
                             RETURNING {RESERVATION_COLUMNS}"
                        ),
                        &[&seen.id.0, &req.contact.email, &req.contact.phone, &ts(now), &cancelled.id.0],
                    )
                    .map_err(db)?,
                None => tx
                    .query_one(
                        &format!(
                            "INSERT INTO ticket_reservations (id, ticket_id, slot_id, customer_email, customer_phone, \
                             reserved_at, status, orq, created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, 'RESERVED', $7, $6, $6) RETURNING {RESERVATION_COLUMNS}"
                        ),
                        &[&uuid::Uuid::now_v7(), &req.ticket.as_str(), &seen.id.0, &req.contact.email, &req.contact.phone, &ts(now), &orq.0],
                    )
                    .map_err(|e| on_constraint(e, DomainError::AlreadyReserved))?,
            };
            let reserved = reservation(&written)?;
            tx.execute(
                "UPDATE tickets SET status = 'RESERVED', customer_email = $1, customer_phone = $2, \
                 reserved_at = $3, updated_at = $3 WHERE ticket_code = $4",
                &[&req.contact.email, &req.contact.phone, &ts(now), &req.ticket.as_str()],
            )
            .map_err(db)?;
            // The slot's lock last, so the hot row is held only for the
            // decision on it, its update and the commit: the rules decide
            // again on the locked row (another writer may have taken the
            // last place since the first look; a refusal rolls all back).
            let slot = require_slot(tx, orq, req.slot_id, true)?;
            check_reservable(&ticket, existing.as_ref(), &slot, &venue, now)?;
            change_booking(tx, &slot, 1, now)?;
            Ok(reserved)
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
