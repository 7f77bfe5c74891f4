//! The change feed's log, read in commit order (see `change_log` and
//! `feed_sequence()` in migrations/0001_schema.sql): the half of the sync
//! service `changes_since` that decides which entries a device gets next.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::{Orq, VenueId};
use crate::{db, PgStore};
use entrada_store::Result;

/// Entries one numbering transaction (`settle_feed`, and a pull's
/// `sequence_feed`) numbers at most: a pull that comes before the numberer
/// caught up with an import holds the numbering lock, and the rows' locks,
/// for a batch at a time (~60 ms), not for the whole backlog.
pub(crate) const SETTLE_BATCH: i64 = 2_000;
/// Batches a pull numbers at most before it reads its page: the work of one
/// request is bounded (10,000 entries at the default batch) whatever the
/// backlog. Numbering all of it in the request, as before, was a 408 when a
/// new gate came right after a bulk import (pg_http: ~243,000 pending
/// entries, more than the server's 15 s request timeout). What a pull
/// leaves pending, the next pulls (the page says there is more) or the
/// background numberer number.
const PULL_BATCHES: i64 = 5;
/// The planner settings of a numbering transaction (`SET LOCAL`: that
/// transaction only): the oldest pending entries are found by walking the
/// pending index in write order and each is updated through the primary
/// key, whatever the statistics say. Without them, on a `change_log` not
/// yet analyzed (a bulk import on a new database; autovacuum not there
/// yet) the planner guessed a few hundred pending rows, fetched every
/// pending entry through the `seq` index and sorted them all, for each
/// batch of 2,000: ~110-175 ms a batch at 243,000 pending on a quiet
/// machine instead of ~25 ms, so numbering a backlog was quadratic in it.
/// Statistics that know the backlog lead to this plan anyway; the settings
/// only rule out the plans that read the whole pending set or the whole log
/// (a sort of the pending rows, a hash join with the log).
const NUMBERING_PLAN: &str = "SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off; \
     SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL enable_seqscan = off";
/// Entries one `settle_feed` call (the background numberer) must number for
/// it to vacuum the log after: a bulk import, not the steady trickle of
/// verifications (each re-marks an entry pending).
const VACUUM_AFTER: i64 = 10_000;
/// The least time between two such vacuums by one instance.
const VACUUM_EVERY: Duration = Duration::from_secs(300);

/// How many pulls in progress an instance carries a count for.
const CARRIED: usize = 256;
/// How many of them one (org, venue) may hold: the devices of a venue that
/// sync at once; more (one device asking pages of 1 from cursors it does
/// not follow up) evict that venue's oldest, not every other venue's.
const CARRIED_PER_VENUE: usize = 32;
/// How long a carried count is used: a cursor asked again later counts
/// again, rather than get an estimate from a pull long over.
const CARRIED_FOR: Duration = Duration::from_secs(60);

/// A page's `remaining`, carried to the next page of the same pull: counting
/// the entries after the cursor on every page cost a scan of the whole
/// backlog per page (a first sync of 226,023 changes, 114 pages: 7.9 s in
/// all). Per instance and in memory: a page this instance did not answer
/// the page before of counts again (behind a round-robin balancer, that
/// may be every page), as does a page asked more than `CARRIED_FOR` after
/// the one before it.
#[derive(Debug, Default)]
pub(crate) struct FeedCounts(Mutex<Vec<Carried>>);

#[derive(Debug, Clone, Copy)]
pub(crate) struct Carried {
    orq: i64,
    venue: i64,
    cursor: i64,
    at: Instant,
    /// Entries after `cursor` when counted.
    pub remaining: i64,
    /// The highest seq numbered then: entries above it came since.
    pub top: i64,
}

impl FeedCounts {
    /// The count left for a page that starts at `cursor`, if this instance
    /// answered the page before it less than `CARRIED_FOR` ago (taken: a
    /// cursor is answered once).
    pub(crate) fn take(&self, orq: Orq, venue: VenueId, cursor: i64) -> Option<Carried> {
        self.take_at(orq, venue, cursor, Instant::now())
    }

