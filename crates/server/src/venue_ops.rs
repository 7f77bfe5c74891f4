//! Venue operations (issue 15): the live occupancy of a venue, counted from
//! every entry and exit the server holds (its own verifications and the
//! gates' uploaded events).

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use utoipa::IntoParams;

use super::access::{check_venue, slot_manager, staff};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use super::AppState;
use crate::domain::closing::Checkout;
use crate::domain::venue_ops::{
    LeaseGrant, LeaseRequest, Occupancy, SlotPlaces, WalkupBooking, WalkupRequest,
};
use crate::domain::{OperatorId, VenueId};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OccupancyQuery {
    /// The venue whose people inside are counted.
    #[param(minimum = 1)]
    pub venue_id: i64,
}

#[utoipa::path(get, path = "/api/operator/occupancy", tag = "gate", params(OccupancyQuery),
    responses(
        (status = 200, description = "People inside now: entries minus exits since the venue's day began, across all its gates, as far as they have synced; `limit` is the venue's occupancy limit (null: none), `level` NORMAL / NEAR (90 %) / FULL (100 %)", body = Occupancy),
        (status = 400, description = "INVALID_QUERY: venue_id missing or not an integer", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED: no or an unknown token", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: operators, supervisors and admins only", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such venue in the caller's org (or another venue than the token's)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn occupancy(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<OccupancyQuery>,
) -> Result<Json<Occupancy>, ApiError> {
    let p = staff(&caller)?.clone();
    let venue = VenueId(q.venue_id);
    check_venue(&p, venue, "venue")?;
    Ok(Json(
        state
            .run(move |s| s.occupancy(p.orq, venue, Utc::now()))
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/admin/venues/{venue_id}/checkout", tag = "admin", params(("venue_id" = i64, Path)),
    responses(
        (status = 200, description = "Closing time: everyone inside is checked out now, one exit passage (reason CLOSING) per entry not matched by an exit today, each holder marked as left (the gates learn it by sync); `inside` is the occupancy after it (0). Nobody inside: nothing recorded", body = Checkout),
        (status = 401, description = "UNAUTHORIZED: no or an unknown token", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: supervisors and admins only", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such venue in the caller's org (or another venue than the token's)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn checkout(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Checkout>, ApiError> {
    let p = slot_manager(&caller)?.clone();
    let venue = VenueId(super::parse_id(&id, "venue")?);
    check_venue(&p, venue, "venue")?;
    // An operator's token names them in the record; an API token does not.
    let operator = p.user_id.map(OperatorId);
    Ok(Json(
        state
            .run(move |s| s.checkout_venue(p.orq, venue, operator, Utc::now()))
            .await?,
    ))
}

/// The walk-up places a supervisor took back from a venue's gates.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct LeasesTakenBack {
    /// Per slot, the places given back to it (summed over the gates).
    pub returned: Vec<SlotPlaces>,
}

#[utoipa::path(delete, path = "/api/admin/venues/{venue_id}/leases", tag = "admin", params(("venue_id" = i64, Path)),
    responses(
        (status = 200, description = "The walk-up leases of the venue's gates in slots whose entry window has ended, and every lease of a revoked gate, are given back to their slots now (customers may book the places again; listed in `returned`). A live gate's lease of a slot still taking walk-ups is recalled: it stays counted until that gate's next lease refresh, which keeps only what its walk-ups on their way need, so every ADMIT an offline gate showed is honoured and the slot never overbooks. The refresh after that grants `walkup_lease_places` again unless it is set to 0", body = LeasesTakenBack),
        (status = 401, description = "UNAUTHORIZED: no or an unknown token", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: supervisors and admins only", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such venue in the caller's org (or another venue than the token's)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn take_back_leases(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<LeasesTakenBack>, ApiError> {
    let p = slot_manager(&caller)?.clone();
    let venue = VenueId(super::parse_id(&id, "venue")?);
    check_venue(&p, venue, "venue")?;
    let returned = state
        .run(move |s| s.take_back_leases(Some((p.orq, venue)), false, Utc::now()))
        .await?;
    Ok(Json(LeasesTakenBack { returned }))
}

/// The most slots a lease refresh may name.
const MAX_LEASE_SLOTS: usize = 1000;

#[utoipa::path(post, path = "/api/sync/leases", tag = "sync", request_body = LeaseRequest,
    responses(
        (status = 200, description = "The walk-up places this gate holds now per slot: up to the venue's walkup_lease_places of each of today's slots open for entry, taken from the slot's free places (customers cannot book them), never fewer than the walk-ups it reports pending; unused places of a slot whose entry window closed are given back", body = LeaseGrant),
        (status = 401, description = "UNAUTHORIZED: not a device token", body = ErrorBody),
        (status = 422, description = "INVALID_INPUT: too many slots named", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn leases(
    State(state): State<AppState>,
    super::sync::Device(device): super::sync::Device,
    ApiJson(body): ApiJson<LeaseRequest>,
) -> Result<Json<LeaseGrant>, ApiError> {
    if body.pending.len() > MAX_LEASE_SLOTS || body.pending.iter().any(|p| p.places < 0) {
        return Err(crate::domain::DomainError::invalid(
            "pending",
            format!("at most {MAX_LEASE_SLOTS} slots, each with 0 or more places"),
        )
        .into());
    }
    let leases = state
        .run(move |s| s.refresh_leases(&device, &body.pending, Utc::now()))
        .await?;
    Ok(Json(LeaseGrant { leases }))
}

/// How often `entrada serve` releases no-shows unless told otherwise
/// (`--no-show-seconds`): a released place is bookable at most this late.
pub const NO_SHOW_PERIOD: std::time::Duration = std::time::Duration::from_secs(30);

/// The server's no-show release (issue 15, `domain::no_show`), return of
/// the walk-up leases of slots whose entry window has ended, and closing
/// time (`close_due_venues`: venues whose `closing_time` came): at once and
/// then every `period`, one `take_back_leases` and one `release_no_shows` at the
/// wall clock's time on the blocking pool. Periodic rather than on read: a reservation is released
/// whether or not anyone looks at its slot, and the gates learn it by sync.
/// A failed round is logged and tried again next period. Several server
/// instances may run it at once: each release re-checks under the row locks.
pub fn spawn_no_show_release(
    store: std::sync::Arc<dyn crate::store::ServerStore>,
    period: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let store = store.clone();
            let leases = store.clone();
            let closing = store.clone();
            // Closing time (a venue setting): everyone still inside is
            // checked out, as a supervisor's checkout does.
            match tokio::task::spawn_blocking(move || closing.close_due_venues(Utc::now())).await {
                Ok(Ok(closed)) => {
                    for c in &closed {
                        tracing::info!(
                            venue = c.venue_id.0,
                            checked_out = c.checked_out,
                            "closing time: everyone checked out"
                        );
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "closing-time checkout failed; trying again next period")
                }
                Err(e) => tracing::warn!(error = %e, "closing-time task failed"),
            }
            match tokio::task::spawn_blocking(move || {
                leases.take_back_leases(None, true, Utc::now())
            })
            .await
            {
                Ok(Ok(returned)) => {
                    for r in &returned {
                        tracing::info!(slot = %r.slot_id.0, places = r.places,
                            "walk-up lease of a closed slot given back");
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "lease return failed; trying again next period")
                }
                Err(e) => tracing::warn!(error = %e, "lease return task failed"),
            }
            match tokio::task::spawn_blocking(move || store.release_no_shows(Utc::now())).await {
                Ok(Ok(released)) => {
                    for r in &released {
                        tracing::info!(orq = r.orq.0, reservation = %r.reservation_id.0,
                            slot = %r.slot_id.0, "reservation released as a no-show");
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "no-show release failed; trying again next period")
                }
                Err(e) => tracing::warn!(error = %e, "no-show release task failed"),
            }
        }
    })
}

#[utoipa::path(post, path = "/api/sync/walkup", tag = "sync", request_body = WalkupRequest,
    responses(
        (status = 200, description = "An online walk-up at this gate: the holder's ticket booked by the server's reservation path into the earliest slot of the gate's venue open for entry now (its early grace to its end) with a free place, never from a gate's lease; a deferred ticket not yet activated is activated in the same transaction. The gate writes the reservation into its replica and admits the holder (the verification comes with its next upload)", body = WalkupBooking),
        (status = 401, description = "UNAUTHORIZED: not a device token (or a revoked one)", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such ticket in the gate's org", body = ErrorBody),
        (status = 409, description = "NO_PLACE_LEFT: no slot open now has a free place (the gate's lease may still have one); ALREADY_RESERVED: the ticket has a live reservation (one for now lets it in: scan it again); ALREADY_VERIFIED: used. `details` is the verdict", body = ErrorBody),
        (status = 422, description = "The scan's or the ticket's own refusal with the verdict in `details`: the QR code screened as at a gate (UNREADABLE, FORGED, REVOKED for a superseded code, SIGNED_CODE_REQUIRED, …), TICKET_CANCELLED, EXPIRED, NOT_ACTIVATED (an unpaid order), TICKET_NOT_ACTIVE, TICKET_EXPIRED; INVALID_BODY: no `code`", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn walkup(
    State(state): State<AppState>,
    super::sync::Device(device): super::sync::Device,
    ApiJson(body): ApiJson<WalkupRequest>,
) -> Result<Json<WalkupBooking>, ApiError> {
    Ok(Json(
        state
            .run(move |s| s.book_walkup_online(&device, body.code.as_bytes(), Utc::now()))
            .await?,
    ))
}

/// A supervisor at a gate checks everyone out (`POST /api/sync/checkout`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GateCheckout {
    /// The supervisor signed in at the gate (their PIN was checked there).
    pub operator_id: i64,
}

#[utoipa::path(post, path = "/api/sync/checkout", tag = "sync", request_body = GateCheckout,
    responses(
        (status = 200, description = "A supervisor at this gate checked everyone out of the gate's venue now, as the console's closing does (one exit per person inside, reason CLOSING; the gates learn it by sync)", body = Checkout),
        (status = 401, description = "UNAUTHORIZED: not a device token (or a revoked one)", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: the operator named is not an active supervisor or admin of the gate's org", body = ErrorBody),
        (status = 422, description = "INVALID_BODY: operator_id missing or not an integer", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn gate_checkout(
    State(state): State<AppState>,
    super::sync::Device(device): super::sync::Device,
    ApiJson(body): ApiJson<GateCheckout>,
) -> Result<Json<Checkout>, ApiError> {
    let (orq, venue) = (crate::domain::Orq(device.orq), VenueId(device.venue_id));
    let operator = OperatorId(body.operator_id);
    // The kiosk checked the PIN (a headless gate's CLI names the operator);
    // the server checks the role, as it is now.
    let supervisor = state
        .run(move |s| match s.get_operator(orq, operator) {
            Ok(o) => Ok(Some(o)),
            Err(crate::store::StoreError::Domain(crate::domain::DomainError::NotFound {
                ..
            })) => Ok(None),
            Err(e) => Err(e),
        })
        .await?
        .is_some_and(|o| o.may_check_everyone_out());
    if !supervisor {
        return Err(ApiError::Forbidden);
    }
    Ok(Json(
        state
            .run(move |s| s.checkout_venue(orq, venue, Some(operator), Utc::now()))
            .await?,
    ))
}
