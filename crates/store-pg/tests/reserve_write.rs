//! The reservation's writes (session 32): the slot's place is taken by one
//! UPDATE that is also its lock, the rules decide on the row it returns, and
//! a refusal there rolls everything back; the reservation and the ticket are
//! written in one statement that checks it wrote each row.

mod common;

use entrada_domain::{
    ChangedBy, Contact, DomainError, ReservationStatus, SlotStatus, TicketCode, TicketStatus,
};
use entrada_store::conformance::{now, ORQ};
use entrada_store::{ReservationStore, ReserveRequest, SlotStore, StoreError, TicketStore};

use common::OneSlot as Setup;

fn setup(capacity: i64, tickets: &[&str]) -> Option<Setup> {
    common::one_slot(capacity, tickets)
}

fn request(code: &str, slot: &entrada_domain::Slot) -> ReserveRequest {
    ReserveRequest {
        ticket: TicketCode::parse(code).unwrap(),
        slot_id: slot.id,
        contact: Contact::validate("john@example.com", "+12025551234").unwrap(),
    }
}

/// The path of each recorded slot write that took a place: "fast" (the one
/// conditional UPDATE) or "slow" (the locked read, then `change_booking`);
/// other writes (a test's own trigger) are left out.
fn slot_write_paths(client: &mut postgres::Client) -> Vec<&'static str> {
    client
        .query("SELECT q FROM slot_writes ORDER BY n", &[])
        .unwrap()
        .iter()
        .filter_map(|r| {
            let q: String = r.get(0);
            if q.contains("booked_count = booked_count + 1") {
                Some("fast")
            } else if q.contains("SET booked_count = $1") {
                Some("slow")
            } else {
                None
            }
        })
        .collect()
}

/// Between the first look and `take_place`: a trigger on the reservation's
/// insert changes the slot (`set`) in the reservation's own transaction.
fn change_slot_on_insert(client: &mut postgres::Client, set: &str) {
    client
        .batch_execute(&format!(
            "CREATE FUNCTION change_slot() RETURNS trigger LANGUAGE plpgsql AS \
             $$BEGIN UPDATE reservation_slots SET {set} WHERE id = NEW.slot_id; RETURN NEW; END$$; \
             CREATE TRIGGER change_slot AFTER INSERT ON ticket_reservations \
             FOR EACH ROW EXECUTE FUNCTION change_slot();"
        ))
        .unwrap();
}

fn drop_change_slot(client: &mut postgres::Client) {
    client
        .batch_execute(
            "DROP TRIGGER change_slot ON ticket_reservations; DROP FUNCTION change_slot();",
        )
        .unwrap();
}

fn reservations_of(client: &mut postgres::Client, code: &str) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM ticket_reservations WHERE ticket_id = $1",
            &[&code],
        )
        .unwrap()
        .get(0)
}

/// A slot refused after the first look (`change` made between it and
/// `take_place`): the refusal `expected` (SLOT_CLOSED, SLOT_FULL), and nothing of the reservation stays
/// (the slot, T-2 and its reservation rows as before).
fn refused_after_the_first_look(change: &str, expected: DomainError) {
    let Some(mut s) = setup(10, &["T-1", "T-2"]) else {
        return;
    };
    s.store
        .reserve_slot(ORQ, &request("T-1", &s.slot), now())
        .unwrap();
    let slot_before = s.store.get_slot(ORQ, s.slot.id).unwrap();
    let t2 = TicketCode::parse("T-2").unwrap();
    let ticket_before = s.store.get_ticket(ORQ, &t2).unwrap();
    change_slot_on_insert(&mut s.client, change);
    let err = s
        .store
        .reserve_slot(ORQ, &request("T-2", &s.slot), now())
        .expect_err("refused on the slot as changed");
    drop_change_slot(&mut s.client);
    assert!(
        matches!(&err, StoreError::Domain(e) if *e == expected),
        "{err:?}, not {expected:?}"
    );
    assert_eq!(s.store.get_slot(ORQ, s.slot.id).unwrap(), slot_before);
    assert_eq!(s.store.get_ticket(ORQ, &t2).unwrap(), ticket_before);
    assert_eq!(reservations_of(&mut s.client, "T-2"), 0);
}

