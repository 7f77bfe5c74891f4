//! Gate to gate (issue 14) through real processes on 127.0.0.1: an
//! `entrada serve`, N gates each running `entrada sync --watch --lan-listen
//! --peer …` (every other gate as a static peer), the server then stopped.
//! An admission made by `entrada gate verify` at one gate: how long until
//! another gate's replica shows it (the moment its next scan answers
//! ALREADY_VERIFIED). Measured from the return of `gate verify` (the
//! admission is committed) to the first read at the other gate that sees it.
//!
//! `cargo bench -p entrada --bench lan_bench [-- --gates N --admissions M]`
//! Prints a Markdown table.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{NaiveTime, Utc};
use entrada::domain::{ActivationMode, Contact, NewSlot, NewTicket, Orq, Role, TicketCode};
use entrada::store::{ReserveRequest, Store};

const BIN: &str = env!("CARGO_BIN_EXE_entrada");
const ORQ: Orq = Orq(1);

/// A spawned process, killed (by pid) and reaped on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run(args: &[&str]) -> bool {
    Command::new(BIN)
        .args(args)
        .env("ENTRADA_LOG", "warn")
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    let gates = arg("--gates", 10).max(2);
    let admissions = arg("--admissions", 100);
    let dir = tempfile::tempdir().unwrap();
    let server_db = dir.path().join("server.db");

    // A venue with today's all-day slot, `admissions` reserved tickets,
    // one operator and `gates` devices.
    let tokens: Vec<String> = {
        let store = Store::open(&server_db).unwrap();
        let now = Utc::now();
        let venue = store.add_venue(ORQ, "Zoo", "UTC", now).unwrap();
        store
            .add_operator(ORQ, Role::Operator, "Olga", None, now)
            .unwrap();
        let slot = store
            .create_slot(
                ORQ,
                &NewSlot {
                    venue_id: venue.id,
                    date: now.date_naive(),
                    start_time: NaiveTime::MIN,
                    end_time: NaiveTime::from_hms_opt(23, 59, 59).unwrap(),
                    total_capacity: admissions as i64 + 10,
                },
                now,
            )
            .unwrap();
        let contact = Contact::validate("zoo@example.com", "+12025551234").unwrap();
        for i in 0..admissions {
            let t = NewTicket::plain(&format!("L-{i}"), ActivationMode::Immediate).unwrap();
            store
                .insert_tickets(ORQ, std::slice::from_ref(&t), now)
                .unwrap();
            let req = ReserveRequest {
                ticket: t.ticket_code,
                slot_id: slot.id,
                contact: contact.clone(),
            };
            store.reserve_slot(ORQ, &req, now).unwrap();
        }
        (0..gates)
            .map(|g| {
                store
                    .add_device(ORQ, venue.id, &format!("Gate {g}"), now)
                    .unwrap()
                    .0
            })
            .collect()
    };
    let port = free_port();
    let server = Proc(
        Command::new(BIN)
            .args(["serve", "--db", server_db.to_str().unwrap(), "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .env("ENTRADA_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    let dbs: Vec<PathBuf> = (0..gates)
        .map(|g| dir.path().join(format!("gate-{g}.db")))
        .collect();
    // Two passes: the first registers every key, the second lists them all.
    for _ in 0..2 {
        for (db, token) in dbs.iter().zip(&tokens) {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !run(&[
                "sync",
                "--db",
                db.to_str().unwrap(),
                "--once",
                "--server",
                &url,
                "--token",
                token,
            ]) {
                assert!(Instant::now() < deadline, "gate did not pair");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    let ports: Vec<u16> = (0..gates).map(|_| free_port()).collect();
    let _watchers: Vec<Proc> = (0..gates)
        .map(|g| {
            let mut cmd = Command::new(BIN);
            cmd.args(["sync", "--db", dbs[g].to_str().unwrap(), "--watch"])
                .arg("--lan-listen")
                .arg(format!("127.0.0.1:{}", ports[g]));
            for (h, p) in ports.iter().enumerate() {
                if h != g {
                    cmd.arg("--peer").arg(format!("127.0.0.1:{p}"));
                }
            }
            Proc(
                cmd.env("ENTRADA_LOG", "warn")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    let stores: Vec<Store> = dbs.iter().map(|db| Store::open(db).unwrap()).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stores.iter().all(|s| {
        let peers = s.lan_peers().unwrap();
        peers.len() == gates - 1 && peers.iter().all(|p| p.last_seen_at.is_some())
    }) {
        assert!(Instant::now() < deadline, "not every link came up");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(server);

    let mut latencies = Vec::new();
    for i in 0..admissions {
        let (at, to) = (i % gates, (i + 1 + i / gates) % gates);
        let to = if to == at { (to + 1) % gates } else { to };
        let code = format!("L-{i}");
        assert!(
            run(&[
                "gate",
                "verify",
                "--db",
                dbs[at].to_str().unwrap(),
                "--operator",
                "1",
                &code
            ]),
            "admission at gate {at}"
        );
        let committed = Instant::now();
        let ticket = TicketCode::parse(&code).unwrap();
        loop {
            if seen(&stores[to], &ticket) {
                latencies.push(committed.elapsed());
                break;
            }
            assert!(
                committed.elapsed() < Duration::from_secs(10),
                "{code} never reached gate {to}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("| gates | admissions | median | p99 | max |");
    println!("|---|---|---|---|---|");
    println!(
        "| {gates} | {} | {:.1} ms | {:.1} ms | {:.1} ms |",
        latencies.len(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap())
    );
}

fn seen(store: &Store, code: &TicketCode) -> bool {
    store
        .get_ticket(ORQ, code)
        .is_ok_and(|t| t.verified_at.is_some())
}
