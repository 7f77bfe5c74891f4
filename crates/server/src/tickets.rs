//! Ticket endpoints for customers (their own tickets) and staff.

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{self, check_sees, customer_or_admin, signed_in};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, Caller, ClientIp};
use super::{parse_code, AppState};
use crate::domain::{CustomerActions, DomainError, Reservation, Ticket, Verdict};
use crate::store::StoreError;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketCodeBody {
    #[schema(pattern = r"^[!-~]{1,64}$", example = "TKT-2025-ABC123")]
    pub ticket_code: String,
}

/// A ticket's state as a customer or the desk sees it.
#[derive(Serialize, ToSchema)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct TicketState {
    pub ticket: Ticket,
    pub reservation: Option<Reservation>,
    /// The reserved slot, even if it was closed since.
    pub slot: Option<crate::domain::Slot>,
    /// Where the reserved slot is.
    pub venue: Option<VenueSummary>,
    /// The signed code to show at the gate (as a QR code).
    pub signed_code: String,
    /// What the customer may do now (reserve, change, cancel) and, for what
    /// they may not, the error code the server would answer; decided on the
    /// venue's clock, so the page needs no rule or time zone of its own.
    pub actions: CustomerActions,
}

/// What a customer needs to know of a venue (calendar file, directions).
#[derive(Serialize, ToSchema)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct VenueSummary {
    pub id: i64,
    pub name: String,
    /// IANA zone of the slot times.
    pub timezone: String,
}

