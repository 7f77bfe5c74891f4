//! Venue operations (issue 15): the live occupancy of a venue, counted from
//! every entry and exit the server holds (its own verifications and the
//! gates' uploaded events).

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use utoipa::IntoParams;

use super::access::{check_venue, staff};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiQuery, Caller};
use super::AppState;
use crate::domain::venue_ops::Occupancy;
use crate::domain::VenueId;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OccupancyQuery {
    /// The venue whose people inside are counted.
    #[param(minimum = 1)]
    pub venue_id: i64,
}

#[utoipa::path(get, path = "/api/operator/occupancy", tag = "gate", params(OccupancyQuery),
    responses(
        (status = 200, description = "People inside now: entries minus exits since the venue's day began, across all its gates, as far as they have synced; `limit` is the venue's occupancy limit (null: none), `level` NORMAL / NEAR (90 %) / FULL (100 %)", body = Occupancy),
        (status = 403, description = "FORBIDDEN: operators, supervisors and admins only", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such venue in the caller's org (or another venue than the token's)", body = ErrorBody),
        (status = 422, description = "INVALID_QUERY: venue_id missing or not a number", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn occupancy(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<OccupancyQuery>,
) -> Result<Json<Occupancy>, ApiError> {
    let p = staff(&caller)?.clone();
    let venue = VenueId(q.venue_id);
    check_venue(&p, venue, "venue")?;
    Ok(Json(
        state
            .run(move |s| s.occupancy(p.orq, venue, Utc::now()))
            .await?,
    ))
}
