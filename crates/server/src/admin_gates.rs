//! The console's Gates page (issue 16): each gate as the server recorded it
//! (last upload, clock offset, the pending uploads it reported, its version,
//! its conflicts), and revoking a gate. Admins only, as the device list; a
//! venue-bound admin token sees and revokes its venue's gates only.

use axum::extract::State;
use axum::Json;
use chrono::Utc;

use super::access::admin;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, Caller};
use super::{parse_id, AppState};
use crate::domain::gate_health::{in_scope, GateHealth};
use crate::domain::DomainError;

#[utoipa::path(get, path = "/api/admin/gates", tag = "admin",
    responses(
        (status = 200, description = "The org's gates (only its venue's for a venue-bound token): last upload (`last_seen_at`), clock offset at it, the events it said it still had to upload after it (`pending_uploads`: null when its app does not report it), its app version, and the conflicts it took part in", body = [GateHealth]),
        (status = 401, body = ErrorBody),
        (status = 403, description = "FORBIDDEN: admins only", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_gates(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<GateHealth>>, ApiError> {
    let p = admin(&caller)?;
    let (orq, venue) = (p.orq, p.venue_id.map(|v| v.0));
    let gates = state.run(move |s| s.gate_health(orq)).await?;
    Ok(Json(
        gates.into_iter().filter(|g| in_scope(g, venue)).collect(),
    ))
}

#[utoipa::path(post, path = "/api/admin/gates/{device_id}/revoke", tag = "admin",
    params(("device_id" = i64, Path)),
    responses(
        (status = 200, description = "The gate, revoked: its device token is refused from now on (its sync, uploads and LAN key with it); to bring it back, add a gate and pair it again. Idempotent: a revoked gate answers as it is", body = GateHealth),
        (status = 401, body = ErrorBody),
        (status = 403, description = "FORBIDDEN: admins only", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no such gate in the token's org (or venue, for a venue-bound token)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke_gate(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<GateHealth>, ApiError> {
    let p = admin(&caller)?;
    let (orq, venue) = (p.orq, p.venue_id.map(|v| v.0));
    let id: i64 = parse_id(&id, "device")?;
    let not_found = || ApiError::from(DomainError::NotFound { entity: "device" });
    let gates = state.run(move |s| s.gate_health(orq)).await?;
    gates
        .iter()
        .find(|g| g.device_id == id && in_scope(g, venue))
        .ok_or_else(not_found)?;
    let gates = state
        .run(move |s| {
            s.revoke_gate(orq, id, Utc::now())?;
            s.gate_health(orq)
        })
        .await?;
    gates
        .into_iter()
        .find(|g| g.device_id == id)
        .map(Json)
        .ok_or_else(not_found)
}
