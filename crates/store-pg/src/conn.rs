//! The pool's connections: a `postgres::Client` with its own prepared
//! statements, and the transaction handle every query of this crate goes
//! through.
//!
//! Why a statement cache: a query given as text is parsed, planned and
//! described by the server on each call (`postgres` prepares an unnamed
//! statement first: two round trips per statement). Each connection keeps
//! the statements it has prepared, by their SQL text, so a statement costs
//! one round trip from its second use on. The cache lives and dies with its
//! connection: a connection replaced after a failover starts empty.
//!
//! Why no health check per checkout: r2d2's `test_on_check_out` costs one
//! round trip per store call. A connection is marked broken instead when a
//! call on it fails as `DATABASE_UNAVAILABLE` (lost connection, a shutdown,
//! a standby), and the pool drops it on its return (`has_broken`); the
//! store runs a call again on another connection when its *first* round
//! trip failed that way (nothing ran: see `PgStore::call`).

use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};
use r2d2_postgres::r2d2::ManageConnection;
use r2d2_postgres::PostgresConnectionManager;

/// At most this many statements per connection: the SQL of this crate is a
/// fixed set (a few hundred texts at most), so the bound only keeps a
/// mistake (a value formatted into SQL) from growing without end.
const MAX_STATEMENTS: usize = 512;

/// Statements prepared on one connection, by SQL text.
#[derive(Default)]
pub(crate) struct Statements(HashMap<String, Statement>);

impl Statements {
    pub(crate) fn get(
        &mut self,
        client: &mut impl postgres::GenericClient,
        sql: &str,
    ) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.0.get(sql) {
            return Ok(s.clone());
        }
        let statement = client.prepare(sql)?;
        if self.0.len() >= MAX_STATEMENTS {
            // Dropping a statement closes it on the server.
            self.0.clear();
        }
        self.0.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

pub(crate) struct PgConn {
    pub(crate) client: Client,
    pub(crate) statements: Statements,
    /// Set when a call on this connection failed as unavailable: the pool
    /// drops it instead of reusing it. (Stale statements only empty the
    /// cache, `forget_if_stale`; the connection itself is still good.)
    pub(crate) broken: bool,
}

/// r2d2's manager for `PgConn`: `r2d2_postgres`'s connect, a broken flag of
/// our own.
pub(crate) struct Manager(pub(crate) PostgresConnectionManager<NoTls>);

impl ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConn, postgres::Error> {
        Ok(PgConn {
            client: self.0.connect()?,
            statements: Statements::default(),
            broken: false,
        })
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.broken || conn.client.is_closed()
    }
}

/// A query by its SQL text (prepared once per connection) or by a
/// statement already prepared.
pub(crate) trait Query {
    fn statement(
        &self,
        client: &mut impl postgres::GenericClient,
        statements: &mut Statements,
    ) -> Result<Statement, postgres::Error>;
}

impl Query for str {
    fn statement(
        &self,
        client: &mut impl postgres::GenericClient,
        statements: &mut Statements,
    ) -> Result<Statement, postgres::Error> {
        statements.get(client, self)
    }
}

impl Query for String {
    fn statement(
        &self,
        client: &mut impl postgres::GenericClient,
        statements: &mut Statements,
    ) -> Result<Statement, postgres::Error> {
        statements.get(client, self)
    }
}

impl Query for Statement {
    fn statement(
        &self,
        _: &mut impl postgres::GenericClient,
        _: &mut Statements,
    ) -> Result<Statement, postgres::Error> {
        Ok(self.clone())
    }
}

