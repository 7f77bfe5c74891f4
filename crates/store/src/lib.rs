//! All SQL lives here. `Store` owns the SQLite file: it opens and migrates it,
//! runs every statement, and wraps each service in one transaction that loads
//! rows, asks `domain` for the decision, and writes the result.
//!
//! Single writer: every write transaction starts with `BEGIN IMMEDIATE`, so it
//! takes SQLite's write lock before reading anything it will change (no
//! read-then-upgrade deadlocks); in-process writers queue on a mutex, other
//! connections and processes wait in SQLite's busy handler.

mod admin;
mod closing;
mod codec;
mod column;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance_sync;
mod dashboard;
mod engine;
mod gate;
mod gate_health;
mod lease_return;
mod no_show;
mod reservations;
mod signing;
mod slot_board;
mod slots;
mod staff;
mod sync;
mod ticket_search;
mod tickets;
mod tokens;
mod updates;
mod venue_ops;
pub use venue_ops::{GateOpsSummary, LeaseAsk, UndoneHere};
mod venues;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};
use rusqlite_migration::{Migrations, M};

use entrada_domain as domain;

use crate::domain::DomainError;

pub use admin::{AdminStore, CliStore};
pub use closing::close_each;
pub use engine::{
    DashboardStore, GateHealthStore, GateStore, HandOff, OperatorStore, Pending, ReservationStore,
    ServerStore, SigningStore, SlotBoardStore, SlotStore, SyncStore, TicketStore, TokenStore,
    UpdateStore, VenueOpsStore, VenueStore,
};
pub use reservations::ReserveRequest;
pub use signing::{OrgSettings, SigningKeyInfo};
pub use slots::{SeedPlan, SeedReport};
pub use staff::revokes_grants;
pub use sync::{
    Cell, LocalData, OutboxEntry, Pairing, PeerStatus, PulledChange, PulledPage, PulledRow,
    Received, SyncStatus, DEMO_MARKER_TICKET, MAX_PEERS,
};
pub use ticket_search::TicketQuery;
pub use tickets::{CustomerScope, TicketFilter, TicketReader, TicketState, TicketView};
pub use tokens::{
    console_role, hash_token, random_token, stale_link, Principal, CONSOLE_LINK_TTL,
    CONSOLE_SESSION_TTL, TOKEN_PREFIX,
};
pub use venues::{hash_pin, pin_hash_runnable, pin_matches};

