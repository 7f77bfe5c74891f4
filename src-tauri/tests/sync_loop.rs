//! The gate app's sync loop and its re-pairing, against a real Entrada
//! server on 127.0.0.1 (the `entrada` router served over TCP) and real
//! SQLite files; the gate's database locked by another process (a child
//! process of this test binary holding `BEGIN EXCLUSIVE`).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{NaiveTime, Utc};
use entrada::domain::{ActivationMode, Contact, NewSlot, NewTicket, Orq, Role, SlotId, TicketCode};
use entrada::store::{ReserveRequest, Store};
use entrada::sync::client::SyncEngine;
use entrada_desktop::camera::CameraChoice;
use entrada_desktop::device::DeviceLink;
use entrada_desktop::gate::views::SyncView;
use entrada_desktop::gate::{GateService, GateSettings};

const LOCK_DB_ENV: &str = "ENTRADA_TEST_HOLD_LOCK_ON";

struct Server {
    url: String,
    store: Arc<Store>,
    slot: SlotId,
    token: String,
    supervisor: i64,
}

fn reserve(store: &Store, slot: SlotId, code: &str) {
    let ticket = NewTicket::plain(code, ActivationMode::Immediate).unwrap();
    store.insert_tickets(Orq(1), &[ticket], Utc::now()).unwrap();
    let req = ReserveRequest {
        ticket: TicketCode::parse(code).unwrap(),
        slot_id: slot,
        contact: Contact::validate("guest@example.com", "+12025551234").unwrap(),
    };
    store.reserve_slot(Orq(1), &req, Utc::now()).unwrap();
}

/// An org-1 venue with a slot today, a supervisor, a reserved ticket
/// `SRV-1` and a device token, served on a free port.
async fn server(dir: &Path) -> Server {
    let store = Arc::new(Store::open(dir.join("server.db")).unwrap());
    let now = Utc::now();
    let venue = store.add_venue(Orq(1), "Harbour Hall", "UTC", now).unwrap();
    let supervisor = store
        .add_operator(Orq(1), Role::Supervisor, "Sara", Some("654321"), now)
        .unwrap();
    let slot = store
        .create_slot(
            Orq(1),
            &NewSlot {
                venue_id: venue.id,
                date: now.date_naive(),
                start_time: NaiveTime::MIN,
                end_time: NaiveTime::from_hms_opt(23, 59, 59).unwrap(),
                total_capacity: 10,
            },
            now,
        )
        .unwrap();
    reserve(&store, slot.id, "SRV-1");
    let (token, _) = store.add_device(Orq(1), venue.id, "Gate 7", now).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = entrada::api::router(entrada::api::AppState::new(store.clone(), 1000), None);
    tokio::spawn(entrada::api::serve(
        listener,
        app,
        entrada::api::Shutdown::default(),
    ));
    Server {
        url,
        store,
        slot: slot.id,
        token,
        supervisor: supervisor.id.0,
    }
}

fn gate(dir: &Path) -> (Arc<Store>, Arc<GateService>, DeviceLink) {
    let store = Arc::new(Store::open(dir.join("gate.db")).unwrap());
    let settings = GateSettings {
        auto_lock: Duration::from_secs(300),
        kiosk: false,
        camera: CameraChoice::Auto,
        idle_dim_secs: 0,
        fixed: Vec::new(),
    };
    let gate = Arc::new(GateService::new(store.clone(), settings).unwrap());
    let engine = Arc::new(SyncEngine::new(store.clone()));
    let link = DeviceLink::new(gate.clone(), engine, Duration::from_millis(200));
    (store, gate, link)
}

