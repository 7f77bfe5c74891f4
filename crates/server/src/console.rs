//! The admin console's sessions (issue 16). `entrada admin link` prints a
//! one-time link to `/admin/signin?link=…`; opening it shows a page whose
//! script POSTs the link back (the GET itself changes nothing, so another
//! site or a link previewer cannot use it up or plant its own session), and
//! the POST trades the link for a console session: an expiring API token (stored hashed, like every token)
//! whose secret travels only in an `HttpOnly; SameSite=Strict` cookie
//! (`Secure` when the server speaks TLS or its public URL is https). The console then calls the same
//! API as curl does, and `Caller` reads the cookie when there is no
//! `Authorization` header, so the session's role is checked exactly as a
//! token's. Against cross-site requests, besides SameSite=Strict, a
//! state-changing request authenticated by the cookie must carry
//! `X-Entrada-Console: 1` (a custom header a cross-site form cannot send, and
//! a cross-site script cannot without a CORS preflight the server never
//! grants) and, when the browser sends an `Origin`, it must be this server's.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiQuery, Caller};
use super::{access, AppState};

/// The session cookie's name.
pub const COOKIE: &str = "entrada_console";
/// The header every state-changing cookie-authenticated request carries.
pub const CSRF_HEADER: &str = "x-entrada-console";

/// The console session's secret in a request's `Cookie` header, if any.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// Whether a request authenticated by the cookie may change something:
/// reads always may; writes need the console's header and a same-origin
/// `Origin` (when the browser sends one): the request's `Host`, or the
/// server's `public_url` (behind a proxy that rewrites `Host`).
pub(crate) fn cookie_request_allowed(
    method: &Method,
    headers: &HeaderMap,
    public_url: Option<&str>,
) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    let marked = headers
        .get(CSRF_HEADER)
        .is_some_and(|v| v.as_bytes() == b"1");
    let same_origin = match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
            let origin_host = origin
                .to_str()
                .ok()
                .and_then(|o| o.split_once("://"))
                .map(|(_, rest)| rest);
            let public = public_url.and_then(|u| origin.to_str().ok().map(|o| (u, o)));
            matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
                || public.is_some_and(|(u, o)| same_origin_as(u, o))
        }
    };
    marked && same_origin
}

/// Whether `origin` (`scheme://host[:port]`, as browsers send it) is the
/// origin of the checked server address `public_url` (its path aside; a
/// scheme's default port, which browsers leave out, is no difference).
fn same_origin_as(public_url: &str, origin: &str) -> bool {
    let split = |url: &str| -> Option<(String, String)> {
        let (scheme, rest) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let authority = rest.split('/').next().unwrap_or("").to_ascii_lowercase();
        let default = if scheme == "https" { ":443" } else { ":80" };
        let authority = authority
            .strip_suffix(default)
            .unwrap_or(&authority)
            .to_owned();
        Some((scheme, authority))
    };
    matches!((split(public_url), split(origin)), (Some(a), Some(b)) if a == b)
}

/// The refusal of a cross-site (or unmarked) cookie request.
pub(crate) fn cross_site() -> ApiError {
    ApiError::Http {
        status: StatusCode::FORBIDDEN,
        code: "CROSS_SITE_REQUEST",
        message: format!(
            "a console request that changes something must come from the console's own page \
             (header {CSRF_HEADER}: 1, same Origin)"
        ),
    }
}

fn cookie(value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("token and attributes are ASCII")
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SignInQuery {
    /// The secret `entrada admin link` printed.
    link: String,
}

/// The sign-in page: its script (a file, so the page CSP's `'self'` allows
/// it) reads the link from the address and redeems it with a same-origin
/// POST. The link never appears in the HTML.
const SIGN_IN_PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\"><title>Entrada console: signing in</title></head>\
<body><main><h1>Entrada console</h1><p id=\"msg\" role=\"status\">Signing in…</p>\
<noscript><p>Signing in needs JavaScript.</p></noscript></main>\
<script src=\"/admin/signin.js\"></script></body></html>\n";

const SIGN_IN_SCRIPT: &str = r#"(async () => {
  const msg = document.getElementById('msg');
  const link = new URLSearchParams(location.search).get('link') || '';
  // The secret leaves the address bar and the history at once.
  history.replaceState(null, '', '/admin/signin');
  try {
    const res = await fetch('/admin/signin', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-Entrada-Console': '1' },
      body: JSON.stringify({ link }),
    });
    if (res.ok) {
      location.replace('/admin/');
      return;
    }
    const body = await res.json().catch(() => null);
    msg.textContent = 'This sign-in link cannot be used: ' +
      ((body && body.error && body.error.message) || res.status) +
      '. Ask for a new one (entrada admin link).';
  } catch (e) {
    msg.textContent = 'Signing in failed: ' + e;
  }
})();
"#;

