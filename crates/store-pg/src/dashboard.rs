//! The console's live dashboard (issue 16) on PostgreSQL: the same answer
//! as `entrada_store`'s dashboard.rs, from indexed queries.

use crate::conn::Tx;
use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::dashboard::{
    bucket_start, gate_online, AdmissionBucket, Dashboard, GateStatus, SlotToday, VenueToday,
    BUCKET_SECS,
};
use crate::domain::venue_ops::day_start;
use crate::domain::{Orq, SlotId, Venue, VenueId};
use crate::venue_ops::inside_today;
use crate::venues::{venue, VENUE_COLUMNS};
use crate::{db, PgStore};
use entrada_store::{DashboardStore, Result};

fn venue_today(tx: &mut Tx<'_>, orq: Orq, v: &Venue, now: DateTime<Utc>) -> Result<VenueToday> {
    let start = day_start(v.timezone, now);
    let today: NaiveDate = now.with_timezone(&v.timezone).date_naive();
    let slots = tx
        .query(
            "SELECT s.id, s.start_time, s.end_time, s.total_capacity, s.booked_count, \
               (SELECT count(*) FROM ticket_reservations r WHERE r.slot_id = s.id AND r.status = 'VERIFIED'), \
               (SELECT count(*) FROM ticket_reservations r WHERE r.slot_id = s.id AND r.no_show_at IS NOT NULL) \
             FROM reservation_slots s WHERE s.orq = $1 AND s.date = $2 AND s.venue_id = $3 \
             ORDER BY s.start_time",
            &[&orq.0, &today, &v.id.0],
        )
        .map_err(db)?
        .iter()
        .map(|r| SlotToday {
            slot_id: SlotId(r.get(0)),
            start_time: r.get(1),
            end_time: r.get(2),
            total_capacity: r.get(3),
            booked_count: r.get(4),
            admitted_count: r.get(5),
            no_show_count: r.get(6),
        })
        .collect();
    let admissions = tx
        .query(
            "SELECT device_id, floor(extract(epoch FROM at))::BIGINT / $4::BIGINT AS bucket, count(*) \
             FROM passages WHERE orq = $1 AND venue_id = $2 AND at >= $3 AND direction = 'in' \
             GROUP BY device_id, bucket ORDER BY bucket, device_id NULLS FIRST",
            &[&orq.0, &v.id.0, &start, &BUCKET_SECS],
        )
        .map_err(db)?
        .iter()
        .map(|r| AdmissionBucket {
            device_id: r.get(0),
            bucket_start: bucket_start(r.get(1)),
            count: r.get(2),
        })
        .collect();
    Ok(VenueToday {
        venue_id: v.id,
        name: v.name.clone(),
        date: today,
        inside: inside_today(tx, orq, v.id, start)?,
        occupancy_limit: v.gate.ops().occupancy_limit,
        slots,
        admissions,
        // idx_sync_conflicts_venue_detected.
        conflicts: tx
            .query_one(
                "SELECT count(*) FROM sync_conflicts WHERE orq = $1 AND venue_id = $2 AND detected_at >= $3",
                &[&orq.0, &v.id.0, &start],
            )
            .map_err(db)?
            .get(0),
    })
}

impl DashboardStore for PgStore {
    fn dashboard(&self, orq: Orq, now: DateTime<Utc>) -> Result<Dashboard> {
        self.read(|tx| {
            let venues: Vec<Venue> = tx
                .query(
                    &format!("SELECT {VENUE_COLUMNS} FROM venues WHERE orq = $1 ORDER BY id"),
                    &[&orq.0],
                )
                .map_err(db)?
                .iter()
                .map(venue)
                .collect::<Result<_>>()?;
            let venues = venues
                .iter()
                .map(|v| venue_today(tx, orq, v, now))
                .collect::<Result<Vec<_>>>()?;
            let gates = tx
                .query(
                    "SELECT id, name, venue_id, last_seen_at FROM devices \
                     WHERE orq = $1 AND revoked_at IS NULL ORDER BY id",
                    &[&orq.0],
                )
                .map_err(db)?
                .iter()
                .map(|r| {
                    let seen: Option<DateTime<Utc>> = r.get(3);
                    GateStatus {
                        device_id: r.get(0),
                        name: r.get(1),
                        venue_id: VenueId(r.get(2)),
                        last_seen_at: seen,
                        online: gate_online(seen, now),
                    }
                })
                .collect();
            Ok(Dashboard {
                as_of: now,
                venues,
                gates,
            })
        })
    }
}
