//! What a customer may do with their ticket, and when. The reservation
//! services enforce these checks and the status the customer page reads
//! reports them (`customer_actions`, `slot_offer`), so the page holds no rule
//! and no time zone of its own.
//!
//! | case                                   | reserve            | change                | cancel                |
//! |----------------------------------------|--------------------|-----------------------|-----------------------|
//! | active ticket, no reservation          | yes                | `NOT_FOUND`           | `NOT_FOUND`           |
//! | reserved, before the slot's start      | `ALREADY_RESERVED` | yes                   | yes                   |
//! | reserved, at or after the start        | `ALREADY_RESERVED` | `SLOT_ALREADY_STARTED`| `SLOT_ALREADY_STARTED`|
//! | reserved on a slot closed since        | `ALREADY_RESERVED` | yes (before start)    | yes (before start)    |
//! | reservation verified at the gate       | `ALREADY_RESERVED` | `RESERVATION_VERIFIED`| `RESERVATION_VERIFIED`|
//! | reservation cancelled                  | yes                | `RESERVATION_CANCELLED`| `RESERVATION_CANCELLED`|
//! | ticket used (redeemed)                 | `TICKET_REDEEMED`  | `TICKET_REDEEMED`     | `TICKET_REDEEMED`     |
//! | ticket expired, reservation live       | `TICKET_EXPIRED`   | `TICKET_EXPIRED`      | yes (before start)    |
//! | ticket not activated                   | `TICKET_NOT_ACTIVE`| `NOT_FOUND`           | `NOT_FOUND`           |
//!
//! "Start" is the slot's date and start time on the clock of the slot's venue.
//! The start binds the customer (`ChangedBy::Customer`); staff (an admin at
//! the desk) may still move or cancel a visit that has started.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

use super::reservation::check_slot_bookable;
use super::{
    ActivationStatus, DomainError, Reservation, ReservationStatus, Slot, Ticket, Venue, VenueId,
};

/// Whether one thing may be done now, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Action {
    pub allowed: bool,
    /// The stable error code the server would answer if it were tried
    /// (e.g. `SLOT_ALREADY_STARTED`); `null` when allowed.
    #[cfg_attr(feature = "openapi", schema(example = "SLOT_ALREADY_STARTED"))]
    pub reason: Option<String>,
}

impl Action {
    fn from(check: Result<(), DomainError>) -> Self {
        match check {
            Ok(()) => Self {
                allowed: true,
                reason: None,
            },
            Err(e) => Self {
                allowed: false,
                reason: Some(e.code().to_string()),
            },
        }
    }
}

/// What the customer may do with their ticket now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CustomerActions {
    /// Take a place on a slot (`POST /api/reservations/create`).
    pub reserve: Action,
    /// Move the reservation to another slot (`PUT /api/reservations/{id}`).
    pub change: Action,
    /// Cancel the reservation (`DELETE /api/reservations/{id}`).
    pub cancel: Action,
}

/// A customer's reservation with its slot and the slot's venue.
#[derive(Debug, Clone, Copy)]
pub struct Booked<'a> {
    pub reservation: &'a Reservation,
    pub slot: &'a Slot,
    pub venue: &'a Venue,
}

/// Who asks for a change: the start of the visit binds the customer only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangedBy {
    Customer,
    /// An admin (the desk), the demo data set, fixtures.
    Staff,
    /// Staff whose token is bound to one venue: as `Staff`, for that venue's
    /// reservations and slots only (others are as unknown to it as another
    /// org's). Checked inside the change's own transaction.
    StaffOf(VenueId),
}

impl ChangedBy {
    /// Whether this caller may touch what belongs to `venue`.
    pub fn reaches(self, venue: VenueId) -> bool {
        !matches!(self, Self::StaffOf(bound) if bound != venue)
    }

    /// Whether this caller may book a ticket whose reservation row (live,
    /// cancelled or used) is at `held_at`. A ticket never reserved has no
    /// row, and no venue: anyone who may book may book it. A bound
    /// caller books tickets of no venue yet (the box office's walk-in) or of
    /// its own; another venue's ticket is as unknown to it as another org's,
    /// decided before the ticket's state is judged, so a refusal tells it
    /// nothing of that ticket.
    pub fn check_may_book(self, held_at: VenueId) -> Result<(), DomainError> {
        if self.reaches(held_at) {
            Ok(())
        } else {
            Err(DomainError::NotFound { entity: "ticket" })
        }
    }