/// The transaction a store call runs in, on the connection's own client:
/// started by a simple query of ours (`Tx::begin`), ended by an explicit
/// COMMIT (`commit`) or, when dropped open (an error returned early, a
/// panic), by a ROLLBACK. Each statement is prepared once per connection.
///
/// Why not `postgres::Transaction`: that type is only made by sending its
/// own BEGIN, so a transaction that needs settings (`SET LOCAL`: a verify
/// batch's generic plans, the feed numberer's plan) paid one round trip
/// for the BEGIN and another for the SETs. `begin` sends both in one
/// simple query (PostgreSQL runs the statements after a BEGIN in one
/// query string inside that transaction): one round trip less per batch,
/// and a round trip is two wake-ups (the backend's, then this thread's)
/// that wait for a CPU on a loaded machine.
pub(crate) struct Tx<'a> {
    client: &'a mut Client,
    pub(crate) statements: &'a mut Statements,
    /// Begun and neither committed nor rolled back: dropped so, it sends
    /// a ROLLBACK.
    open: bool,
}

/// `START TRANSACTION` for a READ COMMITTED write (`PgStore::write`).
pub(crate) const BEGIN_WRITE: &str = "START TRANSACTION ISOLATION LEVEL READ COMMITTED";
/// `START TRANSACTION` for a read-only REPEATABLE READ read (one snapshot,
/// `PgStore::read`).
pub(crate) const BEGIN_READ: &str = "START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY";

impl<'a> Tx<'a> {
    /// Starts a transaction on `client` with `begin`: one simple query,
    /// `START TRANSACTION …` first, then any `SET LOCAL`s, all in one
    /// round trip. If it fails, whatever of it ran is rolled back (the
    /// `Tx` made before it is dropped open), so the connection goes back to
    /// the pool outside any transaction.
    pub(crate) fn begin(
        client: &'a mut Client,
        statements: &'a mut Statements,
        begin: &str,
    ) -> Result<Self, postgres::Error> {
        debug_assert!(begin.starts_with("START TRANSACTION"), "{begin}");
        let tx = Tx {
            client,
            statements,
            open: true,
        };
        tx.client.batch_execute(begin)?;
        Ok(tx)
    }

    /// COMMIT. Whatever it answers, the transaction is over: a COMMIT the
    /// server refused (a deferred constraint) rolled it back, and one whose
    /// answer was lost leaves a connection the pool drops.
    pub(crate) fn commit(mut self) -> Result<(), postgres::Error> {
        self.open = false;
        self.client.batch_execute("COMMIT")
    }
}

impl Drop for Tx<'_> {
    /// Rolled back unless committed: an error path, a batch handed back, a
    /// panic (this runs while unwinding, as `postgres::Transaction`'s own
    /// drop does). A failed ROLLBACK leaves a connection that is closed or
    /// whose call failed as unavailable: the pool drops it (`has_broken`).
    fn drop(&mut self) {
        if self.open && !self.client.is_closed() {
            if let Err(e) = self.client.batch_execute("ROLLBACK") {
                tracing::debug!(error = %e, "rollback of a dropped transaction failed");
            }
        }
    }
}

/// A prepared statement whose result columns changed under it (another
/// instance migrated the schema): the server refuses it ("cached plan must
/// not change result type", 0A000) until it is prepared again. The whole
/// cache goes, so every statement is prepared anew on the new schema.
pub(crate) fn forget_if_stale(statements: &mut Statements, e: &postgres::Error) {
    if e.code() == Some(&postgres::error::SqlState::FEATURE_NOT_SUPPORTED) {
        statements.0.clear();
    }
}

