//! `tickets`: the activation lifecycle and who may reserve.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    DomainError, OperatorId, Orq, Reservation, ReservationId, ReservationStatus, TicketCode,
};

/// `tickets.status`: the spec's extended enum, plus the existing values it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum TicketStatus {
    #[serde(rename = "PENDING_PAYMENT")]
    PendingPayment,
    #[serde(rename = "ACTIVATED")]
    Activated,
    #[serde(rename = "RESERVED")]
    Reserved,
    #[serde(rename = "VERIFIED")]
    Verified,
    #[serde(rename = "EXPIRED")]
    Expired,
    #[serde(rename = "minted")]
    Minted,
    #[serde(rename = "active")]
    Active,
    #[serde(rename = "redeemed")]
    Redeemed,
    #[serde(rename = "cancelled")]
    Cancelled,
}

/// `tickets.activation_status`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum ActivationStatus {
    Inactive,
    Active,
    Redeemed,
    Cancelled,
}

/// `tickets.activation_mode`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum ActivationMode {
    Immediate,
    #[default]
    Deferred,
}

macro_rules! str_enum {
    ($ty:ident, $field:literal, { $($variant:ident => $s:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $s),+ }
            }
            pub fn parse(s: &str) -> Result<Self, DomainError> {
                match s {
                    $($s => Ok(Self::$variant),)+
                    _ => Err(DomainError::invalid(
                        $field,
                        concat!("must be one of:", $(" ", $s),+),
                    )),
                }
            }
        }
    };
}

str_enum!(TicketStatus, "status", {
    PendingPayment => "PENDING_PAYMENT", Activated => "ACTIVATED", Reserved => "RESERVED",
    Verified => "VERIFIED", Expired => "EXPIRED", Minted => "minted", Active => "active",
    Redeemed => "redeemed", Cancelled => "cancelled",
});
str_enum!(ActivationStatus, "activation_status", {
    Inactive => "inactive", Active => "active", Redeemed => "redeemed", Cancelled => "cancelled",
});
str_enum!(ActivationMode, "activation_mode", {
    Immediate => "immediate", Deferred => "deferred",
});

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Ticket {
    pub ticket_code: TicketCode,
    pub orq: Orq,
    pub order_id: Option<i64>,
    pub product_id: Option<i64>,
    pub user_id: Option<i64>,
    pub status: TicketStatus,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    #[cfg_attr(feature = "ts", ts(type = "Record<string, unknown>"))]
    pub entitlements: serde_json::Value,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub customer_email: Option<String>,
    pub customer_phone: Option<String>,
    pub reserved_at: Option<DateTime<Utc>>,
    pub verified_at: Option<DateTime<Utc>>,
    pub verified_by: Option<OperatorId>,
    pub activation_status: ActivationStatus,
    pub activated_at: Option<DateTime<Utc>>,
    pub activation_mode: ActivationMode,
    /// The e-mail the ticket was bought with; with the code it opens the customer page.
    pub purchase_email: Option<String>,
}

impl Ticket {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.status == TicketStatus::Expired || self.expires_at.is_some_and(|at| at <= now)
    }

    /// Why this ticket may not be used (reserve, activate, enter), if it may not;
    /// checked in the order a person at the desk would explain it.
    fn check_usable(&self, now: DateTime<Utc>) -> Result<(), DomainError> {
        if self.activation_status == ActivationStatus::Cancelled
            || self.status == TicketStatus::Cancelled
        {
            return Err(DomainError::TicketCancelled);
        }
        if self.activation_status == ActivationStatus::Redeemed || self.verified_at.is_some() {
            return Err(DomainError::TicketRedeemed);
        }
        if self.is_expired(now) {
            return Err(DomainError::TicketExpired {
                expires_at: self.expires_at.unwrap_or(now),
            });
        }
        Ok(())
    }

    /// Only active tickets reserve.
    pub fn check_can_reserve(&self, now: DateTime<Utc>) -> Result<(), DomainError> {
        self.check_usable(now)?;
        if self.activation_status != ActivationStatus::Active {
            return Err(DomainError::TicketNotActive);
        }
        if self.status == TicketStatus::PendingPayment {
            return Err(DomainError::TicketNotActive);
        }
        Ok(())
    }

    /// `inactive → active`, one way. Activating an active ticket changes nothing
    /// (a customer pressing twice is not an error); `None` means "no change".
    pub fn plan_activation(&self, now: DateTime<Utc>) -> Result<Option<TicketStatus>, DomainError> {
        self.check_usable(now)?;
        if self.status == TicketStatus::PendingPayment {
            return Err(DomainError::invalid(
                "ticket_code",
                "the order for this ticket is not paid yet",
            ));
        }
        match self.activation_status {
            ActivationStatus::Active => Ok(None),
            ActivationStatus::Inactive => Ok(Some(TicketStatus::Activated)),
            // check_usable refused these already
            ActivationStatus::Redeemed | ActivationStatus::Cancelled => {
                Err(DomainError::TicketRedeemed)
            }
        }
    }
}