#[utoipa::path(post, path = "/api/tickets/validate", tag = "tickets", request_body = TicketCodeBody,
    responses((status = 200, description = "May this ticket reserve? `admit` true means yes. Another customer's ticket, and for a venue-bound staff token another venue's or a never-reserved one, answers UNKNOWN_TICKET as an unknown code does", body = Verdict), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn validate(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    ApiJson(body): ApiJson<TicketCodeBody>,
) -> Result<Json<Verdict>, ApiError> {
    let p = signed_in(&caller)?.clone();
    state.limiter.check("lookup", Some(&p), ip.0)?;
    let code = parse_code(&body.ticket_code)?;
    Ok(Json(
        state
            .run(move |s| {
                // Another customer's ticket is as unknown as a made-up code,
                // and so, to a venue-bound staff token (as for the status),
                // is another venue's ticket or one never reserved (it has no
                // venue). Checked in its own read: a verdict only reads, so a
                // reservation moved in between shows nothing the caller could
                // not see a moment before.
                let now = Utc::now();
                let hidden = match s.get_ticket_in(p.orq, &code, access::staff_venue(&p)) {
                    Ok(t) => !access::may_see(&p, &t),
                    Err(StoreError::Domain(DomainError::NotFound { .. })) => true,
                    Err(e) => return Err(e),
                };
                if hidden {
                    // The same shape as the store's answer for an unknown code.
                    let mut v = crate::domain::reservation_verdict(None, None, now);
                    v.ticket_code = Some(code.to_string());
                    return Ok(v);
                }
                s.reservation_eligibility(p.orq, &code, now)
            })
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/tickets/{ticket_id}/activate", tag = "tickets", params(("ticket_id" = String, Path, pattern = r"^[!-~]{1,64}$")),
    responses((status = 403, description = "FORBIDDEN: this role may not do that", body = ErrorBody), (status = 429, description = "RATE_LIMITED: too many look-ups; `Retry-After` says when to try again", body = ErrorBody), (status = 200, body = Ticket), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<Ticket>, ApiError> {
    let p = customer_or_admin(&caller)?.clone();
    state.limiter.check("lookup", Some(&p), ip.0)?;
    let code = parse_code(&code)?;
    Ok(Json(
        state
            .run(move |s| {
                // A customer's own ticket only (its scope never moves); a
                // venue-bound admin's venue is decided in the write itself.
                check_sees(&p, &s.get_ticket(p.orq, &code)?)?;
                s.activate_ticket(p.orq, &code, access::staff_venue(&p), Utc::now())
            })
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/tickets/{ticket_id}/status", tag = "tickets", params(("ticket_id" = String, Path, pattern = r"^[!-~]{1,64}$")),
    responses((status = 422, description = "INVALID_INPUT (details.field names the field) or another rule the request breaks", body = ErrorBody), (status = 429, description = "RATE_LIMITED: too many look-ups; `Retry-After` says when to try again", body = ErrorBody), (status = 200, body = TicketState), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<TicketState>, ApiError> {
    let p = signed_in(&caller)?;
    state.limiter.check("lookup", Some(p), ip.0)?;
    let (orq, reader, venue) = (p.orq, access::ticket_reader(p), access::staff_venue(p));
    let code = parse_code(&code)?;
    let ticket = state
        .run(move |s| {
            // A venue-bound staff token sees its venue's tickets only (as the
            // console's routes): another venue's is NOT_FOUND, signed code and all.
            if venue.is_some() {
                s.get_ticket_in(orq, &code, venue)?;
            }
            s.ticket_state(orq, &code, &reader, Utc::now())
        })
        .await?;
    Ok(Json(ticket.into()))
}

impl From<crate::store::TicketState> for TicketState {
    fn from(s: crate::store::TicketState) -> Self {
        Self {
            ticket: s.ticket,
            reservation: s.reservation,
            slot: s.slot,
            venue: s.venue.map(|v| VenueSummary {
                id: v.id.0,
                name: v.name,
                timezone: v.timezone.name().to_string(),
            }),
            signed_code: s.signed_code,
            actions: s.actions,
        }
    }
}

#[utoipa::path(get, path = "/api/tickets", tag = "tickets",
    responses((status = 200, description = "The customer's own tickets: a session's one ticket, or the user's tickets", body = [Ticket]), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn own_tickets(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Ticket>>, ApiError> {
    let (p, scope) = access::own_tickets(&caller)?;
    let orq = p.orq;
    let Some(scope) = scope else {
        return Ok(Json(Vec::new()));
    };
    Ok(Json(
        state
            .run(move |s| s.customer_tickets(orq, &scope, 1000))
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SessionBody {
    #[schema(pattern = r"^[!-~]{1,64}$", example = "TKT-2025-ABC123")]
    pub ticket_code: String,
    /// The purchase e-mail (or the one given when reserving).
    #[schema(
        pattern = r"^[!-?A-~]{1,64}@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$",
        max_length = 254,
        example = "john@example.com"
    )]
    pub email: String,
}

#[derive(Serialize, ToSchema)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct CustomerSession {
    /// A customer token for this one ticket: `Authorization: Bearer …`.
    pub token: String,
    pub ticket_code: String,
    pub expires_at: chrono::DateTime<Utc>,
}

#[utoipa::path(post, path = "/api/customer/session", tag = "tickets", request_body = SessionBody,
    responses((status = 401, description = "UNAUTHORIZED: an unknown, expired or revoked token (the endpoint also answers without one)", body = ErrorBody), (status = 201, body = CustomerSession), (status = 404, description = "No ticket with this code and e-mail", body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn customer_session(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    ApiJson(body): ApiJson<SessionBody>,
) -> Result<(axum::http::StatusCode, Json<CustomerSession>), ApiError> {
    state.limiter.check("session", caller.0.as_ref(), ip.0)?;
    let code = parse_code(&body.ticket_code)?;
    let (token, p, expires_at) = state
        .run(move |s| s.customer_session(&code, &body.email, Utc::now()))
        .await?;
    let ticket_code = p.ticket_code.map(|c| c.to_string()).unwrap_or_default();
    Ok((
        axum::http::StatusCode::CREATED,
        Json(CustomerSession {
            token,
            ticket_code,
            expires_at,
        }),
    ))
}

#[utoipa::path(delete, path = "/api/customer/session", tag = "tickets",
    responses((status = 204, description = "Signed out: the session's token answers 401 from now on"), (status = 401, body = ErrorBody), (status = 403, description = "Not a customer session (staff and user tokens are revoked by an admin)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn end_customer_session(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::http::StatusCode, ApiError> {
    let token_id = access::customer_session(&caller)?.token_id;
    state
        .run(move |s| s.revoke_token_id(token_id, Utc::now()))
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