    fn take_at(&self, orq: Orq, venue: VenueId, cursor: i64, now: Instant) -> Option<Carried> {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|c| now.saturating_duration_since(c.at) < CARRIED_FOR);
        let i = all
            .iter()
            .position(|c| c.orq == orq.0 && c.venue == venue.0 && c.cursor == cursor)?;
        Some(all.remove(i))
    }

    pub(crate) fn put(&self, orq: Orq, venue: VenueId, cursor: i64, remaining: i64, top: i64) {
        self.put_at(orq, venue, cursor, remaining, top, Instant::now())
    }

    fn put_at(
        &self,
        orq: Orq,
        venue: VenueId,
        cursor: i64,
        remaining: i64,
        top: i64,
        now: Instant,
    ) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|c| {
            now.saturating_duration_since(c.at) < CARRIED_FOR
                && !(c.orq == orq.0 && c.venue == venue.0 && c.cursor == cursor)
        });
        // Oldest first: the first of this venue's, or of all, goes.
        let venues = all.iter().filter(|c| c.orq == orq.0 && c.venue == venue.0);
        if venues.count() >= CARRIED_PER_VENUE {
            if let Some(i) = all
                .iter()
                .position(|c| c.orq == orq.0 && c.venue == venue.0)
            {
                all.remove(i);
            }
        } else if all.len() >= CARRIED {
            all.remove(0);
        }
        all.push(Carried {
            orq: orq.0,
            venue: venue.0,
            cursor,
            at: now,
            remaining,
            top,
        });
    }
}

/// Runs `vacuum` unless one was tried less than `VACUUM_EVERY` before
/// `now` (`last`: the start of the last attempt, the `now` it was given,
/// so a VACUUM's own length counts towards the interval). Any attempt is remembered once
/// it has run, a failure too (the caller logs it): a VACUUM that always
/// fails (a role that may not vacuum, a statement timeout) is retried once
/// every `VACUUM_EVERY`, not at every bulk numbering. Nothing is
/// remembered before the VACUUM ran.
fn vacuum_unless_recent(
    last: &Mutex<Option<Instant>>,
    now: Instant,
    vacuum: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let recent = last
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_some_and(|at| now.saturating_duration_since(at) < VACUUM_EVERY);
    if recent {
        return Ok(());
    }
    let result = vacuum();
    *last.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
    result
}

#[cfg(test)]
mod carried_tests {
    use super::*;

    /// A VACUUM is tried at most once every `VACUUM_EVERY`, a failed one
    /// too (its error returned, for the caller's log): one that always
    /// fails is not retried at every bulk numbering. (The failure is the
    /// closure's: a real VACUUM's error cannot be caused on demand, a
    /// skipped lock or a missing privilege is a warning, not an error.)
    #[test]
    fn a_vacuum_is_tried_at_most_once_every_interval_even_failing() {
        let last = Mutex::new(None);
        let t0 = Instant::now();
        let runs = std::cell::Cell::new(0);
        let failing = || {
            runs.set(runs.get() + 1);
            Err(entrada_store::StoreError::Unavailable("timeout".into()))
        };
        assert!(vacuum_unless_recent(&last, t0, failing).is_err());
        assert_eq!(*last.lock().unwrap(), Some(t0), "the attempt is remembered");
        vacuum_unless_recent(&last, t0 + Duration::from_secs(1), failing).unwrap();
        assert_eq!(
            runs.get(),
            1,
            "a failure is not retried within VACUUM_EVERY"
        );
        let ok = || {
            runs.set(runs.get() + 1);
            Ok(())
        };
        vacuum_unless_recent(&last, t0 + VACUUM_EVERY, ok).unwrap();
        assert_eq!(runs.get(), 2, "tried again after VACUUM_EVERY");
        vacuum_unless_recent(&last, t0 + VACUUM_EVERY + Duration::from_secs(1), ok).unwrap();
        assert_eq!(runs.get(), 2, "not again within VACUUM_EVERY");
    }

    #[test]
    fn a_carried_count_expires() {
        let counts = FeedCounts::default();
        let t0 = Instant::now();
        counts.put_at(Orq(1), VenueId(1), 10, 5, 20, t0);
        counts.put_at(Orq(1), VenueId(1), 11, 5, 20, t0);
        assert!(counts
            .take_at(
                Orq(1),
                VenueId(1),
                10,
                t0 + CARRIED_FOR - Duration::from_secs(1)
            )
            .is_some());
        assert!(
            counts
                .take_at(Orq(1), VenueId(1), 11, t0 + CARRIED_FOR)
                .is_none(),
            "older than CARRIED_FOR: counted again"
        );
    }

