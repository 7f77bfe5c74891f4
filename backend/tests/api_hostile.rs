//! Hostile input on every endpoint of the real router, in-process, against a
//! real SQLite file: whatever arrives, the server answers below 500, every
//! error is the JSON error shape `{"error":{"code","message",...}}`, and the
//! database invariants survive (booked_count equals the live reservations and
//! never exceeds the capacity).
//!
//! `API_HOSTILE_CASES=20000 cargo test -p entrada --test api_hostile` runs a
//! longer fuzz than the default.

use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, Method, Request, StatusCode, Uri};
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use entrada::api::{router, AppState, BODY_LIMIT, SMALL_BODY_LIMIT};
use entrada::domain::{
    ActivationMode, Contact, NewSlot, NewTicket, OperatorId, Orq, Role, TicketCode, VenueId,
};
use entrada::store::{ReserveRequest, Store};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tower::ServiceExt;

const ORQ: Orq = Orq(1);
const OTHER_ORQ: Orq = Orq(2);

// ---------------------------------------------------------------- fixture

/// A seeded database and the router over it.
struct World {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    app: Router,
    /// Authorization header values: every role, plus revoked/other-tenant.
    tokens: Vec<(&'static str, String)>,
    venue: VenueId,
    other_venue: VenueId,
    operator: OperatorId,
    /// Ticket codes: customer 1's, customer 2's, deferred, other tenant's.
    codes: Vec<String>,
    signed: Vec<String>,
    /// A future date (the seeded slots' day) as YYYY-MM-DD, and its month.
    day: String,
    month: String,
    /// Slot and reservation ids, growing as the run creates more.
    live: Arc<Live>,
}

#[derive(Default)]
struct Live {
    slots: Mutex<Vec<String>>,
    reservations: Mutex<Vec<String>>,
}

impl Live {
    fn pick(list: &Mutex<Vec<String>>, i: usize) -> String {
        let list = list.lock().unwrap();
        if list.is_empty() {
            uuid::Uuid::nil().to_string()
        } else {
            list[i % list.len()].clone()
        }
    }
}

fn world(lookups_per_minute: u32) -> World {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hostile.db");
    let store = Store::open(&db).unwrap();
    let now: DateTime<Utc> = Utc::now();
    let venue = store.add_venue(ORQ, "Prado", "Europe/Madrid", now).unwrap();
    let other = store.add_venue(OTHER_ORQ, "Other", "UTC", now).unwrap();
    let day = (now + Duration::days(40)).date_naive();
    let day_s = day.format("%Y-%m-%d").to_string();
    let month = day.format("%Y-%m").to_string();

    // Small slots fill up (SLOT_FULL), big ones keep taking reservations.
    let mut slots = Vec::new();
    for d in 0..4 {
        let date = (day + Duration::days(d)).format("%Y-%m-%d").to_string();
        for (start, end, cap) in [
            ("09:00", "10:00", 1),
            ("10:00", "11:00", 2),
            ("11:00", "12:00", 3),
            ("12:00", "13:00", 5),
            ("13:00", "18:00", 1000),
            ("18:00", "20:00", 1000),
        ] {
            let new = NewSlot::validate(venue.id.0, &date, start, end, Some(cap)).unwrap();
            slots.push(store.create_slot(ORQ, &new, now).unwrap().id);
        }
    }
    let new = NewSlot::validate(other.id.0, &day_s, "09:00", "10:00", Some(5)).unwrap();
    let other_slot = store.create_slot(OTHER_ORQ, &new, now).unwrap().id;

    let ticket = |code: String, user: Option<i64>, mode| {
        let mut t = NewTicket::plain(&code, mode).unwrap();
        t.user_id = user;
        t
    };
    let mut mine = Vec::new();
    for i in 0..60 {
        mine.push(ticket(
            format!("HC1-{i}"),
            Some(1),
            ActivationMode::Immediate,
        ));
        mine.push(ticket(
            format!("HC2-{i}"),
            Some(2),
            ActivationMode::Immediate,
        ));
    }
    for i in 0..10 {
        mine.push(ticket(
            format!("HD1-{i}"),
            Some(1),
            ActivationMode::Deferred,
        ));
    }
    store.insert_tickets(ORQ, &mine, now).unwrap();
    let theirs: Vec<_> = (0..5)
        .map(|i| ticket(format!("HO-{i}"), Some(1), ActivationMode::Immediate))
        .collect();
    store.insert_tickets(OTHER_ORQ, &theirs, now).unwrap();
    let mut codes: Vec<String> = mine.iter().map(|t| t.ticket_code.to_string()).collect();
    codes.extend(theirs.iter().map(|t| t.ticket_code.to_string()));

    // No PIN: a PIN check is an Argon2 hash, seconds in a debug build.
    let op = store
        .add_operator(ORQ, Role::Operator, "Gate One", None, now)
        .unwrap();

    let live = Arc::new(Live::default());
    {
        let contact = Contact::validate("john@example.com", "+12025551234").unwrap();
        let mut res = live.reservations.lock().unwrap();
        for (i, who) in ["HC1-0", "HC1-1", "HC2-0", "HC2-1"].iter().enumerate() {
            let r = store
                .reserve_slot(
                    ORQ,
                    &ReserveRequest {
                        ticket: TicketCode::parse(who).unwrap(),
                        slot_id: slots[4 - (i % 2)],
                        contact: contact.clone(),
                    },
                    now,
                )
                .unwrap();
            res.push(r.id.to_string());
        }
        // Today's all-day slot with reservations: these tickets can enter, so
        // verify-ticket admits (and then answers ALREADY_VERIFIED).
        let today = now
            .with_timezone(&chrono_tz::Europe::Madrid)
            .date_naive()
            .format("%Y-%m-%d")
            .to_string();
        let new = NewSlot::validate(venue.id.0, &today, "00:00", "23:59:59", Some(100)).unwrap();
        let today_slot = store.create_slot(ORQ, &new, now).unwrap().id;
        slots.push(today_slot);
        for who in (10..20).flat_map(|i| [format!("HC1-{i}"), format!("HC2-{i}")]) {
            let req = ReserveRequest {
                ticket: TicketCode::parse(&who).unwrap(),
                slot_id: today_slot,
                contact: contact.clone(),
            };
            res.push(store.reserve_slot(ORQ, &req, now).unwrap().id.to_string());
        }
        let r = store
            .reserve_slot(
                OTHER_ORQ,
                &ReserveRequest {
                    ticket: TicketCode::parse("HO-0").unwrap(),
                    slot_id: other_slot,
                    contact,
                },
                now,
            )
            .unwrap();
        res.push(r.id.to_string());
        let mut s = live.slots.lock().unwrap();
        s.extend(slots.iter().map(|s| s.to_string()));
        s.push(other_slot.to_string());
    }

    let token = |orq, role, user, venue| store.create_token(orq, role, user, venue, now).unwrap().0;
    // Real signed codes (and, in the generator, tampered ones) for /scan.
    let signed: Vec<String> = ["HC1-5", "HC2-5", "HD1-0"]
        .iter()
        .map(|c| {
            store
                .signed_code(ORQ, &TicketCode::parse(c).unwrap(), now)
                .unwrap()
        })
        .collect();
    let device = store
        .add_device(ORQ, venue.id, "Gate device", now)
        .unwrap()
        .0;
    let other_device = store
        .add_device(OTHER_ORQ, other.id, "Their device", now)
        .unwrap()
        .0;
    let revoked = token(ORQ, Role::Admin, None, None);
    store.revoke_token(&revoked, now).unwrap();
    let tokens = vec![
        ("customer1", token(ORQ, Role::Customer, Some(1), None)),
        ("customer2", token(ORQ, Role::Customer, Some(2), None)),
        (
            "operator",
            token(ORQ, Role::Operator, Some(op.id.0), Some(venue.id)),
        ),
        ("operator-unbound", token(ORQ, Role::Operator, None, None)),
        ("supervisor", token(ORQ, Role::Supervisor, None, None)),
        ("admin", token(ORQ, Role::Admin, None, None)),
        ("other-admin", token(OTHER_ORQ, Role::Admin, None, None)),
        ("revoked", revoked),
        ("device", device),
        ("other-device", other_device),
    ];

    let app = router(
        AppState::new(Arc::new(store), lookups_per_minute),
        None::<std::path::PathBuf>,
    );
    World {
        _dir: dir,
        db,
        app,
        tokens,
        venue: venue.id,
        other_venue: other.id,
        operator: op.id,
        codes,
        signed,
        day: day_s,
        month,
        live,
    }
}

impl World {
    fn bearer(&self, role: &str) -> String {
        let t = &self.tokens.iter().find(|(r, _)| *r == role).unwrap().1;
        format!("Bearer {t}")
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Sends one request through the router; returns status, headers, body.
async fn send(app: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

/// Checks the error shape; `Err` says what is wrong.
fn error_shape(body: &[u8]) -> Result<String, String> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| format!("error body is not JSON ({e}): {:?}", lossy(body)))?;
    let err = v
        .get("error")
        .and_then(|e| e.as_object())
        .ok_or_else(|| format!("no \"error\" object: {v}"))?;
    let code = err
        .get("code")
        .and_then(|c| c.as_str())
        .ok_or_else(|| format!("error.code is not a string: {v}"))?;
    if code.is_empty() {
        return Err(format!("error.code is empty: {v}"));
    }
    if !err.get("message").is_some_and(|m| m.is_string()) {
        return Err(format!("error.message is not a string: {v}"));
    }
    Ok(code.to_string())
}

fn lossy(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(400)]).into_owned();
    if b.len() > 400 {
        format!("{s}… ({} bytes)", b.len())
    } else {
        s
    }
}

