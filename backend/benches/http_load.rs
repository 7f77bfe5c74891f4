//! The real HTTP server (`entrada::api::serve`) on 127.0.0.1, a real SQLite
//! file (WAL, group commit: fsync'd before each answer), rate limiting off, driven by many concurrent
//! HTTP/1.1 keep-alive clients (hyper's client, one connection per client).
//!
//! `cargo bench -p entrada --bench http_load [-- --quick]`
//!
//! 1. A race: 200 customers (each with its own token and ticket) reserve the
//!    last 50 places of a slot at once: exactly 50 get 201, 150 get 409
//!    SLOT_FULL, and the slot ends FULL with booked_count == capacity.
//! 2. Reservations/s and latency, uncontended (32 clients over 64 slots) and
//!    contended (32 clients on one slot); validate-ticket/s with 32 clients;
//!    and, as the floor under them, the same reservations through the Store
//!    API from 32 threads with no HTTP at all.
//!
//! Each measurement has a fresh database and server, a bounded request count
//! and a time limit; rounds are interleaved and the table shows medians.
//! Unknown arguments (`cargo bench` passes `--bench`) are ignored.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use entrada::domain::{
    ActivationMode, Contact, NewSlot, NewTicket, Orq, Role, SlotId, SlotStatus, TicketCode, VenueId,
};
use entrada::store::{ReserveRequest, Store};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{header, Request, StatusCode};
use hyper_util::rt::TokioIo;

const ORQ: Orq = Orq(1);
const EMAIL: &str = "bench@example.com";
const PHONE: &str = "+12025551234";

struct Params {
    /// Requests per throughput measurement.
    requests: usize,
    clients: usize,
    rounds: usize,
    /// A measurement stops early (and says so) after this long.
    time_limit: Duration,
}

// ---------------------------------------------------------------- server

