//! Contended reservations on one hot slot, both engines side by side in one
//! run, against PostgreSQL's own floor for such a transaction measured by
//! `pgbench` in the same run (one row lock + increment + insert, same
//! client count).
//!
//!   export ENTRADA_TEST_PG=$(scripts/pg.sh start)
//!   cargo bench -p entrada-store-pg --bench hot_slot [-- RESERVATIONS CLIENTS SECONDS]
//!
//! Prints one line per measurement; the numbers go to BENCHMARKS.md.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chrono::{TimeZone, Utc};
use entrada_domain::{ActivationMode, Contact, NewSlot, NewTicket, Orq, TicketCode};
use entrada_store::{ReservationStore, ReserveRequest, SlotStore, TicketStore, VenueStore};
use entrada_store_pg::{PgOptions, PgStore};

const ORQ: Orq = Orq(1);

#[path = "common/pgbench.rs"]
mod pgbench;
use pgbench::{fresh_schema, pgbench_floor};

fn contended<S>(store: &S, n: usize, clients: usize) -> f64
where
    S: VenueStore + SlotStore + TicketStore + ReservationStore + ?Sized,
{
    let now = Utc.with_ymd_and_hms(2025, 11, 25, 10, 0, 0).unwrap();
    let venue = store.add_venue(ORQ, "Bench", "UTC", now).unwrap();
    let new =
        NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(n as i64)).unwrap();
    let slot = store.create_slot(ORQ, &new, now).unwrap();
    let tickets: Vec<NewTicket> = (0..n)
        .map(|i| NewTicket::plain(&format!("B-{i:06}"), ActivationMode::Immediate).unwrap())
        .collect();
    for batch in tickets.chunks(1000) {
        store.insert_tickets(ORQ, batch, now).unwrap();
    }
    let contact = Contact::validate("bench@example.com", "+12025551234").unwrap();
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let req = ReserveRequest {
                    ticket: TicketCode::parse(&format!("B-{i:06}")).unwrap(),
                    slot_id: slot.id,
                    contact: contact.clone(),
                };
                store.reserve_slot(ORQ, &req, now).unwrap();
            });
        }
    });
    let rate = n as f64 / start.elapsed().as_secs_f64();
    assert_eq!(store.get_slot(ORQ, slot.id).unwrap().booked_count, n as i64);
    rate
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(3000);
    let clients: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(16);
    let seconds: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    let Ok(url) = std::env::var("ENTRADA_TEST_PG") else {
        eprintln!("hot_slot: set ENTRADA_TEST_PG (export ENTRADA_TEST_PG=$(scripts/pg.sh start))");
        return;
    };

    let dir = tempfile_dir();
    let sqlite = entrada_store::Store::open(dir.join("bench.db")).unwrap();
    let sqlite_rate = contended(&sqlite, n, clients);
    let _ = std::fs::remove_dir_all(&dir);

    let schema = fresh_schema(&url, "store");
    let pg = PgStore::connect(
        &url,
        PgOptions {
            pool_size: clients as u32,
            schema: Some(schema),
            ..PgOptions::default()
        },
    )
    .unwrap();
    let pg_rate = contended(&pg, n, clients);
    // Whether reservations shared transactions at all (group commit).
    let batches = pg.reserve_batch_counts();
    let floor = pgbench_floor(&url, clients, seconds);

    println!("hot slot, {n} reservations, {clients} clients:");
    println!("  SQLite (one Store)         {sqlite_rate:>8.0} reservations/s");
    println!("  PostgreSQL (pool {clients:>2})       {pg_rate:>8.0} reservations/s");
    println!(
        "  pgbench floor (lock+incr+insert, {clients} clients, {seconds} s) {floor:>8.0} tx/s"
    );
    println!("  PostgreSQL / floor         {:>8.2}", pg_rate / floor);
    println!(
        "  PostgreSQL batches: {} for {} reservations (mean {:.2}, largest {}, handed back {})",
        batches.batches,
        batches.items,
        batches.items as f64 / batches.batches.max(1) as f64,
        batches.largest,
        batches.handed_back
    );
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("entrada-hot-slot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
