//! The gate's link to its server: pairing (at start from flags, or later
//! from the settings screen) and the background sync loop. Knows nothing of
//! windows: each finished round is reported through a callback.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use entrada::domain::pairing::PairingCode;
use entrada::store::{Store, StoreError};
use entrada::sync::client::{PairChange, SyncEngine, SyncError, Transport};
use entrada::sync::pin::fetch_pinned_ca;
use entrada::sync::protocol::DeviceInfo;

use crate::gate::views::{CommandError, PairOutcome, SyncView};
use crate::gate::GateService;

type OnRound = Box<dyn Fn(SyncView) + Send + Sync>;

pub struct DeviceLink {
    gate: Arc<GateService>,
    engine: Arc<SyncEngine>,
    interval: Duration,
    /// Whether a sync loop runs (at most one; it ends on a revoked token).
    sync_loop: Arc<Mutex<bool>>,
    on_round: Arc<OnceLock<OnRound>>,
    /// A sync round went through since the app started.
    healthy: Arc<AtomicBool>,
}

/// Sync failures in the settings screen's words, with stable codes
/// (`INSECURE_SERVER_URL` for a plain http:// server on the network,
/// `TLS_CERTIFICATE_REFUSED` for a certificate no trusted CA signed).
pub fn sync_error(e: SyncError) -> CommandError {
    match e {
        SyncError::Store(s) => s.into(),
        e => CommandError::new(e.code(), e.to_string()),
    }
}

impl From<SyncError> for CommandError {
    fn from(e: SyncError) -> Self {
        sync_error(e)
    }
}

/// Where the CA certificate given on the settings screen or by `--ca-cert`
/// is kept (PEM), so the gate trusts its server after a restart.
pub const CA_CERT_KEY: &str = "server_ca_cert";

/// The CA field: PEM text as pasted, or the path of a PEM file on this computer.
pub fn read_ca_cert(field: &str) -> Result<Vec<u8>, CommandError> {
    let field = field.trim();
    if field.starts_with("-----BEGIN") {
        return Ok(field.as_bytes().to_vec());
    }
    std::fs::read(field).map_err(|e| {
        CommandError::new(
            "INVALID_CA_CERT",
            format!("cannot read the CA certificate file {field}: {e}"),
        )
    })
}

/// The trust settings at start: `--ca-cert` wins over the CA the settings
/// screen saved (and is saved in its place); `--allow-http` is never saved.
pub fn start_transport(
    store: &Store,
    ca_cert_flag: Option<Vec<u8>>,
    allow_http: bool,
) -> Result<Transport, StoreError> {
    let ca_cert_pem = match ca_cert_flag {
        Some(pem) => {
            store.set_device_setting(CA_CERT_KEY, &String::from_utf8_lossy(&pem))?;
            Some(pem)
        }
        None => store
            .device_settings()?
            .remove(CA_CERT_KEY)
            .map(String::into_bytes),
    };
    Ok(Transport {
        ca_cert_pem,
        allow_http,
    })
}