    /// The booked reservation, if this caller reaches its slot's venue; else
    /// the reservation is not found.
    fn check_reaches(self, booked: Booked<'_>) -> Result<(), DomainError> {
        if self.reaches(booked.slot.venue_id) {
            Ok(())
        } else {
            Err(DomainError::NotFound {
                entity: "reservation",
            })
        }
    }
}

/// The slot's start as the venue's wall clock shows it.
fn local(now: DateTime<Utc>, venue: &Venue) -> NaiveDateTime {
    now.with_timezone(&venue.timezone).naive_local()
}

/// A slot has started once the venue's clock reaches its start time.
pub fn check_not_started(
    slot: &Slot,
    venue: &Venue,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    if NaiveDateTime::new(slot.date, slot.start_time) <= local(now, venue) {
        return Err(DomainError::SlotAlreadyStarted {
            date: slot.date,
            start_time: slot.start_time,
        });
    }
    Ok(())
}

/// May `ticket` take a place (on some slot)? `existing` is its reservation row.
pub fn check_may_reserve(
    ticket: &Ticket,
    existing: Option<&Reservation>,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    ticket.check_can_reserve(now)?;
    if existing.is_some_and(|r| r.status != ReservationStatus::Cancelled) {
        return Err(DomainError::AlreadyReserved);
    }
    Ok(())
}

/// May the customer move their reservation (to any slot; the target is
/// checked by `check_slot_bookable`)?
pub fn check_change(
    ticket: &Ticket,
    booked: Booked<'_>,
    by: ChangedBy,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    by.check_reaches(booked)?;
    booked.reservation.check_changeable()?;
    ticket.check_can_reserve(now)?;
    match by {
        ChangedBy::Customer => check_not_started(booked.slot, booked.venue, now),
        ChangedBy::Staff | ChangedBy::StaffOf(_) => Ok(()),
    }
}

/// May the customer cancel their reservation? An expired ticket may still
/// give its place back; a used one may not.
pub fn check_cancel(
    ticket: &Ticket,
    booked: Booked<'_>,
    by: ChangedBy,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    by.check_reaches(booked)?;
    booked.reservation.check_changeable()?;
    if ticket.activation_status == ActivationStatus::Redeemed || ticket.verified_at.is_some() {
        return Err(DomainError::TicketRedeemed);
    }
    match by {
        ChangedBy::Customer => check_not_started(booked.slot, booked.venue, now),
        ChangedBy::Staff | ChangedBy::StaffOf(_) => Ok(()),
    }
}

/// Everything the customer page may offer, with the reason for what it may not.
/// `booked` is the ticket's reservation (any status) with its slot and venue.
pub fn customer_actions(
    ticket: &Ticket,
    booked: Option<Booked<'_>>,
    now: DateTime<Utc>,
) -> CustomerActions {
    let none = || {
        Err(DomainError::NotFound {
            entity: "reservation",
        })
    };
    CustomerActions {
        reserve: Action::from(check_may_reserve(
            ticket,
            booked.map(|b| b.reservation),
            now,
        )),
        change: Action::from(
            booked.map_or_else(none, |b| check_change(ticket, b, ChangedBy::Customer, now)),
        ),
        cancel: Action::from(
            booked.map_or_else(none, |b| check_cancel(ticket, b, ChangedBy::Customer, now)),
        ),
    }
}

/// A slot as offered to a customer: whether it takes a (new or moved)
/// reservation now, decided on the venue's clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SlotOffer {
    #[serde(flatten)]
    pub slot: Slot,
    /// The server would take a reservation on it now.
    pub bookable: bool,
    /// Why not (`SLOT_FULL`, `SLOT_CLOSED`, `SLOT_IN_PAST`, `OUTSIDE_VALIDITY`); `null` when bookable.
    #[cfg_attr(feature = "openapi", schema(example = "SLOT_FULL"))]
    pub reason: Option<String>,
}

