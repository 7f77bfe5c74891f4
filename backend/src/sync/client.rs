//! The device's sync engine: one round = upload the outbox, then pull
//! changes page by page. The same engine runs in the desktop app and in
//! `entrada sync`. All state lives in the device's SQLite file, so a crash
//! at any point resumes correctly: events stay pending until answered, and
//! the cursor moves only with the rows it covers.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::plan::{self, Failure};
use super::protocol::{ChangePage, DeviceInfo, EventBatch, EventResults};
use crate::store::{Store, StoreError, SyncStatus};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("server unreachable: {0}")]
    Network(String),
    #[error("server answered {status}: {body}")]
    Server { status: u16, body: String },
    #[error("the server refused this device's token (revoked?): pair it again")]
    Unauthorized,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "this database is not paired with a server: run `entrada sync --server URL --token T` once"
    )]
    NotPaired,
    #[error("{0:?} is not a server address: use http://HOST:PORT or https://HOST")]
    InvalidUrl(String),
}

impl SyncError {
    fn failure(&self) -> Failure {
        match self {
            Self::Network(_) => Failure::Transient,
            Self::Server { status, .. } => plan::classify_status(*status),
            Self::Unauthorized => Failure::Unauthorized,
            Self::Store(_) | Self::NotPaired | Self::InvalidUrl(_) => Failure::Permanent,
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RoundReport {
    pub uploaded: usize,
    pub applied: usize,
    pub duplicates: usize,
    pub conflicts: usize,
    pub rejected: usize,
    pub pulled: usize,
    pub pages: usize,
}

pub struct SyncEngine {
    store: Arc<Store>,
    http: reqwest::Client,
    page_size: u32,
    /// One round at a time: the background loop and a pairing's first
    /// round must not pull the same pages side by side.
    round_lock: tokio::sync::Mutex<()>,
}

impl SyncEngine {
    pub fn new(store: Arc<Store>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            store,
            http,
            page_size: 2000,
            round_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size;
        self
    }

    /// Asks the server who `token` is (a device of which org and venue).
    pub async fn whoami(&self, server_url: &str, token: &str) -> Result<DeviceInfo, SyncError> {
        let base = server_base(server_url)?;
        let response = self
            .http
            .get(format!("{base}/api/sync/whoami"))
            .bearer_auth(token.trim())
            .send()
            .await
            .map_err(|e| SyncError::Network(e.to_string()))?;
        read_json(response).await
    }

    /// Pairs the database with a server using a device token (first run).
    pub async fn pair(&self, server_url: &str, token: &str) -> Result<DeviceInfo, SyncError> {
        let info = self.whoami(server_url, token).await?;
        let store = self.store.clone();
        let (url, token, i) = (
            server_base(server_url)?,
            token.trim().to_string(),
            info.clone(),
        );
        blocking(move || store.pair(&i, &url, &token)).await?;
        Ok(info)
    }

    pub async fn status(&self) -> Result<SyncStatus, SyncError> {
        let store = self.store.clone();
        blocking(move || store.sync_status()).await
    }

    /// Upload, then download. `progress(done, total)` is told after each page.
    pub async fn round(
        &self,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<RoundReport, SyncError> {
        let _one_at_a_time = self.round_lock.lock().await;
        let store = self.store.clone();
        let pairing = blocking(move || store.pairing())
            .await?
            .ok_or(SyncError::NotPaired)?;
        let base = pairing.server_url.clone();
        let mut report = RoundReport::default();

        // 1. Upload before download: the server must know our changes before
        //    we take its view of the same rows.
        loop {
            let store = self.store.clone();
            let pending = blocking(move || store.pending_events()).await?;
            let due = plan::plan_upload(
                &pending.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>(),
                Utc::now(),
            );
            if due.is_empty() {
                break;
            }
            let events: Vec<_> = pending
                .into_iter()
                .map(|(e, _)| e)
                .filter(|e| due.contains(&e.event_id))
                .collect();
            let batch = EventBatch {
                events,
                sent_at: Utc::now(),
            };
            let sent = Utc::now();
            let outcome = async {
                let response = self
                    .http
                    .post(format!("{base}/api/sync/events"))
                    .bearer_auth(&pairing.token)
                    .json(&batch)
                    .send()
                    .await
                    .map_err(|e| SyncError::Network(e.to_string()))?;
                read_json::<EventResults>(response).await
            }
            .await;
            match outcome {
                Ok(answer) => {
                    let offset = plan::clock_offset_ms(sent, answer.server_time, Utc::now());
                    for r in &answer.results {
                        use super::protocol::EventStatus as S;
                        match r.status {
                            S::Applied => report.applied += 1,
                            S::Duplicate => report.duplicates += 1,
                            S::Conflict => report.conflicts += 1,
                            S::Rejected => report.rejected += 1,
                        }
                    }
                    report.uploaded += answer.results.len();
                    let store = self.store.clone();
                    blocking(move || {
                        store.record_event_results(&answer.results)?;
                        store.record_sync_attempt(Utc::now(), Some(offset))
                    })
                    .await?;
                }
                Err(e) => {
                    let store = self.store.clone();
                    let (message, reachable) = (e.to_string(), !matches!(e, SyncError::Network(_)));
                    // A server that answered with an error gets these events
                    // back only after a backoff; an unreachable one is retried
                    // as soon as it is back (the watch loop paces the rounds).
                    let backed_off = if reachable { due } else { Vec::new() };
                    let jitter = jitter();
                    blocking(move || {
                        store.record_sync_failure(
                            &backed_off,
                            &message,
                            reachable,
                            Utc::now(),
                            jitter,
                        )
                    })
                    .await?;
                    return Err(e);
                }
            }
        }

        // 2. Download, page by page; each page and its cursor commit together.
        let mut cursor = {
            let store = self.store.clone();
            blocking(move || store.pairing())
                .await?
                .map_or(0, |p| p.cursor)
        };
        let mut total = 0u64;
        loop {
            let sent = Utc::now();
            let page = async {
                let response = self
                    .http
                    .get(format!("{base}/api/sync/changes"))
                    .query(&[
                        ("cursor", cursor.to_string()),
                        ("limit", self.page_size.to_string()),
                    ])
                    .bearer_auth(&pairing.token)
                    .send()
                    .await
                    .map_err(|e| SyncError::Network(e.to_string()))?;
                read_json::<ChangePage>(response).await
            }
            .await;
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    let store = self.store.clone();
                    let (message, reachable) = (e.to_string(), !matches!(e, SyncError::Network(_)));
                    blocking(move || {
                        store.record_sync_failure(&[], &message, reachable, Utc::now(), 0.0)
                    })
                    .await?;
                    return Err(e);
                }
            };
            let offset = plan::clock_offset_ms(sent, page.server_time, Utc::now());
            if total == 0 {
                total = page.changes.len() as u64 + page.remaining as u64;
            }
            report.pulled += page.changes.len();
            report.pages += 1;
            cursor = page.next_cursor;
            let has_more = page.has_more;
            let store = self.store.clone();
            blocking(move || store.apply_change_page(&page, Some(offset), Utc::now())).await?;
            progress(report.pulled as u64, total.max(report.pulled as u64));
            if !has_more {
                break;
            }
        }
        Ok(report)
    }

    /// Rounds forever, every `interval` when all is well, backing off after
    /// failures. Returns only on an error retrying cannot fix.
    pub async fn watch(
        &self,
        interval: Duration,
        mut on_round: impl FnMut(&Result<RoundReport, SyncError>),
    ) -> SyncError {
        let mut failures = 0u32;
        loop {
            let result = self.round(|_, _| {}).await;
            on_round(&result);
            let wait = match &result {
                Ok(_) => {
                    failures = 0;
                    interval
                }
                Err(e) if e.failure() == Failure::Transient => {
                    failures += 1;
                    plan::backoff(failures, jitter())
                        .to_std()
                        .unwrap_or(interval)
                        .max(interval)
                }
                Err(_) => {
                    let Err(e) = result else { unreachable!() };
                    return e;
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// `http(s)://host[:port][/prefix]` without a trailing slash, or InvalidUrl:
/// the form a pairing stores.
pub fn server_base(server_url: &str) -> Result<String, SyncError> {
    let trimmed = server_url.trim().trim_end_matches('/');
    match reqwest::Url::parse(trimmed) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            Ok(trimmed.to_string())
        }
        _ => Err(SyncError::InvalidUrl(server_url.to_string())),
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, SyncError> {
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(SyncError::Unauthorized);
    }
    let body = response
        .text()
        .await
        .map_err(|e| SyncError::Network(e.to_string()))?;
    if !status.is_success() {
        return Err(SyncError::Server {
            status: status.as_u16(),
            body: body.chars().take(500).collect(),
        });
    }
    serde_json::from_str(&body).map_err(|e| SyncError::Server {
        status: status.as_u16(),
        body: format!("unreadable answer: {e}"),
    })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, SyncError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SyncError::Network(format!("worker failed: {e}")))?
        .map_err(SyncError::from)
}

/// Jitter from the clock's sub-second noise: good enough to spread gates.
fn jitter() -> f64 {
    f64::from(Utc::now().timestamp_subsec_nanos() % 1000) / 1000.0
}
