//! Group commit for verify-ticket. Each verification is its own short
//! transaction whose COMMIT waits for the WAL's flush, and much of a
//! verification's database time is per transaction and per statement (BEGIN,
//! the lock, the read, the write's planning, COMMIT), not per row. So verifications asked of one
//! instance at once are run together: a caller that finds fewer than
//! `IN_FLIGHT` batches in flight leads, takes what is queued (at most `MAX_BATCH`, one org,
//! distinct tickets), runs it in one transaction (`gate::verify_batch_in`)
//! and one COMMIT, then hands each waiting caller its own answer. A lone
//! verification leads a batch of one at once (no timer waits for company)
//! and runs exactly as before.
//!
//! What must hold, and how:
//! - an ADMIT is answered only after its COMMIT returned: answers are
//!   published after `commit()`;
//! - exactly once across instances: the tickets' row locks still queue two
//!   instances, taken by one statement in the codes' order (two batches that
//!   share tickets queue instead of deadlocking); a ticket asked twice goes
//!   into two batches, and the second locks it only after the first's
//!   COMMIT (it waits for the lock, or starts later), so it sees the first's
//!   entry (ALREADY_VERIFIED);
//! - a refusal writes nothing and leaves the others alone (the domain
//!   decides before anything of that ticket is written);
//! - a database error in a batch (a deadlock with another writer, a
//!   constraint, a lost connection) rolls it back and runs each of its
//!   verifications alone, as before the batching, each with its own answer.
//!   A COMMIT whose outcome is unknown (the connection lost during it)
//!   answers each with that error, as a lone verification would.

use std::collections::{HashSet, VecDeque};
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
/// round trips and its COMMIT's flush. Two batches that share a ticket queue
/// on its row lock, as two instances do.
pub(crate) const IN_FLIGHT: usize = 2;

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
    answers: std::collections::HashMap<u64, Result<Verdict>>,
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
/// next batch, which sees this one's entry), at most `MAX_BATCH`. The rest
/// keep their places.
fn take_batch(waiting: &mut VecDeque<(u64, VerifyItem)>) -> Vec<(u64, VerifyItem)> {
    let Some(orq) = waiting.front().map(|(_, item)| item.orq) else {
        return Vec::new();
    };
    let mut batch = Vec::new();
    let mut codes = HashSet::new();
    let mut rest = VecDeque::with_capacity(waiting.len());
    for (id, item) in waiting.drain(..) {
        if batch.len() < MAX_BATCH && item.orq == orq && codes.insert(item.code.clone()) {
            batch.push((id, item));
        } else {
            rest.push_back((id, item));
        }
    }
    *waiting = rest;
    batch
}

/// A leader's batch in flight. Dropped (also when the batch panicked), it
/// publishes the answers, one per item (an error for any the batch did not
/// answer, so no caller waits forever), frees the leadership and wakes the
/// waiting callers.
struct Lead<'q> {
    queue: &'q VerifyQueue,
    ids: Vec<u64>,
    answers: Vec<Result<Verdict>>,
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        let mut answers = std::mem::take(&mut self.answers).into_iter();
        let mut state = self.queue.lock();
        for id in &self.ids {
            let answer = answers.next().unwrap_or_else(|| {
                Err(StoreError::Engine(
                    "the verification's batch failed".to_owned(),
                ))
            });
            state.answers.insert(*id, answer);
        }
        state.leading -= 1;
        drop(state);
        self.queue.answered.notify_all();
    }
}

/// The same error again, for each verification of a batch that failed as
/// one (a COMMIT with an unknown outcome, no connection).
fn same_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Engine(m) => StoreError::Engine(m.clone()),
        other => StoreError::Engine(other.to_string()),
    }
}

