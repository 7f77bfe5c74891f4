//! Group commit: writes asked of one instance at once share one
//! transaction and one COMMIT. A write's database time is mostly per
//! transaction and per statement (BEGIN, the locks, the reads, COMMIT's
//! flush of the WAL), not per row, and a hot row (one slot everyone books)
//! is held for each transaction's round trips and flush: one transaction
//! for many writes holds it once. Used by verify-ticket
//! (`verify_batch.rs`) and reservations (`reserve_batch.rs`).
//!
//! How: a caller that finds fewer than `IN_FLIGHT` batches in flight leads,
//! takes what is queued (at most `MAX_BATCH`, the first item's batch key
//! only, each distinct key once), runs it in one transaction
//! (`PgStore::run_batch`), then hands each waiting caller its own answer. A
//! lone write leads a batch of one at once (no timer waits for company).
//!
//! What must hold, and how:
//! - a write is answered only after its COMMIT returned: answers are
//!   published after `commit()`;
//! - a batch never waits on a row lock another holds: its rows are locked
//!   `SKIP LOCKED`, and an item whose row it could not lock goes back to its
//!   own caller, who runs it alone (`Answer::Alone`), waiting for that lock
//!   as before batches;
//! - a refusal writes nothing and leaves the others alone (the domain
//!   decides before anything of that item is written);
//! - no caller waits forever, nor for another's item: a database error in a
//!   batch before its COMMIT rolls it back and hands each item back to its
//!   own caller, who runs it alone (at once, each on its own thread, with
//!   its own answer); a lost connection answers each with that error
//!   (nothing was committed: the client retries). A COMMIT the server
//!   refused with an ERROR (nothing written) goes back to the callers the
//!   same way; a COMMIT whose outcome is unknown (no error from the server)
//!   answers each with that error, as a lone write would.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use postgres::IsolationLevel;

use crate::conn::{PgConn, Tx};
use crate::{db, PgStore};
use entrada_store::{Result, StoreError};

/// At most this many items per transaction: bounds the time one batch
/// holds its rows' locks and what a caller waits behind.
pub(crate) const MAX_BATCH: usize = 32;

/// Batches in flight at once on one instance. With one, the batch's
/// statements run one after the other on one backend while the others
/// wait, and the database sat at ~0.7 of a core on the bench's two (
/// BENCHMARKS.md, session 33); two keep it busy while a batch waits for its
/// round trips and its COMMIT's flush. A row another batch (or anyone)
/// holds is skipped (`SKIP LOCKED`) and its caller waits for it alone.
pub(crate) const IN_FLIGHT: usize = 2;

/// An item a batch may take with others.
pub(crate) trait Grouped: Clone {
    /// Items of one batch share this (one org at least: a batch never
    /// mixes orgs).
    type Batch: Eq;
    /// At most one item per value in a batch (a row the batch locks and
    /// writes): a second waits for the next batch.
    type Distinct: Eq + Hash;
    fn batch(&self) -> Self::Batch;
    fn distinct(&self) -> Self::Distinct;
}

/// What a batch says to one of its callers.
pub(crate) enum Answer<A> {
    /// The answer (after the batch's COMMIT for a write).
    Done(Result<A>),
    /// Not decided by the batch (its row was locked elsewhere, or unknown;
    /// or the batch failed and nothing of it was written): the caller runs
    /// it alone, on its own thread.
    Alone,
}

/// The items waiting on one instance, and the batches in flight.
pub(crate) struct GroupQueue<I, A> {
    state: Mutex<Queue<I, A>>,
    /// Signalled when a batch's answers are published (and so leadership
    /// is free again).
    answered: Condvar,
}

impl<I, A> Default for GroupQueue<I, A> {
    fn default() -> Self {
        GroupQueue {
            state: Mutex::new(Queue {
                next_id: 0,
                waiting: VecDeque::new(),
                leading: 0,
                answers: HashMap::new(),
            }),
            answered: Condvar::new(),
        }
    }
}

struct Queue<I, A> {
    next_id: u64,
    waiting: VecDeque<(u64, I)>,
    leading: usize,
    answers: HashMap<u64, Answer<A>>,
}

