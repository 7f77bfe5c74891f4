//! Pairing a standalone gate from the settings screen, against a real
//! Entrada server on 127.0.0.1 (the `entrada` router served over TCP) and
//! real SQLite files on both sides.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveTime, Utc};
use entrada::domain::{ActivationMode, Contact, NewSlot, NewTicket, Orq, Role, TicketCode};
use entrada::store::{ReserveRequest, Store};
use entrada::sync::client::SyncEngine;
use entrada_desktop::camera::CameraChoice;
use entrada_desktop::device::DeviceLink;
use entrada_desktop::gate::views::ScanSource;
use entrada_desktop::gate::{GateService, GateSettings};

struct Server {
    url: String,
    store: Arc<Store>,
    /// Device tokens: org 1's gate, and a gate of org 2.
    token: String,
    other_org_token: String,
    supervisor: i64,
}

/// An org-1 venue with one slot today, a supervisor, a reserved ticket
/// `SRV-1`, and a device token; plus a device of org 2. Served on a free port.
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
    let ticket = NewTicket::plain("SRV-1", ActivationMode::Immediate).unwrap();
    store.insert_tickets(Orq(1), &[ticket], now).unwrap();
    let req = ReserveRequest {
        ticket: TicketCode::parse("SRV-1").unwrap(),
        slot_id: slot.id,
        contact: Contact::validate("guest@example.com", "+12025551234").unwrap(),
    };
    store.reserve_slot(Orq(1), &req, now).unwrap();
    let (token, _) = store.add_device(Orq(1), venue.id, "Gate 7", now).unwrap();
    let elsewhere = store.add_venue(Orq(2), "Elsewhere", "UTC", now).unwrap();
    let (other_org_token, _) = store
        .add_device(Orq(2), elsewhere.id, "Gate X", now)
        .unwrap();

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
        token,
        other_org_token,
        supervisor: supervisor.id.0,
    }
}

