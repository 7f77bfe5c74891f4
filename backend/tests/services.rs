//! The store's services against a real SQLite file: every rule of the spec
//! as it is seen through the public API of the crate.

mod common;

use chrono::Duration;
use common::{now, Fixture, ORQ};
use entrada::domain::{
    ActivationMode, ActivationStatus, ChangedBy, Gate, NewSlot, OperatorId, Orq, ReservationStatus,
    SlotChange, SlotRemoval, SlotStatus, TicketCode, TicketStatus, VenueId, VerdictCode,
};
use entrada::store::StoreError;

fn code_of<T: std::fmt::Debug>(r: Result<T, StoreError>) -> &'static str {
    r.expect_err("expected an error").code()
}

#[test]
fn slot_create_validates_and_refuses_duplicates() {
    let f = Fixture::new();
    let slot = f.slot("2025-12-01", "09:00", "11:00", 200);
    assert_eq!(
        (slot.total_capacity, slot.booked_count, slot.available_count),
        (200, 0, 200)
    );
    assert_eq!(slot.status, SlotStatus::Active);
    assert_eq!(slot.orq, ORQ);

    let dup = NewSlot::validate(f.venue.id.0, "2025-12-01", "09:00:00", "10:00", Some(5)).unwrap();
    assert_eq!(
        code_of(f.store.create_slot(ORQ, &dup, now())),
        "DUPLICATE_SLOT"
    );

    // A venue of another org is unknown to this org.
    let other = f
        .store
        .add_venue(Orq(2), "Elsewhere", "UTC", now())
        .unwrap();
    let foreign = NewSlot::validate(other.id.0, "2025-12-01", "09:00", "10:00", None).unwrap();
    assert_eq!(
        code_of(f.store.create_slot(ORQ, &foreign, now())),
        "NOT_FOUND"
    );
    let missing = NewSlot::validate(999, "2025-12-01", "09:00", "10:00", None).unwrap();
    assert_eq!(
        code_of(f.store.create_slot(ORQ, &missing, now())),
        "NOT_FOUND"
    );
}

#[test]
fn capacity_can_go_down_to_exactly_booked_and_not_below() {
    let f = Fixture::new();
    let slot = f.slot("2025-12-01", "09:00", "11:00", 5);
    for i in 0..3 {
        let t = f.ticket(&format!("T-{i}"), ActivationMode::Immediate);
        f.store
            .reserve_slot(ORQ, &f.request(&t, &slot), now())
            .unwrap();
    }
    let err = f
        .store
        .update_slot(
            ORQ,
            slot.id,
            SlotChange {
                total_capacity: Some(2),
                status: None,
            },
            now(),
        )
        .unwrap_err();
    assert_eq!(err.code(), "CAPACITY_BELOW_BOOKED");
    let full = f
        .store
        .update_slot(
            ORQ,
            slot.id,
            SlotChange {
                total_capacity: Some(3),
                status: None,
            },
            now(),
        )
        .unwrap();
    assert_eq!(
        (full.total_capacity, full.available_count, full.status),
        (3, 0, SlotStatus::Full)
    );
    let reopened = f
        .store
        .update_slot(
            ORQ,
            slot.id,
            SlotChange {
                total_capacity: Some(4),
                status: None,
            },
            now(),
        )
        .unwrap();
    assert_eq!(reopened.status, SlotStatus::Active);
}

#[test]
fn closed_slots_stay_closed_until_reopened_and_are_not_offered() {
    let f = Fixture::new();
    let slot = f.slot("2025-12-01", "09:00", "11:00", 1);
    let other = f.slot("2025-12-02", "09:00", "11:00", 1);
    let closed = f
        .store
        .update_slot(
            ORQ,
            slot.id,
            SlotChange {
                total_capacity: None,
                status: Some(SlotStatus::Closed),
            },
            now(),
        )
        .unwrap();
    assert_eq!(closed.status, SlotStatus::Closed);
    let t = f.ticket("T-1", ActivationMode::Immediate);
    assert_eq!(
        code_of(f.store.reserve_slot(ORQ, &f.request(&t, &slot), now())),
        "SLOT_CLOSED"
    );
    let offered = f.store.available_slots(ORQ, "2025-12", None).unwrap();
    assert_eq!(
        offered.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![other.id]
    );

    let reopened = f
        .store
        .update_slot(
            ORQ,
            slot.id,
            SlotChange {
                total_capacity: None,
                status: Some(SlotStatus::Active),
            },
            now(),
        )
        .unwrap();
    assert_eq!(reopened.status, SlotStatus::Active);
    f.store
        .reserve_slot(ORQ, &f.request(&t, &slot), now())
        .unwrap();
    assert_eq!(
        f.store.get_slot(ORQ, slot.id).unwrap().status,
        SlotStatus::Full
    );
}

