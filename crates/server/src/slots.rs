//! Slot endpoints: supervisors manage, everyone reads availability.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::{check_venue, slot_manager, staff};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use super::{parse_id, AppState};
use crate::domain::{
    slot::parse_date, NewSlot, Orq, Slot, SlotChange, SlotId, SlotOffer, SlotRemoval, SlotStatus,
    VenueId,
};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSlotBody {
    #[schema(minimum = 1, example = 1)]
    pub venue_id: i64,
    #[schema(format = Date, example = "2025-12-01")]
    pub date: String,
    /// HH:MM or HH:MM:SS
    #[schema(
        pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
        example = "09:00"
    )]
    pub start_time: String,
    /// After start_time (a slot cannot cross midnight)
    #[schema(
        pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
        example = "12:00"
    )]
    pub end_time: String,
    /// Default 200
    #[schema(minimum = 1, maximum = 1_000_000, example = 200)]
    pub total_capacity: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSlotBody {
    /// At least the booked count (else CAPACITY_BELOW_BOOKED)
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub total_capacity: Option<i64>,
    /// ACTIVE (reopen) or CLOSED; FULL follows the count.
    #[schema(pattern = "^(ACTIVE|CLOSED)$")]
    pub status: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SlotListQuery {
    pub venue_id: Option<i64>,
    #[param(format = Date)]
    pub date_from: Option<String>,
    #[param(format = Date)]
    pub date_to: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AvailableQuery {
    /// YYYY-MM
    #[param(pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])$", example = "2025-12")]
    pub month: String,
    /// The organization; defaults to the token's.
    pub orq: Option<i64>,
    pub venue_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct RemovedSlot {
    /// `deleted` (nobody had booked it) or `closed` (it has reservations).
    pub result: SlotRemoval,
    pub slot: Option<Slot>,
}

#[utoipa::path(post, path = "/api/operator/slots/create", tag = "slots", request_body = CreateSlotBody,
    responses((status = 403, description = "FORBIDDEN: this role may not do that", body = ErrorBody), (status = 201, body = Slot), (status = 404, description = "NOT_FOUND: no such venue (or another venue than the token's)", body = ErrorBody), (status = 409, description = "DUPLICATE_SLOT", body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_slot(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateSlotBody>,
) -> Result<(StatusCode, Json<Slot>), ApiError> {
    let p = slot_manager(&caller)?.clone();
    let orq = p.orq;
    let new = NewSlot::validate(
        body.venue_id,
        &body.date,
        &body.start_time,
        &body.end_time,
        body.total_capacity,
    )?;
    let slot = state
        .run(move |s| {
            check_venue(&p, new.venue_id, "venue")?;
            s.create_slot(orq, &new, Utc::now())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(slot)))
}

#[utoipa::path(put, path = "/api/operator/slots/{slot_id}", tag = "slots", request_body = UpdateSlotBody,
    params(("slot_id" = String, Path, format = Uuid)),
    responses((status = 403, description = "FORBIDDEN: this role may not do that", body = ErrorBody), (status = 200, body = Slot), (status = 404, body = ErrorBody), (status = 422, description = "CAPACITY_BELOW_BOOKED", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_slot(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateSlotBody>,
) -> Result<Json<Slot>, ApiError> {
    let p = slot_manager(&caller)?.clone();
    let orq = p.orq;
    let id: SlotId = parse_id(&id, "slot")?;
    let change = SlotChange {
        total_capacity: body.total_capacity,
        status: body.status.as_deref().map(SlotStatus::parse).transpose()?,
    };
    Ok(Json(
        state
            .run(move |s| {
                // A slot never moves to another venue, so checking first is enough.
                check_venue(&p, s.get_slot(orq, id)?.venue_id, "slot")?;
                s.update_slot(orq, id, change, Utc::now())
            })
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/operator/slots/{slot_id}", tag = "slots", params(("slot_id" = String, Path, format = Uuid)),
    responses((status = 403, description = "FORBIDDEN: this role may not do that", body = ErrorBody), (status = 200, body = RemovedSlot), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete_slot(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RemovedSlot>, ApiError> {
    let p = slot_manager(&caller)?.clone();
    let orq = p.orq;
    let id: SlotId = parse_id(&id, "slot")?;
    let (result, slot) = state
        .run(move |s| {
            check_venue(&p, s.get_slot(orq, id)?.venue_id, "slot")?;
            s.remove_slot(orq, id, Utc::now())
        })
        .await?;
    Ok(Json(RemovedSlot { result, slot }))
}

#[utoipa::path(get, path = "/api/operator/slots/{slot_id}", tag = "slots", params(("slot_id" = String, Path, format = Uuid)),
    responses((status = 403, description = "FORBIDDEN: this role may not do that", body = ErrorBody), (status = 200, body = Slot), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get_slot(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Slot>, ApiError> {
    let orq = staff(&caller)?.orq;
    let id: SlotId = parse_id(&id, "slot")?;
    Ok(Json(state.run(move |s| s.get_slot(orq, id)).await?))
}

#[utoipa::path(get, path = "/api/operator/slots", tag = "slots", params(SlotListQuery),
    responses((status = 403, description = "FORBIDDEN: this role may not do that", body = ErrorBody), (status = 200, body = [Slot]), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_slots(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SlotListQuery>,
) -> Result<Json<Vec<Slot>>, ApiError> {
    let orq = staff(&caller)?.orq;
    let from = q
        .date_from
        .as_deref()
        .map(|d| parse_date("date_from", d))
        .transpose()?;
    let to = q
        .date_to
        .as_deref()
        .map(|d| parse_date("date_to", d))
        .transpose()?;
    Ok(Json(
        state
            .run(move |s| s.list_slots(orq, q.venue_id.map(VenueId), from, to))
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/reservation-slots/available", tag = "slots", params(AvailableQuery),
    responses((status = 401, description = "UNAUTHORIZED: an unknown, expired or revoked token (the endpoint also answers without one)", body = ErrorBody), (status = 200, description = "ACTIVE and FULL slots of the month (CLOSED are not offered), each with whether it takes a reservation now (on its venue's clock; for a customer session, within the ticket's validity)", body = [SlotOffer]), (status = 422, body = ErrorBody)))]
pub async fn available(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AvailableQuery>,
) -> Result<Json<Vec<SlotOffer>>, ApiError> {
    let orq = q
        .orq
        .or(caller.0.as_ref().map(|p| p.orq.0))
        .ok_or_else(|| ApiError::BadRequest {
            code: "INVALID_QUERY",
            message: "orq is required without a token".into(),
        })?;
    // A customer session's ticket (in the asked organization) decides validity.
    let ticket = caller
        .0
        .as_ref()
        .filter(|p| p.orq.0 == orq)
        .and_then(|p| p.ticket_code.clone());
    Ok(Json(
        state
            .run(move |s| {
                s.offered_slots(
                    Orq(orq),
                    &q.month,
                    q.venue_id.map(VenueId),
                    ticket.as_ref(),
                    Utc::now(),
                )
            })
            .await?,
    ))
}
