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
//! A caller on an async runtime hands its item off instead (`hand_off`;
//! verify-ticket from the server): the item is queued from the caller's
//! thread and the caller awaits a oneshot, with no thread of its own
//! waiting. If its key has a free place, the caller starts one blocking
//! thread with it (`Place::lead`), which leads the key's batches one after
//! the other while items are queued and then frees the place; so a thread
//! is woken per run of batches and a caller once, by its answer. Callers of
//! both kinds share one queue, its batches and its places. A blocking caller
//! leads batches (which may hold awaiting callers' items) only until its own
//! answer is there, so it never works on for others; when it returns with
//! no batch of its key in flight, the awaiting items still queued are
//! handed back (each runs alone), as no leader may come for them (another
//! blocking caller might have led them: handing back is the safe side).
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
//!   the server) answers each with that error, as a lone write would. An
//!   awaiting caller's item handed back runs alone on a blocking thread of
//!   its own. A leading thread survives a panicking batch (its items are
//!   handed back, it goes on); one that never runs or dies outside a batch
//!   frees its place and, with no batch of the key left in flight, hands
//!   back the key's awaiting items (`Place`'s drop), as a returning
//!   blocking caller does (`Caller`'s drop); a sender dropped
//!   unsent is an error answer on the receiving side, never a wait.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

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
    waiting: VecDeque<Queued<I, A>>,
    /// The keys with a caller in `run`, an item queued or a batch in flight.
    keys: HashMap<I::Batch, Key>,
    /// The answers of callers blocked in `run`.
    answers: HashMap<u64, Answer<A>>,
}

/// An item waiting for a batch, and how its answer reaches its caller.
struct Queued<I, A> {
    id: u64,
    item: I,
    reply: Reply<A>,
}

/// How an item's answer reaches its caller.
enum Reply<A> {
    /// A caller blocked in `run`, on its key's condvar: the answer goes
    /// into `answers`.
    Blocked,
    /// A caller awaiting `hand_off`'s receiver: the answer is sent (one
    /// wake-up of that caller's task). A sender dropped unsent is an error
    /// answer on the receiving side, never a wait.
    Sent(oneshot::Sender<Answer<A>>),
}

/// One batch key's callers.
struct Key {
    /// Its batches in flight (their places, `Grouped::IN_FLIGHT` at most).
    leading: usize,
    /// Its items in `waiting`.
    queued: usize,
    /// Of `queued`, the items of awaiting callers (`Reply::Sent`): they
    /// have no thread to lead a batch on: a `Place` leader leads while
    /// items are queued, and whoever leaves the key with no batch in flight
    /// hands them back (`hand_back_stranded`).
    sent: usize,
    /// Its callers in `run`.
    callers: usize,
    /// Signalled when one of its batches' answers are published (and so a
    /// place may be free again): only this key's blocked callers wake.
    answered: Arc<Condvar>,
}

impl<I: Grouped, A> Queue<I, A> {
    /// `item` queued for its key: its id.
    fn push(&mut self, item: I, reply: Reply<A>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let key = item.batch();
        let sent = matches!(reply, Reply::Sent(_));
        self.waiting.push_back(Queued { id, item, reply });
        let entry = self.keys.entry(key).or_insert_with(|| Key {
            leading: 0,
            queued: 0,
            sent: 0,
            callers: 0,
            answered: Arc::new(Condvar::new()),
        });
        entry.queued += 1;
        entry.sent += usize::from(sent);
        id
    }

    /// Forgets `key` once nothing of it is left: no caller, no item, no
    /// batch.
    fn forget_if_idle(&mut self, key: &I::Batch) {
        if self
            .keys
            .get(key)
            .is_some_and(|k| k.callers == 0 && k.leading == 0 && k.queued == 0)
        {
            self.keys.remove(key);
        }
    }

