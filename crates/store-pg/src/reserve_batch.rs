//! Group commit for reservations (`group_commit.rs` says how batches are
//! made, run and answered). A reservation holds its slot's row from the
//! place taken to its COMMIT's flush, so on one hot slot every reservation's
//! last round trips and flush ran one after the other. Reservations asked
//! of one instance at once for one slot (one org, distinct tickets) share
//! one transaction: the slot's row is locked once, its count changed by one
//! UPDATE, one COMMIT.
//!
//! One batch (`reserve_batch_in`):
//! 1. the tickets locked `SKIP LOCKED` (a ticket held elsewhere, or
//!    unknown, goes back to its caller, who runs it alone and waits for
//!    that lock as before batches);
//! 2. their reservation rows (with the venue of the slot each holds), and
//!    the slot with its venue, read unlocked: a first look;
//! 3. the domain decides each in arrival order against a running slot that
//!    takes each place granted before it (so when k places are left,
//!    exactly k are granted); a refusal writes nothing;
//! 4. the granted reservations written, one statement each;
//! 5. the slot locked, and the domain decides again, in the same order, on
//!    the locked row: any decision that differs (another writer took or
//!    freed places meanwhile, near the last place) hands the batch back
//!    (`Batched::HandBack`: rolled back, each item runs alone, counted, not
//!    an error); else one UPDATE writes the count the running slot reached
//!    (guarded by the count read under the lock), and COMMIT.
//!
//! So the hot row is held for the locked read, one UPDATE and one COMMIT
//! per batch, not per reservation. A batch waits for no lock but the
//! slot's; one batch per org and slot is in flight at once, so a slot
//! whose row is held (by another instance's batch, or anyone) holds up
//! that slot's callers, who queue for its next batch, and no other org's.
//! A reservation alone (below) also waits for its ticket's lock inside its
//! slot's place: a ticket held by a transaction waiting on another slot of
//! the org holds up this slot's callers too (known; see SECURITY.md). A reservation alone runs the lone path (`reserve_one`)
//! inside that same place, so the callers behind it make the next batch.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::conn::Tx;
use crate::conn::{prefixed, Prefixed};
use crate::domain::{
    check_reservable, ChangedBy, DomainError, Orq, Reservation, Slot, SlotId, Ticket, TicketCode,
    Venue, VenueId,
};
use crate::group_commit::{Answer, Batched, GroupQueue, Grouped};
use crate::reservations::{change_booking, reservation, write_reservation, RESERVATION_COLUMNS};
use crate::slots::{require_slot, slot, SLOT_COLUMNS};
use crate::tickets::{ticket, TICKET_COLUMNS};
use crate::venues::{venue, VENUE_COLUMNS};
use crate::{db, PgStore};
use entrada_store::{ReserveRequest, Result};

/// One reservation asked of `reserve_slot_as`.
#[derive(Debug, Clone)]
pub(crate) struct ReserveItem {
    pub(crate) orq: Orq,
    pub(crate) req: ReserveRequest,
    pub(crate) by: ChangedBy,
    pub(crate) now: DateTime<Utc>,
}

impl Grouped for ReserveItem {
    /// One org and one slot per batch: the slot's row is what the batch
    /// shares.
    type Batch = (Orq, SlotId);
    type Distinct = TicketCode;
    /// One per org and slot: its batches all wait for the slot's row, so a
    /// second in flight would only hold items the next batch could take.
    const IN_FLIGHT: usize = 1;
    fn batch(&self) -> (Orq, SlotId) {
        (self.orq, self.req.slot_id)
    }
    fn distinct(&self) -> TicketCode {
        self.req.ticket.clone()
    }
}

/// The reservations waiting on one instance.
pub(crate) type ReserveQueue = GroupQueue<ReserveItem, Reservation>;

/// The batch's tickets, locked by this transaction, in the codes' order;
/// the ones held elsewhere are skipped. $1 the codes, $2 orq.
static LOCK_TICKETS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {TICKET_COLUMNS} FROM tickets WHERE ticket_code = ANY($1) AND orq = $2 \
         ORDER BY ticket_code FOR UPDATE SKIP LOCKED"
    )
});

