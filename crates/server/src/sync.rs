//! Sync endpoints for gate devices (device tokens), and conflict listing for
//! supervisors.

use axum::extract::{FromRequestParts, State};
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::{admin, check_venue, staff};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiQuery, Caller};
use super::pairing::{pairing_qr, PairingQr};
use super::AppState;
use crate::domain::sync::lan::{PeerList, PeerRequest};
use crate::domain::sync::protocol::{ChangePage, DeviceInfo, EventBatch, EventResults};
use crate::domain::{DomainError, Orq, VenueId};

/// Events per push: more is refused, so one request never holds the write
/// lock for long.
pub const MAX_EVENTS_PER_PUSH: usize = 1000;

/// The header a gate's upload carries: how many events it still has to
/// upload after this batch (`entrada_sync` sends it).
pub const PENDING_HEADER: &str = "x-entrada-pending";
/// A larger count is not believed (no gate holds that many).
const MAX_PENDING_REPORTED: u32 = 10_000_000;

/// A request made with a device token.
pub struct Device(pub DeviceInfo);

impl FromRequestParts<AppState> for Device {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 200)
            .ok_or(ApiError::Unauthorized)?
            .to_owned();
        let store = state.store.clone();
        tokio::task::spawn_blocking(move || store.device_for_token(&token))
            .await
            .map_err(|_| ApiError::http(StatusCode::INTERNAL_SERVER_ERROR))??
            .map(Device)
            .ok_or(ApiError::Unauthorized)
    }
}