// ---------------------------------------------------------------- routes

#[derive(Debug, Clone, Copy, PartialEq)]
enum Param {
    None,
    Slot,
    Ticket,
    Reservation,
    Venue,
    /// Anything after `/api/` (the catch-all) or `/` (the fallback).
    Rest,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Query {
    None,
    SlotList,
    Available,
    TicketList,
    Changes,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BodyKind {
    None,
    CreateSlot,
    UpdateSlot,
    TicketCode,
    CreateReservation,
    Reschedule,
    Verify,
    SignIn,
    CreateVenue,
    CreateTickets,
    Csv,
    CreateOperator,
    CreateToken,
    Scan,
    Events,
    CreateDevice,
    VenueGrace,
}

struct Route {
    /// `{}` stands for the path parameter.
    path: &'static str,
    methods: &'static [&'static str],
    param: Param,
    query: Query,
    body: BodyKind,
}

const fn r(
    path: &'static str,
    methods: &'static [&'static str],
    param: Param,
    query: Query,
    body: BodyKind,
) -> Route {
    Route {
        path,
        methods,
        param,
        query,
        body,
    }
}

/// Every route of `entrada::api::router`, plus the catch-all and fallback.
const ROUTES: &[Route] = &[
    r(
        "/api/health",
        &["GET"],
        Param::None,
        Query::None,
        BodyKind::None,
    ),
    r(
        "/api/openapi.json",
        &["GET"],
        Param::None,
        Query::None,
        BodyKind::None,
    ),
    r(
        "/api/operator/slots/create",
        &["POST"],
        Param::None,
        Query::None,
        BodyKind::CreateSlot,
    ),
    r(
        "/api/operator/slots",
        &["GET"],
        Param::None,
        Query::SlotList,
        BodyKind::None,
    ),
    r(
        "/api/operator/slots/{}",
        &["GET"],
        Param::Slot,
        Query::None,
        BodyKind::None,
    ),
    r(
        "/api/operator/slots/{}",
        &["DELETE"],
        Param::Slot,
        Query::None,
        BodyKind::None,
    ),
    r(
        "/api/operator/slots/{}",
        &["PUT"],
        Param::Slot,
        Query::None,
        BodyKind::UpdateSlot,
    ),
    r(
        "/api/reservation-slots/available",
        &["GET"],
        Param::None,
        Query::Available,
        BodyKind::None,
    ),
    r(
        "/api/tickets",
        &["GET"],
        Param::None,
        Query::None,
        BodyKind::None,
    ),
    r(
        "/api/tickets/validate",
        &["POST"],
        Param::None,
        Query::None,
        BodyKind::TicketCode,
    ),
    r(
        "/api/tickets/{}/activate",
        &["POST"],
        Param::Ticket,
        Query::None,
        BodyKind::None,
    ),
    r(
        "/api/tickets/{}/status",
        &["GET"],
        Param::Ticket,
        Query::None,
        BodyKind::None,
    ),
    r(
        "/api/reservations/create",
        &["POST"],
        Param::None,
        Query::None,
        BodyKind::CreateReservation,
    ),
    r(
        "/api/reservations/{}",
        &["GET", "DELETE"],
        Param::Reservation,
        Query::None,
        BodyKind::None,
    ),
    r(
        "/api/reservations/{}",
        &["PUT"],
        Param::Reservation,
        Query::None,
        BodyKind::Reschedule,
    ),
    r(
        "/api/operator/validate-ticket",
        &["POST"],
        Param::None,
        Query::None,
        BodyKind::TicketCode,
    ),
    r(
        "/api/operator/verify-ticket",
        &["POST"],
        Param::None,
        Query::None,
        BodyKind::Verify,
    ),
    r(
        "/api/operator/sign-in",
        &["POST"],
        Param::None,
        Query::None,
        BodyKind::SignIn,
    ),
    r(
        "/api/admin/venues",
        &["POST"],
        Param::None,
        Query::None,
        BodyKind::CreateVenue,
    ),
    r(
        "/api/admin/venues",
        &["GET"],
        Param::None,
        Query::None,
        BodyKind::None,
    ),
    r(
        "/api/admin/venues/{}",
        &["GET"],
        Param::Venue,
        Query::None,
        BodyKind::None,
    ),
    r(
        "/api/admin/venues/{}",
        &["PATCH"],
        Param::Venue,
        Query::None,
        BodyKind::VenueGrace,
    ),
    r(
        "/api/admin/tickets",
        &["POST"],
        Param::None,
        Query::None,
        BodyKind::CreateTickets,
    ),
    r(
        "/api/admin/tickets",
        &["GET"],
        Param::None,
        Query::TicketList,
        BodyKind::None,
    ),
    r(
        "/api/admin/tickets/import",
        &["POST"],
        Param::None,
        Query::None,
        BodyKind::Csv,
    ),
    r(
        "/api/admin/operators",
        &["POST"],
        Param::None,
        Query::None,
        BodyKind::CreateOperator,
    ),
    r(
        "/api/admin/operators",
        &["GET"],
        Param::None,
        Query::None,
        BodyKind::None,
    ),
    r(
        "/api/admin/tokens",
        &["POST"],
        Param::None,
        Query::None,
        BodyKind::CreateToken,
    ),
    r(
        "/api/operator/scan",
        &["POST"],
        Param::None,
        Query::None,
        BodyKind::Scan,
    ),
    r(
        "/api/operator/signing-keys",
        &["GET"],
        Param::None,
        Query::None,
        BodyKind::None,
    ),
    r(
        "/api/admin/tickets/{}/signed-code",
        &["GET"],
        Param::Ticket,
        Query::None,
        BodyKind::None,
    ),
    r(
        "/api/sync/whoami",
        &["GET"],
        Param::None,
        Query::None,
        BodyKind::None,
    ),
    r(
        "/api/sync/changes",
        &["GET"],
        Param::None,
        Query::Changes,
        BodyKind::None,
    ),
    r(
        "/api/sync/events",
        &["POST"],
        Param::None,
        Query::None,
        BodyKind::Events,
    ),
    r(
        "/api/admin/devices",
        &["POST"],
        Param::None,
        Query::None,
        BodyKind::CreateDevice,
    ),
    r(
        "/api/operator/conflicts",
        &["GET"],
        Param::None,
        Query::None,
        BodyKind::None,
    ),
    r(
        "/api/{}",
        &["GET", "POST", "PUT", "DELETE"],
        Param::Rest,
        Query::None,
        BodyKind::None,
    ),
    r(
        "/{}",
        &["GET", "POST"],
        Param::Rest,
        Query::None,
        BodyKind::None,
    ),
];

