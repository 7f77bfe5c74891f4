//! The device's sync engine: one round = upload the outbox, then pull
//! changes page by page. The same engine runs in the desktop app and in
//! `entrada sync`. All state lives in the device's SQLite file, so a crash
//! at any point resumes correctly: events stay pending until answered, and
//! the cursor moves only with the rows it covers.

use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::Utc;

use super::plan::{self, Failure};
use super::protocol::{DeviceInfo, EventBatch, EventResults};
use crate::store::{PulledPage, Store, StoreError, SyncStatus};

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
    #[error("{0:?} is not a server address: use https://HOST[:PORT]")]
    InvalidUrl(String),
    #[error(
        "{0} is plain http:// on the network: anyone on the venue's network could read and change \
         what this gate sends and receives. Use https:// (with --ca-cert for a venue's own CA), \
         or --allow-http to accept that risk"
    )]
    PlainHttp(String),
    #[error(
        "the server's TLS certificate was refused ({0}); if the venue runs its own certificate \
         authority, give its certificate with --ca-cert (ENTRADA_CA_CERT)"
    )]
    Tls(String),
    #[error("the CA certificate cannot be used: {0}")]
    CaCert(String),
    #[error("the server's certificate authority is not the one the pairing code names: {0}")]
    CaFingerprint(String),
    #[error("the server's answer is larger than {limit} bytes: refused")]
    ResponseTooLarge { limit: usize },
    #[error("the server broke the sync protocol: {0}")]
    Protocol(String),
    /// A step on the blocking pool did not return: it panicked (a bug in
    /// this program, not the network's or the server's doing; its
    /// transaction rolled back) or was cancelled (the runtime shutting
    /// down).
    #[error("internal error (a sync step failed): {0}")]
    WorkerFailed(String),
}

impl SyncError {
    /// What kind of failure this is, for the sync loop and the pairing
    /// policy (`plan::next_round`, `plan::unconfirmed_pairing`).
    pub fn failure(&self) -> Failure {
        match self {
            // A certificate can be renewed and a misbehaving server fixed:
            // retried with backoff, like a network failure.
            Self::Network(_)
            | Self::Tls(_)
            | Self::ResponseTooLarge { .. }
            | Self::Protocol(_)
            | Self::Store(StoreError::RefusedPage { .. }) => Failure::Transient,
            Self::Server { status, .. } => plan::classify_status(*status),
            Self::Unauthorized => Failure::Unauthorized,
            // DATABASE_BUSY (another process holds the file), a full disk;
            // a panic in a local step: this device's, retried like them.
            Self::Store(_) | Self::WorkerFailed(_) => Failure::Local,
            Self::NotPaired => Failure::Unpaired,
            Self::InvalidUrl(_) | Self::PlainHttp(_) | Self::CaCert(_) | Self::CaFingerprint(_) => {
                Failure::Refused
            }
        }
    }

    /// Stable machine code (the store's own for store errors).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Network(_) => "SERVER_UNREACHABLE",
            Self::Server { .. } => "SERVER_ERROR",
            Self::Unauthorized => "TOKEN_REFUSED",
            Self::Store(e) => e.code(),
            Self::NotPaired => "NOT_PAIRED",
            Self::InvalidUrl(_) => "INVALID_URL",
            Self::PlainHttp(_) => "INSECURE_SERVER_URL",
            Self::Tls(_) => "TLS_CERTIFICATE_REFUSED",
            Self::CaCert(_) => "INVALID_CA_CERT",
            Self::CaFingerprint(_) => "CA_FINGERPRINT_MISMATCH",
            Self::ResponseTooLarge { .. } => "RESPONSE_TOO_LARGE",
            Self::Protocol(_) => "SYNC_PROTOCOL_ERROR",
            Self::WorkerFailed(_) => "INTERNAL_ERROR",
        }
    }

    /// Whether the server answered at all (a refused certificate did not).
    fn reachable(&self) -> bool {
        !matches!(self, Self::Network(_) | Self::Tls(_))
    }
}

