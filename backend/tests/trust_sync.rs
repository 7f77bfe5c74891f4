//! Trust boundaries of gate sync, through the real router: the server judges
//! what a gate uploads (issue 11, item 2), and a gate receives only what its
//! venue needs (item 5).

mod sync_world;

use axum::http::{Method, StatusCode};
use chrono::{Duration, Utc};
use entrada::domain::{ChangedBy, Gate, OperatorId, Orq, TicketCode, VenueId};
use entrada::store::Store;
use entrada::sync::protocol::{ChangePage, DeviceInfo};
use serde_json::Value;
use sync_world::*;

#[tokio::test]
async fn admissions_the_server_would_refuse_are_conflicts_that_change_nothing() {
    let w = World::new();
    let now = Utc::now();
    let op = Some(w.op);
    let results = upload(
        &w.app,
        &w.gate_x,
        vec![
            verify_event(OK_X[0], op, now),
            verify_event(RES_CANCELLED_X, op, now),
            verify_event(TICKET_CANCELLED_X, op, now),
            verify_event(AT_Y, op, now),
            verify_event(UNRESERVED, op, now),
            verify_event(OTHER_ORG, op, now),
        ],
        now,
    )
    .await;
    let answers: Vec<_> = results.iter().map(answer).collect();
    let s = |status: &str, reason: Option<&str>| (status.to_string(), reason.map(str::to_string));
    assert_eq!(
        answers,
        vec![
            s("applied", None),
            s("conflict", Some("RESERVATION_CANCELLED")),
            s("conflict", Some("TICKET_CANCELLED")),
            s("conflict", Some("WRONG_VENUE")),
            s("conflict", Some("NOT_RESERVED")),
            s("rejected", Some("NOT_FOUND")),
        ]
    );
    // The admission the server would have made is applied…
    assert!(w.verified_at(OK_X[0]).is_some());
    assert_eq!(w.reservation_status(OK_X[0]), "VERIFIED");
    // …the others change no ticket and no reservation.
    assert_eq!(w.reservation_status(RES_CANCELLED_X), "CANCELLED");
    assert_eq!(w.reservation_status(TICKET_CANCELLED_X), "CANCELLED");
    assert_eq!(w.reservation_status(AT_Y), "RESERVED");
    for code in [
        RES_CANCELLED_X,
        TICKET_CANCELLED_X,
        AT_Y,
        UNRESERVED,
        OTHER_ORG,
    ] {
        assert_eq!(w.verified_at(code), None, "{code}");
    }
    assert_eq!(
        w.one::<String>(&format!(
            "SELECT activation_status FROM tickets WHERE ticket_code = '{TICKET_CANCELLED_X}'"
        )),
        "cancelled"
    );
    // Each is recorded as a fact (the person is inside), with its refusal.
    assert_eq!(
        w.one::<i64>("SELECT count(*) FROM verifications WHERE refused IS NOT NULL"),
        4
    );
    // A conflict carries both sides' facts.
    let wrong_venue = &results[3]["facts"];
    assert_eq!(wrong_venue["gate"]["venue_id"], w.x.0);
    assert_eq!(wrong_venue["server"]["verdict"]["venue_id"], w.y.0);
    assert_eq!(wrong_venue["server"]["reservation_status"], "RESERVED");
    assert_eq!(
        results[1]["facts"]["server"]["reservation_status"],
        "CANCELLED"
    );

    // Supervisors see them like double entries.
    let (status, conflicts) = call(
        &w.app,
        Method::GET,
        "/api/operator/conflicts",
        &w.sup_token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut kinds: Vec<&str> = conflicts
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "NOT_RESERVED",
            "RESERVATION_CANCELLED",
            "TICKET_CANCELLED",
            "WRONG_VENUE"
        ]
    );
    let c = conflicts
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "RESERVATION_CANCELLED")
        .unwrap();
    assert_eq!(
        (
            c["second_device_id"].as_i64(),
            c["second_operator_id"].as_i64()
        ),
        (Some(w.gate_x_id), Some(w.op.0))
    );
    let facts: Value = serde_json::from_str(c["facts"].as_str().unwrap()).unwrap();
    assert_eq!(
        facts["server"]["verdict"]["verdict"],
        "RESERVATION_CANCELLED"
    );

    // Exactly once: a replay answers `duplicate` with the first answer.
    let mut replay = verify_event(RES_CANCELLED_X, op, now);
    replay["event_id"] = results[1]["event_id"].clone();
    let again = upload(&w.app, &w.gate_x, vec![replay], now).await;
    assert_eq!(answer(&again[0]), s("duplicate", Some("ALREADY_APPLIED")));
    assert_eq!(again[0]["facts"]["status"], "conflict");
    assert_eq!(w.one::<i64>("SELECT count(*) FROM sync_conflicts"), 4);
}

