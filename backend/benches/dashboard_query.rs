//! The console dashboard's store call (issue 16) on a busy day: the server
//! runs `dashboard()` once a second per open dashboard, so it must stay cheap
//! with 100,000 tickets in the database. Also times the Slots page's month
//! (`slot_board`). A real SQLite file; medians over rounds.
//!
//! `cargo bench -p entrada --bench dashboard_query [-- --quick]`
//! Full: 100,000 tickets, 90 days x 3 slots, 5,000 reservations today of
//! which 3,000 admitted over the morning. Quick: a tenth of it.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use entrada::domain::{
    ActivationMode, Contact, Gate, NewSlot, NewTicket, OperatorId, Orq, TicketCode,
};
use entrada::store::{ReserveRequest, Store};

const ORQ: Orq = Orq(1);

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 12, 1, 11, 30, 0).unwrap()
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    let (tickets, reserved, admitted) = (100_000 / scale, 5_000 / scale, 3_000 / scale);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("dashboard.db")).unwrap();
    let before = Utc.with_ymd_and_hms(2025, 11, 1, 8, 0, 0).unwrap();
    let venue = store.add_venue(ORQ, "Bench", "UTC", before).unwrap();
    // 90 days of three slots from 2025-11-15 (today, 2025-12-01, among them).
    let mut today = Vec::new();
    for d in 0..90 {
        let date = (chrono::NaiveDate::from_ymd_opt(2025, 11, 15).unwrap()
            + chrono::Duration::days(d))
        .format("%Y-%m-%d")
        .to_string();
        for (a, b) in [("09:00", "12:00"), ("12:00", "15:00"), ("15:00", "18:00")] {
            let new = NewSlot::validate(venue.id.0, &date, a, b, Some(10_000)).unwrap();
            let slot = store.create_slot(ORQ, &new, before).unwrap();
            if date == "2025-12-01" {
                today.push(slot.id);
            }
        }
    }
    for _ in 0..3 {
        store.add_device(ORQ, venue.id, "Gate", before).unwrap();
    }
    let batch: Vec<NewTicket> = (0..tickets)
        .map(|i| NewTicket::plain(&format!("D-{i}"), ActivationMode::Immediate).unwrap())
        .collect();
    for chunk in batch.chunks(5000) {
        store.insert_tickets(ORQ, chunk, before).unwrap();
    }
    let contact = Contact::validate("bench@example.com", "+12025551234").unwrap();
    for i in 0..reserved {
        let req = ReserveRequest {
            ticket: TicketCode::parse(&format!("D-{i}")).unwrap(),
            slot_id: today[i % 3],
            contact: contact.clone(),
        };
        store.reserve_slot(ORQ, &req, before).unwrap();
    }
    let gate = Gate {
        venue_id: Some(venue.id),
        ..Gate::default()
    };
    // The morning slot's holders come in from 09:00 to 11:30.
    let morning: Vec<usize> = (0..reserved)
        .filter(|i| i % 3 == 0)
        .take(admitted)
        .collect();
    for (n, i) in morning.iter().enumerate() {
        let at = Utc.with_ymd_and_hms(2025, 12, 1, 9, 0, 0).unwrap()
            + chrono::Duration::seconds((n as i64 * 9000) / morning.len() as i64);
        let code = TicketCode::parse(&format!("D-{i}")).unwrap();
        store
            .verify_ticket(ORQ, &code, OperatorId(1), &gate, at)
            .unwrap();
    }

    let rounds = if quick { 10 } else { 50 };
    let time = |f: &dyn Fn()| {
        f(); // warm the page cache and statement cache
        median(
            (0..rounds)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    t.elapsed()
                })
                .collect(),
        )
    };
    let d = store.dashboard(ORQ, now()).unwrap();
    let v = &d.venues[0];
    assert_eq!(v.slots.len(), 3);
    assert_eq!(v.slots[0].admitted_count, morning.len() as i64);
    let dashboard = time(&|| {
        store.dashboard(ORQ, now()).unwrap();
    });
    let month = time(&|| {
        store.slot_board(ORQ, venue.id, "2025-12").unwrap();
    });
    println!(
        "| dashboard_query ({tickets} tickets, {reserved} reserved today, {} admitted, {} buckets) | median |",
        morning.len(),
        v.admissions.len()
    );
    println!("|---|---|");
    println!(
        "| `dashboard()` (one org, one venue, 3 gates) | {:.2} ms |",
        dashboard.as_secs_f64() * 1e3
    );
    println!(
        "| `slot_board()` (a month: 93 slots with admitted counts) | {:.2} ms |",
        month.as_secs_f64() * 1e3
    );
}