/// Another process holding `db` in an exclusive transaction (this test
/// binary again, running `hold_exclusive_lock`) until `release`.
struct LockHolder {
    child: Child,
    stdin: Option<ChildStdin>,
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
            child,
            stdin,
            _stdout: stdout,
        }
    }

    fn release(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the lock holder failed: {status}");
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Not a test: the other process of the lock test.
#[test]
#[ignore = "run as a child process by the lock test"]
fn hold_exclusive_lock() {
    let Some(db) = std::env::var_os(LOCK_DB_ENV) else {
        return;
    };
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch("BEGIN EXCLUSIVE; UPDATE device_identity SET name = name;")
        .unwrap();
    println!("LOCKED");
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    c.execute_batch("ROLLBACK").unwrap();
}

async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_shows_as_retrying_and_the_loop_catches_up_when_it_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let (store, gate, link) = gate(dir.path());
    let late = TicketCode::parse("LATE-1").unwrap();
    let seen: Arc<Mutex<Vec<SyncView>>> = Arc::default();
    let events = seen.clone();
    link.on_round(move |view| events.lock().unwrap().push(view));
    let paired = link.provision(&server.url, &server.token).await.unwrap();
    assert_eq!(paired.map(|p| p.first_sync_error), Some(None));
    assert!(gate.sync_view().unwrap().retry.is_none());

    let lock = LockHolder::hold(&dir.path().join("gate.db"));
    // News for this gate while it cannot write.
    reserve(&server.store, server.slot, "LATE-1");
    wait_for(
        "the sync screen to show the retry",
        Duration::from_secs(60),
        || {
            gate.sync_view()
                .unwrap()
                .retry
                .is_some_and(|r| r.attempts >= 2)
        },
    )
    .await;
    let view = gate.sync_view().unwrap();
    let retry = view.retry.clone().unwrap();
    assert_eq!(retry.error_code, "DATABASE_BUSY", "{retry:?}");
    assert!(retry.next_attempt_at.is_some(), "{retry:?}");
    assert!(!view.stopped);
    assert_eq!(view.last_error.as_deref(), Some(retry.error.as_str()));
    assert!(
        seen.lock().unwrap().iter().any(|v| v
            .retry
            .as_ref()
            .is_some_and(|r| r.error_code == "DATABASE_BUSY")),
        "the window was told"
    );
    assert!(store.get_ticket(Orq(1), &late).is_err(), "not pulled yet");

    lock.release();
    wait_for("the gate to catch up", Duration::from_secs(60), || {
        store.get_ticket(Orq(1), &late).is_ok() && gate.sync_view().unwrap().retry.is_none()
    })
    .await;
    let view = gate.sync_view().unwrap();
    assert_eq!((view.mode.as_str(), view.stopped), ("online", false));
}

/// The one re-pairing policy, from the app: a paired gate whose new server
/// or token cannot be confirmed keeps its pairing and data — at start
/// (flags) it starts on it, from the settings screen the supervisor is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paired_gate_keeps_its_pairing_when_the_new_one_cannot_be_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let (store, gate, link) = gate(dir.path());
    link.provision(&server.url, &server.token).await.unwrap();
    gate.sign_in(server.supervisor, "654321").unwrap();
    let before = store.pairing().unwrap().unwrap();

    // Nothing answers on port 9; plain http to a TLS client is no answer either.
    let silent = [
        "http://127.0.0.1:9".to_string(),
        server.url.replace("http://", "https://"),
    ];
    for url in &silent {
        let kept = link.provision(url, "dev_new-token").await.unwrap();
        assert!(kept.is_none(), "{url}");
        let e = link.pair(url, "dev_new-token", None).await.unwrap_err();
        assert!(
            ["SERVER_UNREACHABLE", "TLS_CERTIFICATE_REFUSED"].contains(&e.code.as_str()),
            "{url}: {e:?}"
        );
        assert!(e.message.contains("keeps its current pairing"), "{e:?}");
        assert_eq!(store.pairing().unwrap().unwrap(), before, "{url}");
    }
    assert_eq!(gate.lookup("SRV-1").unwrap().len(), 1, "the data stays");
    // A token the server refuses: an error at start and on the screen.
    let e = link
        .provision(&server.url, "dev_not-a-token")
        .await
        .unwrap_err();
    assert_eq!(e.code, "TOKEN_REFUSED");
    let e = link
        .pair(&server.url, "dev_not-a-token", None)
        .await
        .unwrap_err();
    assert_eq!(e.code, "TOKEN_REFUSED");
    assert_eq!(store.pairing().unwrap().unwrap(), before);
}
