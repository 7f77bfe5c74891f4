//! The customer's rules are the server's (issue 12, "Rules in TypeScript"):
//! through the real router, a reservation whose slot has started on the
//! venue's clock can be neither changed nor cancelled, the status the
//! customer page reads says so (and why), and every offered slot says whether
//! it takes a reservation now.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use chrono::{Duration, Utc};
use entrada::api::{router, AppState};
use entrada::domain::{ActivationMode, Contact, NewSlot, NewTicket, Orq, Slot, TicketCode};
use entrada::store::{ReserveRequest, Store};
use serde_json::{json, Value};
use tower::ServiceExt;

const ORQ: Orq = Orq(1);

struct World {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    app: Router,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("entrada.db")).unwrap());
    store
        .add_venue(ORQ, "Museo", "Pacific/Auckland", Utc::now())
        .unwrap();
    let app = router(AppState::new(store.clone(), 0), None);
    World {
        _dir: dir,
        store,
        app,
    }
}

impl World {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// An active ticket with a customer session on it.
    async fn session(&self, code: &str) -> String {
        let mut t = NewTicket::plain(code, ActivationMode::Immediate).unwrap();
        t.purchase_email = Some("holder@example.com".into());
        self.store
            .insert_tickets(ORQ, &[t], Utc::now() - Duration::days(30))
            .unwrap();
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/customer/session")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({ "ticket_code": code, "email": "holder@example.com" }).to_string(),
            ))
            .unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        serde_json::from_slice::<Value>(&bytes).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A slot `days` from today (on the venue's calendar), 09:00–10:00.
    fn slot(&self, days: i64) -> Slot {
        let venue = &self.store.list_venues(ORQ).unwrap()[0];
        let today = Utc::now().with_timezone(&venue.timezone).date_naive();
        let date = (today + Duration::days(days)).to_string();
        let new = NewSlot::validate(venue.id.0, &date, "09:00", "10:00", Some(5)).unwrap();
        self.store
            .create_slot(ORQ, &new, Utc::now() - Duration::days(30))
            .unwrap()
    }

    /// Reserves `slot` for `code` as if it had been done a month ago.
    fn reserve_earlier(&self, code: &str, slot: &Slot) -> String {
        let req = ReserveRequest {
            ticket: TicketCode::parse(code).unwrap(),
            slot_id: slot.id,
            contact: Contact::validate("holder@example.com", "+12025551234").unwrap(),
        };
        self.store
            .reserve_slot(ORQ, &req, Utc::now() - Duration::days(30))
            .unwrap()
            .id
            .to_string()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_started_slot_can_be_neither_changed_nor_cancelled_and_the_status_says_so() {
    runtime().block_on(async {
        let w = world();
        let token = w.session("STARTED-1").await;
        let started = w.slot(-2);
        let later = w.slot(3);
        let id = w.reserve_earlier("STARTED-1", &started);

        let (status, state) = w
            .call(Method::GET, "/api/tickets/STARTED-1/status", &token, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{state}");
        let actions = &state["actions"];
        for action in ["change", "cancel"] {
            assert_eq!(
                actions[action],
                json!({ "allowed": false, "reason": "SLOT_ALREADY_STARTED" }),
                "{state}"
            );
        }
        assert_eq!(
            actions["reserve"],
            json!({ "allowed": false, "reason": "ALREADY_RESERVED" }),
            "{state}"
        );

        let (status, body) = w
            .call(
                Method::PUT,
                &format!("/api/reservations/{id}"),
                &token,
                Some(json!({ "slot_id": later.id })),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"]["code"], "SLOT_ALREADY_STARTED", "{body}");
        assert_eq!(body["error"]["details"]["start_time"], "09:00:00", "{body}");
        let (status, body) = w
            .call(
                Method::DELETE,
                &format!("/api/reservations/{id}"),
                &token,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"]["code"], "SLOT_ALREADY_STARTED", "{body}");

        // Nothing moved: the place on the started slot is still taken.
        assert_eq!(w.store.get_slot(ORQ, started.id).unwrap().booked_count, 1);
        assert_eq!(w.store.get_slot(ORQ, later.id).unwrap().booked_count, 0);
    });
}

#[test]
fn before_the_start_change_and_cancel_are_allowed_and_say_so() {
    runtime().block_on(async {
        let w = world();
        let token = w.session("LATER-1").await;
        let first = w.slot(2);
        let second = w.slot(3);
        let id = w.reserve_earlier("LATER-1", &first);

        let (_, state) = w
            .call(Method::GET, "/api/tickets/LATER-1/status", &token, None)
            .await;
        for action in ["change", "cancel"] {
            assert_eq!(
                state["actions"][action],
                json!({ "allowed": true, "reason": null }),
                "{state}"
            );
        }
        let (status, body) = w
            .call(
                Method::PUT,
                &format!("/api/reservations/{id}"),
                &token,
                Some(json!({ "slot_id": second.id })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = w
            .call(
                Method::DELETE,
                &format!("/api/reservations/{id}"),
                &token,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");

        let (_, state) = w
            .call(Method::GET, "/api/tickets/LATER-1/status", &token, None)
            .await;
        assert_eq!(
            state["actions"]["reserve"],
            json!({ "allowed": true, "reason": null }),
            "{state}"
        );
        assert_eq!(
            state["actions"]["cancel"]["reason"], "RESERVATION_CANCELLED",
            "{state}"
        );
    });
}

/// Each offered slot carries the server's answer, on the venue's clock: an
/// ended slot and a full one are not bookable, an open one is.
#[test]
fn offered_slots_say_whether_they_are_bookable() {
    runtime().block_on(async {
        let w = world();
        let token = w.session("OFFER-1").await;
        let ended = w.slot(-1);
        let open = w.slot(1);
        let mut months = vec![ended.date.format("%Y-%m").to_string()];
        months.push(open.date.format("%Y-%m").to_string());
        months.dedup();
        let mut seen = std::collections::HashMap::new();
        for m in months {
            let (status, list) = w
                .call(
                    Method::GET,
                    &format!("/api/reservation-slots/available?month={m}"),
                    &token,
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{list}");
            for s in list.as_array().unwrap() {
                seen.insert(
                    s["id"].as_str().unwrap().to_string(),
                    (s["bookable"].clone(), s["reason"].clone()),
                );
            }
        }
        assert_eq!(
            seen[&ended.id.to_string()],
            (json!(false), json!("SLOT_IN_PAST"))
        );
        assert_eq!(seen[&open.id.to_string()], (json!(true), Value::Null));
    });
}

/// The start binds the customer, not the desk: an admin may still cancel a
/// visit that has started.
#[test]
fn an_admin_may_still_cancel_a_started_visit() {
    runtime().block_on(async {
        let w = world();
        w.session("DESK-1").await;
        let started = w.slot(-2);
        let id = w.reserve_earlier("DESK-1", &started);
        let (admin, _) = w
            .store
            .create_token(ORQ, entrada::domain::Role::Admin, None, None, Utc::now())
            .unwrap();
        let (status, body) = w
            .call(
                Method::DELETE,
                &format!("/api/reservations/{id}"),
                &admin,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "CANCELLED");
        assert_eq!(w.store.get_slot(ORQ, started.id).unwrap().booked_count, 0);
    });
}