/// The schema, oldest first. Append only: a released migration never changes.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_core.sql"),
    include_str!("../migrations/0002_api_tokens.sql"),
    include_str!("../migrations/0003_signing_keys.sql"),
    include_str!("../migrations/0004_sync.sql"),
    include_str!("../migrations/0005_customer_sessions.sql"),
    include_str!("../migrations/0006_lookup_indexes.sql"),
    include_str!("../migrations/0007_device_settings.sql"),
    include_str!("../migrations/0008_verification_overruled.sql"),
    include_str!("../migrations/0009_judged_uploads_scoped_feed.sql"),
    include_str!("../migrations/0010_code_policy_pin_lockout.sql"),
    include_str!("../migrations/0011_venue_gate_settings.sql"),
    include_str!("../migrations/0012_venue_operations.sql"),
    include_str!("../migrations/0013_no_show_release.sql"),
    include_str!("../migrations/0014_gate_lan.sql"),
    include_str!("../migrations/0015_console_links.sql"),
    include_str!("../migrations/0016_gate_app_versions.sql"),
    include_str!("../migrations/0017_lan_cursor_seq.sql"),
    include_str!("../migrations/0018_device_key_unique.sql"),
    include_str!("../migrations/0019_lease_recall.sql"),
    include_str!("../migrations/0020_ticket_order_index.sql"),
    include_str!("../migrations/0021_operator_deactivation.sql"),
    include_str!("../migrations/0022_venue_closings.sql"),
    include_str!("../migrations/0023_ticket_org_code_index.sql"),
    include_str!("../migrations/0024_verified_gate.sql"),
    include_str!("../migrations/0025_deferred_indexes.sql"),
    include_str!("../migrations/0026_deferred_triggers.sql"),
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Domain(#[from] DomainError),

    #[error(
        "the database schema is version {found}, newer than this program knows ({known}); \
         use a newer Entrada with this file"
    )]
    SchemaTooNew { found: i64, known: i64 },

    #[error("the database stayed locked by another writer for more than {0:?}")]
    Busy(Duration),

    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },

    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),

    #[error("database error: {0}")]
    Db(rusqlite::Error),

    /// An error of another engine's database (PostgreSQL), as text: the
    /// engine's crate maps constraint violations to `Domain` first.
    #[error("database error: {0}")]
    Engine(String),

    /// Another engine's database could not be reached (no connection within
    /// the pool's timeout, e.g. while a standby is promoted): worth a retry.
    #[error("the database cannot be reached: {0}")]
    Unavailable(String),

    #[error("the operating system gave no randomness: {0}")]
    Randomness(String),

    #[error("cannot flush the database to disk: {0}")]
    Durability(std::io::Error),

    #[error(
        "this database has served as an Entrada server (API tokens, devices or received events); \
         a gate needs its own database file"
    )]
    ServerDatabase,

    #[error(
        "this database holds venues, operators or tickets that are not the demo's; \
         a gate needs its own database file"
    )]
    LocalData,

    /// A LAN peer this replica no longer lists (revoked, dropped by the
    /// server's peer list): its link must end, not start over.
    #[error("gate {0} is not a listed LAN peer (revoked or no longer in this venue)")]
    NotAPeer(i64),

    /// A `deferred_indexes` row that is not one of the indexes a first
    /// sync defers (another name, another statement): not run.
    #[error("the deferred index {0:?} is not one this program builds; its definition was not run")]
    DeferredIndex(String),

    /// A synced row's value that JSON cannot hold (a real that is not
    /// finite, text that is not UTF-8): its change page is not served.
    #[error("a synced value cannot be served as JSON: {0}")]
    NotJson(String),

    /// A pulled change page with a change this gate cannot apply as its
    /// server meant it (an op it does not know, an upsert without a row):
    /// refused whole, before any of it is applied, its cursor not stored.
    /// Applying such a change as a delete would remove tickets on a
    /// server's bug or a newer server's op.
    #[error(
        "the server's change page was refused (nothing of it applied): change {seq} \
         ({entity} {entity_id:?}): {reason}"
    )]
    RefusedPage {
        seq: i64,
        entity: String,
        entity_id: String,
        reason: String,
    },
}

impl StoreError {
    /// Stable machine code; domain errors keep their own.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Domain(e) => e.code(),
            Self::SchemaTooNew { .. } => "SCHEMA_TOO_NEW",
            Self::Busy(_) => "DATABASE_BUSY",
            Self::Open { .. } => "DATABASE_UNAVAILABLE",
            Self::Migration(_) | Self::Db(_) | Self::Engine(_) => "DATABASE_ERROR",
            Self::Unavailable(_) => "DATABASE_UNAVAILABLE",
            Self::Randomness(_) => "INTERNAL_ERROR",
            Self::Durability(_) => "DATABASE_ERROR",
            Self::ServerDatabase => "SERVER_DATABASE",
            Self::LocalData => "LOCAL_DATA",
            Self::NotAPeer(_) => "NOT_A_PEER",
            Self::DeferredIndex(_) => "DATABASE_ERROR",
            Self::NotJson(_) => "DATABASE_ERROR",
            Self::RefusedPage { .. } => "SYNC_PROTOCOL_ERROR",
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Db(e)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How long a writer waits for another connection's write lock.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(10),
        }
    }
}

pub struct Store {
    path: PathBuf,
    options: StoreOptions,
    writer: Mutex<Connection>,
    /// Idle read connections; WAL lets them read while the writer writes.
    readers: Mutex<Vec<Connection>>,
    durability: GroupSync,
}

/// Group commit. Every write transaction commits into the WAL without an
/// fsync (`synchronous = NORMAL`); before `write` returns, the WAL is fsync'd
/// up to that commit. Writers that commit while one fsync runs share the next
/// one, so N concurrent reservations cost one disk flush, not N — and no
/// caller hears "done" (or shows ADMIT) before its commit is on disk.
struct GroupSync {
    /// The WAL file, when the database runs in WAL mode; `None` means the
    /// connection commits with `synchronous = FULL` itself.
    wal: Option<std::fs::File>,
    /// Commits made by this Store's writer connection.
    committed: std::sync::atomic::AtomicU64,
    state: Mutex<SyncState>,
    flushed: std::sync::Condvar,
}

