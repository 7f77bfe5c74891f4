//! The console's Slots page (issue 16): a month with admitted counts, and a
//! weekly pattern previewed then created once, on every engine.

use super::tickets::ticket;
use super::*;
use crate::domain::slot_pattern::{Outcome, WeeklyPattern};
use crate::domain::{ActivationMode, Contact, Gate, OperatorId, VenueId};
use crate::{
    GateStore, ReservationStore, ReserveRequest, SlotBoardStore, SlotStore, TicketStore, VenueStore,
};

fn t(s: &str) -> chrono::NaiveTime {
    crate::domain::slot::parse_time("t", s).unwrap()
}

fn outcomes(p: &[crate::domain::slot_pattern::PlannedSlot], o: Outcome) -> usize {
    p.iter().filter(|x| x.outcome == o).count()
}

pub fn a_pattern_is_previewed_then_created_once(
    s: &(impl VenueStore + SlotStore + SlotBoardStore + ?Sized),
) {
    let venue = s.add_venue(ORQ, "Prado", "Europe/Madrid", now()).unwrap();
    let other = s.add_venue(ORQ, "Garden", "Europe/Madrid", now()).unwrap();
    // One slot there already, identical to the pattern's; one overlapping.
    slot_at(s, &venue, "2026-03-24", "09:00", "12:00", 10);
    slot_at(s, &venue, "2026-03-25", "12:30", "13:30", 10);
    // The other venue's slot is no concern of this pattern.
    slot_at(s, &other, "2026-03-26", "09:00", "12:00", 10);
    // Mon 2026-03-23 .. Sun 2026-03-29 (Madrid's spring-forward day), Tue–Sun.
    let pattern = WeeklyPattern::validate(
        venue.id,
        date("2026-03-23"),
        date("2026-03-29"),
        &[2, 3, 4, 5, 6, 7],
        vec![
            (t("09:00"), t("12:00")),
            (t("12:00"), t("15:00")),
            (t("01:30"), t("02:30")),
        ],
        40,
    )
    .unwrap();
    let preview = s.apply_slot_pattern(ORQ, &pattern, false, now()).unwrap();
    assert_eq!(preview.len(), 18, "6 days x 3");
    assert_eq!(outcomes(&preview, Outcome::Exists), 1);
    assert_eq!(outcomes(&preview, Outcome::Clash), 1);
    // 02:30 does not exist in Madrid on 2026-03-29.
    assert_eq!(outcomes(&preview, Outcome::NonexistentTime), 1);
    assert_eq!(outcomes(&preview, Outcome::Create), 15);
    let month = |v: VenueId| s.slot_board(ORQ, v, "2026-03").unwrap();
    assert_eq!(month(venue.id).len(), 2, "a preview creates nothing");

    let created = s.apply_slot_pattern(ORQ, &pattern, true, now()).unwrap();
    assert_eq!(created, preview, "the creation does what the preview said");
    let board = month(venue.id);
    assert_eq!(board.len(), 17);
    // The 15 new ones at the pattern's capacity, the two that were there at theirs.
    assert_eq!(
        board.iter().filter(|b| b.slot.total_capacity == 40).count(),
        15
    );
    assert_eq!(
        board.iter().filter(|b| b.slot.total_capacity == 10).count(),
        2
    );
    assert!(board.iter().all(|b| b.admitted_count == 0));
    assert_eq!(month(other.id).len(), 1);

    // Again: nothing new.
    let again = s.apply_slot_pattern(ORQ, &pattern, true, now()).unwrap();
    assert_eq!(outcomes(&again, Outcome::Create), 0);
    assert_eq!(outcomes(&again, Outcome::Exists), 16);
    assert_eq!(month(venue.id).len(), 17);

    // Another org's venue is not found.
    let foreign = WeeklyPattern {
        venue_id: venue.id,
        ..pattern
    };
    assert_eq!(
        code_of(s.apply_slot_pattern(crate::domain::Orq(2), &foreign, false, now())),
        "NOT_FOUND"
    );
    assert_eq!(
        code_of(s.slot_board(crate::domain::Orq(2), venue.id, "2026-03")),
        "NOT_FOUND"
    );
    assert_eq!(
        code_of(s.slot_board(ORQ, venue.id, "2026-13")),
        "INVALID_INPUT"
    );
}

