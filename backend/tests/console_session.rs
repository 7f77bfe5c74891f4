//! The admin console's sign-in (issue 16), through the real router
//! in-process: a one-time link opens a session held in an HttpOnly,
//! SameSite=Strict cookie; the cookie's role is enforced like a token's; a
//! state-changing cookie request needs the console's header and a
//! same-origin Origin; signing out revokes the session.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use chrono::Utc;
use entrada::api::{router, AppState};
use entrada::domain::{Orq, Role};
use entrada::store::Store;
use serde_json::{json, Value};
use tower::ServiceExt;

const ORQ: Orq = Orq(1);

struct World {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    app: Router,
}

fn world(secure: bool) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("entrada.db")).unwrap());
    let app = router(
        AppState::new(store.clone(), 0).with_secure_cookies(secure),
        None,
    );
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
}

impl World {
    async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = match body {
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
        Answer {
            status,
            headers,
            json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    fn link(&self, operator: Option<i64>) -> String {
        self.store
            .create_console_link(ORQ, operator.map(entrada::domain::OperatorId), Utc::now())
            .unwrap()
            .0
    }

    /// Redeems the link as the sign-in page's script does; returns the
    /// `Set-Cookie` value.
    async fn sign_in(&self, link: &str) -> String {
        let a = self.redeem(link, &[("x-entrada-console", "1")]).await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.json);
        a.headers[header::SET_COOKIE].to_str().unwrap().to_string()
    }

    async fn redeem(&self, link: &str, headers: &[(&str, &str)]) -> Answer {
        self.call(
            Method::POST,
            "/admin/signin",
            headers,
            Some(json!({ "link": link })),
        )
        .await
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `name=value` of a `Set-Cookie` header.
fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

#[test]
fn a_link_opens_one_cookie_session_that_signs_out() {
    runtime().block_on(async {
        let w = world(false);
        let link = w.link(None);
        let set = w.sign_in(&link).await;
        assert!(set.starts_with("entrada_console=ent_"), "{set}");
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
            assert!(set.contains(attr), "{attr} missing in {set}");
        }
        assert!(!set.contains("Secure"), "plain HTTP: {set}");
        // The link works once.
        let again = w.redeem(&link, &[("x-entrada-console", "1")]).await;
        assert_eq!(again.status, StatusCode::NOT_FOUND);
        assert_eq!(again.json["error"]["code"], "NOT_FOUND");

        let cookie = pair(&set);
        let me = w
            .call(
                Method::GET,
                "/api/admin/session",
                &[("cookie", &cookie)],
                None,
            )
            .await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.json);
        assert_eq!(me.json["role"], "admin");
        assert_eq!(me.json["orq"], 1);
        // The cookie is an admin's: the admin API answers.
        let venues = w
            .call(
                Method::GET,
                "/api/admin/venues",
                &[("cookie", &cookie)],
                None,
            )
            .await;
        assert_eq!(venues.status, StatusCode::OK, "{}", venues.json);

        // Signing out needs the console's header, then revokes the session.
        let unmarked = w
            .call(
                Method::DELETE,
                "/api/admin/session",
                &[("cookie", &cookie)],
                None,
            )
            .await;
        assert_eq!(unmarked.status, StatusCode::FORBIDDEN);
        assert_eq!(unmarked.json["error"]["code"], "CROSS_SITE_REQUEST");
        let out = w
            .call(
                Method::DELETE,
                "/api/admin/session",
                &[("cookie", &cookie), ("x-entrada-console", "1")],
                None,
            )
            .await;
        assert_eq!(out.status, StatusCode::NO_CONTENT);
        assert!(out.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0"));
        let after = w
            .call(
                Method::GET,
                "/api/admin/session",
                &[("cookie", &cookie)],
                None,
            )
            .await;
        assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    });
}

#[test]
fn cookie_writes_need_the_console_header_and_this_origin() {
    runtime().block_on(async {
        let w = world(true);
        let set = w.sign_in(&w.link(None)).await;
        assert!(set.contains("; Secure"), "TLS: {set}");
        let cookie = pair(&set);
        let body = || Some(json!({ "name": "Prado", "timezone": "Europe/Madrid" }));
        let cases: &[(&[(&str, &str)], StatusCode)] = &[
            // A cross-site form post: no header.
            (&[], StatusCode::FORBIDDEN),
            // Another site's script (it could not even send the header without a preflight).
            (
                &[
                    ("x-entrada-console", "1"),
                    ("host", "entrada.example"),
                    ("origin", "https://evil.example"),
                ],
                StatusCode::FORBIDDEN,
            ),
            (
                &[
                    ("x-entrada-console", "1"),
                    ("host", "entrada.example"),
                    ("origin", "https://entrada.example"),
                ],
                StatusCode::CREATED,
            ),
        ];
        for (extra, expected) in cases {
            let mut headers = vec![("cookie", cookie.as_str())];
            headers.extend_from_slice(extra);
            let a = w
                .call(Method::POST, "/api/admin/venues", &headers, body())
                .await;
            assert_eq!(a.status, *expected, "{extra:?}: {}", a.json);
        }
        assert_eq!(w.store.list_venues(ORQ).unwrap().len(), 1);
    });
}

#[test]
fn a_supervisors_console_session_has_a_supervisors_limits() {
    runtime().block_on(async {
        let w = world(false);
        let sup = w
            .store
            .add_operator(ORQ, Role::Supervisor, "Sue", None, Utc::now())
            .unwrap();
        let cookie = pair(&w.sign_in(&w.link(Some(sup.id.0))).await);
        let write = [("cookie", cookie.as_str()), ("x-entrada-console", "1")];
        let me = w
            .call(Method::GET, "/api/admin/session", &write, None)
            .await;
        assert_eq!(
            (me.json["role"].as_str(), me.json["operator_id"].as_i64()),
            (Some("supervisor"), Some(sup.id.0))
        );
        // Supervisors manage slots, not tokens or operators.
        let token = w
            .call(
                Method::POST,
                "/api/admin/tokens",
                &write,
                Some(json!({ "role": "admin" })),
            )
            .await;
        assert_eq!(token.status, StatusCode::FORBIDDEN, "{}", token.json);
        let op = w
            .call(
                Method::POST,
                "/api/admin/operators",
                &write,
                Some(json!({ "role": "operator", "display_name": "X" })),
            )
            .await;
        assert_eq!(op.status, StatusCode::FORBIDDEN, "{}", op.json);
        let slots = w
            .call(Method::GET, "/api/operator/slots", &write, None)
            .await;
        assert_eq!(slots.status, StatusCode::OK, "{}", slots.json);
    });
}

#[test]
fn opening_the_link_changes_nothing_until_the_page_posts_it() {
    runtime().block_on(async {
        let w = world(false);
        let link = w.link(None);
        // A plain GET (another site's navigation, a mail previewer): the
        // page, no cookie, the link still unused.
        for _ in 0..2 {
            let page = w
                .call(
                    Method::GET,
                    &format!("/admin/signin?link={link}"),
                    &[("sec-fetch-site", "cross-site")],
                    None,
                )
                .await;
            assert_eq!(page.status, StatusCode::OK);
            assert!(page.headers.get(header::SET_COOKIE).is_none());
            assert!(page.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"));
        }
        // A POST without the console's header, from another Origin, or
        // that the browser marks as another site's: refused, link unused.
        let refusals: [&[(&str, &str)]; 4] = [
            &[],
            &[
                ("x-entrada-console", "1"),
                ("origin", "https://evil.example"),
            ],
            &[("x-entrada-console", "1"), ("sec-fetch-site", "cross-site")],
            &[("x-entrada-console", "1"), ("sec-fetch-site", "same-site")],
        ];
        for headers in refusals {
            let a = w.redeem(&link, headers).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{headers:?}");
            assert_eq!(a.json["error"]["code"], "CROSS_SITE_REQUEST");
            assert!(a.headers.get(header::SET_COOKIE).is_none());
        }
        // The page's own POST still redeems it.
        let a = w
            .redeem(
                &link,
                &[
                    ("x-entrada-console", "1"),
                    ("sec-fetch-site", "same-origin"),
                    ("origin", "http://localhost"),
                    ("host", "localhost"),
                ],
            )
            .await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.json);
        assert!(a.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .starts_with("entrada_console=ent_"));
    });
}

#[test]
fn a_console_cookie_is_not_a_caller_on_public_or_customer_routes() {
    runtime().block_on(async {
        let w = world(false);
        let live = pair(&w.sign_in(&w.link(None)).await);
        let unknown =
            "entrada_console=ent_0000000000000000000000000000000000000000000000000000000000000000"
                .to_string();
        let session = json!({ "ticket_code": "NOPE-1", "email": "a@example.com" });
        for cookie in [&live, &unknown] {
            // A public look-up: what it answers without a cookie, not 401.
            let bare = w
                .call(Method::GET, "/api/tickets/NOPE-1/status", &[], None)
                .await;
            let with = w
                .call(
                    Method::GET,
                    "/api/tickets/NOPE-1/status",
                    &[("cookie", cookie)],
                    None,
                )
                .await;
            assert_eq!(with.status, bare.status, "{cookie}: {}", with.json);
            // The customer page's own POST (no console header): not 403.
            let bare = w
                .call(
                    Method::POST,
                    "/api/customer/session",
                    &[],
                    Some(session.clone()),
                )
                .await;
            let with = w
                .call(
                    Method::POST,
                    "/api/customer/session",
                    &[("cookie", cookie)],
                    Some(session.clone()),
                )
                .await;
            assert_eq!(with.status, bare.status, "{cookie}: {}", with.json);
            assert_ne!(with.status, StatusCode::FORBIDDEN);
        }
        // On the console's own routes the cookie still counts.
        let me = w
            .call(
                Method::GET,
                "/api/admin/session",
                &[("cookie", &unknown)],
                None,
            )
            .await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED);
        let me = w
            .call(
                Method::GET,
                "/api/admin/session",
                &[("cookie", &live)],
                None,
            )
            .await;
        assert_eq!(me.status, StatusCode::OK);
    });
}
