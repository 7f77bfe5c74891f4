//! Group commit of verify-ticket (`src/verify_batch.rs`): verifications
//! asked at once share one transaction, and still admit each ticket once,
//! answer each on its own, and keep one ticket's failure from the others.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Barrier};

use chrono::{DateTime, TimeZone, Utc};
use entrada_domain::{
    ActivationMode, Contact, Gate, NewSlot, NewTicket, OperatorId, Orq, TicketCode, VerdictCode,
};
use entrada_store::conformance::{now, ORQ};
use entrada_store::{
    GateStore, HandOff, ReservationStore, ReserveRequest, SlotStore, StoreError, TicketStore,
    VenueStore,
};
use entrada_store_pg::{PgStore, TestItem};

/// `n` tickets `T-0` … reserved in one slot of a new venue; the gate of
/// that venue and a time inside the slot.
fn tickets(store: &PgStore, n: usize) -> (Vec<TicketCode>, Gate, DateTime<Utc>) {
    let venue = store.add_venue(ORQ, "Prado", "UTC", now()).unwrap();
    let new = NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(1_000)).unwrap();
    let slot = store.create_slot(ORQ, &new, now()).unwrap();
    let codes: Vec<TicketCode> = (0..n)
        .map(|i| TicketCode::parse(&format!("T-{i}")).unwrap())
        .collect();
    let new: Vec<NewTicket> = codes
        .iter()
        .map(|c| NewTicket::plain(c.as_str(), ActivationMode::Immediate).unwrap())
        .collect();
    store.insert_tickets(ORQ, &new, now()).unwrap();
    for code in &codes {
        let req = ReserveRequest {
            ticket: code.clone(),
            slot_id: slot.id,
            contact: Contact::validate("john@example.com", "+12025551234").unwrap(),
        };
        store.reserve_slot(ORQ, &req, now()).unwrap();
    }
    let gate = Gate {
        venue_id: Some(venue.id),
        ..Gate::default()
    };
    (
        codes,
        gate,
        Utc.with_ymd_and_hms(2025, 12, 1, 10, 0, 0).unwrap(),
    )
}

/// A fresh schema with `n` tickets reserved (`tickets`): its store, a
/// plain client on the same schema, the codes, the gate and the time.
struct Reserved {
    store: PgStore,
    client: postgres::Client,
    codes: Vec<TicketCode>,
    gate: Gate,
    at: DateTime<Utc>,
}

/// `Reserved` with `n` tickets, or `None` without a PostgreSQL to test on.
fn reserved(n: usize) -> Option<Reserved> {
    let url = common::url()?;
    let schema = common::fresh_schema(&url);
    let store = PgStore::connect(&url, common::options(&schema)).unwrap();
    let (codes, gate, at) = tickets(&store, n);
    let client = common::client(&url, &schema);
    Some(Reserved {
        store,
        client,
        codes,
        gate,
        at,
    })
}

impl Reserved {
    /// Every ticket, in order, verified by `op` at the gate.
    fn items(&self, op: OperatorId) -> Vec<TestItem> {
        self.codes
            .iter()
            .map(|c| (ORQ, c.clone(), op, self.gate, self.at))
            .collect()
    }
}

/// T-1's reservation cannot be written: the UPDATE fails in the database,
/// which aborts the transaction it runs in.
const RAISE_ON_T1_RESERVATION: &str =
    "CREATE FUNCTION refuse_row() RETURNS trigger LANGUAGE plpgsql AS \
     'BEGIN RAISE EXCEPTION ''refused by the test''; END'; \
     CREATE TRIGGER refuse_t1 BEFORE UPDATE ON ticket_reservations \
     FOR EACH ROW WHEN (OLD.ticket_id = 'T-1') EXECUTE FUNCTION refuse_row();";