impl Ticket {
    /// Used at a gate: verified, or redeemed.
    pub fn is_used(&self) -> bool {
        self.verified_at.is_some() || self.activation_status == ActivationStatus::Redeemed
    }

    /// A ticket is cancelled (refund, re-issue) with its live reservation,
    /// whose place is freed; a ticket used at a gate stays used. Cancelling a
    /// cancelled ticket changes nothing but is not an error.
    pub fn plan_cancel(
        &self,
        reservation: Option<&Reservation>,
    ) -> Result<Cancellation, DomainError> {
        if self.is_used() {
            return Err(DomainError::TicketRedeemed);
        }
        Ok(Cancellation {
            status: TicketStatus::Cancelled,
            activation_status: ActivationStatus::Cancelled,
            frees: reservation
                .filter(|r| r.status == ReservationStatus::Reserved)
                .map(|r| r.id),
        })
    }
}

/// What cancelling a ticket writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancellation {
    pub status: TicketStatus,
    pub activation_status: ActivationStatus,
    /// The live reservation cancelled with it (its place is freed).
    pub frees: Option<ReservationId>,
}

/// The holder of `ticket` was let in at `at` by `by`: at this gate, or at a
/// gate whose admission the server receives. The one transition of a ticket
/// at the door, whoever writes it.
pub fn enter(
    ticket: &Ticket,
    reservation: Option<&Reservation>,
    at: DateTime<Utc>,
    by: OperatorId,
) -> Entry {
    match ticket.verified_at {
        None => Entry::First(TicketUse {
            verified_at: at,
            verified_by: by,
            status: TicketStatus::Verified,
            activation_status: ActivationStatus::Redeemed,
            // Used is activated, at the latest when it was used.
            activated_at: ticket.activated_at.unwrap_or(at),
            reservation: reservation
                .filter(|r| r.status == ReservationStatus::Reserved)
                .map(|r| (r.id, ReservationStatus::Verified)),
        }),
        Some(recorded_at) => Entry::Again(DoubleEntry {
            recorded_at,
            recorded_by: ticket.verified_by,
            replaces_record: at < recorded_at,
        }),
    }
}

/// What an entry does to a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// The first entry: the ticket is used from now on.
    First(TicketUse),
    /// The ticket was used before: a double entry.
    Again(DoubleEntry),
}

/// A ticket's state once used (and its reservation's, if it was live).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketUse {
    pub verified_at: DateTime<Utc>,
    pub verified_by: OperatorId,
    pub status: TicketStatus,
    pub activation_status: ActivationStatus,
    pub activated_at: DateTime<Utc>,
    /// The live reservation and its new status.
    pub reservation: Option<(ReservationId, ReservationStatus)>,
}

/// A second entry on one ticket. The earliest entry is the canonical one:
/// the ticket records it, whichever arrived first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoubleEntry {
    /// The entry the ticket records so far.
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: Option<OperatorId>,
    /// The new entry is earlier: the ticket records it instead.
    pub replaces_record: bool,
}

