//! No-show release (issue 15) on PostgreSQL, as SQLite's: candidates are
//! read without locks, then each is released in its own transaction that
//! locks the ticket, reads the reservation again, then locks the slot (the
//! writers' lock order), and asks `domain::no_show` on what it read under
//! the locks. A gate verification of the same ticket holds the ticket's lock
//! too: whichever commits first wins, the other decides on its outcome.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::domain::no_show::{no_show_check, NoShowCheck, Released, RELEASE_BATCH};
use crate::domain::{Booked, Orq, ReservationId};
use crate::reservations::{change_booking, require_reservation};
use crate::slots::require_slot;
use crate::tickets::require_ticket;
use crate::venues::require_venue;
use crate::{db, ts, PgStore};
use entrada_store::Result;

pub(crate) fn release_no_shows(store: &PgStore, now: DateTime<Utc>) -> Result<Vec<Released>> {
    // Slots dated up to tomorrow (UTC) may have started somewhere.
    let latest_date = (now + Duration::days(1)).date_naive();
    let mut released = Vec::new();
    let mut after: Option<Uuid> = None;
    loop {
        let candidates: Vec<(ReservationId, Orq)> = store.read(|tx| {
            Ok(tx
                .query(
                    "SELECT r.id, r.orq FROM ticket_reservations r \
                     JOIN reservation_slots s ON s.id = r.slot_id \
                     JOIN venues v ON v.id = s.venue_id \
                     WHERE r.status = 'RESERVED' AND v.no_show_release_minutes IS NOT NULL \
                       AND s.date <= $1 AND ($2::uuid IS NULL OR r.id > $2) ORDER BY r.id LIMIT $3",
                    &[&latest_date, &after, &i64::from(RELEASE_BATCH)],
                )
                .map_err(db)?
                .iter()
                .map(|row| (ReservationId(row.get(0)), Orq(row.get(1))))
                .collect())
        })?;
        let Some(&(last, _)) = candidates.last() else {
            return Ok(released);
        };
        after = Some(last.0);
        for (id, orq) in candidates {
            let done = store.write(|tx| {
                let unlocked = require_reservation(tx, orq, id)?;
                let ticket = require_ticket(tx, orq, &unlocked.ticket_id, true)?;
                // Read again under the ticket's lock: a verification that
                // committed first has made it VERIFIED.
                let reservation = require_reservation(tx, orq, id)?;
                let slot = require_slot(tx, orq, reservation.slot_id, true)?;
                let venue = require_venue(tx, orq, slot.venue_id)?;
                let booked = Booked {
                    reservation: &reservation,
                    slot: &slot,
                    venue: &venue,
                };
                if no_show_check(&ticket, booked, now) != NoShowCheck::Release {
                    return Ok(None);
                }
                change_booking(tx, &slot, -1, now)?;
                tx.execute(
                    "UPDATE ticket_reservations SET status = 'CANCELLED', no_show_at = $1, updated_at = $1 \
                     WHERE id = $2 AND status = 'RESERVED'",
                    &[&ts(now), &id.0],
                )
                .map_err(db)?;
                tx.execute(
                    "UPDATE tickets SET status = 'ACTIVATED', reserved_at = NULL, updated_at = $1 \
                     WHERE ticket_code = $2 AND orq = $3",
                    &[&ts(now), &reservation.ticket_id.as_str(), &orq.0],
                )
                .map_err(db)?;
                Ok(Some(Released {
                    orq,
                    reservation_id: id,
                    slot_id: slot.id,
                    released_at: now,
                }))
            })?;
            released.extend(done);
        }
    }
}
