//! Walk-up leases given back by the server itself (issue 15): a
//! supervisor's take-back of a venue's leases, and the periodic return of the
//! leases of slots whose entry window has closed (`entrada serve`'s task),
//! without waiting for the gate's next sync. The gate learns it at its next
//! lease refresh (the server no longer lists the slot). The places go back
//! on the slot's count in the transaction that deletes the lease.
//!
//! Which leases go back is `domain::venue_ops::lease_take_back`'s: only
//! those of slots whose entry window has ended are returned at once; a
//! supervisor's take-back of a slot still taking walk-ups is a recall (the
//! places come back at the gate's next refresh, less what its offline
//! walk-ups used), so that every ADMIT an offline gate showed is honoured.
//! A revoked gate's leases are returned at once by either (its uploads can
//! no longer arrive, and it never refreshes again).

use chrono::{DateTime, Utc};
use rusqlite::params;

use crate::column::{RowExt, Sql};
use crate::domain::venue_ops::{lease_take_back, SlotPlaces, TakeBack};
use crate::domain::{Orq, SlotId, VenueId};
use crate::slots::{change_booking, load_slot};
use crate::venues::require_venue;
use crate::{Result, Store};

impl Store {
    /// Gives back the leased places of `venue` (`None`: every venue of every
    /// org, for the periodic task) whose slot's entry window has ended, and
    /// (a supervisor: `only_closed == false`) recalls the others
    /// (`domain::venue_ops::lease_take_back`); a revoked gate's leases are
    /// given back at once. Returns the places given back
    /// now per slot, summed over the gates that held them (recalled places
    /// come back at each gate's next lease refresh).
    pub fn take_back_leases(
        &self,
        scope: Option<(Orq, VenueId)>,
        only_closed: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<SlotPlaces>> {
        self.write(|tx| {
            if let Some((orq, venue)) = scope {
                require_venue(tx, orq, venue)?;
            }
            let (orq, venue) = scope.map_or((None, None), |(o, v)| (Some(o), Some(v)));
            let rows: Vec<(i64, SlotId, Orq, bool)> = tx
                .prepare_cached(
                    "SELECT l.device_id, l.slot_id, l.orq, d.revoked_at IS NOT NULL FROM walkup_leases l \
                     JOIN reservation_slots s ON s.id = l.slot_id \
                     LEFT JOIN devices d ON d.id = l.device_id \
                     WHERE (?1 IS NULL OR l.orq = ?1) AND (?2 IS NULL OR s.venue_id = ?2) \
                     ORDER BY l.slot_id, l.device_id",
                )?
                .query_map(params![Sql(orq), Sql(venue)], |r| {
                    Ok((r.get(0)?, r.col(1)?, r.col(2)?, r.get::<_, Option<bool>>(3)?.unwrap_or(false)))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut returned: Vec<SlotPlaces> = Vec::new();
            for (device, slot_id, orq, revoked) in rows {
                let Some(slot) = load_slot(tx, orq, slot_id)? else {
                    continue;
                };
                let slot_venue = require_venue(tx, orq, slot.venue_id)?;
                match lease_take_back(&slot, &slot_venue, now, !only_closed, revoked) {
                    TakeBack::Return => {}
                    TakeBack::Keep => continue,
                    TakeBack::Recall => {
                        tx.prepare_cached(
                            "UPDATE walkup_leases SET recalled_at = ?1 \
                             WHERE device_id = ?2 AND slot_id = ?3 AND recalled_at IS NULL",
                        )?
                        .execute(params![
                            crate::codec::ts(now),
                            device,
                            Sql(slot_id)
                        ])?;
                        continue;
                    }
                }
                let places: i64 = tx
                    .prepare_cached(
                        "SELECT places FROM walkup_leases WHERE device_id = ?1 AND slot_id = ?2",
                    )?
                    .query_row(params![device, Sql(slot_id)], |r| r.get(0))?;
                if places > 0 {
                    change_booking(tx, &slot, -places, now)?;
                }
                tx.prepare_cached(
                    "DELETE FROM walkup_leases WHERE device_id = ?1 AND slot_id = ?2",
                )?
                .execute(params![device, Sql(slot_id)])?;
                match returned.last_mut() {
                    Some(last) if last.slot_id == slot_id => last.places += places,
                    _ => returned.push(SlotPlaces { slot_id, places }),
                }
            }
            Ok(returned)
        })
    }
}
