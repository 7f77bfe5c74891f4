//! Which capture mode the scan loop asks a camera for.
//!
//! Distance is resolution: a ticket held twice as far away shows modules
//! half as wide, and below ~2 px per module nothing reads it. So the scan
//! loop wants as many pixels as it can decode at a live frame rate, not
//! the camera's highest frame rate (often 640×480 or less, which a USB
//! camera offers at 60 fps and which reads codes only up close).
//!
//! The ceiling is 1920×1080: the pipeline decodes such a frame well within
//! one frame at 30 fps (BENCHMARKS.md, frame → durable verdict), while a
//! 4K frame costs several times that before decoding even starts (an MJPEG
//! frame must be decompressed and converted). Bigger stills (12 MP photos,
//! files) are still decoded, through the image pyramid; the folder camera
//! replays files at their own size and has no choice to make.

/// One mode a camera offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// MJPEG and the like: decompressed on our side before decoding.
    pub compressed: bool,
}

impl Mode {
    fn pixels(&self) -> u64 {
        self.width as u64 * self.height as u64
    }
}

/// Below this a code crosses the view in a few frames only.
pub const MIN_FPS: u32 = 15;

/// The most pixels per frame asked for: 1920×1080.
pub const MAX_PIXELS: u64 = 1920 * 1080;

/// The mode to capture in, as an index into `modes`: the most pixels up to
/// [`MAX_PIXELS`] at [`MIN_FPS`] or more; among those, the higher frame
/// rate, then an uncompressed one. If every mode at that frame rate is
/// bigger, the smallest of those; if none reaches it, the fastest (then
/// the biggest). `None` for an empty list.
pub fn best_mode(modes: &[Mode]) -> Option<usize> {
    let live = |m: &Mode| m.fps >= MIN_FPS;
    let key = |m: &Mode| (m.pixels(), m.fps, !m.compressed);
    let pick = |ok: &dyn Fn(&Mode) -> bool| {
        modes
            .iter()
            .enumerate()
            .filter(|(_, m)| ok(m))
            .max_by_key(|(_, m)| key(m))
            .map(|(i, _)| i)
    };
    pick(&|m| live(m) && m.pixels() <= MAX_PIXELS)
        .or_else(|| {
            modes
                .iter()
                .enumerate()
                .filter(|(_, m)| live(m))
                .min_by_key(|(_, m)| (m.pixels(), std::cmp::Reverse((m.fps, !m.compressed))))
                .map(|(i, _)| i)
        })
        .or_else(|| {
            modes
                .iter()
                .enumerate()
                .max_by_key(|(_, m)| (m.fps, m.pixels(), !m.compressed))
                .map(|(i, _)| i)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(width: u32, height: u32, fps: u32, compressed: bool) -> Mode {
        Mode {
            width,
            height,
            fps,
            compressed,
        }
    }

    #[test]
    fn picks_the_most_pixels_a_live_frame_rate_allows() {
        let webcam = [
            m(320, 240, 60, false),
            m(640, 480, 30, false),
            m(1280, 720, 10, false),
            m(1920, 1080, 5, false),
            m(1280, 720, 30, true),
            m(1920, 1080, 30, true),
        ];
        let four_k = [
            m(3840, 2160, 30, true),
            m(1920, 1080, 30, true),
            m(1920, 1080, 60, true),
            m(1280, 720, 60, false),
        ];
        let same_size = [m(1280, 720, 30, true), m(1280, 720, 30, false)];
        let only_4k = [m(4096, 2160, 30, true), m(3840, 2160, 30, true)];
        let slow = [m(640, 480, 10, false), m(1280, 720, 5, false)];
        let cases: &[(&str, &[Mode], Option<Mode>)] = &[
            // Not 320x240 at 60 fps (the highest frame rate), and not
            // 1080p at 5 fps: 1080p MJPEG at 30.
            ("usb webcam", &webcam, Some(m(1920, 1080, 30, true))),
            (
                "4k camera: 1080p, faster",
                &four_k,
                Some(m(1920, 1080, 60, true)),
            ),
            (
                "same size: uncompressed",
                &same_size,
                Some(m(1280, 720, 30, false)),
            ),
            (
                "only above the ceiling: the smallest",
                &only_4k,
                Some(m(3840, 2160, 30, true)),
            ),
            (
                "nothing live: the fastest",
                &slow,
                Some(m(640, 480, 10, false)),
            ),
            ("no modes", &[], None),
        ];
        for (name, modes, want) in cases {
            assert_eq!(best_mode(modes).map(|i| modes[i]), *want, "{name}");
        }
    }
}
