//! What the server makes of an event a gate uploads. A device is not believed
//! blindly: each event is judged by the rules the gate itself applies
//! (`gate_verdict`), at the event's time on the server's clock, against what
//! the server knows. Pure: the store loads the rows, asks here, writes the
//! outcome.
//!
//! - An admission is a fact (the person is inside): it is always recorded.
//!   If the server would have admitted too, it is applied (the ticket is
//!   used). If the ticket was used already, it is a `DOUBLE_ENTRY`. Any
//!   other refusal (reservation or ticket cancelled, wrong venue, wrong
//!   date, ...) makes it a conflict with that reason, shown to supervisors,
//!   and changes no ticket or reservation: a device cannot turn a cancelled
//!   reservation into a verified one, nor spend another venue's ticket.
//! - A slot change needs an existing supervisor (or admin) of the device's
//!   org and a slot of the device's venue; otherwise it is rejected.
//! - An event that names an operator who does not exist in the device's org
//!   is rejected, whatever its kind: a device cannot act as nobody.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::no_show::{place_back, without_place, PlaceBack};
use super::{
    gate_verdict, DomainError, Operator, OperatorId, Slot, SlotId, VenueId, Verdict, VerdictCode,
    VerdictInput,
};

/// How far the measured clock offset may be off by itself: it is taken from
/// one request (the batch's `sent_at` against the server's receive time), so
/// it includes the request's transit time. Below this, the device's clock is
/// taken as it is.
pub const CLOCK_NOISE: Duration = Duration::seconds(2);

/// When an event happened, on the server's clock: the device's time less the
/// offset the server measured for the device (`device clock − server clock`),
/// never later than the server received it.
pub fn event_time(
    device_time: DateTime<Utc>,
    device_offset: Duration,
    received_at: DateTime<Utc>,
) -> DateTime<Utc> {
    let corrected = if device_offset.abs() <= CLOCK_NOISE {
        device_time
    } else {
        device_time - device_offset
    };
    corrected.min(received_at)
}

/// Why an uploaded event is not applied at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The event names no operator, and this kind needs one.
    OperatorRequired,
    /// No operator with this id in the device's org.
    UnknownOperator(OperatorId),
    /// The operator exists, but their role may not do this.
    OperatorNotAllowed {
        operator: OperatorId,
        role: &'static str,
        needs: &'static str,
    },
    /// The slot belongs to another venue than the device's.
    OtherVenue {
        device_venue: VenueId,
        slot_venue: VenueId,
    },
    /// A malformed payload, an unknown ticket or slot, a rule of the change
    /// itself (capacity below booked, ...).
    Domain(DomainError),
}

impl Rejection {
    /// Stable machine code (the event result's `reason`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::OperatorRequired => "OPERATOR_REQUIRED",
            Self::UnknownOperator(_) => "UNKNOWN_OPERATOR",
            Self::OperatorNotAllowed { .. } => "OPERATOR_NOT_ALLOWED",
            Self::OtherVenue { .. } => "WRONG_VENUE",
            Self::Domain(e) => e.code(),
        }
    }

    /// The facts behind the reason (the event result's `facts`).
    pub fn details(&self) -> serde_json::Value {
        match self {
            Self::OperatorRequired => serde_json::Value::Null,
            Self::UnknownOperator(id) => json!({ "operator_id": id }),
            Self::OperatorNotAllowed {
                operator,
                role,
                needs,
            } => json!({ "operator_id": operator, "role": role, "needs": needs }),
            Self::OtherVenue {
                device_venue,
                slot_venue,
            } => json!({ "device_venue_id": device_venue, "slot_venue_id": slot_venue }),
            Self::Domain(e) => e.details(),
        }
    }
}

impl From<DomainError> for Rejection {
    fn from(e: DomainError) -> Self {
        Self::Domain(e)
    }
}

/// The operator an event names, as the server knows them.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// What the event says (`operator_id`).
    pub claimed: Option<OperatorId>,
    /// The operator with that id in the device's org, if any.
    pub found: Option<&'a Operator>,
}

impl Actor<'_> {
    /// The acting operator, who must exist (and be of the device's org).
    fn require(&self) -> Result<&Operator, Rejection> {
        let id = self.claimed.ok_or(Rejection::OperatorRequired)?;
        match self.found {
            Some(op) if op.id == id => Ok(op),
            _ => Err(Rejection::UnknownOperator(id)),
        }
    }

    /// An operator named by an event that does not need one must still exist.
    pub fn check_optional(&self) -> Result<(), Rejection> {
        match self.claimed {
            None => Ok(()),
            Some(_) => self.require().map(|_| ()),
        }
    }
}