#[utoipa::path(get, path = "/api/sync/whoami", tag = "sync",
    responses((status = 200, body = DeviceInfo), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn whoami(Device(device): Device) -> Json<DeviceInfo> {
    Json(device)
}

#[utoipa::path(post, path = "/api/sync/peers", tag = "sync", request_body = PeerRequest,
    responses((status = 200, description = "Registers the calling device's Ed25519 public key (made on the gate at pairing; \
a re-paired gate replaces it) and lists the other non-revoked gates of its venue and org that registered one: the only gates \
it exchanges admissions with over the LAN", body = PeerList),
        (status = 401, body = ErrorBody), (status = 409, description = "DUPLICATE_DEVICE_KEY: another live gate registered this key (a key belongs to one gate)", body = ErrorBody),
        (status = 422, description = "INVALID_INPUT: not the hex of an Ed25519 public key", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn peers(
    State(state): State<AppState>,
    Device(device): Device,
    ApiJson(body): ApiJson<PeerRequest>,
) -> Result<Json<PeerList>, ApiError> {
    let peers = state
        .run(move |s| s.register_device_key(&device, &body.public_key, Utc::now()))
        .await?;
    Ok(Json(PeerList { peers }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChangesQuery {
    /// The `next_cursor` of the previous page; 0 for a first sync.
    #[param(minimum = 0)]
    pub cursor: Option<i64>,
    /// Page size, 1..=5000 (default 2000; others are clamped).
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/sync/changes", tag = "sync", params(ChangesQuery),
    responses((status = 422, description = "INVALID_INPUT (details.field names the field) or another rule the request breaks", body = ErrorBody), (status = 200, description = "The org-wide rows (operators, signing keys) and the device's own venue's (its venue, slots, \
reservations on them and their tickets, its gates' conflicts); rows that left the venue come as deletes", body = ChangePage),
        (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn changes(
    State(state): State<AppState>,
    Device(device): Device,
    ApiQuery(q): ApiQuery<ChangesQuery>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let cursor = q.cursor.unwrap_or(0);
    if cursor < 0 {
        return Err(DomainError::invalid("cursor", "must not be negative").into());
    }
    let limit = q.limit.unwrap_or(2000);
    // The page's JSON text, written by the store on the blocking pool: the
    // bytes `Json(ChangePage)` wrote, without a value per row to build and
    // walk again here (a first sync is 200,000 rows and more).
    let body = state
        .run(move |s| {
            s.changes_page_json(
                Orq(device.orq),
                VenueId(device.venue_id),
                cursor,
                limit,
                Utc::now(),
            )
        })
        .await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    ))
}

#[utoipa::path(post, path = "/api/sync/events", tag = "sync", request_body = EventBatch,
    params(("X-Entrada-Pending" = Option<u32>, Header, description = "How many events the gate still has to upload after this batch (shown on the console's Gates page); ignored when malformed or above 10,000,000")),
    responses((status = 200, description = "One result per event, in order. Each event is judged by the gate's rules at its time \
(the device clock corrected by the measured offset) against the server's rows: `applied`; `duplicate` (a replay, with the first answer); \
`conflict` (an admission recorded as a fact but not one the server would have made: DOUBLE_ENTRY or the refusal, e.g. RESERVATION_CANCELLED, \
WRONG_VENUE, TICKET_CANCELLED, with both sides' facts; the ticket keeps the server's state); `rejected` (not applied: UNKNOWN_OPERATOR, \
OPERATOR_REQUIRED, OPERATOR_NOT_ALLOWED, WRONG_VENUE for another venue's slot, NOT_FOUND, INVALID_INPUT, ...)", body = EventResults), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn events(
    State(state): State<AppState>,
    Device(device): Device,
    headers: axum::http::HeaderMap,
    ApiJson(batch): ApiJson<EventBatch>,
) -> Result<Json<EventResults>, ApiError> {
    // What the gate says it still has to upload after this batch (console's
    // Gates page); a missing or malformed header is no report.
    let pending = headers
        .get(PENDING_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| *n <= MAX_PENDING_REPORTED);
    if batch.events.len() > MAX_EVENTS_PER_PUSH {
        return Err(DomainError::invalid(
            "events",
            format!("send at most {MAX_EVENTS_PER_PUSH} events per request"),
        )
        .into());
    }
    let results = state
        .run(move |s| {
            let results = s.apply_events(&device, &batch.events, batch.sent_at, Utc::now())?;
            if let Some(n) = pending {
                s.record_pending_uploads(&device, n, Utc::now())?;
            }
            Ok(results)
        })
        .await?;
    Ok(Json(EventResults {
        results,
        server_time: Utc::now(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDeviceBody {
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        max_length = 200
    )]
    pub name: String,
    pub venue_id: i64,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedDevice {
    /// Shown once; only its hash is stored.
    pub token: String,
    pub device: DeviceInfo,
    /// The pairing QR code (holds the token: shown once too); null when the
    /// request's Host header is no address a gate could use.
    pub pairing: Option<PairingQr>,
}

#[utoipa::path(post, path = "/api/admin/devices", tag = "sync", request_body = CreateDeviceBody,
    responses((status = 403, description = "FORBIDDEN: this role may not do that", body = ErrorBody), (status = 422, description = "INVALID_INPUT (details.field names the field) or another rule the request breaks", body = ErrorBody), (status = 201, body = CreatedDevice), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn create_device(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateDeviceBody>,
) -> Result<(StatusCode, Json<CreatedDevice>), ApiError> {
    let p = admin(&caller)?.clone();
    let venue = VenueId(body.venue_id);
    let (token, device) = state
        .run(move |s| {
            // A token bound to a venue adds gates to that venue only (a
            // device token of another venue would be a way around the binding).
            check_venue(&p, venue, "venue")?;
            s.add_device(p.orq, venue, &body.name, Utc::now())
        })
        .await?;
    // The server's public address, or the one the admin's browser reached,
    // over TLS when the server speaks it.
    let pairing = pairing_qr(
        state.public_url.as_deref(),
        &headers,
        state.secure_cookies,
        state.pairing_ca_sha256.as_deref(),
        &token,
    );
    Ok((
        StatusCode::CREATED,
        Json(CreatedDevice {
            token,
            device,
            pairing,
        }),
    ))
}

#[utoipa::path(get, path = "/api/operator/conflicts", tag = "sync",
    responses((status = 403, description = "FORBIDDEN: this role may not do that", body = ErrorBody), (status = 200, description = "Conflicts, newest first: double entries (the same ticket admitted at two gates) and admissions \
a gate made that the server would have refused (`kind` is the reason, `facts` both sides' facts)", body = [Object])), security(("bearer" = [])))]
pub async fn conflicts(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let p = staff(&caller)?;
    // A venue-bound token lists its venue's conflicts only.
    let (orq, venue) = (p.orq, super::access::staff_venue(p));
    Ok(Json(
        state.run(move |s| s.list_conflicts_in(orq, venue)).await?,
    ))
}

/// How often an instance numbers the change feed's committed entries.
/// Every 200 ms rather than every second: a round's work is one new
/// version of each entry written since the last (a batch of 2,000 entries
/// took 89–111 ms of a backend, measured under verify load, and the WAL of
/// all of them is flushed by one COMMIT, which the verifications' COMMITs
/// queue behind). Five times as often, each round is about a fifth of
/// that. pg_http (session 38) gave a lower verify-ticket p99 with 200 ms
/// in two of three alternated sets and a higher one in the third: weak
/// evidence, kept for the smaller rounds. An idle instance pays five
/// one-row probes a second instead of one.
pub const FEED_NUMBERING_PERIOD: std::time::Duration = std::time::Duration::from_millis(200);

/// Numbers the change feed every `period` (`SyncStore::settle_feed`): on
/// PostgreSQL an entry gets its seq once it has committed, so an import is
/// numbered while it happens rather than by the first pulls after it (a
/// first sync of 226,023 entries spent 6.8 s in that one numbering). A pull
/// still numbers what is left, in batches. PostgreSQL only (`entrada serve`
/// does not spawn it on SQLite, whose feed is numbered as it is written). A
/// failed round is tried again next period: the first failure is a warning,
/// the next ones while it keeps failing are debug, the recovery is info (a
/// database down for an hour logs two lines at info and above, not 18,000).
/// Several instances may run it (one numberer at a time, by the feed's lock).
pub fn spawn_feed_numberer(
    store: std::sync::Arc<dyn crate::store::ServerStore>,
    period: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing: u64 = 0;
        loop {
            tick.tick().await;
            let store = store.clone();
            let error = match tokio::task::spawn_blocking(move || store.settle_feed()).await {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(format!("numbering task failed: {e}")),
            };
            failing = numberer_log(failing, error.as_deref());
        }
    })
}

/// Logs one round of the numberer, given how many rounds before it failed
/// in a row; returns how many have now.
fn numberer_log(failing: u64, error: Option<&str>) -> u64 {
    match (error, failing) {
        (None, 0) => 0,
        (None, n) => {
            tracing::info!(failed_rounds = n, "feed numbering recovered");
            0
        }
        (Some(error), 0) => {
            tracing::warn!(error, "feed numbering failed; trying again every period");
            1
        }
        (Some(error), n) => {
            tracing::debug!(error, failed_rounds = n + 1, "feed numbering still failing");
            n + 1
        }
    }
}

#[cfg(test)]
mod numberer_log_tests {
    use super::numberer_log;

    #[test]
    fn failures_are_counted_and_a_success_resets() {
        assert_eq!(numberer_log(0, None), 0);
        assert_eq!(numberer_log(0, Some("down")), 1);
        assert_eq!(numberer_log(1, Some("down")), 2);
        assert_eq!(numberer_log(2, None), 0);
    }
}