/// Passages written per ticket code.
fn passages(client: &mut postgres::Client) -> HashMap<String, i64> {
    client
        .query(
            "SELECT ticket_code, count(*) FROM passages GROUP BY ticket_code",
            &[],
        )
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn admitted(answer: &Result<entrada_domain::Verdict, StoreError>) -> bool {
    matches!(answer, Ok(v) if v.admit && v.verdict == VerdictCode::Admit)
}

#[test]
fn many_threads_on_two_instances_admit_each_ticket_once() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let a = PgStore::connect(&url, common::options(&schema)).unwrap();
    let b = PgStore::connect(&url, common::options(&schema)).unwrap();
    let (codes, gate, at) = tickets(&a, 24);
    const THREADS: usize = 16;
    let start = Barrier::new(THREADS);
    // Each thread asks every ticket, from a different place in the list, so
    // batches on both instances overlap and the same ticket is asked at once.
    let answers: Vec<Vec<(String, bool, String)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (store, codes, start) = (if t % 2 == 0 { &a } else { &b }, &codes, &start);
                scope.spawn(move || {
                    start.wait();
                    (0..codes.len())
                        .map(|i| {
                            let code = &codes[(i + t * 5) % codes.len()];
                            let answer = store.verify_ticket(ORQ, code, OperatorId(5), &gate, at);
                            let why = match &answer {
                                Ok(v) => v.verdict.code().to_owned(),
                                Err(e) => e.code().to_owned(),
                            };
                            (code.to_string(), admitted(&answer), why)
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut admits: HashMap<String, usize> = HashMap::new();
    for (code, admit, why) in answers.iter().flatten() {
        if *admit {
            *admits.entry(code.clone()).or_default() += 1;
        } else {
            assert_eq!(why, "ALREADY_VERIFIED", "{code}");
        }
    }
    for code in &codes {
        assert_eq!(admits.get(code.as_str()), Some(&1), "one ADMIT for {code}");
    }
    let mut client = common::client(&url, &schema);
    let written = passages(&mut client);
    for code in &codes {
        assert_eq!(written.get(code.as_str()), Some(&1), "one entry for {code}");
        assert!(a.get_ticket(ORQ, code).unwrap().verified_at.is_some());
    }
}

#[test]
fn the_same_ticket_twice_in_one_go_is_admitted_then_already_verified() {
    let Some(store) = common::fresh() else { return };
    let (codes, gate, at) = tickets(&store, 2);
    let op = OperatorId(5);
    let answers = store.verify_tickets_together(&[
        (ORQ, codes[0].clone(), op, gate, at),
        (ORQ, codes[1].clone(), op, gate, at),
        (ORQ, codes[0].clone(), op, gate, at),
    ]);
    assert!(admitted(&answers[0]), "{:?}", answers[0]);
    assert!(admitted(&answers[1]), "{:?}", answers[1]);
    let again = answers[2].as_ref().expect_err("never two ADMITs");
    assert_eq!(again.code(), "ALREADY_VERIFIED");
}

#[test]
fn a_refusal_in_a_batch_writes_nothing_and_leaves_the_others() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let store = PgStore::connect(&url, common::options(&schema)).unwrap();
    let (codes, gate, at) = tickets(&store, 2);
    let other_org = Orq(2);
    let unknown = TicketCode::parse("NO-SUCH").unwrap();
    let op = OperatorId(5);
    let answers = store.verify_tickets_together(&[
        (ORQ, codes[0].clone(), op, gate, at),
        (ORQ, unknown.clone(), op, gate, at),
        // Another org's batch: its own transaction, its own refusal.
        (other_org, codes[1].clone(), op, gate, at),
        (ORQ, codes[1].clone(), op, gate, at),
    ]);
    assert!(admitted(&answers[0]), "{:?}", answers[0]);
    assert_eq!(answers[1].as_ref().unwrap_err().code(), "UNKNOWN_TICKET");
    assert_eq!(answers[2].as_ref().unwrap_err().code(), "UNKNOWN_TICKET");
    assert!(admitted(&answers[3]), "{:?}", answers[3]);
    let written = passages(&mut common::client(&url, &schema));
    assert_eq!(written.len(), 2, "{written:?}");
}

#[test]
fn a_database_error_of_one_verification_leaves_the_others_answered() {
    let Some(t) = reserved(3) else { return };
    let items = t.items(OperatorId(5));
    let Reserved {
        store,
        mut client,
        codes,
        ..
    } = t;
    client.batch_execute(RAISE_ON_T1_RESERVATION).unwrap();
    let answers = store.verify_tickets_together(&items);
    assert!(admitted(&answers[0]), "{:?}", answers[0]);
    assert!(
        matches!(answers[1], Err(StoreError::Engine(_))),
        "{:?}",
        answers[1]
    );
    assert!(admitted(&answers[2]), "{:?}", answers[2]);
    let written = passages(&mut client);
    assert_eq!(written.get("T-0"), Some(&1));
    assert_eq!(written.get("T-1"), None);
    assert_eq!(written.get("T-2"), Some(&1));
    assert_eq!(store.get_ticket(ORQ, &codes[1]).unwrap().verified_at, None);
    assert!(store
        .get_ticket(ORQ, &codes[0])
        .unwrap()
        .verified_at
        .is_some());
}

#[test]
fn a_batch_write_that_misses_a_row_is_rolled_back_and_each_runs_alone() {
    let Some(t) = reserved(3) else { return };
    let items = t.items(OperatorId(5));
    let Reserved {
        store,
        mut client,
        codes,
        ..
    } = t;
    // T-1's reservation UPDATE writes no row (the statement succeeds): the
    // batch's one write sees 2 of 3 reservations written.
    client
        .batch_execute(
            "CREATE FUNCTION skip_row() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'; \
             CREATE TRIGGER skip_t1 BEFORE UPDATE ON ticket_reservations \
             FOR EACH ROW WHEN (OLD.ticket_id = 'T-1') EXECUTE FUNCTION skip_row();",
        )
        .unwrap();
    let answers = store.verify_tickets_together(&items);
    assert!(admitted(&answers[0]), "{:?}", answers[0]);
    assert!(
        matches!(answers[1], Err(StoreError::Engine(_))),
        "{:?}",
        answers[1]
    );
    assert!(admitted(&answers[2]), "{:?}", answers[2]);
    let written = passages(&mut client);
    assert_eq!(written.get("T-1"), None, "{written:?}");
    assert_eq!(written.len(), 2, "{written:?}");
    assert_eq!(store.get_ticket(ORQ, &codes[1]).unwrap().verified_at, None);
}

/// A transaction of another connection holding these tickets' locks.
fn hold<'c>(client: &'c mut postgres::Client, codes: &[&str]) -> postgres::Transaction<'c> {
    let mut tx = client.transaction().unwrap();
    tx.execute(
        "SELECT 1 FROM tickets WHERE ticket_code = ANY($1) FOR UPDATE",
        &[&codes],
    )
    .unwrap();
    tx
}

#[test]
fn a_ticket_locked_elsewhere_does_not_hold_the_rest_of_its_batch() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let store = PgStore::connect(&url, common::options(&schema)).unwrap();
    let (codes, gate, at) = tickets(&store, 3);
    let op = OperatorId(5);
    let mut locker = common::client(&url, &schema);
    let held = std::sync::Mutex::new(Some(hold(&mut locker, &["T-1"])));
    let items: Vec<_> = codes
        .iter()
        .map(|c| (ORQ, c.clone(), op, gate, at))
        .collect();
    let answers = common::within_10s(
        || store.verify_one_batch(&items),
        || drop(held.lock().unwrap().take()),
    );
    assert!(
        matches!(&answers[0], Some(a) if admitted(a)),
        "{:?}",
        answers[0]
    );
    assert!(answers[1].is_none(), "handed back: {:?}", answers[1]);
    assert!(
        matches!(&answers[2], Some(a) if admitted(a)),
        "{:?}",
        answers[2]
    );
    // Committed while T-1 is still held.
    assert!(store
        .get_ticket(ORQ, &codes[2])
        .unwrap()
        .verified_at
        .is_some());
    drop(held.lock().unwrap().take());
    assert!(admitted(
        &store.verify_ticket(ORQ, &codes[1], op, &gate, at)
    ));
}