// ---------------------------------------------------------------- generated requests

/// A piece of a body or path: raw bytes, or a reference to a live id that
/// is resolved when the request is sent (ids created during the run count).
#[derive(Debug, Clone)]
enum Piece {
    Raw(Vec<u8>),
    /// A live slot id, JSON-quoted when `quoted`.
    Slot(usize, bool),
    Reservation(usize),
}

#[derive(Debug, Clone)]
enum Auth {
    None,
    Role(usize),
    Raw(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Hostile {
    route: usize,
    method: String,
    param: Vec<Piece>,
    query: Option<String>,
    auth: Auth,
    content_type: Option<Vec<u8>>,
    body: Vec<Piece>,
}

fn raw(s: impl Into<Vec<u8>>) -> Piece {
    Piece::Raw(s.into())
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn pct(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

const SQL: &[&str] = &[
    "'; DROP TABLE tickets;--",
    "\" OR 1=1 --",
    "1; DELETE FROM reservation_slots",
    "' UNION SELECT token_hash FROM api_tokens --",
    "%' OR '%'='",
    "HC1-2'--",
];

/// Hostile strings (not yet JSON-quoted).
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(SQL).prop_map(str::to_string),
        2 => proptest::sample::select(vec![
            "", " ", "\u{0}", "\u{feff}", "2025-02-30", "2025-13-01", "0000-00-00", "24:00",
            "9:00", "23:59:60", "12:00:00.5", "-1", "1e309", "NaN", "null", "true",
            "TKT-2025-ABC123", "HC1-3", "hc1-3", "HC1-3 ", " HC1-3", "../../etc/passwd",
            "<script>alert(1)</script>", "😀", "ﾟ", "\u{202e}evil", "a\nb", "%00", "%FF",
            "ACTIVE", "CLOSED", "FULL", "admin", "ADMIN", "customer", "Europe/Madrid",
            "Mars/Olympus", "john@example.com", "+12025551234", "00000000-0000-0000-0000-000000000000",
        ])
        .prop_map(str::to_string),
        2 => "\\PC{0,40}",
        1 => (1usize..70_000).prop_map(|n| "x".repeat(n)),
        1 => any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
    ]
}

/// JSON number/literal texts that overflow, underflow or are not JSON at all.
const RAW_TOKENS: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-0",
    "-0.0",
    "0.0",
    "1",
    "-1",
    "1.5",
    "2147483648",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "1e309",
    "-1e309",
    "1e-400",
    "1E400",
    "123456789012345678901234567890",
    "NaN",
    "Infinity",
    "-Infinity",
    "01",
    "+1",
    ".5",
    "1.",
    "0x10",
    "\"\\ud800\"",
    "\"\\udc00\\ud800\"",
    "\"\\u0000\"",
    "\"\\uFFFF\"",
    "{}",
    "[]",
    "[null]",
    "{\"\":null}",
    "\"",
    "'single'",
    "undefined",
];

/// A hostile JSON value as text (sometimes not valid JSON).
fn hostile_json() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        4 => proptest::sample::select(RAW_TOKENS).prop_map(str::to_string),
        3 => hostile_string().prop_map(|s| quote(&s)),
        2 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|f| f.to_string()),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((field_name(vec![]), inner), 0..5).prop_map(|kv| {
                let body: Vec<String> = kv
                    .iter()
                    .map(|(k, v)| format!("{}:{v}", quote(k)))
                    .collect();
                format!("{{{}}}", body.join(","))
            }),
        ]
    })
}

fn field_name(known: Vec<&'static str>) -> BoxedStrategy<String> {
    let mut names = known;
    names.extend([
        "unknown",
        "__proto__",
        "ticket_id",
        "slot_id",
        "status",
        "role",
    ]);
    prop_oneof![
        4 => proptest::sample::select(names).prop_map(str::to_string),
        1 => hostile_string(),
    ]
    .boxed()
}

fn deep_nesting() -> impl Strategy<Value = String> {
    (1usize..20_000, any::<bool>(), any::<bool>()).prop_map(|(n, arrays, closed)| {
        let (open, close) = if arrays { ("[", "]") } else { ("{\"a\":", "}") };
        let mut s = open.repeat(n);
        s.push('1');
        if closed {
            s.push_str(&close.repeat(n));
        }
        s
    })
}

/// A field value for one kind of field: usually plausible, sometimes hostile.
#[derive(Clone, Copy)]
enum Kind {
    SlotId,
    Ticket,
    NewTicket,
    Email,
    Phone,
    Date,
    Start,
    End,
    Capacity,
    Grace,
    VenueId,
    Role,
    OperatorId,
    Pin,
    Name,
    Timezone,
    SlotStatus,
    UserId,
    Mode,
    ExpiresAt,
    Entitlements,
    ScanPayload,
    Uuid,
    EventType,
    EventPayload,
    DateTime,
    Events,
}

#[derive(Clone)]
struct Ctx {
    /// false: plausible values only (requests that mostly succeed).
    hostile: bool,
    codes: Vec<String>,
    signed: Vec<String>,
    day: String,
    month: String,
    venues: Vec<i64>,
    operator: i64,
    roles: usize,
}

