//! Admin endpoints the spec assumes Directus provides: venues, tickets
//! (single, batch, CSV), operators, tokens.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::{admin, check_venue, org_admin, slot_manager};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use super::{parse_code, parse_id, AppState};
use crate::domain::{
    venue::VenuePatch, ActivationMode, DomainError, NewTicket, Operator, Role, Ticket, Venue,
    VenueId,
};

/// Tickets per request, batch or CSV: large enough for an event's import,
/// small enough to hold the write lock for well under a second.
pub const MAX_TICKETS_PER_REQUEST: usize = 20_000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVenueBody {
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        max_length = 200,
        example = "Museo del Prado"
    )]
    pub name: String,
    #[schema(schema_with = super::timezone_schema)]
    pub timezone: String,
}

#[utoipa::path(post, path = "/api/admin/venues", tag = "admin", request_body = CreateVenueBody,
    responses((status = 403, description = "FORBIDDEN: this role may not do that", body = ErrorBody), (status = 201, body = Venue), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn create_venue(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateVenueBody>,
) -> Result<(StatusCode, Json<Venue>), ApiError> {
    let orq = admin(&caller)?.orq;
    let venue = state
        .run(move |s| s.add_venue(orq, &body.name, &body.timezone, Utc::now()))
        .await?;
    Ok((StatusCode::CREATED, Json(venue)))
}

#[utoipa::path(get, path = "/api/admin/venues", tag = "admin", responses((status = 403, description = "FORBIDDEN: this role may not do that", body = ErrorBody), (status = 200, description = "The org's venues (supervisors and admins: the console's Slots page picks one; a venue-bound token lists its venue only)", body = [Venue])), security(("bearer" = []), ("console_cookie" = [])))]
pub async fn list_venues(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Venue>>, ApiError> {
    let p = slot_manager(&caller)?;
    let (orq, bound) = (p.orq, p.venue_id);
    let mut venues = state.run(move |s| s.list_venues(orq)).await?;
    venues.retain(|v| bound.is_none_or(|b| b == v.id));
    Ok(Json(venues))
}

#[utoipa::path(get, path = "/api/admin/venues/{venue_id}", tag = "admin", params(("venue_id" = i64, Path)),
    responses((status = 200, description = "The venue with its gate settings", body = Venue),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, description = "NOT_FOUND: no such venue in the token's org (or not an id)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_venue(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Venue>, ApiError> {
    let orq = admin(&caller)?.orq;
    let id = VenueId(parse_id(&id, "venue")?);
    Ok(Json(state.run(move |s| s.get_venue(orq, id)).await?))
}

#[utoipa::path(patch, path = "/api/admin/venues/{venue_id}", tag = "admin", params(("venue_id" = i64, Path)),
    request_body = VenuePatch,
    responses((status = 200, description = "The venue now; its gates follow with their next sync", body = Venue),
        (status = 400, description = "MALFORMED_JSON", body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, description = "NOT_FOUND: no such venue in the token's org (or not an id)", body = ErrorBody),
        (status = 409, description = "VENUE_HAS_BOOKINGS_AHEAD: a new time zone while slots from yesterday on (details.from: a slot may stay open past midnight) have bookings (details.booked_slots); nothing changed", body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "INVALID_BODY (an unknown field, not an integer) or INVALID_INPUT (an empty name, an unknown time zone, out of 0..=240, nothing to change; details.field says which)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_venue(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<VenuePatch>,
) -> Result<Json<Venue>, ApiError> {
    let p = admin(&caller)?.clone();
    let id = VenueId(parse_id(&id, "venue")?);
    Ok(Json(
        state
            .run(move |s| {
                // A token bound to a venue changes that venue only.
                check_venue(&p, id, "venue")?;
                s.update_venue(p.orq, id, &patch, Utc::now())
            })
            .await?,
    ))
}

fn check_batch(n: usize) -> Result<(), ApiError> {
    if n == 0 || n > MAX_TICKETS_PER_REQUEST {
        return Err(DomainError::invalid(
            "tickets",
            format!("send 1 to {MAX_TICKETS_PER_REQUEST} tickets per request"),
        )
        .into());
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/admin/tickets", tag = "admin",
    request_body(content = Vec<NewTicket>, description = "One ticket object or an array of them"),
    responses((status = 403, description = "FORBIDDEN: this role may not do that; ORG_ADMIN_ONLY: the admin token is bound to a venue (a ticket has no venue until reserved, so only an admin of the whole org issues tickets)", body = ErrorBody), (status = 201, body = [Ticket]), (status = 409, description = "DUPLICATE_TICKET: nothing was created", body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_tickets(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<(StatusCode, Json<Vec<Ticket>>), ApiError> {
    let orq = org_admin(&caller, "creating tickets")?.orq;
    let parse = |v: serde_json::Value, i: usize| {
        serde_json::from_value::<NewTicket>(v).map_err(|e| ApiError::Http {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "INVALID_BODY",
            message: format!("ticket {i}: {e}"),
        })
    };
    let tickets: Vec<NewTicket> = match body {
        serde_json::Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| parse(v, i))
            .collect::<Result<_, _>>()?,
        one @ serde_json::Value::Object(_) => vec![parse(one, 0)?],
        _ => {
            return Err(
                DomainError::invalid("tickets", "send a ticket object or an array of them").into(),
            )
        }
    };
    check_batch(tickets.len())?;
    let created = state
        .run(move |s| s.insert_tickets(orq, &tickets, Utc::now()))
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[derive(Deserialize)]
pub(crate) struct CsvRow {
    ticket_code: String,
    order_id: Option<i64>,
    product_id: Option<i64>,
    user_id: Option<i64>,
    activation_mode: Option<String>,
    expires_at: Option<String>,
    entitlements: Option<String>,
    purchase_email: Option<String>,
}

/// Takes off the `'` the export puts before a cell a spreadsheet would run
/// as a formula (`admin_tickets::spreadsheet_safe`); any other cell is as
/// written.
pub(crate) fn unquote_cell(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(crate::admin_tickets::ARMED) => rest,
        _ => cell,
    }
}

pub(crate) fn ticket_from_csv(row: CsvRow) -> Result<NewTicket, DomainError> {
    Ok(NewTicket {
        ticket_code: parse_code(unquote_cell(&row.ticket_code))?,
        order_id: row.order_id,
        product_id: row.product_id,
        user_id: row.user_id,
        activation_mode: row
            .activation_mode
            .filter(|m| !m.is_empty())
            .map(|m| ActivationMode::parse(&m))
            .transpose()?
            .unwrap_or_default(),
        expires_at: row
            .expires_at
            .filter(|e| !e.is_empty())
            .map(|e| DateTime::parse_from_rfc3339(&e).map(|t| t.with_timezone(&Utc)))
            .transpose()
            .map_err(|_| DomainError::invalid("expires_at", "must be an ISO 8601 timestamp"))?,
        entitlements: row
            .entitlements
            .filter(|e| !e.is_empty())
            .map(|e| serde_json::from_str(unquote_cell(&e)))
            .transpose()
            .map_err(|_| DomainError::invalid("entitlements", "must be JSON"))?
            .map(crate::domain::ticket::entitlements)
            .transpose()?
            .flatten(),
        // Checked here as the insert checks it (and stored as the insert
        // stores it), so a bad address is a bad row, named by line and field,
        // not a refusal of the whole file when the rows are written.
        purchase_email: row
            .purchase_email
            .filter(|e| !e.is_empty())
            .map(|e| {
                crate::domain::reservation::validate_email(unquote_cell(&e)).map_err(|e| match e {
                    DomainError::InvalidInput { reason, .. } => {
                        DomainError::invalid("purchase_email", reason)
                    }
                    other => other,
                })
            })
            .transpose()?,
    })
}

#[utoipa::path(post, path = "/api/admin/tickets/import", tag = "admin",
    request_body(content = String, content_type = "text/csv", description = "Header: ticket_code,order_id,product_id,user_id,activation_mode,expires_at,entitlements,purchase_email (only ticket_code required)"),
    responses((status = 403, description = "FORBIDDEN: this role may not do that; ORG_ADMIN_ONLY: the admin token is bound to a venue (only an admin of the whole org imports tickets)", body = ErrorBody), (status = 409, description = "A conflict with the current state (the code says which)", body = ErrorBody), (status = 201, body = [Ticket]), (status = 422, description = "A bad row; details.line says which", body = ErrorBody)), security(("bearer" = [])))]
pub async fn import_tickets(
    State(state): State<AppState>,
    caller: Caller,
    body: String,
) -> Result<(StatusCode, Json<Vec<Ticket>>), ApiError> {
    let orq = org_admin(&caller, "importing tickets")?.orq;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(body.as_bytes());
    let mut tickets = Vec::new();
    for (i, row) in reader.deserialize::<CsvRow>().enumerate() {
        let line = i + 2; // 1-based, after the header
        let bad = |message: String| ApiError::Http {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "INVALID_CSV",
            message: format!("line {line}: {message}"),
        };
        let row = row.map_err(|e| bad(e.to_string()))?;
        tickets.push(ticket_from_csv(row).map_err(|e| bad(e.to_string()))?);
        if tickets.len() > MAX_TICKETS_PER_REQUEST {
            break;
        }
    }
    check_batch(tickets.len())?;
    let created = state
        .run(move |s| s.insert_tickets(orq, &tickets, Utc::now()))
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TicketListQuery {
    #[param(
        pattern = "^(PENDING_PAYMENT|ACTIVATED|RESERVED|VERIFIED|EXPIRED|minted|active|redeemed|cancelled)$"
    )]
    pub status: Option<String>,
    #[param(pattern = "^(inactive|active|redeemed|cancelled)$")]
    pub activation_status: Option<String>,
    pub user_id: Option<i64>,
    /// Page size, 1..=1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Return tickets after this code (the previous page's `next_after`).
    #[param(pattern = r"^[!-~]{1,64}$")]
    pub after: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TicketPage {
    pub tickets: Vec<Ticket>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

#[utoipa::path(get, path = "/api/admin/tickets", tag = "admin", params(TicketListQuery),
    responses((status = 403, description = "FORBIDDEN: this role may not do that", body = ErrorBody), (status = 200, body = TicketPage), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_tickets(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TicketListQuery>,
) -> Result<Json<TicketPage>, ApiError> {
    let p = admin(&caller)?;
    let orq = p.orq;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(DomainError::invalid("limit", "must be 1 to 1000").into());
    }
    let filter = super::admin_tickets::ticket_filter(
        q.status.as_deref(),
        q.activation_status.as_deref(),
        q.user_id,
        p.venue_id,
    )?;
    let after = q.after.as_deref().map(parse_code).transpose()?;
    let tickets = state
        .run(move |s| s.list_tickets(orq, &filter, after.as_ref(), limit))
        .await?;
    let next_after = (tickets.len() == limit as usize)
        .then(|| tickets.last().map(|t| t.ticket_code.to_string()))
        .flatten();
    Ok(Json(TicketPage {
        tickets,
        next_after,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOperatorBody {
    /// operator, supervisor or admin
    #[schema(pattern = "^(operator|supervisor|admin)$")]
    pub role: String,
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        max_length = 200
    )]
    pub display_name: String,
    /// Digits for signing in at a gate: 4 to 8 for an operator, 6 to 8 for a supervisor or admin
    #[schema(pattern = "^[0-9]{4,8}$")]
    pub pin: Option<String>,
}

#[utoipa::path(post, path = "/api/admin/operators", tag = "admin", request_body = CreateOperatorBody,
    responses((status = 403, description = "FORBIDDEN: this role may not do that", body = ErrorBody), (status = 201, body = Operator), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn create_operator(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateOperatorBody>,
) -> Result<(StatusCode, Json<Operator>), ApiError> {
    let orq = admin(&caller)?.orq;
    let role = Role::parse(&body.role)?;
    let op = state
        .run(move |s| {
            s.add_operator(
                orq,
                role,
                &body.display_name,
                body.pin.as_deref(),
                Utc::now(),
            )
        })
        .await?;
    Ok((StatusCode::CREATED, Json(op)))
}

#[utoipa::path(get, path = "/api/admin/operators", tag = "admin", responses((status = 403, description = "FORBIDDEN: this role may not do that", body = ErrorBody), (status = 200, body = [Operator])), security(("bearer" = [])))]
pub async fn list_operators(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Operator>>, ApiError> {
    let orq = admin(&caller)?.orq;
    Ok(Json(state.run(move |s| s.list_operators(orq)).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenBody {
    /// customer, operator, supervisor or admin
    #[schema(pattern = "^(customer|operator|supervisor|admin)$")]
    pub role: String,
    /// The customer's user id, or the operator's id.
    pub user_id: Option<i64>,
    pub venue_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    /// Shown once; only its hash is stored.
    pub token: String,
    pub role: Role,
    pub user_id: Option<i64>,
    pub venue_id: Option<VenueId>,
}

#[utoipa::path(post, path = "/api/admin/tokens", tag = "admin", request_body = CreateTokenBody,
    responses((status = 403, description = "FORBIDDEN: this role may not do that; ORG_ADMIN_ONLY: a customer token asked by an admin token bound to a venue (a customer token reaches its user's tickets in every venue)", body = ErrorBody), (status = 404, description = "NOT_FOUND (details.entity says what): a venue-bound admin asked for another venue's token", body = ErrorBody), (status = 201, body = CreatedToken), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateTokenBody>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    admin(&caller)?;
    let role = Role::parse(&body.role)?;
    // A customer token ignores a venue binding (it reaches its user's tickets
    // in every venue), so minting one is the whole org's act: a venue-bound
    // admin is refused before anything is written.
    let caller = if role == Role::Customer {
        org_admin(&caller, "minting a customer token")?
    } else {
        admin(&caller)?
    };
    let orq = caller.orq;
    // A token bound to a venue mints staff tokens for that venue only (an
    // unbound one, or another venue's, would undo its own binding).
    let venue = match (caller.venue_id, body.venue_id.map(VenueId)) {
        (Some(bound), None) => Some(bound),
        (Some(bound), Some(asked)) if asked != bound => {
            return Err(DomainError::NotFound { entity: "venue" }.into())
        }
        (_, asked) => asked,
    };
    let (token, p) = state
        .run(move |s| s.create_token(orq, role, body.user_id, venue, Utc::now()))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token,
            role: p.role,
            user_id: p.user_id,
            venue_id: p.venue_id,
        }),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct SignedCode {
    pub ticket_code: String,
    /// What goes into the ticket's QR code.
    pub signed_code: String,
}

#[utoipa::path(get, path = "/api/admin/tickets/{ticket_id}/signed-code", tag = "admin", params(("ticket_id" = String, Path, pattern = r"^[!-~]{1,64}$")),
    responses((status = 403, description = "FORBIDDEN: this role may not do that", body = ErrorBody), (status = 422, description = "INVALID_INPUT (details.field names the field) or another rule the request breaks", body = ErrorBody), (status = 200, body = SignedCode), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn signed_code(
    State(state): State<AppState>,
    caller: Caller,
    super::extract::ApiPath(code): super::extract::ApiPath<String>,
) -> Result<Json<SignedCode>, ApiError> {
    let p = admin(&caller)?;
    let (orq, venue) = (p.orq, p.venue_id);
    let code = parse_code(&code)?;
    let ticket_code = code.to_string();
    let signed_code = state
        .run(move |s| {
            // A venue-bound admin prints its venue's tickets only. Checked
            // in its own read: a code is only read, so a reservation moved
            // in between shows the caller nothing it could not see a moment
            // before.
            s.get_ticket_in(orq, &code, venue)?;
            s.signed_code(orq, &code, Utc::now())
        })
        .await?;
    Ok(Json(SignedCode {
        ticket_code,
        signed_code,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgSettingsBody {
    /// Refuse every plain ticket code (SIGNED_CODE_REQUIRED) at the gates and
    /// on the server; only signed QR codes admit.
    pub signed_codes_only: bool,
}

#[utoipa::path(get, path = "/api/admin/org", tag = "admin",
    responses((status = 200, description = "The token's org settings", body = crate::store::OrgSettings), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn org_settings(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<crate::store::OrgSettings>, ApiError> {
    let orq = admin(&caller)?.orq;
    Ok(Json(state.run(move |s| s.org_settings(orq)).await?))
}

#[utoipa::path(patch, path = "/api/admin/org", tag = "admin", request_body = OrgSettingsBody,
    responses((status = 200, description = "The settings now; gates follow with their next sync", body = crate::store::OrgSettings),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_org_settings(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<OrgSettingsBody>,
) -> Result<Json<crate::store::OrgSettings>, ApiError> {
    let orq = admin(&caller)?.orq;
    Ok(Json(
        state
            .run(move |s| s.set_signed_codes_only(orq, body.signed_codes_only, Utc::now()))
            .await?,
    ))
}