/// The locked tickets' reservation rows, each with the venue of the slot
/// it holds. $1 the codes, $2 orq.
///
/// The org is checked as `r.orq + 0`, which no index serves, and the slot's
/// as a join column (`hs.orq = r.orq`): each row is found by its key (the
/// ticket, the slot's id) whatever the statistics say. With `r.orq = $2`
/// and `hs.orq = $2`, on tables not yet analyzed (a bulk import, before
/// autovacuum) the planner intersected the reservations' org-only index
/// (every reservation of the org) with the ticket index, and read every
/// slot of the org to join them, for each batch (as the verify batch's
/// door rows did, session 35).
static HELD_ROWS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {}, hs.venue_id AS held_venue FROM ticket_reservations r \
         LEFT JOIN reservation_slots hs ON hs.id = r.slot_id AND hs.orq = r.orq \
         WHERE r.ticket_id = ANY($1) AND r.orq + 0 = $2",
        prefixed(RESERVATION_COLUMNS, "r", "r_"),
    )
});

/// The slot asked for and its venue, unlocked. $1 the slot, $2 orq.
static SLOT_AND_VENUE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {}, {} FROM reservation_slots s \
         LEFT JOIN venues v ON v.id = s.venue_id AND v.orq = $2 \
         WHERE s.id = $1 AND s.orq = $2",
        prefixed(SLOT_COLUMNS, "s", "s_"),
        prefixed(VENUE_COLUMNS, "v", "v_"),
    )
});

/// A locked ticket the domain decides on the slot for: its item's index,
/// the ticket and its reservation row.
struct Candidate {
    index: usize,
    ticket: Ticket,
    existing: Option<Reservation>,
}

/// Each candidate's decision in order against `slot`, which takes each
/// place granted before it; and the slot after them all.
fn decide(
    items: &[&ReserveItem],
    candidates: &[Candidate],
    slot: &Slot,
    venue: &Venue,
) -> (Vec<Result<(), DomainError>>, Slot) {
    let mut running = slot.clone();
    let decisions = candidates
        .iter()
        .map(|c| {
            let now = items[c.index].now;
            let decision = check_reservable(&c.ticket, c.existing.as_ref(), &running, venue, now);
            if decision.is_ok() {
                running = running.with_booking_change(1);
            }
            decision
        })
        .collect();
    (decisions, running)
}