struct Server {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

/// A fresh database with one venue; the server starts on it in `start`.
fn fresh_store() -> (tempfile::TempDir, Arc<Store>, VenueId, String) {
    let dir = tempfile::tempdir_in(
        std::env::var_os("BENCH_DIR").unwrap_or_else(|| std::env::temp_dir().into()),
    )
    .unwrap();
    let store = Store::open(dir.path().join("http.db")).unwrap();
    let venue = store.add_venue(ORQ, "Bench", "UTC", now()).unwrap();
    // Far enough ahead that no slot ends during the run.
    let day = (now() + chrono::Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    (dir, Arc::new(store), venue.id, day)
}

/// Starts `entrada::api::serve` on 127.0.0.1:0 on the server runtime.
fn start(
    server_rt: &tokio::runtime::Runtime,
    seeded: (tempfile::TempDir, Arc<Store>, VenueId, String),
) -> Server {
    let (dir, store, _, _) = seeded;
    let listener = server_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    // Rate limiting off: lookups_per_minute = 0.
    let state = entrada::api::AppState::new(store.clone(), 0);
    let shutdown = state.shutdown.clone();
    let app = entrada::api::router(state, None);
    let task = server_rt.spawn(async move {
        if let Err(e) = entrada::api::serve(listener, app, shutdown).await {
            eprintln!("server stopped: {e}");
        }
    });
    Server {
        _dir: dir,
        store,
        addr,
        task,
    }
}

fn slot(store: &Store, venue: VenueId, day: &str, i: usize, capacity: i64) -> SlotId {
    // Distinct start times: a venue cannot have two slots starting together.
    let start = format!("{:02}:{:02}", i / 60, i % 60);
    let new = NewSlot::validate(venue.0, day, &start, "23:59:59", Some(capacity)).unwrap();
    store.create_slot(ORQ, &new, now()).unwrap().id
}

/// Active tickets `{prefix}-{i}` for user `user`.
fn tickets(store: &Store, codes: &[String], user: Option<i64>) {
    let batch: Vec<NewTicket> = codes
        .iter()
        .map(|c| {
            let mut t = NewTicket::plain(c, ActivationMode::Immediate).unwrap();
            t.user_id = user;
            t
        })
        .collect();
    for chunk in batch.chunks(5000) {
        store.insert_tickets(ORQ, chunk, now()).unwrap();
    }
}

fn customer_token(store: &Store, user: i64) -> String {
    store
        .create_token(ORQ, Role::Customer, Some(user), None, now())
        .unwrap()
        .0
}

// ---------------------------------------------------------------- client

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    auth: String,
}

async fn connect(addr: SocketAddr, token: &str) -> Conn {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Conn {
        sender,
        auth: format!("Bearer {token}"),
    }
}

impl Conn {
    async fn post(&mut self, path: &str, body: String) -> (StatusCode, Bytes) {
        self.sender.ready().await.unwrap();
        let req = Request::post(path)
            .header(header::HOST, "127.0.0.1")
            .header(header::AUTHORIZATION, &self.auth)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let resp = self.sender.send_request(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, body)
    }
}

fn reservation_body(ticket: &str, slot: SlotId) -> String {
    serde_json::json!({
        "ticket_id": ticket,
        "slot_id": slot.to_string(),
        "customer_email": EMAIL,
        "customer_phone": PHONE,
    })
    .to_string()
}

fn error_code(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

// ---------------------------------------------------------------- measurements

/// CPU seconds used so far by this process's threads, by thread name
/// ("server": the server runtime's workers and blocking pool; "client": the
/// load generator's; "store": the no-HTTP reference's), from /proc. Empty
/// where /proc is not there.
fn cpu_by_thread() -> std::collections::HashMap<String, f64> {
    let mut by_name = std::collections::HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_name;
    };
    for task in tasks.flatten() {
        if let Some((name, secs)) = std::fs::read_to_string(task.path().join("stat"))
            .ok()
            .and_then(|stat| parse_stat(&stat))
        {
            *by_name.entry(name).or_default() += secs;
        }
    }
    by_name
}

/// `(comm, user + system CPU seconds)` from a /proc stat line.
fn parse_stat(stat: &str) -> Option<(String, f64)> {
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    // After "(comm) ": state is field 3, utime 14, stime 15 (1-based).
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // USER_HZ is 100 on Linux.
    Some((
        stat[open + 1..close].to_string(),
        (ticks(11)? + ticks(12)?) / 100.0,
    ))
}

/// CPU seconds of the whole process so far (threads that exited included).
fn process_cpu() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| parse_stat(&stat))
        .map_or(f64::NAN, |(_, secs)| secs)
}

/// CPU seconds per thread name spent between two snapshots.
fn cpu_since(before: &std::collections::HashMap<String, f64>, name: &str) -> f64 {
    let now = cpu_by_thread().get(name).copied().unwrap_or(0.0);
    (now - before.get(name).copied().unwrap_or(0.0)).max(0.0)
}

/// One measurement: requests done, wall time, per-request latencies, and
/// the CPU the server side and the client side spent on them.
struct Sample {
    done: usize,
    wall: Duration,
    latencies: Vec<Duration>,
    cut_short: bool,
    /// CPU seconds of the serving threads (server runtime, or the store
    /// threads of the no-HTTP reference), and of the load generator.
    server_cpu: f64,
    client_cpu: f64,
}

impl Sample {
    fn cpu_us_per_request(cpu: f64, done: usize) -> f64 {
        cpu * 1e6 / done.max(1) as f64
    }

