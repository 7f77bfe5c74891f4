//! Migration 0021: a verification's UPDATEs of its ticket and of its
//! reservation are HOT (heap-only: the new row version on the old one's
//! page, no new index entries), which PostgreSQL does only when no index
//! covers a column the UPDATE changes and the page has room.

mod common;

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use entrada_domain::{ActivationMode, Contact, Gate, NewSlot, NewTicket, OperatorId, TicketCode};
use entrada_store::conformance::{now, ORQ};
use entrada_store::{
    GateStore, ReservationStore, ReserveRequest, SlotStore, TicketStore, VenueStore,
};
use entrada_store_pg::PgStore;

/// What verify-ticket's write (gate.rs `WRITE_ENTRIES`) sets, per table.
const WRITTEN: &[(&str, &[&str])] = &[
    (
        "tickets",
        &[
            "verified_at",
            "verified_by",
            "status",
            "activation_status",
            "activated_at",
            "updated_at",
            "verified_gate",
        ],
    ),
    ("ticket_reservations", &["status", "updated_at"]),
];

/// A store whose connections carry `name` as their application_name, so
/// that the test can tell when they have all closed.
fn named_store(url: &str, schema: &str, name: &str) -> PgStore {
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}application_name={name}");
    PgStore::connect(&url, common::options(schema)).unwrap()
}

/// Drops `store` and waits until its connections have ended. A backend
/// sends its table counters to the statistics before it leaves
/// pg_stat_activity (PostgreSQL 15 and later, what `.ci/run` installs;
/// before 15 a statistics collector process got them a little later), so
/// the counters read afterwards hold all its work.
fn close(store: PgStore, client: &mut postgres::Client, name: &str) {
    drop(store);
    let since = Instant::now();
    loop {
        let left: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&name],
            )
            .unwrap()
            .get(0);
        if left == 0 {
            return;
        }
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "the store's connections did not close"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// (updates, HOT updates) of `table` in `schema`, from the statistics.
fn updates(client: &mut postgres::Client, schema: &str, table: &str) -> (i64, i64) {
    let row = client
        .query_one(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables \
             WHERE schemaname = $1 AND relname = $2",
            &[&schema, &table],
        )
        .unwrap();
    (row.get(0), row.get(1))
}

#[test]
fn a_verification_s_ticket_and_reservation_updates_are_hot() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let mut client = common::client(&url, &schema);
    // More tickets than fit on one page (a few dozen), so
    // that pages the reservations filled are verified too.
    let n = 150;
    let codes: Vec<TicketCode> = (0..n)
        .map(|i| TicketCode::parse(&format!("T-{i:03}")).unwrap())
        .collect();
    let setup = format!("{schema}_setup");
    let store = named_store(&url, &schema, &setup);
    let venue = store.add_venue(ORQ, "Prado", "UTC", now()).unwrap();
    let new = NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(200)).unwrap();
    let slot = store.create_slot(ORQ, &new, now()).unwrap();
    let tickets: Vec<NewTicket> = codes
        .iter()
        .map(|c| NewTicket::plain(c.as_str(), ActivationMode::Immediate).unwrap())
        .collect();
    store.insert_tickets(ORQ, &tickets, now()).unwrap();
    for code in &codes {
        let req = ReserveRequest {
            ticket: code.clone(),
            slot_id: slot.id,
            contact: Contact::validate("john@example.com", "+12025551234").unwrap(),
        };
        store.reserve_slot(ORQ, &req, now()).unwrap();
    }
    close(store, &mut client, &setup);
    let before: Vec<(i64, i64)> = WRITTEN
        .iter()
        .map(|(table, _)| updates(&mut client, &schema, table))
        .collect();

    let gate_name = format!("{schema}_gate");
    let store = named_store(&url, &schema, &gate_name);
    let at_gate = Utc.with_ymd_and_hms(2025, 12, 1, 10, 0, 0).unwrap();
    let gate = Gate {
        venue_id: Some(venue.id),
        ..Gate::default()
    };
    for code in &codes {
        let verdict = store
            .verify_ticket(ORQ, code, OperatorId(5), &gate, at_gate)
            .unwrap();
        assert!(verdict.admit, "{code:?} admitted: {verdict:?}");
    }
    close(store, &mut client, &gate_name);

    for ((table, _), (upd0, hot0)) in WRITTEN.iter().zip(before) {
        let (upd, hot) = updates(&mut client, &schema, table);
        assert_eq!(upd - upd0, n, "{table}: one UPDATE a verification");
        // Alone on the database all 150 are HOT. A new version fits on
        // its page once the page's older versions are pruned, which needs
        // no older snapshot open in the database: tests running beside
        // this one (or autovacuum) may hold one, so not every update can
        // be required HOT. Most must be: an index covering a written
        // column makes none of them HOT, whatever the room.
        assert!(
            (hot - hot0) * 5 >= n * 4,
            "{table}: {} of {n} verification UPDATEs HOT, want at least 4/5; \
             sessions holding a snapshot now: {:?}",
            hot - hot0,
            old_snapshots(&mut client)
        );
    }
}

/// Other sessions' oldest snapshots (what keeps old row versions from
/// being pruned), for the failure message.
fn old_snapshots(client: &mut postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT coalesce(application_name, '') || ' ' || coalesce(state, '') || ' ' || \
               coalesce(left(query, 60), '') FROM pg_stat_activity \
             WHERE backend_xmin IS NOT NULL AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Why the updates above can be HOT: no index of the two tables has a
/// column the verification writes among its keys, expressions or
/// predicate (PostgreSQL's condition), and both tables leave room on
/// their pages.
#[test]
fn no_index_covers_a_column_a_verification_writes() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    drop(PgStore::connect(&url, common::options(&schema)).unwrap());
    let mut client = common::client(&url, &schema);
    for (table, written) in WRITTEN {
        let rows = client
            .query(
                "SELECT c.relname::text, \
                   (SELECT array_agg(a.attname::text) FROM pg_attribute a \
                     WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)), \
                   coalesce(pg_get_expr(i.indexprs, i.indrelid), ''), \
                   coalesce(pg_get_expr(i.indpred, i.indrelid), '') \
                 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                 WHERE i.indrelid = $1::text::regclass",
                &[&table],
            )
            .unwrap();
        assert!(!rows.is_empty());
        for row in rows {
            let (index, columns, exprs, pred): (String, Option<Vec<String>>, String, String) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let words: Vec<String> = format!("{exprs} {pred}")
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map(str::to_owned)
                .collect();
            for column in *written {
                assert!(
                    !columns.iter().flatten().any(|c| c == column)
                        && !words.iter().any(|w| w == column),
                    "{table}: {index} covers {column}, which a verification writes: \
                     its UPDATE cannot be HOT"
                );
            }
        }
        let options: Option<Vec<String>> = client
            .query_one(
                "SELECT reloptions FROM pg_class WHERE oid = $1::text::regclass",
                &[&table],
            )
            .unwrap()
            .get(0);
        assert_eq!(
            options,
            Some(vec![format!(
                "fillfactor={}",
                if *table == "tickets" { 60 } else { 70 }
            )]),
            "{table}: pages keep room for the rows' new versions"
        );
    }
}