/// Closed after the first look: the one-statement UPDATE does not match
/// (not ACTIVE), the locked read sees CLOSED, SLOT_CLOSED, all rolled back.
#[test]
fn a_slot_closed_after_the_first_look_is_refused_and_nothing_stays() {
    refused_after_the_first_look("status = 'CLOSED'", DomainError::SlotClosed);
}

/// Filled after the first look (capacity down to the count, FULL as the
/// schema's CHECK wants): SLOT_FULL under the lock, all rolled back.
#[test]
fn a_slot_filled_after_the_first_look_is_refused_and_nothing_stays() {
    refused_after_the_first_look(
        "total_capacity = booked_count, status = 'FULL'",
        DomainError::SlotFull,
    );
}

/// One place left after the first look (capacity down to count + 1): the
/// one-statement UPDATE does not match (the place would be the last), the
/// locked read takes it and the slot ends FULL.
#[test]
fn a_last_place_made_after_the_first_look_is_taken_by_the_locked_read() {
    let Some(mut s) = setup(10, &["T-1", "T-2"]) else {
        return;
    };
    s.store
        .reserve_slot(ORQ, &request("T-1", &s.slot), now())
        .unwrap();
    common::record_slot_writes(&mut s.client);
    change_slot_on_insert(&mut s.client, "total_capacity = booked_count + 1");
    s.store
        .reserve_slot(ORQ, &request("T-2", &s.slot), now())
        .unwrap();
    drop_change_slot(&mut s.client);
    let full = s.store.get_slot(ORQ, s.slot.id).unwrap();
    assert_eq!(
        (
            full.total_capacity,
            full.booked_count,
            full.available_count,
            full.status
        ),
        (2, 2, 0, SlotStatus::Full)
    );
    assert_eq!(slot_write_paths(&mut s.client), ["slow"]);
    assert_eq!(reservations_of(&mut s.client, "T-2"), 1);
}

