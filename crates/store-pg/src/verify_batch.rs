//! Group commit for verify-ticket. Each verification is its own short
//! transaction whose COMMIT waits for the WAL's flush, and much of a
//! verification's database time is per transaction and per statement
//! (BEGIN, the lock, the read, the write's planning, COMMIT), not per row.
//! So verifications asked of one instance at once are run together: a
//! caller that finds fewer than `IN_FLIGHT` batches in flight leads, takes
//! what is queued (at most `MAX_BATCH`, one org, distinct tickets), runs it
//! in one transaction (`gate::verify_batch_in`) and one COMMIT, then hands
//! each waiting caller its own answer. A lone verification leads a batch of
//! one at once (no timer waits for company).
//!
//! What must hold, and how:
//! - an ADMIT is answered only after its COMMIT returned: answers are
//!   published after `commit()`;
//! - exactly once across instances: the tickets' row locks still queue two
//!   transactions. A batch locks only the tickets nobody holds (`SKIP
//!   LOCKED`) and never waits for a ticket's lock; any other ticket of the
//!   batch goes back to its own caller, who runs it alone (`verify_one`),
//!   waiting for that ticket's lock as before batches, and then sees the
//!   holder's entry (ALREADY_VERIFIED). A ticket asked twice at once goes
//!   into two batches (of one instance or two); whichever locks it first
//!   admits it (not necessarily the one asked first), the other sees that
//!   entry: once, in no promised order;
//! - a refusal writes nothing and leaves the others alone (the domain
//!   decides before anything of that ticket is written);
//! - no caller waits forever, nor for another's ticket: a batch never waits
//!   on a row lock; a database error in a batch before its COMMIT rolls it
//!   back and hands each verification back to its own caller, who runs it
//!   alone (at once, each on its own thread, with its own answer); a lost
//!   connection answers each with that error (nothing was committed: the
//!   client retries). A COMMIT the server refused with an ERROR (nothing
//!   written) goes back to the callers the same way; a COMMIT whose outcome
//!   is unknown (no error from the server) answers each with that error, as
//!   a lone verification would.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use postgres::IsolationLevel;

use crate::conn::{PgConn, Tx};
use crate::domain::{Orq, Verdict};
use crate::gate::{verify_batch_in, verify_one, VerifyItem};
use crate::{db, PgStore};
use entrada_store::{Result, StoreError};

/// At most this many verifications per transaction: bounds the time one
/// batch holds its tickets' locks and what a caller waits behind.
pub(crate) const MAX_BATCH: usize = 32;

/// Batches in flight at once on one instance. With one, the batch's
/// statements run one after the other on one backend while the others
/// wait, and the database sat at ~0.7 of a core on the bench's two (
/// BENCHMARKS.md, session 33); two keep it busy while a batch waits for its
/// round trips and its COMMIT's flush. A ticket another batch (or anyone)
/// holds is skipped (`SKIP LOCKED`) and its caller waits for it alone.
pub(crate) const IN_FLIGHT: usize = 2;

/// What a batch says to one of its callers.
// One per item, moved once into the queue: a box would cost an allocation
// per answer for nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Answer {
    /// The answer (after the batch's COMMIT for an ADMIT).
    Done(Result<Verdict>),
    /// Not decided by the batch (its ticket was locked elsewhere, or
    /// unknown; or the batch failed and nothing of it was written): the
    /// caller runs it alone, on its own thread.
    Alone,
}

/// The verifications waiting on one instance, and the batches in flight.
#[derive(Default)]
pub(crate) struct VerifyQueue {
    state: Mutex<Queue>,
    /// Signalled when a batch's answers are published (and so leadership
    /// is free again).
    answered: Condvar,
}

#[derive(Default)]
struct Queue {
    next_id: u64,
    waiting: VecDeque<(u64, VerifyItem)>,
    leading: usize,
    answers: HashMap<u64, Answer>,
}

