//! Entrada desktop: the gate app.
//!
//! * [`scan`]: QR decoding from camera frames (rqrr plus a fallback chain).
//! * [`source`]: where frames come from (keyboard-wedge scans are told apart
//!   in the kiosk page, `ui/kiosk/wedge.ts`).
//! * [`gate`]: the gate without a window (session, scan, slots, lookup, sync status).
//! * [`camera`]: the scan loop from a frame source to verdicts.
//! * [`pacing`]: how hard the scan loop works (decode less when nothing is in view).
//! * [`clock`]: the gate's clock (the system's, or a test's).
//! * [`commands`]: the Tauri commands, one `gate` call each.
//! * [`data_dir`]: where the database goes without `--db` (XDG, or the kiosk service's folder).
//! * [`window`]: how the window meets the screen (fullscreen, maximized, a minimum).
//!
//! Everything but `commands` is plain Rust, tested and benchmarked headless.

pub mod camera;
pub mod clock;
pub mod commands;
pub mod data_dir;
pub mod device;
pub mod gate;
pub mod pacing;
pub mod scan;
pub mod source;
pub mod window;