impl DeviceLink {
    pub fn new(gate: Arc<GateService>, engine: Arc<SyncEngine>, interval: Duration) -> Self {
        Self {
            gate,
            engine,
            interval,
            sync_loop: Arc::new(Mutex::new(false)),
            on_round: Arc::new(OnceLock::new()),
            healthy: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Where each round's status goes (the window, once it exists).
    pub fn on_round(&self, f: impl Fn(SyncView) + Send + Sync + 'static) {
        let _ = self.on_round.set(Box::new(f));
    }

    /// The sync engine's one pairing policy (`SyncEngine::pair_with`, as
    /// `entrada sync --server --token`), written under the gate's own lock
    /// (`GateService::adopt_pairing`): a standalone replica's demo data is
    /// replaced; a paired one keeps its data and outbox (a new token after a
    /// revocation, a new address). No permission check.
    async fn apply_pairing(
        &self,
        server_url: &str,
        token: &str,
    ) -> Result<PairChange, CommandError> {
        if token.trim().is_empty() {
            return Err(CommandError::new(
                "INVALID_INPUT",
                "Enter the device token from `entrada device add`",
            ));
        }
        let gate = self.gate.clone();
        let change = self
            .engine
            .pair_with(server_url, token, move |info, url, token| {
                gate.adopt_pairing(&info, &url, &token)
            })
            .await?;
        match &change {
            PairChange::Paired { info, replaced } => tracing::info!(
                device = info.device_id,
                venue = info.venue_id,
                replaced,
                "paired with {server_url}"
            ),
            PairChange::Kept { reason } => tracing::warn!(
                code = reason.code(),
                error = %reason,
                "new server/token not applied: keeping the current pairing"
            ),
            PairChange::Unchanged => {}
        }
        Ok(change)
    }

    /// After a pairing: starts the sync loop and downloads the venue's data
    /// in one round, so its operators can sign in at once.
    async fn first_round(&self, info: DeviceInfo, replaced_demo: bool) -> PairOutcome {
        // Paired from here on: whatever follows, scans must upload.
        self.start_sync();
        let first_sync_error = match self.engine.round(|_, _| {}).await {
            Ok(report) => {
                tracing::info!(pulled = report.pulled, "first sync done");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "first sync failed; retrying in the background");
                Some(e.to_string())
            }
        };
        // The venue's name arrives with the first round. The pairing is
        // done: reading things back can only warn, not fail it.
        if let Err(e) = self.gate.reload_scope() {
            tracing::warn!(error = %e, "reading the venue after pairing");
        }
        PairOutcome {
            device_id: info.device_id,
            device_name: info.name,
            venue_name: self.gate.info().ok().and_then(|i| i.venue_name),
            replaced_demo,
            operators: self.gate.operators().map_or(0, |o| o.len() as u32),
            first_sync_error,
        }
    }

    /// At start, from `--server` / `--token` (gate PCs are set up by
    /// script), through the one pairing policy: pairs an unpaired gate (an
    /// error if that fails: the first start needs the server), re-pairs a
    /// gate whose flags name another server or token, and does nothing when
    /// they match. A paired gate whose server cannot be asked keeps its
    /// pairing and starts on it. `Some` when a pairing happened.
    pub async fn provision(
        &self,
        server_url: &str,
        token: &str,
    ) -> Result<Option<PairOutcome>, CommandError> {
        match self.apply_pairing(server_url, token).await? {
            PairChange::Paired { info, replaced } => {
                Ok(Some(self.first_round(info, replaced).await))
            }
            PairChange::Unchanged | PairChange::Kept { .. } => Ok(None),
        }
    }

    /// Pairing from the settings screen, through the one pairing policy.
    /// The same server and token again restart the sync loop and run a
    /// round; a server that cannot be asked leaves the gate as it was and
    /// says so (its code, e.g. `SERVER_UNREACHABLE`).
    async fn connect(&self, server_url: &str, token: &str) -> Result<PairOutcome, CommandError> {
        match self.apply_pairing(server_url, token).await? {
            PairChange::Paired { info, replaced } => Ok(self.first_round(info, replaced).await),
            PairChange::Unchanged => {
                let pairing = self.gate.store().pairing()?.ok_or_else(|| {
                    CommandError::new("NOT_PAIRED", "this gate is not paired with a server")
                })?;
                Ok(self.first_round(pairing.info, false).await)
            }
            PairChange::Kept { reason } => {
                let mut e = sync_error(reason);
                e.message = format!("{}; the gate keeps its current pairing", e.message);
                Err(e)
            }
        }
    }

    /// Pairing from the settings screen: a supervisor's act. `ca_cert`
    /// (PEM text or a file path; empty keeps the CA in use) is the venue's
    /// own certificate authority; it is kept only if the pairing succeeds.
    pub async fn pair(
        &self,
        server_url: &str,
        token: &str,
        ca_cert: Option<&str>,
    ) -> Result<PairOutcome, CommandError> {
        self.gate.require_supervisor("pair this gate")?;
        let pem = match ca_cert.map(str::trim).filter(|f| !f.is_empty()) {
            Some(field) => Some(read_ca_cert(field)?),
            None => None,
        };
        self.pair_trusting(server_url, token, pem).await
    }

    /// The operator books the holder of `payload` (a walk-up: NOT_RESERVED,
    /// a deferred ticket, a signed code this replica does not hold) into
    /// the slot open now and lets them in: online through the server's
    /// reservation path, offline (or when the server has no free place)
    /// from this gate's lease (`entrada::sync::walkup`). ADMIT, or the
    /// refusal (NO_PLACE_LEFT, the ticket's own).
    pub async fn book_walkup(
        &self,
        payload: &str,
        source: crate::gate::views::ScanSource,
    ) -> Result<crate::gate::views::ScanOutcome, CommandError> {
        let (orq, operator, rules, now) = self.gate.walkup_context()?;
        let started = std::time::Instant::now();
        let verdict = self
            .engine
            .book_walkup(orq, payload.as_bytes().to_vec(), operator, rules, now)
            .await
            .map_err(sync_error)?;
        self.gate
            .walkup_outcome(orq, &verdict, payload, source, started)
    }

    /// A supervisor checks everyone out of the venue (closing time, an
    /// evacuation drill): online only, by the server, which holds every
    /// gate's passages (`entrada::sync::closing`); the exits reach this
    /// gate's count with the sync round that follows.
    pub async fn check_everyone_out(
        &self,
    ) -> Result<crate::gate::views::CheckoutView, CommandError> {
        let supervisor = self.gate.supervisor_id("check everyone out")?;
        let done = self
            .engine
            .checkout_venue(supervisor)
            .await
            .map_err(sync_error)?;
        Ok(crate::gate::views::CheckoutView {
            checked_out: done.checked_out,
            inside: done.inside,
        })
    }

    /// Pairing from a scanned pairing code (issue 16), a supervisor's act:
    /// the code is read by `entrada::domain::pairing`; when it names the
    /// venue's CA, the certificate of that SHA-256 is taken from the
    /// server's chain (`entrada::sync::pin`) and is trusted besides the public CAs
    /// — a server that presents no such certificate is refused.
    pub async fn pair_with_code(&self, code: &str) -> Result<PairOutcome, CommandError> {
        self.gate.require_supervisor("pair this gate")?;
        let code =
            PairingCode::parse(code).map_err(|e| CommandError::new(e.code(), e.to_string()))?;
        // The rule of the confirm panel, again: the outbox may have grown since.
        if let (_, _, Some(refusal)) = self.gate.pairing_check(&code)? {
            return Err(refusal);
        }
        let pem = match code.ca_sha256() {
            Some(sha256) => Some(
                fetch_pinned_ca(code.server_url(), sha256)
                    .await
                    .map_err(sync_error)?,
            ),
            None => None,
        };
        self.pair_trusting(code.server_url(), code.token(), pem)
            .await
    }

    /// Pairs trusting the CA `pem` (kept only if the pairing succeeds), or
    /// the CA in use when `None`.
    async fn pair_trusting(
        &self,
        server_url: &str,
        token: &str,
        pem: Option<Vec<u8>>,
    ) -> Result<PairOutcome, CommandError> {
        let Some(pem) = pem else {
            return self.connect(server_url, token).await;
        };
        let before = self.engine.transport();
        self.engine
            .set_transport(Transport {
                ca_cert_pem: Some(pem.clone()),
                ..before.clone()
            })
            .map_err(sync_error)?;
        match self.connect(server_url, token).await {
            Ok(outcome) => {
                self.gate
                    .store()
                    .set_device_setting(CA_CERT_KEY, &String::from_utf8_lossy(&pem))?;
                Ok(outcome)
            }
            Err(e) => {
                // The CA that worked before stays in use.
                let _ = self.engine.set_transport(before);
                Err(e)
            }
        }
    }

    /// Starts the background sync loop if the gate is paired and no loop
    /// runs. The loop retries every failure with backoff (an unreachable
    /// server, a database another process holds locked, a refused batch)
    /// and stops only when the server refuses the token (revoked); the
    /// gate shows which (`GateService::report_sync_loop`). Pairing again
    /// restarts it — also when the old loop is just giving up as the new
    /// pairing lands.
    pub fn start_sync(&self) {
        if !matches!(self.gate.store().pairing(), Ok(Some(_))) {
            return;
        }
        {
            let mut running = lock(&self.sync_loop);
            if *running {
                return;
            }
            *running = true;
        }
        let (engine, gate, sync_loop, on_round, interval) = (
            self.engine.clone(),
            self.gate.clone(),
            self.sync_loop.clone(),
            self.on_round.clone(),
            self.interval,
        );
        let token = |gate: &GateService| gate.store().pairing().ok().flatten().map(|p| p.token);
        let healthy = self.healthy.clone();
        tauri::async_runtime::spawn(async move {
            loop {
                let started_with = token(&gate);
                let fatal = engine
                    .watch(interval, |round| {
                        match round {
                            // Under a launcher (fleet updates), this version
                            // is healthy once a sync round went through.
                            Ok(_) if !healthy.swap(true, Ordering::SeqCst) => {
                                entrada::sync::update::confirm_healthy_to_launcher()
                            }
                            Ok(_) => {}
                            Err(e) => tracing::warn!(error = %e, "sync round failed"),
                        }
                        gate.report_sync_loop(engine.loop_status());
                        // A round may bring the venue (its name) and operators.
                        let _ = gate.reload_scope();
                        if let (Some(report), Ok(view)) = (on_round.get(), gate.sync_view()) {
                            report(view);
                        }
                    })
                    .await;
                // Decided under the same lock `start_sync` takes: a pairing
                // that committed before this check restarts the loop here; one
                // after it finds the loop stopped and starts a new one.
                let mut running = lock(&sync_loop);
                if token(&gate) != started_with {
                    tracing::info!(error = %fatal, "sync restarts with the new pairing");
                    continue;
                }
                *running = false;
                gate.report_sync_loop(engine.loop_status());
                tracing::error!(error = %fatal, "sync stopped: pair the gate again");
                break;
            }
        });
    }
}

impl DeviceLink {
    /// Fleet updates beside the sync loop (the app runs under its launcher,
    /// `entrada-desktop --app-dir`): reports the running version, stages a
    /// newer signed bundle, and switches to it at a quiet moment — the
    /// screen locked, or no scan for `policy.quiet`, never during a
    /// supervisor's deferral — then `restart` (the app exits for its
    /// launcher to start the new version; unsent scans stay in the outbox).
    pub fn start_updates(
        &self,
        policy: entrada::sync::update::UpdatePolicy,
        restart: impl FnOnce(entrada::domain::update::Version) + Send + 'static,
    ) {
        let (engine, gate) = (self.engine.clone(), self.gate.clone());
        tauri::async_runtime::spawn(async move {
            let version = engine.watch_updates(&policy, || gate.screen_locked()).await;
            restart(version);
        });
    }