#[derive(Default)]
struct SyncState {
    durable: u64,
    flushing: bool,
}

impl GroupSync {
    /// Blocks until commit number `n` is on disk.
    fn make_durable(&self, n: u64) -> std::io::Result<()> {
        let Some(wal) = &self.wal else { return Ok(()) };
        let mut state = lock(&self.state);
        loop {
            if state.durable >= n {
                return Ok(());
            }
            if !state.flushing {
                state.flushing = true;
                // Everything committed so far is in the WAL: one fsync covers it.
                let target = self.committed.load(std::sync::atomic::Ordering::SeqCst);
                drop(state);
                let result = wal.sync_data();
                state = lock(&self.state);
                state.flushing = false;
                if result.is_ok() {
                    state.durable = state.durable.max(target);
                }
                self.flushed.notify_all();
                result?;
                continue;
            }
            state = self.flushed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic inside a closure rolls its transaction back when the guard
    // drops, so the connection behind a poisoned lock is still sound.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, StoreOptions::default())
    }

    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        create_private(&path);
        let mut writer = open_connection(&path, &options)?;
        // A file of a newer program is refused before anything writes to it.
        refuse_too_new(&writer)?;
        // A first sync that stopped between pages left its replica without
        // some indexes: built again before the migrations (one may change
        // them). A build that fails (a locked file, a full disk, a refused
        // definition) does not keep the gate from opening: the indexes are
        // paths, not rules, so lookups stay correct, only slower; the
        // definitions stay, and the next sync's end or the next open
        // tries again.
        if let Err(error) = sync::restore_deferred_indexes_at_open(&mut writer) {
            tracing::warn!(%error, "the deferred indexes were not built at open; the next sync or open builds them");
        }
        migrate(&mut writer)?;
        // Group commit needs the WAL file; without it each commit syncs itself.
        let journal: String = writer.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        let mut wal_path = path.clone().into_os_string();
        wal_path.push("-wal");
        let wal = (journal.eq_ignore_ascii_case("wal"))
            .then(|| {
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&wal_path)
                    .ok()
            })
            .flatten();
        writer.pragma_update(
            None,
            "synchronous",
            if wal.is_some() { "NORMAL" } else { "FULL" },
        )?;
        Ok(Self {
            path,
            options,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            durability: GroupSync {
                wal,
                committed: std::sync::atomic::AtomicU64::new(0),
                state: Mutex::new(SyncState::default()),
                flushed: std::sync::Condvar::new(),
            },
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version this program writes.
    pub fn known_schema_version() -> i64 {
        MIGRATIONS.len() as i64
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction; commits if it returns Ok.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let (value, n) = {
            let mut conn = lock(&self.writer);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| self.busy_or(e))?;
            let value = f(&tx)?;
            tx.commit().map_err(|e| self.busy_or(e))?;
            (
                value,
                self.durability
                    .committed
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                    + 1,
            )
        };
        // Outside the writer lock, so the next transaction runs during this fsync.
        self.durability
            .make_durable(n)
            .map_err(StoreError::Durability)?;
        Ok(value)
    }

    /// `write` with foreign-key enforcement off for this one transaction
    /// (the pragma cannot change inside a transaction).
    pub(crate) fn write_without_foreign_keys<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        /// Turns foreign keys back on when dropped: after a panic in `f`
        /// too, else the recovered (poisoned) writer would keep them off
        /// for every later write. The transaction, inside, drops (rolls
        /// back) first.
        struct ForeignKeysOn<'a>(MutexGuard<'a, Connection>);
        impl Drop for ForeignKeysOn<'_> {
            fn drop(&mut self) {
                if let Err(error) = self.0.execute_batch("PRAGMA foreign_keys = ON") {
                    tracing::error!(%error, "foreign keys could not be turned back on");
                }
            }
        }
        let mut conn = ForeignKeysOn(lock(&self.writer));
        // Inside a transaction the pragma is a silent no-op: say so (the
        // transaction below then fails to start, nothing runs unchecked).
        if !conn.0.is_autocommit() {
            tracing::warn!("the writer is inside a transaction: foreign keys cannot be turned off");
        }
        conn.0.execute_batch("PRAGMA foreign_keys = OFF")?;
        let result: Result<(T, u64)> = (|| {
            let tx = conn
                .0
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| self.busy_or(e))?;
            let value = f(&tx)?;
            tx.commit().map_err(|e| self.busy_or(e))?;
            Ok((
                value,
                self.durability
                    .committed
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                    + 1,
            ))
        })();
        // Foreign keys on again, then the writer lock released.
        drop(conn);
        let (value, n) = result?;
        self.durability
            .make_durable(n)
            .map_err(StoreError::Durability)?;
        Ok(value)
    }

    /// Runs `f` in one read transaction (a consistent snapshot).
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let pooled = lock(&self.readers).pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => open_connection(&self.path, &self.options)?,
        };
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let value = f(&tx)?;
            tx.finish()?;
            Ok(value)
        })();
        let mut readers = lock(&self.readers);
        if readers.len() < 8 {
            readers.push(conn);
        }
        result
    }

    fn busy_or(&self, e: rusqlite::Error) -> StoreError {
        if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) {
            StoreError::Busy(self.options.busy_timeout)
        } else {
            StoreError::Db(e)
        }
    }
}

