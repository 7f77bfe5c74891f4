//! Forged uploads to `POST /api/sync/events`, through the real router: a
//! stolen or cloned gate sends whatever it likes (other venue's and other
//! org's tickets and slots, unknown operators, operators of another org,
//! slot changes by non-supervisors, admissions of cancelled reservations and
//! tickets, made-up "overruled" marks, wild clocks). Whatever arrives, the
//! server's state afterwards holds: no reservation turned VERIFIED unless the
//! server would have admitted it, no cancelled ticket used, no slot changed
//! but by a supervisor of the org at the gate's venue, and every refused
//! event answered `conflict` or `rejected` with a reason.
//!
//! `HOSTILE_SYNC_CASES=2000 cargo test -p entrada --test hostile_sync` runs longer.

mod sync_world;

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use entrada::domain::{OperatorId, SlotId};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};
use sync_world::*;

#[derive(Debug, Clone)]
enum Forged {
    Verify {
        ticket: usize,
        operator: usize,
        overruled: Option<&'static str>,
        venue_claim: Option<i64>,
    },
    SlotChange {
        slot: usize,
        operator: usize,
        capacity: i64,
        status: Option<&'static str>,
    },
    Activate {
        ticket: usize,
        operator: usize,
    },
    Garbage {
        kind: String,
        payload: Value,
    },
}

const TICKETS: &[&str] = &[
    OK_X[0],
    OK_X[1],
    RES_CANCELLED_X,
    TICKET_CANCELLED_X,
    AT_Y,
    UNRESERVED,
    OTHER_ORG,
    "NEVER-ISSUED",
];

fn forged() -> impl Strategy<Value = Forged> {
    let marks = prop::option::of(prop::sample::select(vec![
        "AUTHENTIC_NOT_SYNCED",
        "OUTSIDE_SLOT_WINDOW",
        "RESERVATION_CANCELLED",
        "WRONG_VENUE",
        "TICKET_CANCELLED",
        "ADMIT",
        "nonsense",
    ]));
    prop_oneof![
        4 => (0..TICKETS.len(), 0..6usize, marks, prop::option::of(0i64..5)).prop_map(|(ticket, operator, overruled, venue_claim)| Forged::Verify { ticket, operator, overruled, venue_claim }),
        3 => (0..4usize, 0..6usize, prop_oneof![1i64..200, Just(0), Just(-5), Just(i64::MAX)], prop::option::of(prop::sample::select(vec!["ACTIVE", "CLOSED", "FULL", "open"]))).prop_map(|(slot, operator, capacity, status)| Forged::SlotChange { slot, operator, capacity, status }),
        1 => (0..TICKETS.len(), 0..6usize).prop_map(|(ticket, operator)| Forged::Activate { ticket, operator }),
        1 => ("[a-z_]{0,12}", prop_oneof![Just(json!({})), Just(json!({"ticket_code": 5})), Just(json!({"slot_id": "not-a-uuid"})), Just(json!(null)), Just(json!([1, 2]))]).prop_map(|(kind, payload)| Forged::Garbage { kind, payload }),
    ]
}

/// What the server held before the run, and must still hold after it
/// unless an event was allowed to change it.
fn snapshot(w: &World) -> BTreeMap<String, String> {
    let conn = w.sql();
    let mut out = BTreeMap::new();
    for (name, sql) in [
        ("reservation", "SELECT ticket_id, status || '|' || slot_id FROM ticket_reservations"),
        ("ticket", "SELECT ticket_code, status || '|' || activation_status || '|' || coalesce(verified_at, '-') || '|' || coalesce(verified_by, '-') FROM tickets"),
        ("slot", "SELECT id, total_capacity || '|' || status || '|' || booked_count FROM reservation_slots"),
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .unwrap();
        for row in rows {
            let (k, v) = row.unwrap();
            out.insert(format!("{name}:{k}"), v);
        }
    }
    out
}