    fn rate(&self) -> f64 {
        self.done as f64 / self.wall.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> f64 {
        let mut v = self.latencies.clone();
        v.sort();
        if v.is_empty() {
            return f64::NAN;
        }
        let i = ((v.len() as f64 * p) as usize).min(v.len() - 1);
        v[i].as_secs_f64() * 1e3
    }
}

/// Runs `jobs[c]` on client `c`'s connection, all clients at once; every
/// answer must be `want`.
async fn drive(
    addr: SocketAddr,
    path: &'static str,
    clients: Vec<(String, Vec<String>)>,
    want: StatusCode,
    limit: Duration,
) -> Sample {
    let mut conns = Vec::new();
    for (token, jobs) in clients {
        conns.push((connect(addr, &token).await, jobs));
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(conns.len() + 1));
    let mut handles = Vec::new();
    for (mut conn, jobs) in conns {
        let barrier = barrier.clone();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            let started = Instant::now();
            let mut latencies = Vec::with_capacity(jobs.len());
            for body in jobs {
                if started.elapsed() > limit {
                    return (latencies, true);
                }
                let t = Instant::now();
                let (status, resp) = conn.post(path, body).await;
                latencies.push(t.elapsed());
                assert_eq!(status, want, "{path}: {}", String::from_utf8_lossy(&resp));
            }
            (latencies, false)
        }));
    }
    let cpu = cpu_by_thread();
    barrier.wait().await;
    let started = Instant::now();
    let mut sample = Sample {
        done: 0,
        wall: Duration::ZERO,
        latencies: Vec::new(),
        cut_short: false,
        server_cpu: 0.0,
        client_cpu: 0.0,
    };
    for h in handles {
        let (lat, cut) = h.await.unwrap();
        sample.done += lat.len();
        sample.latencies.extend(lat);
        sample.cut_short |= cut;
    }
    sample.wall = started.elapsed();
    sample.server_cpu = cpu_since(&cpu, "server");
    sample.client_cpu = cpu_since(&cpu, "client");
    sample
}

/// Reservations over HTTP: client `c` is customer `c + 1` and reserves its
/// own tickets, on slot `c % slots` (`slots` = 1: everyone on one slot).
fn reservations(
    server_rt: &tokio::runtime::Runtime,
    client_rt: &tokio::runtime::Runtime,
    p: &Params,
    requests: usize,
    n_clients: usize,
    slots: usize,
) -> Sample {
    let seeded = fresh_store();
    let (store, venue, day) = (&seeded.1, seeded.2, seeded.3.clone());
    let slot_ids: Vec<SlotId> = (0..slots)
        .map(|i| slot(store, venue, &day, i, 1_000_000))
        .collect();
    let per = requests / n_clients;
    let mut clients = Vec::new();
    for c in 0..n_clients {
        let user = c as i64 + 1;
        let codes: Vec<String> = (0..per).map(|k| format!("R{c}-{k}")).collect();
        tickets(store, &codes, Some(user));
        let slot = slot_ids[c % slots];
        let jobs = codes.iter().map(|t| reservation_body(t, slot)).collect();
        clients.push((customer_token(store, user), jobs));
    }
    let server = start(server_rt, seeded);
    let sample = client_rt.block_on(drive(
        server.addr,
        "/api/reservations/create",
        clients,
        StatusCode::CREATED,
        p.time_limit,
    ));
    // What the clients were told is what the database holds.
    let booked: i64 = slot_ids
        .iter()
        .map(|id| server.store.get_slot(ORQ, *id).unwrap().booked_count)
        .sum();
    assert_eq!(booked as usize, sample.done);
    sample
}

