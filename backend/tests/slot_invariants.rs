//! Property test: random sequences of reserve / cancel / reschedule /
//! capacity change / close / reopen over several slots keep every slot's
//! counts honest after every step.

mod common;

use common::{now, Fixture, ORQ};
use entrada::domain::{
    ActivationMode, ChangedBy, ReservationId, Slot, SlotChange, SlotStatus, TicketCode,
};
use proptest::prelude::*;

const SLOTS: usize = 3;
const TICKETS: usize = 8;

#[derive(Debug, Clone)]
enum Op {
    Reserve { ticket: usize, slot: usize },
    Cancel { ticket: usize },
    Reschedule { ticket: usize, slot: usize },
    Capacity { slot: usize, capacity: i64 },
    Close { slot: usize },
    Reopen { slot: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..TICKETS, 0..SLOTS).prop_map(|(ticket, slot)| Op::Reserve { ticket, slot }),
        2 => (0..TICKETS).prop_map(|ticket| Op::Cancel { ticket }),
        2 => (0..TICKETS, 0..SLOTS).prop_map(|(ticket, slot)| Op::Reschedule { ticket, slot }),
        2 => (0..SLOTS, 1i64..5).prop_map(|(slot, capacity)| Op::Capacity { slot, capacity }),
        1 => (0..SLOTS).prop_map(|slot| Op::Close { slot }),
        1 => (0..SLOTS).prop_map(|slot| Op::Reopen { slot }),
    ]
}

fn live_reservations(f: &Fixture, slot: &Slot) -> i64 {
    let conn = rusqlite::Connection::open(f.db_path()).unwrap();
    conn.query_row(
        "SELECT count(*) FROM ticket_reservations WHERE slot_id = ?1 AND status <> 'CANCELLED'",
        [slot.id.to_string()],
        |r| r.get(0),
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn counts_stay_consistent(ops in proptest::collection::vec(op(), 1..40)) {
        let f = Fixture::new();
        let slots: Vec<Slot> = (0..SLOTS)
            .map(|i| f.slot(&format!("2025-12-0{}", i + 1), "09:00", "11:00", 2))
            .collect();
        let tickets: Vec<TicketCode> = (0..TICKETS)
            .map(|i| f.ticket(&format!("T-{i}"), ActivationMode::Immediate))
            .collect();
        let reservation = |t: &TicketCode| -> Option<ReservationId> {
            f.store.reservation_for_ticket(ORQ, t).unwrap().map(|r| r.id)
        };
        for op in &ops {
            // Refusals are expected (full, closed, already reserved…); what
            // must hold is the invariant after each step, refused or not.
            let _ = match op {
                Op::Reserve { ticket, slot } => f.store.reserve_slot(ORQ, &f.request(&tickets[*ticket], &slots[*slot]), now()).map(|_| ()),
                Op::Cancel { ticket } => match reservation(&tickets[*ticket]) {
                    Some(id) => f.store.cancel_reservation(ORQ, id, ChangedBy::Staff, now()).map(|_| ()),
                    None => Ok(()),
                },
                Op::Reschedule { ticket, slot } => match reservation(&tickets[*ticket]) {
                    Some(id) => f.store.reschedule_reservation(ORQ, id, slots[*slot].id, ChangedBy::Staff, now()).map(|_| ()),
                    None => Ok(()),
                },
                Op::Capacity { slot, capacity } => f.store.update_slot(ORQ, slots[*slot].id, SlotChange { total_capacity: Some(*capacity), status: None }, now()).map(|_| ()),
                Op::Close { slot } => f.store.update_slot(ORQ, slots[*slot].id, SlotChange { total_capacity: None, status: Some(SlotStatus::Closed) }, now()).map(|_| ()),
                Op::Reopen { slot } => f.store.update_slot(ORQ, slots[*slot].id, SlotChange { total_capacity: None, status: Some(SlotStatus::Active) }, now()).map(|_| ()),
            };
            for s in &slots {
                let s = f.store.get_slot(ORQ, s.id).unwrap();
                prop_assert_eq!(s.booked_count, live_reservations(&f, &s), "after {:?}", op);
                prop_assert!(s.booked_count <= s.total_capacity, "after {:?}: {:?}", op, s);
                prop_assert_eq!(s.available_count, s.total_capacity - s.booked_count);
                let full = s.booked_count >= s.total_capacity;
                prop_assert_eq!(s.status == SlotStatus::Full, full && s.status != SlotStatus::Closed, "after {:?}: {:?}", op, s);
                if s.status != SlotStatus::Closed {
                    prop_assert_eq!(s.status == SlotStatus::Full, full, "after {:?}: {:?}", op, s);
                }
            }
        }
    }
}
