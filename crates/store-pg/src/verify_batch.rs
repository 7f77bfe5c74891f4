//! Group commit for verify-ticket (`group_commit.rs` says how batches are
//! made, run and answered). Each verification is its own short transaction
//! whose COMMIT waits for the WAL's flush, and much of a verification's
//! database time is per transaction and per statement (BEGIN, the lock, the
//! read, the write's planning, COMMIT), not per row. So verifications asked
//! of one instance at once are run together: one org per batch, distinct
//! tickets, one transaction (`gate::verify_batch_in`) and one COMMIT.
//!
//! Exactly once across instances: the tickets' row locks still queue two
//! transactions. A batch locks only the tickets nobody holds (`SKIP
//! LOCKED`) and never waits for a ticket's lock; any other ticket of the
//! batch goes back to its own caller, who runs it alone (`verify_one`),
//! waiting for that ticket's lock as before batches, and then sees the
//! holder's entry (ALREADY_VERIFIED). A ticket asked twice at once goes into
//! two batches (of one instance or two); whichever locks it first admits it
//! (not necessarily the one asked first), the other sees that entry: once,
//! in no promised order.
//!
//! The server hands a verification off (`HandOff::verify_ticket_handed_off`)
//! rather than blocking a thread per request: its item is queued from the
//! async worker, and the request's task awaits a oneshot. A key's batches
//! are led by at most `IN_FLIGHT` threads of the blocking pool, each
//! started when a place is free and leading batch after batch while items
//! are queued (`group_commit::Place`). Per verification: one wake-up of its
//! task (its answer, after the COMMIT); per run of batches: one blocking
//! thread. Before, each verification took a blocking thread (woken), a
//! wait on the queue's condvar (woken by each batch's answers, with every
//! other waiter of the org), and the wake-up of its task.

use std::sync::Arc;

use crate::domain::{Orq, TicketCode, Verdict};
use crate::gate::{verify_batch_in, verify_one, VerifyItem};
use crate::group_commit::{Answer, Batched, GroupQueue, Grouped};
use crate::PgStore;
use entrada_store::{Pending, Result, StoreError};

/// The verifications waiting on one instance.
pub(crate) type VerifyQueue = GroupQueue<VerifyItem, Verdict>;

/// What a handed-off verification answers when its leader or its lone
/// run died without an answer (a bug or a runtime shutting down).
const NO_ANSWER: &str = "the verification's batch ended without an answer";

impl Grouped for VerifyItem {
    type Batch = Orq;
    type Distinct = TicketCode;
    /// Two per org: a verify batch never waits on a lock, and with one the
    /// batch's statements ran one after the other on one backend while the
    /// next waited, the database at ~0.7 of a core on the bench's two
    /// (BENCHMARKS.md, session 33); two keep it busy while a batch waits
    /// for its round trips and its COMMIT's flush.
    const IN_FLIGHT: usize = 2;
    fn batch(&self) -> Orq {
        self.orq
    }
    fn distinct(&self) -> TicketCode {
        self.code.clone()
    }
}

/// A test's verification: what `verify_ticket` takes.
#[cfg(feature = "test-hooks")]
pub type TestItem = (
    Orq,
    crate::domain::TicketCode,
    crate::domain::OperatorId,
    crate::domain::Gate,
    chrono::DateTime<chrono::Utc>,
);

#[cfg(feature = "test-hooks")]
fn test_item((orq, code, operator, gate, now): &TestItem) -> VerifyItem {
    use chrono::SubsecRound;
    VerifyItem {
        orq: *orq,
        code: code.clone(),
        operator: *operator,
        gate: *gate,
        now: now.trunc_subsecs(3),
    }
}

impl PgStore {
    /// `verify_ticket`: queued with the verifications asked at the same
    /// time on this instance; answered once the COMMIT of its batch
    /// returned, or run alone here when the batch handed it back.
    pub(crate) fn verify_grouped(&self, item: VerifyItem) -> Result<Verdict> {
        self.verify_queue.run(
            item,
            |items| self.verify_batch(items),
            |item| self.write(|tx| verify_one(tx, item)),
        )
    }

