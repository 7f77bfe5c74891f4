//! `ticket_reservations`: one per ticket, contact details, and when a
//! reservation may still change.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{DomainError, Orq, ReservationId, SlotId, TicketCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum ReservationStatus {
    Reserved,
    Cancelled,
    Verified,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "RESERVED",
            Self::Cancelled => "CANCELLED",
            Self::Verified => "VERIFIED",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "RESERVED" => Ok(Self::Reserved),
            "CANCELLED" => Ok(Self::Cancelled),
            "VERIFIED" => Ok(Self::Verified),
            _ => Err(DomainError::invalid(
                "status",
                "must be one of RESERVED, CANCELLED, VERIFIED",
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Reservation {
    pub id: ReservationId,
    pub ticket_id: TicketCode,
    pub slot_id: SlotId,
    pub customer_email: String,
    pub customer_phone: String,
    pub reserved_at: DateTime<Utc>,
    pub status: ReservationStatus,
    pub orq: Orq,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the server released this reservation as a no-show (its status is
    /// then CANCELLED and its place back on the slot); see [`crate::no_show`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub no_show_at: Option<DateTime<Utc>>,
}

impl Reservation {
    /// Cancel and reschedule are allowed only while the reservation is live.
    pub fn check_changeable(&self) -> Result<(), DomainError> {
        match self.status {
            ReservationStatus::Reserved => Ok(()),
            ReservationStatus::Verified => Err(DomainError::ReservationVerified),
            ReservationStatus::Cancelled => Err(DomainError::ReservationCancelled),
        }
    }
}

/// Validated customer contact details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub email: String,
    pub phone: String,
}

impl Contact {
    /// Both fields are checked: when both are wrong, both are reported.
    pub fn validate(email: &str, phone: &str) -> Result<Self, DomainError> {
        match (validate_email(email), validate_e164(phone)) {
            (Ok(email), Ok(phone)) => Ok(Self { email, phone }),
            (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
            (Err(e1), Err(e2)) => Err(DomainError::InvalidFields {
                fields: [e1, e2]
                    .into_iter()
                    .filter_map(|e| match e {
                        DomainError::InvalidInput { field, reason } => Some((field, reason)),
                        _ => None,
                    })
                    .collect(),
            }),
        }
    }
}

/// A deliberately plain check (one `@`, a dotted domain, no spaces or control
/// characters, RFC 5321 lengths): enough to catch typos; the confirmation mail
/// is the real test. Stored lower-cased in the domain part only.
pub fn validate_email(raw: &str) -> Result<String, DomainError> {
    let email = raw.trim();
    let bad = |reason: &str| DomainError::invalid("customer_email", reason.to_string());
    if email.is_empty() {
        return Err(bad("is required"));
    }
    if email.len() > 254 {
        return Err(bad("is too long (254 characters at most)"));
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err(bad("must look like name@example.com"));
    };
    let printable = |s: &str| s.chars().all(|c| !c.is_whitespace() && !c.is_control());
    if local.is_empty() || local.len() > 64 || local.contains('@') || !printable(local) {
        return Err(bad("must look like name@example.com"));
    }
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    });
    if !domain.contains('.') || !labels_ok {
        return Err(bad("must have a domain like example.com"));
    }
    Ok(format!("{local}@{}", domain.to_lowercase()))
}

/// E.164: `+`, a country code not starting with 0, at most 15 digits in all.
/// Spaces, dots, dashes and brackets people type are removed first.
pub fn validate_e164(raw: &str) -> Result<String, DomainError> {
    let compact: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let bad = || {
        DomainError::invalid(
            "customer_phone",
            if compact.is_empty() {
                "is required"
            } else {
                "must be + and the country code, then the number: 7 to 15 digits in all, e.g. +12025551234"
            },
        )
    };
    let digits = compact.strip_prefix('+').ok_or_else(bad)?;
    // The shortest numbers in use have 7 digits with their country code.
    if !(7..=15).contains(&digits.len())
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || digits.starts_with('0')
    {
        return Err(bad());
    }
    Ok(compact)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for (raw, expected) in [
            ("john@example.com", Some("john@example.com")),
            (
                "  John.Doe+tag@Example.COM ",
                Some("John.Doe+tag@example.com"),
            ),
            ("ana@correo.es", Some("ana@correo.es")),
            ("", None),
            ("john", None),
            ("john@", None),
            ("@example.com", None),
            ("john@example", None),
            ("john@exa mple.com", None),
            ("jo hn@example.com", None),
            ("john@@example.com", None),
            ("john@-example.com", None),
            ("john@example..com", None),
            ("john@example.com'; DROP TABLE tickets;--", None),
        ] {
            assert_eq!(validate_email(raw).ok().as_deref(), expected, "{raw:?}");
        }
        assert!(validate_email(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn phones() {
        for (raw, expected) in [
            ("+12025551234", Some("+12025551234")),
            ("+34 612 34 56 78", Some("+34612345678")),
            ("+1 (202) 555-1234", Some("+12025551234")),
            ("+123456789012345", Some("+123456789012345")),
            ("+1234567890123456", None),
            ("12025551234", None),
            ("+02025551234", None),
            ("+1202555123a", None),
            ("+", None),
            ("+1", None),
            ("+12", None),
            ("+123456", None),
            ("+1234567", Some("+1234567")),
            ("", None),
        ] {
            assert_eq!(validate_e164(raw).ok().as_deref(), expected, "{raw:?}");
        }
    }

    #[test]
    fn contact_reports_every_wrong_field() {
        assert!(Contact::validate("a@b.co", "+12025551234").is_ok());
        let e = Contact::validate("a@b.co", "600 123").unwrap_err();
        assert_eq!(e.details()["field"], "customer_phone");
        let e = Contact::validate("not-an-email", "").unwrap_err();
        assert_eq!(e.code(), "INVALID_INPUT");
        let d = e.details();
        assert_eq!(d["field"], "customer_email");
        assert_eq!(
            d["fields"]["customer_email"],
            "must look like name@example.com"
        );
        assert_eq!(d["fields"]["customer_phone"], "is required");
    }

    #[test]
    fn changeable_only_while_reserved() {
        let mut r = Reservation {
            id: ReservationId(uuid::Uuid::nil()),
            ticket_id: TicketCode::parse("T-1").unwrap(),
            slot_id: SlotId(uuid::Uuid::nil()),
            customer_email: "a@b.co".into(),
            customer_phone: "+12025551234".into(),
            reserved_at: DateTime::<Utc>::UNIX_EPOCH,
            status: ReservationStatus::Reserved,
            orq: Orq(1),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            no_show_at: None,
        };
        assert_eq!(r.check_changeable(), Ok(()));
        r.status = ReservationStatus::Verified;
        assert_eq!(r.check_changeable(), Err(DomainError::ReservationVerified));
        r.status = ReservationStatus::Cancelled;
        assert_eq!(r.check_changeable(), Err(DomainError::ReservationCancelled));
    }
}

/// Whether `ticket` may take a place on `slot` now. `existing` is the
/// ticket's reservation row, if any (a cancelled one may be replaced).
pub fn check_reservable(
    ticket: &super::Ticket,
    existing: Option<&Reservation>,
    slot: &super::Slot,
    venue: &super::Venue,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    super::customer::check_may_reserve(ticket, existing, now)?;
    check_slot_bookable(ticket, slot, venue, now)
}

/// A slot takes `ticket`'s new (or rescheduled) reservation if it is open,
/// has a free place, has not ended yet on the venue's clock, and starts
/// before the ticket expires.
pub fn check_slot_bookable(
    ticket: &super::Ticket,
    slot: &super::Slot,
    venue: &super::Venue,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    use chrono::TimeZone;
    let local_now = now.with_timezone(&venue.timezone).naive_local();
    if chrono::NaiveDateTime::new(slot.date, slot.end_time) <= local_now {
        return Err(DomainError::SlotInPast);
    }
    if let Some(expires_at) = ticket.expires_at {
        let local_start = chrono::NaiveDateTime::new(slot.date, slot.start_time);
        let starts = venue
            .timezone
            .from_local_datetime(&local_start)
            .earliest()
            .map_or_else(|| local_start.and_utc(), |t| t.with_timezone(&Utc));
        if starts >= expires_at {
            return Err(DomainError::OutsideValidity { date: slot.date });
        }
    }
    slot.check_can_take_place()
}

#[cfg(test)]
mod reservable_tests {
    use super::*;
    use crate::{
        slot::tests::slot, ticket::tests::ticket, ActivationStatus, SlotStatus, TicketStatus,
        Venue, VenueId,
    };
    use chrono::TimeZone;

    #[test]
    fn reservable_cases() {
        let venue = Venue {
            id: VenueId(1),
            orq: Orq(1),
            name: "V".into(),
            timezone: chrono_tz::America::New_York,
            gate: Default::default(),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        let active = ticket(ActivationStatus::Active, TicketStatus::Activated);
        let before = Utc.with_ymd_and_hms(2025, 11, 20, 12, 0, 0).unwrap();
        // Slot ends 2025-12-01 12:00 New York = 17:00 UTC.
        let just_before_end = Utc.with_ymd_and_hms(2025, 12, 1, 16, 59, 0).unwrap();
        let at_end = Utc.with_ymd_and_hms(2025, 12, 1, 17, 0, 0).unwrap();
        let mut cancelled = Reservation {
            id: ReservationId(uuid::Uuid::nil()),
            ticket_id: active.ticket_code.clone(),
            slot_id: SlotId(uuid::Uuid::nil()),
            customer_email: "a@b.co".into(),
            customer_phone: "+12025551234".into(),
            reserved_at: before,
            status: ReservationStatus::Cancelled,
            orq: Orq(1),
            created_at: before,
            updated_at: before,
            no_show_at: None,
        };
        let open = slot(10, 9, SlotStatus::Active);
        assert_eq!(
            check_reservable(&active, None, &open, &venue, before),
            Ok(())
        );
        assert_eq!(
            check_reservable(&active, Some(&cancelled), &open, &venue, before),
            Ok(())
        );
        assert_eq!(
            check_reservable(&active, None, &open, &venue, just_before_end),
            Ok(())
        );
        assert_eq!(
            check_reservable(&active, None, &open, &venue, at_end),
            Err(DomainError::SlotInPast)
        );
        assert_eq!(
            check_reservable(
                &active,
                None,
                &slot(10, 10, SlotStatus::Full),
                &venue,
                before
            ),
            Err(DomainError::SlotFull)
        );
        assert_eq!(
            check_reservable(
                &active,
                None,
                &slot(10, 1, SlotStatus::Closed),
                &venue,
                before
            ),
            Err(DomainError::SlotClosed)
        );
        cancelled.status = ReservationStatus::Reserved;
        assert_eq!(
            check_reservable(&active, Some(&cancelled), &open, &venue, before),
            Err(DomainError::AlreadyReserved)
        );
        // A slot starting after the ticket expires is outside its validity.
        let mut expiring = active.clone();
        expiring.expires_at = Some(Utc.with_ymd_and_hms(2025, 12, 1, 13, 59, 0).unwrap()); // slot starts 14:00 UTC
        assert_eq!(
            check_reservable(&expiring, None, &open, &venue, before),
            Err(DomainError::OutsideValidity { date: open.date })
        );
        expiring.expires_at = Some(Utc.with_ymd_and_hms(2025, 12, 1, 14, 1, 0).unwrap());
        assert_eq!(
            check_reservable(&expiring, None, &open, &venue, before),
            Ok(())
        );
        let inactive = ticket(ActivationStatus::Inactive, TicketStatus::Minted);
        assert_eq!(
            check_reservable(&inactive, None, &open, &venue, before),
            Err(DomainError::TicketNotActive)
        );
    }
}
