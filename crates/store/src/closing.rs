//! Closing time (issue 15) on SQLite: a supervisor's checkout of everyone
//! inside a venue; `domain::closing` says who gets which exits.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use crate::codec::ts;
use crate::column::{RowExt, Sql};
use crate::domain::closing::{closing_exits, Checkout, CLOSING_REASON};
use crate::domain::venue_ops::{closing_due, day_start};
use crate::domain::{OperatorId, Orq, TicketCode, VenueId};
use crate::venue_ops::set_left_at;
use crate::venues::require_venue;
use crate::{Result, Store};

impl Store {
    /// Checks everyone inside `venue` out at `now`: one exit passage
    /// (reason `CLOSING`, by `operator` if an operator asked) per entry not
    /// matched by an exit today, and each holder marked as left (the gates
    /// learn it by sync). One write transaction: an uploaded passage is
    /// counted before or after it, never half.
    pub fn checkout_venue(
        &self,
        orq: Orq,
        venue: VenueId,
        operator: Option<OperatorId>,
        now: DateTime<Utc>,
    ) -> Result<Checkout> {
        self.write(|tx| checkout_in(tx, orq, venue, operator, now))
    }
}

fn checkout_in(
    tx: &rusqlite::Transaction<'_>,
    orq: Orq,
    venue: VenueId,
    operator: Option<OperatorId>,
    now: DateTime<Utc>,
) -> Result<Checkout> {
    let v = require_venue(tx, orq, venue)?;
    let since = ts(day_start(v.timezone, now));
    let net: Vec<(TicketCode, i64)> = tx
                .prepare_cached(
                    "SELECT ticket_code, SUM(CASE direction WHEN 'in' THEN 1 ELSE -1 END) FROM passages \
                     WHERE orq = ?1 AND venue_id = ?2 AND at >= ?3 GROUP BY ticket_code ORDER BY ticket_code",
                )?
                .query_map(params![Sql(orq), Sql(venue), since], |r| {
                    Ok((r.col(0)?, r.get(1)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
    let mut checked_out = 0;
    for (code, exits) in closing_exits(&net) {
        for _ in 0..exits {
            tx.prepare_cached(
                        "INSERT INTO passages (orq, venue_id, ticket_code, direction, at, operator_id, reason) \
                         VALUES (?1, ?2, ?3, 'out', ?4, ?5, ?6)",
                    )?
                    .execute(params![
                        Sql(orq),
                        Sql(venue),
                        Sql(&code),
                        ts(now),
                        operator.map(|o| o.0),
                        CLOSING_REASON
                    ])?;
        }
        set_left_at(tx, orq, &code, Some(now), now)?;
        checked_out += exits;
    }
    // Every checkout is noted, the server's and a supervisor's:
    // `closing_due` decides whether it was that day's closing.
    tx.prepare_cached(
                "INSERT INTO venue_closings (venue_id, orq, closed_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (venue_id) DO UPDATE SET closed_at = max(closed_at, excluded.closed_at)",
            )?
            .execute(params![Sql(venue), Sql(orq), ts(now)])?;
    let inside = crate::venue_ops::inside_today(tx, orq, venue, &since)?;
    Ok(Checkout {
        venue_id: venue,
        checked_out,
        inside,
        at: now,
    })
}

/// Whether `venue`'s closing is still due, read inside the closing's own
/// write transaction (SQLite's writer is exclusive): a closing another
/// instance or a supervisor committed since the task's first read is seen,
/// so a venue-day is closed once.
fn closing_still_due(
    tx: &rusqlite::Transaction<'_>,
    orq: Orq,
    venue: VenueId,
    now: DateTime<Utc>,
) -> Result<bool> {
    let v = require_venue(tx, orq, venue)?;
    let last: Option<crate::codec::Ts> = tx
        .prepare_cached("SELECT closed_at FROM venue_closings WHERE venue_id = ?1")?
        .query_row(params![Sql(venue)], |r| r.get(0))
        .optional()?;
    Ok(closing_due(
        v.gate.ops(),
        v.timezone,
        now,
        last.map(|t| t.0),
    ))
}

impl Store {
    /// Closing time (the server's periodic task): every venue of every org
    /// whose `closing_time` has come on its clock and that has not been
    /// closed since (`domain::venue_ops::closing_due`: once per venue-day)
    /// checks everyone still inside out, as a supervisor's checkout would
    /// (no operator). Returns the venues where someone was checked out.
    pub fn close_due_venues(&self, now: DateTime<Utc>) -> Result<Vec<Checkout>> {
        let due: Vec<(Orq, VenueId)> = self.read(|tx| {
            let rows: Vec<(Orq, VenueId, Option<DateTime<Utc>>)> = tx
                .prepare_cached(
                    "SELECT v.orq, v.id, c.closed_at FROM venues v \
                     LEFT JOIN venue_closings c ON c.venue_id = v.id \
                     WHERE v.closing_time IS NOT NULL ORDER BY v.id",
                )?
                .query_map([], |r| {
                    let last: Option<crate::codec::Ts> = r.get(2)?;
                    Ok((r.col(0)?, r.col(1)?, last.map(|t| t.0)))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut due = Vec::new();
            for (orq, id, last) in rows {
                let v = require_venue(tx, orq, id)?;
                if closing_due(v.gate.ops(), v.timezone, now, last) {
                    due.push((orq, id));
                }
            }
            Ok(due)
        })?;
        close_each(due, |orq, id| {
            self.write(|tx| {
                if closing_still_due(tx, orq, id, now)? {
                    checkout_in(tx, orq, id, None, now).map(Some)
                } else {
                    Ok(None)
                }
            })
        })
    }
}

/// Closes each due venue with `close_one` (both engines' closing task):
/// every venue is tried, and one that fails (its error returned after the
/// others, for the task to log) does not keep the rest open. Returns the
/// closings that checked someone out.
pub fn close_each(
    due: Vec<(Orq, VenueId)>,
    mut close_one: impl FnMut(Orq, VenueId) -> Result<Option<Checkout>>,
) -> Result<Vec<Checkout>> {
    let (mut closed, mut failed) = (Vec::new(), None);
    for (orq, id) in due {
        match close_one(orq, id) {
            Ok(Some(c)) if c.checked_out > 0 => closed.push(c),
            Ok(_) => {}
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(closed),
    }
}