#[test]
fn verifications_waiting_for_locked_tickets_hold_no_batch_slot() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let store = PgStore::connect(&url, common::options(&schema)).unwrap();
    let (codes, gate, at) = tickets(&store, 4);
    let op = OperatorId(5);
    let mut locker = common::client(&url, &schema);
    // As many held tickets as batches may be in flight (two).
    let held = std::sync::Mutex::new(Some(hold(&mut locker, &["T-1", "T-3"])));
    let release = || drop(held.lock().unwrap().take());
    std::thread::scope(|scope| {
        let waiting: Vec<_> = [1, 3]
            .map(|i| {
                let (store, code) = (&store, &codes[i]);
                scope.spawn(move || store.verify_ticket(ORQ, code, op, &gate, at))
            })
            .into_iter()
            .collect();
        // Both are waiting for their tickets' locks by now.
        std::thread::sleep(std::time::Duration::from_millis(500));
        let free = common::within_10s(
            || [0, 2].map(|i| store.verify_ticket(ORQ, &codes[i], op, &gate, at)),
            release,
        );
        assert!(free.iter().all(admitted), "{free:?}");
        release();
        for handle in waiting {
            let answer = handle.join().unwrap();
            assert!(admitted(&answer), "{answer:?}");
        }
    });
}

#[test]
fn a_failed_batch_hands_each_verification_back_without_running_it() {
    let Some(t) = reserved(3) else { return };
    let items = t.items(OperatorId(5));
    let Reserved {
        store,
        mut client,
        codes,
        ..
    } = t;
    client.batch_execute(RAISE_ON_T1_RESERVATION).unwrap();
    let answers = store.verify_one_batch(&items);
    // Each goes back to its own caller (who runs it alone, concurrently);
    // the leader ran none of them.
    assert!(answers.iter().all(Option::is_none), "{answers:?}");
    assert!(passages(&mut client).is_empty());
    for code in &codes {
        assert_eq!(store.get_ticket(ORQ, code).unwrap().verified_at, None);
    }
}