/// Largest answer the engine reads from a server; a page of 2,000 changes
/// is well under 2 MiB (tickets and reservations: about 500 bytes each).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// Changes per page in a round that starts at cursor 0 (a first sync
/// filling an empty replica): the server's largest page, so fewer pages,
/// requests and commits (100,000 tickets: 41 pages instead of 101). A gate
/// scanning meanwhile (a replica re-paired from 0) waits for one such
/// page's transaction at most, 2.5 times a 2,000-change one. A page over
/// [`MAX_RESPONSE_BYTES`] (rows larger than a ticket's) is asked again at
/// the usual size.
pub const FIRST_SYNC_PAGE_SIZE: u32 = 5000;
/// Most change pages followed in one round (4 million rows at the default
/// page size); the next round goes on from the cursor.
pub const MAX_PAGES_PER_ROUND: usize = 2000;
/// Most upload batches in one round (500 events each).
const MAX_UPLOAD_BATCHES: usize = 200;

/// How the engine reaches its server: which certificate authorities it
/// trusts (the public ones, and the venue's own when one is given), and
/// whether plain `http://` to a host other than this machine is accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transport {
    /// PEM: one or more CA certificates (a venue's private CA), trusted
    /// besides the public ones.
    pub ca_cert_pem: Option<Vec<u8>>,
    pub allow_http: bool,
}

impl Transport {
    fn client(&self) -> Result<reqwest::Client, SyncError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(30))
            // A redirect could lead to a plain-http or foreign host.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = &self.ca_cert_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| SyncError::CaCert(e.to_string()))?;
            if certs.is_empty() {
                return Err(SyncError::CaCert(
                    "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
                ));
            }
            // Added to the public roots, not instead of them: a gate whose
            // server moves to a public certificate keeps syncing, and a
            // stored CA never has to be cleared for it.
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        builder
            .build()
            .map_err(|e| SyncError::CaCert(error_chain(&e)))
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
    /// The round stopped after the most pages one round follows; the next
    /// round goes on from the cursor.
    pub page_limit_reached: bool,
    /// Walk-up places this gate holds after the round (all slots).
    pub leased: i64,
    /// Other gates of the venue the server listed (issue 14).
    pub peers: usize,
}

/// The sync loop as the sync screen shows it: whether it retries after
/// failures, why, and when it tries next. Kept in memory, not in the
/// database: the failure may be that the database cannot be written.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LoopStatus {
    /// Failed rounds in a row (0: the last round went through).
    pub failures: u32,
    /// The last failed round's stable code (`DATABASE_BUSY`,
    /// `SERVER_UNREACHABLE`, …) and message; None after a good round.
    pub last_error_code: Option<String>,
    pub last_error: Option<String>,
    /// When the next round starts; None when no loop runs.
    pub next_attempt_at: Option<chrono::DateTime<Utc>>,
    /// The loop ended: the server refused this device's token.
    pub stopped: bool,
}

/// What [`SyncEngine::pair_with`] did.
#[derive(Debug)]
pub enum PairChange {
    /// The database already holds this server and token: nothing was
    /// asked or written.
    Unchanged,
    /// The server confirmed the token and the database is paired with it;
    /// `replaced`: data that was not the venue's gave way (the demo, or
    /// another venue's rows).
    Paired { info: DeviceInfo, replaced: bool },
    /// The server could not be asked (`reason`): nothing was written, the
    /// device goes on with its current pairing and data.
    Kept { reason: SyncError },
}

pub struct SyncEngine {
    pub(crate) store: Arc<Store>,
    /// What the sync loop last decided (see [`LoopStatus`]).
    loop_status: std::sync::Mutex<LoopStatus>,
    /// The client and the policy it was built from; replaced as a whole when
    /// the settings screen pairs with another CA.
    transport: RwLock<(Transport, reqwest::Client)>,
    page_size: u32,
    /// `page_size` for a round that starts at cursor 0.
    first_sync_page_size: u32,
    max_response_bytes: usize,
    max_pages: usize,
    /// One round at a time: the background loop and a pairing's first
    /// round must not pull the same pages side by side.
    round_lock: tokio::sync::Mutex<()>,
}

