//! Entrada's server store on PostgreSQL: the service traits of
//! `entrada-store` (`VenueStore`, `SlotStore`, …) over a pool of
//! connections, with this crate's own migrations (`migrations/`). The
//! rules are the domain's, the types and errors are `entrada-store`'s: only
//! SQL differs. Several server instances may share one database: every state
//! that matters is in it.
//!
//! Calls block (the synchronous `postgres` client); the server runs them on
//! tokio's blocking pool, as it does SQLite's, but for verify-ticket, which
//! it hands off (`HandOff`: queued from its async worker, batches led on its
//! runtime's blocking pool, `verify_batch.rs`). Each pooled connection keeps
//! its prepared statements (`conn.rs`).

mod admin;
mod closing;
mod conn;
mod dashboard;
mod feed;
mod gate;
mod gate_health;
mod group_commit;
mod lease_return;
mod migrate;
mod no_show;
mod operators;
mod reservations;
mod reserve_batch;
mod signing;
mod slot_board;
mod slots;
mod sync;
mod ticket_search;
mod tickets;
mod token_cache;
mod tokens;
mod updates;
mod venue_ops;
mod venues;
mod verify_batch;

/// The batches' counts and the reservation batches' test entry points
/// (`test-hooks` feature only).
#[cfg(feature = "test-hooks")]
pub use group_commit::BatchCounts;
#[cfg(feature = "test-hooks")]
pub use reserve_batch::ReserveTestItem;
/// The verify batches' test entry points (`test-hooks` feature only).
#[cfg(feature = "test-hooks")]
pub use verify_batch::TestItem;

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{NoTls, Row};
use r2d2_postgres::{r2d2, PostgresConnectionManager};

use entrada_domain as domain;
use entrada_store::{Result, StoreError};

use crate::conn::{Manager, PgConn, Tx, BEGIN_READ, BEGIN_WRITE};
use crate::domain::DomainError;

pub use feed::FeedEntry;
pub use migrate::{known_schema_version, MIGRATIONS};
pub use sync::DEVICE_BATCH_LOCK;
pub use token_cache::TOKEN_CACHE_TTL;

type Pool = r2d2::Pool<Manager>;

#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections this instance keeps at most (all instances together must
    /// stay under the server's `max_connections`).
    pub pool_size: u32,
    /// How long a call waits for a free (or new) connection before it fails
    /// with `DATABASE_UNAVAILABLE`.
    pub connect_timeout: Duration,
    /// `search_path` for every connection (tests: one schema each); `None`
    /// keeps the server's default (`public`).
    pub schema: Option<String>,
    /// How long a token's principal, once read, is answered from this
    /// instance's memory (`token_cache.rs`): how long a revocation made on
    /// another instance may take to reach this one. Zero: every request
    /// reads the database.
    pub token_cache_ttl: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
            schema: None,
            token_cache_ttl: token_cache::TOKEN_CACHE_TTL,
        }
    }
}

