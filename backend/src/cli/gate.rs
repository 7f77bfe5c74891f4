//! `entrada gate verify` (in or out), `entrada gate book` (walk-ups) and
//! `entrada gate occupancy`: the gate, headless.

use chrono::{DateTime, Utc};
use entrada::domain::{Orq, VenueId};

use super::{open, DbArg};

/// `entrada gate verify`.
pub(crate) fn verify(
    db: DbArg,
    code: String,
    orq: i64,
    operator: i64,
    venue: Option<i64>,
    direction: entrada::domain::venue_ops::Direction,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let gate = entrada::domain::Gate {
        venue_id: venue.map(VenueId),
        ..Default::default()
    };
    let verdict = match open(&db).and_then(|s| {
        s.pass(
            Orq(orq),
            code.as_bytes(),
            entrada::domain::OperatorId(operator),
            &gate,
            direction,
            now,
        )
        .map_err(anyhow::Error::from)
    }) {
        Ok(v) => v,
        Err(e) => {
            println!(
                "{}",
                serde_json::json!({ "error": { "code": "GATE_ERROR", "message": format!("{e:#}") } })
            );
            std::process::exit(2);
        }
    };
    println!("{}", serde_json::to_string(&verdict)?);
    std::process::exit(if verdict.admit { 0 } else { 1 })
}

/// `entrada gate occupancy`: people inside, as this replica knows it.
pub(crate) fn occupancy(
    db: DbArg,
    orq: i64,
    venue: Option<i64>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let store = open(&db)?;
    let venue = match venue {
        Some(v) => VenueId(v),
        None => VenueId(
            store
                .sync_status()?
                .venue_id
                .ok_or_else(|| anyhow::anyhow!("not paired: name the venue with --venue"))?,
        ),
    };
    let occupancy = store.gate_occupancy(Orq(orq), venue, now)?;
    println!("{}", serde_json::to_string(&occupancy)?);
    Ok(())
}

/// `entrada gate book`: a walk-up booked (online through the server, else
/// from the gate's lease: `entrada::sync::walkup`), admitted.
#[allow(clippy::too_many_arguments)] // one per flag of the command
pub(crate) fn book(
    db: DbArg,
    code: String,
    orq: i64,
    operator: i64,
    venue: Option<i64>,
    offline: bool,
    trust: super::TrustArgs,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let verdict = open(&db).and_then(|s| {
        let venue = match venue {
            Some(v) => Some(VenueId(v)),
            None => s.sync_status()?.venue_id.map(VenueId),
        };
        let gate = entrada::domain::Gate {
            venue_id: venue,
            ..Default::default()
        };
        let operator = entrada::domain::OperatorId(operator);
        if offline {
            return s
                .book_walkup(Orq(orq), code.as_bytes(), operator, &gate, now)
                .map_err(anyhow::Error::from);
        }
        let engine = entrada::sync::client::SyncEngine::with_transport(
            std::sync::Arc::new(s),
            trust.transport()?,
        )?;
        let runtime = tokio::runtime::Runtime::new()?;
        runtime
            .block_on(engine.book_walkup(Orq(orq), code.into_bytes(), operator, gate, now))
            .map_err(anyhow::Error::from)
    });
    let verdict = match verdict {
        Ok(v) => v,
        Err(e) => {
            println!(
                "{}",
                serde_json::json!({ "error": { "code": "GATE_ERROR", "message": format!("{e:#}") } })
            );
            std::process::exit(2);
        }
    };
    println!("{}", serde_json::to_string(&verdict)?);
    std::process::exit(if verdict.admit { 0 } else { 1 })
}

/// `entrada gate checkout`: everyone checked out by the server.
pub(crate) fn checkout(db: DbArg, operator: i64, trust: super::TrustArgs) -> anyhow::Result<()> {
    let done = open(&db).and_then(|s| {
        let engine = entrada::sync::client::SyncEngine::with_transport(
            std::sync::Arc::new(s),
            trust.transport()?,
        )?;
        let runtime = tokio::runtime::Runtime::new()?;
        runtime
            .block_on(engine.checkout_venue(entrada::domain::OperatorId(operator)))
            .map_err(anyhow::Error::from)
    });
    match done {
        Ok(c) => {
            println!("{}", serde_json::to_string(&c)?);
            Ok(())
        }
        Err(e) => {
            println!(
                "{}",
                serde_json::json!({ "error": { "code": "GATE_ERROR", "message": format!("{e:#}") } })
            );
            std::process::exit(2);
        }
    }
}

/// `entrada gate undo`: the operator's own admission taken back, with a reason.
pub(crate) fn undo(
    db: DbArg,
    code: String,
    orq: i64,
    operator: i64,
    reason: String,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let result = open(&db).and_then(|s| {
        let code = entrada::domain::TicketCode::parse(&code)?;
        let gate = entrada::domain::Gate {
            venue_id: s.sync_status()?.venue_id.map(VenueId),
            ..Default::default()
        };
        s.undo_admission(
            Orq(orq),
            &code,
            entrada::domain::OperatorId(operator),
            &reason,
            &gate,
            now,
        )
        .map_err(anyhow::Error::from)
    });
    match result {
        Ok(v) => {
            println!("{}", serde_json::to_string(&v)?);
            Ok(())
        }
        Err(e) => {
            let code = e
                .downcast_ref::<entrada::store::StoreError>()
                .map_or("GATE_ERROR", |e| e.code());
            println!(
                "{}",
                serde_json::json!({ "error": { "code": code, "message": format!("{e:#}") } })
            );
            std::process::exit(2);
        }
    }
}