/// A validated ticket to issue.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    pub ticket_code: TicketCode,
    #[serde(default)]
    pub order_id: Option<i64>,
    #[serde(default)]
    pub product_id: Option<i64>,
    #[serde(default)]
    pub user_id: Option<i64>,
    #[serde(default)]
    pub activation_mode: ActivationMode,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// A JSON object (or null: none).
    #[serde(default, deserialize_with = "entitlements_object")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub entitlements: Option<serde_json::Value>,
    #[serde(default)]
    pub purchase_email: Option<String>,
}

/// A ticket's entitlements are a JSON object; null or absent is none.
pub fn entitlements(value: serde_json::Value) -> Result<Option<serde_json::Value>, DomainError> {
    match value {
        serde_json::Value::Null => Ok(None),
        v @ serde_json::Value::Object(_) => Ok(Some(v)),
        _ => Err(DomainError::invalid(
            "entitlements",
            "must be a JSON object",
        )),
    }
}

fn entitlements_object<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    let value = <serde_json::Value as serde::Deserialize>::deserialize(d)?;
    entitlements(value).map_err(serde::de::Error::custom)
}

impl NewTicket {
    pub fn plain(code: &str, mode: ActivationMode) -> Result<Self, DomainError> {
        Ok(Self {
            ticket_code: TicketCode::parse(code)?,
            order_id: None,
            product_id: None,
            user_id: None,
            activation_mode: mode,
            expires_at: None,
            entitlements: None,
            purchase_email: None,
        })
    }

    /// Initial `(status, activation_status, activated_at)`: immediate-mode tickets start active.
    pub fn initial_state(
        &self,
        now: DateTime<Utc>,
    ) -> (TicketStatus, ActivationStatus, Option<DateTime<Utc>>) {
        match self.activation_mode {
            ActivationMode::Immediate => {
                (TicketStatus::Activated, ActivationStatus::Active, Some(now))
            }
            ActivationMode::Deferred => (TicketStatus::Minted, ActivationStatus::Inactive, None),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn entitlements_are_an_object_or_none() {
        use serde_json::json;
        let cases = [
            (json!(null), Some(None)),
            (json!({}), Some(Some(json!({})))),
            (json!({"zones": ["A"]}), Some(Some(json!({"zones": ["A"]})))),
            (json!([null, null]), None),
            (json!("vip"), None),
            (json!(3), None),
        ];
        for (value, want) in cases {
            assert_eq!(entitlements(value.clone()).ok(), want, "{value}");
            let body = json!({"ticket_code": "T-1", "entitlements": value});
            let parsed = serde_json::from_value::<NewTicket>(body).map(|t| t.entitlements);
            assert_eq!(parsed.ok(), want, "as a ticket's field: {value}");
        }
    }

    pub fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 12, 1, 9, 30, 0).unwrap()
    }

    pub fn ticket(activation: ActivationStatus, status: TicketStatus) -> Ticket {
        Ticket {
            ticket_code: TicketCode::parse("TKT-2025-ABC123").unwrap(),
            orq: Orq(1),
            order_id: Some(1),
            product_id: Some(2),
            user_id: Some(3),
            status,
            entitlements: serde_json::json!({}),
            expires_at: None,
            created_at: now(),
            updated_at: now(),
            customer_email: None,
            customer_phone: None,
            reserved_at: None,
            verified_at: None,
            verified_by: None,
            activation_status: activation,
            activated_at: None,
            activation_mode: ActivationMode::Deferred,
            purchase_email: None,
        }
    }

    #[test]
    fn initial_state_by_mode() {
        let mut t = NewTicket::plain("T-1", ActivationMode::Immediate).unwrap();
        assert_eq!(
            t.initial_state(now()),
            (
                TicketStatus::Activated,
                ActivationStatus::Active,
                Some(now())
            )
        );
        t.activation_mode = ActivationMode::Deferred;
        assert_eq!(
            t.initial_state(now()),
            (TicketStatus::Minted, ActivationStatus::Inactive, None)
        );
    }

