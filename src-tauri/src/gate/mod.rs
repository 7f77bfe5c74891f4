//! The gate, without a window: one object the Tauri commands, the camera
//! loop and the tests all use. It holds the local replica, who is signed in,
//! and the sync engine's handle; every rule it applies comes from `entrada`.

pub mod views;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{Duration as Days, Utc};
use entrada::domain::{
    Gate as GateRules, Operator, OperatorId, Orq, Role, SlotChange, SlotId, SlotStatus, VenueId,
};
use entrada::store::Store;

use views::{
    AppInfo, CommandError, ConflictView, OperatorView, ScanOutcome, ScanSource, SlotView, SyncView,
    TicketLookupView, VerdictView,
};

/// How the app was started (flags, environment, settings).
#[derive(Debug, Clone)]
pub struct GateSettings {
    /// Lock the screen after this long without a scan or a touch.
    pub auto_lock: Duration,
    pub kiosk: bool,
    /// Signed in at start (gate PCs set up by script).
    pub operator: Option<i64>,
}

struct Session {
    operator: Operator,
    last_activity: Instant,
}

pub struct GateService {
    store: Arc<Store>,
    orq: Orq,
    venue: Option<VenueId>,
    venue_name: Option<String>,
    settings: GateSettings,
    session: Mutex<Option<Session>>,
    /// The scan loop's last camera report, for screens that load later.
    camera: Mutex<Option<views::CameraStatus>>,
}

fn operator_view(o: &Operator) -> OperatorView {
    OperatorView {
        id: o.id.0,
        display_name: o.display_name.clone(),
        role: o.role.as_str().to_string(),
        is_supervisor: o.role.can_manage_slots(),
    }
}

impl GateService {
    /// A gate on `store`: a paired replica scans for its org and venue; an
    /// unpaired one is the standalone demo (org 1, its first venue).
    pub fn new(store: Arc<Store>, settings: GateSettings) -> Result<Self, CommandError> {
        let pairing = store.pairing()?;
        let (orq, venue) = match &pairing {
            Some(p) => (Orq(p.info.orq), Some(VenueId(p.info.venue_id))),
            None => (Orq(1), store.list_venues(Orq(1))?.first().map(|v| v.id)),
        };
        let venue_name = match venue {
            Some(v) => store.get_venue(orq, v).ok().map(|v| v.name),
            None => None,
        };
        let gate = Self {
            store,
            orq,
            venue,
            venue_name,
            settings,
            session: Mutex::new(None),
            camera: Mutex::new(None),
        };
        if let Some(id) = gate.settings.operator {
            let operator = gate.store.get_operator(orq, OperatorId(id))?;
            *gate.lock_session() = Some(Session {
                operator,
                last_activity: Instant::now(),
            });
        }
        Ok(gate)
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn lock_session(&self) -> std::sync::MutexGuard<'_, Option<Session>> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn rules(&self) -> GateRules {
        GateRules {
            venue_id: self.venue,
            ..GateRules::default()
        }
    }

    /// The signed-in operator, if the session has not timed out.
    pub fn current_operator(&self) -> Option<OperatorView> {
        let mut session = self.lock_session();
        if session
            .as_ref()
            .is_some_and(|s| s.last_activity.elapsed() > self.settings.auto_lock)
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
        s.last_activity = Instant::now();
        Ok(s.operator.clone())
    }

    /// PIN sign-in against the replica's operators: works offline.
    pub fn sign_in(&self, operator_id: i64, pin: &str) -> Result<OperatorView, CommandError> {
        let operator = self
            .store
            .check_operator_pin(self.orq, OperatorId(operator_id), pin)?;
        let view = operator_view(&operator);
        *self.lock_session() = Some(Session {
            operator,
            last_activity: Instant::now(),
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
                s.last_activity = Instant::now();
            }
        }
    }

    pub fn set_camera_status(&self, status: views::CameraStatus) {
        *self.camera.lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
    }