/// The rules decide on the row the slot's UPDATE returns (under its lock),
/// not on the first look: here a trigger makes the slot's row, as the
/// UPDATE finds it, one that has ended (as if changed since the look), and
/// the reservation is refused and leaves nothing behind.
#[test]
fn a_slot_the_rules_refuse_under_its_lock_rolls_the_reservation_back() {
    let Some(mut s) = setup(10, &["T-1", "T-2"]) else {
        return;
    };
    s.store
        .reserve_slot(ORQ, &request("T-1", &s.slot), now())
        .unwrap();
    let slot_before = s.store.get_slot(ORQ, s.slot.id).unwrap();
    let ticket_before = s
        .store
        .get_ticket(ORQ, &TicketCode::parse("T-2").unwrap())
        .unwrap();
    s.client
        .batch_execute(
            "CREATE FUNCTION end_slot() RETURNS trigger LANGUAGE plpgsql AS \
             'BEGIN NEW.date := DATE ''2000-01-01''; RETURN NEW; END'; \
             CREATE TRIGGER end_slot BEFORE UPDATE ON reservation_slots \
             FOR EACH ROW EXECUTE FUNCTION end_slot();",
        )
        .unwrap();

    let err = s
        .store
        .reserve_slot(ORQ, &request("T-2", &s.slot), now())
        .expect_err("the slot as locked has ended");
    assert_eq!(err.code(), "SLOT_IN_PAST", "{err:?}");

    s.client
        .batch_execute("DROP TRIGGER end_slot ON reservation_slots")
        .unwrap();
    assert_eq!(s.store.get_slot(ORQ, s.slot.id).unwrap(), slot_before);
    assert_eq!(slot_before.booked_count, 1);
    let code = TicketCode::parse("T-2").unwrap();
    assert_eq!(s.store.get_ticket(ORQ, &code).unwrap(), ticket_before);
    let reservations: i64 = s
        .client
        .query_one(
            "SELECT count(*) FROM ticket_reservations WHERE ticket_id = 'T-2'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(reservations, 0, "no reservation row left behind");
}

/// A ticket row the write does not update (as when it no longer matches
/// what was read under its lock) fails the reservation: nothing is written,
/// the slot keeps its place.
#[test]
fn a_ticket_row_the_write_misses_fails_the_reservation_and_writes_nothing() {
    let Some(mut s) = setup(10, &["T-1"]) else {
        return;
    };
    let code = TicketCode::parse("T-1").unwrap();
    let ticket_before = s.store.get_ticket(ORQ, &code).unwrap();
    s.client
        .batch_execute(
            "CREATE FUNCTION skip_row() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'; \
             CREATE TRIGGER skip_ticket_update BEFORE UPDATE ON tickets \
             FOR EACH ROW EXECUTE FUNCTION skip_row();",
        )
        .unwrap();
    let err = s
        .store
        .reserve_slot(ORQ, &request("T-1", &s.slot), now())
        .expect_err("a ticket left unwritten fails the reservation");
    assert!(matches!(err, StoreError::Engine(_)), "{err:?}");
    assert_eq!(s.store.get_ticket(ORQ, &code).unwrap(), ticket_before);
    assert_eq!(s.store.get_slot(ORQ, s.slot.id).unwrap().booked_count, 0);
    let reservations: i64 = s
        .client
        .query_one("SELECT count(*) FROM ticket_reservations", &[])
        .unwrap()
        .get(0);
    assert_eq!(reservations, 0);
}

/// The last place goes through the locked read (the one-statement UPDATE
/// takes a place only while the slot stays below its capacity): the slot
/// ends FULL, and the next reservation is refused with SLOT_FULL.
#[test]
fn the_last_place_fills_the_slot_and_the_next_is_refused() {
    let Some(mut s) = setup(2, &["T-1", "T-2", "T-3"]) else {
        return;
    };
    common::record_slot_writes(&mut s.client);
    s.store
        .reserve_slot(ORQ, &request("T-1", &s.slot), now())
        .unwrap();
    let one = s.store.get_slot(ORQ, s.slot.id).unwrap();
    assert_eq!(
        (one.booked_count, one.available_count, one.status),
        (1, 1, SlotStatus::Active)
    );
    s.store
        .reserve_slot(ORQ, &request("T-2", &s.slot), now())
        .unwrap();
    let full = s.store.get_slot(ORQ, s.slot.id).unwrap();
    assert_eq!(
        (full.booked_count, full.available_count, full.status),
        (2, 0, SlotStatus::Full)
    );
    let err = s
        .store
        .reserve_slot(ORQ, &request("T-3", &s.slot), now())
        .expect_err("full");
    assert_eq!(err.code(), "SLOT_FULL");
    assert_eq!(s.store.get_slot(ORQ, s.slot.id).unwrap(), full);
    // The first place by the one statement, the last by the locked read.
    assert_eq!(slot_write_paths(&mut s.client), ["fast", "slow"]);
}

/// 0019: a slot's change while its feed entry is still pending leaves the
/// entry as it is (pending, its place in the write order kept); a change
/// after the entry was numbered makes it pending again, so a device gets
/// every count that commits.
#[test]
fn a_slot_change_logs_its_entry_pending_again_once_numbered() {
    let Some(mut s) = setup(10, &["T-1", "T-2", "T-3"]) else {
        return;
    };
    let id = s.slot.id.0.to_string();
    let entry = |client: &mut postgres::Client| -> (Option<i64>, i64, String, Option<i64>) {
        let r = client
            .query_one(
                "SELECT seq, written, op, scope FROM change_log \
                 WHERE entity = 'reservation_slots' AND entity_id = $1",
                &[&id],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3))
    };
    let venue = Some(s.slot.venue_id.0);
    let created = entry(&mut s.client);
    assert_eq!(
        (created.0, created.2.as_str(), created.3),
        (None, "upsert", venue)
    );

    s.store
        .reserve_slot(ORQ, &request("T-1", &s.slot), now())
        .unwrap();
    assert_eq!(
        entry(&mut s.client),
        created,
        "still pending: left as it was"
    );

    s.client.batch_execute("SELECT feed_sequence()").unwrap();
    let numbered = entry(&mut s.client);
    assert!(numbered.0.is_some(), "numbered: {numbered:?}");

    s.store
        .reserve_slot(ORQ, &request("T-2", &s.slot), now())
        .unwrap();
    let again = entry(&mut s.client);
    assert_eq!(
        (again.0, again.2.as_str(), again.3),
        (None, "upsert", venue)
    );
    assert!(again.1 > numbered.1, "written again after its numbering");
    assert_eq!(s.store.get_slot(ORQ, s.slot.id).unwrap().booked_count, 2);
}

