//! `entrada gate verify`: the gate's verdict, headless.

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
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let gate = entrada::domain::Gate {
        venue_id: venue.map(VenueId),
        ..Default::default()
    };
    let verdict = match open(&db).and_then(|s| {
        s.scan(
            Orq(orq),
            code.as_bytes(),
            entrada::domain::OperatorId(operator),
            &gate,
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