impl SyncEngine {
    /// An engine that trusts the public CAs and refuses plain `http://`
    /// beyond loopback.
    pub fn new(store: Arc<Store>) -> Self {
        let transport = Transport::default();
        let http = transport.client().unwrap_or_default();
        Self {
            store,
            loop_status: std::sync::Mutex::new(LoopStatus::default()),
            transport: RwLock::new((transport, http)),
            page_size: 2000,
            first_sync_page_size: FIRST_SYNC_PAGE_SIZE,
            max_response_bytes: MAX_RESPONSE_BYTES,
            max_pages: MAX_PAGES_PER_ROUND,
            round_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// An engine with its own trust settings (`--ca-cert`, `--allow-http`).
    pub fn with_transport(store: Arc<Store>, transport: Transport) -> Result<Self, SyncError> {
        let engine = Self::new(store);
        engine.set_transport(transport)?;
        Ok(engine)
    }

    /// Replaces the trust settings; the next request uses them.
    pub fn set_transport(&self, transport: Transport) -> Result<(), SyncError> {
        let http = transport.client()?;
        *self.transport.write().unwrap_or_else(|p| p.into_inner()) = (transport, http);
        Ok(())
    }

    pub fn transport(&self) -> Transport {
        self.transport
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    /// The client, after checking `url` against the policy.
    pub(crate) fn http_for(&self, url: &str) -> Result<(String, reqwest::Client), SyncError> {
        let guard = self.transport.read().unwrap_or_else(|p| p.into_inner());
        let base = check_server_url(url, guard.0.allow_http)?;
        Ok((base, guard.1.clone()))
    }

    /// Every page of `page_size` changes, a first sync's too.
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size;
        self.first_sync_page_size = page_size;
        self
    }

    /// A first sync's pages of `page_size` changes (after
    /// [`Self::with_page_size`], which sets both); the other rounds' stay.
    pub fn with_first_sync_page_size(mut self, page_size: u32) -> Self {
        self.first_sync_page_size = page_size;
        self
    }

    /// The largest change page read (16 MiB unless set: a smaller device,
    /// or a test of the fallback to smaller pages).
    pub fn with_max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// At most `max_pages` change pages per round (at least one).
    pub fn with_max_pages(mut self, max_pages: usize) -> Self {
        self.max_pages = max_pages.max(1);
        self
    }

    /// Asks the server who `token` is (a device of which org and venue).
    pub async fn whoami(&self, server_url: &str, token: &str) -> Result<DeviceInfo, SyncError> {
        let (base, http) = self.http_for(server_url)?;
        let response = http
            .get(format!("{base}/api/sync/whoami"))
            .bearer_auth(token.trim())
            .send()
            .await
            .map_err(request_error)?;
        read_json(response).await
    }

    /// The one (re-)pairing policy, for `entrada sync --server --token` and
    /// the app (start flags, settings screen): nothing to do when the
    /// database holds this server and token already; else the token is
    /// checked with the server first and written only once confirmed. When
    /// the server cannot be asked, a paired device keeps its pairing
    /// (`Kept`) and an unpaired one gets the error
    /// (`plan::unconfirmed_pairing`). A refused token or address is an
    /// error, with the current pairing and data untouched.
    pub async fn repair(&self, server_url: &str, token: &str) -> Result<PairChange, SyncError> {
        let store = self.store.clone();
        self.pair_with(server_url, token, move |info, url, token| {
            store.pair(&info, &url, &token).map_err(SyncError::from)
        })
        .await
    }

    /// [`repair`](Self::repair) with the write done by `write(info, url,
    /// token) -> replaced` (the app pairs under its own lock), on the
    /// blocking pool.
    pub async fn pair_with<E>(
        &self,
        server_url: &str,
        token: &str,
        write: impl FnOnce(DeviceInfo, String, String) -> Result<bool, E> + Send + 'static,
    ) -> Result<PairChange, E>
    where
        E: From<SyncError> + Send + 'static,
    {
        let url = self.http_for(server_url)?.0;
        let token = token.trim().to_string();
        let store = self.store.clone();
        let current = blocking(move || store.pairing()).await?;
        if current
            .as_ref()
            .is_some_and(|p| p.server_url == url && p.token == token)
        {
            return Ok(PairChange::Unchanged);
        }
        let info = match self.whoami(&url, &token).await {
            Ok(info) => info,
            Err(e) => {
                return match plan::unconfirmed_pairing(current.is_some(), e.failure()) {
                    plan::UnconfirmedPairing::KeepCurrent => Ok(PairChange::Kept { reason: e }),
                    plan::UnconfirmedPairing::Refuse => Err(e.into()),
                }
            }
        };
        let i = info.clone();
        let replaced = tokio::task::spawn_blocking(move || write(i, url, token))
            .await
            .map_err(worker_failed)??;
        Ok(PairChange::Paired { info, replaced })
    }

    /// The sync loop's state (see [`LoopStatus`]).
    pub fn loop_status(&self) -> LoopStatus {
        self.loop_status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
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
        // A pairing made before the policy (or with --allow-http) is checked
        // again at every round.
        let (base, http) = self.http_for(&pairing.server_url)?;
        let mut report = RoundReport::default();

        // 1. Upload before download: the server must know our changes before
        //    we take its view of the same rows.
        for _ in 0..MAX_UPLOAD_BATCHES {
            let store = self.store.clone();
            let pending = blocking(move || store.pending_events()).await?;
            let due = plan::plan_upload(
                &pending.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>(),
                Utc::now(),
            );
            if due.is_empty() {
                break;
            }
            let total = pending.len();
            let events: Vec<_> = pending
                .into_iter()
                .map(|(e, _)| e)
                .filter(|e| due.contains(&e.event_id))
                .collect();
            // What is left after this batch, for the console's Gates page.
            let left = total.saturating_sub(events.len());
            let batch = EventBatch {
                events,
                sent_at: Utc::now(),
            };
            let sent = Utc::now();
            let outcome = async {
                let response = http
                    .post(format!("{base}/api/sync/events"))
                    .bearer_auth(&pairing.token)
                    .header("X-Entrada-Pending", left.to_string())
                    .json(&batch)
                    .send()
                    .await
                    .map_err(request_error)?;
                let answer = read_json::<EventResults>(response).await?;
                // An answer that settles none of the batch would have the
                // same batch sent again and again.
                if !answer.results.iter().any(|r| due.contains(&r.event_id)) {
                    return Err(SyncError::Protocol(
                        "the answer to an upload names none of its events".into(),
                    ));
                }
                Ok(answer)
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
                    let (message, reachable) = (e.to_string(), e.reachable());
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
                    // A first sync stopped between pages by a crash or an
                    // earlier failure left its replica without some
                    // indexes: built now, as after a failed download.
                    self.restore_deferred_indexes(Some(&e)).await;
                    return Err(e);
                }
            }
        }

        // 1b. Walk-up leases (issue 15): the places this gate may book
        //     walk-ups from offline, refreshed after its walk-ups went up.
        //     A lease that could not be refreshed (a refusal, a lost answer)
        //     leaves this gate without walk-up places until the next round;
        //     it must not also keep the replica from updating.
        report.leased = match self.refresh_leases(&http, &base, &pairing.token).await {
            Ok(places) => places,
            // A locked replica would lock the download too: end the round
            // now rather than wait out the busy timeout once per step.
            Err(e @ SyncError::Store(StoreError::Busy(_))) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "walk-up leases not refreshed this round");
                0
            }
        };

