//! Sync under faults, with real processes on 127.0.0.1 and real SQLite files:
//! an `entrada serve` process, gate devices driven by `entrada sync` and
//! `entrada gate verify`, a fault-injecting HTTP proxy in between, and
//! `kill -9` at random moments. Every check reads the SQLite files.
//!
//! `cargo test -p entrada --test sync_faults`

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use chrono::{NaiveTime, Utc};
use entrada::domain::{
    ActivationMode, Contact, Gate, NewSlot, NewTicket, OperatorId, Orq, Role, TicketCode,
};
use entrada::store::{ReserveRequest, Store};
use rusqlite::{Connection, OpenFlags};

const ORQ: Orq = Orq(1);
const BIN: &str = env!("CARGO_BIN_EXE_entrada");

// ---------------------------------------------------------------- helpers

/// SplitMix64: small, seeded, good enough to pick faults and moments.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A spawned process, killed (SIGKILL, by its pid) and reaped on drop.
struct Proc(Child);

impl Proc {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn entrada() -> Command {
    let mut c = Command::new(BIN);
    c.env("ENTRADA_LOG", "warn")
        .env_remove("ENTRADA_DB")
        .env_remove("ENTRADA_SERVER")
        .env_remove("ENTRADA_TOKEN")
        .stdin(Stdio::null());
    c
}

/// Runs a short-lived `entrada` command to completion, killing it after `limit`.
fn run(args: &[&str], limit: Duration) -> Output {
    let child = entrada()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn entrada");
    wait_output(Proc(child), limit)
}

fn wait_output(mut p: Proc, limit: Duration) -> Output {
    let start = Instant::now();
    loop {
        if p.0.try_wait().expect("try_wait").is_some() {
            break;
        }
        if start.elapsed() > limit {
            p.kill();
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    let mut out = Output {
        status: p.0.wait().expect("wait"),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    if let Some(mut s) = p.0.stdout.take() {
        let _ = s.read_to_end(&mut out.stdout);
    }
    if let Some(mut s) = p.0.stderr.take() {
        let _ = s.read_to_end(&mut out.stderr);
    }
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 GET over a fresh connection; the status code, or None.
fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1)?.parse().ok()
}

struct Server {
    _proc: Proc,
    addr: SocketAddr,
    url: String,
}

fn start_server(db: &Path) -> Server {
    for _ in 0..5 {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = entrada()
            .args(["serve", "--db"])
            .arg(db)
            .args(["--listen", &addr.to_string(), "--lookups-per-minute", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn entrada serve");
        let mut proc = Proc(child);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if http_status(addr, "/api/health") == Some(200) {
                return Server {
                    _proc: proc,
                    addr,
                    url: format!("http://{addr}"),
                };
            }
            if proc.0.try_wait().unwrap().is_some() {
                break; // port taken meanwhile: try another
            }
            thread::sleep(Duration::from_millis(50));
        }
        proc.kill();
    }
    panic!("entrada serve did not become ready");
}

/// A server database: one UTC venue, an all-day slot today, `codes` as
/// active tickets reserved for it, and `devices` gate devices (tokens).
fn seed_server(db: &Path, codes: &[String], devices: usize) -> Vec<(i64, String)> {
    let now = Utc::now();
    let store = Store::open(db).unwrap();
    let venue = store.add_venue(ORQ, "Sync Faults", "UTC", now).unwrap();
    // The gates' operators (ids 1..=25): the server rejects uploads by unknown ones.
    for i in 1..=25 {
        store
            .add_operator(ORQ, Role::Operator, &format!("Gate op {i}"), None, now)
            .unwrap();
    }
    let slot = store
        .create_slot(
            ORQ,
            &NewSlot {
                venue_id: venue.id,
                date: now.date_naive(),
                start_time: NaiveTime::MIN,
                end_time: NaiveTime::from_hms_opt(23, 59, 59).unwrap(),
                total_capacity: 1_000_000,
            },
            now,
        )
        .unwrap();
    let tickets: Vec<NewTicket> = codes
        .iter()
        .map(|c| NewTicket::plain(c, ActivationMode::Immediate).unwrap())
        .collect();
    for chunk in tickets.chunks(5000) {
        store.insert_tickets(ORQ, chunk, now).unwrap();
    }
    let contact = Contact::validate("gate@example.com", "+34612345678").unwrap();
    for c in codes {
        let req = ReserveRequest {
            ticket: TicketCode::parse(c).unwrap(),
            slot_id: slot.id,
            contact: contact.clone(),
        };
        store.reserve_slot(ORQ, &req, now).unwrap();
    }
    (0..devices)
        .map(|i| {
            let (token, info) = store
                .add_device(ORQ, venue.id, &format!("gate-{i}"), now)
                .unwrap();
            (info.device_id, token)
        })
        .collect()
}

fn ro(db: &Path) -> Connection {
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

/// Makes the gate's pending events due now: the test moves the outbox's
/// retry time instead of sleeping until the backoff the CLI chose runs out.
fn retry_due_now(db: &Path) {
    let c = Connection::open(db).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    let past = (Utc::now() - chrono::Duration::seconds(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    c.execute(
        "UPDATE outbox SET next_attempt_at = ?1 WHERE state = 'pending'",
        [past],
    )
    .unwrap();
}

fn count(c: &Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn strings(c: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = c.prepare(sql).unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

fn sync_once(db: &Path, url: &str, token: &str, limit: Duration) -> Output {
    let db = db.to_str().unwrap();
    run(
        &[
            "sync", "--db", db, "--server", url, "--token", token, "--once",
        ],
        limit,
    )
}

fn pending(db: &Path) -> i64 {
    count(
        &ro(db),
        "SELECT count(*) FROM outbox WHERE state = 'pending'",
    )
}

/// Clean syncs until the outbox has nothing pending, waiting out retry
/// backoffs the engine scheduled after earlier failures (as a gate would).
fn drain(db: &Path, url: &str, token: &str, deadline: Duration) -> usize {
    let start = Instant::now();
    let mut rounds = 0;
    loop {
        let out = sync_once(db, url, token, Duration::from_secs(60));
        rounds += 1;
        let left = pending(db);
        if out.status.success() && left == 0 {
            return rounds;
        }
        assert!(
            start.elapsed() < deadline,
            "outbox of {} stuck with {left} pending after {rounds} clean rounds; last: {} {}",
            db.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // What is left is backing off: make it due rather than wait it out.
        retry_due_now(db);
    }
}

// ---------------------------------------------------------------- proxy

const CLEAN: u8 = 0;
const RANDOM: u8 = 1;
const DOWN: u8 = 2;
/// Pushes (`POST /api/sync/events`) get a 503; everything else passes.
const PUSH_503: u8 = 3;

#[derive(Debug, Default, Clone)]
struct ProxyStats {
    requests: u64,
    normal: u64,
    delayed: u64,
    dropped: u64,
    cut: u64,
    duplicated: u64,
}

/// An HTTP proxy that, per request and from a seeded RNG, forwards it
/// faithfully, delays it, drops the connection before forwarding, cuts the
/// server's answer after k bytes, or delivers the request to the server
/// twice (two connections, concurrently) and forwards one of the answers.
struct Proxy {
    addr: SocketAddr,
    /// `RANDOM` faults, `CLEAN` pass-through, `DOWN` (drop every request)
    /// or `PUSH_503`.
    mode: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<ProxyStats>>,
    accept: Option<thread::JoinHandle<()>>,
}

impl Proxy {
    fn start(upstream: SocketAddr, seed: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(RANDOM));
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(ProxyStats::default()));
        let connections = Arc::new(AtomicU64::new(0));
        let accept = {
            let (mode, stop, stats) = (mode.clone(), stop.clone(), stats.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let n = connections.fetch_add(1, Ordering::SeqCst);
                            let rng = Rng(seed ^ n.wrapping_mul(0xA24B_AED4_963E_E407));
                            let mode = mode.load(Ordering::SeqCst);
                            let stats = stats.clone();
                            thread::spawn(move || {
                                let _ = client.set_nonblocking(false);
                                serve_one(client, upstream, rng, mode, &stats);
                            });
                        }
                        Err(_) => thread::sleep(Duration::from_millis(2)),
                    }
                }
            })
        };
        Self {
            addr,
            mode,
            stop,
            stats,
            accept: Some(accept),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// Reads one HTTP request (head + Content-Length body) and rewrites it to
/// `Connection: close`, so each upstream exchange is one request.
fn read_request(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = client.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut length = 0usize;
    let mut lines: Vec<&str> = Vec::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
        if lower.starts_with("connection:") || lower.starts_with("keep-alive:") {
            continue;
        }
        lines.push(line);
    }
    while buf.len() < head_end + length {
        let n = client.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    out.extend_from_slice(&buf[head_end..head_end + length]);
    Some(out)
}

fn exchange(upstream: SocketAddr, request: &[u8]) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&upstream, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(40))).ok()?;
    s.write_all(request).ok()?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).ok()?;
    Some(answer)
}

fn serve_one(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut rng: Rng,
    mode: u8,
    stats: &Mutex<ProxyStats>,
) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
    let Some(request) = read_request(&mut client) else {
        return;
    };
    if mode == PUSH_503 && request.starts_with(b"POST /api/sync/events") {
        let _ = client.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
        );
        return;
    }
    let roll = match mode {
        RANDOM => rng.below(100),
        DOWN => 0,
        _ => 99,
    };
    let st = |f: fn(&mut ProxyStats)| {
        let mut s = stats.lock().unwrap();
        s.requests += 1;
        f(&mut s);
    };
    match roll {
        0..=9 => {
            st(|s| s.dropped += 1);
            let _ = client.shutdown(Shutdown::Both);
        }
        10..=21 => {
            st(|s| s.cut += 1);
            if let Some(answer) = exchange(upstream, &request) {
                let k = rng.below(answer.len() as u64) as usize;
                let _ = client.write_all(&answer[..k]);
            }
            let _ = client.shutdown(Shutdown::Both);
        }
        22..=34 => {
            st(|s| s.duplicated += 1);
            let second = {
                let request = request.clone();
                thread::spawn(move || exchange(upstream, &request))
            };
            let first = exchange(upstream, &request);
            let second = second.join().ok().flatten();
            let answer = if rng.chance(50) {
                first.or(second)
            } else {
                second.or(first)
            };
            if let Some(a) = answer {
                let _ = client.write_all(&a);
            }
        }
        35..=49 => {
            st(|s| s.delayed += 1);
            thread::sleep(Duration::from_millis(rng.range(20, 400)));
            if let Some(a) = exchange(upstream, &request) {
                let _ = client.write_all(&a);
            }
        }
        _ => {
            st(|s| s.normal += 1);
            if let Some(a) = exchange(upstream, &request) {
                let _ = client.write_all(&a);
            }
        }
    }
}

// ---------------------------------------------------------------- checks

/// Server-side facts that must hold whatever the faults: each event id
/// applied once, one verification row per event, one canonical
/// verification per ticket, one conflict per extra admission.
fn check_server_exactly_once(server_db: &Path, admits: &BTreeMap<String, usize>) {
    let c = ro(server_db);
    let total: usize = admits.values().sum();
    assert_eq!(
        count(&c, "SELECT count(*) FROM sync_events") as usize,
        total,
        "sync_events must hold each ADMIT exactly once"
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM verifications") as usize,
        total
    );
    assert_eq!(
        count(&c, "SELECT count(DISTINCT event_id) FROM verifications") as usize,
        total,
        "duplicate verification rows for one event"
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM verifications v LEFT JOIN sync_events e USING (event_id) WHERE e.event_id IS NULL"
        ),
        0
    );
    let mut per_ticket: HashMap<String, usize> = HashMap::new();
    for code in strings(&c, "SELECT ticket_code FROM verifications") {
        *per_ticket.entry(code).or_default() += 1;
    }
    let mut expected_conflicts = 0;
    for (code, n) in admits {
        assert_eq!(
            per_ticket.get(code).copied().unwrap_or(0),
            *n,
            "verifications of {code}"
        );
        expected_conflicts += n - 1;
    }
    assert_eq!(
        per_ticket.len(),
        admits.len(),
        "verifications for tickets never admitted"
    );
    let verified: BTreeSet<String> = strings(
        &c,
        "SELECT ticket_code FROM tickets WHERE verified_at IS NOT NULL",
    )
    .into_iter()
    .collect();
    assert_eq!(verified, admits.keys().cloned().collect::<BTreeSet<_>>());
    assert_eq!(
        count(&c, "SELECT count(*) FROM sync_conflicts") as usize,
        expected_conflicts,
        "one DOUBLE_ENTRY per extra admission"
    );
}

