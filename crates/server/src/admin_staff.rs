//! The console's staff endpoints (issue 16, track 16t): an operator's PIN
//! reset (admins only), and re-issuing a ticket's signed code.

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use utoipa::ToSchema;

use super::access::admin;
use super::admin::SignedCode;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, Caller};
use super::{parse_code, parse_id, AppState};
use crate::domain::{Operator, OperatorId};

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

#[utoipa::path(post, path = "/api/admin/tickets/{ticket_id}/reissue", tag = "admin",
    params(("ticket_id" = String, Path, pattern = r"^[!-~]{1,64}$")),
    responses((status = 200, description = "The ticket's new signed code: its serial is bumped, so every code issued before is refused at the gates (after their next sync) and customer sessions opened on it are revoked", body = SignedCode),
        (status = 401, body = ErrorBody),
        (status = 403, description = "FORBIDDEN: only an admin re-issues codes", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such ticket in the token's org", body = ErrorBody),
        (status = 422, description = "INVALID_INPUT (not a ticket code) or NO_SIGNING_KEY", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn reissue_code(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<SignedCode>, ApiError> {
    let orq = admin(&caller)?.orq;
    let code = parse_code(&code)?;
    let ticket_code = code.to_string();
    let signed_code = state
        .run(move |s| s.reissue_ticket_code(orq, &code, Utc::now()))
        .await?;
    Ok(Json(SignedCode {
        ticket_code,
        signed_code,
    }))
}
