//! Venue operations on the gate (issue 15): the scanner's direction, the
//! people inside, walk-ups and undo. Each calls the store service the CLI's
//! `entrada gate verify|occupancy|book|undo` calls; the rules are in
//! `entrada::domain::venue_ops`.

use std::sync::atomic::Ordering;
use std::time::Instant;

use entrada::domain::venue_ops::{Direction, OccupancyLevel};
use entrada::domain::{Gate as GateRules, OperatorId, Orq, TicketCode, Verdict};

use super::views::{
    CommandError, LeaseView, OccupancyView, ScanOutcome, ScanSource, UndoView, VenueOpsView,
    VerdictView,
};
use super::GateService;

impl GateService {
    /// Which way the gate scans now.
    pub fn direction(&self) -> Direction {
        if self.scans_out.load(Ordering::Relaxed) {
            Direction::Out
        } else {
            Direction::In
        }
    }

    /// The operator turns the gate to scan entries (`in`) or exits (`out`).
    pub fn set_direction(&self, direction: &str) -> Result<String, CommandError> {
        self.active_operator()?;
        let d = Direction::parse(direction)?;
        self.scans_out.store(d == Direction::Out, Ordering::Relaxed);
        Ok(d.as_str().to_string())
    }

    /// People inside this gate's venue as its replica knows it
    /// (`Store::gate_occupancy`); None on a gate without a venue.
    pub fn occupancy(&self) -> Result<Option<OccupancyView>, CommandError> {
        let scope = self.scope();
        let Some(venue) = scope.venue else {
            return Ok(None);
        };
        let o = self
            .store
            .gate_occupancy(scope.orq, venue, self.clock.now())?;
        Ok(Some(OccupancyView {
            inside: o.inside,
            limit: o.limit,
            level: match o.level {
                OccupancyLevel::Normal => "normal",
                OccupancyLevel::Near => "near",
                OccupancyLevel::Full => "full",
            }
            .to_string(),
            as_of: o
                .as_of
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        }))
    }

    /// The venue's operations today for a supervisor (the sync screen):
    /// this gate's walk-up places, its undone admissions, the no-shows.
    /// None on a gate without a venue.
    pub fn venue_ops(&self) -> Result<Option<VenueOpsView>, CommandError> {
        self.supervisor("see the venue's operations")?;
        let scope = self.scope();
        let Some(venue) = scope.venue else {
            return Ok(None);
        };
        let s = self
            .store
            .gate_ops_summary(scope.orq, venue, self.clock.now())?;
        let hm = |t: chrono::NaiveTime| t.format("%H:%M").to_string();
        Ok(Some(VenueOpsView {
            leases: s
                .leases
                .into_iter()
                .map(|(slot, places)| LeaseView {
                    slot_id: slot.id.to_string(),
                    date: slot.date.to_string(),
                    start_time: hm(slot.start_time),
                    end_time: hm(slot.end_time),
                    places,
                })
                .collect(),
            undos: s
                .undos
                .into_iter()
                .map(|u| UndoView {
                    ticket_code: u.ticket_code,
                    operator_id: u.operator_id.map(|o| o.0),
                    at: u.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    reason: u.reason,
                })
                .collect(),
            no_shows_today: s.no_shows_today,
        }))
    }

    /// The supervisor signed in here, for an act only a supervisor may do.
    pub fn supervisor_id(&self, what: &str) -> Result<OperatorId, CommandError> {
        Ok(self.supervisor(what)?.id)
    }

    /// What a walk-up needs from the gate before it is booked
    /// (`DeviceLink::book_walkup`: online through the server, else from
    /// this gate's lease): the org, the signed-in operator, the gate's
    /// rules, the time.
    pub fn walkup_context(
        &self,
    ) -> Result<(Orq, OperatorId, GateRules, chrono::DateTime<chrono::Utc>), CommandError> {
        let scope = self.scope();
        let operator = self.active_operator()?;
        let rules = GateRules {
            venue_id: scope.venue,
            ..GateRules::default()
        };
        Ok((scope.orq, operator.id, rules, self.clock.now()))
    }

    /// The walk-up's verdict as the scanner shows it (written already).
    pub fn walkup_outcome(
        &self,
        orq: Orq,
        verdict: &Verdict,
        payload: &str,
        source: ScanSource,
        started: Instant,
    ) -> Result<ScanOutcome, CommandError> {
        self.outcome(orq, verdict, payload, source, started, true)
    }

