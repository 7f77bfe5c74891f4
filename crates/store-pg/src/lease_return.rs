//! Walk-up leases given back by the server itself (issue 15), as SQLite's:
//! a supervisor's take-back of a venue's leases, and the periodic return of
//! the leases of slots whose entry window has closed. Each slot's lease rows
//! are read again and written under the slot's row lock (slots in id order,
//! as every writer), like the leases' refresh. A supervisor's take-back of
//! a slot still taking walk-ups is a recall (`domain::venue_ops::lease_take_back`).

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
            match lease_take_back(&slot, &slot_venue, now, !only_closed) {
                TakeBack::Return => {}
                TakeBack::Keep => continue,
                TakeBack::Recall => {
                    tx.execute(
                        "UPDATE walkup_leases SET recalled_at = $1 WHERE slot_id = $2 AND recalled_at IS NULL",
                        &[&crate::ts(now), &id],
                    )
                    .map_err(db)?;
                    continue;
                }
            }
            // Under the slot's lock: the leases as they are now.
            let places: i64 = tx
                .query_one(
                    "SELECT COALESCE(SUM(places), 0)::BIGINT FROM walkup_leases WHERE slot_id = $1",
                    &[&id],
                )
                .map_err(db)?
                .get(0);
            if places > 0 {
                change_booking(tx, &slot, -places, now)?;
            }
            tx.execute("DELETE FROM walkup_leases WHERE slot_id = $1", &[&id])
                .map_err(db)?;
            returned.push(SlotPlaces { slot_id, places });
        }
        Ok(returned)
    })
}
