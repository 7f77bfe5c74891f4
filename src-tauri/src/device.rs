//! The gate's link to its server: pairing (at start from flags, or later
//! from the settings screen) and the background sync loop. Knows nothing of
//! windows: each finished round is reported through a callback.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use entrada::sync::client::{server_base, SyncEngine, SyncError};

use crate::gate::views::{CommandError, PairOutcome, SyncView};
use crate::gate::GateService;

type OnRound = Box<dyn Fn(SyncView) + Send + Sync>;

pub struct DeviceLink {
    gate: Arc<GateService>,
    engine: Arc<SyncEngine>,
    interval: Duration,
    /// A sync loop is running (at most one; it ends on a revoked token).
    running: Arc<AtomicBool>,
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
            running: Arc::new(AtomicBool::new(false)),
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
        // The venue's name arrives with the first round.
        self.gate.reload_scope()?;
        let venue_name = self.gate.info()?.venue_name;
        Ok(PairOutcome {
            device_id: info.device_id,
            device_name: info.name,
            venue_name,
            replaced_demo,
            operators: self.gate.operators()?.len() as u32,
            first_sync_error,
        })
    }

    /// Pairing from the settings screen: a supervisor's act. Starts the
    /// sync loop if it is not running.
    pub async fn pair(&self, server_url: &str, token: &str) -> Result<PairOutcome, CommandError> {
        self.gate.require_supervisor("pair this gate")?;
        let outcome = self.connect(server_url, token).await?;
        self.start_sync();
        Ok(outcome)
    }

    /// Starts the background sync loop if the gate is paired and no loop
    /// runs. The loop retries network failures forever and stops only on
    /// what retrying cannot fix (a revoked token); pairing again restarts it.
    pub fn start_sync(&self) {
        if !matches!(self.gate.store().pairing(), Ok(Some(_))) {
            return;
        }
        if self.running.swap(true, Ordering::SeqCst) {
            return;
        }
        let (engine, gate, running, on_round, interval) = (
            self.engine.clone(),
            self.gate.clone(),
            self.running.clone(),
            self.on_round.clone(),
            self.interval,
        );
        tauri::async_runtime::spawn(async move {
            let fatal = engine
                .watch(interval, |round| {
                    if let Err(e) = round {
                        tracing::warn!(error = %e, "sync round failed");
                    }
                    if let (Some(report), Ok(view)) = (on_round.get(), gate.sync_view()) {
                        report(view);
                    }
                })
                .await;
            running.store(false, Ordering::SeqCst);
            tracing::error!(error = %fatal, "sync stopped: pair the gate again");
        });
    }
}
