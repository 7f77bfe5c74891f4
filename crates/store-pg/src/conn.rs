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
use postgres::{Client, NoTls, Row, Statement, Transaction};
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

/// The transaction a store call runs in: `postgres::Transaction`'s query
/// methods, each statement prepared once per connection.
pub(crate) struct Tx<'a> {
    pub(crate) tx: Transaction<'a>,
    pub(crate) statements: &'a mut Statements,
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
        self.statements.get(&mut self.tx, sql)
    }

    /// Runs one statement of `q` (prepared once per connection) with `run`;
    /// an error that says the cached statement went stale empties the cache.
    fn cached<Q: Query + ?Sized, T>(
        &mut self,
        q: &Q,
        run: impl FnOnce(&mut postgres::Transaction<'_>, &Statement) -> Result<T, postgres::Error>,
    ) -> Result<T, postgres::Error> {
        let s = q.statement(&mut self.tx, self.statements)?;
        let out = run(&mut self.tx, &s);
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
        self.cached(q, |tx, s| tx.query(s, params))
    }

    pub(crate) fn query_one<Q: Query + ?Sized>(
        &mut self,
        q: &Q,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, postgres::Error> {
        self.cached(q, |tx, s| tx.query_one(s, params))
    }

    pub(crate) fn query_opt<Q: Query + ?Sized>(
        &mut self,
        q: &Q,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error> {
        self.cached(q, |tx, s| tx.query_opt(s, params))
    }

    pub(crate) fn execute<Q: Query + ?Sized>(
        &mut self,
        q: &Q,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        self.cached(q, |tx, s| tx.execute(s, params))
    }
}