/// One batch (one org, one slot, distinct tickets) in the caller's
/// transaction (module docs). Each item's answer in `items`' order: `Some`
/// its reservation or its refusal (a refusal wrote nothing), `None` when
/// its ticket was not locked here: its caller runs it alone;
/// `Batched::HandBack` when the slot changed under the batch. Any error is
/// the batch's: the caller rolls it back whole.
pub(crate) fn reserve_batch_in(
    tx: &mut Tx<'_>,
    orq: Orq,
    slot_id: SlotId,
    items: &[&ReserveItem],
) -> Result<Batched<Reservation>> {
    let codes: Vec<&str> = items.iter().map(|i| i.req.ticket.as_str()).collect();
    let mut locked: HashMap<TicketCode, Ticket> = HashMap::new();
    for row in tx
        .query(LOCK_TICKETS.as_str(), &[&codes, &orq.0])
        .map_err(db)?
    {
        let t = ticket(&row)?;
        locked.insert(t.ticket_code.clone(), t);
    }
    let mut answers: Vec<Option<Result<Reservation>>> = items.iter().map(|_| None).collect();
    if locked.is_empty() {
        return Ok(Batched::Answers(answers));
    }
    let present: Vec<&str> = locked.keys().map(TicketCode::as_str).collect();
    let mut held: HashMap<TicketCode, (Reservation, Option<VenueId>)> = HashMap::new();
    for row in tx
        .query(HELD_ROWS.as_str(), &[&present, &orq.0])
        .map_err(db)?
    {
        let r = reservation(&Prefixed {
            row: &row,
            prefix: "r_",
        })?;
        let venue = row.get::<_, Option<i64>>("held_venue").map(VenueId);
        held.insert(r.ticket_id.clone(), (r, venue));
    }
    let row = tx
        .query_opt(SLOT_AND_VENUE.as_str(), &[&slot_id.0, &orq.0])
        .map_err(db)?;
    let seen = match &row {
        Some(row) => Some((
            slot(&Prefixed { row, prefix: "s_" })?,
            match row.get::<_, Option<i64>>("v_id") {
                Some(_) => Some(venue(&Prefixed { row, prefix: "v_" })?),
                None => None,
            },
        )),
        None => None,
    };
    // What a lone reservation checks before the slot, in its order: a
    // ticket held at a venue the caller may not book is NOT_FOUND, then
    // the slot and its venue must exist.
    let mut candidates = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Some(ticket) = locked.remove(&item.req.ticket) else {
            continue;
        };
        let existing = held.remove(&item.req.ticket);
        let before_slot = || -> Result<(), DomainError> {
            if let Some((_, held_venue)) = &existing {
                let held = held_venue.ok_or(DomainError::NotFound { entity: "slot" })?;
                item.by.check_may_book(held)?;
            }
            let (_, venue) = seen
                .as_ref()
                .ok_or(DomainError::NotFound { entity: "slot" })?;
            venue
                .as_ref()
                .ok_or(DomainError::NotFound { entity: "venue" })?;
            Ok(())
        };
        match before_slot() {
            Ok(()) => candidates.push(Candidate {
                index,
                ticket,
                existing: existing.map(|(r, _)| r),
            }),
            Err(e) => answers[index] = Some(Err(e.into())),
        }
    }
    let (Some((first_look, Some(venue))), false) = (seen, candidates.is_empty()) else {
        return Ok(Batched::Answers(answers));
    };
    let (planned, _) = decide(items, &candidates, &first_look, &venue);
    let mut written = Vec::with_capacity(candidates.len());
    for (c, decision) in candidates.iter().zip(&planned) {
        written.push(match decision {
            Ok(()) => {
                let item = items[c.index];
                Some(write_reservation(
                    tx,
                    orq,
                    &item.req,
                    &c.ticket,
                    c.existing.as_ref(),
                    item.now,
                )?)
            }
            Err(_) => None,
        });
    }
    let granted = planned.iter().filter(|d| d.is_ok()).count();
    if granted > 0 {
        // The slot's lock last, so the hot row is held only for this
        // read, its update and the commit.
        let current = require_slot(tx, orq, slot_id, true)?;
        let (decided, after) = decide(items, &candidates, &current, &venue);
        if decided != planned {
            return Ok(Batched::HandBack("the slot changed since the first look"));
        }
        let last = candidates
            .iter()
            .zip(&planned)
            .filter(|(_, d)| d.is_ok())
            .map(|(c, _)| items[c.index].now)
            .max()
            .expect("granted > 0");
        let delta = i64::try_from(granted).expect("a batch is small");
        if current.after_booking_change(delta) != (after.booked_count, after.status) {
            // The rules decided each place on its own, and taking them all
            // at once would end elsewhere (a status a count crosses): not
            // this batch's to write.
            return Ok(Batched::HandBack("the places taken at once end elsewhere"));
        }
        change_booking(tx, &current, delta, last)?;
    }
    for ((c, decision), reservation) in candidates.iter().zip(planned).zip(written) {
        answers[c.index] = Some(match (decision, reservation) {
            (Ok(()), Some(r)) => Ok(r),
            (Err(e), _) => Err(e.into()),
            (Ok(()), None) => unreachable!("a granted reservation is written"),
        });
    }
    Ok(Batched::Answers(answers))
}

/// A test's reservation: what `reserve_slot_as` takes (org, request, who
/// asks, when), for `reserve_together` and `reserve_one_batch`.
#[cfg(feature = "test-hooks")]
pub type ReserveTestItem = (Orq, ReserveRequest, ChangedBy, DateTime<Utc>);

