//! Idling lightly: whether the window wants preview frames, whether the
//! screen is dimmed (power save: the scan loop reads and decodes less), and
//! the setting of after how long a handheld dims.

use std::sync::atomic::Ordering;

use super::views::CommandError;
use super::GateService;

/// Key of the dim-after setting in the replica (`device_settings`).
pub(super) const IDLE_DIM_KEY: &str = "idle_dim_secs";
/// Dim after 1 minute to 1 hour without a scan or touch; 0: never.
pub const IDLE_DIM_SECS: std::ops::RangeInclusive<u64> = 60..=3600;

/// A valid dim-after value: 0 (never) or within [`IDLE_DIM_SECS`].
pub(super) fn valid_idle_dim(secs: u64) -> bool {
    secs == 0 || IDLE_DIM_SECS.contains(&secs)
}

impl GateService {
    /// The window shows the scanner screen, visibly: the scan loop sends
    /// preview frames only then.
    pub fn set_preview_wanted(&self, on: bool) {
        self.preview_wanted.store(on, Ordering::Relaxed);
    }

    /// The page asks for preview frames and the window is on screen: a
    /// minimized or hidden window's page may not learn that it is hidden
    /// (`document.visibilityState` depends on the platform's web view).
    pub fn preview_wanted(&self) -> bool {
        self.preview_wanted.load(Ordering::Relaxed) && self.window_shown.load(Ordering::Relaxed)
    }

    /// The window was minimized or hidden (`false`), or shown again.
    pub fn set_window_shown(&self, shown: bool) {
        self.window_shown.store(shown, Ordering::Relaxed);
    }

    /// The screen dimmed (power save) or woke up.
    pub fn set_power_save(&self, on: bool) {
        self.power_save.store(on, Ordering::Relaxed);
    }

    pub fn power_save(&self) -> bool {
        self.power_save.load(Ordering::Relaxed)
    }

    /// Seconds without a scan or touch before the screen dims (0: never).
    pub fn idle_dim_secs(&self) -> u64 {
        self.idle_dim_secs.load(Ordering::Relaxed)
    }

    /// Supervisors only; kept for the next start.
    pub fn set_idle_dim(&self, secs: u64) -> Result<u32, CommandError> {
        self.supervisor("change the power saving")?;
        if !valid_idle_dim(secs) {
            return Err(CommandError::new(
                "INVALID_INPUT",
                format!(
                    "dimming must be off or between {} min and {} min",
                    IDLE_DIM_SECS.start() / 60,
                    IDLE_DIM_SECS.end() / 60
                ),
            ));
        }
        self.store
            .set_device_setting(IDLE_DIM_KEY, &secs.to_string())?;
        self.idle_dim_secs.store(secs, Ordering::Relaxed);
        Ok(secs as u32)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::gate::tests::demo_gate;
    use crate::gate::{GateSettings, StartOptions};

    #[test]
    fn the_dim_setting_is_for_supervisors_checked_and_kept() {
        let (_dir, gate) = demo_gate(Some(1), Duration::from_secs(60));
        assert_eq!(gate.idle_dim_secs(), 0, "off unless chosen");
        assert_eq!(gate.set_idle_dim(300).unwrap_err().code, "FORBIDDEN");
        gate.sign_in(2, entrada::demo::SUPERVISOR_PIN).unwrap();
        for bad in [1, 59, 3601] {
            assert_eq!(
                gate.set_idle_dim(bad).unwrap_err().code,
                "INVALID_INPUT",
                "{bad}"
            );
        }
        assert_eq!(gate.set_idle_dim(300).unwrap(), 300);
        assert_eq!(gate.idle_dim_secs(), 300);
        assert_eq!(gate.info().unwrap().idle_dim_secs, 300);
        let saved = gate.store().device_settings().unwrap();
        let next = GateSettings::resolve(&StartOptions::default(), &saved);
        assert_eq!(next.idle_dim_secs, 300);
        // A flag wins over the saved value; a saved value out of range is ignored.
        let flag = StartOptions {
            idle_dim_secs: Some(120),
            ..StartOptions::default()
        };
        let fixed = GateSettings::resolve(&flag, &saved);
        assert_eq!(
            (fixed.idle_dim_secs, fixed.fixed),
            (120, vec!["idle_dim".to_string()])
        );
        // A flag out of range is brought into it (0 still means never).
        for (flag, want) in [(1, 60), (0, 0), (99_999, 3600)] {
            let opts = StartOptions {
                idle_dim_secs: Some(flag),
                ..StartOptions::default()
            };
            assert_eq!(
                GateSettings::resolve(&opts, &saved).idle_dim_secs,
                want,
                "{flag}"
            );
        }
        let junk = [("idle_dim_secs".to_string(), "7".to_string())].into();
        assert_eq!(
            GateSettings::resolve(&StartOptions::default(), &junk).idle_dim_secs,
            0
        );
        assert_eq!(gate.set_idle_dim(0).unwrap(), 0);
    }

    #[test]
    fn preview_and_power_save_follow_the_window() {
        let (_dir, gate) = demo_gate(Some(1), Duration::from_secs(60));
        assert!(
            !gate.preview_wanted(),
            "no preview until the scanner screen asks"
        );
        assert!(!gate.power_save());
        gate.set_preview_wanted(true);
        gate.set_power_save(true);
        assert!(gate.preview_wanted() && gate.power_save());
        // Minimized or hidden: no preview, whatever the page says; shown
        // again, the page's wish counts again.
        gate.set_window_shown(false);
        assert!(!gate.preview_wanted(), "no preview in a hidden window");
        gate.set_preview_wanted(true);
        assert!(!gate.preview_wanted(), "the page cannot override it");
        gate.set_window_shown(true);
        assert!(gate.preview_wanted());
        gate.set_preview_wanted(false);
        assert!(!gate.preview_wanted());
    }
}
