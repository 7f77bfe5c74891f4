//! The token cache (`src/token_cache.rs`) across two instances on one
//! database: a revocation is refused at once by the instance that made it,
//! and by the other within that one's TTL; a token revoked behind the
//! instance's back (another process) is still answered from its memory
//! until then, which is the round trip the cache saves.

mod common;

use std::time::{Duration, Instant};

use entrada_domain::staff::StaffChange;
use entrada_domain::{ActivationMode, NewTicket, TicketCode};
use entrada_domain::{OperatorId, Role};
use entrada_store::conformance::{now, ORQ};
use entrada_store::{AdminStore, OperatorStore, SigningStore, TicketStore, TokenStore};
use entrada_store_pg::{PgOptions, PgStore};

const TTL: Duration = Duration::from_millis(1500);

fn instance(url: &str, schema: &str) -> PgStore {
    instance_with_ttl(url, schema, TTL)
}

fn instance_with_ttl(url: &str, schema: &str, ttl: Duration) -> PgStore {
    PgStore::connect(
        url,
        PgOptions {
            token_cache_ttl: ttl,
            ..common::options(schema)
        },
    )
    .unwrap()
}

/// Waits until `ttl` has passed since `since` (and a little more).
fn past(since: Instant, ttl: Duration) {
    let until = since + ttl + Duration::from_millis(50);
    if let Some(left) = until.checked_duration_since(Instant::now()) {
        std::thread::sleep(left);
    }
}

#[test]
fn a_revoked_token_is_refused_at_once_here_and_within_the_ttl_elsewhere() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let (a, b) = (instance(&url, &schema), instance(&url, &schema));
    let (token, p) = a.create_token(ORQ, Role::Admin, None, None, now()).unwrap();
    // Both instances read it (and keep it).
    assert_eq!(
        a.principal_for_token(&token, now()).unwrap(),
        Some(p.clone())
    );
    assert_eq!(
        b.principal_for_token(&token, now()).unwrap(),
        Some(p.clone())
    );
    // After the look-up returned: its entry is in the cache by then.
    let read_on_b = Instant::now();

    assert!(a.revoke_token_id(p.token_id, now()).unwrap());
    // The revoking instance: refused from the moment the call returned.
    assert_eq!(a.principal_for_token(&token, now()).unwrap(), None);
    // The other: within its TTL of the read it cached.
    past(read_on_b, TTL);
    assert_eq!(b.principal_for_token(&token, now()).unwrap(), None);

    // The same for a revocation by its secret (the CLI's `token revoke`).
    let (token, p) = a.create_token(ORQ, Role::Admin, None, None, now()).unwrap();
    assert_eq!(
        b.principal_for_token(&token, now()).unwrap(),
        Some(p.clone())
    );
    assert_eq!(a.principal_for_token(&token, now()).unwrap(), Some(p));
    let read_on_a = Instant::now();
    assert!(b.revoke_token(&token, now()).unwrap());
    assert_eq!(b.principal_for_token(&token, now()).unwrap(), None);
    past(read_on_a, TTL);
    assert_eq!(a.principal_for_token(&token, now()).unwrap(), None);
    drop((a, b));
    drop_schema(&url, &schema);
}

#[test]
fn a_deactivated_operators_token_is_refused_at_once_by_the_instance_that_deactivated_it() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let a = instance(&url, &schema);
    let op = a
        .add_operator(ORQ, Role::Operator, "Gate 1", None, now())
        .unwrap();
    let (token, p) = a
        .create_token(ORQ, Role::Operator, Some(op.id.0), None, now())
        .unwrap();
    assert_eq!(a.principal_for_token(&token, now()).unwrap(), Some(p));
    a.change_operator(
        ORQ,
        OperatorId(op.id.0),
        Role::Operator,
        StaffChange {
            active: Some(false),
            ..StaffChange::default()
        },
        now(),
    )
    .unwrap();
    assert_eq!(a.principal_for_token(&token, now()).unwrap(), None);
    drop(a);
    drop_schema(&url, &schema);
}

