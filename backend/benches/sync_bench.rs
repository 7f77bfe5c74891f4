//! Sync through real processes on 127.0.0.1: an `entrada serve` process and
//! gate devices driven by `entrada sync` (release build).
//!
//! (i)   first sync of a large replica (tickets + reservations) to an empty
//!       device, next to the floor of fetching the same pages without
//!       applying them;
//! (ii)  pushing many offline verifications in one round;
//! (iii) how long a verification on gate A takes to show on gate B when both
//!       run `entrada sync --watch --interval 1`.
//!
//! `cargo bench -p entrada --bench sync_bench [-- --quick]`
//! Prints a Markdown table; medians over rounds, ratios within one run.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{NaiveTime, Utc};
use entrada::domain::{
    ActivationMode, Contact, Gate, NewSlot, NewTicket, OperatorId, Orq, TicketCode,
};
use entrada::store::{ReserveRequest, Store};
use rusqlite::{Connection, OpenFlags};

const ORQ: Orq = Orq(1);
const BIN: &str = env!("CARGO_BIN_EXE_entrada");
const INTERVAL_S: f64 = 1.0;

struct Sizes {
    tickets: usize,
    push: usize,
    rounds: usize,
    latency_rounds: usize,
}

/// A spawned process, killed (by pid) and reaped on drop.
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn code(i: usize) -> String {
    format!("SB-{i:06}")
}

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
    String::from_utf8_lossy(&buf)
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn start_server(db: &Path) -> (Proc, SocketAddr) {
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
                .unwrap(),
        );
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if http_status(addr, "/api/health") == Some(200) {
                return (proc, addr);
            }
            if proc.0.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("entrada serve did not start");
}

/// The server database: a UTC venue, an all-day slot today, `n` active
/// tickets each reserved for it, and `devices` gate devices.
fn seed(db: &Path, n: usize, devices: usize) -> Vec<String> {
    let now = Utc::now();
    let store = Store::open(db).unwrap();
    let venue = store.add_venue(ORQ, "Bench", "UTC", now).unwrap();
    // Operators 1 and 2 scan at the gates (the server rejects unknown ones).
    for name in ["Bench op 1", "Bench op 2"] {
        store
            .add_operator(ORQ, entrada::domain::Role::Operator, name, None, now)
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
                total_capacity: 10_000_000,
            },
            now,
        )
        .unwrap();
    let tickets: Vec<NewTicket> = (0..n)
        .map(|i| NewTicket::plain(&code(i), ActivationMode::Immediate).unwrap())
        .collect();
    for chunk in tickets.chunks(10_000) {
        store.insert_tickets(ORQ, chunk, now).unwrap();
    }
    let contact = Contact::validate("bench@example.com", "+34612345678").unwrap();
    for i in 0..n {
        let req = ReserveRequest {
            ticket: TicketCode::parse(&code(i)).unwrap(),
            slot_id: slot.id,
            contact: contact.clone(),
        };
        store.reserve_slot(ORQ, &req, now).unwrap();
    }
    (0..devices)
        .map(|i| {
            store
                .add_device(ORQ, venue.id, &format!("bench-gate-{i}"), now)
                .unwrap()
                .0
        })
        .collect()
}

/// One `entrada sync --once`; its wall time and its JSON line.
fn sync_once(db: &Path, url: &str, token: &str) -> (Duration, serde_json::Value) {
    let start = Instant::now();
    let out = entrada()
        .args(["sync", "--db", db.to_str().unwrap(), "--server", url])
        .args(["--token", token, "--once"])
        .output()
        .unwrap();
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "sync failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(text.lines().last().unwrap_or("{}")).unwrap();
    (took, json)
}

fn ro(db: &Path) -> Connection {
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

fn count(db: &Path, sql: &str) -> i64 {
    ro(db).query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The floor for a first sync: the same pages fetched over HTTP and parsed,
/// not applied.
fn fetch_all_pages(url: &str, token: &str) -> (Duration, usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let start = Instant::now();
        let (mut cursor, mut changes) = (0i64, 0usize);
        loop {
            let page: entrada::sync::protocol::ChangePage = http
                .get(format!("{url}/api/sync/changes"))
                .query(&[("cursor", cursor.to_string()), ("limit", "2000".into())])
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            changes += page.changes.len();
            cursor = page.next_cursor;
            if !page.has_more {
                break;
            }
        }
        (start.elapsed(), changes)
    })
}