    #[test]
    fn activation_is_one_way() {
        use ActivationStatus as A;
        use TicketStatus as S;
        let mut expired = ticket(A::Inactive, S::Minted);
        expired.expires_at = Some(now() - chrono::Duration::seconds(1));
        let mut verified = ticket(A::Active, S::Reserved);
        verified.verified_at = Some(now());
        for (t, expected) in [
            (ticket(A::Inactive, S::Minted), Ok(Some(S::Activated))),
            (ticket(A::Active, S::Activated), Ok(None)),
            (ticket(A::Active, S::Reserved), Ok(None)),
            (
                ticket(A::Redeemed, S::Verified),
                Err(DomainError::TicketRedeemed),
            ),
            (
                ticket(A::Cancelled, S::Minted),
                Err(DomainError::TicketCancelled),
            ),
            (verified, Err(DomainError::TicketRedeemed)),
            (
                expired,
                Err(DomainError::TicketExpired {
                    expires_at: now() - chrono::Duration::seconds(1),
                }),
            ),
        ] {
            assert_eq!(
                t.plan_activation(now()),
                expected,
                "{:?}/{:?}",
                t.activation_status,
                t.status
            );
        }
        assert_eq!(
            ticket(A::Inactive, S::PendingPayment)
                .plan_activation(now())
                .unwrap_err()
                .code(),
            "INVALID_INPUT"
        );
    }

    #[test]
    fn only_active_tickets_reserve() {
        use ActivationStatus as A;
        use TicketStatus as S;
        for (t, expected) in [
            (ticket(A::Active, S::Activated), Ok(())),
            (
                ticket(A::Inactive, S::Minted),
                Err(DomainError::TicketNotActive),
            ),
            (
                ticket(A::Active, S::PendingPayment),
                Err(DomainError::TicketNotActive),
            ),
            (
                ticket(A::Cancelled, S::Activated),
                Err(DomainError::TicketCancelled),
            ),
            (
                ticket(A::Active, S::Cancelled),
                Err(DomainError::TicketCancelled),
            ),
            (
                ticket(A::Redeemed, S::Verified),
                Err(DomainError::TicketRedeemed),
            ),
            (
                ticket(A::Active, S::Expired),
                Err(DomainError::TicketExpired { expires_at: now() }),
            ),
        ] {
            assert_eq!(
                t.check_can_reserve(now()),
                expected,
                "{:?}/{:?}",
                t.activation_status,
                t.status
            );
        }
    }

    fn reservation(status: ReservationStatus) -> Reservation {
        Reservation {
            id: ReservationId(uuid::Uuid::from_u128(7)),
            ticket_id: TicketCode::parse("TKT-2025-ABC123").unwrap(),
            slot_id: crate::SlotId(uuid::Uuid::from_u128(8)),
            customer_email: "a@example.com".into(),
            customer_phone: "+15551234567".into(),
            reserved_at: now(),
            status,
            orq: Orq(1),
            created_at: now(),
            updated_at: now(),
            no_show_at: None,
        }
    }

    /// (ticket, reservation) → cancelled, freeing which reservation, or refused.
    #[test]
    fn cancel_case_table() {
        use ActivationStatus as A;
        use ReservationStatus as R;
        use TicketStatus as S;
        let mut verified = ticket(A::Active, S::Reserved);
        verified.verified_at = Some(now());
        let live = reservation(R::Reserved);
        let id = Some(live.id);
        type Case = (
            &'static str,
            Ticket,
            Option<Reservation>,
            Result<Option<ReservationId>, DomainError>,
        );
        let cases: Vec<Case> = vec![
            (
                "inactive, no reservation",
                ticket(A::Inactive, S::Minted),
                None,
                Ok(None),
            ),
            (
                "active, no reservation",
                ticket(A::Active, S::Activated),
                None,
                Ok(None),
            ),
            (
                "reserved: the place is freed",
                ticket(A::Active, S::Reserved),
                Some(live.clone()),
                Ok(id),
            ),
            (
                "cancelled reservation stays",
                ticket(A::Active, S::Activated),
                Some(reservation(R::Cancelled)),
                Ok(None),
            ),
            (
                "cancelled again",
                ticket(A::Cancelled, S::Cancelled),
                None,
                Ok(None),
            ),
            (
                "used at a gate",
                verified,
                Some(reservation(R::Verified)),
                Err(DomainError::TicketRedeemed),
            ),
            (
                "redeemed",
                ticket(A::Redeemed, S::Verified),
                None,
                Err(DomainError::TicketRedeemed),
            ),
        ];
        for (name, t, r, expected) in cases {
            let got = t.plan_cancel(r.as_ref());
            assert_eq!(got.clone().map(|c| c.frees), expected, "{name}");
            if let Ok(c) = got {
                assert_eq!(
                    (c.status, c.activation_status),
                    (S::Cancelled, A::Cancelled),
                    "{name}"
                );
            }
        }
    }

