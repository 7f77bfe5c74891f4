//! Reservation throughput through the store's public service API on a real
//! SQLite file, next to the floor: a bare one-row INSERT transaction with the
//! same durability (WAL, an fsync before each call returns, BEGIN IMMEDIATE).
//! The store group-commits: concurrent writers share one fsync; the floor
//! is one fsync per INSERT (synchronous=FULL).
//!
//! `cargo bench -p entrada --bench store_throughput [-- --quick]`
//! Prints a Markdown table; medians over rounds, ratios within one run.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use entrada::domain::{
    ActivationMode, Contact, Gate, NewSlot, NewTicket, OperatorId, Orq, SlotId, TicketCode,
};
use entrada::store::{ReserveRequest, Store};

const ORQ: Orq = Orq(1);

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 12, 1, 10, 0, 0).unwrap()
}

struct Setup {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    slots: Vec<SlotId>,
    path: std::path::PathBuf,
}

/// A fresh file DB with `slots` all-day slots and `tickets` active tickets.
fn setup(slots: usize, tickets: usize) -> Setup {
    let dir = tempfile::tempdir_in(
        std::env::var_os("BENCH_DIR").unwrap_or_else(|| std::env::temp_dir().into()),
    )
    .unwrap();
    let path = dir.path().join("bench.db");
    let store = Store::open(&path).unwrap();
    let venue = store.add_venue(ORQ, "Bench", "UTC", now()).unwrap();
    let slots = (0..slots)
        .map(|i| {
            let new = NewSlot::validate(
                venue.id.0,
                "2025-12-01",
                &format!("{:02}:00", i % 20),
                "23:59:59",
                Some(1_000_000),
            )
            .unwrap();
            store.create_slot(ORQ, &new, now()).unwrap().id
        })
        .collect();
    let batch: Vec<NewTicket> = (0..tickets)
        .map(|i| NewTicket::plain(&format!("B-{i}"), ActivationMode::Immediate).unwrap())
        .collect();
    for chunk in batch.chunks(5000) {
        store.insert_tickets(ORQ, chunk, now()).unwrap();
    }
    Setup {
        _dir: dir,
        store: Arc::new(store),
        slots,
        path,
    }
}

fn request(i: usize, slot: SlotId) -> ReserveRequest {
    ReserveRequest {
        ticket: TicketCode::parse(&format!("B-{i}")).unwrap(),
        slot_id: slot,
        contact: Contact::validate("bench@example.com", "+12025551234").unwrap(),
    }
}

fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn bare_insert_rate(dir: &Path, n: usize) -> f64 {
    let conn = rusqlite::Connection::open(dir.join("floor.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; CREATE TABLE IF NOT EXISTS floor (id TEXT PRIMARY KEY, n INTEGER NOT NULL);").unwrap();
    let start = Instant::now();
    for i in 0..n {
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        conn.prepare_cached("INSERT INTO floor (id, n) VALUES (?1, ?2)")
            .unwrap()
            .execute(rusqlite::params![
                uuid::Uuid::now_v7().to_string(),
                i as i64
            ])
            .unwrap();
        conn.execute_batch("COMMIT").unwrap();
    }
    per_sec(n, start.elapsed())
}

fn uncontended_reserve_rate(n: usize) -> f64 {
    let s = setup(1, n);
    let start = Instant::now();
    for i in 0..n {
        s.store
            .reserve_slot(ORQ, &request(i, s.slots[0]), now())
            .unwrap();
    }
    per_sec(n, start.elapsed())
}

/// `threads` clients reserving on the same slot; `shared` = one Store (one
/// writer connection, in-process queue), else one Store per thread (separate
/// connections that meet in SQLite's lock).
fn contended_reserve_rate(n: usize, threads: usize, shared: bool) -> f64 {
    let s = setup(1, n);
    let per = n / threads;
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = if shared {
                s.store.clone()
            } else {
                Arc::new(Store::open(&s.path).unwrap())
            };
            let slot = s.slots[0];
            std::thread::spawn(move || {
                for i in t * per..(t + 1) * per {
                    store.reserve_slot(ORQ, &request(i, slot), now()).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    per_sec(per * threads, start.elapsed())
}

/// Median microseconds for one durable verify (verdict + write + fsync'd commit).
fn verify_cost_us(n: usize) -> f64 {
    let s = setup(1, n);
    for i in 0..n {
        s.store
            .reserve_slot(ORQ, &request(i, s.slots[0]), now())
            .unwrap();
    }
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let code = TicketCode::parse(&format!("B-{i}")).unwrap();
        let start = Instant::now();
        s.store
            .verify_ticket(ORQ, &code, OperatorId(1), &Gate::default(), now())
            .unwrap();
        samples.push(start.elapsed().as_secs_f64() * 1e6);
    }
    median(samples)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (n, rounds) = if quick { (200, 1) } else { (2000, 5) };
    let dir = tempfile::tempdir().unwrap();
    let mut floor = Vec::new();
    let mut solo = Vec::new();
    let mut shared8 = Vec::new();
    let mut separate8 = Vec::new();
    let mut verify = Vec::new();
    // Interleaved rounds, so machine noise hits every row alike.
    for round in 0..rounds {
        floor.push(bare_insert_rate(dir.path(), n));
        solo.push(uncontended_reserve_rate(n));
        shared8.push(contended_reserve_rate(n, 8, true));
        separate8.push(contended_reserve_rate(n, 8, false));
        verify.push(verify_cost_us(n));
        eprintln!("round {}/{rounds} done", round + 1);
    }
    let floor = median(floor);
    let row = |name: &str, rate: f64| println!("| {name} | {rate:.0} | {:.2} |", rate / floor);
    println!("store_throughput: {n} operations per measurement, median of {rounds} rounds");
    println!();
    println!("| measurement | ops/s | ratio to bare INSERT |");
    println!("|---|---:|---:|");
    row("bare INSERT transaction (floor)", floor);
    row("reserve_slot, 1 thread", median(solo));
    row("reserve_slot, 8 threads, shared Store", median(shared8));
    row("reserve_slot, 8 threads, 8 connections", median(separate8));
    let v = median(verify);
    println!(
        "| verify_ticket, 1 thread (median {v:.0} µs each) | {:.0} | {:.2} |",
        1e6 / v,
        1e6 / v / floor
    );
}
