//! Slot services: create, change, remove, list, availability, seeding.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use super::codec::{self, date, time, ts, SLOT_COLUMNS};
use super::column::Sql;
use super::venues::require_venue;
use super::{on_constraint, Result, Store, StoreError};
use crate::domain::{
    slot::{plan_slot_change, plan_slot_removal},
    DomainError, NewSlot, Orq, Slot, SlotChange, SlotId, SlotRemoval, VenueId,
};

pub(crate) fn load_slot(tx: &Transaction<'_>, orq: Orq, id: SlotId) -> Result<Option<Slot>> {
    Ok(tx
        .prepare_cached(&format!(
            "SELECT {SLOT_COLUMNS} FROM reservation_slots WHERE id = ?1 AND orq = ?2"
        ))?
        .query_row(params![Sql(id), Sql(orq)], codec::slot)
        .optional()?)
}

pub(crate) fn require_slot(tx: &Transaction<'_>, orq: Orq, id: SlotId) -> Result<Slot> {
    load_slot(tx, orq, id)?.ok_or_else(|| DomainError::NotFound { entity: "slot" }.into())
}

/// Takes (`delta = 1`) or frees (`-1`) one place; the status follows the count.
pub(crate) fn change_booking(
    tx: &Transaction<'_>,
    slot: &Slot,
    delta: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    let (booked, status) = slot.after_booking_change(delta);
    // The guard on booked_count makes a stale read fail loudly instead of
    // silently overwriting another writer's count.
    let changed = tx
        .prepare_cached(
            "UPDATE reservation_slots SET booked_count = ?1, status = ?2, updated_at = ?3 \
             WHERE id = ?4 AND booked_count = ?5",
        )?
        .execute(params![
            booked,
            Sql(status),
            ts(now),
            Sql(slot.id),
            slot.booked_count
        ])?;
    if changed != 1 {
        return Err(StoreError::Db(rusqlite::Error::StatementChangedRows(
            changed,
        )));
    }
    Ok(())
}

/// A supervisor's slot change; on a gate device it also goes to the outbox.
pub(crate) fn update_slot_in(
    tx: &Transaction<'_>,
    orq: Orq,
    id: SlotId,
    change: SlotChange,
    now: DateTime<Utc>,
    operator: Option<crate::domain::OperatorId>,
) -> Result<Slot> {
    let slot = require_slot(tx, orq, id)?;
    let (total, status) = plan_slot_change(&slot, change)?;
    tx.prepare_cached(
        "UPDATE reservation_slots SET total_capacity = ?1, status = ?2, updated_at = ?3 WHERE id = ?4",
    )?
    .execute(params![total, Sql(status), ts(now), Sql(id)])?;
    let payload = serde_json::json!({
        "slot_id": id,
        "total_capacity": change.total_capacity,
        "status": change.status.map(|s| s.as_str()),
    });
    super::sync::record_local_event(
        tx,
        "slot_change",
        "reservation_slots",
        &id.to_string(),
        payload,
        operator,
        now,
    )?;
    require_slot(tx, orq, id)
}

/// What `seed_slots` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SeedReport {
    pub created: u64,
    pub already_there: u64,
}

/// Which slots `seed_slots` makes: the daily three at `venue`, `days` days from `from`.
#[derive(Debug, Clone, Copy)]
pub struct SeedPlan {
    pub venue: VenueId,
    pub from: NaiveDate,
    pub days: u32,
    pub capacity: i64,
}

/// The spec's three daily slots.
const SEED_SLOTS: [(u32, u32); 3] = [(9, 12), (12, 15), (15, 18)];

impl Store {
    pub fn create_slot(&self, orq: Orq, new: &NewSlot, now: DateTime<Utc>) -> Result<Slot> {
        self.write(|tx| {
            require_venue(tx, orq, new.venue_id)?;
            let id = SlotId(uuid::Uuid::now_v7());
            tx.prepare_cached(
                "INSERT INTO reservation_slots \
                 (id, date, start_time, end_time, venue_id, total_capacity, booked_count, status, orq, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 'ACTIVE', ?7, ?8, ?8)",
            )?
            .execute(params![
                Sql(id),
                date(new.date),
                time(new.start_time),
                time(new.end_time),
                Sql(new.venue_id),
                new.total_capacity,
                Sql(orq),
                ts(now)
            ])
            .map_err(|e| on_constraint(e, DomainError::DuplicateSlot))?;
            require_slot(tx, orq, id)
        })
    }

    pub fn get_slot(&self, orq: Orq, id: SlotId) -> Result<Slot> {
        self.read(|tx| require_slot(tx, orq, id))
    }

    /// Capacity and status changes by a supervisor.
    pub fn update_slot(
        &self,
        orq: Orq,
        id: SlotId,
        change: SlotChange,
        now: DateTime<Utc>,
    ) -> Result<Slot> {
        self.update_slot_by(orq, id, change, None, now)
    }

