//! Venues and their gate settings.

use crate::conn::Tx;
use chrono::{DateTime, Utc};
use postgres::Row;

use crate::domain::venue::{parse_timezone, validate_name, GateSettings, VenuePatch};
use crate::domain::{DomainError, Orq, Venue, VenueId};
use crate::{corrupt, db, ts, PgStore};
use entrada_store::{Result, VenueStore};

pub(crate) const VENUE_COLUMNS: &str =
    "id, orq, name, timezone, early_grace_minutes, late_grace_minutes, created_at, updated_at, \
     reentry_allowed, walkup_lease_places, no_show_release_minutes, occupancy_limit, closing_time";

pub(crate) fn venue(row: &Row) -> Result<Venue> {
    Ok(Venue {
        id: VenueId(row.get("id")),
        orq: Orq(row.get("orq")),
        name: row.get("name"),
        timezone: parse_timezone(row.get("timezone")).map_err(|e| corrupt("time zone", e))?,
        gate: GateSettings::new(
            row.get("early_grace_minutes"),
            row.get("late_grace_minutes"),
        )
        .and_then(|g| {
            g.with_ops(crate::domain::venue_ops::VenueOps {
                reentry_allowed: row.get("reentry_allowed"),
                walkup_lease_places: row.get("walkup_lease_places"),
                no_show_release_minutes: row.get("no_show_release_minutes"),
                occupancy_limit: row.get("occupancy_limit"),
                closing_time: row.get("closing_time"),
            })
        })
        .map_err(|e| corrupt("gate settings", e))?,
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

pub(crate) fn load_venue(tx: &mut Tx<'_>, orq: Orq, id: VenueId) -> Result<Option<Venue>> {
    tx.query_opt(
        &format!("SELECT {VENUE_COLUMNS} FROM venues WHERE id = $1 AND orq = $2"),
        &[&id.0, &orq.0],
    )
    .map_err(db)?
    .as_ref()
    .map(venue)
    .transpose()
}

pub(crate) fn require_venue(tx: &mut Tx<'_>, orq: Orq, id: VenueId) -> Result<Venue> {
    load_venue(tx, orq, id)?.ok_or_else(|| DomainError::NotFound { entity: "venue" }.into())
}

impl VenueStore for PgStore {
    fn add_venue(&self, orq: Orq, name: &str, timezone: &str, now: DateTime<Utc>) -> Result<Venue> {
        let name = validate_name("name", name)?;
        let tz = parse_timezone(timezone)?;
        self.write(|tx| {
            let row = tx
                .query_one(
                    &format!(
                        "INSERT INTO venues (orq, name, timezone, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $4) RETURNING {VENUE_COLUMNS}"
                    ),
                    &[&orq.0, &name, &tz.name(), &ts(now)],
                )
                .map_err(db)?;
            venue(&row)
        })
    }

    fn get_venue(&self, orq: Orq, id: VenueId) -> Result<Venue> {
        self.read(|tx| require_venue(tx, orq, id))
    }

    fn list_venues(&self, orq: Orq) -> Result<Vec<Venue>> {
        self.read(|tx| {
            tx.query(
                &format!("SELECT {VENUE_COLUMNS} FROM venues WHERE orq = $1 ORDER BY id"),
                &[&orq.0],
            )
            .map_err(db)?
            .iter()
            .map(venue)
            .collect()
        })
    }

    fn update_venue(
        &self,
        orq: Orq,
        id: VenueId,
        patch: &VenuePatch,
        now: DateTime<Utc>,
    ) -> Result<Venue> {
        self.write(|tx| {
            let current = tx
                .query_opt(
                    &format!(
                        "SELECT {VENUE_COLUMNS} FROM venues WHERE id = $1 AND orq = $2 FOR UPDATE"
                    ),
                    &[&id.0, &orq.0],
                )
                .map_err(db)?
                .ok_or(DomainError::NotFound { entity: "venue" })?;
            let current = venue(&current)?;
            // FOR SHARE on the slots ahead, in id order (as reschedules lock
            // slots: no deadlock): a reservation that raises one's booked
            // count waits for this change, or this count waits for it and
            // sees its booking (READ COMMITTED re-reads locked rows). A slot
            // made meanwhile cannot slip in: its insert takes a KEY SHARE
            // lock on the venue row, which FOR UPDATE above excludes (do not
            // weaken that to FOR NO KEY UPDATE).
            let booked_ahead = match current.zone_change(patch, now)? {
                Some((_, from)) => tx
                    .query(
                        "SELECT booked_count FROM reservation_slots \
                         WHERE venue_id = $1 AND orq = $2 AND date >= $3 ORDER BY id FOR SHARE",
                        &[&id.0, &orq.0, &from],
                    )
                    .map_err(db)?
                    .iter()
                    .filter(|r| r.get::<_, i64>(0) > 0)
                    .count() as u64,
                None => 0,
            };
            let next = current.patched(patch, booked_ahead, now)?;
            let ops = next.gate.ops();
            let row = tx
                .query_one(
                    &format!(
                        "UPDATE venues SET early_grace_minutes = $1, late_grace_minutes = $2, \
                         updated_at = $3, reentry_allowed = $6, walkup_lease_places = $7, \
                         no_show_release_minutes = $8, occupancy_limit = $9, closing_time = $10, \
                         name = $11, timezone = $12 \
                         WHERE id = $4 AND orq = $5 RETURNING {VENUE_COLUMNS}"
                    ),
                    &[
                        &next.gate.early_grace_minutes(),
                        &next.gate.late_grace_minutes(),
                        &ts(now),
                        &id.0,
                        &orq.0,
                        &ops.reentry_allowed,
                        &ops.walkup_lease_places,
                        &ops.no_show_release_minutes,
                        &ops.occupancy_limit,
                        &ops.closing_time,
                        &next.name,
                        &next.timezone.name(),
                    ],
                )
                .map_err(db)?;
            venue(&row)
        })
    }
}
