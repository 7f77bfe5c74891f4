//! Database and organisation administration: `migrate`, `venue`, `token`, `operator`, `org`, `key`, `device`.

use chrono::{DateTime, Utc};
use entrada::domain::{OperatorId, Orq, VenueId};
use entrada::store::Store;

use super::engine::{is_postgres, open_any, shown};
use super::DbArg;

/// `entrada migrate`.
pub(crate) fn migrate(db: DbArg) -> anyhow::Result<()> {
    open_any(&db)?;
    let version = if is_postgres(&db.db) {
        entrada_store_pg::known_schema_version()
    } else {
        Store::known_schema_version()
    };
    eprintln!("{}: schema version {version}", shown(&db.db));
    Ok(())
}

/// `entrada venue add`.
pub(crate) fn venue_add(
    db: DbArg,
    orq: i64,
    name: String,
    timezone: String,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let venue = open_any(&db)?.add_venue(Orq(orq), &name, &timezone, now)?;
    println!("{}", venue.id);
    Ok(())
}

/// `entrada venue list`.
pub(crate) fn venue_list(db: DbArg, orq: i64) -> anyhow::Result<()> {
    for venue in open_any(&db)?.list_venues(Orq(orq))? {
        println!("{}", serde_json::to_string(&venue)?);
    }
    Ok(())
}

/// `entrada venue checkout`: closing time, everyone inside checked out.
pub(crate) fn venue_checkout(
    db: DbArg,
    orq: i64,
    venue: i64,
    operator: Option<i64>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let done = open_any(&db)?.checkout_venue(
        Orq(orq),
        VenueId(venue),
        operator.map(entrada::domain::OperatorId),
        now,
    )?;
    println!("{}", serde_json::to_string(&done)?);
    Ok(())
}

/// `entrada venue take-leases`: a supervisor takes the gates' walk-up places back.
pub(crate) fn venue_take_leases(
    db: DbArg,
    orq: i64,
    venue: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let returned = open_any(&db)?.take_back_leases(Some((Orq(orq), VenueId(venue))), false, now)?;
    println!("{}", serde_json::json!({ "returned": returned }));
    Ok(())
}

/// `entrada token create`.
pub(crate) fn token_create(
    db: DbArg,
    orq: i64,
    role: String,
    user_id: Option<i64>,
    venue: Option<i64>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let role = entrada::domain::Role::parse(&role)?;
    let (token, _) =
        open_any(&db)?.create_token(Orq(orq), role, user_id, venue.map(VenueId), now)?;
    println!("{token}");
    Ok(())
}

/// `entrada admin link`: prints the console's one-time sign-in link.
pub(crate) fn console_link(
    db: DbArg,
    orq: i64,
    operator: Option<i64>,
    url: String,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let (link, expires_at) =
        open_any(&db)?.create_console_link(Orq(orq), operator.map(OperatorId), now)?;
    println!("{}/admin/signin?link={link}", url.trim_end_matches('/'));
    eprintln!("opens one console session; works once, until {expires_at}");
    Ok(())
}

/// `entrada token revoke`.
pub(crate) fn token_revoke(db: DbArg, token: String, now: DateTime<Utc>) -> anyhow::Result<()> {
    if !open_any(&db)?.revoke_token(&token, now)? {
        anyhow::bail!("no live token matches");
    }
    eprintln!("revoked");
    Ok(())
}

/// `entrada operator add`.
pub(crate) fn operator_add(
    db: DbArg,
    orq: i64,
    role: String,
    name: String,
    pin: Option<String>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let role = entrada::domain::Role::parse(&role)?;
    let op = open_any(&db)?.add_operator(Orq(orq), role, &name, pin.as_deref(), now)?;
    println!("{}", op.id);
    Ok(())
}

/// `entrada operator set-pin`.
pub(crate) fn operator_set_pin(
    db: DbArg,
    orq: i64,
    id: i64,
    pin: String,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let op =
        open_any(&db)?.set_operator_pin(Orq(orq), entrada::domain::OperatorId(id), &pin, now)?;
    eprintln!("PIN set for operator {} ({})", op.id, op.display_name);
    Ok(())
}

/// `entrada org show`.
pub(crate) fn org_show(db: DbArg, orq: i64) -> anyhow::Result<()> {
    let settings = open_any(&db)?.org_settings(Orq(orq))?;
    println!("{}", serde_json::to_string(&settings)?);
    Ok(())
}

/// `entrada org set`.
pub(crate) fn org_set(
    db: DbArg,
    orq: i64,
    signed_codes_only: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let settings = open_any(&db)?.set_signed_codes_only(Orq(orq), signed_codes_only, now)?;
    println!("{}", serde_json::to_string(&settings)?);
    Ok(())
}

/// `entrada key list`.
pub(crate) fn key_list(db: DbArg, orq: i64) -> anyhow::Result<()> {
    for key in open_any(&db)?.public_keys(Orq(orq))? {
        println!("{}", serde_json::to_string(&key)?);
    }
    Ok(())
}

/// `entrada key rotate`.
pub(crate) fn key_rotate(db: DbArg, orq: i64, now: DateTime<Utc>) -> anyhow::Result<()> {
    println!("{}", open_any(&db)?.rotate_signing_key(Orq(orq), now)?);
    Ok(())
}

/// `entrada key retire`.
pub(crate) fn key_retire(db: DbArg, orq: i64, kid: u32, now: DateTime<Utc>) -> anyhow::Result<()> {
    open_any(&db)?.retire_signing_key(Orq(orq), kid, now)?;
    eprintln!("key {kid} retired");
    Ok(())
}

/// `entrada device add`.
pub(crate) fn device_add(
    db: DbArg,
    orq: i64,
    venue: i64,
    name: String,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let (token, _) = open_any(&db)?.add_device(Orq(orq), VenueId(venue), &name, now)?;
    println!("{token}");
    Ok(())
}

/// `entrada device revoke`.
pub(crate) fn device_revoke(
    db: DbArg,
    orq: i64,
    device_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    open_any(&db)?.revoke_device(Orq(orq), device_id, now)?;
    eprintln!("device {device_id} revoked");
    Ok(())
}
