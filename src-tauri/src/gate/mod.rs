//! The gate, without a window: one object the Tauri commands, the camera
//! loop and the tests all use. It holds the local replica, who is signed in,
//! and the sync engine's handle; every rule it applies comes from `entrada`.

pub mod views;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::Duration as Days;
use entrada::domain::{
    Gate as GateRules, Operator, OperatorId, Orq, Role, SlotChange, SlotId, SlotStatus, VenueId,
    VerdictCode,
};
use entrada::store::Store;
use entrada::sync::protocol::DeviceInfo;

use crate::camera::CameraChoice;
use crate::clock::{Clock, SystemClock};
use views::{
    AppInfo, CameraOption, CommandError, ConflictView, OperatorView, ScanOutcome, ScanSource,
    SettingsView, SlotView, SyncView, TicketLookupView, VerdictView,
};

/// Keys of the settings screen's choices in the replica (`device_settings`).
const CAMERA_KEY: &str = "camera";
const KIOSK_KEY: &str = "kiosk";
const AUTO_LOCK_KEY: &str = "auto_lock_secs";
/// Auto-lock bounds on the settings screen: long enough to serve a queue,
/// short enough that an unattended gate locks.
pub const AUTO_LOCK_SECS: std::ops::RangeInclusive<u64> = 30..=3600;
/// How long a verdict stays worth showing to a page that just loaded.
const LAST_SCAN_FRESH: Duration = Duration::from_secs(5);

/// How the gate runs: from flags and the environment, else the settings
/// screen's saved choices, else defaults.
#[derive(Debug, Clone)]
pub struct GateSettings {
    /// Lock the screen after this long without a scan or a touch.
    pub auto_lock: Duration,
    pub kiosk: bool,
    pub camera: CameraChoice,
    /// Settings a flag or the environment fixed at start ("camera", "kiosk",
    /// "auto_lock"): the settings screen changes them for this run, and says
    /// the flag wins again at the next start.
    pub fixed: Vec<String>,
}

/// What flags and the environment said (None: not given).
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    pub camera: Option<CameraChoice>,
    pub kiosk: Option<bool>,
    pub auto_lock_secs: Option<u64>,
}

impl GateSettings {
    /// Flags and environment first, then what the settings screen saved,
    /// then defaults (camera `auto`, windowed, lock after 5 minutes). A saved
    /// value that no longer parses is ignored, not fatal: the gate must start.
    pub fn resolve(flags: &StartOptions, saved: &BTreeMap<String, String>) -> Self {
        let mut fixed = Vec::new();
        let camera = match &flags.camera {
            Some(c) => {
                fixed.push("camera".to_string());
                c.clone()
            }
            None => saved
                .get(CAMERA_KEY)
                .and_then(|s| s.parse().ok())
                .unwrap_or(CameraChoice::Auto),
        };
        let kiosk = match flags.kiosk {
            Some(k) => {
                fixed.push("kiosk".to_string());
                k
            }
            None => saved.get(KIOSK_KEY).is_some_and(|v| v == "true"),
        };
        let auto_lock_secs = match flags.auto_lock_secs {
            Some(s) => {
                fixed.push("auto_lock".to_string());
                s.max(10)
            }
            None => saved
                .get(AUTO_LOCK_KEY)
                .and_then(|s| s.parse().ok())
                .filter(|s| AUTO_LOCK_SECS.contains(s))
                .unwrap_or(300),
        };
        Self {
            auto_lock: Duration::from_secs(auto_lock_secs),
            kiosk,
            camera,
            fixed,
        }
    }
}

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

