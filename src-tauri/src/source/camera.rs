//! A real camera through nokhwa. There is none on CI machines: opening one
//! there fails with a clear error, and the scan loop keeps retrying.

use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
};
use nokhwa::{Camera, FormatDecoder};

use super::resolution::{best_mode, Mode};
use super::{FrameSource, SourceError};
use crate::scan::Frame;

pub struct CameraSource {
    camera: Camera,
    description: String,
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
        Ok(Self {
            camera,
            description,
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
        let buffer = self.camera.frame().map_err(device)?;
        let rgb = buffer.decode_image::<RgbFormat>().map_err(device)?;
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        Ok(Some(Frame::from_rgb(w, h, rgb.as_raw())?))
    }

    fn description(&self) -> String {
        self.description.clone()
    }
}