/// 0019 across two connections. A slot change that finds its entry pending
/// only locks it: the numberer (which skips locked rows) leaves it pending
/// and unnumbered until that change commits, then numbers it. The reverse:
/// while an open numbering holds the entry (numbered, uncommitted), a slot
/// change waits for it and then writes the entry pending again, so the
/// change still reaches the feed. Without the trigger's lock the first half
/// numbers the entry under the open change (and the second loses it).
#[test]
fn a_pending_slot_entry_is_numbered_only_after_the_change_holding_it_commits() {
    let Some(mut s) = setup(10, &[]) else {
        return;
    };
    let id = s.slot.id.0.to_string();
    let slot_id = s.slot.id.0;
    let entry = |client: &mut postgres::Client| -> (Option<i64>, i64) {
        let r = client
            .query_one(
                "SELECT seq, written FROM change_log \
                 WHERE entity = 'reservation_slots' AND entity_id = $1",
                &[&id],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    let number = |client: &mut postgres::Client| -> i64 {
        client
            .query_one("SELECT feed_sequence()", &[])
            .unwrap()
            .get(0)
    };
    let touch = "UPDATE reservation_slots SET total_capacity = total_capacity WHERE id = $1";
    // Everything numbered, then only the slot's entry pending (a committed change).
    number(&mut s.client);
    s.client.execute(touch, &[&slot_id]).unwrap();
    let pending = entry(&mut s.client);
    assert_eq!(pending.0, None);

    // A holds the pending entry (its change uncommitted): not numbered.
    let mut a = common::client(&s.url, &s.schema);
    a.batch_execute("BEGIN").unwrap();
    a.execute(touch, &[&slot_id]).unwrap();
    assert_eq!(
        number(&mut s.client),
        0,
        "an entry an open change holds is skipped"
    );
    assert_eq!(
        entry(&mut s.client),
        pending,
        "still pending, not rewritten"
    );
    a.batch_execute("COMMIT").unwrap();
    assert_eq!(
        number(&mut s.client),
        1,
        "numbered once the change committed"
    );
    let numbered = entry(&mut s.client);
    assert!(numbered.0.is_some(), "{numbered:?}");
    assert_eq!(numbered.1, pending.1);

    // The reverse: B numbers the entry and holds it uncommitted.
    s.client.execute(touch, &[&slot_id]).unwrap();
    let pending = entry(&mut s.client);
    assert_eq!(pending.0, None);
    s.client.batch_execute("BEGIN").unwrap();
    assert_eq!(number(&mut s.client), 1);
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        a.batch_execute("SET statement_timeout = '30s'").unwrap();
        let r = a.execute(touch, &[&slot_id]).map_err(|e| e.to_string());
        tx.send(r).unwrap();
    });
    let timeout = std::time::Duration::from_millis(500);
    assert!(
        matches!(
            rx.recv_timeout(timeout),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout)
        ),
        "the slot change waits for the numbering that holds its entry"
    );
    s.client.batch_execute("COMMIT").unwrap();
    let changed = rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap();
    assert_eq!(changed, Ok(1));
    waiter.join().unwrap();
    let again = entry(&mut s.client);
    assert_eq!(again.0, None, "pending again after the numbering committed");
    assert!(
        again.1 > pending.1,
        "written again: {again:?} after {pending:?}"
    );
    assert_eq!(number(&mut s.client), 1);
}

