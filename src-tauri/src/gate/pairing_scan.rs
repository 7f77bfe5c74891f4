//! Pairing mode (issue 16): a supervisor, on the settings screen, asks the
//! camera for the pairing QR code the console shows. Only then does the scan
//! loop take a pairing code, once, within [`PAIRING_SCAN_SECS`]; the code
//! itself is read by `entrada::domain::pairing` (one format, one reader).
//! Outside pairing mode a pairing code is refused like no ticket is
//! (`PAIRING_CODE_NOT_A_TICKET`): a visitor holding one to the camera must
//! not re-pair the gate to a server of their own.

use std::time::Duration;

use entrada::domain::pairing::{looks_like_pairing, may_pair, PairingCode, PairingDecision};

use super::views::{CommandError, PairingScan};
use super::{lock, GateService};

/// How long pairing mode waits for a code before the camera goes back to tickets.
pub const PAIRING_SCAN_SECS: u64 = 120;

/// What a scan of a pairing code outside pairing mode says.
pub fn not_a_ticket() -> CommandError {
    CommandError::new(
        "PAIRING_CODE_NOT_A_TICKET",
        "This is a gate pairing code, not a ticket: nothing was recorded. A supervisor pairs \
         the gate from Settings → Scan pairing code.",
    )
}

impl GateService {
    /// A supervisor turns pairing mode on: the camera's next pairing code
    /// goes to the settings screen (tickets are not scanned meanwhile).
    /// Returns how many seconds it waits.
    pub fn arm_pairing_scan(&self) -> Result<u64, CommandError> {
        self.require_supervisor("pair this gate")?;
        *lock(&self.pairing_scan_until) =
            Some(self.clock.instant() + Duration::from_secs(PAIRING_SCAN_SECS));
        Ok(PAIRING_SCAN_SECS)
    }

    /// Pairing mode off (cancelled, or the settings screen left).
    pub fn disarm_pairing_scan(&self) {
        *lock(&self.pairing_scan_until) = None;
    }

    /// Whether the camera is in pairing mode now: armed, not expired, and
    /// the supervisor who armed it still signed in (a lock ends it).
    pub fn pairing_scan_armed(&self) -> bool {
        let mut until = lock(&self.pairing_scan_until);
        let armed = until.is_some_and(|u| self.clock.instant() < u)
            && self.require_supervisor("pair this gate").is_ok();
        if !armed {
            *until = None;
        }
        armed
    }

    /// In pairing mode, what the camera read: `None` for anything but a
    /// pairing code (ignored: no ticket is judged while pairing). A usable
    /// code ends pairing mode; a broken one says why and leaves it on.
    pub fn take_pairing_code(&self, payload: &str) -> Option<PairingScan> {
        if !looks_like_pairing(payload) || !self.pairing_scan_armed() {
            return None;
        }
        Some(match PairingCode::parse(payload) {
            Ok(code) => {
                self.disarm_pairing_scan();
                let (current_server, pending, refusal) = match self.pairing_check(&code) {
                    Ok(now) => now,
                    Err(e) => (None, 0, Some(e)),
                };
                PairingScan {
                    code: payload.trim().to_string(),
                    server_url: Some(code.server_url().to_string()),
                    pins_ca: code.ca_sha256().is_some(),
                    current_server,
                    pending,
                    refusal,
                    error: None,
                }
            }
            Err(e) => PairingScan {
                code: String::new(),
                server_url: None,
                pins_ca: false,
                current_server: None,
                pending: 0,
                refusal: None,
                error: Some(CommandError::new(e.code(), e.to_string())),
            },
        })
    }

    /// What the confirm panel shows and `pair_with_code` checks again: the
    /// server this gate is paired with now, its scans not yet uploaded, and
    /// the refusal of `entrada::domain::pairing::may_pair` if any.
    pub fn pairing_check(
        &self,
        code: &PairingCode,
    ) -> Result<(Option<String>, u32, Option<CommandError>), CommandError> {
        let status = self.store().sync_status()?;
        let current = status.paired.then_some(status.server_url).flatten();
        let pending = u32::try_from(status.pending.max(0)).unwrap_or(u32::MAX);
        let refusal = match may_pair(current.as_deref(), u64::from(pending), code) {
            PairingDecision::Proceed => None,
            PairingDecision::SyncFirst => Some(sync_first(current.as_deref(), pending)),
        };
        Ok((current, pending, refusal))
    }
}