/// What becomes of an uploaded admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdmissionOutcome {
    /// The server would have admitted too: the ticket is used. `overruled`
    /// is the amber verdict the operator decided against, if they did.
    /// `place`: a released no-show let in late takes a place back in its
    /// slot from there (`domain::no_show::place_back`; its reservation is
    /// live again, then verified).
    Applied {
        overruled: Option<VerdictCode>,
        place: Option<PlaceBack>,
    },
    /// The ticket was used already: a double entry (earliest wins).
    DoubleEntry {
        overruled: Option<VerdictCode>,
    },
    /// The server would have refused: recorded as a fact with this verdict
    /// (its code is the conflict's reason), no state changes.
    Conflict(Box<Verdict>),
    Rejected(Rejection),
}

/// An uploaded `verify`, as the server sees it.
#[derive(Debug, Clone, Copy)]
pub struct UploadedAdmission<'a> {
    pub actor: Actor<'a>,
    /// The server's rows for the ticket (`ticket: None`: no such ticket in
    /// the device's org).
    pub rows: VerdictInput<'a>,
    /// The amber verdict the device says its operator overruled.
    pub overruled: Option<VerdictCode>,
    /// The places the device holds on the server of the reservation's slot
    /// (its walk-up lease): where a released no-show let in late takes a
    /// place back from first, when the gate took it from there.
    pub leased: i64,
    /// The slot whose leased place the gate says this admission took
    /// (`lease_slot_id`): only then does it come out of the lease. Without
    /// the mark the gate counted the admission in neither its lease refresh
    /// nor its lease, so taking a leased place would take one a walk-up
    /// booked later needs.
    pub lease_slot: Option<SlotId>,
}

/// The slot whose leased place an uploaded admission says it took (the
/// payload's `lease_slot_id`, which a gate sets only then).
pub fn lease_slot_of(payload: &serde_json::Value) -> Option<SlotId> {
    payload
        .get("lease_slot_id")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse().ok())
}

/// Judges an uploaded admission at `at` (the event's time on the server's
/// clock) for a gate standing at `device_venue`, with the grace of the
/// reserved slot's venue (as the gate judged it).
pub fn judge_admission(
    upload: &UploadedAdmission<'_>,
    at: DateTime<Utc>,
    device_venue: VenueId,
) -> AdmissionOutcome {
    let operator = match upload.actor.require() {
        Ok(op) => op,
        Err(r) => return AdmissionOutcome::Rejected(r),
    };
    if !operator.role.can_verify() {
        return AdmissionOutcome::Rejected(Rejection::OperatorNotAllowed {
            operator: operator.id,
            role: operator.role.as_str(),
            needs: "operator",
        });
    }
    if upload.rows.ticket.is_none() {
        return AdmissionOutcome::Rejected(DomainError::NotFound { entity: "ticket" }.into());
    }
    let gate = upload
        .rows
        .venue
        .map(|v| v.gate)
        .unwrap_or_default()
        .gate(Some(device_venue));
    let mut verdict = gate_verdict(upload.rows, at, &gate);
    // Only an amber verdict is the operator's to overrule (the gate may have
    // seen another amber one than the server: a code it had not synced).
    let overruled = upload.overruled.filter(|c| c.needs_operator_decision());
    // A ticket reserved at another venue is that venue's business even when it
    // was used already: a double entry (earliest wins) could let a gate with a
    // backdated clock rewrite who let it in over there.
    let elsewhere = upload
        .rows
        .slot
        .is_some_and(|slot| slot.venue_id != device_venue);
    if verdict.verdict == VerdictCode::AlreadyVerified && elsewhere {
        verdict.verdict = VerdictCode::WrongVenue;
        verdict.message = "Reserved for another venue".into();
    }
    match verdict.verdict {
        VerdictCode::Admit => AdmissionOutcome::Applied {
            overruled,
            place: None,
        },
        // A released no-show let in late needs a place back in its slot, or
        // the slot would go over capacity: without one it is a conflict. The
        // operator let them in (`overruled`), or a gate that had not heard
        // of the release yet showed ADMIT: either way the person is inside,
        // and the place is taken back alike.
        VerdictCode::NoShowReleased => {
            let place = upload.rows.slot.map_or(PlaceBack::NoPlace, |slot| {
                let leased = if upload.lease_slot == Some(slot.id) {
                    upload.leased
                } else {
                    0
                };
                place_back(leased, slot)
            });
            match place {
                PlaceBack::NoPlace => {
                    AdmissionOutcome::Conflict(Box::new(without_place(verdict, place)))
                }
                _ => AdmissionOutcome::Applied {
                    overruled,
                    place: Some(place),
                },
            }
        }
        VerdictCode::AlreadyVerified => AdmissionOutcome::DoubleEntry { overruled },
        // The server, too, would have left it to the operator, who decided.
        code if code.needs_operator_decision() && overruled.is_some() => {
            AdmissionOutcome::Applied {
                overruled,
                place: None,
            }
        }
        _ => AdmissionOutcome::Conflict(Box::new(verdict)),
    }
}