impl VerifyQueue {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue's state stays consistent across a panicking leader
        // (`Lead`'s drop), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The next batch from the front of `waiting`: in arrival order, the
/// first's org only, each ticket once (a ticket asked again waits for the
/// next batch), at most `MAX_BATCH`. The rest keep their places.
fn take_batch(waiting: &mut VecDeque<(u64, VerifyItem)>) -> Vec<(u64, VerifyItem)> {
    let Some(orq) = waiting.front().map(|(_, item)| item.orq) else {
        return Vec::new();
    };
    let mut batch = Vec::new();
    let mut codes = HashSet::new();
    waiting.retain(|(id, item)| {
        let take = batch.len() < MAX_BATCH && item.orq == orq && codes.insert(item.code.clone());
        if take {
            batch.push((*id, item.clone()));
        }
        !take
    });
    batch
}

/// A leader's batch in flight. Dropped (also when the batch panicked), it
/// publishes the answers, one per item (an error for any the batch did not
/// answer, so no caller waits forever), frees the leadership and wakes the
/// waiting callers.
struct Lead<'q> {
    queue: &'q VerifyQueue,
    /// The leader's own verification: not published when the leader
    /// panicked (nobody would take its answer).
    own: u64,
    ids: Vec<u64>,
    answers: Vec<Answer>,
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        let mut answers = std::mem::take(&mut self.answers).into_iter();
        let panicking = std::thread::panicking();
        let mut state = self.queue.lock();
        for id in &self.ids {
            let answer = answers.next().unwrap_or_else(|| {
                Answer::Done(Err(StoreError::Engine(
                    "the verification's batch failed".to_owned(),
                )))
            });
            if !(panicking && *id == self.own) {
                state.answers.insert(*id, answer);
            }
        }
        if panicking {
            // The leader's own verification may still be queued (its batch
            // held another org's items first): nobody would take its answer,
            // and it must not be admitted later for a caller that got a 500.
            let own = self.own;
            state.waiting.retain(|(id, _)| *id != own);
        }
        state.leading -= 1;
        drop(state);
        self.queue.answered.notify_all();
    }
}