    #[test]
    fn one_venue_cannot_evict_the_others() {
        let counts = FeedCounts::default();
        let t0 = Instant::now();
        counts.put_at(Orq(1), VenueId(2), 7, 3, 9, t0);
        for cursor in 0..(CARRIED as i64 * 2) {
            counts.put_at(Orq(1), VenueId(1), cursor, 1, 9, t0);
        }
        assert_eq!(
            counts
                .take_at(Orq(1), VenueId(2), 7, t0)
                .map(|c| c.remaining),
            Some(3)
        );
        let held = counts.0.lock().unwrap().len();
        assert_eq!(held, CARRIED_PER_VENUE, "venue 1 holds its cap, its newest");
        let last = CARRIED as i64 * 2 - 1;
        assert!(counts.take_at(Orq(1), VenueId(1), last, t0).is_some());
        assert!(counts.take_at(Orq(1), VenueId(1), 0, t0).is_none());
    }

    #[test]
    fn the_same_cursor_is_carried_once() {
        let counts = FeedCounts::default();
        let t0 = Instant::now();
        counts.put_at(Orq(1), VenueId(1), 10, 5, 20, t0);
        counts.put_at(Orq(1), VenueId(1), 10, 4, 21, t0);
        assert_eq!(
            counts
                .take_at(Orq(1), VenueId(1), 10, t0)
                .map(|c| c.remaining),
            Some(4)
        );
        assert!(counts.take_at(Orq(1), VenueId(1), 10, t0).is_none());
    }
}

/// One entry of the change log, as a device of a venue receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    pub seq: i64,
    pub entity: String,
    pub entity_id: String,
    pub op: String,
}

