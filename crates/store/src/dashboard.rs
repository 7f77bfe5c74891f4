//! The console's live dashboard (issue 16) on SQLite: one organization's
//! day as of `now`, from indexed queries only (the server polls it every
//! second while a dashboard is open; see crates/server/src/admin_dashboard.rs).

use chrono::{DateTime, Utc};
use rusqlite::{params, Transaction};

use super::codec::{self, date, ts, Ts, VENUE_COLUMNS};
use super::column::Sql;
use super::venue_ops::inside_today;
use super::{Result, Store};
use crate::domain::dashboard::{
    bucket_start, gate_online, AdmissionBucket, Dashboard, GateStatus, SlotToday, VenueToday,
    BUCKET_SECS,
};
use crate::domain::venue_ops::day_start;
use crate::domain::{Orq, Venue, VenueId};

fn venue_today(
    tx: &Transaction<'_>,
    orq: Orq,
    v: &Venue,
    now: DateTime<Utc>,
) -> Result<VenueToday> {
    let start = day_start(v.timezone, now);
    let today = now.with_timezone(&v.timezone).date_naive();
    // idx_reservation_slots_orq_date, then idx_ticket_reservations_slot_status per slot.
    let slots = tx
        .prepare_cached(
            "SELECT s.id, s.start_time, s.end_time, s.total_capacity, s.booked_count, \
               (SELECT count(*) FROM ticket_reservations r WHERE r.slot_id = s.id AND r.status = 'VERIFIED'), \
               (SELECT count(*) FROM ticket_reservations r WHERE r.slot_id = s.id AND r.no_show_at IS NOT NULL) \
             FROM reservation_slots s WHERE s.orq = ?1 AND s.date = ?2 AND s.venue_id = ?3 \
             ORDER BY s.start_time",
        )?
        .query_map(params![Sql(orq), date(today), Sql(v.id)], |r| {
            use crate::domain::slot::parse_time;
            let time = |i: usize| -> rusqlite::Result<chrono::NaiveTime> {
                let raw: String = r.get(i)?;
                parse_time("time", &raw).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
                })
            };
            Ok(SlotToday {
                slot_id: r.get::<_, Sql<crate::domain::SlotId>>(0)?.0,
                start_time: time(1)?,
                end_time: time(2)?,
                total_capacity: r.get(3)?,
                booked_count: r.get(4)?,
                admitted_count: r.get(5)?,
                no_show_count: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    // idx_passages_venue_at: today's entries of this venue, grouped in SQL.
    let admissions = tx
        .prepare_cached(
            "SELECT device_id, CAST(strftime('%s', at) AS INTEGER) / ?4 AS bucket, count(*) \
             FROM passages WHERE orq = ?1 AND venue_id = ?2 AND at >= ?3 AND direction = 'in' \
             GROUP BY device_id, bucket ORDER BY bucket, device_id",
        )?
        .query_map(params![Sql(orq), Sql(v.id), ts(start), BUCKET_SECS], |r| {
            Ok(AdmissionBucket {
                device_id: r.get(0)?,
                bucket_start: bucket_start(r.get(1)?),
                count: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(VenueToday {
        venue_id: v.id,
        name: v.name.clone(),
        date: today,
        inside: inside_today(tx, orq, v.id, &ts(start))?,
        occupancy_limit: v.gate.ops().occupancy_limit,
        slots,
        admissions,
        // idx_sync_conflicts_venue_detected.
        conflicts: tx
            .prepare_cached(
                "SELECT count(*) FROM sync_conflicts WHERE orq = ?1 AND venue_id = ?2 AND detected_at >= ?3",
            )?
            .query_row(params![Sql(orq), Sql(v.id), ts(start)], |r| r.get(0))?,
    })
}

impl Store {
    /// The organization's dashboard as of `now` (one read transaction).
    pub fn dashboard(&self, orq: Orq, now: DateTime<Utc>) -> Result<Dashboard> {
        self.read(|tx| {
            let venues: Vec<Venue> = tx
                .prepare_cached(&format!(
                    "SELECT {VENUE_COLUMNS} FROM venues WHERE orq = ?1 ORDER BY id"
                ))?
                .query_map([Sql(orq)], codec::venue)?
                .collect::<rusqlite::Result<_>>()?;
            let venues = venues
                .iter()
                .map(|v| venue_today(tx, orq, v, now))
                .collect::<Result<Vec<_>>>()?;
            let gates = tx
                .prepare_cached(
                    "SELECT id, name, venue_id, last_seen_at FROM devices \
                     WHERE orq = ?1 AND revoked_at IS NULL ORDER BY id",
                )?
                .query_map([Sql(orq)], |r| {
                    let seen = r.get::<_, Option<Ts>>(3)?.map(|t| t.0);
                    Ok(GateStatus {
                        device_id: r.get(0)?,
                        name: r.get(1)?,
                        venue_id: VenueId(r.get(2)?),
                        last_seen_at: seen,
                        online: gate_online(seen, now),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Dashboard {
                as_of: now,
                venues,
                gates,
            })
        })
    }
}
