//! Camera controls a handheld needs, where the camera offers them: which way
//! it looks (front or rear), the torch for a dim entrance, and fixed focus and
//! exposure, which stop autofocus "pumping" on a code held close.
//!
//! Each [`FrameSource`](super::FrameSource) says what it offers
//! ([`CameraControls`]) and takes the operator's choice ([`CameraAdjust`]);
//! the settings screen shows only what the source in use offers. A folder of
//! images offers none. A camera through nokhwa on Linux (V4L2) offers what its
//! driver lists among the controls below ([`v4l2`]: pure mappings, tested
//! here on control lists as drivers report them); on other desktop systems
//! nokhwa's control ids differ and none are offered. On Android the CameraX
//! plugin would report the same two types (ARCHITECTURE.md, "Android").

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Which way a camera looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum Facing {
    Front,
    Rear,
}

impl Facing {
    /// What `--camera` says for it (`front`, `rear`).
    pub fn as_str(self) -> &'static str {
        match self {
            Facing::Front => "front",
            Facing::Rear => "rear",
        }
    }
}

/// Which way a camera looks, from the name its system gives it, where the
/// name says so ("… Front Camera", "rear", "back", "user", "environment",
/// as tablets' and phones' cameras are named); `None` for a USB camera.
pub fn facing_from_name(name: &str) -> Option<Facing> {
    let lower = name.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let has = |w: &[&str]| words.iter().any(|x| w.contains(x));
    match (
        has(&["front", "user", "facetime", "selfie"]),
        has(&["rear", "back", "environment", "world"]),
    ) {
        (true, false) => Some(Facing::Front),
        (false, true) => Some(Facing::Rear),
        _ => None,
    }
}

/// What a frame source lets the operator change (all false: nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, TS)]
pub struct CameraControls {
    /// A torch (LED) that can stay on.
    pub torch: bool,
    /// Autofocus that can be switched off (focus stays where it is).
    pub fixed_focus: bool,
    /// Automatic exposure that can be switched off.
    pub fixed_exposure: bool,
}

impl CameraControls {
    pub fn any(&self) -> bool {
        self.torch || self.fixed_focus || self.fixed_exposure
    }
}

/// What the operator chose on the settings screen (kept for the next start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct CameraAdjust {
    pub torch: bool,
    pub fixed_focus: bool,
    pub fixed_exposure: bool,
}

/// V4L2's controls for these (ids from `linux/v4l2-controls.h`), which
/// nokhwa's Linux backend passes through as `KnownCameraControl::Other(id)`.
pub mod v4l2 {
    use super::{CameraAdjust, CameraControls};

    /// `V4L2_CID_FOCUS_AUTO` (boolean: continuous autofocus).
    pub const FOCUS_AUTO: u32 = 0x009a_090c;
    /// `V4L2_CID_EXPOSURE_AUTO` (menu: 0 auto, 1 manual, 2 shutter priority,
    /// 3 aperture priority — the "auto" most UVC webcams offer).
    pub const EXPOSURE_AUTO: u32 = 0x009a_0901;
    /// `V4L2_CID_FLASH_LED_MODE` (menu: 0 none, 1 flash, 2 torch).
    pub const FLASH_LED_MODE: u32 = 0x009c_0901;

    const EXPOSURE_MANUAL: i64 = 1;
    const EXPOSURE_AUTO_FULL: i64 = 0;
    const EXPOSURE_APERTURE_PRIORITY: i64 = 3;
    const FLASH_NONE: i64 = 0;
    const FLASH_TORCH: i64 = 2;

