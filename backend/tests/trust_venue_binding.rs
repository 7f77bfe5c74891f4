//! A venue-bound staff token, through the real router in-process: on the
//! non-console routes too (ticket status, reservations, reserving,
//! activating) another venue's ticket, reservation or slot is NOT_FOUND to it
//! (and an UNKNOWN_TICKET verdict when validating), and nothing of that venue
//! changes; and it issues no tickets (a ticket has no venue until reserved)
//! and mints no customer tokens (they reach every venue): 403 ORG_ADMIN_ONLY.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use chrono::Utc;
use entrada::api::{router, AppState};
use entrada::domain::{
    ActivationMode, Contact, NewSlot, NewTicket, Orq, Reservation, Role, Slot, TicketCode, Venue,
    VenueId,
};
use entrada::store::{ReserveRequest, Store};
use serde_json::{json, Value};
use tower::ServiceExt;

const ORQ: Orq = Orq(1);

struct World {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    app: Router,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path().join("entrada.db")).unwrap());
        let app = router(AppState::new(store.clone(), 0), None);
        Self {
            _dir: dir,
            store,
            app,
        }
    }

    fn venue(&self, name: &str) -> Venue {
        self.store
            .add_venue(ORQ, name, "Europe/Madrid", Utc::now())
            .unwrap()
    }

    fn slot(&self, venue: &Venue, start: &str, end: &str) -> Slot {
        let new = NewSlot::validate(venue.id.0, "2099-06-01", start, end, Some(10)).unwrap();
        self.store.create_slot(ORQ, &new, Utc::now()).unwrap()
    }

    fn ticket(&self, code: &str, mode: ActivationMode) -> TicketCode {
        let t = NewTicket::plain(code, mode).unwrap();
        self.store.insert_tickets(ORQ, &[t], Utc::now()).unwrap();
        TicketCode::parse(code).unwrap()
    }

    fn reserve(&self, code: &TicketCode, slot: &Slot) -> Reservation {
        let req = ReserveRequest {
            ticket: code.clone(),
            slot_id: slot.id,
            contact: Contact::validate("john@example.com", "+12025551234").unwrap(),
        };
        self.store.reserve_slot(ORQ, &req, Utc::now()).unwrap()
    }

    fn token(&self, role: Role, venue: Option<VenueId>) -> String {
        self.store
            .create_token(ORQ, role, None, venue, Utc::now())
            .unwrap()
            .0
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map(|b| ("application/json", b.to_string()));
        self.send(method, path, token, body).await
    }

    /// A request with a body of any type (`(content type, body)`).
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<(&str, String)>,
    ) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let req = match body {
            Some((content_type, b)) => req
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(b)),
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
}

fn not_found(a: &(StatusCode, Value), entity: &str) {
    assert_eq!(a.0, StatusCode::NOT_FOUND, "{}", a.1);
    assert_eq!(a.1["error"]["code"], "NOT_FOUND", "{}", a.1);
    assert_eq!(a.1["error"]["details"]["entity"], entity, "{}", a.1);
}

/// Ours: venue A (the token's); theirs: venue B of the same org.
struct Two {
    w: World,
    ours_slot: Slot,
    ours_slot2: Slot,
    theirs_slot: Slot,
    ours: Reservation,
    theirs: Reservation,
    bound_admin: String,
    bound_supervisor: String,
    org_admin: String,
}

fn two_venues() -> Two {
    let w = World::new();
    let (a, b) = (w.venue("Prado"), w.venue("Annex"));
    let ours_slot = w.slot(&a, "09:00", "12:00");
    let ours_slot2 = w.slot(&a, "12:00", "15:00");
    let theirs_slot = w.slot(&b, "09:00", "12:00");
    let ours = w.reserve(&w.ticket("T-OURS", ActivationMode::Immediate), &ours_slot);
    let theirs = w.reserve(
        &w.ticket("T-THEIRS", ActivationMode::Immediate),
        &theirs_slot,
    );
    let bound_admin = w.token(Role::Admin, Some(a.id));
    let bound_supervisor = w.token(Role::Supervisor, Some(a.id));
    let org_admin = w.token(Role::Admin, None);
    Two {
        w,
        ours_slot,
        ours_slot2,
        theirs_slot,
        ours,
        theirs,
        bound_admin,
        bound_supervisor,
        org_admin,
    }
}

