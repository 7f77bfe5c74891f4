//! The conformance suite: one set of store tests, written against the
//! service traits (`crate::engine`), run against every engine. A test here
//! takes a fresh, migrated, empty store; each group has a macro that expands
//! to one `#[test]` per test of the group, given an expression that makes a
//! fresh store (`Option<impl Deref<Target = impl Traits>>`; `None` skips, for
//! an engine the environment does not provide):
//!
//! ```ignore
//! entrada_store::venue_conformance!(fresh_store());
//! entrada_store::slot_conformance!(fresh_store());
//! ```
//!
//! SQLite runs it in this crate's unit tests (`conformance::sqlite`),
//! PostgreSQL in `entrada-store-pg`'s. Enabled by the `conformance` feature
//! (tests only; nothing of it is in a binary).

use chrono::{DateTime, TimeZone, Utc};

use crate::domain::{NewSlot, Orq, Slot, Venue};
use crate::StoreError;

pub const ORQ: Orq = Orq(1);

/// 2025-11-25 10:00 UTC: before the December slots used in the tests.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 11, 25, 10, 0, 0).unwrap()
}

fn code_of<T: std::fmt::Debug>(r: Result<T, StoreError>) -> &'static str {
    r.expect_err("expected an error").code()
}

fn date(s: &str) -> chrono::NaiveDate {
    crate::domain::slot::parse_date("date", s).unwrap()
}

fn slot_at(
    s: &(impl crate::SlotStore + ?Sized),
    venue: &Venue,
    day: &str,
    start: &str,
    end: &str,
    capacity: i64,
) -> Slot {
    let new = NewSlot::validate(venue.id.0, day, start, end, Some(capacity)).unwrap();
    s.create_slot(ORQ, &new, now()).unwrap()
}

/// Venues and their gate settings.
pub mod venues {
    use super::*;
    use crate::domain::venue::VenuePatch;
    use crate::domain::VenueId;
    use crate::VenueStore;

    pub fn venues_are_created_read_and_listed_per_org(s: &(impl VenueStore + ?Sized)) {
        let a = s.add_venue(ORQ, " Prado ", "Europe/Madrid", now()).unwrap();
        assert_eq!(a.name, "Prado", "the name is trimmed");
        assert_eq!(a.timezone.name(), "Europe/Madrid");
        assert_eq!(a.orq, ORQ);
        assert_eq!((a.created_at, a.updated_at), (now(), now()));
        assert_eq!(
            (a.gate.early_grace_minutes(), a.gate.late_grace_minutes()),
            (30, 30),
            "the default grace"
        );
        let b = s.add_venue(ORQ, "Garden", "UTC", now()).unwrap();
        s.add_venue(Orq(2), "Elsewhere", "UTC", now()).unwrap();
        assert_eq!(s.get_venue(ORQ, a.id).unwrap(), a);
        assert_eq!(s.list_venues(ORQ).unwrap(), vec![a.clone(), b]);
        // Another org's venue, or none at all, is not found.
        assert_eq!(code_of(s.get_venue(Orq(2), a.id)), "NOT_FOUND");
        assert_eq!(code_of(s.get_venue(ORQ, VenueId(999_999))), "NOT_FOUND");
    }

    pub fn a_venue_needs_a_name_and_a_known_time_zone(s: &(impl VenueStore + ?Sized)) {
        assert_eq!(
            code_of(s.add_venue(ORQ, "  ", "UTC", now())),
            "INVALID_INPUT"
        );
        assert_eq!(
            code_of(s.add_venue(ORQ, "Prado", "Mars/Olympus", now())),
            "INVALID_INPUT"
        );
        assert!(s.list_venues(ORQ).unwrap().is_empty());
    }

    pub fn gate_settings_change_what_the_patch_names(s: &(impl VenueStore + ?Sized)) {
        let v = s.add_venue(ORQ, "Prado", "UTC", now()).unwrap();
        let later = now() + chrono::Duration::minutes(5);
        let patch = VenuePatch {
            early_grace_minutes: Some(10),
            late_grace_minutes: None,
            ..Default::default()
        };
        let changed = s.update_venue(ORQ, v.id, &patch, later).unwrap();
        assert_eq!(
            (
                changed.gate.early_grace_minutes(),
                changed.gate.late_grace_minutes()
            ),
            (10, 30)
        );
        assert_eq!(changed.updated_at, later);
        assert_eq!(s.get_venue(ORQ, v.id).unwrap(), changed);
        // Out of bounds, or naming nothing: refused, nothing changed.
        let wild = VenuePatch {
            early_grace_minutes: None,
            late_grace_minutes: Some(241),
            ..Default::default()
        };
        assert_eq!(
            code_of(s.update_venue(ORQ, v.id, &wild, later)),
            "INVALID_INPUT"
        );
        assert_eq!(
            code_of(s.update_venue(ORQ, v.id, &VenuePatch::default(), later)),
            "INVALID_INPUT"
        );
        assert_eq!(
            code_of(s.update_venue(Orq(2), v.id, &patch, later)),
            "NOT_FOUND"
        );
        assert_eq!(s.get_venue(ORQ, v.id).unwrap(), changed);
    }
}

/// Time slots (without reservations; those are the reservation group's).
pub mod slots {
    use super::*;
    use crate::domain::{SlotRemoval, SlotStatus};
    use crate::{SlotStore, VenueStore};

    pub fn slot_create_validates_and_refuses_duplicates(
        s: &(impl VenueStore + SlotStore + ?Sized),
    ) {
        let venue = s.add_venue(ORQ, "Prado", "Europe/Madrid", now()).unwrap();
        let slot = slot_at(s, &venue, "2025-12-01", "09:00", "11:00", 200);
        assert_eq!(
            (slot.total_capacity, slot.booked_count, slot.available_count),
            (200, 0, 200)
        );
        assert_eq!(slot.status, SlotStatus::Active);
        assert_eq!((slot.orq, slot.venue_id), (ORQ, venue.id));
        assert_eq!(slot.date, date("2025-12-01"));
        assert_eq!(slot.start_time.to_string(), "09:00:00");
        assert_eq!(slot.end_time.to_string(), "11:00:00");
        assert_eq!(s.get_slot(ORQ, slot.id).unwrap(), slot);

        let dup =
            NewSlot::validate(venue.id.0, "2025-12-01", "09:00:00", "10:00", Some(5)).unwrap();
        assert_eq!(code_of(s.create_slot(ORQ, &dup, now())), "DUPLICATE_SLOT");
        // The same start at another venue is another slot.
        let garden = s.add_venue(ORQ, "Garden", "UTC", now()).unwrap();
        let there = NewSlot::validate(garden.id.0, "2025-12-01", "09:00", "10:00", None).unwrap();
        s.create_slot(ORQ, &there, now()).unwrap();

        // A venue of another org is unknown to this org.
        let other = s.add_venue(Orq(2), "Elsewhere", "UTC", now()).unwrap();
        let foreign = NewSlot::validate(other.id.0, "2025-12-01", "09:00", "10:00", None).unwrap();
        assert_eq!(code_of(s.create_slot(ORQ, &foreign, now())), "NOT_FOUND");
        let missing = NewSlot::validate(999_999, "2025-12-01", "09:00", "10:00", None).unwrap();
        assert_eq!(code_of(s.create_slot(ORQ, &missing, now())), "NOT_FOUND");
        assert_eq!(code_of(s.get_slot(Orq(2), slot.id)), "NOT_FOUND");
    }

    pub fn an_unbooked_slot_is_deleted_for_good(s: &(impl VenueStore + SlotStore + ?Sized)) {
        let venue = s.add_venue(ORQ, "Prado", "UTC", now()).unwrap();
        let empty = slot_at(s, &venue, "2025-12-01", "09:00", "11:00", 10);
        assert_eq!(
            code_of(s.remove_slot(Orq(2), empty.id, now())),
            "NOT_FOUND",
            "another org's slot"
        );
        assert_eq!(
            s.remove_slot(ORQ, empty.id, now()).unwrap(),
            (SlotRemoval::Deleted, None)
        );
        assert_eq!(code_of(s.get_slot(ORQ, empty.id)), "NOT_FOUND");
        assert_eq!(code_of(s.remove_slot(ORQ, empty.id, now())), "NOT_FOUND");
        // Its start is free again.
        slot_at(s, &venue, "2025-12-01", "09:00", "11:00", 10);
    }

