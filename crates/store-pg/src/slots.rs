//! Time slots.

use crate::conn::Columns;
use crate::conn::Tx;
use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::slot::{plan_slot_change, plan_slot_removal};
use crate::domain::{
    DomainError, NewSlot, Orq, Slot, SlotChange, SlotId, SlotRemoval, SlotStatus, VenueId,
};
use crate::venues::require_venue;
use crate::{corrupt, db, on_constraint, ts, PgStore};
use entrada_store::{Result, SlotStore};

pub(crate) const SLOT_COLUMNS: &str = "id, date, start_time, end_time, venue_id, total_capacity, \
     booked_count, available_count, status, orq, created_at, updated_at";

pub(crate) fn slot(row: &impl Columns) -> Result<Slot> {
    Ok(Slot {
        id: SlotId(row.get("id")),
        date: row.get("date"),
        start_time: row.get("start_time"),
        end_time: row.get("end_time"),
        venue_id: VenueId(row.get("venue_id")),
        total_capacity: row.get("total_capacity"),
        booked_count: row.get("booked_count"),
        available_count: row.get("available_count"),
        status: SlotStatus::parse(row.get("status")).map_err(|e| corrupt("slot status", e))?,
        orq: Orq(row.get("orq")),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

/// The slot, locked for the rest of the transaction when `lock`: the row
/// lock is what serializes writers of one slot across server instances
/// (removal takes the stronger FOR UPDATE itself: it deletes the row).
pub(crate) fn load_slot(tx: &mut Tx<'_>, orq: Orq, id: SlotId, lock: bool) -> Result<Option<Slot>> {
    tx.query_opt(&load_slot_sql(lock), &[&id.0, &orq.0])
        .map_err(db)?
        .as_ref()
        .map(slot)
        .transpose()
}

/// `load_slot`'s SQL (also run, unlocked, inside a verify batch: its plan
/// is tested with the batch's, `gate::verify_batch_sql`). The org is
/// checked as `orq + 0`, which no index serves, so the slot is found by its
/// id whatever the plan: with `orq = $2`, the batch's generic plan on a
/// deployment with one slot (analyzed) started from `(orq, date)` with the
/// org alone as its condition.
pub(crate) fn load_slot_sql(lock: bool) -> String {
    format!(
        "SELECT {SLOT_COLUMNS} FROM reservation_slots WHERE id = $1 AND orq + 0 = $2{}",
        // NO KEY UPDATE: it does not conflict with the KEY SHARE lock a
        // reservation row's foreign key takes on its slot, so a writer that
        // inserted its reservation first and locks the slot last cannot
        // deadlock with another doing the same (FOR UPDATE would: both
        // holding KEY SHARE, both waiting to upgrade).
        if lock { " FOR NO KEY UPDATE" } else { "" }
    )
}

pub(crate) fn require_slot(tx: &mut Tx<'_>, orq: Orq, id: SlotId, lock: bool) -> Result<Slot> {
    load_slot(tx, orq, id, lock)?.ok_or_else(|| DomainError::NotFound { entity: "slot" }.into())
}

/// A capacity or status change as the domain plans it, in the caller's
/// write transaction (the slot row locked).
pub(crate) fn update_slot_in(
    tx: &mut Tx<'_>,
    orq: Orq,
    id: SlotId,
    change: SlotChange,
    now: DateTime<Utc>,
) -> Result<Slot> {
    let current = require_slot(tx, orq, id, true)?;
    let (total, status) = plan_slot_change(&current, change)?;
    let row = tx
        .query_one(
            &format!(
                "UPDATE reservation_slots SET total_capacity = $1, status = $2, updated_at = $3 \
                 WHERE id = $4 RETURNING {SLOT_COLUMNS}"
            ),
            &[&total, &status.as_str(), &ts(now), &id.0],
        )
        .map_err(db)?;
    slot(&row)
}

impl SlotStore for PgStore {
    fn create_slot(&self, orq: Orq, new: &NewSlot, now: DateTime<Utc>) -> Result<Slot> {
        self.write(|tx| {
            require_venue(tx, orq, new.venue_id)?;
            let id = SlotId(uuid::Uuid::now_v7());
            let row = tx
                .query_one(
                    &format!(
                        "INSERT INTO reservation_slots (id, date, start_time, end_time, venue_id, \
                         total_capacity, booked_count, status, orq, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, 0, 'ACTIVE', $7, $8, $8) \
                         RETURNING {SLOT_COLUMNS}"
                    ),
                    &[
                        &id.0,
                        &new.date,
                        &new.start_time,
                        &new.end_time,
                        &new.venue_id.0,
                        &new.total_capacity,
                        &orq.0,
                        &ts(now),
                    ],
                )
                .map_err(|e| on_constraint(e, DomainError::DuplicateSlot))?;
            slot(&row)
        })
    }

    fn get_slot(&self, orq: Orq, id: SlotId) -> Result<Slot> {
        self.read(|tx| require_slot(tx, orq, id, false))
    }

    fn list_slots(
        &self,
        orq: Orq,
        venue: Option<VenueId>,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Vec<Slot>> {
        if let (Some(from), Some(to)) = (from, to) {
            if to < from {
                return Err(DomainError::invalid("date_to", "must not be before date_from").into());
            }
        }
        self.read(|tx| {
            tx.query(
                &format!(
                    "SELECT {SLOT_COLUMNS} FROM reservation_slots \
                     WHERE orq = $1 AND ($2::BIGINT IS NULL OR venue_id = $2) \
                       AND ($3::DATE IS NULL OR date >= $3) AND ($4::DATE IS NULL OR date <= $4) \
                     ORDER BY date, start_time, venue_id"
                ),
                &[&orq.0, &venue.map(|v| v.0), &from, &to],
            )
            .map_err(db)?
            .iter()
            .map(slot)
            .collect()
        })
    }

    /// Capacity and status changes by a supervisor (a server records no
    /// outbox event: that is a gate's).
    fn update_slot(
        &self,
        orq: Orq,
        id: SlotId,
        change: SlotChange,
        now: DateTime<Utc>,
    ) -> Result<Slot> {
        self.write(|tx| update_slot_in(tx, orq, id, change, now))
    }

    fn remove_slot(
        &self,
        orq: Orq,
        id: SlotId,
        now: DateTime<Utc>,
    ) -> Result<(SlotRemoval, Option<Slot>)> {
        self.write(|tx| {
            let current = require_slot(tx, orq, id, true)?;
            // The delete needs FOR UPDATE; take it now, before counting.
            tx.execute(
                "SELECT 1 FROM reservation_slots WHERE id = $1 FOR UPDATE",
                &[&id.0],
            )
            .map_err(db)?;
            let rows: i64 = tx
                .query_one(
                    "SELECT count(*) FROM ticket_reservations WHERE slot_id = $1",
                    &[&id.0],
                )
                .map_err(db)?
                .get(0);
            match plan_slot_removal(&current, rows) {
                SlotRemoval::Deleted => {
                    tx.execute("DELETE FROM reservation_slots WHERE id = $1", &[&id.0])
                        .map_err(db)?;
                    Ok((SlotRemoval::Deleted, None))
                }
                SlotRemoval::Closed => {
                    let row = tx
                        .query_one(
                            &format!(
                                "UPDATE reservation_slots SET status = 'CLOSED', updated_at = $1 \
                                 WHERE id = $2 RETURNING {SLOT_COLUMNS}"
                            ),
                            &[&ts(now), &id.0],
                        )
                        .map_err(db)?;
                    Ok((SlotRemoval::Closed, Some(slot(&row)?)))
                }
            }
        })
    }
}