struct Row {
    what: String,
    value: String,
    ratio: String,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes = if quick {
        Sizes {
            tickets: 3_000,
            push: 500,
            rounds: 2,
            latency_rounds: 3,
        }
    } else {
        Sizes {
            tickets: 100_000,
            push: 10_000,
            rounds: 3,
            latency_rounds: 7,
        }
    };
    let base = std::env::var_os("BENCH_DIR").unwrap_or_else(|| std::env::temp_dir().into());
    let dir = tempfile::tempdir_in(base).unwrap();
    let server_db = dir.path().join("server.db");
    // Devices: one per first-sync round, one observer, two for latency.
    let devices = sizes.rounds + 3;
    let t = Instant::now();
    let tokens = seed(&server_db, sizes.tickets, devices);
    let seeding = t.elapsed();
    let (_server, addr) = start_server(&server_db);
    let url = format!("http://{addr}");
    let changes_total = count(&server_db, "SELECT count(*) FROM change_log");
    eprintln!(
        "seeded {} tickets + reservations ({changes_total} changes) in {seeding:.1?}",
        sizes.tickets
    );
    let db = |i: usize| -> PathBuf { dir.path().join(format!("device-{i}.db")) };
    let mut rows = Vec::new();

    // (i) First sync to an empty device, and the fetch-only floor.
    let (mut firsts, mut floors) = (Vec::new(), Vec::new());
    for (r, token) in tokens.iter().enumerate().take(sizes.rounds) {
        let (floor, n) = fetch_all_pages(&url, token);
        assert_eq!(n as i64, changes_total);
        floors.push(floor.as_secs_f64());
        let (took, json) = sync_once(&db(r), &url, token);
        assert_eq!(json["round"]["pulled"].as_i64(), Some(changes_total));
        assert_eq!(
            count(&db(r), "SELECT count(*) FROM tickets") as usize,
            sizes.tickets
        );
        firsts.push(took.as_secs_f64());
        eprintln!("(i) round {r}: first sync {took:.2?}, fetch only {floor:.2?}");
    }
    let first = median(firsts);
    let floor = median(floors);
    rows.push(Row {
        what: format!(
            "(i) first sync, empty device: {} tickets + {} reservations ({changes_total} changes, `sync --once` wall time)",
            sizes.tickets, sizes.tickets
        ),
        value: format!("{first:.2} s ({:.0} changes/s)", changes_total as f64 / first),
        ratio: format!("{:.2} of the 10 s target", first / 10.0),
    });
    rows.push(Row {
        what: "(i) floor: the same pages fetched + parsed, not applied".into(),
        value: format!("{floor:.2} s"),
        ratio: format!("first sync = {:.1}× floor", first / floor),
    });