/// Device-side facts: every local ADMIT is in the outbox, answered, and on
/// the server under this device's id.
fn check_device_outbox(server_db: &Path, device_db: &Path, device_id: i64, admitted: &[String]) {
    let d = ro(device_db);
    let s = ro(server_db);
    let outbox = strings(
        &d,
        "SELECT entity_id FROM outbox WHERE kind = 'verify' ORDER BY entity_id",
    );
    let mut mine = admitted.to_vec();
    mine.sort();
    assert_eq!(outbox, mine, "outbox of device {device_id} vs its ADMITs");
    assert_eq!(
        count(&d, "SELECT count(*) FROM outbox WHERE state = 'pending'"),
        0
    );
    assert_eq!(
        count(&d, "SELECT count(*) FROM outbox WHERE state = 'rejected'"),
        0
    );
    let local: BTreeSet<String> = strings(&d, "SELECT event_id FROM outbox")
        .into_iter()
        .collect();
    let remote: BTreeSet<String> = strings(
        &s,
        &format!("SELECT event_id FROM sync_events WHERE device_id = {device_id}"),
    )
    .into_iter()
    .collect();
    assert_eq!(
        local, remote,
        "device {device_id}: outbox ids vs server sync_events"
    );
}

// ---------------------------------------------------------------- (a)

