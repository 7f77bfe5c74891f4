//! Reservation services: reserve, cancel, reschedule. Each is one write
//! transaction that holds the write lock from the first read of the slot to
//! the commit, so two customers can never both take the last place.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use super::codec::{self, ts, RESERVATION_COLUMNS};
use super::column::Sql;
use super::slots::{change_booking, require_slot};
use super::tickets::require_ticket;
use super::venues::require_venue;
use super::{on_constraint, Result, Store};
use crate::domain::customer::{check_cancel, check_change};
use crate::domain::{
    check_reservable, check_slot_bookable, slot_offer, Booked, ChangedBy, Contact, DomainError,
    Orq, Reservation, ReservationId, SlotId, SlotOffer, TicketCode, VenueId,
};

pub(crate) fn reservation_of_ticket(
    tx: &Transaction<'_>,
    orq: Orq,
    code: &TicketCode,
) -> Result<Option<Reservation>> {
    Ok(tx
        .prepare_cached(&format!(
            "SELECT {RESERVATION_COLUMNS} FROM ticket_reservations WHERE ticket_id = ?1 AND orq = ?2"
        ))?
        .query_row(params![Sql(&code), Sql(orq)], codec::reservation)
        .optional()?)
}

pub(crate) fn require_reservation(
    tx: &Transaction<'_>,
    orq: Orq,
    id: ReservationId,
) -> Result<Reservation> {
    tx.prepare_cached(&format!(
        "SELECT {RESERVATION_COLUMNS} FROM ticket_reservations WHERE id = ?1 AND orq = ?2"
    ))?
    .query_row(params![Sql(id), Sql(orq)], codec::reservation)
    .optional()?
    .ok_or_else(|| {
        DomainError::NotFound {
            entity: "reservation",
        }
        .into()
    })
}

/// A customer's request for a place.
#[derive(Debug, Clone)]
pub struct ReserveRequest {
    pub ticket: TicketCode,
    pub slot_id: SlotId,
    pub contact: Contact,
}

impl Store {
    /// The spec's reservation transaction: lock the slot, check capacity,
    /// insert, increment; plus the ticket's reserved fields. As org-wide
    /// staff (`ChangedBy::Staff`): a caller that may be bound to a venue
    /// books through `reserve_slot_as`.
    pub fn reserve_slot(
        &self,
        orq: Orq,
        req: &ReserveRequest,
        now: DateTime<Utc>,
    ) -> Result<Reservation> {
        self.reserve_slot_as(orq, req, ChangedBy::Staff, now)
    }

    /// `reserve_slot` for a caller that may be bound to a venue: a ticket
    /// whose reservation row is at another venue is NOT_FOUND to it, decided
    /// in this transaction (the writer lock) before anything else is judged.
    pub fn reserve_slot_as(
        &self,
        orq: Orq,
        req: &ReserveRequest,
        by: ChangedBy,
        now: DateTime<Utc>,
    ) -> Result<Reservation> {
        self.write(|tx| {
            let ticket = require_ticket(tx, orq, &req.ticket)?;
            let existing = reservation_of_ticket(tx, orq, &req.ticket)?;
            if let Some(held) = &existing {
                by.check_may_book(require_slot(tx, orq, held.slot_id)?.venue_id)?;
            }
            let slot = require_slot(tx, orq, req.slot_id)?;
            let venue = require_venue(tx, orq, slot.venue_id)?;
            check_reservable(&ticket, existing.as_ref(), &slot, &venue, now)?;
            change_booking(tx, &slot, 1, now)?;
            let id = match existing {
                // One row per ticket (unique ticket_id): a cancelled
                // reservation row is reused for the new one.
                Some(cancelled) => {
                    tx.prepare_cached(
                        "UPDATE ticket_reservations SET slot_id = ?1, customer_email = ?2, customer_phone = ?3, \
                         reserved_at = ?4, status = 'RESERVED', no_show_at = NULL, updated_at = ?4 WHERE id = ?5",
                    )?
                    .execute(params![Sql(slot.id), req.contact.email, req.contact.phone, ts(now), Sql(cancelled.id)])?;
                    cancelled.id
                }
                None => {
                    let id = ReservationId(uuid::Uuid::now_v7());
                    tx.prepare_cached(
                        "INSERT INTO ticket_reservations (id, ticket_id, slot_id, customer_email, customer_phone, \
                         reserved_at, status, orq, created_at, updated_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'RESERVED', ?7, ?6, ?6)",
                    )?
                    .execute(params![Sql(id), Sql(&req.ticket), Sql(slot.id), req.contact.email, req.contact.phone, ts(now), Sql(orq)])
                    .map_err(|e| on_constraint(e, DomainError::AlreadyReserved))?;
                    id
                }
            };
            tx.prepare_cached(
                "UPDATE tickets SET status = 'RESERVED', customer_email = ?1, customer_phone = ?2, \
                 reserved_at = ?3, updated_at = ?3 WHERE ticket_code = ?4",
            )?
            .execute(params![req.contact.email, req.contact.phone, ts(now), Sql(&req.ticket)])?;
            require_reservation(tx, orq, id)
        })
    }

