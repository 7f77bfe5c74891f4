//! Android: no camera through nokhwa. Frames come from the CameraX plugin
//! (ARCHITECTURE.md, "Android"), hardware scanners' text from their broadcast
//! intents; this stand-in keeps the scan loop's "no camera" path honest.

use super::controls::Facing;
use super::{FrameSource, SourceError};
use crate::scan::Frame;

/// Never constructed on Android.
pub enum CameraSource {}

fn none() -> SourceError {
    SourceError::Device("no desktop camera on Android: frames come from the CameraX plugin".into())
}

impl CameraSource {
    pub fn list() -> Result<Vec<(u32, String)>, SourceError> {
        Ok(Vec::new())
    }

    pub fn open_first() -> Result<Self, SourceError> {
        Err(none())
    }

    pub fn open_facing(_facing: Facing) -> Result<Self, SourceError> {
        Err(none())
    }

    pub fn open_named(_name: &str) -> Result<Self, SourceError> {
        Err(none())
    }

    pub fn open_index(_index: u32) -> Result<Self, SourceError> {
        Err(none())
    }
}

impl FrameSource for CameraSource {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        match *self {}
    }

    fn description(&self) -> String {
        match *self {}
    }
}