    /// `update_slot`, recording which supervisor made the change.
    pub fn update_slot_by(
        &self,
        orq: Orq,
        id: SlotId,
        change: SlotChange,
        operator: Option<crate::domain::OperatorId>,
        now: DateTime<Utc>,
    ) -> Result<Slot> {
        self.write(|tx| update_slot_in(tx, orq, id, change, now, operator))
    }

    /// Hard delete when nobody ever booked the slot, otherwise close it.
    /// Returns the closed slot, or `None` when it is gone.
    pub fn remove_slot(
        &self,
        orq: Orq,
        id: SlotId,
        now: DateTime<Utc>,
    ) -> Result<(SlotRemoval, Option<Slot>)> {
        self.write(|tx| {
            let slot = require_slot(tx, orq, id)?;
            let rows: i64 = tx.query_row(
                "SELECT count(*) FROM ticket_reservations WHERE slot_id = ?1",
                [Sql(id)],
                |r| r.get(0),
            )?;
            match plan_slot_removal(&slot, rows) {
                SlotRemoval::Deleted => {
                    tx.execute("DELETE FROM reservation_slots WHERE id = ?1", [Sql(id)])?;
                    Ok((SlotRemoval::Deleted, None))
                }
                SlotRemoval::Closed => {
                    tx.execute(
                        "UPDATE reservation_slots SET status = 'CLOSED', updated_at = ?1 WHERE id = ?2",
                        params![ts(now), Sql(id)],
                    )?;
                    Ok((SlotRemoval::Closed, Some(require_slot(tx, orq, id)?)))
                }
            }
        })
    }

    /// Slots of one org, optionally one venue, in a date range (inclusive).
    pub fn list_slots(
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
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {SLOT_COLUMNS} FROM reservation_slots \
                 WHERE orq = ?1 AND (?2 IS NULL OR venue_id = ?2) \
                   AND (?3 IS NULL OR date >= ?3) AND (?4 IS NULL OR date <= ?4) \
                 ORDER BY date, start_time, venue_id"
            ))?;
            let rows = stmt.query_map(
                params![Sql(orq), Sql(venue), from.map(date), to.map(date)],
                codec::slot,
            )?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Slots a customer may look at for a month: ACTIVE and FULL (so the
    /// calendar can show "full"), never CLOSED.
    pub fn available_slots(
        &self,
        orq: Orq,
        month: &str,
        venue: Option<VenueId>,
    ) -> Result<Vec<Slot>> {
        let (first, last) = crate::domain::slot::parse_month(month)?;
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {SLOT_COLUMNS} FROM reservation_slots \
                 WHERE orq = ?1 AND date BETWEEN ?2 AND ?3 AND status <> 'CLOSED' \
                   AND (?4 IS NULL OR venue_id = ?4) \
                 ORDER BY date, start_time, venue_id"
            ))?;
            let rows = stmt.query_map(
                params![Sql(orq), date(first), date(last), Sql(venue)],
                codec::slot,
            )?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// The spec's morning/afternoon/evening slots for `days` days from `from`.
    /// Idempotent: slots that exist are left as they are. `progress` is told
    /// each finished day.
    pub fn seed_slots(
        &self,
        orq: Orq,
        plan: SeedPlan,
        now: DateTime<Utc>,
        mut progress: impl FnMut(u64),
    ) -> Result<SeedReport> {
        let SeedPlan {
            venue,
            from,
            days,
            capacity,
        } = plan;
        // Validate once through the same rule as a manual create.
        NewSlot::validate(venue.0, &date(from), "09:00", "12:00", Some(capacity))?;
        let mut report = SeedReport {
            created: 0,
            already_there: 0,
        };
        // One transaction per chunk of days keeps the write lock short for
        // other writers while still being fast.
        let days: Vec<NaiveDate> = (0..days)
            .filter_map(|d| from.checked_add_signed(Duration::days(d.into())))
            .collect();
        for chunk in days.chunks(30) {
            let created = self.write(|tx| {
                require_venue(tx, orq, venue)?;
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO reservation_slots \
                     (id, date, start_time, end_time, venue_id, total_capacity, booked_count, status, orq, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 'ACTIVE', ?7, ?8, ?8) \
                     ON CONFLICT (venue_id, date, start_time, orq) DO NOTHING",
                )?;
                let mut created = 0u64;
                for day in chunk {
                    for (start, end) in SEED_SLOTS {
                        let hm = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap_or_default();
                        created += stmt.execute(params![
                            Sql(SlotId(uuid::Uuid::now_v7())),
                            date(*day),
                            time(hm(start)),
                            time(hm(end)),
                            Sql(venue),
                            capacity,
                            Sql(orq),
                            ts(now)
                        ])? as u64;
                    }
                }
                Ok(created)
            })?;
            report.created += created;
            report.already_there += chunk.len() as u64 * SEED_SLOTS.len() as u64 - created;
            progress(chunk.len() as u64);
        }
        Ok(report)
    }
}
