//! `tickets`: the activation lifecycle and who may reserve.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{DomainError, OperatorId, Orq, TicketCode};

/// `tickets.status`: the spec's extended enum, plus the existing values it keeps.
#[derive(utoipa::ToSchema, Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(utoipa::ToSchema, Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivationStatus {
    Inactive,
    Active,
    Redeemed,
    Cancelled,
}

/// `tickets.activation_mode`
#[derive(
    utoipa::ToSchema, Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
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

#[derive(utoipa::ToSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub ticket_code: TicketCode,
    pub orq: Orq,
    pub order_id: Option<i64>,
    pub product_id: Option<i64>,
    pub user_id: Option<i64>,
    pub status: TicketStatus,
    #[schema(value_type = Object)]
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

/// A validated ticket to issue.
#[derive(utoipa::ToSchema, Debug, Clone, PartialEq, Eq, Deserialize)]
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
    #[schema(value_type = Option<Object>)]
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
