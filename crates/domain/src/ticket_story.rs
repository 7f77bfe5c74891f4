//! A ticket's story for the console (issue 16): what happened to it, in time
//! order, from the facts the server keeps. Pure: the store loads the facts,
//! this orders and names them.
//!
//! What the data does not hold (so the story cannot tell it): a reservation's
//! earlier slots (a reschedule updates the row in place: only "changed at" is
//! known), who cancelled a ticket or a reservation and when exactly (a
//! cancelled ticket's `updated_at` is used), and gate scans that refused the
//! ticket (only admissions are uploaded).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{Reservation, ReservationStatus, Ticket, TicketStatus};

/// One admission the server received (its `verifications` row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub device_id: Option<i64>,
    pub operator_id: Option<i64>,
    pub verified_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// The server would have refused it (the verdict code), or overruled it.
    pub refused: Option<String>,
    pub overruled: Option<String>,
}

/// One conflict about the ticket (`sync_conflicts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictFact {
    pub kind: String,
    pub first_device_id: Option<i64>,
    pub second_device_id: Option<i64>,
    pub second_operator_id: Option<i64>,
    pub second_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StoryKind {
    Created,
    Activated,
    Reserved,
    /// The reservation changed after it was made (slot or contact; which is
    /// not recorded).
    ReservationChanged,
    ReservationCancelled,
    NoShowReleased,
    Verified,
    Conflict,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoryEvent {
    pub at: DateTime<Utc>,
    pub kind: StoryKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot_id: Option<String>,
    /// A refusal or conflict reason, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl StoryEvent {
    fn at(at: DateTime<Utc>, kind: StoryKind) -> Self {
        Self {
            at,
            kind,
            device_id: None,
            operator_id: None,
            slot_id: None,
            detail: None,
        }
    }
}

/// The story, oldest first (ties keep the order a life runs in).
pub fn story(
    ticket: &Ticket,
    reservation: Option<&Reservation>,
    admissions: &[Admission],
    conflicts: &[ConflictFact],
) -> Vec<StoryEvent> {
    let mut out = vec![StoryEvent::at(ticket.created_at, StoryKind::Created)];
    if let Some(at) = ticket.activated_at {
        out.push(StoryEvent::at(at, StoryKind::Activated));
    }
    if let Some(r) = reservation {
        let slot = Some(r.slot_id.to_string());
        out.push(StoryEvent {
            slot_id: slot.clone(),
            ..StoryEvent::at(r.reserved_at, StoryKind::Reserved)
        });
        match (r.status, r.no_show_at) {
            (ReservationStatus::Cancelled, Some(at)) => out.push(StoryEvent {
                slot_id: slot,
                ..StoryEvent::at(at, StoryKind::NoShowReleased)
            }),
            (ReservationStatus::Cancelled, None) => out.push(StoryEvent {
                slot_id: slot,
                ..StoryEvent::at(r.updated_at, StoryKind::ReservationCancelled)
            }),
            (ReservationStatus::Reserved, _) if r.updated_at > r.reserved_at => {
                out.push(StoryEvent {
                    slot_id: slot,
                    ..StoryEvent::at(r.updated_at, StoryKind::ReservationChanged)
                })
            }
            _ => {}
        }
    }
    for a in admissions {
        out.push(StoryEvent {
            device_id: a.device_id,
            operator_id: a.operator_id,
            detail: a.refused.clone().or_else(|| a.overruled.clone()),
            ..StoryEvent::at(a.verified_at, StoryKind::Verified)
        });
    }
    // A server-side admission (no device) is only on the ticket.
    if let (Some(at), true) = (ticket.verified_at, admissions.is_empty()) {
        out.push(StoryEvent {
            operator_id: ticket.verified_by.map(|o| o.0),
            ..StoryEvent::at(at, StoryKind::Verified)
        });
    }
    for c in conflicts {
        out.push(StoryEvent {
            device_id: c.second_device_id,
            operator_id: c.second_operator_id,
            detail: Some(c.kind.clone()),
            ..StoryEvent::at(c.second_at, StoryKind::Conflict)
        });
    }
    if ticket.status == TicketStatus::Cancelled {
        out.push(StoryEvent::at(ticket.updated_at, StoryKind::Cancelled));
    }
    out.sort_by_key(|e| e.at); // stable: equal times keep the order above
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ActivationStatus, OperatorId, Orq, ReservationId, SlotId};
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 12, 1, 9, 0, 0).unwrap() + chrono::Duration::minutes(min)
    }

    fn ticket() -> Ticket {
        let mut x = crate::ticket::tests::ticket(ActivationStatus::Active, TicketStatus::Activated);
        (x.created_at, x.updated_at, x.activated_at) = (t(0), t(0), Some(t(0)));
        x
    }

    fn reservation(status: ReservationStatus, updated: i64) -> Reservation {
        Reservation {
            id: ReservationId(uuid::Uuid::from_u128(7)),
            ticket_id: ticket().ticket_code,
            slot_id: SlotId(uuid::Uuid::from_u128(8)),
            customer_email: "a@example.com".into(),
            customer_phone: "+34600000000".into(),
            reserved_at: t(5),
            status,
            orq: Orq(1),
            created_at: t(5),
            updated_at: t(updated),
            no_show_at: None,
        }
    }

    /// (name, ticket, reservation, admissions, conflicts, expected kinds)
    type Case = (
        &'static str,
        Ticket,
        Option<Reservation>,
        Vec<Admission>,
        Vec<ConflictFact>,
        Vec<StoryKind>,
    );

    fn kinds(events: &[StoryEvent]) -> Vec<StoryKind> {
        events.iter().map(|e| e.kind).collect()
    }

    /// (ticket, reservation, admissions, conflicts) → the kinds in order.
    #[test]
    fn story_case_table() {
        use StoryKind as K;
        let gate = Admission {
            device_id: Some(3),
            operator_id: Some(7),
            verified_at: t(60),
            received_at: t(61),
            refused: None,
            overruled: None,
        };
        let mut used = ticket();
        (used.verified_at, used.verified_by) = (Some(t(60)), Some(OperatorId(7)));
        let mut cancelled = ticket();
        cancelled.status = TicketStatus::Cancelled;
        cancelled.updated_at = t(30);
        let mut no_show = reservation(ReservationStatus::Cancelled, 90);
        no_show.no_show_at = Some(t(90));
        let double = ConflictFact {
            kind: "DOUBLE_ENTRY".into(),
            first_device_id: Some(3),
            second_device_id: Some(4),
            second_operator_id: Some(8),
            second_at: t(62),
        };
        let cases: Vec<Case> = vec![
            (
                "issued only",
                ticket(),
                None,
                vec![],
                vec![],
                vec![K::Created, K::Activated],
            ),
            (
                "reserved",
                ticket(),
                Some(reservation(ReservationStatus::Reserved, 5)),
                vec![],
                vec![],
                vec![K::Created, K::Activated, K::Reserved],
            ),
            (
                "rescheduled",
                ticket(),
                Some(reservation(ReservationStatus::Reserved, 20)),
                vec![],
                vec![],
                vec![K::Created, K::Activated, K::Reserved, K::ReservationChanged],
            ),
            (
                "refunded",
                cancelled,
                Some(reservation(ReservationStatus::Cancelled, 30)),
                vec![],
                vec![],
                vec![
                    K::Created,
                    K::Activated,
                    K::Reserved,
                    K::ReservationCancelled,
                    K::Cancelled,
                ],
            ),
            (
                "no-show",
                ticket(),
                Some(no_show),
                vec![],
                vec![],
                vec![K::Created, K::Activated, K::Reserved, K::NoShowReleased],
            ),
            (
                "admitted at a gate, then twice",
                used.clone(),
                Some(reservation(ReservationStatus::Verified, 60)),
                vec![gate.clone()],
                vec![double],
                vec![
                    K::Created,
                    K::Activated,
                    K::Reserved,
                    K::Verified,
                    K::Conflict,
                ],
            ),
            (
                "admitted by the server (no device row)",
                used,
                None,
                vec![],
                vec![],
                vec![K::Created, K::Activated, K::Verified],
            ),
        ];
        for (name, ticket, r, a, c, expected) in cases {
            assert_eq!(
                kinds(&story(&ticket, r.as_ref(), &a, &c)),
                expected,
                "{name}"
            );
        }
        // Where and by whom.
        let mut used = ticket();
        used.verified_at = Some(t(60));
        let got = story(&used, None, &[gate], &[]);
        let v = got.iter().find(|e| e.kind == K::Verified).unwrap();
        assert_eq!(
            (v.device_id, v.operator_id, v.at),
            (Some(3), Some(7), t(60))
        );
    }
}