#[tokio::test]
async fn ticket_status_and_reservation_reads_are_the_callers_venues_only() {
    let t = two_venues();
    for tok in [&t.bound_supervisor, &t.bound_admin] {
        let a =
            t.w.call(Method::GET, "/api/tickets/T-THEIRS/status", tok, None)
                .await;
        not_found(&a, "ticket");
        assert!(a.1.get("signed_code").is_none());
        let a =
            t.w.call(Method::GET, "/api/tickets/T-OURS/status", tok, None)
                .await;
        assert_eq!(a.0, StatusCode::OK, "{}", a.1);
        let a =
            t.w.call(
                Method::GET,
                &format!("/api/reservations/{}", t.theirs.id.0),
                tok,
                None,
            )
            .await;
        not_found(&a, "reservation");
        let a =
            t.w.call(
                Method::GET,
                &format!("/api/reservations/{}", t.ours.id.0),
                tok,
                None,
            )
            .await;
        assert_eq!(a.0, StatusCode::OK, "{}", a.1);
    }
    // An org-wide token still sees both venues.
    let a =
        t.w.call(
            Method::GET,
            "/api/tickets/T-THEIRS/status",
            &t.org_admin,
            None,
        )
        .await;
    assert_eq!(a.0, StatusCode::OK, "{}", a.1);
}

#[tokio::test]
async fn a_bound_admin_changes_no_other_venues_reservation_nor_moves_one_across() {
    let t = two_venues();
    let before = t.w.store.get_reservation(ORQ, t.theirs.id).unwrap();
    let theirs = format!("/api/reservations/{}", t.theirs.id.0);
    let ours = format!("/api/reservations/{}", t.ours.id.0);
    not_found(
        &t.w.call(Method::DELETE, &theirs, &t.bound_admin, None)
            .await,
        "reservation",
    );
    // Rescheduling theirs into our slot would make it ours.
    let into_ours = json!({ "slot_id": t.ours_slot.id.0.to_string() });
    not_found(
        &t.w.call(Method::PUT, &theirs, &t.bound_admin, Some(into_ours))
            .await,
        "reservation",
    );
    assert_eq!(t.w.store.get_reservation(ORQ, t.theirs.id).unwrap(), before);
    // Ours out into theirs: the target slot is another venue's.
    let into_theirs = json!({ "slot_id": t.theirs_slot.id.0.to_string() });
    not_found(
        &t.w.call(Method::PUT, &ours, &t.bound_admin, Some(into_theirs))
            .await,
        "slot",
    );
    assert_eq!(
        t.w.store.get_reservation(ORQ, t.ours.id).unwrap().slot_id,
        t.ours_slot.id
    );
    // Within its venue it works.
    let within = json!({ "slot_id": t.ours_slot2.id.0.to_string() });
    let a =
        t.w.call(Method::PUT, &ours, &t.bound_admin, Some(within))
            .await;
    assert_eq!(a.0, StatusCode::OK, "{}", a.1);
    let a = t.w.call(Method::DELETE, &ours, &t.bound_admin, None).await;
    assert_eq!(a.0, StatusCode::OK, "{}", a.1);
}

