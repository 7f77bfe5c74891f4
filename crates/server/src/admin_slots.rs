//! The console's Slots page (issue 16): a venue's month with booked,
//! capacity and admitted per slot in one call, and a weekly pattern of slots
//! previewed (dry run) or created in one transaction, idempotently.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::{check_venue, slot_manager, staff};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiQuery, Caller};
use super::AppState;
use crate::domain::slot::{parse_date, parse_time};
use crate::domain::slot_pattern::{BoardSlot, Outcome, PlannedSlot, WeeklyPattern};
use crate::domain::{slot::DEFAULT_CAPACITY, DomainError, VenueId};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MonthQuery {
    #[param(minimum = 1, example = 1)]
    pub venue_id: i64,
    /// YYYY-MM
    #[param(pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])$", example = "2025-12")]
    pub month: String,
}

#[derive(Deserialize, ToSchema)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    #[schema(
        pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
        example = "09:00"
    )]
    pub start_time: String,
    #[schema(
        pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
        example = "12:00"
    )]
    pub end_time: String,
}

#[derive(Deserialize, ToSchema)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct PatternBody {
    #[schema(minimum = 1, example = 1)]
    pub venue_id: i64,
    #[schema(format = Date, example = "2026-04-01")]
    pub date_from: String,
    /// At most 366 days after date_from.
    #[schema(format = Date, example = "2026-06-30")]
    pub date_to: String,
    /// 1 = Monday … 7 = Sunday
    #[schema(example = json!([2, 3, 4, 5, 6, 7]))]
    pub weekdays: Vec<u8>,
    /// The venue's wall-clock times, not overlapping.
    pub times: Vec<TimeRange>,
    /// Default 200
    #[schema(minimum = 1, maximum = 1_000_000, example = 200)]
    #[cfg_attr(test, ts(optional))]
    pub total_capacity: Option<i64>,
    /// false: a preview (nothing is written); true: create the `create` slots.
    pub create: bool,
}

#[derive(Serialize, ToSchema)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct PatternAnswer {
    /// Whether this answer created the slots (false: a preview).
    pub created: bool,
    /// Slots that are (or would be) new.
    pub create_count: usize,
    /// The same slot exists already: left alone.
    pub exists_count: usize,
    /// Another slot of the venue overlaps it: not created.
    pub clash_count: usize,
    /// Its start or end does not exist on the venue's clock that day (DST).
    pub nonexistent_time_count: usize,
    pub slots: Vec<PlannedSlot>,
}

fn pattern_from(body: PatternBody) -> Result<(WeeklyPattern, bool), DomainError> {
    if body.venue_id <= 0 {
        return Err(DomainError::invalid(
            "venue_id",
            "must be a positive integer",
        ));
    }
    let from = parse_date("date_from", &body.date_from)?;
    let to = parse_date("date_to", &body.date_to)?;
    let times = body
        .times
        .iter()
        .map(|r| {
            Ok((
                parse_time("start_time", &r.start_time)?,
                parse_time("end_time", &r.end_time)?,
            ))
        })
        .collect::<Result<Vec<_>, DomainError>>()?;
    let pattern = WeeklyPattern::validate(
        VenueId(body.venue_id),
        from,
        to,
        &body.weekdays,
        times,
        body.total_capacity.unwrap_or(DEFAULT_CAPACITY),
    )?;
    Ok((pattern, body.create))
}

#[utoipa::path(get, path = "/api/admin/slots/month", tag = "admin", params(MonthQuery),
    responses((status = 200, description = "The venue's slots of the month in date and time order, each with its admitted count (reservations verified at a gate)", body = [BoardSlot]),
        (status = 403, description = "FORBIDDEN: this role may not do that", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such venue (or another venue than the token's)", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("console_cookie" = [])))]
pub async fn month(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<MonthQuery>,
) -> Result<Json<Vec<BoardSlot>>, ApiError> {
    let p = staff(&caller)?.clone();
    let orq = p.orq;
    let venue = VenueId(q.venue_id);
    Ok(Json(
        state
            .run(move |s| {
                check_venue(&p, venue, "venue")?;
                s.slot_board(orq, venue, &q.month)
            })
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/admin/slots/pattern", tag = "admin", request_body = PatternBody,
    responses((status = 200, description = "A preview: what `create: true` would do; nothing written", body = PatternAnswer),
        (status = 201, description = "Created, in one transaction; slots that exist are left as they are", body = PatternAnswer),
        (status = 403, description = "FORBIDDEN: this role may not do that", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such venue (or another venue than the token's)", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("console_cookie" = [])))]
pub async fn pattern(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PatternBody>,
) -> Result<(StatusCode, Json<PatternAnswer>), ApiError> {
    let p = slot_manager(&caller)?.clone();
    let orq = p.orq;
    let (pattern, create) = pattern_from(body)?;
    let slots = state
        .run(move |s| {
            check_venue(&p, pattern.venue_id, "venue")?;
            s.apply_slot_pattern(orq, &pattern, create, Utc::now())
        })
        .await?;
    let count = |o: Outcome| slots.iter().filter(|s| s.outcome == o).count();
    let answer = PatternAnswer {
        created: create,
        create_count: count(Outcome::Create),
        exists_count: count(Outcome::Exists),
        clash_count: count(Outcome::Clash),
        nonexistent_time_count: count(Outcome::NonexistentTime),
        slots,
    };
    let status = if create {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(answer)))
}
