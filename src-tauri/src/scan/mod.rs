//! QR scanning: camera frame → grayscale → rqrr (with fallbacks) → payloads.
//!
//! * [`Frame`]: the grayscale buffer every source converts to.
//! * [`Decoder`]: stateful per-camera decoder (region of interest from the
//!   last read, fallback chain, time budget, several codes per frame).
//! * [`RepeatSuppressor`]: one verdict per presentation, not one per frame.

mod binarize;
mod budget;
mod decoder;
mod detect;
mod finder;
mod frame;
pub mod geometry;
mod refine;
mod repeat;

pub use binarize::{adaptive_threshold, LocalMean};
pub use decoder::{DecodeStats, Decoded, Decoder, DecoderConfig};
pub use frame::{Frame, FrameError};
pub use repeat::RepeatSuppressor;
