//! How domain values are written to and read from SQLite columns, and the
//! row mappers. Timestamps are ISO 8601 UTC with milliseconds, which sort as text.

use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Utc};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::Row;

use crate::column::{FromColumn, RowExt, ToColumn};
use crate::domain::{
    ActivationMode, ActivationStatus, DomainError, Operator, OperatorId, Orq, Reservation,
    ReservationId, ReservationStatus, Role, Slot, SlotId, SlotStatus, Ticket, TicketCode,
    TicketStatus, Venue, VenueId,
};

pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

pub fn time(t: NaiveTime) -> String {
    t.format("%H:%M:%S").to_string()
}

fn bad(e: impl std::error::Error + Send + Sync + 'static) -> FromSqlError {
    FromSqlError::Other(Box::new(e))
}

/// A UTC timestamp column.
pub struct Ts(pub DateTime<Utc>);

impl FromSql for Ts {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        DateTime::parse_from_rfc3339(s)
            .map(|t| Ts(t.with_timezone(&Utc)))
            .map_err(bad)
    }
}

pub(crate) fn opt_ts(row: &Row<'_>, col: &str) -> rusqlite::Result<Option<DateTime<Utc>>> {
    Ok(row.get::<_, Option<Ts>>(col)?.map(|t| t.0))
}

pub(crate) fn get_ts(row: &Row<'_>, col: &str) -> rusqlite::Result<DateTime<Utc>> {
    Ok(row.get::<_, Ts>(col)?.0)
}

macro_rules! int_sql {
    ($($ty:ident),+) => {$(
        impl ToColumn for $ty {
            fn to_column(&self) -> ToSqlOutput<'_> {
                ToSqlOutput::from(self.0)
            }
        }
        impl FromColumn for $ty {
            fn from_column(value: ValueRef<'_>) -> FromSqlResult<Self> {
                i64::column_result(value).map($ty)
            }
        }
    )+};
}
int_sql!(Orq, VenueId, OperatorId);

macro_rules! uuid_sql {
    ($($ty:ident),+) => {$(
        impl ToColumn for $ty {
            fn to_column(&self) -> ToSqlOutput<'_> {
                ToSqlOutput::from(self.to_string())
            }
        }
        impl FromColumn for $ty {
            fn from_column(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value.as_str()?.parse::<$ty>().map_err(bad)
            }
        }
    )+};
}
uuid_sql!(SlotId, ReservationId);

macro_rules! text_sql {
    ($($ty:ident),+) => {$(
        impl ToColumn for $ty {
            fn to_column(&self) -> ToSqlOutput<'_> {
                ToSqlOutput::from(self.as_str())
            }
        }
        impl FromColumn for $ty {
            fn from_column(value: ValueRef<'_>) -> FromSqlResult<Self> {
                $ty::parse(value.as_str()?).map_err(bad)
            }
        }
    )+};
}
text_sql!(
    SlotStatus,
    ReservationStatus,
    TicketStatus,
    ActivationStatus,
    ActivationMode,
    Role
);

impl ToColumn for TicketCode {
    fn to_column(&self) -> ToSqlOutput<'_> {
        ToSqlOutput::from(self.as_str())
    }
}

impl FromColumn for TicketCode {
    fn from_column(value: ValueRef<'_>) -> FromSqlResult<Self> {
        TicketCode::parse(value.as_str()?).map_err(bad)
    }
}

