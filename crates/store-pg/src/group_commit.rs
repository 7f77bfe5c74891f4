//! Group commit: writes asked of one instance at once share one
//! transaction and one COMMIT. A write's database time is mostly per
//! transaction and per statement (BEGIN, the locks, the reads, COMMIT's
//! flush of the WAL), not per row, and a hot row (one slot everyone books)
//! is held for each transaction's round trips and flush: one transaction
//! for many writes holds it once. Used by verify-ticket
//! (`verify_batch.rs`) and reservations (`reserve_batch.rs`).
//!
//! How: items are queued with their batch key (an org for verify-ticket,
//! an org and a slot for reservations). A caller whose key has fewer than
//! `Grouped::IN_FLIGHT` batches in flight leads: it takes that key's queued
//! items (at most `MAX_BATCH`, each distinct item once, its own among them
//! unless others of its key came first), runs them in one transaction
//! (`PgStore::run_batch`; a batch of one too, inside the leadership), then
//! hands each waiting caller its own answer. Callers of a key wait only for
//! that key's batches: while one runs, the key's next callers queue, and
//! the next leader takes them all. A lone write leads a batch of one at
//! once (no timer waits for company).
//!
//! What must hold, and how:
//! - a write is answered only after its COMMIT returned: answers are
//!   published after `commit()`;
//! - places in flight are counted per key, so a batch waiting on a row
//!   lock (a reservation batch waits for its slot's row; nothing bounds
//!   that wait but the holder) holds up its own key's callers, not another
//!   key's. A lone reservation waits for its ticket's lock inside its
//!   key's place too, so a ticket held by a transaction on another key of
//!   the same org can hold this key up (reserve_batch.rs, SECURITY.md);
//! - a verify batch never waits on a ticket's lock (`SKIP LOCKED`; a
//!   reservation batch locks its tickets the same way): an item whose row
//!   it could not lock goes back to its own caller, who runs it alone
//!   (`Answer::Alone`), waiting for that lock as before batches;
//! - a refusal writes nothing and leaves the others alone (the domain
//!   decides before anything of that item is written);
//! - no caller waits forever, nor for another's item: a database error in a
//!   batch before its COMMIT (or a batch that finds a row changed under it,
//!   `Batched::HandBack`, or a panicking leader) rolls it back and hands
//!   each item back to its own caller, who runs it alone (at once, each on
//!   its own thread, with its own answer); a lost connection answers each
//!   with that error (nothing was committed: the client retries). A COMMIT
//!   the server refused with an ERROR (nothing written) goes back to the
//!   callers the same way; a COMMIT whose outcome is unknown (no error from
//!   the server) answers each with that error, as a lone write would.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::conn::{PgConn, Tx};
use crate::{db, PgStore};
use entrada_store::{Result, StoreError};

/// At most this many items per transaction: bounds the time one batch
/// holds its rows' locks and what a caller waits behind.
pub(crate) const MAX_BATCH: usize = 32;

/// An item a batch may take with others.
pub(crate) trait Grouped: Clone {
    /// Items of one batch share this (one org at least: a batch never
    /// mixes orgs). Places in flight are counted per key.
    type Batch: Eq + Hash + Clone;
    /// At most one item per value in a batch (a row the batch locks and
    /// writes): a second waits for the next batch.
    type Distinct: Eq + Hash;
    /// Batches of one key in flight at once.
    const IN_FLIGHT: usize;
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

/// What a batch's body found, before its COMMIT.
pub(crate) enum Batched<A> {
    /// Each item's answer in order; `None`: handed back to its caller.
    Answers(Vec<Option<Result<A>>>),
    /// The batch's decisions no longer hold (another writer changed a row
    /// since the batch's first look: normal near a slot's last places with
    /// two instances). Rolled back, each item runs alone; counted, not an
    /// error.
    HandBack(&'static str),
}

/// What one queue's batches were, since its store opened: how many, their
/// items, the largest, and how many were handed back whole.
#[cfg(feature = "test-hooks")]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchCounts {
    pub batches: u64,
    pub items: u64,
    pub largest: u64,
    pub handed_back: u64,
}

/// `BatchCounts` as they are kept: updated without the queue's lock.
#[derive(Default)]
pub(crate) struct Counters {
    batches: AtomicU64,
    items: AtomicU64,
    largest: AtomicU64,
    handed_back: AtomicU64,
}

impl Counters {
    fn batch(&self, n: usize) {
        let n = n as u64;
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.items.fetch_add(n, Ordering::Relaxed);
        self.largest.fetch_max(n, Ordering::Relaxed);
    }

