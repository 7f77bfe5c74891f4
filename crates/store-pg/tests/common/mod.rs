//! A fresh PostgreSQL store per test: its own schema in the database named
//! by `ENTRADA_TEST_PG` (`export ENTRADA_TEST_PG=$(scripts/pg.sh start)`).
//! Without the variable the tests skip with a note, except under CI
//! (`CI=true`), where a missing database fails them: CI starts its own
//! cluster. With it, anything PostgreSQL does wrong fails them.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use entrada_store_pg::{PgOptions, PgStore};

pub const ENV: &str = "ENTRADA_TEST_PG";

pub fn url() -> Option<String> {
    match std::env::var(ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{ENV} is not set: CI runs the PostgreSQL tests (scripts/pg.sh start)")
        }
        _ => {
            eprintln!(
                "{ENV} not set: PostgreSQL test skipped (export {ENV}=$(scripts/pg.sh start))"
            );
            None
        }
    }
}

/// A schema no other test uses, created empty.
pub fn fresh_schema(url: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let schema = format!(
        "t_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        nanos
    );
    let mut admin = postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("{ENV}={url}: cannot connect: {e}"));
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .unwrap();
    schema
}

pub fn options(schema: &str) -> PgOptions {
    PgOptions {
        pool_size: 4,
        // Racers queue for 4 connections: on a loaded machine (CI, parallel
        // builds) the default 5 s wait for one can run out.
        connect_timeout: std::time::Duration::from_secs(30),
        schema: Some(schema.to_owned()),
    }
}

/// A migrated store in a schema of its own, dropped with it.
pub struct Fresh {
    store: Option<PgStore>,
    url: String,
    schema: String,
}

impl std::ops::Deref for Fresh {
    type Target = PgStore;
    fn deref(&self) -> &PgStore {
        self.store.as_ref().expect("present until dropped")
    }
}

impl Drop for Fresh {
    /// The store's connections close first, then its schema goes (a test's
    /// data does not pile up in the test cluster).
    fn drop(&mut self) {
        drop(self.store.take());
        if let Ok(mut admin) = postgres::Client::connect(&self.url, postgres::NoTls) {
            let _ = admin.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema));
        }
    }
}

/// A migrated store in a new schema, or `None` (skip) without a database.
pub fn fresh() -> Option<Fresh> {
    let url = url()?;
    let schema = fresh_schema(&url);
    let store = PgStore::connect(&url, options(&schema)).expect("connect and migrate");
    Some(Fresh {
        store: Some(store),
        url,
        schema,
    })
}

/// A plain client whose statements run in `schema` (to hold a transaction
/// open, or to check what the store wrote).
pub fn client(url: &str, schema: &str) -> postgres::Client {
    let mut config: postgres::Config = url.parse().unwrap();
    config.options(&format!("-c search_path={schema}"));
    config.connect(postgres::NoTls).unwrap()
}
