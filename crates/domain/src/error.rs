//! The one error type of the business rules. Every variant has a stable machine
//! code (`code()`) that API clients, the kiosk and tests match on; the message
//! is for people and may change.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use super::verdict::Verdict;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{field}: {reason}")]
    InvalidInput { field: &'static str, reason: String },

    /// Several fields of one form are wrong at once (each with its reason,
    /// in the form's order), so a client can show them all together.
    #[error("{}", .fields.iter().map(|(f, r)| format!("{f}: {r}")).collect::<Vec<_>>().join("; "))]
    InvalidFields { fields: Vec<(&'static str, String)> },

    #[error("{entity} not found")]
    NotFound { entity: &'static str },

    #[error("a slot already exists for this venue, date and start time")]
    DuplicateSlot,

    #[error("this slot is full")]
    SlotFull,

    #[error("this slot is closed")]
    SlotClosed,

    #[error("this slot has already ended")]
    SlotInPast,

    #[error("capacity {requested} is below the {booked} places already booked")]
    CapacityBelowBooked { booked: i64, requested: i64 },

    #[error("status {requested} cannot be set by hand; FULL follows the booked count")]
    InvalidStatusChange { requested: &'static str },

    #[error("a ticket with this code already exists")]
    DuplicateTicket { ticket_code: String },

    #[error("this ticket already has a reservation")]
    AlreadyReserved,

    /// Issue 14h: another live gate registered this public key; a device key
    /// belongs to one gate (it pins that gate's LAN links).
    #[error("another gate already registered this public key")]
    DuplicateDeviceKey,

    #[error("this ticket is not activated")]
    TicketNotActive,

    #[error("this ticket has been cancelled")]
    TicketCancelled,

    #[error("this ticket expired at {expires_at}")]
    TicketExpired { expires_at: DateTime<Utc> },

    #[error("this ticket has already been used")]
    TicketRedeemed,

    #[error("the reservation was already verified at the gate")]
    ReservationVerified,

    #[error("the reservation is cancelled")]
    ReservationCancelled,

    #[error("wrong operator or PIN")]
    WrongPin,

    /// Too many wrong PINs for this operator: no PIN is checked until then.
    #[error("too many wrong PINs: try again in {retry_after_secs} s")]
    PinLocked {
        locked_until: DateTime<Utc>,
        retry_after_secs: u64,
    },

    /// The stored PIN hash is not one this app runs (see `venue::check_pin_hash`).
    #[error("this operator's PIN cannot be checked here ({reason}); an admin must set it again")]
    PinHashRefused { reason: &'static str },

    /// The gate refused the ticket; the verdict carries the reason and facts.
    #[error("{}", .0.message)]
    Refused(Box<Verdict>),

    #[error("the reserved date {date} is outside the ticket's validity")]
    OutsideValidity { date: NaiveDate },

    /// The reserved slot has started on the venue's clock: the reservation
    /// can no longer be changed or cancelled.
    #[error("the slot started at {start_time} on {date}; the reservation can no longer be changed or cancelled")]
    SlotAlreadyStarted {
        date: NaiveDate,
        start_time: NaiveTime,
    },

    /// A venue's time zone may not change while booked slots lie ahead: slot
    /// times are wall-clock times, so every booked visitor's entry window
    /// (and what offline gates judge) would move by the zones' difference.
    #[error("{slots} slot(s) from {from} on have bookings; their entry times would move with the time zone")]
    VenueHasBookingsAhead { slots: u64, from: NaiveDate },
}

impl DomainError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            field,
            reason: reason.into(),
        }
    }

    /// Stable machine code, part of the public API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidInput { .. } | Self::InvalidFields { .. } => "INVALID_INPUT",
            Self::NotFound { .. } => "NOT_FOUND",
            Self::DuplicateSlot => "DUPLICATE_SLOT",
            Self::SlotFull => "SLOT_FULL",
            Self::SlotClosed => "SLOT_CLOSED",
            Self::SlotInPast => "SLOT_IN_PAST",
            Self::CapacityBelowBooked { .. } => "CAPACITY_BELOW_BOOKED",
            Self::InvalidStatusChange { .. } => "INVALID_STATUS_CHANGE",
            Self::DuplicateTicket { .. } => "DUPLICATE_TICKET",
            Self::AlreadyReserved => "ALREADY_RESERVED",
            Self::DuplicateDeviceKey => "DUPLICATE_DEVICE_KEY",
            Self::TicketNotActive => "TICKET_NOT_ACTIVE",
            Self::TicketCancelled => "TICKET_CANCELLED",
            Self::TicketExpired { .. } => "TICKET_EXPIRED",
            Self::TicketRedeemed => "TICKET_REDEEMED",
            Self::ReservationVerified => "RESERVATION_VERIFIED",
            Self::ReservationCancelled => "RESERVATION_CANCELLED",
            Self::WrongPin => "WRONG_PIN",
            Self::PinLocked { .. } => "PIN_LOCKED",
            Self::PinHashRefused { .. } => "PIN_HASH_REFUSED",
            Self::Refused(verdict) => verdict.verdict.code(),
            Self::OutsideValidity { .. } => "OUTSIDE_VALIDITY",
            Self::SlotAlreadyStarted { .. } => "SLOT_ALREADY_STARTED",
            Self::VenueHasBookingsAhead { .. } => "VENUE_HAS_BOOKINGS_AHEAD",
        }
    }

    /// Structured facts for the client (`error.details`).
    pub fn details(&self) -> serde_json::Value {
        match self {
            Self::InvalidInput { field, reason } => {
                serde_json::json!({ "field": field, "fields": { *field: reason } })
            }
            Self::InvalidFields { fields } => serde_json::json!({
                "field": fields.first().map(|(f, _)| *f),
                "fields": fields
                    .iter()
                    .map(|(f, r)| (f.to_string(), serde_json::Value::from(r.as_str())))
                    .collect::<serde_json::Map<_, _>>(),
            }),
            Self::NotFound { entity } => serde_json::json!({ "entity": entity }),
            Self::DuplicateTicket { ticket_code } => {
                serde_json::json!({ "ticket_code": ticket_code })
            }
            Self::CapacityBelowBooked { booked, requested } => {
                serde_json::json!({ "booked_count": booked, "requested_capacity": requested })
            }
            Self::TicketExpired { expires_at } => serde_json::json!({ "expires_at": expires_at }),
            Self::Refused(verdict) => serde_json::to_value(verdict).unwrap_or_default(),
            Self::OutsideValidity { date } => serde_json::json!({ "date": date }),
            Self::VenueHasBookingsAhead { slots, from } => {
                serde_json::json!({ "booked_slots": slots, "from": from })
            }
            Self::SlotAlreadyStarted { date, start_time } => serde_json::json!({
                "date": date,
                "start_time": start_time.format("%H:%M:%S").to_string(),
            }),
            Self::PinLocked {
                locked_until,
                retry_after_secs,
            } => {
                serde_json::json!({ "locked_until": locked_until, "retry_after": retry_after_secs })
            }
            Self::InvalidStatusChange { requested } => {
                serde_json::json!({ "field": "status", "requested": requested })
            }
            _ => serde_json::Value::Null,
        }
    }
}
