//! Issue 13, session 31: the first sync of a new gate, 100,000 tickets (each
//! reserved, so 200,000 changes and more), from a PostgreSQL server and from a
//! SQLite server, in one run on the same machine:
//!
//! 1. `entrada sync --once` (a real process) against an in-process server
//!    on 127.0.0.1, the wall time (target ≤ 10 s);
//! 2. the server's side alone: the same pages read again through the store
//!    (`changes_since`, page size 2,000): the first page, the median page and
//!    the sum.
//!
//! The reservations are seeded by bulk SQL in transactions of 10,000 (the
//! feed's triggers log them as the store's writes would), not through
//! `reserve_slot` one by one: that took 250–350 s on PostgreSQL (pg_http) and
//! is not what this measures.
//!
//!   export ENTRADA_TEST_PG=$(scripts/pg.sh start)
//! The servers (with the feed numberer `entrada serve` runs, unless
//! `--cold`) are up while the data is imported, and the sync starts once
//! nothing is left to number.
//!
//!   cargo bench -p entrada --bench first_sync [-- --tickets N] [--only pg|sqlite] [--cold] [--page-size N]
//!
//! `ENTRADA_BIN=path` runs that `entrada` for the sync instead of this
//! build's (to compare two builds' gates against the same server).
//! `--page-size N` is given to `entrada sync` (its default otherwise) and
//! used by the fetch-only pass (2,000 otherwise). Besides the wall time, the
//! sync's CPU time: the gate process's (user + system), and this process's
//! (the server, in-process) over the same span; PostgreSQL's own is not in
//! either.
//!
//! `--bins NAME=PATH,NAME=PATH,…` (with `--only`): after one seeding, one
//! first sync per entry, in the order given, each a new gate database and
//! that `entrada` (the load average at each run's start is printed): the
//! builds alternated against the same seeded server, the seeding (1.5–3
//! minutes at 100,000 tickets on PostgreSQL) paid once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveTime, Utc};
use entrada::domain::{ActivationMode, NewSlot, NewTicket, Orq, VenueId};
use entrada::store::{ServerStore, Store};
use entrada_store_pg::{PgOptions, PgStore};

#[path = "../tests/common/pg.rs"]
mod pg;

const ORQ: Orq = Orq(1);
const CHUNK: usize = 10_000;
const EMAIL: &str = "bench@example.com";
const PHONE: &str = "+34600000001";

fn code(i: usize) -> String {
    format!("S-{i:06}")
}

/// A venue, an all-day slot tomorrow, `n` tickets (through the store);
/// returns the venue and the slot's id.
fn seed_common(s: &dyn ServerStore, n: usize) -> (VenueId, String) {
    let now = Utc::now();
    let venue = s.add_venue(ORQ, "Bench", "UTC", now).unwrap();
    s.add_operator(
        ORQ,
        entrada::domain::Role::Operator,
        "Bench gate",
        None,
        now,
    )
    .unwrap();
    let slot = s
        .create_slot(
            ORQ,
            &NewSlot {
                venue_id: venue.id,
                date: (now + chrono::Duration::days(1)).date_naive(),
                start_time: NaiveTime::MIN,
                end_time: NaiveTime::from_hms_opt(23, 59, 59).unwrap(),
                total_capacity: 10_000_000,
            },
            now,
        )
        .unwrap();
    let tickets: Vec<NewTicket> = (0..n)
        .map(|i| NewTicket::plain(&code(i), ActivationMode::Immediate).unwrap())
        .collect();
    for chunk in tickets.chunks(5_000) {
        s.insert_tickets(ORQ, chunk, now).unwrap();
    }
    (venue.id, slot.id.to_string())
}

fn pg_store(url: &str) -> Arc<dyn ServerStore> {
    Arc::new(
        PgStore::connect(
            url,
            PgOptions {
                pool_size: 8,
                connect_timeout: Duration::from_secs(30),
                ..PgOptions::default()
            },
        )
        .unwrap(),
    )
}

