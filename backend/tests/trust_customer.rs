//! Trust boundary of a customer session, through the real router in-process:
//! a session opened with a ticket code and e-mail sees and changes that one
//! ticket on every route, and nothing else (issue 11, items 1 and 7); signing
//! out revokes it on the server; pages and API answers carry the security
//! headers.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use chrono::Utc;
use entrada::api::{router, AppState};
use entrada::domain::{ActivationMode, NewSlot, NewTicket, Orq, Role, TicketCode};
use entrada::store::Store;
use serde_json::{json, Value};
use tower::ServiceExt;

const ORQ: Orq = Orq(1);

/// The demo data set (`entrada serve --demo`) behind the router.
struct World {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    app: Router,
}

fn world(ui_dir: Option<std::path::PathBuf>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("entrada.db")).unwrap());
    entrada::demo::populate(&store, Utc::now(), |_| {}).unwrap();
    let app = router(AppState::new(store.clone(), 0), ui_dir);
    World {
        _dir: dir,
        store,
        app,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
    text: String,
}

impl World {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            // A string is a CSV upload.
            Some(Value::String(csv)) => req
                .header(header::CONTENT_TYPE, "text/csv")
                .body(Body::from(csv)),
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Answer {
            status,
            headers,
            json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text,
        }
    }

    /// Opens a customer session the way the page does.
    async fn session(&self, code: &str, email: &str) -> String {
        let a = self
            .call(
                Method::POST,
                "/api/customer/session",
                None,
                Some(json!({ "ticket_code": code, "email": email })),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        a.json["token"].as_str().unwrap().to_string()
    }

    fn staff_token(&self, role: Role) -> String {
        self.store
            .create_token(ORQ, role, None, None, Utc::now())
            .unwrap()
            .0
    }

    /// Every row a session could reach, as JSON (compared before and after).
    fn snapshot(&self) -> Value {
        let tickets = self
            .store
            .list_tickets(ORQ, &Default::default(), None, 10_000)
            .unwrap();
        let mut reservations = Vec::new();
        for t in &tickets {
            if let Some(r) = self
                .store
                .reservation_for_ticket(ORQ, &t.ticket_code)
                .unwrap()
            {
                reservations.push(r);
            }
        }
        let slots = self.store.list_slots(ORQ, None, None, None).unwrap();
        json!({ "tickets": tickets, "reservations": reservations, "slots": slots })
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn codes(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|t| t["ticket_code"].as_str().unwrap().to_string())
        .collect()
}

/// The reproduction: a session on DEMO-1-0001 listed the whole org
/// (211 tickets with e-mails and phones). It lists its one ticket.
#[test]
fn a_session_lists_only_its_own_ticket() {
    runtime().block_on(async {
        let w = world(None);
        let token = w.session("DEMO-1-0001", "buyer1@example.com").await;
        let a = w
            .call(Method::GET, "/api/tickets", Some(&token), None)
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(codes(&a.json), ["DEMO-1-0001"]);
        assert!(!a.text.contains("buyer2@example.com"), "{}", a.text);
    });
}

/// A session opened on a ticket that belongs to a user still sees that one
/// ticket, not the user's others; a user token keeps seeing the user's.
#[test]
fn a_session_on_a_users_ticket_does_not_see_the_users_other_tickets() {
    runtime().block_on(async {
        let w = world(None);
        let mut mine = NewTicket::plain("USER7-A", ActivationMode::Immediate).unwrap();
        mine.user_id = Some(7);
        mine.purchase_email = Some("seven@example.com".into());
        let mut other = NewTicket::plain("USER7-B", ActivationMode::Immediate).unwrap();
        other.user_id = Some(7);
        other.purchase_email = Some("someone.else@example.com".into());
        w.store
            .insert_tickets(ORQ, &[mine, other], Utc::now())
            .unwrap();

        let session = w.session("USER7-A", "seven@example.com").await;
        let list = w
            .call(Method::GET, "/api/tickets", Some(&session), None)
            .await;
        assert_eq!(codes(&list.json), ["USER7-A"], "{}", list.text);
        let b = w
            .call(
                Method::GET,
                "/api/tickets/USER7-B/status",
                Some(&session),
                None,
            )
            .await;
        assert_eq!(b.status, StatusCode::NOT_FOUND, "{}", b.text);

        let (user, _) = w
            .store
            .create_token(ORQ, Role::Customer, Some(7), None, Utc::now())
            .unwrap();
        let list = w.call(Method::GET, "/api/tickets", Some(&user), None).await;
        assert_eq!(codes(&list.json), ["USER7-A", "USER7-B"], "{}", list.text);
    });
}

/// One probe of a route with the session's token against someone else's rows.
struct Probe {
    method: Method,
    /// The route as the OpenAPI document names it.
    route: &'static str,
    path: String,
    body: Option<Value>,
    want: StatusCode,
}

fn probe(
    method: Method,
    route: &'static str,
    path: impl Into<String>,
    body: Option<Value>,
    want: StatusCode,
) -> Probe {
    Probe {
        method,
        route,
        path: path.into(),
        body,
        want,
    }
}

/// Every route of the router, called with a session on DEMO-1-0001 against
/// another holder's ticket (DEMO-1-0002) and reservation (DEMO-TOMORROW):
/// never a row of theirs, never a change. The OpenAPI document lists every
/// route; a route missing from this table fails the test.
#[test]
fn every_route_keeps_a_session_to_its_ticket() {
    runtime().block_on(async {
        let w = world(None);
        let token = w.session("DEMO-1-0001", "buyer1@example.com").await;
        let theirs = w
            .store
            .reservation_for_ticket(ORQ, &TicketCode::parse("DEMO-TOMORROW").unwrap())
            .unwrap()
            .unwrap();
        let (rid, sid) = (theirs.id.to_string(), theirs.slot_id.to_string());
        let theirs_slot = theirs.slot_id;
        let month = Utc::now().format("%Y-%m").to_string();
        let before = w.snapshot();

        use Method as M;
        use StatusCode as S;
        let other = || Some(json!({ "ticket_code": "DEMO-1-0002" }));
        let probes = vec![
            probe(M::GET, "/api/health", "/api/health", None, S::OK),
            probe(M::GET, "/api/openapi.json", "/api/openapi.json", None, S::OK),
            probe(M::POST, "/api/operator/slots/create", "/api/operator/slots/create",
                Some(json!({ "venue_id": 1, "date": "2099-01-01", "start_time": "09:00", "end_time": "10:00" })), S::FORBIDDEN),
            probe(M::GET, "/api/operator/slots", "/api/operator/slots", None, S::FORBIDDEN),
            probe(M::GET, "/api/operator/slots/{slot_id}", format!("/api/operator/slots/{sid}"), None, S::FORBIDDEN),
            probe(M::PUT, "/api/operator/slots/{slot_id}", format!("/api/operator/slots/{sid}"), Some(json!({ "status": "CLOSED" })), S::FORBIDDEN),
            probe(M::DELETE, "/api/operator/slots/{slot_id}", format!("/api/operator/slots/{sid}"), None, S::FORBIDDEN),
            // Public availability of the session's org (no holder's data in it).
            probe(M::GET, "/api/reservation-slots/available", format!("/api/reservation-slots/available?month={month}"), None, S::OK),
            probe(M::GET, "/api/tickets", "/api/tickets", None, S::OK),
            // Opening a session needs the other ticket's e-mail.
            probe(M::POST, "/api/customer/session", "/api/customer/session",
                Some(json!({ "ticket_code": "DEMO-1-0002", "email": "buyer1@example.com" })), S::NOT_FOUND),
            // Signing out is probed last (it ends this session): see below.
            probe(M::POST, "/api/tickets/validate", "/api/tickets/validate", other(), S::OK),
            probe(M::POST, "/api/tickets/{ticket_id}/activate", "/api/tickets/DEMO-1-0002/activate", None, S::NOT_FOUND),
            probe(M::GET, "/api/tickets/{ticket_id}/status", "/api/tickets/DEMO-1-0002/status", None, S::NOT_FOUND),
            probe(M::GET, "/api/tickets/{ticket_id}/status", "/api/tickets/DEMO-TOMORROW/status", None, S::NOT_FOUND),
            probe(M::POST, "/api/reservations/create", "/api/reservations/create",
                Some(json!({ "ticket_id": "DEMO-1-0002", "slot_id": sid, "customer_email": "x@example.com", "customer_phone": "+12025551234" })), S::NOT_FOUND),
            probe(M::GET, "/api/reservations/{id}", format!("/api/reservations/{rid}"), None, S::NOT_FOUND),
            probe(M::PUT, "/api/reservations/{id}", format!("/api/reservations/{rid}"), Some(json!({ "slot_id": sid })), S::NOT_FOUND),
            probe(M::DELETE, "/api/reservations/{id}", format!("/api/reservations/{rid}"), None, S::NOT_FOUND),
            probe(M::POST, "/api/operator/validate-ticket", "/api/operator/validate-ticket", other(), S::FORBIDDEN),
            probe(M::POST, "/api/operator/verify-ticket", "/api/operator/verify-ticket", Some(json!({ "ticket_id": "DEMO-TOMORROW", "operator_id": 1 })), S::FORBIDDEN),
            probe(M::POST, "/api/operator/sign-in", "/api/operator/sign-in", Some(json!({ "operator_id": 1, "pin": "1234" })), S::FORBIDDEN),
            probe(M::POST, "/api/operator/scan", "/api/operator/scan", Some(json!({ "payload": "DEMO-TOMORROW" })), S::FORBIDDEN),
            probe(M::GET, "/api/operator/signing-keys", "/api/operator/signing-keys", None, S::FORBIDDEN),
            probe(M::GET, "/api/operator/conflicts", "/api/operator/conflicts", None, S::FORBIDDEN),
            probe(M::GET, "/api/operator/occupancy", "/api/operator/occupancy?venue_id=1", None, S::FORBIDDEN),
            probe(M::POST, "/api/admin/venues/{venue_id}/checkout", "/api/admin/venues/1/checkout", None, S::FORBIDDEN),
            probe(M::DELETE, "/api/admin/venues/{venue_id}/leases", "/api/admin/venues/1/leases", None, S::FORBIDDEN),
            probe(M::POST, "/api/admin/venues", "/api/admin/venues", Some(json!({ "name": "X", "timezone": "UTC" })), S::FORBIDDEN),
            probe(M::GET, "/api/admin/venues", "/api/admin/venues", None, S::FORBIDDEN),
            probe(M::GET, "/api/admin/venues/{venue_id}", "/api/admin/venues/1", None, S::FORBIDDEN),
            probe(M::PATCH, "/api/admin/venues/{venue_id}", "/api/admin/venues/1", Some(json!({ "early_grace_minutes": 0 })), S::FORBIDDEN),
            probe(M::GET, "/api/admin/org", "/api/admin/org", None, S::FORBIDDEN),
            probe(M::PATCH, "/api/admin/org", "/api/admin/org", Some(json!({ "signed_codes_only": false })), S::FORBIDDEN),
            probe(M::POST, "/api/admin/tickets", "/api/admin/tickets", Some(json!({ "ticket_code": "MINE-NOW" })), S::FORBIDDEN),
            probe(M::GET, "/api/admin/tickets", "/api/admin/tickets", None, S::FORBIDDEN),
            probe(M::POST, "/api/admin/tickets/import", "/api/admin/tickets/import", Some(json!("ticket_code\nMINE-CSV\n")), S::FORBIDDEN),
            probe(M::GET, "/api/admin/tickets/{ticket_id}/signed-code", "/api/admin/tickets/DEMO-1-0002/signed-code", None, S::FORBIDDEN),
            probe(M::GET, "/api/admin/tickets/search", "/api/admin/tickets/search?q=buyer1@example.com", None, S::FORBIDDEN),
            probe(M::POST, "/api/admin/tickets/{ticket_id}/cancel", "/api/admin/tickets/DEMO-1-0001/cancel", None, S::FORBIDDEN),
            probe(M::POST, "/api/admin/tickets/import/checked", "/api/admin/tickets/import/checked", Some(json!("ticket_code\nMINE-CSV2\n")), S::FORBIDDEN),
            probe(M::GET, "/api/admin/tickets/export", "/api/admin/tickets/export", None, S::FORBIDDEN),
            probe(M::POST, "/api/admin/tickets/{ticket_id}/reissue", "/api/admin/tickets/DEMO-1-0001/reissue", None, S::FORBIDDEN),
            probe(M::PUT, "/api/admin/operators/{operator_id}/pin", "/api/admin/operators/1/pin", Some(json!({ "pin": "123456" })), S::FORBIDDEN),
            probe(M::PATCH, "/api/admin/operators/{operator_id}", "/api/admin/operators/1", Some(json!({ "active": false })), S::FORBIDDEN),
            probe(M::GET, "/api/admin/gates", "/api/admin/gates", None, S::FORBIDDEN),
            probe(M::POST, "/api/admin/gates/{device_id}/revoke", "/api/admin/gates/1/revoke", None, S::FORBIDDEN),
            probe(M::GET, "/api/admin/tickets/{ticket_id}/story", "/api/admin/tickets/DEMO-1-0001/story", None, S::FORBIDDEN),
            probe(M::POST, "/api/admin/operators", "/api/admin/operators", Some(json!({ "role": "supervisor", "display_name": "X" })), S::FORBIDDEN),
            probe(M::GET, "/api/admin/operators", "/api/admin/operators", None, S::FORBIDDEN),
            probe(M::POST, "/api/admin/tokens", "/api/admin/tokens", Some(json!({ "role": "admin" })), S::FORBIDDEN),
            probe(M::POST, "/api/admin/devices", "/api/admin/devices", Some(json!({ "name": "X", "venue_id": 1 })), S::FORBIDDEN),
            // The admin console (issue 16): a customer is not staff; signing
            // out ends console cookie sessions only (this bearer session lives
            // on); the sign-in page opens nothing by itself.
            probe(M::GET, "/api/admin/session", "/api/admin/session", None, S::FORBIDDEN),
            probe(M::DELETE, "/api/admin/session", "/api/admin/session", None, S::UNAUTHORIZED),
            // The sign-in page changes nothing; redeeming needs the console's
            // header (a bearer POST without it is refused before any lookup).
            probe(M::GET, "/admin/signin", "/admin/signin?link=ent_nope", None, S::OK),
            probe(M::POST, "/admin/signin", "/admin/signin", Some(json!({ "link": "ent_nope" })), S::FORBIDDEN),
            // Sync routes take device tokens only.
            probe(M::GET, "/api/sync/whoami", "/api/sync/whoami", None, S::UNAUTHORIZED),
            probe(M::GET, "/api/sync/changes", "/api/sync/changes?cursor=0", None, S::UNAUTHORIZED),
            probe(M::POST, "/api/sync/events", "/api/sync/events", Some(json!({ "events": [], "sent_at": Utc::now() })), S::UNAUTHORIZED),
            probe(M::POST, "/api/sync/leases", "/api/sync/leases", Some(json!({ "pending": [] })), S::UNAUTHORIZED),
            probe(M::POST, "/api/sync/walkup", "/api/sync/walkup", Some(json!({ "code": "T-1" })), S::UNAUTHORIZED),
            probe(M::POST, "/api/sync/checkout", "/api/sync/checkout", Some(json!({ "operator_id": 1 })), S::UNAUTHORIZED),
            probe(M::POST, "/api/sync/peers", "/api/sync/peers", Some(json!({ "public_key": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a" })), S::UNAUTHORIZED),
            probe(M::GET, "/api/admin/devices", "/api/admin/devices", None, S::FORBIDDEN),
            probe(M::POST, "/api/sync/update", "/api/sync/update", Some(json!({ "running": "0.1.0", "last": null })), S::UNAUTHORIZED),
            probe(M::GET, "/api/sync/update/{version}", "/api/sync/update/0.1.1", None, S::UNAUTHORIZED),
            // The console's Slots page (issue 16): staff and slot managers only.
            probe(M::GET, "/api/admin/slots/month", "/api/admin/slots/month?venue_id=1&month=2025-12", None, S::FORBIDDEN),
            probe(M::GET, "/api/admin/dashboard/stream", "/api/admin/dashboard/stream", None, S::FORBIDDEN),
            probe(M::POST, "/api/admin/slots/pattern", "/api/admin/slots/pattern", Some(json!({ "venue_id": 1, "date_from": "2025-12-01", "date_to": "2025-12-07", "weekdays": [2], "times": [{ "start_time": "09:00", "end_time": "12:00" }], "create": true })), S::FORBIDDEN),
        ];

        // The table covers every route the server documents.
        let doc = w.call(M::GET, "/api/openapi.json", None, None).await.json;
        let mut missing = Vec::new();
        for (route, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                let m = method.to_uppercase();
                let covered = route == "/api/customer/session" && m == "DELETE"
                    || probes.iter().any(|p| p.route == route && p.method.as_str() == m);
                if !covered {
                    missing.push(format!("{m} {route}"));
                }
            }
        }
        assert!(missing.is_empty(), "routes without a session probe: {missing:?}");

        for p in probes {
            let a = w.call(p.method.clone(), &p.path, Some(&token), p.body.clone()).await;
            assert_eq!(a.status, p.want, "{} {}: {}", p.method, p.path, a.text);
            // Nothing of another holder in any answer.
            for secret in ["buyer2@example.com", "DEMO-TOMORROW\"", "\"DEMO-1-0002\""] {
                let allowed = p.route == "/api/tickets/validate" && secret == "\"DEMO-1-0002\"";
                assert!(allowed || !a.text.contains(secret), "{} {} leaks {secret}: {}", p.method, p.path, a.text);
            }
        }

        // "May it reserve?" on someone else's ticket is as unknown as a made-up code.
        let theirs = w.call(M::POST, "/api/tickets/validate", Some(&token), other()).await;
        let unknown = w
            .call(M::POST, "/api/tickets/validate", Some(&token), Some(json!({ "ticket_code": "NO-SUCH-1" })))
            .await;
        assert_eq!(theirs.json["verdict"], unknown.json["verdict"], "{}", theirs.text);
        assert_eq!(theirs.json["admit"], false);
        // Availability is the session's org only.
        let avail = w
            .call(M::GET, &format!("/api/reservation-slots/available?month={month}"), Some(&token), None)
            .await;
        for s in avail.json.as_array().unwrap() {
            assert_eq!(s["orq"], 1, "{s}");
        }
        assert_eq!(w.snapshot(), before, "a probe changed a row");

        // Its own ticket: every customer route works.
        let venue = w.store.get_slot(ORQ, theirs_slot).unwrap().venue_id;
        let day = (Utc::now() + chrono::Duration::days(3)).format("%Y-%m-%d").to_string();
        let new = NewSlot::validate(venue.0, &day, "07:13", "07:47", Some(10)).unwrap();
        let sid = w.store.create_slot(ORQ, &new, Utc::now()).unwrap().id.to_string();
        let own = w
            .call(M::POST, "/api/tickets/DEMO-1-0001/activate", Some(&token), None)
            .await;
        assert_eq!(own.status, S::OK, "{}", own.text);
        let created = w
            .call(M::POST, "/api/reservations/create", Some(&token),
                Some(json!({ "ticket_id": "DEMO-1-0001", "slot_id": sid, "customer_email": "buyer1@example.com", "customer_phone": "+12025551234" })))
            .await;
        assert_eq!(created.status, S::CREATED, "{}", created.text);
        let id = created.json["id"].as_str().unwrap().to_string();
        for (m, path, body) in [
            (M::GET, "/api/tickets/DEMO-1-0001/status".to_string(), None),
            (M::GET, format!("/api/reservations/{id}"), None),
            (M::PUT, format!("/api/reservations/{id}"), Some(json!({ "slot_id": sid }))),
            (M::DELETE, format!("/api/reservations/{id}"), None),
        ] {
            let a = w.call(m.clone(), &path, Some(&token), body).await;
            assert_eq!(a.status, S::OK, "{m} {path}: {}", a.text);
        }
    });
}

/// Signing out revokes the session on the server: the same token then
/// answers 401 everywhere. Only a customer session can sign itself out.
#[test]
fn signing_out_revokes_the_session_token() {
    runtime().block_on(async {
        let w = world(None);
        let token = w.session("DEMO-1-0001", "buyer1@example.com").await;
        let other = w.session("DEMO-1-0003", "buyer3@example.com").await;
        let status = "/api/tickets/DEMO-1-0001/status";
        assert_eq!(
            w.call(Method::GET, status, Some(&token), None).await.status,
            StatusCode::OK
        );

        let out = w
            .call(Method::DELETE, "/api/customer/session", Some(&token), None)
            .await;
        assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.text);
        for (m, path) in [
            (Method::GET, status),
            (Method::GET, "/api/tickets"),
            (Method::DELETE, "/api/customer/session"),
        ] {
            let a = w.call(m.clone(), path, Some(&token), None).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{m} {path}: {}", a.text);
            assert_eq!(a.json["error"]["code"], "UNAUTHORIZED");
        }
        // Another session is untouched.
        let still = w
            .call(
                Method::GET,
                "/api/tickets/DEMO-1-0003/status",
                Some(&other),
                None,
            )
            .await;
        assert_eq!(still.status, StatusCode::OK);

        // Staff and user tokens are not sessions: they are revoked by an admin.
        let user = w
            .store
            .create_token(ORQ, Role::Customer, Some(1), None, Utc::now())
            .unwrap()
            .0;
        for t in [
            w.staff_token(Role::Admin),
            w.staff_token(Role::Supervisor),
            user,
        ] {
            let a = w
                .call(Method::DELETE, "/api/customer/session", Some(&t), None)
                .await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
            assert_eq!(
                w.call(Method::GET, "/api/health", Some(&t), None)
                    .await
                    .status,
                StatusCode::OK
            );
        }
        let public = w
            .call(Method::DELETE, "/api/customer/session", None, None)
            .await;
        assert_eq!(public.status, StatusCode::UNAUTHORIZED);
    });
}

const PAGE: &str = "<!doctype html><html><head><script>window.early = 1;</script>\
<style>body{color:#123}</style></head><body><main id=\"app\"></main>\
<script type=\"module\">document.body.dataset.ok = '1';</script></body></html>";

fn csp_hash(s: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(s.as_bytes()))
    )
}

/// The customer page is served with a CSP that allows its own inline scripts
/// and styles by hash (no 'unsafe-inline'), forbids framing, and with
/// nosniff and no-referrer; API answers carry nosniff and no-referrer too.
#[test]
fn pages_and_api_answers_carry_the_security_headers() {
    runtime().block_on(async {
        let ui = tempfile::tempdir().unwrap();
        std::fs::write(ui.path().join("index.html"), PAGE).unwrap();
        let w = world(Some(ui.path().to_path_buf()));

        let page = w.call(Method::GET, "/", None, None).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.text.contains("<main id=\"app\">"));
        let csp = page.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        let directive = |name: &str| {
            csp.split(';')
                .map(str::trim)
                .find(|d| d.split(' ').next() == Some(name))
                .unwrap_or_else(|| panic!("no {name} in {csp}"))
                .to_string()
        };
        let script_src = directive("script-src");
        for inline in ["window.early = 1;", "document.body.dataset.ok = '1';"] {
            assert!(script_src.contains(&csp_hash(inline)), "{csp}");
        }
        assert!(
            directive("style-src").contains(&csp_hash("body{color:#123}")),
            "{csp}"
        );
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert_eq!(directive("frame-ancestors"), "frame-ancestors 'none'");
        assert_eq!(directive("object-src"), "object-src 'none'");

        for a in [
            &page,
            &w.call(Method::GET, "/api/health", None, None).await,
            &w.call(Method::GET, "/api/tickets", None, None).await,
            &w.call(Method::GET, "/api/no-such-route", None, None).await,
        ] {
            assert_eq!(a.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(a.headers[header::REFERRER_POLICY], "no-referrer");
            assert!(a.headers.contains_key(header::CONTENT_SECURITY_POLICY));
        }
        // Revalidating the cached page (304) must not replace its policy
        // with the API's (the browser merges a 304's headers into the page's).
        let modified = page.headers[header::LAST_MODIFIED]
            .to_str()
            .unwrap()
            .to_string();
        let req = Request::get("/")
            .header(header::IF_MODIFIED_SINCE, modified)
            .body(Body::empty())
            .unwrap();
        let cached = w.app.clone().oneshot(req).await.unwrap();
        assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(cached.headers().get(header::CONTENT_SECURITY_POLICY), None);
        assert_eq!(cached.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");

        let api = w.call(Method::GET, "/api/health", None, None).await;
        assert_eq!(
            api.headers[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'; frame-ancestors 'none'"
        );
    });
}
