//! The gate, without a window: one object the Tauri commands, the camera
//! loop and the tests all use. It holds the local replica, who is signed in,
//! and the sync engine's handle; every rule it applies comes from `entrada`.

mod lan_setting;
mod pairing_scan;
mod power;
mod screens;
mod session;
mod settings;
mod venue_ops;
pub mod views;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use entrada::domain::{Gate as GateRules, Orq, VenueId};
use entrada::store::Store;
use entrada::sync::protocol::DeviceInfo;

use crate::camera::CameraChoice;
use crate::clock::{Clock, SystemClock};
use crate::source::CameraAdjust;
pub use lan_setting::{lan_config, lan_view};
pub use power::IDLE_DIM_SECS;
use session::Session;
pub use settings::{GateSettings, StartOptions, AUTO_LOCK_SECS};
use views::{CommandError, ScanOutcome};

/// Which org and venue this gate scans for: the paired device's, or the
/// standalone demo's. Changes when the gate is paired from the settings screen.
#[derive(Debug, Clone)]
struct Scope {
    orq: Orq,
    venue: Option<VenueId>,
    venue_name: Option<String>,
    /// Bumped by each pairing: a sign-in that began before one is void.
    pairing: u64,
}

impl Scope {
    /// The org and venue as the store has them now, in `pairing`.
    fn read(store: &Store, pairing: u64) -> Result<Self, CommandError> {
        let (orq, venue) = match store.pairing()? {
            Some(p) => (Orq(p.info.orq), Some(VenueId(p.info.venue_id))),
            None => (Orq(1), store.list_venues(Orq(1))?.first().map(|v| v.id)),
        };
        let venue_name = match venue {
            Some(v) => store.get_venue(orq, v).ok().map(|v| v.name),
            None => None,
        };
        Ok(Self {
            orq,
            venue,
            venue_name,
            pairing,
        })
    }

    fn same_place(&self, other: &Scope) -> bool {
        (self.orq, self.venue, &self.venue_name) == (other.orq, other.venue, &other.venue_name)
    }
}

