//! The gate verdict: may this person enter now, at this gate? One pure
//! function, used by the kiosk offline and by the server's validate endpoint.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    slot::hms, venue::GateSettings, ActivationStatus, OperatorId, Reservation, ReservationId,
    ReservationStatus, Slot, SlotId, Ticket, TicketStatus, Venue, VenueId,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VerdictCode {
    Admit,
    UnknownTicket,
    TicketCancelled,
    AlreadyVerified,
    Expired,
    NotActivated,
    NotReserved,
    ReservationCancelled,
    WrongVenue,
    WrongDate,
    OutsideSlotWindow,
    /// Only for "may this ticket reserve?": it holds a reservation already.
    AlreadyReserved,
    /// The scanned text is no ticket code at all.
    Unreadable,
    /// A signed code whose signature, key or organisation does not check out.
    Forged,
    /// A signed code replaced by a re-issued one, or the plain code of a
    /// ticket whose code was re-issued.
    Revoked,
    /// The org accepts signed codes only: a plain code is refused.
    SignedCodeRequired,
    /// A validly signed code for a ticket this replica has not synced yet:
    /// authentic, but the reservation cannot be checked — the operator decides.
    AuthenticNotSynced,
    /// An exit scan of a holder inside: recorded, they are out now.
    Exit,
    /// An exit scan of a ticket that is not inside (never entered, or left).
    NotInside,
    /// The holder left and the venue does not allow re-entry.
    ReentryNotAllowed,
    /// A walk-up found no place: no slot open for entry now with a free
    /// (online) or leased (offline) place.
    NoPlaceLeft,
    /// The reservation was released as a no-show (`no_show_release_minutes`
    /// after its slot started) and its place given back: the holder came
    /// late — the operator decides (amber).
    NoShowReleased,
}

impl VerdictCode {
    /// The code back from its text (`"WRONG_DATE"` → `WrongDate`).
    pub fn parse(code: &str) -> Option<Self> {
        // Through the derived Deserialize: every variant, by construction.
        serde_json::from_value(serde_json::Value::String(code.to_string())).ok()
    }

    /// Refusals the operator may overrule after a look (amber at the gate):
    /// an authentic code not synced yet, a holder early or late for the slot.
    pub fn needs_operator_decision(self) -> bool {
        matches!(
            self,
            Self::AuthenticNotSynced | Self::OutsideSlotWindow | Self::NoShowReleased
        )
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Admit => "ADMIT",
            Self::UnknownTicket => "UNKNOWN_TICKET",
            Self::TicketCancelled => "TICKET_CANCELLED",
            Self::AlreadyVerified => "ALREADY_VERIFIED",
            Self::Expired => "EXPIRED",
            Self::NotActivated => "NOT_ACTIVATED",
            Self::NotReserved => "NOT_RESERVED",
            Self::ReservationCancelled => "RESERVATION_CANCELLED",
            Self::WrongVenue => "WRONG_VENUE",
            Self::WrongDate => "WRONG_DATE",
            Self::OutsideSlotWindow => "OUTSIDE_SLOT_WINDOW",
            Self::AlreadyReserved => "ALREADY_RESERVED",
            Self::Unreadable => "UNREADABLE",
            Self::Forged => "FORGED",
            Self::Revoked => "REVOKED",
            Self::SignedCodeRequired => "SIGNED_CODE_REQUIRED",
            Self::AuthenticNotSynced => "AUTHENTIC_NOT_SYNCED",
            Self::Exit => "EXIT",
            Self::NotInside => "NOT_INSIDE",
            Self::ReentryNotAllowed => "REENTRY_NOT_ALLOWED",
            Self::NoPlaceLeft => "NO_PLACE_LEFT",
            Self::NoShowReleased => "NO_SHOW_RELEASED",
        }
    }
}

/// Where the scan happens and how strict the slot window is. The grace is
/// the venue's ([`GateSettings::gate`]): [`gate_verdict`] takes it from the
/// reserved slot's venue row, so a caller only says where it stands; the
/// grace given here counts only when the venue row is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// `None` checks no venue (e.g. an org-wide operator at the server).
    pub venue_id: Option<VenueId>,
    /// How long before the slot starts a holder may enter.
    pub early_grace: Duration,
    /// How long after the slot ends a holder may still enter.
    pub late_grace: Duration,
}

impl Default for Gate {
    fn default() -> Self {
        GateSettings::default().gate(None)
    }
}

impl Gate {
    /// Whether a caller standing here is told which gate admitted a ticket
    /// of `venue` (a verdict's `venue_id`): an org-wide caller (no venue)
    /// always, a venue-bound one only for its own venue's tickets (an
    /// unknown venue: no). ALREADY_VERIFIED is decided before WRONG_VENUE,
    /// so without this a caller bound to venue Y would read venue X's gate
    /// names.
    pub fn sees_gates_of(&self, venue: Option<VenueId>) -> bool {
        self.venue_id.is_none() || (venue.is_some() && venue == self.venue_id)
    }
}

