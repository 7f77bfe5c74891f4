//! Gate to gate with real processes (issue 14): a real `entrada serve`,
//! gates A and B that are real `entrada sync --watch --lan-listen --peer`
//! runs on their own SQLite files, admissions made by `entrada gate verify`
//! (another process: the exchange picks them up from the outbox). The
//! server goes away; the gates still see each other's admissions.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{NaiveTime, Utc};
use entrada::domain::{ActivationMode, Contact, NewSlot, NewTicket, Orq, Role, TicketCode};
use entrada::store::{ReserveRequest, Store};
use serde_json::{json, Value};

use common::procs::{free_port, http, pass, sync, verdict, Server, BIN};

struct Seeded {
    staff: String,
    gate_a: String,
    gate_b: String,
    /// A gate of another venue of the same org.
    gate_x: String,
}

/// A UTC venue with today's all-day slot and tickets V-0..V-5 reserved on it.
fn seed(db: &Path) -> Seeded {
    let store = Store::open(db).unwrap();
    let now = Utc::now();
    let orq = Orq(1);
    let venue = store.add_venue(orq, "Zoo", "UTC", now).unwrap();
    store
        .add_operator(orq, Role::Operator, "Olga", None, now)
        .unwrap();
    let slot = store
        .create_slot(
            orq,
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
    let contact = Contact::validate("zoo@example.com", "+12025551234").unwrap();
    for i in 0..6 {
        let t = NewTicket::plain(&format!("V-{i}"), ActivationMode::Immediate).unwrap();
        store
            .insert_tickets(orq, std::slice::from_ref(&t), now)
            .unwrap();
        let req = ReserveRequest {
            ticket: t.ticket_code,
            slot_id: slot.id,
            contact: contact.clone(),
        };
        store.reserve_slot(orq, &req, now).unwrap();
    }
    let token = |role| store.create_token(orq, role, None, None, now).unwrap().0;
    let device = |name| store.add_device(orq, venue.id, name, now).unwrap().0;
    Seeded {
        staff: token(Role::Operator),
        gate_a: device("Gate A"),
        gate_b: device("Gate B"),
        gate_x: {
            let other = store.add_venue(orq, "Aquarium", "UTC", now).unwrap();
            store.add_device(orq, other.id, "Gate X", now).unwrap().0
        },
    }
}

/// A gate's `entrada sync --watch` with its LAN exchange.
struct Gate {
    child: Child,
}

impl Gate {
    fn start(db: &Path, listen: u16, peers: &[u16], log: PathBuf) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.args([
            "sync",
            "--db",
            db.to_str().unwrap(),
            "--watch",
            "--interval",
            "0.3",
        ])
        .arg("--lan-listen")
        .arg(format!("127.0.0.1:{listen}"));
        for p in peers {
            cmd.arg("--peer").arg(format!("127.0.0.1:{p}"));
        }
        let child = cmd
            .env("ENTRADA_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        Gate { child }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn used_at(db: &Path, code: &str) -> Option<chrono::DateTime<Utc>> {
    let store = Store::open(db).ok()?;
    store
        .get_ticket(Orq(1), &TicketCode::parse(code).unwrap())
        .ok()?
        .verified_at
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    start.elapsed()
}

/// Pairs both gates and lets each learn the other's key (A registers
/// first, so A needs a second round).
fn pair_both(server: &Server, w: &Seeded, a: &Path, b: &Path) {
    for (db, token) in [(a, &w.gate_a), (b, &w.gate_b), (a, &w.gate_a)] {
        let (code, report) = sync(db, Some((&server.url, token)));
        assert_eq!(code, 0, "{report}");
    }
    for db in [a, b] {
        let peers = Store::open(db).unwrap().lan_peers().unwrap();
        assert_eq!(peers.len(), 1, "each gate lists the other: {peers:?}");
    }
}

fn links_up(a: &Path, b: &Path) {
    wait_for("both LAN links up", Duration::from_secs(20), || {
        [a, b].iter().all(|db| {
            Store::open(db)
                .unwrap()
                .lan_peers()
                .unwrap()
                .iter()
                .all(|p| p.last_seen_at.is_some())
        })
    });
}

#[test]
fn server_down_an_admission_at_a_is_refused_at_b_within_2s_and_uploaded_once() {
    let dir = tempfile::tempdir().unwrap();
    let server_db = dir.path().join("server.db");
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let w = seed(&server_db);
    let port = free_port();
    let server = Server::start_on(&server_db, port);
    pair_both(&server, &w, &a, &b);
    let (pa, pb) = (free_port(), free_port());
    let gate_a = Gate::start(&a, pa, &[pb], dir.path().join("a.log"));
    let gate_b = Gate::start(&b, pb, &[pa], dir.path().join("b.log"));
    links_up(&a, &b);
    server.stop();

    // The server is gone: A admits V-0; B has it within 2 s and refuses it,
    // saying when it was used (the operator's and the time's facts).
    assert_eq!(verdict(&pass(&a, "in", "V-0")), (0, "ADMIT"));
    let took = wait_for("B sees A's admission", Duration::from_secs(2), || {
        used_at(&b, "V-0").is_some()
    });
    eprintln!("admission at A visible at B after {took:?}");
    let refused = pass(&b, "in", "V-0");
    assert_eq!(verdict(&refused), (1, "ALREADY_VERIFIED"), "{}", refused.1);
    assert_eq!(used_at(&b, "V-0"), used_at(&a, "V-0"), "A's time, not B's");
    // B did not make the admission its own: nothing of V-0 in its outbox.
    let b_store = Store::open(&b).unwrap();
    assert!(
        b_store.pending_events().unwrap().is_empty(),
        "a received admission is not uploaded by the receiver"
    );
    // A replay changes nothing: B's exchange counted the event once.
    let peers = b_store.lan_peers().unwrap();
    assert_eq!(peers[0].received, 1, "{peers:?}");

    // The server is back: both sync; one verification, no conflict.
    let server = Server::start_on(&server_db, port);
    wait_for("A's admission uploaded", Duration::from_secs(20), || {
        Store::open(&a)
            .unwrap()
            .pending_events()
            .unwrap()
            .is_empty()
            && used_at(&server_db, "V-0").is_some()
    });
    std::thread::sleep(Duration::from_millis(800));
    drop((gate_a, gate_b));
    assert_eq!(sync(&b, None).0, 0);
    let (status, conflicts) = http(port, "GET", "/api/operator/conflicts", Some(&w.staff), None);
    assert_eq!((status, conflicts), (200, json!([])));
    assert_eq!(used_at(&server_db, "V-0"), used_at(&a, "V-0"));
    assert_eq!(
        used_at(&b, "V-0"),
        used_at(&a, "V-0"),
        "B converged with the server"
    );
    assert_eq!(
        verify_events(&server_db),
        1,
        "exactly one verification uploaded"
    );
    server.stop();
}

/// Issue 14: an admission a gate learnt from the server (not over the LAN)
/// names the gate that made it. A admits V-2 and syncs; B, with no LAN
/// exchange running, pulls it; B's scan answers ALREADY_VERIFIED naming
/// Gate A (its device name on the server, from A's token), the operator and
/// A's time.
#[test]
fn an_admission_pulled_from_the_server_names_the_gate_the_operator_and_the_time() {
    let dir = tempfile::tempdir().unwrap();
    let server_db = dir.path().join("server.db");
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let w = seed(&server_db);
    let server = Server::start_on(&server_db, free_port());
    pair_both(&server, &w, &a, &b);

    assert_eq!(verdict(&pass(&a, "in", "V-2")), (0, "ADMIT"));
    let admitted = used_at(&a, "V-2").expect("A recorded its admission");
    assert_eq!(sync(&a, None).0, 0, "A uploads");
    assert!(Store::open(&a)
        .unwrap()
        .pending_events()
        .unwrap()
        .is_empty());
    assert_eq!(sync(&b, None).0, 0, "B pulls");

    let refused = pass(&b, "in", "V-2");
    assert_eq!(verdict(&refused), (1, "ALREADY_VERIFIED"), "{}", refused.1);
    assert_eq!(refused.1["verified_gate"], "Gate A", "{}", refused.1);
    assert_eq!(refused.1["verified_by"], 1, "operator 1 let them in");
    let at: chrono::DateTime<Utc> = refused.1["verified_at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("a time: {}", refused.1));
    assert_eq!(at, admitted, "A's time");
    // B knew it from the server's row only: nothing came over the LAN and
    // B made no admission of its own.
    let b_store = Store::open(&b).unwrap();
    assert_eq!(b_store.lan_peers().unwrap()[0].received, 0);
    assert!(b_store.pending_events().unwrap().is_empty());
    server.stop();
}

fn log_count(log: &Path, line: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches(line)
        .count()
}

/// A dialer notices at once that its peer's process died (its socket
/// closes): it relinks as soon as the peer is back, without waiting for a
/// local event to find the link dead, and the next admission arrives
/// within the usual bound.
#[test]
fn a_dialer_notices_its_peer_died_and_relinks_before_the_next_admission() {
    let dir = tempfile::tempdir().unwrap();
    let server_db = dir.path().join("server.db");
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let w = seed(&server_db);
    let server = Server::start_on(&server_db, free_port());
    pair_both(&server, &w, &a, &b);
    server.stop();
    let (pa, pb) = (free_port(), free_port());
    let a_log = dir.path().join("a.log");
    let _gate_a = Gate::start(&a, pa, &[pb], a_log.clone());
    let mut gate_b = Gate::start(&b, pb, &[pa], dir.path().join("b.log"));
    links_up(&a, &b);
    // The link is marked seen in the replica just before its log line.
    wait_for("A logs its link up", Duration::from_secs(10), || {
        log_count(&a_log, "LAN link up") >= 1
    });
    assert_eq!(log_count(&a_log, "LAN link up"), 1, "A dialled B once");

    // kill -9 of B (our child, by its PID): A's idle dialer sees the
    // socket close, with no event of its own to send.
    gate_b.child.kill().unwrap();
    gate_b.child.wait().unwrap();
    let noticed = wait_for("A notices B is gone", Duration::from_secs(2), || {
        log_count(&a_log, "LAN link ended") >= 1
    });
    eprintln!("A noticed the closed link after {noticed:?}");
    let _gate_b = Gate::start(&b, pb, &[pa], dir.path().join("b2.log"));
    // The restart of a debug build (slow on a loaded machine), back-off to
    // 2 s at most, then the handshake: relinked with no event of A's (A has
    // admitted nothing yet: only its dialer's own retries relink it).
    let relinked = wait_for("A relinks to B by itself", Duration::from_secs(20), || {
        log_count(&a_log, "LAN link up") >= 2
    });
    eprintln!("A relinked {relinked:?} after B started again");

    assert_eq!(verdict(&pass(&a, "in", "V-3")), (0, "ADMIT"));
    let took = wait_for("B sees A's admission", Duration::from_secs(2), || {
        used_at(&b, "V-3").is_some()
    });
    eprintln!("admission at A visible at B after {took:?} (relinked before it)");
    // The new link stays: no handshake again every 2 s (a churn would log
    // two more "LAN link up" in this window; load may cost one relink).
    std::thread::sleep(Duration::from_secs(4));
    let ups = log_count(&a_log, "LAN link up");
    assert!(ups <= 3, "A linked {ups} times: the link keeps ending");
}

/// A link that was up and ended (here B closes it: newer links from A's
/// key replace A's dialer's, as after a reconnect) is dialled again after
/// the minimum wait each time; the back-off of failed dials (doubling to
/// 2 s) does not creep up with every ended link.
#[test]
fn a_link_that_was_up_is_redialled_at_once_each_time_it_ends() {
    use entrada::sync::lan::{LanConfig, LanExchange, MAX_LINKS_PER_PEER, STABLE_LINK};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let server_db = dir.path().join("server.db");
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let w = seed(&server_db);
    let server = Server::start_on(&server_db, free_port());
    pair_both(&server, &w, &a, &b);
    server.stop();
    let pb = free_port();
    let addr = format!("127.0.0.1:{pb}");
    let _gate_b = Gate::start(&b, pb, &[], dir.path().join("b.log"));
    wait_for("B listening", Duration::from_secs(20), || {
        TcpStream::connect(("127.0.0.1", pb)).is_ok()
    });
    let dialer = Arc::new(LanExchange::new(Arc::new(Store::open(&a).unwrap())).unwrap());
    // A's key too, for the links that make B close the dialer's.
    let other = LanExchange::new(Arc::new(Store::open(&a).unwrap())).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let running = runtime.spawn(dialer.clone().run(LanConfig {
        listen: None,
        peers: vec![addr.clone()],
    }));
    wait_for("A's dialer links", Duration::from_secs(20), || {
        dialer.handshakes() == 1
    });
    let mut relinks = Vec::new();
    for _ in 0..5 {
        // Up long enough to count as a link that was up.
        std::thread::sleep(STABLE_LINK + Duration::from_millis(300));
        let before = dialer.handshakes();
        let held = runtime.block_on(async {
            let mut held = Vec::new();
            for _ in 0..MAX_LINKS_PER_PEER {
                held.push(other.connect(&addr).await.unwrap());
            }
            held
        });
        let start = Instant::now();
        wait_for("A's dialer relinks", Duration::from_secs(10), || {
            dialer.handshakes() > before
        });
        relinks.push(start.elapsed());
        runtime.block_on(async move { drop(held) });
    }
    eprintln!("relinked after {relinks:?}");
    // The old back-off waited 0.2, 0.4, 0.8, 1.6 and 2 s here.
    for (n, took) in relinks.iter().enumerate() {
        assert!(
            *took < Duration::from_millis(1500),
            "relink {n} took {took:?}: {relinks:?}"
        );
    }
    assert!(!running.is_finished());
    running.abort();
}

/// Two paths to one gate (here two addresses of B, as an mDNS
/// advertisement beside a `--peer`): the second path's dial ends after its
/// handshake and then waits for the link to end, instead of a handshake
/// every 2 s; the one link carries the admissions.
#[test]
fn a_second_path_to_a_linked_gate_costs_one_handshake_not_one_every_2s() {
    use entrada::sync::lan::{LanConfig, LanExchange};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let server_db = dir.path().join("server.db");
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let w = seed(&server_db);
    let server = Server::start_on(&server_db, free_port());
    pair_both(&server, &w, &a, &b);
    server.stop();
    let pb = free_port();
    let _gate_b = Gate::start(&b, pb, &[], dir.path().join("b.log"));
    wait_for("B listening", Duration::from_secs(20), || {
        TcpStream::connect(("127.0.0.1", pb)).is_ok()
    });
    let a_exchange = Arc::new(LanExchange::new(Arc::new(Store::open(&a).unwrap())).unwrap());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let running = runtime.spawn(a_exchange.clone().run(LanConfig {
        listen: None,
        peers: vec![format!("127.0.0.1:{pb}"), format!("localhost:{pb}")],
    }));
    // Over 6 s the old back-off (100 ms doubling to 2 s) made about 7
    // handshakes on the second path; now it makes one.
    std::thread::sleep(Duration::from_secs(6));
    let handshakes = a_exchange.handshakes();
    assert_eq!(
        handshakes, 2,
        "one link and one redundant dial, each one handshake"
    );
    assert!(!running.is_finished());
    assert_eq!(verdict(&pass(&a, "in", "V-4")), (0, "ADMIT"));
    wait_for("B sees A's admission", Duration::from_secs(2), || {
        used_at(&b, "V-4").is_some()
    });
    assert_eq!(a_exchange.handshakes(), 2, "the link carried it");
    running.abort();
}

/// Uploaded verifications the server holds.
fn verify_events(server_db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(server_db).unwrap();
    conn.query_row(
        "SELECT count(*) FROM sync_events WHERE kind = 'verify'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn two_gates_admitting_the_same_ticket_before_they_meet_converge_to_one_verification_and_a_double_entry(
) {
    let dir = tempfile::tempdir().unwrap();
    let server_db = dir.path().join("server.db");
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let w = seed(&server_db);
    let port = free_port();
    let server = Server::start_on(&server_db, port);
    pair_both(&server, &w, &a, &b);
    server.stop();

    // Within the propagation window (here: before the exchange runs), both
    // admit V-1; B admits first.
    assert_eq!(verdict(&pass(&b, "in", "V-1")), (0, "ADMIT"));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(verdict(&pass(&a, "in", "V-1")), (0, "ADMIT"));
    let (pa, pb) = (free_port(), free_port());
    let gate_a = Gate::start(&a, pa, &[pb], dir.path().join("a.log"));
    let gate_b = Gate::start(&b, pb, &[pa], dir.path().join("b.log"));
    wait_for(
        "both exchanged their event",
        Duration::from_secs(20),
        || {
            [&a, &b].iter().all(|db| {
                let peers = Store::open(db).unwrap().lan_peers().unwrap();
                peers[0].received == 1 && peers[0].sent == 1
            })
        },
    );
    // Each keeps its own admission (and its outbox entry) for the server.
    assert_eq!(Store::open(&a).unwrap().pending_events().unwrap().len(), 1);
    assert_eq!(Store::open(&b).unwrap().pending_events().unwrap().len(), 1);

    let server = Server::start_on(&server_db, port);
    wait_for("both uploaded", Duration::from_secs(20), || {
        [&a, &b].iter().all(|db| {
            Store::open(db)
                .unwrap()
                .pending_events()
                .unwrap()
                .is_empty()
        })
    });
    drop((gate_a, gate_b));
    let (status, conflicts) = http(port, "GET", "/api/operator/conflicts", Some(&w.staff), None);
    assert_eq!(status, 200);
    let conflicts = conflicts.as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0]["kind"], "DOUBLE_ENTRY", "{conflicts:?}");
    assert_eq!(
        used_at(&server_db, "V-1"),
        used_at(&b, "V-1"),
        "the earliest admission is the canonical one"
    );
    assert_eq!(
        verify_events(&server_db),
        2,
        "each gate uploaded its own, once"
    );
    server.stop();
}

/// A's event about `code`, signed by A's own key, claiming `venue`.
fn signed_by_a(a: &Store, code: &str, venue: i64) -> entrada::domain::sync::lan::SignedEvent {
    let p = a.pairing().unwrap().unwrap();
    let key = a.device_signing_key().unwrap().unwrap();
    let event: entrada::domain::sync::protocol::Event = serde_json::from_value(json!({
        "event_id": uuid::Uuid::now_v7(),
        "kind": "verify",
        "payload": { "ticket_code": code },
        "operator_id": 1,
        "device_time": Utc::now(),
    }))
    .unwrap();
    entrada::domain::sync::lan::sign(&key, p.info.device_id, p.info.orq, venue, &event)
}

/// Sends one frame and reads the answer: Some(ack) or None (link dropped).
async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    link: &mut S,
    frame: &[u8],
) -> Option<Value> {
    use entrada::sync::lan::{read_frame, write_frame};
    write_frame(link, frame).await.ok()?;
    let answer = tokio::time::timeout(Duration::from_secs(5), read_frame(link))
        .await
        .ok()?
        .ok()?;
    serde_json::from_slice(&answer).ok()
}

#[test]
fn hostile_peers_change_nothing_and_the_gate_keeps_scanning() {
    use entrada::sync::lan::LanExchange;
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let server_db = dir.path().join("server.db");
    let (a, b, x) = (
        dir.path().join("a.db"),
        dir.path().join("b.db"),
        dir.path().join("x.db"),
    );
    let w = seed(&server_db);
    let port = free_port();
    let server = Server::start_on(&server_db, port);
    pair_both(&server, &w, &a, &b);
    assert_eq!(sync(&x, Some((&server.url, &w.gate_x))).0, 0);
    server.stop();
    let pb = free_port();
    let log = dir.path().join("b.log");
    let _gate_b = Gate::start(&b, pb, &[], log.clone());
    let addr = format!("127.0.0.1:{pb}");
    let b_store = Store::open(&b).unwrap();
    let b_peer = b_store.lan_peers().unwrap();
    assert_eq!(b_peer.len(), 1, "B lists A only, not X of another venue");
    let a_store = Arc::new(Store::open(&a).unwrap());
    let a_venue = a_store.pairing().unwrap().unwrap().info.venue_id;
    wait_for("B listening", Duration::from_secs(20), || {
        TcpStream::connect(("127.0.0.1", pb)).is_ok()
    });

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // Another venue's gate, even one that lists B's key itself, cannot
        // hold a link: B does not list its key.
        let x_store = Arc::new(Store::open(&x).unwrap());
        x_store
            .set_peers(&[entrada::domain::sync::lan::PeerKey {
                device_id: b_store.pairing().unwrap().unwrap().info.device_id,
                name: "B".into(),
                public_key: b_store.device_public_key().unwrap().unwrap(),
            }])
            .unwrap();
        let x_exchange = LanExchange::new(x_store.clone()).unwrap();
        let x_event = {
            let p = x_store.pairing().unwrap().unwrap();
            let key = x_store.device_signing_key().unwrap().unwrap();
            let e = signed_by_a(&a_store, "V-3", a_venue).event;
            entrada::domain::sync::lan::sign(&key, p.info.device_id, p.info.orq, a_venue, &e)
        };
        match x_exchange.connect(&addr).await {
            Err(_) => {}
            Ok((mut link, _)) => assert_eq!(
                exchange(&mut link, &serde_json::to_vec(&x_event).unwrap()).await,
                None,
                "B answered another venue's gate"
            ),
        }

        // A (listed) over a real link: refusals are answered and change nothing.
        let a_exchange = Arc::new(LanExchange::new(a_store.clone()).unwrap());
        let (mut link, peer) = a_exchange.connect(&addr).await.unwrap();
        assert_eq!(
            peer,
            b_store.pairing().unwrap().unwrap().info.device_id,
            "the link proved B"
        );
        let mut tampered = signed_by_a(&a_store, "V-3", a_venue);
        tampered.event.payload = json!({ "ticket_code": "V-4" });
        let ack = exchange(&mut link, &serde_json::to_vec(&tampered).unwrap())
            .await
            .unwrap();
        assert_eq!(
            (ack["outcome"].as_str(), ack["code"].as_str()),
            (Some("refused"), Some("BAD_SIGNATURE")),
            "{ack}"
        );
        let other_venue = signed_by_a(&a_store, "V-3", a_venue + 1);
        let ack = exchange(&mut link, &serde_json::to_vec(&other_venue).unwrap())
            .await
            .unwrap();
        assert_eq!(ack["code"], "OTHER_VENUE", "{ack}");
        let relayed = x_event.clone();
        let ack = exchange(&mut link, &serde_json::to_vec(&relayed).unwrap())
            .await
            .unwrap();
        assert_eq!(
            ack["code"], "UNKNOWN_SENDER",
            "another gate's event over A's link: {ack}"
        );
        assert_eq!(used_at(&b, "V-3"), None);
        assert_eq!(used_at(&b, "V-4"), None);

        // A genuine event applies once; its replay is a no-op.
        let genuine = serde_json::to_vec(&signed_by_a(&a_store, "V-2", a_venue)).unwrap();
        assert_eq!(
            exchange(&mut link, &genuine).await.unwrap()["outcome"],
            "applied"
        );
        let first = used_at(&b, "V-2");
        assert!(first.is_some());
        assert_eq!(
            exchange(&mut link, &genuine).await.unwrap()["outcome"],
            "duplicate"
        );
        assert_eq!(used_at(&b, "V-2"), first);
        assert_eq!(Store::open(&b).unwrap().lan_peers().unwrap()[0].received, 1);

        // An oversized frame drops the link before its body is read.
        let mut huge = (entrada::domain::sync::lan::MAX_MESSAGE_BYTES as u32 + 1)
            .to_be_bytes()
            .to_vec();
        huge.extend(vec![b'{'; 64]);
        use tokio::io::AsyncWriteExt;
        link.write_all(&huge).await.unwrap();
        link.flush().await.unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read_to_end(&mut link, &mut rest),
        )
        .await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "the link stays open after an oversized frame: {read:?}"
        );

        // A flood of forged events: the link is dropped after MAX_REFUSED,
        // and B keeps scanning meanwhile.
        let (mut link, _) = a_exchange.connect(&addr).await.unwrap();
        let scanning = tokio::task::spawn_blocking({
            let b = b.clone();
            move || pass(&b, "in", "V-5")
        });
        let mut answered = 0;
        for _ in 0..(entrada::sync::lan::MAX_REFUSED + 10) {
            let mut forged = signed_by_a(&a_store, "V-1", a_venue);
            forged.signature = "00".repeat(64);
            match exchange(&mut link, &serde_json::to_vec(&forged).unwrap()).await {
                Some(_) => answered += 1,
                None => break,
            }
        }
        assert_eq!(
            answered,
            entrada::sync::lan::MAX_REFUSED + 1,
            "the flood was cut"
        );
        assert_eq!(
            verdict(&scanning.await.unwrap()),
            (0, "ADMIT"),
            "B kept scanning"
        );
        assert_eq!(used_at(&b, "V-1"), None);

        // One link per gate pair: while A's dialer is linked to B, a second
        // dial of B (another address, a copied mDNS advertisement) ends
        // after its handshake...
        let b_id = b_store.pairing().unwrap().unwrap().info.device_id;
        let first = tokio::spawn({
            let (a_exchange, addr) = (a_exchange.clone(), addr.clone());
            async move { a_exchange.dial_once(&addr).await }
        });
        let seen = |s: &Store| {
            s.lan_peers()
                .unwrap()
                .iter()
                .any(|p| p.last_seen_at.is_some())
        };
        let started = std::time::Instant::now();
        while !seen(&a_store) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "A's dialer never linked"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let second =
            tokio::time::timeout(Duration::from_secs(5), a_exchange.dial_once(&addr)).await;
        assert!(
            matches!(second, Ok(entrada::sync::lan::LanError::AlreadyLinked(p)) if p == b_id),
            "a second link from A to B: {second:?}"
        );
        assert!(!first.is_finished(), "the first link lives on");
        // ... and B holds at most MAX_LINKS_PER_PEER links from A: each
        // newer one is served, the oldest (the dialer's) is closed.
        let genuine = serde_json::to_vec(&signed_by_a(&a_store, "V-2", a_venue)).unwrap();
        let mut held = Vec::new();
        for n in 0..entrada::sync::lan::MAX_LINKS_PER_PEER {
            let (mut link, _) = a_exchange.connect(&addr).await.unwrap();
            // (The same new event each time: applied once, then duplicate.)
            let outcome = exchange(&mut link, &genuine)
                .await
                .map(|a| a["outcome"].clone());
            assert!(
                outcome == Some(json!("applied")) || outcome == Some(json!("duplicate")),
                "extra link {} from A is served: {outcome:?}",
                n + 1
            );
            held.push(link);
        }
        // (The dialer itself notices only at its next write: B's log says it.)
        let started = std::time::Instant::now();
        while !std::fs::read_to_string(&log)
            .unwrap()
            .contains("replaced by a newer link")
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "B never closed the oldest link from A"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let newest = held.last_mut().unwrap();
        assert!(
            exchange(newest, &genuine).await.is_some(),
            "the newest link from A is still served"
        );
        first.abort();
    });
    let logged = std::fs::read_to_string(&log).unwrap();
    for what in [
        "BAD_SIGNATURE",
        "OTHER_VENUE",
        "LAN replay ignored",
        "refused events",
        "LAN frame refused",
        "replaced by a newer link",
    ] {
        assert!(logged.contains(what), "B logged no {what:?}:\n{logged}");
    }
}

