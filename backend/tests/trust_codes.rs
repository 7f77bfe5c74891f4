//! Issue 11, items 3 and 4, through the real router (in-process) and the
//! real sync client: re-issued and plain codes, "signed codes only", PIN
//! lockout, supervisor PINs, bounded PIN hashes, tokens bound to an operator.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use chrono::{Duration, NaiveTime, Utc};
use entrada::api::{router, AppState};
use entrada::domain::{
    ActivationMode, Contact, NewSlot, NewTicket, OperatorId, Orq, Role, TicketCode,
};
use entrada::store::{ReserveRequest, Store};
use entrada::sync::client::{PairChange, SyncEngine};
use serde_json::{json, Value};
use tower::ServiceExt;

const ORQ: Orq = Orq(1);

struct World {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    store: Arc<Store>,
    app: Router,
    admin: String,
    /// A staff token not bound to an operator (names one in the body).
    staff: String,
    /// A staff token bound to `ana`.
    ana_token: String,
    ana: OperatorId,
    ben: OperatorId,
    venue: entrada::domain::VenueId,
}

/// An org with one venue (UTC), an all-day slot today, tickets T-1..T-4
/// reserved in it, operators Ana (PIN 1234) and Ben (PIN 5678).
fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    let store = Arc::new(Store::open(&db).unwrap());
    let now = Utc::now();
    let venue = store.add_venue(ORQ, "Hall", "UTC", now).unwrap();
    let slot = store
        .create_slot(
            ORQ,
            &NewSlot {
                venue_id: venue.id,
                date: now.date_naive(),
                start_time: NaiveTime::MIN,
                end_time: NaiveTime::from_hms_opt(23, 59, 59).unwrap(),
                total_capacity: 50,
            },
            now,
        )
        .unwrap();
    for i in 1..=4 {
        let code = format!("T-{i}");
        let t = NewTicket::plain(&code, ActivationMode::Immediate).unwrap();
        store.insert_tickets(ORQ, &[t], now).unwrap();
        let req = ReserveRequest {
            ticket: TicketCode::parse(&code).unwrap(),
            slot_id: slot.id,
            contact: Contact::validate("guest@example.com", "+12025551234").unwrap(),
        };
        store.reserve_slot(ORQ, &req, now).unwrap();
    }
    let ana = store
        .add_operator(ORQ, Role::Operator, "Ana", Some("1234"), now)
        .unwrap()
        .id;
    let ben = store
        .add_operator(ORQ, Role::Operator, "Ben", Some("5678"), now)
        .unwrap()
        .id;
    let token = |role, user: Option<i64>| store.create_token(ORQ, role, user, None, now).unwrap().0;
    let admin = token(Role::Admin, None);
    let staff = token(Role::Operator, None);
    let ana_token = token(Role::Operator, Some(ana.0));
    // No request limit: what refuses here is the lockout, not the limiter.
    let app = router(AppState::new(store.clone(), 0), None);
    World {
        _dir: dir,
        db,
        store,
        app,
        admin,
        staff,
        ana_token,
        ana,
        ben,
        venue: venue.id,
    }
}

struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