/// `POST /api/operator/validate-ticket` with an operator token per client,
/// over a mix of reserved and unreserved tickets.
fn validations(
    server_rt: &tokio::runtime::Runtime,
    client_rt: &tokio::runtime::Runtime,
    p: &Params,
) -> Sample {
    let seeded = fresh_store();
    let (store, venue, day) = (&seeded.1, seeded.2, seeded.3.clone());
    let s = slot(store, venue, &day, 0, 1_000_000);
    let codes: Vec<String> = (0..1000).map(|i| format!("V-{i}")).collect();
    tickets(store, &codes, None);
    for code in codes.iter().step_by(2) {
        let req = ReserveRequest {
            ticket: TicketCode::parse(code).unwrap(),
            slot_id: s,
            contact: Contact::validate(EMAIL, PHONE).unwrap(),
        };
        store.reserve_slot(ORQ, &req, now()).unwrap();
    }
    let op = store
        .add_operator(ORQ, Role::Operator, "Gate", None, now())
        .unwrap();
    let per = p.requests / p.clients;
    let clients = (0..p.clients)
        .map(|c| {
            let token = store
                .create_token(ORQ, Role::Operator, Some(op.id.0), Some(venue), now())
                .unwrap()
                .0;
            let jobs = (0..per)
                .map(|k| {
                    serde_json::json!({ "ticket_code": codes[(c * per + k) % codes.len()] })
                        .to_string()
                })
                .collect();
            (token, jobs)
        })
        .collect();
    let server = start(server_rt, seeded);
    client_rt.block_on(drive(
        server.addr,
        "/api/operator/validate-ticket",
        clients,
        StatusCode::OK,
        p.time_limit,
    ))
}

/// The floor: the same reservations through `Store::reserve_slot` from
/// `threads` threads on one shared Store, no HTTP, no tokens.
fn store_floor(requests: usize, threads: usize) -> Sample {
    let (_dir, store, venue, day) = fresh_store();
    let slot_ids: Vec<SlotId> = (0..64)
        .map(|i| slot(&store, venue, &day, i, 1_000_000))
        .collect();
    let per = requests / threads;
    let codes: Vec<String> = (0..per * threads).map(|i| format!("S-{i}")).collect();
    tickets(&store, &codes, None);
    let barrier = Arc::new(std::sync::Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|c| {
            let (store, barrier) = (store.clone(), barrier.clone());
            let slot = slot_ids[c % slot_ids.len()];
            let codes = codes[c * per..(c + 1) * per].to_vec();
            std::thread::Builder::new()
                .name("store".into())
                .spawn(move || {
                    barrier.wait();
                    let mut latencies = Vec::with_capacity(per);
                    for code in codes {
                        let req = ReserveRequest {
                            ticket: TicketCode::parse(&code).unwrap(),
                            slot_id: slot,
                            contact: Contact::validate(EMAIL, PHONE).unwrap(),
                        };
                        let t = Instant::now();
                        store.reserve_slot(ORQ, &req, now()).unwrap();
                        latencies.push(t.elapsed());
                    }
                    latencies
                })
                .unwrap()
        })
        .collect();
    // The runtimes idle meanwhile: the process's CPU is the store threads'.
    let cpu = process_cpu();
    barrier.wait();
    let started = Instant::now();
    let latencies: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let wall = started.elapsed();
    Sample {
        done: latencies.len(),
        wall,
        latencies,
        cut_short: false,
        server_cpu: process_cpu() - cpu,
        client_cpu: f64::NAN,
    }
}

/// The disk's floor at this moment: one-row INSERT transactions with the
/// store's settings (WAL, synchronous=FULL, BEGIN IMMEDIATE), like
/// `store_throughput`'s first row.
fn bare_commits(n: usize) -> Sample {
    let (dir, _store, _, _) = fresh_store();
    let conn = rusqlite::Connection::open(dir.path().join("floor.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute_batch(
        "PRAGMA synchronous = FULL; CREATE TABLE floor (id TEXT PRIMARY KEY, n INTEGER NOT NULL);",
    )
    .unwrap();
    let cpu = process_cpu();
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        conn.prepare_cached("INSERT INTO floor (id, n) VALUES (?1, ?2)")
            .unwrap()
            .execute(rusqlite::params![format!("row-{i}"), i as i64])
            .unwrap();
        conn.execute_batch("COMMIT").unwrap();
        latencies.push(t.elapsed());
    }
    Sample {
        done: n,
        wall: started.elapsed(),
        latencies,
        cut_short: false,
        server_cpu: process_cpu() - cpu,
        client_cpu: f64::NAN,
    }
}