pub fn the_month_counts_booked_and_admitted_per_slot(
    s: &(impl VenueStore
          + SlotStore
          + SlotBoardStore
          + TicketStore
          + ReservationStore
          + GateStore
          + ?Sized),
) {
    let venue = s.add_venue(ORQ, "Prado", "Europe/Madrid", now()).unwrap();
    let morning = slot_at(s, &venue, "2025-12-01", "09:00", "12:00", 10);
    let noon = slot_at(s, &venue, "2025-12-01", "12:00", "15:00", 10);
    slot_at(s, &venue, "2026-01-01", "09:00", "12:00", 10);
    let reserve = |code: &str, slot: &Slot| {
        let t = ticket(s, code, ActivationMode::Immediate);
        let req = ReserveRequest {
            ticket: t.clone(),
            slot_id: slot.id,
            contact: Contact::validate("john@example.com", "+12025551234").unwrap(),
        };
        s.reserve_slot(ORQ, &req, now()).unwrap();
        t
    };
    let a = reserve("T-1", &morning);
    reserve("T-2", &morning);
    reserve("T-3", &noon);
    // 2025-12-01 10:00 UTC = 11:00 in Madrid, inside the morning slot.
    let at_gate = now() + chrono::Duration::days(6);
    let gate = Gate {
        venue_id: Some(venue.id),
        ..Gate::default()
    };
    assert!(
        s.verify_ticket(ORQ, &a, OperatorId(5), &gate, at_gate)
            .unwrap()
            .admit
    );
    let board = s.slot_board(ORQ, venue.id, "2025-12").unwrap();
    let counts: Vec<(chrono::NaiveTime, i64, i64, i64)> = board
        .iter()
        .map(|b| {
            (
                b.slot.start_time,
                b.slot.total_capacity,
                b.slot.booked_count,
                b.admitted_count,
            )
        })
        .collect();
    assert_eq!(counts, vec![(t("09:00"), 10, 2, 1), (t("12:00"), 10, 1, 0)]);
}

/// The live dashboard's figures are the same on every engine, down to the
/// 5-minute bucket of an admission a fraction of a second before a boundary
/// (an engine that rounds instead of flooring puts it in the next bucket).
pub fn the_dashboard_counts_the_day_on_every_engine(
    s: &(impl VenueStore
          + SlotStore
          + TicketStore
          + ReservationStore
          + GateStore
          + crate::DashboardStore
          + ?Sized),
) {
    let venue = s.add_venue(ORQ, "Prado", "Europe/Madrid", now()).unwrap();
    let morning = slot_at(s, &venue, "2025-12-01", "09:00", "12:00", 10);
    let noon = slot_at(s, &venue, "2025-12-01", "12:00", "15:00", 10);
    slot_at(s, &venue, "2025-12-02", "09:00", "12:00", 10);
    let reserve = |code: &str, slot: &Slot| {
        let t = ticket(s, code, ActivationMode::Immediate);
        let req = ReserveRequest {
            ticket: t.clone(),
            slot_id: slot.id,
            contact: Contact::validate("john@example.com", "+12025551234").unwrap(),
        };
        s.reserve_slot(ORQ, &req, now()).unwrap();
        t
    };
    let a = reserve("D-1", &morning);
    reserve("D-2", &morning);
    reserve("D-3", &noon);
    // 2025-12-01 10:04:59.600 UTC (11:04 in Madrid, in the morning slot):
    // the 10:00 bucket, 0.4 s before the 10:05 one.
    let bucket = now() + chrono::Duration::days(6);
    let at_gate = bucket + chrono::Duration::milliseconds(299_600);
    let gate = Gate {
        venue_id: Some(venue.id),
        ..Gate::default()
    };
    assert!(
        s.verify_ticket(ORQ, &a, OperatorId(5), &gate, at_gate)
            .unwrap()
            .admit
    );
    let board = s
        .dashboard(ORQ, at_gate + chrono::Duration::minutes(1))
        .unwrap();
    assert_eq!(board.venues.len(), 1);
    let day = &board.venues[0];
    assert_eq!((day.venue_id, day.date), (venue.id, date("2025-12-01")));
    assert_eq!(day.inside, 1, "one entry, no exit");
    let slots: Vec<(chrono::NaiveTime, i64, i64, i64, i64)> = day
        .slots
        .iter()
        .map(|x| {
            (
                x.start_time,
                x.total_capacity,
                x.booked_count,
                x.admitted_count,
                x.no_show_count,
            )
        })
        .collect();
    assert_eq!(
        slots,
        vec![(t("09:00"), 10, 2, 1, 0), (t("12:00"), 10, 1, 0, 0)],
        "today's slots only"
    );
    let buckets: Vec<_> = day
        .admissions
        .iter()
        .map(|b| (b.device_id, b.bucket_start, b.count))
        .collect();
    assert_eq!(buckets, vec![(None, bucket, 1)]);
    assert!(board.gates.is_empty());
    assert_eq!(day.conflicts, 0);
    // Another org sees none of it.
    let theirs = s.dashboard(crate::domain::Orq(2), at_gate).unwrap();
    assert!(theirs.venues.is_empty());
}