#[test]
fn delete_is_hard_without_reservations_and_soft_with() {
    let f = Fixture::new();
    let empty = f.slot("2025-12-01", "09:00", "11:00", 10);
    assert_eq!(
        f.store.remove_slot(ORQ, empty.id, now()).unwrap(),
        (SlotRemoval::Deleted, None)
    );
    assert_eq!(code_of(f.store.get_slot(ORQ, empty.id)), "NOT_FOUND");

    let booked = f.slot("2025-12-01", "12:00", "15:00", 10);
    let t = f.ticket("T-1", ActivationMode::Immediate);
    f.store
        .reserve_slot(ORQ, &f.request(&t, &booked), now())
        .unwrap();
    let (how, slot) = f.store.remove_slot(ORQ, booked.id, now()).unwrap();
    assert_eq!(how, SlotRemoval::Closed);
    assert_eq!(slot.unwrap().status, SlotStatus::Closed);
    assert_eq!(f.store.get_slot(ORQ, booked.id).unwrap().booked_count, 1);
}

#[test]
fn list_by_venue_and_date_range_and_availability_by_month() {
    let f = Fixture::new();
    let second = f
        .store
        .add_venue(ORQ, "Garden", "Europe/Madrid", now())
        .unwrap();
    f.slot("2025-11-30", "09:00", "11:00", 1);
    let a = f.slot("2025-12-01", "09:00", "11:00", 1);
    let b = f.slot("2025-12-31", "09:00", "11:00", 1);
    let new = NewSlot::validate(second.id.0, "2025-12-15", "09:00", "10:00", None).unwrap();
    let c = f.store.create_slot(ORQ, &new, now()).unwrap();
    f.store
        .add_venue(Orq(2), "Other org", "UTC", now())
        .unwrap();

    let d = |s| entrada::domain::slot::parse_date("d", s).unwrap();
    let listed = f
        .store
        .list_slots(
            ORQ,
            Some(f.venue.id),
            Some(d("2025-12-01")),
            Some(d("2025-12-31")),
        )
        .unwrap();
    assert_eq!(
        listed.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![a.id, b.id]
    );
    let month = f.store.available_slots(ORQ, "2025-12", None).unwrap();
    assert_eq!(
        month.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![a.id, c.id, b.id]
    );
    assert!(f
        .store
        .available_slots(Orq(2), "2025-12", None)
        .unwrap()
        .is_empty());
    assert_eq!(
        code_of(f.store.available_slots(ORQ, "2025-13", None)),
        "INVALID_INPUT"
    );
    assert_eq!(
        code_of(
            f.store
                .list_slots(ORQ, None, Some(d("2025-12-31")), Some(d("2025-12-01")))
        ),
        "INVALID_INPUT"
    );
}

#[test]
fn reservation_at_the_last_place_fills_the_slot_and_cancel_frees_it() {
    let f = Fixture::new();
    let slot = f.slot("2025-12-01", "09:00", "11:00", 2);
    let t1 = f.ticket("T-1", ActivationMode::Immediate);
    let t2 = f.ticket("T-2", ActivationMode::Immediate);
    let t3 = f.ticket("T-3", ActivationMode::Immediate);
    f.store
        .reserve_slot(ORQ, &f.request(&t1, &slot), now())
        .unwrap();
    let last = f
        .store
        .reserve_slot(ORQ, &f.request(&t2, &slot), now())
        .unwrap();
    let s = f.store.get_slot(ORQ, slot.id).unwrap();
    assert_eq!(
        (s.booked_count, s.available_count, s.status),
        (2, 0, SlotStatus::Full)
    );
    assert_eq!(
        code_of(f.store.reserve_slot(ORQ, &f.request(&t3, &slot), now())),
        "SLOT_FULL"
    );

    // The ticket carries the reservation's facts.
    let ticket = f.store.get_ticket(ORQ, &t2).unwrap();
    assert_eq!(ticket.status, TicketStatus::Reserved);
    assert_eq!(ticket.customer_email.as_deref(), Some("john@example.com"));
    assert_eq!(ticket.customer_phone.as_deref(), Some("+12025551234"));
    assert_eq!(ticket.reserved_at, Some(now()));

    // Cancel on a FULL slot → ACTIVE with one place.
    let cancelled = f
        .store
        .cancel_reservation(ORQ, last.id, ChangedBy::Staff, now())
        .unwrap();
    assert_eq!(cancelled.status, ReservationStatus::Cancelled);
    let s = f.store.get_slot(ORQ, slot.id).unwrap();
    assert_eq!((s.booked_count, s.status), (1, SlotStatus::Active));
    assert_eq!(
        f.store.get_ticket(ORQ, &t2).unwrap().status,
        TicketStatus::Activated
    );
    assert_eq!(
        code_of(
            f.store
                .cancel_reservation(ORQ, last.id, ChangedBy::Staff, now())
        ),
        "RESERVATION_CANCELLED"
    );

    // The freed place is taken, and a cancelled ticket can reserve again.
    f.store
        .reserve_slot(ORQ, &f.request(&t3, &slot), now())
        .unwrap();
    assert_eq!(
        code_of(f.store.reserve_slot(ORQ, &f.request(&t2, &slot), now())),
        "SLOT_FULL"
    );
    let other = f.slot("2025-12-02", "09:00", "11:00", 2);
    let again = f
        .store
        .reserve_slot(ORQ, &f.request(&t2, &other), now())
        .unwrap();
    assert_eq!(
        (again.id, again.status),
        (last.id, ReservationStatus::Reserved)
    );
}