/// 200 customers race for the last 50 places; returns a line for the report.
fn race(server_rt: &tokio::runtime::Runtime, client_rt: &tokio::runtime::Runtime) -> String {
    const RACERS: usize = 200;
    const LEFT: usize = 50;
    const CAPACITY: usize = 250;
    let seeded = fresh_store();
    let (store, venue, day) = (&seeded.1, seeded.2, seeded.3.clone());
    let s = slot(store, venue, &day, 0, CAPACITY as i64);
    // Fill all but the last 50 places.
    let pre: Vec<String> = (0..CAPACITY - LEFT).map(|i| format!("PRE-{i}")).collect();
    tickets(store, &pre, None);
    for code in &pre {
        let req = ReserveRequest {
            ticket: TicketCode::parse(code).unwrap(),
            slot_id: s,
            contact: Contact::validate(EMAIL, PHONE).unwrap(),
        };
        store.reserve_slot(ORQ, &req, now()).unwrap();
    }
    let mut racers = Vec::new();
    for c in 0..RACERS {
        let user = 1000 + c as i64;
        let code = format!("RACE-{c}");
        tickets(store, std::slice::from_ref(&code), Some(user));
        racers.push((customer_token(store, user), reservation_body(&code, s)));
    }
    let server = start(server_rt, seeded);
    let addr = server.addr;
    let (results, wall) = client_rt.block_on(async move {
        let mut conns = Vec::new();
        for (token, body) in racers {
            conns.push((connect(addr, &token).await, body));
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(conns.len() + 1));
        let handles: Vec<_> = conns
            .into_iter()
            .map(|(mut conn, body)| {
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    conn.post("/api/reservations/create", body).await
                })
            })
            .collect();
        barrier.wait().await;
        let started = Instant::now();
        let mut results = Vec::new();
        for h in handles {
            results.push(h.await.unwrap());
        }
        (results, started.elapsed())
    });
    let won = results
        .iter()
        .filter(|(st, _)| *st == StatusCode::CREATED)
        .count();
    let full = results
        .iter()
        .filter(|(st, b)| *st == StatusCode::CONFLICT && error_code(b) == "SLOT_FULL")
        .count();
    let others: Vec<String> = results
        .iter()
        .filter(|(st, b)| {
            *st != StatusCode::CREATED
                && !(*st == StatusCode::CONFLICT && error_code(b) == "SLOT_FULL")
        })
        .map(|(st, b)| format!("{st} {}", error_code(b)))
        .collect();
    assert_eq!(
        (won, full),
        (LEFT, RACERS - LEFT),
        "unexpected answers: {others:?}"
    );
    let after = server.store.get_slot(ORQ, s).unwrap();
    assert_eq!(after.booked_count, CAPACITY as i64);
    assert_eq!(after.total_capacity, CAPACITY as i64);
    assert_eq!(after.status, SlotStatus::Full);
    format!(
        "race: {RACERS} clients for the last {LEFT} of {CAPACITY} places → {won} × 201, \
         {full} × 409 SLOT_FULL, 0 other; slot FULL, booked_count {} == capacity {} \
         (all answered in {:.0} ms)",
        after.booked_count,
        after.total_capacity,
        wall.as_secs_f64() * 1e3
    )
}

// ---------------------------------------------------------------- report

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

struct Row {
    name: &'static str,
    clients: usize,
    samples: Vec<Sample>,
}

fn row(name: &'static str, clients: usize) -> Row {
    Row {
        name,
        clients,
        samples: Vec::new(),
    }
}

fn us(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.0}")
    }
}

