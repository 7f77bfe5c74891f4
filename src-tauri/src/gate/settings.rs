//! The gate's settings: flags over saved choices, camera, kiosk, auto-lock, the settings screen.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use entrada::domain::Operator;

use super::power::{valid_idle_dim, IDLE_DIM_KEY, IDLE_DIM_SECS};
use super::views::{self, CameraOption, CommandError, SettingsView};
use super::{lock, GateService};
use crate::camera::CameraChoice;
use crate::source::{facing_from_name, CameraAdjust, Facing};

/// Keys of the settings screen's choices in the replica (`device_settings`).
const CAMERA_KEY: &str = "camera";
const KIOSK_KEY: &str = "kiosk";
const AUTO_LOCK_KEY: &str = "auto_lock_secs";
const TORCH_KEY: &str = "camera_torch";
const FIXED_FOCUS_KEY: &str = "camera_fixed_focus";
const FIXED_EXPOSURE_KEY: &str = "camera_fixed_exposure";

/// The torch/focus/exposure choice the settings screen saved (all off if none).
pub(super) fn saved_camera_adjust(saved: &BTreeMap<String, String>) -> CameraAdjust {
    let on = |key| saved.get(key).is_some_and(|v| v == "true");
    CameraAdjust {
        torch: on(TORCH_KEY),
        fixed_focus: on(FIXED_FOCUS_KEY),
        fixed_exposure: on(FIXED_EXPOSURE_KEY),
    }
}
/// Auto-lock bounds on the settings screen: long enough to serve a queue,
/// short enough that an unattended gate locks.
pub const AUTO_LOCK_SECS: std::ops::RangeInclusive<u64> = 30..=3600;

/// How the gate runs: from flags and the environment, else the settings
/// screen's saved choices, else defaults.
#[derive(Debug, Clone)]
pub struct GateSettings {
    /// Lock the screen after this long without a scan or a touch.
    pub auto_lock: Duration,
    pub kiosk: bool,
    pub camera: CameraChoice,
    /// Dim the screen (and scan less) after this many seconds without a scan
    /// or a touch; 0: never.
    pub idle_dim_secs: u64,
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
    pub idle_dim_secs: Option<u64>,
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
        let idle_dim_secs = match flags.idle_dim_secs {
            Some(s) => {
                fixed.push("idle_dim".to_string());
                // 0 = never; otherwise within the settings screen's range.
                if s == 0 {
                    0
                } else {
                    s.clamp(*IDLE_DIM_SECS.start(), *IDLE_DIM_SECS.end())
                }
            }
            None => saved
                .get(IDLE_DIM_KEY)
                .and_then(|s| s.parse().ok())
                .filter(|s| valid_idle_dim(*s))
                .unwrap_or(0),
        };
        Self {
            auto_lock: Duration::from_secs(auto_lock_secs),
            kiosk,
            camera,
            idle_dim_secs,
            fixed,
        }
    }
}