async fn call(
    app: &Router,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let retry_after = res
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    Answer {
        status,
        retry_after,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

impl World {
    async fn scan(&self, payload: &str) -> Answer {
        call(
            &self.app,
            Method::POST,
            "/api/operator/scan",
            &self.ana_token,
            Some(json!({ "payload": payload })),
        )
        .await
    }
    async fn validate(&self, code: &str) -> Answer {
        call(
            &self.app,
            Method::POST,
            "/api/operator/validate-ticket",
            &self.ana_token,
            Some(json!({ "ticket_code": code })),
        )
        .await
    }
    async fn verify(&self, code: &str) -> Answer {
        call(
            &self.app,
            Method::POST,
            "/api/operator/verify-ticket",
            &self.ana_token,
            Some(json!({ "ticket_id": code })),
        )
        .await
    }
    async fn sign_in(&self, token: &str, operator: OperatorId, pin: &str) -> Answer {
        call(
            &self.app,
            Method::POST,
            "/api/operator/sign-in",
            token,
            Some(json!({ "operator_id": operator.0, "pin": pin })),
        )
        .await
    }
    fn signed(&self, code: &str) -> String {
        self.store
            .signed_code(ORQ, &TicketCode::parse(code).unwrap(), Utc::now())
            .unwrap()
    }
}

fn verdict(a: &Answer) -> &str {
    a.body["verdict"].as_str().unwrap_or_default()
}

fn error_code(a: &Answer) -> &str {
    a.body["error"]["code"].as_str().unwrap_or_default()
}

// ------------------------------------------------------------ item 3

#[tokio::test]
async fn a_reissued_ticket_refuses_its_plain_code_on_every_gate_route() {
    let w = world();
    let old_signed = w.signed("T-1");
    let new_signed = w
        .store
        .reissue_code(ORQ, &TicketCode::parse("T-1").unwrap(), Utc::now())
        .unwrap();

    let validated = w.validate("T-1").await;
    assert_eq!(
        (validated.status, verdict(&validated)),
        (StatusCode::OK, "REVOKED"),
        "{:?}",
        validated.body
    );
    let scanned = w.scan("T-1").await;
    assert_eq!(
        (verdict(&scanned), &scanned.body["admit"]),
        ("REVOKED", &json!(false))
    );
    let verified = w.verify("T-1").await;
    assert_eq!(
        (verified.status, error_code(&verified)),
        (StatusCode::UNPROCESSABLE_ENTITY, "REVOKED")
    );
    // Whitespace around the code changes nothing.
    assert_eq!(verdict(&w.scan(" T-1\n").await), "REVOKED");
    // The code printed before the re-issue is revoked too; only the new one admits.
    assert_eq!(verdict(&w.scan(&old_signed).await), "REVOKED");
    assert_eq!(verdict(&w.scan(&new_signed).await), "ADMIT");
    // A ticket never re-issued keeps admitting with its plain code.
    assert_eq!(verdict(&w.validate("T-2").await), "ADMIT");
    assert_eq!(verdict(&w.scan("T-2").await), "ADMIT");
}

#[tokio::test]
async fn signed_codes_only_is_an_admin_setting_that_refuses_every_plain_code() {
    let w = world();
    let org = |token: &String, body: Option<Value>| {
        let (app, token) = (w.app.clone(), token.clone());
        async move {
            let method = if body.is_some() {
                Method::PATCH
            } else {
                Method::GET
            };
            call(&app, method, "/api/admin/org", &token, body).await
        }
    };
    let shown = org(&w.admin, None).await;
    assert_eq!(
        (shown.status, &shown.body["signed_codes_only"]),
        (StatusCode::OK, &json!(false))
    );
    // Only admins read or change it.
    for (token, body) in [
        (&w.ana_token, None),
        (&w.ana_token, Some(json!({ "signed_codes_only": true }))),
    ] {
        assert_eq!(org(token, body).await.status, StatusCode::FORBIDDEN);
    }
    let bad = org(&w.admin, Some(json!({ "signed_codes_only": "yes" }))).await;
    assert!(bad.status.is_client_error(), "{:?}", bad.body);
    let set = org(&w.admin, Some(json!({ "signed_codes_only": true }))).await;
    assert_eq!(
        (set.status, &set.body["signed_codes_only"]),
        (StatusCode::OK, &json!(true))
    );
    assert_eq!(
        org(&w.admin, None).await.body["signed_codes_only"],
        json!(true)
    );

    for code in ["T-1", "NO-SUCH-TICKET"] {
        let v = w.validate(code).await;
        assert_eq!(
            (v.status, verdict(&v)),
            (StatusCode::OK, "SIGNED_CODE_REQUIRED"),
            "{code}"
        );
        assert_eq!(
            verdict(&w.scan(code).await),
            "SIGNED_CODE_REQUIRED",
            "{code}"
        );
        let verified = w.verify(code).await;
        assert_eq!(
            (verified.status, error_code(&verified)),
            (StatusCode::UNPROCESSABLE_ENTITY, "SIGNED_CODE_REQUIRED"),
            "{code}"
        );
    }
    assert_eq!(verdict(&w.scan(&w.signed("T-1")).await), "ADMIT");
    // Another org is not affected.
    assert!(!w.store.org_settings(Orq(2)).unwrap().signed_codes_only);

    // Off again: plain codes admit again.
    org(&w.admin, Some(json!({ "signed_codes_only": false }))).await;
    assert_eq!(verdict(&w.scan("T-2").await), "ADMIT");
}

/// A gate learns both through sync (HTTP, the real client), then judges
/// offline: the server is gone when the codes are shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_gate_knows_reissues_and_signed_codes_only_from_sync() {
    let w = world();
    let (device_token, _) = w
        .store
        .add_device(ORQ, w.venue, "Gate 1", Utc::now())
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(entrada::api::serve(
        listener,
        w.app.clone(),
        entrada::api::Shutdown::default(),
    ));

    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Store::open(dir.path().join("gate.db")).unwrap());
    let engine = SyncEngine::new(gate.clone());
    let change = engine.repair(&url, &device_token).await.unwrap();
    assert!(matches!(change, PairChange::Paired { .. }), "{change:?}");
    engine.round(|_, _| {}).await.unwrap();
    let scan = |code: &str| {
        gate.scan(
            ORQ,
            code.as_bytes(),
            w.ana,
            &entrada::domain::Gate::default(),
            Utc::now(),
        )
        .unwrap()
        .verdict
        .code()
    };
    let judge = |code: &str| {
        gate.validate_ticket(
            ORQ,
            &TicketCode::parse(code).unwrap(),
            &entrada::domain::Gate::default(),
            Utc::now(),
        )
        .unwrap()
        .verdict
        .code()
    };
    assert_eq!(judge("T-1"), "ADMIT", "before the re-issue");

    let t1_new = w
        .store
        .reissue_code(ORQ, &TicketCode::parse("T-1").unwrap(), Utc::now())
        .unwrap();
    w.store
        .set_signed_codes_only(ORQ, false, Utc::now())
        .unwrap();
    engine.round(|_, _| {}).await.unwrap();
    assert_eq!(judge("T-1"), "REVOKED");
    assert_eq!(judge("T-2"), "ADMIT");

    w.store
        .set_signed_codes_only(ORQ, true, Utc::now())
        .unwrap();
    let t2_signed = w.signed("T-2");
    engine.round(|_, _| {}).await.unwrap();
    server.abort();
    let _ = server.await;

    // Offline from here.
    assert_eq!(scan("T-2"), "SIGNED_CODE_REQUIRED");
    assert_eq!(scan("T-3"), "SIGNED_CODE_REQUIRED");
    assert_eq!(scan("T-1"), "SIGNED_CODE_REQUIRED");
    assert_eq!(scan(&t2_signed), "ADMIT");
    assert_eq!(scan(&t1_new), "ADMIT");
}