pub struct GateService {
    store: Arc<Store>,
    scope: RwLock<Scope>,
    auto_lock_ms: AtomicU64,
    kiosk: AtomicBool,
    fixed: Vec<String>,
    session: Mutex<Option<Session>>,
    /// The camera the scan loop should read, and a counter bumped on each
    /// change so the loop notices between two frames.
    camera_choice: Mutex<CameraChoice>,
    camera_generation: AtomicU64,
    /// The scan loop's last camera report, for screens that load later.
    camera: Mutex<Option<views::CameraStatus>>,
    /// The torch/focus/exposure choice and a counter bumped on each change
    /// (the scan loop applies it to the source without reopening it).
    camera_adjust: Mutex<(CameraAdjust, u64)>,
    /// The last verdict and when, for a page that loads just after a scan.
    last_scan: Mutex<Option<(Instant, ScanOutcome)>>,
    clock: Arc<dyn Clock>,
    /// The sync loop's last report (retrying after failures, stopped).
    sync_loop: Mutex<entrada::sync::client::LoopStatus>,
    /// The LAN exchange's state, as `DeviceLink::start_lan` last reported it.
    lan: Mutex<views::LanView>,
    /// Idling lightly (`power.rs`): the window wants preview frames; the
    /// screen is dimmed; after how long it dims.
    preview_wanted: AtomicBool,
    /// The window is on screen (not minimized or hidden): main.rs follows
    /// the window's events.
    window_shown: AtomicBool,
    power_save: AtomicBool,
    idle_dim_secs: AtomicU64,
    /// Which way this gate scans now (the scanner screen's toggle): exits
    /// when set, entries otherwise.
    scans_out: AtomicBool,
    /// Pairing mode (`pairing_scan.rs`): until when the camera takes a
    /// pairing code instead of tickets; armed by a supervisor only.
    pairing_scan_until: Mutex<Option<Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl GateService {
    /// A gate on `store`: a paired replica scans for its org and venue; an
    /// unpaired one is the standalone demo (org 1, its first venue).
    pub fn new(store: Arc<Store>, settings: GateSettings) -> Result<Self, CommandError> {
        let scope = Scope::read(&store, 0)?;
        let adjust = settings::saved_camera_adjust(&store.device_settings().unwrap_or_default());
        Ok(Self {
            store,
            scope: RwLock::new(scope),
            auto_lock_ms: AtomicU64::new(settings.auto_lock.as_millis() as u64),
            kiosk: AtomicBool::new(settings.kiosk),
            fixed: settings.fixed,
            session: Mutex::new(None),
            camera_choice: Mutex::new(settings.camera),
            camera_generation: AtomicU64::new(0),
            camera: Mutex::new(None),
            camera_adjust: Mutex::new((adjust, 0)),
            last_scan: Mutex::new(None),
            clock: Arc::new(SystemClock),
            sync_loop: Mutex::new(Default::default()),
            lan: Mutex::new(Default::default()),
            preview_wanted: AtomicBool::new(false),
            window_shown: AtomicBool::new(true),
            power_save: AtomicBool::new(false),
            idle_dim_secs: AtomicU64::new(settings.idle_dim_secs),
            scans_out: AtomicBool::new(false),
            pairing_scan_until: Mutex::new(None),
        })
    }

    /// The same gate on another clock (tests: one they advance).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How long ago `at` was, on the gate's monotonic clock.
    fn since(&self, at: Instant) -> Duration {
        self.clock.instant().saturating_duration_since(at)
    }

    /// Makes this replica the device `info` of `server_url` (after the server
    /// confirmed the token), through [`Store::pair`]: a standalone replica's
    /// demo data is replaced, a paired one keeps its data and outbox. A first
    /// pairing ends the session (the operators are the venue's now). No scan
    /// or sign-in runs meanwhile. Returns whether local data was replaced.
    pub fn adopt_pairing(
        &self,
        info: &DeviceInfo,
        server_url: &str,
        token: &str,
    ) -> Result<bool, CommandError> {
        let mut scope = self.scope.write().unwrap_or_else(|p| p.into_inner());
        let first = self.store.pairing()?.is_none();
        let replaced = self.store.pair(info, server_url, token)?;
        // Paired from here on, whatever else happens.
        scope.pairing += 1;
        if first {
            *self.lock_session() = None;
        }
        match Scope::read(&self.store, scope.pairing) {
            Ok(now) => *scope = now,
            Err(e) => {
                // The org is what was just paired; the venue's name follows
                // with the next sync round (`reload_scope`).
                tracing::warn!(error = %e, "reading the venue after pairing");
                (scope.orq, scope.venue, scope.venue_name) =
                    (Orq(info.orq), Some(VenueId(info.venue_id)), None);
            }
        }
        Ok(replaced)
    }

    /// Re-reads the org and venue (the venue's name comes with a sync
    /// round). Takes the write lock only when something changed, and reads
    /// again under it, so an old read never overwrites a newer pairing.
    pub fn reload_scope(&self) -> Result<(), CommandError> {
        let current = self.scope();
        if Scope::read(&self.store, current.pairing)?.same_place(&current) {
            return Ok(());
        }
        let mut scope = self.scope.write().unwrap_or_else(|p| p.into_inner());
        *scope = Scope::read(&self.store, scope.pairing)?;
        Ok(())
    }

    fn scope(&self) -> Scope {
        self.scope.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn orq(&self) -> Orq {
        self.scope().orq
    }

    fn auto_lock(&self) -> Duration {
        Duration::from_millis(self.auto_lock_ms.load(Ordering::Relaxed))
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn lock_session(&self) -> std::sync::MutexGuard<'_, Option<Session>> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn rules(&self) -> GateRules {
        GateRules {
            venue_id: self.scope().venue,
            ..GateRules::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use chrono::Utc;

    pub(super) fn demo_gate(
        operator: Option<i64>,
        auto_lock: Duration,
    ) -> (tempfile::TempDir, GateService) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path().join("gate.db")).unwrap());
        entrada::demo::populate(&store, Utc::now(), |_| {}).unwrap();
        let gate = GateService::new(
            store,
            GateSettings {
                auto_lock,
                kiosk: false,
                camera: CameraChoice::Auto,
                idle_dim_secs: 0,
                fixed: Vec::new(),
            },
        )
        .unwrap();
        if let Some(id) = operator {
            gate.start_session(id).unwrap();
        }
        (dir, gate)
    }

    /// A demo gate on a clock the test advances, `operator` signed in.
    pub(super) fn gate_on_manual_clock(
        operator: i64,
        auto_lock: Duration,
    ) -> (tempfile::TempDir, GateService, Arc<ManualClock>) {
        let (dir, gate) = demo_gate(None, auto_lock);
        let clock = Arc::new(ManualClock::at(Utc::now()));
        let gate = gate.with_clock(clock.clone());
        gate.start_session(operator).unwrap();
        (dir, gate, clock)
    }
}