impl Tx<'_> {
    pub(crate) fn prepare(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        self.statements.get(&mut *self.client, sql)
    }

    /// Runs one statement of `q` (prepared once per connection) with `run`;
    /// an error that says the cached statement went stale empties the cache.
    fn cached<Q: Query + ?Sized, T>(
        &mut self,
        q: &Q,
        run: impl FnOnce(&mut Client, &Statement) -> Result<T, postgres::Error>,
    ) -> Result<T, postgres::Error> {
        let s = q.statement(&mut *self.client, self.statements)?;
        let out = run(self.client, &s);
        if let Err(e) = &out {
            forget_if_stale(self.statements, e);
        }
        out
    }

    pub(crate) fn query<Q: Query + ?Sized>(
        &mut self,
        q: &Q,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        self.cached(q, |c, s| c.query(s, params))
    }

    pub(crate) fn query_one<Q: Query + ?Sized>(
        &mut self,
        q: &Q,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, postgres::Error> {
        self.cached(q, |c, s| c.query_one(s, params))
    }

    pub(crate) fn query_opt<Q: Query + ?Sized>(
        &mut self,
        q: &Q,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error> {
        self.cached(q, |c, s| c.query_opt(s, params))
    }

    pub(crate) fn execute<Q: Query + ?Sized>(
        &mut self,
        q: &Q,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        self.cached(q, |c, s| c.execute(s, params))
    }
}

/// A row's columns by name: a whole row (`postgres::Row`), or one table's
/// part of a joined row (`Prefixed`). The row parsers of this crate
/// (`ticket`, `reservation`, `slot`, `venue`) take either, so one query may
/// return several tables' rows side by side.
pub(crate) trait Columns {
    /// The column `name` as `T`; panics, as `Row::get` does, when there is
    /// no such column or its type is not `T` (a mistake in this crate's SQL,
    /// never input).
    fn get<'a, N: AsRef<str>, T: postgres::types::FromSql<'a>>(&'a self, name: N) -> T;
}

impl Columns for Row {
    fn get<'a, N: AsRef<str>, T: postgres::types::FromSql<'a>>(&'a self, name: N) -> T {
        Row::get(self, name.as_ref())
    }
}

/// One table's columns of a joined row, each selected as `{prefix}{name}`
/// (`prefixed` writes that select list).
pub(crate) struct Prefixed<'r> {
    pub(crate) row: &'r Row,
    pub(crate) prefix: &'static str,
}

impl Columns for Prefixed<'_> {
    fn get<'a, N: AsRef<str>, T: postgres::types::FromSql<'a>>(&'a self, name: N) -> T {
        let name = name.as_ref();
        let row: &'a Row = self.row;
        let i = row
            .columns()
            .iter()
            .position(|c| c.name().strip_prefix(self.prefix) == Some(name))
            .unwrap_or_else(|| panic!("no column {}{name} in this row", self.prefix));
        row.get(i)
    }
}

