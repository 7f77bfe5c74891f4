//! The console's Slots page (issue 16): a venue's month with the admitted
//! count of each slot (one query), and a weekly pattern of slots planned and
//! created in one transaction.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use rusqlite::{params, Transaction};

use super::codec::{self, date, time, ts, SLOT_COLUMNS};
use super::column::Sql;
use super::venues::require_venue;
use super::{Result, Store};
use crate::domain::slot_pattern::{plan_pattern, BoardSlot, Outcome, PlannedSlot, WeeklyPattern};
use crate::domain::{Orq, SlotId, VenueId};

/// The venue's slots between two dates (inclusive): date, start, end.
fn existing(
    tx: &Transaction<'_>,
    orq: Orq,
    venue: VenueId,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(NaiveDate, NaiveTime, NaiveTime)>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {SLOT_COLUMNS} FROM reservation_slots \
         WHERE orq = ?1 AND venue_id = ?2 AND date BETWEEN ?3 AND ?4"
    ))?;
    let rows = stmt.query_map(
        params![Sql(orq), Sql(venue), date(from), date(to)],
        codec::slot,
    )?;
    Ok(rows
        .map(|r| r.map(|s| (s.date, s.start_time, s.end_time)))
        .collect::<rusqlite::Result<_>>()?)
}

fn plan_in(
    tx: &Transaction<'_>,
    orq: Orq,
    pattern: &WeeklyPattern,
) -> Result<Vec<(crate::domain::NewSlot, Outcome)>> {
    let venue = require_venue(tx, orq, pattern.venue_id)?;
    let there = existing(tx, orq, pattern.venue_id, pattern.from, pattern.to)?;
    Ok(plan_pattern(pattern.expand(venue.timezone), &there))
}

impl Store {
    /// Every slot of `venue` in `month` (YYYY-MM) with its admitted count.
    pub fn slot_board(&self, orq: Orq, venue: VenueId, month: &str) -> Result<Vec<BoardSlot>> {
        let (first, last) = crate::domain::slot::parse_month(month)?;
        self.read(|tx| {
            require_venue(tx, orq, venue)?;
            // The admitted count comes from idx_ticket_reservations_slot_status.
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {SLOT_COLUMNS}, \
                   (SELECT count(*) FROM ticket_reservations r \
                     WHERE r.slot_id = reservation_slots.id AND r.status = 'VERIFIED') AS admitted_count \
                 FROM reservation_slots \
                 WHERE orq = ?1 AND venue_id = ?2 AND date BETWEEN ?3 AND ?4 \
                 ORDER BY date, start_time"
            ))?;
            let rows = stmt.query_map(
                params![Sql(orq), Sql(venue), date(first), date(last)],
                |row| {
                    Ok(BoardSlot {
                        slot: codec::slot(row)?,
                        admitted_count: row.get("admitted_count")?,
                    })
                },
            )?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Plans `pattern` against the venue's slots; with `create`, inserts
    /// the new ones in the same transaction. Idempotent: a slot that is
    /// there already is `exists`, never a second row.
    pub fn apply_slot_pattern(
        &self,
        orq: Orq,
        pattern: &WeeklyPattern,
        create: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<PlannedSlot>> {
        if !create {
            return self.read(|tx| {
                Ok(plan_in(tx, orq, pattern)?
                    .iter()
                    .map(|(s, o)| PlannedSlot::new(s, *o))
                    .collect())
            });
        }
        self.write(|tx| {
            let planned = plan_in(tx, orq, pattern)?;
            let mut stmt = tx.prepare_cached(
                "INSERT INTO reservation_slots \
                 (id, date, start_time, end_time, venue_id, total_capacity, booked_count, status, orq, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 'ACTIVE', ?7, ?8, ?8) \
                 ON CONFLICT (venue_id, date, start_time, orq) DO NOTHING",
            )?;
            let mut planned = planned;
            for (slot, outcome) in &mut planned {
                if *outcome == Outcome::Create {
                    let n = stmt.execute(params![
                        Sql(SlotId(uuid::Uuid::now_v7())),
                        date(slot.date),
                        time(slot.start_time),
                        time(slot.end_time),
                        Sql(slot.venue_id),
                        slot.total_capacity,
                        Sql(orq),
                        ts(now)
                    ])?;
                    if n == 0 {
                        // Unreachable inside this write transaction (the plan
                        // saw every slot); kept for safety: never a duplicate.
                        *outcome = Outcome::Exists;
                    }
                }
            }
            Ok(planned
                .iter()
                .map(|(s, o)| PlannedSlot::new(s, *o))
                .collect())
        })
    }
}
