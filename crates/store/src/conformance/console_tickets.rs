//! The console's tickets (issue 16): search by code, order, e-mail, phone
//! with keyset pages; cancel (refund) with its reservation's place freed,
//! idempotent, refused for a used ticket, learnt by the gates' feed and
//! refused at the door — on every engine.

use super::*;
use crate::domain::{
    ActivationMode, ActivationStatus, ChangedBy, Contact, Gate, NewTicket, OperatorId,
    ReservationStatus, SlotStatus, TicketCode, TicketStatus, VenueId, VerdictCode,
};
use crate::{
    GateStore, ReservationStore, ReserveRequest, SlotStore, SyncStore, TicketFilter, TicketQuery,
    TicketStore, VenueStore,
};

fn issue(s: &(impl TicketStore + ?Sized), orq: Orq, code: &str, order: i64, email: &str) {
    let mut t = NewTicket::plain(code, ActivationMode::Immediate).unwrap();
    t.order_id = Some(order);
    t.purchase_email = Some(email.to_string());
    s.insert_tickets(orq, &[t], now()).unwrap();
}

fn codes(found: Vec<crate::domain::Ticket>) -> Vec<String> {
    found
        .into_iter()
        .map(|t| t.ticket_code.to_string())
        .collect()
}

fn q(raw: &str) -> TicketQuery {
    TicketQuery::parse(raw).unwrap()
}

pub fn search_finds_tickets_by_code_order_email_and_phone(
    s: &(impl VenueStore + SlotStore + TicketStore + ReservationStore + ?Sized),
) {
    issue(s, ORQ, "T-A1", 700, "ana@example.com");
    issue(s, ORQ, "T-A2", 700, "ana@example.com");
    issue(s, ORQ, "T-A3", 700, "ana@example.com");
    issue(s, ORQ, "T-B1", 701, "bo@example.com");
    // Another org's ticket with the same order id and e-mail is never found.
    issue(s, Orq(ORQ.0 + 1), "T-X1", 700, "ana@example.com");
    // A reservation's contact (customer e-mail, phone) is searchable too.
    let venue = s.add_venue(ORQ, "Prado", "Europe/Madrid", now()).unwrap();
    let slot = slot_at(s, &venue, "2025-12-01", "09:00", "12:00", 10);
    let b1 = TicketCode::parse("T-B1").unwrap();
    let req = ReserveRequest {
        ticket: b1.clone(),
        slot_id: slot.id,
        contact: Contact::validate("Reina@Example.com", "+34 600 111 222").unwrap(),
    };
    s.reserve_slot(ORQ, &req, now()).unwrap();

    let all = TicketFilter::default();
    let search = |raw: &str| codes(s.search_tickets(ORQ, &q(raw), &all, None, 100).unwrap());
    assert_eq!(search("T-A2"), ["T-A2"], "by code");
    assert_eq!(search("700"), ["T-A1", "T-A2", "T-A3"], "by order");
    assert_eq!(
        search("ANA@example.com"),
        ["T-A1", "T-A2", "T-A3"],
        "purchase e-mail, any case"
    );
    assert_eq!(search("reina@example.com"), ["T-B1"], "reservation e-mail");
    assert_eq!(search("+34600111222"), ["T-B1"], "phone");
    assert_eq!(search("+34 600 111 222"), ["T-B1"], "phone as typed");
    assert!(search("nobody@example.com").is_empty());
    assert!(search("T-X1").is_empty(), "another org's ticket");

    // Keyset pages: two, then the rest after the last code shown.
    let first = codes(s.search_tickets(ORQ, &q("700"), &all, None, 2).unwrap());
    assert_eq!(first, ["T-A1", "T-A2"]);
    let after = TicketCode::parse(&first[1]).unwrap();
    let rest = codes(
        s.search_tickets(ORQ, &q("700"), &all, Some(&after), 2)
            .unwrap(),
    );
    assert_eq!(rest, ["T-A3"]);

    assert_eq!(
        TicketQuery::parse("   ").map_err(|e| e.code()),
        Err("INVALID_INPUT")
    );
}