/// `columns` (a list such as `TICKET_COLUMNS`) of table alias `alias`, each
/// selected as `{prefix}{column}`, for `Prefixed`.
pub(crate) fn prefixed(columns: &str, alias: &str, prefix: &str) -> String {
    columns
        .split(',')
        .map(|c| {
            let c = c.trim();
            format!("{alias}.{c} AS {prefix}{c}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `columns` of table alias `alias`, under their own names.
pub(crate) fn qualified(columns: &str, alias: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    //! `Tx` on a real PostgreSQL (`ENTRADA_TEST_PG`, as the crate's
    //! integration tests; skipped without it, failed under CI): every way a
    //! transaction ends leaves its connection outside any transaction, with
    //! nothing of an unfinished one written. A connection left inside one
    //! would be handed to the next store call by the pool, whose COMMIT
    //! would then commit the other call's leftovers.
    use super::*;
    use postgres::error::SqlState;

    fn client() -> Option<Client> {
        let url = match std::env::var("ENTRADA_TEST_PG") {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("ENTRADA_TEST_PG is not set: CI runs the PostgreSQL tests")
            }
            _ => {
                eprintln!("ENTRADA_TEST_PG not set: PostgreSQL test skipped");
                return None;
            }
        };
        let mut c = Client::connect(&url, NoTls).unwrap();
        // A temporary table: this session's own, no schema to clean up.
        c.batch_execute(
            "CREATE TEMP TABLE t (k INT, CONSTRAINT u UNIQUE (k) DEFERRABLE INITIALLY DEFERRED)",
        )
        .unwrap();
        Some(c)
    }

    /// Outside any transaction: a SAVEPOINT is refused as "no transaction"
    /// (25P01), not as "aborted transaction" (25P02) nor accepted.
    fn assert_outside_a_transaction(c: &mut Client) {
        let e = c.batch_execute("SAVEPOINT probe").unwrap_err();
        assert_eq!(e.code(), Some(&SqlState::NO_ACTIVE_SQL_TRANSACTION), "{e}");
    }

    fn rows(c: &mut Client) -> i64 {
        c.query_one("SELECT count(*) FROM t", &[]).unwrap().get(0)
    }

    #[test]
    fn a_transaction_dropped_open_is_rolled_back() {
        let Some(mut c) = client() else { return };
        let mut statements = Statements::default();
        {
            let mut tx = Tx::begin(&mut c, &mut statements, BEGIN_WRITE).unwrap();
            tx.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
        }
        assert_outside_a_transaction(&mut c);
        assert_eq!(rows(&mut c), 0);
    }

    #[test]
    fn a_transaction_whose_caller_panics_is_rolled_back() {
        let Some(mut c) = client() else { return };
        let mut statements = Statements::default();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut tx = Tx::begin(&mut c, &mut statements, BEGIN_WRITE).unwrap();
            tx.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
            panic!("a leader panics before its COMMIT");
        }));
        assert!(caught.is_err());
        assert_outside_a_transaction(&mut c);
        assert_eq!(rows(&mut c), 0);
    }

    #[test]
    fn a_failed_statement_then_a_drop_leaves_no_aborted_transaction() {
        let Some(mut c) = client() else { return };
        let mut statements = Statements::default();
        {
            let mut tx = Tx::begin(&mut c, &mut statements, BEGIN_WRITE).unwrap();
            tx.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
            assert!(tx.execute("SELECT 1 / 0", &[]).is_err());
        }
        assert_outside_a_transaction(&mut c);
        assert_eq!(rows(&mut c), 0);
    }

    #[test]
    fn a_begin_whose_settings_fail_leaves_no_transaction() {
        let Some(mut c) = client() else { return };
        let mut statements = Statements::default();
        let begin = format!("{BEGIN_WRITE}; SET LOCAL no_such_setting_at_all = 1");
        assert!(Tx::begin(&mut c, &mut statements, &begin).is_err());
        assert_outside_a_transaction(&mut c);
    }

    #[test]
    fn a_begin_s_settings_hold_in_its_transaction_only() {
        let Some(mut c) = client() else { return };
        let mut statements = Statements::default();
        let show = |tx: &mut Tx<'_>| -> String {
            tx.query_one("SELECT current_setting('enable_seqscan')", &[])
                .unwrap()
                .get(0)
        };
        let begin = format!("{BEGIN_WRITE}; SET LOCAL enable_seqscan = off");
        let mut tx = Tx::begin(&mut c, &mut statements, &begin).unwrap();
        assert_eq!(show(&mut tx), "off");
        let isolation: String = tx
            .query_one("SELECT current_setting('transaction_isolation')", &[])
            .unwrap()
            .get(0);
        assert_eq!(isolation, "read committed");
        tx.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
        tx.commit().unwrap();
        assert_outside_a_transaction(&mut c);
        assert_eq!(rows(&mut c), 1);
        let mut tx = Tx::begin(&mut c, &mut statements, BEGIN_READ).unwrap();
        assert_eq!(show(&mut tx), "on");
        let read_only: String = tx
            .query_one("SELECT current_setting('transaction_read_only')", &[])
            .unwrap()
            .get(0);
        assert_eq!(read_only, "on");
    }

    #[test]
    fn a_commit_the_server_refuses_ends_the_transaction() {
        let Some(mut c) = client() else { return };
        let mut statements = Statements::default();
        let mut tx = Tx::begin(&mut c, &mut statements, BEGIN_WRITE).unwrap();
        // The unique constraint is deferred: checked by the COMMIT.
        tx.execute("INSERT INTO t VALUES (1), (1)", &[]).unwrap();
        let e = tx.commit().unwrap_err();
        assert_eq!(e.code(), Some(&SqlState::UNIQUE_VIOLATION), "{e}");
        assert_outside_a_transaction(&mut c);
        assert_eq!(rows(&mut c), 0);
    }
}