/// The sign-in page for a link. Changes nothing: a GET that any site can
/// make the browser open, or a mail scanner can prefetch, must neither use
/// the link up nor set a cookie (login CSRF). The page's script redeems the
/// link with `POST /admin/signin`.
#[utoipa::path(get, path = "/admin/signin", tag = "console", params(SignInQuery),
    responses(
        (status = 200, description = "The sign-in page (text/html); nothing is redeemed until its script POSTs the link"),
        (status = 400, description = "INVALID_QUERY: no link", body = ErrorBody)))]
pub async fn sign_in_page(ApiQuery(q): ApiQuery<SignInQuery>) -> Response {
    let _ = q.link;
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        SIGN_IN_PAGE,
    )
        .into_response()
}

/// The sign-in page's script.
pub async fn sign_in_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SIGN_IN_SCRIPT,
    )
        .into_response()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    /// The secret `entrada admin link` printed.
    pub link: String,
}

/// Whether the browser says the request came from another site
/// (`Sec-Fetch-Site: cross-site` or `same-site`).
fn fetched_from_another_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .is_some_and(|v| matches!(v.as_bytes(), b"cross-site" | b"same-site"))
}

/// Redeems the link once (from the sign-in page's script): sets the session
/// cookie. Needs `X-Entrada-Console: 1`, a same-origin `Origin` (when sent)
/// and no cross-site `Sec-Fetch-Site`. A used, expired or unknown link is 404.
#[utoipa::path(post, path = "/admin/signin", tag = "console", request_body = SignInRequest,
    params(("x-entrada-console" = String, Header, description = "`1`: sent by the sign-in page's script")),
    responses(
        (status = 204, description = "Signed in: `Set-Cookie: entrada_console=…; HttpOnly; SameSite=Strict`"),
        (status = 400, description = "MALFORMED_JSON: the body is not JSON", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 422, description = "INVALID_BODY: the body is not `{\"link\": …}`", body = ErrorBody),
        (status = 403, description = "CROSS_SITE_REQUEST: the header is missing, or the Origin / Sec-Fetch-Site is another site's", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: the link is unknown, already used or expired", body = ErrorBody)))]
pub async fn sign_in(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignInRequest>,
) -> Result<Response, ApiError> {
    if !cookie_request_allowed(&method, &headers, state.public_url.as_deref())
        || fetched_from_another_site(&headers)
    {
        return Err(cross_site());
    }
    if body.link.len() > 200 {
        return Err(crate::store::stale_link().into());
    }
    let now = Utc::now();
    let link = body.link;
    let (token, _, expires_at) = state
        .run(move |s| s.redeem_console_link(&link, now))
        .await?;
    let max_age = (expires_at - now).num_seconds();
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::SET_COOKIE,
        cookie(&token, max_age, state.secure_cookies),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Who the console is signed in as.
#[derive(Serialize, utoipa::ToSchema)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ConsoleSession {
    pub orq: i64,
    /// `admin` or `supervisor`.
    pub role: String,
    /// The operator the link named, if any.
    pub operator_id: Option<i64>,
    /// The venue the token is bound to, if any (a console session carries
    /// none): its rights end at that venue, and org-wide acts (issuing
    /// tickets, minting customer tokens) are refused with ORG_ADMIN_ONLY, so
    /// the console hides them and says why.
    pub venue_id: Option<i64>,
}

/// The caller's identity (a console session, or any staff token).
#[utoipa::path(get, path = "/api/admin/session", tag = "console",
    responses((status = 200, body = ConsoleSession), (status = 403, description = "A customer's token", body = ErrorBody)),
    security(("bearer" = []), ("console_cookie" = [])))]
