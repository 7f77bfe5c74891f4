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

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{NaiveTime, Timelike, Utc};
use entrada::domain::venue::GateSettingsPatch;
use entrada::domain::{
    ActivationMode, Contact, Gate, NewSlot, NewTicket, OperatorId, Orq, Role, TicketCode,
};
use entrada::store::{ReserveRequest, Store};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_entrada");

struct Server(Child);

impl Drop for Server {
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

fn get(port: u16, path: &str, token: &str) -> (u16, Value) {
    http(port, "GET", path, token)
}

fn http(port: u16, method: &str, path: &str, token: &str) -> (u16, Value) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, Value::Null);
    };
    let _ = write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\n\r\n"
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let json = out
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b.trim()).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

fn run(args: &[&str]) -> (i32, Value) {
    let out = Command::new(BIN)
        .args(args)
        .env("ENTRADA_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap_or(Value::Null),
    )
}

/// A fixed-offset zone whose clock reads between 12:00 and 12:59 now.
fn noon_zone() -> String {
    let offset = 12 - Utc::now().hour() as i32; // -11 ..= 12
    match offset {
        0 => "UTC".into(),
        // POSIX sign: Etc/GMT-3 is UTC+3.
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
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
    let patch: GateSettingsPatch =
        serde_json::from_str(r#"{"no_show_release_minutes": 30}"#).unwrap();
    let venue = store
        .update_gate_settings(orq, venue.id, &patch, now)
        .unwrap();
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
    let _server = Server(
        Command::new(BIN)
            .args(["serve", "--db", server_db.to_str().unwrap(), "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--no-show-seconds", "1"])
            .env("ENTRADA_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );

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
    assert_eq!(http(port, "POST", &checkout, &w.staff).0, 403);
    let (status, done) = http(port, "POST", &checkout, &w.supervisor);
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
    assert_eq!(http(port, "DELETE", &leases, &w.staff).0, 403);
    let (status, back) = http(port, "DELETE", &leases, &w.supervisor);
    assert_eq!((status, &back["returned"]), (200, &json!([])), "{back}");
}