fn seed_pg(store: &dyn ServerStore, url: &str, n: usize) -> String {
    let (venue, slot) = seed_common(store, n);
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let slot: uuid::Uuid = slot.parse().unwrap();
    for from in (0..n).step_by(CHUNK) {
        let codes: Vec<String> = (from..(from + CHUNK).min(n)).map(code).collect();
        let mut tx = c.transaction().unwrap();
        tx.execute(
            "INSERT INTO ticket_reservations (id, ticket_id, slot_id, customer_email, customer_phone, \
             reserved_at, status, orq, created_at, updated_at) \
             SELECT gen_random_uuid(), c, $1, $2, $3, now(), 'RESERVED', $4, now(), now() FROM unnest($5::text[]) c",
            &[&slot, &EMAIL, &PHONE, &ORQ.0, &codes],
        )
        .unwrap();
        tx.execute(
            "UPDATE tickets SET status = 'RESERVED', customer_email = $1, customer_phone = $2, \
             reserved_at = now(), updated_at = now() WHERE ticket_code = ANY($3)",
            &[&EMAIL, &PHONE, &codes],
        )
        .unwrap();
        tx.execute(
            "UPDATE reservation_slots SET booked_count = booked_count + $1 WHERE id = $2",
            &[&(codes.len() as i64), &slot],
        )
        .unwrap();
        tx.commit().unwrap();
    }
    store
        .add_device(ORQ, venue, "Bench gate", Utc::now())
        .unwrap()
        .0
}

fn seed_sqlite(store: &dyn ServerStore, path: &std::path::Path, n: usize) -> String {
    let (venue, slot) = seed_common(store, n);
    let mut c = rusqlite::Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(30)).unwrap();
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    for from in (0..n).step_by(CHUNK) {
        let tx = c.transaction().unwrap();
        {
            let mut ins = tx
                .prepare(
                    "INSERT INTO ticket_reservations (id, ticket_id, slot_id, customer_email, customer_phone, \
                     reserved_at, status, orq, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'RESERVED', ?7, ?6, ?6)",
                )
                .unwrap();
            let mut upd = tx
                .prepare(
                    "UPDATE tickets SET status = 'RESERVED', customer_email = ?1, customer_phone = ?2, \
                     reserved_at = ?3, updated_at = ?3 WHERE ticket_code = ?4",
                )
                .unwrap();
            for i in from..(from + CHUNK).min(n) {
                let id = uuid::Uuid::now_v7().to_string();
                ins.execute(rusqlite::params![
                    id,
                    code(i),
                    slot,
                    EMAIL,
                    PHONE,
                    now,
                    ORQ.0
                ])
                .unwrap();
                upd.execute(rusqlite::params![EMAIL, PHONE, now, code(i)])
                    .unwrap();
            }
        }
        tx.execute(
            "UPDATE reservation_slots SET booked_count = booked_count + ?1 WHERE id = ?2",
            rusqlite::params![(CHUNK.min(n - from)) as i64, slot],
        )
        .unwrap();
        tx.commit().unwrap();
    }
    drop(c);
    store
        .add_device(ORQ, venue, "Bench gate", Utc::now())
        .unwrap()
        .0
}

/// One instance on 127.0.0.1:0, on `rt`, with the feed numberer that
/// `entrada serve` runs (unless `cold`); its base URL.
fn start(rt: &tokio::runtime::Runtime, store: Arc<dyn ServerStore>, cold: bool) -> String {
    if !cold {
        let _guard = rt.enter();
        entrada::api::spawn_feed_numberer(store.clone(), entrada::api::FEED_NUMBERING_PERIOD);
    }
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let state = entrada::api::AppState::new(store, 0);
    let shutdown = state.shutdown.clone();
    let app = entrada::api::router(state, None);
    rt.spawn(async move {
        let _ = entrada::api::serve(listener, app, shutdown).await;
    });
    format!("http://{addr}")
}