#[test]
fn one_reservation_per_ticket() {
    let f = Fixture::new();
    let a = f.slot("2025-12-01", "09:00", "11:00", 10);
    let b = f.slot("2025-12-02", "09:00", "11:00", 10);
    let t = f.ticket("T-1", ActivationMode::Immediate);
    f.store
        .reserve_slot(ORQ, &f.request(&t, &a), now())
        .unwrap();
    assert_eq!(
        code_of(f.store.reserve_slot(ORQ, &f.request(&t, &b), now())),
        "ALREADY_RESERVED"
    );
    assert_eq!(
        code_of(f.store.reserve_slot(ORQ, &f.request(&t, &a), now())),
        "ALREADY_RESERVED"
    );
    assert_eq!(f.store.get_slot(ORQ, a.id).unwrap().booked_count, 1);
    assert_eq!(f.store.get_slot(ORQ, b.id).unwrap().booked_count, 0);
}

#[test]
fn reschedule_moves_the_place_atomically() {
    let f = Fixture::new();
    let a = f.slot("2025-12-01", "09:00", "11:00", 1);
    let b = f.slot("2025-12-02", "09:00", "11:00", 1);
    let c = f.slot("2025-12-03", "09:00", "11:00", 1);
    let t1 = f.ticket("T-1", ActivationMode::Immediate);
    let t2 = f.ticket("T-2", ActivationMode::Immediate);
    let r = f
        .store
        .reserve_slot(ORQ, &f.request(&t1, &a), now())
        .unwrap();
    f.store
        .reserve_slot(ORQ, &f.request(&t2, &c), now())
        .unwrap();

    let moved = f
        .store
        .reschedule_reservation(ORQ, r.id, b.id, ChangedBy::Staff, now())
        .unwrap();
    assert_eq!(moved.slot_id, b.id);
    let (sa, sb) = (
        f.store.get_slot(ORQ, a.id).unwrap(),
        f.store.get_slot(ORQ, b.id).unwrap(),
    );
    assert_eq!((sa.booked_count, sa.status), (0, SlotStatus::Active));
    assert_eq!((sb.booked_count, sb.status), (1, SlotStatus::Full));

    // Into a full slot: refused, nothing moves.
    assert_eq!(
        code_of(
            f.store
                .reschedule_reservation(ORQ, r.id, c.id, ChangedBy::Staff, now())
        ),
        "SLOT_FULL"
    );
    assert_eq!(f.store.get_reservation(ORQ, r.id).unwrap().slot_id, b.id);
    assert_eq!(f.store.get_slot(ORQ, b.id).unwrap().booked_count, 1);
    // Same slot: nothing to do.
    assert_eq!(
        f.store
            .reschedule_reservation(ORQ, r.id, b.id, ChangedBy::Staff, now())
            .unwrap()
            .slot_id,
        b.id
    );
}

#[test]
fn past_slots_take_no_reservation() {
    let f = Fixture::new();
    let past = f.slot("2025-11-20", "09:00", "11:00", 10);
    let t = f.ticket("T-1", ActivationMode::Immediate);
    assert_eq!(
        code_of(f.store.reserve_slot(ORQ, &f.request(&t, &past), now())),
        "SLOT_IN_PAST"
    );
}

#[test]
fn activation_is_one_way_and_only_active_tickets_reserve() {
    let f = Fixture::new();
    let slot = f.slot("2025-12-01", "09:00", "11:00", 10);
    let deferred = f.ticket("T-DEF", ActivationMode::Deferred);
    let t = f.store.get_ticket(ORQ, &deferred).unwrap();
    assert_eq!(
        (t.activation_status, t.activated_at, t.status),
        (ActivationStatus::Inactive, None, TicketStatus::Minted)
    );
    assert_eq!(
        code_of(
            f.store
                .reserve_slot(ORQ, &f.request(&deferred, &slot), now())
        ),
        "TICKET_NOT_ACTIVE"
    );

    let later = now() + Duration::minutes(5);
    let t = f
        .store
        .activate_ticket(ORQ, &deferred, None, later)
        .unwrap();
    assert_eq!(
        (t.activation_status, t.activated_at, t.status),
        (
            ActivationStatus::Active,
            Some(later),
            TicketStatus::Activated
        )
    );
    // Twice: unchanged, activated_at kept.
    let t = f
        .store
        .activate_ticket(ORQ, &deferred, None, later + Duration::hours(1))
        .unwrap();
    assert_eq!(t.activated_at, Some(later));
    f.store
        .reserve_slot(ORQ, &f.request(&deferred, &slot), now())
        .unwrap();

    let immediate = f.ticket("T-IMM", ActivationMode::Immediate);
    let t = f.store.get_ticket(ORQ, &immediate).unwrap();
    assert_eq!(
        (t.activation_status, t.activated_at),
        (ActivationStatus::Active, Some(now()))
    );

    // Cancelled and expired tickets are refused with their reason.
    let cancelled = f.ticket("T-CAN", ActivationMode::Deferred);
    f.store.cancel_ticket(ORQ, &cancelled, None, now()).unwrap();
    assert_eq!(
        code_of(f.store.activate_ticket(ORQ, &cancelled, None, now())),
        "TICKET_CANCELLED"
    );
    let mut expiring =
        entrada::domain::NewTicket::plain("T-EXP", ActivationMode::Immediate).unwrap();
    expiring.expires_at = Some(now() - Duration::seconds(1));
    f.store
        .insert_tickets(ORQ, &[expiring.clone()], now())
        .unwrap();
    assert_eq!(
        code_of(
            f.store
                .reserve_slot(ORQ, &f.request(&expiring.ticket_code, &slot), now())
        ),
        "TICKET_EXPIRED"
    );
    assert_eq!(
        code_of(
            f.store
                .activate_ticket(ORQ, &TicketCode::parse("NOPE").unwrap(), None, now())
        ),
        "NOT_FOUND"
    );
}

