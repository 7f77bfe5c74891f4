//! Venues (where a gate stands and which clock "today" is read on) and the
//! people who operate gates.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{DomainError, OperatorId, Orq, VenueId};

#[derive(utoipa::ToSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Venue {
    pub id: VenueId,
    pub orq: Orq,
    pub name: String,
    /// IANA zone, e.g. `Europe/Madrid`.
    #[schema(value_type = String, example = "Europe/Madrid")]
    pub timezone: Tz,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub fn parse_timezone(raw: &str) -> Result<Tz, DomainError> {
    raw.trim().parse::<Tz>().map_err(|_| {
        DomainError::invalid(
            "timezone",
            "must be an IANA time zone such as Europe/Madrid",
        )
    })
}

pub fn validate_name(field: &'static str, raw: &str) -> Result<String, DomainError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            "must be 1 to 200 characters without control characters",
        ));
    }
    Ok(name.to_owned())
}

/// Operator PINs: 4 to 8 digits, typed on a touch screen.
pub fn validate_pin(raw: &str) -> Result<&str, DomainError> {
    if (4..=8).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit()) {
        Ok(raw)
    } else {
        Err(DomainError::invalid("pin", "must be 4 to 8 digits"))
    }
}

#[derive(
    utoipa::ToSchema,
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Operator,
    /// Operator + slot capacity and status.
    Supervisor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Operator => "operator",
            Self::Supervisor => "supervisor",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "customer" => Ok(Self::Customer),
            "operator" => Ok(Self::Operator),
            "supervisor" => Ok(Self::Supervisor),
            "admin" => Ok(Self::Admin),
            _ => Err(DomainError::invalid(
                "role",
                "must be one of customer, operator, supervisor, admin",
            )),
        }
    }

    pub fn can_verify(self) -> bool {
        matches!(self, Self::Operator | Self::Supervisor | Self::Admin)
    }

    pub fn can_manage_slots(self) -> bool {
        matches!(self, Self::Supervisor | Self::Admin)
    }
}

/// A person who signs in at a gate. The PIN hash is never serialized.
#[derive(utoipa::ToSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    pub id: OperatorId,
    pub orq: Orq,
    pub role: Role,
    pub display_name: String,
    #[serde(skip)]
    pub pin_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timezones() {
        assert_eq!(
            parse_timezone("Europe/Madrid").unwrap(),
            chrono_tz::Europe::Madrid
        );
        assert_eq!(
            parse_timezone(" Pacific/Kiritimati ").unwrap(),
            chrono_tz::Pacific::Kiritimati
        );
        for bad in ["", "Mars/Olympus", "CEST+2", "europe madrid"] {
            assert_eq!(
                parse_timezone(bad).unwrap_err().code(),
                "INVALID_INPUT",
                "{bad}"
            );
        }
    }

    #[test]
    fn roles() {
        assert!(Role::Supervisor.can_manage_slots() && Role::Supervisor.can_verify());
        assert!(!Role::Operator.can_manage_slots() && Role::Operator.can_verify());
        assert!(!Role::Customer.can_verify());
        assert!(Role::parse("root").is_err());
    }

    #[test]
    fn pins() {
        for ok in ["1234", "00000000"] {
            assert!(validate_pin(ok).is_ok(), "{ok}");
        }
        for bad in ["123", "123456789", "12a4", "", "١٢٣٤"] {
            assert!(validate_pin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(validate_name("name", "  Prado ").unwrap(), "Prado");
        assert!(validate_name("name", " ").is_err());
        assert!(validate_name("name", "a\u{7}b").is_err());
        assert!(validate_name("name", &"x".repeat(201)).is_err());
    }
}
