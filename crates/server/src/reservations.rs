//! Reservation endpoints: customers create, read, reschedule and cancel their
//! own; operators read; admins do everything.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use utoipa::ToSchema;

use super::access::{check_sees, check_slot_venue, customer_or_admin, signed_in};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, Caller};
use super::{parse_code, parse_id, AppState};
use crate::domain::{ChangedBy, Contact, Reservation, ReservationId, Role, SlotId};
use crate::store::{Principal, ReserveRequest, ServerStore, StoreError};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct CreateReservationBody {
    #[schema(pattern = r"^[!-~]{1,64}$", example = "TKT-2025-ABC123")]
    pub ticket_id: String,
    #[schema(format = Uuid)]
    pub slot_id: String,
    #[schema(
        pattern = r"^[!-?A-~]{1,64}@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$",
        max_length = 254,
        example = "john@example.com"
    )]
    pub customer_email: String,
    /// E.164: `+`, the country code, 7 to 15 digits in all
    #[schema(pattern = r"^\+[1-9][0-9]{6,14}$", example = "+12025551234")]
    pub customer_phone: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct RescheduleBody {
    #[schema(format = Uuid)]
    pub slot_id: String,
}

/// The start of the visit binds customers; an admin (the desk) may still
/// change or cancel.
/// Who changes: staff (bound to a venue: that venue's only, checked again
/// inside the change's transaction) or a customer.
fn changed_by(p: &Principal) -> ChangedBy {
    match (p.role, p.venue_id) {
        (Role::Admin, Some(venue)) => ChangedBy::StaffOf(venue),
        (Role::Admin, None) => ChangedBy::Staff,
        _ => ChangedBy::Customer,
    }
}

/// The reservation, if `p` may see it (its ticket is theirs, or staff; a
/// venue-bound staff token only its venue's: the reservation's slot's).
fn visible_reservation(
    s: &dyn ServerStore,
    p: &Principal,
    id: ReservationId,
) -> Result<Reservation, StoreError> {
    let not_found = |_| crate::domain::DomainError::NotFound {
        entity: "reservation",
    };
    let r = s.get_reservation(p.orq, id)?;
    let ticket = s.get_ticket(p.orq, &r.ticket_id)?;
    check_sees(p, &ticket).map_err(not_found)?;
    check_slot_venue(s, p, r.slot_id).map_err(not_found)?;
    Ok(r)
}

#[utoipa::path(post, path = "/api/reservations/create", tag = "reservations", request_body = CreateReservationBody,
    responses((status = 403, description = "FORBIDDEN: this role may not do that", body = ErrorBody), (status = 404, description = "NOT_FOUND (details.entity says what). To a venue-bound admin, another venue's slot is `slot` whatever the code, and a ticket whose reservation is at another venue is `ticket`, as an unknown code", body = ErrorBody), (status = 201, body = Reservation), (status = 409, description = "SLOT_FULL, ALREADY_RESERVED", body = ErrorBody), (status = 422, description = "INVALID_INPUT (`details.fields` names every wrong field with its reason), SLOT_IN_PAST, SLOT_CLOSED, OUTSIDE_VALIDITY, TICKET_*", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateReservationBody>,
) -> Result<(StatusCode, Json<Reservation>), ApiError> {
    let p = customer_or_admin(&caller)?.clone();
    let req = ReserveRequest {
        ticket: parse_code(&body.ticket_id)?,
        slot_id: parse_id::<SlotId>(&body.slot_id, "slot")?,
        contact: Contact::validate(&body.customer_email, &body.customer_phone)?,
    };
    let reservation = state
        .run(move |s| {
            // The slot first: another venue's slot is NOT_FOUND `slot` to a
            // venue-bound admin whatever the code, so the refusal says
            // nothing of the ticket.
            check_slot_venue(s, &p, req.slot_id)?;
            check_sees(&p, &s.get_ticket(p.orq, &req.ticket)?)?;
            // Another venue's ticket is NOT_FOUND to a bound admin, decided
            // in the reservation's own transaction.
            s.reserve_slot_as(p.orq, &req, changed_by(&p), Utc::now())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(reservation)))
}

#[utoipa::path(get, path = "/api/reservations/{id}", tag = "reservations", params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Reservation), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Reservation>, ApiError> {
    let p = signed_in(&caller)?.clone();
    let id = parse_id::<ReservationId>(&id, "reservation")?;
    Ok(Json(
        state.run(move |s| visible_reservation(s, &p, id)).await?,
    ))
}

#[utoipa::path(put, path = "/api/reservations/{id}", tag = "reservations", params(("id" = String, Path, format = Uuid)), request_body = RescheduleBody,
    responses((status = 403, description = "FORBIDDEN: this role may not do that", body = ErrorBody), (status = 422, description = "INVALID_INPUT (details.field names the field) or another rule the request breaks", body = ErrorBody), (status = 200, body = Reservation), (status = 409, description = "SLOT_FULL, RESERVATION_VERIFIED, SLOT_ALREADY_STARTED (a customer, once the visit has started)", body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn reschedule(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RescheduleBody>,
) -> Result<Json<Reservation>, ApiError> {
    let p = customer_or_admin(&caller)?.clone();
    let id = parse_id::<ReservationId>(&id, "reservation")?;
    let slot = parse_id::<SlotId>(&body.slot_id, "slot")?;
    Ok(Json(
        state
            .run(move |s| {
                visible_reservation(s, &p, id)?;
                // The target too: else rescheduling another venue's ticket into
                // one's own slot, or one's own out, escapes the binding.
                check_slot_venue(s, &p, slot)?;
                s.reschedule_reservation(p.orq, id, slot, changed_by(&p), Utc::now())
            })
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/reservations/{id}", tag = "reservations", params(("id" = String, Path, format = Uuid)),
    responses((status = 403, description = "FORBIDDEN: this role may not do that", body = ErrorBody), (status = 404, description = "NOT_FOUND (details.entity says what)", body = ErrorBody), (status = 200, description = "The cancelled reservation", body = Reservation), (status = 409, description = "RESERVATION_VERIFIED, SLOT_ALREADY_STARTED (a customer, once the visit has started)", body = ErrorBody), (status = 422, description = "RESERVATION_CANCELLED", body = ErrorBody)), security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Reservation>, ApiError> {
    let p = customer_or_admin(&caller)?.clone();
    let id = parse_id::<ReservationId>(&id, "reservation")?;
    Ok(Json(
        state
            .run(move |s| {
                visible_reservation(s, &p, id)?;
                s.cancel_reservation(p.orq, id, changed_by(&p), Utc::now())
            })
            .await?,
    ))
}