/// The transactions that last wrote these tickets.
fn writers(client: &mut postgres::Client, codes: &[&str]) -> i64 {
    client
        .query_one(
            "SELECT count(DISTINCT xmin::text) FROM tickets WHERE ticket_code = ANY($1)",
            &[&codes],
        )
        .unwrap()
        .get(0)
}

#[test]
fn a_batch_admits_its_tickets_in_one_transaction() {
    let Some(mut t) = reserved(4) else { return };
    let answers = t.store.verify_tickets_together(&t.items(OperatorId(5)));
    assert!(answers.iter().all(admitted), "{answers:?}");
    assert_eq!(writers(&mut t.client, &["T-0", "T-1", "T-2", "T-3"]), 1);
}

/// What a verification answered, without what differs between schemas.
fn said(answer: &Result<entrada_domain::Verdict, StoreError>) -> String {
    match answer {
        Ok(v) => format!(
            "{} {} {:?} {:?} {:?} {:?}",
            v.verdict.code(),
            v.admit,
            v.verified_at,
            v.verified_by,
            v.venue_id,
            v.verified_gate
        ),
        Err(StoreError::Domain(entrada_domain::DomainError::Refused(v))) => format!(
            "refused {} {} {:?} {:?} {:?}",
            v.verdict.code(),
            v.admit,
            v.verified_at,
            v.venue_id,
            v.verified_gate
        ),
        Err(e) => format!("error {}", e.code()),
    }
}

/// The rows a verification writes, without ids.
fn rows(client: &mut postgres::Client) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT ticket_code || ' ' || status || ' ' || activation_status || ' ' || \
         coalesce(verified_at::text, '-') || ' ' || coalesce(verified_by::text, '-') || ' ' || \
         coalesce(verified_gate, '-') || ' ' || coalesce(activated_at::text, '-') \
         FROM tickets ORDER BY ticket_code",
        "SELECT ticket_id || ' ' || status FROM ticket_reservations ORDER BY ticket_id",
        "SELECT ticket_code || ' ' || venue_id || ' ' || direction || ' ' || at || ' ' || \
         operator_id FROM passages ORDER BY ticket_code",
    ] {
        out.extend(
            client
                .query(sql, &[])
                .unwrap()
                .into_iter()
                .map(|r| r.get::<_, String>(0)),
        );
    }
    out
}

#[test]
fn a_batch_answers_and_writes_as_verifications_one_at_a_time() {
    let Some(url) = common::url() else { return };
    let op = OperatorId(5);
    let run = |together: bool| {
        let schema = common::fresh_schema(&url);
        let store = PgStore::connect(&url, common::options(&schema)).unwrap();
        let (codes, gate, at) = tickets(&store, 5);
        let elsewhere = store.add_venue(ORQ, "Louvre", "UTC", now()).unwrap();
        let wrong_venue = Gate {
            venue_id: Some(elsewhere.id),
            ..Gate::default()
        };
        // T-4 verified before: ALREADY_VERIFIED.
        assert!(admitted(
            &store.verify_ticket(ORQ, &codes[4], op, &gate, at)
        ));
        let items = vec![
            (ORQ, codes[0].clone(), op, gate, at),
            (ORQ, codes[1].clone(), op, wrong_venue, at),
            (
                ORQ,
                codes[2].clone(),
                op,
                gate,
                at + chrono::Duration::days(1),
            ),
            (ORQ, codes[3].clone(), op, Gate::default(), at),
            (ORQ, codes[4].clone(), op, gate, at),
            (ORQ, TicketCode::parse("NO-SUCH").unwrap(), op, gate, at),
        ];
        let answers: Vec<String> = if together {
            store
                .verify_tickets_together(&items)
                .iter()
                .map(said)
                .collect()
        } else {
            items
                .iter()
                .map(|(orq, code, op, gate, at)| {
                    said(&store.verify_ticket(*orq, code, *op, gate, *at))
                })
                .collect()
        };
        let mut client = common::client(&url, &schema);
        if together {
            // The admissions (T-0, T-3) were one batch's.
            assert_eq!(writers(&mut client, &["T-0", "T-3"]), 1);
        }
        (answers, rows(&mut client))
    };
    let (alone, alone_rows) = run(false);
    let (together, together_rows) = run(true);
    assert_eq!(alone, together);
    assert_eq!(alone_rows, together_rows);
    // The refusals are the existing tickets' own.
    assert!(
        together[1].starts_with("refused WRONG_VENUE"),
        "{together:?}"
    );
    assert!(
        together[4].starts_with("refused ALREADY_VERIFIED"),
        "{together:?}"
    );
    assert!(
        together[5].starts_with("refused UNKNOWN_TICKET"),
        "{together:?}"
    );
}

