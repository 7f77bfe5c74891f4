//! Closing time (issue 15) on PostgreSQL, as SQLite's: a supervisor's
//! checkout of everyone inside a venue; `domain::closing` says who gets
//! which exits. The tickets are locked in code order (one order for every
//! checkout), then the exits and the left marks are written in one commit.

use crate::conn::Tx;
use chrono::{DateTime, Utc};

use crate::domain::closing::{closing_exits, Checkout, CLOSING_REASON};
use crate::domain::venue_ops::day_start;
use crate::domain::{DomainError, OperatorId, Orq, TicketCode, VenueId};
use crate::venue_ops::set_left_at;
use crate::venues::require_venue;
use crate::{corrupt, db, ts, PgStore};
use entrada_store::Result;

const NET_TODAY: &str = "SELECT ticket_code, SUM(CASE direction WHEN 'in' THEN 1 ELSE -1 END)::BIGINT \
     FROM passages WHERE orq = $1 AND venue_id = $2 AND at >= $3 GROUP BY ticket_code ORDER BY ticket_code";

pub(crate) fn checkout_venue(
    store: &PgStore,
    orq: Orq,
    venue: VenueId,
    operator: Option<OperatorId>,
    now: DateTime<Utc>,
) -> Result<Checkout> {
    store.write(|tx| checkout_in(tx, orq, venue, operator, now))
}

fn checkout_in(
    tx: &mut Tx<'_>,
    orq: Orq,
    venue: VenueId,
    operator: Option<OperatorId>,
    now: DateTime<Utc>,
) -> Result<Checkout> {
    {
        let v = require_venue(tx, orq, venue)?;
        let since = ts(day_start(v.timezone, now));
        let inside_codes: Vec<String> = tx
            .query(NET_TODAY, &[&orq.0, &venue.0, &since])
            .map_err(db)?
            .iter()
            .filter(|r| r.get::<_, i64>(1) > 0)
            .map(|r| r.get(0))
            .collect();
        // Lock the holders' tickets (code order), then count again under the
        // locks: an exit that committed meanwhile is not doubled.
        tx.execute(
            "SELECT 1 FROM tickets WHERE orq = $1 AND ticket_code = ANY($2) ORDER BY ticket_code FOR UPDATE",
            &[&orq.0, &inside_codes],
        )
        .map_err(db)?;
        let net: Vec<(TicketCode, i64)> = tx
            .query(NET_TODAY, &[&orq.0, &venue.0, &since])
            .map_err(db)?
            .iter()
            .map(|r| {
                Ok((
                    TicketCode::parse(r.get(0))
                        .map_err(|e: DomainError| corrupt("ticket code", e))?,
                    r.get(1),
                ))
            })
            .collect::<Result<_>>()?;
        let mut checked_out = 0;
        for (code, exits) in closing_exits(&net) {
            for _ in 0..exits {
                tx.execute(
                    "INSERT INTO passages (orq, venue_id, ticket_code, direction, at, operator_id, reason) \
                     VALUES ($1, $2, $3, 'out', $4, $5, $6)",
                    &[&orq.0, &venue.0, &code.as_str(), &ts(now), &operator.map(|o| o.0), &CLOSING_REASON],
                )
                .map_err(db)?;
            }
            set_left_at(tx, orq, &code, Some(now), now)?;
            checked_out += exits;
        }
        // Every checkout is noted, the server's and a supervisor's:
        // `closing_due` decides whether it was that day's closing.
        tx.execute(
            "INSERT INTO venue_closings (venue_id, orq, closed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (venue_id) DO UPDATE SET closed_at = GREATEST(venue_closings.closed_at, EXCLUDED.closed_at)",
            &[&venue.0, &orq.0, &ts(now)],
        )
        .map_err(db)?;
        let inside = crate::venue_ops::inside_today(tx, orq, venue, since)?;
        Ok(Checkout {
            venue_id: venue,
            checked_out,
            inside,
            at: now,
        })
    }
}

/// Whether `venue`'s closing is still due, decided under a lock on the
/// venue's row (READ COMMITTED: the read after the lock sees what committed
/// before it): two instances, or the task and a supervisor's checkout
/// through the task's path, close a venue-day once.
fn closing_still_due(
    tx: &mut Tx<'_>,
    orq: Orq,
    venue: VenueId,
    now: DateTime<Utc>,
) -> Result<bool> {
    tx.execute(
        "SELECT 1 FROM venues WHERE orq = $1 AND id = $2 FOR UPDATE",
        &[&orq.0, &venue.0],
    )
    .map_err(db)?;
    let v = require_venue(tx, orq, venue)?;
    let last: Option<DateTime<Utc>> = tx
        .query_opt(
            "SELECT closed_at FROM venue_closings WHERE venue_id = $1",
            &[&venue.0],
        )
        .map_err(db)?
        .map(|r| r.get(0));
    Ok(crate::domain::venue_ops::closing_due(
        v.gate.ops(),
        v.timezone,
        now,
        last,
    ))
}

/// Closing time (the server's periodic task), as SQLite's: every venue whose
/// `closing_time` has come on its clock and that has not been closed since
/// (`domain::venue_ops::closing_due`: once per venue-day) checks everyone
/// still inside out. Returns the venues where someone was.
pub(crate) fn close_due_venues(store: &PgStore, now: DateTime<Utc>) -> Result<Vec<Checkout>> {
    let due: Vec<(Orq, VenueId)> = store.read(|tx| {
        let rows: Vec<(i64, i64, Option<DateTime<Utc>>)> = tx
            .query(
                "SELECT v.orq, v.id, c.closed_at FROM venues v \
                 LEFT JOIN venue_closings c ON c.venue_id = v.id \
                 WHERE v.closing_time IS NOT NULL ORDER BY v.id",
                &[],
            )
            .map_err(db)?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let mut due = Vec::new();
        for (orq, id, last) in rows {
            let v = require_venue(tx, Orq(orq), VenueId(id))?;
            if crate::domain::venue_ops::closing_due(v.gate.ops(), v.timezone, now, last) {
                due.push((Orq(orq), VenueId(id)));
            }
        }
        Ok(due)
    })?;
    entrada_store::close_each(due, |orq, id| {
        store.write(|tx| {
            if closing_still_due(tx, orq, id, now)? {
                checkout_in(tx, orq, id, None, now).map(Some)
            } else {
                Ok(None)
            }
        })
    })
}
