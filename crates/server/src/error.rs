//! One error shape for every failure the API can answer:
//! `{"error": {"code", "message", "details"}}` with the right HTTP status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::domain::{DomainError, VerdictCode};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("this endpoint needs a token: Authorization: Bearer TOKEN")]
    Unauthorized,
    #[error("this token may not do that")]
    Forbidden,
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("{message}")]
    Http {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// A refusal with facts for the client (e.g. a CSV import's bad rows).
    #[error("{message}")]
    Detailed {
        status: StatusCode,
        code: &'static str,
        message: String,
        details: serde_json::Value,
    },
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        Self::Store(StoreError::Domain(e))
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ErrorDetail {
    /// Stable machine code, e.g. `SLOT_FULL`.
    pub code: String,
    /// For people; may change.
    pub message: String,
    /// Facts about this error (e.g. `{"field": "date"}`); null when there are none.
    #[schema(value_type = Option<Object>, required = true)]
    #[cfg_attr(test, ts(type = "Record<string, unknown> | null"))]
    pub details: serde_json::Value,
}

/// The status for a domain error code: state conflicts are 409, other rule
/// violations 422.
fn domain_status(e: &DomainError) -> StatusCode {
    match e {
        DomainError::InvalidInput { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        DomainError::NotFound { .. } => StatusCode::NOT_FOUND,
        DomainError::WrongPin => StatusCode::UNAUTHORIZED,
        DomainError::PinLocked { .. } => StatusCode::TOO_MANY_REQUESTS,
        DomainError::DuplicateSlot
        | DomainError::DuplicateTicket { .. }
        | DomainError::SlotFull
        | DomainError::AlreadyReserved
        | DomainError::DuplicateDeviceKey
        | DomainError::TicketRedeemed
        | DomainError::ReservationVerified
        | DomainError::SlotAlreadyStarted { .. }
        | DomainError::VenueHasBookingsAhead { .. } => StatusCode::CONFLICT,
        // The ticket's or the slot's state stands in the way: used, already
        // reserved, no place left (an online walk-up).
        DomainError::Refused(v)
            if matches!(
                v.verdict,
                VerdictCode::AlreadyVerified
                    | VerdictCode::AlreadyReserved
                    | VerdictCode::NoPlaceLeft
            ) =>
        {
            StatusCode::CONFLICT
        }
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Store(StoreError::Domain(e)) => domain_status(e),
            Self::Store(StoreError::Busy(_) | StoreError::Unavailable(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Http { status, .. } | Self::Detailed { status, .. } => *status,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Store(e) => e.code(),
            Self::BadRequest { code, .. }
            | Self::Http { code, .. }
            | Self::Detailed { code, .. } => code,
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Forbidden => "FORBIDDEN",
            Self::RateLimited { .. } => "RATE_LIMITED",
        }
    }

    /// The framework's own refusals (unknown route, wrong method, …).
    pub fn http(status: StatusCode) -> Self {
        let (code, message) = match status {
            StatusCode::NOT_FOUND => ("ROUTE_NOT_FOUND", "no such endpoint"),
            StatusCode::METHOD_NOT_ALLOWED => (
                "METHOD_NOT_ALLOWED",
                "this endpoint does not take that method",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => ("PAYLOAD_TOO_LARGE", "the request body is too large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "UNSUPPORTED_MEDIA_TYPE",
                "send the body as application/json",
            ),
            StatusCode::REQUEST_TIMEOUT => ("REQUEST_TIMEOUT", "the request took too long"),
            s if s.is_server_error() => ("INTERNAL_ERROR", "internal error"),
            _ => ("BAD_REQUEST", "the request could not be understood"),
        };
        Self::Http {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let details = match &self {
            Self::Store(StoreError::Domain(e)) => e.details(),
            Self::RateLimited { retry_after_secs } => {
                serde_json::json!({ "retry_after": retry_after_secs })
            }
            Self::Detailed { details, .. } => details.clone(),
            _ => serde_json::Value::Null,
        };
        let message = match &self {
            // Internal details go to the log, not to the client.
            Self::Store(e) if status.is_server_error() => {
                tracing::error!(error = %e, "request failed");
                "internal error; it has been logged".to_string()
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_string(),
                message,
                details,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Self::RateLimited { retry_after_secs }
        | Self::Store(StoreError::Domain(DomainError::PinLocked {
            retry_after_secs, ..
        })) = self
        {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

/// Middleware: any error response that is not already our JSON (axum's 405,
/// tower-http's 408/413, …) is rewritten into the JSON error shape.
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        return ApiError::http(status).into_response();
    }
    response
}
