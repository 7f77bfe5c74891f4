//! Extractors whose rejections are our JSON errors, and the caller's identity.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, StatusCode};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::AppState;
use crate::store::Principal;

/// `axum::Json` with JSON errors: malformed → 400, wrong shape → 422,
/// wrong content type → 415, too large → 413. A number with a zero fraction
/// (`5.0`) is the integer it equals, as JSON Schema's `integer` says, so an
/// id or a capacity sent by a generic JSON encoder is not refused.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(mut value) =
            axum::Json::<serde_json::Value>::from_request(req, state).await?;
        integral_floats_as_integers(&mut value);
        serde_path_to_error::deserialize(ObjectsAsObjects(value))
            .map(ApiJson)
            .map_err(|e| ApiError::Http {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "INVALID_BODY",
                message: format!(
                    "Failed to deserialize the JSON body into the target type: {}: {}",
                    e.path(),
                    e.inner()
                ),
            })
    }
}

/// Rewrites every float with a zero fraction that an `f64` holds exactly
/// (|n| <= 2^53) as that integer; larger ones stay floats and are refused
/// where an integer is expected.
fn integral_floats_as_integers(value: &mut serde_json::Value) {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match value {
        serde_json::Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() <= EXACT) {
                *value = serde_json::Value::from(f as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        serde_json::Value::Object(fields) => {
            fields.values_mut().for_each(integral_floats_as_integers)
        }
        _ => {}
    }
}

/// A body as serde_json reads it, except that a struct (a JSON object in the
/// document) is not also read from an array of its fields' values.
struct ObjectsAsObjects(serde_json::Value);

impl<'de> serde::Deserializer<'de> for ObjectsAsObjects {
    type Error = serde_json::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_any(v)
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Self::Error> {
        if !self.0.is_object() {
            return Err(serde::de::Error::invalid_type(
                serde::de::Unexpected::Other("a non-object"),
                &"a JSON object",
            ));
        }
        self.0.deserialize_struct(name, fields, v)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

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
            // The admin console's session cookie (see `console`), only on
            // the routes the console calls: on a public or customer route a
            // stale or foreign console cookie must not turn the request into
            // a 401 or a 403 (the browser sends it everywhere on this host).
            let Some(token) = super::console::session_cookie(&parts.headers)
                .filter(|_| console_route(parts.uri.path()))
            else {
                return Ok(Caller(None));
            };
            if token.len() > 200 {
                return Err(ApiError::Unauthorized);
            }
            if !super::console::cookie_request_allowed(
                &parts.method,
                &parts.headers,
                state.public_url.as_deref(),
            ) {
                return Err(super::console::cross_site());
            }
            return lookup(state, token.to_owned()).await;
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
        lookup(state, token.to_owned()).await
    }
}

/// The routes whose caller may be a console session cookie: the staff API.
fn console_route(path: &str) -> bool {
    path.starts_with("/api/admin/") || path.starts_with("/api/operator/")
}

/// The live principal of a token, or 401.
async fn lookup(state: &AppState, token: String) -> Result<Caller, ApiError> {
    // A principal the engine holds in memory (PostgreSQL's token cache) is
    // answered here on the async worker: the blocking pool's hop (a thread
    // woken, then this task woken again) cost as much CPU as the look-up
    // itself on every verify-ticket.
    if let Some(principal) = state.store.cached_principal(&token, chrono::Utc::now()) {
        return Ok(Caller(Some(principal)));
    }
    let store = state.store.clone();
    // The time is read where the look-up runs: a session that expires while
    // this task waits for a blocking thread is refused.
    let principal =
        tokio::task::spawn_blocking(move || store.principal_for_token(&token, chrono::Utc::now()))
            .await
            .map_err(|_| ApiError::http(StatusCode::INTERNAL_SERVER_ERROR))??;
    principal
        .map(|p| Caller(Some(p)))
        .ok_or(ApiError::Unauthorized)
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