impl PgStore {
    /// Numbers the log entries of the transactions that have ended, the
    /// oldest written first, in batches (`SETTLE_BATCH`), each its own short
    /// transaction, until a batch comes back short or `PULL_BATCHES` were
    /// numbered; returns whether it caught up (a batch came back short:
    /// everything committed before it is numbered). What a pull does before
    /// it reads: a pull that caught up sees everything committed before it;
    /// one that did not says its page has more (`feed_page`), so a gate's
    /// `sync --once` right after an import still gets all of it, a bounded
    /// numbering per page, even before the background numberer caught up.
    /// No transaction holds the feed's lock, or row locks on pending
    /// entries, for more than a batch. Never vacuums (`settle_feed`).
    pub fn sequence_feed(&self) -> Result<bool> {
        let batch = self
            .feed_pull_batch
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(1);
        for _ in 0..PULL_BATCHES {
            if self.number_batch(batch)? < batch {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// One transaction of `feed_sequence_batch(batch)` (migration 0017).
    fn number_batch(&self, batch: i64) -> Result<i64> {
        // READ COMMITTED whatever the server's default: the numbering
        // relies on each of its statements seeing what committed before it.
        self.write_with(&NUMBERING_BEGIN, |tx| number_batch_in(tx, batch))
    }

    /// Tests only: one numbering transaction of `batch` as the feed runs it
    /// (`number_batch`), and the `change_log` rows it fetched (heap tuples
    /// fetched through an index, plus those a sequential scan read; this
    /// transaction's own counts): whether a batch reads about its own
    /// entries or the whole backlog, whatever the plan looks like.
    #[cfg(feature = "test-hooks")]
    pub fn feed_numbering_reads(&self, batch: i64) -> Result<(i64, i64)> {
        // The backend's counts for the table so far: the pending ones of
        // earlier transactions too, so the batch's are the difference.
        const READ: &str =
            "SELECT coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0)::BIGINT \
             FROM pg_stat_xact_user_tables WHERE relid = 'change_log'::regclass";
        // With `number_batch`'s own BEGIN: the settings it sends are the
        // ones tested.
        self.write_with(&NUMBERING_BEGIN, |tx| {
            let before: i64 = tx.query_one(READ, &[]).map_err(db)?.get(0);
            let numbered = number_batch_in(tx, batch)?;
            let after: i64 = tx.query_one(READ, &[]).map_err(db)?.get(0);
            Ok((numbered, after - before))
        })
    }

    /// Tests only: the batch a pull numbers (`sequence_feed`), small to
    /// leave entries pending behind a pull.
    #[doc(hidden)]
    pub fn set_feed_pull_batch(&self, batch: i64) {
        self.feed_pull_batch
            .store(batch.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Numbers the pending entries in batches of `SETTLE_BATCH`, each in
    /// its own transaction, until none that has committed is left; returns
    /// how many. The server runs it every 200 ms (`spawn_feed_numberer`),
    /// so an import is numbered while it happens, not by the first pull
    /// after it; a pull still numbers what is left, in the same batches
    /// (read your writes).
    pub fn settle_feed(&self) -> Result<i64> {
        // Most ticks find nothing pending: one autocommit statement then
        // (no BEGIN, no COMMIT), in the pending index's order as in
        // feed_sequence_batch. Only committed pending entries are seen.
        if self
            .read_row(
                "SELECT 1 FROM change_log WHERE seq IS NULL ORDER BY written LIMIT 1",
                &[],
            )?
            .is_none()
        {
            return Ok(0);
        }
        let numbered = self.settle_feed_batch(SETTLE_BATCH)?;
        self.after_bulk_numbering(numbered);
        Ok(numbered)
    }

    /// `settle_feed` in batches of `batch`, without the vacuum after it
    /// (tests: small batches, so that numberers interleave).
    #[doc(hidden)]
    pub fn settle_feed_batch(&self, batch: i64) -> Result<i64> {
        let batch = batch.max(1);
        let mut numbered = 0;
        loop {
            let n = self.number_batch(batch)?;
            numbered += n;
            if n < batch {
                return Ok(numbered);
            }
        }
    }

    /// After one `settle_feed` call numbered a bulk import (at least
    /// `VACUUM_AFTER` entries), a VACUUM (ANALYZE) of the log: each numbered
    /// entry left a dead version behind (in the pending index), its page
    /// lost the visibility map's bit (so counting a device's backlog read
    /// the table too: 160 ms instead of 60 for 226,000 entries), and the
    /// statistics still said "all pending". Autovacuum would come, in its
    /// time; a first sync often follows an import at once. Only from the
    /// background numberer, never on a pull's path (a VACUUM (ANALYZE)
    /// re-plans every statement on the table), at most once every
    /// `VACUUM_EVERY` per instance (a failed attempt counts), and best-effort: maintenance only, a
    /// failure (a role that may not vacuum, a timeout) is logged and the
    /// numbering still succeeds.
    fn after_bulk_numbering(&self, numbered: i64) {
        if numbered < VACUUM_AFTER {
            return;
        }
        // Another instance's VACUUM at work: this one is not needed
        // (SKIP_LOCKED).
        let vacuumed = vacuum_unless_recent(&self.feed_vacuumed, Instant::now(), || {
            self.outside_transaction("VACUUM (ANALYZE, SKIP_LOCKED) change_log")
        });
        if let Err(e) = vacuumed {
            tracing::warn!(error = %e, numbered, "vacuum of the change log after bulk numbering failed");
        }
    }

    /// The entries after `cursor` that a device of `venue` receives (the
    /// org-wide ones and its venue's), oldest first. A cursor a device held
    /// is never overtaken: an entry that commits later gets a higher seq.
    /// The log alone, for tests of the numbering: it numbers everything
    /// committed first (in batches, unbounded: not a request's path, whose
    /// pages `feed_page` makes).
    pub fn feed_entries(
        &self,
        orq: Orq,
        venue: VenueId,
        cursor: i64,
        limit: u32,
    ) -> Result<Vec<FeedEntry>> {
        self.settle_feed_batch(
            self.feed_pull_batch
                .load(std::sync::atomic::Ordering::Relaxed),
        )?;
        let limit = i64::from(limit.clamp(1, 5000));
        self.read(|tx| {
            // Two index ranges (org-wide, this venue), merged in seq order.
            let rows = tx
                .query(
                    "SELECT seq, entity, entity_id, op FROM ( \
                       (SELECT seq, entity, entity_id, op FROM change_log \
                        WHERE orq = $1 AND scope = 0 AND seq > $2 ORDER BY seq LIMIT $3) \
                       UNION ALL \
                       (SELECT seq, entity, entity_id, op FROM change_log \
                        WHERE orq = $1 AND scope = $4 AND seq > $2 ORDER BY seq LIMIT $3) \
                     ) page ORDER BY seq LIMIT $3",
                    &[&orq.0, &cursor, &limit, &venue.0],
                )
                .map_err(db)?;
            Ok(rows
                .iter()
                .map(|r| FeedEntry {
                    seq: r.get(0),
                    entity: r.get(1),
                    entity_id: r.get(2),
                    op: r.get(3),
                })
                .collect())
        })
    }
}

/// A numbering transaction's first round trip: its BEGIN and its planner
/// settings (`NUMBERING_PLAN`) in one simple query.
static NUMBERING_BEGIN: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{}; {NUMBERING_PLAN}", crate::conn::BEGIN_WRITE));

/// One numbering transaction's statement, in a transaction started with
/// `NUMBERING_PLAN`: `feed_sequence_batch(batch)` (migration 0017); how
/// many it numbered.
fn number_batch_in(tx: &mut crate::conn::Tx<'_>, batch: i64) -> Result<i64> {
    Ok(tx
        .query_one("SELECT feed_sequence_batch($1)", &[&batch])
        .map_err(db)?
        .get(0))
}