#[tokio::test]
async fn a_gate_cannot_act_as_an_operator_that_does_not_exist_here() {
    let w = World::new();
    let now = Utc::now();
    let results = upload(
        &w.app,
        &w.gate_x,
        vec![
            verify_event(OK_X[0], Some(OperatorId(9999)), now),
            verify_event(OK_X[1], Some(w.other_sup), now),
            verify_event(OK_X[2], None, now),
            verify_event(OK_X[3], Some(w.admin), now),
        ],
        now,
    )
    .await;
    let answers: Vec<_> = results.iter().map(answer).collect();
    assert_eq!(
        answers[0],
        ("rejected".into(), Some("UNKNOWN_OPERATOR".into()))
    );
    assert_eq!(
        answers[1],
        ("rejected".into(), Some("UNKNOWN_OPERATOR".into()))
    );
    assert_eq!(
        answers[2],
        ("rejected".into(), Some("OPERATOR_REQUIRED".into()))
    );
    assert_eq!(answers[3], ("applied".into(), None));
    for code in &OK_X[..3] {
        assert_eq!(w.verified_at(code), None, "{code}");
        assert_eq!(w.reservation_status(code), "RESERVED");
    }
    assert_eq!(
        w.one::<i64>(&format!(
            "SELECT verified_by FROM tickets WHERE ticket_code = '{}'",
            OK_X[3]
        )),
        w.admin.0
    );
    assert_eq!(w.one::<i64>("SELECT count(*) FROM verifications"), 1);
    // A staff token bound to an operator is no device token: it cannot
    // upload events at all, for itself or for anyone else.
    let forged = verify_event(OK_X[0], Some(w.sup), now);
    for token in [&w.op_token, &w.sup_token] {
        let (status, body) = call(
            &w.app,
            Method::POST,
            "/api/sync/events",
            token,
            Some(serde_json::json!({ "events": [forged.clone()], "sent_at": now })),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    assert_eq!(w.verified_at(OK_X[0]), None);
}

#[tokio::test]
async fn slot_changes_need_a_supervisor_of_the_org_and_a_slot_of_the_gates_venue() {
    let w = World::new();
    let now = Utc::now();
    let results = upload(
        &w.app,
        &w.gate_x,
        vec![
            slot_event(w.slot_x, 50, Some(w.op), now),
            slot_event(w.slot_x, 51, Some(OperatorId(424242)), now),
            slot_event(w.slot_x, 52, Some(w.other_sup), now),
            slot_event(w.slot_x, 53, None, now),
            slot_event(w.slot_y, 54, Some(w.sup), now),
            slot_event(w.slot_z, 55, Some(w.sup), now),
            slot_event(w.slot_x, 1, Some(w.sup), now),
        ],
        now,
    )
    .await;
    let reasons: Vec<_> = results.iter().map(answer).collect();
    let rejected = |r: &str| ("rejected".to_string(), Some(r.to_string()));
    assert_eq!(
        reasons,
        vec![
            rejected("OPERATOR_NOT_ALLOWED"),
            rejected("UNKNOWN_OPERATOR"),
            rejected("UNKNOWN_OPERATOR"),
            rejected("OPERATOR_REQUIRED"),
            rejected("WRONG_VENUE"),
            rejected("NOT_FOUND"),
            // The change's own rule still holds (5 places are booked).
            rejected("CAPACITY_BELOW_BOOKED"),
        ]
    );
    assert_eq!(results[4]["facts"]["slot_venue_id"], w.y.0);
    for slot in [w.slot_x, w.slot_y, w.slot_z] {
        assert_eq!(w.capacity(slot), 100);
    }
    // The supervisor at their own venue's slot: applied.
    let ok = upload(
        &w.app,
        &w.gate_x,
        vec![slot_event(w.slot_x, 80, Some(w.sup), now)],
        now,
    )
    .await;
    assert_eq!(answer(&ok[0]), ("applied".into(), None));
    assert_eq!(w.capacity(w.slot_x), 80);
    // An operator-bound staff token cannot push a slot change either.
    let (status, _) = call(
        &w.app,
        Method::POST,
        "/api/sync/events",
        &w.op_token,
        Some(serde_json::json!({ "events": [slot_event(w.slot_x, 90, Some(w.sup), now)], "sent_at": now })),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(w.capacity(w.slot_x), 80);
}

#[tokio::test]
async fn an_event_is_judged_at_its_time_on_the_servers_clock() {
    let w = World::new();
    let now = Utc::now();
    // A gate whose clock runs a day behind: its "yesterday" is today. The
    // server measures the offset from the batch and corrects the event.
    let behind = now - Duration::days(1);
    let late_clock = upload(
        &w.app,
        &w.gate_x,
        vec![verify_event(OK_X[0], Some(w.op), behind)],
        behind,
    )
    .await;
    assert_eq!(answer(&late_clock[0]), ("applied".into(), None));
    let verified_at =
        chrono::DateTime::parse_from_rfc3339(&w.verified_at(OK_X[0]).unwrap()).unwrap();
    assert!(
        (verified_at.with_timezone(&Utc) - now).num_seconds().abs() < 60,
        "{verified_at}"
    );
    // A gate with a right clock uploading an admission it made yesterday
    // (offline): judged yesterday, when the reservation was not for that day.
    let yesterday = upload(
        &w.app,
        &w.gate_x,
        vec![verify_event(OK_X[1], Some(w.op), behind)],
        now,
    )
    .await;
    assert_eq!(
        answer(&yesterday[0]),
        ("conflict".into(), Some("WRONG_DATE".into()))
    );
    assert_eq!(w.verified_at(OK_X[1]), None);
    // The device's time cannot be later than the server received it.
    let future = now + Duration::days(3);
    let ahead = upload(
        &w.app,
        &w.gate_x,
        vec![verify_event(OK_X[2], Some(w.op), future)],
        now,
    )
    .await;
    assert_eq!(answer(&ahead[0]), ("applied".into(), None));
}

// ------------------------------------------------------------------ item 5

async fn pull_all(w: &World, token: &str, mut cursor: i64) -> (Vec<ChangePage>, i64) {
    let mut pages = Vec::new();
    loop {
        let (status, body) = call(
            &w.app,
            Method::GET,
            &format!("/api/sync/changes?cursor={cursor}&limit=7"),
            token,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page: ChangePage = serde_json::from_value(body).unwrap();
        cursor = page.next_cursor;
        let more = page.has_more;
        pages.push(page);
        if !more {
            return (pages, cursor);
        }
    }
}

fn ids(pages: &[ChangePage], entity: &str, op: &str) -> Vec<String> {
    let mut v: Vec<String> = pages
        .iter()
        .flat_map(|p| &p.changes)
        .filter(|c| c.entity == entity && c.op == op)
        .map(|c| c.entity_id.clone())
        .collect();
    v.sort();
    v
}

/// A gate's replica, paired as the device of `token`'s venue.
fn replica(w: &World, venue: VenueId, name: &str) -> Store {
    let store = Store::open(w.dir.path().join(format!("{name}.db"))).unwrap();
    let info = DeviceInfo {
        device_id: 77,
        orq: 1,
        venue_id: venue.0,
        name: name.into(),
    };
    store.pair(&info, "http://127.0.0.1:1", "dev_test").unwrap();
    store
}

fn apply(store: &Store, pages: &[ChangePage]) {
    for p in pages {
        store.apply_change_page(p, Some(0), Utc::now()).unwrap();
    }
}

#[tokio::test]
async fn a_gate_receives_its_venues_rows_and_the_org_wide_ones_only() {
    let w = World::new();
    let (pages, _) = pull_all(&w, &w.gate_x, 0).await;
    let mut x_tickets: Vec<String> = OK_X.iter().map(|c| c.to_string()).collect();
    x_tickets.extend([RES_CANCELLED_X.to_string(), TICKET_CANCELLED_X.to_string()]);
    x_tickets.sort();
    assert_eq!(ids(&pages, "tickets", "upsert"), x_tickets);
    assert_eq!(ids(&pages, "ticket_reservations", "upsert").len(), 6);
    assert_eq!(
        ids(&pages, "reservation_slots", "upsert"),
        vec![w.slot_x.to_string()]
    );
    assert_eq!(ids(&pages, "venues", "upsert"), vec![w.x.0.to_string()]);
    // Org-wide: every operator of the org (to sign in), none of org 2.
    assert_eq!(ids(&pages, "operators", "upsert"), {
        let mut v = vec![
            w.op.0.to_string(),
            w.sup.0.to_string(),
            w.admin.0.to_string(),
        ];
        v.sort();
        v
    });
    // No other venue's customer appears anywhere in what the gate got.
    let all = serde_json::to_string(&pages).unwrap();
    for leak in [
        "reina@example.com",
        "zoe@example.com",
        AT_Y,
        UNRESERVED,
        OTHER_ORG,
    ] {
        assert!(!all.contains(leak), "{leak} reached gate X");
    }

    // Lookup by e-mail keeps working on the gate, for its venue.
    let gate = replica(&w, w.x, "gate-x");
    apply(&gate, &pages);
    let found = gate.lookup_tickets(ORQ, "x2@example.com", 10).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].ticket.ticket_code.as_str(), OK_X[2]);
    assert!(gate
        .lookup_tickets(ORQ, "reina@example.com", 10)
        .unwrap()
        .is_empty());
    // A ticket of another venue is unknown here (not a wrong venue: the gate
    // does not hold it), as is a ticket reserved nowhere.
    let rules = Gate {
        venue_id: Some(w.x),
        ..Gate::default()
    };
    for code in [AT_Y, UNRESERVED] {
        let v = gate
            .validate_ticket(ORQ, &TicketCode::parse(code).unwrap(), &rules, Utc::now())
            .unwrap();
        assert_eq!(v.verdict.code(), "UNKNOWN_TICKET", "{code}");
    }
    let v = gate
        .validate_ticket(
            ORQ,
            &TicketCode::parse(OK_X[0]).unwrap(),
            &rules,
            Utc::now(),
        )
        .unwrap();
    assert_eq!(v.verdict.code(), "ADMIT");

    // Gate Y's conflicts stay at Y.
    let now = Utc::now();
    let at_y = upload(
        &w.app,
        &w.gate_y,
        vec![verify_event(OK_X[0], Some(w.op), now)],
        now,
    )
    .await;
    assert_eq!(
        answer(&at_y[0]),
        ("conflict".into(), Some("WRONG_VENUE".into()))
    );
    let (y_pages, _) = pull_all(&w, &w.gate_y, 0).await;
    assert_eq!(ids(&y_pages, "sync_conflicts", "upsert").len(), 1);
    let (x_pages, _) = pull_all(&w, &w.gate_x, 0).await;
    assert!(ids(&x_pages, "sync_conflicts", "upsert").is_empty());
}

#[tokio::test]
async fn a_reservation_moved_to_another_venue_leaves_the_old_venues_gates() {
    let w = World::new();
    let gate_x = replica(&w, w.x, "gate-x");
    let gate_y = replica(&w, w.y, "gate-y");
    let (px, cx) = pull_all(&w, &w.gate_x, 0).await;
    let (py, cy) = pull_all(&w, &w.gate_y, 0).await;
    apply(&gate_x, &px);
    apply(&gate_y, &py);
    let moved = TicketCode::parse(OK_X[1]).unwrap();
    assert!(gate_x.get_ticket(ORQ, &moved).is_ok());

    // The holder moves their reservation from X to Y.
    let rid = w.reservation_id(OK_X[1]);
    w.store
        .reschedule_reservation(ORQ, rid, w.slot_y, ChangedBy::Staff, Utc::now())
        .unwrap();

    let (px2, _) = pull_all(&w, &w.gate_x, cx).await;
    assert_eq!(ids(&px2, "tickets", "delete"), vec![OK_X[1].to_string()]);
    assert_eq!(
        ids(&px2, "ticket_reservations", "delete"),
        vec![rid.0.to_string()]
    );
    assert!(ids(&px2, "tickets", "upsert").is_empty());
    apply(&gate_x, &px2);
    assert_eq!(
        gate_x.get_ticket(ORQ, &moved).unwrap_err().code(),
        "NOT_FOUND"
    );
    let rules = Gate {
        venue_id: Some(w.x),
        ..Gate::default()
    };
    let v = gate_x
        .validate_ticket(ORQ, &moved, &rules, Utc::now())
        .unwrap();
    assert_eq!(v.verdict.code(), "UNKNOWN_TICKET");

    let (py2, _) = pull_all(&w, &w.gate_y, cy).await;
    assert_eq!(ids(&py2, "tickets", "upsert"), vec![OK_X[1].to_string()]);
    apply(&gate_y, &py2);
    let rules_y = Gate {
        venue_id: Some(w.y),
        ..Gate::default()
    };
    assert_eq!(
        gate_y
            .validate_ticket(ORQ, &moved, &rules_y, Utc::now())
            .unwrap()
            .verdict
            .code(),
        "ADMIT"
    );

    // Back to X: X gets it again (and no stale delete after it).
    w.store
        .reschedule_reservation(ORQ, rid, w.slot_x, ChangedBy::Staff, Utc::now())
        .unwrap();
    let (px3, _) = pull_all(&w, &w.gate_x, 0).await;
    assert!(ids(&px3, "tickets", "upsert").contains(&OK_X[1].to_string()));
    assert!(
        ids(&px3, "tickets", "delete").is_empty(),
        "{:?}",
        ids(&px3, "tickets", "delete")
    );
}

#[tokio::test]
async fn a_cursor_from_before_the_scoped_feed_resets_the_replica() {
    let w = World::new();
    let gate = replica(&w, w.x, "legacy");
    // What an old server sent: every venue's rows (here, Y's ticket).
    {
        let conn = rusqlite::Connection::open(w.dir.path().join("legacy.db")).unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO tickets (ticket_code, orq, status, activation_status, activated_at) VALUES ('{AT_Y}', 1, 'RESERVED', 'active', '2025-01-01T00:00:00.000Z'); \
             UPDATE device_identity SET cursor = 3;"
        ))
        .unwrap();
    }
    // This server's feed was scoped after seq 3 (as the migration marks it).
    w.sql()
        .execute("UPDATE change_feed SET scoped_from = 4", [])
        .unwrap();
    let (pages, _) = pull_all(&w, &w.gate_x, 3).await;
    assert!(pages[0].reset);
    assert!(pages.iter().skip(1).all(|p| !p.reset));
    apply(&gate, &pages);
    assert_eq!(
        gate.get_ticket(ORQ, &TicketCode::parse(AT_Y).unwrap())
            .unwrap_err()
            .code(),
        "NOT_FOUND"
    );
    assert!(gate
        .get_ticket(ORQ, &TicketCode::parse(OK_X[0]).unwrap())
        .is_ok());
    // Re-paired to another venue: the old venue's rows go, the feed restarts.
    let info = DeviceInfo {
        device_id: 78,
        orq: 1,
        venue_id: w.y.0,
        name: "moved".into(),
    };
    assert!(gate.pair(&info, "http://127.0.0.1:1", "dev_test2").unwrap());
    assert_eq!(gate.pairing().unwrap().unwrap().cursor, 0);
    assert!(gate
        .get_ticket(ORQ, &TicketCode::parse(OK_X[0]).unwrap())
        .is_err());
    let _ = Orq(1);
}

