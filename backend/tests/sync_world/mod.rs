//! A server with two venues of org 1 (X, Y) and one of org 2, their gates'
//! device tokens, and the real router over it: for the trust-boundary tests
//! of `/api/sync/*`.
#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use chrono::{DateTime, NaiveTime, Utc};
use entrada::api::{router, AppState};
use entrada::domain::{
    ActivationMode, ChangedBy, Contact, NewSlot, NewTicket, OperatorId, Orq, ReservationId, Role,
    SlotId, TicketCode, VenueId,
};
use entrada::store::{ReserveRequest, Store};
use serde_json::{json, Value};
use tower::ServiceExt;

pub const ORQ: Orq = Orq(1);
pub const OTHER_ORQ: Orq = Orq(2);

pub struct World {
    pub dir: tempfile::TempDir,
    pub db: std::path::PathBuf,
    pub store: Arc<Store>,
    pub app: Router,
    pub x: VenueId,
    pub y: VenueId,
    pub z: VenueId,
    /// Today's all-day slots at X, Y (org 1) and Z (org 2).
    pub slot_x: SlotId,
    pub slot_y: SlotId,
    pub slot_z: SlotId,
    /// Org 1: a gate operator, a supervisor, an admin. Org 2: a supervisor.
    pub op: OperatorId,
    pub sup: OperatorId,
    pub admin: OperatorId,
    pub other_sup: OperatorId,
    /// Device tokens: gates at X, at Y, at Z (org 2).
    pub gate_x: String,
    pub gate_y: String,
    pub gate_z: String,
    pub gate_x_id: i64,
    /// A supervisor's staff token bound to `sup`.
    pub sup_token: String,
    /// A staff token bound to `op` (an operator).
    pub op_token: String,
}

/// Tickets of the world, by what the server knows of them.
pub const OK_X: &[&str] = &["X-OK-0", "X-OK-1", "X-OK-2", "X-OK-3"];
pub const RES_CANCELLED_X: &str = "X-RES-CANCELLED";
pub const TICKET_CANCELLED_X: &str = "X-TICKET-CANCELLED";
pub const AT_Y: &str = "Y-OK";
pub const UNRESERVED: &str = "NO-RES";
pub const OTHER_ORG: &str = "Z-OK";

pub fn contact(email: &str) -> Contact {
    Contact::validate(email, "+12025551234").unwrap()
}

impl World {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("server.db");
        let store = Store::open(&db).unwrap();
        let now = Utc::now();
        let x = store.add_venue(ORQ, "Prado", "UTC", now).unwrap().id;
        let y = store.add_venue(ORQ, "Reina Sofia", "UTC", now).unwrap().id;
        let z = store
            .add_venue(OTHER_ORQ, "Elsewhere", "UTC", now)
            .unwrap()
            .id;
        let slot = |orq, venue: VenueId| {
            store
                .create_slot(
                    orq,
                    &NewSlot {
                        venue_id: venue,
                        date: now.date_naive(),
                        start_time: NaiveTime::MIN,
                        end_time: NaiveTime::from_hms_opt(23, 59, 59).unwrap(),
                        total_capacity: 100,
                    },
                    now,
                )
                .unwrap()
                .id
        };
        let (slot_x, slot_y, slot_z) = (slot(ORQ, x), slot(ORQ, y), slot(OTHER_ORQ, z));
        let operator =
            |orq, role, name: &str| store.add_operator(orq, role, name, None, now).unwrap().id;
        let op = operator(ORQ, Role::Operator, "Ana");
        let sup = operator(ORQ, Role::Supervisor, "Sara");
        let admin = operator(ORQ, Role::Admin, "Adam");
        let other_sup = operator(OTHER_ORQ, Role::Supervisor, "Zoe");

