//! Operator endpoints: validate (what would the gate say?), verify (let them
//! in, exactly once), sign-in with a PIN.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use utoipa::ToSchema;

use super::access::staff;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, Caller, ClientIp};
use super::tickets::TicketCodeBody;
use super::{parse_code, AppState};
use crate::domain::{Gate, Operator, OperatorId, Verdict};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    #[schema(pattern = r"^[!-~]{1,64}$", example = "TKT-2025-ABC123")]
    pub ticket_id: String,
    /// Must match the token's operator when the token is bound to one.
    #[schema(example = 5)]
    pub operator_id: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanBody {
    /// Exactly what the scanner read: a plain code or a signed `ENT1.` code.
    pub payload: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInBody {
    pub operator_id: i64,
    pub pin: String,
}

impl AppState {
    /// The gate a staff token scans at: its venue (if bound to one). The
    /// slot window's grace is the reserved venue's (`GateSettings`), read
    /// with the venue row by the verdict, as on every gate.
    fn gate_for(&self, venue: Option<crate::domain::VenueId>) -> Gate {
        Gate {
            venue_id: venue,
            ..Gate::default()
        }
    }
}

#[utoipa::path(post, path = "/api/operator/validate-ticket", tag = "gate", request_body = TicketCodeBody,
    responses((status = 200, description = "The verdict; a refusal is an answer, not an error (REVOKED for the plain code of a re-issued ticket, SIGNED_CODE_REQUIRED when the org takes signed codes only)", body = Verdict), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn validate_ticket(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    ApiJson(body): ApiJson<TicketCodeBody>,
) -> Result<Json<Verdict>, ApiError> {
    let p = staff(&caller)?.clone();
    state.limiter.check("lookup", Some(&p), ip.0)?;
    let code = parse_code(&body.ticket_code)?;
    let gate = state.gate_for(p.venue_id);
    Ok(Json(
        state
            .run(move |s| s.validate_ticket(p.orq, &code, &gate, Utc::now()))
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/operator/verify-ticket", tag = "gate", request_body = VerifyBody,
    responses((status = 404, description = "NOT_FOUND (details.entity says what)", body = ErrorBody), (status = 429, description = "RATE_LIMITED: too many look-ups; `Retry-After` says when to try again", body = ErrorBody), (status = 200, body = Verdict), (status = 409, description = "ALREADY_VERIFIED, with the first verification's facts", body = ErrorBody),
        (status = 422, description = "Another refusal, with its reason code (REVOKED: the ticket's code was re-issued; SIGNED_CODE_REQUIRED: the org takes signed codes only)", body = ErrorBody), (status = 403, description = "OPERATOR_MISMATCH", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn verify_ticket(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Result<Json<Verdict>, ApiError> {
    let p = staff(&caller)?.clone();
    state.limiter.check("lookup", Some(&p), ip.0)?;
    let code = parse_code(&body.ticket_id)?;
    let operator = match (
        p.operator_id(),
        own_operator(&p, body.operator_id.map(OperatorId))?,
    ) {
        (Some(_), Some(op)) => op,
        // A token not bound to an operator names one in the body: it must exist.
        (None, Some(op)) => {
            state.run(move |s| s.get_operator(p.orq, op)).await?;
            op
        }
        (_, None) => {
            return Err(crate::domain::DomainError::invalid(
                "operator_id",
                "is required for a token not bound to an operator",
            )
            .into())
        }
    };
    let gate = state.gate_for(p.venue_id);
    // An engine that takes the verification as a hand-off answers it
    // without a blocking thread per request (PostgreSQL's group commit);
    // otherwise it runs on the blocking pool as every other call.
    let pending = Arc::clone(&state.store).verify_ticket_handed_off(
        p.orq,
        code.clone(),
        operator,
        gate,
        Utc::now(),
    );
    Ok(Json(match pending {
        Some(pending) => pending.await?,
        None => {
            state
                .run(move |s| s.verify_ticket(p.orq, &code, operator, &gate, Utc::now()))
                .await?
        }
    }))
}

#[utoipa::path(post, path = "/api/operator/sign-in", tag = "gate", request_body = SignInBody,
    responses((status = 404, description = "NOT_FOUND (details.entity says what)", body = ErrorBody), (status = 200, body = Operator), (status = 401, description = "WRONG_PIN", body = ErrorBody),
        (status = 403, description = "OPERATOR_MISMATCH: the token is bound to another operator", body = ErrorBody),
        (status = 422, description = "PIN_HASH_REFUSED: the stored hash asks for more than the app runs", body = ErrorBody),
        (status = 429, description = "RATE_LIMITED, or PIN_LOCKED after 5 wrong PINs for this operator (growing delay); `Retry-After` and details.retry_after say when to try again", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn sign_in(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    ApiJson(body): ApiJson<SignInBody>,
) -> Result<Json<Operator>, ApiError> {
    let p = staff(&caller)?.clone();
    state.limiter.check("pin", Some(&p), ip.0)?;
    let named = OperatorId(body.operator_id);
    let operator = own_operator(&p, Some(named))?.unwrap_or(named);
    Ok(Json(
        state
            .run(move |s| s.check_operator_pin(p.orq, operator, &body.pin, Utc::now()))
            .await?,
    ))
}

/// A token bound to an operator acts as that operator only: naming another
/// is OPERATOR_MISMATCH. Returns the operator the request acts as, if any.
fn own_operator(
    p: &crate::store::Principal,
    named: Option<OperatorId>,
) -> Result<Option<OperatorId>, ApiError> {
    match (p.operator_id(), named) {
        (Some(token_op), Some(body_op)) if token_op != body_op => Err(ApiError::Http {
            status: axum::http::StatusCode::FORBIDDEN,
            code: "OPERATOR_MISMATCH",
            message: format!("this token belongs to operator {token_op}, not {body_op}"),
        }),
        (Some(op), _) => Ok(Some(op)),
        (None, named) => Ok(named),
    }
}

#[utoipa::path(post, path = "/api/operator/scan", tag = "gate", request_body = ScanBody,
    responses((status = 403, description = "FORBIDDEN: this role may not do that", body = ErrorBody), (status = 429, description = "RATE_LIMITED: too many look-ups; `Retry-After` says when to try again", body = ErrorBody), (status = 200, description = "The verdict; an ADMIT is recorded as a verification by the token's operator. A plain code answers SIGNED_CODE_REQUIRED when the org takes signed codes only, REVOKED once its ticket's code was re-issued", body = Verdict), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn scan(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    ApiJson(body): ApiJson<ScanBody>,
) -> Result<Json<Verdict>, ApiError> {
    let p = staff(&caller)?.clone();
    state.limiter.check("lookup", Some(&p), ip.0)?;
    let operator = p.operator_id().ok_or_else(|| {
        crate::domain::DomainError::invalid(
            "token",
            "scanning needs a token bound to an operator (--user-id)",
        )
    })?;
    let gate = state.gate_for(p.venue_id);
    Ok(Json(
        state
            .run(move |s| s.scan(p.orq, body.payload.as_bytes(), operator, &gate, Utc::now()))
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/operator/signing-keys", tag = "gate",
    responses((status = 403, description = "FORBIDDEN: this role may not do that", body = ErrorBody), (status = 200, description = "The org's public keys for checking signed codes offline", body = [crate::store::SigningKeyInfo])),
    security(("bearer" = [])))]
pub async fn signing_keys(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<crate::store::SigningKeyInfo>>, ApiError> {
    let orq = staff(&caller)?.orq;
    Ok(Json(state.run(move |s| s.public_keys(orq)).await?))
}
