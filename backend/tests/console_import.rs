//! The console's checked CSV import (issue 16), through the real router
//! in-process: every bad row is named by its line and field and nothing is
//! imported.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use chrono::Utc;
use entrada::api::{router, AppState};
use entrada::domain::{Orq, Role, TicketCode};
use entrada::store::Store;
use serde_json::Value;
use tower::ServiceExt;

const ORQ: Orq = Orq(1);

struct World {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    app: Router,
    admin: String,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path().join("entrada.db")).unwrap());
        let app = router(AppState::new(store.clone(), 0), None);
        let admin = store
            .create_token(ORQ, Role::Admin, None, None, Utc::now())
            .unwrap()
            .0;
        Self {
            _dir: dir,
            store,
            app,
            admin,
        }
    }

    async fn csv(&self, path: &str, body: &str) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.admin))
            .header(header::CONTENT_TYPE, "text/csv")
            .body(Body::from(body.to_string()))
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

    fn exists(&self, code: &str) -> bool {
        let code = TicketCode::parse(code).unwrap();
        self.store.get_ticket(ORQ, &code).is_ok()
    }
}

const CHECKED: &str = "/api/admin/tickets/import/checked";

#[tokio::test]
async fn a_bad_purchase_email_is_named_by_line_and_field_and_nothing_is_imported() {
    let w = World::new();
    let file = "ticket_code,purchase_email\n\
                M-1,ana@example.com\n\
                M-2,ana.example.com\n\
                M-3,bob@example.com\n";
    let (status, body) = w.csv(CHECKED, file).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "INVALID_ROWS", "{body}");
    let rows = body["error"]["details"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{body}");
    assert_eq!(rows[0]["line"], 3, "{body}");
    assert_eq!(rows[0]["ticket_code"], "M-2", "{body}");
    let message = rows[0]["message"].as_str().unwrap();
    assert!(message.starts_with("purchase_email:"), "{message}");
    for code in ["M-1", "M-2", "M-3"] {
        assert!(!w.exists(code), "{code} imported");
    }
    // Fixed, the file imports whole.
    let (status, body) = w
        .csv(CHECKED, &file.replace("ana.example.com", "ana@example.com"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["imported"], 3, "{body}");
}

/// `?dry_run=true`: the same checks and report, nothing written; a good part
/// answers its codes as the import would store them (the console compares
/// them across the parts of a big file).
#[tokio::test]
async fn a_dry_run_checks_every_row_and_imports_nothing() {
    let w = World::new();
    let (status, body) = w.csv(CHECKED, "ticket_code\nD-OLD\n").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let dry = "/api/admin/tickets/import/checked?dry_run=true";

    let (status, body) = w.csv(dry, "order_id,ticket_code\n1,D-1\n2, D-2 \n").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checked"], 2, "{body}");
    assert_eq!(
        body["ticket_codes"],
        serde_json::json!(["D-1", "D-2"]),
        "{body}"
    );
    assert!(!w.exists("D-1") && !w.exists("D-2"), "a dry run imported");

    // Bad rows: the import's report, line by line; still nothing written.
    let file = "ticket_code,purchase_email\nD-3,x@\nD-OLD,\nD-4,\nD-4,\n";
    let (status, body) = w.csv(dry, file).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "INVALID_ROWS", "{body}");
    let lines: Vec<i64> = body["error"]["details"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, [2, 3, 5], "{body}");
    let rows = &body["error"]["details"]["rows"];
    let problems: Vec<&str> = (0..3)
        .map(|i| rows[i]["problem"].as_str().unwrap())
        .collect();
    assert_eq!(
        problems,
        ["INVALID", "EXISTS", "REPEATED_IN_FILE"],
        "{body}"
    );
    assert_eq!(rows[2]["duplicate_of"], 4, "{body}");
    assert!(rows[0].get("duplicate_of").is_none(), "{body}");
    // The good rows' codes too (null for a bad row), for comparing parts.
    assert_eq!(
        body["error"]["details"]["ticket_codes"],
        serde_json::json!([null, null, "D-4", null]),
        "{body}"
    );
    assert!(!w.exists("D-3") && !w.exists("D-4"), "a dry run imported");

    // dry_run=false is the import; an unknown parameter is refused.
    let (status, body) = w
        .csv(
            "/api/admin/tickets/import/checked?dry_run=false",
            "ticket_code\nD-1\n",
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(w.exists("D-1"));
    let (status, body) = w
        .csv(
            "/api/admin/tickets/import/checked?dry=1",
            "ticket_code\nD-9\n",
        )
        .await;
    assert!(status.is_client_error(), "{status} {body}");
    assert!(!w.exists("D-9"));
}

/// A client whose connection dropped during a part's import re-checks that
/// part: every row `EXISTS` says it went in. And a row is named by the line
/// it starts on, after a quoted field with a line break.
#[tokio::test]
async fn a_recheck_after_an_import_says_every_row_exists_and_lines_are_the_files() {
    let w = World::new();
    let part = "ticket_code,entitlements\nL-1,\"{\"\"note\"\":\n\"\"two lines\"\"}\"\nL-2,\n";
    let (status, body) = w.csv(CHECKED, part).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let dry = "/api/admin/tickets/import/checked?dry_run=true";
    let (status, body) = w.csv(dry, part).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let rows = body["error"]["details"]["rows"].as_array().unwrap();
    let seen: Vec<(i64, &str)> = rows
        .iter()
        .map(|r| (r["line"].as_i64().unwrap(), r["problem"].as_str().unwrap()))
        .collect();
    assert_eq!(seen, [(2, "EXISTS"), (4, "EXISTS")], "{body}");

    let bad = "ticket_code,entitlements\nL-3,\"{\n}\"\nL-4,\"[\"\nL-5,\n";
    let (status, body) = w.csv(dry, bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let rows = body["error"]["details"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{body}");
    assert_eq!(rows[0]["line"], 4, "the row after a two-line field: {body}");
    assert_eq!(rows[0]["problem"], "INVALID", "{body}");
}