pub fn cancel_frees_the_place_once_and_gates_refuse_it(
    s: &(impl VenueStore + SlotStore + TicketStore + ReservationStore + GateStore + SyncStore + ?Sized),
) {
    let venue = s.add_venue(ORQ, "Prado", "Europe/Madrid", now()).unwrap();
    let slot = slot_at(s, &venue, "2025-12-01", "09:00", "12:00", 1);
    let t = super::tickets::ticket(s, "T-REFUND", ActivationMode::Immediate);
    let req = ReserveRequest {
        ticket: t.clone(),
        slot_id: slot.id,
        contact: Contact::validate("john@example.com", "+12025551234").unwrap(),
    };
    let r = s.reserve_slot(ORQ, &req, now()).unwrap();
    assert_eq!(s.get_slot(ORQ, slot.id).unwrap().status, SlotStatus::Full);
    let (_, device) = s.add_device(ORQ, venue.id, "Gate 1", now()).unwrap();
    let cursor = s
        .changes_since(ORQ, venue.id, 0, 1000, now())
        .unwrap()
        .next_cursor;

    let later = now() + chrono::Duration::minutes(3);
    let cancelled = s.cancel_ticket(ORQ, &t, None, later).unwrap();
    assert_eq!(
        (
            cancelled.status,
            cancelled.activation_status,
            cancelled.updated_at
        ),
        (TicketStatus::Cancelled, ActivationStatus::Cancelled, later)
    );
    // The reservation is cancelled and its place is free again.
    assert_eq!(
        s.get_reservation(ORQ, r.id).unwrap().status,
        ReservationStatus::Cancelled
    );
    let got = s.get_slot(ORQ, slot.id).unwrap();
    assert_eq!((got.booked_count, got.status), (0, SlotStatus::Active));

    // Idempotent: again, nothing changes (not even updated_at).
    let again = s
        .cancel_ticket(ORQ, &t, None, later + chrono::Duration::minutes(1))
        .unwrap();
    assert_eq!(again, cancelled);
    assert_eq!(s.get_slot(ORQ, slot.id).unwrap().booked_count, 0);

    // The gates' feed carries the cancelled ticket ...
    let page = s
        .changes_since(ORQ, VenueId(device.venue_id), cursor, 1000, later)
        .unwrap();
    let row = page
        .changes
        .iter()
        .find(|c| c.entity == "tickets" && c.entity_id == "T-REFUND")
        .and_then(|c| c.row.clone())
        .expect("the cancelled ticket is in the feed");
    assert_eq!(row["status"], "cancelled");
    assert_eq!(row["activation_status"], "cancelled");
    // ... and the door refuses it.
    let gate = Gate {
        venue_id: Some(venue.id),
        ..Gate::default()
    };
    let at_gate = now() + chrono::Duration::days(6);
    let v = s.validate_ticket(ORQ, &t, &gate, at_gate).unwrap();
    assert_eq!((v.admit, v.verdict), (false, VerdictCode::TicketCancelled));

    // A ticket used at the gate cannot be cancelled; unknown / foreign: 404.
    let used = super::tickets::ticket(s, "T-USED", ActivationMode::Immediate);
    // The freed place is takeable again.
    let req = ReserveRequest {
        ticket: used.clone(),
        slot_id: slot.id,
        contact: Contact::validate("john@example.com", "+12025551234").unwrap(),
    };
    s.reserve_slot(ORQ, &req, now()).unwrap();
    let v = s
        .verify_ticket(ORQ, &used, OperatorId(5), &gate, at_gate)
        .unwrap();
    assert!(v.admit, "{v:?}");
    assert_eq!(
        code_of(s.cancel_ticket(ORQ, &used, None, later)),
        "TICKET_REDEEMED"
    );
    assert_eq!(
        s.get_ticket(ORQ, &used).unwrap().status,
        TicketStatus::Verified
    );
    let unknown = TicketCode::parse("T-NONE").unwrap();
    assert_eq!(
        code_of(s.cancel_ticket(ORQ, &unknown, None, later)),
        "NOT_FOUND"
    );

    // The stories: the refund, and the admission with who let them in.
    use crate::domain::ticket_story::StoryKind as K;
    let story = s.ticket_story(ORQ, &t, None).unwrap();
    let kinds: Vec<K> = story.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            K::Created,
            K::Activated,
            K::Reserved,
            K::ReservationCancelled,
            K::Cancelled
        ]
    );
    assert_eq!(story.last().unwrap().at, later);
    let story = s.ticket_story(ORQ, &used, None).unwrap();
    let verified = story
        .iter()
        .find(|e| e.kind == K::Verified)
        .expect("verified");
    assert_eq!((verified.at, verified.operator_id), (at_gate, Some(5)));
    assert_eq!(
        code_of(s.ticket_story(Orq(ORQ.0 + 1), &used, None)),
        "NOT_FOUND"
    );
    assert_eq!(
        code_of(s.cancel_ticket(Orq(ORQ.0 + 1), &t, None, later)),
        "NOT_FOUND"
    );
}