#[tokio::test]
async fn a_bound_admin_reserves_into_and_activates_for_its_venue_only() {
    let t = two_venues();
    t.w.ticket("T-NEW", ActivationMode::Immediate);
    let body = |slot: &Slot| {
        json!({ "ticket_id": "T-NEW", "slot_id": slot.id.0.to_string(),
                "customer_email": "ana@example.com", "customer_phone": "+12025551234" })
    };
    let booked = |s: &Slot| t.w.store.get_slot(ORQ, s.id).unwrap().booked_count;
    let theirs_booked = booked(&t.theirs_slot);
    let a =
        t.w.call(
            Method::POST,
            "/api/reservations/create",
            &t.bound_admin,
            Some(body(&t.theirs_slot)),
        )
        .await;
    not_found(&a, "slot");
    assert_eq!(booked(&t.theirs_slot), theirs_booked, "no place taken");
    // The slot is checked before the ticket: another venue's slot answers
    // the same for an unknown code, so it tells nothing of the code.
    let mut unknown = body(&t.theirs_slot);
    unknown["ticket_id"] = json!("T-NO-SUCH");
    not_found(
        &t.w.call(
            Method::POST,
            "/api/reservations/create",
            &t.bound_admin,
            Some(unknown),
        )
        .await,
        "slot",
    );
    let a =
        t.w.call(
            Method::POST,
            "/api/reservations/create",
            &t.bound_admin,
            Some(body(&t.ours_slot)),
        )
        .await;
    assert_eq!(a.0, StatusCode::CREATED, "{}", a.1);
    // Against its own slot too, a ticket reserved at another venue is as
    // unknown to it as a code that does not exist (not ALREADY_RESERVED):
    // the same answer, byte for byte.
    let mut answers = Vec::new();
    for code in ["T-THEIRS", "T-NO-SUCH"] {
        let mut other = body(&t.ours_slot);
        other["ticket_id"] = json!(code);
        let a =
            t.w.call(
                Method::POST,
                "/api/reservations/create",
                &t.bound_admin,
                Some(other),
            )
            .await;
        not_found(&a, "ticket");
        answers.push(a.1);
    }
    assert_eq!(answers[0], answers[1]);
    let a =
        t.w.call(
            Method::POST,
            "/api/tickets/T-THEIRS/activate",
            &t.bound_admin,
            None,
        )
        .await;
    not_found(&a, "ticket");
    let a =
        t.w.call(
            Method::POST,
            "/api/tickets/T-OURS/activate",
            &t.bound_admin,
            None,
        )
        .await;
    assert_eq!(a.0, StatusCode::OK, "{}", a.1);
    // A ticket never reserved has no venue: not the bound admin's to
    // activate (decided in the activation's write), but the org's admin's.
    let deferred = t.w.ticket("T-LATER", ActivationMode::Deferred);
    let path = "/api/tickets/T-LATER/activate";
    not_found(
        &t.w.call(Method::POST, path, &t.bound_admin, None).await,
        "ticket",
    );
    let inactive = |w: &World| {
        w.store
            .get_ticket(ORQ, &deferred)
            .unwrap()
            .activation_status
            == entrada::domain::ActivationStatus::Inactive
    };
    assert!(inactive(&t.w), "nothing written");
    let a = t.w.call(Method::POST, path, &t.org_admin, None).await;
    assert_eq!(a.0, StatusCode::OK, "{}", a.1);
    assert!(!inactive(&t.w));
}

#[tokio::test]
async fn a_bound_admin_creates_and_imports_no_tickets() {
    let t = two_venues();
    let csv = |code: &str| Some(("text/csv", format!("ticket_code\n{code}\n")));
    let refusals = [
        t.w.call(
            Method::POST,
            "/api/admin/tickets",
            &t.bound_admin,
            Some(json!({ "ticket_code": "T-BOUND-1" })),
        )
        .await,
        t.w.send(
            Method::POST,
            "/api/admin/tickets/import",
            &t.bound_admin,
            csv("T-BOUND-2"),
        )
        .await,
        t.w.send(
            Method::POST,
            "/api/admin/tickets/import/checked",
            &t.bound_admin,
            csv("T-BOUND-3"),
        )
        .await,
    ];
    for a in &refusals {
        assert_eq!(a.0, StatusCode::FORBIDDEN, "{}", a.1);
        assert_eq!(a.1["error"]["code"], "ORG_ADMIN_ONLY", "{}", a.1);
        let message = a.1["error"]["message"].as_str().unwrap();
        assert!(message.contains("whole org"), "{message}");
    }
    for code in ["T-BOUND-1", "T-BOUND-2", "T-BOUND-3"] {
        let code = TicketCode::parse(code).unwrap();
        assert!(t.w.store.get_ticket(ORQ, &code).is_err(), "{code} created");
    }
    // A bound supervisor is refused for its role first (FORBIDDEN, as before).
    let a =
        t.w.call(
            Method::POST,
            "/api/admin/tickets",
            &t.bound_supervisor,
            Some(json!({ "ticket_code": "T-BOUND-4" })),
        )
        .await;
    assert_eq!(a.1["error"]["code"], "FORBIDDEN", "{}", a.1);
    // The console learns the binding from whoami, and hides the import.
    let me =
        t.w.call(Method::GET, "/api/admin/session", &t.bound_admin, None)
            .await;
    assert_eq!(me.0, StatusCode::OK, "{}", me.1);
    assert!(me.1["venue_id"].is_i64(), "{}", me.1);
    // The org's admin issues them.
    let a =
        t.w.call(
            Method::POST,
            "/api/admin/tickets",
            &t.org_admin,
            Some(json!({ "ticket_code": "T-BOUND-1" })),
        )
        .await;
    assert_eq!(a.0, StatusCode::CREATED, "{}", a.1);
    let a =
        t.w.send(
            Method::POST,
            "/api/admin/tickets/import/checked",
            &t.org_admin,
            csv("T-BOUND-3"),
        )
        .await;
    assert_eq!(a.0, StatusCode::CREATED, "{}", a.1);
}