fn plausible(kind: Kind, c: &Ctx) -> BoxedStrategy<Vec<Piece>> {
    let q = |v: Vec<&'static str>| {
        proptest::sample::select(v)
            .prop_map(|s| vec![raw(quote(s))])
            .boxed()
    };
    match kind {
        Kind::SlotId => (0usize..1000)
            .prop_map(|i| vec![Piece::Slot(i, true)])
            .boxed(),
        Kind::Ticket => proptest::sample::select(c.codes.clone())
            .prop_map(|s| vec![raw(quote(&s))])
            .boxed(),
        Kind::NewTicket => any::<u32>()
            .prop_map(|n| vec![raw(quote(&format!("NEW-{n}")))])
            .boxed(),
        Kind::Email => q(vec![
            "john@example.com",
            "a@b.co",
            "x.y+z@example.org",
            "not-an-email",
            "a@@b",
        ]),
        Kind::Phone => q(vec![
            "+12025551234",
            "+34911234567",
            "+442071234567",
            "12345",
            "+",
        ]),
        Kind::Date => {
            let days: Vec<String> = {
                let d = chrono::NaiveDate::parse_from_str(&c.day, "%Y-%m-%d").unwrap();
                (0..4)
                    .map(|i| (d + Duration::days(i)).format("%Y-%m-%d").to_string())
                    .chain(["2020-01-01".into(), "2025-02-30".into()])
                    .collect()
            };
            proptest::sample::select(days)
                .prop_map(|s| vec![raw(quote(&s))])
                .boxed()
        }
        Kind::Start => q(vec![
            "06:00", "07:15", "08:00", "20:00:00", "00:00", "24:00", "9:00", "23:59:60",
        ]),
        Kind::End => q(vec![
            "21:00", "21:30:00", "22:45", "23:59:59", "07:00", "25:00",
        ]),
        Kind::Capacity => {
            proptest::sample::select(vec![1i64, 2, 3, 10, 200, 1_000_000, 1_000_001, 0, -1])
                .prop_map(|n| vec![raw(n.to_string())])
                .boxed()
        }
        Kind::Grace => proptest::sample::select(vec![0i64, 10, 30, 240, 241, -1, i64::MAX])
            .prop_map(|n| vec![raw(n.to_string())])
            .boxed(),
        Kind::VenueId => proptest::sample::select(c.venues.clone())
            .prop_map(|n| vec![raw(n.to_string())])
            .boxed(),
        Kind::Role => q(vec!["customer", "operator", "supervisor", "admin", "root"]),
        Kind::OperatorId => proptest::sample::select(vec![c.operator, 0, -1, 424242])
            .prop_map(|n| vec![raw(n.to_string())])
            .boxed(),
        // Badly shaped PINs only: a well-formed one costs an Argon2 hash.
        Kind::Pin => q(vec!["", "12", "abcd", "123456789", "12 4"]),
        Kind::Name => q(vec!["Gate Two", "", "   ", "Ω"]),
        Kind::Timezone => q(vec!["Europe/Madrid", "UTC", "Mars/Olympus", ""]),
        Kind::SlotStatus => q(vec!["ACTIVE", "CLOSED", "FULL", "active", "OPEN"]),
        Kind::UserId => proptest::sample::select(vec![1i64, 2, 3])
            .prop_map(|n| vec![raw(n.to_string())])
            .boxed(),
        Kind::Mode => q(vec!["immediate", "deferred", "later"]),
        Kind::ExpiresAt => q(vec![
            "2099-01-01T00:00:00Z",
            "2000-01-01T00:00:00Z",
            "2025-02-30T00:00:00Z",
            "tomorrow",
        ]),
        Kind::ScanPayload => {
            let mut payloads: Vec<String> = c.codes.iter().take(8).cloned().collect();
            for sc in &c.signed {
                payloads.push(sc.clone());
                // Tampered: one character changed, truncated, doubled prefix.
                let mut t = sc.clone().into_bytes();
                let mid = t.len() / 2;
                t[mid] = if t[mid] == b'A' { b'B' } else { b'A' };
                payloads.push(String::from_utf8(t).unwrap());
                payloads.push(sc[..sc.len() - 3].to_string());
                payloads.push(format!("ENT1.{sc}"));
            }
            payloads.extend(["ENT1.", "ENT1...", "ENT1.AAAA.BBBB", "ENT2.x"].map(String::from));
            proptest::sample::select(payloads)
                .prop_map(|s| vec![raw(quote(&s))])
                .boxed()
        }
        Kind::Uuid => any::<u128>()
            .prop_map(|n| vec![raw(quote(&uuid::Uuid::from_u128(n).to_string()))])
            .boxed(),
        Kind::EventType => q(vec![
            "verify",
            "slot_change",
            "activate",
            "delete_everything",
        ]),
        Kind::EventPayload => object(
            &[
                ("ticket_code", Kind::Ticket),
                ("slot_id", Kind::SlotId),
                ("total_capacity", Kind::Capacity),
                ("status", Kind::SlotStatus),
            ],
            c,
        ),
        Kind::DateTime => {
            let now = Utc::now();
            let times = vec![
                now.to_rfc3339(),
                (now - Duration::minutes(5)).to_rfc3339(),
                (now + Duration::days(3650)).to_rfc3339(),
                "1970-01-01T00:00:00Z".into(),
                "2025-02-30T00:00:00Z".into(),
                "+275760-09-13T00:00:00Z".into(),
                "now".into(),
            ];
            proptest::sample::select(times)
                .prop_map(|s| vec![raw(quote(&s))])
                .boxed()
        }
        Kind::Events => {
            let event = object(
                &[
                    ("event_id", Kind::Uuid),
                    ("kind", Kind::EventType),
                    ("payload", Kind::EventPayload),
                    ("operator_id", Kind::OperatorId),
                    ("device_time", Kind::DateTime),
                ],
                c,
            );
            prop::collection::vec(event, 0..4)
                .prop_map(|items| {
                    let mut out = vec![raw("[")];
                    for (i, it) in items.into_iter().enumerate() {
                        if i > 0 {
                            out.push(raw(","));
                        }
                        out.extend(it);
                    }
                    out.push(raw("]"));
                    out
                })
                .boxed()
        }
        Kind::Entitlements => {
            proptest::sample::select(vec!["{}", "{\"adults\":2}", "[1,2]", "\"x\""])
                .prop_map(|s| vec![raw(s)])
                .boxed()
        }
    }
}

fn field_value(kind: Kind, c: &Ctx) -> BoxedStrategy<Vec<Piece>> {
    if !c.hostile {
        return plausible(kind, c);
    }
    prop_oneof![
        7 => plausible(kind, c),
        3 => hostile_json().prop_map(|s| vec![raw(s)]),
    ]
    .boxed()
}

/// A JSON object built from the route's fields: each present, hostile or
/// missing; sometimes with unknown or duplicated fields.
fn object(fields: &'static [(&'static str, Kind)], c: &Ctx) -> BoxedStrategy<Vec<Piece>> {
    let names: Vec<&'static str> = fields.iter().map(|(n, _)| *n).collect();
    let per_field: Vec<BoxedStrategy<Option<Vec<Piece>>>> = fields
        .iter()
        .map(|(name, kind)| {
            let name = *name;
            prop_oneof![
                12 => field_value(*kind, c).prop_map(move |v| {
                    let mut p = vec![raw(format!("{}:", quote(name)))];
                    p.extend(v);
                    Some(p)
                }),
                u32::from(c.hostile) => Just(None),
            ]
            .boxed()
        })
        .collect();
    let extra = prop_oneof![
        9 => Just(None),
        u32::from(c.hostile) => (field_name(names), hostile_json())
            .prop_map(|(k, v)| Some(vec![raw(format!("{}:{v}", quote(&k)))])),
    ];
    (per_field, extra)
        .prop_map(|(fs, extra)| {
            let mut out = vec![raw("{")];
            let mut first = true;
            for f in fs.into_iter().chain(std::iter::once(extra)).flatten() {
                if !first {
                    out.push(raw(","));
                }
                first = false;
                out.extend(f);
            }
            out.push(raw("}"));
            out
        })
        .boxed()
}