/// What the verdict is computed from; `None` where the replica has no row.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerdictInput<'a> {
    pub ticket: Option<&'a Ticket>,
    pub reservation: Option<&'a Reservation>,
    pub slot: Option<&'a Slot>,
    /// The venue of the reserved slot.
    pub venue: Option<&'a Venue>,
}

/// ADMIT or a refusal, with the facts a gate operator needs to explain it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Verdict {
    pub admit: bool,
    pub verdict: VerdictCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<ReservationId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot_id: Option<SlotId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot_date: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_hms", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub slot_start_time: Option<NaiveTime>,
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_hms", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub slot_end_time: Option<NaiveTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub venue_id: Option<VenueId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub venue_name: Option<String>,
    /// Today's date in the venue's time zone, when a slot was checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub venue_today: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_by: Option<OperatorId>,
    /// The gate that admitted it, when known (ALREADY_VERIFIED): the device
    /// whose upload the server recorded (its token's name), on the server
    /// and on a gate that pulled the row; on a gate also its own admission
    /// or one a peer sent over the LAN; see
    /// [`crate::sync::lan::admitting_gate`].
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub verified_gate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// The amber verdict an operator overruled to let the holder in.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub overruled: Option<VerdictCode>,
    /// An ADMIT of a holder coming back in after leaving (`reentry_allowed`).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub reentry: bool,
    /// When the holder last left the venue (exit, re-entry refusals).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub left_at: Option<DateTime<Utc>>,
}

mod opt_hms {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<NaiveTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::hms::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveTime>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|raw| crate::slot::parse_time("time", &raw).map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl Verdict {
    /// A refusal with no facts yet (the caller adds what it knows).
    pub fn refusal(code: VerdictCode, message: impl Into<String>) -> Self {
        Self::refuse(code, message)
    }

    fn refuse(code: VerdictCode, message: impl Into<String>) -> Self {
        Self {
            admit: matches!(code, VerdictCode::Admit | VerdictCode::Exit),
            verdict: code,
            message: message.into(),
            ticket_code: None,
            reservation_id: None,
            slot_id: None,
            slot_date: None,
            slot_start_time: None,
            slot_end_time: None,
            venue_id: None,
            venue_name: None,
            venue_today: None,
            verified_at: None,
            verified_by: None,
            verified_gate: None,
            expires_at: None,
            overruled: None,
            reentry: false,
            left_at: None,
        }
    }