/// A process's resident memory (kB), from /proc.
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Hostile peers, part two (issue 14h): a flood of connections from one
/// address that never finish their handshake (another machine on the venue
/// network, here 127.0.0.2) holds at most its share of B's inbound slots:
/// a listed gate (A, from 127.0.0.1) still links and delivers, a
/// `gate verify` at B still answers promptly, B's memory stays bounded,
/// and B logs the refusals.
#[test]
fn a_connection_flood_from_one_address_does_not_lock_out_the_venues_gates() {
    use entrada::sync::lan::{LanExchange, MAX_INBOUND};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let server_db = dir.path().join("server.db");
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let w = seed(&server_db);
    let port = free_port();
    let server = Server::start_on(&server_db, port);
    pair_both(&server, &w, &a, &b);
    server.stop();
    let pb = free_port();
    let log = dir.path().join("b.log");
    let mut gate_b = Gate::start(&b, pb, &[], log.clone());
    wait_for("B listening", Duration::from_secs(20), || {
        TcpStream::connect(("127.0.0.1", pb)).is_ok()
    });
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kb(gate_b.child.id());
    let a_store = Arc::new(Store::open(&a).unwrap());
    let a_venue = a_store.pairing().unwrap().unwrap().info.venue_id;

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // Four times B's slots, from one address, each silent.
        let flood = silent_connections(pb, &["127.0.0.2"], 4 * MAX_INBOUND).await;
        assert!(flood.len() > MAX_INBOUND, "the flood connected");
        // Let B accept the whole backlog before A comes.
        tokio::time::sleep(Duration::from_millis(200)).await;

        // While the flood holds its connections: A links and delivers…
        let scanning = tokio::task::spawn_blocking({
            let b = b.clone();
            move || {
                let start = Instant::now();
                (pass(&b, "in", "V-5"), start.elapsed())
            }
        });
        let a_exchange = LanExchange::new(a_store.clone()).unwrap();
        let (mut link, _) = a_exchange
            .connect(&format!("127.0.0.1:{pb}"))
            .await
            .expect("a listed gate links during the flood");
        let genuine = serde_json::to_vec(&signed_by_a(&a_store, "V-2", a_venue)).unwrap();
        assert_eq!(
            exchange(&mut link, &genuine).await.unwrap()["outcome"],
            "applied"
        );
        // …and B keeps scanning, promptly.
        let (scanned, took) = scanning.await.unwrap();
        assert_eq!(verdict(&scanned), (0, "ADMIT"), "{}", scanned.1);
        assert!(took < Duration::from_secs(5), "gate verify took {took:?}");
        eprintln!("gate verify during the flood: {took:?}");
        drop(flood);
    });
    assert!(used_at(&b, "V-2").is_some(), "A's admission reached B");
    let after = rss_kb(gate_b.child.id());
    eprintln!("B resident memory: {before} kB before the flood, {after} kB after");
    assert!(
        after < before + 32 * 1024,
        "B's memory grew from {before} kB to {after} kB"
    );
    assert!(
        gate_b.child.try_wait().unwrap().is_none(),
        "B's sync --watch still runs"
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("too many handshakes from this address"),
        "B logged no refusal:\n{logged}"
    );
}

