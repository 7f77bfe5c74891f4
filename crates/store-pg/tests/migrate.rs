//! The PostgreSQL engine's migrations: released ones never change, each runs
//! once even when several instances start together, and a database from a
//! newer program is refused.

mod common;

use std::path::Path;

use entrada_store_pg::{known_schema_version, PgStore, MIGRATIONS};

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Released migrations are never edited: databases out there ran them. A
/// change goes into a new numbered file, added to MIGRATIONS and recorded
/// (in migrations/): `sha256sum 00NN_name.sql >> SHA256SUMS`.
#[test]
fn released_migrations_are_unchanged_and_every_migration_is_listed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let listed: Vec<(String, String)> = std::fs::read_to_string(dir.join("SHA256SUMS"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (sum, file) = l.split_once("  ").expect("`<sha256>  <file>` lines");
            (file.to_owned(), sum.to_owned())
        })
        .collect();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    on_disk.sort();
    assert_eq!(
        on_disk,
        listed.iter().map(|(f, _)| f.clone()).collect::<Vec<_>>(),
        "every migration file is listed in SHA256SUMS, in order"
    );
    assert_eq!(MIGRATIONS.len(), listed.len(), "MIGRATIONS and SHA256SUMS");
    for (i, ((name, sql), (file, sum))) in MIGRATIONS.iter().zip(&listed).enumerate() {
        assert_eq!(name, file, "MIGRATIONS embeds {file} at its position");
        // The schema version a database records is the position in the
        // list, so a file's number must be its position: a gap or two
        // branches' migrations merged out of order would record one
        // migration under another's version.
        assert_eq!(
            file.get(..4).and_then(|n| n.parse::<usize>().ok()),
            Some(i + 1),
            "{file} is migration number {} in the list",
            i + 1
        );
        let bytes = std::fs::read(dir.join(file)).unwrap();
        assert_eq!(
            &sha256_hex(&bytes),
            sum,
            "released migration {file} was edited: restore it and add a new one"
        );
        assert_eq!(sql.as_bytes(), bytes, "{file} as embedded");
    }
}

#[test]
fn instances_starting_together_migrate_once() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let (url, schema) = (url.clone(), schema.clone());
            std::thread::spawn(move || PgStore::connect(&url, common::options(&schema)).map(|_| ()))
        })
        .collect();
    for s in starts {
        s.join().unwrap().expect("every instance starts");
    }
    let store = PgStore::connect(&url, common::options(&schema)).unwrap();
    assert_eq!(store.schema_version().unwrap(), known_schema_version());
    let mut client = common::client(&url, &schema);
    let runs: i64 = client
        .query_one("SELECT count(*) FROM entrada_migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(runs, known_schema_version(), "each migration ran once");
}

#[test]
fn a_database_from_a_newer_program_is_refused() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    drop(PgStore::connect(&url, common::options(&schema)).unwrap());
    common::client(&url, &schema)
        .execute(
            "INSERT INTO entrada_migrations (version, name, sha256) VALUES (99, 'future', '')",
            &[],
        )
        .unwrap();
    let err = PgStore::connect(&url, common::options(&schema)).unwrap_err();
    assert_eq!(err.code(), "SCHEMA_TOO_NEW");
    assert!(err.to_string().contains("version 99"), "{err}");
}

#[test]
fn a_migration_edited_after_it_ran_is_refused() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    drop(PgStore::connect(&url, common::options(&schema)).unwrap());
    common::client(&url, &schema)
        .execute(
            "UPDATE entrada_migrations SET sha256 = 'x' WHERE version = 1",
            &[],
        )
        .unwrap();
    let err = PgStore::connect(&url, common::options(&schema)).unwrap_err();
    assert_eq!(err.code(), "DATABASE_ERROR");
    assert!(err.to_string().contains("0001_schema.sql"), "{err}");
}

#[test]
fn an_unreachable_database_is_unavailable_not_a_hang() {
    // Nothing listens on port 1; the pool gives up after its timeout.
    let options = entrada_store_pg::PgOptions {
        connect_timeout: std::time::Duration::from_millis(500),
        ..Default::default()
    };
    let err = PgStore::connect("postgres://postgres@127.0.0.1:1/entrada", options).unwrap_err();
    assert_eq!(err.code(), "DATABASE_UNAVAILABLE", "{err}");
}

/// The server calls the store from tokio's blocking pool: the synchronous
/// client (which drives its own runtime per connection) must work there.
#[test]
fn calls_work_from_the_servers_blocking_pool() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let venues = rt.block_on(async move {
        let store = std::sync::Arc::new(
            tokio::task::spawn_blocking(move || PgStore::connect(&url, common::options(&schema)))
                .await
                .unwrap()
                .unwrap(),
        );
        let calls: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                tokio::task::spawn_blocking(move || {
                    use entrada_store::VenueStore;
                    store.add_venue(
                        entrada_store::conformance::ORQ,
                        &format!("V{i}"),
                        "UTC",
                        entrada_store::conformance::now(),
                    )
                })
            })
            .collect();
        for c in calls {
            c.await.unwrap().unwrap();
        }
        tokio::task::spawn_blocking(move || {
            use entrada_store::VenueStore;
            store.list_venues(entrada_store::conformance::ORQ)
        })
        .await
        .unwrap()
        .unwrap()
    });
    assert_eq!(venues.len(), 8);
}

