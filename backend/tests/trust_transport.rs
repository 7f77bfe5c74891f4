//! Issue 11, items 8 and 9: QR file names made from hostile ticket codes
//! (the real `entrada ticket export-qr`), database files' mode, and a sync
//! client facing a hostile server (a small axum server on 127.0.0.1).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use entrada::domain::{ActivationMode, NewTicket, Orq};
use entrada::store::Store;
use entrada::sync::client::{PairChange, SyncEngine, MAX_RESPONSE_BYTES};

const BIN: &str = env!("CARGO_BIN_EXE_entrada");

#[test]
fn export_qr_keeps_hostile_codes_inside_the_out_dir_one_file_each() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    let codes = [
        "../x",
        "../../escaped",
        "..",
        "a/b",
        "a_b",
        "abc",
        "ABC",
        "/tmp/abs",
        "TKT-1",
    ];
    {
        let store = Store::open(&db).unwrap();
        let tickets: Vec<_> = codes
            .iter()
            .map(|c| NewTicket::plain(c, ActivationMode::Immediate).unwrap())
            .collect();
        store.insert_tickets(Orq(1), &tickets, Utc::now()).unwrap();
    }
    let out = dir.path().join("work").join("out");
    let status = Command::new(BIN)
        .args([
            "ticket",
            "export-qr",
            "--db",
            db.to_str().unwrap(),
            "--orq",
            "1",
        ])
        .arg("--out-dir")
        .arg(&out)
        .env("ENTRADA_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    // Nothing next to or above the folder.
    assert!(!dir.path().join("work").join("x.png").exists());
    assert!(!dir.path().join("escaped.png").exists());
    assert!(!dir.path().join("work").join("out.png").exists());
    let outside: Vec<_> = std::fs::read_dir(dir.path().join("work"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside, vec![std::ffi::OsString::from("out")]);
    // One image per code, all directly inside, names distinct even ignoring case.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            assert!(e.file_type().unwrap().is_file());
            e.file_name().into_string().unwrap()
        })
        .collect();
    names.sort();
    assert_eq!(names.len(), codes.len(), "{names:?}");
    let lower: std::collections::HashSet<_> = names.iter().map(|n| n.to_lowercase()).collect();
    assert_eq!(lower.len(), codes.len(), "{names:?}");
    for code in codes {
        let name = entrada::qr::file_name(code, "png").unwrap();
        assert!(names.contains(&name), "{code}: {name} not in {names:?}");
    }
    assert!(names.contains(&"TKT-1.png".to_string()));
    assert!(names.contains(&"ABC.png".to_string()));
}