/// A standalone gate on the demo data set (as `entrada-desktop` with no server).
fn standalone_gate(dir: &Path) -> (Arc<GateService>, DeviceLink) {
    let store = Arc::new(Store::open(dir.join("gate.db")).unwrap());
    entrada::demo::populate(&store, Utc::now(), |_| {}).unwrap();
    let settings = GateSettings {
        auto_lock: Duration::from_secs(300),
        kiosk: false,
        camera: CameraChoice::Auto,
        idle_dim_secs: 0,
        fixed: Vec::new(),
    };
    let gate = Arc::new(GateService::new(store.clone(), settings).unwrap());
    let engine = Arc::new(SyncEngine::new(store));
    let link = DeviceLink::new(gate.clone(), engine, Duration::from_millis(200));
    (gate, link)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_pairs_a_standalone_gate_and_the_demo_gives_way_to_the_venue() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let (gate, link) = standalone_gate(dir.path());

    // An operator may not pair; a supervisor may.
    gate.start_session(1).unwrap();
    let refused = link
        .pair(&server.url, &server.token, None)
        .await
        .unwrap_err();
    assert_eq!(refused.code, "FORBIDDEN");
    gate.sign_in(2, entrada::demo::SUPERVISOR_PIN).unwrap();

    // Mistakes get a clear code and leave the demo as it was.
    for (url, token, code) in [
        ("10.0.0.5:8080", server.token.as_str(), "INVALID_URL"),
        ("ftp://example.com", server.token.as_str(), "INVALID_URL"),
        // This machine, but not loopback: plain http is refused before any request.
        (
            "http://0.0.0.0:9",
            server.token.as_str(),
            "INSECURE_SERVER_URL",
        ),
        (server.url.as_str(), "", "INVALID_INPUT"),
        (server.url.as_str(), "dev_not-a-token", "TOKEN_REFUSED"),
        (
            "http://127.0.0.1:9",
            server.token.as_str(),
            "SERVER_UNREACHABLE",
        ),
    ] {
        let e = link.pair(url, token, None).await.unwrap_err();
        assert_eq!(e.code, code, "{url} / {token:?}: {}", e.message);
    }
    assert_eq!(gate.sync_view().unwrap().mode, "standalone");
    assert_eq!(gate.lookup("DEMO-ADMIT").unwrap().len(), 1);

    // Pairing: the venue's data replaces the demo's. Meanwhile the demo's
    // supervisor keeps signing in and the camera keeps scanning — demo codes
    // and the venue's SRV-1. Nothing of that may land in the venue's data:
    // no session of the demo's operator may survive the pairing, and no scan
    // may be recorded under it.
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let busy = Arc::new(AtomicBool::new(true));
    let scanned = Arc::new(AtomicUsize::new(0));
    let locked = Arc::new(AtomicUsize::new(0));
    let worker = {
        let (gate, busy, scanned, locked) =
            (gate.clone(), busy.clone(), scanned.clone(), locked.clone());
        std::thread::spawn(move || {
            let mut outcomes = Vec::new();
            while busy.load(Ordering::Relaxed) {
                let _ = gate.sign_in(2, entrada::demo::SUPERVISOR_PIN);
                for code in ["DEMO-ADMIT-2", "SRV-1", "DEMO-VERIFIED"] {
                    let outcome = gate
                        .scan(code, ScanSource::Camera)
                        .map(|o| o.verdict.verdict);
                    match &outcome {
                        Ok(_) => scanned.fetch_add(1, Ordering::Relaxed),
                        Err(e) if e.code == "LOCKED" => locked.fetch_add(1, Ordering::Relaxed),
                        Err(_) => 0,
                    };
                    outcomes.push(outcome);
                }
            }
            outcomes
        })
    };
    // Pair while the worker is in full swing (its first sign-in is slow:
    // Argon2 in a debug build).
    for _ in 0..500 {
        if scanned.load(Ordering::Relaxed) > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let paired = link.pair(&server.url, &server.token, None).await.unwrap();
    // The worker keeps going until it has met the locked gate.
    for _ in 0..500 {
        if locked.load(Ordering::Relaxed) > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    busy.store(false, Ordering::Relaxed);
    let outcomes = worker.join().unwrap();
    assert!(
        outcomes.iter().any(|o| o.is_ok()),
        "the camera scanned before the pairing"
    );
    assert!(
        outcomes
            .iter()
            .any(|o| o.as_ref().is_err_and(|e| e.code == "LOCKED")),
        "and was locked out after it"
    );
    assert!(
        gate.current_operator().is_none(),
        "no demo session survives"
    );
    assert!(
        gate.store().pending_events().unwrap().is_empty(),
        "no scan was queued for the server"
    );
    assert_eq!(
        gate.store()
            .get_ticket(Orq(1), &TicketCode::parse("SRV-1").unwrap())
            .unwrap()
            .verified_by,
        None,
        "the venue's ticket was not admitted by the demo's operator"
    );
    assert_eq!(paired.device_name, "Gate 7");
    assert_eq!(paired.venue_name.as_deref(), Some("Harbour Hall"));
    assert!(paired.replaced_demo);
    assert_eq!(paired.first_sync_error, None);
    assert_eq!(paired.operators, 1, "the server's operators only");
    let ops = gate.operators().unwrap();
    assert_eq!(
        (ops[0].id, ops[0].display_name.as_str()),
        (server.supervisor, "Sara")
    );
    let demo_sign_in = gate.sign_in(2, entrada::demo::SUPERVISOR_PIN).unwrap_err();
    assert_eq!(demo_sign_in.code, "WRONG_PIN", "demo operators are gone");
    gate.sign_in(server.supervisor, "654321").unwrap();
    assert!(gate.lookup("DEMO-ADMIT").unwrap().is_empty());
    assert_eq!(
        gate.scan("DEMO-ADMIT", ScanSource::Manual)
            .unwrap()
            .verdict
            .verdict,
        "UNKNOWN_TICKET"
    );
    assert_eq!(
        gate.info().unwrap().venue_name.as_deref(),
        Some("Harbour Hall")
    );

    // The venue's ticket admits, and reaches the server through the sync loop.
    let admit = gate.scan("SRV-1", ScanSource::Camera).unwrap();
    assert_eq!(admit.verdict.verdict, "ADMIT");
    let code = TicketCode::parse("SRV-1").unwrap();
    let mut on_server = None;
    for _ in 0..100 {
        on_server = server.store.get_ticket(Orq(1), &code).unwrap().verified_by;
        // The server applies the event before the gate reads its answer.
        if on_server.is_some() && gate.sync_view().unwrap().pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(on_server.map(|o| o.0), Some(server.supervisor));
    let sync = gate.sync_view().unwrap();
    assert_eq!((sync.mode.as_str(), sync.pending), ("online", 0));
    // Nothing of the demo reached the server.
    assert!(server
        .store
        .get_ticket(Orq(1), &TicketCode::parse("DEMO-ADMIT").unwrap())
        .is_err());

    // Another org's token cannot take this replica over; it stays paired.
    let e = link
        .pair(&server.url, &server.other_org_token, None)
        .await
        .unwrap_err();
    assert_eq!(e.code, "INVALID_INPUT", "{}", e.message);
    // Re-pairing with the same org keeps the data and the session.
    let again = link.pair(&server.url, &server.token, None).await.unwrap();
    assert!(!again.replaced_demo);
    assert!(gate.current_operator().is_some());
    assert_eq!(
        gate.lookup("SRV-1").unwrap()[0].gate_verdict,
        "ALREADY_VERIFIED"
    );
}

/// Gate PCs are set up by script: `--server`/`--token` at every start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_flags_pair_once_and_re_pair_when_the_token_changes() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let store = Arc::new(Store::open(dir.path().join("gate.db")).unwrap());
    let settings = GateSettings {
        auto_lock: Duration::from_secs(300),
        kiosk: false,
        camera: CameraChoice::Auto,
        idle_dim_secs: 0,
        fixed: Vec::new(),
    };
    let gate = Arc::new(GateService::new(store.clone(), settings).unwrap());
    let link = DeviceLink::new(
        gate.clone(),
        Arc::new(SyncEngine::new(store.clone())),
        Duration::from_millis(200),
    );

    // First start: pairs and downloads.
    let first = link.provision(&server.url, &server.token).await.unwrap();
    assert_eq!(first.map(|p| p.device_name).as_deref(), Some("Gate 7"));
    assert!(store
        .get_ticket(Orq(1), &TicketCode::parse("SRV-1").unwrap())
        .is_ok());
    // Same flags at the next start: nothing to do.
    let again = link
        .provision(&format!("{}/", server.url), &server.token)
        .await
        .unwrap();
    assert!(again.is_none());

    // The script gets a new token (the old one was revoked): re-paired as
    // the new device, the replica kept.
    let venue = server.store.list_venues(Orq(1)).unwrap()[0].id;
    let (new_token, new_device) = server
        .store
        .add_device(Orq(1), venue, "Gate 7b", Utc::now())
        .unwrap();
    let re = link.provision(&server.url, &new_token).await.unwrap();
    assert_eq!(re.map(|p| p.device_id), Some(new_device.device_id));
    let pairing = store.pairing().unwrap().unwrap();
    assert_eq!(
        (pairing.info.device_id, pairing.token.as_str()),
        (new_device.device_id, new_token.as_str())
    );
    assert!(store
        .get_ticket(Orq(1), &TicketCode::parse("SRV-1").unwrap())
        .is_ok());

    // A new token while the server is down: the gate starts on its pairing.
    let kept = link
        .provision("http://127.0.0.1:9", "dev_elsewhere")
        .await
        .unwrap();
    assert!(kept.is_none());
    assert_eq!(store.pairing().unwrap().unwrap().token, new_token);
    // A token the server refuses is a setup error, said at start.
    let refused = link
        .provision(&server.url, "dev_not-a-token")
        .await
        .unwrap_err();
    assert_eq!(refused.code, "TOKEN_REFUSED");
}