    pub fn capacity_and_status_change_as_the_domain_plans(
        s: &(impl VenueStore + SlotStore + ?Sized),
    ) {
        use crate::domain::SlotChange;
        let venue = s.add_venue(ORQ, "Prado", "UTC", now()).unwrap();
        let slot = slot_at(s, &venue, "2025-12-01", "09:00", "11:00", 10);
        let later = now() + chrono::Duration::minutes(1);
        let change = |total_capacity, status| SlotChange {
            total_capacity,
            status,
        };
        let smaller = s
            .update_slot(ORQ, slot.id, change(Some(4), None), later)
            .unwrap();
        assert_eq!(
            (
                smaller.total_capacity,
                smaller.available_count,
                smaller.status
            ),
            (4, 4, SlotStatus::Active)
        );
        assert_eq!(smaller.updated_at, later);
        let closed = s
            .update_slot(ORQ, slot.id, change(None, Some(SlotStatus::Closed)), later)
            .unwrap();
        assert_eq!(
            (closed.status, closed.total_capacity),
            (SlotStatus::Closed, 4)
        );
        let reopened = s
            .update_slot(
                ORQ,
                slot.id,
                change(Some(6), Some(SlotStatus::Active)),
                later,
            )
            .unwrap();
        assert_eq!(
            (reopened.status, reopened.total_capacity),
            (SlotStatus::Active, 6)
        );
        // Refused: FULL is not set by hand, capacity must be positive.
        assert_eq!(
            code_of(s.update_slot(ORQ, slot.id, change(None, Some(SlotStatus::Full)), later)),
            "INVALID_STATUS_CHANGE"
        );
        assert_eq!(
            code_of(s.update_slot(ORQ, slot.id, change(Some(0), None), later)),
            "INVALID_INPUT"
        );
        assert_eq!(
            code_of(s.update_slot(Orq(2), slot.id, change(Some(5), None), later)),
            "NOT_FOUND"
        );
        assert_eq!(s.get_slot(ORQ, slot.id).unwrap(), reopened);
    }

    pub fn list_by_venue_and_date_range(s: &(impl VenueStore + SlotStore + ?Sized)) {
        let venue = s.add_venue(ORQ, "Prado", "UTC", now()).unwrap();
        let second = s.add_venue(ORQ, "Garden", "Europe/Madrid", now()).unwrap();
        let nov = slot_at(s, &venue, "2025-11-30", "09:00", "11:00", 1);
        let a = slot_at(s, &venue, "2025-12-01", "09:00", "11:00", 1);
        let a2 = slot_at(s, &venue, "2025-12-01", "08:00", "09:00", 1);
        let b = slot_at(s, &venue, "2025-12-31", "09:00", "11:00", 1);
        let c = slot_at(s, &second, "2025-12-15", "09:00", "10:00", 1);
        let other = s.add_venue(Orq(2), "Other org", "UTC", now()).unwrap();
        let new = NewSlot::validate(other.id.0, "2025-12-01", "09:00", "10:00", None).unwrap();
        s.create_slot(Orq(2), &new, now()).unwrap();

        let ids = |v: Vec<Slot>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(
            ids(s
                .list_slots(
                    ORQ,
                    Some(venue.id),
                    Some(date("2025-12-01")),
                    Some(date("2025-12-31"))
                )
                .unwrap()),
            vec![a2.id, a.id, b.id],
            "by date, then start"
        );
        assert_eq!(
            ids(s.list_slots(ORQ, None, None, None).unwrap()),
            vec![nov.id, a2.id, a.id, c.id, b.id]
        );
        assert_eq!(
            ids(s
                .list_slots(ORQ, None, Some(date("2025-12-02")), None)
                .unwrap()),
            vec![c.id, b.id]
        );
        assert_eq!(
            ids(s
                .list_slots(ORQ, None, None, Some(date("2025-11-30")))
                .unwrap()),
            vec![nov.id]
        );
        assert_eq!(
            code_of(s.list_slots(
                ORQ,
                None,
                Some(date("2025-12-31")),
                Some(date("2025-12-01"))
            )),
            "INVALID_INPUT"
        );
    }
}

/// Venue operations (issue 15): settings and occupancy.
pub mod venue_ops;

/// Fleet updates (issue 20): gates' reported versions.
pub mod updates;

/// The console's tickets (issue 16): search and cancel.
pub mod console_tickets;

/// The console's Slots page (issue 16).
pub mod slot_board;

/// The console's Staff page (issue 16): role change and deactivation.
pub mod staff;

/// Tickets: issue, read, activate (what reservations need of them).
pub mod tickets {
    use super::*;
    use crate::domain::{ActivationMode, ActivationStatus, NewTicket, TicketCode, TicketStatus};
    use crate::{CustomerScope, TicketFilter, TicketStore};

    pub(super) fn ticket(
        s: &(impl TicketStore + ?Sized),
        code: &str,
        mode: ActivationMode,
    ) -> TicketCode {
        let t = NewTicket::plain(code, mode).unwrap();
        s.insert_tickets(ORQ, &[t], now()).unwrap();
        TicketCode::parse(code).unwrap()
    }

    pub fn activation_is_one_way_and_kept(s: &(impl TicketStore + ?Sized)) {
        let deferred = ticket(s, "T-DEF", ActivationMode::Deferred);
        let t = s.get_ticket(ORQ, &deferred).unwrap();
        assert_eq!(
            (t.activation_status, t.activated_at, t.status),
            (ActivationStatus::Inactive, None, TicketStatus::Minted)
        );
        let later = now() + chrono::Duration::minutes(5);
        let t = s.activate_ticket(ORQ, &deferred, None, later).unwrap();
        assert_eq!(
            (t.activation_status, t.activated_at, t.status),
            (
                ActivationStatus::Active,
                Some(later),
                TicketStatus::Activated
            )
        );
        // Twice: unchanged, activated_at kept.
        let again = s
            .activate_ticket(ORQ, &deferred, None, later + chrono::Duration::hours(1))
            .unwrap();
        assert_eq!(again, t);
        let immediate = ticket(s, "T-IMM", ActivationMode::Immediate);
        let t = s.get_ticket(ORQ, &immediate).unwrap();
        assert_eq!(
            (t.activation_status, t.activated_at),
            (ActivationStatus::Active, Some(now()))
        );
        assert_eq!(
            code_of(s.activate_ticket(ORQ, &TicketCode::parse("NOPE").unwrap(), None, now())),
            "NOT_FOUND"
        );
        assert_eq!(
            code_of(s.activate_ticket(Orq(2), &immediate, None, now())),
            "NOT_FOUND"
        );
    }

    pub fn ticket_batches_are_all_or_nothing(s: &(impl TicketStore + ?Sized)) {
        ticket(s, "T-1", ActivationMode::Deferred);
        let batch: Vec<_> = ["T-2", "T-3", "T-1"]
            .iter()
            .map(|c| NewTicket::plain(c, ActivationMode::Deferred).unwrap())
            .collect();
        assert_eq!(
            code_of(s.insert_tickets(ORQ, &batch, now())),
            "DUPLICATE_TICKET"
        );
        assert_eq!(
            code_of(s.get_ticket(ORQ, &TicketCode::parse("T-2").unwrap())),
            "NOT_FOUND"
        );
        // A code is global: another org cannot take it either.
        assert_eq!(
            code_of(s.insert_tickets(Orq(2), &batch[2..], now())),
            "DUPLICATE_TICKET"
        );
        let made = s.insert_tickets(ORQ, &batch[..2], now()).unwrap();
        assert_eq!(made.len(), 2);
        assert_eq!(s.get_ticket(ORQ, &made[1].ticket_code).unwrap(), made[1]);
    }

    /// The CSV import's check: the org's own codes are named, in the order
    /// asked; another org's code and an unknown one are not.
    pub fn existing_codes_are_the_orgs_own_in_the_order_asked(s: &(impl TicketStore + ?Sized)) {
        ticket(s, "E-2", ActivationMode::Deferred);
        ticket(s, "E-1", ActivationMode::Immediate);
        s.insert_tickets(
            Orq(2),
            &[NewTicket::plain("OTHER-ORG", ActivationMode::Deferred).unwrap()],
            now(),
        )
        .unwrap();
        let ask: Vec<_> = ["E-1", "NEW", "OTHER-ORG", "E-2"]
            .iter()
            .map(|c| TicketCode::parse(c).unwrap())
            .collect();
        let found = s.existing_ticket_codes(ORQ, &ask).unwrap();
        assert_eq!(found, vec![ask[0].clone(), ask[3].clone()]);
        assert_eq!(
            s.existing_ticket_codes(Orq(2), &ask).unwrap(),
            vec![ask[2].clone()]
        );
        assert!(s.existing_ticket_codes(ORQ, &[]).unwrap().is_empty());
    }