    /// How a driver describes a control's values.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Kind {
        Boolean,
        /// Integers and menus.
        Integer {
            min: i64,
            max: i64,
        },
        /// Anything else (strings, compound values): not ours to set.
        Other,
    }

    /// A value to write to a control.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Value {
        Boolean(bool),
        Integer(i64),
    }

    fn find(controls: &[(u32, Kind)], id: u32) -> Option<Kind> {
        controls.iter().find(|(i, _)| *i == id).map(|(_, k)| *k)
    }

    fn switchable(kind: Option<Kind>) -> bool {
        matches!(
            kind,
            Some(Kind::Boolean)
                | Some(Kind::Integer {
                    min: ..=0,
                    max: 1..
                })
        )
    }

    /// What a camera with these controls offers.
    pub fn offered(controls: &[(u32, Kind)]) -> CameraControls {
        CameraControls {
            torch: matches!(find(controls, FLASH_LED_MODE), Some(Kind::Integer { min: ..=FLASH_NONE, max }) if max >= FLASH_TORCH),
            fixed_focus: switchable(find(controls, FOCUS_AUTO)),
            fixed_exposure: matches!(find(controls, EXPOSURE_AUTO), Some(Kind::Integer { min, max }) if min <= EXPOSURE_MANUAL && max >= EXPOSURE_MANUAL && (min == EXPOSURE_AUTO_FULL || max >= EXPOSURE_APERTURE_PRIORITY)),
        }
    }

    /// The writes that put a camera with these controls in the chosen state
    /// (a control the camera does not offer is left alone).
    pub fn writes(adjust: &CameraAdjust, controls: &[(u32, Kind)]) -> Vec<(u32, Value)> {
        let offer = offered(controls);
        let mut out = Vec::new();
        if offer.fixed_focus {
            let auto = !adjust.fixed_focus;
            out.push((
                FOCUS_AUTO,
                match find(controls, FOCUS_AUTO) {
                    Some(Kind::Boolean) => Value::Boolean(auto),
                    _ => Value::Integer(auto as i64),
                },
            ));
        }
        if offer.fixed_exposure {
            let auto = match find(controls, EXPOSURE_AUTO) {
                Some(Kind::Integer { max, .. }) if max >= EXPOSURE_APERTURE_PRIORITY => {
                    EXPOSURE_APERTURE_PRIORITY
                }
                _ => EXPOSURE_AUTO_FULL,
            };
            out.push((
                EXPOSURE_AUTO,
                Value::Integer(if adjust.fixed_exposure {
                    EXPOSURE_MANUAL
                } else {
                    auto
                }),
            ));
        }
        if offer.torch {
            out.push((
                FLASH_LED_MODE,
                Value::Integer(if adjust.torch {
                    FLASH_TORCH
                } else {
                    FLASH_NONE
                }),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::v4l2::{self, Kind, Value};
    use super::*;

    #[test]
    fn facing_comes_from_the_name_where_it_says() {
        for (name, facing) in [
            ("Integrated Camera: Front Camera", Some(Facing::Front)),
            ("OV5693 front", Some(Facing::Front)),
            ("ov8865 Rear", Some(Facing::Rear)),
            ("Back camera", Some(Facing::Rear)),
            ("camera (environment)", Some(Facing::Rear)),
            ("FaceTime HD Camera", Some(Facing::Front)),
            ("Logitech C920", None),
            ("USB2.0 HD UVC WebCam", None),
            // "frontier" is not "front"; both words: unknown.
            ("Frontier Cam", None),
            ("front and back", None),
        ] {
            assert_eq!(facing_from_name(name), facing, "{name}");
        }
    }

    /// A UVC webcam as `v4l2-ctl --list-ctrls` lists it (Logitech C920).
    fn uvc_webcam() -> Vec<(u32, Kind)> {
        vec![
            (0x0098_0900, Kind::Integer { min: 0, max: 255 }), // brightness
            (v4l2::EXPOSURE_AUTO, Kind::Integer { min: 0, max: 3 }),
            (0x009a_0902, Kind::Integer { min: 3, max: 2047 }), // exposure_time_absolute
            (v4l2::FOCUS_AUTO, Kind::Boolean),
            (0x009a_090a, Kind::Integer { min: 0, max: 250 }), // focus_absolute
        ]
    }

    #[test]
    fn what_a_camera_offers_follows_its_controls() {
        let none = CameraControls::default();
        type Case = (&'static str, Vec<(u32, Kind)>, CameraControls);
        let cases: [Case; 6] = [
            ("no controls", vec![], none),
            (
                "a UVC webcam: focus and exposure, no torch",
                uvc_webcam(),
                CameraControls {
                    torch: false,
                    fixed_focus: true,
                    fixed_exposure: true,
                },
            ),
            (
                "a phone-class sensor with a torch LED and autofocus as 0..1",
                vec![
                    (v4l2::FLASH_LED_MODE, Kind::Integer { min: 0, max: 2 }),
                    (v4l2::FOCUS_AUTO, Kind::Integer { min: 0, max: 1 }),
                ],
                CameraControls {
                    torch: true,
                    fixed_focus: true,
                    fixed_exposure: false,
                },
            ),
            (
                "a flash that cannot stay on is no torch",
                vec![(v4l2::FLASH_LED_MODE, Kind::Integer { min: 0, max: 1 })],
                none,
            ),
            (
                "exposure that is manual only cannot be switched",
                vec![(v4l2::EXPOSURE_AUTO, Kind::Integer { min: 1, max: 1 })],
                none,
            ),
            (
                "a control of a type we do not set",
                vec![(v4l2::FOCUS_AUTO, Kind::Other)],
                none,
            ),
        ];
        for (what, controls, expected) in cases {
            assert_eq!(v4l2::offered(&controls), expected, "{what}");
        }
    }

    #[test]
    fn the_choice_becomes_writes_to_the_controls_offered() {
        let fixed = CameraAdjust {
            torch: true,
            fixed_focus: true,
            fixed_exposure: true,
        };
        let auto = CameraAdjust::default();
        // A UVC webcam: focus and exposure (aperture priority is its "auto"); no torch to write.
        assert_eq!(
            v4l2::writes(&fixed, &uvc_webcam()),
            [
                (v4l2::FOCUS_AUTO, Value::Boolean(false)),
                (v4l2::EXPOSURE_AUTO, Value::Integer(1)),
            ]
        );
        assert_eq!(
            v4l2::writes(&auto, &uvc_webcam()),
            [
                (v4l2::FOCUS_AUTO, Value::Boolean(true)),
                (v4l2::EXPOSURE_AUTO, Value::Integer(3)),
            ]
        );
        let sensor = [
            (v4l2::FLASH_LED_MODE, Kind::Integer { min: 0, max: 2 }),
            (v4l2::FOCUS_AUTO, Kind::Integer { min: 0, max: 1 }),
            (v4l2::EXPOSURE_AUTO, Kind::Integer { min: 0, max: 1 }),
        ];
        assert_eq!(
            v4l2::writes(&fixed, &sensor),
            [
                (v4l2::FOCUS_AUTO, Value::Integer(0)),
                (v4l2::EXPOSURE_AUTO, Value::Integer(1)),
                (v4l2::FLASH_LED_MODE, Value::Integer(2)),
            ]
        );
        assert_eq!(
            v4l2::writes(&auto, &sensor),
            [
                (v4l2::FOCUS_AUTO, Value::Integer(1)),
                (v4l2::EXPOSURE_AUTO, Value::Integer(0)),
                (v4l2::FLASH_LED_MODE, Value::Integer(0)),
            ]
        );
        assert!(v4l2::writes(&fixed, &[]).is_empty());
    }
}
