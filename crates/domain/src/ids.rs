//! Identifier newtypes. A `SlotId` can never be passed where a `ReservationId`
//! is expected, and parsing an id from user input is the only place it can fail.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

use super::DomainError;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim())
                    .map(Self)
                    .map_err(|_| DomainError::invalid($field, "must be a UUID"))
            }
        }
    };
}

uuid_id!(
    /// `reservation_slots.id`
    SlotId,
    "slot_id"
);
uuid_id!(
    /// `ticket_reservations.id`
    ReservationId,
    "reservation_id"
);

macro_rules! int_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "number"))]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

int_id!(
    /// Organisation id: every row belongs to exactly one tenant.
    Orq
);
int_id!(
    /// `venues.id`
    VenueId
);
int_id!(
    /// `operators.id`, recorded as `verified_by`.
    OperatorId
);

/// `tickets.ticket_code`, e.g. `TKT-2025-ABC123`. Printable ASCII without
/// spaces, 1..=64 characters: what a QR code or a keyboard wedge can carry
/// and what a person can read back over the phone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", schema(value_type = String, pattern = r"^[!-~]{1,64}$", example = "TKT-2025-ABC123"))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
pub struct TicketCode(String);

impl TicketCode {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let code = raw.trim();
        if code.is_empty() {
            return Err(DomainError::invalid("ticket_code", "must not be empty"));
        }
        if code.len() > Self::MAX_LEN {
            return Err(DomainError::invalid(
                "ticket_code",
                "must be at most 64 characters",
            ));
        }
        if !code.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(DomainError::invalid(
                "ticket_code",
                "may only contain printable ASCII characters without spaces",
            ));
        }
        Ok(Self(code.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TicketCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for TicketCode {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TicketCode> for String {
    fn from(value: TicketCode) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_code_accepts_spec_codes_and_trims() {
        for (raw, expected) in [
            ("TKT-2025-ABC123", "TKT-2025-ABC123"),
            ("  TKT-1 \n", "TKT-1"),
            ("ENT1.abc_-", "ENT1.abc_-"),
        ] {
            assert_eq!(TicketCode::parse(raw).unwrap().as_str(), expected);
        }
    }

    #[test]
    fn ticket_code_rejects_garbage() {
        for raw in ["", "   ", "TKT 1", "TKT-\u{e9}", &"A".repeat(65), "a\0b"] {
            let err = TicketCode::parse(raw).unwrap_err();
            assert_eq!(err.code(), "INVALID_INPUT", "{raw:?}");
        }
    }

    #[test]
    fn slot_id_parses_uuid_only() {
        let id: SlotId = "550e8400-e29b-41d4-a716-446655440001".parse().unwrap();
        assert_eq!(id.to_string(), "550e8400-e29b-41d4-a716-446655440001");
        assert!("not-a-uuid".parse::<SlotId>().is_err());
        assert!("'; DROP TABLE x; --".parse::<SlotId>().is_err());
    }
}