#[test]
fn a_commit_the_server_refuses_hands_each_back_and_each_runs_alone() {
    let Some(t) = reserved(3) else { return };
    let items = t.items(OperatorId(5));
    let Reserved {
        store, mut client, ..
    } = t;
    // T-1's passage is refused only at COMMIT (a deferred constraint
    // trigger): the server answers the COMMIT with an ERROR.
    client
        .batch_execute(
            "CREATE FUNCTION refuse_row() RETURNS trigger LANGUAGE plpgsql AS \
             'BEGIN RAISE EXCEPTION ''refused at commit''; END'; \
             CREATE CONSTRAINT TRIGGER refuse_t1 AFTER INSERT ON passages \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW \
             WHEN (NEW.ticket_code = 'T-1') EXECUTE FUNCTION refuse_row();",
        )
        .unwrap();
    let answers = store.verify_one_batch(&items);
    assert!(answers.iter().all(Option::is_none), "{answers:?}");
    assert!(passages(&mut client).is_empty());
    let answers = store.verify_tickets_together(&items);
    assert!(admitted(&answers[0]), "{:?}", answers[0]);
    assert_eq!(answers[1].as_ref().unwrap_err().code(), "DATABASE_ERROR");
    assert!(admitted(&answers[2]), "{:?}", answers[2]);
    let written = passages(&mut client);
    assert_eq!(
        (written.get("T-1"), written.len()),
        (None, 2),
        "{written:?}"
    );
}

/// Right after a bulk import, before autovacuum's ANALYZE, a batch's door
/// rows and its admissions' write still look each ticket and reservation up
/// by its key: without
/// statistics the planner guesses an org's share of a table at 0.5 %, and
/// with the org as a constant in the write's conditions it started from the
/// org-only index and read every ticket of the org for each batch (session
/// 35: the 32-client verify phase at ~200/s, each write ~0.5 s at 5,000
/// tickets). Fails when `WRITE_ENTRIES` compares `orq` to `$1` again (the
/// door rows' `r.orq + 0` is not guarded: with 3 reservations the planner
/// takes their unique index either way).
#[test]
fn the_write_finds_its_rows_by_their_keys_without_statistics() {
    let Some(url) = common::url() else {
        return;
    };
    let schema = common::fresh_schema(&url);
    let store = PgStore::connect(&url, common::options(&schema)).unwrap();
    let mut client = common::client(&url, &schema);
    // No ANALYZE behind the test's back: the statistics stay absent.
    client
        .batch_execute(
            "ALTER TABLE tickets SET (autovacuum_enabled = off); \
             ALTER TABLE ticket_reservations SET (autovacuum_enabled = off)",
        )
        .unwrap();
    let (_, _, _) = tickets(&store, 3);
    let new: Vec<NewTicket> = (0..20_000)
        .map(|i| NewTicket::plain(&format!("B-{i}"), ActivationMode::Immediate).unwrap())
        .collect();
    for chunk in new.chunks(5_000) {
        store.insert_tickets(ORQ, chunk, now()).unwrap();
    }
    let analyzed: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'tickets' \
             AND schemaname = current_schema() AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(analyzed, 0, "the test needs a table never analyzed");
    let reservations: Vec<uuid::Uuid> = client
        .query(
            "SELECT id FROM ticket_reservations WHERE ticket_id IN ('T-0', 'T-1', 'T-2') ORDER BY ticket_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = store
        .verify_write_plan(ORQ, &["T-0", "T-1", "T-2"], &reservations)
        .unwrap();
    for line in plan.lines().filter(|l| l.contains("Index Cond")) {
        assert!(
            line.contains("ticket_code") || line.contains("id = "),
            "an index used without the row's key:\n{plan}"
        );
    }
    assert!(
        !plan.contains("Seq Scan on tickets"),
        "the org's tickets read whole:\n{plan}"
    );
}

/// A verify batch runs its three statements with the generic plan its
/// connection made once (`gate::GENERIC_PLANS`), not planned again with
/// each batch's values (the connections' `force_custom_plan`): ~1 ms of the
/// database's CPU per batch (session 36's profile). On one connection
/// (a pool of one), three batches: each statement's runs are all generic.
/// Fails with the batch's statements planned per run (the code before).
#[test]
fn a_batch_runs_its_statements_with_generic_plans() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let store = PgStore::connect(
        &url,
        entrada_store_pg::PgOptions {
            pool_size: 1,
            ..common::options(&schema)
        },
    )
    .unwrap();
    let (codes, gate, at) = tickets(&store, 6);
    for pair in codes.chunks(2) {
        let items: Vec<TestItem> = pair
            .iter()
            .map(|c| (ORQ, c.clone(), OperatorId(5), gate, at))
            .collect();
        let answers = store.verify_one_batch(&items);
        assert!(
            answers.iter().all(|a| a.as_ref().is_some_and(admitted)),
            "{answers:?}"
        );
    }
    let plans = store.prepared_plan_counts().unwrap();
    for sql in PgStore::verify_batch_sql().1 {
        let counts: Vec<(i64, i64)> = plans
            .iter()
            .filter(|(s, _, _)| s == sql)
            .map(|(_, generic, custom)| (*generic, *custom))
            .collect();
        assert_eq!(
            counts,
            vec![(3, 0)],
            "three runs with the generic plan, none custom: {sql}"
        );
    }
}

