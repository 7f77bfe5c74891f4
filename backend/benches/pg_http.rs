//! Issue 13, both engines side by side in one run of this binary: the same
//! phases, tickets, clients and requests on
//!
//! - PostgreSQL: two server instances on one database, 16 database
//!   connections in all (a pool of 8 each), requests spread over both;
//! - SQLite: one server instance on one file, the store opened as
//!   `entrada serve --db FILE` opens it (`Store::open`: one writer
//!   connection, read connections as needed), the shape `entrada serve`
//!   supports on one machine (one file, one process);
//!
//! driven over HTTP on 127.0.0.1 by 32 concurrent clients (16 in the
//! second verify phase, 200 in the race). PostgreSQL runs first, so its
//! hot-slot and verify phases run as in the runs before SQLite joined this
//! bench; what moved: its first sync now follows the verify phases
//! directly, and the pgbench floors run after all its phases (the hot
//! slot's floor after the verify floor's 200,000-row set-up). Its servers,
//! stores and database are gone and the cluster is checkpointed before
//! SQLite's phases start. The SQLite
//! file is in a temporary directory under /tmp. The phases, per engine:
//!
//! 1. contended reservations: every client books into one hot slot; on
//!    PostgreSQL next to pgbench's floor for that shape of transaction (one
//!    row lock + increment + insert, 16 clients) measured in the same run
//!    (target: ≥ 0.5 of the floor);
//! 2. verify-ticket: reserved tickets verified at the gate, per second and
//!    p50 / p99 latency (target on PostgreSQL: ≥ 2,000/s, p99 ≤ 20 ms), by
//!    the 32 clients and then (other tickets) by 16: as many as
//!    PostgreSQL's pooled database connections, so that they do not queue
//!    for one (32 do, and that wait is part of their latency). Little's law
//!    is about the mean: 32 clients at a 20 ms mean make 1,600/s, and
//!    2,000/s by 16 clients needs a mean of ~8 ms. On PostgreSQL next to
//!    pgbench's floor for a verify-shaped transaction (token look-up; BEGIN,
//!    the ticket locked, its reservation + slot + venue read, ticket and
//!    reservation updated and a passage inserted in one statement, COMMIT;
//!    16 clients, prepared statements with generic plans, no two on one
//!    row, no triggers, at least 10 s) measured in the same run. Both
//!    phases' ratios are to that one 16-client floor, and the floor has
//!    neither the feed's triggers nor the server's custom plans: the gap to
//!    it is not all HTTP;
//! 3. the first sync of a new gate (`entrada sync --once`, a real process)
//!    from the first instance once 100,000 more tickets are in the org
//!    (target: ≤ 10 s). On PostgreSQL both instances run the feed
//!    numberer, as `entrada serve` does there; the seeded import is
//!    numbered before the phases (what that numberer does while an import
//!    goes on), its time printed on a row of its own (SQLite numbers each
//!    entry as it writes it: nothing is left to number);
//! 4. the race for the last 50 places (as `tests/pg_instances.rs` runs it
//!    on two `entrada serve` processes): a slot of 60 places, 10 booked,
//!    200 clients released together by a barrier (half to each PostgreSQL
//!    instance; all to the one SQLite instance), a 503 tried again as a
//!    client would: exactly 50 booked, 150 SLOT_FULL, the slot at 60
//!    (asserted).
//!
//! The pgbench floors run after PostgreSQL's phases, with its servers
//! stopped: they are PostgreSQL's rows only ("—" for SQLite).
//!
//!   export ENTRADA_TEST_PG=$(scripts/pg.sh start)
//!   cargo bench -p entrada --bench pg_http [-- --quick]
//!
//! Each instance is `entrada::api::serve` with its own store in this
//! process (as `entrada serve` processes would be, without their start-up;
//! rate limiting off); a fresh PostgreSQL database and a fresh SQLite file
//! per run, dropped at the end. Without `ENTRADA_TEST_PG` the bench is
//! skipped (both engines). Prints a Markdown table for BENCHMARKS.md.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveTime, Utc};
use entrada::domain::{ActivationMode, Contact, NewSlot, NewTicket, Orq, Role, TicketCode};
use entrada::store::{ServerStore, Store};
use entrada_store_pg::{PgOptions, PgStore};
use serde_json::{json, Value};