impl GateService {
    pub fn set_camera_status(&self, status: views::CameraStatus) {
        *lock(&self.camera) = Some(status);
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

    /// The torch/focus/exposure choice and its change counter (for the scan loop).
    pub fn camera_adjust(&self) -> (CameraAdjust, u64) {
        *lock(&self.camera_adjust)
    }

    /// Bumped by every camera change: the scan loop compares it per frame.
    pub fn camera_generation(&self) -> u64 {
        self.camera_generation.load(Ordering::SeqCst)
    }
}

/// The settings screen: supervisors only, since it points the gate at
/// another server or camera.
impl GateService {
    pub(super) fn supervisor(&self, what: &str) -> Result<Operator, CommandError> {
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

    /// A supervisor defers fleet updates: none installs for `minutes` from
    /// now (0 lifts the deferral). Returns when it ends (RFC 3339).
    pub fn defer_updates(&self, minutes: u32) -> Result<String, CommandError> {
        self.supervisor("defer updates")?;
        let until = self.clock.now() + chrono::Duration::minutes(minutes.into());
        entrada::sync::update::defer_updates(&self.store, until)?;
        tracing::info!(%until, "updates deferred by a supervisor");
        Ok(until.to_rfc3339())
    }

    /// A deferral still running, as the settings screen shows it.
    fn updates_deferred_until(&self) -> Result<Option<String>, CommandError> {
        let now = self.clock.now();
        Ok(self
            .store
            .device_settings()?
            .get(entrada::sync::update::DEFERRED_UNTIL)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .filter(|t| *t > now)
            .map(|t| t.to_rfc3339()))
    }

    /// Whether the screen is locked (nobody signed in, or the session timed
    /// out): a quiet moment for an update.
    pub fn screen_locked(&self) -> bool {
        self.current_operator().is_none()
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
        // Front and rear, where the cameras' names tell (tablets, phones).
        for facing in [Facing::Rear, Facing::Front] {
            if let Some((_, name)) = cameras
                .iter()
                .find(|(_, n)| facing_from_name(n) == Some(facing))
            {
                options.push(CameraOption {
                    value: facing.as_str().into(),
                    label: match facing {
                        Facing::Rear => format!("Rear camera ({name})"),
                        Facing::Front => format!("Front camera ({name})"),
                    },
                });
            }
        }
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
            camera_adjust: self.camera_adjust().0,
            kiosk: self.kiosk(),
            auto_lock_secs: self.auto_lock().as_secs() as u32,
            idle_dim_secs: self.idle_dim_secs() as u32,
            fixed: self.fixed.clone(),
            lan_port: self.lan_port()?,
            lan: self.lan_view(),
            database: self.store.path().display().to_string(),
            version: entrada::sync::update::running_version().to_string(),
            dev_release_key: entrada::sync::update::release_key_is_dev(),
            updates_deferred_until: self.updates_deferred_until()?,
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

    /// Torch, fixed focus, fixed exposure: applied by the scan loop to the
    /// camera in use (where it offers them), kept for the next start.
    pub fn set_camera_adjust(&self, adjust: CameraAdjust) -> Result<CameraAdjust, CommandError> {
        self.supervisor("change the camera")?;
        let flag = |on: bool| if on { "true" } else { "false" };
        self.store
            .set_device_setting(TORCH_KEY, flag(adjust.torch))?;
        self.store
            .set_device_setting(FIXED_FOCUS_KEY, flag(adjust.fixed_focus))?;
        self.store
            .set_device_setting(FIXED_EXPOSURE_KEY, flag(adjust.fixed_exposure))?;
        let mut current = lock(&self.camera_adjust);
        *current = (adjust, current.1 + 1);
        Ok(adjust)
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
    use crate::gate::tests::{demo_gate, gate_on_manual_clock};

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
            idle_dim_secs: None,
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
    fn front_and_rear_are_choices_where_the_cameras_names_tell() {
        let (_dir, gate) = demo_gate(None, Duration::from_secs(60));
        gate.sign_in(2, entrada::demo::SUPERVISOR_PIN).unwrap();
        let values = |cams: Vec<(u32, &str)>| {
            gate.settings_view(|| Ok(cams.into_iter().map(|(i, n)| (i, n.to_string())).collect()))
                .unwrap()
                .camera_options
                .into_iter()
                .map(|o| o.value)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            values(vec![(0, "OV5693 Front"), (1, "OV8865 Rear")]),
            ["auto", "rear", "front", "0", "1"]
        );
        assert_eq!(values(vec![(0, "Back camera")]), ["auto", "rear", "0"]);
        // A USB webcam says neither: no front/rear choice.
        assert_eq!(values(vec![(0, "USB Camera")]), ["auto", "0"]);
        assert_eq!(values(vec![]), ["auto"]);
        assert_eq!(gate.set_camera("rear").unwrap(), "rear");
        assert_eq!(gate.camera_choice().0, CameraChoice::Facing(Facing::Rear));
    }

    #[test]
    fn only_a_supervisor_defers_updates_and_the_deferral_holds_them() {
        use entrada::domain::update::InstallMoment;
        let (_dir, gate) = demo_gate(Some(1), Duration::from_secs(60));
        let moment = |gate: &GateService| {
            entrada::sync::update::install_moment_of(
                gate.store(),
                chrono::Duration::seconds(60),
                true,
                chrono::Utc::now(),
            )
            .unwrap()
        };
        assert_eq!(gate.defer_updates(120).unwrap_err().code, "FORBIDDEN");
        assert_eq!(moment(&gate), InstallMoment::Now, "locked and not deferred");
        gate.sign_in(2, entrada::demo::SUPERVISOR_PIN).unwrap();
        gate.defer_updates(120).unwrap();
        assert_eq!(moment(&gate), InstallMoment::Deferred);
        let view = gate.settings_view(|| Ok(vec![])).unwrap();
        assert!(view.updates_deferred_until.is_some());
        gate.defer_updates(0).unwrap();
        assert_eq!(moment(&gate), InstallMoment::Now, "lifted");
        let view = gate.settings_view(|| Ok(vec![])).unwrap();
        assert_eq!(view.updates_deferred_until, None);
    }

    #[test]
    fn the_screen_is_locked_when_nobody_is_signed_in_or_the_session_timed_out() {
        let (_dir, gate, clock) = gate_on_manual_clock(1, Duration::from_secs(60));
        assert!(!gate.screen_locked());
        clock.advance(Duration::from_secs(61));
        assert!(gate.screen_locked());
        let (_dir, gate) = demo_gate(None, Duration::from_secs(60));
        assert!(gate.screen_locked());
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
            gate.set_camera_adjust(CameraAdjust::default())
                .unwrap_err()
                .code,
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
        // Torch and fixed focus: the loop sees a new choice; the next start reads it.
        let (none, adjust_before) = gate.camera_adjust();
        assert_eq!(none, CameraAdjust::default());
        let chosen = CameraAdjust {
            torch: true,
            fixed_focus: true,
            fixed_exposure: false,
        };
        gate.set_camera_adjust(chosen).unwrap();
        assert_eq!(gate.camera_adjust(), (chosen, adjust_before + 1));
        assert_eq!(
            saved_camera_adjust(&gate.store().device_settings().unwrap()),
            chosen
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
}
