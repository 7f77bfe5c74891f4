//! Venue operations (issue 15) on PostgreSQL: the passages occupancy is
//! counted from. The rules are `domain::venue_ops`'s; here only SQL.

use chrono::{DateTime, Utc};
use postgres::GenericClient;

use crate::domain::venue_ops::{day_start, occupancy_level, Occupancy};
use crate::domain::{OperatorId, Orq, TicketCode, VenueId};
use crate::venues::require_venue;
use crate::{db, ts, PgStore};
use entrada_store::{Result, VenueOpsStore};

/// A first entry through the server's own verification.
pub(crate) fn record_entry(
    tx: &mut impl GenericClient,
    orq: Orq,
    venue: VenueId,
    code: &TicketCode,
    operator: OperatorId,
    at: DateTime<Utc>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO passages (orq, venue_id, ticket_code, direction, at, operator_id) \
         VALUES ($1, $2, $3, 'in', $4, $5)",
        &[&orq.0, &venue.0, &code.as_str(), &ts(at), &operator.0],
    )
    .map_err(db)?;
    Ok(())
}

impl VenueOpsStore for PgStore {
    fn occupancy(&self, orq: Orq, venue: VenueId, now: DateTime<Utc>) -> Result<Occupancy> {
        self.read(|tx| {
            let v = require_venue(tx, orq, venue)?;
            let inside: i64 = tx
                .query_one(
                    "SELECT COALESCE(SUM(CASE direction WHEN 'in' THEN 1 ELSE -1 END), 0)::BIGINT \
                     FROM passages WHERE orq = $1 AND venue_id = $2 AND at >= $3",
                    &[&orq.0, &venue.0, &day_start(v.timezone, now)],
                )
                .map_err(db)?
                .get(0);
            let limit = v.gate.ops().occupancy_limit;
            Ok(Occupancy {
                venue_id: venue,
                inside,
                limit,
                level: occupancy_level(inside, limit),
                as_of: Some(now),
            })
        })
    }
}