    /// Runs the LAN exchange with the venue's other gates (issue 14) as
    /// `flags` (`--lan-listen`, `--peer`) say, else as the settings screen's
    /// switch says (looked at every second: turned on or off there, the
    /// exchange starts or stops), once the gate is paired: retried every
    /// 5 s while it is not, or while its port is taken. mDNS discovery runs
    /// beside it unless `no_mdns` (`--no-mdns`, `ENTRADA_LAN_MDNS=0`). It
    /// keeps going offline; its state goes to the sync and settings screens.
    pub fn start_lan(&self, flags: entrada::sync::lan::LanConfig, no_mdns: bool) {
        let gate = self.gate.clone();
        let store = gate.store().clone();
        tauri::async_runtime::spawn(async move {
            // What runs (None: nothing decided yet) and with what.
            let mut running: Option<(LanKey, Option<LanTask>)> = None;
            loop {
                let saved = store.device_settings().unwrap_or_default();
                let config = crate::gate::lan_config(&flags, &saved);
                let key = (config.listen, config.peers.clone());
                if running.as_ref().map(|(k, _)| k) != Some(&key) {
                    if let Some((_, Some(task))) = running.take() {
                        task.handle.abort();
                        tracing::info!("LAN exchange stopped (settings changed)");
                    }
                    let on = config.listen.is_some() || !config.peers.is_empty();
                    let task = on.then(|| {
                        let current = Arc::new(Mutex::new(None));
                        let handle = tauri::async_runtime::spawn(run_lan(
                            store.clone(),
                            config,
                            no_mdns,
                            current.clone(),
                        ));
                        LanTask { handle, current }
                    });
                    running = Some((key, task));
                }
                let listening = running
                    .as_ref()
                    .and_then(|(_, t)| t.as_ref())
                    .and_then(|t| lock(&t.current).as_ref().and_then(|e| e.listening()));
                gate.report_lan(crate::gate::lan_view(&flags, &saved, listening));
                // (tokio is not this crate's dependency: tauri's runtime runs it.)
                let _ = tauri::async_runtime::spawn_blocking(|| {
                    std::thread::sleep(Duration::from_secs(1))
                })
                .await;
            }
        });
    }
}

/// What the exchange runs with: listen address and static peers.
type LanKey = (Option<std::net::SocketAddr>, Vec<String>);

/// A running exchange: its task, and the exchange it made last (for its
/// listening address).
struct LanTask {
    handle: tauri::async_runtime::JoinHandle<()>,
    current: Arc<Mutex<Option<Arc<entrada::sync::lan::LanExchange>>>>,
}

/// The exchange (and discovery) until aborted; retried every 5 s.
async fn run_lan(
    store: Arc<Store>,
    config: entrada::sync::lan::LanConfig,
    no_mdns: bool,
    current: Arc<Mutex<Option<Arc<entrada::sync::lan::LanExchange>>>>,
) {
    let discover = entrada::sync::lan_discovery::wanted(
        no_mdns,
        std::env::var("ENTRADA_LAN_MDNS").ok().as_deref(),
        config.listen,
    );
    loop {
        match entrada::sync::lan::LanExchange::new(store.clone()) {
            Ok(exchange) => {
                let exchange = Arc::new(exchange);
                *lock(&current) = Some(exchange.clone());
                let run = entrada::sync::lan_discovery::run_exchange(
                    exchange,
                    store.clone(),
                    config.clone(),
                    discover,
                );
                if let Err(e) = run.await {
                    tracing::warn!(error = %e, "LAN exchange stopped; retrying");
                }
                *lock(&current) = None;
            }
            Err(e) => tracing::debug!(error = %e, "LAN exchange not started yet"),
        }
        let _ = tauri::async_runtime::spawn_blocking(|| std::thread::sleep(Duration::from_secs(5)))
            .await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