/// The tables a verify batch's statements read, and the index condition a
/// scan of each must have: the row's key (the ticket's code; the
/// reservation's ticket or id; the slot's and venue's id; the org's settings' org), exactly, so
/// that `slot_id = …` or `venue_id = …` do not pass for `id = …`.
const KEYS: [(&str, &[&str]); 5] = [
    ("tickets", &["(ticket_code = "]),
    ("org_settings", &["(orq = "]),
    ("ticket_reservations", &["(ticket_id = ", "(id = "]),
    ("reservation_slots", &["(id = "]),
    ("venues", &["(id = "]),
];

/// Every scan of a `KEYS` table in `plan` (EXPLAIN's text) is an index scan
/// with that table's key as an `Index Cond` among its own lines (before the
/// next node), or a bitmap heap scan whose `Recheck Cond` (its one bitmap
/// index scan's condition: no `BitmapAnd`/`BitmapOr` anywhere) is the key.
/// An index scan without one reads the whole index (all orgs' rows), as a
/// seq scan reads the table.
fn assert_key_lookups(plan: &str) {
    assert!(
        !plan.contains("BitmapAnd") && !plan.contains("BitmapOr"),
        "bitmaps combined (one of them may not be a key):\n{plan}"
    );
    let lines: Vec<&str> = plan.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if !line.contains("Scan") {
            continue;
        }
        let Some(table) = line
            .split(" on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
        else {
            continue;
        };
        let Some((_, keys)) = KEYS.iter().find(|(t, _)| *t == table) else {
            continue;
        };
        let cond = if line.contains("Index Scan using") || line.contains("Index Only Scan using") {
            "Index Cond:"
        } else if line.contains("Bitmap Heap Scan on") {
            "Recheck Cond:"
        } else {
            panic!("{table} not read by an index:\n{plan}")
        };
        let by_key = lines[i + 1..]
            .iter()
            .take_while(|l| !l.contains("->"))
            .filter(|l| l.trim_start().starts_with(cond))
            .any(|c| keys.iter().any(|k| c.contains(k)));
        assert!(by_key, "{table} scanned without its key:\n{plan}");
    }
}

