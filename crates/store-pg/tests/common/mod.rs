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
        ..PgOptions::default()
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

/// Runs `f` on another thread and waits at most 10 s for it; on a timeout,
/// `release` runs (so the thread can finish) and the test fails.
pub fn within_10s<T: Send>(f: impl FnOnce() -> T + Send, release: impl FnOnce()) -> T {
    std::thread::scope(|scope| {
        let (send, answer) = std::sync::mpsc::channel();
        scope.spawn(move || send.send(f()).unwrap());
        match answer.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok(value) => value,
            Err(_) => {
                release();
                panic!("still waiting after 10 s");
            }
        }
    })
}

/// Records, for each write of a slot's row, the statement that made it
/// (`q`, `current_query()`: `take_place`'s one statement adds `booked_count
/// + 1`, `change_booking` sets `booked_count = $1`) and its transaction
/// (`x`), in table `slot_writes`.
pub fn record_slot_writes(client: &mut postgres::Client) {
    client
        .batch_execute(
            "CREATE TABLE slot_writes (n BIGSERIAL PRIMARY KEY, q TEXT NOT NULL, x xid8 NOT NULL); \
             CREATE FUNCTION record_slot_write() RETURNS trigger LANGUAGE plpgsql AS \
             $$BEGIN INSERT INTO slot_writes (q, x) VALUES (current_query(), pg_current_xact_id()); \
             RETURN NEW; END$$; \
             CREATE TRIGGER record_slot_write BEFORE UPDATE ON reservation_slots \
             FOR EACH ROW EXECUTE FUNCTION record_slot_write();",
        )
        .unwrap();
}

/// A fresh schema with a venue, one slot of `capacity` on 1 December 2099
/// and the tickets `codes` (activated): its store, a plain client on it,
/// the slot, the URL and the schema.
pub struct OneSlot {
    pub store: PgStore,
    pub client: postgres::Client,
    pub slot: entrada_domain::Slot,
    pub url: String,
    pub schema: String,
}

/// `OneSlot`, or `None` without a PostgreSQL to test on.
pub fn one_slot(capacity: i64, codes: &[&str]) -> Option<OneSlot> {
    use entrada_domain::{ActivationMode, NewSlot, NewTicket};
    use entrada_store::conformance::{now, ORQ};
    use entrada_store::{SlotStore, TicketStore, VenueStore};
    let url = url()?;
    let schema = fresh_schema(&url);
    let store = PgStore::connect(&url, options(&schema)).unwrap();
    let venue = store.add_venue(ORQ, "Prado", "UTC", now()).unwrap();
    let new =
        NewSlot::validate(venue.id.0, "2099-12-01", "09:00", "12:00", Some(capacity)).unwrap();
    let slot = store.create_slot(ORQ, &new, now()).unwrap();
    let new: Vec<_> = codes
        .iter()
        .map(|c| NewTicket::plain(c, ActivationMode::Immediate).unwrap())
        .collect();
    store.insert_tickets(ORQ, &new, now()).unwrap();
    let client = client(&url, &schema);
    Some(OneSlot {
        store,
        client,
        slot,
        url,
        schema,
    })
}