impl PgStore {
    /// `verify_ticket`: queued with the verifications asked at the same
    /// time on this instance; answered once the COMMIT of its batch returned.
    pub(crate) fn verify_grouped(&self, item: VerifyItem) -> Result<Verdict> {
        let queue = &self.verify_queue;
        let mut state = queue.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.waiting.push_back((id, item));
        loop {
            if let Some(answer) = state.answers.remove(&id) {
                return answer;
            }
            if state.leading < IN_FLIGHT && !state.waiting.is_empty() {
                // Room for a batch: this caller runs the next one (which
                // holds its own item unless more than a batch came first, or
                // another leader took it: then it waits for its answer).
                let batch = take_batch(&mut state.waiting);
                state.leading += 1;
                drop(state);
                let mut lead = Lead {
                    queue,
                    ids: batch.iter().map(|(id, _)| *id).collect(),
                    answers: Vec::new(),
                };
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
    /// instance would be run (the same batches, in arrival order), and
    /// answers each in `items`' order. For tests: it makes batches that
    /// concurrency only makes sometimes.
    #[doc(hidden)]
    pub fn verify_tickets_together(
        &self,
        items: &[(
            Orq,
            crate::domain::TicketCode,
            crate::domain::OperatorId,
            crate::domain::Gate,
            chrono::DateTime<chrono::Utc>,
        )],
    ) -> Vec<Result<Verdict>> {
        use chrono::SubsecRound;
        let mut waiting: VecDeque<(u64, VerifyItem)> = items
            .iter()
            .enumerate()
            .map(|(i, (orq, code, operator, gate, now))| {
                let item = VerifyItem {
                    orq: *orq,
                    code: code.clone(),
                    operator: *operator,
                    gate: *gate,
                    now: now.trunc_subsecs(3),
                };
                (i as u64, item)
            })
            .collect();
        let mut answers: Vec<Option<Result<Verdict>>> = items.iter().map(|_| None).collect();
        while !waiting.is_empty() {
            let batch = take_batch(&mut waiting);
            let refs: Vec<&VerifyItem> = batch.iter().map(|(_, item)| item).collect();
            for ((id, _), answer) in batch.iter().zip(self.verify_batch(&refs)) {
                answers[*id as usize] = Some(answer);
            }
        }
        answers.into_iter().map(|a| a.expect("answered")).collect()
    }

    /// One batch (one org, distinct tickets): one transaction, one COMMIT;
    /// each item's answer in order. A batch of one runs as a lone
    /// verification always did.
    fn verify_batch(&self, items: &[&VerifyItem]) -> Vec<Result<Verdict>> {
        let alone = |item: &VerifyItem| self.write(|tx| verify_one(tx, item));
        let [first, ..] = items else {
            return Vec::new();
        };
        if items.len() == 1 {
            return vec![alone(first)];
        }
        let orq: Orq = first.orq;
        let outcome = self.call(|conn| {
            let PgConn {
                client,
                statements,
                broken,
            } = conn;
            // The BEGIN is the first round trip: if it fails, nothing ran
            // (and `call` tries another connection).
            let tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::ReadCommitted)
                .start()
                .map_err(|e| (true, db(e)))?;
            let mut tx = Tx { tx, statements };
            match verify_batch_in(&mut tx, orq, items) {
                Ok(answers) => match tx.tx.commit().map_err(db) {
                    Ok(()) => Ok(Some(answers)),
                    // The outcome is unknown: answered as a lone
                    // verification's lost COMMIT is (not run again).
                    Err(e @ StoreError::Unavailable(_)) => Err((false, e)),
                    // Refused at COMMIT (a deferred constraint): nothing
                    // was written; each is run alone.
                    Err(_) => Ok(None),
                },
                Err(e) => {
                    // Dropping `tx` rolls the batch back.
                    if matches!(e, StoreError::Unavailable(_)) {
                        *broken = true;
                    }
                    Ok(None)
                }
            }
        });
        match outcome {
            Ok(Some(answers)) => answers,
            // Rolled back: each alone, with today's retries and answers.
            Ok(None) => items.iter().map(|item| alone(item)).collect(),
            Err(e) => items.iter().map(|_| Err(same_error(&e))).collect(),
        }
    }
}
