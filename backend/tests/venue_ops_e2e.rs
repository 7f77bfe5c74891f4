//! Venue operations with real processes (issue 15): a real `entrada serve`,
//! two gates that are real `entrada gate verify` / `entrada sync` runs on
//! their own SQLite files, offline in between. Entries at gate A, exits at
//! gate B, then sync: the server's occupancy is entries − exits; re-entry is
//! refused, then allowed once the venue says so.

mod common;

use std::path::Path;

use chrono::{NaiveTime, Utc};
use entrada::domain::{ActivationMode, Contact, NewSlot, NewTicket, Orq, Role};
use entrada::store::{ReserveRequest, Store};
use serde_json::{json, Value};

use common::procs::{free_port, http, noon_zone, pass, run, sync, verdict, Server};

struct Seeded {
    venue: i64,
    admin: String,
    staff: String,
    gate_a: String,
    gate_b: String,
}

/// A venue whose clock reads about noon, with today's all-day slot and
/// tickets V-0..V-5 reserved on it.
fn seed(db: &Path) -> Seeded {
    let store = Store::open(db).unwrap();
    let now = Utc::now();
    let orq = Orq(1);
    // A zone whose clock reads about noon now: the all-day slot is today's
    // on the venue's clock whatever the time and date the test runs at.
    let venue = store.add_venue(orq, "Zoo", &noon_zone(), now).unwrap();
    store
        .add_operator(orq, Role::Operator, "Olga", None, now)
        .unwrap();
    let slot = store
        .create_slot(
            orq,
            &NewSlot {
                venue_id: venue.id,
                date: now.with_timezone(&venue.timezone).date_naive(),
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
        venue: venue.id.0,
        admin: token(Role::Admin),
        staff: token(Role::Operator),
        gate_a: device("Gate A"),
        gate_b: device("Gate B"),
    }
}

#[test]
fn entries_at_one_gate_exits_at_another_offline_and_the_server_counts_who_is_inside() {
    let dir = tempfile::tempdir().unwrap();
    let server_db = dir.path().join("server.db");
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let w = seed(&server_db);
    let port = free_port();
    let server = Server::start_on(&server_db, port);
    let venue_path = format!("/api/admin/venues/{}", w.venue);
    let occupancy_path = format!("/api/operator/occupancy?venue_id={}", w.venue);

    // The admin sets a limit of 4 (re-entry stays off); both gates pair.
    let (status, venue) = http(
        port,
        "PATCH",
        &venue_path,
        Some(&w.admin),
        Some(json!({ "occupancy_limit": 4 })),
    );
    assert_eq!(status, 200, "{venue}");
    assert_eq!(
        (&venue["occupancy_limit"], &venue["reentry_allowed"]),
        (&json!(4), &json!(false))
    );
    for (db, token) in [(&a, &w.gate_a), (&b, &w.gate_b)] {
        let (code, report) = sync(db, Some((&server.url, token)));
        assert_eq!(code, 0, "{report}");
    }
    server.stop();

    // Offline: gate A lets five in; an exit at A of a ticket never in is refused.
    for i in 0..5 {
        assert_eq!(verdict(&pass(&a, "in", &format!("V-{i}"))), (0, "ADMIT"));
    }
    let never = pass(&a, "out", "V-5");
    assert_eq!(verdict(&never), (1, "NOT_INSIDE"), "{}", never.1);
    assert!(never.1["message"]
        .as_str()
        .unwrap()
        .contains("never entered"));
    let (_, known) = run(&["gate", "occupancy", "--db", a.to_str().unwrap()]);
    assert_eq!(known["inside"], 5, "{known}");

    // The server is back: A uploads, B learns of the entries, then goes
    // offline again and lets two out.
    let server = Server::start_on(&server_db, port);
    assert_eq!(sync(&a, None).0, 0);
    assert_eq!(sync(&b, None).0, 0);
    server.stop();
    for i in 0..2 {
        let out = pass(&b, "out", &format!("V-{i}"));
        assert_eq!(verdict(&out), (0, "EXIT"), "{}", out.1);
    }
    // Out twice: the second says when the holder left.
    let twice = pass(&b, "out", "V-0");
    assert_eq!(verdict(&twice), (1, "NOT_INSIDE"));
    assert!(twice.1["left_at"].is_string(), "{}", twice.1);
    // Back in at B without re-entry allowed: refused, saying when they left.
    let refused = pass(&b, "in", "V-0");
    assert_eq!(
        verdict(&refused),
        (1, "REENTRY_NOT_ALLOWED"),
        "{}",
        refused.1
    );
    assert!(
        refused.1["message"]
            .as_str()
            .unwrap()
            .starts_with("Left at "),
        "{}",
        refused.1
    );
    // B's own knowledge: 5 in, 2 out, as of its last sync.
    let (_, known) = run(&["gate", "occupancy", "--db", b.to_str().unwrap()]);
    assert_eq!(
        (&known["inside"], &known["limit"]),
        (&json!(3), &json!(4)),
        "{known}"
    );
    assert!(known["as_of"].is_string(), "{known}");

    // Sync: the server counts entries − exits from the uploaded facts.
    let server = Server::start_on(&server_db, port);
    let (code, report) = sync(&b, None);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["round"]["applied"], 2, "{report}");
    let (status, occ) = http(port, "GET", &occupancy_path, Some(&w.staff), None);
    assert_eq!(status, 200, "{occ}");
    assert_eq!(
        (
            &occ["venue_id"],
            &occ["inside"],
            &occ["limit"],
            &occ["level"]
        ),
        (&json!(w.venue), &json!(3), &json!(4), &json!("NORMAL"))
    );
    assert!(occ["as_of"].is_string());

    // Re-entry allowed now: after a sync, B lets V-0 back in, marked re-entry.
    let (status, _) = http(
        port,
        "PATCH",
        &venue_path,
        Some(&w.admin),
        Some(json!({ "reentry_allowed": true })),
    );
    assert_eq!(status, 200);
    assert_eq!(sync(&b, None).0, 0);
    let back = pass(&b, "in", "V-0");
    assert_eq!(verdict(&back), (0, "ADMIT"), "{}", back.1);
    assert_eq!(back.1["reentry"], true, "{}", back.1);
    // Inside now: in again is a used ticket, not another re-entry.
    assert_eq!(verdict(&pass(&b, "in", "V-0")), (1, "ALREADY_VERIFIED"));
    let (code, report) = sync(&b, None);
    assert_eq!(
        (code, &report["round"]["applied"]),
        (0, &json!(1)),
        "{report}"
    );
    let (_, occ) = http(port, "GET", &occupancy_path, Some(&w.staff), None);
    assert_eq!(
        (&occ["inside"], &occ["level"]),
        (&json!(4), &json!("FULL")),
        "{occ}"
    );

    // The wrong phone: operator 1 lets V-5 in, then undoes it with a reason;
    // another operator may not, nor may anyone without a reason.
    assert_eq!(verdict(&pass(&b, "in", "V-5")), (0, "ADMIT"));
    let undo = |operator: &str, reason: &str| {
        run(&[
            "gate",
            "undo",
            "--db",
            b.to_str().unwrap(),
            "--operator",
            operator,
            "--reason",
            reason,
            "V-5",
        ])
    };
    let (code, refused) = undo("2", "wrong phone scanned");
    assert_eq!(
        (code, refused["error"]["code"].as_str()),
        (2, Some("INVALID_INPUT")),
        "{refused}"
    );
    assert_eq!(undo("1", " ").0, 2);
    let (code, undone) = undo("1", "wrong phone scanned");
    assert_eq!(
        (code, undone["verdict"].as_str()),
        (0, Some("ADMIT")),
        "{undone}"
    );
    assert!(undone["message"]
        .as_str()
        .unwrap()
        .contains("wrong phone scanned"));
    let (code, report) = sync(&b, None);
    assert_eq!(
        (code, &report["round"]["applied"]),
        (0, &json!(2)),
        "{report}"
    );
    let (_, occ) = http(port, "GET", &occupancy_path, Some(&w.staff), None);
    assert_eq!(occ["inside"], 4, "the undone admission is no entry: {occ}");
    let server_store = Store::open(&server_db).unwrap();
    let v5 = server_store
        .get_ticket(Orq(1), &entrada::domain::TicketCode::parse("V-5").unwrap())
        .unwrap();
    assert_eq!(v5.verified_at, None, "the server took the admission back");
    // The audit keeps both: the admission and the undo with its reason.
    let audit: Vec<(String, String)> = rusqlite::Connection::open(&server_db)
        .unwrap()
        .prepare(
            "SELECT kind, payload FROM sync_events WHERE payload LIKE '%V-5%' ORDER BY event_id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        audit.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["verify", "undo"]
    );
    assert!(audit[1].1.contains("wrong phone scanned"));

    // No conflict anywhere: every gate's fact agreed with the server's rows.
    let (status, conflicts) = http(port, "GET", "/api/operator/conflicts", Some(&w.admin), None);
    assert_eq!(status, 200);
    assert_eq!(conflicts.as_array().map(Vec::len), Some(0), "{conflicts}");

    // Closing time, called by a supervisor at gate B: the server checks
    // everyone out (an operator may not), and B's count follows at once.
    let checkout = |db: &Path, operator: &str| {
        run(&[
            "gate",
            "checkout",
            "--db",
            db.to_str().unwrap(),
            "--operator",
            operator,
        ])
    };
    let (code, refused) = checkout(&b, "1");
    assert_eq!(code, 2, "an operator may not check everyone out: {refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("403"),
        "{refused}"
    );
    let sam = server_store
        .add_operator(Orq(1), Role::Supervisor, "Sam", None, Utc::now())
        .unwrap()
        .id;
    let (code, done) = checkout(&b, &sam.0.to_string());
    assert_eq!(
        (code, &done["checked_out"], &done["inside"]),
        (0, &json!(4), &json!(0)),
        "{done}"
    );
    let (_, occ) = http(port, "GET", &occupancy_path, Some(&w.staff), None);
    assert_eq!(occ["inside"], 0, "{occ}");
    let (_, gate_occ) = run(&["gate", "occupancy", "--db", b.to_str().unwrap()]);
    assert_eq!(gate_occ["inside"], 0, "gate B pulled the exits: {gate_occ}");
    server.stop();
}

