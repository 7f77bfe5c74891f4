//! The screens the commands return: scan and its verdicts, slots, ticket look-up, sync, conflicts.

use std::time::{Duration, Instant};

use chrono::Duration as Days;
use entrada::domain::{Gate as GateRules, SlotChange, SlotId, SlotStatus, VerdictCode};

use super::views::{
    self, AppInfo, CommandError, ConflictView, ScanOutcome, ScanSource, SlotView, SyncView,
    TicketLookupView, VerdictView,
};
use super::{lock, GateService, Scope};

/// How long a verdict stays worth showing to a page that just loaded.
const LAST_SCAN_FRESH: Duration = Duration::from_secs(5);

impl GateService {
    /// The sync loop's state after its last round (for the sync screen).
    pub fn report_sync_loop(&self, status: entrada::sync::client::LoopStatus) {
        *lock(&self.sync_loop) = status;
    }

    /// The LAN exchange's state (for the sync and settings screens).
    pub fn report_lan(&self, view: views::LanView) {
        *lock(&self.lan) = view;
    }

    pub fn lan_view(&self) -> views::LanView {
        lock(&self.lan).clone()
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
        // A pairing code is never a ticket: refused before anything is read
        // or recorded (pairing takes it only in a supervisor's pairing mode).
        if entrada::domain::pairing::looks_like_pairing(payload) {
            return Err(super::pairing_scan::not_a_ticket());
        }
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
            None => self.store.pass(
                orq,
                payload.as_bytes(),
                operator.id,
                &rules,
                self.direction(),
                self.clock.now(),
            )?,
        };
        self.outcome(orq, &verdict, payload, source, started, false)
    }

    /// The screen for `verdict` of `payload` (scan, decision, walk-up
    /// booking when `walkup`), remembered as the last scan.
    pub(super) fn outcome(
        &self,
        orq: entrada::domain::Orq,
        verdict: &entrada::domain::Verdict,
        payload: &str,
        source: ScanSource,
        started: Instant,
        walkup: bool,
    ) -> Result<ScanOutcome, CommandError> {
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let admitted_in_slot = match verdict.slot_id {
            Some(slot) => Some(self.store.admitted_count(orq, slot)?),
            None => None,
        };
        let undo_secs = (verdict.verdict == VerdictCode::Admit)
            .then_some(entrada::domain::venue_ops::UNDO_WINDOW_SECS);
        let verdict = VerdictView::from(verdict);
        let walkup_booked = walkup && verdict.admit;
        let outcome = ScanOutcome {
            payload: (verdict.tone == views::Tone::Decide || verdict.walkup)
                .then(|| payload.to_string()),
            verdict,
            source,
            admitted_in_slot,
            ms,
            direction: self.direction().as_str().to_string(),
            undo_secs,
            walkup_booked,
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
            peers: {
                let now = chrono::Utc::now();
                self.store
                    .lan_peers()?
                    .iter()
                    .map(|p| views::PeerView::of(p, now))
                    .collect()
            },
            lan: self.lan_view(),
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
            idle_dim_secs: self.idle_dim_secs() as u32,
            sync: self.sync_view()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::tests::{demo_gate, gate_on_manual_clock};
    use chrono::Utc;
    use entrada::domain::Orq;
    use views::Tone;

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
