//! The console's live dashboard (issue 16): `GET /api/admin/dashboard/stream`
//! answers server-sent events. The server polls the store (one read
//! transaction of indexed queries, `DashboardStore::dashboard`) every
//! second and sends a `dashboard` event whenever the answer changed, so a
//! gate's admission shows within about a second of reaching the server
//! (its sync upload, or a verification on the server itself).
//!
//! Bounded: one stream per session (a newer stream of the same session
//! ends the older one: a reload), at most `MAX_STREAMS` in all, and each
//! stream ends after `LIFETIME`; the browser's EventSource reconnects by
//! itself and is authenticated again then (a revoked session stops there).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::Utc;
use futures_util::Stream;

use super::access::slot_manager;
use super::error::{ApiError, ErrorBody};
use super::extract::Caller;
use super::AppState;
use crate::domain::dashboard::Dashboard;
use crate::domain::{Orq, VenueId};

/// How often the store is asked.
pub const POLL: Duration = Duration::from_secs(1);
/// How long one stream lives before the browser reconnects.
pub const LIFETIME: Duration = Duration::from_secs(600);
/// Open dashboard streams on one server.
pub const MAX_STREAMS: usize = 64;

/// token id -> the generation of its one live stream.
static STREAMS: Mutex<Option<HashMap<i64, u64>>> = Mutex::new(None);
static NEXT: AtomicU64 = AtomicU64::new(1);

fn streams<T>(f: impl FnOnce(&mut HashMap<i64, u64>) -> T) -> T {
    let mut guard = STREAMS.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(HashMap::new))
}

/// This session's stream; dropping it frees the place.
struct Registration {
    token: i64,
    generation: u64,
}

impl Registration {
    fn take(token: i64) -> Result<Self, ApiError> {
        streams(|m| {
            if !m.contains_key(&token) && m.len() >= MAX_STREAMS {
                return Err(ApiError::Http {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "TOO_MANY_STREAMS",
                    message: format!(
                        "{MAX_STREAMS} dashboards are open on this server; retry later"
                    ),
                });
            }
            let generation = NEXT.fetch_add(1, Ordering::Relaxed);
            m.insert(token, generation);
            Ok(Self { token, generation })
        })
    }

    /// False once a newer stream of the same session started.
    fn current(&self) -> bool {
        streams(|m| m.get(&self.token) == Some(&self.generation))
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        streams(|m| {
            if m.get(&self.token) == Some(&self.generation) {
                m.remove(&self.token);
            }
        });
    }
}

async fn snapshot(
    state: &AppState,
    orq: Orq,
    venue: Option<VenueId>,
) -> Result<Dashboard, ApiError> {
    let mut d = state.run(move |s| s.dashboard(orq, Utc::now())).await?;
    // A token bound to a venue sees that venue only.
    if let Some(bound) = venue {
        d.venues.retain(|v| v.venue_id == bound);
        d.gates.retain(|g| g.venue_id == bound);
    }
    Ok(d)
}

/// What changes between two snapshots (the instant does not count).
fn fingerprint(d: &Dashboard) -> String {
    serde_json::to_string(&(&d.venues, &d.gates, d.open_conflicts)).unwrap_or_default()
}

struct Live {
    state: AppState,
    orq: Orq,
    venue: Option<VenueId>,
    registration: Registration,
    first: Option<Dashboard>,
    last: String,
    started: Instant,
}

fn event(d: &Dashboard) -> Result<Event, Infallible> {
    Ok(Event::default()
        .event("dashboard")
        .data(serde_json::to_string(d).unwrap_or_default()))
}

#[utoipa::path(get, path = "/api/admin/dashboard/stream", tag = "admin",
    responses((status = 200, description = "text/event-stream: a `dashboard` event (JSON `Dashboard`) at once and whenever it changes (checked every second); ends after 10 minutes (the browser reconnects)", body = Dashboard, content_type = "text/event-stream"),
        (status = 403, description = "FORBIDDEN: this role may not do that", body = ErrorBody),
        (status = 503, description = "TOO_MANY_STREAMS", body = ErrorBody)),
    security(("bearer" = []), ("console_cookie" = [])))]
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let p = slot_manager(&caller)?.clone();
    let first = snapshot(&state, p.orq, p.venue_id).await?;
    let registration = Registration::take(p.token_id)?;
    let live = Live {
        state,
        orq: p.orq,
        venue: p.venue_id,
        registration,
        last: fingerprint(&first),
        first: Some(first),
        started: Instant::now(),
    };
    let events = futures_util::stream::unfold(live, |mut live| async move {
        if let Some(first) = live.first.take() {
            let e = event(&first);
            return Some((e, live));
        }
        loop {
            tokio::time::sleep(POLL).await;
            if live.started.elapsed() >= LIFETIME || !live.registration.current() {
                return None;
            }
            // A failed poll (database busy) is skipped; the next one retries.
            let Ok(d) = snapshot(&live.state, live.orq, live.venue).await else {
                continue;
            };
            let print = fingerprint(&d);
            if print != live.last {
                live.last = print;
                let e = event(&d);
                return Some((e, live));
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_stream_of_a_session_supersedes_the_older() {
        let a = Registration::take(-7).unwrap();
        assert!(a.current());
        let b = Registration::take(-7).unwrap();
        assert!(!a.current(), "the older stream ends");
        assert!(b.current());
        drop(a);
        assert!(b.current(), "dropping the superseded one frees nothing");
        drop(b);
        assert!(streams(|m| !m.contains_key(&-7)));
    }
}
