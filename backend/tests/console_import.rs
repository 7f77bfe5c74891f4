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