/// A cancelled reservation's row is reused by the ticket's next reservation
/// (`write_reservation`'s UPDATE branch): the same row, RESERVED again on
/// the slot asked for, the ticket RESERVED, the place taken again.
#[test]
fn a_reservation_after_a_cancel_reuses_the_cancelled_row() {
    let Some(mut s) = setup(10, &["T-1"]) else {
        return;
    };
    let code = TicketCode::parse("T-1").unwrap();
    let first = s
        .store
        .reserve_slot(ORQ, &request("T-1", &s.slot), now())
        .unwrap();
    s.store
        .cancel_reservation(ORQ, first.id, ChangedBy::Staff, now())
        .unwrap();
    assert_eq!(s.store.get_slot(ORQ, s.slot.id).unwrap().booked_count, 0);

    let again = s
        .store
        .reserve_slot(ORQ, &request("T-1", &s.slot), now())
        .unwrap();
    assert_eq!(again.id, first.id, "the cancelled row reused");
    assert_eq!(again.status, ReservationStatus::Reserved);
    assert_eq!(again.slot_id, s.slot.id);
    assert_eq!(again.no_show_at, None);
    assert_eq!(s.store.get_reservation(ORQ, first.id).unwrap(), again);
    assert_eq!(
        s.store.get_ticket(ORQ, &code).unwrap().status,
        TicketStatus::Reserved
    );
    assert_eq!(s.store.get_slot(ORQ, s.slot.id).unwrap().booked_count, 1);
    assert_eq!(reservations_of(&mut s.client, "T-1"), 1);
}

/// The reused row's UPDATE writing nothing (a trigger skips it, as if the
/// row had changed since it was read) fails the reservation: an Engine
/// error, the row still CANCELLED, the ticket and the slot's count as they
/// were.
#[test]
fn a_reused_row_the_write_misses_fails_the_reservation_and_writes_nothing() {
    let Some(mut s) = setup(10, &["T-1"]) else {
        return;
    };
    let code = TicketCode::parse("T-1").unwrap();
    let first = s
        .store
        .reserve_slot(ORQ, &request("T-1", &s.slot), now())
        .unwrap();
    let cancelled = s
        .store
        .cancel_reservation(ORQ, first.id, ChangedBy::Staff, now())
        .unwrap();
    let ticket_before = s.store.get_ticket(ORQ, &code).unwrap();
    let slot_before = s.store.get_slot(ORQ, s.slot.id).unwrap();
    s.client
        .batch_execute(
            "CREATE FUNCTION skip_row() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'; \
             CREATE TRIGGER skip_reservation_update BEFORE UPDATE ON ticket_reservations \
             FOR EACH ROW EXECUTE FUNCTION skip_row();",
        )
        .unwrap();
    let err = s
        .store
        .reserve_slot(ORQ, &request("T-1", &s.slot), now())
        .expect_err("a reservation row left unwritten fails the reservation");
    s.client
        .batch_execute("DROP TRIGGER skip_reservation_update ON ticket_reservations")
        .unwrap();
    assert!(matches!(err, StoreError::Engine(_)), "{err:?}");
    assert_eq!(s.store.get_ticket(ORQ, &code).unwrap(), ticket_before);
    assert_eq!(ticket_before.status, TicketStatus::Activated);
    assert_eq!(s.store.get_slot(ORQ, s.slot.id).unwrap(), slot_before);
    assert_eq!(slot_before.booked_count, 0);
    assert_eq!(s.store.get_reservation(ORQ, first.id).unwrap(), cancelled);
}