#[path = "../tests/common/pg.rs"]
mod pg;
#[path = "../../crates/store-pg/benches/common/pgbench.rs"]
mod pgbench;

const ORQ: Orq = Orq(1);
/// The requests' content type (their bodies are JSON text).
const JSON: reqwest::header::HeaderValue =
    reqwest::header::HeaderValue::from_static("application/json");
const CLIENTS: usize = 32;
/// The second verify-ticket phase's clients: one per database connection.
const FEW_CLIENTS: usize = 16;

/// One instance on 127.0.0.1:0, on the server runtime, with the feed
/// numberer if `numberer` (`entrada serve` runs it on PostgreSQL only); its
/// base URL. `PG_HTTP_NUMBERING_MS`: another period for that numberer (a
/// diagnostic: whether its rounds show in the verify phases' tail), instead
/// of `entrada serve`'s.
fn start(rt: &tokio::runtime::Runtime, store: Arc<dyn ServerStore>, numberer: bool) -> String {
    let period = std::env::var("PG_HTTP_NUMBERING_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(entrada::api::FEED_NUMBERING_PERIOD, Duration::from_millis);
    if numberer {
        let _guard = rt.enter();
        entrada::api::spawn_feed_numberer(store.clone(), period);
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

/// `n` requests made by `clients` tasks, each a POST of JSON to one of
/// `urls` (one per instance, see `urls`: request `i` goes to
/// `urls[i % urls.len()]`); `make(i)` is request `i`'s body. Returns the
/// wall time and each request's latency; panics on an answer other than
/// `expect` (a 503 is retried, and its time counts).
///
/// The load generator shares the cores with the servers and PostgreSQL, so
/// it does per request only what a client must: the URLs and the
/// `Authorization` header are made once, the body is written as text by
/// `make` (no `serde_json::Value` tree built and serialized each time), the
/// answer read as bytes (no charset decoding). Still real HTTP/1.1 over TCP
/// with the same JSON bodies and the bearer token, timed from send to answer.
fn drive(
    client_rt: &tokio::runtime::Runtime,
    urls: Vec<reqwest::Url>,
    token: &str,
    clients: usize,
    n: usize,
    expect: u16,
    make: impl Fn(usize) -> String + Send + Sync + 'static,
) -> (Duration, Vec<Duration>) {
    let next = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicUsize::new(0));
    let make = Arc::new(make);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let urls = Arc::new(urls);
    let mut bearer = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    bearer.set_sensitive(true);
    let started = Instant::now();
    let latencies = client_rt.block_on(async {
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (next, make, http) = (next.clone(), make.clone(), http.clone());
                let retries = retries.clone();
                let (urls, bearer) = (urls.clone(), bearer.clone());
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return mine;
                        }
                        let body = make(i);
                        let url = &urls[i % urls.len()];
                        let t = Instant::now();
                        let give_up = t + Duration::from_secs(60);
                        loop {
                            let res = http
                                .post(url.clone())
                                .header(reqwest::header::AUTHORIZATION, bearer.clone())
                                .header(reqwest::header::CONTENT_TYPE, JSON)
                                .body(body.clone())
                                .send()
                                .await
                                .unwrap();
                            let status = res.status().as_u16();
                            let answer = res.bytes().await.unwrap();
                            let text = || String::from_utf8_lossy(&answer);
                            if status == 503 {
                                // No connection free in time: again, as a
                                // client would (counted in the latency).
                                assert!(Instant::now() < give_up, "503 for a minute: {}", text());
                                retries.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                continue;
                            }
                            assert_eq!(status, expect, "{url}: {}", text());
                            break;
                        }
                        mine.push((t.elapsed(), started.elapsed()));
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let took = started.elapsed();
    timeline(clients, retries.load(Ordering::Relaxed), &latencies);
    (took, latencies.into_iter().map(|(l, _)| l).collect())
}

/// `path` on each instance at `bases`, parsed once for a phase's requests.
fn urls(bases: &[String], path: &str) -> Vec<reqwest::Url> {
    bases
        .iter()
        .map(|base| reqwest::Url::parse(&format!("{base}{path}")).unwrap())
        .collect()
}

/// With `PG_HTTP_TIMELINE` set: the phase's answers per 100 ms and the
/// slowest latency among them, on stderr (where a phase stalled, and
/// when), and how many 503s its clients retried (each after 20 ms).
fn timeline(clients: usize, retries: usize, answers: &[(Duration, Duration)]) {
    if std::env::var_os("PG_HTTP_TIMELINE").is_none() {
        return;
    }
    let buckets = answers
        .iter()
        .map(|(_, at)| at.as_millis() as usize / 100)
        .max()
        .map_or(0, |b| b + 1);
    let mut per = vec![(0usize, Duration::ZERO); buckets];
    for (latency, at) in answers {
        let b = &mut per[at.as_millis() as usize / 100];
        b.0 += 1;
        b.1 = b.1.max(*latency);
    }
    let line: Vec<String> = per
        .iter()
        .map(|(n, max)| format!("{n}/{}", max.as_millis()))
        .collect();
    eprintln!(
        "timeline {clients} clients, {} UTC, {retries} retried 503s, per 100 ms answers/max ms: {}",
        Utc::now().format("%H:%M:%S%.3f"),
        line.join(" ")
    );
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// The phases' sizes: `--quick` (CI's smoke run) or the full run.
#[derive(Clone, Copy)]
struct Sizes {
    reservations: usize,
    verifications: usize,
    /// The hot-slot pgbench floor's duration (the verify floor's is ≥ 10 s).
    seconds: u32,
    more_tickets: usize,
}

/// One engine's column: what its phases measured.
struct Column {
    reserve_rate: f64,
    /// (clients, answers per second, sorted latencies): `CLIENTS`, then
    /// `FEW_CLIENTS`.
    verify: [(usize, f64, Vec<Duration>); 2],
    first_sync: Duration,
    tickets_on_gate: i64,
    pulled: i64,
    numbering: Duration,
    numbered: i64,
    race: Race,
}

/// The race for the last 50 places: the racers' answers and the slot after.
struct Race {
    booked: usize,
    full: usize,
    other: usize,
    booked_count: i64,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes = if quick {
        Sizes {
            reservations: 300,
            verifications: 1_000,
            seconds: 2,
            more_tickets: 3_000,
        }
    } else {
        Sizes {
            reservations: 3_000,
            verifications: 10_000,
            seconds: 5,
            more_tickets: 100_000,
        }
    };
    let Some(cluster) = pg::pg_url() else {
        return;
    };

    // PostgreSQL first, as in the runs before SQLite joined this bench (its
    // numbers stay comparable with theirs); its servers, stores and database
    // are gone, and the cluster checkpointed, before SQLite's phases start,
    // so that its background writes do not land in them.
    let (pg, floor, verify_floor) = {
        let db = pg::FreshDb::new(&cluster, "bench_http");
        let pg = phases(
            "PostgreSQL",
            vec![pg_store(&db.url), pg_store(&db.url)],
            true,
            sizes,
        );
        let verify_floor = verify_floor(&db.url, FEW_CLIENTS, sizes.seconds.max(10));
        let floor = pgbench::pgbench_floor(&db.url, 16, sizes.seconds);
        (pg, floor, verify_floor)
    };
    if let Ok(mut admin) = postgres::Client::connect(&cluster, postgres::NoTls) {
        let _ = admin.batch_execute("CHECKPOINT");
    }
    // `entrada serve --db FILE`: one instance, the file opened as
    // `open_server` opens it (`Store::open`), no feed numberer (SQLite
    // numbers the feed as it writes). The file on the same disk as the
    // cluster (/tmp).
    let dir = tempfile::tempdir().unwrap();
    let file: Arc<dyn ServerStore> = Arc::new(Store::open(dir.path().join("server.db")).unwrap());
    let sqlite = phases("SQLite", vec![file], false, sizes);

    let Sizes {
        reservations,
        verifications,
        seconds,
        ..
    } = sizes;
    println!(
        "| HTTP clients on 127.0.0.1 ({CLIENTS}, {FEW_CLIENTS} in the second verify phase, 200 in the race); the same tickets, clients and requests on both engines | \
         PostgreSQL: 2 instances on one database, pool of 8 connections each | \
         SQLite: 1 instance on one file (`entrada serve --db FILE`: one writer connection, readers as needed, 8 kept) | target |"
    );
    println!("| --- | ---: | ---: | --- |");
    println!(
        "| contended reservations, one hot slot ({reservations}, {CLIENTS} clients) | {:.0}/s ({:.2} of the floor) | {:.0}/s | PostgreSQL: ≥ 0.5 of the floor |",
        pg.reserve_rate,
        pg.reserve_rate / floor,
        sqlite.reserve_rate
    );
    println!(
        "| pgbench floor (lock + increment + insert, 16 clients, {seconds} s) | {floor:.0} tx/s | — | — |"
    );
    for (p, s) in pg.verify.iter().zip(&sqlite.verify) {
        let clients = p.0;
        println!(
            "| verify-ticket ({verifications}, {clients} clients) | {:.0}/s ({:.2} of the {FEW_CLIENTS}-client verify floor) | {:.0}/s | PostgreSQL: ≥ 2,000/s |",
            p.1,
            p.1 / verify_floor,
            s.1
        );
        println!(
            "| verify-ticket latency p50 / p99 ({clients} clients) | {:.1} / {:.1} ms | {:.1} / {:.1} ms | PostgreSQL: p99 ≤ 20 ms |",
            percentile(&p.2, 0.5),
            percentile(&p.2, 0.99),
            percentile(&s.2, 0.5),
            percentile(&s.2, 0.99)
        );
    }
    println!(
        "| pgbench verify floor (verify-shaped transaction, {FEW_CLIENTS} clients, {} s) | {verify_floor:.0} tx/s | — | — |",
        seconds.max(10)
    );
    assert_eq!(pg.tickets_on_gate, sqlite.tickets_on_gate);
    println!(
        "| first sync of a new gate from the first instance: {} tickets (`sync --once` wall time; changes pulled) | {:.2} s ({} changes) | {:.2} s ({} changes) | ≤ 10 s |",
        pg.tickets_on_gate,
        pg.first_sync.as_secs_f64(),
        pg.pulled,
        sqlite.first_sync.as_secs_f64(),
        sqlite.pulled
    );
    println!(
        "| the seeded import numbered by the feed's numberer, before the phases (PostgreSQL: {} entries; SQLite numbers as it writes) | {:.2} s | — ({} entries) | — |",
        pg.numbered,
        pg.numbering.as_secs_f64(),
        sqlite.numbered
    );
    let race = |r: &Race| {
        format!(
            "{} booked (201) / {} SLOT_FULL (409) / {} other; slot {}/60",
            r.booked, r.full, r.other, r.booked_count
        )
    };
    println!(
        "| 200 clients released together for the last 50 places (slot of 60, 10 booked; half to each PostgreSQL instance, all to the SQLite one; 503 retried) | {} | {} | exactly 50 booked, slot 60/60 |",
        race(&pg.race),
        race(&sqlite.race)
    );
}

fn pg_store(url: &str) -> Arc<dyn ServerStore> {
    Arc::new(
        PgStore::connect(
            url,
            PgOptions {
                pool_size: 8,
                // The rest as `entrada serve` has it (a 5 s wait for a
                // pooled connection; none waited that long in any run).
                ..PgOptions::default()
            },
        )
        .unwrap(),
    )
}

/// Every phase on one engine: `stores` are its instances (one server
/// each; requests spread over them), `numberer` whether each runs the
/// feed numberer (`entrada serve` does on PostgreSQL only). Seeds through
/// the first instance's store; the same tickets, slots and requests
/// whatever the engine.
fn phases(engine: &str, stores: Vec<Arc<dyn ServerStore>>, numberer: bool, sizes: Sizes) -> Column {
    let Sizes {
        reservations,
        verifications,
        more_tickets,
        ..
    } = sizes;
    let a = stores[0].clone();

    // Seed through instance A's store: a hot slot 30 days ahead, ten
    // all-day slots today (starting 00:00 to 00:09: inside the default early
    // grace whenever the bench runs; ten, so seeding is not one hot slot),
    // the tickets, the verified ones reserved for today.
    let now = Utc::now();
    let venue = a.add_venue(ORQ, "Bench", "UTC", now).unwrap();
    let operator = a
        .add_operator(ORQ, Role::Operator, "Bench gate", None, now)
        .unwrap();
    let slot = |date: chrono::NaiveDate, i: usize, capacity: i64| {
        a.create_slot(
            ORQ,
            &NewSlot {
                venue_id: venue.id,
                date,
                start_time: NaiveTime::from_hms_opt(0, 0, 0).unwrap()
                    + chrono::Duration::minutes(i as i64),
                end_time: NaiveTime::from_hms_opt(23, 59, 59).unwrap(),
                total_capacity: capacity,
            },
            now,
        )
        .unwrap()
        .id
    };
    let hot = slot(
        (now + chrono::Duration::days(30)).date_naive(),
        0,
        10_000_000,
    );
    // Room for both verify phases' tickets (V and W).
    let per_slot = (2 * verifications).div_ceil(10);
    let today: Vec<_> = (0..10)
        .map(|i| slot(now.date_naive(), i, per_slot as i64))
        .collect();
    let code = |prefix: &str, i: usize| format!("{prefix}-{i}");
    for (prefix, n) in [
        ("R", reservations),
        ("V", verifications),
        ("W", verifications),
    ] {
        let batch: Vec<NewTicket> = (0..n)
            .map(|i| NewTicket::plain(&code(prefix, i), ActivationMode::Immediate).unwrap())
            .collect();
        for chunk in batch.chunks(5_000) {
            a.insert_tickets(ORQ, chunk, now).unwrap();
        }
    }
    // `n` tickets `{prefix}-i` reserved over `slots` by 8 threads (a gate
    // holds its venue's reserved tickets: these are what it syncs).
    let contact = Contact::validate("bench@example.com", "+34600000001").unwrap();
    let reserve_all = |prefix: &str, n: usize, slots: &[entrada::domain::SlotId]| {
        let per_slot = n.div_ceil(slots.len());
        let seeded = Instant::now();
        std::thread::scope(|scope| {
            for t in 0..8 {
                let (a, contact) = (&a, &contact);
                scope.spawn(move || {
                    for i in (t..n).step_by(8) {
                        let req = entrada::store::ReserveRequest {
                            ticket: TicketCode::parse(&code(prefix, i)).unwrap(),
                            slot_id: slots[i / per_slot],
                            contact: contact.clone(),
                        };
                        a.reserve_slot(ORQ, &req, now).unwrap();
                    }
                });
            }
        });
        eprintln!(
            "{engine}: seeded {n} reservations in {:.1?}",
            seeded.elapsed()
        );
    };
    reserve_all("V", verifications, &today);
    reserve_all("W", verifications, &today);
    let admin = a.create_token(ORQ, Role::Admin, None, None, now).unwrap().0;
    let gate = a
        .create_token(ORQ, Role::Operator, Some(operator.id.0), None, now)
        .unwrap()
        .0;
    let device_token = a.add_device(ORQ, venue.id, "Bench gate", now).unwrap().0;
    let more: Vec<NewTicket> = (0..more_tickets)
        .map(|i| NewTicket::plain(&code("S", i), ActivationMode::Immediate).unwrap())
        .collect();
    for chunk in more.chunks(5_000) {
        a.insert_tickets(ORQ, chunk, now).unwrap();
    }
    let tomorrow = (now + chrono::Duration::days(1)).date_naive();
    let later: Vec<_> = (0..10)
        .map(|i| slot(tomorrow, i, more_tickets.div_ceil(10) as i64))
        .collect();
    reserve_all("S", more_tickets, &later);

    // `entrada serve` numbers the feed in the background while an import
    // goes on (`spawn_feed_numberer`, started by `start` below); the bench
    // seeds through the store with no server running, so that numbering is
    // done here, timed and reported on its own, before the phases. Without
    // it, the first numberer round would run during the hot-slot phase and
    // the first sync would number what is left of the import (the cold
    // case: a pull numbers a bounded share a page, issue 13's 408). SQLite
    // numbers each entry as it writes it: nothing is left (0).
    let numbering = Instant::now();
    let numbered = a.settle_feed().unwrap();
    let numbering = numbering.elapsed();
    // The stores (`stores`, `a`) outlive the server runtime: PostgreSQL's
    // synchronous clients close their connections with a runtime of their
    // own, which must not happen on a thread that drives async tasks.
    let server_rt = tokio::runtime::Runtime::new().unwrap();
    let bases: Vec<String> = stores
        .iter()
        .map(|s| start(&server_rt, s.clone(), numberer))
        .collect();
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let hot_id = hot.to_string();
    let (took, _) = drive(
        &client_rt,
        urls(&bases, "/api/reservations/create"),
        &admin,
        CLIENTS,
        reservations,
        201,
        move |i| {
            format!(
                r#"{{"ticket_id":"R-{i}","slot_id":"{hot_id}","customer_email":"bench@example.com","customer_phone":"+34600000001"}}"#
            )
        },
    );
    let reserve_rate = reservations as f64 / took.as_secs_f64();

    let op = operator.id.0;
    let verify = |clients: usize, prefix: &'static str| {
        let (took, mut latencies) = drive(
            &client_rt,
            urls(&bases, "/api/operator/verify-ticket"),
            &gate,
            clients,
            verifications,
            200,
            move |i| format!(r#"{{"ticket_id":"{prefix}-{i}","operator_id":{op}}}"#),
        );
        latencies.sort();
        (
            clients,
            verifications as f64 / took.as_secs_f64(),
            latencies,
        )
    };
    // `PG_HTTP_FEW_FIRST`: the 16-client phase first (whether the first
    // phase pays for what the reservations left behind).
    let verify = if std::env::var_os("PG_HTTP_FEW_FIRST").is_some() {
        let few = verify(FEW_CLIENTS, "W");
        [verify(CLIENTS, "V"), few]
    } else {
        let many = verify(CLIENTS, "V");
        [many, verify(FEW_CLIENTS, "W")]
    };

    // A new gate's first sync from instance A: a real `entrada sync` process.
    let dir = tempfile::tempdir().unwrap();
    let device_db = dir.path().join("gate.db");
    let started = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_entrada"))
        .args([
            "sync",
            "--server",
            &bases[0],
            "--token",
            &device_token,
            "--once",
        ])
        .arg("--db")
        .arg(&device_db)
        .env("ENTRADA_LOG", "warn")
        .output()
        .unwrap();
    let first_sync = started.elapsed();
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
    let pulled = answer["round"]["pulled"].as_i64().unwrap_or(0);
    let tickets_on_gate: i64 = rusqlite::Connection::open(&device_db)
        .unwrap()
        .query_row("SELECT count(*) FROM tickets", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        tickets_on_gate as usize,
        reservations + 2 * verifications + more_tickets,
        "the gate holds every ticket of the org"
    );

    // After the first sync, so that the gate's count above is the seeded
    // tickets only.
    let race = race(&client_rt, &bases, &admin, venue.id.0, engine);
    drop(server_rt);
    drop(client_rt);
    drop((a, stores));
    Column {
        reserve_rate,
        verify,
        first_sync,
        tickets_on_gate,
        pulled,
        numbering,
        numbered,
        race,
    }
}

/// Issue 13's race, as `tests/pg_instances.rs` runs it on two `entrada
/// serve` processes: a slot of 60 places three days ahead, 10 booked, then
/// 200 clients (client `i` on instance `i % instances`) released together
/// by a barrier, each reserving its own ticket in it; a 503 (no database
/// connection free in time) is tried again after 50 ms, as a client would.
/// Exactly 50 must be booked, the other 150 told SLOT_FULL, and the slot
/// end FULL at 60.
fn race(
    client_rt: &tokio::runtime::Runtime,
    bases: &[String],
    admin: &str,
    venue_id: i64,
    engine: &str,
) -> Race {
    async fn post(http: &reqwest::Client, token: &str, url: String, body: Value) -> (u16, Value) {
        let res = http
            .post(url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json::<Value>().await.unwrap_or(Value::Null))
    }
    let last = bases.last().unwrap();
    client_rt.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let date = (Utc::now() + chrono::Duration::days(3))
            .date_naive()
            .to_string();
        let (status, slot) = post(
            &http,
            admin,
            format!("{}/api/operator/slots/create", bases[0]),
            json!({"venue_id": venue_id, "date": date,
                   "start_time": "10:00", "end_time": "11:00", "total_capacity": 60}),
        )
        .await;
        assert_eq!(status, 201, "{slot}");
        let slot_id = slot["id"].as_str().unwrap().to_owned();
        let tickets: Vec<Value> = (0..210)
            .map(|i| json!({"ticket_code": format!("RACE-{i}"), "activation_mode": "immediate"}))
            .collect();
        let (status, body) = post(
            &http,
            admin,
            format!("{last}/api/admin/tickets"),
            Value::Array(tickets),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let reserve = |i: usize| {
            let (http, admin) = (http.clone(), admin.to_owned());
            let url = format!("{}/api/reservations/create", bases[i % bases.len()]);
            let body = json!({"ticket_id": format!("RACE-{i}"), "slot_id": slot_id,
                              "customer_email": "race@example.com", "customer_phone": "+34600000001"});
            async move {
                let give_up = Instant::now() + Duration::from_secs(60);
                loop {
                    let (status, answer) = post(&http, &admin, url.clone(), body.clone()).await;
                    if status != 503 {
                        return (status, answer);
                    }
                    assert!(Instant::now() < give_up, "503 for a minute: {answer}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        for i in 200..210 {
            assert_eq!(reserve(i).await.0, 201);
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(200));
        let racers: Vec<_> = (0..200)
            .map(|i| {
                let barrier = barrier.clone();
                let attempt = reserve(i);
                tokio::spawn(async move {
                    barrier.wait().await;
                    attempt.await
                })
            })
            .collect();
        let (mut booked, mut full, mut other) = (0, 0, 0);
        for racer in racers {
            let (status, body) = racer.await.unwrap();
            match (status, body["error"]["code"].as_str()) {
                (201, _) => booked += 1,
                (409, Some("SLOT_FULL")) => full += 1,
                answer => {
                    eprintln!("{engine}: race: unexpected answer {answer:?}: {body}");
                    other += 1;
                }
            }
        }
        let res = http
            .get(format!("{last}/api/operator/slots/{slot_id}"))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap();
        let slot: Value = res.json().await.unwrap();
        let booked_count = slot["booked_count"].as_i64().unwrap_or(-1);
        eprintln!(
            "{engine}: race: {booked} booked / {full} SLOT_FULL / {other} other; slot {booked_count}, {}",
            slot["status"]
        );
        assert_eq!(
            (booked, full, other),
            (50, 150, 0),
            "{engine}: exactly the last 50 places are booked"
        );
        assert_eq!(
            (booked_count, slot["status"].as_str()),
            (60, Some("FULL")),
            "{engine}: {slot}"
        );
        Race {
            booked,
            full,
            other,
            booked_count,
        }
    })
}

/// pgbench's transactions per second for a verify-shaped transaction, with
/// no two clients on one row: what this machine's PostgreSQL does with the
/// verify's round trips and writes, without HTTP, the server or the feed's
/// triggers. Tables of the same shape as the store's (`tickets`,
/// `ticket_reservations`, `reservation_slots`, `venues`, `passages`,
/// `api_tokens`), 100,000 tickets, one reserved each, in a schema of its own.
fn verify_floor(url: &str, clients: usize, seconds: u32) -> f64 {
    let schema = pgbench::fresh_schema(url, "verify_floor");
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.batch_execute(&format!(
        "SET search_path = {schema};
         CREATE TABLE tok (id BIGINT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, orq BIGINT NOT NULL,
             role TEXT NOT NULL, venue_id BIGINT, expires_at TIMESTAMPTZ, revoked_at TIMESTAMPTZ);
         INSERT INTO tok VALUES (1, repeat('a', 64), 1, 'operator', NULL, NULL, NULL);
         CREATE TABLE ve (id BIGINT PRIMARY KEY, orq BIGINT NOT NULL, name TEXT NOT NULL, timezone TEXT NOT NULL);
         INSERT INTO ve VALUES (1, 1, 'Bench', 'UTC');
         CREATE TABLE sl (id BIGINT PRIMARY KEY, orq BIGINT NOT NULL, venue_id BIGINT NOT NULL REFERENCES ve,
             date DATE NOT NULL, booked_count BIGINT NOT NULL);
         INSERT INTO sl SELECT i, 1, 1, current_date, 10000 FROM generate_series(0, 9) i;
         CREATE TABLE tk (ticket_code TEXT COLLATE \"C\" PRIMARY KEY, orq BIGINT NOT NULL, status TEXT NOT NULL,
             code_serial BIGINT NOT NULL, verified_at TIMESTAMPTZ, verified_by BIGINT,
             activated_at TIMESTAMPTZ, updated_at TIMESTAMPTZ NOT NULL);
         INSERT INTO tk SELECT 'V-' || i, 1, 'active', 1, NULL, NULL, NULL, now() FROM generate_series(1, 100000) i;
         CREATE TABLE res (id BIGINT PRIMARY KEY, ticket_id TEXT COLLATE \"C\" NOT NULL UNIQUE REFERENCES tk,
             slot_id BIGINT NOT NULL REFERENCES sl, orq BIGINT NOT NULL, status TEXT NOT NULL,
             updated_at TIMESTAMPTZ NOT NULL);
         INSERT INTO res SELECT i, 'V-' || i, i % 10, 1, 'RESERVED', now() FROM generate_series(1, 100000) i;
         CREATE TABLE pas (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, orq BIGINT NOT NULL,
             venue_id BIGINT NOT NULL REFERENCES ve, ticket_code TEXT NOT NULL, at TIMESTAMPTZ NOT NULL,
             operator_id BIGINT NOT NULL);"
    ))
    .unwrap();
    // On its own: VACUUM does not run in the batch's implicit transaction.
    c.batch_execute(&format!(
        "VACUUM ANALYZE {schema}.tok, {schema}.ve, {schema}.sl, {schema}.tk, {schema}.res"
    ))
    .unwrap();
    // Each client its own tickets (`:client_id`), so no two wait on one row.
    let script = "\\set i :client_id * 6000 + random(1, 6000)
SELECT id, orq, role, venue_id FROM tok WHERE token_hash = repeat('a', 64) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now());
BEGIN;
SELECT * FROM tk WHERE ticket_code = 'V-' || :i AND orq = 1 FOR UPDATE;
SELECT * FROM res r LEFT JOIN sl s ON s.id = r.slot_id AND s.orq = r.orq LEFT JOIN ve v ON v.id = s.venue_id AND v.orq = r.orq WHERE r.ticket_id = 'V-' || :i AND r.orq = 1;
WITH t AS (UPDATE tk SET status = 'redeemed', verified_at = now(), verified_by = 1, activated_at = now(), updated_at = now() WHERE ticket_code = 'V-' || :i AND orq = 1 RETURNING 1), r AS (UPDATE res SET status = 'VERIFIED', updated_at = now() WHERE ticket_id = 'V-' || :i AND orq = 1 RETURNING 1), p AS (INSERT INTO pas (orq, venue_id, ticket_code, at, operator_id) VALUES (1, 1, 'V-' || :i, now(), 1) RETURNING 1) SELECT 1;
END;
";
    assert!(clients * 6000 <= 100_000);
    let tps = pgbench::pgbench_tps(url, &schema, script, &["-M", "prepared"], clients, seconds);
    let _ = c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
    tps
}
