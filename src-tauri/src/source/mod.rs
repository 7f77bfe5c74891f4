//! Where frames come from.
//!
//! The gate app reads from a camera; tests, demos and the benchmark replay
//! image files. Both sit behind [`FrameSource`], so the decode loop cannot tell
//! them apart. USB keyboard-wedge scanners deliver text, not frames: their
//! keystrokes arrive in the web view, where `ui/kiosk/wedge.ts` tells them
//! from a person typing (tested by `ui/kiosk/wedge.test.ts`).

#[cfg(not(target_os = "android"))]
mod camera;
// Android has no nokhwa: its camera frames come from the CameraX plugin.
#[cfg(target_os = "android")]
#[path = "camera_android.rs"]
mod camera;
pub mod controls;
mod folder;
pub mod fresh;
pub mod resolution;

use std::path::PathBuf;

pub use camera::CameraSource;
pub use controls::{facing_from_name, CameraAdjust, CameraControls, Facing};
pub use folder::{image_files_in, FolderSource};

use crate::scan::{Frame, FrameError};

/// Why a source could not produce a frame.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("frame folder {0} does not exist")]
    FolderNotFound(PathBuf),
    #[error("{0} is not a folder")]
    NotAFolder(PathBuf),
    #[error("frame folder {0} holds no image files (png, jpg, jpeg, bmp)")]
    EmptyFolder(PathBuf),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot decode image {path}: {source}")]
    Image {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    /// A device source (camera) failed; the text comes from its backend.
    #[error("device error: {0}")]
    Device(String),
}

/// A stream of grayscale frames.
///
/// `next_frame` blocks until the next frame is due (a camera's frame clock, a
/// replay's frame rate). `Ok(None)` means the stream has ended for good; an
/// `Err` is about one frame and the caller may keep calling (a corrupt file
/// in a replay, a dropped camera buffer).
/// Not `Send`: a camera handle belongs to the thread that opened it, so the
/// scan loop opens its source on its own thread.
pub trait FrameSource {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError>;

    /// Human-readable description for logs and the settings screen,
    /// e.g. "folder ./frames (12 images, 30 fps, looping)".
    fn description(&self) -> String;

    /// The controls this source lets the operator change (torch, fixed
    /// focus, fixed exposure); none unless the source says otherwise.
    fn controls(&self) -> CameraControls {
        CameraControls::default()
    }

    /// Puts the source in the operator's chosen state, for the controls it
    /// offers (the rest of `adjust` does not apply to it).
    fn adjust(&mut self, _adjust: &CameraAdjust) -> Result<(), SourceError> {
        Ok(())
    }
}
