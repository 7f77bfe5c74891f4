//! The change feed across concurrent writers: a device that pulls while
//! transactions commit out of the order they wrote in never loses an entry.
//! (With a feed position taken at write time, a slow transaction's entry
//! lands below a cursor a device already holds, and is skipped forever.)

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use entrada_store::conformance::{now, ORQ};
use entrada_store::VenueStore;
use entrada_store_pg::{FeedEntry, PgStore};

/// Inserts one slot row at `venue` in `tx` (the feed trigger logs it).
fn insert_slot(tx: &mut impl postgres::GenericClient, venue: i64, day: u32, hour: u32) -> String {
    let id = uuid::Uuid::now_v7();
    tx.execute(
        "INSERT INTO reservation_slots (id, date, start_time, end_time, venue_id, total_capacity, orq) \
         VALUES ($1, make_date(2026, 1, $2::INT), make_time($3::INT, 0, 0), make_time($3::INT + 1, 0, 0), $4, 10, 1)",
        &[&id, &(day as i32), &(hour as i32), &venue],
    )
    .unwrap();
    id.to_string()
}

/// Pulls every page after `cursor`, checking the seqs rise; returns the new cursor.
fn pull(store: &PgStore, venue: i64, cursor: i64, seen: &mut Vec<FeedEntry>) -> i64 {
    let mut cursor = cursor;
    loop {
        let page = store
            .feed_entries(ORQ, entrada_domain::VenueId(venue), cursor, 7)
            .unwrap();
        let Some(last) = page.last() else {
            return cursor;
        };
        for e in &page {
            assert!(
                e.seq > cursor,
                "seq {} at or below the cursor {cursor}",
                e.seq
            );
            cursor = e.seq;
        }
        assert_eq!(cursor, last.seq);
        seen.extend(page);
    }
}

fn slot_ids(seen: &[FeedEntry]) -> BTreeSet<String> {
    seen.iter()
        .filter(|e| e.entity == "reservation_slots")
        .map(|e| e.entity_id.clone())
        .collect()
}

#[test]
fn a_slow_writer_commits_after_a_fast_one_and_the_device_still_gets_both() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let store = PgStore::connect(&url, common::options(&schema)).unwrap();
    let venue = store.add_venue(ORQ, "Prado", "UTC", now()).unwrap().id.0;

    let mut slow_client = common::client(&url, &schema);
    let mut slow = slow_client.transaction().unwrap();
    let slow_id = insert_slot(&mut slow, venue, 1, 9); // writes first…
    let mut fast_client = common::client(&url, &schema);
    let fast_id = insert_slot(&mut fast_client, venue, 1, 12); // …commits first

    let mut seen = Vec::new();
    let cursor = pull(&store, venue, 0, &mut seen);
    slow.commit().unwrap();
    pull(&store, venue, cursor, &mut seen);

    assert_eq!(
        slot_ids(&seen),
        BTreeSet::from([slow_id, fast_id]),
        "every committed slot reaches the device"
    );
}