// ------------------------------------------------------------ item 4

#[tokio::test]
async fn five_wrong_pins_lock_the_operator_on_every_server_instance() {
    let w = world();
    for i in 1..=5 {
        let a = w.sign_in(&w.staff, w.ana, "0000").await;
        assert_eq!(
            (a.status, error_code(&a)),
            (StatusCode::UNAUTHORIZED, "WRONG_PIN"),
            "attempt {i}"
        );
    }
    // Locked: even the right PIN is refused, with when to come back.
    let locked = w.sign_in(&w.staff, w.ana, "1234").await;
    assert_eq!(
        (locked.status, error_code(&locked)),
        (StatusCode::TOO_MANY_REQUESTS, "PIN_LOCKED")
    );
    let retry: u64 = locked.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "Retry-After {retry}");
    assert_eq!(locked.body["error"]["details"]["retry_after"], json!(retry));

    // A second server instance on the same database sees the same lock.
    let other_instance = router(
        AppState::new(Arc::new(Store::open(&w.db).unwrap()), 0),
        None,
    );
    let there = call(
        &other_instance,
        Method::POST,
        "/api/operator/sign-in",
        &w.staff,
        Some(json!({ "operator_id": w.ana.0, "pin": "1234" })),
    )
    .await;
    assert_eq!(
        (there.status, error_code(&there)),
        (StatusCode::TOO_MANY_REQUESTS, "PIN_LOCKED")
    );

    // Another operator is not locked.
    assert_eq!(
        w.sign_in(&w.staff, w.ben, "5678").await.status,
        StatusCode::OK
    );

    // Time passes (passed in): the lock is over, a wrong PIN locks again,
    // twice as long; the right PIN after that clears the count.
    let later = Utc::now() + Duration::seconds(31);
    assert_eq!(
        w.store
            .check_operator_pin(ORQ, w.ana, "0000", later)
            .unwrap_err()
            .code(),
        "WRONG_PIN"
    );
    match w.store.check_operator_pin(ORQ, w.ana, "1234", later) {
        Err(entrada::store::StoreError::Domain(entrada::domain::DomainError::PinLocked {
            retry_after_secs,
            ..
        })) => {
            assert_eq!(retry_after_secs, 60)
        }
        other => panic!("{other:?}"),
    }
    let much_later = later + Duration::seconds(61);
    w.store
        .check_operator_pin(ORQ, w.ana, "1234", much_later)
        .unwrap();
    assert_eq!(
        w.store
            .check_operator_pin(ORQ, w.ana, "0000", much_later)
            .unwrap_err()
            .code(),
        "WRONG_PIN"
    );
    w.store
        .check_operator_pin(ORQ, w.ana, "1234", much_later)
        .unwrap();
}

