//! Group commit of verify-ticket (`src/verify_batch.rs`): verifications
//! asked at once share one transaction, and still admit each ticket once,
//! answer each on its own, and keep one ticket's failure from the others.

mod common;

use std::collections::HashMap;
use std::sync::Barrier;

use chrono::{DateTime, TimeZone, Utc};
use entrada_domain::{
    ActivationMode, Contact, Gate, NewSlot, NewTicket, OperatorId, Orq, TicketCode, VerdictCode,
};
use entrada_store::conformance::{now, ORQ};
use entrada_store::{
    GateStore, ReservationStore, ReserveRequest, SlotStore, StoreError, TicketStore, VenueStore,
};
use entrada_store_pg::PgStore;

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
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let store = PgStore::connect(&url, common::options(&schema)).unwrap();
    let (codes, gate, at) = tickets(&store, 3);
    // T-1's reservation cannot be written: the statement fails in the
    // database, which aborts the transaction it runs in.
    let mut client = common::client(&url, &schema);
    client
        .batch_execute(
            "CREATE FUNCTION refuse_row() RETURNS trigger LANGUAGE plpgsql AS \
             'BEGIN RAISE EXCEPTION ''refused by the test''; END'; \
             CREATE TRIGGER refuse_t1 BEFORE UPDATE ON ticket_reservations \
             FOR EACH ROW WHEN (OLD.ticket_id = 'T-1') EXECUTE FUNCTION refuse_row();",
        )
        .unwrap();
    let op = OperatorId(5);
    let answers = store.verify_tickets_together(&[
        (ORQ, codes[0].clone(), op, gate, at),
        (ORQ, codes[1].clone(), op, gate, at),
        (ORQ, codes[2].clone(), op, gate, at),
    ]);
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
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let store = PgStore::connect(&url, common::options(&schema)).unwrap();
    let (codes, gate, at) = tickets(&store, 3);
    // T-1's reservation UPDATE writes no row (the statement succeeds): the
    // batch's one write sees 2 of 3 reservations written.
    let mut client = common::client(&url, &schema);
    client
        .batch_execute(
            "CREATE FUNCTION skip_row() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'; \
             CREATE TRIGGER skip_t1 BEFORE UPDATE ON ticket_reservations \
             FOR EACH ROW WHEN (OLD.ticket_id = 'T-1') EXECUTE FUNCTION skip_row();",
        )
        .unwrap();
    let op = OperatorId(5);
    let answers = store.verify_tickets_together(&[
        (ORQ, codes[0].clone(), op, gate, at),
        (ORQ, codes[1].clone(), op, gate, at),
        (ORQ, codes[2].clone(), op, gate, at),
    ]);
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