fn csv_body(c: &Ctx) -> BoxedStrategy<Vec<Piece>> {
    if !c.hostile {
        let row = (any::<u32>(), 1i64..4, any::<bool>()).prop_map(|(n, user, deferred)| {
            let mode = if deferred { "deferred" } else { "immediate" };
            format!("CSV-{n},7,8,{user},{mode},,")
        });
        return prop::collection::vec(row, 1..5)
            .prop_map(|rows| {
                let header =
                    "ticket_code,order_id,product_id,user_id,activation_mode,expires_at,entitlements";
                vec![raw(format!("{header}\n{}\n", rows.join("\n")))]
            })
            .boxed();
    }
    let cell = prop_oneof![
        3 => any::<u32>().prop_map(|n| format!("CSV-{n}")),
        2 => hostile_string(),
        1 => proptest::sample::select(c.codes.clone()),
        1 => Just("\"unterminated".to_string()),
    ];
    let row = prop::collection::vec(cell, 1..8).prop_map(|cells| cells.join(","));
    let header = prop_oneof![
        4 => Just(
            "ticket_code,order_id,product_id,user_id,activation_mode,expires_at,entitlements"
                .to_string()
        ),
        1 => Just("ticket_code".to_string()),
        1 => hostile_string(),
    ];
    (header, prop::collection::vec(row, 0..6))
        .prop_map(|(h, rows)| vec![raw(format!("{h}\n{}", rows.join("\n")))])
        .boxed()
}

fn template(kind: BodyKind, c: &Ctx) -> BoxedStrategy<Vec<Piece>> {
    use Kind as K;
    let obj = |fields: &'static [(&'static str, Kind)]| object(fields, c);
    match kind {
        BodyKind::None => Just(vec![]).boxed(),
        BodyKind::CreateSlot => obj(&[
            ("venue_id", K::VenueId),
            ("date", K::Date),
            ("start_time", K::Start),
            ("end_time", K::End),
            ("total_capacity", K::Capacity),
        ]),
        BodyKind::UpdateSlot => obj(&[("total_capacity", K::Capacity), ("status", K::SlotStatus)]),
        BodyKind::TicketCode => obj(&[("ticket_code", K::Ticket)]),
        BodyKind::CreateReservation => obj(&[
            ("ticket_id", K::Ticket),
            ("slot_id", K::SlotId),
            ("customer_email", K::Email),
            ("customer_phone", K::Phone),
        ]),
        BodyKind::Reschedule => obj(&[("slot_id", K::SlotId)]),
        BodyKind::Verify => obj(&[("ticket_id", K::Ticket), ("operator_id", K::OperatorId)]),
        BodyKind::SignIn => obj(&[("operator_id", K::OperatorId), ("pin", K::Pin)]),
        BodyKind::CreateVenue => obj(&[("name", K::Name), ("timezone", K::Timezone)]),
        BodyKind::CreateTickets => {
            let one = obj(&[
                ("ticket_code", K::NewTicket),
                ("order_id", K::UserId),
                ("product_id", K::UserId),
                ("user_id", K::UserId),
                ("activation_mode", K::Mode),
                ("expires_at", K::ExpiresAt),
                ("entitlements", K::Entitlements),
            ]);
            prop_oneof![
                one.clone(),
                prop::collection::vec(one, 0..4).prop_map(|items| {
                    let mut out = vec![raw("[")];
                    for (i, it) in items.into_iter().enumerate() {
                        if i > 0 {
                            out.push(raw(","));
                        }
                        out.extend(it);
                    }
                    out.push(raw("]"));
                    out
                }),
            ]
            .boxed()
        }
        BodyKind::Csv => csv_body(c),
        BodyKind::Scan => obj(&[("payload", K::ScanPayload)]),
        BodyKind::Events => obj(&[("events", K::Events), ("sent_at", K::DateTime)]),
        BodyKind::CreateDevice => obj(&[("name", K::Name), ("venue_id", K::VenueId)]),
        BodyKind::VenueGrace => obj(&[
            ("early_grace_minutes", K::Grace),
            ("late_grace_minutes", K::Grace),
        ]),
        BodyKind::CreateOperator => obj(&[
            ("role", K::Role),
            ("display_name", K::Name),
            ("pin", K::Pin),
        ]),
        BodyKind::CreateToken => obj(&[
            ("role", K::Role),
            ("user_id", K::UserId),
            ("venue_id", K::VenueId),
        ]),
    }
}

fn body(kind: BodyKind, c: &Ctx) -> BoxedStrategy<Vec<Piece>> {
    prop_oneof![
        12 => template(kind, c),
        2 => hostile_json().prop_map(|s| vec![raw(s)]),
        1 => deep_nesting().prop_map(|s| vec![raw(s)]),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| vec![raw(b)]),
        // Valid JSON around invalid UTF-8.
        1 => prop::collection::vec(0x80u8..=0xff, 1..8).prop_map(|b| {
            let mut v = b"{\"ticket_code\":\"".to_vec();
            v.extend(b);
            v.extend(b"\"}");
            vec![raw(v)]
        }),
        1 => Just(vec![]),
        // Truncated templates: valid prefix, cut anywhere.
        2 => (template(kind, c), any::<prop::sample::Index>()).prop_map(|(t, i)| {
            let mut flat = Vec::new();
            for p in t {
                match p {
                    Piece::Raw(b) => flat.extend(b),
                    _ => flat.extend(b"\"00000000-0000-0000-0000-000000000000\""),
                }
            }
            let cut = if flat.is_empty() { 0 } else { i.index(flat.len()) };
            flat.truncate(cut);
            vec![raw(flat)]
        }),
    ]
    .boxed()
}

fn path_param(p: Param, c: &Ctx) -> BoxedStrategy<Vec<Piece>> {
    let hostile = prop_oneof![
        3 => hostile_string().prop_map(|s| vec![raw(pct(s.as_bytes()))]),
        2 => prop::collection::vec(any::<u8>(), 1..24).prop_map(|b| vec![raw(pct(&b))]),
        1 => proptest::sample::select(vec![
            "%FF%FE", "%00", "%C0%AF", "..%2F..%2Fetc%2Fpasswd", "%2F", "%", "%zz", "a%2", "-1",
            "9223372036854775808", "1e309", "%20", "HC1-1%20", "HC1-1;drop", "*",
        ])
        .prop_map(|s| vec![raw(s)]),
        1 => (1usize..9000).prop_map(|n| vec![raw("a".repeat(n))]),
    ];
    match p {
        Param::None => Just(vec![]).boxed(),
        Param::Slot => prop_oneof![
            6 => (0usize..1000).prop_map(|i| vec![Piece::Slot(i, false)]),
            4 => hostile,
        ]
        .boxed(),
        Param::Reservation => prop_oneof![
            6 => (0usize..1000).prop_map(|i| vec![Piece::Reservation(i)]),
            1 => any::<u128>().prop_map(|n| vec![raw(uuid::Uuid::from_u128(n).to_string())]),
            4 => hostile,
        ]
        .boxed(),
        Param::Ticket => prop_oneof![
            6 => proptest::sample::select(c.codes.clone()).prop_map(|s| vec![raw(pct(s.as_bytes()))]),
            4 => hostile,
        ]
        .boxed(),
        Param::Venue => prop_oneof![
            6 => proptest::sample::select(c.venues.clone()).prop_map(|n| vec![raw(n.to_string())]),
            4 => hostile,
        ]
        .boxed(),
        Param::Rest => prop_oneof![
            2 => proptest::sample::select(vec![
                "", "nope", "health/x", "tickets/a/b/c", "operator/slots/create/x", "index.html",
                "admin", "../etc/passwd", "%FF/%FE", "a//b", "api", "reservations",
            ])
            .prop_map(|s| vec![raw(s)]),
            1 => hostile,
        ]
        .boxed(),
    }
}

