//! verify-ticket's one-statement write checks what it wrote: a part that
//! writes no row (its row changed since it was read under the ticket's
//! lock) fails the verification and rolls it back, never passes silently.

mod common;

use chrono::{TimeZone, Utc};
use entrada_domain::{
    ActivationMode, Contact, Gate, NewSlot, NewTicket, OperatorId, ReservationStatus, TicketCode,
};
use entrada_store::conformance::{now, ORQ};
use entrada_store::{
    GateStore, ReservationStore, ReserveRequest, SlotStore, StoreError, TicketStore, VenueStore,
};
use entrada_store_pg::PgStore;

#[test]
fn a_reservation_row_the_write_misses_fails_the_verification_and_writes_nothing() {
    let Some(url) = common::url() else { return };
    let schema = common::fresh_schema(&url);
    let store = PgStore::connect(&url, common::options(&schema)).unwrap();
    let venue = store.add_venue(ORQ, "Prado", "UTC", now()).unwrap();
    let new = NewSlot::validate(venue.id.0, "2025-12-01", "09:00", "12:00", Some(10)).unwrap();
    let slot = store.create_slot(ORQ, &new, now()).unwrap();
    let t = NewTicket::plain("T-1", ActivationMode::Immediate).unwrap();
    store.insert_tickets(ORQ, &[t], now()).unwrap();
    let code = TicketCode::parse("T-1").unwrap();
    let req = ReserveRequest {
        ticket: code.clone(),
        slot_id: slot.id,
        contact: Contact::validate("john@example.com", "+12025551234").unwrap(),
    };
    let r = store.reserve_slot(ORQ, &req, now()).unwrap();
    let before = store.get_ticket(ORQ, &code).unwrap();

    // The reservation's UPDATE now writes no row, as when its row no longer
    // matches what the verification read (the statement itself succeeds).
    let mut client = common::client(&url, &schema);
    client
        .batch_execute(
            "CREATE FUNCTION skip_row() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'; \
             CREATE TRIGGER skip_reservation_update BEFORE UPDATE ON ticket_reservations \
             FOR EACH ROW EXECUTE FUNCTION skip_row();",
        )
        .unwrap();

    let at_gate = Utc.with_ymd_and_hms(2025, 12, 1, 10, 0, 0).unwrap();
    let gate = Gate {
        venue_id: Some(venue.id),
        ..Gate::default()
    };
    let err = store
        .verify_ticket(ORQ, &code, OperatorId(5), &gate, at_gate)
        .expect_err("a reservation left unwritten fails the verification");
    assert!(matches!(err, StoreError::Engine(_)), "{err:?}");

    // Rolled back whole: the ticket unused, its reservation still booked, no passage.
    assert_eq!(store.get_ticket(ORQ, &code).unwrap(), before);
    assert_eq!(before.verified_at, None);
    assert_eq!(store.get_reservation(ORQ, r.id).unwrap(), r);
    assert_eq!(r.status, ReservationStatus::Reserved);
    let passages: i64 = client
        .query_one("SELECT count(*) FROM passages", &[])
        .unwrap()
        .get(0);
    assert_eq!(passages, 0);
}
