//! A short-lived cache of token hash → principal, per instance.
//!
//! Why: every staff request (each verify-ticket among them) looked its token
//! up in the database first: a pooled connection, a round trip and a
//! planned statement per request, where a verify batch makes five round
//! trips for up to 32 requests. A principal seen valid a moment ago is
//! answered from here instead.
//!
//! What it must keep (SECURITY.md):
//! - a revocation made through this instance (`PgStore::revoking`) empties
//!   the cache once its transaction returned, before the revoking call
//!   returns: from then on this instance refuses the token. A look-up that
//!   read the row before that COMMIT cannot put it back (`generation`);
//! - a revocation made elsewhere (another instance, the CLI) reaches this
//!   instance within `ttl` of the look-up that cached the principal: an
//!   entry is answered only while younger than `ttl`, timed from before its
//!   database read;
//! - an expiring token (a customer or console session) is refused from
//!   its `expires_at` on, as the database refuses it: the entry keeps it;
//! - an unknown or refused token is never cached (a new token works at once
//!   on every instance; a guesser's tokens take no room here).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use entrada_store::Principal;

/// The default `ttl` (`PgOptions::token_cache_ttl`): how long another
/// instance's revocation may take to reach this one.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(2);

/// At most this many principals (each ~200 bytes); past that the oldest
/// stored goes.
const MAX_ENTRIES: usize = 10_000;

pub(crate) struct TokenCache {
    ttl: Duration,
    state: Mutex<State>,
}

struct State {
    /// Moves on at each `forget_all`: a look-up started before it does not
    /// store what it read.
    generation: u64,
    entries: HashMap<String, Entry>,
    /// Each `put` as (hash, read_at), in the order stored: the oldest are
    /// popped from the front, so a `put` does a bounded amount of work under
    /// the lock (amortized O(1): each record is pushed once and popped
    /// once), where a sweep of the whole map at the cap was 10,000 entries
    /// visited under the lock every request. A record whose entry was
    /// stored again since (another `read_at`) or dropped is skipped when
    /// popped. Every entry has a record, so `entries.len() <= order.len()`
    /// and the cap on `order` bounds both.
    order: VecDeque<(String, Instant)>,
}

struct Entry {
    principal: Principal,
    expires_at: Option<DateTime<Utc>>,
    /// When the database read that found it valid started.
    read_at: Instant,
}

/// What a look-up remembers of the cache before its database read.
pub(crate) struct Ticket {
    generation: u64,
    read_at: Instant,
}