    pub fn tickets_list_in_code_order_by_pages_and_filters(s: &(impl TicketStore + ?Sized)) {
        let mut batch: Vec<_> = ["b", "A-2", "A-10", "a"]
            .iter()
            .map(|c| NewTicket::plain(c, ActivationMode::Deferred).unwrap())
            .collect();
        batch[0].user_id = Some(7);
        batch[0].activation_mode = ActivationMode::Immediate;
        batch[3].user_id = Some(7);
        batch[3].entitlements = Some(serde_json::json!({"adults": 2}));
        s.insert_tickets(ORQ, &batch, now()).unwrap();
        let mut other = NewTicket::plain("Z", ActivationMode::Deferred).unwrap();
        other.user_id = Some(7);
        s.insert_tickets(Orq(2), &[other], now()).unwrap();

        let codes = |v: Vec<crate::domain::Ticket>| {
            v.into_iter()
                .map(|t| t.ticket_code.to_string())
                .collect::<Vec<_>>()
        };
        let all = TicketFilter::default();
        // Byte order, as SQLite compares text.
        assert_eq!(
            codes(s.list_tickets(ORQ, &all, None, 10).unwrap()),
            ["A-10", "A-2", "a", "b"]
        );
        let first = s.list_tickets(ORQ, &all, None, 2).unwrap();
        let after = first.last().map(|t| t.ticket_code.clone());
        assert_eq!(
            codes(s.list_tickets(ORQ, &all, after.as_ref(), 2).unwrap()),
            ["a", "b"]
        );
        let active = TicketFilter {
            activation_status: Some(ActivationStatus::Active),
            ..TicketFilter::default()
        };
        assert_eq!(
            codes(s.list_tickets(ORQ, &active, None, 10).unwrap()),
            ["b"]
        );
        let minted = TicketFilter {
            status: Some(TicketStatus::Minted),
            user_id: Some(7),
            ..TicketFilter::default()
        };
        assert_eq!(
            codes(s.list_tickets(ORQ, &minted, None, 10).unwrap()),
            ["a"]
        );
        let a = s.get_ticket(ORQ, &TicketCode::parse("a").unwrap()).unwrap();
        assert_eq!(a.entitlements, serde_json::json!({"adults": 2}));

        assert_eq!(
            codes(
                s.customer_tickets(ORQ, &CustomerScope::User(7), 10)
                    .unwrap()
            ),
            ["a", "b"]
        );
        assert_eq!(
            codes(s.customer_tickets(ORQ, &CustomerScope::User(7), 1).unwrap()),
            ["a"]
        );
        let one = CustomerScope::Ticket(TicketCode::parse("A-2").unwrap());
        assert_eq!(codes(s.customer_tickets(ORQ, &one, 10).unwrap()), ["A-2"]);
        assert!(s.customer_tickets(Orq(2), &one, 10).unwrap().is_empty());
    }
}

/// Reservations: the last place, one per ticket, moves, the month's offer,
/// and the race for the last places.
pub mod reservations {
    use super::tickets::ticket;
    use super::*;
    use crate::domain::{
        ActivationMode, ChangedBy, Contact, Reservation, ReservationStatus, SlotChange, SlotStatus,
        TicketCode, TicketStatus,
    };
    use crate::{ReservationStore, ReserveRequest, SlotStore, TicketStore, VenueStore};

    fn request(code: &TicketCode, slot: &Slot) -> ReserveRequest {
        ReserveRequest {
            ticket: code.clone(),
            slot_id: slot.id,
            contact: Contact::validate("john@example.com", "+12025551234").unwrap(),
        }
    }

    fn venue(s: &(impl VenueStore + ?Sized)) -> Venue {
        s.add_venue(ORQ, "Prado", "Europe/Madrid", now()).unwrap()
    }

    /// Staff bound to a venue book tickets of no venue yet, or of their own,
    /// into their venue's slots; a ticket whose reservation (live, cancelled
    /// or used) is at another venue is NOT_FOUND `ticket` to them, whatever
    /// its state, and nothing changes. Org-wide staff book it as before.
    pub fn a_venue_bound_caller_books_no_other_venues_ticket(
        s: &(impl VenueStore + SlotStore + TicketStore + ReservationStore + ?Sized),
    ) {
        let here = venue(s);
        let there = s.add_venue(ORQ, "Thyssen", "Europe/Madrid", now()).unwrap();
        let h1 = slot_at(s, &here, "2025-12-01", "09:00", "11:00", 5);
        let t1 = slot_at(s, &there, "2025-12-01", "09:00", "11:00", 5);
        let bound = ChangedBy::StaffOf(here.id);
        let refused = |r: Result<Reservation, StoreError>| match r {
            Err(StoreError::Domain(e)) => e.code(),
            other => panic!("{other:?}"),
        };
        let live = ticket(s, "V-LIVE", ActivationMode::Immediate);
        let live_r = s.reserve_slot(ORQ, &request(&live, &t1), now()).unwrap();
        let moved = ticket(s, "V-MOVED", ActivationMode::Immediate);
        let moved_r = s.reserve_slot(ORQ, &request(&moved, &t1), now()).unwrap();
        s.cancel_reservation(ORQ, moved_r.id, ChangedBy::Staff, now())
            .unwrap();
        let dead = ticket(s, "V-DEAD", ActivationMode::Immediate);
        s.reserve_slot(ORQ, &request(&dead, &t1), now()).unwrap();
        s.cancel_ticket(ORQ, &dead, None, now()).unwrap();
        // Org-wide staff would hear ALREADY_RESERVED, a free booking and
        // TICKET_CANCELLED; the bound caller hears "no such ticket" for each.
        for code in [&live, &moved, &dead] {
            assert_eq!(
                refused(s.reserve_slot_as(ORQ, &request(code, &h1), bound, now())),
                "NOT_FOUND",
                "{code}"
            );
        }
        let unknown = TicketCode::parse("V-NONE").unwrap();
        assert_eq!(
            refused(s.reserve_slot_as(ORQ, &request(&unknown, &h1), bound, now())),
            "NOT_FOUND"
        );
        assert_eq!(
            s.get_slot(ORQ, h1.id).unwrap().booked_count,
            0,
            "nothing booked here"
        );
        assert_eq!(s.get_reservation(ORQ, live_r.id).unwrap().slot_id, t1.id);
        assert_eq!(
            s.get_reservation(ORQ, moved_r.id).unwrap().status,
            ReservationStatus::Cancelled
        );
        // A ticket never reserved: the box office books it into its venue.
        let walk_in = ticket(s, "V-NEW", ActivationMode::Immediate);
        let booked = s
            .reserve_slot_as(ORQ, &request(&walk_in, &h1), bound, now())
            .unwrap();
        assert_eq!(booked.slot_id, h1.id);
        // Its own venue's cancelled reservation is rebooked by it.
        s.cancel_reservation(ORQ, booked.id, bound, now()).unwrap();
        s.reserve_slot_as(ORQ, &request(&walk_in, &h1), bound, now())
            .unwrap();
        // Org-wide staff are not bound: the cancelled one elsewhere is rebooked.
        let rebooked = s
            .reserve_slot_as(ORQ, &request(&moved, &h1), ChangedBy::Staff, now())
            .unwrap();
        assert_eq!(rebooked.slot_id, h1.id);
        assert_eq!(
            refused(s.reserve_slot_as(ORQ, &request(&live, &h1), ChangedBy::Staff, now())),
            "ALREADY_RESERVED"
        );
    }

    /// Staff bound to a venue (`ChangedBy::StaffOf`) cancel and move that
    /// venue's reservations only, and into that venue's slots only, decided
    /// inside the change's transaction: another venue's reservation or slot
    /// is not found, and nothing changes.
    pub fn a_venue_bound_caller_changes_its_venues_reservations_only(
        s: &(impl VenueStore + SlotStore + TicketStore + ReservationStore + ?Sized),
    ) {
        let here = venue(s);
        let there = s.add_venue(ORQ, "Thyssen", "Europe/Madrid", now()).unwrap();
        let h1 = slot_at(s, &here, "2025-12-01", "09:00", "11:00", 5);
        let h2 = slot_at(s, &here, "2025-12-02", "09:00", "11:00", 5);
        let t1 = slot_at(s, &there, "2025-12-01", "09:00", "11:00", 5);
        let mine = ticket(s, "B-1", ActivationMode::Immediate);
        let theirs = ticket(s, "B-2", ActivationMode::Immediate);
        let mine_r = s.reserve_slot(ORQ, &request(&mine, &h1), now()).unwrap();
        let theirs_r = s.reserve_slot(ORQ, &request(&theirs, &t1), now()).unwrap();
        let bound = ChangedBy::StaffOf(here.id);
        let not_found = |r: Result<Reservation, StoreError>| match r {
            Err(StoreError::Domain(crate::domain::DomainError::NotFound { entity })) => entity,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            not_found(s.cancel_reservation(ORQ, theirs_r.id, bound, now())),
            "reservation"
        );
        assert_eq!(
            not_found(s.reschedule_reservation(ORQ, theirs_r.id, h2.id, bound, now())),
            "reservation"
        );
        assert_eq!(
            not_found(s.reschedule_reservation(ORQ, mine_r.id, t1.id, bound, now())),
            "slot",
            "not into another venue's slot"
        );
        assert_eq!(s.get_reservation(ORQ, theirs_r.id).unwrap(), theirs_r);
        assert_eq!(s.get_reservation(ORQ, mine_r.id).unwrap(), mine_r);
        assert_eq!(s.get_slot(ORQ, t1.id).unwrap().booked_count, 1);
        // Its own venue's: as any staff.
        let moved = s
            .reschedule_reservation(ORQ, mine_r.id, h2.id, bound, now())
            .unwrap();
        assert_eq!(moved.slot_id, h2.id);
        let cancelled = s.cancel_reservation(ORQ, mine_r.id, bound, now()).unwrap();
        assert_eq!(cancelled.status, ReservationStatus::Cancelled);
    }