        // 1c. Gate to gate (issue 14): register this gate's public key and
        //     take the list of its venue's other gates. Like the leases, a
        //     failure here does not keep the replica from updating.
        report.peers = match self.refresh_peers(&http, &base, &pairing.token).await {
            Ok(n) => n,
            Err(e @ SyncError::Store(StoreError::Busy(_))) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "LAN peer list not refreshed this round");
                0
            }
        };

        // 2. Download, page by page; each page and its cursor commit together.
        let mut cursor = {
            let store = self.store.clone();
            blocking(move || store.pairing())
                .await?
                .map_or(0, |p| p.cursor)
        };
        let mut total = 0u64;
        // The next page is asked for while this one is applied (its cursor
        // is known before): the server reads page k+1 while the replica
        // writes page k. Both run in this task (no detached request: a
        // cancelled round cancels its request; a panic is a panic, not a
        // network error). A page is still applied, with its cursor, only
        // after the one before it; a page fetched but not applied (an error,
        // the page limit) is dropped, and asked again next round.
        //
        // A first sync asks for larger pages; `fetch` answers with the size
        // it got the page at, which the round keeps.
        let mut limit = if cursor == 0 {
            self.first_sync_page_size.max(self.page_size)
        } else {
            self.page_size
        };
        let fetch = |cursor: i64, limit: u32| {
            let (http, token) = (http.clone(), pairing.token.clone());
            let url = format!("{base}/api/sync/changes");
            let (page_size, max_bytes) = (self.page_size, self.max_response_bytes);
            async move {
                let mut limit = limit;
                loop {
                    let sent = Utc::now();
                    let response = http
                        .get(&url)
                        .query(&[("cursor", cursor.to_string()), ("limit", limit.to_string())])
                        .bearer_auth(&token)
                        .send()
                        .await
                        .map_err(request_error)?;
                    let page = match read_json_within::<PulledPage>(response, max_bytes).await {
                        // A first sync's page over the limit: asked again
                        // at the usual size, which the round keeps (a page
                        // of that size over the limit fails as it always
                        // did).
                        Err(SyncError::ResponseTooLarge { .. }) if limit > page_size => {
                            tracing::info!(
                                limit,
                                page_size,
                                "change page over the answer limit, asked again smaller"
                            );
                            limit = page_size;
                            continue;
                        }
                        answer => answer?,
                    };
                    // A change the apply would misread (an unknown op, an
                    // upsert without a row) fails the round here, as a page
                    // that does not parse does: recorded, nothing applied.
                    page.check()?;
                    if page.has_more && page.next_cursor <= cursor {
                        return Err(SyncError::Protocol(format!(
                            "more changes announced but the cursor did not move past {cursor}"
                        )));
                    }
                    return Ok((page, sent, Utc::now(), limit));
                }
            }
        };
        let mut next = if self.max_pages > 0 {
            Some(fetch(cursor, limit).await)
        } else {
            report.page_limit_reached = true;
            None
        };
        let download = async {
            while let Some(fetched) = next.take() {
                let (page, sent, received) = match fetched {
                    Ok((page, sent, received, used)) => {
                        limit = used;
                        (page, sent, received)
                    }
                    Err(e) => {
                        let store = self.store.clone();
                        let (message, reachable) = (e.to_string(), e.reachable());
                        blocking(move || {
                            store.record_sync_failure(&[], &message, reachable, Utc::now(), 0.0)
                        })
                        .await?;
                        return Err(e);
                    }
                };
                let offset = plan::clock_offset_ms(sent, page.server_time, received);
                // Each page's estimate may raise the total, never lower it: a
                // PostgreSQL server still numbering an import counts only what
                // it numbered so far, so a first page's `remaining` can be far
                // below what follows (the bar would sit at 100 %).
                let seen = report.pulled as u64 + page.changes.len() as u64;
                total = total.max(seen + page.remaining.max(0) as u64);
                report.pulled += page.changes.len();
                report.pages += 1;
                cursor = page.next_cursor;
                let more = page.has_more;
                if more && report.pages >= self.max_pages {
                    // The rest comes in the next round, after the next upload.
                    report.page_limit_reached = true;
                }
                let store = self.store.clone();
                let apply =
                    blocking(move || store.apply_pulled_page(&page, Some(offset), Utc::now()));
                // Progress is reported when the page is applied, not when the
                // next one has arrived too.
                // The last page ends the bar whatever the estimates said (a
                // PostgreSQL server's later `remaining` may count a row twice).
                let done = report.pulled as u64;
                let of = if more { total.max(done) } else { done };
                if more && !report.page_limit_reached {
                    let asked = fetch(cursor, limit);
                    let (mut apply, mut asked) = (std::pin::pin!(apply), std::pin::pin!(asked));
                    next = Some(tokio::select! {
                        // The page failed to apply: the next one is dropped,
                        // its request cancelled.
                        applied = &mut apply => {
                            applied?;
                            progress(done, of);
                            asked.await
                        }
                        fetched = &mut asked => {
                            apply.await?;
                            progress(done, of);
                            fetched
                        }
                    });
                } else {
                    let started = std::time::Instant::now();
                    apply.await?;
                    if !more {
                        // The last page applies, then the indexes a first sync
                        // deferred are built (one transaction each).
                        tracing::info!(
                            ms = started.elapsed().as_millis() as u64,
                            "last page applied, deferred indexes built"
                        );
                    }
                    progress(done, of);
                }
            }
            Ok::<(), SyncError>(())
        }
        .await;
        // A first sync that stops short of its last page (an error, the
        // page limit) would leave the replica without the indexes it
        // deferred until its last page or the next start: they are built
        // now (one read when none is deferred).
        if download.is_err() || report.page_limit_reached {
            self.restore_deferred_indexes(download.as_ref().err()).await;
        }
        download?;
        Ok(report)
    }

    /// Builds the indexes a first sync deferred, at the end of a round that
    /// did not reach its last page (`ended`: the error, if any; a locked replica is left
    /// for the next round, which would otherwise wait out the busy timeout
    /// once more). Best-effort: a failure is logged, the round's own
    /// outcome stands.
    async fn restore_deferred_indexes(&self, ended: Option<&SyncError>) {
        if matches!(ended, Some(SyncError::Store(StoreError::Busy(_)))) {
            return;
        }
        let store = self.store.clone();
        let started = std::time::Instant::now();
        match blocking(move || store.restore_deferred_indexes()).await {
            Ok(0) => {}
            Ok(built) => tracing::info!(
                built,
                ms = started.elapsed().as_millis() as u64,
                "deferred indexes built at the end of an unfinished sync round"
            ),
            Err(e) => tracing::warn!(error = %e, "deferred indexes not built this round"),
        }
    }

    /// The lease refresh of a round: the gate's lease stays usable while
    /// the server decides (a walk-up meanwhile is booked from it, not
    /// refused), then is replaced by the server's answer less the walk-ups
    /// booked since the request (`Store::apply_leases`); an answer older
    /// than one already applied (a concurrent sync engine's) is dropped.
    /// Nothing to undo when the request fails: the lease was never touched.
    /// Returns the places held.
    async fn refresh_leases(
        &self,
        http: &reqwest::Client,
        base: &str,
        token: &str,
    ) -> Result<i64, SyncError> {
        use entrada_domain::venue_ops::{LeaseGrant, LeaseRequest};
        let store = self.store.clone();
        let ask = blocking(move || store.lease_request()).await?;
        let sent = http
            .post(format!("{base}/api/sync/leases"))
            .bearer_auth(token)
            .json(&LeaseRequest {
                pending: ask.pending.clone(),
            })
            .send()
            .await;
        let response = match sent {
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => return Ok(0),
            Ok(r) => r,
            Err(e) => {
                let e = request_error(e);
                let store = self.store.clone();
                let (message, reachable) = (e.to_string(), e.reachable());
                blocking(move || {
                    store.record_sync_failure(&[], &message, reachable, Utc::now(), 0.0)
                })
                .await?;
                return Err(e);
            }
        };
        let grant = read_json::<LeaseGrant>(response).await?;
        let store = self.store.clone();
        blocking(move || store.apply_leases(&grant.leases, &ask, Utc::now())).await?;
        let store = self.store.clone();
        let held = blocking(move || store.walkup_leases()).await?;
        Ok(held.iter().map(|l| l.places).sum())
    }

    /// Registers this gate's public key and stores the server's list of
    /// its peers (an older server without the route: no peers). Returns
    /// how many peers it listed.
    async fn refresh_peers(
        &self,
        http: &reqwest::Client,
        base: &str,
        token: &str,
    ) -> Result<usize, SyncError> {
        use entrada_domain::sync::lan::{PeerList, PeerRequest};
        let store = self.store.clone();
        let Some(public_key) = blocking(move || store.device_public_key()).await? else {
            return Ok(0);
        };
        let response = http
            .post(format!("{base}/api/sync/peers"))
            .bearer_auth(token)
            .json(&PeerRequest { public_key })
            .send()
            .await
            .map_err(request_error)?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(0);
        }
        let list = read_json::<PeerList>(response).await?;
        let n = list.peers.len();
        let store = self.store.clone();
        blocking(move || store.set_peers(&list.peers)).await?;
        Ok(n)
    }

    /// Rounds forever, every `interval` when all is well, backing off after
    /// failures (`plan::next_round`: a locked database, an unreachable or
    /// refusing server are all retried). `on_round` is told after each
    /// round, once [`loop_status`](Self::loop_status) says what comes next.
    /// Returns only when the server refused the device's token.
    pub async fn watch(
        &self,
        interval: Duration,
        mut on_round: impl FnMut(&Result<RoundReport, SyncError>),
    ) -> SyncError {
        let mut failures = 0u32;
        *self.loop_status.lock().unwrap_or_else(|p| p.into_inner()) = LoopStatus::default();
        loop {
            let result = self.round(|_, _| {}).await;
            let failure = result.as_ref().err().map(SyncError::failure);
            failures = if failure.is_some() {
                failures.saturating_add(1)
            } else {
                0
            };
            let next = plan::next_round(failure, failures, interval, jitter());
            {
                let mut status = self.loop_status.lock().unwrap_or_else(|p| p.into_inner());
                *status = LoopStatus {
                    failures,
                    last_error_code: result.as_ref().err().map(|e| e.code().to_string()),
                    last_error: result.as_ref().err().map(ToString::to_string),
                    next_attempt_at: match next {
                        plan::NextRound::After(wait) => chrono::Duration::from_std(wait)
                            .ok()
                            .map(|wait| Utc::now() + wait),
                        plan::NextRound::Stop => None,
                    },
                    stopped: next == plan::NextRound::Stop,
                };
            }
            on_round(&result);
            match (next, result) {
                (plan::NextRound::After(wait), _) => tokio::time::sleep(wait).await,
                (plan::NextRound::Stop, Err(e)) => return e,
                // A good round never stops the loop.
                (plan::NextRound::Stop, Ok(_)) => tokio::time::sleep(interval).await,
            }
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

/// Whether a gate may talk to `host` (as a URL writes it: `[::1]` for IPv6)
/// over `scheme`: https anywhere; plain http only to this machine
/// (loopback) unless `allow_http`. Pure: no lookup, a name is taken as
/// written (only `localhost` is loopback: a resolver may send any other
/// name, `*.localhost` included, off the machine).
pub fn url_allowed(scheme: &str, host: &str, allow_http: bool) -> bool {
    match scheme.to_ascii_lowercase().as_str() {
        "https" => !host.is_empty(),
        "http" => !host.is_empty() && (allow_http || is_loopback(host)),
        _ => false,
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.to_canonical().is_loopback(),
        Err(_) => {
            let name = bare.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost"
        }
    }
}

/// The base URL to store and use, or why this gate refuses it.
pub fn check_server_url(server_url: &str, allow_http: bool) -> Result<String, SyncError> {
    let base = server_base(server_url)?;
    let url = reqwest::Url::parse(&base).map_err(|_| SyncError::InvalidUrl(base.clone()))?;
    let host = url.host_str().unwrap_or_default();
    if url_allowed(url.scheme(), host, allow_http) {
        Ok(base)
    } else {
        Err(SyncError::PlainHttp(base))
    }
}

/// A request that got no answer: a refused certificate says so, anything
/// else is the network.
pub(crate) fn request_error(e: reqwest::Error) -> SyncError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        let tls = err.downcast_ref::<rustls::Error>().or_else(|| {
            err.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = tls {
            return SyncError::Tls(tls.to_string());
        }
        // Some layers re-wrap the TLS error as text (hyper-util's connect error).
        let text = err.to_string();
        if text.starts_with("invalid peer certificate") || text.contains("peer is incompatible") {
            return SyncError::Tls(text);
        }
        source = err.source();
    }
    SyncError::Network(error_chain(&e))
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(err) = source {
        let more = err.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = err.source();
    }
    text
}

/// The body, read up to `limit` bytes: a server cannot make the gate
/// buffer without end.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, SyncError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(SyncError::ResponseTooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(request_error)? {
        if body.len() + chunk.len() > limit {
            return Err(SyncError::ResponseTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, SyncError> {
    read_json_within(response, MAX_RESPONSE_BYTES).await
}

/// [`read_json`] with its own size limit (`limit` bytes at most).
pub(crate) async fn read_json_within<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    limit: usize,
) -> Result<T, SyncError> {
    let status = response.status();
    // The server refuses an unknown or revoked device token with 401, and
    // only that. A 403 is someone else's answer (a proxy, a WAF, a
    // maintenance page): a `Server` error, retried (`plan::classify_status`).
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(SyncError::Unauthorized);
    }
    let body = read_limited(response, limit).await?;
    // The strict check first (word at a time): the lossy one walks every
    // byte, 3 % of a gate's first-sync CPU (issue 13); same text either way.
    let body = match std::str::from_utf8(&body) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(&body),
    };
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

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, SyncError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(worker_failed)?
        .map_err(SyncError::from)
}

/// A blocking step that did not return: a panic is reported as one (with
/// its message), not as an unreachable server, which would send the
/// operator looking at the network; a cancelled task (the runtime shutting
/// down) is `WorkerFailed` too, as nothing was answered.
fn worker_failed(e: tokio::task::JoinError) -> SyncError {
    if e.is_panic() {
        let payload = e.into_panic();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        SyncError::WorkerFailed(message)
    } else {
        SyncError::WorkerFailed(format!("the step was cancelled: {e}"))
    }
}

/// Jitter from the clock's sub-second noise: good enough to spread gates.
fn jitter() -> f64 {
    f64::from(Utc::now().timestamp_subsec_nanos() % 1000) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step on the blocking pool that panics (an apply's bug) is
    /// reported as a failed worker (`WorkerFailed`), with the panic's
    /// message, classified as this device's failure: not as an
    /// unreachable server.
    #[tokio::test]
    async fn a_panicking_step_is_a_worker_failure_not_a_network_error() {
        let err = blocking(|| -> Result<(), StoreError> { panic!("apply bug") })
            .await
            .unwrap_err();
        assert!(matches!(err, SyncError::WorkerFailed(_)), "{err}");
        assert_eq!(err.code(), "INTERNAL_ERROR", "{err}");
        assert!(err.to_string().contains("apply bug"), "{err}");
        assert!(!matches!(err, SyncError::Network(_)));
        assert_eq!(err.failure(), Failure::Local);
        let owned = blocking(|| -> Result<(), StoreError> { panic!("{}", String::from("owned")) })
            .await
            .unwrap_err();
        assert!(owned.to_string().contains("owned"), "{owned}");
    }

    #[test]
    fn url_policy_case_table() {
        // (scheme, host, allow_http, allowed)
        let cases: &[(&str, &str, bool, bool)] = &[
            ("https", "gate.example.com", false, true),
            ("https", "10.1.2.3", false, true),
            ("https", "[fe80::1]", false, true),
            ("http", "127.0.0.1", false, true),
            ("http", "127.8.9.10", false, true),
            ("http", "[::1]", false, true),
            ("http", "[::ffff:127.0.0.1]", false, true),
            ("http", "localhost", false, true),
            ("http", "LOCALHOST.", false, true),
            ("http", "gate.localhost", false, false),
            ("http", "10.1.2.3", false, false),
            ("http", "192.168.1.20", false, false),
            ("http", "0.0.0.0", false, false),
            ("http", "[::]", false, false),
            ("http", "[fe80::1]", false, false),
            ("http", "gate.example.com", false, false),
            ("http", "localhost.example.com", false, false),
            ("http", "127.0.0.1.nip.io", false, false),
            ("http", "10.1.2.3", true, true),
            ("http", "gate.example.com", true, true),
            ("ftp", "127.0.0.1", true, false),
            ("file", "", true, false),
            ("https", "", false, false),
        ];
        for &(scheme, host, allow_http, allowed) in cases {
            assert_eq!(
                url_allowed(scheme, host, allow_http),
                allowed,
                "{scheme}://{host} allow_http={allow_http}"
            );
        }
    }

    #[test]
    fn check_server_url_returns_the_base_or_says_why() {
        let ok = |u: &str, allow: bool| check_server_url(u, allow).map_err(|e| e.code());
        assert_eq!(
            ok("https://gate.example.com/", false),
            Ok("https://gate.example.com".into())
        );
        assert_eq!(
            ok(" http://127.0.0.1:8080 ", false),
            Ok("http://127.0.0.1:8080".into())
        );
        assert_eq!(
            ok("http://10.1.2.3:8080", false),
            Err("INSECURE_SERVER_URL")
        );
        assert_eq!(
            ok("http://10.1.2.3:8080", true),
            Ok("http://10.1.2.3:8080".into())
        );
        // The parser's normal form decides: 127.1 is 127.0.0.1, 0x0a.1.2.3 is 10.1.2.3.
        assert_eq!(
            ok("http://127.1:8080", false),
            Ok("http://127.1:8080".into())
        );
        assert_eq!(ok("http://0x0a.1.2.3", false), Err("INSECURE_SERVER_URL"));
        assert_eq!(ok("gate.example.com", false), Err("INVALID_URL"));
        let message = check_server_url("http://10.1.2.3:8080", false)
            .unwrap_err()
            .to_string();
        assert!(message.contains("--allow-http"), "{message}");
        assert!(message.contains("https://"), "{message}");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let t = Transport {
            ca_cert_pem: Some(b"not a certificate".to_vec()),
            allow_http: false,
        };
        assert_eq!(
            t.client().map(|_| ()).unwrap_err().code(),
            "INVALID_CA_CERT"
        );
    }
}