/// CPU seconds (user + system) of this process and of its children waited
/// for, from `/proc/self/stat` (clock ticks of 1/100 s).
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command's closing parenthesis, from field 3.
    let fields: Vec<f64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|f| f.parse().unwrap_or(0.0))
                .collect()
        })
        .unwrap_or_default();
    let field = |n: usize| fields.get(n - 3).copied().unwrap_or(0.0) / 100.0;
    (field(14) + field(15), field(16) + field(17))
}

/// `entrada sync --once` into a new gate database; wall time, changes
/// pulled, and the CPU seconds of the gate process and of this process
/// (the server) meanwhile.
fn first_sync(
    base: &str,
    token: &str,
    n: usize,
    page_size: Option<&str>,
    bin: Option<&str>,
) -> (Duration, i64, f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let device_db = dir.path().join("gate.db");
    let (own, children) = cpu_seconds();
    let started = Instant::now();
    // `ENTRADA_BIN`: another build's CLI (a before/after run of two builds).
    let bin = bin.map(str::to_string).unwrap_or_else(|| {
        std::env::var("ENTRADA_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_entrada").into())
    });
    let mut sync = std::process::Command::new(bin);
    sync.args(["sync", "--server", base, "--token", token, "--once"]);
    if let Some(size) = page_size {
        sync.args(["--page-size", size]);
    }
    let out = sync
        .arg("--db")
        .arg(&device_db)
        .env("ENTRADA_LOG", "warn")
        .env_remove("ENTRADA_DB")
        .output()
        .unwrap();
    let took = started.elapsed();
    let (own_after, children_after) = cpu_seconds();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(
        out.stdout
            .split(|b| *b == b'\n')
            .find(|l| !l.is_empty())
            .unwrap(),
    )
    .unwrap();
    let tickets: i64 = rusqlite::Connection::open(&device_db)
        .unwrap()
        .query_row("SELECT count(*) FROM tickets", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tickets as usize, n, "the gate holds every ticket");
    (
        took,
        answer["round"]["pulled"].as_i64().unwrap_or(0),
        children_after - children,
        own_after - own,
    )
}

/// `--bins`: one first sync per `NAME=PATH`, in order, against the same
/// seeded servers; a row per run with the load average at its start.
fn alternate(
    engines: &[(&str, Arc<dyn ServerStore>, String, String)],
    bins: &str,
    n: usize,
    page_size: Option<&str>,
) {
    println!("| run | build | engine | load (1 min) | first sync | gate CPU | server CPU |");
    println!("| ---: | --- | --- | ---: | ---: | ---: | ---: |");
    for (k, entry) in bins.split(',').enumerate() {
        let (label, path) = entry.split_once('=').expect("--bins NAME=PATH,…");
        for (name, _, token, base) in engines {
            let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
            let load = load.split_whitespace().next().unwrap_or("?").to_string();
            let (took, _, gate_cpu, server_cpu) = first_sync(base, token, n, page_size, Some(path));
            println!(
                "| {} | {label} | {name} | {load} | {:.2} s | {gate_cpu:.2} s | {server_cpu:.2} s |",
                k + 1,
                took.as_secs_f64()
            );
        }
    }
}

/// The floor of a first sync: the same pages fetched over HTTP and parsed,
/// one after the other, not applied.
fn fetch_only(base: &str, token: &str, page_size: &str) -> Duration {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let started = Instant::now();
        let mut cursor = 0i64;
        loop {
            let page: entrada::sync::protocol::ChangePage = http
                .get(format!("{base}/api/sync/changes"))
                .query(&[("cursor", cursor.to_string()), ("limit", page_size.into())])
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            cursor = page.next_cursor;
            if !page.has_more {
                break;
            }
        }
        started.elapsed()
    })
}