    pub fn get_reservation(&self, orq: Orq, id: ReservationId) -> Result<Reservation> {
        self.read(|tx| require_reservation(tx, orq, id))
    }

    pub fn reservation_for_ticket(
        &self,
        orq: Orq,
        code: &TicketCode,
    ) -> Result<Option<Reservation>> {
        self.read(|tx| reservation_of_ticket(tx, orq, code))
    }

    /// Frees the place (a FULL slot becomes ACTIVE again); refused once
    /// verified, and to the customer once the visit has started.
    pub fn cancel_reservation(
        &self,
        orq: Orq,
        id: ReservationId,
        by: ChangedBy,
        now: DateTime<Utc>,
    ) -> Result<Reservation> {
        self.write(|tx| {
            let reservation = require_reservation(tx, orq, id)?;
            let ticket = require_ticket(tx, orq, &reservation.ticket_id)?;
            let slot = require_slot(tx, orq, reservation.slot_id)?;
            let venue = require_venue(tx, orq, slot.venue_id)?;
            let booked = Booked {
                reservation: &reservation,
                slot: &slot,
                venue: &venue,
            };
            check_cancel(&ticket, booked, by, now)?;
            change_booking(tx, &slot, -1, now)?;
            tx.prepare_cached(
                "UPDATE ticket_reservations SET status = 'CANCELLED', updated_at = ?1 WHERE id = ?2",
            )?
            .execute(params![ts(now), Sql(id)])?;
            tx.prepare_cached(
                "UPDATE tickets SET status = 'ACTIVATED', reserved_at = NULL, updated_at = ?1 WHERE ticket_code = ?2",
            )?
            .execute(params![ts(now), Sql(&reservation.ticket_id)])?;
            require_reservation(tx, orq, id)
        })
    }

    /// Moves a live reservation to another slot in one step: the new place is
    /// taken and the old one freed together, or nothing changes. Refused to
    /// the customer once the visit has started.
    pub fn reschedule_reservation(
        &self,
        orq: Orq,
        id: ReservationId,
        new_slot: SlotId,
        by: ChangedBy,
        now: DateTime<Utc>,
    ) -> Result<Reservation> {
        self.write(|tx| {
            let reservation = require_reservation(tx, orq, id)?;
            let ticket = require_ticket(tx, orq, &reservation.ticket_id)?;
            let old = require_slot(tx, orq, reservation.slot_id)?;
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
            let target = require_slot(tx, orq, new_slot)?;
            // A venue-bound caller moves nothing into another venue's slot.
            if !by.reaches(target.venue_id) {
                return Err(DomainError::NotFound { entity: "slot" }.into());
            }
            let venue = require_venue(tx, orq, target.venue_id)?;
            check_slot_bookable(&ticket, &target, &venue, now)?;
            change_booking(tx, &old, -1, now)?;
            change_booking(tx, &target, 1, now)?;
            tx.prepare_cached(
                "UPDATE ticket_reservations SET slot_id = ?1, updated_at = ?2 WHERE id = ?3",
            )?
            .execute(params![Sql(new_slot), ts(now), Sql(id)])?;
            require_reservation(tx, orq, id)
        })
    }

    /// The month's open and full slots (closed ones are not offered), each
    /// with whether it takes a reservation now on its venue's clock, for
    /// `ticket` if the caller holds one (its validity counts).
    pub fn offered_slots(
        &self,
        orq: Orq,
        month: &str,
        venue: Option<VenueId>,
        ticket: Option<&TicketCode>,
        now: DateTime<Utc>,
    ) -> Result<Vec<SlotOffer>> {
        let slots = self.available_slots(orq, month, venue)?;
        self.read(|tx| {
            let ticket = match ticket {
                Some(code) => Some(require_ticket(tx, orq, code)?),
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