    /// The signed-in operator undoes their own admission of `ticket_code`
    /// with a reason (`Store::undo_admission`: within 60 s); returns what the
    /// gate says about the ticket now.
    pub fn undo_admission(
        &self,
        ticket_code: &str,
        reason: &str,
    ) -> Result<VerdictView, CommandError> {
        let scope = self.scope.read().unwrap_or_else(|p| p.into_inner());
        let operator = self.active_operator()?;
        let code = TicketCode::parse(ticket_code)?;
        let rules = GateRules {
            venue_id: scope.venue,
            ..GateRules::default()
        };
        let v = self.store.undo_admission(
            scope.orq,
            &code,
            operator.id,
            reason,
            &rules,
            self.clock.now(),
        )?;
        *super::lock(&self.last_scan) = None;
        Ok(VerdictView::from(&v))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::gate_on_manual_clock;
    use super::*;
    use std::time::Duration;

    const LONG: Duration = Duration::from_secs(3600);

    #[test]
    fn exit_mode_scans_exits() {
        let (_dir, gate, _clock) = gate_on_manual_clock(1, LONG);
        assert_eq!(gate.direction(), Direction::In);
        let inside = gate.occupancy().unwrap().unwrap().inside;
        let admit = gate.scan("DEMO-ADMIT", ScanSource::Manual).unwrap();
        assert_eq!(admit.verdict.verdict, "ADMIT");
        assert_eq!(admit.direction, "in");
        assert_eq!(admit.undo_secs, Some(60));
        assert_eq!(gate.occupancy().unwrap().unwrap().inside, inside + 1);

        assert_eq!(gate.set_direction("out").unwrap(), "out");
        let exit = gate.scan("DEMO-ADMIT", ScanSource::Manual).unwrap();
        assert_eq!(exit.verdict.verdict, "EXIT");
        assert_eq!(exit.direction, "out");
        assert_eq!(exit.undo_secs, None);
        assert_eq!(gate.occupancy().unwrap().unwrap().inside, inside);
        let again = gate.scan("DEMO-ADMIT", ScanSource::Manual).unwrap();
        assert_eq!(again.verdict.verdict, "NOT_INSIDE");
        assert!(again.verdict.left_at.is_some(), "{again:?}");
        let never = gate.scan("DEMO-ADMIT-2", ScanSource::Manual).unwrap();
        assert_eq!(never.verdict.verdict, "NOT_INSIDE");
        assert!(gate.set_direction("sideways").is_err());

        // Back in: the demo venue does not allow re-entry.
        gate.set_direction("in").unwrap();
        let back = gate.scan("DEMO-ADMIT", ScanSource::Manual).unwrap();
        assert_eq!(back.verdict.verdict, "REENTRY_NOT_ALLOWED");
    }

    #[test]
    fn undo_reverts_own_admission_within_the_window() {
        let (_dir, gate, clock) = gate_on_manual_clock(1, LONG);
        let inside = gate.occupancy().unwrap().unwrap().inside;
        gate.scan("DEMO-ADMIT", ScanSource::Manual).unwrap();
        assert!(
            gate.undo_admission("DEMO-ADMIT", "x").is_err(),
            "a reason is needed"
        );
        let v = gate.undo_admission("DEMO-ADMIT", "wrong phone").unwrap();
        assert!(v.message.contains("wrong phone"), "{v:?}");
        assert_eq!(gate.occupancy().unwrap().unwrap().inside, inside);
        assert!(
            gate.last_scan().is_none(),
            "the undone ADMIT is not shown again"
        );
        // Admitted again, then too late to undo.
        let again = gate.scan("DEMO-ADMIT", ScanSource::Manual).unwrap();
        assert_eq!(again.verdict.verdict, "ADMIT");
        clock.advance(Duration::from_secs(61));
        let late = gate
            .undo_admission("DEMO-ADMIT", "wrong phone")
            .unwrap_err();
        assert_eq!(late.code, "INVALID_INPUT", "{late:?}");
    }

    #[test]
    fn walkup_offered_on_not_reserved_and_refused_without_a_lease() {
        let (_dir, gate, _clock) = gate_on_manual_clock(1, LONG);
        let reserved = gate.scan("DEMO-ADMIT", ScanSource::Manual).unwrap();
        assert!(!reserved.verdict.walkup);
        let code = "DEMO-RES-CANCELLED".to_string();
        let o = gate.scan(&code, ScanSource::Manual).unwrap();
        assert!(o.verdict.walkup, "{o:?}");
        assert_eq!(o.payload.as_deref(), Some(code.as_str()));
        // A standalone gate has no server to ask and holds no lease: no
        // place left, nothing written.
        let engine = entrada::sync::client::SyncEngine::new(gate.store.clone());
        let (orq, operator, rules, now) = gate.walkup_context().unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let pending = gate.store.pending_events().unwrap().len();
        let v = runtime
            .block_on(engine.book_walkup(orq, code.clone().into_bytes(), operator, rules, now))
            .unwrap();
        assert_eq!(v.verdict.code(), "NO_PLACE_LEFT", "{v:?}");
        assert_eq!(gate.store.pending_events().unwrap().len(), pending);
    }
}