    /// `verify_grouped` for a caller on a tokio runtime (`HandOff`): the
    /// item queued from the caller's thread, its batch led on the runtime's
    /// blocking pool, its answer awaited; `None` off a runtime. A handed
    /// back item runs alone on a blocking thread, with its own answer.
    pub(crate) fn verify_handed_off(self: Arc<Self>, item: VerifyItem) -> Option<Pending<Verdict>> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (answer, place) = VerifyQueue::hand_off(&self, |s| &s.verify_queue, item.clone());
        if let Some(place) = place {
            runtime.spawn_blocking(move || place.lead(|store, items| store.verify_batch(items)));
        }
        Some(Box::pin(async move {
            match answer.await {
                Ok(Answer::Done(answer)) => answer,
                Ok(Answer::Alone) => runtime
                    .spawn_blocking(move || self.write(|tx| verify_one(tx, &item)))
                    .await
                    .unwrap_or_else(|_| Err(StoreError::Engine(NO_ANSWER.to_owned()))),
                // The sender went without an answer: only a leader that
                // died between its batch and its answers drops one.
                Err(_) => Err(StoreError::Engine(NO_ANSWER.to_owned())),
            }
        }))
    }

    /// Runs verifications as concurrent `verify_ticket` calls on one
    /// instance would be run (`group_commit::together`), and answers each
    /// in `items`' order. For tests.
    #[cfg(feature = "test-hooks")]
    pub fn verify_tickets_together(&self, items: &[TestItem]) -> Vec<Result<Verdict>> {
        crate::group_commit::together(
            items.iter().map(test_item).collect(),
            |items| self.verify_batch(items),
            |item| self.write(|tx| verify_one(tx, item)),
        )
    }

    /// One batch of `items` (one org, distinct tickets) and its answers:
    /// `None` for an item handed back to its caller (not run alone here).
    /// For tests: what a batch itself did.
    #[cfg(feature = "test-hooks")]
    pub fn verify_one_batch(&self, items: &[TestItem]) -> Vec<Option<Result<Verdict>>> {
        let items: Vec<VerifyItem> = items.iter().map(test_item).collect();
        let refs: Vec<&VerifyItem> = items.iter().collect();
        crate::group_commit::as_handed(self.verify_batch(&refs))
    }

    /// `EXPLAIN` of a batch's door-rows read and of its admissions' write
    /// for `codes` and `reservations` of `orq` (`gate::write_entries_plan`),
    /// in a read-only transaction. For tests: which indexes they start from.
    #[cfg(feature = "test-hooks")]
    pub fn verify_write_plan(
        &self,
        orq: Orq,
        codes: &[&str],
        reservations: &[uuid::Uuid],
    ) -> Result<String> {
        self.read(|tx| crate::gate::write_entries_plan(tx, orq, codes, reservations))
    }

    /// The `SET LOCAL`s a verify batch starts with (`gate::GENERIC_PLANS`),
    /// the SQL of its statements (lock, door rows, write), which it runs
    /// with generic plans, and of the two reads its decisions may make in
    /// the same transaction under the same settings (the admitting device's
    /// name, a released no-show's slot). For tests: what those plans are.
    #[cfg(feature = "test-hooks")]
    pub fn verify_batch_sql() -> (&'static str, [&'static str; 3], [String; 2]) {
        crate::gate::verify_batch_sql()
    }

    /// How often each statement prepared on a connection of this store
    /// was run with its generic plan and with a custom one
    /// (`pg_prepared_statements`: the SQL, generic, custom), on the
    /// connection the pool gives (with a pool of one: the only one). For
    /// tests: which plans a batch ran.
    #[cfg(feature = "test-hooks")]
    pub fn prepared_plan_counts(&self) -> Result<Vec<(String, i64, i64)>> {
        self.read(|tx| {
            Ok(tx
                .query(
                    "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements",
                    &[],
                )
                .map_err(crate::db)?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect())
        })
    }

    /// One batch (one org, distinct tickets): one transaction, one COMMIT;
    /// each item's answer in order. A batch of one runs the same way (the
    /// statements of a lone verification and the SET of its plans: never
    /// waits on a lock).
    fn verify_batch(&self, items: &[&VerifyItem]) -> Vec<Answer<Verdict>> {
        let Some(orq) = items.first().map(|item| item.orq) else {
            return Vec::new();
        };
        self.run_batch(
            "verify",
            &self.verify_queue.counters,
            &crate::gate::VERIFY_BATCH_BEGIN,
            items.len(),
            |tx| verify_batch_in(tx, orq, items).map(Batched::Answers),
        )
    }
}
