//! Extractors whose rejections are our JSON errors, and the caller's identity.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::{header, request::Parts, StatusCode};

use super::error::ApiError;
use super::AppState;
use crate::store::Principal;

/// `axum::Json` with JSON errors: malformed → 400, wrong shape → 422,
/// wrong content type → 415, too large → 413.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => ApiError::Http {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "INVALID_BODY",
                message: e.body_text(),
            },
            JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest {
                code: "MALFORMED_JSON",
                message: e.body_text(),
            },
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::http(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            }
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::http(StatusCode::PAYLOAD_TOO_LARGE)
            }
            other => ApiError::BadRequest {
                code: "BAD_REQUEST",
                message: other.body_text(),
            },
        }
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest {
            code: "INVALID_QUERY",
            message: r.body_text(),
        }
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest {
            code: "INVALID_PATH",
            message: r.body_text(),
        }
    }
}

/// The token's principal, or `None` for a public request. An unknown or
/// revoked token is a 401, not silently public.
pub struct Caller(pub Option<Principal>);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Ok(Caller(None));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 200)
            .ok_or(ApiError::Unauthorized)?;
        let store = state.store.clone();
        let token = token.to_owned();
        let principal = tokio::task::spawn_blocking(move || {
            store.principal_for_token(&token, chrono::Utc::now())
        })
        .await
        .map_err(|_| ApiError::http(StatusCode::INTERNAL_SERVER_ERROR))??;
        principal
            .map(|p| Caller(Some(p)))
            .ok_or(ApiError::Unauthorized)
    }
}

/// The client's address (for rate limits); unknown in in-process tests.
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}