    /// With no batch of `key` in flight, the queued items of its awaiting
    /// callers are handed back (each runs alone, on a thread of its own):
    /// when a blocking caller returns (`Caller`'s drop), a batch panicked
    /// (`Lead`'s drop) or a leading thread died or never ran (`Place`'s
    /// drop), no leader may come for them until the next caller.
    fn hand_back_stranded(&mut self, key: &I::Batch, sends: &mut Sends<A>) {
        let Some(entry) = self.keys.get(key) else {
            return;
        };
        if entry.leading > 0 || entry.sent == 0 {
            return;
        }
        let mut handed = 0;
        let mut kept = VecDeque::with_capacity(self.waiting.len());
        for queued in self.waiting.drain(..) {
            match queued.reply {
                Reply::Sent(tx) if queued.item.batch() == *key => {
                    handed += 1;
                    sends.push((tx, Answer::Alone));
                }
                reply => kept.push_back(Queued { reply, ..queued }),
            }
        }
        self.waiting = kept;
        let entry = self.keys.get_mut(key).expect("a queued key");
        entry.queued -= handed;
        entry.sent -= handed;
    }
}

/// What an awaiting caller receives: its answer, or `Answer::Alone`; an
/// error if the sender was dropped unsent.
pub(crate) type Awaited<A> = oneshot::Receiver<Answer<A>>;

/// Answers to send to awaiting callers once the queue's lock is released
/// (a send may wake a task: not while other threads wait for the lock).
type Sends<A> = Vec<(oneshot::Sender<Answer<A>>, Answer<A>)>;

fn send_all<A>(sends: Sends<A>) {
    for (tx, answer) in sends {
        // The caller may be gone (its request dropped): the item was still
        // run, as a blocking call whose request is dropped is.
        let _ = tx.send(answer);
    }
}

impl<I: Grouped, A> GroupQueue<I, A> {
    fn lock(&self) -> MutexGuard<'_, Queue<I, A>> {
        // The queue's state stays consistent across a panicking leader
        // (`Lead`'s, `Caller`'s and `Place`'s drops), so a poisoned lock is
        // still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `item` queued with the items asked at the same time on this
    /// instance; answered once the COMMIT of its batch (`batch`) returned,
    /// or run alone (`alone`) here when the batch handed it back. The
    /// caller's thread leads a batch when its key has a free place.
    pub(crate) fn run(
        &self,
        item: I,
        batch: impl Fn(&[&I]) -> Vec<Answer<A>>,
        alone: impl FnOnce(&I) -> Result<A>,
    ) -> Result<A> {
        let key = item.batch();
        let (id, answered) = {
            let mut state = self.lock();
            let id = state.push(item.clone(), Reply::Blocked);
            let entry = state.keys.get_mut(&key).expect("a queued key");
            entry.callers += 1;
            (id, Arc::clone(&entry.answered))
        };
        // Declared before `state`, so dropped after it (it locks too).
        let _caller = Caller {
            queue: self,
            key: key.clone(),
        };
        let mut state = self.lock();
        loop {
            // Its own answer first: a caller that has it returns, and does
            // not lead batches of others' items (a stream of hand-offs would
            // keep it here, its answer unread). Awaiting items it leaves
            // queued with nobody leading are handed back by `Caller`'s drop.
            match state.answers.remove(&id) {
                Some(Answer::Done(answer)) => return answer,
                Some(Answer::Alone) => {
                    drop(state);
                    // Not a caller of the queue any more: awaiting items
                    // nobody leads go back now, not after this item's run.
                    drop(_caller);
                    return alone(&item);
                }
                None => {}
            }
            let mine = state.keys.get_mut(&key).expect("a caller's key");
            let room = mine.leading < I::IN_FLIGHT;
            if room && mine.queued > 0 {
                // Room for a batch of this key: this caller runs the next
                // one (which holds its own item unless more than a batch
                // of this key came first, or another leader took it: then
                // it leads the next, or waits, until its answer is there).
                mine.leading += 1;
                state = self.lead(state, &key, Some(id), false, &batch);
                continue;
            }
            state = answered.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// `item` queued as `run` queues it, for a caller that awaits its
    /// answer instead of blocking a thread: the receiver gets the answer
    /// once its batch's COMMIT returned, or `Answer::Alone` (the caller
    /// then runs it alone, on a thread of its own). When the key has a free
    /// place, the place is returned: the caller starts a thread that leads
    /// with it (`Place::lead`), so one thread is woken per run of batches,
    /// not one per item. `queue` finds this queue in `owner`, which the
    /// leading thread keeps alive.
    pub(crate) fn hand_off<S>(
        owner: &Arc<S>,
        queue: fn(&S) -> &Self,
        item: I,
    ) -> (Awaited<A>, Option<Place<S, I, A>>) {
        let (tx, rx) = oneshot::channel();
        let key = item.batch();
        let mut state = queue(owner).lock();
        state.push(item, Reply::Sent(tx));
        let entry = state.keys.get_mut(&key).expect("a queued key");
        let place = (entry.leading < I::IN_FLIGHT).then(|| {
            entry.leading += 1;
            Place {
                owner: Arc::clone(owner),
                queue,
                key,
                released: false,
            }
        });
        (rx, place)
    }

    /// One batch of `key`, led by this thread, which holds one of the key's
    /// places (counted in `leading`): its items taken from `waiting`, run by
    /// `batch`, then published (`Lead`'s drop), the place freed unless
    /// `keep`. `own`: the caller's own item (`run`), if it has one.
    fn lead<'q>(
        &'q self,
        mut state: MutexGuard<'q, Queue<I, A>>,
        key: &I::Batch,
        own: Option<u64>,
        keep: bool,
        batch: &impl Fn(&[&I]) -> Vec<Answer<A>>,
    ) -> MutexGuard<'q, Queue<I, A>> {
        let taken = take_batch(&mut state.waiting, key);
        let sent = taken
            .iter()
            .filter(|q| matches!(q.reply, Reply::Sent(_)))
            .count();
        let mine = state.keys.get_mut(key).expect("a leader's key");
        mine.queued -= taken.len();
        mine.sent -= sent;
        let mut items = Vec::with_capacity(taken.len());
        let mut replies = Vec::with_capacity(taken.len());
        for Queued { id, item, reply } in taken {
            items.push(item);
            replies.push((id, reply));
        }
        let mut lead = Lead {
            queue: self,
            key: key.clone(),
            own,
            keep,
            replies,
            answers: Vec::new(),
        };
        drop(state);
        self.counters.batch(items.len());
        tracing::debug!(items = items.len(), "batch");
        let refs: Vec<&I> = items.iter().collect();
        lead.answers = batch(&refs);
        drop(lead);
        self.lock()
    }
}

