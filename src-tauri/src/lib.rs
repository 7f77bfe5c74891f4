//! Entrada desktop: the gate app's scanning side.
//!
//! * [`scan`]: QR decoding from camera frames (rqrr plus a fallback chain).
//! * [`source`]: where frames and keyboard-wedge scans come from.
//!
//! The Tauri shell and the camera backend are added on top of these later;
//! both modules are plain Rust so they can be tested and benchmarked headless.

pub mod scan;
pub mod source;