struct Session {
    operator: Operator,
    last_activity: Instant,
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
    /// The last verdict and when, for a page that loads just after a scan.
    last_scan: Mutex<Option<(Instant, ScanOutcome)>>,
    clock: Arc<dyn Clock>,
    /// The sync loop's last report (retrying after failures, stopped).
    sync_loop: Mutex<entrada::sync::client::LoopStatus>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn operator_view(o: &Operator) -> OperatorView {
    OperatorView {
        id: o.id.0,
        display_name: o.display_name.clone(),
        role: o.role.as_str().to_string(),
        is_supervisor: o.role.can_manage_slots(),
        locked_secs: None,
    }
}

impl GateService {
    /// A gate on `store`: a paired replica scans for its org and venue; an
    /// unpaired one is the standalone demo (org 1, its first venue).
    pub fn new(store: Arc<Store>, settings: GateSettings) -> Result<Self, CommandError> {
        let scope = Scope::read(&store, 0)?;
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
            last_scan: Mutex::new(None),
            clock: Arc::new(SystemClock),
            sync_loop: Mutex::new(Default::default()),
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

    /// Signs `operator_id` in without a PIN: `--operator` on gate PCs set up
    /// by script. Never a supervisor (or admin): whoever can change slots
    /// and the gate's settings types their PIN.
    pub fn start_session(&self, operator_id: i64) -> Result<OperatorView, CommandError> {
        // Held until the session is set: a pairing cannot slip in between.
        let scope = self.scope.read().unwrap_or_else(|p| p.into_inner());
        let operator = self
            .store
            .get_operator(scope.orq, OperatorId(operator_id))?;
        if !operator.role.may_start_without_pin() {
            return Err(CommandError::new(
                "PIN_REQUIRED",
                format!(
                    "{} is a {}: a supervisor signs in with a PIN, never at start",
                    operator.display_name,
                    operator.role.as_str()
                ),
            ));
        }
        let view = operator_view(&operator);
        *self.lock_session() = Some(Session {
            operator,
            last_activity: self.clock.instant(),
        });
        Ok(view)
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

    /// The signed-in operator, if the session has not timed out.
    pub fn current_operator(&self) -> Option<OperatorView> {
        let mut session = self.lock_session();
        if session
            .as_ref()
            .is_some_and(|s| self.since(s.last_activity) > self.auto_lock())
        {
            *session = None;
        }
        session.as_ref().map(|s| operator_view(&s.operator))
    }

    fn active_operator(&self) -> Result<Operator, CommandError> {
        self.current_operator();
        let mut session = self.lock_session();
        let s = session
            .as_mut()
            .ok_or_else(|| CommandError::new("LOCKED", "Sign in with your PIN to scan"))?;
        s.last_activity = self.clock.instant();
        Ok(s.operator.clone())
    }

    /// PIN sign-in against the replica's operators: works offline. Wrong
    /// PINs lock the operator (PIN_LOCKED with `retry_after_secs`); the count
    /// is kept in the replica, so restarting the app does not reset it.
    pub fn sign_in(&self, operator_id: i64, pin: &str) -> Result<OperatorView, CommandError> {
        // The PIN check (Argon2, slow on purpose) runs without the lock; the
        // session is set only if no pairing happened meanwhile — else the
        // demo's operator could stay signed in on the venue's data.
        let before = self.scope();
        let operator = self.store.check_operator_pin(
            before.orq,
            OperatorId(operator_id),
            pin,
            self.clock.now(),
        )?;
        let scope = self.scope.read().unwrap_or_else(|p| p.into_inner());
        if scope.pairing != before.pairing {
            return Err(CommandError::new(
                "GATE_PAIRED",
                "This gate was just paired with a server: sign in with your venue PIN",
            ));
        }
        let view = operator_view(&operator);
        *self.lock_session() = Some(Session {
            operator,
            last_activity: self.clock.instant(),
        });
        Ok(view)
    }

    pub fn sign_out(&self) {
        *self.lock_session() = None;
    }

    /// Activity on any screen keeps a live session open (an expired one stays locked).
    pub fn touch(&self) {
        if self.current_operator().is_some() {
            if let Some(s) = self.lock_session().as_mut() {
                s.last_activity = self.clock.instant();
            }
        }
    }

    pub fn set_camera_status(&self, status: views::CameraStatus) {
        *lock(&self.camera) = Some(status);
    }

    /// The sync loop's state after its last round (for the sync screen).
    pub fn report_sync_loop(&self, status: entrada::sync::client::LoopStatus) {
        *lock(&self.sync_loop) = status;
    }

    pub fn camera_status(&self) -> Option<views::CameraStatus> {
        lock(&self.camera).clone()
    }

    /// The camera to read and its change counter (for the scan loop).
    pub fn camera_choice(&self) -> (CameraChoice, u64) {
        let choice = lock(&self.camera_choice);
        (
            choice.clone(),
            self.camera_generation.load(Ordering::SeqCst),
        )
    }

    /// Bumped by every camera change: the scan loop compares it per frame.
    pub fn camera_generation(&self) -> u64 {
        self.camera_generation.load(Ordering::SeqCst)
    }

    /// The operator dismissed the amber verdict of `payload`: a page that
    /// reloads now must not bring it (and its "Let in" button) back. A newer
    /// scan's verdict stays.
    pub fn dismiss_scan(&self, payload: &str) {
        let mut last = lock(&self.last_scan);
        if last
            .as_ref()
            .is_some_and(|(_, o)| o.payload.as_deref() == Some(payload))
        {
            *last = None;
        }
    }

    /// The last verdict if it is a few seconds old at most (a page that
    /// loaded or reloaded just after a scan still shows it).
    pub fn last_scan(&self) -> Option<ScanOutcome> {
        lock(&self.last_scan)
            .as_ref()
            .filter(|(at, _)| self.since(*at) <= LAST_SCAN_FRESH)
            .map(|(_, o)| o.clone())
    }

    /// Scans `payload` and records the verdict (the verification and its
    /// outbox event commit before this returns, so an ADMIT on screen is durable).
    pub fn scan(&self, payload: &str, source: ScanSource) -> Result<ScanOutcome, CommandError> {
        self.judge(payload, source, None)
    }

    /// The operator lets in the holder of the amber verdict `shown` (an
    /// authentic code not synced yet, early or late for the slot): recorded
    /// like an ADMIT, marked as overruled. If the verdict is another by now,
    /// it comes back as `scan` gives it: no refusal is the operator's to
    /// overrule, and no verdict they did not see.
    pub fn admit_anyway(
        &self,
        payload: &str,
        source: ScanSource,
        shown: &str,
    ) -> Result<ScanOutcome, CommandError> {
        let shown = VerdictCode::parse(shown).ok_or_else(|| {
            CommandError::new("INVALID_INPUT", format!("{shown:?} is not a verdict"))
        })?;
        self.judge(payload, source, Some(shown))
    }

    fn judge(
        &self,
        payload: &str,
        source: ScanSource,
        decided_on: Option<VerdictCode>,
    ) -> Result<ScanOutcome, CommandError> {
        // Held for the whole scan, before the operator is read: a pairing
        // (which takes it for writing) waits for this scan, and no scan runs
        // on the venue's data with the demo's operator or the demo's venue.
        let scope = self.scope.read().unwrap_or_else(|p| p.into_inner());
        let operator = self.active_operator()?;
        let orq = scope.orq;
        let rules = GateRules {
            venue_id: scope.venue,
            ..GateRules::default()
        };
        // How long the scan took (a measurement, not a timeout: the real clock).
        let started = Instant::now();
        let verdict = match decided_on {
            Some(shown) => self.store.admit_by_decision(
                orq,
                payload.as_bytes(),
                shown,
                operator.id,
                &rules,
                self.clock.now(),
            )?,
            None => self.store.scan(
                orq,
                payload.as_bytes(),
                operator.id,
                &rules,
                self.clock.now(),
            )?,
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let admitted_in_slot = match verdict.slot_id {
            Some(slot) => Some(self.store.admitted_count(orq, slot)?),
            None => None,
        };
        let verdict = VerdictView::from(&verdict);
        let outcome = ScanOutcome {
            payload: (verdict.tone == views::Tone::Decide).then(|| payload.to_string()),
            verdict,
            source,
            admitted_in_slot,
            ms,
        };
        *lock(&self.last_scan) = Some((self.clock.instant(), outcome.clone()));
        Ok(outcome)
    }

    /// Today's and the next days' slots at this venue.
    pub fn slots(&self, days: i64) -> Result<Vec<SlotView>, CommandError> {
        let Scope { orq, venue, .. } = self.scope();
        let tz = match venue {
            Some(v) => self.store.get_venue(orq, v)?.timezone,
            None => chrono_tz::UTC,
        };
        let today = self.clock.now().with_timezone(&tz).date_naive();
        let slots = self.store.list_slots(
            orq,
            venue,
            Some(today),
            Some(today + Days::days(days.clamp(0, 31))),
        )?;
        slots
            .into_iter()
            .map(|s| {
                Ok(SlotView {
                    id: s.id.to_string(),
                    date: s.date.to_string(),
                    start_time: s.start_time.format("%H:%M").to_string(),
                    end_time: s.end_time.format("%H:%M").to_string(),
                    total_capacity: s.total_capacity,
                    booked_count: s.booked_count,
                    available_count: s.available_count,
                    admitted: self.store.admitted_count(orq, s.id)?,
                    status: s.status.as_str().to_string(),
                })
            })
            .collect()
    }

    /// A supervisor changes capacity or closes / reopens a slot; the change
    /// goes to the server through the outbox like a verification.
    pub fn change_slot(
        &self,
        slot_id: &str,
        total_capacity: Option<i64>,
        status: Option<&str>,
    ) -> Result<SlotView, CommandError> {
        let operator = self.supervisor("change slots")?;
        let id: SlotId = slot_id.parse()?;
        let change = SlotChange {
            total_capacity,
            status: status.map(SlotStatus::parse).transpose()?,
        };
        self.store
            .update_slot_by(self.orq(), id, change, Some(operator.id), self.clock.now())?;
        self.slots(31)?
            .into_iter()
            .find(|s| s.id == slot_id)
            .ok_or_else(|| CommandError::new("NOT_FOUND", "slot not found"))
    }

    pub fn lookup(&self, query: &str) -> Result<Vec<TicketLookupView>, CommandError> {
        self.active_operator()?;
        let orq = self.orq();
        let found = self.store.lookup_tickets(orq, query, 20)?;
        found
            .into_iter()
            .map(|v| {
                let verdict = self.store.ticket_verdict(
                    orq,
                    &v.ticket.ticket_code,
                    &self.rules(),
                    self.clock.now(),
                )?;
                let t = v.ticket;
                Ok(TicketLookupView {
                    ticket_code: t.ticket_code.to_string(),
                    status: t.status.as_str().to_string(),
                    activation_status: t.activation_status.as_str().to_string(),
                    customer_email: t.customer_email,
                    customer_phone: t.customer_phone,
                    verified_at: t.verified_at.map(|d| d.to_rfc3339()),
                    verified_by: t.verified_by.map(|o| o.0),
                    reservation_status: v.reservation.map(|r| r.status.as_str().to_string()),
                    slot_date: v.slot.as_ref().map(|s| s.date.to_string()),
                    slot_start_time: v
                        .slot
                        .as_ref()
                        .map(|s| s.start_time.format("%H:%M").to_string()),
                    slot_end_time: v
                        .slot
                        .as_ref()
                        .map(|s| s.end_time.format("%H:%M").to_string()),
                    gate_verdict: verdict.verdict.code().to_string(),
                })
            })
            .collect()
    }

    pub fn sync_view(&self) -> Result<SyncView, CommandError> {
        let s = self.store.sync_status()?;
        let mode = match (s.paired, s.server_reachable) {
            (false, _) => "standalone",
            (true, true) => "online",
            (true, false) => "offline",
        };
        let sync_loop = lock(&self.sync_loop).clone();
        let retry = views::SyncRetryView::of(&sync_loop);
        Ok(SyncView {
            mode: mode.to_string(),
            server_url: s.server_url,
            device_id: s.device_id,
            last_sync_at: s.last_sync_at.map(|t| t.to_rfc3339()),
            // The loop's own error is newer than the database's when the
            // failure was that the database could not be written.
            last_error: retry.as_ref().map(|r| r.error.clone()).or(s.last_error),
            pending: s.pending,
            rejected: s.rejected,
            conflicts: s.conflicts,
            clock_offset_ms: s.clock_offset_ms,
            clock_suspect: s.clock_suspect,
            retry,
            stopped: sync_loop.stopped,
        })
    }

    pub fn conflicts(&self) -> Result<Vec<ConflictView>, CommandError> {
        let rows = self.store.list_conflicts(self.orq())?;
        Ok(rows
            .iter()
            .map(|c| {
                let s = |k: &str| {
                    c.get(k)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_string()
                };
                let i = |k: &str| c.get(k).and_then(|v| v.as_i64());
                ConflictView {
                    kind: s("kind"),
                    ticket_code: s("ticket_code"),
                    first_at: s("first_at"),
                    first_device_id: i("first_device_id"),
                    first_operator_id: i("first_operator_id"),
                    second_at: s("second_at"),
                    second_device_id: i("second_device_id"),
                    second_operator_id: i("second_operator_id"),
                }
            })
            .collect())
    }

    pub fn info(&self) -> Result<AppInfo, CommandError> {
        Ok(AppInfo {
            venue_name: self.scope().venue_name,
            kiosk: self.kiosk(),
            operator: self.current_operator(),
            auto_lock_secs: self.auto_lock().as_secs() as u32,
            sync: self.sync_view()?,
        })
    }

    /// Operators who may sign in here (for the sign-in screen), with how
    /// long each one locked by wrong PINs still waits.
    pub fn operators(&self) -> Result<Vec<OperatorView>, CommandError> {
        let orq = self.orq();
        let now = self.clock.now();
        let locks = self.store.pin_locks(orq, now)?;
        Ok(self
            .store
            .list_operators(orq)?
            .iter()
            .filter(|o| o.role != Role::Customer)
            .map(|o| OperatorView {
                locked_secs: locks.iter().find(|(id, _)| *id == o.id).map(|(_, until)| {
                    let ms = (*until - now).num_milliseconds().max(0);
                    u32::try_from((ms + 999) / 1000).unwrap_or(u32::MAX)
                }),
                ..operator_view(o)
            })
            .collect())
    }
}

/// The settings screen: supervisors only, since it points the gate at
/// another server or camera.
impl GateService {
    fn supervisor(&self, what: &str) -> Result<Operator, CommandError> {
        let operator = self.active_operator()?;
        if !operator.role.can_manage_slots() {
            return Err(CommandError::new(
                "FORBIDDEN",
                format!("Only a supervisor can {what}"),
            ));
        }
        Ok(operator)
    }

    pub fn kiosk(&self) -> bool {
        self.kiosk.load(Ordering::Relaxed)
    }

    /// Refuses unless a supervisor is signed in (pairing checks this before
    /// it calls the server).
    pub fn require_supervisor(&self, what: &str) -> Result<(), CommandError> {
        self.supervisor(what).map(|_| ())
    }

    /// What the settings screen shows. `cameras` asks the system for its
    /// cameras (or why it cannot list them), only once a supervisor is known.
    pub fn settings_view(
        &self,
        cameras: impl FnOnce() -> Result<Vec<(u32, String)>, String>,
    ) -> Result<SettingsView, CommandError> {
        self.supervisor("open the settings")?;
        let cameras = cameras();
        let pairing = self.store.pairing()?;
        let (camera, _) = self.camera_choice();
        let (cameras, cameras_error) = match cameras {
            Ok(list) => (list, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let mut options = vec![CameraOption {
            value: "auto".into(),
            label: "First camera found".into(),
        }];
        options.extend(cameras.into_iter().map(|(i, name)| CameraOption {
            value: i.to_string(),
            label: format!("Camera {i}: {name}"),
        }));
        Ok(SettingsView {
            paired: pairing.is_some(),
            server_url: pairing.as_ref().map(|p| p.server_url.clone()),
            device_id: pairing.as_ref().map(|p| p.info.device_id),
            device_name: pairing.as_ref().map(|p| p.info.name.clone()),
            venue_name: self.scope().venue_name,
            camera: camera.to_string(),
            camera_options: options,
            cameras_error,
            camera_status: self.camera_status(),
            kiosk: self.kiosk(),
            auto_lock_secs: self.auto_lock().as_secs() as u32,
            fixed: self.fixed.clone(),
            database: self.store.path().display().to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        })
    }

    /// Switches the scan loop to `source` (`auto`, an index, a name or
    /// `folder:PATH`) now, and keeps the choice for the next start.
    pub fn set_camera(&self, source: &str) -> Result<String, CommandError> {
        self.supervisor("change the camera")?;
        let choice: CameraChoice = source
            .parse()
            .map_err(|e: String| CommandError::new("INVALID_CAMERA", e))?;
        if let CameraChoice::Folder(dir) = &choice {
            if !dir.is_dir() {
                return Err(CommandError::new(
                    "FOLDER_NOT_FOUND",
                    format!("{} is not a folder on this computer", dir.display()),
                ));
            }
        }
        let text = choice.to_string();
        self.store.set_device_setting(CAMERA_KEY, &text)?;
        *lock(&self.camera_choice) = choice;
        self.camera_generation.fetch_add(1, Ordering::SeqCst);
        Ok(text)
    }

    /// Fullscreen without window chrome, kept for the next start.
    pub fn set_kiosk(&self, on: bool) -> Result<(), CommandError> {
        self.supervisor("change the window")?;
        self.store
            .set_device_setting(KIOSK_KEY, if on { "true" } else { "false" })?;
        self.kiosk.store(on, Ordering::Relaxed);
        Ok(())
    }

    pub fn set_auto_lock(&self, secs: u64) -> Result<u32, CommandError> {
        self.supervisor("change the auto-lock")?;
        if !AUTO_LOCK_SECS.contains(&secs) {
            return Err(CommandError::new(
                "INVALID_INPUT",
                format!(
                    "auto-lock must be between {} s and {} min",
                    AUTO_LOCK_SECS.start(),
                    AUTO_LOCK_SECS.end() / 60
                ),
            ));
        }
        self.store
            .set_device_setting(AUTO_LOCK_KEY, &secs.to_string())?;
        self.auto_lock_ms.store(secs * 1000, Ordering::Relaxed);
        Ok(secs as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use chrono::Utc;
    use views::Tone;

    fn demo_gate(operator: Option<i64>, auto_lock: Duration) -> (tempfile::TempDir, GateService) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path().join("gate.db")).unwrap());
        entrada::demo::populate(&store, Utc::now(), |_| {}).unwrap();
        let gate = GateService::new(
            store,
            GateSettings {
                auto_lock,
                kiosk: false,
                camera: CameraChoice::Auto,
                fixed: Vec::new(),
            },
        )
        .unwrap();
        if let Some(id) = operator {
            gate.start_session(id).unwrap();
        }
        (dir, gate)
    }

    #[test]
    fn scanning_needs_a_signed_in_operator_with_the_right_pin() {
        let (_dir, gate) = demo_gate(None, Duration::from_secs(60));
        assert_eq!(
            gate.scan("DEMO-ADMIT", ScanSource::Manual)
                .unwrap_err()
                .code,
            "LOCKED"
        );
        assert_eq!(gate.sign_in(1, "9999").unwrap_err().code, "WRONG_PIN");
        assert_eq!(gate.sign_in(99, "1234").unwrap_err().code, "WRONG_PIN");
        let ana = gate.sign_in(1, "1234").unwrap();
        assert_eq!((ana.role.as_str(), ana.is_supervisor), ("operator", false));

        let first = gate.scan("DEMO-ADMIT", ScanSource::Camera).unwrap();
        assert_eq!(
            (first.verdict.tone, first.verdict.verdict.as_str()),
            (Tone::Admit, "ADMIT")
        );
        assert_eq!(
            first.admitted_in_slot,
            Some(2),
            "the demo's verified ticket and this one"
        );
        assert_eq!(first.payload, None, "only amber verdicts carry the payload");
        let second = gate.scan("DEMO-ADMIT", ScanSource::Wedge).unwrap();
        assert_eq!(
            (second.verdict.tone, second.verdict.verdict.as_str()),
            (Tone::Refuse, "ALREADY_VERIFIED")
        );
        assert_eq!(second.verdict.verified_by, Some(1));
        let wrong_venue = gate.scan("DEMO-OTHER-VENUE", ScanSource::Manual).unwrap();
        assert_eq!(wrong_venue.verdict.verdict, "WRONG_VENUE");
        // A red refusal stays one even when the operator would let them in.
        let insisted = gate
            .admit_anyway("DEMO-OTHER-VENUE", ScanSource::Manual, "WRONG_VENUE")
            .unwrap();
        assert_eq!(
            (insisted.verdict.tone, insisted.verdict.verdict.as_str()),
            (Tone::Refuse, "WRONG_VENUE")
        );
        gate.sign_out();
        assert!(gate.current_operator().is_none());
    }

    /// Five wrong PINs lock the operator at the kiosk, offline; the lock is
    /// in the replica, so restarting the app (a new GateService on the same
    /// file) does not lift it, and the sign-in screen shows the countdown.
    #[test]
    fn wrong_pins_lock_the_kiosk_across_a_restart() {
        let (dir, gate) = demo_gate(None, Duration::from_secs(60));
        for i in 1..=5 {
            assert_eq!(
                gate.sign_in(1, "0000").unwrap_err().code,
                "WRONG_PIN",
                "attempt {i}"
            );
        }
        let locked = gate.sign_in(1, entrada::demo::OPERATOR_PIN).unwrap_err();
        assert_eq!(locked.code, "PIN_LOCKED");
        let secs = locked.retry_after_secs.unwrap();
        assert!((1..=30).contains(&secs), "{secs}");
        let shown = |g: &GateService, id: i64| {
            g.operators()
                .unwrap()
                .into_iter()
                .find(|o| o.id == id)
                .unwrap()
                .locked_secs
        };
        assert!(shown(&gate, 1).is_some_and(|s| (1..=30).contains(&s)));
        assert_eq!(shown(&gate, 2), None);
        drop(gate);

        let store = Arc::new(Store::open(dir.path().join("gate.db")).unwrap());
        let settings = GateSettings {
            auto_lock: Duration::from_secs(60),
            kiosk: false,
            camera: CameraChoice::Auto,
            fixed: Vec::new(),
        };
        let restarted = GateService::new(store, settings).unwrap();
        assert!(shown(&restarted, 1).is_some());
        assert_eq!(
            restarted
                .sign_in(1, entrada::demo::OPERATOR_PIN)
                .unwrap_err()
                .code,
            "PIN_LOCKED"
        );
        assert!(restarted.current_operator().is_none());
        // Another operator signs in as usual.
        restarted.sign_in(2, entrada::demo::SUPERVISOR_PIN).unwrap();
    }

    /// `ENTRADA_OPERATOR` / `--operator` signs in without a PIN: never a
    /// supervisor.
    #[test]
    fn a_supervisor_is_never_signed_in_without_a_pin() {
        let (_dir, gate) = demo_gate(None, Duration::from_secs(60));
        let refused = gate.start_session(2).unwrap_err();
        assert_eq!(refused.code, "PIN_REQUIRED");
        assert!(gate.current_operator().is_none());
        assert_eq!(gate.start_session(1).unwrap().id, 1);
    }

    /// The kiosk refuses a re-issued ticket's plain code, and every plain
    /// code once the org takes signed codes only.
    #[test]
    fn plain_codes_at_the_kiosk_follow_reissues_and_the_org_policy() {
        let (_dir, gate) = demo_gate(Some(1), Duration::from_secs(60));
        let store = gate.store().clone();
        let code = |c: &str| entrada::domain::TicketCode::parse(c).unwrap();
        let fresh = store
            .reissue_code(Orq(1), &code("DEMO-ADMIT"), Utc::now())
            .unwrap();
        let revoked = gate.scan("DEMO-ADMIT", ScanSource::Manual).unwrap();
        assert_eq!(
            (revoked.verdict.tone, revoked.verdict.verdict.as_str()),
            (Tone::Refuse, "REVOKED")
        );
        store
            .set_signed_codes_only(Orq(1), true, Utc::now())
            .unwrap();
        let plain = gate.scan("DEMO-ADMIT-2", ScanSource::Wedge).unwrap();
        assert_eq!(
            (plain.verdict.tone, plain.verdict.verdict.as_str()),
            (Tone::Refuse, "SIGNED_CODE_REQUIRED")
        );
        // The look-up screen still tells the ticket's state.
        assert_eq!(
            gate.lookup("DEMO-ADMIT-2").unwrap()[0].gate_verdict,
            "ADMIT"
        );
        let signed = store
            .signed_code(Orq(1), &code("DEMO-ADMIT-2"), Utc::now())
            .unwrap();
        assert_eq!(
            gate.scan(&signed, ScanSource::Camera)
                .unwrap()
                .verdict
                .verdict,
            "ADMIT"
        );
        assert_eq!(
            gate.scan(&fresh, ScanSource::Camera)
                .unwrap()
                .verdict
                .verdict,
            "ADMIT"
        );
    }

    /// A demo gate on a clock the test advances, `operator` signed in.
    fn gate_on_manual_clock(
        operator: i64,
        auto_lock: Duration,
    ) -> (tempfile::TempDir, GateService, Arc<ManualClock>) {
        let (dir, gate) = demo_gate(None, auto_lock);
        let clock = Arc::new(ManualClock::at(Utc::now()));
        let gate = gate.with_clock(clock.clone());
        gate.start_session(operator).unwrap();
        (dir, gate, clock)
    }

    #[test]
    fn the_session_locks_after_inactivity() {
        let (_dir, gate, clock) = gate_on_manual_clock(1, Duration::from_secs(60));
        assert_eq!(gate.current_operator().map(|o| o.id), Some(1));
        // Touching the screen keeps it open past the first timeout…
        for _ in 0..4 {
            clock.advance(Duration::from_secs(40));
            gate.touch();
        }
        clock.advance(Duration::from_secs(60));
        assert_eq!(gate.current_operator().map(|o| o.id), Some(1));
        // …and once expired, a touch does not bring it back.
        clock.advance(Duration::from_millis(1));
        gate.touch();
        assert!(gate.current_operator().is_none());
        assert_eq!(
            gate.scan("DEMO-ADMIT-2", ScanSource::Manual)
                .unwrap_err()
                .code,
            "LOCKED"
        );
    }

    #[test]
    fn a_verdict_stays_fresh_for_five_seconds_on_the_gates_clock() {
        let (_dir, gate, clock) = gate_on_manual_clock(1, Duration::from_secs(60));
        let scanned = gate.scan("DEMO-ADMIT-2", ScanSource::Manual).unwrap();
        clock.advance(LAST_SCAN_FRESH);
        assert_eq!(
            gate.last_scan().map(|o| o.verdict.verdict),
            Some(scanned.verdict.verdict)
        );
        clock.advance(Duration::from_millis(1));
        assert!(gate.last_scan().is_none());
    }

    #[test]
    fn the_rules_judge_at_the_gates_clock() {
        let (_dir, gate, clock) = gate_on_manual_clock(1, Duration::from_secs(3 * 86_400));
        // Two days on, the reservation made for today is for another day.
        clock.advance(Duration::from_secs(2 * 86_400));
        assert_eq!(
            gate.scan("DEMO-ADMIT-2", ScanSource::Manual)
                .unwrap()
                .verdict
                .verdict,
            "WRONG_DATE"
        );
    }

    #[test]
    fn only_supervisors_change_slots_and_never_below_booked() {
        let (_dir, gate) = demo_gate(Some(1), Duration::from_secs(60));
        let today = gate.slots(0).unwrap();
        let all_day = today
            .iter()
            .find(|s| s.start_time == "00:00")
            .unwrap()
            .clone();
        assert_eq!(
            gate.change_slot(&all_day.id, Some(60), None)
                .unwrap_err()
                .code,
            "FORBIDDEN"
        );
        gate.sign_in(2, entrada::demo::SUPERVISOR_PIN).unwrap();
        let changed = gate.change_slot(&all_day.id, Some(60), None).unwrap();
        assert_eq!(changed.total_capacity, 60);
        let err = gate.change_slot(&all_day.id, Some(1), None).unwrap_err();
        assert_eq!(err.code, "CAPACITY_BELOW_BOOKED");
        assert_eq!(
            gate.change_slot(&all_day.id, None, Some("CLOSED"))
                .unwrap()
                .status,
            "CLOSED"
        );
        assert_eq!(
            gate.change_slot(&all_day.id, None, Some("ACTIVE"))
                .unwrap()
                .status,
            "ACTIVE"
        );
    }

    #[test]
    fn lookup_and_status_screens() {
        let (_dir, gate) = demo_gate(Some(1), Duration::from_secs(60));
        let found = gate.lookup("DEMO-TOMORROW").unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].gate_verdict, "WRONG_DATE");
        assert!(gate.lookup("visitor@example.com").unwrap().len() >= 5);
        let sync = gate.sync_view().unwrap();
        assert_eq!((sync.mode.as_str(), sync.pending), ("standalone", 0));
        assert_eq!(
            gate.info().unwrap().venue_name.as_deref(),
            Some("Museo Entrada")
        );
        assert!(gate.operators().unwrap().iter().any(|o| o.is_supervisor));
    }

    #[test]
    fn flags_win_over_saved_settings_which_win_over_defaults() {
        let saved: BTreeMap<String, String> = [
            ("camera", "folder:/srv/frames"),
            ("kiosk", "true"),
            ("auto_lock_secs", "600"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let junk: BTreeMap<String, String> = [("camera", ""), ("auto_lock_secs", "5")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let flags = StartOptions {
            camera: Some(CameraChoice::Index(1)),
            kiosk: Some(true),
            auto_lock_secs: Some(120),
        };
        let none = StartOptions::default();
        // (flags, saved) → (camera, kiosk, auto-lock s, fixed)
        type Case<'a> = (
            &'a StartOptions,
            &'a BTreeMap<String, String>,
            CameraChoice,
            bool,
            u64,
            &'a [&'a str],
        );
        let cases: [Case; 4] = [
            (&none, &BTreeMap::new(), CameraChoice::Auto, false, 300, &[]),
            (
                &none,
                &saved,
                CameraChoice::Folder("/srv/frames".into()),
                true,
                600,
                &[],
            ),
            (
                &flags,
                &saved,
                CameraChoice::Index(1),
                true,
                120,
                &["camera", "kiosk", "auto_lock"],
            ),
            // A saved value that does not parse or is out of range is ignored.
            (&none, &junk, CameraChoice::Auto, false, 300, &[]),
        ];
        for (i, (flags, saved, camera, kiosk, secs, fixed)) in cases.into_iter().enumerate() {
            let s = GateSettings::resolve(flags, saved);
            assert_eq!(
                (s.camera, s.kiosk, s.auto_lock.as_secs(), s.fixed),
                (
                    camera,
                    kiosk,
                    secs,
                    fixed.iter().map(|f| f.to_string()).collect::<Vec<_>>()
                ),
                "case {i}"
            );
        }
    }

    #[test]
    fn settings_are_for_supervisors_and_are_kept() {
        let (_dir, gate) = demo_gate(Some(1), Duration::from_secs(60));
        for code in [
            gate.settings_view(|| panic!("no camera query before the check"))
                .unwrap_err()
                .code,
            gate.set_kiosk(true).unwrap_err().code,
            gate.set_auto_lock(600).unwrap_err().code,
            gate.set_camera("auto").unwrap_err().code,
        ] {
            assert_eq!(code, "FORBIDDEN");
        }
        gate.sign_in(2, entrada::demo::SUPERVISOR_PIN).unwrap();
        let view = gate
            .settings_view(|| Ok(vec![(0, "USB Camera".into())]))
            .unwrap();
        assert_eq!((view.paired, view.camera.as_str()), (false, "auto"));
        assert_eq!(view.venue_name.as_deref(), Some("Museo Entrada"));
        assert_eq!(
            view.camera_options
                .iter()
                .map(|o| o.value.as_str())
                .collect::<Vec<_>>(),
            ["auto", "0"]
        );
        let no_cameras = gate
            .settings_view(|| Err("no video devices".into()))
            .unwrap();
        assert_eq!(
            no_cameras.cameras_error.as_deref(),
            Some("no video devices")
        );

        assert_eq!(gate.set_auto_lock(5).unwrap_err().code, "INVALID_INPUT");
        assert_eq!(gate.set_auto_lock(7200).unwrap_err().code, "INVALID_INPUT");
        assert_eq!(gate.set_auto_lock(900).unwrap(), 900);
        gate.set_kiosk(true).unwrap();
        assert_eq!(gate.set_camera("").unwrap_err().code, "INVALID_CAMERA");
        assert_eq!(
            gate.set_camera("folder:/no/such/dir").unwrap_err().code,
            "FOLDER_NOT_FOUND"
        );
        let (_, before) = gate.camera_choice();
        assert_eq!(gate.set_camera("2").unwrap(), "2");
        assert_eq!(gate.camera_choice(), (CameraChoice::Index(2), before + 1));
        let info = gate.info().unwrap();
        assert_eq!((info.kiosk, info.auto_lock_secs), (true, 900));

        // What the next start reads.
        let next = GateSettings::resolve(
            &StartOptions::default(),
            &gate.store().device_settings().unwrap(),
        );
        assert_eq!(
            (next.camera, next.kiosk, next.auto_lock.as_secs()),
            (CameraChoice::Index(2), true, 900)
        );
    }

    #[test]
    fn a_page_that_loads_after_a_scan_still_gets_its_verdict() {
        let (_dir, gate) = demo_gate(Some(1), Duration::from_secs(60));
        assert!(gate.last_scan().is_none());
        let outcome = gate.scan("DEMO-ADMIT", ScanSource::Camera).unwrap();
        assert_eq!(gate.last_scan(), Some(outcome));
        // Only the verdict of the dismissed code goes (an ADMIT has no payload).
        gate.dismiss_scan("DEMO-ADMIT");
        assert!(gate.last_scan().is_some());
    }
}