/// Creates a missing database file readable and writable by its owner only
/// (0600: it holds PIN hashes, tokens' hashes and customers' contacts).
/// SQLite gives the `-wal` and `-shm` files it creates next to it the main
/// file's mode. An existing file keeps its mode; a failure here is left to
/// SQLite's open to report.
fn create_private(path: &Path) {
    let raw = path.as_os_str();
    if raw.is_empty() || raw == ":memory:" || path.to_string_lossy().starts_with("file:") {
        return;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let _ = options.open(path);
}

fn open_connection(path: &Path, options: &StoreOptions) -> Result<Connection> {
    let open_err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(open_err)?;
    conn.busy_timeout(options.busy_timeout).map_err(open_err)?;
    // WAL: readers never block the writer. synchronous=FULL until the Store
    // takes over flushing (group commit, see `GroupSync`): a commit is on disk
    // before anyone is told, because a gate shows ADMIT only after its commit.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(open_err)?;
    // temp_store = MEMORY: a statement's journal (an INSERT OR REPLACE in a
    // transaction writes one, to undo the statement alone) stays in memory
    // instead of a temp file: on a gate's first sync of 200,000 changes the
    // file's writes were about 40% of the time spent applying them.
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA trusted_schema = OFF;
         PRAGMA temp_store = MEMORY;",
    )
    .map_err(open_err)?;
    Ok(conn)
}

/// `SchemaTooNew` for a file whose schema is newer than this program's
/// (read only); returns the version found.
fn refuse_too_new(conn: &Connection) -> Result<i64> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = Store::known_schema_version();
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    Ok(found)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let found = refuse_too_new(conn)?;
    let known = Store::known_schema_version();
    if found == known {
        return Ok(());
    }
    let migrations = Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect());
    migrations.to_latest(conn)?;
    Ok(())
}