        let plain = |c: &str| NewTicket::plain(c, ActivationMode::Immediate).unwrap();
        let mut org1: Vec<NewTicket> = OK_X.iter().map(|c| plain(c)).collect();
        org1.extend([
            plain(RES_CANCELLED_X),
            plain(TICKET_CANCELLED_X),
            plain(AT_Y),
            plain(UNRESERVED),
        ]);
        store.insert_tickets(ORQ, &org1, now).unwrap();
        store
            .insert_tickets(OTHER_ORQ, &[plain(OTHER_ORG)], now)
            .unwrap();
        let reserve = |orq, code: &str, slot_id, email: &str| {
            store
                .reserve_slot(
                    orq,
                    &ReserveRequest {
                        ticket: TicketCode::parse(code).unwrap(),
                        slot_id,
                        contact: contact(email),
                    },
                    now,
                )
                .unwrap()
        };
        for (i, c) in OK_X.iter().enumerate() {
            reserve(ORQ, c, slot_x, &format!("x{i}@example.com"));
        }
        let gone = reserve(ORQ, RES_CANCELLED_X, slot_x, "gone@example.com");
        store
            .cancel_reservation(ORQ, gone.id, ChangedBy::Staff, now)
            .unwrap();
        reserve(ORQ, TICKET_CANCELLED_X, slot_x, "refunded@example.com");
        store
            .cancel_ticket(
                ORQ,
                &TicketCode::parse(TICKET_CANCELLED_X).unwrap(),
                None,
                now,
            )
            .unwrap();
        reserve(ORQ, AT_Y, slot_y, "reina@example.com");
        reserve(OTHER_ORQ, OTHER_ORG, slot_z, "zoe@example.com");

        let (gate_x, info_x) = store.add_device(ORQ, x, "Gate X", now).unwrap();
        let (gate_y, _) = store.add_device(ORQ, y, "Gate Y", now).unwrap();
        let (gate_z, _) = store.add_device(OTHER_ORQ, z, "Gate Z", now).unwrap();
        let (sup_token, _) = store
            .create_token(ORQ, Role::Supervisor, Some(sup.0), None, now)
            .unwrap();
        let (op_token, _) = store
            .create_token(ORQ, Role::Operator, Some(op.0), Some(x), now)
            .unwrap();
        let store = Arc::new(store);
        let app = router(AppState::new(store.clone(), 6000), None);
        Self {
            dir,
            db,
            store,
            app,
            x,
            y,
            z,
            slot_x,
            slot_y,
            slot_z,
            op,
            sup,
            admin,
            other_sup,
            gate_x,
            gate_y,
            gate_z,
            gate_x_id: info_x.device_id,
            sup_token,
            op_token,
        }
    }

    /// A read-only look at the server's file.
    pub fn sql(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.db).unwrap()
    }

    pub fn one<T: rusqlite::types::FromSql>(&self, sql: &str) -> T {
        self.sql().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    pub fn reservation_status(&self, code: &str) -> String {
        self.one(&format!(
            "SELECT status FROM ticket_reservations WHERE ticket_id = '{code}'"
        ))
    }

    pub fn verified_at(&self, code: &str) -> Option<String> {
        self.one(&format!(
            "SELECT verified_at FROM tickets WHERE ticket_code = '{code}'"
        ))
    }

    pub fn capacity(&self, slot: SlotId) -> i64 {
        self.one(&format!(
            "SELECT total_capacity FROM reservation_slots WHERE id = '{slot}'"
        ))
    }

    pub fn reservation_id(&self, code: &str) -> ReservationId {
        let id: String = self.one(&format!(
            "SELECT id FROM ticket_reservations WHERE ticket_id = '{code}'"
        ));
        ReservationId(id.parse().unwrap())
    }
}

/// One request through the router: status and JSON body (Null if none).
pub async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    let body = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A `verify` event as a gate makes it.
pub fn verify_event(code: &str, operator: Option<OperatorId>, at: DateTime<Utc>) -> Value {
    json!({
        "event_id": uuid::Uuid::now_v7(),
        "kind": "verify",
        "payload": { "ticket_code": code },
        "operator_id": operator.map(|o| o.0),
        "device_time": at,
    })
}

/// A `slot_change` event (capacity).
pub fn slot_event(
    slot: SlotId,
    capacity: i64,
    operator: Option<OperatorId>,
    at: DateTime<Utc>,
) -> Value {
    json!({
        "event_id": uuid::Uuid::now_v7(),
        "kind": "slot_change",
        "payload": { "slot_id": slot, "total_capacity": capacity },
        "operator_id": operator.map(|o| o.0),
        "device_time": at,
    })
}

/// Uploads `events` as a gate whose clock reads `sent_at`; the results.
pub async fn upload(
    app: &Router,
    token: &str,
    events: Vec<Value>,
    sent_at: DateTime<Utc>,
) -> Vec<Value> {
    let (status, body) = call(
        app,
        Method::POST,
        "/api/sync/events",
        token,
        Some(json!({ "events": events, "sent_at": sent_at })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["results"].as_array().unwrap().clone()
}

/// `(status, reason)` of one result.
pub fn answer(result: &Value) -> (String, Option<String>) {
    (
        result["status"].as_str().unwrap().to_string(),
        result["reason"].as_str().map(str::to_string),
    )
}