pub struct PgStore {
    pool: Pool,
    /// The change feed's `remaining`, carried from page to page (`feed.rs`).
    feed_counts: feed::FeedCounts,
    /// When this instance last tried to vacuum the log after bulk numbering (`feed.rs`).
    feed_vacuumed: std::sync::Mutex<Option<std::time::Instant>>,
    /// The entries a pull numbers before it reads (`feed::SETTLE_BATCH`;
    /// smaller in tests).
    feed_pull_batch: std::sync::atomic::AtomicI64,
    /// Verifications waiting to share a transaction (`verify_batch.rs`).
    verify_queue: verify_batch::VerifyQueue,
    /// Reservations waiting to share a transaction (`reserve_batch.rs`).
    reserve_queue: reserve_batch::ReserveQueue,
    /// Principals read a moment ago (`token_cache.rs`).
    tokens: token_cache::TokenCache,
    /// Tests only: run once by the next feed page between its log read and
    /// its row reads (`sync.rs`, `set_feed_page_pause`).
    #[cfg(feature = "test-hooks")]
    feed_page_pause: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://…`, multi-host with
    /// `target_session_attrs=read-write` allowed) and migrates the database.
    pub fn connect(url: &str, options: PgOptions) -> Result<Self> {
        if let Some(schema) = &options.schema {
            if !valid_schema_name(schema) {
                return Err(StoreError::Domain(DomainError::invalid(
                    "schema",
                    "a lower-case SQL identifier: a-z, 0-9 and _, not starting with a digit, at most 63",
                )));
            }
        }
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| StoreError::Unavailable(format!("bad URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        // The URL's own `options` first; notices (the migrator's "already
        // exists, skipping") are no news in the server's log.
        let mut server_options = config.get_options().unwrap_or_default().to_owned();
        server_options.push_str(" -c client_min_messages=warning");
        // Statements are prepared once per connection (conn.rs), and after
        // five runs PostgreSQL may switch a prepared statement to a generic
        // plan, made without the values: for the catch-all filters (`$10 IS
        // NULL OR …`, the keyset bound) that can be a scan of the whole org.
        // Planning each run with its values, as the unnamed statements
        // before the cache were, keeps the saved round trips and the plans.
        // A verify batch's transaction alone sets generic plans for all its
        // statements (`gate::GENERIC_PLANS`, tested to look rows up by key).
        server_options.push_str(" -c plan_cache_mode=force_custom_plan");
        if let Some(schema) = &options.schema {
            server_options.push_str(&format!(" -c search_path={schema}"));
        }
        config.options(server_options.trim_start());
        let manager = Manager(PostgresConnectionManager::new(config, NoTls));
        let pool = r2d2::Pool::builder()
            .max_size(options.pool_size.max(1))
            .min_idle(Some(0))
            .connection_timeout(options.connect_timeout)
            // No round trip to test a connection at each checkout: a call
            // that finds its connection dead marks it broken (the pool drops
            // it) and, if nothing ran yet, runs again on another one
            // (`conn.rs`, `PgStore::call`). This is how instances reconnect
            // after a failover.
            .test_on_check_out(false)
            .build_unchecked(manager);
        let store = Self {
            pool,
            feed_counts: feed::FeedCounts::default(),
            feed_vacuumed: std::sync::Mutex::new(None),
            feed_pull_batch: std::sync::atomic::AtomicI64::new(feed::SETTLE_BATCH),
            verify_queue: verify_batch::VerifyQueue::default(),
            reserve_queue: reserve_batch::ReserveQueue::default(),
            tokens: token_cache::TokenCache::new(options.token_cache_ttl),
            #[cfg(feature = "test-hooks")]
            feed_page_pause: std::sync::Mutex::new(None),
        };
        store.migrate()?;
        Ok(store)
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<Manager>> {
        self.pool
            .get()
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// Runs `f` on a pooled connection. `f` returns `Err((true, e))` when
    /// its first round trip failed (nothing ran on the server),
    /// `Err((false, e))` for any later failure. A connection a failure says
    /// is unusable is marked broken, so the pool drops it; and a call whose
    /// first round trip found its connection unusable (stale in the pool
    /// after a failover, a restart, a terminated backend) runs again on
    /// another. At most `pool_size` stale connections wait in the pool, so
    /// `pool_size + 1` attempts reach a new one; a database that is down
    /// fails the checkout itself (`DATABASE_UNAVAILABLE`).
    fn call<T>(
        &self,
        mut f: impl FnMut(&mut PgConn) -> std::result::Result<T, (bool, StoreError)>,
    ) -> Result<T> {
        let mut attempts = self.pool.max_size() + 1;
        loop {
            let mut conn = self.conn()?;
            match f(&mut conn) {
                Ok(value) => return Ok(value),
                Err((before_any, e)) => {
                    let unusable = matches!(e, StoreError::Unavailable(_));
                    if unusable {
                        conn.broken = true;
                    }
                    attempts -= 1;
                    if !(unusable && before_any && attempts > 0) {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Runs `f` in one transaction started by `begin` (`Tx::begin`: a
    /// `START TRANSACTION …` and any `SET LOCAL`s, one round trip); commits
    /// if it returns Ok, rolls back otherwise.
    fn transaction<T>(
        &self,
        begin: &'static str,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut f = Some(f);
        self.call(|conn| {
            let PgConn {
                client, statements, ..
            } = conn;
            // The BEGIN is the first round trip: if it fails, nothing ran.
            let mut tx = Tx::begin(client, statements, begin).map_err(|e| (true, db(e)))?;
            let f = f.take().expect("a call runs its closure once");
            let value = f(&mut tx).map_err(|e| (false, e))?;
            tx.commit().map_err(|e| (false, db(e)))?;
            Ok(value)
        })
    }

    /// Runs `f` in one READ COMMITTED transaction; commits if it returns Ok.
    /// Services that read-then-write lock the rows they change
    /// (`SELECT … FOR UPDATE`), so concurrent instances serialize per row.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        self.transaction(BEGIN_WRITE, f)
    }

    /// `write` with `begin` for its first round trip: `BEGIN_WRITE` and the
    /// transaction's `SET LOCAL`s in one simple query (the feed numberer's
    /// planner settings). `'static`: the simple-query protocol runs every
    /// statement in the text, so it is fixed SQL, never built from input.
    pub(crate) fn write_with<T>(
        &self,
        begin: &'static str,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T>,
    ) -> Result<T> {
        debug_assert!(begin.starts_with(BEGIN_WRITE), "{begin}");
        self.transaction(begin, f)
    }

    /// `write` for a change that may revoke API tokens: once it returned
    /// (committed, or failed with an outcome that may be either), this
    /// instance's cached principals are forgotten, so this instance refuses
    /// a token revoked here from the moment the call returns
    /// (`token_cache.rs`). Every write that sets `api_tokens.revoked_at`
    /// goes through here.
    pub(crate) fn revoking<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        let out = self.write(f);
        self.tokens.forget_all();
        out
    }

    /// Runs `f` in one read-only REPEATABLE READ transaction (one snapshot).
    pub(crate) fn read<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        self.transaction(BEGIN_READ, f)
    }

    /// Statements outside any transaction (a VACUUM cannot run in one).
    pub(crate) fn outside_transaction(&self, sql: &str) -> Result<()> {
        self.call(|conn| conn.client.batch_execute(sql).map_err(|e| (true, db(e))))
    }

    /// One read-only statement on its own, without BEGIN and COMMIT (two
    /// round trips fewer than `read`): one statement sees one snapshot
    /// anyway. For the look-ups made on every request (a token's
    /// principal). A read, so it runs again on a fresh connection when a
    /// stale one fails it.
    pub(crate) fn read_row(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        self.call(|conn| {
            let PgConn {
                client, statements, ..
            } = conn;
            let statement = statements.get(client, sql).map_err(|e| (true, db(e)))?;
            client.query_opt(&statement, params).map_err(|e| {
                crate::conn::forget_if_stale(statements, &e);
                (true, db(e))
            })
        })
    }
}

/// A schema name that goes into `search_path` as it is (no quoting needed,
/// nothing else can ride along).
fn valid_schema_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && name.len() <= 63
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

/// Timestamps keep millisecond precision, as SQLite's text columns do, so
/// both engines give back the same values.
pub(crate) fn ts(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(3)
}

/// Any database error that is not a constraint the caller expects. A lost
/// connection is `DATABASE_UNAVAILABLE` (the caller may retry).
pub(crate) fn db(e: postgres::Error) -> StoreError {
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    if e.is_closed() || io {
        return StoreError::Unavailable(e.to_string());
    }
    match e.code() {
        Some(c) if is_unavailable(c) => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Engine(e.to_string()),
    }
}

fn is_unavailable(code: &SqlState) -> bool {
    // Class 08 (connection), 57P01..03 (shutdown, crash, cannot connect now),
    // 25006 (read-only transaction: this host is a standby now).
    code.code().starts_with("08")
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION
}

/// Maps a constraint violation to the domain error the caller names, as
/// `entrada_store`'s SQLite mapping does: UNIQUE / PRIMARY KEY means "already
/// exists"; a CHECK means a value got past validation (invalid input); any
/// other error stays a database error.
pub(crate) fn on_constraint(e: postgres::Error, domain: DomainError) -> StoreError {
    match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => StoreError::Domain(domain),
        Some(c) if *c == SqlState::CHECK_VIOLATION => StoreError::Domain(DomainError::invalid(
            "value",
            "rejected by a database constraint",
        )),
        _ => db(e),
    }
}

/// A value read from the database that the domain refuses: the database
/// holds something no code path writes.
pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(format!("unexpected {what} in the database: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for ok in ["public", "t_12_3", "_x"] {
            assert!(valid_schema_name(ok), "{ok}");
        }
        for bad in [
            "",
            "1x",
            "Public",
            "a b",
            "x,public",
            "x;drop",
            "a-b",
            &"a".repeat(64),
        ] {
            assert!(!valid_schema_name(bad), "{bad}");
        }
        // Refused before any connection is tried.
        let options = PgOptions {
            schema: Some("x -c role=postgres".into()),
            ..PgOptions::default()
        };
        let err = PgStore::connect("postgres://u@127.0.0.1:1/db", options).unwrap_err();
        assert_eq!(err.code(), "INVALID_INPUT");
    }
}