/// Silent TCP connections to `port` from `sources` (127.0.0.x addresses),
/// `each` from every one: handshakes that never finish.
async fn silent_connections(
    port: u16,
    sources: &[&str],
    each: usize,
) -> Vec<tokio::net::TcpStream> {
    let target: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut held = Vec::new();
    for source in sources {
        for _ in 0..each {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
            if let Ok(Ok(s)) =
                tokio::time::timeout(Duration::from_secs(2), socket.connect(target)).await
            {
                held.push(s);
            }
        }
    }
    held
}

/// A failed accept on the LAN port (here: B out of file descriptors while
/// silent connections hold them) is logged and retried; `sync --watch`
/// keeps running, and once descriptors are free again a listed gate links
/// and delivers. The descriptor limit is lowered on the running B with
/// `prlimit` (util-linux); without it the test says so and stops.
#[test]
fn a_failed_accept_is_logged_and_the_exchange_keeps_listening() {
    use entrada::sync::lan::LanExchange;
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let server_db = dir.path().join("server.db");
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let w = seed(&server_db);
    let port = free_port();
    let server = Server::start_on(&server_db, port);
    pair_both(&server, &w, &a, &b);
    server.stop();
    let pb = free_port();
    let log = dir.path().join("b.log");
    let mut gate_b = Gate::start(&b, pb, &[], log.clone());
    wait_for("B listening", Duration::from_secs(20), || {
        TcpStream::connect(("127.0.0.1", pb)).is_ok()
    });
    std::thread::sleep(Duration::from_millis(500));
    let pid = gate_b.child.id().to_string();
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let prlimit = |limit: &str| {
        Command::new("prlimit")
            .args(["--pid", &pid, &format!("--nofile={limit}")])
            .status()
            .is_ok_and(|s| s.success())
    };
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let (soft, hard) = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[3].to_string(), f[4].to_string())
        })
        .unwrap();
    // Only the soft limit moves: an unprivileged process may raise it again.
    let original = format!("{soft}:{hard}");
    if !prlimit(&format!("{}:{hard}", open + 2)) {
        eprintln!("SKIP: prlimit cannot lower the descriptor limit of a running process here");
        return;
    }
    let a_store = Arc::new(Store::open(&a).unwrap());
    let a_venue = a_store.pairing().unwrap().unwrap().info.venue_id;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let sources = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"];
        let held = silent_connections(pb, &sources, 4).await;
        assert!(!held.is_empty());
        let failed = tokio::task::spawn_blocking({
            let log = log.clone();
            move || {
                wait_for("a failed accept logged", Duration::from_secs(10), || {
                    std::fs::read_to_string(&log)
                        .unwrap_or_default()
                        .contains("LAN accept failed")
                })
            }
        });
        failed.await.unwrap();
        assert!(prlimit(&original), "limit restored");
        drop(held);
        // Listening again: a listed gate links and delivers.
        let a_exchange = LanExchange::new(a_store.clone()).unwrap();
        let (mut link, _) = a_exchange
            .connect(&format!("127.0.0.1:{pb}"))
            .await
            .expect("B listens again");
        let genuine = serde_json::to_vec(&signed_by_a(&a_store, "V-3", a_venue)).unwrap();
        assert_eq!(
            exchange(&mut link, &genuine).await.unwrap()["outcome"],
            "applied"
        );
    });
    assert!(
        gate_b.child.try_wait().unwrap().is_none(),
        "B's sync --watch still runs after failed accepts"
    );
    assert!(used_at(&b, "V-3").is_some());
}