/// `entrada gate book` by operator 1: (exit code, verdict).
fn book(db: &Path, code: &str) -> (i32, Value) {
    run(&[
        "gate",
        "book",
        "--db",
        db.to_str().unwrap(),
        "--operator",
        "1",
        code,
    ])
}

#[test]
fn two_offline_gates_book_walkups_from_their_leases_and_never_overbook() {
    let dir = tempfile::tempdir().unwrap();
    let server_db = dir.path().join("server.db");
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let w = seed(&server_db);
    // The slot (capacity 100, 6 reserved) down to 9 places: 3 free. Walk-up
    // tickets W-0..W-5 are valid with no live reservation; X-0 is a customer's.
    let orq = Orq(1);
    let slot_id = {
        let store = Store::open(&server_db).unwrap();
        let slot = store.list_slots(orq, None, None, None).unwrap().remove(0);
        store
            .update_slot(
                orq,
                slot.id,
                entrada::domain::SlotChange {
                    total_capacity: Some(9),
                    status: None,
                },
                Utc::now(),
            )
            .unwrap();
        let codes: Vec<_> = (0..6)
            .map(|i| format!("W-{i}"))
            .chain(["X-0".to_string()])
            .map(|c| NewTicket::plain(&c, ActivationMode::Immediate).unwrap())
            .collect();
        store.insert_tickets(orq, &codes, Utc::now()).unwrap();
        // The walk-up holders' earlier reservations here were cancelled
        // (a gate's replica holds the tickets of its venue's reservations).
        for t in &codes[..6] {
            let req = ReserveRequest {
                ticket: t.ticket_code.clone(),
                slot_id: slot.id,
                contact: Contact::validate("w@example.com", "+12025551234").unwrap(),
            };
            let r = store.reserve_slot(orq, &req, Utc::now()).unwrap();
            store
                .cancel_reservation(orq, r.id, entrada::domain::ChangedBy::Staff, Utc::now())
                .unwrap();
        }
        slot.id
    };
    let port = free_port();
    let server = Server::start_on(&server_db, port);
    let venue_path = format!("/api/admin/venues/{}", w.venue);
    let (status, venue) = http(
        port,
        "PATCH",
        &venue_path,
        Some(&w.admin),
        Some(json!({ "walkup_lease_places": 2 })),
    );
    assert_eq!(
        (status, &venue["walkup_lease_places"]),
        (200, &json!(2)),
        "{venue}"
    );

    // Both gates pair; their sync leases them places: 2 to A, the 1 left to B.
    let (code, report) = sync(&a, Some((&server.url, &w.gate_a)));
    assert_eq!(
        (code, &report["round"]["leased"]),
        (0, &json!(2)),
        "{report}"
    );
    let (code, report) = sync(&b, Some((&server.url, &w.gate_b)));
    assert_eq!(
        (code, &report["round"]["leased"]),
        (0, &json!(1)),
        "{report}"
    );
    // Leased places are taken: a customer finds the slot full.
    {
        let store = Store::open(&server_db).unwrap();
        let slot = store.get_slot(orq, slot_id).unwrap();
        assert_eq!((slot.booked_count, slot.total_capacity), (9, 9));
        let req = ReserveRequest {
            ticket: entrada::domain::TicketCode::parse("X-0").unwrap(),
            slot_id,
            contact: Contact::validate("x@example.com", "+12025551234").unwrap(),
        };
        let err = store.reserve_slot(orq, &req, Utc::now()).unwrap_err();
        assert_eq!(err.code(), "SLOT_FULL");
    }
    server.stop();

    // Offline, three walk-ups at each gate: only the leased places book.
    let mut admitted = Vec::new();
    for (gate, db, codes) in [
        ("A", &a, ["W-0", "W-1", "W-2"]),
        ("B", &b, ["W-3", "W-4", "W-5"]),
    ] {
        for code in codes {
            let out = book(db, code);
            match verdict(&out) {
                (0, "ADMIT") => admitted.push(code),
                (1, "NO_PLACE_LEFT") => {}
                other => panic!("gate {gate} {code}: {other:?} {}", out.1),
            }
        }
    }
    assert_eq!(admitted, ["W-0", "W-1", "W-3"]);
    // A booked holder is in: scanning again says so.
    assert_eq!(verdict(&pass(&a, "in", "W-0")), (1, "ALREADY_VERIFIED"));
    // A ticket with a reservation already is just admitted, no place used.
    assert_eq!(verdict(&book(&b, "V-5")), (0, "ADMIT"));

    // Back online: every ADMIT the gates showed is honoured, no conflict,
    // and the slot is exactly full, never over.
    let server = Server::start_on(&server_db, port);
    for db in [&a, &b] {
        let (code, report) = sync(db, None);
        assert_eq!(code, 0, "{report}");
        assert_eq!(report["round"]["conflicts"], 0, "{report}");
        assert_eq!(report["round"]["rejected"], 0, "{report}");
    }
    let store = Store::open(&server_db).unwrap();
    for code in ["W-0", "W-1", "W-3", "V-5"] {
        let t = store
            .get_ticket(orq, &entrada::domain::TicketCode::parse(code).unwrap())
            .unwrap();
        assert!(t.verified_at.is_some(), "{code} not verified on the server");
    }
    for code in ["W-2", "W-4", "W-5"] {
        let t = entrada::domain::TicketCode::parse(code).unwrap();
        let r = store.reservation_for_ticket(orq, &t).unwrap().unwrap();
        assert_eq!(
            r.status,
            entrada::domain::ReservationStatus::Cancelled,
            "{code}"
        );
    }
    let slot = store.get_slot(orq, slot_id).unwrap();
    assert_eq!((slot.booked_count, slot.total_capacity), (9, 9));
    let (status, conflicts) = http(port, "GET", "/api/operator/conflicts", Some(&w.admin), None);
    assert_eq!(status, 200);
    assert_eq!(conflicts.as_array().map(Vec::len), Some(0), "{conflicts}");
    server.stop();
}