#[tokio::test]
async fn supervisors_need_six_to_eight_digits() {
    let w = world();
    let create = |role: &str, pin: &str| {
        call(
            &w.app,
            Method::POST,
            "/api/admin/operators",
            &w.admin,
            Some(json!({ "role": role, "display_name": "New", "pin": pin })),
        )
    };
    for (role, pin, status) in [
        ("supervisor", "1234", StatusCode::UNPROCESSABLE_ENTITY),
        ("supervisor", "12345", StatusCode::UNPROCESSABLE_ENTITY),
        ("admin", "4321", StatusCode::UNPROCESSABLE_ENTITY),
        ("supervisor", "123456", StatusCode::CREATED),
        ("operator", "1234", StatusCode::CREATED),
    ] {
        let a = create(role, pin).await;
        assert_eq!(a.status, status, "{role} {pin}: {:?}", a.body);
        if status != StatusCode::CREATED {
            assert_eq!(a.body["error"]["details"]["field"], "pin");
        }
    }

    // A supervisor from before the rule, with a 4-digit PIN: that PIN no
    // longer signs in (it is not even checked); a new one set by an admin does.
    let legacy = w.ben;
    let db = rusqlite::Connection::open(&w.db).unwrap();
    db.execute(
        "UPDATE operators SET role = 'supervisor' WHERE id = ?1",
        [legacy.0],
    )
    .unwrap();
    let a = w.sign_in(&w.staff, legacy, "5678").await;
    assert_eq!(error_code(&a), "WRONG_PIN");
    assert_eq!(
        w.store
            .set_operator_pin(ORQ, legacy, "5678", Utc::now())
            .unwrap_err()
            .code(),
        "INVALID_INPUT"
    );
    w.store
        .set_operator_pin(ORQ, legacy, "567890", Utc::now())
        .unwrap();
    assert_eq!(
        w.sign_in(&w.staff, legacy, "567890").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_token_bound_to_an_operator_acts_as_that_operator_only() {
    let w = world();
    // Ana's token may not try PINs for Ben (not even the right one).
    let a = w.sign_in(&w.ana_token, w.ben, "5678").await;
    assert_eq!(
        (a.status, error_code(&a)),
        (StatusCode::FORBIDDEN, "OPERATOR_MISMATCH")
    );
    let a = call(
        &w.app,
        Method::POST,
        "/api/operator/verify-ticket",
        &w.ana_token,
        Some(json!({ "ticket_id": "T-1", "operator_id": w.ben.0 })),
    )
    .await;
    assert_eq!(
        (a.status, error_code(&a)),
        (StatusCode::FORBIDDEN, "OPERATOR_MISMATCH")
    );
    // Her own sign-in works, and an unbound staff token names whom it signs in.
    assert_eq!(
        w.sign_in(&w.ana_token, w.ana, "1234").await.status,
        StatusCode::OK
    );
    assert_eq!(
        w.sign_in(&w.staff, w.ben, "5678").await.status,
        StatusCode::OK
    );
}

/// A replica receives operators' PIN hashes from the server: one asking for
/// more than the app runs is refused, not run (a malicious server cannot
/// make a gate spend minutes or gigabytes on a sign-in).
#[test]
fn a_synced_pin_hash_beyond_the_bounds_is_refused_not_run() {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let dir = tempfile::tempdir().unwrap();
    let gate = Store::open(dir.path().join("gate.db")).unwrap();
    let info = entrada::sync::protocol::DeviceInfo {
        device_id: 1,
        orq: ORQ.0,
        venue_id: 1,
        name: "Gate".into(),
    };
    gate.pair(&info, "http://127.0.0.1:1", "dev_x").unwrap();
    let hash = |m: u32, t: u32| {
        let params = argon2::Params::new(m, t, 1, None).unwrap();
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(b"1234", &SaltString::from_b64("c2FsdHNhbHRzYWx0").unwrap())
            .unwrap()
            .to_string()
    };
    let now = Utc::now();
    let row = |id: i64, pin_hash: String| {
        json!({
            "seq": id, "entity": "operators", "entity_id": id.to_string(), "op": "upsert",
            "row": { "id": id, "orq": ORQ.0, "role": "operator", "display_name": format!("Op {id}"),
                     "pin_hash": pin_hash, "created_at": "2025-12-01T00:00:00.000Z", "updated_at": "2025-12-01T00:00:00.000Z" }
        })
    };
    let page: entrada::sync::protocol::ChangePage = serde_json::from_value(json!({
        "changes": [row(1, hash(64, 5)), row(2, hash(64, 2)),
                    row(3, "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into())],
        "next_cursor": 3, "has_more": false, "remaining": 0, "server_time": now,
    }))
    .unwrap();
    gate.apply_change_page(&page, None, now).unwrap();
    // t = 5 passes, m = 4 GiB: over the bounds, refused with the right PIN too.
    for id in [1, 3] {
        assert_eq!(
            gate.check_operator_pin(ORQ, OperatorId(id), "1234", now)
                .unwrap_err()
                .code(),
            "PIN_HASH_REFUSED",
            "operator {id}"
        );
    }
    // Within the bounds: checked as usual.
    gate.check_operator_pin(ORQ, OperatorId(2), "1234", now)
        .unwrap();
}

/// A supervisor token bound to one venue (a gate's) creates, changes and
/// removes that venue's slots only; another venue's answer NOT_FOUND and stay
/// as they were. An unbound supervisor token still reaches every venue.
#[tokio::test]
async fn a_venue_bound_supervisor_token_changes_its_venues_slots_only() {
    let w = world();
    let now = Utc::now();
    let other = w.store.add_venue(ORQ, "Annex", "UTC", now).unwrap();
    let other_slot = w
        .store
        .create_slot(
            ORQ,
            &NewSlot {
                venue_id: other.id,
                date: now.date_naive(),
                start_time: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
                end_time: NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
                total_capacity: 10,
            },
            now,
        )
        .unwrap();
    let bound = w
        .store
        .create_token(ORQ, Role::Supervisor, None, Some(w.venue), now)
        .unwrap()
        .0;
    let slot_body = |venue: i64| {
        json!({"venue_id": venue, "date": now.date_naive().to_string(),
               "start_time": "18:00:00", "end_time": "19:00:00", "total_capacity": 5})
    };

    // Another venue: unknown to this token, nothing changes.
    let path = format!("/api/operator/slots/{}", other_slot.id);
    let a = call(
        &w.app,
        Method::PUT,
        &path,
        &bound,
        Some(json!({"total_capacity": 99})),
    )
    .await;
    assert_eq!(
        (a.status, error_code(&a)),
        (StatusCode::NOT_FOUND, "NOT_FOUND")
    );
    let a = call(&w.app, Method::DELETE, &path, &bound, None).await;
    assert_eq!(
        (a.status, error_code(&a)),
        (StatusCode::NOT_FOUND, "NOT_FOUND")
    );
    let a = call(
        &w.app,
        Method::POST,
        "/api/operator/slots/create",
        &bound,
        Some(slot_body(other.id.0)),
    )
    .await;
    assert_eq!(
        (a.status, error_code(&a)),
        (StatusCode::NOT_FOUND, "NOT_FOUND")
    );
    let kept = w.store.get_slot(ORQ, other_slot.id).unwrap();
    assert_eq!((kept.total_capacity, kept.status), (10, other_slot.status));
    assert_eq!(
        w.store
            .list_slots(ORQ, Some(other.id), None, None)
            .unwrap()
            .len(),
        1,
        "no slot was created at the other venue"
    );

    // Its own venue: allowed.
    let a = call(
        &w.app,
        Method::POST,
        "/api/operator/slots/create",
        &bound,
        Some(slot_body(w.venue.0)),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    let own = a.body["id"].as_str().unwrap().to_string();
    let a = call(
        &w.app,
        Method::PUT,
        &format!("/api/operator/slots/{own}"),
        &bound,
        Some(json!({"total_capacity": 7})),
    )
    .await;
    assert_eq!(
        (a.status, a.body["total_capacity"].as_i64()),
        (StatusCode::OK, Some(7))
    );

    // An unbound supervisor token reaches the other venue as before.
    let unbound = w
        .store
        .create_token(ORQ, Role::Supervisor, None, None, now)
        .unwrap()
        .0;
    let a = call(
        &w.app,
        Method::PUT,
        &path,
        &unbound,
        Some(json!({"total_capacity": 12})),
    )
    .await;
    assert_eq!(
        (a.status, a.body["total_capacity"].as_i64()),
        (StatusCode::OK, Some(12))
    );
}

/// A customer session opened before a re-issue would hand out the new signed
/// code: re-issuing ends the sessions on that ticket (and only those). The
/// code and purchase e-mail still open a new one.
#[tokio::test]
async fn reissuing_a_code_ends_the_customer_sessions_on_that_ticket() {
    let w = world();
    let now = Utc::now();
    let t1 = TicketCode::parse("T-1").unwrap();
    let t2 = TicketCode::parse("T-2").unwrap();
    let (mine, ..) = w
        .store
        .customer_session(&t1, "guest@example.com", now)
        .unwrap();
    let (other, ..) = w
        .store
        .customer_session(&t2, "guest@example.com", now)
        .unwrap();
    assert_eq!(
        call(&w.app, Method::GET, "/api/tickets", &mine, None)
            .await
            .status,
        StatusCode::OK
    );

    w.store.reissue_code(ORQ, &t1, now).unwrap();

    let a = call(&w.app, Method::GET, "/api/tickets", &mine, None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{:?}", a.body);
    let a = call(&w.app, Method::GET, "/api/tickets", &other, None).await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "another ticket's session is untouched"
    );
    let (fresh, ..) = w
        .store
        .customer_session(&t1, "guest@example.com", now)
        .unwrap();
    let a = call(&w.app, Method::GET, "/api/tickets", &fresh, None).await;
    assert_eq!(a.status, StatusCode::OK);
}