#[test]
fn ticket_batches_are_all_or_nothing() {
    let f = Fixture::new();
    f.ticket("T-1", ActivationMode::Deferred);
    let batch: Vec<_> = ["T-2", "T-3", "T-1"]
        .iter()
        .map(|c| entrada::domain::NewTicket::plain(c, ActivationMode::Deferred).unwrap())
        .collect();
    assert_eq!(
        code_of(f.store.insert_tickets(ORQ, &batch, now())),
        "DUPLICATE_TICKET"
    );
    assert_eq!(
        code_of(f.store.get_ticket(ORQ, &TicketCode::parse("T-2").unwrap())),
        "NOT_FOUND"
    );
    // A code is global: another org cannot take it either.
    assert_eq!(
        code_of(f.store.insert_tickets(Orq(2), &batch[2..], now())),
        "DUPLICATE_TICKET"
    );
}

#[test]
fn verify_exactly_once_and_then_nothing_changes() {
    let f = Fixture::new();
    // Slot today in Madrid, so the verdict's date matches.
    let at_gate = common::now() + Duration::days(6); // 2025-12-01 10:00 UTC = 11:00 Madrid
    let slot = f.slot("2025-12-01", "09:00", "12:00", 10);
    let t = f.ticket("T-1", ActivationMode::Immediate);
    let r = f
        .store
        .reserve_slot(ORQ, &f.request(&t, &slot), now())
        .unwrap();
    let gate = Gate {
        venue_id: Some(f.venue.id),
        ..Gate::default()
    };

    assert!(
        f.store
            .validate_ticket(ORQ, &t, &gate, at_gate)
            .unwrap()
            .admit
    );
    let v = f
        .store
        .verify_ticket(ORQ, &t, OperatorId(5), &gate, at_gate)
        .unwrap();
    assert_eq!(
        (v.verdict, v.verified_by),
        (VerdictCode::Admit, Some(OperatorId(5)))
    );
    let ticket = f.store.get_ticket(ORQ, &t).unwrap();
    assert_eq!(
        (
            ticket.status,
            ticket.activation_status,
            ticket.verified_at,
            ticket.verified_by
        ),
        (
            TicketStatus::Verified,
            ActivationStatus::Redeemed,
            Some(at_gate),
            Some(OperatorId(5))
        )
    );
    assert_eq!(
        f.store.get_reservation(ORQ, r.id).unwrap().status,
        ReservationStatus::Verified
    );

    // Second verify: refused with the first one's facts, nothing changes.
    let err = f
        .store
        .verify_ticket(
            ORQ,
            &t,
            OperatorId(6),
            &gate,
            at_gate + Duration::minutes(3),
        )
        .unwrap_err();
    assert_eq!(err.code(), "ALREADY_VERIFIED");
    let details = match err {
        StoreError::Domain(e) => e.details(),
        other => panic!("{other:?}"),
    };
    assert_eq!(details["verified_by"], 5);
    assert_eq!(
        f.store.get_ticket(ORQ, &t).unwrap().verified_by,
        Some(OperatorId(5))
    );

    // After verification a reservation can neither be cancelled nor moved.
    let other = f.slot("2025-12-02", "09:00", "12:00", 10);
    assert_eq!(
        code_of(
            f.store
                .cancel_reservation(ORQ, r.id, ChangedBy::Staff, at_gate)
        ),
        "RESERVATION_VERIFIED"
    );
    assert_eq!(
        code_of(
            f.store
                .reschedule_reservation(ORQ, r.id, other.id, ChangedBy::Staff, at_gate)
        ),
        "RESERVATION_VERIFIED"
    );
    assert_eq!(f.store.get_slot(ORQ, slot.id).unwrap().booked_count, 1);
}

#[test]
fn refused_verification_writes_nothing() {
    let f = Fixture::new();
    let slot = f.slot("2025-12-02", "09:00", "12:00", 10);
    let t = f.ticket("T-1", ActivationMode::Immediate);
    f.store
        .reserve_slot(ORQ, &f.request(&t, &slot), now())
        .unwrap();
    let wrong_day = now() + Duration::days(6);
    let err = f
        .store
        .verify_ticket(ORQ, &t, OperatorId(1), &Gate::default(), wrong_day)
        .unwrap_err();
    assert_eq!(err.code(), "WRONG_DATE");
    assert_eq!(f.store.get_ticket(ORQ, &t).unwrap().verified_at, None);
    let elsewhere = Gate {
        venue_id: Some(VenueId(42)),
        ..Gate::default()
    };
    let v = f
        .store
        .validate_ticket(ORQ, &t, &elsewhere, wrong_day)
        .unwrap();
    assert_eq!(v.verdict, VerdictCode::WrongVenue);
}