/// Migration 0015 names the gate of the admissions uploaded before it (the
/// device of the verification at the ticket's time, as its token named it),
/// and none for an admission made at the server's desk (SQLite's
/// `migration_0024_names_the_gate_of_admissions_uploaded_before_it`). The
/// rows are made by this program, then the schema is put back as 0014 left
/// it (the column goes, with its CHECK, and 0015 is no longer recorded), so
/// the next start runs 0015 on them.
#[test]
fn migration_0015_names_the_gate_of_admissions_uploaded_before_it() {
    use entrada_domain::sync::protocol::Event;
    use entrada_domain::{
        ActivationMode, Contact, Gate, NewSlot, NewTicket, OperatorId, Orq, Role, TicketCode,
    };
    use entrada_store::{
        GateStore, OperatorStore, ReservationStore, ReserveRequest, SlotStore, SyncStore,
        TicketStore, VenueStore,
    };
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let at: chrono::DateTime<chrono::Utc> = "2025-12-01T10:00:00Z".parse().unwrap();
    let orq = Orq(1);
    {
        let s = PgStore::connect(&url, common::options(&schema)).unwrap();
        let venue = s.add_venue(orq, "Prado", "UTC", at).unwrap();
        let op = s
            .add_operator(orq, Role::Operator, "Ana", None, at)
            .unwrap();
        let new = NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(10)).unwrap();
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
    // The schema as 0014 left it: no column (its CHECK goes with it), 0015
    // not run. 0016 (the deferred slot key), 0017 (the feed's numbering
    // functions, CREATE OR REPLACE), 0018 (the trigger functions' plan
    // mode), 0019 (the slot's trigger function, CREATE OR REPLACE, its
    // trigger dropped and made again) and 0020 (the ticket and reservation
    // trigger functions, CREATE OR REPLACE) run again after it, which they
    // may: setting a constraint DEFERRABLE or a function's setting twice
    // changes nothing, and 0017's, 0019's and 0020's functions are the same
    // after it as before. 0021 (indexes dropped and made, fillfactors) is
    // undone here, so that it runs again on the indexes it found.
    let mut client = common::client(&url, &schema);
    client
        .batch_execute(
            "ALTER TABLE tickets DROP COLUMN verified_gate; \
             ALTER TABLE ticket_reservations ALTER CONSTRAINT ticket_reservations_slot_id_fkey NOT DEFERRABLE; \
             CREATE INDEX idx_tickets_status ON tickets (status); \
             CREATE INDEX idx_ticket_reservations_slot_status ON ticket_reservations (slot_id, status); \
             DROP INDEX idx_ticket_reservations_slot; \
             ALTER TABLE tickets RESET (fillfactor); \
             ALTER TABLE ticket_reservations RESET (fillfactor); \
             DELETE FROM entrada_migrations WHERE version >= 15;",
        )
        .unwrap();
    assert_eq!(
        MIGRATIONS.last().map(|(name, _)| *name),
        Some("0021_hot_verify_updates.sql"),
        "a migration after 0021: undo it above too, or start this test from the schema before 0015"
    );
    let store = PgStore::connect(&url, common::options(&schema)).expect("0015 runs");
    assert_eq!(store.schema_version().unwrap(), known_schema_version());
    let mut gate_of = |code: &str| -> Option<String> {
        client
            .query_one(
                "SELECT verified_gate FROM tickets WHERE ticket_code = $1",
                &[&code],
            )
            .unwrap()
            .get(0)
    };
    assert_eq!(
        gate_of("T-1").as_deref(),
        Some("Gate 1"),
        "uploaded by Gate 1"
    );
    assert_eq!(gate_of("T-2"), None, "admitted at the server's desk");
}

/// 0018: the feed's trigger functions plan with plan_cache_mode = auto,
/// whatever the connections' force_custom_plan (a later CREATE OR REPLACE of
/// one of them must repeat the SET: this fails if one forgets).
#[test]
fn the_feed_trigger_functions_keep_plan_cache_mode_auto() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    drop(PgStore::connect(&url, common::options(&schema)).unwrap());
    let mut client = common::client(&url, &schema);
    let rows = client
        .query(
            "SELECT proname::text, proconfig FROM pg_proc \
             WHERE proname IN ('log_ticket', 'log_ticket_reservation', 'log_scoped_row', \
             'log_reservation_slot') \
             AND pronamespace = current_schema()::regnamespace ORDER BY proname",
            &[],
        )
        .unwrap();
    let got: Vec<(String, Option<Vec<String>>)> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let auto = Some(vec!["plan_cache_mode=auto".to_owned()]);
    assert_eq!(
        got,
        vec![
            ("log_reservation_slot".to_owned(), auto.clone()),
            ("log_scoped_row".to_owned(), auto.clone()),
            ("log_ticket".to_owned(), auto.clone()),
            ("log_ticket_reservation".to_owned(), auto),
        ]
    );
}