#[test]
fn forged_uploads_never_change_what_the_gate_may_not_change() {
    let w = World::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let operators = [
        Some(w.op),
        Some(w.sup),
        Some(w.admin),
        Some(w.other_sup),
        Some(OperatorId(987_654)),
        None,
    ];
    let slots = [w.slot_x, w.slot_y, w.slot_z, SlotId(uuid::Uuid::now_v7())];
    let before = snapshot(&w);
    let cases = std::env::var("HOSTILE_SYNC_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let batch = (prop::collection::vec(forged(), 1..12), -3i64..=3, -2i64..=2);
    runner
        .run(&batch, |(events, clock_days, event_days)| {
            let now = Utc::now();
            // The gate's clock is off by whole days; its events are stamped
            // on that clock, some days around it.
            let sent_at = now + Duration::days(clock_days);
            let device_time = sent_at + Duration::days(event_days);
            let body: Vec<Value> = events
                .iter()
                .map(|e| match e {
                    Forged::Verify { ticket, operator, overruled, venue_claim } => {
                        let mut v = verify_event(TICKETS[*ticket], operators[*operator], device_time);
                        if let Some(mark) = overruled {
                            v["payload"]["overruled"] = json!(mark);
                        }
                        v["payload"]["venue_id"] = json!(venue_claim);
                        v
                    }
                    Forged::SlotChange { slot, operator, capacity, status } => {
                        let mut v = slot_event(slots[*slot], *capacity, operators[*operator], device_time);
                        if let Some(s) = status {
                            v["payload"]["status"] = json!(s);
                        }
                        v
                    }
                    Forged::Activate { ticket, operator } => json!({
                        "event_id": uuid::Uuid::now_v7(), "kind": "activate",
                        "payload": { "ticket_code": TICKETS[*ticket] },
                        "operator_id": operators[*operator].map(|o| o.0), "device_time": device_time,
                    }),
                    Forged::Garbage { kind, payload } => json!({
                        "event_id": uuid::Uuid::now_v7(), "kind": kind, "payload": payload,
                        "operator_id": null, "device_time": device_time,
                    }),
                })
                .collect();
            let results = rt.block_on(upload(&w.app, &w.gate_x, body, sent_at));
            prop_assert_eq!(results.len(), events.len());
            // The event time the server judges by: the gate's clock is
            // corrected by the measured offset, and nothing is later than
            // its arrival, so it is today unless stamped days before.
            let judged_today = event_days >= 0;
            for (event, result) in events.iter().zip(&results) {
                let (status, reason) = answer(result);
                prop_assert!(["applied", "conflict", "rejected"].contains(&status.as_str()), "{}", result);
                if status != "applied" {
                    prop_assert!(reason.as_deref().is_some_and(|r| !r.is_empty()), "no reason: {}", result);
                }
                match event {
                    Forged::Verify { ticket, operator, .. } => {
                        let code = TICKETS[*ticket];
                        let known_actor = *operator <= 2;
                        if !known_actor {
                            prop_assert_eq!(status.as_str(), "rejected", "{} by {:?}: {}", code, operators[*operator], result);
                        }
                        if status == "applied" {
                            // Only a ticket the server would admit here, now.
                            prop_assert!(OK_X[..2].contains(&code) && judged_today, "{} applied: {}", code, result);
                        }
                        if [RES_CANCELLED_X, TICKET_CANCELLED_X, AT_Y, UNRESERVED].contains(&code) && known_actor {
                            prop_assert_eq!(status.as_str(), "conflict", "{}: {}", code, result);
                        }
                        if [OTHER_ORG, "NEVER-ISSUED"].contains(&code) {
                            prop_assert_eq!(status.as_str(), "rejected", "{}: {}", code, result);
                        }
                    }
                    Forged::SlotChange { slot, operator, .. } => {
                        if status == "applied" {
                            prop_assert!(*slot == 0 && (*operator == 1 || *operator == 2), "slot change applied: {:?} {}", event, result);
                        } else {
                            prop_assert_eq!(status.as_str(), "rejected", "{}", result);
                        }
                    }
                    Forged::Activate { operator, .. } => {
                        if *operator >= 3 && *operator <= 4 {
                            prop_assert_eq!(status.as_str(), "rejected", "{}", result);
                        }
                    }
                    Forged::Garbage { .. } => prop_assert_eq!(status.as_str(), "rejected", "{}", result),
                }
            }
            // The server's state: what may not change, did not.
            let after = snapshot(&w);
            for (key, was) in &before {
                let now_is = &after[key];
                let may_change = key == &format!("slot:{}", w.slot_x)
                    || OK_X[..2].iter().any(|c| key == &format!("ticket:{c}") || key == &format!("reservation:{c}"));
                if !may_change {
                    prop_assert_eq!(now_is, was, "{} changed", key);
                }
            }
            for code in &OK_X[..2] {
                let res = &after[&format!("reservation:{code}")];
                prop_assert!(res.starts_with("RESERVED|") || res.starts_with("VERIFIED|"), "{}", res);
            }
            prop_assert_eq!(after.len(), before.len());
            Ok::<(), TestCaseError>(())
        })
        .unwrap();
    // Every refused admission is on the supervisors' list, with its reason.
    let refused: i64 = w.one("SELECT count(*) FROM verifications WHERE refused IS NOT NULL");
    let conflicts: i64 = w.one("SELECT count(*) FROM sync_conflicts WHERE kind <> 'DOUBLE_ENTRY'");
    assert_eq!(refused, conflicts);
    assert!(
        refused > 0,
        "the run forged no admission of a refused ticket"
    );
}
