//! A real camera through nokhwa. There is none on CI machines: opening one
//! there fails with a clear error, and the scan loop keeps retrying.

use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{
    ApiBackend, CameraControl, CameraFormat, CameraIndex, ControlValueDescription,
    ControlValueSetter, FrameFormat, KnownCameraControl, RequestedFormat, RequestedFormatType,
};
use nokhwa::{Camera, FormatDecoder};

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::controls::v4l2::{self, Kind, Value};
use super::controls::{facing_from_name, CameraAdjust, CameraControls, Facing};
use super::fresh::{self, Read};
use super::resolution::{best_mode, Mode};
use super::{FrameSource, SourceError};
use crate::scan::Frame;

pub struct CameraSource {
    camera: Camera,
    description: String,
    /// The V4L2 controls the driver listed at open (empty elsewhere).
    controls: Vec<(u32, Kind)>,
    /// One frame time at the camera's rate, and when a frame was last
    /// returned: to skip the frames the driver queued meanwhile ([`fresh`]).
    frame_time: Duration,
    last_read: Option<Instant>,
}

/// A nokhwa control as V4L2 names it. nokhwa's Linux backend maps a few V4L2
/// ids to its own names and passes the rest (ours) as `Other(id)`.
fn v4l2_control(c: &CameraControl) -> Option<(u32, Kind)> {
    let KnownCameraControl::Other(id) = c.control() else {
        return None;
    };
    let kind = match c.description() {
        ControlValueDescription::Boolean { .. } => Kind::Boolean,
        ControlValueDescription::IntegerRange { min, max, .. } => Kind::Integer {
            min: *min,
            max: *max,
        },
        _ => Kind::Other,
    };
    Some((u32::try_from(id).ok()?, kind))
}

/// The V4L2 controls among a camera's (only Linux speaks V4L2 ids).
fn v4l2_controls(controls: &[CameraControl]) -> Vec<(u32, Kind)> {
    if cfg!(target_os = "linux") {
        controls.iter().filter_map(v4l2_control).collect()
    } else {
        Vec::new()
    }
}

fn device(e: impl std::fmt::Display) -> SourceError {
    SourceError::Device(e.to_string())
}

impl CameraSource {
    /// The cameras the system knows, as (index, name).
    pub fn list() -> Result<Vec<(u32, String)>, SourceError> {
        let cams = nokhwa::query(ApiBackend::Auto).map_err(device)?;
        Ok(cams
            .iter()
            .map(|c| (c.index().as_index().unwrap_or(0), c.human_name()))
            .collect())
    }

    pub fn open_first() -> Result<Self, SourceError> {
        let first = Self::list()?.into_iter().next();
        match first {
            Some((i, _)) => Self::open_index(i),
            None => Err(SourceError::Device(
                "no camera found: connect one, or use a USB scanner or manual entry".into(),
            )),
        }
    }

    /// The first camera whose name says it looks `facing` way.
    pub fn open_facing(facing: Facing) -> Result<Self, SourceError> {
        let found = Self::list()?
            .into_iter()
            .find(|(_, n)| facing_from_name(n) == Some(facing));
        match found {
            Some((i, _)) => Self::open_index(i),
            None => Err(SourceError::Device(format!(
                "no {} camera found",
                facing.as_str()
            ))),
        }
    }

    pub fn open_named(name: &str) -> Result<Self, SourceError> {
        let found = Self::list()?.into_iter().find(|(_, n)| n == name);
        match found {
            Some((i, _)) => Self::open_index(i),
            None => Err(SourceError::Device(format!("no camera named {name:?}"))),
        }
    }

    pub fn open_index(index: u32) -> Result<Self, SourceError> {
        let format =
            RequestedFormat::new::<RgbFormat>(RequestedFormatType::AbsoluteHighestFrameRate);
        let mut camera = Camera::new(CameraIndex::Index(index), format).map_err(device)?;
        // The resolution that reads codes from farthest away at a live
        // frame rate (see `resolution`), if the camera lists its modes.
        if let Some(best) = camera
            .compatible_camera_formats()
            .ok()
            .and_then(|f| pick(&f))
        {
            let exact = RequestedFormat::new::<RgbFormat>(RequestedFormatType::Exact(best));
            if let Err(e) = camera.set_camera_requset(exact) {
                tracing::warn!("camera {index}: cannot switch to {best}: {e}");
            }
        }
        camera.open_stream().map_err(device)?;
        let res = camera.resolution();
        let description = format!(
            "camera {index} ({}, {}x{} at {} fps)",
            camera.info().human_name(),
            res.width(),
            res.height(),
            camera.frame_rate()
        );
        // A driver listing a control nokhwa cannot read fails the whole
        // list: such a camera offers no controls here.
        let controls = camera
            .camera_controls()
            .map(|c| v4l2_controls(&c))
            .unwrap_or_default();
        let frame_time = Duration::from_secs(1) / camera.frame_rate().max(1);
        Ok(Self {
            camera,
            description,
            controls,
            frame_time,
            last_read: None,
        })
    }
}

