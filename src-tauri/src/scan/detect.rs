//! The thin, panic-proof wrapper around rqrr's detector.

use super::refine::GridCandidate;
use super::Frame;

/// One grid rqrr located, with its payload when rqrr's own sampling decoded it.
#[derive(Debug, Clone)]
pub(crate) struct Detection {
    pub grid: GridCandidate,
    pub payload: Option<String>,
}

/// Run rqrr's detector and decoder over a binarised frame (`bits`: one byte
/// per pixel, 1 = dark).
///
/// rqrr asserts on some malformed geometry (e.g. a timing scan with no
/// transitions); those panics are caught here and reported as "nothing found",
/// because a camera frame must never crash the gate app.
pub(crate) fn detect(frame: &Frame, bits: &[u8]) -> Vec<Detection> {
    let (w, h) = (frame.width(), frame.height());
    // rqrr needs at least a finder pattern's worth of pixels; tiny inputs are
    // legal frames with nothing in them.
    if w < 21 || h < 21 || bits.len() != w * h {
        return Vec::new();
    }
    let run = || {
        // We binarise ourselves (see `binarize`) and hand rqrr the bitmap as
        // it is (our vendored constructor: one mapping pass instead of a
        // closure call, enum conversion, push and assert per pixel).
        let mut img = rqrr::PreparedImage::prepare_from_bits(w, h, bits);
        img.detect_grids()
            .into_iter()
            .map(|g| {
                let b = g.bounds;
                let grid = GridCandidate {
                    rqrr_bounds: [
                        (b[0].x as f64, b[0].y as f64),
                        (b[1].x as f64, b[1].y as f64),
                        (b[2].x as f64, b[2].y as f64),
                        (b[3].x as f64, b[3].y as f64),
                    ],
                    size: rqrr::BitGrid::size(&g.grid),
                };
                let payload = g.decode().ok().map(|(_, s)| s).filter(|s| !s.is_empty());
                Detection { grid, payload }
            })
            .collect::<Vec<_>>()
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_default()
}