fn query(q: Query, c: &Ctx) -> BoxedStrategy<Option<String>> {
    if !c.hostile {
        let valid = match q {
            Query::None => vec![None],
            Query::SlotList => vec![
                None,
                Some(format!("venue_id={}&date_from={}", c.venues[0], c.day)),
                Some(format!("date_from={}&date_to={}", c.day, c.day)),
            ],
            Query::Available => vec![
                Some(format!("month={}", c.month)),
                Some(format!("month={}&orq=1&venue_id={}", c.month, c.venues[0])),
            ],
            Query::TicketList => vec![
                None,
                Some("limit=5".into()),
                Some("status=activated&limit=1000&after=HC1-1".into()),
            ],
            Query::Changes => vec![None, Some("cursor=0&limit=50".into())],
        };
        return proptest::sample::select(valid).boxed();
    }
    let keys: Vec<&'static str> = match q {
        Query::None => vec!["x", "debug"],
        Query::SlotList => vec!["venue_id", "date_from", "date_to"],
        Query::Available => vec!["month", "orq", "venue_id"],
        Query::TicketList => vec!["status", "activation_status", "user_id", "limit", "after"],
        Query::Changes => vec!["cursor", "limit"],
    };
    let month = c.month.clone();
    let day = c.day.clone();
    let value = prop_oneof![
        3 => proptest::sample::select(vec![
            month, day, "1".into(), "2".into(), "0".into(), "-1".into(), "1000".into(),
            "1001".into(), "9223372036854775808".into(), "1e309".into(), "-0".into(),
            "2025-02-30".into(), "2025-13".into(), "2025-1".into(), "99999-12".into(),
            "0000-01".into(), "minted".into(), "active".into(), "HC1-5".into(), "".into(),
            "true".into(),
        ])
        .prop_map(|s| pct(s.as_bytes())),
        2 => hostile_string().prop_map(|s| pct(s.as_bytes())),
        1 => prop::collection::vec(any::<u8>(), 0..16).prop_map(|b| pct(&b)),
        1 => proptest::sample::select(vec!["%FF", "%", "%zz", "a+b", "%00", "[]", "%5B%5D"])
            .prop_map(str::to_string),
    ];
    let key = prop_oneof![
        6 => proptest::sample::select(keys).prop_map(str::to_string),
        1 => hostile_string().prop_map(|s| pct(s.as_bytes())),
    ];
    let pair = (key, value, any::<bool>()).prop_map(
        |(k, v, with_eq)| {
            if with_eq {
                format!("{k}={v}")
            } else {
                k
            }
        },
    );
    prop_oneof![
        2 => Just(None),
        5 => prop::collection::vec(pair, 0..5).prop_map(|ps| Some(ps.join("&"))),
        1 => proptest::sample::select(vec!["&&==", "=", "&", "%FF%FE=%FF", "a=1&a=2"])
            .prop_map(|s| Some(s.to_string())),
    ]
    .boxed()
}

fn auth(roles: usize) -> BoxedStrategy<Auth> {
    prop_oneof![
        2 => Just(Auth::None),
        8 => (0..roles).prop_map(Auth::Role),
        3 => prop_oneof![
            proptest::sample::select(vec![
                "Bearer ", "Bearer", "bearer", "Basic dXNlcjpwYXNz", "Bearer ent_",
                "Bearer ent_0000000000000000000000000000000000000000000000000000000000000000",
                "Bearer '; DROP TABLE api_tokens;--", "Token abc", "BEARER abc", "Bearer  a b c",
            ])
            .prop_map(|s| s.as_bytes().to_vec()),
            (1usize..400).prop_map(|n| format!("Bearer {}", "a".repeat(n)).into_bytes()),
            // obs-text bytes (non-UTF-8) in the header value
            prop::collection::vec(0x80u8..=0xff, 1..16).prop_map(|b| {
                let mut v = b"Bearer ".to_vec();
                v.extend(b);
                v
            }),
            "[ -~]{0,60}".prop_map(String::into_bytes),
        ]
        .prop_map(Auth::Raw),
    ]
    .boxed()
}

fn content_type() -> BoxedStrategy<Option<Vec<u8>>> {
    prop_oneof![
        10 => Just(Some(b"application/json".to_vec())),
        2 => Just(None),
        3 => proptest::sample::select(vec![
            "text/plain", "application/json; charset=utf-8", "application/jsonx",
            "text/csv", "application/vnd.api+json", "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded", "APPLICATION/JSON", "*/*", "",
            "application/json; charset=latin1", "json",
        ])
        .prop_map(|s| Some(s.as_bytes().to_vec())),
        1 => prop::collection::vec(0x80u8..=0xff, 1..8).prop_map(Some),
    ]
    .boxed()
}

/// How often a route is drawn: the reservation routes, whose writes the
/// invariants are about, more than the rest.
fn weight(route: &Route) -> u32 {
    match (route.body, route.param) {
        (BodyKind::CreateReservation, _) => 8,
        (_, Param::Reservation) => 3,
        _ => 1,
    }
}

const OTHER_METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT", "FOO", "get",
    "PROPFIND",
];

fn hostile_request(c: &Ctx) -> BoxedStrategy<Hostile> {
    let roles = c.roles;
    let per_route: Vec<(u32, BoxedStrategy<Hostile>)> = ROUTES
        .iter()
        .enumerate()
        .map(|(i, route)| {
            let method = prop_oneof![
                8 => proptest::sample::select(route.methods).prop_map(str::to_string),
                2 => proptest::sample::select(OTHER_METHODS).prop_map(str::to_string),
            ];
            let strategy = (
                method,
                path_param(route.param, c),
                query(route.query, c),
                auth(roles),
                content_type(),
                body(route.body, c),
            )
                .prop_map(
                    move |(method, param, query, auth, content_type, body)| Hostile {
                        route: i,
                        method,
                        param,
                        query,
                        auth,
                        content_type,
                        body,
                    },
                )
                .boxed();
            (weight(route), strategy)
        })
        .collect();
    let calm = Ctx {
        hostile: false,
        ..c.clone()
    };
    let plausible_per_route: Vec<(u32, BoxedStrategy<Hostile>)> = ROUTES
        .iter()
        .enumerate()
        .map(|(i, route)| {
            let param = match route.param {
                Param::Slot => (0usize..1000)
                    .prop_map(|i| vec![Piece::Slot(i, false)])
                    .boxed(),
                Param::Reservation => (0usize..1000)
                    .prop_map(|i| vec![Piece::Reservation(i)])
                    .boxed(),
                Param::Ticket => proptest::sample::select(c.codes.clone())
                    .prop_map(|s| vec![raw(s)])
                    .boxed(),
                Param::Venue => proptest::sample::select(c.venues.clone())
                    .prop_map(|n| vec![raw(n.to_string())])
                    .boxed(),
                other => path_param(other, c),
            };
            let weight = if route.methods == ["DELETE"] && route.param == Param::Slot {
                1 // deleting slots would starve everything else of slots
            } else {
                4 * weight(route)
            };
            let strategy = (
                proptest::sample::select(route.methods),
                param,
                query(route.query, &calm),
                0..roles,
                template(route.body, &calm),
            )
                .prop_map(move |(method, param, query, role, body)| Hostile {
                    route: i,
                    method: method.to_string(),
                    param,
                    query,
                    auth: Auth::Role(role),
                    content_type: Some(b"application/json".to_vec()),
                    body,
                })
                .boxed();
            (weight, strategy)
        })
        .collect();
    prop_oneof![
        7 => proptest::strategy::Union::new_weighted(per_route),
        3 => proptest::strategy::Union::new_weighted(plausible_per_route),
    ]
    .boxed()
}

