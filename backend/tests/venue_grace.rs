//! The slot window's grace is each venue's gate settings, and the same on
//! every path: the server's HTTP answer and `entrada gate verify` (the real
//! binary) on a paired gate's replica agree for a venue whose grace is not
//! the default, and a PATCH on the server reaches the gate with one sync
//! round. (The desktop app's `GateService`: src-tauri/tests/venue_grace.rs.)

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;
use entrada::domain::{ActivationMode, Contact, NewSlot, NewTicket, Orq, Role, TicketCode};
use entrada::store::{ReserveRequest, Store};
use entrada::sync::client::{PairChange, SyncEngine};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_entrada");
const ORQ: Orq = Orq(1);

/// A fixed-offset zone in which `now` is around midday, so that a slot
/// starting 20 minutes from now starts and ends on the same local day.
fn midday_zone(now: DateTime<Utc>) -> Tz {
    let offset = 12 - i64::from(now.hour());
    let name = match offset {
        0 => "UTC".to_string(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    };
    name.parse().unwrap()
}

struct World {
    url: String,
    server: Arc<Store>,
    admin: String,
    staff: String,
    device: String,
    venue: i64,
}

/// A venue whose slot starts 20 minutes from now (local), with a reserved
/// ticket `GR-1`: the default grace (30 min early) admits it now, a grace of
/// 10 minutes does not.
async fn world(dir: &Path) -> World {
    let server = Arc::new(Store::open(dir.join("server.db")).unwrap());
    let now = Utc::now();
    let tz = midday_zone(now);
    let venue = server.add_venue(ORQ, "Grace Hall", tz.name(), now).unwrap();
    let local = now.with_timezone(&tz).naive_local();
    let start = local.time() + Duration::minutes(20);
    let slot = server
        .create_slot(
            ORQ,
            &NewSlot {
                venue_id: venue.id,
                date: local.date(),
                start_time: NaiveTime::from_hms_opt(start.hour(), start.minute(), 0).unwrap(),
                end_time: NaiveTime::from_hms_opt(start.hour() + 1, start.minute(), 0).unwrap(),
                total_capacity: 10,
            },
            now,
        )
        .unwrap();
    let ticket = NewTicket::plain("GR-1", ActivationMode::Immediate).unwrap();
    server.insert_tickets(ORQ, &[ticket], now).unwrap();
    let request = ReserveRequest {
        ticket: TicketCode::parse("GR-1").unwrap(),
        slot_id: slot.id,
        contact: Contact::validate("guest@example.com", "+12025551234").unwrap(),
    };
    server.reserve_slot(ORQ, &request, now).unwrap();
    server
        .add_operator(ORQ, Role::Operator, "Olga", Some("1234"), now)
        .unwrap();
    let token = |role| server.create_token(ORQ, role, None, None, now).unwrap().0;
    let (admin, staff) = (token(Role::Admin), token(Role::Operator));
    let (device, _) = server.add_device(ORQ, venue.id, "Gate 1", now).unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = entrada::api::router(entrada::api::AppState::new(server.clone(), 0), None);
    tokio::spawn(entrada::api::serve(
        listener,
        app,
        entrada::api::Shutdown::default(),
    ));
    World {
        url,
        server,
        admin,
        staff,
        device,
        venue: venue.id.0,
    }
}

async fn call(
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// `entrada gate verify` on the gate's replica: (exit code, verdict).
fn gate_verify(db: &Path, venue: i64) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["gate", "verify", "--db"])
        .arg(db)
        .args(["--operator", "1", "--venue", &venue.to_string(), "GR-1"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    (
        out.status.code().unwrap(),
        v["verdict"].as_str().unwrap_or("").into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_and_gate_verify_agree_on_a_venue_grace_and_a_patch_reaches_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path()).await;
    let venue_url = format!("{}/api/admin/venues/{}", w.url, w.venue);

    // The venue shows its settings; the admin sets 10 minutes early.
    let (status, venue) = call(reqwest::Method::GET, venue_url.clone(), &w.admin, None).await;
    assert_eq!(status, 200, "{venue}");
    assert_eq!(
        (&venue["early_grace_minutes"], &venue["late_grace_minutes"]),
        (&json!(30), &json!(30))
    );
    let (status, venue) = call(
        reqwest::Method::PATCH,
        venue_url.clone(),
        &w.admin,
        Some(json!({ "early_grace_minutes": 10 })),
    )
    .await;
    assert_eq!(status, 200, "{venue}");
    assert_eq!(
        (&venue["early_grace_minutes"], &venue["late_grace_minutes"]),
        (&json!(10), &json!(30))
    );

    // A gate paired with the venue: one round brings the venue's row.
    let gate_db = dir.path().join("gate.db");
    let gate = Arc::new(Store::open(&gate_db).unwrap());
    let engine = SyncEngine::new(gate.clone());
    let change = engine.repair(&w.url, &w.device).await.unwrap();
    assert!(matches!(change, PairChange::Paired { .. }), "{change:?}");
    engine.round(|_, _| {}).await.unwrap();
    assert_eq!(
        gate.list_venues(ORQ).unwrap()[0].gate.early_grace_minutes(),
        10
    );

    // Same ticket, same moment (20 min before the slot): the server and
    // `entrada gate verify` both say too early; the default would admit.
    let (status, server_verdict) = call(
        reqwest::Method::POST,
        format!("{}/api/operator/validate-ticket", w.url),
        &w.staff,
        Some(json!({ "ticket_code": "GR-1" })),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(server_verdict["verdict"], "OUTSIDE_SLOT_WINDOW");
    assert_eq!(
        gate_verify(&gate_db, w.venue),
        (1, "OUTSIDE_SLOT_WINDOW".into())
    );

    // Back to 30 minutes on the server: after one sync round the gate admits.
    let (status, _) = call(
        reqwest::Method::PATCH,
        venue_url,
        &w.admin,
        Some(json!({ "early_grace_minutes": 30 })),
    )
    .await;
    assert_eq!(status, 200);
    let (_, server_verdict) = call(
        reqwest::Method::POST,
        format!("{}/api/operator/validate-ticket", w.url),
        &w.staff,
        Some(json!({ "ticket_code": "GR-1" })),
    )
    .await;
    assert_eq!(server_verdict["verdict"], "ADMIT");
    assert_eq!(
        gate_verify(&gate_db, w.venue),
        (1, "OUTSIDE_SLOT_WINDOW".into()),
        "not synced yet: the gate still has 10 minutes"
    );
    let round = engine.round(|_, _| {}).await.unwrap();
    assert!(round.pulled >= 1, "{round:?}");
    assert_eq!(gate_verify(&gate_db, w.venue), (0, "ADMIT".into()));
    // The admission uploaded is judged by the server with the same grace.
    engine.round(|_, _| {}).await.unwrap();
    let ticket = w
        .server
        .get_ticket(ORQ, &TicketCode::parse("GR-1").unwrap())
        .unwrap();
    assert!(ticket.verified_at.is_some());
    assert!(w.server.list_conflicts(ORQ).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn venue_settings_are_the_admins_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let w = world(dir.path()).await;
    let venue_url = format!("{}/api/admin/venues/{}", w.url, w.venue);
    let patch = |token: String, body: Value| {
        let url = venue_url.clone();
        async move { call(reqwest::Method::PATCH, url, &token, Some(body)).await }
    };
    for (body, code, field) in [
        (
            json!({ "early_grace_minutes": 241 }),
            "INVALID_INPUT",
            Some("early_grace_minutes"),
        ),
        (
            json!({ "late_grace_minutes": -1 }),
            "INVALID_INPUT",
            Some("late_grace_minutes"),
        ),
        (json!({}), "INVALID_INPUT", Some("venue")),
        (json!({ "name": " " }), "INVALID_INPUT", Some("name")),
        (
            json!({ "timezone": "Mars/Olympus" }),
            "INVALID_INPUT",
            Some("timezone"),
        ),
        (json!({ "name": 5 }), "INVALID_BODY", None),
        (json!({ "early_grace": 10 }), "INVALID_BODY", None),
        (json!({ "early_grace_minutes": "10" }), "INVALID_BODY", None),
        (json!({ "early_grace_minutes": 10.5 }), "INVALID_BODY", None),
    ] {
        let (status, err) = patch(w.admin.clone(), body.clone()).await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (422, Some(code)),
            "{body}: {err}"
        );
        if let Some(field) = field {
            assert_eq!(err["error"]["details"]["field"], field, "{body}");
        }
    }
    // Nothing changed; staff may not look or change; another org's admin
    // and unknown ids get 404.
    assert_eq!(
        w.server
            .get_venue(ORQ, entrada::domain::VenueId(w.venue))
            .unwrap()
            .gate,
        Default::default()
    );
    let (status, _) = patch(w.staff.clone(), json!({ "early_grace_minutes": 10 })).await;
    assert_eq!(status, 403);
    let other = w
        .server
        .create_token(Orq(2), Role::Admin, None, None, Utc::now())
        .unwrap()
        .0;
    let (status, err) = patch(other.clone(), json!({ "early_grace_minutes": 10 })).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let (status, _) = call(reqwest::Method::GET, venue_url.clone(), &other, None).await;
    assert_eq!(status, 404);
    let (status, _) = call(
        reqwest::Method::GET,
        format!("{}/api/admin/venues/x9", w.url),
        &w.admin,
        None,
    )
    .await;
    assert_eq!(status, 404);

    // GR-1 is booked into today's slot: the zone may not move (409, with
    // how many booked slots hold it and from which date), and the patch is
    // refused whole; a rename alone goes through.
    let (status, err) = patch(
        w.admin.clone(),
        json!({ "name": "Renamed", "timezone": "Asia/Tokyo" }),
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("VENUE_HAS_BOOKINGS_AHEAD")),
        "{err}"
    );
    assert_eq!(err["error"]["details"]["booked_slots"], 1, "{err}");
    let (status, renamed) = patch(w.admin.clone(), json!({ "name": " Renamed Hall " })).await;
    assert_eq!(
        (status, renamed["name"].as_str()),
        (200, Some("Renamed Hall"))
    );
    assert_ne!(renamed["timezone"], "Asia/Tokyo");
}

/// A gate upgraded before its server: the server's venue rows come without
/// the gate settings columns, and the replica takes the defaults instead of
/// refusing the page (SQLite's REPLACE puts a NOT NULL column's default in
/// place of the NULL bound for it: 0011's defaults matter).
#[test]
fn a_venue_row_from_an_older_server_gets_the_default_settings() {
    use entrada::sync::protocol::{Change, ChangePage};
    let dir = tempfile::tempdir().unwrap();
    let gate = Store::open(dir.path().join("gate.db")).unwrap();
    let row = json!({
        "id": 4, "orq": 1, "name": "Old Hall", "timezone": "UTC",
        "created_at": "2025-12-01T00:00:00.000Z", "updated_at": "2025-12-01T00:00:00.000Z"
    });
    let page = ChangePage {
        changes: vec![Change {
            seq: 1,
            entity: "venues".into(),
            entity_id: "4".into(),
            op: "upsert".into(),
            row: Some(row),
        }],
        next_cursor: 1,
        has_more: false,
        remaining: 0,
        server_time: Utc::now(),
        reset: false,
    };
    assert_eq!(gate.apply_change_page(&page, None, Utc::now()).unwrap(), 1);
    let venue = gate.get_venue(ORQ, entrada::domain::VenueId(4)).unwrap();
    assert_eq!(
        (venue.name.as_str(), venue.gate),
        ("Old Hall", Default::default())
    );
}

/// The grace is no server setting any more: a config file that still sets
/// it is refused with a pointer to the venue, and so is the old flag.
#[test]
fn serve_refuses_the_old_grace_settings() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("entrada.toml");
    let db = dir.path().join("server.db");
    std::fs::write(
        &config,
        format!(
            "db = {:?}\nlisten = \"127.0.0.1:0\"\nearly_grace_minutes = 10\n",
            db.to_str().unwrap()
        ),
    )
    .unwrap();
    for args in [
        vec!["serve", "--config", config.to_str().unwrap()],
        vec![
            "serve",
            "--db",
            db.to_str().unwrap(),
            "--early-grace-minutes",
            "10",
        ],
    ] {
        let mut child = Command::new(BIN)
            .args(&args)
            .env_remove("ENTRADA_CONFIG")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut status = None;
        for _ in 0..300 {
            status = child.try_wait().unwrap();
            if status.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        if status.is_none() {
            child.kill().unwrap();
            panic!("{args:?}: the server started");
        }
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("/api/admin/venues/") || err.contains("--early-grace-minutes"),
            "{args:?}: {err}"
        );
    }
}