    /// (ticket, reservation, entry time) → first use or double entry.
    #[test]
    fn entry_case_table() {
        use ActivationStatus as A;
        use ReservationStatus as R;
        use TicketStatus as S;
        let (op, other) = (OperatorId(5), OperatorId(6));
        let earlier = now() - chrono::Duration::minutes(5);
        let later = now() + chrono::Duration::minutes(5);
        let mut activated = ticket(A::Active, S::Reserved);
        activated.activated_at = Some(earlier);
        let mut used = ticket(A::Redeemed, S::Verified);
        (used.verified_at, used.verified_by) = (Some(now()), Some(other));
        let live = reservation(R::Reserved);
        let first = |activated_at, reservation| {
            Entry::First(TicketUse {
                verified_at: now(),
                verified_by: op,
                status: S::Verified,
                activation_status: A::Redeemed,
                activated_at,
                reservation,
            })
        };
        let again = |replaces_record| {
            Entry::Again(DoubleEntry {
                recorded_at: now(),
                recorded_by: Some(other),
                replaces_record,
            })
        };
        type Case = (
            &'static str,
            Ticket,
            Option<Reservation>,
            DateTime<Utc>,
            Entry,
        );
        let cases: Vec<Case> = vec![
            (
                "reserved, first entry",
                activated.clone(),
                Some(live.clone()),
                now(),
                first(earlier, Some((live.id, R::Verified))),
            ),
            (
                "never activated: activated when used",
                ticket(A::Active, S::Reserved),
                Some(live.clone()),
                now(),
                first(now(), Some((live.id, R::Verified))),
            ),
            (
                "no reservation",
                activated.clone(),
                None,
                now(),
                first(earlier, None),
            ),
            (
                "a cancelled reservation stays cancelled",
                activated.clone(),
                Some(reservation(R::Cancelled)),
                now(),
                first(earlier, None),
            ),
            (
                "used: a later entry is the second",
                used.clone(),
                Some(reservation(R::Verified)),
                later,
                again(false),
            ),
            (
                "used: at the same instant, the record stays",
                used.clone(),
                None,
                now(),
                again(false),
            ),
            (
                "used: an earlier entry becomes the record",
                used.clone(),
                None,
                earlier,
                again(true),
            ),
        ];
        for (name, t, r, at, expected) in cases {
            let got = enter(&t, r.as_ref(), at, op);
            match (&got, &expected) {
                (Entry::First(g), Entry::First(e)) => {
                    assert_eq!(
                        g,
                        &TicketUse {
                            verified_at: at,
                            ..*e
                        },
                        "{name}"
                    )
                }
                _ => assert_eq!(got, expected, "{name}"),
            }
        }
    }

    #[test]
    fn expiry_is_inclusive_of_the_instant() {
        let mut t = ticket(ActivationStatus::Active, TicketStatus::Activated);
        t.expires_at = Some(now());
        assert!(t.is_expired(now()));
        t.expires_at = Some(now() + chrono::Duration::seconds(1));
        assert!(!t.is_expired(now()));
    }

    #[test]
    fn enums_round_trip_their_strings() {
        for s in [
            "PENDING_PAYMENT",
            "ACTIVATED",
            "RESERVED",
            "VERIFIED",
            "EXPIRED",
            "minted",
            "active",
            "redeemed",
            "cancelled",
        ] {
            assert_eq!(TicketStatus::parse(s).unwrap().as_str(), s);
            assert_eq!(
                serde_json::to_value(TicketStatus::parse(s).unwrap()).unwrap(),
                s
            );
        }
        for s in ["inactive", "active", "redeemed", "cancelled"] {
            assert_eq!(ActivationStatus::parse(s).unwrap().as_str(), s);
        }
        assert!(ActivationMode::parse("later").is_err());
    }
}