impl World {
    fn ctx(&self) -> Ctx {
        Ctx {
            hostile: true,
            codes: self.codes.clone(),
            signed: self.signed.clone(),
            day: self.day.clone(),
            month: self.month.clone(),
            venues: vec![self.venue.0, self.other_venue.0, 0, -1, 999],
            operator: self.operator.0,
            roles: self.tokens.len(),
        }
    }

    fn resolve(&self, pieces: &[Piece]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in pieces {
            match p {
                Piece::Raw(b) => out.extend_from_slice(b),
                Piece::Slot(i, quoted) => {
                    let id = Live::pick(&self.live.slots, *i);
                    out.extend(if *quoted { quote(&id) } else { id }.into_bytes());
                }
                Piece::Reservation(i) => {
                    out.extend(Live::pick(&self.live.reservations, *i).into_bytes())
                }
            }
        }
        out
    }

    /// Builds the request; `None` when the generated parts cannot form an
    /// HTTP request at all (the http crate refuses the URI or method).
    fn build(&self, h: &Hostile) -> Option<(String, Request<Body>)> {
        let route = &ROUTES[h.route];
        let param = String::from_utf8(self.resolve(&h.param)).ok()?;
        let mut uri = route.path.replace("{}", &param);
        if let Some(q) = &h.query {
            uri.push('?');
            uri.push_str(q);
        }
        // A URI the http crate refuses (e.g. `%` raw in a query) is sent
        // fully percent-encoded to the catch-all instead.
        let uri = Uri::try_from(uri.as_str())
            .or_else(|_| Uri::try_from(format!("/api/{}", pct(uri.as_bytes()))))
            .ok()?;
        let method = Method::from_bytes(h.method.as_bytes()).ok()?;
        let mut b = Request::builder().method(method.clone()).uri(uri.clone());
        match &h.auth {
            Auth::None => {}
            Auth::Role(i) => b = b.header(header::AUTHORIZATION, self.bearer(self.tokens[*i].0)),
            Auth::Raw(v) => {
                if let Ok(v) = HeaderValue::from_bytes(v) {
                    b = b.header(header::AUTHORIZATION, v);
                }
            }
        }
        if let Some(ct) = &h.content_type {
            if let Ok(v) = HeaderValue::from_bytes(ct) {
                b = b.header(header::CONTENT_TYPE, v);
            }
        }
        let body = self.resolve(&h.body);
        let auth = match &h.auth {
            Auth::Role(i) => self.tokens[*i].0.to_string(),
            other => format!("{other:?}"),
        };
        let desc = format!(
            "{method} {uri} auth={auth} content-type={:?} body={}",
            h.content_type.as_deref().map(String::from_utf8_lossy),
            lossy(&body)
        );
        Some((desc, b.body(Body::from(body)).ok()?))
    }
}

#[derive(Default)]
struct Stats {
    sent: usize,
    unbuildable: usize,
    by_status: std::collections::BTreeMap<u16, usize>,
    /// Per route: requests sent, 2xx answers.
    by_route: std::collections::BTreeMap<usize, (usize, usize)>,
    /// Error codes of the reservation requests, to see what they hit.
    reserve_codes: std::collections::BTreeMap<String, usize>,
    reservations_created: usize,
    slots_created: usize,
}

fn check(
    desc: &str,
    method: &Method,
    status: StatusCode,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<(), TestCaseError> {
    prop_assert!(
        status.as_u16() < 500,
        "5xx: {desc}\n→ {status} {}",
        lossy(body)
    );
    if status.as_u16() >= 400 {
        if method == Method::HEAD && body.is_empty() {
            let ct = headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes());
            prop_assert!(
                ct.is_some_and(|v| v.starts_with(b"application/json")),
                "HEAD error without JSON content type: {desc}\n→ {status} {ct:?}"
            );
        } else if let Err(why) = error_shape(body) {
            return Err(TestCaseError::fail(format!(
                "not the JSON error shape: {desc}\n→ {status}: {why}"
            )));
        }
    }
    Ok(())
}

/// Every slot: booked_count == live reservations, <= capacity, and FULL
/// exactly when an open slot has no place left.
fn assert_invariants(db: &std::path::Path) -> usize {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT s.id, s.booked_count, s.total_capacity, s.status, \
             (SELECT COUNT(*) FROM ticket_reservations r WHERE r.slot_id = s.id AND r.status != 'CANCELLED') \
             FROM reservation_slots s",
        )
        .unwrap();
    let rows: Vec<(String, i64, i64, String, i64)> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (id, booked, total, status, live) in &rows {
        assert_eq!(booked, live, "slot {id}: booked_count != live reservations");
        assert!(
            booked <= total,
            "slot {id}: booked {booked} > capacity {total}"
        );
        if status != "CLOSED" {
            assert_eq!(
                status == "FULL",
                booked >= total,
                "slot {id}: status {status} with {booked}/{total}"
            );
        }
    }
    // The tables the SQL-metacharacter strings named are all still there.
    for table in [
        "tickets",
        "reservation_slots",
        "ticket_reservations",
        "api_tokens",
    ] {
        let n: i64 = conn
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        assert!(n > 0, "table {table} is empty");
    }
    rows.len()
}