    pub fn camera_status(&self) -> Option<views::CameraStatus> {
        self.camera
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Scans `payload` and records the verdict (the verification and its
    /// outbox event commit before this returns, so an ADMIT on screen is durable).
    pub fn scan(&self, payload: &str, source: ScanSource) -> Result<ScanOutcome, CommandError> {
        let operator = self.active_operator()?;
        let started = Instant::now();
        let verdict = self.store.scan(
            self.orq,
            payload.as_bytes(),
            operator.id,
            &self.rules(),
            Utc::now(),
        )?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let admitted_in_slot = match verdict.slot_id {
            Some(slot) => Some(self.store.admitted_count(self.orq, slot)?),
            None => None,
        };
        Ok(ScanOutcome {
            verdict: VerdictView::from(&verdict),
            source,
            admitted_in_slot,
            ms,
        })
    }

    /// Today's and the next days' slots at this venue.
    pub fn slots(&self, days: i64) -> Result<Vec<SlotView>, CommandError> {
        let tz = match self.venue {
            Some(v) => self.store.get_venue(self.orq, v)?.timezone,
            None => chrono_tz::UTC,
        };
        let today = Utc::now().with_timezone(&tz).date_naive();
        let slots = self.store.list_slots(
            self.orq,
            self.venue,
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
                    admitted: self.store.admitted_count(self.orq, s.id)?,
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
        let operator = self.active_operator()?;
        if !operator.role.can_manage_slots() {
            return Err(CommandError::new(
                "FORBIDDEN",
                "Only a supervisor can change slots",
            ));
        }
        let id: SlotId = slot_id.parse()?;
        let change = SlotChange {
            total_capacity,
            status: status.map(SlotStatus::parse).transpose()?,
        };
        self.store
            .update_slot_by(self.orq, id, change, Some(operator.id), Utc::now())?;
        self.slots(31)?
            .into_iter()
            .find(|s| s.id == slot_id)
            .ok_or_else(|| CommandError::new("NOT_FOUND", "slot not found"))
    }

    pub fn lookup(&self, query: &str) -> Result<Vec<TicketLookupView>, CommandError> {
        self.active_operator()?;
        let found = self.store.lookup_tickets(self.orq, query, 20)?;
        found
            .into_iter()
            .map(|v| {
                let verdict = self.store.validate_ticket(
                    self.orq,
                    &v.ticket.ticket_code,
                    &self.rules(),
                    Utc::now(),
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
        Ok(SyncView {
            mode: mode.to_string(),
            server_url: s.server_url,
            device_id: s.device_id,
            last_sync_at: s.last_sync_at.map(|t| t.to_rfc3339()),
            last_error: s.last_error,
            pending: s.pending,
            rejected: s.rejected,
            conflicts: s.conflicts,
            clock_offset_ms: s.clock_offset_ms,
            clock_suspect: s.clock_suspect,
        })
    }

    pub fn conflicts(&self) -> Result<Vec<ConflictView>, CommandError> {
        let rows = self.store.list_conflicts(self.orq)?;
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
            venue_name: self.venue_name.clone(),
            kiosk: self.settings.kiosk,
            operator: self.current_operator(),
            auto_lock_secs: self.settings.auto_lock.as_secs() as u32,
            sync: self.sync_view()?,
        })
    }

    /// Operators who may sign in here (for the sign-in screen).
    pub fn operators(&self) -> Result<Vec<OperatorView>, CommandError> {
        Ok(self
            .store
            .list_operators(self.orq)?
            .iter()
            .filter(|o| o.role != Role::Customer)
            .map(operator_view)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
                operator,
            },
        )
        .unwrap();
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
        let second = gate.scan("DEMO-ADMIT", ScanSource::Wedge).unwrap();
        assert_eq!(
            (second.verdict.tone, second.verdict.verdict.as_str()),
            (Tone::Refuse, "ALREADY_VERIFIED")
        );
        assert_eq!(second.verdict.verified_by, Some(1));
        let wrong_venue = gate.scan("DEMO-OTHER-VENUE", ScanSource::Manual).unwrap();
        assert_eq!(wrong_venue.verdict.verdict, "WRONG_VENUE");
        gate.sign_out();
        assert!(gate.current_operator().is_none());
    }

    #[test]
    fn the_session_locks_after_inactivity() {
        let (_dir, gate) = demo_gate(Some(1), Duration::from_millis(150));
        assert_eq!(gate.current_operator().map(|o| o.id), Some(1));
        // Touching the screen keeps it open past the first timeout…
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(60));
            gate.touch();
        }
        assert_eq!(gate.current_operator().map(|o| o.id), Some(1));
        // …and once expired, a touch does not bring it back.
        std::thread::sleep(Duration::from_millis(300));
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
        gate.sign_in(2, "4321").unwrap();
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
}
