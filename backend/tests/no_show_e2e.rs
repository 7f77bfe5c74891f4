//! No-show release with real processes (issue 15): a real `entrada serve`
//! releases, by its periodic task, the reservations still unverified
//! `no_show_release_minutes` after their slot started; the customer's status
//! says so and the place is back on the slot; a gate learns it by sync and
//! `entrada gate verify` answers the late holder with the amber
//! NO_SHOW_RELEASED (the operator decides). At closing time a supervisor
//! checks everyone out: the server's occupancy is 0, the gate's after sync.
//!
//! Date- and time-zone-robust: the venue's zone is picked so that its clock
//! reads about noon now, and the slot is 10:00–14:00 of the venue's today.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{NaiveTime, Utc};
use entrada::domain::venue::VenuePatch;
use entrada::domain::{
    ActivationMode, Contact, Gate, NewSlot, NewTicket, OperatorId, Orq, Role, TicketCode,
};
use entrada::store::{ReserveRequest, Store};
use serde_json::{json, Value};

use common::procs::{free_port, http, noon_zone, run, Server};

fn get(port: u16, path: &str, token: &str) -> (u16, Value) {
    http(port, "GET", path, Some(token), None)
}

fn call(port: u16, method: &str, path: &str, token: &str) -> (u16, Value) {
    http(port, method, path, Some(token), None)
}

struct Seeded {
    venue: i64,
    staff: String,
    supervisor: String,
    device: String,
}

/// A venue releasing no-shows 30 minutes after a slot starts, today's
/// 10:00–14:00 slot (started about two hours ago on the venue's clock) with
/// NS-LATE and NS-CAME reserved before it started; NS-CAME came in.
fn seed(db: &Path) -> Seeded {
    let store = Store::open(db).unwrap();
    let now = Utc::now();
    let orq = Orq(1);
    let venue = store.add_venue(orq, "Zoo", &noon_zone(), now).unwrap();
    let patch: VenuePatch = serde_json::from_str(r#"{"no_show_release_minutes": 30}"#).unwrap();
    let venue = store.update_venue(orq, venue.id, &patch, now).unwrap();
    store
        .add_operator(orq, Role::Operator, "Olga", None, now)
        .unwrap();
    let today = now.with_timezone(&venue.timezone).date_naive();
    let slot = store
        .create_slot(
            orq,
            &NewSlot {
                venue_id: venue.id,
                date: today,
                start_time: NaiveTime::from_hms_opt(10, 0, 0).unwrap(),
                end_time: NaiveTime::from_hms_opt(14, 0, 0).unwrap(),
                total_capacity: 10,
            },
            now - chrono::Duration::hours(4),
        )
        .unwrap();
    let contact = Contact::validate("zoo@example.com", "+12025551234").unwrap();
    let booked_at = now - chrono::Duration::hours(3);
    for code in ["NS-LATE", "NS-CAME"] {
        let t = NewTicket::plain(code, ActivationMode::Immediate).unwrap();
        store
            .insert_tickets(orq, std::slice::from_ref(&t), booked_at)
            .unwrap();
        let req = ReserveRequest {
            ticket: t.ticket_code,
            slot_id: slot.id,
            contact: contact.clone(),
        };
        store.reserve_slot(orq, &req, booked_at).unwrap();
    }
    let gate = Gate {
        venue_id: Some(venue.id),
        ..Gate::default()
    };
    let came = TicketCode::parse("NS-CAME").unwrap();
    let v = store
        .verify_ticket(orq, &came, OperatorId(1), &gate, now)
        .unwrap();
    assert!(v.admit, "{v:?}");
    Seeded {
        venue: venue.id.0,
        supervisor: store
            .create_token(orq, Role::Supervisor, None, None, now)
            .unwrap()
            .0,
        staff: store
            .create_token(orq, Role::Operator, None, None, now)
            .unwrap()
            .0,
        device: store.add_device(orq, venue.id, "Gate", now).unwrap().0,
    }
}

#[test]
fn the_server_releases_no_shows_and_checks_everyone_out_at_closing_and_the_gate_learns_both() {
    let dir = tempfile::tempdir().unwrap();
    let server_db = dir.path().join("server.db");
    let gate_db = dir.path().join("gate.db");
    let w = seed(&server_db);
    let port = free_port();
    let _server = Server::start_with(&server_db, port, &["--no-show-seconds", "1"]);

    // The periodic task releases NS-LATE: the customer's status says so.
    let deadline = Instant::now() + Duration::from_secs(30);
    let late = loop {
        let (status, body) = get(port, "/api/tickets/NS-LATE/status", &w.staff);
        if status == 200 && body["reservation"]["no_show_at"].is_string() {
            break body;
        }
        assert!(Instant::now() < deadline, "not released: {status} {body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(late["reservation"]["status"], "CANCELLED", "{late}");
    assert_eq!(late["ticket"]["status"], "ACTIVATED", "{late}");
    // The one who came keeps the only place still taken.
    let (_, came) = get(port, "/api/tickets/NS-CAME/status", &w.staff);
    assert_eq!(came["reservation"]["status"], "VERIFIED", "{came}");
    assert_eq!(came["slot"]["booked_count"], 1, "{came}");
    assert!(came["reservation"].get("no_show_at").is_none(), "{came}");

    // The gate learns it by sync; the late holder is amber at the gate.
    let url = format!("http://127.0.0.1:{port}");
    let gate = gate_db.to_str().unwrap();
    let (code, report) = run(&[
        "sync", "--db", gate, "--once", "--server", &url, "--token", &w.device,
    ]);
    assert_eq!(code, 0, "{report}");
    let (code, verdict) = run(&["gate", "verify", "--db", gate, "--operator", "1", "NS-LATE"]);
    assert_eq!(
        (code, verdict["verdict"].as_str()),
        (1, Some("NO_SHOW_RELEASED")),
        "{verdict}"
    );
    assert!(!verdict["admit"].as_bool().unwrap(), "{verdict}");

    // Closing time: a supervisor checks everyone out; the server counts 0,
    // and so does the gate after its next sync.
    let occupancy = format!("/api/operator/occupancy?venue_id={}", w.venue);
    assert_eq!(get(port, &occupancy, &w.staff).1["inside"], 1);
    let (_, known) = run(&["gate", "occupancy", "--db", gate]);
    assert_eq!(known["inside"], 1, "{known}");
    let checkout = format!("/api/admin/venues/{}/checkout", w.venue);
    assert_eq!(call(port, "POST", &checkout, &w.staff).0, 403);
    let (status, done) = call(port, "POST", &checkout, &w.supervisor);
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (&done["checked_out"], &done["inside"]),
        (&json!(1), &json!(0)),
        "{done}"
    );
    assert_eq!(get(port, &occupancy, &w.staff).1["inside"], 0);
    let (code, report) = run(&[
        "sync", "--db", gate, "--once", "--server", &url, "--token", &w.device,
    ]);
    assert_eq!(code, 0, "{report}");
    let (_, known) = run(&["gate", "occupancy", "--db", gate]);
    assert_eq!(known["inside"], 0, "{known}");

    // A supervisor takes the venue's walk-up leases back (none held here):
    // the route answers for supervisors only.
    let leases = format!("/api/admin/venues/{}/leases", w.venue);
    assert_eq!(call(port, "DELETE", &leases, &w.staff).0, 403);
    let (status, back) = call(port, "DELETE", &leases, &w.supervisor);
    assert_eq!((status, &back["returned"]), (200, &json!([])), "{back}");
}