/// The same error again, for each verification of a batch that failed as
/// one (a lost connection, a COMMIT with an unknown outcome): only these
/// two kinds reach here.
fn same_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Engine(m) => StoreError::Engine(m.clone()),
        other => {
            debug_assert!(false, "a batch failed with {other:?}");
            StoreError::Engine(other.to_string())
        }
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
        let queue = &self.verify_queue;
        let mut state = queue.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.waiting.push_back((id, item.clone()));
        loop {
            match state.answers.remove(&id) {
                Some(Answer::Done(answer)) => return answer,
                Some(Answer::Alone) => {
                    drop(state);
                    return self.write(|tx| verify_one(tx, &item));
                }
                None => {}
            }
            if state.leading < IN_FLIGHT && !state.waiting.is_empty() {
                // Room for a batch: this caller runs the next one (which
                // holds its own item unless another org's items or more than
                // a batch came first, or another leader took it: then it
                // waits for its answer).
                let batch = take_batch(&mut state.waiting);
                state.leading += 1;
                let mut lead = Lead {
                    queue,
                    own: id,
                    ids: batch.iter().map(|(id, _)| *id).collect(),
                    answers: Vec::new(),
                };
                drop(state);
                let items: Vec<&VerifyItem> = batch.iter().map(|(_, item)| item).collect();
                lead.answers = self.verify_batch(&items);
                drop(lead);
                state = queue.lock();
                continue;
            }
            state = queue
                .answered
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Runs verifications as concurrent `verify_ticket` calls on one
    /// instance would be run (the same batches, in arrival order; the items
    /// a batch hands back run alone after it, here one after the other),
    /// and answers each in `items`' order. For tests: it makes batches that
    /// concurrency only makes sometimes.
    #[cfg(feature = "test-hooks")]
    pub fn verify_tickets_together(&self, items: &[TestItem]) -> Vec<Result<Verdict>> {
        let mut waiting: VecDeque<(u64, VerifyItem)> = items
            .iter()
            .enumerate()
            .map(|(i, item)| (i as u64, test_item(item)))
            .collect();
        let mut answers: Vec<Option<Result<Verdict>>> = items.iter().map(|_| None).collect();
        while !waiting.is_empty() {
            let batch = take_batch(&mut waiting);
            let refs: Vec<&VerifyItem> = batch.iter().map(|(_, item)| item).collect();
            for ((id, item), answer) in batch.iter().zip(self.verify_batch(&refs)) {
                answers[*id as usize] = Some(match answer {
                    Answer::Done(answer) => answer,
                    Answer::Alone => self.write(|tx| verify_one(tx, item)),
                });
            }
        }
        answers.into_iter().map(|a| a.expect("answered")).collect()
    }

    /// One batch of `items` (one org, distinct tickets) and its answers:
    /// `None` for an item handed back to its caller (not run alone here).
    /// For tests: what a batch itself did.
    #[cfg(feature = "test-hooks")]
    pub fn verify_one_batch(&self, items: &[TestItem]) -> Vec<Option<Result<Verdict>>> {
        let items: Vec<VerifyItem> = items.iter().map(test_item).collect();
        let refs: Vec<&VerifyItem> = items.iter().collect();
        self.verify_batch(&refs)
            .into_iter()
            .map(|answer| match answer {
                Answer::Done(answer) => Some(answer),
                Answer::Alone => None,
            })
            .collect()
    }

    /// One batch (one org, distinct tickets): one transaction, one COMMIT;
    /// each item's answer in order. A batch of one runs the same way (as
    /// many statements as a lone verification: never waits on a lock).
    fn verify_batch(&self, items: &[&VerifyItem]) -> Vec<Answer> {
        let Some(first) = items.first() else {
            return Vec::new();
        };
        let orq: Orq = first.orq;
        let alone = || -> Vec<Answer> { items.iter().map(|_| Answer::Alone).collect() };
        let outcome = self.call(|conn| {
            let PgConn {
                client, statements, ..
            } = conn;
            // The BEGIN is the first round trip: if it fails, nothing ran
            // (and `call` tries another connection).
            let tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::ReadCommitted)
                .start()
                .map_err(|e| (true, db(e)))?;
            let mut tx = Tx { tx, statements };
            let answers = match verify_batch_in(&mut tx, orq, items) {
                Ok(answers) => answers,
                // No connection: nothing was committed; each caller gets the
                // error now (a retry is the client's), none waits for a
                // reconnection. `call` marks the connection broken.
                Err(e @ StoreError::Unavailable(_)) => return Err((false, e)),
                // Rolled back when `tx` drops: each runs alone, each on its
                // own caller's thread. Logged: a bug that failed every batch
                // would only show as twice the transactions.
                Err(e) => {
                    tracing::warn!(error = %e, items = items.len(), "verify batch rolled back, each runs alone");
                    return Ok(alone());
                }
            };
            match tx.tx.commit() {
                Ok(()) => Ok(answers
                    .into_iter()
                    .map(|a| a.map_or(Answer::Alone, Answer::Done))
                    .collect()),
                Err(e) => {
                    // The server answered the COMMIT with an ERROR (a
                    // deferred constraint, a serialization failure): nothing
                    // was written, each may run alone. Without one the
                    // outcome is unknown: each gets the error.
                    let refused = e.code().is_some();
                    match db(e) {
                        e @ StoreError::Unavailable(_) => Err((false, e)),
                        e if refused => {
                            tracing::warn!(error = %e, items = items.len(), "verify batch's COMMIT refused, each runs alone");
                            Ok(alone())
                        }
                        e => Err((false, e)),
                    }
                }
            }
        });
        match outcome {
            Ok(answers) => answers,
            Err(e) => items
                .iter()
                .map(|_| Answer::Done(Err(same_error(&e))))
                .collect(),
        }
    }
}
