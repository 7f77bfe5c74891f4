//! 64 threads, each with its own connection to the same SQLite file, race
//! for the last 10 places of a slot: exactly 10 win, 54 hear SLOT_FULL.

mod common;

use std::sync::{Arc, Barrier};

use common::{now, Fixture, ORQ};
use entrada::domain::{ActivationMode, SlotStatus};
use entrada::store::Store;

#[test]
fn sixty_four_threads_race_for_ten_places() {
    let f = Fixture::new();
    let slot = f.slot("2025-12-01", "09:00", "11:00", 50);
    // 40 places taken beforehand, 10 remain.
    for i in 0..40 {
        let t = f.ticket(&format!("PRE-{i}"), ActivationMode::Immediate);
        f.store
            .reserve_slot(ORQ, &f.request(&t, &slot), now())
            .unwrap();
    }
    let requests: Vec<_> = (0..64)
        .map(|i| {
            f.request(
                &f.ticket(&format!("RACE-{i}"), ActivationMode::Immediate),
                &slot,
            )
        })
        .collect();
    let path = f.db_path();
    let barrier = Arc::new(Barrier::new(64));
    let handles: Vec<_> = requests
        .into_iter()
        .map(|req| {
            let (path, barrier) = (path.clone(), barrier.clone());
            std::thread::spawn(move || {
                let store = Store::open(&path).unwrap(); // a connection of its own
                barrier.wait();
                store.reserve_slot(ORQ, &req, now()).map_err(|e| e.code())
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let won = results.iter().filter(|r| r.is_ok()).count();
    let full = results.iter().filter(|r| **r == Err("SLOT_FULL")).count();
    assert_eq!(
        (won, full),
        (10, 54),
        "other errors: {:?}",
        results
            .iter()
            .filter(|r| matches!(r, Err(c) if *c != "SLOT_FULL"))
            .collect::<Vec<_>>()
    );

    let s = f.store.get_slot(ORQ, slot.id).unwrap();
    assert_eq!(
        (s.booked_count, s.available_count, s.status),
        (50, 0, SlotStatus::Full)
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let rows: i64 = conn
        .query_row(
            "SELECT count(*) FROM ticket_reservations WHERE slot_id = ?1 AND status = 'RESERVED'",
            [slot.id.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 50);
}