#[test]
fn interleaved_slow_and_fast_writers_while_a_device_pulls_lose_nothing() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let store = Arc::new(PgStore::connect(&url, common::options(&schema)).unwrap());
    let venue = store.add_venue(ORQ, "Prado", "UTC", now()).unwrap().id.0;

    const WRITERS: u32 = 6;
    const TXS: u32 = 12;
    let done = Arc::new(AtomicBool::new(false));
    let puller = {
        let (store, done) = (store.clone(), done.clone());
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut cursor = 0;
            while !done.load(Ordering::SeqCst) {
                cursor = pull(&store, venue, cursor, &mut seen);
                std::thread::sleep(Duration::from_millis(2));
            }
            // Everything has committed: one last pull drains the feed.
            pull(&store, venue, cursor, &mut seen);
            seen
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (url, schema) = (url.clone(), schema.clone());
            std::thread::spawn(move || {
                let mut client = common::client(&url, &schema);
                let mut ids = Vec::new();
                for i in 0..TXS {
                    let mut tx = client.transaction().unwrap();
                    ids.push(insert_slot(&mut tx, venue, 1 + w, 1 + i));
                    // Odd writers are slow: they hold their transaction open
                    // (a deterministic spread, 0 to 24 ms) while others commit.
                    let hold = if w % 2 == 1 { (w * 7 + i * 5) % 25 } else { 0 };
                    std::thread::sleep(Duration::from_millis(u64::from(hold)));
                    if i % 3 == 0 {
                        ids.push(insert_slot(&mut tx, venue, 1 + w, 13 + i / 3));
                    }
                    tx.commit().unwrap();
                }
                ids
            })
        })
        .collect();
    let written: BTreeSet<String> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    done.store(true, Ordering::SeqCst);
    let seen = puller.join().unwrap();

    let pulled = slot_ids(&seen);
    let missing: Vec<_> = written.difference(&pulled).collect();
    assert!(
        missing.is_empty(),
        "{} of {} committed slots never reached the device: {missing:?}",
        missing.len(),
        written.len()
    );
    // Each slot once: none was re-logged, so none comes twice.
    assert_eq!(
        seen.iter()
            .filter(|e| e.entity == "reservation_slots")
            .count(),
        written.len()
    );
}

/// A verification reaches the venue's devices: its ticket and its
/// reservation come in the feed after it, and the rows they name are the
/// verified ones. Self-contained (its own setup and pulls).
#[test]
fn a_verification_puts_the_ticket_and_its_reservation_in_the_venues_feed() {
    use entrada_domain::{
        ActivationMode, Contact, Gate, NewSlot, NewTicket, OperatorId, ReservationId,
        ReservationStatus, TicketCode, TicketStatus,
    };
    use entrada_store::{GateStore, ReservationStore, ReserveRequest, SlotStore, TicketStore};

    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let store = PgStore::connect(&url, common::options(&schema)).unwrap();
    let venue = store.add_venue(ORQ, "Prado", "UTC", now()).unwrap();
    let new = NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(10)).unwrap();
    let slot = store.create_slot(ORQ, &new, now()).unwrap();
    let t = NewTicket::plain("T-1", ActivationMode::Immediate).unwrap();
    store.insert_tickets(ORQ, &[t], now()).unwrap();
    let code = TicketCode::parse("T-1").unwrap();
    let req = ReserveRequest {
        ticket: code.clone(),
        slot_id: slot.id,
        contact: Contact::validate("john@example.com", "+12025551234").unwrap(),
    };
    let r = store.reserve_slot(ORQ, &req, now()).unwrap();
    let cursor = pull(&store, venue.id.0, 0, &mut Vec::new());

    let at_gate = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2025, 12, 1, 10, 0, 0).unwrap();
    let gate = Gate {
        venue_id: Some(venue.id),
        ..Gate::default()
    };
    store
        .verify_ticket(ORQ, &code, OperatorId(5), &gate, at_gate)
        .unwrap();
    let mut seen = Vec::new();
    pull(&store, venue.id.0, cursor, &mut seen);

    let ids = |entity: &str| -> Vec<String> {
        seen.iter()
            .filter(|e| e.entity == entity)
            .map(|e| e.entity_id.clone())
            .collect()
    };
    assert_eq!(ids("tickets"), vec![code.to_string()], "{seen:?}");
    assert_eq!(
        ids("ticket_reservations"),
        vec![r.id.0.to_string()],
        "{seen:?}"
    );
    // What a device then reads for those entries: the verified rows.
    let ticket = store
        .get_ticket(ORQ, &TicketCode::parse(&ids("tickets")[0]).unwrap())
        .unwrap();
    assert_eq!(
        (ticket.status, ticket.verified_at, ticket.verified_by),
        (TicketStatus::Verified, Some(at_gate), Some(OperatorId(5)))
    );
    let reservation_id = ReservationId(ids("ticket_reservations")[0].parse().unwrap());
    let reservation = store.get_reservation(ORQ, reservation_id).unwrap();
    assert_eq!(reservation.status, ReservationStatus::Verified);
    assert_eq!(reservation.updated_at, at_gate);
}
