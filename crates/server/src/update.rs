//! Fleet updates: a gate reports its app version and last update's outcome
//! and is offered the newest signed bundle in the server's updates folder;
//! it downloads that bundle and verifies it itself (the server is not
//! trusted with the signature: it only stores what an admin published).
//! Admins list which gate runs which version.

use std::path::{Path, PathBuf};

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;

use super::access::admin;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, Caller};
use super::sync::Device;
use super::AppState;
use crate::domain::update::{
    devices_in_scope, parse_header, DeviceVersion, UpdateAnswer, UpdateOffer, UpdateReport,
    Version, MAGIC, MAX_HEADER_LEN,
};
use crate::domain::DomainError;

/// A published bundle's file name in the updates folder: `<version>.entupd`.
pub fn bundle_file_name(version: Version) -> String {
    format!("{version}.entupd")
}

/// The newest well-formed bundle in `dir` and its offer (header read only).
fn newest_bundle(dir: &Path) -> std::io::Result<Option<(UpdateOffer, PathBuf)>> {
    let mut newest: Option<(Version, PathBuf)> = None;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(version) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".entupd"))
            .and_then(|v| Version::parse(v).ok())
        else {
            continue;
        };
        if newest.as_ref().is_none_or(|(v, _)| version > *v) {
            newest = Some((version, path));
        }
    }
    let Some((version, path)) = newest else {
        return Ok(None);
    };
    let mut prefix = vec![0u8; MAGIC.len() + MAX_HEADER_LEN];
    let read = {
        use std::io::Read;
        let mut file = std::fs::File::open(&path)?;
        let mut n = 0;
        loop {
            let got = file.read(&mut prefix[n..])?;
            if got == 0 || n + got == prefix.len() {
                break n + got;
            }
            n += got;
        }
    };
    match parse_header(&prefix[..read]) {
        Ok((header, v, _)) if v == version => Ok(Some((
            UpdateOffer {
                version: header.version,
                size: header.size,
                sha256: header.sha256,
            },
            path,
        ))),
        // `entrada update publish` writes only well-formed bundles under
        // their own version's name: anything else was put there by hand.
        _ => {
            tracing::warn!(path = %path.display(), "not a well-formed update bundle: not offered");
            Ok(None)
        }
    }
}

/// No such bundle (or no updates folder): NOT_FOUND, like any unknown id.
fn updates_unavailable() -> ApiError {
    DomainError::NotFound {
        entity: "update bundle",
    }
    .into()
}

#[utoipa::path(post, path = "/api/sync/update", tag = "sync", request_body = UpdateReport,
    responses(
        (status = 200, description = "The newest bundle the server holds if it is newer than the running version (`offer`), else `offer: null`. The report (running version, last update's outcome) is stored and shown in GET /api/admin/devices", body = UpdateAnswer),
        (status = 401, description = "UNAUTHORIZED: not a device token", body = ErrorBody),
        (status = 422, description = "INVALID_INPUT: a version not MAJOR.MINOR.PATCH, a detail over 200 characters", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn report(
    State(state): State<AppState>,
    Device(device): Device,
    ApiJson(report): ApiJson<UpdateReport>,
) -> Result<Json<UpdateAnswer>, ApiError> {
    let running = Version::parse(&report.running)
        .map_err(|_| DomainError::invalid("running", "MAJOR.MINOR.PATCH"))?;
    state
        .run(move |s| s.record_update_report(&device, &report, Utc::now()))
        .await?;
    let Some(dir) = state.updates_dir.clone() else {
        return Ok(Json(UpdateAnswer { offer: None }));
    };
    let newest = tokio::task::spawn_blocking(move || newest_bundle(&dir))
        .await
        .map_err(|_| ApiError::http(StatusCode::INTERNAL_SERVER_ERROR))?
        .map_err(|e| {
            tracing::error!(error = %e, "cannot read the updates folder");
            ApiError::http(StatusCode::INTERNAL_SERVER_ERROR)
        })?;
    let offer = newest
        .map(|(offer, _)| offer)
        .filter(|o| Version::parse(&o.version).is_ok_and(|v| v > running));
    Ok(Json(UpdateAnswer { offer }))
}

#[utoipa::path(get, path = "/api/sync/update/{version}", tag = "sync",
    params(("version" = String, Path, description = "MAJOR.MINOR.PATCH, from the offer")),
    responses(
        (status = 200, description = "The bundle file (ENTUPD1 line, header, payload); the gate verifies its signature with the release key built into it", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 401, description = "UNAUTHORIZED: not a device token", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: no bundle of this version", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn bundle(
    State(state): State<AppState>,
    Device(_device): Device,
    UrlPath(version): UrlPath<String>,
) -> Result<Response, ApiError> {
    let version = Version::parse(&version).map_err(|_| updates_unavailable())?;
    let dir = state.updates_dir.clone().ok_or_else(updates_unavailable)?;
    // Streamed from the file (a fleet downloading at once holds a small
    // buffer each, not a copy of the bundle each).
    let file = tokio::fs::File::open(dir.join(bundle_file_name(version)))
        .await
        .map_err(|_| updates_unavailable())?;
    let len = file
        .metadata()
        .await
        .map_err(|_| updates_unavailable())?
        .len();
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        body,
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/admin/devices", tag = "sync",
    responses(
        (status = 200, description = "The org's gate devices (only its venue's for a venue-bound token) with the app version each last reported and its last update's outcome (pending, installed, rolled_back, refused)", body = [DeviceVersion]),
        (status = 401, body = ErrorBody),
        (status = 403, description = "FORBIDDEN: admins only", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_devices(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<DeviceVersion>>, ApiError> {
    let p = admin(&caller)?;
    let (orq, venue) = (p.orq, p.venue_id.map(|v| v.0));
    let devices = state.run(move |s| s.device_versions(orq)).await?;
    Ok(Json(devices_in_scope(devices, venue)))
}
