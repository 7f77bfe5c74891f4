//! The gate's link to its server: pairing (at start from flags, or later
//! from the settings screen) and the background sync loop. Knows nothing of
//! windows: each finished round is reported through a callback.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use entrada::sync::client::{server_base, SyncEngine, SyncError};

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
}

/// Sync failures in the settings screen's words, with stable codes.
pub fn sync_error(e: SyncError) -> CommandError {
    let code = match &e {
        SyncError::Network(_) => "SERVER_UNREACHABLE",
        SyncError::Unauthorized => "TOKEN_REFUSED",
        SyncError::Server { .. } => "SERVER_ERROR",
        SyncError::InvalidUrl(_) => "INVALID_URL",
        SyncError::NotPaired => "NOT_PAIRED",
        SyncError::Store(_) => "",
    };
    match e {
        SyncError::Store(s) => s.into(),
        e => CommandError::new(code, e.to_string()),
    }
}

impl DeviceLink {
    pub fn new(gate: Arc<GateService>, engine: Arc<SyncEngine>, interval: Duration) -> Self {
        Self {
            gate,
            engine,
            interval,
            sync_loop: Arc::new(Mutex::new(false)),
            on_round: Arc::new(OnceLock::new()),
        }
    }

    /// Where each round's status goes (the window, once it exists).
    pub fn on_round(&self, f: impl Fn(SyncView) + Send + Sync + 'static) {
        let _ = self.on_round.set(Box::new(f));
    }

    /// Pairs with `server_url` using a device token and downloads the
    /// venue's data in one round, so its operators can sign in at once. A
    /// standalone replica's demo data is replaced; a paired one keeps its
    /// data and outbox (a new token after a revocation, a new address).
    /// No permission check: at start the flags are the authority.
    pub async fn connect(
        &self,
        server_url: &str,
        token: &str,
    ) -> Result<PairOutcome, CommandError> {
        if token.trim().is_empty() {
            return Err(CommandError::new(
                "INVALID_INPUT",
                "Enter the device token from `entrada device add`",
            ));
        }
        let info = self
            .engine
            .whoami(server_url, token)
            .await
            .map_err(sync_error)?;
        let url = server_base(server_url).map_err(sync_error)?;
        let gate = self.gate.clone();
        let (i, t) = (info.clone(), token.trim().to_string());
        let replaced_demo =
            tauri::async_runtime::spawn_blocking(move || gate.adopt_pairing(&i, &url, &t))
                .await
                .map_err(|e| CommandError::new("INTERNAL", e.to_string()))??;
        tracing::info!(
            device = info.device_id,
            venue = info.venue_id,
            replaced_demo,
            "paired with {server_url}"
        );
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
        Ok(PairOutcome {
            device_id: info.device_id,
            device_name: info.name,
            venue_name: self.gate.info().ok().and_then(|i| i.venue_name),
            replaced_demo,
            operators: self.gate.operators().map_or(0, |o| o.len() as u32),
            first_sync_error,
        })
    }

    /// At start, from `--server` / `--token` (gate PCs are set up by
    /// script): pairs an unpaired gate (an error if that fails: the first
    /// start needs the server), re-pairs a gate whose flags name another
    /// server or token (a new token after a revocation; if the server cannot
    /// be reached, the gate keeps its pairing and says why), and does
    /// nothing when they match. `Some` when a pairing happened.
    pub async fn provision(
        &self,
        server_url: &str,
        token: &str,
    ) -> Result<Option<PairOutcome>, CommandError> {
        let current = self.gate.store().pairing()?;
        let Some(current) = current else {
            return self.connect(server_url, token).await.map(Some);
        };
        let same_server = server_base(server_url).is_ok_and(|u| u == current.server_url);
        if same_server && token.trim() == current.token {
            return Ok(None);
        }
        match self.connect(server_url, token).await {
            Ok(outcome) => Ok(Some(outcome)),
            Err(e) if e.code == "SERVER_UNREACHABLE" => {
                tracing::warn!(error = %e.message, "new --server/--token not applied: keeping the current pairing until the server is reachable at a start");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Pairing from the settings screen: a supervisor's act.
    pub async fn pair(&self, server_url: &str, token: &str) -> Result<PairOutcome, CommandError> {
        self.gate.require_supervisor("pair this gate")?;
        self.connect(server_url, token).await
    }

    /// Starts the background sync loop if the gate is paired and no loop
    /// runs. The loop retries network failures forever and stops only on
    /// what retrying cannot fix (a revoked token); pairing again restarts
    /// it — also when the old loop is just giving up as the new pairing lands.
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
        tauri::async_runtime::spawn(async move {
            loop {
                let started_with = token(&gate);
                let fatal = engine
                    .watch(interval, |round| {
                        if let Err(e) = round {
                            tracing::warn!(error = %e, "sync round failed");
                        }
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
                tracing::error!(error = %fatal, "sync stopped: pair the gate again");
                break;
            }
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
