//! No-show release (issue 15) on SQLite: the server's periodic task calls
//! [`Store::release_no_shows`]; `domain::no_show` decides each reservation.
//! One `BEGIN IMMEDIATE` transaction per batch: a gate verification (a scan
//! at the server, an uploaded admission) is serialized with it, so the one
//! that commits first wins and the other sees its outcome (a VERIFIED
//! reservation is not released; a released one is judged as a no-show).

use chrono::{DateTime, Duration, Utc};
use rusqlite::params;

use super::codec::ts;
use super::column::{RowExt, Sql};
use super::reservations::require_reservation;
use super::slots::{change_booking, require_slot};
use super::tickets::require_ticket;
use super::venues::require_venue;
use super::{Result, Store};
use crate::domain::no_show::{no_show_check, NoShowCheck, Released, RELEASE_BATCH};
use crate::domain::{Booked, Orq, ReservationId};

impl Store {
    /// Releases every reservation that is a no-show at `now`, in every org:
    /// cancelled, marked `no_show_at`, its place back on the slot, its ticket
    /// free to reserve again. Idempotent: a released reservation is CANCELLED
    /// and is not looked at again.
    pub fn release_no_shows(&self, now: DateTime<Utc>) -> Result<Vec<Released>> {
        // Slots dated up to tomorrow (UTC) may have started somewhere.
        let latest_date = (now + Duration::days(1)).date_naive().to_string();
        let mut released = Vec::new();
        let mut after: Option<ReservationId> = None;
        loop {
            let (batch, last) = self.write(|tx| {
                let candidates: Vec<(ReservationId, Orq)> = tx
                    .prepare_cached(
                        "SELECT r.id, r.orq FROM ticket_reservations r \
                         JOIN reservation_slots s ON s.id = r.slot_id \
                         JOIN venues v ON v.id = s.venue_id \
                         WHERE r.status = 'RESERVED' AND v.no_show_release_minutes IS NOT NULL \
                           AND s.date <= ?1 AND (?2 IS NULL OR r.id > ?2) ORDER BY r.id LIMIT ?3",
                    )?
                    .query_map(params![latest_date, Sql(after), RELEASE_BATCH], |row| {
                        Ok((row.col("id")?, row.col("orq")?))
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                let mut done = Vec::new();
                for &(id, orq) in &candidates {
                    let reservation = require_reservation(tx, orq, id)?;
                    let ticket = require_ticket(tx, orq, &reservation.ticket_id)?;
                    let slot = require_slot(tx, orq, reservation.slot_id)?;
                    let venue = require_venue(tx, orq, slot.venue_id)?;
                    let booked = Booked {
                        reservation: &reservation,
                        slot: &slot,
                        venue: &venue,
                    };
                    if no_show_check(&ticket, booked, now) != NoShowCheck::Release {
                        continue;
                    }
                    change_booking(tx, &slot, -1, now)?;
                    tx.prepare_cached(
                        "UPDATE ticket_reservations SET status = 'CANCELLED', no_show_at = ?1, updated_at = ?1 \
                         WHERE id = ?2 AND status = 'RESERVED'",
                    )?
                    .execute(params![ts(now), Sql(id)])?;
                    tx.prepare_cached(
                        "UPDATE tickets SET status = 'ACTIVATED', reserved_at = NULL, updated_at = ?1 \
                         WHERE ticket_code = ?2 AND orq = ?3",
                    )?
                    .execute(params![ts(now), Sql(&reservation.ticket_id), Sql(orq)])?;
                    done.push(Released {
                        orq,
                        reservation_id: id,
                        slot_id: slot.id,
                        released_at: now,
                    });
                }
                Ok((done, candidates.last().map(|(id, _)| *id)))
            })?;
            released.extend(batch);
            match last {
                Some(id) => after = Some(id),
                None => return Ok(released),
            }
        }
    }
}