#[cfg(unix)]
#[test]
fn database_files_are_created_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    let store = Store::open(&db).unwrap();
    store
        .add_venue(Orq(1), "Mode test", "UTC", Utc::now())
        .unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for suffix in ["", "-wal", "-shm"] {
        let path = dir.path().join(format!("gate.db{suffix}"));
        assert!(path.exists(), "{}", path.display());
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    drop(store);
    // The CLI opens through the same Store::open.
    let cli_db = dir.path().join("cli.db");
    let out = Command::new(BIN)
        .args(["migrate", "--db", cli_db.to_str().unwrap()])
        .env("ENTRADA_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(mode(&cli_db), 0o600);
}

/// A server that answers `whoami`, and `changes` with `page` (called with
/// the request count); counts the change requests.
async fn hostile_server(
    page: impl Fn(usize) -> axum::response::Response + Clone + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new()
        .route(
            "/api/sync/whoami",
            get(|| async {
                Json(serde_json::json!({ "device_id": 7, "orq": 1, "venue_id": 1, "name": "Hostile" }))
            }),
        )
        .route(
            "/api/sync/changes",
            get(move || {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                let page = page.clone();
                async move { page(n) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, hits)
}

fn page_json(cursor: usize, has_more: bool) -> axum::response::Response {
    use axum::response::IntoResponse;
    Json(serde_json::json!({
        "changes": [],
        "next_cursor": cursor,
        "has_more": has_more,
        "remaining": 1_000_000,
        "server_time": Utc::now(),
    }))
    .into_response()
}

fn engine(dir: &Path) -> SyncEngine {
    SyncEngine::new(Arc::new(Store::open(dir.join("gate.db")).unwrap()))
}

/// Pairs `engine` with `url` through the one pairing policy.
async fn paired(engine: &SyncEngine, url: &str) {
    let change = engine.repair(url, "dev_x").await.unwrap();
    assert!(matches!(change, PairChange::Paired { .. }), "{change:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_announcing_more_pages_forever_cannot_keep_a_round_going() {
    // Gives up by itself after 300 pages, so that an unbounded client ends too.
    let (url, hits) = hostile_server(|n| page_json(n, n < 300)).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).with_max_pages(25);
    paired(&engine, &url).await;
    let report = engine.round(|_, _| {}).await.unwrap();
    assert_eq!(report.pages, 25);
    assert!(report.page_limit_reached);
    assert_eq!(hits.load(Ordering::SeqCst), 25);
    // The next round goes on from where this one stopped.
    assert_eq!(engine.status().await.unwrap().cursor, 25);
}

/// A first sync's first page: one ticket into the empty replica, more to
/// come (the replica defers its secondary indexes).
fn first_page() -> axum::response::Response {
    use axum::response::IntoResponse;
    let at = "2026-11-30T12:00:00.000Z";
    Json(serde_json::json!({
        "changes": [{
            "seq": 1, "entity": "tickets", "entity_id": "S-1", "op": "upsert",
            "row": {
                "ticket_code": "S-1", "orq": 1, "order_id": null, "product_id": null,
                "user_id": null, "status": "RESERVED", "entitlements": "{}",
                "expires_at": null, "created_at": at, "updated_at": at,
                "customer_email": null, "customer_phone": null,
                "reserved_at": at, "verified_at": null, "verified_by": null,
                "activation_status": "active", "activated_at": at,
                "activation_mode": "immediate", "code_serial": null, "left_at": null,
                "verified_gate": null,
            }
        }],
        "next_cursor": 1,
        "has_more": true,
        "remaining": 1_000,
        "server_time": Utc::now(),
    }))
    .into_response()
}

/// (secondary indexes of tickets, deferred definitions, the two log insert
/// triggers present, deferred triggers) in a gate's file.
fn tickets_indexes(dir: &Path) -> (i64, i64, i64, i64) {
    let c = rusqlite::Connection::open(dir.join("gate.db")).unwrap();
    let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    (
        count("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tickets' AND sql IS NOT NULL"),
        count("SELECT count(*) FROM deferred_indexes"),
        count(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' \
             AND name IN ('tickets_log_insert', 'ticket_reservations_log_insert')",
        ),
        count("SELECT count(*) FROM deferred_triggers"),
    )
}

/// A first sync that stops after its first page (the server fails, or the
/// round's page limit) builds the indexes that page deferred before the
/// round ends: the replica is not left without them until the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sync_round_that_stops_early_leaves_the_indexes_built() {
    use axum::response::IntoResponse;
    // The second page fails.
    let (url, _) = hostile_server(|n| {
        if n == 1 {
            first_page()
        } else {
            axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let failing = engine(dir.path());
    paired(&failing, &url).await;
    let before = tickets_indexes(dir.path());
    assert!(before.0 >= 8, "{before:?}");
    assert_eq!((before.1, before.2, before.3), (0, 2, 0), "{before:?}");
    failing.round(|_, _| {}).await.unwrap_err();
    assert_eq!(failing.status().await.unwrap().cursor, 1, "page 1 applied");
    assert_eq!(tickets_indexes(dir.path()), before, "after an error");

    // The page limit: one page a round.
    let (url, _) = hostile_server(|n| {
        if n == 1 {
            first_page()
        } else {
            page_json(n, true)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let limited = engine(dir.path()).with_max_pages(1);
    paired(&limited, &url).await;
    let report = limited.round(|_, _| {}).await.unwrap();
    assert!(report.page_limit_reached);
    assert_eq!(tickets_indexes(dir.path()), before, "after the page limit");
}

/// A round that fails at its upload (here the server has no events
/// route: 404) still builds the indexes a first sync stopped between pages
/// left deferred, as a round that fails at its download does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_that_fails_at_upload_leaves_the_indexes_built() {
    let (url, hits) = hostile_server(|n| page_json(n, false)).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    paired(&engine, &url).await;
    let before = tickets_indexes(dir.path());
    assert_eq!((before.1, before.2, before.3), (0, 2, 0), "{before:?}");
    // A first sync's first page applied, then the gate stopped (a crash):
    // the indexes are deferred, and a verification waits in the outbox.
    let page: entrada::sync::protocol::ChangePage = serde_json::from_slice(
        &axum::body::to_bytes(first_page().into_body(), usize::MAX)
            .await
            .unwrap(),
    )
    .unwrap();
    let store = Store::open(dir.path().join("gate.db")).unwrap();
    store.apply_change_page(&page, None, Utc::now()).unwrap();
    drop(store);
    {
        let c = rusqlite::Connection::open(dir.path().join("gate.db")).unwrap();
        c.execute(
            "INSERT INTO outbox (event_id, kind, entity, entity_id, payload, device_time) \
             VALUES ('00000000-0000-4000-8000-000000000001', 'verify', 'tickets', 'S-1', '{}', '2026-11-30T12:00:00.000Z')",
            [],
        )
        .unwrap();
    }
    let deferred = tickets_indexes(dir.path());
    assert_eq!((deferred.0, deferred.2, deferred.3), (0, 0, 2), "deferred");
    let err = engine.round(|_, _| {}).await.unwrap_err();
    assert_eq!(err.code(), "SERVER_ERROR", "{err}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "no download after the failed upload"
    );
    assert_eq!(
        tickets_indexes(dir.path()),
        before,
        "built, the triggers created again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_cursor_does_not_move_is_a_protocol_error() {
    let (url, hits) = hostile_server(|_| page_json(0, true)).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    paired(&engine, &url).await;
    let err = tokio::time::timeout(std::time::Duration::from_secs(60), engine.round(|_, _| {}))
        .await
        .expect("the round must end")
        .unwrap_err();
    assert_eq!(err.code(), "SYNC_PROTOCOL_ERROR", "{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_answer_is_refused_without_reading_it_all() {
    // A valid page padded past the limit, streamed without a length.
    let (url, _) = hostile_server(|_| {
        use axum::body::Bytes;
        let (mut tx, body) = http_body_util::channel::Channel::<Bytes, std::io::Error>::new(2);
        tokio::spawn(async move {
            let head = format!(
                r#"{{"changes":[],"next_cursor":1,"has_more":false,"remaining":0,"server_time":"{}","padding":""#,
                Utc::now().to_rfc3339()
            );
            let chunk = Bytes::from(vec![b'x'; 1024 * 1024]);
            let mut parts = vec![Bytes::from(head)];
            parts.extend((0..MAX_RESPONSE_BYTES / chunk.len() + 2).map(|_| chunk.clone()));
            parts.push(Bytes::from_static(br#""}"#));
            for part in parts {
                if tx.send_data(part).await.is_err() {
                    break; // the client stopped reading
                }
            }
        });
        axum::response::Response::new(axum::body::Body::new(body))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    paired(&engine, &url).await;
    let err = engine.round(|_, _| {}).await.unwrap_err();
    assert_eq!(err.code(), "RESPONSE_TOO_LARGE", "{err}");
    let status = engine.status().await.unwrap();
    assert_eq!(status.cursor, 0);
    assert!(status
        .last_error
        .unwrap_or_default()
        .contains("larger than"));
}

/// An answer that is not the server's: a proxy's, a WAF's or a
/// maintenance page's 403.
fn forbidden_page() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::FORBIDDEN,
        axum::response::Html("<html><body><h1>403 Forbidden</h1>Request blocked.</body></html>"),
    )
        .into_response()
}

fn token_refused() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({ "code": "UNAUTHORIZED", "message": "unknown or revoked token" })),
    )
        .into_response()
}

/// Only the server's 401 (TOKEN_REFUSED) ends the sync loop: a 403 in
/// front of the server is retried like an outage, and rounds go on once it
/// is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_is_retried_and_only_a_refused_token_stops_the_loop() {
    let (url, hits) = hostile_server(|n| match n {
        1..=3 => forbidden_page(),
        4 => page_json(4, false),
        _ => token_refused(),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    paired(&engine, &url).await;
    let mut rounds = Vec::new();
    let end = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        engine.watch(std::time::Duration::from_millis(20), |r| {
            rounds.push(r.as_ref().err().map(|e| e.code()));
        }),
    )
    .await
    .expect("the loop must stop on the refused token");
    assert_eq!(end.code(), "TOKEN_REFUSED", "{end}");
    assert_eq!(
        rounds,
        [
            Some("SERVER_ERROR"),
            Some("SERVER_ERROR"),
            Some("SERVER_ERROR"),
            None,
            Some("TOKEN_REFUSED"),
        ]
    );
    assert_eq!(hits.load(Ordering::SeqCst), 5);
    let status = engine.loop_status();
    assert!(status.stopped, "{status:?}");
    assert_eq!(engine.status().await.unwrap().cursor, 4);
}

/// The pairing policy on a 403: not a refused token. A paired gate keeps
/// its pairing (the server could not be asked); an unpaired one gets the
/// error; the server's 401 is refused as before. Nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_pairing_through_a_403_keeps_the_pairing_and_a_401_is_refused() {
    use std::sync::atomic::AtomicU16;
    let answer = Arc::new(AtomicU16::new(403));
    let status = answer.clone();
    let app = Router::new().route(
        "/api/sync/whoami",
        get(move || {
            let status = status.load(Ordering::SeqCst);
            async move {
                match status {
                    403 => forbidden_page(),
                    401 => token_refused(),
                    _ => {
                        use axum::response::IntoResponse;
                        Json(serde_json::json!({ "device_id": 7, "orq": 1, "venue_id": 1, "name": "Gate" }))
                            .into_response()
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("gate.db")).unwrap());
    let engine = SyncEngine::new(store.clone());

    // Unpaired: nothing to keep, the error comes back (not TOKEN_REFUSED).
    let e = engine.repair(&url, "dev_x").await.unwrap_err();
    assert_eq!(e.code(), "SERVER_ERROR", "{e}");
    assert!(store.pairing().unwrap().is_none());

    answer.store(200, Ordering::SeqCst);
    paired(&engine, &url).await;

    // Paired: a 403 keeps the current pairing.
    answer.store(403, Ordering::SeqCst);
    match engine.repair(&url, "dev_y").await.unwrap() {
        PairChange::Kept { reason } => assert_eq!(reason.code(), "SERVER_ERROR", "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.pairing().unwrap().unwrap().token, "dev_x");

    // The server's 401: refused, the pairing untouched.
    answer.store(401, Ordering::SeqCst);
    let e = engine.repair(&url, "dev_z").await.unwrap_err();
    assert_eq!(e.code(), "TOKEN_REFUSED", "{e}");
    assert_eq!(store.pairing().unwrap().unwrap().token, "dev_x");
}

/// The next page is fetched while a page is applied: when page 2 fails to
/// apply, the round fails with the cursor still at page 1's, and page 3
/// (asked for meanwhile) is dropped, not applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_fails_to_apply_keeps_the_cursor_and_the_next_page_is_not_applied() {
    use axum::response::IntoResponse;
    let (url, _hits) = hostile_server(|n| {
        let changes = if n == 2 {
            // A venue without its columns: NOT NULL refuses it in the replica.
            serde_json::json!([{ "seq": 2, "entity": "venues", "entity_id": "9", "op": "upsert", "row": { "id": 9 } }])
        } else {
            serde_json::json!([])
        };
        Json(serde_json::json!({
            "changes": changes,
            "next_cursor": n,
            "has_more": n < 5,
            "remaining": 5 - n.min(5),
            "server_time": Utc::now(),
        }))
        .into_response()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    paired(&engine, &url).await;
    let err = engine.round(|_, _| {}).await.unwrap_err();
    assert_eq!(err.code(), "DATABASE_ERROR", "the apply failed: {err}");
    assert_eq!(
        engine.status().await.unwrap().cursor,
        1,
        "page 2 failed ({err}): the cursor stays at page 1's, page 3 is not applied"
    );
}