/// ~2,000 verifications on 4 devices, syncing through a proxy that drops,
/// delays, cuts and duplicates; then a clean path until nothing is pending.
#[test]
fn faulty_network_applies_every_verification_exactly_once() {
    const DEVICES: usize = 4;
    const OWN: usize = 480;
    const SHARED: usize = 30;
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let server_db = dir.path().join("server.db");
    let mut codes: Vec<String> = Vec::new();
    for d in 0..DEVICES {
        codes.extend((0..OWN).map(|i| format!("FA-D{d}-{i:04}")));
    }
    codes.extend((0..SHARED).map(|i| format!("FA-S-{i:04}")));
    codes.extend((0..20).map(|i| format!("FA-NEVER-{i:04}")));
    let devices = seed_server(&server_db, &codes, DEVICES);
    let server = start_server(&server_db);
    let proxy = Proxy::start(server.addr, 0x5EED_0001);
    let url = proxy.url();

    // Pair and pull everything, through the faults, retrying failed rounds.
    let device_dbs: Vec<PathBuf> = (0..DEVICES)
        .map(|d| dir.path().join(format!("device-{d}.db")))
        .collect();
    thread::scope(|scope| {
        for (d, db) in device_dbs.iter().enumerate() {
            let (url, token) = (&url, &devices[d].1);
            scope.spawn(move || {
                for attempt in 0.. {
                    assert!(attempt < 40, "device {d}: first sync never succeeded");
                    if sync_once(db, url, token, Duration::from_secs(60))
                        .status
                        .success()
                    {
                        break;
                    }
                }
            });
        }
    });
    let setup = started.elapsed();

    // Scan on every device (in process, the same durable `Store::scan` the
    // gate runs) while `entrada sync --once` processes go through the proxy.
    let results: Vec<(Vec<String>, usize)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..DEVICES)
            .map(|d| {
                let (url, token, db) = (&url, &devices[d].1, &device_dbs[d]);
                scope.spawn(move || {
                    let mut rng = Rng(0xA11CE + d as u64);
                    let mut plan: Vec<String> =
                        (0..OWN).map(|i| format!("FA-D{d}-{i:04}")).collect();
                    plan.extend((0..SHARED).map(|i| format!("FA-S-{i:04}")));
                    for i in (1..plan.len()).rev() {
                        plan.swap(i, rng.below(i as u64 + 1) as usize);
                    }
                    let store = Store::open(db).unwrap();
                    let mut admitted: Vec<String> = Vec::new();
                    let mut syncs = 0;
                    let mut sync: Option<Proc> = None;
                    let mut next_sync = rng.range(5, 25) as usize;
                    for (n, code) in plan.iter().enumerate() {
                        let op = OperatorId(1 + d as i64);
                        let v = store
                            .scan(ORQ, code.as_bytes(), op, &Gate::default(), Utc::now())
                            .unwrap();
                        if v.admit {
                            admitted.push(code.clone());
                        } else {
                            assert!(
                                code.starts_with("FA-S-"),
                                "device {d} refused own ticket {code}: {v:?}"
                            );
                        }
                        // Now and then a holder comes back: never a second ADMIT here.
                        if rng.chance(4) && !admitted.is_empty() {
                            let again = &admitted[rng.below(admitted.len() as u64) as usize];
                            let v = store
                                .scan(ORQ, again.as_bytes(), op, &Gate::default(), Utc::now())
                                .unwrap();
                            assert!(!v.admit, "device {d} admitted {again} twice");
                        }
                        if n == next_sync {
                            next_sync += rng.range(5, 25) as usize;
                            if let Some(p) = sync.take() {
                                let _ = wait_output(p, Duration::from_secs(60));
                            }
                            let child = entrada()
                                .args([
                                    "sync",
                                    "--db",
                                    db.to_str().unwrap(),
                                    "--server",
                                    url,
                                    "--token",
                                    token,
                                    "--once",
                                ])
                                .stdout(Stdio::null())
                                .stderr(Stdio::null())
                                .spawn()
                                .unwrap();
                            sync = Some(Proc(child));
                            syncs += 1;
                        }
                    }
                    if let Some(p) = sync.take() {
                        let _ = wait_output(p, Duration::from_secs(60));
                    }
                    (admitted, syncs)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let scanning = started.elapsed() - setup;
    let faults = proxy.stats.lock().unwrap().clone();

    // A clean path (the same proxy, faults off) until nothing is pending.
    proxy.mode.store(CLEAN, Ordering::SeqCst);
    let mut drain_rounds = 0;
    for (d, db) in device_dbs.iter().enumerate() {
        drain_rounds += drain(db, &url, &devices[d].1, Duration::from_secs(90));
    }
    // One more round each, so every device pulls the others' verifications.
    for (d, db) in device_dbs.iter().enumerate() {
        assert!(sync_once(db, &url, &devices[d].1, Duration::from_secs(60))
            .status
            .success());
    }

    let mut admits: BTreeMap<String, usize> = BTreeMap::new();
    for (admitted, _) in &results {
        for code in admitted {
            *admits.entry(code.clone()).or_default() += 1;
        }
    }
    let total: usize = admits.values().sum();
    check_server_exactly_once(&server_db, &admits);
    for (d, db) in device_dbs.iter().enumerate() {
        check_device_outbox(&server_db, db, devices[d].0, &results[d].0);
        // The replica converged for tickets only one gate scanned.
        let dev = ro(db);
        let srv = ro(&server_db);
        let q = "SELECT ticket_code || '|' || coalesce(verified_at, '-') FROM tickets WHERE ticket_code NOT LIKE 'FA-S-%' ORDER BY ticket_code";
        assert_eq!(
            strings(&dev, q),
            strings(&srv, q),
            "device {d} replica differs from the server"
        );
    }
    let conflicts: i64 = device_dbs
        .iter()
        .map(|db| {
            count(
                &ro(db),
                "SELECT count(*) FROM outbox WHERE state = 'conflict'",
            )
        })
        .sum();
    assert_eq!(
        conflicts as usize,
        total - admits.len(),
        "conflict answers on devices"
    );
    eprintln!(
        "(a) {total} ADMITs ({} tickets, {} double entries) on {DEVICES} devices, {} syncs through faults {faults:?}, \
         {drain_rounds} clean rounds; setup {setup:.1?}, scanning {scanning:.1?}, total {:.1?}",
        admits.len(),
        total - admits.len(),
        results.iter().map(|r| r.1).sum::<usize>(),
        started.elapsed()
    );
    assert!(total >= 1900, "expected ~2,000 verifications, got {total}");
    assert!(faults.dropped > 0 && faults.cut > 0 && faults.duplicated > 0 && faults.delayed > 0);
}

// ---------------------------------------------------------------- (b)

/// 20 times: a device runs `entrada sync --watch` while `entrada gate verify`
/// processes scan; both are `kill -9`ed at a random moment and restarted.
/// Every ADMIT printed before a kill reaches the server exactly once.
#[test]
fn kill_9_at_random_moments_loses_no_printed_admit() {
    const POOL: usize = 600;
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let server_db = dir.path().join("server.db");
    let codes: Vec<String> = (0..POOL).map(|i| format!("CR-{i:04}")).collect();
    let devices = seed_server(&server_db, &codes, 1);
    let (device_id, token) = devices[0].clone();
    let server = start_server(&server_db);
    let db = dir.path().join("device.db");
    let dbs = db.to_str().unwrap().to_string();
    assert!(sync_once(&db, &server.url, &token, Duration::from_secs(60))
        .status
        .success());

    let mut rng = Rng(0xC2A5_0009);
    let mut printed: Vec<String> = Vec::new();
    let mut refused_again = 0;
    let mut killed_verifies = 0;
    let mut scans = 0;
    for _ in 0..20 {
        let watch = entrada()
            .args(["sync", "--db", &dbs, "--watch", "--interval", "0.2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut watch = Proc(watch);
        let kill_at = Instant::now() + Duration::from_millis(rng.range(150, 1200));
        'scan: loop {
            let code = &codes[rng.below(POOL as u64) as usize];
            let child = entrada()
                .args(["gate", "verify", "--db", &dbs, "--operator", "7", code])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut p = Proc(child);
            scans += 1;
            let mut killed = false;
            while p.0.try_wait().unwrap().is_none() {
                if Instant::now() >= kill_at {
                    p.kill();
                    watch.kill();
                    killed = true;
                    break;
                }
                thread::sleep(Duration::from_millis(1));
            }
            let mut out = String::new();
            let _ = p.0.stdout.take().unwrap().read_to_string(&mut out);
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(out.trim()) {
                if v["verdict"] == "ADMIT" {
                    assert!(!printed.contains(code), "{code} printed ADMIT twice");
                    printed.push(code.clone());
                } else if v["verdict"] == "ALREADY_VERIFIED" {
                    refused_again += 1;
                } else {
                    panic!("unexpected verdict for {code}: {out}");
                }
            } else {
                assert!(
                    killed,
                    "gate verify printed no verdict without being killed: {out:?}"
                );
                killed_verifies += 1;
            }
            if killed || Instant::now() >= kill_at {
                break 'scan;
            }
        }
        watch.kill();
    }
    let rounds = drain(&db, &server.url, &token, Duration::from_secs(60));
    assert!(sync_once(&db, &server.url, &token, Duration::from_secs(60))
        .status
        .success());

    let s = ro(&server_db);
    let d = ro(&db);
    // Every ADMIT that was printed reached the server exactly once.
    for code in &printed {
        let n = count(
            &s,
            &format!("SELECT count(*) FROM verifications WHERE ticket_code = '{code}'"),
        );
        assert_eq!(
            n, 1,
            "{code}: printed ADMIT, {n} verifications on the server"
        );
    }
    // Committed-but-not-printed (killed between commit and print) ADMITs
    // are in the outbox too and count once; nothing counts twice.
    let local: Vec<String> = strings(&d, "SELECT entity_id FROM outbox WHERE kind = 'verify'");
    let local_set: BTreeSet<String> = local.iter().cloned().collect();
    assert_eq!(
        local.len(),
        local_set.len(),
        "a ticket admitted twice locally"
    );
    assert!(printed.iter().all(|c| local_set.contains(c)));
    let admits: BTreeMap<String, usize> = local_set.iter().map(|c| (c.clone(), 1)).collect();
    check_server_exactly_once(&server_db, &admits);
    check_device_outbox(&server_db, &db, device_id, &local);
    eprintln!(
        "(b) 20 kills; {scans} scans, {} ADMITs printed, {} committed without print, {refused_again} re-scans refused, \
         {killed_verifies} verifies killed, {rounds} clean rounds; {:.1?}",
        printed.len(),
        local.len() - printed.len(),
        started.elapsed()
    );
    assert!(
        printed.len() >= 20,
        "too few ADMITs to mean anything: {}",
        printed.len()
    );
}

// ---------------------------------------------------------------- (c)

fn verify(db: &Path, code: &str) -> serde_json::Value {
    let out = run(
        &[
            "gate",
            "verify",
            "--db",
            db.to_str().unwrap(),
            "--operator",
            "3",
            code,
        ],
        Duration::from_secs(30),
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("no verdict: {out:?}"))
}

fn last_json(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|_| panic!("no JSON line: {out:?}"))
}

/// A revoked token: the sync fails with a clear unauthorized error and the
/// outbox keeps every event pending.
#[test]
fn revoked_device_token_fails_clearly_and_keeps_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let server_db = dir.path().join("server.db");
    let codes: Vec<String> = (0..5).map(|i| format!("RV-{i}")).collect();
    let devices = seed_server(&server_db, &codes, 1);
    let (device_id, token) = devices[0].clone();
    let server = start_server(&server_db);
    let db = dir.path().join("device.db");
    assert!(sync_once(&db, &server.url, &token, Duration::from_secs(60))
        .status
        .success());
    for code in &codes[..3] {
        assert_eq!(verify(&db, code)["verdict"], "ADMIT");
    }
    let out = run(
        &[
            "device",
            "revoke",
            "--db",
            server_db.to_str().unwrap(),
            "--orq",
            "1",
            &device_id.to_string(),
        ],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{out:?}");

    for _ in 0..2 {
        let out = sync_once(&db, &server.url, &token, Duration::from_secs(60));
        assert!(!out.status.success(), "a revoked device synced");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("refused this device's token"),
            "unclear error: {stderr}"
        );
        let status = &last_json(&out)["status"];
        assert_eq!(status["pending"], 3, "{status}");
        assert!(
            status["last_error"]
                .as_str()
                .unwrap_or("")
                .contains("token"),
            "{status}"
        );
    }
    // `--watch` stops on it instead of retrying forever.
    let out = run(
        &[
            "sync",
            "--db",
            db.to_str().unwrap(),
            "--watch",
            "--interval",
            "0.2",
        ],
        Duration::from_secs(30),
    );
    assert!(
        !out.status.success() && out.status.code().is_some(),
        "watch kept going: {out:?}"
    );
    let d = ro(&db);
    assert_eq!(
        count(&d, "SELECT count(*) FROM outbox WHERE state = 'pending'"),
        3
    );
    assert_eq!(count(&d, "SELECT count(*) FROM outbox"), 3);
    let s = ro(&server_db);
    assert_eq!(count(&s, "SELECT count(*) FROM sync_events"), 0);
    // Still a gate: scanning offline goes on and queues.
    assert_eq!(verify(&db, &codes[3])["verdict"], "ADMIT");
    assert_eq!(pending(&db), 4);
}

/// The way out the error message names ("pair it again"): a new token for
/// the same gate database, after which the kept events are delivered.
#[test]
fn revoked_device_can_be_repaired_and_delivers_its_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let server_db = dir.path().join("server.db");
    let codes: Vec<String> = (0..3).map(|i| format!("RP-{i}")).collect();
    let devices = seed_server(&server_db, &codes, 2);
    let (device_id, token) = devices[0].clone();
    let server = start_server(&server_db);
    let db = dir.path().join("device.db");
    assert!(sync_once(&db, &server.url, &token, Duration::from_secs(60))
        .status
        .success());
    assert_eq!(verify(&db, &codes[0])["verdict"], "ADMIT");
    let out = run(
        &[
            "device",
            "revoke",
            "--db",
            server_db.to_str().unwrap(),
            "--orq",
            "1",
            &device_id.to_string(),
        ],
        Duration::from_secs(30),
    );
    assert!(out.status.success());
    let new_token = run(
        &[
            "device",
            "add",
            "--db",
            server_db.to_str().unwrap(),
            "--orq",
            "1",
            "--venue",
            "1",
            "--name",
            "gate-again",
        ],
        Duration::from_secs(30),
    );
    let new_token = String::from_utf8_lossy(&new_token.stdout)
        .trim()
        .to_string();
    let out = sync_once(&db, &server.url, &new_token, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "re-pairing with a new token failed: {out:?}"
    );
    assert_eq!(pending(&db), 0);
}

/// One event the server refuses (a ticket it does not know, forged into the
/// device's replica) ends `rejected`, stays visible, and the events behind it
/// are applied.
#[test]
fn a_rejected_event_stays_visible_and_does_not_block_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let server_db = dir.path().join("server.db");
    let codes: Vec<String> = (0..4).map(|i| format!("RJ-{i}")).collect();
    let devices = seed_server(&server_db, &codes, 1);
    let (device_id, token) = devices[0].clone();
    let server = start_server(&server_db);
    let db = dir.path().join("device.db");
    assert!(sync_once(&db, &server.url, &token, Duration::from_secs(60))
        .status
        .success());
    {
        // Forge a ticket only this replica has, reserved for the synced slot.
        let store = Store::open(&db).unwrap();
        let slot: String = ro(&db)
            .query_row("SELECT id FROM reservation_slots LIMIT 1", [], |r| r.get(0))
            .unwrap();
        let now = Utc::now();
        store
            .insert_tickets(
                ORQ,
                &[NewTicket::plain("RJ-FORGED", ActivationMode::Immediate).unwrap()],
                now,
            )
            .unwrap();
        let req = ReserveRequest {
            ticket: TicketCode::parse("RJ-FORGED").unwrap(),
            slot_id: slot.parse().unwrap(),
            contact: Contact::validate("gate@example.com", "+34612345678").unwrap(),
        };
        store.reserve_slot(ORQ, &req, now).unwrap();
    }
    assert_eq!(verify(&db, &codes[0])["verdict"], "ADMIT");
    assert_eq!(verify(&db, "RJ-FORGED")["verdict"], "ADMIT");
    for code in &codes[1..] {
        assert_eq!(verify(&db, code)["verdict"], "ADMIT");
    }
    let out = sync_once(&db, &server.url, &token, Duration::from_secs(60));
    assert!(out.status.success(), "{out:?}");
    let report = last_json(&out);
    assert_eq!(report["round"]["rejected"], 1, "{report}");
    assert_eq!(report["round"]["applied"], 4, "{report}");
    assert_eq!(report["status"]["rejected"], 1, "{report}");
    assert_eq!(report["status"]["pending"], 0, "{report}");
    let d = ro(&db);
    let (state, result): (String, String) = d
        .query_row(
            "SELECT state, result FROM outbox WHERE entity_id = 'RJ-FORGED'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(state, "rejected");
    assert!(result.contains("NOT_FOUND"), "{result}");
    // Not retried, still listed, the others applied on the server.
    let out = sync_once(&db, &server.url, &token, Duration::from_secs(60));
    assert_eq!(last_json(&out)["round"]["uploaded"], 0);
    assert_eq!(last_json(&out)["status"]["rejected"], 1);
    let admits: BTreeMap<String, usize> = codes.iter().map(|c| (c.clone(), 1)).collect();
    let s = ro(&server_db);
    assert_eq!(count(&s, "SELECT count(*) FROM sync_events"), 5);
    assert_eq!(count(&s, "SELECT count(*) FROM verifications"), 4);
    for code in &codes {
        assert_eq!(
            count(&s, &format!("SELECT count(*) FROM tickets WHERE ticket_code = '{code}' AND verified_at IS NOT NULL")),
            1
        );
    }
    assert_eq!(admits.len(), 4);
    let _ = device_id;
}

fn verify_as(db: &Path, code: &str, operator: i64) -> serde_json::Value {
    let out = run(
        &[
            "gate",
            "verify",
            "--db",
            db.to_str().unwrap(),
            "--operator",
            &operator.to_string(),
            code,
        ],
        Duration::from_secs(30),
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("no verdict: {out:?}"))
}

fn ticket_facts(db: &Path, code: &str) -> (Option<String>, Option<i64>) {
    ro(db)
        .query_row(
            "SELECT verified_at, verified_by FROM tickets WHERE ticket_code = ?1",
            [code],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

/// Two gates admit the same ticket offline. Gate B's push fails, so its next
/// round pulls while B's event waits out the retry backoff; then the event
/// goes through and is answered `conflict`. Afterwards B's replica must show
/// the server's canonical (first) verification, like every other replica.
#[test]
fn double_entry_replica_converges_after_a_failed_push() {
    let dir = tempfile::tempdir().unwrap();
    let server_db = dir.path().join("server.db");
    let code = "DV-X";
    let devices = seed_server(&server_db, &[code.to_string()], 2);
    let server = start_server(&server_db);
    let proxy = Proxy::start(server.addr, 1);
    proxy.mode.store(CLEAN, Ordering::SeqCst);
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    assert!(
        sync_once(&a, &server.url, &devices[0].1, Duration::from_secs(60))
            .status
            .success()
    );
    assert!(
        sync_once(&b, &proxy.url(), &devices[1].1, Duration::from_secs(60))
            .status
            .success()
    );

    let at_a = verify_as(&a, code, 11);
    assert_eq!(at_a["verdict"], "ADMIT");
    assert!(
        sync_once(&a, &server.url, &devices[0].1, Duration::from_secs(60))
            .status
            .success()
    );
    let at_b = verify_as(&b, code, 22);
    assert_eq!(at_b["verdict"], "ADMIT");
    // A's admission is the earlier one: a sync round (another process) ran
    // between the two millisecond clock readings.
    let (first, second) = (at_a["verified_at"].as_str(), at_b["verified_at"].as_str());
    assert!(
        first.is_some() && first < second,
        "premise: A admitted first ({first:?} < {second:?})"
    );

    // B's pushes are answered 503 until its event's retry is comfortably in
    // the future.
    proxy.mode.store(PUSH_503, Ordering::SeqCst);
    let next_attempt = || -> chrono::DateTime<Utc> {
        let raw: String = ro(&b)
            .query_row("SELECT next_attempt_at FROM outbox", [], |r| r.get(0))
            .unwrap();
        chrono::DateTime::parse_from_rfc3339(&raw)
            .unwrap()
            .with_timezone(&Utc)
    };
    for _ in 0..6 {
        let out = sync_once(&b, &proxy.url(), &devices[1].1, Duration::from_secs(60));
        assert!(!out.status.success());
        let wait = next_attempt() - Utc::now();
        if wait > chrono::Duration::milliseconds(1500) {
            break;
        }
        // The backoff has run out, as far as the gate can tell (no waiting
        // for the wall clock).
        retry_due_now(&b);
    }
    // The network is back: this round pulls A's verification of the ticket
    // while B's own event for it is still pending.
    proxy.mode.store(CLEAN, Ordering::SeqCst);
    let out = sync_once(&b, &proxy.url(), &devices[1].1, Duration::from_secs(60));
    assert!(out.status.success());
    assert_eq!(
        last_json(&out)["round"]["uploaded"],
        0,
        "premise: B's event still backing off"
    );
    assert_eq!(pending(&b), 1);
    retry_due_now(&b);
    drain(&b, &proxy.url(), &devices[1].1, Duration::from_secs(30));
    assert!(
        sync_once(&b, &proxy.url(), &devices[1].1, Duration::from_secs(60))
            .status
            .success()
    );
    assert!(
        sync_once(&a, &server.url, &devices[0].1, Duration::from_secs(60))
            .status
            .success()
    );

    let state: String = ro(&b)
        .query_row("SELECT state FROM outbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(state, "conflict");
    let canonical = ticket_facts(&server_db, code);
    assert_eq!(
        canonical.1,
        Some(11),
        "the first verification wins on the server"
    );
    assert_eq!(ticket_facts(&a, code), canonical, "gate A's replica");
    assert_eq!(
        ticket_facts(&b, code),
        canonical,
        "gate B's replica keeps its own losing verification"
    );
}
