//! The gate's sync loop and its re-pairing policy, from the CLI. A gate whose
//! database another process holds locked keeps its sync loop
//! and catches up once the lock is gone: real processes on 127.0.0.1 (an
//! `entrada serve`, the gate's `entrada sync --watch`, and a child process
//! of this test binary holding `BEGIN EXCLUSIVE` on the gate's file).
//!
//! `cargo test -p entrada --test sync_loop`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use chrono::{NaiveTime, Utc};
use entrada::domain::{ActivationMode, Contact, NewSlot, NewTicket, Orq, Role, SlotId, TicketCode};
use entrada::store::{ReserveRequest, Store};
use rusqlite::{Connection, OpenFlags};

const ORQ: Orq = Orq(1);
const BIN: &str = env!("CARGO_BIN_EXE_entrada");
const LOCK_DB_ENV: &str = "ENTRADA_TEST_HOLD_LOCK_ON";

/// A spawned process, killed (by its pid) and reaped on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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

fn output(args: &[&str]) -> Output {
    entrada()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run entrada")
}

fn run(args: &[&str]) -> Output {
    let out = output(args);
    assert!(out.status.success(), "entrada {args:?}: {out:?}");
    out
}

fn healthy(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = write!(
        s,
        "GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200")
}

fn start_server(db: &Path) -> (Proc, String) {
    for _ in 0..5 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut proc = Proc(
            entrada()
                .args(["serve", "--db"])
                .arg(db)
                .args(["--listen", &addr.to_string(), "--lookups-per-minute", "0"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn entrada serve"),
        );
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if healthy(addr) {
                return (proc, format!("http://{addr}"));
            }
            if proc.0.try_wait().unwrap().is_some() {
                break; // port taken meanwhile: try another
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = proc.0.kill();
    }
    panic!("entrada serve did not become ready");
}

fn reserve(store: &Store, slot: SlotId, codes: &[&str]) {
    let tickets: Vec<_> = codes
        .iter()
        .map(|c| NewTicket::plain(c, ActivationMode::Immediate).unwrap())
        .collect();
    store.insert_tickets(ORQ, &tickets, Utc::now()).unwrap();
    for c in codes {
        let req = ReserveRequest {
            ticket: TicketCode::parse(c).unwrap(),
            slot_id: slot,
            contact: Contact::validate("gate@example.com", "+34612345678").unwrap(),
        };
        store.reserve_slot(ORQ, &req, Utc::now()).unwrap();
    }
}

/// A server database: a UTC venue, an all-day slot today with three
/// reserved tickets `LK-0..2`, its operators 1..=3, and a device token.
fn seed(server_db: &Path) -> (SlotId, String) {
    let store = Store::open(server_db).unwrap();
    let now = Utc::now();
    let venue = store.add_venue(ORQ, "Locked Hall", "UTC", now).unwrap();
    for i in 1..=3 {
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
                total_capacity: 100,
            },
            now,
        )
        .unwrap();
    reserve(&store, slot.id, &["LK-0", "LK-1", "LK-2"]);
    let (token, _) = store.add_device(ORQ, venue.id, "gate", now).unwrap();
    (slot.id, token)
}

fn count(db: &Path, sql: &str) -> i64 {
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Another process holding the gate's database in an exclusive
/// transaction: this test binary again, running `hold_exclusive_lock`.
/// The lock goes when `release` closes its stdin.
struct LockHolder {
    proc: Proc,
    stdin: Option<ChildStdin>,
    /// Kept open: the child reports its test result on it when done.
    _stdout: BufReader<ChildStdout>,
}

impl LockHolder {
    fn hold(db: &Path) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "hold_exclusive_lock",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(LOCK_DB_ENV, db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the lock holder");
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        // libtest prints "test hold_exclusive_lock ... " before the output.
        while !line.trim_end().ends_with("LOCKED") {
            line.clear();
            let read = stdout.read_line(&mut line).unwrap();
            assert!(read > 0, "the lock holder did not lock {}", db.display());
        }
        Self {
            proc: Proc(child),
            stdin,
            _stdout: stdout,
        }
    }

    fn release(mut self) {
        drop(self.stdin.take());
        let status = self.proc.0.wait().unwrap();
        assert!(status.success(), "the lock holder failed: {status}");
    }
}

/// Not a test: the other process of `a_gate_whose_database_is_locked_...`.
#[test]
#[ignore = "run as a child process by the lock test"]
fn hold_exclusive_lock() {
    let Some(db) = std::env::var_os(LOCK_DB_ENV) else {
        return;
    };
    let c = Connection::open(db).unwrap();
    c.execute_batch("BEGIN EXCLUSIVE; UPDATE device_identity SET name = name;")
        .unwrap();
    println!("LOCKED");
    std::io::stdout().flush().unwrap();
    // Until the test closes our stdin (or dies).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    c.execute_batch("ROLLBACK").unwrap();
}

/// The sync loop's stderr, collected as it comes.
fn collect(stderr: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut t = sink.lock().unwrap();
            t.push_str(&line);
            t.push('\n');
        }
    });
    text
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_gate_whose_database_is_locked_by_another_process_keeps_syncing_and_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let (server_db, gate_db) = (dir.path().join("server.db"), dir.path().join("gate.db"));
    let (slot, token) = seed(&server_db);
    let (_server, url) = start_server(&server_db);
    let gate = gate_db.to_str().unwrap();
    run(&[
        "sync", "--db", gate, "--server", &url, "--token", &token, "--once",
    ]);
    // Three admissions queued for the server.
    for code in ["LK-0", "LK-1", "LK-2"] {
        let out = run(&["gate", "verify", "--db", gate, "--operator", "3", code]);
        let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(verdict["verdict"], "ADMIT", "{code}");
    }
    let pending = "SELECT count(*) FROM outbox WHERE state = 'pending'";
    assert_eq!(count(&gate_db, pending), 3);

    // Another process takes the gate's database; the gate's loop starts.
    let lock = LockHolder::hold(&gate_db);
    let mut watch = entrada()
        .args(["sync", "--db", gate, "--watch", "--interval", "0.2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn entrada sync --watch");
    let log = collect(watch.stderr.take().unwrap());
    let mut watch = Proc(watch);
    // Meanwhile the server gets news for this gate.
    reserve(&Store::open(&server_db).unwrap(), slot, &["LK-LATE"]);

    let failed_rounds =
        |log: &Mutex<String>| log.lock().unwrap().matches("sync round failed").count();
    let mut exited = || watch.0.try_wait().unwrap().is_some();
    wait_for(
        "a round failing on the lock",
        Duration::from_secs(60),
        || failed_rounds(&log) >= 1 || exited(),
    );
    // The events reached the server, but the gate could not record it.
    assert_eq!(count(&gate_db, pending), 3);
    // Failing on the lock again and again: the loop goes on.
    wait_for("a second failed round", Duration::from_secs(60), || {
        failed_rounds(&log) >= 2 || exited()
    });
    assert!(
        !exited(),
        "the sync loop ended on a locked database: {}",
        log.lock().unwrap()
    );
    assert!(
        log.lock().unwrap().contains("DATABASE_BUSY"),
        "{}",
        log.lock().unwrap()
    );

    lock.release();
    let late = "SELECT count(*) FROM tickets WHERE ticket_code = 'LK-LATE'";
    wait_for("the gate to catch up", Duration::from_secs(90), || {
        count(&gate_db, pending) == 0 && count(&gate_db, late) == 1
    });
    assert!(watch.0.try_wait().unwrap().is_none(), "the loop ended");
    let s = Connection::open_with_flags(&server_db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let verified: i64 = s
        .query_row(
            "SELECT count(*) FROM tickets WHERE ticket_code LIKE 'LK-_' AND verified_at IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(verified, 3, "each admission applied on the server");
    let applied: i64 = count(
        &gate_db,
        "SELECT count(*) FROM outbox WHERE state = 'applied'",
    );
    assert_eq!(applied, 3, "the gate recorded each as applied once");
}

/// The one re-pairing policy, from the CLI (as in the app): a new server or
/// token the server cannot confirm is not written and the gate syncs on with
/// its pairing; a token the server refuses is an error; nothing is written
/// in either case.
#[test]
fn cli_re_pairing_keeps_the_pairing_when_the_new_one_cannot_be_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let (server_db, gate_db) = (dir.path().join("server.db"), dir.path().join("gate.db"));
    let (_, token) = seed(&server_db);
    let (_server, url) = start_server(&server_db);
    let gate = gate_db.to_str().unwrap();
    run(&[
        "sync", "--db", gate, "--server", &url, "--token", &token, "--once",
    ]);
    let out = run(&["gate", "verify", "--db", gate, "--operator", "3", "LK-0"]);
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["verdict"], "ADMIT");
    let pairing = "SELECT server_url || ' ' || token FROM device_identity";
    let pairing = |db: &Path| -> String {
        let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        c.query_row(pairing, [], |r| r.get(0)).unwrap()
    };
    let before = pairing(&gate_db);
    assert_eq!(before, format!("{url} {token}"));
    let pending = "SELECT count(*) FROM outbox WHERE state = 'pending'";

    // Nothing answers on port 9: not applied, and the round runs on the
    // current pairing (the admission reaches the server).
    let out = output(&[
        "sync",
        "--db",
        gate,
        "--server",
        "http://127.0.0.1:9",
        "--token",
        "dev_new",
        "--once",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stderr.contains("SERVER_UNREACHABLE") && stderr.contains("not applied"),
        "{stderr}"
    );
    assert_eq!(pairing(&gate_db), before);
    assert_eq!(count(&gate_db, pending), 0);

    // A token the server refuses: an error, the pairing as it was.
    let out = output(&[
        "sync",
        "--db",
        gate,
        "--server",
        &url,
        "--token",
        "dev_not-a-token",
        "--once",
    ]);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused this device's token"),
        "{out:?}"
    );
    assert_eq!(pairing(&gate_db), before);
}
