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
use super::extract::{ApiJson, ApiQuery, Caller};
use super::AppState;
use crate::domain::venue_ops::{LeaseGrant, LeaseRequest, Occupancy};
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
        (status = 404, description = "NOT_FOUND: no such venue in the caller's org (or another venue than the token's)", body = ErrorBody)),
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

/// The most slots a lease refresh may name.
const MAX_LEASE_SLOTS: usize = 1000;

#[utoipa::path(post, path = "/api/sync/leases", tag = "sync", request_body = LeaseRequest,
    responses(
        (status = 200, description = "The walk-up places this gate holds now per slot: up to the venue's walkup_lease_places of each of today's slots open for entry, taken from the slot's free places (customers cannot book them), never fewer than the walk-ups it reports pending; unused places of a slot whose entry window closed are given back", body = LeaseGrant),
        (status = 401, description = "UNAUTHORIZED: not a device token", body = ErrorBody),
        (status = 422, description = "INVALID_INPUT: too many slots named", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn leases(
    State(state): State<AppState>,
    super::sync::Device(device): super::sync::Device,
    ApiJson(body): ApiJson<LeaseRequest>,
) -> Result<Json<LeaseGrant>, ApiError> {
    if body.pending.len() > MAX_LEASE_SLOTS || body.pending.iter().any(|p| p.places < 0) {
        return Err(crate::domain::DomainError::invalid(
            "pending",
            format!("at most {MAX_LEASE_SLOTS} slots, each with 0 or more places"),
        )
        .into());
    }
    let leases = state
        .run(move |s| s.refresh_leases(&device, &body.pending, Utc::now()))
        .await?;
    Ok(Json(LeaseGrant { leases }))
}
