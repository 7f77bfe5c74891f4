//! Uploaded batches take one advisory lock per device batch
//! (`DEVICE_BATCH_LOCK`, keyed by the device id), not one per event: a
//! device's batch waits while that device's lock is held elsewhere (a
//! replay racing its first upload on another instance), another device's
//! batch does not, and the replay then answers `duplicate`.

mod common;

use std::time::Duration;

use entrada_domain::sync::protocol::{Event, EventStatus};
use entrada_store::conformance::{now, ORQ};
use entrada_store::{SyncStore, VenueStore};
use entrada_store_pg::DEVICE_BATCH_LOCK;

fn batch(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| Event {
            event_id: uuid::Uuid::now_v7(),
            kind: "verify".into(),
            payload: serde_json::json!({ "ticket_code": format!("NOPE-{i}") }),
            operator_id: None,
            device_time: now(),
        })
        .collect()
}

#[test]
fn a_batch_waits_for_its_devices_lock_only() {
    let Some(store) = common::fresh() else { return };
    let url = common::url().unwrap();
    let venue = store.add_venue(ORQ, "Zoo", "UTC", now()).unwrap();
    let (_, a) = store.add_device(ORQ, venue.id, "Gate A", now()).unwrap();
    let (_, b) = store.add_device(ORQ, venue.id, "Gate B", now()).unwrap();
    let (for_a, for_b) = (batch(20), batch(20));
    let mut holder = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    holder
        .execute(
            "SELECT pg_advisory_lock($1, $2::int)",
            &[&DEVICE_BATCH_LOCK, &(a.device_id as i32)],
        )
        .unwrap();
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| store.apply_events(&a, &for_a, now(), now()));
        // Gate B's batch is not held up by gate A's lock.
        assert_eq!(
            store.apply_events(&b, &for_b, now(), now()).unwrap().len(),
            20
        );
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            !waiting.is_finished(),
            "gate A's batch waits for its device's lock"
        );
        holder
            .execute(
                "SELECT pg_advisory_unlock($1, $2::int)",
                &[&DEVICE_BATCH_LOCK, &(a.device_id as i32)],
            )
            .unwrap();
        assert_eq!(waiting.join().unwrap().unwrap().len(), 20);
    });
    // The replay of gate A's batch: every event a duplicate.
    let again = store.apply_events(&a, &for_a, now(), now()).unwrap();
    assert!(
        again.iter().all(|r| r.status == EventStatus::Duplicate),
        "{again:?}"
    );
}
