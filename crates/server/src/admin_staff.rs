//! The console's staff endpoints (issue 16, track 16t): an operator's PIN
//! reset (admins only), an operator's role or deactivation (who may:
//! `domain::staff`), and re-issuing a ticket's signed code.

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use utoipa::ToSchema;

use super::access::{admin, slot_manager};
use super::admin::SignedCode;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, Caller};
use super::{parse_code, parse_id, AppState};
use crate::domain::staff::{check_staff_change, StaffChange, StaffRefusal};
use crate::domain::{Operator, OperatorId, Role};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinBody {
    /// 4 to 8 digits for an operator, 6 to 8 for a supervisor or admin
    #[schema(pattern = "^[0-9]{4,8}$")]
    pub pin: String,
}

#[utoipa::path(put, path = "/api/admin/operators/{operator_id}/pin", tag = "admin",
    params(("operator_id" = i64, Path)), request_body = PinBody,
    responses((status = 200, description = "The operator; the new PIN works at once on the server and at gates after their next sync; the PIN lockout is lifted", body = Operator),
        (status = 400, description = "MALFORMED_JSON", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "FORBIDDEN: only an admin manages operators", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such operator in the token's org", body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "INVALID_BODY or INVALID_INPUT (a PIN too short for the role)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn reset_pin(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PinBody>,
) -> Result<Json<Operator>, ApiError> {
    let orq = admin(&caller)?.orq;
    let id = OperatorId(parse_id(&id, "operator")?);
    Ok(Json(
        state
            .run(move |s| s.reset_operator_pin(orq, id, &body.pin, Utc::now()))
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorChangeBody {
    /// The new role (admins only; never one's own)
    #[schema(pattern = "^(operator|supervisor)$")]
    pub role: Option<String>,
    /// false deactivates (never oneself), true reactivates
    pub active: Option<bool>,
}

#[utoipa::path(patch, path = "/api/admin/operators/{operator_id}", tag = "admin",
    params(("operator_id" = i64, Path)), request_body = OperatorChangeBody,
    responses((status = 200, description = "The operator as changed. A new role or a deactivation revokes the operator's tokens, console sessions and unused sign-in links at once; a deactivated operator's PIN is refused on the server at once and at gates after their next sync (WRONG_PIN), and no token or console link is made for them. Reactivating restores none of the revoked grants", body = Operator),
        (status = 400, description = "MALFORMED_JSON", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "FORBIDDEN: only an admin changes roles; a supervisor (de)activates gate operators only; operators and customers change nothing", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such operator in the token's org (or their role changed meanwhile)", body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "INVALID_BODY, or INVALID_INPUT: an empty change, a role other than operator or supervisor, or one's own role change or deactivation", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn change_operator(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<OperatorChangeBody>,
) -> Result<Json<Operator>, ApiError> {
    let p = slot_manager(&caller)?.clone();
    let id = OperatorId(parse_id(&id, "operator")?);
    let change = StaffChange {
        role: body.role.as_deref().map(Role::parse).transpose()?,
        active: body.active,
    };
    let orq = p.orq;
    let target = state.run(move |s| s.get_operator(orq, id)).await?;
    check_staff_change(p.role, p.operator_id(), &target, &change).map_err(|r| match r {
        StaffRefusal::Forbidden => ApiError::Forbidden,
        StaffRefusal::Invalid(e) => e.into(),
    })?;
    let judged = target.role;
    Ok(Json(
        state
            .run(move |s| s.change_operator(orq, id, judged, change, Utc::now()))
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/admin/tickets/{ticket_id}/reissue", tag = "admin",
    params(("ticket_id" = String, Path, pattern = r"^[!-~]{1,64}$")),
    responses((status = 200, description = "The ticket's new signed code: its serial is bumped, so every code issued before is refused at the gates (after their next sync) and customer sessions opened on it are revoked", body = SignedCode),
        (status = 401, body = ErrorBody),
        (status = 403, description = "FORBIDDEN: only an admin re-issues codes", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such ticket in the token's org (for a venue-bound caller: in its venue)", body = ErrorBody),
        (status = 422, description = "INVALID_INPUT (not a ticket code) or NO_SIGNING_KEY", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn reissue_code(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<SignedCode>, ApiError> {
    let p = admin(&caller)?;
    let (orq, venue) = (p.orq, p.venue_id);
    let code = parse_code(&code)?;
    let ticket_code = code.to_string();
    let signed_code = state
        .run(move |s| s.reissue_ticket_code(orq, &code, venue, Utc::now()))
        .await?;
    Ok(Json(SignedCode {
        ticket_code,
        signed_code,
    }))
}
