//! Who is signed in: the operators, PIN sign-in, the session, its lock and auto-lock.

use std::time::Instant;

use entrada::domain::{Operator, OperatorId, Role};

use super::views::{CommandError, OperatorView};
use super::GateService;

pub(super) struct Session {
    operator: Operator,
    last_activity: Instant,
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
    /// Signs `operator_id` in without a PIN: `--operator` on gate PCs set up
    /// by script. Never a supervisor (or admin): whoever can change slots
    /// and the gate's settings types their PIN.
    pub fn start_session(&self, operator_id: i64) -> Result<OperatorView, CommandError> {
        // Held until the session is set: a pairing cannot slip in between.
        let scope = self.scope.read().unwrap_or_else(|p| p.into_inner());
        let operator = self
            .store
            .get_operator(scope.orq, OperatorId(operator_id))?;
        if !operator.is_active() {
            return Err(CommandError::new(
                "OPERATOR_DEACTIVATED",
                format!("{} was deactivated in the console", operator.display_name),
            ));
        }
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

    pub(super) fn active_operator(&self) -> Result<Operator, CommandError> {
        self.current_operator();
        let mut session = self.lock_session();
        let s = session
            .as_mut()
            .ok_or_else(|| CommandError::new("LOCKED", "Sign in with your PIN to scan"))?;
        // Deactivated in the console since they signed in (the replica
        // learnt it at a sync): the session ends here.
        let (orq, id) = (s.operator.orq, s.operator.id);
        if self
            .store
            .get_operator(orq, id)
            .is_ok_and(|o| !o.is_active())
        {
            *session = None;
            return Err(CommandError::new("LOCKED", "Sign in with your PIN to scan"));
        }
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
            .filter(|o| o.role != Role::Customer && o.is_active())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::CameraChoice;
    use crate::gate::tests::{demo_gate, gate_on_manual_clock};
    use crate::gate::views::{ScanSource, Tone};
    use crate::gate::GateSettings;
    use entrada::store::Store;
    use std::sync::Arc;
    use std::time::Duration;

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
            idle_dim_secs: 0,
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

    /// An operator deactivated in the console (the replica learns it at a
    /// sync; here the replica's store is changed as the sync would) is out:
    /// their open session ends at the next scan, their PIN is refused, the
    /// sign-in list leaves them out and `--operator` does not start them.
    #[test]
    fn a_deactivated_operator_is_signed_out_and_refused() {
        use entrada::domain::staff::StaffChange;
        let (_dir, gate) = demo_gate(None, Duration::from_secs(60));
        assert_eq!(gate.sign_in(1, "1234").unwrap().id, 1);
        assert!(gate.scan("DEMO-ADMIT", ScanSource::Manual).is_ok());
        let off = StaffChange {
            role: None,
            active: Some(false),
        };
        gate.store
            .change_operator(
                entrada::domain::Orq(1),
                OperatorId(1),
                Role::Operator,
                off,
                chrono::Utc::now(),
            )
            .unwrap();
        assert_eq!(
            gate.scan("DEMO-1-0001", ScanSource::Manual)
                .unwrap_err()
                .code,
            "LOCKED"
        );
        assert!(gate.current_operator().is_none() || gate.active_operator().is_err());
        assert_eq!(gate.sign_in(1, "1234").unwrap_err().code, "WRONG_PIN");
        assert_eq!(
            gate.start_session(1).unwrap_err().code,
            "OPERATOR_DEACTIVATED"
        );
        assert!(gate.operators().unwrap().iter().all(|o| o.id != 1));
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
}