/// Whether `slot` takes a reservation now: for `ticket` (its validity counts)
/// or, without one, for any active ticket.
pub fn slot_offer(
    ticket: Option<&Ticket>,
    slot: Slot,
    venue: &Venue,
    now: DateTime<Utc>,
) -> SlotOffer {
    let check = match ticket {
        Some(t) => check_slot_bookable(t, &slot, venue, now),
        None => {
            if NaiveDateTime::new(slot.date, slot.end_time) <= local(now, venue) {
                Err(DomainError::SlotInPast)
            } else {
                slot.check_can_take_place()
            }
        }
    };
    let Action { allowed, reason } = Action::from(check);
    SlotOffer {
        slot,
        bookable: allowed,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        slot::tests::slot, ticket::tests::ticket, Orq, ReservationId, SlotId, SlotStatus,
        TicketStatus, VenueId,
    };
    use chrono::TimeZone;

    fn venue() -> Venue {
        Venue {
            id: VenueId(1),
            orq: Orq(1),
            name: "V".into(),
            timezone: chrono_tz::America::New_York,
            gate: Default::default(),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    fn reservation(status: ReservationStatus) -> Reservation {
        Reservation {
            id: ReservationId(uuid::Uuid::nil()),
            ticket_id: ticket(ActivationStatus::Active, TicketStatus::Reserved).ticket_code,
            slot_id: SlotId(uuid::Uuid::nil()),
            customer_email: "a@b.co".into(),
            customer_phone: "+12025551234".into(),
            reserved_at: DateTime::<Utc>::UNIX_EPOCH,
            status,
            orq: Orq(1),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            no_show_at: None,
        }
    }

    fn utc(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 12, d, h, m, 0).unwrap()
    }

    fn code(a: &Action) -> &str {
        a.reason.as_deref().unwrap_or("yes")
    }

    /// name, ticket, reservation status, slot, now, expected [reserve, change, cancel]
    type Case<'a> = (
        &'static str,
        &'a Ticket,
        Option<ReservationStatus>,
        &'a Slot,
        DateTime<Utc>,
        [&'static str; 3],
    );

    /// The table in this module's documentation, row by row. The slot is
    /// 2025-12-01 09:00–12:00 New York = 14:00–17:00 UTC.
    #[test]
    fn what_a_customer_may_do_when() {
        use ReservationStatus::*;
        let v = venue();
        let open = slot(10, 5, SlotStatus::Active);
        let closed = slot(10, 5, SlotStatus::Closed);
        let active = ticket(ActivationStatus::Active, TicketStatus::Reserved);
        let mut redeemed = ticket(ActivationStatus::Redeemed, TicketStatus::Verified);
        redeemed.verified_at = Some(utc(1, 14, 5));
        let mut expired = active.clone();
        expired.expires_at = Some(utc(1, 13, 0));
        let inactive = ticket(ActivationStatus::Inactive, TicketStatus::Minted);
        let before = utc(1, 13, 59); // 08:59 in New York, 13:59 in London
        let at = utc(1, 14, 0);
        let after = utc(1, 15, 30);

        let cases: [Case<'_>; 11] = [
            (
                "no reservation",
                &active,
                None,
                &open,
                before,
                ["yes", "NOT_FOUND", "NOT_FOUND"],
            ),
            (
                "before start",
                &active,
                Some(Reserved),
                &open,
                before,
                ["ALREADY_RESERVED", "yes", "yes"],
            ),
            (
                "at start",
                &active,
                Some(Reserved),
                &open,
                at,
                [
                    "ALREADY_RESERVED",
                    "SLOT_ALREADY_STARTED",
                    "SLOT_ALREADY_STARTED",
                ],
            ),
            (
                "after start",
                &active,
                Some(Reserved),
                &open,
                after,
                [
                    "ALREADY_RESERVED",
                    "SLOT_ALREADY_STARTED",
                    "SLOT_ALREADY_STARTED",
                ],
            ),
            (
                "slot closed since, before start",
                &active,
                Some(Reserved),
                &closed,
                before,
                ["ALREADY_RESERVED", "yes", "yes"],
            ),
            (
                "slot closed since, after start",
                &active,
                Some(Reserved),
                &closed,
                after,
                [
                    "ALREADY_RESERVED",
                    "SLOT_ALREADY_STARTED",
                    "SLOT_ALREADY_STARTED",
                ],
            ),
            (
                "verified at the gate",
                &redeemed,
                Some(Verified),
                &open,
                after,
                [
                    "TICKET_REDEEMED",
                    "RESERVATION_VERIFIED",
                    "RESERVATION_VERIFIED",
                ],
            ),
            (
                "ticket used, reservation still live",
                &redeemed,
                Some(Reserved),
                &open,
                before,
                ["TICKET_REDEEMED", "TICKET_REDEEMED", "TICKET_REDEEMED"],
            ),
            (
                "reservation cancelled",
                &active,
                Some(Cancelled),
                &open,
                before,
                ["yes", "RESERVATION_CANCELLED", "RESERVATION_CANCELLED"],
            ),
            (
                "ticket expired, reservation live",
                &expired,
                Some(Reserved),
                &open,
                before,
                ["TICKET_EXPIRED", "TICKET_EXPIRED", "yes"],
            ),
            (
                "ticket not activated",
                &inactive,
                None,
                &open,
                before,
                ["TICKET_NOT_ACTIVE", "NOT_FOUND", "NOT_FOUND"],
            ),
        ];
        for (name, t, status, s, now, [reserve, change, cancel]) in cases {
            let r = status.map(reservation);
            let booked = r.as_ref().map(|reservation| Booked {
                reservation,
                slot: s,
                venue: &v,
            });
            let a = customer_actions(t, booked, now);
            assert_eq!(
                [code(&a.reserve), code(&a.change), code(&a.cancel)],
                [reserve, change, cancel],
                "{name}"
            );
            for action in [&a.reserve, &a.change, &a.cancel] {
                assert_eq!(action.allowed, action.reason.is_none(), "{name}");
            }
        }
    }

    /// Staff may still move or cancel a visit that has started; not a
    /// cancelled or verified one.
    #[test]
    fn staff_are_not_bound_by_the_start() {
        let v = venue();
        let s = slot(10, 5, SlotStatus::Active);
        let t = ticket(ActivationStatus::Active, TicketStatus::Reserved);
        let after = utc(1, 15, 30);
        for (status, expected) in [
            (ReservationStatus::Reserved, Ok(())),
            (
                ReservationStatus::Cancelled,
                Err(DomainError::ReservationCancelled),
            ),
        ] {
            let r = reservation(status);
            let b = Booked {
                reservation: &r,
                slot: &s,
                venue: &v,
            };
            assert_eq!(check_cancel(&t, b, ChangedBy::Staff, after), expected);
            assert_eq!(check_change(&t, b, ChangedBy::Staff, after), expected);
        }
        let r = reservation(ReservationStatus::Reserved);
        let b = Booked {
            reservation: &r,
            slot: &s,
            venue: &v,
        };
        assert_eq!(
            check_cancel(&t, b, ChangedBy::Customer, after)
                .unwrap_err()
                .code(),
            "SLOT_ALREADY_STARTED"
        );
    }

    /// Staff bound to a venue act as staff on that venue's reservations;
    /// another venue's is not found, whatever its state.
    #[test]
    fn venue_bound_staff_reach_their_venue_only() {
        let v = venue();
        let s = slot(10, 5, SlotStatus::Active);
        let t = ticket(ActivationStatus::Active, TicketStatus::Reserved);
        let after = utc(1, 15, 30);
        let here = s.venue_id;
        let elsewhere = VenueId(here.0 + 1);
        // (caller, reservation) → cancel's and change's answer
        let cases = [
            (ChangedBy::StaffOf(here), ReservationStatus::Reserved, "ok"),
            (
                ChangedBy::StaffOf(elsewhere),
                ReservationStatus::Reserved,
                "NOT_FOUND",
            ),
            (
                ChangedBy::StaffOf(elsewhere),
                ReservationStatus::Cancelled,
                "NOT_FOUND",
            ),
            (
                ChangedBy::StaffOf(here),
                ReservationStatus::Cancelled,
                "RESERVATION_CANCELLED",
            ),
            (ChangedBy::Staff, ReservationStatus::Reserved, "ok"),
        ];
        for (by, status, expected) in cases {
            let r = reservation(status);
            let b = Booked {
                reservation: &r,
                slot: &s,
                venue: &v,
            };
            for got in [
                check_cancel(&t, b, by, after),
                check_change(&t, b, by, after),
            ] {
                assert_eq!(
                    got.map_or_else(|e| e.code(), |()| "ok"),
                    expected,
                    "{by:?} {status:?}"
                );
            }
        }
        assert!(ChangedBy::StaffOf(here).reaches(here));
        assert!(!ChangedBy::StaffOf(here).reaches(elsewhere));
        // (caller, where the ticket's reservation row is) → may book?
        for (by, held_at, expected) in [
            (ChangedBy::StaffOf(here), here, "ok"),
            (ChangedBy::StaffOf(here), elsewhere, "NOT_FOUND"),
            (ChangedBy::Staff, elsewhere, "ok"),
            (ChangedBy::Customer, elsewhere, "ok"),
        ] {
            let got = by.check_may_book(held_at);
            assert_eq!(
                got.map_or_else(|e| e.code(), |()| "ok"),
                expected,
                "{by:?} {held_at:?}"
            );
        }
        assert!(ChangedBy::Staff.reaches(elsewhere) && ChangedBy::Customer.reaches(elsewhere));
    }

    /// The venue's clock decides, not UTC's: in Tokyo the same instant is
    /// already past a 09:00 start that New York has not reached.
    #[test]
    fn start_is_on_the_venues_clock() {
        let s = slot(10, 5, SlotStatus::Active); // 2025-12-01 09:00
        let mut tokyo = venue();
        tokyo.timezone = chrono_tz::Asia::Tokyo;
        let now = utc(1, 0, 0); // 09:00 in Tokyo, 19:00 the day before in New York
        assert_eq!(check_not_started(&s, &venue(), now), Ok(()));
        assert_eq!(
            check_not_started(&s, &tokyo, now),
            Err(DomainError::SlotAlreadyStarted {
                date: s.date,
                start_time: s.start_time
            })
        );
        assert_eq!(
            check_not_started(&s, &tokyo, now - chrono::Duration::minutes(1)),
            Ok(())
        );
    }

    #[test]
    fn offers() {
        let v = venue();
        let active = ticket(ActivationStatus::Active, TicketStatus::Activated);
        let before = utc(1, 13, 0);
        let during = utc(1, 16, 59); // 11:59 in New York: started, not ended
        let ended = utc(1, 17, 0);
        let mut expiring = active.clone();
        expiring.expires_at = Some(utc(1, 13, 30));
        for (name, t, s, now, expected) in [
            (
                "open",
                Some(&active),
                slot(10, 5, SlotStatus::Active),
                before,
                "yes",
            ),
            (
                "open, anyone",
                None,
                slot(10, 5, SlotStatus::Active),
                before,
                "yes",
            ),
            (
                "started, not ended",
                Some(&active),
                slot(10, 5, SlotStatus::Active),
                during,
                "yes",
            ),
            (
                "ended",
                Some(&active),
                slot(10, 5, SlotStatus::Active),
                ended,
                "SLOT_IN_PAST",
            ),
            (
                "ended, anyone",
                None,
                slot(10, 5, SlotStatus::Active),
                ended,
                "SLOT_IN_PAST",
            ),
            (
                "full",
                Some(&active),
                slot(10, 10, SlotStatus::Full),
                before,
                "SLOT_FULL",
            ),
            (
                "full, anyone",
                None,
                slot(10, 10, SlotStatus::Full),
                before,
                "SLOT_FULL",
            ),
            (
                "closed",
                Some(&active),
                slot(10, 1, SlotStatus::Closed),
                before,
                "SLOT_CLOSED",
            ),
            (
                "after the ticket expires",
                Some(&expiring),
                slot(10, 1, SlotStatus::Active),
                before,
                "OUTSIDE_VALIDITY",
            ),
        ] {
            let o = slot_offer(t, s, &v, now);
            assert_eq!(o.reason.as_deref().unwrap_or("yes"), expected, "{name}");
            assert_eq!(o.bookable, o.reason.is_none(), "{name}");
        }
    }
}