/// Every page again through the store: (first page, median page, sum, pages).
fn walk(s: &dyn ServerStore, venue: VenueId) -> (f64, f64, f64, usize) {
    let mut cursor = 0;
    let mut times = Vec::new();
    loop {
        let t = Instant::now();
        let page = s
            .changes_since(ORQ, venue, cursor, 2000, Utc::now())
            .unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        cursor = page.next_cursor;
        if !page.has_more {
            break;
        }
    }
    let first = times[0];
    let sum: f64 = times.iter().sum();
    let pages = times.len();
    times.sort_by(f64::total_cmp);
    (first, times[pages / 2], sum, pages)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let n: usize = arg("--tickets").map_or(100_000, |v| v.parse().unwrap());
    let only = arg("--only");
    let (want_pg, want_sqlite) = match only.as_deref() {
        Some("pg") => (true, false),
        Some("sqlite") => (false, true),
        _ => (true, true),
    };
    // `--cold`: no feed numberer (the servers before session 31 had none):
    // the first pull numbers the whole import.
    let cold = args.iter().any(|a| a == "--cold");
    let page_size = arg("--page-size");
    let cluster = if want_pg { pg::pg_url() } else { None };
    let db = cluster
        .as_ref()
        .map(|c| pg::FreshDb::new(c, "bench_first_sync"));
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();

    // The servers run while the data is imported, as they would.
    let mut engines: Vec<(&str, Arc<dyn ServerStore>, String, String)> = Vec::new();
    if let Some(db) = &db {
        let s = pg_store(&db.url);
        let base = start(&rt, s.clone(), cold);
        let t = Instant::now();
        let token = seed_pg(s.as_ref(), &db.url, n);
        eprintln!(
            "PostgreSQL: seeded {n} tickets + reservations in {:.1?}",
            t.elapsed()
        );
        engines.push(("PostgreSQL", s, token, base));
    }
    if want_sqlite {
        let path = dir.path().join("server.db");
        let s: Arc<dyn ServerStore> = Arc::new(Store::open(&path).unwrap());
        let base = start(&rt, s.clone(), cold);
        let t = Instant::now();
        let token = seed_sqlite(s.as_ref(), &path, n);
        eprintln!(
            "SQLite: seeded {n} tickets + reservations in {:.1?}",
            t.elapsed()
        );
        engines.push(("SQLite", s, token, base));
    }
    if let (Some(db), false) = (&db, cold) {
        // The numberer has caught up with the import (it runs every 200 ms).
        let t = Instant::now();
        let mut c = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
        while c
            .query_one("SELECT count(*) FROM change_log WHERE seq IS NULL", &[])
            .unwrap()
            .get::<_, i64>(0)
            > 0
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!(
            "PostgreSQL: nothing left to number {:.1?} after the import",
            t.elapsed()
        );
    }
    let keep: Vec<_> = engines.iter().map(|(_, s, _, _)| s.clone()).collect();
    let venue = VenueId(1);

    println!(
        "| first sync, {n} tickets + reservations{} | engine | value |",
        if cold { " (no feed numberer)" } else { "" }
    );
    println!("| --- | --- | ---: |");
    if let Some(bins) = arg("--bins") {
        alternate(&engines, &bins, n, page_size.as_deref());
        drop(rt);
        drop(keep);
        return;
    }
    for (name, _, token, base) in &engines {
        let (took, pulled, gate_cpu, server_cpu) =
            first_sync(base, token, n, page_size.as_deref(), None);
        eprintln!("{name}: first sync {took:.2?} ({pulled} changes)");
        println!(
            "| `entrada sync --once`, new gate ({pulled} changes) | {name} | {:.2} s |",
            took.as_secs_f64()
        );
        println!(
            "| the sync's CPU: gate process / server (this process) | {name} | {gate_cpu:.2} / {server_cpu:.2} s |"
        );
    }
    for (name, _, token, base) in &engines {
        let took = fetch_only(base, token, page_size.as_deref().unwrap_or("2000"));
        println!(
            "| the same pages fetched + parsed, not applied | {name} | {:.2} s |",
            took.as_secs_f64()
        );
    }
    for (name, s, _, _) in &engines {
        let (first, median, sum, pages) = walk(s.as_ref(), venue);
        println!(
            "| the same pages through the store ({pages}): first / median / sum | {name} | {first:.1} / {median:.1} ms / {:.2} s |",
            sum / 1000.0
        );
    }
    drop(rt);
    drop(keep);
}
