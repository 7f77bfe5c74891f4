//! The console's live dashboard (issue 16): `GET /api/admin/dashboard/stream`
//! answers server-sent events. The server polls the store (one read
//! transaction of indexed queries, `DashboardStore::dashboard`) every
//! second and sends a `dashboard` event whenever the answer changed, so a
//! gate's admission shows within about a second of reaching the server
//! (its sync upload, or a verification on the server itself).
//!
//! Bounded: at most `PER_SESSION` streams per session (a newer one ends the
//! oldest: a reload; two tabs both stay live), `PER_ORG` per organization
//! and `MAX_STREAMS` on the server, and each stream ends after `LIFETIME`;
//! the browser's EventSource reconnects by itself and is authenticated
//! again then (a revoked session stops there). A stopping server ends every
//! stream at once (`AppState::shutdown`), so a graceful stop is not held up
//! by open dashboards.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
/// Open dashboard streams of one organization (one org cannot take them all).
pub const PER_ORG: usize = 16;
/// Open dashboard streams of one session (tabs of one browser).
pub const PER_SESSION: usize = 3;

/// The server's open dashboard streams: token id -> (its org, the
/// generations of its live streams, oldest first). Lives in `AppState`.
#[derive(Default)]
pub struct Streams {
    live: Mutex<HashMap<i64, (Orq, VecDeque<u64>)>>,
    next: AtomicU64,
}

impl Streams {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<i64, (Orq, VecDeque<u64>)>) -> T) -> T {
        f(&mut self.live.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// One open stream; dropping it frees the place.
struct Registration {
    streams: Arc<Streams>,
    token: i64,
    generation: u64,
}

fn too_many(what: &str, limit: usize) -> ApiError {
    ApiError::Http {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "TOO_MANY_STREAMS",
        message: format!("{limit} dashboards are open {what}; retry later"),
    }
}

impl Registration {
    fn take(streams: &Arc<Streams>, orq: Orq, token: i64) -> Result<Self, ApiError> {
        streams.with(|m| {
            let own = m.get(&token).map_or(0, |(_, g)| g.len());
            // A session at its own limit replaces its oldest stream: no new place.
            if own < PER_SESSION {
                let all: usize = m.values().map(|(_, g)| g.len()).sum();
                if all >= MAX_STREAMS {
                    return Err(too_many("on this server", MAX_STREAMS));
                }
                let org: usize = m
                    .values()
                    .filter(|(o, _)| *o == orq)
                    .map(|(_, g)| g.len())
                    .sum();
                if org >= PER_ORG {
                    return Err(too_many("for this organization", PER_ORG));
                }
            }
            let generation = streams.next.fetch_add(1, Ordering::Relaxed);
            let (_, gens) = m.entry(token).or_insert_with(|| (orq, VecDeque::new()));
            if gens.len() >= PER_SESSION {
                gens.pop_front();
            }
            gens.push_back(generation);
            Ok(Self {
                streams: streams.clone(),
                token,
                generation,
            })
        })
    }

    /// False once newer streams of the same session replaced this one.
    fn current(&self) -> bool {
        self.streams.with(|m| {
            m.get(&self.token)
                .is_some_and(|(_, g)| g.contains(&self.generation))
        })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.streams.with(|m| {
            if let Some((_, gens)) = m.get_mut(&self.token) {
                gens.retain(|g| *g != self.generation);
                if gens.is_empty() {
                    m.remove(&self.token);
                }
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
    serde_json::to_string(&(&d.venues, &d.gates)).unwrap_or_default()
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
    let registration = Registration::take(&state.dashboards, p.orq, p.token_id)?;
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
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                // The server is stopping: end now, not at LIFETIME.
                () = live.state.shutdown.notified() => return None,
            }
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
    fn a_session_keeps_its_newest_streams_and_a_reload_ends_the_oldest() {
        let streams = Arc::new(Streams::default());
        let take = |token| Registration::take(&streams, Orq(1), token).unwrap();
        let tabs: Vec<Registration> = (0..PER_SESSION).map(|_| take(-7)).collect();
        assert!(
            tabs.iter().all(Registration::current),
            "tabs of one session all stay live"
        );
        let reload = take(-7);
        assert!(!tabs[0].current(), "the oldest ends");
        assert!(tabs[1..].iter().all(Registration::current));
        assert!(reload.current());
        drop(tabs);
        assert!(
            reload.current(),
            "dropping the others frees only their places"
        );
        drop(reload);
        assert!(streams.with(|m| m.is_empty()));
    }

    #[test]
    fn one_org_cannot_take_every_place_and_the_server_has_a_limit() {
        let streams = Arc::new(Streams::default());
        let code = |r: Result<Registration, ApiError>| match r {
            Err(ApiError::Http { code, .. }) => code,
            Err(_) => "OTHER",
            Ok(_) => "OK",
        };
        // One org, many sessions (an admin can mint tokens): PER_ORG at most.
        let mut mine: Vec<_> = (0..PER_ORG as i64)
            .map(|t| Registration::take(&streams, Orq(1), t).unwrap())
            .collect();
        assert_eq!(
            code(Registration::take(&streams, Orq(1), 1000)),
            "TOO_MANY_STREAMS"
        );
        mine.pop();
        mine.push(Registration::take(&streams, Orq(1), 1000).expect("the freed place"));
        // Other orgs (PER_ORG sessions each) fill the server up to MAX_STREAMS.
        let mut others = Vec::new();
        while others.len() + mine.len() < MAX_STREAMS {
            let n = others.len() as i64;
            let org = Orq(2 + n / PER_ORG as i64);
            others.push(Registration::take(&streams, org, 2000 + n).unwrap());
        }
        assert_eq!(
            code(Registration::take(&streams, Orq(99), 9999)),
            "TOO_MANY_STREAMS"
        );
        others.pop();
        assert_eq!(code(Registration::take(&streams, Orq(99), 9999)), "OK");
    }
}