/// A ticket let in at venue Y stays Y's admission: gate X uploading it with a
/// clock set back to before Y's scan gets a WRONG_VENUE conflict, and the
/// ticket keeps Y's time and operator (no earliest-wins swap across venues).
#[tokio::test]
async fn a_backdated_gate_cannot_rewrite_another_venues_admission() {
    let w = World::new();
    let now = Utc::now();
    let at_y = upload(
        &w.app,
        &w.gate_y,
        vec![verify_event(AT_Y, Some(w.op), now)],
        now,
    )
    .await;
    assert_eq!(answer(&at_y[0]), ("applied".to_string(), None));
    let before = (
        w.verified_at(AT_Y),
        w.one::<Option<i64>>(&format!(
            "SELECT verified_by FROM tickets WHERE ticket_code = '{AT_Y}'"
        )),
    );
    assert!(before.0.is_some());

    // Gate X claims it let the ticket in an hour earlier, clock and all.
    let past = now - Duration::hours(1);
    let forged = upload(
        &w.app,
        &w.gate_x,
        vec![verify_event(AT_Y, Some(w.sup), past)],
        past,
    )
    .await;
    assert_eq!(
        answer(&forged[0]),
        ("conflict".to_string(), Some("WRONG_VENUE".to_string()))
    );
    let after = (
        w.verified_at(AT_Y),
        w.one::<Option<i64>>(&format!(
            "SELECT verified_by FROM tickets WHERE ticket_code = '{AT_Y}'"
        )),
    );
    assert_eq!(after, before, "Y's admission stands");
}
