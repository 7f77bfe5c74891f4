//! Venue operations (issue 15): the settings on the venue row, and
//! occupancy counted from the day's passages, on every engine.

use super::tickets::ticket;
use super::*;
use crate::domain::venue::GateSettingsPatch;
use crate::domain::venue_ops::OccupancyLevel;
use crate::domain::{ActivationMode, Contact, Gate, OperatorId, TicketCode};
use crate::{
    GateStore, ReservationStore, ReserveRequest, SlotStore, TicketStore, VenueOpsStore, VenueStore,
};

pub fn operations_settings_are_patched_set_and_cleared(s: &(impl VenueStore + ?Sized)) {
    let v = s.add_venue(ORQ, "Zoo", "UTC", now()).unwrap();
    assert_eq!(v.gate.ops(), Default::default());
    let patch: GateSettingsPatch = serde_json::from_str(
        r#"{"reentry_allowed": true, "walkup_lease_places": 2,
            "no_show_release_minutes": 20, "occupancy_limit": 300}"#,
    )
    .unwrap();
    let changed = s.update_gate_settings(ORQ, v.id, &patch, now()).unwrap();
    let ops = changed.gate.ops();
    assert_eq!(
        (
            ops.reentry_allowed,
            ops.walkup_lease_places,
            ops.no_show_release_minutes,
            ops.occupancy_limit
        ),
        (true, 2, Some(20), Some(300))
    );
    // The grace is untouched; the stored row reads back the same.
    assert_eq!(changed.gate.early_grace_minutes(), 30);
    assert_eq!(s.get_venue(ORQ, v.id).unwrap(), changed);
    // null clears a nullable setting; the others stay.
    let clear: GateSettingsPatch = serde_json::from_str(r#"{"occupancy_limit": null}"#).unwrap();
    let cleared = s.update_gate_settings(ORQ, v.id, &clear, now()).unwrap();
    assert_eq!(cleared.gate.ops().occupancy_limit, None);
    assert_eq!(cleared.gate.ops().no_show_release_minutes, Some(20));
    // Out of bounds: refused, nothing changed.
    let wild: GateSettingsPatch = serde_json::from_str(r#"{"walkup_lease_places": 51}"#).unwrap();
    assert_eq!(
        code_of(s.update_gate_settings(ORQ, v.id, &wild, now())),
        "INVALID_INPUT"
    );
    assert_eq!(s.get_venue(ORQ, v.id).unwrap(), cleared);
}

pub fn occupancy_counts_the_days_entries_against_the_limit(
    s: &(impl VenueStore
          + SlotStore
          + TicketStore
          + ReservationStore
          + GateStore
          + VenueOpsStore
          + ?Sized),
) {
    let venue = s.add_venue(ORQ, "Prado", "Europe/Madrid", now()).unwrap();
    let other = s.add_venue(ORQ, "Thyssen", "Europe/Madrid", now()).unwrap();
    // 2025-12-01 10:00 UTC = 11:00 in Madrid, inside the slot.
    let at_gate = now() + chrono::Duration::days(6);
    let slot = slot_at(s, &venue, "2025-12-01", "09:00", "12:00", 10);
    let gate = Gate {
        venue_id: Some(venue.id),
        ..Gate::default()
    };
    let empty = s.occupancy(ORQ, venue.id, at_gate).unwrap();
    assert_eq!(
        (
            empty.venue_id,
            empty.inside,
            empty.limit,
            empty.level,
            empty.as_of
        ),
        (venue.id, 0, None, OccupancyLevel::Normal, Some(at_gate))
    );
    for code in ["O-1", "O-2"] {
        let t = ticket(s, code, ActivationMode::Immediate);
        let req = ReserveRequest {
            ticket: t.clone(),
            slot_id: slot.id,
            contact: Contact::validate("john@example.com", "+12025551234").unwrap(),
        };
        s.reserve_slot(ORQ, &req, now()).unwrap();
        s.verify_ticket(ORQ, &t, OperatorId(5), &gate, at_gate)
            .unwrap();
    }
    // A refused verification is no entry.
    let again = TicketCode::parse("O-1").unwrap();
    assert!(s
        .verify_ticket(ORQ, &again, OperatorId(5), &gate, at_gate)
        .is_err());
    assert_eq!(s.occupancy(ORQ, venue.id, at_gate).unwrap().inside, 2);
    assert_eq!(s.occupancy(ORQ, other.id, at_gate).unwrap().inside, 0);
    // Against a limit of 2: full; the next day starts empty.
    let limit: GateSettingsPatch = serde_json::from_str(r#"{"occupancy_limit": 2}"#).unwrap();
    s.update_gate_settings(ORQ, venue.id, &limit, now())
        .unwrap();
    let full = s.occupancy(ORQ, venue.id, at_gate).unwrap();
    assert_eq!(
        (full.inside, full.limit, full.level),
        (2, Some(2), OccupancyLevel::Full)
    );
    let tomorrow = at_gate + chrono::Duration::days(1);
    assert_eq!(s.occupancy(ORQ, venue.id, tomorrow).unwrap().inside, 0);
    // Another org's venue, or none: NOT_FOUND.
    assert_eq!(
        code_of(s.occupancy(crate::domain::Orq(2), venue.id, at_gate)),
        "NOT_FOUND"
    );
}