#[test]
fn tenants_never_see_each_other() {
    let f = Fixture::new();
    let slot = f.slot("2025-12-01", "09:00", "11:00", 10);
    let t = f.ticket("T-1", ActivationMode::Immediate);
    let r = f
        .store
        .reserve_slot(ORQ, &f.request(&t, &slot), now())
        .unwrap();
    let b = Orq(2);
    assert_eq!(code_of(f.store.get_slot(b, slot.id)), "NOT_FOUND");
    assert_eq!(code_of(f.store.get_ticket(b, &t)), "NOT_FOUND");
    assert_eq!(code_of(f.store.get_reservation(b, r.id)), "NOT_FOUND");
    assert_eq!(
        code_of(f.store.cancel_reservation(b, r.id, ChangedBy::Staff, now())),
        "NOT_FOUND"
    );
    assert_eq!(
        code_of(
            f.store
                .update_slot(b, slot.id, SlotChange::default(), now())
        ),
        "NOT_FOUND"
    );
    assert_eq!(code_of(f.store.remove_slot(b, slot.id, now())), "NOT_FOUND");
    assert_eq!(
        code_of(f.store.activate_ticket(b, &t, None, now())),
        "NOT_FOUND"
    );
    assert_eq!(
        f.store
            .validate_ticket(b, &t, &Gate::default(), now())
            .unwrap()
            .verdict,
        VerdictCode::UnknownTicket
    );
    assert!(f.store.list_slots(b, None, None, None).unwrap().is_empty());
    assert!(f.store.list_venues(b).unwrap().is_empty());
}