/// The console's staff calls (issue 16): a PIN reset and a code re-issue,
/// through the server's traits.
pub fn a_pin_reset_and_a_code_reissue_reach_the_server(
    s: &(impl crate::OperatorStore + TicketStore + crate::SigningStore + ?Sized),
) {
    use crate::domain::Role;
    let op = s
        .add_operator(ORQ, Role::Operator, "Gate 1", Some("1234"), now())
        .unwrap();
    let reset = s.reset_operator_pin(ORQ, op.id, "5678", now()).unwrap();
    assert_eq!(reset.id, op.id);
    assert!(s.check_operator_pin(ORQ, op.id, "5678", now()).is_ok());
    assert_eq!(
        code_of(s.check_operator_pin(ORQ, op.id, "1234", now())),
        "WRONG_PIN"
    );
    assert_eq!(
        code_of(s.reset_operator_pin(Orq(ORQ.0 + 1), op.id, "5678", now())),
        "NOT_FOUND"
    );

    let t = super::tickets::ticket(s, "T-REISSUE", ActivationMode::Immediate);
    let old = s.signed_code(ORQ, &t, now()).unwrap();
    let fresh = s.reissue_ticket_code(ORQ, &t, None, now()).unwrap();
    assert_ne!(fresh, old);
    assert_eq!(s.signed_code(ORQ, &t, now()).unwrap(), fresh);
    let unknown = TicketCode::parse("T-NONE").unwrap();
    assert_eq!(
        code_of(s.reissue_ticket_code(ORQ, &unknown, None, now())),
        "NOT_FOUND"
    );
}