impl Row {
    fn print(&self) {
        let clients = self.clients;
        let rate = median(self.samples.iter().map(Sample::rate).collect());
        let p50 = median(self.samples.iter().map(|s| s.percentile(0.50)).collect());
        let p99 = median(self.samples.iter().map(|s| s.percentile(0.99)).collect());
        let done = median(self.samples.iter().map(|s| s.done as f64).collect());
        let cut = if self.samples.iter().any(|s| s.cut_short) {
            " (time limit hit)"
        } else {
            ""
        };
        let server = median(
            self.samples
                .iter()
                .map(|s| Sample::cpu_us_per_request(s.server_cpu, s.done))
                .collect(),
        );
        let client = median(
            self.samples
                .iter()
                .map(|s| Sample::cpu_us_per_request(s.client_cpu, s.done))
                .collect(),
        );
        println!(
            "| {}{cut} | {clients} | {done:.0} | {rate:.0} | {p50:.2} | {p99:.2} | {} | {} |",
            self.name,
            us(server),
            us(client)
        );
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let p = if quick {
        Params {
            requests: 256,
            clients: 32,
            rounds: 1,
            time_limit: Duration::from_secs(10),
        }
    } else {
        Params {
            requests: 4000,
            clients: 32,
            rounds: 3,
            time_limit: Duration::from_secs(30),
        }
    };
    // The server and the load generator each get a runtime; on this machine
    // they share the same cores, as a loopback benchmark must.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("server")
        .build()
        .unwrap();
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("client")
        .build()
        .unwrap();

    let race_line = race(&server_rt, &client_rt);
    eprintln!("{race_line}");

    let mut rows = [
        row(
            "POST /api/reservations/create, uncontended (64 slots)",
            p.clients,
        ),
        row(
            "POST /api/reservations/create, contended (1 slot)",
            p.clients,
        ),
        row("POST /api/reservations/create, 1 client (latency)", 1),
        row("POST /api/operator/validate-ticket", p.clients),
        row(
            "reference: Store::reserve_slot, 32 threads, no HTTP",
            p.clients,
        ),
        row("reference: Store::reserve_slot, 1 thread, no HTTP", 1),
        row("floor: bare INSERT + fsync'd COMMIT, 1 thread", 1),
    ];
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    // Interleaved rounds, each starting at a different row, so machine
    // noise (and its trend during the run) hits every row alike.
    let (n, c) = (p.requests, p.clients);
    let sequential = p.requests / 4;
    for round in 0..p.rounds {
        for k in 0..rows.len() {
            let i = (k + round * 3) % rows.len();
            let sample = match i {
                0 => reservations(&server_rt, &client_rt, &p, n, c, 64),
                1 => reservations(&server_rt, &client_rt, &p, n, c, 1),
                2 => reservations(&server_rt, &client_rt, &p, sequential, 1, 1),
                3 => validations(&server_rt, &client_rt, &p),
                4 => store_floor(n, c),
                5 => store_floor(sequential, 1),
                _ => bare_commits(sequential),
            };
            rows[i].samples.push(sample);
        }
        eprintln!("round {}/{} done", round + 1, p.rounds);
    }
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "http_load: {} requests per measurement ({} for 1 client), median of {} rounds, \
         {cores} cores, server and clients on the same machine over loopback; \
         load average before {}, after {}",
        p.requests,
        p.requests / 4,
        p.rounds,
        load_before.split_whitespace().next().unwrap_or("?"),
        load_after.split_whitespace().next().unwrap_or("?"),
    );
    println!();
    println!("{race_line}");
    println!();
    println!(
        "| measurement | clients | requests | req/s | p50 ms | p99 ms | server CPU µs/req | client CPU µs/req |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        r.print();
    }
    println!();
    println!(
        "Noise: a shared machine; absolute numbers move between runs by tens of percent, \
         compare rows of one run. Every reservation is on disk before its answer: \
         WAL commits through one writer connection, group-committed (concurrent \
         commits share one fsync). CPU columns: thread CPU \
         time from /proc per request (server = the server runtime's workers and \
         blocking pool)."
    );
}