/// Judges an uploaded slot change (capacity, status) before the change's own
/// rules (`plan_slot_change`) are applied: who and where.
pub fn judge_slot_change(
    actor: Actor<'_>,
    slot: Option<&Slot>,
    device_venue: VenueId,
) -> Result<(), Rejection> {
    let operator = actor.require()?;
    if !operator.role.can_manage_slots() {
        return Err(Rejection::OperatorNotAllowed {
            operator: operator.id,
            role: operator.role.as_str(),
            needs: "supervisor",
        });
    }
    let slot = slot.ok_or(DomainError::NotFound { entity: "slot" })?;
    if slot.venue_id != device_venue {
        return Err(Rejection::OtherVenue {
            device_venue,
            slot_venue: slot.venue_id,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        slot::tests::slot, ticket::tests::ticket, ActivationStatus as A, Orq, Reservation,
        ReservationId, ReservationStatus as R, Role, SlotId, SlotStatus, TicketCode,
        TicketStatus as S, Venue,
    };
    use chrono::TimeZone;

    fn utc(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 12, d, h, m, 0).unwrap()
    }

    fn operator(id: i64, role: Role) -> Operator {
        Operator {
            id: OperatorId(id),
            orq: Orq(1),
            role,
            display_name: format!("op {id}"),
            pin_hash: None,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            deactivated_at: None,
        }
    }

    fn reservation(status: crate::ReservationStatus) -> Reservation {
        Reservation {
            id: ReservationId(uuid::Uuid::nil()),
            ticket_id: TicketCode::parse("TKT-1").unwrap(),
            slot_id: SlotId(uuid::Uuid::nil()),
            customer_email: "john@example.com".into(),
            customer_phone: "+12025551234".into(),
            reserved_at: DateTime::<Utc>::UNIX_EPOCH,
            status,
            orq: Orq(1),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            no_show_at: None,
        }
    }

    #[test]
    fn event_time_is_corrected_by_the_measured_offset_beyond_noise() {
        let received = utc(1, 12, 0);
        let ms = Duration::milliseconds;
        // (device time, offset device − server, expected)
        let cases = [
            (utc(1, 10, 0), ms(0), utc(1, 10, 0)),
            (utc(1, 10, 0), ms(1_500), utc(1, 10, 0)),
            (utc(1, 10, 0), ms(-2_000), utc(1, 10, 0)),
            // A device an hour fast: its 10:00 was the server's 09:00.
            (utc(1, 10, 0), Duration::hours(1), utc(1, 9, 0)),
            (utc(1, 10, 0), Duration::hours(-1), utc(1, 11, 0)),
            // Never after the server received it.
            (utc(1, 11, 30), Duration::hours(-1), received),
            (utc(2, 10, 0), ms(0), received),
        ];
        for (device, offset, expected) in cases {
            assert_eq!(
                event_time(device, offset, received),
                expected,
                "{device} {offset}"
            );
        }
    }

    /// The slot from `slot()` is 2025-12-01 09:00–12:00 at venue 1 (UTC here).
    #[test]
    fn admission_table() {
        use AdmissionOutcome as O;
        use VerdictCode as V;
        let venue = Venue {
            id: VenueId(1),
            orq: Orq(1),
            name: "Prado".into(),
            timezone: chrono_tz::UTC,
            gate: Default::default(),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        let s = slot(200, 45, SlotStatus::Active);
        let gate_op = operator(5, Role::Operator);
        let active = ticket(A::Active, S::Reserved);
        let mut used = ticket(A::Redeemed, S::Verified);
        used.verified_at = Some(utc(1, 9, 5));
        let cancelled_ticket = ticket(A::Cancelled, S::Activated);
        let unreserved = ticket(A::Active, S::Activated);
        let live = reservation(R::Reserved);
        let gone = reservation(R::Cancelled);
        let verified = reservation(R::Verified);
        // Released as a no-show at 09:30 (the slot starts at 09:00).
        let mut no_show = reservation(R::Cancelled);
        no_show.no_show_at = Some(utc(1, 9, 30));
        let input = |t, r| VerdictInput {
            ticket: Some(t),
            reservation: r,
            slot: r.map(|_| &s),
            venue: r.map(|_| &venue),
        };
        let as_op = Actor {
            claimed: Some(OperatorId(5)),
            found: Some(&gate_op),
        };
        let in_slot = utc(1, 10, 0);
        let early = utc(1, 7, 0);
        let here = VenueId(1);
        let elsewhere = VenueId(2);

        // (name, actor, rows, overruled, at, device venue) → outcome code
        type Case<'a> = (
            &'a str,
            Actor<'a>,
            VerdictInput<'a>,
            Option<V>,
            DateTime<Utc>,
            VenueId,
            &'a str,
        );
        let cases: Vec<Case> = vec![
            (
                "admit",
                as_op,
                input(&active, Some(&live)),
                None,
                in_slot,
                here,
                "APPLIED",
            ),
            (
                "double entry",
                as_op,
                input(&used, Some(&verified)),
                None,
                in_slot,
                here,
                "DOUBLE_ENTRY",
            ),
            (
                "reservation cancelled on the server",
                as_op,
                input(&active, Some(&gone)),
                None,
                in_slot,
                here,
                "RESERVATION_CANCELLED",
            ),
            (
                "admitted before the no-show release, uploaded after it",
                as_op,
                input(&active, Some(&no_show)),
                None,
                utc(1, 9, 20),
                here,
                "APPLIED",
            ),
            (
                "a no-show admitted after the release by a gate that had not heard of it (a free place)",
                as_op,
                input(&active, Some(&no_show)),
                None,
                in_slot,
                here,
                "APPLIED",
            ),
            (
                "a no-show let in by the operator's decision",
                as_op,
                input(&active, Some(&no_show)),
                Some(V::NoShowReleased),
                in_slot,
                here,
                "APPLIED",
            ),
            (
                "reserved at another venue",
                as_op,
                input(&active, Some(&live)),
                None,
                in_slot,
                elsewhere,
                "WRONG_VENUE",
            ),
            (
                "ticket cancelled",
                as_op,
                input(&cancelled_ticket, Some(&live)),
                None,
                in_slot,
                here,
                "TICKET_CANCELLED",
            ),
            (
                "no reservation",
                as_op,
                input(&unreserved, None),
                None,
                in_slot,
                here,
                "NOT_RESERVED",
            ),
            (
                "wrong date",
                as_op,
                input(&active, Some(&live)),
                None,
                utc(3, 10, 0),
                here,
                "WRONG_DATE",
            ),
            (
                "early, admitted by rules",
                as_op,
                input(&active, Some(&live)),
                None,
                early,
                here,
                "OUTSIDE_SLOT_WINDOW",
            ),
            (
                "early, overruled by the operator",
                as_op,
                input(&active, Some(&live)),
                Some(V::OutsideSlotWindow),
                early,
                here,
                "APPLIED",
            ),
            (
                "not synced on the gate, in slot on the server",
                as_op,
                input(&active, Some(&live)),
                Some(V::AuthenticNotSynced),
                in_slot,
                here,
                "APPLIED",
            ),
            // A red verdict is nobody's to overrule, whatever the device says.
            (
                "cancelled, 'overruled'",
                as_op,
                input(&active, Some(&gone)),
                Some(V::ReservationCancelled),
                in_slot,
                here,
                "RESERVATION_CANCELLED",
            ),
            // Used at another venue: that venue's admission stands, whatever
            // this gate's clock says (no earliest-wins swap across venues).
            (
                "verified at another venue, backdated",
                as_op,
                input(&used, Some(&verified)),
                None,
                in_slot,
                elsewhere,
                "WRONG_VENUE",
            ),
            (
                "other venue, 'overruled' amber",
                as_op,
                input(&active, Some(&live)),
                Some(V::AuthenticNotSynced),
                in_slot,
                elsewhere,
                "WRONG_VENUE",
            ),
            (
                "unknown ticket",
                as_op,
                VerdictInput::default(),
                None,
                in_slot,
                here,
                "NOT_FOUND",
            ),
            (
                "no operator",
                Actor {
                    claimed: None,
                    found: None,
                },
                input(&active, Some(&live)),
                None,
                in_slot,
                here,
                "OPERATOR_REQUIRED",
            ),
            (
                "unknown operator",
                Actor {
                    claimed: Some(OperatorId(99)),
                    found: None,
                },
                input(&active, Some(&live)),
                None,
                in_slot,
                here,
                "UNKNOWN_OPERATOR",
            ),
            (
                "operator found under another id",
                Actor {
                    claimed: Some(OperatorId(6)),
                    found: Some(&gate_op),
                },
                input(&active, Some(&live)),
                None,
                in_slot,
                here,
                "UNKNOWN_OPERATOR",
            ),
        ];
        for (name, actor, rows, overruled, at, venue_id, expected) in cases {
            let upload = UploadedAdmission {
                actor,
                rows,
                overruled,
                leased: 0,
                lease_slot: None,
            };
            let outcome = judge_admission(&upload, at, venue_id);
            let code = match &outcome {
                O::Applied { .. } => "APPLIED",
                O::DoubleEntry { .. } => "DOUBLE_ENTRY",
                O::Conflict(v) => v.verdict.code(),
                O::Rejected(r) => r.code(),
            };
            assert_eq!(code, expected, "{name}: {outcome:?}");
        }
        // The mark kept is the device's amber one, never a red one.
        let upload = UploadedAdmission {
            actor: as_op,
            rows: input(&active, Some(&live)),
            overruled: Some(V::ReservationCancelled),
            leased: 0,
            lease_slot: None,
        };
        assert_eq!(
            judge_admission(&upload, in_slot, here),
            O::Applied {
                overruled: None,
                place: None
            }
        );
    }

    /// A released no-show let in late by the operator takes a place back:
    /// the device's lease of the slot when the gate says it took a leased
    /// place of that slot (`lease_slot_id`), else a free place, else a
    /// NO_PLACE_LEFT conflict (the slot never goes over capacity). Without
    /// the mark the gate used a free place of its replica and counted the
    /// admission in neither its lease nor its refresh: a leased place taken
    /// here would be one a walk-up the gate booked later needs.
    ///
    /// | device's lease | marked slot  | slot booked/capacity | outcome                     |
    /// |----------------|--------------|----------------------|-----------------------------|
    /// | 1              | this one     | 45/45 (full)         | Applied, place from Lease   |
    /// | 1              | none         | 45/45                | Conflict NO_PLACE_LEFT      |
    /// | 1              | another slot | 45/45                | Conflict NO_PLACE_LEFT      |
    /// | 1              | none         | 44/45                | Applied, place Free         |
    /// | 0              | none         | 44/45                | Applied, place Free         |
    /// | 0              | this one     | 45/45                | Conflict NO_PLACE_LEFT      |
    /// | 0              | none         | 45/45                | Conflict NO_PLACE_LEFT      |
    /// | 0, no decision | none         | 44/45                | Applied, place Free         |
    /// | 0, no decision | none         | 45/45                | Conflict NO_PLACE_LEFT      |
    /// | 1, no decision | none         | 45/45                | Conflict NO_PLACE_LEFT      |
    ///
    /// "No decision": a gate that had not heard of the release showed ADMIT
    /// (no `overruled`); it is judged like the operator's decision.
    #[test]
    fn a_late_no_show_takes_a_place_back_or_is_a_conflict() {
        use AdmissionOutcome as O;
        use VerdictCode as V;
        let venue = Venue {
            id: VenueId(1),
            orq: Orq(1),
            name: "Prado".into(),
            timezone: chrono_tz::UTC,
            gate: Default::default(),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        let gate_op = operator(5, Role::Operator);
        let active = ticket(A::Active, S::Reserved);
        let mut no_show = reservation(R::Cancelled);
        no_show.no_show_at = Some(utc(1, 9, 30));
        let as_op = Actor {
            claimed: Some(OperatorId(5)),
            found: Some(&gate_op),
        };
        let this = Some(SlotId(uuid::Uuid::nil()));
        let other = Some(SlotId(uuid::Uuid::from_u128(7)));
        let released = Some(V::NoShowReleased);
        // (device's lease, marked slot, booked of 45, overruled) → outcome, place taken
        type Case<'a> = (
            i64,
            Option<SlotId>,
            i64,
            Option<V>,
            &'a str,
            Option<PlaceBack>,
        );
        let cases: &[Case] = &[
            (1, this, 45, released, "APPLIED", Some(PlaceBack::Lease)),
            (1, None, 45, released, "NO_PLACE_LEFT", None),
            (1, other, 45, released, "NO_PLACE_LEFT", None),
            (1, None, 44, released, "APPLIED", Some(PlaceBack::Free)),
            (0, None, 44, released, "APPLIED", Some(PlaceBack::Free)),
            (0, this, 45, released, "NO_PLACE_LEFT", None),
            (0, None, 45, released, "NO_PLACE_LEFT", None),
            (0, None, 44, None, "APPLIED", Some(PlaceBack::Free)),
            (0, None, 45, None, "NO_PLACE_LEFT", None),
            (1, None, 45, None, "NO_PLACE_LEFT", None),
        ];
        for (i, (leased, lease_slot, booked, overruled, want, want_place)) in
            cases.iter().enumerate()
        {
            let mut s = slot(45, *booked, SlotStatus::Active);
            s.total_capacity = 45;
            let upload = UploadedAdmission {
                actor: as_op,
                rows: VerdictInput {
                    ticket: Some(&active),
                    reservation: Some(&no_show),
                    slot: Some(&s),
                    venue: Some(&venue),
                },
                overruled: *overruled,
                leased: *leased,
                lease_slot: *lease_slot,
            };
            let (code, place) = match judge_admission(&upload, utc(1, 10, 0), VenueId(1)) {
                O::Applied { place, .. } => ("APPLIED", place),
                O::Conflict(v) => (v.verdict.code(), None),
                other => panic!("case {i}: {other:?}"),
            };
            assert_eq!((code, place), (*want, *want_place), "case {i}");
        }
    }

    #[test]
    fn slot_change_table() {
        let sup = operator(2, Role::Supervisor);
        let admin = operator(3, Role::Admin);
        let op = operator(5, Role::Operator);
        let s = slot(200, 45, SlotStatus::Active); // venue 1
        fn actor(id: i64, found: Option<&Operator>) -> Actor<'_> {
            Actor {
                claimed: Some(OperatorId(id)),
                found,
            }
        }
        // (name, actor, slot, device venue) → Ok or rejection code
        let cases: Vec<(&str, Actor, Option<&Slot>, i64, &str)> = vec![
            ("supervisor here", actor(2, Some(&sup)), Some(&s), 1, "OK"),
            ("admin here", actor(3, Some(&admin)), Some(&s), 1, "OK"),
            (
                "operator",
                actor(5, Some(&op)),
                Some(&s),
                1,
                "OPERATOR_NOT_ALLOWED",
            ),
            (
                "unknown operator",
                actor(42, None),
                Some(&s),
                1,
                "UNKNOWN_OPERATOR",
            ),
            (
                "nobody",
                Actor {
                    claimed: None,
                    found: None,
                },
                Some(&s),
                1,
                "OPERATOR_REQUIRED",
            ),
            (
                "slot of another venue",
                actor(2, Some(&sup)),
                Some(&s),
                2,
                "WRONG_VENUE",
            ),
            ("no such slot", actor(2, Some(&sup)), None, 1, "NOT_FOUND"),
        ];
        for (name, actor, slot, venue, expected) in cases {
            let got = judge_slot_change(actor, slot, VenueId(venue));
            assert_eq!(
                got.as_ref().map_or_else(Rejection::code, |()| "OK"),
                expected,
                "{name}: {got:?}"
            );
        }
    }

    #[test]
    fn an_operator_named_where_none_is_needed_must_still_exist() {
        let op = operator(5, Role::Operator);
        assert_eq!(
            Actor {
                claimed: None,
                found: None
            }
            .check_optional(),
            Ok(())
        );
        assert_eq!(
            Actor {
                claimed: Some(OperatorId(5)),
                found: Some(&op)
            }
            .check_optional(),
            Ok(())
        );
        assert_eq!(
            Actor {
                claimed: Some(OperatorId(7)),
                found: None
            }
            .check_optional(),
            Err(Rejection::UnknownOperator(OperatorId(7)))
        );
    }
}