/// A caller bound to a venue (a venue-bound supervisor or admin) reaches
/// only tickets of its venue — a ticket's venue is its reservation's slot's
/// — in lists, searches, exports, look-ups, stories, cancels and re-issues:
/// another venue's ticket and a ticket never reserved are NOT_FOUND to it,
/// as another org's are, and nothing is written.
pub fn a_venue_bound_caller_reaches_its_venues_tickets_only(
    s: &(impl VenueStore + SlotStore + TicketStore + ReservationStore + ?Sized),
) {
    let prado = s.add_venue(ORQ, "Prado", "Europe/Madrid", now()).unwrap();
    let reina = s.add_venue(ORQ, "Reina", "Europe/Madrid", now()).unwrap();
    let at_prado = slot_at(s, &prado, "2025-12-01", "09:00", "12:00", 10);
    let at_reina = slot_at(s, &reina, "2025-12-01", "09:00", "12:00", 10);
    for (code, slot) in [
        ("V-P1", at_prado.id),
        ("V-P2", at_prado.id),
        ("V-R1", at_reina.id),
    ] {
        issue(s, ORQ, code, 900, "ana@example.com");
        let req = ReserveRequest {
            ticket: TicketCode::parse(code).unwrap(),
            slot_id: slot,
            contact: Contact::validate("ana@example.com", "+34600111222").unwrap(),
        };
        s.reserve_slot(ORQ, &req, now()).unwrap();
    }
    // Reserved, then cancelled: still the venue's (the row stays).
    let p2 = TicketCode::parse("V-P2").unwrap();
    s.cancel_ticket(ORQ, &p2, None, now()).unwrap();
    // Never reserved: no venue's.
    issue(s, ORQ, "V-NONE", 900, "ana@example.com");

    let bound = TicketFilter {
        venue_id: Some(prado.id),
        ..TicketFilter::default()
    };
    assert_eq!(
        codes(s.list_tickets(ORQ, &bound, None, 100).unwrap()),
        ["V-P1", "V-P2"]
    );
    assert_eq!(
        codes(s.search_tickets(ORQ, &q("900"), &bound, None, 100).unwrap()),
        ["V-P1", "V-P2"]
    );
    assert_eq!(
        codes(
            s.search_tickets(ORQ, &q("V-R1"), &bound, None, 100)
                .unwrap()
        ),
        Vec::<String>::new()
    );
    // Unbound: the org's every ticket.
    assert_eq!(
        codes(
            s.search_tickets(ORQ, &q("900"), &TicketFilter::default(), None, 100)
                .unwrap()
        ),
        ["V-NONE", "V-P1", "V-P2", "V-R1"]
    );

    let p = Some(prado.id);
    for other in ["V-R1", "V-NONE"] {
        let code = TicketCode::parse(other).unwrap();
        assert_eq!(
            code_of(s.get_ticket_in(ORQ, &code, p)),
            "NOT_FOUND",
            "{other}"
        );
        assert_eq!(
            code_of(s.ticket_story(ORQ, &code, p)),
            "NOT_FOUND",
            "{other}"
        );
        assert_eq!(
            code_of(s.reissue_ticket_code(ORQ, &code, p, now())),
            "NOT_FOUND",
            "{other}"
        );
        assert_eq!(
            code_of(s.cancel_ticket(ORQ, &code, p, now())),
            "NOT_FOUND",
            "{other}"
        );
        // Nothing was written.
        assert_ne!(
            s.get_ticket(ORQ, &code).unwrap().status,
            TicketStatus::Cancelled,
            "{other}"
        );
        // Unbound callers reach it.
        assert!(s.get_ticket_in(ORQ, &code, None).is_ok());
        assert!(s.ticket_story(ORQ, &code, None).is_ok());
    }
    let r1 = TicketCode::parse("V-R1").unwrap();
    assert_eq!(
        s.get_ticket_in(ORQ, &r1, Some(reina.id))
            .unwrap()
            .ticket_code,
        r1
    );
    let p1 = TicketCode::parse("V-P1").unwrap();
    assert!(s.ticket_story(ORQ, &p1, p).is_ok());
    assert!(s.get_ticket_in(ORQ, &p2, p).is_ok());
    assert_eq!(
        s.cancel_ticket(ORQ, &p1, p, now()).unwrap().status,
        TicketStatus::Cancelled
    );
}

