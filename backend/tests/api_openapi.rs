//! The OpenAPI document stays exact: through the real router in-process over
//! the demo data set, every operation it lists is called as every role (no
//! token, a revoked token, customer, customer session, operator, supervisor,
//! admin), with a valid body, a malformed one and a wrong content type, and
//! every status the router answers must be one the document lists for that
//! operation, with the one error shape. Beside that, the document's own
//! structure: bearer operations list 401 (and 403 when a role is refused),
//! body operations list 400/415/422, every error response is `ErrorBody`
//! and `details` may be null.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use chrono::Utc;
use entrada::api::{router, AppState};
use entrada::domain::{Orq, Role};
use entrada::store::Store;
use serde_json::{json, Value};
use tower::ServiceExt;

struct World {
    _dir: tempfile::TempDir,
    app: Router,
    /// (role name, Authorization token or None)
    callers: Vec<(&'static str, Option<String>)>,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("entrada.db")).unwrap());
    entrada::demo::populate(&store, Utc::now(), |_| {}).unwrap();
    let app = router(AppState::new(store.clone(), 0), None);
    let token = |role, user| {
        store
            .create_token(Orq(1), role, user, None, Utc::now())
            .unwrap()
            .0
    };
    let revoked = token(Role::Customer, Some(1));
    store.revoke_token(&revoked, Utc::now()).unwrap();
    let mut callers = vec![
        ("public", None),
        ("revoked", Some(revoked)),
        ("customer", Some(token(Role::Customer, Some(1)))),
        ("operator", Some(token(Role::Operator, None))),
        ("supervisor", Some(token(Role::Supervisor, None))),
        ("admin", Some(token(Role::Admin, None))),
    ];
    let w = World {
        _dir: dir,
        app,
        callers: Vec::new(),
    };
    let session = w
        .call(
            Method::POST,
            "/api/customer/session",
            None,
            Some((
                "application/json",
                json!({"ticket_code": "DEMO-ACTIVE", "email": "visitor@example.com"}).to_string(),
            )),
        )
        .await;
    assert_eq!(session.0, StatusCode::CREATED, "{}", session.1);
    callers.push((
        "session",
        Some(session.1["token"].as_str().unwrap().to_string()),
    ));
    World { callers, ..w }
}

impl World {
    async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<(&str, String)>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some((content_type, b)) => req
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(b)),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        // An event stream (the dashboard) runs for minutes: its status and
        // headers are the answer; the body is not waited for.
        let streamed = res
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream"));
        if streamed {
            return (status, Value::Null);
        }
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

/// A body each JSON operation accepts as to its schema (the checks behind it
/// may still refuse it: that answer must be documented too). A new operation
/// with a body needs a line here; the test says so.
fn valid_body(method: &str, path: &str) -> Option<Value> {
    Some(match (method, path) {
        ("post", "/api/operator/slots/create") => {
            json!({"venue_id": 1, "date": "2031-01-15", "start_time": "09:00", "end_time": "10:00", "total_capacity": 5})
        }
        ("put", "/api/operator/slots/{slot_id}") => json!({"total_capacity": 60}),
        ("post", "/api/tickets/validate") | ("post", "/api/operator/validate-ticket") => {
            json!({"ticket_code": "DEMO-ADMIT-2"})
        }
        ("post", "/api/customer/session") => {
            json!({"ticket_code": "DEMO-ADMIT-2", "email": "visitor@example.com"})
        }
        ("post", "/api/reservations/create") => json!({
            "ticket_id": "DEMO-ACTIVE", "slot_id": "00000000-0000-0000-0000-000000000000",
            "customer_email": "visitor@example.com", "customer_phone": "+34612345678"}),
        ("put", "/api/reservations/{id}") => {
            json!({"slot_id": "00000000-0000-0000-0000-000000000000"})
        }
        ("post", "/api/operator/verify-ticket") => {
            json!({"ticket_id": "DEMO-ADMIT-3", "operator_id": 1})
        }
        ("post", "/api/operator/sign-in") => json!({"operator_id": 1, "pin": "0000"}),
        ("post", "/api/operator/scan") => json!({"payload": "DEMO-ADMIT-3"}),
        ("post", "/api/admin/venues") => json!({"name": "Sala", "timezone": "Europe/Madrid"}),
        ("post", "/admin/signin") => json!({"link": "ent_nope"}),
        ("post", "/api/admin/tickets") => json!([{"ticket_code": "DOC-1"}]),
        ("post", "/api/admin/operators") => {
            json!({"role": "operator", "display_name": "Gate", "pin": "1234"})
        }
        ("put", "/api/admin/operators/{operator_id}/pin") => json!({"pin": "123456"}),
        ("patch", "/api/admin/operators/{operator_id}") => json!({"active": true}),
        ("post", "/api/admin/tokens") => json!({"role": "customer", "user_id": 9}),
        ("patch", "/api/admin/org") => json!({"signed_codes_only": false}),
        ("patch", "/api/admin/venues/{venue_id}") => json!({"early_grace_minutes": 10}),
        ("post", "/api/admin/devices") => json!({"name": "Gate B", "venue_id": 1}),
        ("post", "/api/admin/slots/pattern") => json!({
            "venue_id": 1, "date_from": "2031-03-24", "date_to": "2031-03-30", "weekdays": [2, 3],
            "times": [{"start_time": "09:00", "end_time": "12:00"}], "total_capacity": 30, "create": false}),
        ("post", "/api/sync/events") => json!({"events": [], "sent_at": Utc::now()}),
        ("post", "/api/sync/leases") => json!({"pending": []}),
        ("post", "/api/sync/walkup") => json!({"code": "DEMO-ADMIT-3"}),
        ("post", "/api/sync/checkout") => json!({"operator_id": 1}),
        ("post", "/api/sync/peers") => {
            json!({"public_key": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"})
        }
        ("post", "/api/sync/update") => json!({"running": "0.1.0", "last": null}),
        _ => return None,
    })
}

/// The document's path with its parameters filled in, and the required query.
fn uri(path: &str, op: &Value) -> String {
    let mut uri = path
        .replace("{slot_id}", "00000000-0000-0000-0000-000000000000")
        .replace("{id}", "00000000-0000-0000-0000-000000000000")
        .replace("{ticket_id}", "DEMO-ACTIVE")
        .replace("{venue_id}", "1")
        .replace("{operator_id}", "1")
        .replace("{device_id}", "1")
        .replace("{version}", "0.1.1");
    assert!(
        !uri.contains('{'),
        "a path parameter this test does not fill: {path}"
    );
    let query: Vec<String> = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query" && p["required"] == true)
        .map(|p| match p["name"].as_str().unwrap() {
            "month" => "month=2031-01".to_string(),
            "venue_id" => "venue_id=1".to_string(),
            "link" => "link=ent_nope".to_string(),
            "q" => "q=visitor@example.com".to_string(),
            other => panic!("a required query parameter this test does not fill: {other}"),
        })
        .collect();
    if !query.is_empty() {
        uri = format!("{uri}?{}", query.join("&"));
    }
    uri
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push((method.clone(), path.clone(), op.clone()));
        }
    }
    out
}

fn documented(op: &Value) -> BTreeSet<u16> {
    op["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.parse().unwrap())
        .collect()
}

async fn document(w: &World) -> Value {
    let (status, doc) = w.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    doc
}

#[tokio::test]
async fn every_status_the_router_answers_is_documented() {
    let w = world().await;
    let doc = document(&w).await;
    let mut undocumented = Vec::new();
    let mut seen: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    for (method, path, op) in operations(&doc) {
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let uri = uri(&path, &op);
        let content = op["requestBody"]["content"].as_object();
        let json_body = content.is_some_and(|c| c.contains_key("application/json"));
        let csv_body = content.is_some_and(|c| c.contains_key("text/csv"));
        let valid = valid_body(&method, &path);
        assert!(
            !json_body || valid.is_some(),
            "{method} {path} takes a JSON body: add a valid one to valid_body()"
        );
        let mut bodies: Vec<Option<(&str, String)>> = Vec::new();
        if json_body {
            bodies.push(Some(("application/json", valid.unwrap().to_string())));
            bodies.push(Some(("application/json", "{\"oops\": ".into())));
            bodies.push(Some(("application/json", "{\"unknown_field\": 1}".into())));
            bodies.push(Some(("text/plain", "hello".into())));
        } else if csv_body {
            bodies.push(Some(("text/csv", "ticket_code\nDOC-CSV-1\n".into())));
            bodies.push(Some((
                "text/csv",
                "ticket_code,user_id\nDOC-CSV-2,x\n".into(),
            )));
        } else {
            bodies.push(None);
        }
        for (role, token) in &w.callers {
            for body in &bodies {
                let (status, answer) = w
                    .call(m.clone(), &uri, token.as_deref(), body.clone())
                    .await;
                let code = status.as_u16();
                seen.entry(format!("{method} {path}"))
                    .or_default()
                    .insert(code);
                if !documented(&op).contains(&code) {
                    undocumented.push(format!(
                        "{method} {path} as {role} with {:?}: {code} {answer}",
                        body.as_ref().map(|b| b.0)
                    ));
                }
                if status.is_client_error() || status.is_server_error() {
                    let e = &answer["error"];
                    assert!(
                        e["code"].is_string()
                            && e["message"].is_string()
                            && e.get("details").is_some(),
                        "{method} {path} as {role}: {code} is not the error shape: {answer}"
                    );
                }
                assert!(
                    !status.is_server_error(),
                    "{method} {path} as {role}: {code} {answer}"
                );
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "statuses the document does not list:\n{}",
        undocumented.join("\n")
    );
    // The matrix did reach past the extractors: refusals by role were seen.
    assert!(seen["post /api/admin/venues"].contains(&403), "{seen:?}");
    assert!(seen["get /api/tickets"].contains(&401), "{seen:?}");
}

/// Operations any signed-in caller may use (no role is refused: no 403).
const ANY_SIGNED_IN: &[&str] = &[
    "post /api/tickets/validate",
    "get /api/tickets/{ticket_id}/status",
    "get /api/reservations/{id}",
    "get /api/sync/whoami",
    "get /api/sync/changes",
    "post /api/sync/events",
    "post /api/sync/leases",
    "post /api/sync/walkup",
    "post /api/sync/peers",
    "post /api/sync/update",
    "get /api/sync/update/{version}",
];

#[tokio::test]
async fn the_document_lists_the_refusals_of_its_extractors_and_roles() {
    let w = world().await;
    let doc = document(&w).await;
    let mut missing = Vec::new();
    for (method, path, op) in operations(&doc) {
        let name = format!("{method} {path}");
        let statuses = documented(&op);
        let mut want = BTreeSet::new();
        if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
            want.insert(401);
            if !ANY_SIGNED_IN.contains(&name.as_str()) {
                want.insert(403);
            }
        }
        if op["requestBody"]["content"]["application/json"].is_object() {
            want.extend([400, 413, 415, 422]);
        }
        if op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["in"] == "query")
        {
            want.insert(400);
        }
        for p in op["parameters"].as_array().into_iter().flatten() {
            let (name, place) = (p["name"].as_str().unwrap(), p["in"].as_str().unwrap());
            assert_eq!(
                place == "path",
                path.contains(&format!("{{{name}}}")),
                "{name}: a path parameter is in the path, a query one is not: {p}"
            );
            if place == "query" && p["required"] == true {
                assert!(
                    !p["schema"]["type"]
                        .as_array()
                        .is_some_and(|t| t.contains(&json!("null"))),
                    "{name}: required yet nullable"
                );
            }
        }
        for s in want.difference(&statuses) {
            missing.push(format!("{name}: {s}"));
        }
        for (status, response) in op["responses"].as_object().unwrap() {
            if status.starts_with('4') {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{name} {status}"
                );
            }
        }
    }
    assert!(
        missing.is_empty(),
        "undocumented statuses:\n{}",
        missing.join("\n")
    );
    let details = &doc["components"]["schemas"]["ErrorDetail"]["properties"]["details"];
    let types = details["type"].as_array().cloned().unwrap_or_default();
    let nullable = types.contains(&json!("null"))
        || details["oneOf"]
            .as_array()
            .is_some_and(|v| v.iter().any(|s| s["type"] == "null"));
    assert!(nullable, "details must be nullable: {details}");
}

/// JSON Schema's `integer` includes `5.0`, and an `object` is not an array:
/// the server reads bodies as the document describes them.
#[tokio::test]
async fn bodies_are_read_as_the_document_types_them() {
    let w = world().await;
    let admin = w.callers.iter().find(|c| c.0 == "admin").unwrap().1.clone();
    let post = |body: &str| {
        w.call(
            Method::POST,
            "/api/operator/slots/create",
            admin.as_deref(),
            Some(("application/json", body.to_string())),
        )
    };
    let (status, answer) = post(r#"{"venue_id": 1.0, "date": "2031-02-01", "start_time": "09:00", "end_time": "10:00", "total_capacity": 5.0}"#).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["total_capacity"], 5);
    for body in [
        r#"{"venue_id": 1.5, "date": "2031-02-02", "start_time": "09:00", "end_time": "10:00"}"#,
        r#"{"venue_id": -9223372036854775809, "date": "2031-02-02", "start_time": "09:00", "end_time": "10:00"}"#,
        r#"[1, "2031-02-02", "09:00", "10:00", 5]"#,
    ] {
        let (status, answer) = post(body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "INVALID_BODY", "{body}");
    }
}