    #[cfg(feature = "test-hooks")]
    pub(crate) fn get(&self) -> BatchCounts {
        BatchCounts {
            batches: self.batches.load(Ordering::Relaxed),
            items: self.items.load(Ordering::Relaxed),
            largest: self.largest.load(Ordering::Relaxed),
            handed_back: self.handed_back.load(Ordering::Relaxed),
        }
    }
}

/// The items waiting on one instance, and the batches in flight.
pub(crate) struct GroupQueue<I: Grouped, A> {
    state: Mutex<Queue<I, A>>,
    pub(crate) counters: Counters,
}

impl<I: Grouped, A> Default for GroupQueue<I, A> {
    fn default() -> Self {
        GroupQueue {
            state: Mutex::new(Queue {
                next_id: 0,
                waiting: VecDeque::new(),
                keys: HashMap::new(),
                answers: HashMap::new(),
            }),
            counters: Counters::default(),
        }
    }
}

struct Queue<I: Grouped, A> {
    next_id: u64,
    waiting: VecDeque<(u64, I)>,
    /// The keys with a caller in `run`.
    keys: HashMap<I::Batch, Key>,
    answers: HashMap<u64, Answer<A>>,
}

/// One batch key's callers.
struct Key {
    /// Its batches in flight.
    leading: usize,
    /// Its items in `waiting`.
    queued: usize,
    /// Its callers in `run` (the entry goes with the last).
    callers: usize,
    /// Signalled when one of its batches' answers are published (and so a
    /// place is free again): only this key's callers wake.
    answered: Arc<Condvar>,
}

impl<I: Grouped, A> GroupQueue<I, A> {
    fn lock(&self) -> MutexGuard<'_, Queue<I, A>> {
        // The queue's state stays consistent across a panicking leader
        // (`Lead`'s and `Caller`'s drops), so a poisoned lock is still
        // usable.
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
        let key = item.batch();
        let (id, answered) = {
            let mut state = self.lock();
            let id = state.next_id;
            state.next_id += 1;
            state.waiting.push_back((id, item.clone()));
            let entry = state.keys.entry(key.clone()).or_insert_with(|| Key {
                leading: 0,
                queued: 0,
                callers: 0,
                answered: Arc::new(Condvar::new()),
            });
            entry.callers += 1;
            entry.queued += 1;
            (id, Arc::clone(&entry.answered))
        };
        // Declared before `state`, so dropped after it (it locks too).
        let _caller = Caller {
            queue: self,
            key: key.clone(),
        };
        let mut state = self.lock();
        loop {
            match state.answers.remove(&id) {
                Some(Answer::Done(answer)) => return answer,
                Some(Answer::Alone) => {
                    drop(state);
                    return alone(&item);
                }
                None => {}
            }
            let mine = state.keys.get_mut(&key).expect("a caller's key");
            if mine.leading < I::IN_FLIGHT && mine.queued > 0 {
                // Room for a batch of this key: this caller runs the next
                // one (which holds its own item unless more than a batch
                // of this key came first, or another leader took it: then
                // it waits for its answer).
                mine.leading += 1;
                let taken = take_batch(&mut state.waiting, &key);
                let mine = state.keys.get_mut(&key).expect("a caller's key");
                mine.queued -= taken.len();
                let mut lead = Lead {
                    queue: self,
                    key: key.clone(),
                    own: id,
                    ids: taken.iter().map(|(id, _)| *id).collect(),
                    answers: Vec::new(),
                };
                drop(state);
                self.counters.batch(taken.len());
                tracing::debug!(items = taken.len(), "batch");
                let items: Vec<&I> = taken.iter().map(|(_, item)| item).collect();
                lead.answers = batch(&items);
                drop(lead);
                state = self.lock();
                continue;
            }
            state = answered.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// The next batch of `key` from `waiting`: in arrival order, each distinct
/// item once, at most `MAX_BATCH`. The rest keep their places.
fn take_batch<I: Grouped>(waiting: &mut VecDeque<(u64, I)>, key: &I::Batch) -> Vec<(u64, I)> {
    let mut batch = Vec::new();
    let mut distinct = HashSet::new();
    waiting.retain(|(id, item)| {
        let take =
            batch.len() < MAX_BATCH && item.batch() == *key && distinct.insert(item.distinct());
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
    while let Some(key) = waiting.front().map(|(_, item)| item.batch()) {
        let taken = take_batch(&mut waiting, &key);
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

/// A caller in `run`: dropped (also when it panicked), its key forgets it.
struct Caller<'q, I: Grouped, A> {
    queue: &'q GroupQueue<I, A>,
    key: I::Batch,
}

impl<I: Grouped, A> Drop for Caller<'_, I, A> {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        let entry = state.keys.get_mut(&self.key).expect("a caller's key");
        entry.callers -= 1;
        if entry.callers == 0 {
            state.keys.remove(&self.key);
        }
    }
}

/// A leader's batch in flight. Dropped (also when the batch panicked), it
/// publishes the answers, one per item, frees its key's place and wakes
/// that key's waiting callers.
struct Lead<'q, I: Grouped, A> {
    queue: &'q GroupQueue<I, A>,
    key: I::Batch,
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
            // A panic comes before the batch's COMMIT (answers are only
            // returned after it): nothing of it was written, so each other
            // item runs alone. Fewer answers than items without a panic is
            // a bug: an error, never a second write.
            let answer = answers.next().unwrap_or_else(|| {
                if panicking {
                    Answer::Alone
                } else {
                    debug_assert!(false, "a batch answered fewer items than it took");
                    Answer::Done(Err(StoreError::Engine(
                        "the item's batch gave no answer".to_owned(),
                    )))
                }
            });
            if !(panicking && *id == self.own) {
                state.answers.insert(*id, answer);
            }
        }
        if panicking {
            // The leader's own item may still be queued (its batch held
            // other items first): nobody would take its answer, and it must
            // not be written later for a caller that got a 500. (With two
            // places per key, as verify has, the own item may instead be in
            // the other batch in flight: that one still commits it, and its
            // published answer stays unread in `answers`. Known: a panic
            // only; the caller's 500 then hides a committed verification,
            // which the gate's retry sees as ALREADY_VERIFIED.)
            let own = self.own;
            let before = state.waiting.len();
            state.waiting.retain(|(id, _)| *id != own);
            let removed = before - state.waiting.len();
            if let Some(entry) = state.keys.get_mut(&self.key) {
                entry.queued -= removed;
            }
        }
        let entry = state.keys.get_mut(&self.key).expect("a leader's key");
        entry.leading -= 1;
        let answered = Arc::clone(&entry.answered);
        drop(state);
        answered.notify_all();
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
    /// caller). `what` names the batch in the log; `counters` counts a
    /// batch handed back whole. `begin` starts the transaction, READ
    /// COMMITTED, with the batch's `SET LOCAL`s if it has any, in the same
    /// round trip (`Tx::begin`).
    pub(crate) fn run_batch<A>(
        &self,
        what: &'static str,
        counters: &Counters,
        begin: &'static str,
        n: usize,
        mut body: impl FnMut(&mut Tx<'_>) -> Result<Batched<A>>,
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
            debug_assert!(begin.starts_with(crate::conn::BEGIN_WRITE), "{begin}");
            let mut tx = Tx::begin(client, statements, begin).map_err(|e| (true, db(e)))?;
            let answers = match body(&mut tx) {
                Ok(Batched::Answers(answers)) => answers,
                // Rolled back when `tx` drops; expected now and then, so
                // counted and logged at debug, not warned about.
                Ok(Batched::HandBack(why)) => {
                    counters.handed_back.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(why, items = n, batch = what, "batch handed back, each runs alone");
                    return Ok(alone());
                }
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
            match tx.commit() {
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

#[cfg(test)]
mod tests {
    //! The queue alone (no database: its batches are closures here).
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// An item: its batch key and its own number.
    #[derive(Clone)]
    struct Item(u32, u32);

    impl Grouped for Item {
        type Batch = u32;
        type Distinct = u32;
        const IN_FLIGHT: usize = 1;
        fn batch(&self) -> u32 {
            self.0
        }
        fn distinct(&self) -> u32 {
            self.1
        }
    }

    type Queue = GroupQueue<Item, u32>;

    fn queued(q: &Queue) -> usize {
        q.lock().waiting.len()
    }

    fn until(what: impl Fn() -> bool) {
        for _ in 0..1000 {
            if what() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("not after 10 s");
    }

    #[test]
    fn a_key_whose_batch_waits_holds_up_no_other_key() {
        let q = Queue::default();
        let (release, released) = mpsc::channel::<()>();
        let released = Mutex::new(released);
        std::thread::scope(|scope| {
            let stuck = scope.spawn(|| {
                q.run(
                    Item(1, 1),
                    |_| {
                        released.lock().unwrap().recv().unwrap();
                        vec![Answer::Done(Ok(1))]
                    },
                    |_| unreachable!(),
                )
            });
            until(|| q.lock().keys.get(&1).is_some_and(|k| k.leading == 1));
            // Another key leads its own batch at once.
            let other = q.run(
                Item(2, 2),
                |_| vec![Answer::Done(Ok(2))],
                |_| unreachable!(),
            );
            assert_eq!(other.unwrap(), 2);
            release.send(()).unwrap();
            assert_eq!(stuck.join().unwrap().unwrap(), 1);
        });
        assert!(q.lock().keys.is_empty());
    }

    #[test]
    fn callers_of_a_key_queue_behind_its_batch_and_make_the_next_one() {
        let q = Queue::default();
        let (release, released) = mpsc::channel::<()>();
        let released = Mutex::new(released);
        let sizes = Mutex::new(Vec::new());
        let batch = |items: &[&Item]| {
            sizes.lock().unwrap().push(items.len());
            if items[0].1 == 0 {
                released.lock().unwrap().recv().unwrap();
            }
            items.iter().map(|i| Answer::Done(Ok(i.1))).collect()
        };
        let (q, batch) = (&q, &batch);
        std::thread::scope(|scope| {
            let first = scope.spawn(move || q.run(Item(1, 0), batch, |_| unreachable!()));
            until(|| q.lock().keys.get(&1).is_some_and(|k| k.leading == 1));
            let others: Vec<_> = (1..=5)
                .map(|n| scope.spawn(move || q.run(Item(1, n), batch, |_| unreachable!())))
                .collect();
            until(|| queued(q) == 5);
            release.send(()).unwrap();
            assert_eq!(first.join().unwrap().unwrap(), 0);
            for (n, h) in (1..=5).zip(others) {
                assert_eq!(h.join().unwrap().unwrap(), n);
            }
        });
        assert_eq!(*sizes.lock().unwrap(), [1, 5]);
        assert_eq!(q.counters.batches.load(Ordering::Relaxed), 2);
        assert_eq!(q.counters.largest.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn a_panicking_leader_hands_the_other_items_back_to_run_alone() {
        let q = Queue::default();
        let (release, released) = mpsc::channel::<()>();
        let released = Mutex::new(released);
        let batch = |items: &[&Item]| -> Vec<Answer<u32>> {
            match items.len() {
                1 => {
                    released.lock().unwrap().recv().unwrap();
                    vec![Answer::Done(Ok(items[0].1))]
                }
                _ => panic!("a leader panics before its COMMIT"),
            }
        };
        let (q, batch) = (&q, &batch);
        std::thread::scope(|scope| {
            let first = scope.spawn(move || q.run(Item(1, 0), batch, |_| unreachable!()));
            until(|| q.lock().keys.get(&1).is_some_and(|k| k.leading == 1));
            let others: Vec<_> = (1..=2)
                .map(|n| scope.spawn(move || q.run(Item(1, n), batch, |i| Ok(100 + i.1))))
                .collect();
            until(|| queued(q) == 2);
            release.send(()).unwrap();
            assert_eq!(first.join().unwrap().unwrap(), 0);
            // One of the two led the batch of both and panicked; the other
            // ran its own alone (not a 500).
            let answers: Vec<_> = others.into_iter().map(|h| h.join()).collect();
            let panicked = answers.iter().filter(|a| a.is_err()).count();
            let alone: Vec<u32> = answers
                .into_iter()
                .filter_map(|a| a.ok())
                .map(|a| a.unwrap())
                .collect();
            assert_eq!(panicked, 1);
            assert!(alone == [101] || alone == [102], "{alone:?}");
        });
        // The queue is as new: its next caller leads at once.
        assert!(q.lock().keys.is_empty() && q.lock().waiting.is_empty());
        let next = q.run(
            Item(1, 9),
            |_| vec![Answer::Done(Ok(9))],
            |_| unreachable!(),
        );
        assert_eq!(next.unwrap(), 9);
    }
}