/// The refusal of a code naming another server while scans wait for this one.
fn sync_first(current: Option<&str>, pending: u32) -> CommandError {
    CommandError::new(
        PairingDecision::SyncFirst
            .code()
            .unwrap_or("PAIRING_SYNC_FIRST"),
        format!(
            "This gate is paired with {} and has {pending} scan(s) not yet uploaded: sync them \
             first (or pair by hand in Settings), then scan the code again.",
            current.unwrap_or("another server")
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use entrada::store::Store;

    use crate::clock::ManualClock;
    use crate::gate::views::ScanSource;
    use crate::gate::{GateService, GateSettings, StartOptions};

    const CODE: &str = "entrada-pair:v1?server=https://10.0.0.5:8443&token=dev_abc123";

    /// A standalone demo gate on a clock the test moves.
    fn gate() -> (tempfile::TempDir, GateService, Arc<ManualClock>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path().join("gate.db")).unwrap());
        entrada::demo::populate(&store, chrono::Utc::now(), |_| {}).unwrap();
        let clock = Arc::new(ManualClock::at(chrono::Utc::now()));
        let gate = GateService::new(
            store,
            GateSettings::resolve(&StartOptions::default(), &Default::default()),
        )
        .unwrap()
        .with_clock(clock.clone());
        (dir, gate, clock)
    }

    #[test]
    fn only_a_supervisor_arms_pairing_mode_and_it_ends() {
        let (_dir, gate, clock) = gate();
        // Nobody signed in, then an operator: refused.
        assert!(gate.arm_pairing_scan().is_err());
        gate.sign_in(1, "1234").unwrap();
        assert_eq!(gate.arm_pairing_scan().unwrap_err().code, "FORBIDDEN");
        assert!(!gate.pairing_scan_armed());
        assert!(
            gate.take_pairing_code(CODE).is_none(),
            "not armed: not taken"
        );
        // An operator's camera refuses the code as a ticket, and records nothing.
        let refused = gate.scan(CODE, ScanSource::Camera).unwrap_err();
        assert_eq!(refused.code, "PAIRING_CODE_NOT_A_TICKET");
        gate.sign_out();

        gate.sign_in(2, "654321").unwrap();
        assert_eq!(gate.arm_pairing_scan().unwrap(), super::PAIRING_SCAN_SECS);
        assert!(gate.pairing_scan_armed());
        assert!(
            gate.take_pairing_code("DEMO-ADMIT-1").is_none(),
            "a ticket is ignored while pairing"
        );
        let broken = gate.take_pairing_code("entrada-pair:v9?x=1").unwrap();
        assert_eq!(broken.error.unwrap().code, "INVALID_PAIRING_CODE");
        assert!(
            gate.pairing_scan_armed(),
            "a broken code leaves pairing mode on"
        );
        let scan = gate.take_pairing_code(CODE).unwrap();
        assert_eq!(scan.server_url.as_deref(), Some("https://10.0.0.5:8443"));
        assert!(!scan.pins_ca && scan.error.is_none());
        // Standalone: nothing to lose, the confirm panel offers "Pair".
        assert_eq!(scan.current_server, None);
        assert!(scan.refusal.is_none());
        assert_eq!(scan.code, CODE);
        assert!(!gate.pairing_scan_armed(), "a code is taken once");
        assert!(gate.take_pairing_code(CODE).is_none());

        // It expires, and a lock ends it.
        gate.arm_pairing_scan().unwrap();
        clock.advance(std::time::Duration::from_secs(super::PAIRING_SCAN_SECS + 1));
        assert!(!gate.pairing_scan_armed(), "expired");
        gate.arm_pairing_scan().unwrap();
        gate.sign_out();
        assert!(!gate.pairing_scan_armed(), "ended by the lock");
    }
}