    /// A venue is renamed at any time; its time zone moves only while no
    /// slot from today on has a booking, and its gates learn both by sync.
    pub fn a_venue_moves_time_zone_only_without_bookings_ahead(
        s: &(impl VenueStore + SlotStore + TicketStore + ReservationStore + ?Sized),
    ) {
        use crate::domain::venue::VenuePatch;
        let v = venue(s);
        let patch = |json: &str| serde_json::from_str::<VenuePatch>(json).unwrap();
        let later = now() + chrono::Duration::minutes(1);
        // A past slot with a booking does not hold the zone back; an empty
        // slot ahead does not either.
        let past = slot_at(s, &v, "2025-12-01", "09:00", "11:00", 5);
        let t1 = ticket(s, "T-1", ActivationMode::Immediate);
        s.reserve_slot(ORQ, &request(&t1, &past), now()).unwrap();
        let after_it = past_date_now();
        let _empty_ahead = slot_at(s, &v, "2025-12-20", "09:00", "11:00", 5);
        let moved = s
            .update_venue(
                ORQ,
                v.id,
                &patch(r#"{"name": "Museo", "timezone": "Europe/Lisbon"}"#),
                after_it,
            )
            .unwrap();
        assert_eq!(
            (moved.name.as_str(), moved.timezone.name()),
            ("Museo", "Europe/Lisbon")
        );
        assert_eq!(moved.updated_at, after_it);
        assert_eq!(s.get_venue(ORQ, v.id).unwrap(), moved);
        // A booking of yesterday holds it back too (its window may stay open
        // past midnight), reported from that date; cancelled, it does not.
        let yesterday = slot_at(s, &v, "2025-12-09", "20:00", "23:00", 5);
        let t0 = ticket(s, "T-0", ActivationMode::Immediate);
        let late = s
            .reserve_slot(ORQ, &request(&t0, &yesterday), now())
            .unwrap();
        match s.update_venue(ORQ, v.id, &patch(r#"{"timezone": "UTC"}"#), after_it) {
            Err(StoreError::Domain(crate::domain::DomainError::VenueHasBookingsAhead {
                slots: 1,
                from,
            })) => assert_eq!(from, date("2025-12-09")),
            other => panic!("{other:?}"),
        }
        s.cancel_reservation(ORQ, late.id, ChangedBy::Staff, now())
            .unwrap();
        // A booking ahead: the zone stays, the whole patch is refused, a
        // rename alone still goes through.
        let ahead = slot_at(s, &v, "2025-12-21", "09:00", "11:00", 5);
        let t2 = ticket(s, "T-2", ActivationMode::Immediate);
        let booked = s.reserve_slot(ORQ, &request(&t2, &ahead), now()).unwrap();
        assert_eq!(
            code_of(s.update_venue(
                ORQ,
                v.id,
                &patch(r#"{"name": "X", "timezone": "UTC"}"#),
                after_it
            )),
            "VENUE_HAS_BOOKINGS_AHEAD"
        );
        assert_eq!(s.get_venue(ORQ, v.id).unwrap(), moved, "nothing changed");
        let renamed = s
            .update_venue(ORQ, v.id, &patch(r#"{"name": "Prado"}"#), later)
            .unwrap();
        assert_eq!(
            (renamed.name.as_str(), renamed.timezone.name()),
            ("Prado", "Europe/Lisbon")
        );
        // Naming the zone it has is no move.
        s.update_venue(ORQ, v.id, &patch(r#"{"timezone": "Europe/Lisbon"}"#), later)
            .unwrap();
        // Once the booking is cancelled the zone moves again.
        s.cancel_reservation(ORQ, booked.id, ChangedBy::Staff, now())
            .unwrap();
        let back = s
            .update_venue(
                ORQ,
                v.id,
                &patch(r#"{"timezone": "Europe/Madrid"}"#),
                after_it,
            )
            .unwrap();
        assert_eq!(back.timezone.name(), "Europe/Madrid");
    }

    /// 2025-12-10 12:00 UTC: after the 1 December slot, before the 20th.
    fn past_date_now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 12, 10, 12, 0, 0).unwrap()
    }

    pub fn reservation_at_the_last_place_fills_the_slot_and_cancel_frees_it(
        s: &(impl VenueStore + SlotStore + TicketStore + ReservationStore + ?Sized),
    ) {
        let v = venue(s);
        let slot = slot_at(s, &v, "2025-12-01", "09:00", "11:00", 2);
        let t1 = ticket(s, "T-1", ActivationMode::Immediate);
        let t2 = ticket(s, "T-2", ActivationMode::Immediate);
        let t3 = ticket(s, "T-3", ActivationMode::Immediate);
        s.reserve_slot(ORQ, &request(&t1, &slot), now()).unwrap();
        let last = s.reserve_slot(ORQ, &request(&t2, &slot), now()).unwrap();
        assert_eq!(s.get_reservation(ORQ, last.id).unwrap(), last);
        assert_eq!(
            (
                last.ticket_id.clone(),
                last.slot_id,
                last.status,
                last.reserved_at
            ),
            (t2.clone(), slot.id, ReservationStatus::Reserved, now())
        );
        let got = s.get_slot(ORQ, slot.id).unwrap();
        assert_eq!(
            (got.booked_count, got.available_count, got.status),
            (2, 0, SlotStatus::Full)
        );
        assert_eq!(
            code_of(s.reserve_slot(ORQ, &request(&t3, &slot), now())),
            "SLOT_FULL"
        );

        // The ticket carries the reservation's facts.
        let t = s.get_ticket(ORQ, &t2).unwrap();
        assert_eq!(t.status, TicketStatus::Reserved);
        assert_eq!(t.customer_email.as_deref(), Some("john@example.com"));
        assert_eq!(t.customer_phone.as_deref(), Some("+12025551234"));
        assert_eq!(t.reserved_at, Some(now()));

        // Cancel on a FULL slot: ACTIVE with one place.
        let cancelled = s
            .cancel_reservation(ORQ, last.id, ChangedBy::Staff, now())
            .unwrap();
        assert_eq!(cancelled.status, ReservationStatus::Cancelled);
        let got = s.get_slot(ORQ, slot.id).unwrap();
        assert_eq!((got.booked_count, got.status), (1, SlotStatus::Active));
        assert_eq!(
            s.get_ticket(ORQ, &t2).unwrap().status,
            TicketStatus::Activated
        );
        assert_eq!(
            code_of(s.cancel_reservation(ORQ, last.id, ChangedBy::Staff, now())),
            "RESERVATION_CANCELLED"
        );

        // The freed place is taken, and a cancelled ticket can reserve again
        // (its one reservation row is reused).
        s.reserve_slot(ORQ, &request(&t3, &slot), now()).unwrap();
        assert_eq!(
            code_of(s.reserve_slot(ORQ, &request(&t2, &slot), now())),
            "SLOT_FULL"
        );
        let other = slot_at(s, &v, "2025-12-02", "09:00", "11:00", 2);
        let again = s.reserve_slot(ORQ, &request(&t2, &other), now()).unwrap();
        assert_eq!(
            (again.id, again.status),
            (last.id, ReservationStatus::Reserved)
        );
    }

    pub fn one_reservation_per_ticket(
        s: &(impl VenueStore + SlotStore + TicketStore + ReservationStore + ?Sized),
    ) {
        let v = venue(s);
        let a = slot_at(s, &v, "2025-12-01", "09:00", "11:00", 10);
        let b = slot_at(s, &v, "2025-12-02", "09:00", "11:00", 10);
        let t = ticket(s, "T-1", ActivationMode::Immediate);
        s.reserve_slot(ORQ, &request(&t, &a), now()).unwrap();
        assert_eq!(
            code_of(s.reserve_slot(ORQ, &request(&t, &b), now())),
            "ALREADY_RESERVED"
        );
        assert_eq!(
            code_of(s.reserve_slot(ORQ, &request(&t, &a), now())),
            "ALREADY_RESERVED"
        );
        assert_eq!(s.get_slot(ORQ, a.id).unwrap().booked_count, 1);
        assert_eq!(s.get_slot(ORQ, b.id).unwrap().booked_count, 0);
    }

    pub fn only_active_tickets_reserve_and_only_future_slots(
        s: &(impl VenueStore + SlotStore + TicketStore + ReservationStore + ?Sized),
    ) {
        let v = venue(s);
        let slot = slot_at(s, &v, "2025-12-01", "09:00", "11:00", 10);
        let past = slot_at(s, &v, "2025-11-20", "09:00", "11:00", 10);
        let deferred = ticket(s, "T-DEF", ActivationMode::Deferred);
        assert_eq!(
            code_of(s.reserve_slot(ORQ, &request(&deferred, &slot), now())),
            "TICKET_NOT_ACTIVE"
        );
        s.activate_ticket(ORQ, &deferred, None, now()).unwrap();
        assert_eq!(
            code_of(s.reserve_slot(ORQ, &request(&deferred, &past), now())),
            "SLOT_IN_PAST"
        );
        s.reserve_slot(ORQ, &request(&deferred, &slot), now())
            .unwrap();
        let mut expiring =
            crate::domain::NewTicket::plain("T-EXP", ActivationMode::Immediate).unwrap();
        expiring.expires_at = Some(now() - chrono::Duration::seconds(1));
        s.insert_tickets(ORQ, &[expiring.clone()], now()).unwrap();
        assert_eq!(
            code_of(s.reserve_slot(ORQ, &request(&expiring.ticket_code, &slot), now())),
            "TICKET_EXPIRED"
        );
        assert_eq!(s.get_slot(ORQ, slot.id).unwrap().booked_count, 1);
    }

    pub fn reschedule_moves_the_place_atomically(
        s: &(impl VenueStore + SlotStore + TicketStore + ReservationStore + ?Sized),
    ) {
        let v = venue(s);
        let a = slot_at(s, &v, "2025-12-01", "09:00", "11:00", 1);
        let b = slot_at(s, &v, "2025-12-02", "09:00", "11:00", 1);
        let c = slot_at(s, &v, "2025-12-03", "09:00", "11:00", 1);
        let t1 = ticket(s, "T-1", ActivationMode::Immediate);
        let t2 = ticket(s, "T-2", ActivationMode::Immediate);
        let r = s.reserve_slot(ORQ, &request(&t1, &a), now()).unwrap();
        s.reserve_slot(ORQ, &request(&t2, &c), now()).unwrap();

        let moved = s
            .reschedule_reservation(ORQ, r.id, b.id, ChangedBy::Staff, now())
            .unwrap();
        assert_eq!(moved.slot_id, b.id);
        let (sa, sb) = (
            s.get_slot(ORQ, a.id).unwrap(),
            s.get_slot(ORQ, b.id).unwrap(),
        );
        assert_eq!((sa.booked_count, sa.status), (0, SlotStatus::Active));
        assert_eq!((sb.booked_count, sb.status), (1, SlotStatus::Full));

        // Into a full slot: refused, nothing moves.
        assert_eq!(
            code_of(s.reschedule_reservation(ORQ, r.id, c.id, ChangedBy::Staff, now())),
            "SLOT_FULL"
        );
        assert_eq!(s.get_reservation(ORQ, r.id).unwrap().slot_id, b.id);
        assert_eq!(s.get_slot(ORQ, b.id).unwrap().booked_count, 1);
        // Same slot: nothing to do.
        assert_eq!(
            s.reschedule_reservation(ORQ, r.id, b.id, ChangedBy::Staff, now())
                .unwrap()
                .slot_id,
            b.id
        );
    }

    pub fn capacity_can_go_down_to_exactly_booked_and_not_below(
        s: &(impl VenueStore + SlotStore + TicketStore + ReservationStore + ?Sized),
    ) {
        let v = venue(s);
        let slot = slot_at(s, &v, "2025-12-01", "09:00", "11:00", 5);
        for i in 0..3 {
            let t = ticket(s, &format!("T-{i}"), ActivationMode::Immediate);
            s.reserve_slot(ORQ, &request(&t, &slot), now()).unwrap();
        }
        let change = |total| SlotChange {
            total_capacity: Some(total),
            status: None,
        };
        assert_eq!(
            code_of(s.update_slot(ORQ, slot.id, change(2), now())),
            "CAPACITY_BELOW_BOOKED"
        );
        let full = s.update_slot(ORQ, slot.id, change(3), now()).unwrap();
        assert_eq!(
            (full.total_capacity, full.available_count, full.status),
            (3, 0, SlotStatus::Full)
        );
        let reopened = s.update_slot(ORQ, slot.id, change(4), now()).unwrap();
        assert_eq!(reopened.status, SlotStatus::Active);
        // A booked slot is closed, not deleted.
        let (how, closed) = s.remove_slot(ORQ, slot.id, now()).unwrap();
        assert_eq!(how, crate::domain::SlotRemoval::Closed);
        assert_eq!(closed.unwrap().status, SlotStatus::Closed);
        assert_eq!(s.get_slot(ORQ, slot.id).unwrap().booked_count, 3);
    }

    pub fn the_month_offers_open_and_full_slots_not_closed_ones(
        s: &(impl VenueStore + SlotStore + TicketStore + ReservationStore + ?Sized),
    ) {
        let v = venue(s);
        let garden = s.add_venue(ORQ, "Garden", "UTC", now()).unwrap();
        slot_at(s, &v, "2025-11-30", "09:00", "11:00", 1);
        let a = slot_at(s, &v, "2025-12-01", "09:00", "11:00", 1);
        let b = slot_at(s, &v, "2025-12-31", "09:00", "11:00", 1);
        let c = slot_at(s, &garden, "2025-12-15", "09:00", "10:00", 1);
        let closed = slot_at(s, &v, "2025-12-20", "09:00", "10:00", 1);
        s.update_slot(
            ORQ,
            closed.id,
            SlotChange {
                total_capacity: None,
                status: Some(SlotStatus::Closed),
            },
            now(),
        )
        .unwrap();
        let t = ticket(s, "T-1", ActivationMode::Immediate);
        s.reserve_slot(ORQ, &request(&t, &a), now()).unwrap();

        let offers = s.offered_slots(ORQ, "2025-12", None, None, now()).unwrap();
        let ids: Vec<_> = offers.iter().map(|o| o.slot.id).collect();
        assert_eq!(ids, vec![a.id, c.id, b.id]);
        assert_eq!(offers[0].slot.status, SlotStatus::Full);
        let there = s
            .offered_slots(ORQ, "2025-12", Some(garden.id), Some(&t), now())
            .unwrap();
        assert_eq!(
            there.iter().map(|o| o.slot.id).collect::<Vec<_>>(),
            vec![c.id]
        );
        assert!(s
            .offered_slots(Orq(2), "2025-12", None, None, now())
            .unwrap()
            .is_empty());
        assert_eq!(
            code_of(s.offered_slots(ORQ, "2025-13", None, None, now())),
            "INVALID_INPUT"
        );
        assert_eq!(
            code_of(s.offered_slots(
                ORQ,
                "2025-12",
                None,
                Some(&TicketCode::parse("NOPE").unwrap()),
                now()
            )),
            "NOT_FOUND"
        );
    }

    /// 64 holders race for the last 50 places of one slot: exactly 50 get
    /// one, the others hear SLOT_FULL, and the count says 50.
    pub fn racers_for_the_last_places_book_exactly_the_capacity(
        s: &(impl VenueStore + SlotStore + TicketStore + ReservationStore + ?Sized),
    ) {
        const RACERS: usize = 64;
        const PLACES: i64 = 50;
        let v = venue(s);
        let slot = slot_at(s, &v, "2025-12-01", "09:00", "11:00", PLACES);
        let codes: Vec<_> = (0..RACERS)
            .map(|i| ticket(s, &format!("R-{i:02}"), ActivationMode::Immediate))
            .collect();
        let start = std::sync::Barrier::new(RACERS);
        let outcomes: Vec<Result<(), &'static str>> = std::thread::scope(|scope| {
            let racers: Vec<_> = codes
                .iter()
                .map(|code| {
                    let (start, slot) = (&start, &slot);
                    scope.spawn(move || {
                        start.wait();
                        s.reserve_slot(ORQ, &request(code, slot), now())
                            .map(|_| ())
                            .map_err(|e| e.code())
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let won = outcomes.iter().filter(|o| o.is_ok()).count();
        let full = outcomes.iter().filter(|o| *o == &Err("SLOT_FULL")).count();
        assert_eq!(
            (won, full),
            (PLACES as usize, RACERS - PLACES as usize),
            "{outcomes:?}"
        );
        let got = s.get_slot(ORQ, slot.id).unwrap();
        assert_eq!((got.booked_count, got.status), (PLACES, SlotStatus::Full));
    }
}

/// Operators, their PINs and the lockout.
pub mod operators {
    use super::*;
    use crate::domain::{OperatorId, Role};
    use crate::OperatorStore;

    pub fn operators_are_added_read_and_listed_per_org(s: &(impl OperatorStore + ?Sized)) {
        let ana = s
            .add_operator(ORQ, Role::Operator, " Ana ", None, now())
            .unwrap();
        assert_eq!(
            (ana.display_name.as_str(), ana.role, ana.orq),
            ("Ana", Role::Operator, ORQ)
        );
        assert_eq!(ana.pin_hash, None);
        let sup = s
            .add_operator(ORQ, Role::Supervisor, "Sam", Some("123456"), now())
            .unwrap();
        let hash = sup.pin_hash.clone().unwrap();
        assert!(
            hash.starts_with("$argon2id$") && !hash.contains("123456"),
            "{hash}"
        );
        s.add_operator(Orq(2), Role::Admin, "Elsewhere", None, now())
            .unwrap();
        assert_eq!(s.get_operator(ORQ, sup.id).unwrap(), sup);
        assert_eq!(s.list_operators(ORQ).unwrap(), vec![ana.clone(), sup]);
        assert_eq!(code_of(s.get_operator(Orq(2), ana.id)), "NOT_FOUND");
        assert_eq!(
            code_of(s.get_operator(ORQ, OperatorId(999_999))),
            "NOT_FOUND"
        );
        // Customers are not operators; a supervisor's PIN has 6 digits at least.
        assert_eq!(
            code_of(s.add_operator(ORQ, Role::Customer, "C", None, now())),
            "INVALID_INPUT"
        );
        assert_eq!(
            code_of(s.add_operator(ORQ, Role::Operator, " ", None, now())),
            "INVALID_INPUT"
        );
        assert_eq!(
            code_of(s.add_operator(ORQ, Role::Supervisor, "Short", Some("1234"), now())),
            "INVALID_INPUT"
        );
        assert_eq!(s.list_operators(ORQ).unwrap().len(), 2);
    }

    pub fn pins_are_checked_and_wrong_ones_lock_the_operator(s: &(impl OperatorStore + ?Sized)) {
        let ana = s
            .add_operator(ORQ, Role::Operator, "Ana", Some("1234"), now())
            .unwrap();
        let bo = s
            .add_operator(ORQ, Role::Operator, "Bo", None, now())
            .unwrap();
        assert_eq!(
            s.check_operator_pin(ORQ, ana.id, "1234", now()).unwrap(),
            ana
        );
        // Unknown, PIN-less, another org's: all the same WRONG_PIN.
        assert_eq!(
            code_of(s.check_operator_pin(ORQ, OperatorId(999_999), "1234", now())),
            "WRONG_PIN"
        );
        assert_eq!(
            code_of(s.check_operator_pin(ORQ, bo.id, "1234", now())),
            "WRONG_PIN"
        );
        assert_eq!(
            code_of(s.check_operator_pin(Orq(2), ana.id, "1234", now())),
            "WRONG_PIN"
        );
        // Four wrong PINs are free, the fifth locks for 30 s: then even the
        // right PIN is not looked at.
        for _ in 0..5 {
            assert_eq!(
                code_of(s.check_operator_pin(ORQ, ana.id, "9999", now())),
                "WRONG_PIN"
            );
        }
        assert_eq!(
            code_of(s.check_operator_pin(ORQ, ana.id, "1234", now())),
            "PIN_LOCKED"
        );
        let later = now() + chrono::Duration::seconds(31);
        assert_eq!(
            s.check_operator_pin(ORQ, ana.id, "1234", later).unwrap().id,
            ana.id
        );
        // The right PIN cleared the count: a wrong one is free again.
        assert_eq!(
            code_of(s.check_operator_pin(ORQ, ana.id, "9999", later)),
            "WRONG_PIN"
        );
        assert_eq!(
            s.check_operator_pin(ORQ, ana.id, "1234", later).unwrap().id,
            ana.id
        );
    }
}

/// API tokens and customer sessions.
pub mod tokens {
    use super::*;
    use crate::domain::{ActivationMode, NewTicket, Role, TicketCode};
    use crate::{OperatorStore, TicketStore, TokenStore, VenueStore, TOKEN_PREFIX};

    pub fn tokens_are_random_checked_and_revocable(
        s: &(impl TokenStore + OperatorStore + VenueStore + ?Sized),
    ) {
        // A staff token's user id must be an operator of the org, its venue the org's.
        assert_eq!(
            code_of(s.create_token(ORQ, Role::Operator, Some(999_999), None, now())),
            "NOT_FOUND"
        );
        let op = s
            .add_operator(ORQ, Role::Operator, "Ana", None, now())
            .unwrap()
            .id
            .0;
        let elsewhere = s.add_venue(Orq(2), "Elsewhere", "UTC", now()).unwrap();
        assert_eq!(
            code_of(s.create_token(ORQ, Role::Operator, Some(op), Some(elsewhere.id), now())),
            "NOT_FOUND"
        );
        let venue = s.add_venue(ORQ, "Prado", "UTC", now()).unwrap();
        let (a, pa) = s
            .create_token(ORQ, Role::Operator, Some(op), Some(venue.id), now())
            .unwrap();
        let (b, pb) = s.create_token(ORQ, Role::Admin, None, None, now()).unwrap();
        assert_ne!(a, b);
        assert_ne!(pa.token_id, pb.token_id);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == 68, "{a}");
        assert_eq!(
            (pa.orq, pa.role, pa.user_id, pa.venue_id),
            (ORQ, Role::Operator, Some(op), Some(venue.id))
        );
        assert_eq!(s.principal_for_token(&a, now()).unwrap(), Some(pa.clone()));
        assert_eq!(
            s.principal_for_token(&format!(" {a}\n"), now()).unwrap(),
            Some(pa.clone())
        );
        assert_eq!(s.principal_for_token("ent_nope", now()).unwrap(), None);
        assert!(s.revoke_token_id(pa.token_id, now()).unwrap());
        assert!(!s.revoke_token_id(pa.token_id, now()).unwrap());
        assert_eq!(s.principal_for_token(&a, now()).unwrap(), None);
        assert_eq!(s.principal_for_token(&b, now()).unwrap(), Some(pb));
        assert_eq!(
            code_of(s.create_token(ORQ, Role::Customer, None, None, now())),
            "INVALID_INPUT"
        );
    }

    pub fn a_customer_session_needs_the_code_and_its_email_and_expires(
        s: &(impl TokenStore + TicketStore + ?Sized),
    ) {
        let mut t = NewTicket::plain("T-1", ActivationMode::Immediate).unwrap();
        t.purchase_email = Some("ana@example.com".into());
        t.user_id = Some(7);
        s.insert_tickets(ORQ, &[t], now()).unwrap();
        let code = TicketCode::parse("T-1").unwrap();
        assert_eq!(
            code_of(s.customer_session(&code, "bob@example.com", now())),
            "NOT_FOUND"
        );
        let nope = TicketCode::parse("T-2").unwrap();
        assert_eq!(
            code_of(s.customer_session(&nope, "ana@example.com", now())),
            "NOT_FOUND"
        );
        assert_eq!(
            code_of(s.customer_session(&code, "not an e-mail", now())),
            "INVALID_INPUT"
        );

        let (token, p, expires_at) = s.customer_session(&code, "ANA@example.com", now()).unwrap();
        assert_eq!(expires_at, now() + chrono::Duration::hours(12));
        assert_eq!((p.role, p.orq, p.user_id), (Role::Customer, ORQ, Some(7)));
        assert_eq!(p.ticket_code, Some(code.clone()));
        assert_eq!(
            s.principal_for_token(&token, now()).unwrap(),
            Some(p.clone())
        );
        let just_before = expires_at - chrono::Duration::seconds(1);
        assert_eq!(s.principal_for_token(&token, just_before).unwrap(), Some(p));
        assert_eq!(s.principal_for_token(&token, expires_at).unwrap(), None);
    }

    pub fn a_console_link_opens_one_expiring_session_once(
        s: &(impl TokenStore + OperatorStore + ?Sized),
    ) {
        use crate::domain::OperatorId;
        let (link, link_expires) = s.create_console_link(ORQ, None, now()).unwrap();
        assert_eq!(link_expires, now() + crate::CONSOLE_LINK_TTL);
        assert!(link.starts_with(TOKEN_PREFIX) && link.len() == 68, "{link}");
        // The link is not itself a token.
        assert_eq!(s.principal_for_token(&link, now()).unwrap(), None);
        let (session, p, expires_at) = s.redeem_console_link(&link, now()).unwrap();
        assert_eq!(expires_at, now() + crate::CONSOLE_SESSION_TTL);
        assert_eq!(
            (p.orq, p.role, p.user_id, p.venue_id),
            (ORQ, Role::Admin, None, None)
        );
        assert_eq!(
            s.principal_for_token(&session, now()).unwrap(),
            Some(p.clone())
        );
        // Once only.
        assert_eq!(code_of(s.redeem_console_link(&link, now())), "NOT_FOUND");
        // The session expires, and signing out revokes it.
        let before = expires_at - chrono::Duration::seconds(1);
        assert_eq!(
            s.principal_for_token(&session, before).unwrap(),
            Some(p.clone())
        );
        assert_eq!(s.principal_for_token(&session, expires_at).unwrap(), None);
        assert!(s.revoke_token_id(p.token_id, now()).unwrap());
        assert_eq!(s.principal_for_token(&session, now()).unwrap(), None);

        // A link not opened in time is dead.
        let (late, until) = s.create_console_link(ORQ, None, now()).unwrap();
        assert_eq!(code_of(s.redeem_console_link(&late, until)), "NOT_FOUND");
        assert_eq!(
            code_of(s.redeem_console_link("ent_nope", now())),
            "NOT_FOUND"
        );

        // A supervisor signs in as a supervisor; a gate operator not at all;
        // another org's operator is unknown.
        let sup = s
            .add_operator(ORQ, Role::Supervisor, "Sue", None, now())
            .unwrap();
        let (l, _) = s.create_console_link(ORQ, Some(sup.id), now()).unwrap();
        let (_, ps, _) = s.redeem_console_link(&l, now()).unwrap();
        assert_eq!((ps.role, ps.user_id), (Role::Supervisor, Some(sup.id.0)));
        let op = s
            .add_operator(ORQ, Role::Operator, "Olga", None, now())
            .unwrap();
        assert_eq!(
            code_of(s.create_console_link(ORQ, Some(op.id), now())),
            "INVALID_INPUT"
        );
        assert_eq!(
            code_of(s.create_console_link(Orq(2), Some(sup.id), now())),
            "NOT_FOUND"
        );
        assert_eq!(
            code_of(s.create_console_link(ORQ, Some(OperatorId(999_999)), now())),
            "NOT_FOUND"
        );
    }
}

/// The door: validate, verify exactly once, reservation eligibility.
pub mod gate {
    use super::tickets::ticket;
    use super::*;
    use crate::domain::{
        ActivationMode, ActivationStatus, ChangedBy, Contact, Gate, OperatorId, ReservationStatus,
        TicketCode, TicketStatus, VenueId, VerdictCode,
    };
    use crate::{GateStore, ReservationStore, ReserveRequest, SlotStore, TicketStore, VenueStore};

    fn reserve(
        s: &(impl ReservationStore + ?Sized),
        code: &TicketCode,
        slot: &Slot,
    ) -> crate::domain::Reservation {
        let req = ReserveRequest {
            ticket: code.clone(),
            slot_id: slot.id,
            contact: Contact::validate("john@example.com", "+12025551234").unwrap(),
        };
        s.reserve_slot(ORQ, &req, now()).unwrap()
    }

    pub fn verify_exactly_once_and_then_nothing_changes(
        s: &(impl VenueStore + SlotStore + TicketStore + ReservationStore + GateStore + ?Sized),
    ) {
        let venue = s.add_venue(ORQ, "Prado", "Europe/Madrid", now()).unwrap();
        // 2025-12-01 10:00 UTC = 11:00 in Madrid, inside the slot.
        let at_gate = now() + chrono::Duration::days(6) + chrono::Duration::milliseconds(1);
        let slot = slot_at(s, &venue, "2025-12-01", "09:00", "12:00", 10);
        let t = ticket(s, "T-1", ActivationMode::Immediate);
        let r = reserve(s, &t, &slot);
        let gate = Gate {
            venue_id: Some(venue.id),
            ..Gate::default()
        };
        assert!(s.validate_ticket(ORQ, &t, &gate, at_gate).unwrap().admit);
        let v = s
            .verify_ticket(ORQ, &t, OperatorId(5), &gate, at_gate)
            .unwrap();
        assert_eq!(
            (v.verdict, v.verified_by, v.verified_at),
            (VerdictCode::Admit, Some(OperatorId(5)), Some(at_gate))
        );
        let got = s.get_ticket(ORQ, &t).unwrap();
        assert_eq!(
            (
                got.status,
                got.activation_status,
                got.verified_at,
                got.verified_by
            ),
            (
                TicketStatus::Verified,
                ActivationStatus::Redeemed,
                Some(at_gate),
                Some(OperatorId(5))
            )
        );
        assert_eq!(
            s.get_reservation(ORQ, r.id).unwrap().status,
            ReservationStatus::Verified
        );

        // Second verify: refused with the first one's facts, nothing changes.
        let err = s
            .verify_ticket(
                ORQ,
                &t,
                OperatorId(6),
                &gate,
                at_gate + chrono::Duration::minutes(3),
            )
            .unwrap_err();
        assert_eq!(err.code(), "ALREADY_VERIFIED");
        let details = match err {
            StoreError::Domain(e) => e.details(),
            other => panic!("{other:?}"),
        };
        assert_eq!(details["verified_by"], 5);
        assert_eq!(
            s.get_ticket(ORQ, &t).unwrap().verified_by,
            Some(OperatorId(5))
        );

        // After verification a reservation can neither be cancelled nor moved.
        let other = slot_at(s, &venue, "2025-12-02", "09:00", "12:00", 10);
        assert_eq!(
            code_of(s.cancel_reservation(ORQ, r.id, ChangedBy::Staff, at_gate)),
            "RESERVATION_VERIFIED"
        );
        assert_eq!(
            code_of(s.reschedule_reservation(ORQ, r.id, other.id, ChangedBy::Staff, at_gate)),
            "RESERVATION_VERIFIED"
        );
        assert_eq!(s.get_slot(ORQ, slot.id).unwrap().booked_count, 1);
    }

    pub fn a_refused_verification_writes_nothing(
        s: &(impl VenueStore + SlotStore + TicketStore + ReservationStore + GateStore + ?Sized),
    ) {
        let venue = s.add_venue(ORQ, "Prado", "Europe/Madrid", now()).unwrap();
        let slot = slot_at(s, &venue, "2025-12-02", "09:00", "12:00", 10);
        let t = ticket(s, "T-1", ActivationMode::Immediate);
        reserve(s, &t, &slot);
        let wrong_day = now() + chrono::Duration::days(6);
        let err = s
            .verify_ticket(ORQ, &t, OperatorId(1), &Gate::default(), wrong_day)
            .unwrap_err();
        assert_eq!(err.code(), "WRONG_DATE");
        assert_eq!(s.get_ticket(ORQ, &t).unwrap().verified_at, None);
        let elsewhere = Gate {
            venue_id: Some(VenueId(42)),
            ..Gate::default()
        };
        let v = s.validate_ticket(ORQ, &t, &elsewhere, wrong_day).unwrap();
        assert_eq!(v.verdict, VerdictCode::WrongVenue);
        let unknown = TicketCode::parse("NOPE").unwrap();
        let v = s
            .validate_ticket(ORQ, &unknown, &Gate::default(), wrong_day)
            .unwrap();
        assert!(!v.admit);
        assert_eq!(v.ticket_code.as_deref(), Some("NOPE"));
        assert!(s
            .verify_ticket(ORQ, &unknown, OperatorId(1), &Gate::default(), wrong_day)
            .is_err());
    }

    /// 16 gates verify one ticket at once: exactly one admits.
    pub fn concurrent_verifications_of_one_ticket_admit_once(
        s: &(impl VenueStore + SlotStore + TicketStore + ReservationStore + GateStore + ?Sized),
    ) {
        let venue = s.add_venue(ORQ, "Prado", "Europe/Madrid", now()).unwrap();
        let at_gate = now() + chrono::Duration::days(6);
        let slot = slot_at(s, &venue, "2025-12-01", "09:00", "12:00", 10);
        let t = ticket(s, "T-1", ActivationMode::Immediate);
        reserve(s, &t, &slot);
        // Warm up: every connection a pool will hand out is open, so the
        // racers below meet in the database, not in connection set-up.
        std::thread::scope(|scope| {
            for _ in 0..16 {
                scope.spawn(|| {
                    s.validate_ticket(ORQ, &t, &Gate::default(), at_gate)
                        .unwrap()
                });
            }
        });
        let start = std::sync::Barrier::new(16);
        let outcomes: Vec<Result<(), &'static str>> = std::thread::scope(|scope| {
            let gates: Vec<_> = (0..16)
                .map(|i| {
                    let (start, t) = (&start, &t);
                    scope.spawn(move || {
                        start.wait();
                        s.verify_ticket(ORQ, t, OperatorId(i), &Gate::default(), at_gate)
                            .map(|_| ())
                            .map_err(|e| e.code())
                    })
                })
                .collect();
            gates.into_iter().map(|g| g.join().unwrap()).collect()
        });
        assert_eq!(
            outcomes.iter().filter(|o| o.is_ok()).count(),
            1,
            "{outcomes:?}"
        );
        assert!(
            outcomes
                .iter()
                .all(|o| o.is_ok() || *o == Err("ALREADY_VERIFIED")),
            "{outcomes:?}"
        );
    }

    pub fn reservation_eligibility_follows_the_ticket(
        s: &(impl VenueStore + SlotStore + TicketStore + ReservationStore + GateStore + ?Sized),
    ) {
        let venue = s.add_venue(ORQ, "Prado", "UTC", now()).unwrap();
        let slot = slot_at(s, &venue, "2025-12-01", "09:00", "12:00", 10);
        let active = ticket(s, "T-ACT", ActivationMode::Immediate);
        let inactive = ticket(s, "T-INA", ActivationMode::Deferred);
        assert!(
            s.reservation_eligibility(ORQ, &active, now())
                .unwrap()
                .admit
        );
        let v = s.reservation_eligibility(ORQ, &inactive, now()).unwrap();
        assert!(!v.admit);
        reserve(s, &active, &slot);
        let v = s.reservation_eligibility(ORQ, &active, now()).unwrap();
        assert!(!v.admit, "{v:?}");
        let unknown = TicketCode::parse("NOPE").unwrap();
        let v = s.reservation_eligibility(ORQ, &unknown, now()).unwrap();
        assert_eq!((v.admit, v.ticket_code.as_deref()), (false, Some("NOPE")));
    }
}

/// Expands to the venue group's tests; see the module's doc.
#[macro_export]
macro_rules! venue_conformance {
    ($fresh:expr) => {
        $crate::conformance_tests!($fresh; venues;
            venues_are_created_read_and_listed_per_org,
            a_venue_needs_a_name_and_a_known_time_zone,
            gate_settings_change_what_the_patch_names,
        );
    };
}

/// Expands to the slot group's tests; see the module's doc.
#[macro_export]
macro_rules! slot_conformance {
    ($fresh:expr) => {
        $crate::conformance_tests!($fresh; slots;
            slot_create_validates_and_refuses_duplicates,
            an_unbooked_slot_is_deleted_for_good,
            capacity_and_status_change_as_the_domain_plans,
            list_by_venue_and_date_range,
        );
    };
}

/// Expands to the ticket group's tests; see the module's doc.
#[macro_export]
macro_rules! ticket_conformance {
    ($fresh:expr) => {
        $crate::conformance_tests!($fresh; tickets;
            activation_is_one_way_and_kept,
            ticket_batches_are_all_or_nothing,
            existing_codes_are_the_orgs_own_in_the_order_asked,
            tickets_list_in_code_order_by_pages_and_filters,
        );
    };
}

/// Expands to the reservation group's tests; see the module's doc.
#[macro_export]
macro_rules! reservation_conformance {
    ($fresh:expr) => {
        $crate::conformance_tests!($fresh; reservations;
            reservation_at_the_last_place_fills_the_slot_and_cancel_frees_it,
            a_venue_moves_time_zone_only_without_bookings_ahead,
            a_venue_bound_caller_changes_its_venues_reservations_only,
            a_venue_bound_caller_books_no_other_venues_ticket,
            one_reservation_per_ticket,
            only_active_tickets_reserve_and_only_future_slots,
            reschedule_moves_the_place_atomically,
            capacity_can_go_down_to_exactly_booked_and_not_below,
            the_month_offers_open_and_full_slots_not_closed_ones,
            racers_for_the_last_places_book_exactly_the_capacity,
        );
    };
}

/// Expands to the operator group's tests; see the module's doc.
#[macro_export]
macro_rules! operator_conformance {
    ($fresh:expr) => {
        $crate::conformance_tests!($fresh; operators;
            operators_are_added_read_and_listed_per_org,
            pins_are_checked_and_wrong_ones_lock_the_operator,
        );
    };
}

/// Expands to the token group's tests; see the module's doc.
#[macro_export]
macro_rules! token_conformance {
    ($fresh:expr) => {
        $crate::conformance_tests!($fresh; tokens;
            tokens_are_random_checked_and_revocable,
            a_customer_session_needs_the_code_and_its_email_and_expires,
            a_console_link_opens_one_expiring_session_once,
        );
    };
}

/// Expands to the gate group's tests; see the module's doc.
#[macro_export]
macro_rules! gate_conformance {
    ($fresh:expr) => {
        $crate::conformance_tests!($fresh; gate;
            verify_exactly_once_and_then_nothing_changes,
            a_refused_verification_writes_nothing,
            concurrent_verifications_of_one_ticket_admit_once,
            reservation_eligibility_follows_the_ticket,
        );
    };
}

/// Expands to the venue operations group's tests; see the module's doc.
#[macro_export]
macro_rules! venue_ops_conformance {
    ($fresh:expr) => {
        $crate::conformance_tests!($fresh; venue_ops;
            operations_settings_are_patched_set_and_cleared,
            occupancy_counts_the_days_entries_against_the_limit,
            no_shows_are_released_once_and_give_their_places_back,
            a_released_no_show_in_a_full_slot_is_no_place_left_at_the_server,
            checkout_brings_the_venue_to_zero_once,
            the_closing_time_checks_everyone_out_once,
            racing_closings_check_each_person_out_once,
            closing_happens_once_per_venue_day,
        );
    };
}

/// Expands to the fleet updates group's tests; see the module's doc.
#[macro_export]
macro_rules! update_conformance {
    ($fresh:expr) => {
        $crate::conformance_tests!($fresh; updates;
            gates_report_their_version_and_last_update,
            a_malformed_report_is_refused,
        );
    };
}

/// Expands to the console tickets group's tests (issue 16); see the module's doc.
#[macro_export]
macro_rules! console_ticket_conformance {
    ($fresh:expr) => {
        $crate::conformance_tests!($fresh; console_tickets;
            search_finds_tickets_by_code_order_email_and_phone,
            cancel_frees_the_place_once_and_gates_refuse_it,
            a_pin_reset_and_a_code_reissue_reach_the_server,
            a_venue_bound_caller_reaches_its_venues_tickets_only,
            a_venue_bound_caller_activates_its_venues_tickets_only,
            a_search_is_narrowed_by_the_lists_filters,
        );
    };
}

/// Expands to the console Slots page group's tests (issue 16).
#[macro_export]
macro_rules! slot_board_conformance {
    ($fresh:expr) => {
        $crate::conformance_tests!($fresh; slot_board;
            a_pattern_is_previewed_then_created_once,
            the_month_counts_booked_and_admitted_per_slot,
            the_dashboard_counts_the_day_on_every_engine,
        );
    };
}

/// Expands to the console Staff page group's tests (issue 16).
#[macro_export]
macro_rules! staff_conformance {
    ($fresh:expr) => {
        $crate::conformance_tests!($fresh; staff;
            a_deactivated_operator_signs_in_nowhere_and_holds_no_token,
            a_role_change_is_applied_and_revokes_the_old_roles_grants,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:expr; $group:ident; $($test:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                let Some(store) = $fresh else { return };
                $crate::conformance::$group::$test(&*store);
            }
        )*
    };
}

/// The suite on SQLite: a fresh database file per test.
#[cfg(test)]
mod sqlite {
    use crate::Store;

    struct Fresh {
        store: Store,
        _dir: tempfile::TempDir,
    }

    impl std::ops::Deref for Fresh {
        type Target = Store;
        fn deref(&self) -> &Store {
            &self.store
        }
    }

    fn fresh() -> Option<Fresh> {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("conformance.db")).unwrap();
        Some(Fresh { store, _dir: dir })
    }

    crate::venue_conformance!(fresh());
    crate::slot_conformance!(fresh());
    crate::ticket_conformance!(fresh());
    crate::reservation_conformance!(fresh());
    crate::operator_conformance!(fresh());
    crate::token_conformance!(fresh());
    crate::gate_conformance!(fresh());
    crate::venue_ops_conformance!(fresh());
    crate::console_ticket_conformance!(fresh());
    crate::update_conformance!(fresh());
    crate::slot_board_conformance!(fresh());
    crate::staff_conformance!(fresh());
}