#[test]
fn online_walkups_go_through_the_servers_reservation_path() {
    let dir = tempfile::tempdir().unwrap();
    let server_db = dir.path().join("server.db");
    let a = dir.path().join("a.db");
    let w = seed(&server_db);
    // The slot (6 reserved) down to 8 places: 2 free. No leases (the
    // default walkup_lease_places = 0: walk-ups only while online).
    // N-0, N-1 and the deferred D-0 were never reserved anywhere, so the
    // gate's replica does not hold them: their signed codes are authentic
    // but unknown to it, and only the server can book them.
    let orq = Orq(1);
    let (slot_id, signed) = {
        let store = Store::open(&server_db).unwrap();
        let slot = store.list_slots(orq, None, None, None).unwrap().remove(0);
        store
            .update_slot(
                orq,
                slot.id,
                entrada::domain::SlotChange {
                    total_capacity: Some(8),
                    status: None,
                },
                Utc::now(),
            )
            .unwrap();
        let tickets = [
            NewTicket::plain("N-0", ActivationMode::Immediate).unwrap(),
            NewTicket::plain("N-1", ActivationMode::Immediate).unwrap(),
            NewTicket::plain("D-0", ActivationMode::Deferred).unwrap(),
        ];
        store.insert_tickets(orq, &tickets, Utc::now()).unwrap();
        let signed: Vec<String> = tickets
            .iter()
            .map(|t| store.signed_code(orq, &t.ticket_code, Utc::now()).unwrap())
            .collect();
        (slot.id, signed)
    };
    let port = free_port();
    let server = Server::start_on(&server_db, port);
    let (code, report) = sync(&a, Some((&server.url, &w.gate_a)));
    assert_eq!(
        (code, &report["round"]["leased"]),
        (0, &json!(0)),
        "{report}"
    );
    // Scanned first, the gate cannot judge them: amber, walk-up offered.
    assert_eq!(
        verdict(&pass(&a, "in", &signed[0])),
        (1, "AUTHENTIC_NOT_SYNCED")
    );

    // Online: the server books each into the slot open now and the gate
    // admits; the deferred ticket is activated on the way.
    let (code, v) = book(&a, &signed[0]);
    assert_eq!((code, v["verdict"].as_str()), (0, Some("ADMIT")), "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("Walk-up booked"),
        "{v}"
    );
    assert_eq!(verdict(&book(&a, &signed[2])), (0, "ADMIT"));
    // The slot is full now: the server has no place, and this gate holds
    // no lease.
    assert_eq!(verdict(&book(&a, &signed[1])), (1, "NO_PLACE_LEFT"));
    // A ticket let in already keeps its own verdict.
    assert_eq!(verdict(&book(&a, &signed[0])), (1, "ALREADY_VERIFIED"));
    {
        let store = Store::open(&server_db).unwrap();
        let slot = store.get_slot(orq, slot_id).unwrap();
        assert_eq!((slot.booked_count, slot.total_capacity), (8, 8));
        let d0 = store
            .get_ticket(orq, &entrada::domain::TicketCode::parse("D-0").unwrap())
            .unwrap();
        assert_eq!(
            d0.activation_status,
            entrada::domain::ActivationStatus::Active
        );
    }
    // The admissions reach the server with the next sync, no conflict.
    let (code, report) = sync(&a, None);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["round"]["conflicts"], 0, "{report}");
    assert_eq!(report["round"]["rejected"], 0, "{report}");
    let store = Store::open(&server_db).unwrap();
    for c in ["N-0", "D-0"] {
        let t = store
            .get_ticket(orq, &entrada::domain::TicketCode::parse(c).unwrap())
            .unwrap();
        assert!(t.verified_at.is_some(), "{c} not verified on the server");
    }
    let n1 = entrada::domain::TicketCode::parse("N-1").unwrap();
    assert!(store.reservation_for_ticket(orq, &n1).unwrap().is_none());
    let slot = store.get_slot(orq, slot_id).unwrap();
    assert_eq!((slot.booked_count, slot.total_capacity), (8, 8));

    // The wrong phone was scanned: the operator undoes N-0's admission. The
    // walk-up's reservation is released with it, on the gate and, after
    // the next sync, on the server: its place is free for N-1.
    let (code, undone) = run(&[
        "gate",
        "undo",
        "--db",
        a.to_str().unwrap(),
        "--operator",
        "1",
        "--reason",
        "wrong phone scanned",
        "N-0",
    ]);
    assert_eq!(code, 0, "{undone}");
    let (code, report) = sync(&a, None);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["round"]["conflicts"], 0, "{report}");
    let n0 = entrada::domain::TicketCode::parse("N-0").unwrap();
    assert_eq!(
        store
            .reservation_for_ticket(orq, &n0)
            .unwrap()
            .unwrap()
            .status,
        entrada::domain::ReservationStatus::Cancelled
    );
    assert!(store.get_ticket(orq, &n0).unwrap().verified_at.is_none());
    assert_eq!(store.get_slot(orq, slot_id).unwrap().booked_count, 7);
    assert_eq!(verdict(&book(&a, &signed[1])), (0, "ADMIT"));
    assert_eq!(store.get_slot(orq, slot_id).unwrap().booked_count, 8);
    server.stop();

    // Offline with no lease: no walk-up (0 leased places = online only).
    assert_eq!(verdict(&book(&a, &signed[0])), (1, "NO_PLACE_LEFT"));
}
