//! Walk-up leases given back by the server itself (issue 15), as SQLite's:
//! a supervisor's take-back of a venue's leases, and the periodic return of
//! the leases of slots whose entry window has closed. Each slot's lease rows
//! are read again and written under the slot's row lock (slots in id order,
//! as every writer), like the leases' refresh. A supervisor's take-back of
//! a slot still taking walk-ups is a recall (`domain::venue_ops::lease_take_back`);
//! a revoked gate's leases are returned at once by either.

use chrono::{DateTime, Utc};

use crate::domain::venue_ops::{lease_take_back, SlotPlaces, TakeBack};
use crate::domain::{Orq, SlotId, VenueId};
use crate::reservations::change_booking;
use crate::slots::load_slot;
use crate::venues::require_venue;
use crate::{db, PgStore};
use entrada_store::Result;

pub(crate) fn take_back_leases(
    store: &PgStore,
    scope: Option<(Orq, VenueId)>,
    only_closed: bool,
    now: DateTime<Utc>,
) -> Result<Vec<SlotPlaces>> {
    store.write(|tx| {
        if let Some((orq, venue)) = scope {
            require_venue(tx, orq, venue)?;
        }
        let (orq, venue) = scope.map_or((None, None), |(o, v)| (Some(o.0), Some(v.0)));
        let slots: Vec<(uuid::Uuid, i64)> = tx
            .query(
                "SELECT DISTINCT l.slot_id, l.orq FROM walkup_leases l \
                 JOIN reservation_slots s ON s.id = l.slot_id \
                 WHERE ($1::bigint IS NULL OR l.orq = $1) AND ($2::bigint IS NULL OR s.venue_id = $2) \
                 ORDER BY l.slot_id",
                &[&orq, &venue],
            )
            .map_err(db)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let mut returned = Vec::new();
        for (id, orq) in slots {
            let (slot_id, orq) = (SlotId(id), Orq(orq));
            let Some(slot) = load_slot(tx, orq, slot_id, true)? else {
                continue;
            };
            let slot_venue = require_venue(tx, orq, slot.venue_id)?;
            // Under the slot's lock: its leases as they are now, each judged
            // for its gate.
            let leases: Vec<(i64, i64, bool)> = tx
                .query(
                    "SELECT l.device_id, l.places, COALESCE(d.revoked_at IS NOT NULL, false) \
                     FROM walkup_leases l LEFT JOIN devices d ON d.id = l.device_id \
                     WHERE l.slot_id = $1 ORDER BY l.device_id",
                    &[&id],
                )
                .map_err(db)?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
            let mut back: Option<i64> = None;
            for (device, places, revoked) in leases {
                match lease_take_back(&slot, &slot_venue, now, !only_closed, revoked) {
                    TakeBack::Keep => {}
                    TakeBack::Recall => {
                        tx.execute(
                            "UPDATE walkup_leases SET recalled_at = $1 \
                             WHERE device_id = $2 AND slot_id = $3 AND recalled_at IS NULL",
                            &[&crate::ts(now), &device, &id],
                        )
                        .map_err(db)?;
                    }
                    TakeBack::Return => {
                        tx.execute(
                            "DELETE FROM walkup_leases WHERE device_id = $1 AND slot_id = $2",
                            &[&device, &id],
                        )
                        .map_err(db)?;
                        *back.get_or_insert(0) += places;
                    }
                }
            }
            if let Some(places) = back {
                if places > 0 {
                    change_booking(tx, &slot, -places, now)?;
                }
                returned.push(SlotPlaces { slot_id, places });
            }
        }
        Ok(returned)
    })
}