/// The generic plans of a batch's statements (made once per connection,
/// without the values: the org and the codes are parameters), and of the
/// two reads its decisions may make under the same settings, look each
/// ticket, reservation, slot and venue up by its key whatever the tables
/// were like when they were made: empty and nearly so (a new deployment;
/// the tables are shared by all orgs, so that is a new database, not a new
/// org; a plan made then is kept until ANALYZE or VACUUM), right after a
/// bulk import of tickets and their reservations (no statistics), and once
/// analyzed. A plan that read a table whole, or an index whole (the outer
/// side of a hash join), or started from the org-only indexes, would read
/// every ticket or reservation per batch (session 35: ~0.5 s a batch at
/// 5,000 tickets). Fails without the batch's `enable_seqscan = off` (a seq
/// scan of the few tickets), and with the slot, venue and org settings
/// joined plainly or the slot's read checking `orq = $2` (on one analyzed
/// slot, venue and settings row: their indexes read whole, or from the
/// org alone). (`enable_hashjoin`/`enable_mergejoin = off` are not needed
/// for any plan here: they rule such joins out for other table sizes.)
#[test]
fn a_batch_s_generic_plans_find_rows_by_their_keys() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let store = PgStore::connect(&url, common::options(&schema)).unwrap();
    let mut client = common::client(&url, &schema);
    client
        .batch_execute(
            "ALTER TABLE tickets SET (autovacuum_enabled = off); \
             ALTER TABLE ticket_reservations SET (autovacuum_enabled = off)",
        )
        .unwrap();
    // Each statement prepared and explained as a batch plans it: in a
    // transaction with the batch's settings.
    let generic_plans = |client: &mut postgres::Client| -> Vec<String> {
        let (settings, statements, reads) = PgStore::verify_batch_sql();
        let all: Vec<String> = statements
            .iter()
            .map(|s| s.to_string())
            .chain(reads)
            .collect();
        let mut tx = client.transaction().unwrap();
        tx.batch_execute(settings).unwrap();
        let plans = all
            .iter()
            .enumerate()
            .map(|(i, sql)| {
                let params = (1..=12).filter(|n| sql.contains(&format!("${n}"))).count();
                let nulls = vec!["NULL"; params].join(", ");
                tx.batch_execute(&format!("PREPARE batch_{i} AS {sql}"))
                    .unwrap();
                let plan = tx
                    .query(&format!("EXPLAIN EXECUTE batch_{i}({nulls})"), &[])
                    .unwrap()
                    .iter()
                    .map(|r| r.get::<_, String>(0))
                    .collect::<Vec<_>>()
                    .join("\n");
                tx.batch_execute(&format!("DEALLOCATE batch_{i}")).unwrap();
                plan
            })
            .collect();
        tx.rollback().unwrap();
        plans
    };
    let empty = generic_plans(&mut client);
    let (_, _, _) = tickets(&store, 3);
    let small = generic_plans(&mut client);
    let new: Vec<NewTicket> = (0..20_000)
        .map(|i| NewTicket::plain(&format!("B-{i}"), ActivationMode::Immediate).unwrap())
        .collect();
    for chunk in new.chunks(5_000) {
        store.insert_tickets(ORQ, chunk, now()).unwrap();
    }
    // Their reservations too (by SQL: the plans, not the slot's counts,
    // are what this test is about).
    client
        .batch_execute(
            "INSERT INTO ticket_reservations (id, ticket_id, slot_id, customer_email, \
             customer_phone, orq) \
             SELECT gen_random_uuid(), t.ticket_code, (SELECT id FROM reservation_slots LIMIT 1), \
             'b@example.com', '+12025551234', t.orq FROM tickets t WHERE t.ticket_code LIKE 'B-%'",
        )
        .unwrap();
    let unanalyzed: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_user_tables \
             WHERE relname IN ('tickets', 'ticket_reservations') AND schemaname = current_schema() \
             AND last_analyze IS NULL AND last_autoanalyze IS NULL",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(unanalyzed, 2, "the test needs both tables never analyzed");
    let reserved: i64 = client
        .query_one("SELECT count(*) FROM ticket_reservations", &[])
        .unwrap()
        .get(0);
    assert_eq!(reserved, 20_003, "the imported tickets reserved");
    let imported = generic_plans(&mut client);
    // This schema's tables only: a bare ANALYZE would analyze the other
    // tests' schemas too (one database), under the tests that need a table
    // never analyzed.
    client
        .batch_execute(
            "ANALYZE tickets, ticket_reservations, reservation_slots, venues, org_settings",
        )
        .unwrap();
    let analyzed = generic_plans(&mut client);
    for (point, plans) in [
        ("empty", &empty),
        ("small", &small),
        ("imported", &imported),
        ("analyzed", &analyzed),
    ] {
        for plan in plans.iter() {
            // Shown with --nocapture (session 37's report).
            eprintln!("--- {point}\n{plan}");
            assert!(plan.contains("Index"), "no index used:\n{plan}");
            assert_key_lookups(plan);
        }
    }
}

// The hand-off (`HandOff::verify_ticket_handed_off`), as the server calls it
// on its runtime's workers.

/// The server's runtime: two workers and its blocking pool.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn hand_off(
    store: &Arc<PgStore>,
    code: &TicketCode,
    gate: Gate,
    at: DateTime<Utc>,
) -> entrada_store::Pending<entrada_domain::Verdict> {
    Arc::clone(store)
        .verify_ticket_handed_off(ORQ, code.clone(), OperatorId(5), gate, at)
        .expect("taken on a runtime")
}

#[test]
fn a_store_off_a_runtime_declines_the_hand_off() {
    let Some(t) = reserved(1) else { return };
    let store = Arc::new(t.store);
    let declined = Arc::clone(&store).verify_ticket_handed_off(
        ORQ,
        t.codes[0].clone(),
        OperatorId(5),
        t.gate,
        t.at,
    );
    assert!(declined.is_none(), "no runtime to lead its batch on");
}

