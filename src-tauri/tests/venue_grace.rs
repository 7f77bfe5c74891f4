//! The slot window's grace is each venue's gate settings: the app's
//! `GateService` on a paired replica, `entrada gate verify`'s function (the
//! store's scan with the gate's venue, as the CLI calls it) and the server's
//! HTTP answer agree for a venue whose grace is not the default, at an
//! instant where the default would admit; a PATCH on the server changes the
//! gate's verdict after one sync round.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;
use entrada::domain::{
    ActivationMode, Contact, Gate, NewSlot, NewTicket, OperatorId, Orq, Role, TicketCode, VenueId,
};
use entrada::store::{ReserveRequest, Store};
use entrada::sync::client::SyncEngine;
use entrada_desktop::camera::CameraChoice;
use entrada_desktop::device::DeviceLink;
use entrada_desktop::gate::views::ScanSource;
use entrada_desktop::gate::{GateService, GateSettings};
use serde_json::{json, Value};

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

async fn call(method: reqwest::Method, url: String, token: &str, body: Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_gate_verify_and_the_app_agree_on_the_venue_grace_and_follow_a_patch() {
    let dir = tempfile::tempdir().unwrap();
    // The server: a venue whose slot starts 20 minutes from now (local),
    // ticket GR-1 reserved on it, an operator, tokens, a device.
    let server = Arc::new(Store::open(dir.path().join("server.db")).unwrap());
    let now = Utc::now();
    let tz = midday_zone(now);
    let venue = server.add_venue(ORQ, "Grace Hall", tz.name(), now).unwrap();
    let local = now.with_timezone(&tz).naive_local();
    let start = local.time() + chrono::Duration::minutes(20);
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
    server
        .reserve_slot(
            ORQ,
            &ReserveRequest {
                ticket: TicketCode::parse("GR-1").unwrap(),
                slot_id: slot.id,
                contact: Contact::validate("guest@example.com", "+12025551234").unwrap(),
            },
            now,
        )
        .unwrap();
    let operator = server
        .add_operator(ORQ, Role::Operator, "Olga", None, now)
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
    let venue_url = format!("{url}/api/admin/venues/{}", venue.id.0);
    let validate = || {
        call(
            reqwest::Method::POST,
            format!("{url}/api/operator/validate-ticket"),
            &staff,
            json!({ "ticket_code": "GR-1" }),
        )
    };

    // The admin gives the venue 10 minutes early instead of 30.
    let (status, body) = call(
        reqwest::Method::PATCH,
        venue_url.clone(),
        &admin,
        json!({ "early_grace_minutes": 10 }),
    )
    .await;
    assert_eq!(
        (status, &body["early_grace_minutes"]),
        (200, &json!(10)),
        "{body}"
    );

    // The app, paired at start (as by --server/--token), signed in.
    let store = Arc::new(Store::open(dir.path().join("gate.db")).unwrap());
    let settings = GateSettings {
        auto_lock: Duration::from_secs(300),
        kiosk: false,
        camera: CameraChoice::Auto,
        idle_dim_secs: 0,
        fixed: Vec::new(),
    };
    let gate = Arc::new(GateService::new(store.clone(), settings).unwrap());
    let engine = Arc::new(SyncEngine::new(store.clone()));
    let link = DeviceLink::new(gate.clone(), engine.clone(), Duration::from_millis(200));
    link.provision(&url, &device).await.unwrap().unwrap();
    gate.start_session(operator.id.0).unwrap();

    // Same ticket, same moment, three paths: all too early.
    let (_, on_server) = validate().await;
    let gate_verify = |store: &Store| {
        // What `entrada gate verify --venue` runs on the replica.
        let at_venue = Gate {
            venue_id: Some(VenueId(venue.id.0)),
            ..Gate::default()
        };
        store
            .scan(
                ORQ,
                b"GR-1",
                OperatorId(operator.id.0),
                &at_venue,
                Utc::now(),
            )
            .unwrap()
            .verdict
            .code()
    };
    let in_app = gate.scan("GR-1", ScanSource::Manual).unwrap();
    assert_eq!(on_server["verdict"], "OUTSIDE_SLOT_WINDOW", "{on_server}");
    assert_eq!(gate_verify(&store), "OUTSIDE_SLOT_WINDOW");
    assert_eq!(in_app.verdict.verdict, "OUTSIDE_SLOT_WINDOW");

    // Back to 30 minutes on the server: the server admits at once, the gate
    // after one sync round.
    let (status, _) = call(
        reqwest::Method::PATCH,
        venue_url,
        &admin,
        json!({ "early_grace_minutes": 30 }),
    )
    .await;
    assert_eq!(status, 200);
    let (_, on_server) = validate().await;
    assert_eq!(on_server["verdict"], "ADMIT", "{on_server}");
    engine.round(|_, _| {}).await.unwrap();
    let in_app = gate.scan("GR-1", ScanSource::Manual).unwrap();
    assert_eq!(in_app.verdict.verdict, "ADMIT");
}