/// Maps a constraint violation to the domain error the caller names; any
/// other error stays a database error.
/// Only a UNIQUE / PRIMARY KEY violation means "already exists"; a CHECK
/// violation means a value got past validation, reported as invalid input.
pub(crate) fn on_constraint(e: rusqlite::Error, domain: DomainError) -> StoreError {
    const UNIQUE: i32 = 2067; // SQLITE_CONSTRAINT_UNIQUE
    const PRIMARY_KEY: i32 = 1555; // SQLITE_CONSTRAINT_PRIMARYKEY
    const CHECK: i32 = 275; // SQLITE_CONSTRAINT_CHECK
    match &e {
        rusqlite::Error::SqliteFailure(f, _) if matches!(f.extended_code, UNIQUE | PRIMARY_KEY) => {
            StoreError::Domain(domain)
        }
        rusqlite::Error::SqliteFailure(f, _) if f.extended_code == CHECK => StoreError::Domain(
            DomainError::invalid("value", "rejected by a database constraint"),
        ),
        _ => StoreError::Db(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed checksums of the released migrations
    /// (`migrations/SHA256SUMS`, found above the crate so a move keeps it).
    fn migrations_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|dir| dir.join("migrations"))
            .find(|dir| dir.join("SHA256SUMS").is_file())
            .expect("migrations/SHA256SUMS above the crate")
    }

    /// `(file, sha256 hex)` in the order of `SHA256SUMS` (`sha256sum` format,
    /// `#` comments).
    fn released_migrations(dir: &Path) -> Vec<(String, String)> {
        std::fs::read_to_string(dir.join("SHA256SUMS"))
            .unwrap()
            .lines()
            .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
            .map(|line| {
                let (sum, file) = line.split_once("  ").expect("`<sha256>  <file>` lines");
                (file.trim_start_matches('*').to_owned(), sum.to_owned())
            })
            .collect()
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Issue 13: the bundled SQLite is built without its memory statistics
    /// (`.cargo/config.toml`), so an allocation takes no process-wide mutex
    /// (a gate's first sync is 200,000 row inserts and more).
    #[test]
    fn sqlite_keeps_no_memory_statistics() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("a.db")).unwrap();
        let options: Vec<String> = store
            .read(|tx| {
                Ok(tx
                    .prepare("PRAGMA compile_options")?
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?)
            })
            .unwrap();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "SQLite built with its memory statistics: {options:?}"
        );
    }

    /// Released migrations are never edited: databases out there ran them.
    /// A change goes into a new numbered file; once it is added to
    /// MIGRATIONS, record it (in migrations/):
    /// `sha256sum 00NN_name.sql >> SHA256SUMS`.
    #[test]
    fn released_migrations_are_unchanged_and_every_migration_is_listed() {
        let dir = migrations_dir();
        let listed = released_migrations(&dir);
        assert!(listed.len() >= 10, "0001..0010 are released: {listed:?}");
        for (file, sum) in &listed {
            let bytes = std::fs::read(dir.join(file)).unwrap_or_else(|e| {
                panic!("released migration {file} is gone ({e}): restore it, never delete one")
            });
            assert_eq!(
                &sha256_hex(&bytes),
                sum,
                "released migration {file} was edited: restore it (git checkout) and put the \
                 change in a new migration"
            );
        }
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        on_disk.sort();
        let names: Vec<&str> = listed.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            on_disk, names,
            "every migration file is listed in migrations/SHA256SUMS, in order: add a new one \
             with `sha256sum 00NN_name.sql >> SHA256SUMS` (in migrations/)"
        );
        // What the binary embeds is what was released, in the same order.
        assert_eq!(MIGRATIONS.len(), listed.len(), "MIGRATIONS and SHA256SUMS");
        for (sql, (file, _)) in MIGRATIONS.iter().zip(&listed) {
            let on_disk = std::fs::read_to_string(dir.join(file)).unwrap();
            assert_eq!(*sql, on_disk, "MIGRATIONS embeds {file} at its position");
        }
    }

    /// A panic inside a foreign-keys-off write does not leave the
    /// (recovered) writer with foreign keys off.
    #[test]
    fn a_panic_without_foreign_keys_turns_them_back_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("entrada.db")).unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.write_without_foreign_keys(|_| -> Result<()> { panic!("in the transaction") })
        }));
        assert!(panicked.is_err());
        let fk: i64 = store
            .write(|tx| Ok(tx.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(fk, 1);
    }

    #[test]
    fn open_creates_migrates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entrada.db");
        drop(Store::open(&path).unwrap());
        let store = Store::open(&path).unwrap();
        let (version, journal, fk): (i64, String, i64) = store
            .read(|tx| {
                Ok((
                    tx.query_row("PRAGMA user_version", [], |r| r.get(0))?,
                    tx.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
                    tx.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?,
                ))
            })
            .unwrap();
        assert_eq!(version, Store::known_schema_version());
        assert_eq!(journal, "wal");
        assert_eq!(fk, 1);
    }

    /// Migration 0024 names the gate of the admissions uploaded before it
    /// (the device of the verification at the ticket's time, as its token
    /// named it), and none for an admission made at the server itself.
    #[test]
    fn migration_0024_names_the_gate_of_admissions_uploaded_before_it() {
        use crate::domain::sync::protocol::Event;
        use crate::domain::{
            ActivationMode, Contact, Gate, NewSlot, NewTicket, OperatorId, Orq, Role, TicketCode,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.db");
        let at: chrono::DateTime<chrono::Utc> = "2025-12-01T10:00:00Z".parse().unwrap();
        let orq = Orq(1);
        {
            let s = Store::open(&path).unwrap();
            let venue = s.add_venue(orq, "Prado", "UTC", at).unwrap();
            let op = s
                .add_operator(orq, Role::Operator, "Ana", None, at)
                .unwrap();
            let new =
                NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(10)).unwrap();
            let slot = s.create_slot(orq, &new, at).unwrap();
            for code in ["T-1", "T-2"] {
                let t = NewTicket::plain(code, ActivationMode::Immediate).unwrap();
                s.insert_tickets(orq, std::slice::from_ref(&t), at).unwrap();
                let req = ReserveRequest {
                    ticket: t.ticket_code,
                    slot_id: slot.id,
                    contact: Contact::validate("a@example.com", "+12025551234").unwrap(),
                };
                s.reserve_slot(orq, &req, at).unwrap();
            }
            let (_, device) = s.add_device(orq, venue.id, "Gate 1", at).unwrap();
            let event = Event {
                event_id: uuid::Uuid::now_v7(),
                kind: "verify".into(),
                payload: serde_json::json!({ "ticket_code": "T-1", "venue_id": venue.id.0 }),
                operator_id: Some(op.id.0),
                device_time: at,
            };
            s.apply_events(&device, &[event], at, at).unwrap();
            let gate = Gate {
                venue_id: Some(venue.id),
                ..Gate::default()
            };
            let t2 = TicketCode::parse("T-2").unwrap();
            s.verify_ticket(orq, &t2, OperatorId(op.id.0), &gate, at)
                .unwrap();
        }
        // The file as 0023 left it: no column (its own CHECK goes with it),
        // nor what later migrations added (0025's and 0026's tables).
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "ALTER TABLE tickets DROP COLUMN verified_gate; DROP TABLE deferred_indexes; \
                 DROP TABLE deferred_triggers; \
                 PRAGMA user_version = 23;",
            )
            .unwrap();
        }
        let s = Store::open(&path).unwrap();
        let gate_of = |code: &str| -> Option<String> {
            s.read(|tx| {
                Ok(tx.query_row(
                    "SELECT verified_gate FROM tickets WHERE ticket_code = ?1",
                    [code],
                    |r| r.get(0),
                )?)
            })
            .unwrap()
        };
        assert_eq!(
            gate_of("T-1").as_deref(),
            Some("Gate 1"),
            "uploaded by Gate 1"
        );
        assert_eq!(gate_of("T-2"), None, "admitted at the server's desk");
    }

    #[test]
    fn newer_schema_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("future.db");
        drop(Store::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = Store::open(&path).unwrap_err();
        assert_eq!(err.code(), "SCHEMA_TOO_NEW");
        assert!(err.to_string().contains("version 99"), "{err}");
    }

    /// A newer program's file is refused before this one writes to it: a
    /// leftover `deferred_indexes` row (its meaning may have changed) is
    /// neither run nor removed.
    #[test]
    fn a_newer_schema_with_deferred_indexes_is_refused_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("future.db");
        drop(Store::open(&path).unwrap());
        let snapshot = |path: &Path| -> (i64, Vec<(String, String)>, i64) {
            let c = Connection::open(path).unwrap();
            let rows = c
                .prepare("SELECT name, sql FROM deferred_indexes ORDER BY name")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<rusqlite::Result<Vec<_>>>()
                .unwrap();
            let indexes = c
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'idx_future'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            let version = c
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            (version, rows, indexes)
        };
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "INSERT INTO deferred_indexes (name, sql) VALUES \
                 ('idx_future', 'CREATE INDEX idx_future ON tickets (order_id)');",
            )
            .unwrap();
            c.pragma_update(None, "user_version", Store::known_schema_version() + 1)
                .unwrap();
        }
        let before = snapshot(&path);
        let bytes = std::fs::read(&path).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert_eq!(err.code(), "SCHEMA_TOO_NEW");
        assert_eq!(snapshot(&path), before, "no index built, no row removed");
        assert_eq!(before.1.len(), 1);
        assert_eq!(before.2, 0);
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "the file's bytes");
    }

    #[test]
    fn unopenable_path_is_a_clear_error() {
        let err = Store::open("/nonexistent-dir/entrada.db").unwrap_err();
        assert_eq!(err.code(), "DATABASE_UNAVAILABLE");
        assert!(err.to_string().contains("/nonexistent-dir/entrada.db"));
    }
}