/// A place of one key (a batch in flight, counted in its `leading`), held
/// for the thread that `hand_off` asked its caller to start. Dropped
/// without `lead` having released it (the thread never ran: its runtime
/// was shutting down; or it panicked outside a batch), it frees the place
/// and, if no batch of the key is left in flight, hands back the key's
/// awaiting items: none of them waits for a leader that will not come.
pub(crate) struct Place<S, I: Grouped, A> {
    owner: Arc<S>,
    queue: fn(&S) -> &GroupQueue<I, A>,
    key: I::Batch,
    released: bool,
}

impl<S, I: Grouped, A> Place<S, I, A> {
    /// Leads the key's batches one after the other while items of the key
    /// are queued, then frees the place (checked and freed under one lock,
    /// so an item queued meanwhile either is taken here or finds the place
    /// free and starts a leader of its own). `batch` runs one batch; a
    /// panic in it is a batch that handed every item back (each runs alone
    /// with its own answer), and this thread goes on leading.
    pub(crate) fn lead(mut self, batch: impl Fn(&S, &[&I]) -> Vec<Answer<A>>) {
        let owner = Arc::clone(&self.owner);
        let queue = (self.queue)(&owner);
        let guarded = |items: &[&I]| -> Vec<Answer<A>> {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| batch(&owner, items)))
                .unwrap_or_else(|_| items.iter().map(|_| Answer::Alone).collect())
        };
        let mut state = queue.lock();
        loop {
            let entry = state.keys.get_mut(&self.key).expect("a leader's key");
            if entry.queued == 0 {
                entry.leading -= 1;
                self.released = true;
                state.forget_if_idle(&self.key);
                return;
            }
            state = queue.lead(state, &self.key, None, true, &guarded);
        }
    }
}

impl<S, I: Grouped, A> Drop for Place<S, I, A> {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let queue = (self.queue)(&self.owner);
        let mut sends = Vec::new();
        let mut state = queue.lock();
        let entry = state.keys.get_mut(&self.key).expect("a leader's key");
        entry.leading -= 1;
        let answered = Arc::clone(&entry.answered);
        state.hand_back_stranded(&self.key, &mut sends);
        state.forget_if_idle(&self.key);
        drop(state);
        answered.notify_all();
        send_all(sends);
    }
}