impl TokenCache {
    /// `ttl` zero: no caching (every look-up reads the database).
    pub(crate) fn new(ttl: Duration) -> Self {
        TokenCache {
            ttl,
            state: Mutex::new(State {
                generation: 0,
                entries: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every change leaves the map consistent: a poisoned lock is usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The principal of the token whose hash is `hash`, if a read younger
    /// than the TTL found it valid and it has not expired by `now`
    /// (compared as the database compares it: `expires_at > now`).
    pub(crate) fn get(&self, hash: &str, now: DateTime<Utc>) -> Option<Principal> {
        if self.ttl.is_zero() {
            return None;
        }
        let state = self.lock();
        let entry = state.entries.get(hash)?;
        let fresh = entry.read_at.elapsed() < self.ttl;
        let live = entry.expires_at.is_none_or(|e| e > now);
        (fresh && live).then(|| entry.principal.clone())
    }

    /// To be taken before the database read whose result `put` stores.
    pub(crate) fn before_read(&self) -> Ticket {
        Ticket {
            generation: self.lock().generation,
            read_at: Instant::now(),
        }
    }

    /// Stores a principal the database found valid, unless a revocation
    /// went through this instance since `ticket` was taken.
    pub(crate) fn put(
        &self,
        ticket: Ticket,
        hash: String,
        principal: Principal,
        expires_at: Option<DateTime<Utc>>,
    ) {
        if self.ttl.is_zero() {
            return;
        }
        let mut state = self.lock();
        if state.generation != ticket.generation {
            return;
        }
        // Drops what no `get` answers any more (older than the TTL, from
        // the front: records are about in `read_at` order, a look-up's
        // read being short), then the oldest while full.
        let ttl = self.ttl;
        while let Some((_, read_at)) = state.order.front() {
            if read_at.elapsed() < ttl && state.order.len() < MAX_ENTRIES {
                break;
            }
            state.pop_oldest();
        }
        state.order.push_back((hash.clone(), ticket.read_at));
        state.entries.insert(
            hash,
            Entry {
                principal,
                expires_at,
                read_at: ticket.read_at,
            },
        );
    }

    /// Forgets every principal, and any look-up in flight will not store
    /// its own: called once a write that may revoke tokens returned.
    pub(crate) fn forget_all(&self) {
        let (entries, order) = {
            let mut state = self.lock();
            state.generation += 1;
            (
                std::mem::take(&mut state.entries),
                std::mem::take(&mut state.order),
            )
        };
        // Freed after the lock is released: up to `MAX_ENTRIES` entries, and
        // async workers wait on this lock (`cached_principal`).
        drop((entries, order));
    }
}

impl State {
    /// Pops the oldest record, and drops its entry unless stored again
    /// since (a newer read).
    fn pop_oldest(&mut self) {
        if let Some((hash, read_at)) = self.order.pop_front() {
            if self
                .entries
                .get(&hash)
                .is_some_and(|e| e.read_at == read_at)
            {
                self.entries.remove(&hash);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Orq, Role};

    fn principal() -> Principal {
        Principal {
            token_id: 1,
            orq: Orq(1),
            role: Role::Operator,
            user_id: Some(5),
            venue_id: None,
            ticket_code: None,
        }
    }

    #[test]
    fn a_read_older_than_a_revocation_is_not_stored() {
        let cache = TokenCache::new(Duration::from_secs(60));
        let before = cache.before_read();
        cache.forget_all();
        cache.put(before, "h".into(), principal(), None);
        assert_eq!(cache.get("h", Utc::now()), None);
        // A read after it is.
        let after = cache.before_read();
        cache.put(after, "h".into(), principal(), None);
        assert_eq!(cache.get("h", Utc::now()), Some(principal()));
        cache.forget_all();
        assert_eq!(cache.get("h", Utc::now()), None);
    }

    #[test]
    fn an_entry_answers_until_its_ttl_or_its_expiry() {
        let cache = TokenCache::new(Duration::from_millis(300));
        let now = Utc::now();
        let expires = now + chrono::Duration::seconds(10);
        cache.put(cache.before_read(), "h".into(), principal(), Some(expires));
        assert_eq!(cache.get("h", now), Some(principal()));
        // Expired by the request's clock: refused as the database would.
        assert_eq!(cache.get("h", expires), None);
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(cache.get("h", now), None);
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let cache = TokenCache::new(Duration::ZERO);
        cache.put(cache.before_read(), "h".into(), principal(), None);
        assert_eq!(cache.get("h", Utc::now()), None);
    }

    /// A ticket as `before_read` gives it, for a read that started `ago`.
    fn read_ago(cache: &TokenCache, ago: Duration) -> Ticket {
        Ticket {
            generation: cache.lock().generation,
            read_at: Instant::now()
                .checked_sub(ago)
                .expect("the clock runs that long"),
        }
    }

    /// At the cap, a new principal takes the oldest one's place: the others
    /// stay (before, with none stale, all 10,000 were dropped at once and
    /// the next 10,000 look-ups each read the database again).
    #[test]
    fn a_full_cache_drops_its_oldest_entry_only() {
        let cache = TokenCache::new(Duration::from_secs(60));
        for i in 0..MAX_ENTRIES + 5 {
            cache.put(cache.before_read(), i.to_string(), principal(), None);
        }
        {
            let state = cache.lock();
            assert_eq!(state.entries.len(), MAX_ENTRIES);
            assert_eq!(state.order.len(), MAX_ENTRIES);
        }
        for i in 0..5 {
            assert_eq!(
                cache.get(&i.to_string(), Utc::now()),
                None,
                "{i}: the oldest"
            );
        }
        for i in [5, MAX_ENTRIES / 2, MAX_ENTRIES + 4] {
            assert!(
                cache.get(&i.to_string(), Utc::now()).is_some(),
                "{i} is kept"
            );
        }
    }

    /// Entries older than the TTL (never answered again) go as new ones
    /// come, from the front of the queue, without waiting for the cap or
    /// a scan of the map.
    #[test]
    fn stale_entries_go_as_new_ones_come() {
        let cache = TokenCache::new(Duration::from_secs(60));
        for i in 0..100 {
            let stale = read_ago(&cache, Duration::from_secs(61));
            cache.put(stale, format!("old{i}"), principal(), None);
        }
        cache.put(cache.before_read(), "new".into(), principal(), None);
        let state = cache.lock();
        assert_eq!(state.entries.len(), 1, "only the fresh one is kept");
        assert!(state.entries.contains_key("new"));
        assert_eq!(state.order.len(), 1);
    }

    /// A principal read again (a newer entry) is not dropped with its older
    /// record: its place is that of its newest read.
    #[test]
    fn an_entry_stored_again_is_kept_by_its_newest_read() {
        let cache = TokenCache::new(Duration::from_secs(60));
        let first = read_ago(&cache, Duration::from_secs(30));
        cache.put(first, "a".into(), principal(), None);
        cache.put(cache.before_read(), "a".into(), principal(), None);
        // Enough others that the first record of "a" is popped at the cap.
        for i in 0..MAX_ENTRIES - 1 {
            cache.put(cache.before_read(), i.to_string(), principal(), None);
        }
        assert_eq!(cache.get("a", Utc::now()), Some(principal()));
        let state = cache.lock();
        assert_eq!(state.entries.len(), MAX_ENTRIES);
        assert_eq!(state.order.len(), MAX_ENTRIES);
        assert_eq!(state.order.front().map(|(h, _)| h.as_str()), Some("a"));
    }

    /// `forget_all` empties the queue with the map.
    #[test]
    fn forgetting_all_empties_the_queue_too() {
        let cache = TokenCache::new(Duration::from_secs(60));
        for i in 0..10 {
            cache.put(cache.before_read(), i.to_string(), principal(), None);
        }
        cache.forget_all();
        let state = cache.lock();
        assert_eq!((state.entries.len(), state.order.len()), (0, 0));
    }
}

#[cfg(test)]
mod every_revocation {
    /// A tripwire, not a proof: each source file of this crate that sets
    /// `api_tokens.revoked_at` calls `revoking` as often (a revocation
    /// through `write` would leave this instance answering the revoked token
    /// from its cache for up to the TTL).
    #[test]
    fn goes_through_revoking() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut seen = 0;
        for file in std::fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let updates = text.matches("UPDATE api_tokens").count();
            let revoking = text.matches("self.revoking(").count();
            assert!(
                revoking >= updates,
                "{}: {updates} updates of api_tokens, {revoking} calls of `revoking`",
                path.display()
            );
            seen += updates;
        }
        assert!(seen >= 4, "the revocations were found ({seen})");
    }
}