#[cfg(feature = "test-hooks")]
fn test_item((orq, req, by, now): &ReserveTestItem) -> ReserveItem {
    ReserveItem {
        orq: *orq,
        req: req.clone(),
        by: *by,
        now: *now,
    }
}

impl PgStore {
    /// `reserve_slot_as`: queued with the reservations asked at the same
    /// time on this instance; answered once the COMMIT of its batch
    /// returned, or run alone here when the batch handed it back.
    pub(crate) fn reserve_grouped(&self, item: ReserveItem) -> Result<Reservation> {
        self.reserve_queue.run(
            item,
            |items| self.reserve_batch(items),
            |item| self.reserve_alone(item),
        )
    }

    fn reserve_alone(&self, item: &ReserveItem) -> Result<Reservation> {
        self.write(|tx| {
            crate::reservations::reserve_one(tx, item.orq, &item.req, item.by, item.now)
        })
    }

    /// `EXPLAIN` of a batch's ticket lock and reservation-rows read
    /// (`LOCK_TICKETS`, `HELD_ROWS`) for `codes` of `orq`, in a read-only
    /// transaction (nothing locked). For tests: which indexes they start
    /// from.
    #[cfg(feature = "test-hooks")]
    pub fn reserve_reads_plan(&self, orq: Orq, codes: &[&str]) -> Result<String> {
        self.read(|tx| {
            let mut plan = String::new();
            for sql in [LOCK_TICKETS.as_str(), HELD_ROWS.as_str()] {
                for row in tx
                    .query(format!("EXPLAIN {sql}").as_str(), &[&codes, &orq.0])
                    .map_err(db)?
                {
                    plan.push_str(row.get::<_, &str>(0));
                    plan.push('\n');
                }
            }
            Ok(plan)
        })
    }

    /// What this instance's reservation batches were: how many, their
    /// items, the largest, how many were handed back whole. For tests and
    /// benches (whether batches formed).
    #[cfg(feature = "test-hooks")]
    pub fn reserve_batch_counts(&self) -> crate::group_commit::BatchCounts {
        self.reserve_queue.counters.get()
    }

    /// Runs reservations as concurrent `reserve_slot_as` calls on one
    /// instance would be run (`group_commit::together`), and answers each
    /// in `items`' order. For tests.
    #[cfg(feature = "test-hooks")]
    pub fn reserve_together(&self, items: &[ReserveTestItem]) -> Vec<Result<Reservation>> {
        crate::group_commit::together(
            items.iter().map(test_item).collect(),
            |items| self.reserve_batch(items),
            |item| self.reserve_alone(item),
        )
    }

    /// One batch of `items` (one org, one slot, distinct tickets) and its
    /// answers: `None` for an item handed back to its caller (not run alone
    /// here). For tests: what a batch itself did.
    #[cfg(feature = "test-hooks")]
    pub fn reserve_one_batch(&self, items: &[ReserveTestItem]) -> Vec<Option<Result<Reservation>>> {
        let items: Vec<ReserveItem> = items.iter().map(test_item).collect();
        let refs: Vec<&ReserveItem> = items.iter().collect();
        crate::group_commit::as_handed(self.reserve_batch(&refs))
    }

    /// One batch: one transaction, one COMMIT; each item's answer in order.
    fn reserve_batch(&self, items: &[&ReserveItem]) -> Vec<Answer<Reservation>> {
        let Some((orq, slot_id)) = items.first().map(|item| item.batch()) else {
            return Vec::new();
        };
        // One alone runs the lone path (five statements, the place taken
        // by the one UPDATE that is also the slot's lock, `take_place`),
        // here, inside its slot's place in flight: the slot's next callers
        // queue behind it and make the next batch.
        if let [item] = items {
            return vec![Answer::Done(self.reserve_alone(item))];
        }
        self.run_batch(
            "reserve",
            &self.reserve_queue.counters,
            crate::conn::BEGIN_WRITE,
            items.len(),
            |tx| reserve_batch_in(tx, orq, slot_id, items),
        )
    }
}