fn parse_col<T>(
    row: &Row<'_>,
    col: &str,
    parse: impl FnOnce(&str) -> Result<T, DomainError>,
) -> rusqlite::Result<T> {
    let raw: String = row.get(col)?;
    parse(&raw).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub const SLOT_COLUMNS: &str = "id, date, start_time, end_time, venue_id, total_capacity, \
     booked_count, available_count, status, orq, created_at, updated_at";

pub fn slot(row: &Row<'_>) -> rusqlite::Result<Slot> {
    use crate::domain::slot::{parse_date, parse_time};
    Ok(Slot {
        id: row.col("id")?,
        date: parse_col(row, "date", |s| parse_date("date", s))?,
        start_time: parse_col(row, "start_time", |s| parse_time("start_time", s))?,
        end_time: parse_col(row, "end_time", |s| parse_time("end_time", s))?,
        venue_id: row.col("venue_id")?,
        total_capacity: row.get("total_capacity")?,
        booked_count: row.get("booked_count")?,
        available_count: row.get("available_count")?,
        status: row.col("status")?,
        orq: row.col("orq")?,
        created_at: get_ts(row, "created_at")?,
        updated_at: get_ts(row, "updated_at")?,
    })
}

pub const TICKET_COLUMNS: &str = "ticket_code, orq, order_id, product_id, user_id, status, \
     entitlements, expires_at, created_at, updated_at, customer_email, customer_phone, \
     reserved_at, verified_at, verified_by, activation_status, activated_at, activation_mode, purchase_email";

pub fn ticket(row: &Row<'_>) -> rusqlite::Result<Ticket> {
    Ok(Ticket {
        ticket_code: row.col("ticket_code")?,
        orq: row.col("orq")?,
        order_id: row.get("order_id")?,
        product_id: row.get("product_id")?,
        user_id: row.get("user_id")?,
        status: row.col("status")?,
        entitlements: parse_col(row, "entitlements", |s| {
            serde_json::from_str(s).map_err(|_| DomainError::invalid("entitlements", "bad JSON"))
        })?,
        expires_at: opt_ts(row, "expires_at")?,
        created_at: get_ts(row, "created_at")?,
        updated_at: get_ts(row, "updated_at")?,
        customer_email: row.get("customer_email")?,
        customer_phone: row.get("customer_phone")?,
        reserved_at: opt_ts(row, "reserved_at")?,
        verified_at: opt_ts(row, "verified_at")?,
        verified_by: row.col("verified_by")?,
        activation_status: row.col("activation_status")?,
        activated_at: opt_ts(row, "activated_at")?,
        activation_mode: row.col("activation_mode")?,
        purchase_email: row.get("purchase_email")?,
    })
}

pub const RESERVATION_COLUMNS: &str = "id, ticket_id, slot_id, customer_email, customer_phone, \
     reserved_at, status, orq, created_at, updated_at, no_show_at";

pub fn reservation(row: &Row<'_>) -> rusqlite::Result<Reservation> {
    Ok(Reservation {
        id: row.col("id")?,
        ticket_id: row.col("ticket_id")?,
        slot_id: row.col("slot_id")?,
        customer_email: row.get("customer_email")?,
        customer_phone: row.get("customer_phone")?,
        reserved_at: get_ts(row, "reserved_at")?,
        status: row.col("status")?,
        orq: row.col("orq")?,
        created_at: get_ts(row, "created_at")?,
        updated_at: get_ts(row, "updated_at")?,
        no_show_at: opt_ts(row, "no_show_at")?,
    })
}

pub const VENUE_COLUMNS: &str =
    "id, orq, name, timezone, early_grace_minutes, late_grace_minutes, created_at, updated_at, \
     reentry_allowed, walkup_lease_places, no_show_release_minutes, occupancy_limit, closing_time";

pub fn venue(row: &Row<'_>) -> rusqlite::Result<Venue> {
    let ops = crate::domain::venue_ops::VenueOps {
        reentry_allowed: row.get("reentry_allowed")?,
        walkup_lease_places: row.get("walkup_lease_places")?,
        no_show_release_minutes: row.get("no_show_release_minutes")?,
        occupancy_limit: row.get("occupancy_limit")?,
        closing_time: row
            .get::<_, Option<String>>("closing_time")?
            .and_then(|t| chrono::NaiveTime::parse_from_str(&t, "%H:%M:%S").ok()),
    };
    Ok(Venue {
        id: row.col("id")?,
        orq: row.col("orq")?,
        name: row.get("name")?,
        timezone: parse_col(row, "timezone", crate::domain::venue::parse_timezone)?,
        gate: crate::domain::venue::GateSettings::new(
            row.get("early_grace_minutes")?,
            row.get("late_grace_minutes")?,
        )
        .and_then(|g| g.with_ops(ops))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Integer,
                Box::new(e),
            )
        })?,
        created_at: get_ts(row, "created_at")?,
        updated_at: get_ts(row, "updated_at")?,
    })
}

pub const OPERATOR_COLUMNS: &str =
    "id, orq, role, display_name, pin_hash, created_at, updated_at, deactivated_at";

pub fn operator(row: &Row<'_>) -> rusqlite::Result<Operator> {
    Ok(Operator {
        id: row.col("id")?,
        orq: row.col("orq")?,
        role: row.col("role")?,
        display_name: row.get("display_name")?,
        pin_hash: row.get("pin_hash")?,
        created_at: get_ts(row, "created_at")?,
        updated_at: get_ts(row, "updated_at")?,
        deactivated_at: row.get::<_, Option<Ts>>("deactivated_at")?.map(|t| t.0),
    })
}