pub async fn whoami(caller: Caller) -> Result<Json<ConsoleSession>, ApiError> {
    let p = access::staff(&caller)?;
    Ok(Json(ConsoleSession {
        orq: p.orq.0,
        role: p.role.as_str().to_string(),
        operator_id: p.user_id,
        venue_id: p.venue_id.map(|v| v.0),
    }))
}

/// Signs out: the session is revoked (its cookie answers 401 from now on)
/// and the browser's cookie is cleared.
#[utoipa::path(delete, path = "/api/admin/session", tag = "console",
    params(("x-entrada-console" = String, Header, description = "`1`: a cookie request that changes something must carry it")),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "UNAUTHORIZED: no console session cookie (bearer tokens are revoked with `entrada token revoke`)", body = ErrorBody),
        (status = 403, description = "CROSS_SITE_REQUEST: the header is missing or the Origin is another site's", body = ErrorBody)),
    security(("console_cookie" = [])))]
pub async fn sign_out(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = session_cookie(&headers)
        .ok_or(ApiError::Unauthorized)?
        .to_owned();
    if !cookie_request_allowed(&method, &headers, state.public_url.as_deref()) {
        return Err(cross_site());
    }
    let now: DateTime<Utc> = Utc::now();
    state
        .run(move |s| {
            let Some(p) = s.principal_for_token(&token, now)? else {
                return Ok(false);
            };
            s.revoke_token_id(p.token_id, now)
        })
        .await?
        .then_some(())
        .ok_or(ApiError::Unauthorized)?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie("", 0, state.secure_cookies));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; entrada_console=ent_abc ; b=2")]);
        assert_eq!(session_cookie(&h), Some("ent_abc"));
        assert_eq!(session_cookie(&headers(&[("cookie", "a=1")])), None);
        assert_eq!(
            session_cookie(&headers(&[("cookie", "entrada_console=")])),
            None
        );
    }

    #[test]
    fn behind_a_proxy_the_public_urls_origin_is_same_site() {
        // nginx's default `Host $proxy_host`: the server sees its own
        // address, the browser sends the public origin.
        let proxied = |origin: &str| {
            headers(&[
                ("x-entrada-console", "1"),
                ("host", "127.0.0.1:8080"),
                ("origin", origin),
            ])
        };
        let public = Some("https://entrada.example/base");
        for (origin, allowed) in [
            ("https://entrada.example", true),
            ("https://ENTRADA.example", true),
            ("http://entrada.example", false),
            ("https://entrada.example:8443", false),
            ("https://entrada.example:443", true),
            ("https://evil.example", false),
            ("null", false),
        ] {
            assert_eq!(
                cookie_request_allowed(&Method::POST, &proxied(origin), public),
                allowed,
                "{origin}"
            );
            // Without a public_url only the Host counts.
            assert!(!cookie_request_allowed(
                &Method::POST,
                &proxied(origin),
                None
            ));
        }
    }

    #[test]
    fn writes_need_the_header_and_a_same_origin() {
        type Case<'a> = (Method, &'a [(&'a str, &'a str)], bool);
        let cases: &[Case] = &[
            (Method::GET, &[], true),
            (Method::POST, &[], false),
            (Method::POST, &[("x-entrada-console", "1")], true),
            (Method::PATCH, &[("x-entrada-console", "0")], false),
            (
                Method::DELETE,
                &[
                    ("x-entrada-console", "1"),
                    ("host", "gate.example:8080"),
                    ("origin", "https://gate.example:8080"),
                ],
                true,
            ),
            (
                Method::POST,
                &[
                    ("x-entrada-console", "1"),
                    ("host", "gate.example"),
                    ("origin", "https://evil.example"),
                ],
                false,
            ),
            (
                Method::POST,
                &[
                    ("x-entrada-console", "1"),
                    ("host", "gate.example"),
                    ("origin", "null"),
                ],
                false,
            ),
        ];
        for (method, pairs, allowed) in cases {
            assert_eq!(
                cookie_request_allowed(method, &headers(pairs), None),
                *allowed,
                "{method} {pairs:?}"
            );
        }
    }
}