#[test]
fn seeding_is_idempotent() {
    let f = Fixture::new();
    let from = entrada::domain::slot::parse_date("from", "2025-12-01").unwrap();
    let mut days_seen = 0;
    let plan = |days| entrada::store::SeedPlan {
        venue: f.venue.id,
        from,
        days,
        capacity: 200,
    };
    let r1 = f
        .store
        .seed_slots(ORQ, plan(90), now(), |n| days_seen += n)
        .unwrap();
    assert_eq!((r1.created, r1.already_there, days_seen), (270, 0, 90));
    let r2 = f.store.seed_slots(ORQ, plan(91), now(), |_| {}).unwrap();
    assert_eq!((r2.created, r2.already_there), (3, 270));
    let first_day = f
        .store
        .list_slots(ORQ, None, Some(from), Some(from))
        .unwrap();
    let times: Vec<_> = first_day
        .iter()
        .map(|s| (s.start_time.to_string(), s.end_time.to_string()))
        .collect();
    assert_eq!(
        times,
        [
            ("09:00:00", "12:00:00"),
            ("12:00:00", "15:00:00"),
            ("15:00:00", "18:00:00")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
}

#[test]
fn schema_enforces_the_invariants_even_against_raw_sql() {
    let f = Fixture::new();
    let slot = f.slot("2025-12-01", "09:00", "11:00", 2);
    let t = f.ticket("T-1", ActivationMode::Immediate);
    f.store
        .reserve_slot(ORQ, &f.request(&t, &slot), now())
        .unwrap();
    let conn = rusqlite::Connection::open(f.db_path()).unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    let id = slot.id.to_string();
    for (what, sql) in [
        (
            "overbooking",
            format!("UPDATE reservation_slots SET booked_count = 3 WHERE id = '{id}'"),
        ),
        (
            "FULL while not full",
            format!("UPDATE reservation_slots SET status = 'FULL' WHERE id = '{id}'"),
        ),
        (
            "bad enum",
            format!("UPDATE reservation_slots SET status = 'OPEN' WHERE id = '{id}'"),
        ),
        (
            "end before start",
            format!("UPDATE reservation_slots SET end_time = '08:00:00' WHERE id = '{id}'"),
        ),
        (
            "hard delete with reservations",
            format!("DELETE FROM reservation_slots WHERE id = '{id}'"),
        ),
        (
            "writing available_count",
            format!("UPDATE reservation_slots SET available_count = 9 WHERE id = '{id}'"),
        ),
        (
            "bad activation_status",
            "UPDATE tickets SET activation_status = 'gone'".to_string(),
        ),
        (
            "entitlements not JSON",
            "UPDATE tickets SET entitlements = '{'".to_string(),
        ),
    ] {
        assert!(
            conn.execute(&sql, []).is_err(),
            "{what} must be refused by the schema"
        );
    }
    // Deleting a ticket removes its reservation (CASCADE).
    conn.execute("DELETE FROM tickets WHERE ticket_code = 'T-1'", [])
        .unwrap();
    let left: i64 = conn
        .query_row("SELECT count(*) FROM ticket_reservations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn desk_lookup_by_code_email_and_phone() {
    let f = Fixture::new();
    let slot = f.slot("2025-12-01", "09:00", "11:00", 10);
    let t = f.ticket("T-LOOK", ActivationMode::Immediate);
    f.ticket("T-OTHER", ActivationMode::Immediate);
    f.store
        .reserve_slot(ORQ, &f.request(&t, &slot), now())
        .unwrap();
    for query in [
        "T-LOOK",
        "John@Example.com",
        "+1 202 555 1234",
        "+12025551234",
    ] {
        let found = f.store.lookup_tickets(ORQ, query, 10).unwrap();
        assert_eq!(found.len(), 1, "{query}");
        assert_eq!(found[0].ticket.ticket_code, t);
        assert_eq!(found[0].slot.as_ref().map(|s| s.id), Some(slot.id));
    }
    assert!(f
        .store
        .lookup_tickets(ORQ, "nobody@example.com", 10)
        .unwrap()
        .is_empty());
    assert!(f
        .store
        .lookup_tickets(Orq(2), "T-LOOK", 10)
        .unwrap()
        .is_empty());
    assert_eq!(
        code_of(f.store.lookup_tickets(ORQ, "  ", 10)),
        "INVALID_INPUT"
    );

    let gate_time = now() + Duration::days(6);
    assert_eq!(f.store.admitted_count(ORQ, slot.id).unwrap(), 0);
    f.store
        .verify_ticket(ORQ, &t, OperatorId(1), &Gate::default(), gate_time)
        .unwrap();
    assert_eq!(f.store.admitted_count(ORQ, slot.id).unwrap(), 1);
}

#[test]
fn pairing_a_demo_replica_replaces_its_data_but_never_wipes_a_server() {
    use entrada::sync::protocol::DeviceInfo;
    let dir = tempfile::tempdir().unwrap();
    let store = entrada::store::Store::open(dir.path().join("gate.db")).unwrap();
    entrada::demo::populate(&store, now(), |_| {}).unwrap();
    store
        .set_device_setting("camera", "folder:/srv/frames")
        .unwrap();
    assert!(!store.list_operators(Orq(1)).unwrap().is_empty());
    let info = DeviceInfo {
        device_id: 7,
        orq: 1,
        venue_id: 3,
        name: "Gate 7".into(),
    };
    assert!(store.pair(&info, "http://127.0.0.1:8080", "dev_x").unwrap());
    assert!(store.list_operators(Orq(1)).unwrap().is_empty());
    assert!(store.list_venues(Orq(1)).unwrap().is_empty());
    assert_eq!(
        code_of(store.get_ticket(Orq(1), &TicketCode::parse("DEMO-ADMIT").unwrap())),
        "NOT_FOUND"
    );
    // Nothing of the demo is left to upload or to hand out as changes.
    assert!(store.outbox(10).unwrap().is_empty());
    assert!(store
        .changes_since(Orq(1), entrada::domain::VenueId(3), 0, 10, now())
        .unwrap()
        .changes
        .is_empty());
    assert_eq!(
        store
            .device_settings()
            .unwrap()
            .get("camera")
            .map(String::as_str),
        Some("folder:/srv/frames")
    );
    let pairing = store.pairing().unwrap().unwrap();
    assert_eq!((pairing.info.device_id, pairing.cursor), (7, 0));
    // Re-pairing the same org keeps everything; another org is refused.
    assert!(!store.pair(&info, "http://10.0.0.5:8080", "dev_y").unwrap());
    let other = DeviceInfo {
        orq: 2,
        ..info.clone()
    };
    assert_eq!(
        code_of(store.pair(&other, "http://10.0.0.5:8080", "dev_z")),
        "INVALID_INPUT"
    );

    // Data that is not the demo's is never wiped by a pairing…
    let f = Fixture::new();
    assert_eq!(
        f.store.local_data().unwrap(),
        entrada::store::LocalData::Other
    );
    assert_eq!(
        code_of(f.store.pair(&info, "http://127.0.0.1:8080", "dev_x")),
        "LOCAL_DATA"
    );
    // …nor a database that served as a server.
    f.store
        .add_device(ORQ, f.venue.id, "Gate 1", now())
        .unwrap();
    assert_eq!(
        code_of(f.store.pair(&info, "http://127.0.0.1:8080", "dev_x")),
        "SERVER_DATABASE"
    );
    assert_eq!(f.store.list_venues(ORQ).unwrap().len(), 1);
    assert!(f.store.pairing().unwrap().is_none());
}

#[test]
fn an_operator_may_overrule_an_amber_verdict_and_nothing_else() {
    let f = Fixture::new();
    // 2025-12-01 in Madrid; the slot is 12:00–13:00, 30 min grace either side.
    let slot = f.slot("2025-12-01", "12:00", "13:00", 10);
    let t = f.ticket("T-EARLY", ActivationMode::Immediate);
    f.store
        .reserve_slot(ORQ, &f.request(&t, &slot), now())
        .unwrap();
    let gate = Gate {
        venue_id: Some(f.venue.id),
        ..Gate::default()
    };
    let early = now() + Duration::days(6); // 10:00 UTC = 11:00 Madrid: an hour early
    let next_day = early + Duration::days(1);
    let raw = t.as_str().as_bytes();

    // The rules alone refuse (amber), and record nothing.
    let amber = f.store.scan(ORQ, raw, OperatorId(5), &gate, early).unwrap();
    assert_eq!(
        (amber.admit, amber.verdict),
        (false, VerdictCode::OutsideSlotWindow)
    );
    assert!(f.store.get_ticket(ORQ, &t).unwrap().verified_at.is_none());
    // A red refusal is not the operator's to overrule: nothing recorded.
    let red = f
        .store
        .admit_by_decision(
            ORQ,
            raw,
            VerdictCode::WrongDate,
            OperatorId(5),
            &gate,
            next_day,
        )
        .unwrap();
    assert_eq!((red.admit, red.verdict), (false, VerdictCode::WrongDate));
    assert!(f.store.get_ticket(ORQ, &t).unwrap().verified_at.is_none());

    // The operator lets the early holder in: an admission, marked as such.
    let let_in = f
        .store
        .admit_by_decision(
            ORQ,
            raw,
            VerdictCode::OutsideSlotWindow,
            OperatorId(5),
            &gate,
            early,
        )
        .unwrap();
    assert_eq!(
        (let_in.admit, let_in.verdict, let_in.overruled),
        (
            true,
            VerdictCode::Admit,
            Some(VerdictCode::OutsideSlotWindow)
        )
    );
    let ticket = f.store.get_ticket(ORQ, &t).unwrap();
    assert_eq!(
        (ticket.status, ticket.verified_by),
        (TicketStatus::Verified, Some(OperatorId(5)))
    );
    // And only once.
    let again = f
        .store
        .admit_by_decision(
            ORQ,
            raw,
            VerdictCode::OutsideSlotWindow,
            OperatorId(6),
            &gate,
            early,
        )
        .unwrap();
    assert_eq!(
        (again.verdict, again.verified_by),
        (VerdictCode::AlreadyVerified, Some(OperatorId(5)))
    );
}

/// A server that sold `code` (reserved today 09:00–12:00 Madrid) and signed
/// it, and a paired gate replica with the org's key and slots but without
/// that ticket yet (a copy of the server's file, minus the ticket).
struct NotSyncedYet {
    f: Fixture,
    t: TicketCode,
    signed: String,
    device: entrada::sync::protocol::DeviceInfo,
    _dir: tempfile::TempDir,
    gate_db: std::path::PathBuf,
    gate_store: entrada::store::Store,
}

fn not_synced_yet(code: &str) -> NotSyncedYet {
    let f = Fixture::new();
    let slot = f.slot("2025-12-01", "09:00", "12:00", 10);
    let t = f.ticket(code, ActivationMode::Immediate);
    f.store
        .reserve_slot(ORQ, &f.request(&t, &slot), now())
        .unwrap();
    let signed = f.store.signed_code(ORQ, &t, now()).unwrap();
    let (_, device) = f
        .store
        .add_device(ORQ, f.venue.id, "Gate 1", now())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gate_db = dir.path().join("gate.db");
    {
        let raw = rusqlite::Connection::open(f.db_path()).unwrap();
        // The gate's operators (5, 6) exist on the server: it rejects
        // uploads by operators it does not know.
        raw.execute_batch(
            "INSERT INTO operators (id, orq, role, display_name) VALUES (5, 1, 'operator', 'Ana'), (6, 1, 'operator', 'Ben');",
        )
        .unwrap();
        raw.execute("VACUUM INTO ?1", [gate_db.to_str().unwrap()])
            .unwrap();
        let copy = rusqlite::Connection::open(&gate_db).unwrap();
        copy.execute_batch("DELETE FROM devices; DELETE FROM api_tokens; DELETE FROM sync_events;")
            .unwrap();
        copy.execute("DELETE FROM tickets WHERE ticket_code = ?1", [code])
            .unwrap();
        // Marked as paired directly: `pair` would (rightly) replace an
        // unpaired replica's rows, and this one must keep the key and slot.
        copy.execute(
            "INSERT INTO device_identity (id, device_id, orq, venue_id, name, server_url, token) VALUES (1, ?1, ?2, ?3, ?4, 'http://x', 't')",
            rusqlite::params![device.device_id, device.orq, device.venue_id, device.name],
        )
        .unwrap();
    }
    let gate_store = entrada::store::Store::open(&gate_db).unwrap();
    NotSyncedYet {
        f,
        t,
        signed,
        device,
        _dir: dir,
        gate_db,
        gate_store,
    }
}

#[test]
fn an_authentic_code_not_synced_yet_is_let_in_once_by_decision() {
    let NotSyncedYet {
        f,
        t,
        signed,
        device,
        gate_store,
        _dir: _keep,
        ..
    } = not_synced_yet("T-LATE-SYNC");
    let gate = Gate {
        venue_id: Some(f.venue.id),
        ..Gate::default()
    };
    let at = now() + Duration::days(6);
    let scan = |op: i64| {
        gate_store
            .scan(ORQ, signed.as_bytes(), OperatorId(op), &gate, at)
            .unwrap()
    };
    assert_eq!(scan(5).verdict, VerdictCode::AuthenticNotSynced);
    assert!(gate_store.pending_events().unwrap().is_empty());

    let let_in = gate_store
        .admit_by_decision(
            ORQ,
            signed.as_bytes(),
            VerdictCode::AuthenticNotSynced,
            OperatorId(5),
            &gate,
            at,
        )
        .unwrap();
    assert_eq!(
        (let_in.admit, let_in.overruled, let_in.verified_by),
        (
            true,
            Some(VerdictCode::AuthenticNotSynced),
            Some(OperatorId(5))
        )
    );
    // The same code again, scanned or decided: already in, by whom and when.
    let second = scan(6);
    assert_eq!(
        (second.verdict, second.verified_by, second.verified_at),
        (VerdictCode::AlreadyVerified, Some(OperatorId(5)), Some(at))
    );
    let decided_again = gate_store
        .admit_by_decision(
            ORQ,
            signed.as_bytes(),
            VerdictCode::AuthenticNotSynced,
            OperatorId(6),
            &gate,
            at,
        )
        .unwrap();
    assert_eq!(decided_again.verdict, VerdictCode::AlreadyVerified);

    // Exactly one event for the server, marked as the operator's decision…
    let pending: Vec<_> = gate_store
        .pending_events()
        .unwrap()
        .into_iter()
        .map(|(e, _)| e)
        .collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].kind, "verify");
    assert_eq!(pending[0].payload["ticket_code"], "T-LATE-SYNC");
    assert_eq!(pending[0].payload["overruled"], "AUTHENTIC_NOT_SYNCED");
    assert_eq!(pending[0].operator_id, Some(5));
    // …which the server records against its ticket, with the mark.
    let results = f.store.apply_events(&device, &pending, at, at).unwrap();
    assert_eq!(results.len(), 1);
    let server_ticket = f.store.get_ticket(ORQ, &t).unwrap();
    assert_eq!(
        (server_ticket.verified_by, server_ticket.verified_at),
        (Some(OperatorId(5)), Some(at))
    );
    let overruled: Option<String> = rusqlite::Connection::open(f.db_path())
        .unwrap()
        .query_row(
            "SELECT overruled FROM verifications WHERE ticket_code = 'T-LATE-SYNC'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(overruled.as_deref(), Some("AUTHENTIC_NOT_SYNCED"));
}

#[test]
fn a_ticket_that_arrives_before_the_decision_is_judged_afresh() {
    let NotSyncedYet {
        f,
        t,
        signed,
        gate_db,
        gate_store,
        _dir: _keep,
        ..
    } = not_synced_yet("T-ARRIVES");
    let gate = Gate {
        venue_id: Some(f.venue.id),
        ..Gate::default()
    };
    // 07:00 UTC = 08:00 Madrid: an hour before the 09:00 slot.
    let early = now() + Duration::days(6) - Duration::hours(3);
    let amber = gate_store
        .scan(ORQ, signed.as_bytes(), OperatorId(5), &gate, early)
        .unwrap();
    assert_eq!(amber.verdict, VerdictCode::AuthenticNotSynced);
    // The ticket arrives (a sync round) while the operator looks at the code.
    let copy = rusqlite::Connection::open(&gate_db).unwrap();
    copy.execute("ATTACH ?1 AS srv", [f.db_path().to_str().unwrap()])
        .unwrap();
    copy.execute_batch(
        "INSERT INTO tickets SELECT * FROM srv.tickets WHERE ticket_code = 'T-ARRIVES'; \
         INSERT OR IGNORE INTO ticket_reservations SELECT * FROM srv.ticket_reservations WHERE ticket_id = 'T-ARRIVES';",
    )
    .unwrap();
    // "Let in" was meant for "authentic, not synced": the ticket's own
    // verdict (early for its slot) is shown afresh, not silently overruled.
    let afresh = gate_store
        .admit_by_decision(
            ORQ,
            signed.as_bytes(),
            VerdictCode::AuthenticNotSynced,
            OperatorId(5),
            &gate,
            early,
        )
        .unwrap();
    assert_eq!(
        (afresh.admit, afresh.verdict),
        (false, VerdictCode::OutsideSlotWindow),
        "{afresh:?}"
    );
    assert_eq!(gate_store.get_ticket(ORQ, &t).unwrap().verified_by, None);
    assert!(gate_store.pending_events().unwrap().is_empty());
    // Deciding on that verdict lets them in, marked with what it overruled.
    let decided = gate_store
        .admit_by_decision(
            ORQ,
            signed.as_bytes(),
            VerdictCode::OutsideSlotWindow,
            OperatorId(5),
            &gate,
            early,
        )
        .unwrap();
    assert_eq!(
        (decided.admit, decided.overruled),
        (true, Some(VerdictCode::OutsideSlotWindow))
    );
    let pending = gate_store.pending_events().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].0.payload["overruled"], "OUTSIDE_SLOT_WINDOW");
    let kept_as_not_synced: i64 = copy
        .query_row("SELECT count(*) FROM main.verifications", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept_as_not_synced, 0);
}