impl<I: Grouped, A> GroupQueue<I, A> {
    fn lock(&self) -> MutexGuard<'_, Queue<I, A>> {
        // The queue's state stays consistent across a panicking leader
        // (`Lead`'s drop), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `item` queued with the items asked at the same time on this
    /// instance; answered once the COMMIT of its batch (`batch`) returned,
    /// or run alone (`alone`) here when the batch handed it back.
    pub(crate) fn run(
        &self,
        item: I,
        batch: impl Fn(&[&I]) -> Vec<Answer<A>>,
        alone: impl FnOnce(&I) -> Result<A>,
    ) -> Result<A> {
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.waiting.push_back((id, item.clone()));
        loop {
            match state.answers.remove(&id) {
                Some(Answer::Done(answer)) => return answer,
                Some(Answer::Alone) => {
                    drop(state);
                    return alone(&item);
                }
                None => {}
            }
            if state.leading < IN_FLIGHT && !state.waiting.is_empty() {
                // Room for a batch: this caller runs the next one (which
                // holds its own item unless another batch's items or more
                // than a batch came first, or another leader took it: then
                // it waits for its answer).
                let taken = take_batch(&mut state.waiting);
                state.leading += 1;
                let mut lead = Lead {
                    queue: self,
                    own: id,
                    ids: taken.iter().map(|(id, _)| *id).collect(),
                    answers: Vec::new(),
                };
                drop(state);
                let items: Vec<&I> = taken.iter().map(|(_, item)| item).collect();
                lead.answers = batch(&items);
                drop(lead);
                state = self.lock();
                continue;
            }
            state = self
                .answered
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// The next batch from the front of `waiting`: in arrival order, the
/// first's batch key only, each distinct key once, at most `MAX_BATCH`.
/// The rest keep their places.
fn take_batch<I: Grouped>(waiting: &mut VecDeque<(u64, I)>) -> Vec<(u64, I)> {
    let Some(key) = waiting.front().map(|(_, item)| item.batch()) else {
        return Vec::new();
    };
    let mut batch = Vec::new();
    let mut distinct = HashSet::new();
    waiting.retain(|(id, item)| {
        let take =
            batch.len() < MAX_BATCH && item.batch() == key && distinct.insert(item.distinct());
        if take {
            batch.push((*id, item.clone()));
        }
        !take
    });
    batch
}

/// Runs `items` as concurrent calls on one instance would be run (the same
/// batches, in arrival order; the items a batch hands back run alone after
/// it, here one after the other), and answers each in `items`' order. For
/// tests: it makes batches that concurrency only makes sometimes.
#[cfg(feature = "test-hooks")]
pub(crate) fn together<I: Grouped, A>(
    items: Vec<I>,
    batch: impl Fn(&[&I]) -> Vec<Answer<A>>,
    alone: impl Fn(&I) -> Result<A>,
) -> Vec<Result<A>> {
    let n = items.len();
    let mut waiting: VecDeque<(u64, I)> = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| (i as u64, item))
        .collect();
    let mut answers: Vec<Option<Result<A>>> = (0..n).map(|_| None).collect();
    while !waiting.is_empty() {
        let taken = take_batch(&mut waiting);
        let refs: Vec<&I> = taken.iter().map(|(_, item)| item).collect();
        for ((id, item), answer) in taken.iter().zip(batch(&refs)) {
            answers[*id as usize] = Some(match answer {
                Answer::Done(answer) => answer,
                Answer::Alone => alone(item),
            });
        }
    }
    answers.into_iter().map(|a| a.expect("answered")).collect()
}

/// A batch's answers as a test sees them: `None` for an item handed back
/// to its caller (not run alone here).
#[cfg(feature = "test-hooks")]
pub(crate) fn as_handed<A>(answers: Vec<Answer<A>>) -> Vec<Option<Result<A>>> {
    answers
        .into_iter()
        .map(|answer| match answer {
            Answer::Done(answer) => Some(answer),
            Answer::Alone => None,
        })
        .collect()
}

/// A leader's batch in flight. Dropped (also when the batch panicked), it
/// publishes the answers, one per item (an error for any the batch did not
/// answer, so no caller waits forever), frees the leadership and wakes the
/// waiting callers.
struct Lead<'q, I: Grouped, A> {
    queue: &'q GroupQueue<I, A>,
    /// The leader's own item: not published when the leader panicked
    /// (nobody would take its answer).
    own: u64,
    ids: Vec<u64>,
    answers: Vec<Answer<A>>,
}

impl<I: Grouped, A> Drop for Lead<'_, I, A> {
    fn drop(&mut self) {
        let mut answers = std::mem::take(&mut self.answers).into_iter();
        let panicking = std::thread::panicking();
        let mut state = self.queue.lock();
        for id in &self.ids {
            let answer = answers.next().unwrap_or_else(|| {
                Answer::Done(Err(StoreError::Engine(
                    "the item's batch failed".to_owned(),
                )))
            });
            if !(panicking && *id == self.own) {
                state.answers.insert(*id, answer);
            }
        }
        if panicking {
            // The leader's own item may still be queued (its batch held
            // other items first): nobody would take its answer, and it must
            // not be written later for a caller that got a 500.
            let own = self.own;
            state.waiting.retain(|(id, _)| *id != own);
        }
        state.leading -= 1;
        drop(state);
        self.queue.answered.notify_all();
    }
}

/// The same error again, for each item of a batch that failed as one (a
/// lost connection, a COMMIT with an unknown outcome): only these two kinds
/// reach here.
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

impl PgStore {
    /// One batch of `n` items: `body` in one transaction, one COMMIT; each
    /// item's answer in order (`None` from `body`: handed back to its
    /// caller). `what` names the batch in the log.
    pub(crate) fn run_batch<A>(
        &self,
        what: &'static str,
        n: usize,
        mut body: impl FnMut(&mut Tx<'_>) -> Result<Vec<Option<Result<A>>>>,
    ) -> Vec<Answer<A>> {
        if n == 0 {
            return Vec::new();
        }
        let alone = || -> Vec<Answer<A>> { (0..n).map(|_| Answer::Alone).collect() };
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
            let answers = match body(&mut tx) {
                Ok(answers) => answers,
                // No connection: nothing was committed; each caller gets the
                // error now (a retry is the client's), none waits for a
                // reconnection. `call` marks the connection broken.
                Err(e @ StoreError::Unavailable(_)) => return Err((false, e)),
                // Rolled back when `tx` drops: each runs alone, each on its
                // own caller's thread. Logged: a bug that failed every batch
                // would only show as twice the transactions.
                Err(e) => {
                    tracing::warn!(error = %e, items = n, batch = what, "batch rolled back, each runs alone");
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
                            tracing::warn!(error = %e, items = n, batch = what, "batch's COMMIT refused, each runs alone");
                            Ok(alone())
                        }
                        e => Err((false, e)),
                    }
                }
            }
        });
        match outcome {
            Ok(answers) => answers,
            Err(e) => (0..n).map(|_| Answer::Done(Err(same_error(&e)))).collect(),
        }
    }
}