#[tokio::test]
async fn a_bound_admin_mints_no_customer_token() {
    let t = two_venues();
    let ours = t.ours_slot.venue_id.0;
    // A customer token ignores venue bindings (it reaches its user's tickets
    // in every venue): asked with or without the admin's own venue, refused.
    for body in [
        json!({ "role": "customer", "user_id": 7 }),
        json!({ "role": "customer", "user_id": 7, "venue_id": ours }),
    ] {
        let a =
            t.w.call(
                Method::POST,
                "/api/admin/tokens",
                &t.bound_admin,
                Some(body),
            )
            .await;
        assert_eq!(a.0, StatusCode::FORBIDDEN, "{}", a.1);
        assert_eq!(a.1["error"]["code"], "ORG_ADMIN_ONLY", "{}", a.1);
        assert!(a.1.get("token").is_none(), "{}", a.1);
    }
    // Staff tokens it still mints, bound to its venue.
    let a =
        t.w.call(
            Method::POST,
            "/api/admin/tokens",
            &t.bound_admin,
            Some(json!({ "role": "operator" })),
        )
        .await;
    assert_eq!(a.0, StatusCode::CREATED, "{}", a.1);
    assert_eq!(a.1["venue_id"], ours, "{}", a.1);
    // The org's admin mints the customer token.
    let a =
        t.w.call(
            Method::POST,
            "/api/admin/tokens",
            &t.org_admin,
            Some(json!({ "role": "customer", "user_id": 7 })),
        )
        .await;
    assert_eq!(a.0, StatusCode::CREATED, "{}", a.1);
    assert_eq!(a.1["role"], "customer", "{}", a.1);
}

#[tokio::test]
async fn validate_answers_a_bound_caller_as_for_an_unknown_code_outside_its_venue() {
    let t = two_venues();
    // Theirs is cancelled: its real verdict (TICKET_CANCELLED) would say so.
    let theirs = TicketCode::parse("T-THEIRS").unwrap();
    t.w.store
        .cancel_ticket(ORQ, &theirs, None, Utc::now())
        .unwrap();
    t.w.ticket("T-FREE", ActivationMode::Immediate);
    let validate = |tok: &str, code: &str| {
        let body = json!({ "ticket_code": code });
        let tok = tok.to_string();
        let w = &t.w;
        async move {
            let a = w
                .call(Method::POST, "/api/tickets/validate", &tok, Some(body))
                .await;
            assert_eq!(a.0, StatusCode::OK, "{}", a.1);
            a.1
        }
    };
    for tok in [&t.bound_supervisor, &t.bound_admin] {
        let mut unknown = validate(tok, "T-NO-SUCH").await;
        assert_eq!(unknown["verdict"], "UNKNOWN_TICKET", "{unknown}");
        // Another venue's ticket, and one never reserved (it has no venue):
        // the same answer as a made-up code, but for the code it echoes.
        for code in ["T-THEIRS", "T-FREE"] {
            unknown["ticket_code"] = json!(code);
            assert_eq!(validate(tok, code).await, unknown, "{code}");
        }
        let ours = validate(tok, "T-OURS").await;
        assert_eq!(ours["verdict"], "ALREADY_RESERVED", "{ours}");
    }
    // An org-wide token gets the real verdicts.
    let a = validate(&t.org_admin, "T-THEIRS").await;
    assert_eq!(a["verdict"], "TICKET_CANCELLED", "{a}");
    let a = validate(&t.org_admin, "T-FREE").await;
    assert_eq!(a["admit"], true, "{a}");
}