/// The next batch of `key` from `waiting`: in arrival order, each distinct
/// item once, at most `MAX_BATCH`. The rest keep their places.
fn take_batch<I: Grouped, A>(
    waiting: &mut VecDeque<Queued<I, A>>,
    key: &I::Batch,
) -> Vec<Queued<I, A>> {
    let mut batch = Vec::new();
    let mut distinct = HashSet::new();
    let mut kept = VecDeque::with_capacity(waiting.len());
    for queued in waiting.drain(..) {
        if batch.len() < MAX_BATCH
            && queued.item.batch() == *key
            && distinct.insert(queued.item.distinct())
        {
            batch.push(queued);
        } else {
            kept.push_back(queued);
        }
    }
    *waiting = kept;
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
    let mut waiting: VecDeque<Queued<I, A>> = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| Queued {
            id: i as u64,
            item,
            reply: Reply::Blocked,
        })
        .collect();
    let mut answers: Vec<Option<Result<A>>> = (0..n).map(|_| None).collect();
    while let Some(key) = waiting.front().map(|q| q.item.batch()) {
        let taken = take_batch(&mut waiting, &key);
        let refs: Vec<&I> = taken.iter().map(|q| &q.item).collect();
        for (queued, answer) in taken.iter().zip(batch(&refs)) {
            answers[queued.id as usize] = Some(match answer {
                Answer::Done(answer) => answer,
                Answer::Alone => alone(&queued.item),
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

/// A caller in `run`: dropped (also when it panicked), its key forgets it,
/// and hands back the key's awaiting items if no batch of the key is in
/// flight (they have no thread, and no leader may come for them until the
/// next caller).
struct Caller<'q, I: Grouped, A> {
    queue: &'q GroupQueue<I, A>,
    key: I::Batch,
}

impl<I: Grouped, A> Drop for Caller<'_, I, A> {
    fn drop(&mut self) {
        let mut sends = Vec::new();
        let mut state = self.queue.lock();
        let entry = state.keys.get_mut(&self.key).expect("a caller's key");
        entry.callers -= 1;
        state.hand_back_stranded(&self.key, &mut sends);
        state.forget_if_idle(&self.key);
        drop(state);
        send_all(sends);
    }
}

/// A leader's batch in flight. Dropped (also when the batch panicked), it
/// publishes the answers, one per item, frees its key's place (unless
/// `keep`: a leading thread that goes on) and wakes that key's blocked
/// callers; awaiting callers get theirs sent.
struct Lead<'q, I: Grouped, A> {
    queue: &'q GroupQueue<I, A>,
    key: I::Batch,
    /// The leader's own item (a caller in `run`): not published when the
    /// leader panicked (nobody would take its answer).
    own: Option<u64>,
    keep: bool,
    replies: Vec<(u64, Reply<A>)>,
    answers: Vec<Answer<A>>,
}

impl<I: Grouped, A> Drop for Lead<'_, I, A> {
    fn drop(&mut self) {
        let mut answers = std::mem::take(&mut self.answers).into_iter();
        let panicking = std::thread::panicking();
        let mut sends = Vec::new();
        let mut state = self.queue.lock();
        for (id, reply) in std::mem::take(&mut self.replies) {
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
            match reply {
                Reply::Sent(tx) => sends.push((tx, answer)),
                Reply::Blocked if panicking && Some(id) == self.own => {}
                Reply::Blocked => {
                    state.answers.insert(id, answer);
                }
            }
        }
        if let (true, Some(own)) = (panicking, self.own) {
            // The leader's own item may still be queued (its batch held
            // other items first): nobody would take its answer, and it must
            // not be written later for a caller that got a 500. (With two
            // places per key, as verify has, the own item may instead be in
            // the other batch in flight: that one still commits it, and its
            // published answer stays unread in `answers`. Known: a panic
            // only; the caller's 500 then hides a committed verification,
            // which the gate's retry sees as ALREADY_VERIFIED.)
            let before = state.waiting.len();
            state.waiting.retain(|q| q.id != own);
            let removed = before - state.waiting.len();
            if let Some(entry) = state.keys.get_mut(&self.key) {
                entry.queued -= removed;
            }
        }
        let entry = state.keys.get_mut(&self.key).expect("a leader's key");
        if !self.keep {
            entry.leading -= 1;
        }
        let answered = Arc::clone(&entry.answered);
        if panicking {
            state.hand_back_stranded(&self.key, &mut sends);
        }
        drop(state);
        answered.notify_all();
        send_all(sends);
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

    // The hand-off (`hand_off`, `Place::lead`): awaiting callers' items,
    // led by a thread per run of batches. The receivers are read with
    // `blocking_recv`/`try_recv`: no runtime needed for the queue alone.

    /// What owns a queue, as a `PgStore` does.
    #[derive(Default)]
    struct Owner {
        q: Queue,
    }

    fn q(owner: &Owner) -> &Queue {
        &owner.q
    }

    type Rx = oneshot::Receiver<Answer<u32>>;

    fn done(rx: Rx) -> u32 {
        match rx.blocking_recv() {
            Ok(Answer::Done(Ok(n))) => n,
            Ok(Answer::Done(Err(e))) => panic!("an error: {e}"),
            Ok(Answer::Alone) => panic!("handed back"),
            Err(_) => panic!("no answer: the sender was dropped"),
        }
    }

    /// Handed back by now (read without waiting: each use comes after the
    /// leader returned, so a missing answer fails rather than hangs).
    fn handed_back(mut rx: Rx) -> bool {
        matches!(rx.try_recv(), Ok(Answer::Alone))
    }

    #[test]
    fn a_handed_off_item_is_answered_only_once_its_batch_returned() {
        let owner = Arc::new(Owner::default());
        let (rx, place) = Queue::hand_off(&owner, q, Item(1, 7));
        let place = place.expect("a free place: this caller starts the leader");
        let (release, released) = mpsc::channel::<()>();
        let (started, start) = mpsc::channel::<()>();
        let mut rx = rx;
        std::thread::scope(|scope| {
            let leader = scope.spawn(move || {
                place.lead(|_, items| {
                    started.send(()).unwrap();
                    // The batch's COMMIT has not returned until released.
                    released.recv().unwrap();
                    items.iter().map(|i| Answer::Done(Ok(i.1))).collect()
                })
            });
            start.recv().unwrap();
            std::thread::sleep(Duration::from_millis(50));
            assert!(
                matches!(rx.try_recv(), Err(oneshot::error::TryRecvError::Empty)),
                "answered before its batch returned"
            );
            release.send(()).unwrap();
            assert_eq!(done(rx), 7);
            leader.join().unwrap();
        });
        // The leader freed its place once nothing was queued.
        assert!(owner.q.lock().keys.is_empty());
    }

    #[test]
    fn one_leader_thread_leads_the_batches_queued_behind_its_first() {
        let owner = Arc::new(Owner::default());
        let (first, place) = Queue::hand_off(&owner, q, Item(1, 0));
        let place = place.expect("a free place");
        let (release, released) = mpsc::channel::<()>();
        let (started, start) = mpsc::channel::<()>();
        let sizes = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            let sizes = &sizes;
            let leader = scope.spawn(move || {
                place.lead(|_, items| {
                    sizes.lock().unwrap().push(items.len());
                    if items[0].1 == 0 {
                        started.send(()).unwrap();
                        released.recv().unwrap();
                    }
                    items.iter().map(|i| Answer::Done(Ok(i.1))).collect()
                })
            });
            start.recv().unwrap();
            // IN_FLIGHT is 1 here: the key's place is held, so these start
            // no leader of their own; the first's thread takes them next.
            let others: Vec<Rx> = (1..=5)
                .map(|n| {
                    let (rx, place) = Queue::hand_off(&owner, q, Item(1, n));
                    assert!(place.is_none(), "a second place for key 1");
                    rx
                })
                .collect();
            release.send(()).unwrap();
            assert_eq!(done(first), 0);
            for (n, rx) in (1..=5).zip(others) {
                assert_eq!(done(rx), n);
            }
            leader.join().unwrap();
        });
        assert_eq!(*sizes.lock().unwrap(), [1, 5]);
        assert!(owner.q.lock().keys.is_empty());
    }

    #[test]
    fn an_item_its_batch_hands_back_goes_back_to_its_own_caller() {
        let owner = Arc::new(Owner::default());
        let (kept, place) = Queue::hand_off(&owner, q, Item(1, 1));
        let (back, none) = Queue::hand_off(&owner, q, Item(1, 2));
        assert!(none.is_none());
        place.expect("a free place").lead(|_, items| {
            items
                .iter()
                .map(|i| match i.1 {
                    2 => Answer::Alone,
                    n => Answer::Done(Ok(n)),
                })
                .collect()
        });
        assert_eq!(done(kept), 1);
        assert!(handed_back(back), "not handed back to its caller");
    }

    #[test]
    fn a_panicking_batch_hands_every_item_back_and_its_leader_goes_on() {
        let owner = Arc::new(Owner::default());
        let (a, place) = Queue::hand_off(&owner, q, Item(1, 1));
        // The same ticket twice: the second waits for the next batch.
        let (b, _) = Queue::hand_off(&owner, q, Item(1, 1));
        let batches = Mutex::new(0);
        place.expect("a free place").lead(|_, items| {
            let mut n = batches.lock().unwrap();
            *n += 1;
            if *n == 1 {
                drop(n);
                panic!("a leader panics before its COMMIT");
            }
            items.iter().map(|i| Answer::Done(Ok(10 + i.1))).collect()
        });
        // The first batch's item runs alone; the thread led the next batch.
        assert!(
            handed_back(a),
            "the panicking batch's item was not handed back"
        );
        assert_eq!(done(b), 11);
        assert_eq!(*batches.lock().unwrap(), 2);
        assert!(owner.q.lock().keys.is_empty());
    }

    #[test]
    fn a_leader_that_never_runs_hands_its_key_s_items_back() {
        let owner = Arc::new(Owner::default());
        let (a, place) = Queue::hand_off(&owner, q, Item(1, 1));
        let (b, _) = Queue::hand_off(&owner, q, Item(1, 2));
        // Its runtime was shutting down: the leader's task was dropped.
        drop(place.expect("a free place"));
        assert!(
            handed_back(a) && handed_back(b),
            "an item waits for no leader"
        );
        assert!(owner.q.lock().keys.is_empty() && owner.q.lock().waiting.is_empty());
    }

    #[test]
    fn two_keys_handed_off_do_not_wait_on_each_other() {
        let owner = Arc::new(Owner::default());
        let (stuck, place1) = Queue::hand_off(&owner, q, Item(1, 1));
        let (release, released) = mpsc::channel::<()>();
        let (started, start) = mpsc::channel::<()>();
        std::thread::scope(|scope| {
            let leader1 = scope.spawn(move || {
                place1.expect("a free place").lead(|_, items| {
                    started.send(()).unwrap();
                    released.recv().unwrap();
                    items.iter().map(|i| Answer::Done(Ok(i.1))).collect()
                })
            });
            start.recv().unwrap();
            // Key 1's only place is taken; key 2 gets its own at once.
            let (other, place2) = Queue::hand_off(&owner, q, Item(2, 2));
            place2
                .expect("key 2's own place")
                .lead(|_, items| items.iter().map(|i| Answer::Done(Ok(i.1))).collect());
            assert_eq!(done(other), 2);
            release.send(()).unwrap();
            assert_eq!(done(stuck), 1);
            leader1.join().unwrap();
        });
        assert!(owner.q.lock().keys.is_empty());
    }

    #[test]
    fn a_blocked_caller_returns_with_its_answer_and_hands_back_the_awaiting_items_nobody_leads() {
        let (release, released) = mpsc::channel::<()>();
        let released = Mutex::new(released);
        let owner = Arc::new(Owner::default());
        let batch = |items: &[&Item]| -> Vec<Answer<u32>> {
            if items[0].1 == 0 {
                released.lock().unwrap().recv().unwrap();
            }
            items.iter().map(|i| Answer::Done(Ok(i.1))).collect()
        };
        std::thread::scope(|scope| {
            let owner2 = Arc::clone(&owner);
            let batch = &batch;
            let first = scope.spawn(move || owner2.q.run(Item(1, 0), batch, |_| unreachable!()));
            until(|| owner.q.lock().keys.get(&1).is_some_and(|k| k.leading == 1));
            // No place for a leader of its own. The blocked caller returns
            // once its own answer is there, without leading the awaiting
            // item's batch (a stream of such items would keep it working
            // for others); with no batch of the key left in flight, the
            // awaiting item comes back to its caller, who runs it alone.
            let (mut rx, place) = Queue::hand_off(&owner, q, Item(1, 5));
            assert!(place.is_none());
            release.send(()).unwrap();
            assert_eq!(first.join().unwrap().unwrap(), 0);
            assert!(matches!(rx.try_recv(), Ok(Answer::Alone)));
        });
        assert!(owner.q.lock().keys.is_empty());
    }
}