    // (ii) Many offline verifications, then one round. An up-to-date
    //      observer then pulls the same changes, which splits the round
    //      into upload and pull.
    let observer = sizes.rounds;
    sync_once(&db(observer), &url, &tokens[observer]);
    let (mut scans, mut pushes, mut pulls) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..sizes.rounds {
        sync_once(&db(r), &url, &tokens[r]); // catch up with earlier rounds
        let store = Store::open(db(r)).unwrap();
        let start = Instant::now();
        for i in r * sizes.push..(r + 1) * sizes.push {
            let v = store
                .scan(
                    ORQ,
                    code(i).as_bytes(),
                    OperatorId(1),
                    &Gate::default(),
                    Utc::now(),
                )
                .unwrap();
            assert!(v.admit, "{v:?}");
        }
        scans.push(sizes.push as f64 / start.elapsed().as_secs_f64());
        drop(store);
        let (took, json) = sync_once(&db(r), &url, &tokens[r]);
        assert_eq!(json["round"]["applied"].as_u64(), Some(sizes.push as u64));
        assert_eq!(json["status"]["pending"].as_i64(), Some(0));
        let pulled = json["round"]["pulled"].as_i64().unwrap_or(0);
        let (pull, pjson) = sync_once(&db(observer), &url, &tokens[observer]);
        assert_eq!(pjson["round"]["pulled"].as_i64(), Some(pulled));
        pushes.push(took.as_secs_f64());
        pulls.push(pull.as_secs_f64());
        eprintln!(
            "(ii) round {r}: {} events pushed + {pulled} changes pulled in {took:.2?}; observer pull {pull:.2?}",
            sizes.push
        );
    }
    let (scan_rate, push, pull) = (median(scans), median(pushes), median(pulls));
    let round_rate = sizes.push as f64 / push;
    let upload_rate = sizes.push as f64 / (push - pull).max(1e-3);
    rows.push(Row {
        what: format!(
            "(ii) one round after {} offline verifications (upload + pull of the {} changes they made)",
            sizes.push,
            2 * sizes.push
        ),
        value: format!("{push:.2} s = {round_rate:.0} events/s"),
        ratio: format!("{:.2} of the local scan rate", round_rate / scan_rate),
    });
    rows.push(Row {
        what: "(ii) the same changes pulled by an up-to-date observer".into(),
        value: format!("{pull:.2} s"),
        ratio: format!("{:.2} of the round", pull / push),
    });
    rows.push(Row {
        what: "(ii) upload alone (round − observer pull)".into(),
        value: format!("{upload_rate:.0} events/s"),
        ratio: format!("{:.2} of the local scan rate", upload_rate / scan_rate),
    });
    rows.push(Row {
        what: "(ii) local offline scans (`Store::scan`, durable, outbox in the same commit)".into(),
        value: format!("{scan_rate:.0} scans/s"),
        ratio: "1.00".into(),
    });

    // (iii) A → B visibility with both gates on `sync --watch --interval 1`.
    let (a, b) = (sizes.rounds + 1, sizes.rounds + 2);
    sync_once(&db(a), &url, &tokens[a]);
    sync_once(&db(b), &url, &tokens[b]);
    let watch = |i: usize| {
        Proc(
            entrada()
                .args(["sync", "--db", db(i).to_str().unwrap(), "--watch"])
                .args(["--interval", &INTERVAL_S.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let (_wa, _wb) = (watch(a), watch(b));
    std::thread::sleep(Duration::from_millis(1500));
    let store_a = Store::open(db(a)).unwrap();
    let b_conn = ro(&db(b));
    let mut lags = Vec::new();
    let mut seed = 0x5EEDu64;
    for r in 0..sizes.latency_rounds {
        // Spread the scan over the watch loops' phase.
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(200 + (seed >> 33) % 900));
        let ticket = code(sizes.tickets - 1 - r);
        let v = store_a
            .scan(
                ORQ,
                ticket.as_bytes(),
                OperatorId(2),
                &Gate::default(),
                Utc::now(),
            )
            .unwrap();
        assert!(v.admit, "{v:?}");
        let start = Instant::now();
        loop {
            let seen: Option<String> = b_conn
                .query_row(
                    "SELECT verified_at FROM tickets WHERE ticket_code = ?1",
                    [&ticket],
                    |r| r.get(0),
                )
                .unwrap();
            if seen.is_some() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{ticket} never reached gate B"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        lags.push(start.elapsed().as_secs_f64());
        eprintln!("(iii) round {r}: {:.2?}", start.elapsed());
    }
    let worst = lags.iter().cloned().fold(0.0, f64::max);
    let lag = median(lags);
    rows.push(Row {
        what: format!(
            "(iii) verification on gate A visible on gate B, both `sync --watch --interval {INTERVAL_S}` ({} rounds; worst {worst:.2} s)",
            sizes.latency_rounds
        ),
        value: format!("{lag:.2} s"),
        ratio: format!(
            "{:.2} of the 2 s target; {:.2}× the interval",
            lag / 2.0,
            lag / INTERVAL_S
        ),
    });

    println!(
        "\nSync, {} ({} tickets; medians of {} rounds)\n",
        if quick { "quick" } else { "full" },
        sizes.tickets,
        sizes.rounds
    );
    println!("| measurement | median | ratio |");
    println!("|---|---:|---:|");
    for r in rows {
        println!("| {} | {} | {} |", r.what, r.value, r.ratio);
    }
}