    /// The operator lets the holder in after an amber verdict (an authentic
    /// code not synced yet, a holder early or late for the slot): it becomes
    /// an admission that keeps what was overruled. Any other verdict is not
    /// the operator's to overrule and comes back unchanged as `Err`.
    pub fn overrule(mut self) -> Result<Verdict, Box<Verdict>> {
        if !self.verdict.needs_operator_decision() {
            return Err(Box::new(self));
        }
        self.message = format!("Let in by the operator: {}", self.message);
        self.overruled = Some(self.verdict);
        self.verdict = VerdictCode::Admit;
        self.admit = true;
        Ok(self)
    }
}

/// An authentic signed code whose ticket this replica does not have yet: the
/// code's own validity window is checked (red EXPIRED / WRONG_DATE), else it
/// is amber — genuine, but the reservation cannot be checked here.
pub fn not_synced_verdict(claims: &super::signed::TicketClaims, now: DateTime<Utc>) -> Verdict {
    let mut v = match (claims.valid_from, claims.valid_until) {
        (_, Some(until)) if now >= until => {
            let mut v = Verdict::refuse(VerdictCode::Expired, "Ticket expired");
            v.expires_at = Some(until);
            v
        }
        (Some(from), _) if now < from => Verdict::refuse(
            VerdictCode::WrongDate,
            format!("Valid from {}", from.format("%Y-%m-%d %H:%M UTC")),
        ),
        _ => {
            let mut v = Verdict::refuse(
                VerdictCode::AuthenticNotSynced,
                "Authentic ticket not yet synced: check by hand",
            );
            v.expires_at = claims.valid_until;
            v
        }
    };
    v.ticket_code = Some(claims.ticket_code.to_string());
    v
}

/// The gate's decision. Checks run in the order that gives the operator the
/// most useful explanation: a used ticket says when and by whom before it
/// says it is also out of its slot. The slot window is read on the venue's
/// clock with the venue's grace (its `GateSettings`), wherever the scan is.
pub fn gate_verdict(input: VerdictInput<'_>, now: DateTime<Utc>, gate: &Gate) -> Verdict {
    use VerdictCode as V;
    let gate = &match input.venue {
        Some(venue) => venue.gate.gate(gate.venue_id),
        None => *gate,
    };
    let Some(ticket) = input.ticket else {
        return Verdict::refuse(V::UnknownTicket, "Unknown ticket");
    };
    let with_ticket = |mut v: Verdict| {
        v.ticket_code = Some(ticket.ticket_code.to_string());
        if let Some(r) = input.reservation {
            v.reservation_id = Some(r.id);
        }
        if let Some(s) = input.slot {
            v.slot_id = Some(s.id);
            v.slot_date = Some(s.date);
            v.slot_start_time = Some(s.start_time);
            v.slot_end_time = Some(s.end_time);
            v.venue_id = Some(s.venue_id);
        }
        if let Some(venue) = input.venue {
            v.venue_name = Some(venue.name.clone());
        }
        v
    };

    if ticket.activation_status == ActivationStatus::Cancelled
        || ticket.status == TicketStatus::Cancelled
    {
        return with_ticket(Verdict::refuse(V::TicketCancelled, "Ticket cancelled"));
    }
    let verified_reservation = input
        .reservation
        .is_some_and(|r| r.status == ReservationStatus::Verified);
    if ticket.verified_at.is_some()
        || ticket.activation_status == ActivationStatus::Redeemed
        || verified_reservation
    {
        let mut v = with_ticket(Verdict::refuse(V::AlreadyVerified, "Already verified"));
        v.verified_at = ticket.verified_at;
        v.verified_by = ticket.verified_by;
        return v;
    }
    if ticket.is_expired(now) {
        let mut v = with_ticket(Verdict::refuse(V::Expired, "Ticket expired"));
        v.expires_at = ticket.expires_at;
        return v;
    }
    if ticket.activation_status != ActivationStatus::Active {
        return with_ticket(Verdict::refuse(V::NotActivated, "Ticket not activated"));
    }
    let (Some(reservation), Some(slot)) = (input.reservation, input.slot) else {
        return with_ticket(Verdict::refuse(
            V::NotReserved,
            "No reservation for this ticket",
        ));
    };
    // A no-show's reservation is cancelled too, but the holder may still be
    // let in by the operator: see the window check below.
    if reservation.status == ReservationStatus::Cancelled && reservation.no_show_at.is_none() {
        return with_ticket(Verdict::refuse(
            V::ReservationCancelled,
            "Reservation cancelled",
        ));
    }
    if gate
        .venue_id
        .is_some_and(|gate_venue| gate_venue != slot.venue_id)
    {
        return with_ticket(Verdict::refuse(V::WrongVenue, "Reserved for another venue"));
    }

    let local_now = match input.venue {
        Some(venue) => now.with_timezone(&venue.timezone).naive_local(),
        None => now.naive_utc(),
    };
    let at = |t: NaiveTime| NaiveDateTime::new(slot.date, t);
    let opens = at(slot.start_time) - gate.early_grace;
    let closes = at(slot.end_time) + gate.late_grace;
    // The window is checked before the date so that a grace period running
    // past midnight still admits.
    // Released as a no-show at or before this scan (`no_show_at` later than
    // `now` is an upload judged at its event time: the reservation was live
    // then). Within the slot's window it is amber; out of it, the window's
    // own verdict says more.
    let released = reservation
        .no_show_at
        .filter(|at| reservation.status == ReservationStatus::Cancelled && *at <= now);
    let verdict = if (opens..=closes).contains(&local_now) {
        match released {
            Some(at) => Verdict::refuse(
                V::NoShowReleased,
                format!(
                    "No-show: reservation released at {}, its place given back; operator decides",
                    at.with_timezone(&input.venue.map_or(chrono_tz::UTC, |v| v.timezone))
                        .format("%H:%M")
                ),
            ),
            None => Verdict::refuse(V::Admit, "Admit"),
        }
    } else if local_now.date() != slot.date {
        Verdict::refuse(V::WrongDate, format!("Reserved for {}", slot.date))
    } else if local_now < opens {
        Verdict::refuse(
            V::OutsideSlotWindow,
            format!(
                "Too early: slot starts at {}",
                slot.start_time.format("%H:%M")
            ),
        )
    } else {
        Verdict::refuse(
            V::OutsideSlotWindow,
            format!("Too late: slot ended at {}", slot.end_time.format("%H:%M")),
        )
    };
    let mut v = with_ticket(verdict);
    v.venue_today = Some(local_now.date());
    v
}

/// May this ticket make a reservation now? The same answer shape as the
/// gate's, with `admit` meaning "yes, pick a slot"; the rules are the ones
/// `Ticket::check_can_reserve` enforces when the reservation is made.
pub fn reservation_verdict(
    ticket: Option<&Ticket>,
    reservation: Option<&Reservation>,
    now: DateTime<Utc>,
) -> Verdict {
    use super::DomainError as E;
    use VerdictCode as V;
    let Some(ticket) = ticket else {
        return Verdict::refuse(V::UnknownTicket, "Unknown ticket");
    };
    let mut v = match ticket.check_can_reserve(now) {
        Err(E::TicketCancelled) => Verdict::refuse(V::TicketCancelled, "Ticket cancelled"),
        Err(E::TicketRedeemed) => {
            let mut v = Verdict::refuse(V::AlreadyVerified, "Ticket already used");
            v.verified_at = ticket.verified_at;
            v.verified_by = ticket.verified_by;
            v
        }
        Err(E::TicketExpired { .. }) => {
            let mut v = Verdict::refuse(V::Expired, "Ticket expired");
            v.expires_at = ticket.expires_at;
            v
        }
        Err(_) => Verdict::refuse(V::NotActivated, "Activate the ticket first"),
        Ok(()) => match reservation {
            Some(r) if r.status != ReservationStatus::Cancelled => {
                let mut v = Verdict::refuse(V::AlreadyReserved, "Ticket already has a reservation");
                v.reservation_id = Some(r.id);
                v.slot_id = Some(r.slot_id);
                v
            }
            _ => Verdict::refuse(V::Admit, "Ticket can be reserved"),
        },
    };
    v.ticket_code = Some(ticket.ticket_code.to_string());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_not_synced_yet_is_amber_only_inside_its_validity() {
        use VerdictCode as V;
        let at = |h: u32| Utc.with_ymd_and_hms(2025, 12, 1, h, 0, 0).unwrap();
        let claims = |from: Option<u32>, until: Option<u32>| super::super::signed::TicketClaims {
            kid: 1,
            orq: crate::Orq(1),
            ticket_code: TicketCode::parse("TKT-1").unwrap(),
            serial: 0,
            product_id: None,
            valid_from: from.map(at),
            valid_until: until.map(at),
            venue_id: None,
            slot_id: None,
        };
        // (valid from, valid until, now) → verdict
        let cases = [
            (None, None, 12, V::AuthenticNotSynced),
            (Some(9), Some(18), 12, V::AuthenticNotSynced),
            (Some(9), Some(18), 18, V::Expired),
            (Some(9), Some(18), 19, V::Expired),
            (None, Some(10), 12, V::Expired),
            (Some(13), None, 12, V::WrongDate),
        ];
        for (from, until, now, expected) in cases {
            let v = not_synced_verdict(&claims(from, until), at(now));
            assert_eq!(v.verdict, expected, "{from:?}..{until:?} at {now}");
            assert_eq!(v.ticket_code.as_deref(), Some("TKT-1"));
            assert_eq!(
                v.verdict.needs_operator_decision(),
                expected == V::AuthenticNotSynced
            );
        }
    }

    #[test]
    fn verdict_codes_parse_back_from_the_text_they_travel_as() {
        use VerdictCode as V;
        for c in [
            V::Admit,
            V::WrongDate,
            V::OutsideSlotWindow,
            V::AuthenticNotSynced,
        ] {
            assert_eq!(V::parse(c.code()), Some(c));
            // `code()` and the serialized form are one spelling.
            assert_eq!(serde_json::to_value(c).unwrap(), c.code());
        }
        assert_eq!(V::parse("admit"), None);
        assert_eq!(V::parse(""), None);
    }

    #[test]
    fn only_amber_verdicts_can_be_overruled() {
        use VerdictCode as V;
        // (verdict, overrulable)
        let cases = [
            (V::AuthenticNotSynced, true),
            (V::OutsideSlotWindow, true),
            (V::NoShowReleased, true),
            (V::ReservationCancelled, false),
            (V::Admit, false),
            (V::AlreadyVerified, false),
            (V::WrongDate, false),
            (V::WrongVenue, false),
            (V::Forged, false),
            (V::Revoked, false),
            (V::UnknownTicket, false),
            (V::NotActivated, false),
            (V::TicketCancelled, false),
            (V::Expired, false),
        ];
        for (code, overrulable) in cases {
            let before = Verdict::refusal(code, "why");
            match before.clone().overrule() {
                Ok(after) => {
                    assert!(overrulable, "{code:?} must not be overruled");
                    assert!(after.admit);
                    assert_eq!(after.verdict, V::Admit);
                    assert_eq!(after.overruled, Some(code));
                    assert_eq!(after.message, "Let in by the operator: why");
                }
                Err(unchanged) => {
                    assert!(!overrulable, "{code:?} is the operator's call");
                    assert_eq!(*unchanged, before);
                }
            }
        }
    }
    use crate::{slot::tests::slot, ticket::tests::ticket, Orq, SlotStatus, TicketCode};
    use chrono::TimeZone;
    use chrono_tz::Tz;

    fn venue(tz: Tz) -> Venue {
        Venue {
            id: VenueId(1),
            orq: Orq(1),
            name: "Prado".into(),
            timezone: tz,
            gate: Default::default(),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    fn reservation(status: ReservationStatus) -> Reservation {
        Reservation {
            id: ReservationId(uuid::Uuid::nil()),
            ticket_id: TicketCode::parse("TKT-2025-ABC123").unwrap(),
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

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    /// The slot from `slot()` is 2025-12-01 09:00–12:00 at venue 1.
    #[test]
    fn verdict_table() {
        use ActivationStatus as A;
        use ReservationStatus as R;
        use TicketStatus as S;
        use VerdictCode as V;
        let madrid = venue(chrono_tz::Europe::Madrid); // UTC+1 in December
        let active = ticket(A::Active, S::Reserved);
        let mut verified = ticket(A::Redeemed, S::Verified);
        verified.verified_at = Some(utc(2025, 12, 1, 8, 5));
        verified.verified_by = Some(OperatorId(5));
        let mut expired = ticket(A::Active, S::Reserved);
        expired.expires_at = Some(utc(2025, 11, 30, 0, 0));
        let s = slot(200, 45, SlotStatus::Active);
        let live = reservation(R::Reserved);
        let gate = Gate {
            venue_id: Some(VenueId(1)),
            ..Gate::default()
        };
        let elsewhere = Gate {
            venue_id: Some(VenueId(2)),
            ..Gate::default()
        };
        let ok_time = utc(2025, 12, 1, 9, 0); // 10:00 in Madrid
        let cancelled_ticket = ticket(A::Cancelled, S::Activated);
        let verified_res = reservation(R::Verified);
        let inactive = ticket(A::Inactive, S::Minted);
        let unreserved = ticket(A::Active, S::Activated);
        let cancelled_res = reservation(R::Cancelled);
        // Released as a no-show at 09:20 Madrid (08:20 UTC).
        let mut no_show = reservation(R::Cancelled);
        no_show.no_show_at = Some(utc(2025, 12, 1, 8, 20));
        let server = Gate::default();

        let cases: Vec<(&str, VerdictInput, DateTime<Utc>, &Gate, VerdictCode)> = vec![
            (
                "admit",
                VerdictInput {
                    ticket: Some(&active),
                    reservation: Some(&live),
                    slot: Some(&s),
                    venue: Some(&madrid),
                },
                ok_time,
                &gate,
                V::Admit,
            ),
            (
                "unknown",
                VerdictInput::default(),
                ok_time,
                &gate,
                V::UnknownTicket,
            ),
            (
                "cancelled ticket",
                VerdictInput {
                    ticket: Some(&cancelled_ticket),
                    reservation: Some(&live),
                    slot: Some(&s),
                    venue: Some(&madrid),
                },
                ok_time,
                &gate,
                V::TicketCancelled,
            ),
            (
                "already verified",
                VerdictInput {
                    ticket: Some(&verified),
                    reservation: Some(&verified_res),
                    slot: Some(&s),
                    venue: Some(&madrid),
                },
                ok_time,
                &gate,
                V::AlreadyVerified,
            ),
            (
                "expired",
                VerdictInput {
                    ticket: Some(&expired),
                    reservation: Some(&live),
                    slot: Some(&s),
                    venue: Some(&madrid),
                },
                ok_time,
                &gate,
                V::Expired,
            ),
            (
                "not activated",
                VerdictInput {
                    ticket: Some(&inactive),
                    ..Default::default()
                },
                ok_time,
                &gate,
                V::NotActivated,
            ),
            (
                "not reserved",
                VerdictInput {
                    ticket: Some(&unreserved),
                    ..Default::default()
                },
                ok_time,
                &gate,
                V::NotReserved,
            ),
            (
                "reservation cancelled",
                VerdictInput {
                    ticket: Some(&active),
                    reservation: Some(&cancelled_res),
                    slot: Some(&s),
                    venue: Some(&madrid),
                },
                ok_time,
                &gate,
                V::ReservationCancelled,
            ),
            (
                "wrong venue",
                VerdictInput {
                    ticket: Some(&active),
                    reservation: Some(&live),
                    slot: Some(&s),
                    venue: Some(&madrid),
                },
                ok_time,
                &elsewhere,
                V::WrongVenue,
            ),
            (
                "no venue check at server",
                VerdictInput {
                    ticket: Some(&active),
                    reservation: Some(&live),
                    slot: Some(&s),
                    venue: Some(&madrid),
                },
                ok_time,
                &server,
                V::Admit,
            ),
            (
                "wrong date (day before)",
                VerdictInput {
                    ticket: Some(&active),
                    reservation: Some(&live),
                    slot: Some(&s),
                    venue: Some(&madrid),
                },
                utc(2025, 11, 30, 9, 0),
                &gate,
                V::WrongDate,
            ),
            (
                "too early",
                VerdictInput {
                    ticket: Some(&active),
                    reservation: Some(&live),
                    slot: Some(&s),
                    venue: Some(&madrid),
                },
                utc(2025, 12, 1, 7, 29),
                &gate,
                V::OutsideSlotWindow,
            ),
            (
                "early grace edge 08:30 local",
                VerdictInput {
                    ticket: Some(&active),
                    reservation: Some(&live),
                    slot: Some(&s),
                    venue: Some(&madrid),
                },
                utc(2025, 12, 1, 7, 30),
                &gate,
                V::Admit,
            ),
            (
                "late grace edge 12:30 local",
                VerdictInput {
                    ticket: Some(&active),
                    reservation: Some(&live),
                    slot: Some(&s),
                    venue: Some(&madrid),
                },
                utc(2025, 12, 1, 11, 30),
                &gate,
                V::Admit,
            ),
            (
                "too late",
                VerdictInput {
                    ticket: Some(&active),
                    reservation: Some(&live),
                    slot: Some(&s),
                    venue: Some(&madrid),
                },
                utc(2025, 12, 1, 11, 31),
                &gate,
                V::OutsideSlotWindow,
            ),
            (
                "no-show arriving after the release: amber",
                VerdictInput {
                    ticket: Some(&active),
                    reservation: Some(&no_show),
                    slot: Some(&s),
                    venue: Some(&madrid),
                },
                ok_time,
                &gate,
                V::NoShowReleased,
            ),
            (
                "no-show at the release instant: amber",
                VerdictInput {
                    ticket: Some(&active),
                    reservation: Some(&no_show),
                    slot: Some(&s),
                    venue: Some(&madrid),
                },
                utc(2025, 12, 1, 8, 20),
                &gate,
                V::NoShowReleased,
            ),
            (
                "scanned before the release (an upload judged at its time): live then",
                VerdictInput {
                    ticket: Some(&active),
                    reservation: Some(&no_show),
                    slot: Some(&s),
                    venue: Some(&madrid),
                },
                utc(2025, 12, 1, 8, 19),
                &gate,
                V::Admit,
            ),
            (
                "no-show at another venue's gate: red",
                VerdictInput {
                    ticket: Some(&active),
                    reservation: Some(&no_show),
                    slot: Some(&s),
                    venue: Some(&madrid),
                },
                ok_time,
                &elsewhere,
                V::WrongVenue,
            ),
            (
                "no-show the next day: red",
                VerdictInput {
                    ticket: Some(&active),
                    reservation: Some(&no_show),
                    slot: Some(&s),
                    venue: Some(&madrid),
                },
                utc(2025, 12, 2, 9, 0),
                &gate,
                V::WrongDate,
            ),
        ];
        for (name, input, now, gate, expected) in cases {
            let v = gate_verdict(input, now, gate);
            assert_eq!(v.verdict, expected, "{name}: {v:?}");
            assert_eq!(v.admit, expected == V::Admit, "{name}");
        }
    }

    #[test]
    fn refusals_carry_the_facts_the_operator_needs() {
        use ActivationStatus as A;
        let madrid = venue(chrono_tz::Europe::Madrid);
        let s = slot(200, 45, SlotStatus::Active);
        let mut verified = ticket(A::Redeemed, TicketStatus::Verified);
        verified.verified_at = Some(utc(2025, 12, 1, 8, 5));
        verified.verified_by = Some(OperatorId(5));
        let live = reservation(ReservationStatus::Verified);
        let input = VerdictInput {
            ticket: Some(&verified),
            reservation: Some(&live),
            slot: Some(&s),
            venue: Some(&madrid),
        };
        let v = gate_verdict(input, utc(2025, 12, 1, 9, 0), &Gate::default());
        assert_eq!(
            (v.verified_at, v.verified_by),
            (Some(utc(2025, 12, 1, 8, 5)), Some(OperatorId(5)))
        );
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["verdict"], "ALREADY_VERIFIED");
        assert_eq!(json["admit"], false);
        assert_eq!(json["verified_by"], 5);

        let active = ticket(A::Active, TicketStatus::Reserved);
        let live = reservation(ReservationStatus::Reserved);
        let input = VerdictInput {
            ticket: Some(&active),
            reservation: Some(&live),
            slot: Some(&s),
            venue: Some(&madrid),
        };
        let v = gate_verdict(input, utc(2025, 12, 3, 9, 0), &Gate::default());
        assert_eq!(v.verdict, VerdictCode::WrongDate);
        assert_eq!(v.slot_date, NaiveDate::from_ymd_opt(2025, 12, 1));
        assert_eq!(v.venue_today, NaiveDate::from_ymd_opt(2025, 12, 3));
        assert_eq!(
            serde_json::to_value(&v).unwrap()["slot_start_time"],
            "09:00:00"
        );
    }

    /// Kiritimati is UTC+14: at 20:00 UTC on Nov 30 it is already 10:00 on
    /// Dec 1 there, so a Dec 1 ticket is admitted although UTC says Nov 30.
    /// Pago Pago (UTC−11) is the other way round.
    #[test]
    fn today_is_read_on_the_venue_clock() {
        let active = ticket(ActivationStatus::Active, TicketStatus::Reserved);
        let live = reservation(ReservationStatus::Reserved);
        let s = slot(200, 1, SlotStatus::Active); // 2025-12-01 09:00–12:00 local
        let gate = Gate::default();
        let no_grace = GateSettings::new(0, 0).unwrap();
        let far_east = Venue {
            gate: no_grace,
            ..venue(chrono_tz::Pacific::Kiritimati)
        };
        let far_west = Venue {
            gate: no_grace,
            ..venue(chrono_tz::Pacific::Pago_Pago)
        };
        for (v, now, expected) in [
            (&far_east, utc(2025, 11, 30, 20, 0), VerdictCode::Admit),
            (&far_east, utc(2025, 12, 1, 20, 0), VerdictCode::WrongDate),
            (&far_west, utc(2025, 12, 1, 21, 0), VerdictCode::Admit),
            (&far_west, utc(2025, 12, 1, 10, 0), VerdictCode::WrongDate),
            (
                &far_west,
                utc(2025, 12, 1, 19, 59),
                VerdictCode::OutsideSlotWindow,
            ),
        ] {
            let input = VerdictInput {
                ticket: Some(&active),
                reservation: Some(&live),
                slot: Some(&s),
                venue: Some(v),
            };
            assert_eq!(
                gate_verdict(input, now, &gate).verdict,
                expected,
                "{} at {now}",
                v.timezone
            );
        }
    }

    #[test]
    fn reservation_verdict_table() {
        use ActivationStatus as A;
        use TicketStatus as S;
        use VerdictCode as V;
        let now = utc(2025, 12, 1, 9, 0);
        let mut used = ticket(A::Redeemed, S::Verified);
        used.verified_at = Some(now);
        let mut expired = ticket(A::Active, S::Activated);
        expired.expires_at = Some(now);
        let live = reservation(ReservationStatus::Reserved);
        let gone = reservation(ReservationStatus::Cancelled);
        let active = ticket(A::Active, S::Activated);
        for (name, t, r, expected) in [
            ("unknown", None, None, V::UnknownTicket),
            ("can reserve", Some(&active), None, V::Admit),
            (
                "can reserve again after cancel",
                Some(&active),
                Some(&gone),
                V::Admit,
            ),
            (
                "already reserved",
                Some(&active),
                Some(&live),
                V::AlreadyReserved,
            ),
            (
                "inactive",
                Some(&ticket(A::Inactive, S::Minted)),
                None,
                V::NotActivated,
            ),
            (
                "cancelled",
                Some(&ticket(A::Cancelled, S::Minted)),
                None,
                V::TicketCancelled,
            ),
            ("used", Some(&used), None, V::AlreadyVerified),
            ("expired", Some(&expired), None, V::Expired),
        ] {
            let v = reservation_verdict(t, r, now);
            assert_eq!(
                (v.verdict, v.admit),
                (expected, expected == V::Admit),
                "{name}"
            );
        }
    }

    #[test]
    fn grace_past_midnight_still_admits() {
        let active = ticket(ActivationStatus::Active, TicketStatus::Reserved);
        let live = reservation(ReservationStatus::Reserved);
        let mut s = slot(10, 1, SlotStatus::Active);
        s.start_time = NaiveTime::from_hms_opt(22, 0, 0).unwrap();
        s.end_time = NaiveTime::from_hms_opt(23, 50, 0).unwrap();
        let utc_venue = venue(chrono_tz::UTC);
        let input = VerdictInput {
            ticket: Some(&active),
            reservation: Some(&live),
            slot: Some(&s),
            venue: Some(&utc_venue),
        };
        assert_eq!(
            gate_verdict(input, utc(2025, 12, 2, 0, 10), &Gate::default()).verdict,
            VerdictCode::Admit
        );
        assert_eq!(
            gate_verdict(input, utc(2025, 12, 2, 0, 21), &Gate::default()).verdict,
            VerdictCode::WrongDate
        );
    }

    /// The slot window is the venue's: its gate settings, whatever grace
    /// the caller's `Gate` carries (the server's, a gate's, `gate verify`'s).
    /// The slot is 2025-12-01 09:00–12:00 (22:00–23:50 for "night") in UTC.
    #[test]
    fn grace_windows_come_from_the_venue_settings() {
        use VerdictCode as V;
        let active = ticket(ActivationStatus::Active, TicketStatus::Reserved);
        let live = reservation(ReservationStatus::Reserved);
        let day = slot(200, 1, SlotStatus::Active);
        let mut night = slot(200, 1, SlotStatus::Active);
        night.start_time = NaiveTime::from_hms_opt(22, 0, 0).unwrap();
        night.end_time = NaiveTime::from_hms_opt(23, 50, 0).unwrap();
        let at = |early, late| Venue {
            gate: GateSettings::new(early, late).unwrap(),
            ..venue(chrono_tz::UTC)
        };
        // A caller's grace that would admit anything: the venue's wins.
        let generous = Gate {
            venue_id: Some(VenueId(1)),
            early_grace: Duration::hours(12),
            late_grace: Duration::hours(12),
        };
        let cases: [(&str, Venue, &Slot, DateTime<Utc>, VerdictCode); 16] = [
            (
                "early 10: 08:50 is the edge",
                at(10, 30),
                &day,
                utc(2025, 12, 1, 8, 50),
                V::Admit,
            ),
            (
                "early 10: 08:49 is too early",
                at(10, 30),
                &day,
                utc(2025, 12, 1, 8, 49),
                V::OutsideSlotWindow,
            ),
            (
                "early 10: 08:35 the default would admit",
                at(10, 30),
                &day,
                utc(2025, 12, 1, 8, 35),
                V::OutsideSlotWindow,
            ),
            (
                "default 30: 08:30 is the edge",
                at(30, 30),
                &day,
                utc(2025, 12, 1, 8, 30),
                V::Admit,
            ),
            (
                "default 30: 08:29 is too early",
                at(30, 30),
                &day,
                utc(2025, 12, 1, 8, 29),
                V::OutsideSlotWindow,
            ),
            (
                "late 5: 12:05 is the edge",
                at(30, 5),
                &day,
                utc(2025, 12, 1, 12, 5),
                V::Admit,
            ),
            (
                "late 5: 12:06 is too late",
                at(30, 5),
                &day,
                utc(2025, 12, 1, 12, 6),
                V::OutsideSlotWindow,
            ),
            (
                "zero grace: 09:00 opens",
                at(0, 0),
                &day,
                utc(2025, 12, 1, 9, 0),
                V::Admit,
            ),
            (
                "zero grace: 08:59 is too early",
                at(0, 0),
                &day,
                utc(2025, 12, 1, 8, 59),
                V::OutsideSlotWindow,
            ),
            (
                "zero grace: 12:00 still in",
                at(0, 0),
                &day,
                utc(2025, 12, 1, 12, 0),
                V::Admit,
            ),
            (
                "zero grace: 12:01 is too late",
                at(0, 0),
                &day,
                utc(2025, 12, 1, 12, 1),
                V::OutsideSlotWindow,
            ),
            (
                "max 240: 05:00 is the edge",
                at(240, 240),
                &day,
                utc(2025, 12, 1, 5, 0),
                V::Admit,
            ),
            (
                "max 240: 16:00 is the edge",
                at(240, 240),
                &day,
                utc(2025, 12, 1, 16, 0),
                V::Admit,
            ),
            (
                "late 60 past midnight: 00:50 next day",
                at(30, 60),
                &night,
                utc(2025, 12, 2, 0, 50),
                V::Admit,
            ),
            (
                "late 60 past midnight: 00:51 is another day",
                at(30, 60),
                &night,
                utc(2025, 12, 2, 0, 51),
                V::WrongDate,
            ),
            (
                "late 0 past midnight: 00:10 is another day",
                at(30, 0),
                &night,
                utc(2025, 12, 2, 0, 10),
                V::WrongDate,
            ),
        ];
        for (name, venue, slot, now, expected) in cases {
            let input = VerdictInput {
                ticket: Some(&active),
                reservation: Some(&live),
                slot: Some(slot),
                venue: Some(&venue),
            };
            for gate in [&Gate::default(), &generous] {
                let v = gate_verdict(input, now, gate);
                assert_eq!(v.verdict, expected, "{name} ({gate:?}): {v:?}");
            }
        }
    }

    #[test]
    fn only_an_org_wide_caller_or_the_tickets_venue_reads_its_gate_names() {
        let at = |v: Option<i64>| Gate {
            venue_id: v.map(VenueId),
            ..Gate::default()
        };
        assert!(at(None).sees_gates_of(Some(VenueId(1))));
        assert!(at(None).sees_gates_of(None));
        assert!(at(Some(1)).sees_gates_of(Some(VenueId(1))));
        assert!(!at(Some(2)).sees_gates_of(Some(VenueId(1))));
        assert!(
            !at(Some(2)).sees_gates_of(None),
            "a ticket of no known venue"
        );
    }
}