/// [`best_mode`] among the modes we can convert to RGB.
fn pick(formats: &[CameraFormat]) -> Option<CameraFormat> {
    let usable: Vec<CameraFormat> = formats
        .iter()
        .filter(|f| RgbFormat::FORMATS.contains(&f.format()))
        .copied()
        .collect();
    let modes: Vec<Mode> = usable
        .iter()
        .map(|f| Mode {
            width: f.width(),
            height: f.height(),
            fps: f.frame_rate(),
            compressed: f.format() == FrameFormat::MJPEG,
        })
        .collect();
    best_mode(&modes).map(|i| usable[i])
}

impl FrameSource for CameraSource {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        // Read seldom (power save) or slowly (a long decode), the driver's
        // ring holds old frames: take the one of now, not of 1.5 s ago.
        let camera = &mut self.camera;
        let buffer = fresh::freshest(
            || {
                let asked = Instant::now();
                let buffer = camera.frame().map_err(device)?;
                let waited = asked.elapsed();
                let now = SystemTime::now().duration_since(UNIX_EPOCH).ok();
                let age = buffer
                    .capture_timestamp()
                    .zip(now)
                    .and_then(|(captured, now)| now.checked_sub(captured));
                Ok::<_, SourceError>((buffer, Read { age, waited }))
            },
            self.frame_time,
            self.last_read.map(|t| t.elapsed()),
        )?;
        self.last_read = Some(Instant::now());
        let rgb = buffer.decode_image::<RgbFormat>().map_err(device)?;
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        Ok(Some(Frame::from_rgb(w, h, rgb.as_raw())?))
    }

    fn description(&self) -> String {
        self.description.clone()
    }

    fn controls(&self) -> CameraControls {
        v4l2::offered(&self.controls)
    }

    fn adjust(&mut self, adjust: &CameraAdjust) -> Result<(), SourceError> {
        for (id, value) in v4l2::writes(adjust, &self.controls) {
            let value = match value {
                Value::Boolean(b) => ControlValueSetter::Boolean(b),
                Value::Integer(i) => ControlValueSetter::Integer(i),
            };
            self.camera
                .set_camera_control(KnownCameraControl::Other(id.into()), value)
                .map_err(device)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use nokhwa::utils::KnownCameraControlFlag;

    use super::*;

    fn control(id: KnownCameraControl, description: ControlValueDescription) -> CameraControl {
        CameraControl::new(
            id,
            "control".into(),
            description,
            vec![KnownCameraControlFlag::Manual],
            true,
        )
    }

    /// What nokhwa's V4L2 backend hands over becomes the list the mappings read.
    #[test]
    fn nokhwa_controls_become_v4l2_ids_and_kinds() {
        let listed = [
            control(
                KnownCameraControl::Brightness,
                ControlValueDescription::IntegerRange {
                    min: 0,
                    max: 255,
                    value: 128,
                    step: 1,
                    default: 128,
                },
            ),
            control(
                KnownCameraControl::Other(v4l2::FOCUS_AUTO.into()),
                ControlValueDescription::Boolean {
                    value: true,
                    default: true,
                },
            ),
            control(
                KnownCameraControl::Other(v4l2::EXPOSURE_AUTO.into()),
                ControlValueDescription::IntegerRange {
                    min: 0,
                    max: 3,
                    value: 3,
                    step: 1,
                    default: 3,
                },
            ),
            control(
                KnownCameraControl::Other(0x0098_0990),
                ControlValueDescription::String {
                    value: "x".into(),
                    default: None,
                },
            ),
        ];
        assert_eq!(
            listed.iter().filter_map(v4l2_control).collect::<Vec<_>>(),
            [
                (v4l2::FOCUS_AUTO, Kind::Boolean),
                (v4l2::EXPOSURE_AUTO, Kind::Integer { min: 0, max: 3 }),
                (0x0098_0990, Kind::Other),
            ]
        );
        assert_eq!(
            v4l2::offered(&listed.iter().filter_map(v4l2_control).collect::<Vec<_>>()),
            CameraControls {
                torch: false,
                fixed_focus: true,
                fixed_exposure: true
            }
        );
    }
}