/// Activation (`POST /api/tickets/{code}/activate`) by a caller bound to a
/// venue reaches that venue's tickets only, decided inside the activation's
/// own write: a ticket whose reservation has moved to another venue (after
/// the caller last saw it at its own), or one never reserved, is NOT_FOUND.
/// Only a never-reserved ticket can still be inactive (reserving needs an
/// active ticket), so that is the case where "nothing is written" can fail.
pub fn a_venue_bound_caller_activates_its_venues_tickets_only(
    s: &(impl VenueStore + SlotStore + TicketStore + ReservationStore + ?Sized),
) {
    let prado = s.add_venue(ORQ, "Prado", "Europe/Madrid", now()).unwrap();
    let reina = s.add_venue(ORQ, "Reina", "Europe/Madrid", now()).unwrap();
    let at_prado = slot_at(s, &prado, "2025-12-01", "09:00", "12:00", 10);
    let at_reina = slot_at(s, &reina, "2025-12-01", "09:00", "12:00", 10);
    let later = now() + chrono::Duration::minutes(5);
    let not_found = |r: crate::Result<crate::domain::Ticket>| match r {
        Err(StoreError::Domain(crate::domain::DomainError::NotFound { entity })) => entity,
        other => panic!("{other:?}"),
    };
    let (p, r) = (Some(prado.id), Some(reina.id));

    issue(s, ORQ, "A-MOVED", 901, "ana@example.com");
    let moved = TicketCode::parse("A-MOVED").unwrap();
    let req = ReserveRequest {
        ticket: moved.clone(),
        slot_id: at_prado.id,
        contact: Contact::validate("ana@example.com", "+34600111222").unwrap(),
    };
    let reservation = s.reserve_slot(ORQ, &req, now()).unwrap();
    // Its venue's ticket: as for any admin. A reserved ticket is active
    // (reserving needs it), so activating it changes nothing; what this case
    // checks is whom the answer reaches.
    let at_first = s.get_ticket(ORQ, &moved).unwrap();
    assert_eq!(at_first.activation_status, ActivationStatus::Active);
    assert_eq!(s.activate_ticket(ORQ, &moved, p, later).unwrap(), at_first);
    // The reservation moves to another venue; the caller's next activation
    // no longer reaches the ticket, the new venue's caller's does.
    s.reschedule_reservation(ORQ, reservation.id, at_reina.id, ChangedBy::Staff, now())
        .unwrap();
    assert_eq!(
        not_found(s.activate_ticket(ORQ, &moved, p, later)),
        "ticket"
    );
    assert_eq!(s.activate_ticket(ORQ, &moved, r, later).unwrap(), at_first);
    assert_eq!(
        s.activate_ticket(ORQ, &moved, None, later).unwrap(),
        at_first
    );

    // Never reserved (and inactive): no venue's, so no bound caller's; the
    // refusal writes nothing, it stays inactive.
    let none = TicketCode::parse("A-NONE").unwrap();
    let t = NewTicket::plain("A-NONE", ActivationMode::Deferred).unwrap();
    s.insert_tickets(ORQ, &[t], now()).unwrap();
    let before = s.get_ticket(ORQ, &none).unwrap();
    for bound in [p, r] {
        assert_eq!(
            not_found(s.activate_ticket(ORQ, &none, bound, later)),
            "ticket"
        );
    }
    assert_eq!(s.get_ticket(ORQ, &none).unwrap(), before, "nothing written");
    assert_eq!(before.activation_status, ActivationStatus::Inactive);
    // An org-wide caller activates it.
    let t = s.activate_ticket(ORQ, &none, None, later).unwrap();
    assert_eq!(
        (t.activation_status, t.activated_at),
        (ActivationStatus::Active, Some(later))
    );
}

/// The export of a filtered search is the filtered search: a search text and
/// the list's filters (status, activation status, user) narrow together.
pub fn a_search_is_narrowed_by_the_lists_filters(
    s: &(impl VenueStore + SlotStore + TicketStore + ReservationStore + ?Sized),
) {
    for (code, user) in [("F-1", 7), ("F-2", 7), ("F-3", 8)] {
        let mut t = NewTicket::plain(code, ActivationMode::Deferred).unwrap();
        t.order_id = Some(500);
        t.user_id = Some(user);
        s.insert_tickets(ORQ, &[t], now()).unwrap();
    }
    s.activate_ticket(ORQ, &TicketCode::parse("F-2").unwrap(), None, now())
        .unwrap();
    let search = |f: TicketFilter| codes(s.search_tickets(ORQ, &q("500"), &f, None, 100).unwrap());
    assert_eq!(search(TicketFilter::default()), ["F-1", "F-2", "F-3"]);
    assert_eq!(
        search(TicketFilter {
            activation_status: Some(ActivationStatus::Active),
            ..TicketFilter::default()
        }),
        ["F-2"]
    );
    assert_eq!(
        search(TicketFilter {
            activation_status: Some(ActivationStatus::Inactive),
            user_id: Some(7),
            ..TicketFilter::default()
        }),
        ["F-1"]
    );
    let minted = s
        .get_ticket(ORQ, &TicketCode::parse("F-3").unwrap())
        .unwrap()
        .status;
    assert_eq!(
        search(TicketFilter {
            status: Some(minted),
            user_id: Some(8),
            ..TicketFilter::default()
        }),
        ["F-3"]
    );
}
