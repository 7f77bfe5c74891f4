//! The console's Slots page (issue 16) on PostgreSQL: the same services as
//! `entrada_store`'s slot_board.rs.

use crate::conn::Tx;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use crate::domain::slot_pattern::{plan_pattern, BoardSlot, Outcome, PlannedSlot, WeeklyPattern};
use crate::domain::{NewSlot, Orq, VenueId};
use crate::slots::{slot, SLOT_COLUMNS};
use crate::venues::require_venue;
use crate::{db, ts, PgStore};
use entrada_store::{Result, SlotBoardStore};

fn plan_in(tx: &mut Tx<'_>, orq: Orq, pattern: &WeeklyPattern) -> Result<Vec<(NewSlot, Outcome)>> {
    let venue = require_venue(tx, orq, pattern.venue_id)?;
    let there: Vec<(NaiveDate, NaiveTime, NaiveTime)> = tx
        .query(
            "SELECT date, start_time, end_time FROM reservation_slots \
             WHERE orq = $1 AND venue_id = $2 AND date BETWEEN $3 AND $4",
            &[&orq.0, &pattern.venue_id.0, &pattern.from, &pattern.to],
        )
        .map_err(db)?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    Ok(plan_pattern(pattern.expand(venue.timezone), &there))
}

impl SlotBoardStore for PgStore {
    fn slot_board(&self, orq: Orq, venue: VenueId, month: &str) -> Result<Vec<BoardSlot>> {
        let (first, last) = crate::domain::slot::parse_month(month)?;
        self.read(|tx| {
            require_venue(tx, orq, venue)?;
            tx.query(
                &format!(
                    "SELECT {SLOT_COLUMNS}, \
                       (SELECT count(*) FROM ticket_reservations r \
                         WHERE r.slot_id = reservation_slots.id AND r.status = 'VERIFIED') AS admitted_count \
                     FROM reservation_slots \
                     WHERE orq = $1 AND venue_id = $2 AND date BETWEEN $3 AND $4 \
                     ORDER BY date, start_time"
                ),
                &[&orq.0, &venue.0, &first, &last],
            )
            .map_err(db)?
            .iter()
            .map(|row| {
                Ok(BoardSlot {
                    slot: slot(row)?,
                    admitted_count: row.get("admitted_count"),
                })
            })
            .collect()
        })
    }

    fn apply_slot_pattern(
        &self,
        orq: Orq,
        pattern: &WeeklyPattern,
        create: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<PlannedSlot>> {
        let answer = |planned: Vec<(NewSlot, Outcome)>| {
            planned
                .iter()
                .map(|(s, o)| PlannedSlot::new(s, *o))
                .collect()
        };
        if !create {
            return self.read(|tx| Ok(answer(plan_in(tx, orq, pattern)?)));
        }
        self.write(|tx| {
            let mut planned = plan_in(tx, orq, pattern)?;
            let stmt = tx
                .prepare(
                    "INSERT INTO reservation_slots (id, date, start_time, end_time, venue_id, \
                     total_capacity, booked_count, status, orq, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, 0, 'ACTIVE', $7, $8, $8) \
                     ON CONFLICT (venue_id, date, start_time, orq) DO NOTHING",
                )
                .map_err(db)?;
            for (new, outcome) in &mut planned {
                if *outcome == Outcome::Create {
                    let n = tx
                        .execute(
                            &stmt,
                            &[
                                &uuid::Uuid::now_v7(),
                                &new.date,
                                &new.start_time,
                                &new.end_time,
                                &new.venue_id.0,
                                &new.total_capacity,
                                &orq.0,
                                &ts(now),
                            ],
                        )
                        .map_err(db)?;
                    if n == 0 {
                        // Another instance created it since the plan was read.
                        *outcome = Outcome::Exists;
                    }
                }
            }
            Ok(answer(planned))
        })
    }
}