#[test]
fn a_reissued_codes_customer_session_is_refused_at_once_by_the_instance_that_reissued_it() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let a = instance(&url, &schema);
    let mut t = NewTicket::plain("T-1", ActivationMode::Immediate).unwrap();
    t.purchase_email = Some("ana@example.com".into());
    a.insert_tickets(ORQ, &[t], now()).unwrap();
    let code = TicketCode::parse("T-1").unwrap();
    a.signed_code(ORQ, &code, now()).unwrap();
    let (session, p, _) = a.customer_session(&code, "ana@example.com", now()).unwrap();
    assert_eq!(a.principal_for_token(&session, now()).unwrap(), Some(p));
    a.reissue_ticket_code(ORQ, &code, None, now()).unwrap();
    assert_eq!(a.principal_for_token(&session, now()).unwrap(), None);
    drop(a);
    drop_schema(&url, &schema);
}

#[test]
fn a_valid_token_is_answered_from_memory_within_the_ttl() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    // A TTL no loaded machine outlasts between the two look-ups: the
    // second must come from memory (expiry is the first test's).
    let a = instance_with_ttl(&url, &schema, Duration::from_secs(60));
    let (token, p) = a.create_token(ORQ, Role::Admin, None, None, now()).unwrap();
    assert_eq!(
        a.principal_for_token(&token, now()).unwrap(),
        Some(p.clone())
    );
    // Revoked behind the instance's back (another process): the cached
    // principal still answers, so the look-up made no round trip (on the old
    // code every look-up read the row: None).
    let mut other = common::client(&url, &schema);
    assert_eq!(
        other
            .execute(
                "UPDATE api_tokens SET revoked_at = now() WHERE id = $1",
                &[&p.token_id]
            )
            .unwrap(),
        1
    );
    assert_eq!(a.principal_for_token(&token, now()).unwrap(), Some(p));
    drop(a);
    drop_schema(&url, &schema);
}

#[test]
fn a_cached_session_is_refused_from_its_expiry_on() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let a = instance(&url, &schema);
    let (link, _) = a.create_console_link(ORQ, None, now()).unwrap();
    let (session, p, expires_at) = a.redeem_console_link(&link, now()).unwrap();
    let before = expires_at - chrono::Duration::seconds(1);
    assert_eq!(a.principal_for_token(&session, before).unwrap(), Some(p));
    assert_eq!(a.principal_for_token(&session, expires_at).unwrap(), None);
    drop(a);
    drop_schema(&url, &schema);
}

#[test]
fn the_cache_alone_answers_only_what_a_look_up_would() {
    // `cached_principal` is what the server asks on its async worker before
    // any blocking call: never a principal the database look-up would refuse.
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let a = instance_with_ttl(&url, &schema, Duration::from_secs(60));
    let (token, p) = a.create_token(ORQ, Role::Admin, None, None, now()).unwrap();
    // Not read yet: nothing in memory (a new token goes to the database).
    assert_eq!(a.cached_principal(&token, now()), None);
    assert_eq!(
        a.principal_for_token(&token, now()).unwrap(),
        Some(p.clone())
    );
    // Read once: answered from memory, with the header's padding trimmed as
    // the look-up trims it.
    assert_eq!(a.cached_principal(&token, now()), Some(p.clone()));
    assert_eq!(
        a.cached_principal(&format!(" {token} "), now()),
        Some(p.clone())
    );
    assert_eq!(a.cached_principal("not-a-token", now()), None);
    // Revoked through this instance: gone at once.
    assert!(a.revoke_token_id(p.token_id, now()).unwrap());
    assert_eq!(a.cached_principal(&token, now()), None);
    // An expiring session: refused from its expiry on, as the look-up is.
    let (link, _) = a.create_console_link(ORQ, None, now()).unwrap();
    let (session, s, expires_at) = a.redeem_console_link(&link, now()).unwrap();
    let before = expires_at - chrono::Duration::seconds(1);
    assert_eq!(
        a.principal_for_token(&session, before).unwrap(),
        Some(s.clone())
    );
    assert_eq!(a.cached_principal(&session, before), Some(s));
    assert_eq!(a.cached_principal(&session, expires_at), None);
    drop(a);
    drop_schema(&url, &schema);
}

#[test]
fn a_store_without_a_cache_answers_nothing_from_memory() {
    // TTL zero: no caching; the server then always takes the look-up.
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let a = instance_with_ttl(&url, &schema, Duration::ZERO);
    let (token, p) = a.create_token(ORQ, Role::Admin, None, None, now()).unwrap();
    assert_eq!(a.principal_for_token(&token, now()).unwrap(), Some(p));
    assert_eq!(a.cached_principal(&token, now()), None);
    drop(a);
    drop_schema(&url, &schema);
}

fn drop_schema(url: &str, schema: &str) {
    let mut admin = postgres::Client::connect(url, postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
}