#[test]
fn a_handed_off_verification_is_answered_after_its_commit() {
    let Some(t) = reserved(8) else { return };
    let Reserved {
        store,
        client,
        codes,
        gate,
        at,
    } = t;
    let store = Arc::new(store);
    let client = Arc::new(std::sync::Mutex::new(client));
    let rt = runtime();
    // Each answer, as it comes, is checked against what another connection
    // sees: READ COMMITTED shows only committed rows.
    let seen: Vec<(bool, i64)> = rt.block_on(async {
        let tasks: Vec<_> = codes
            .iter()
            .map(|code| {
                let (store, client, code) = (Arc::clone(&store), Arc::clone(&client), code.clone());
                tokio::spawn(async move {
                    let answer = hand_off(&store, &code, gate, at).await;
                    let n: i64 = tokio::task::spawn_blocking(move || {
                        client
                            .lock()
                            .unwrap()
                            .query_one(
                                "SELECT count(*) FROM passages WHERE ticket_code = $1",
                                &[&code.as_str()],
                            )
                            .unwrap()
                            .get(0)
                    })
                    .await
                    .unwrap();
                    (admitted(&answer), n)
                })
            })
            .collect();
        let mut seen = Vec::new();
        for task in tasks {
            seen.push(task.await.unwrap());
        }
        seen
    });
    assert!(
        seen.iter().all(|&(admit, n)| admit && n == 1),
        "each admitted and its entry committed when answered: {seen:?}"
    );
}

#[test]
fn handed_off_verifications_on_two_instances_admit_each_ticket_once() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let a = Arc::new(PgStore::connect(&url, common::options(&schema)).unwrap());
    let b = Arc::new(PgStore::connect(&url, common::options(&schema)).unwrap());
    let (codes, gate, at) = tickets(&a, 24);
    let rt = runtime();
    // 16 tasks in all, alternately on the two instances, every ticket asked
    // by each, from a different place in the list; a quarter of them (all
    // on the second instance) through the blocking call, on the queue its
    // handed-off callers use (callers of both kinds share its batches).
    let answers: Vec<(String, bool, String)> = rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..16 {
            let store = Arc::clone(if t % 2 == 0 { &a } else { &b });
            let codes = codes.clone();
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for i in 0..codes.len() {
                    let code = codes[(i + t * 5) % codes.len()].clone();
                    let answer = if t % 4 == 3 {
                        let (store, code) = (Arc::clone(&store), code.clone());
                        tokio::task::spawn_blocking(move || {
                            store.verify_ticket(ORQ, &code, OperatorId(5), &gate, at)
                        })
                        .await
                        .unwrap()
                    } else {
                        hand_off(&store, &code, gate, at).await
                    };
                    let why = match &answer {
                        Ok(v) => v.verdict.code().to_owned(),
                        Err(e) => e.code().to_owned(),
                    };
                    out.push((code.to_string(), admitted(&answer), why));
                }
                out
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all
    });
    let mut admits: HashMap<String, usize> = HashMap::new();
    for (code, admit, why) in &answers {
        if *admit {
            *admits.entry(code.clone()).or_default() += 1;
        } else {
            assert_eq!(why, "ALREADY_VERIFIED", "{code}");
        }
    }
    let mut client = common::client(&url, &schema);
    let written = passages(&mut client);
    for code in &codes {
        assert_eq!(admits.get(code.as_str()), Some(&1), "one ADMIT for {code}");
        assert_eq!(written.get(code.as_str()), Some(&1), "one entry for {code}");
    }
}

#[test]
fn a_handed_off_ticket_locked_elsewhere_runs_alone_and_holds_up_no_other() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let store = Arc::new(PgStore::connect(&url, common::options(&schema)).unwrap());
    let (codes, gate, at) = tickets(&store, 3);
    let mut locker = common::client(&url, &schema);
    let held = std::sync::Mutex::new(Some(hold(&mut locker, &["T-1"])));
    let rt = runtime();
    let (s1, c1) = (Arc::clone(&store), codes[1].clone());
    let locked = rt.spawn(async move { hand_off(&s1, &c1, gate, at).await });
    // Its item is queued (and on its own, handed back) before the others.
    std::thread::sleep(std::time::Duration::from_millis(300));
    // The others are answered while T-1 is held: its item went back to its
    // own caller (SKIP LOCKED), who waits for the lock alone.
    let free = common::within_10s(
        || {
            rt.block_on(async {
                [
                    hand_off(&store, &codes[0], gate, at).await,
                    hand_off(&store, &codes[2], gate, at).await,
                ]
            })
        },
        || drop(held.lock().unwrap().take()),
    );
    assert!(free.iter().all(admitted), "{free:?}");
    assert!(!locked.is_finished(), "answered while its ticket is held");
    drop(held.lock().unwrap().take());
    let answer = rt.block_on(locked).unwrap();
    assert!(admitted(&answer), "{answer:?}");
    assert_eq!(
        passages(&mut common::client(&url, &schema)).get("T-1"),
        Some(&1)
    );
}