fn cases() -> u32 {
    std::env::var("API_HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8000)
}

#[test]
fn hostile_requests_on_every_route_get_json_errors_below_500_and_keep_invariants() {
    let started = std::time::Instant::now();
    let w = world(0);
    let rt = runtime();
    let strategy = hostile_request(&w.ctx());
    let stats = Mutex::new(Stats::default());
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..Config::default()
    });
    let result = runner.run(&strategy, |h| {
        let Some((desc, req)) = w.build(&h) else {
            stats.lock().unwrap().unbuildable += 1;
            return Ok(());
        };
        let method = req.method().clone();
        let (status, headers, body) = rt.block_on(send(&w.app, req));
        {
            let mut s = stats.lock().unwrap();
            s.sent += 1;
            *s.by_status.entry(status.as_u16()).or_default() += 1;
            let r = s.by_route.entry(h.route).or_default();
            r.0 += 1;
            r.1 += usize::from(status.is_success());
        }
        check(&desc, &method, status, &headers, &body)?;
        if ROUTES[h.route].body == BodyKind::CreateReservation && method == Method::POST {
            let code = error_shape(&body).unwrap_or_else(|_| status.to_string());
            *stats.lock().unwrap().reserve_codes.entry(code).or_default() += 1;
        }
        // Remember the ids the run creates, so later requests use them.
        if status == StatusCode::CREATED {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let path = ROUTES[h.route].path;
            if let Some(id) = v.get("id").and_then(|i| i.as_str()) {
                if path == "/api/reservations/create" {
                    w.live.reservations.lock().unwrap().push(id.to_string());
                    stats.lock().unwrap().reservations_created += 1;
                } else if path == "/api/operator/slots/create" {
                    w.live.slots.lock().unwrap().push(id.to_string());
                    stats.lock().unwrap().slots_created += 1;
                }
            }
        }
        Ok(())
    });
    let s = stats.into_inner().unwrap();
    eprintln!(
        "{} requests ({} unbuildable) in {:.1?}; statuses {:?}; created {} reservations, {} slots; \
         POST /api/reservations/create answered {:?}",
        s.sent,
        s.unbuildable,
        started.elapsed(),
        s.by_status,
        s.reservations_created,
        s.slots_created,
        s.reserve_codes
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    let succeeded: Vec<&str> = s
        .by_route
        .iter()
        .filter(|(_, (_, ok))| *ok > 0)
        .map(|(i, _)| ROUTES[*i].path)
        .collect();
    eprintln!(
        "{} of {} routes answered 2xx at least once: {succeeded:?}",
        succeeded.len(),
        ROUTES.len()
    );
    let slots = assert_invariants(&w.db);
    assert!(slots > 0);
    // The run did real work, not only refusals: the invariants saw writes.
    assert!(s.sent as u32 >= cases() * 9 / 10, "{} sent", s.sent);
    assert!(s.by_status.keys().any(|c| (200..300).contains(c)));
    if cases() >= 1000 {
        for (i, route) in ROUTES.iter().enumerate() {
            let sent = s.by_route.get(&i).map_or(0, |r| r.0);
            assert!(
                sent > 0,
                "{} {:?} was never tried",
                route.path,
                route.methods
            );
        }
    }
    if cases() >= 1000 {
        assert!(
            s.reservations_created > 0,
            "no reservation was ever created"
        );
        assert!(
            s.by_status.get(&409).is_some_and(|n| *n > 0),
            "no conflict (SLOT_FULL, ALREADY_RESERVED, …) was ever hit"
        );
    }
}

// ---------------------------------------------------------------- deterministic

fn reservation_body(w: &World) -> String {
    let slot = Live::pick(&w.live.slots, 4);
    format!(
        r#"{{"ticket_id":"HC1-50","slot_id":"{slot}","customer_email":"john@example.com","customer_phone":"+12025551234"}}"#
    )
}

fn post(w: &World, path: &str, ct: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut b = Request::post(path).header(header::AUTHORIZATION, w.bearer("customer1"));
    if let Some(ct) = ct {
        b = b.header(header::CONTENT_TYPE, ct);
    }
    b.body(body.into()).unwrap()
}

fn assert_json_error(status: StatusCode, body: &[u8], want: StatusCode, code: &str) {
    assert_eq!(status, want, "{}", lossy(body));
    assert_eq!(error_shape(body).unwrap(), code, "{}", lossy(body));
}

/// Small routes take small bodies: a body just over 64 KiB is refused before
/// it is parsed (an unauthenticated JSON array of that size would otherwise
/// be parsed into a tree many times its size), while the bulk routes still
/// take it.
#[test]
fn body_over_64_kib_is_413_json_on_small_routes_only() {
    let w = world(0);
    let rt = runtime();
    let padded = |body: String, to: usize| {
        let mut b = body.into_bytes();
        b.truncate(b.len() - 1);
        b.extend(std::iter::repeat_n(b' ', to.saturating_sub(b.len() + 1)));
        b.push(b'}');
        b
    };
    let big = padded(reservation_body(&w), SMALL_BODY_LIMIT + 1);
    assert!(big.len() > SMALL_BODY_LIMIT);
    for path in [
        "/api/reservations/create",
        "/api/customer/session",
        "/api/operator/sign-in",
    ] {
        let req = post(&w, path, Some("application/json"), big.clone());
        let (status, _, body) = rt.block_on(send(&w.app, req));
        assert_json_error(
            status,
            &body,
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
        );
    }
    // The bulk import takes a body of that size: whatever it answers, it is
    // not "too large".
    let req = post(
        &w,
        "/api/admin/tickets/import",
        Some("application/json"),
        big,
    );
    let (status, _, body) = rt.block_on(send(&w.app, req));
    assert_ne!(status, StatusCode::PAYLOAD_TOO_LARGE, "{}", lossy(&body));
}

#[test]
fn body_over_8_mib_is_413_json() {
    let w = world(0);
    let rt = runtime();
    let mut big = reservation_body(&w).into_bytes();
    big.truncate(big.len() - 1);
    big.extend(std::iter::repeat_n(b' ', BODY_LIMIT + 1 - big.len()));
    big.push(b'}');
    assert!(big.len() > 8 * 1024 * 1024);
    for path in ["/api/reservations/create", "/api/admin/tickets/import"] {
        let req = post(&w, path, Some("application/json"), big.clone());
        let (status, _, body) = rt.block_on(send(&w.app, req));
        assert_json_error(
            status,
            &body,
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
        );
    }
    // Nothing was reserved by the oversized request.
    assert_invariants(&w.db);
    let conn = rusqlite::Connection::open(&w.db).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM ticket_reservations WHERE ticket_id = 'HC1-50'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn wrong_method_is_405_json() {
    let w = world(0);
    let rt = runtime();
    for (method, path) in [
        (Method::DELETE, "/api/health"),
        (Method::GET, "/api/reservations/create"),
        (Method::PATCH, "/api/operator/slots/abc"),
        (Method::PUT, "/api/admin/tokens"),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, w.bearer("admin"))
            .body(Body::empty())
            .unwrap();
        let (status, _, body) = rt.block_on(send(&w.app, req));
        assert_json_error(
            status,
            &body,
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
        );
    }
}

#[test]
fn unknown_route_is_404_json() {
    let w = world(0);
    let rt = runtime();
    for path in ["/api/nope", "/api/tickets/a/b/c", "/api/", "/nope", "/"] {
        let req = Request::get(path).body(Body::empty()).unwrap();
        let (status, _, body) = rt.block_on(send(&w.app, req));
        assert_json_error(status, &body, StatusCode::NOT_FOUND, "ROUTE_NOT_FOUND");
    }
}

#[test]
fn non_json_content_type_is_415_json() {
    let w = world(0);
    let rt = runtime();
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let req = post(&w, "/api/reservations/create", ct, reservation_body(&w));
        let (status, _, body) = rt.block_on(send(&w.app, req));
        assert_json_error(
            status,
            &body,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        );
    }
    // The same body with the right content type is accepted: the 415 was
    // about the header, not the body.
    let req = post(
        &w,
        "/api/reservations/create",
        Some("application/json"),
        reservation_body(&w),
    );
    let (status, _, body) = rt.block_on(send(&w.app, req));
    assert_eq!(status, StatusCode::CREATED, "{}", lossy(&body));
}

#[test]
fn body_that_never_finishes_is_408_json() {
    let w = world(0);
    let rt = runtime();
    // The client sends the headers and then nothing more (slow loris): the
    // server's 15 s request timeout answers.
    let (_keep_open, never) = http_body_util::channel::Channel::<Bytes, std::io::Error>::new(1);
    let req = Request::post("/api/reservations/create")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::new(never))
        .unwrap();
    let started = std::time::Instant::now();
    let (status, _, body) = rt.block_on(send(&w.app, req));
    assert!(started.elapsed() >= std::time::Duration::from_secs(14));
    assert_json_error(
        status,
        &body,
        StatusCode::REQUEST_TIMEOUT,
        "REQUEST_TIMEOUT",
    );
}
