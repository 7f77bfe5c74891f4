//! How hard the scan loop works. Decoding a 720p frame is the loop's
//! expensive part; a gate's camera looks at an empty, still view most of the
//! day. So each frame first gets a cheap look (a [`Thumb`]: a 1/8-size block
//! average, compared with the frame last decoded), and [`Pacer::decide`]
//! says whether to run the full decode:
//!
//! * something changed in view, or the last decode read a code (or could
//!   not rule one out: a grid that did not read, a decode cut short by its
//!   time budget): decode this frame (full rate returns on the very frame
//!   where something appears);
//! * within `active_ms` (3.5 s) of the last change or read: every frame;
//! * an empty, still view: one frame per `empty_every_ms` (a code that
//!   slipped in without visible change is still read within that);
//! * power save (the screen dimmed after a long idle): frames are read at
//!   most every `power_save_frame_ms`, and an empty view is decoded once per
//!   `power_save_every_ms`; a change still decodes at once.
//!
//! Pure: times are passed in, nothing reads a clock.

use crate::scan::Frame;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaceConfig {
    pub active_ms: u64,
    pub empty_every_ms: u64,
    pub power_save_every_ms: u64,
    pub power_save_frame_ms: u64,
    /// Preview frames: while something happens in view, and when it is empty.
    pub preview_active_ms: u64,
    pub preview_empty_ms: u64,
}

impl Default for PaceConfig {
    fn default() -> Self {
        Self {
            // Longer than the repeat suppressor's 3 s re-arm window: a code
            // held in view that misses a read is decoded at full rate until
            // it is read again, so pacing never makes it due a second verdict.
            active_ms: 3500,
            empty_every_ms: 1000,
            power_save_every_ms: 3000,
            power_save_frame_ms: 500,
            preview_active_ms: 250,
            preview_empty_ms: 1000,
        }
    }
}

/// What the loop knows of the scene so far (times in ms on any monotonic clock).
#[derive(Debug, Clone, Default)]
pub struct Pacer {
    config: PaceConfig,
    /// Last frame with a change in view or a code read.
    last_active: Option<u64>,
    last_decode: Option<u64>,
    last_read_found: bool,
}

impl Pacer {
    pub fn new(config: PaceConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Whether to decode the frame taken at `now_ms`, which `changed` from the
    /// last decoded one (see [`Thumb::changed_from`]).
    pub fn decide(&mut self, now_ms: u64, changed: bool, power_save: bool) -> bool {
        if changed || self.last_read_found {
            self.last_active = Some(now_ms);
        }
        let since = |t: Option<u64>| t.map_or(u64::MAX, |t| now_ms.saturating_sub(t));
        let decode = if since(self.last_active) < self.config.active_ms {
            true
        } else {
            let every = if power_save {
                self.config.power_save_every_ms
            } else {
                self.config.empty_every_ms
            };
            since(self.last_decode) >= every
        };
        if decode {
            self.last_decode = Some(now_ms);
        }
        decode
    }

    /// What the decode of the frame `decide` allowed found: a code, or
    /// something that may be one (`code_like`), or nothing.
    pub fn decoded(&mut self, code_like: bool) {
        self.last_read_found = code_like;
    }

    /// The least time between two frames read (0: as the camera delivers).
    pub fn frame_gap_ms(&self, power_save: bool) -> u64 {
        if power_save {
            self.config.power_save_frame_ms
        } else {
            0
        }
    }

    /// Time between preview frames now: often while something happens.
    pub fn preview_every_ms(&self, now_ms: u64) -> u64 {
        let active = self
            .last_active
            .is_some_and(|t| now_ms.saturating_sub(t) < self.config.active_ms);
        if active {
            self.config.preview_active_ms
        } else {
            self.config.preview_empty_ms
        }
    }
}

/// A frame at 1/8 size, each pixel the mean of (a sample of) its 8x8 block:
/// averaging cancels sensor noise, so a still scene compares equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumb {
    width: usize,
    height: usize,
    luma: Vec<u8>,
}

/// Block size of a [`Thumb`]; within a block every other pixel of every
/// other row is sampled (16 of 64), a quarter of the reads.
const BLOCK: usize = 8;
/// A thumb pixel differs when its mean moved by more than this.
const PIXEL_DELTA: u8 = 10;
/// A frame changed when at least 1/this of its thumb pixels differ (0.4 %):
/// a ticket held up covers far more; noise and compression flicker far less.
const CHANGED_SHARE: usize = 250;

impl Thumb {
    pub fn of(frame: &Frame) -> Self {
        let (w, h) = (frame.width() / BLOCK, frame.height() / BLOCK);
        let src = frame.luma();
        let stride = frame.width();
        let mut luma = Vec::with_capacity(w * h);
        for by in 0..h {
            for bx in 0..w {
                let mut sum = 0u32;
                for y in (by * BLOCK..(by + 1) * BLOCK).step_by(2) {
                    let row = &src[y * stride + bx * BLOCK..y * stride + (bx + 1) * BLOCK];
                    sum += row.iter().step_by(2).map(|&p| p as u32).sum::<u32>();
                }
                luma.push((sum / (BLOCK * BLOCK / 4) as u32) as u8);
            }
        }
        Self {
            width: w,
            height: h,
            luma,
        }
    }

    /// Whether the scene moved from `before`'s: another size, or enough
    /// blocks whose brightness changed.
    pub fn changed_from(&self, before: &Thumb) -> bool {
        if (self.width, self.height) != (before.width, before.height) {
            return true;
        }
        let differing = self
            .luma
            .iter()
            .zip(&before.luma)
            .filter(|(a, b)| a.abs_diff(**b) > PIXEL_DELTA)
            .count();
        differing * CHANGED_SHARE >= self.luma.len().max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (name, power save, frames as (time, changed, decode found a code), expected decodes)
    type Case = (
        &'static str,
        bool,
        &'static [(u64, bool, bool)],
        &'static [bool],
    );

    #[test]
    fn when_the_loop_decodes() {
        const CASES: &[Case] = &[
            (
                "the first frame is a change: decoded",
                false,
                &[(0, true, false)],
                &[true],
            ),
            (
                "an empty still view: full rate for 3.5 s, then one decode a second",
                false,
                &[
                    (0, true, false),
                    (100, false, false),
                    (3400, false, false),
                    (3500, false, false),
                    (3600, false, false),
                    (4400, false, false),
                    (4500, false, false),
                    (4600, false, false),
                    (5300, false, false),
                    (5400, false, false),
                ],
                // The last full-rate decode was at 3400: next at 4400, then 5400.
                &[
                    true, true, true, false, false, true, false, false, false, true,
                ],
            ),
            (
                "something appears in a quiet view: decoded on that very frame, then every frame",
                false,
                &[
                    (0, true, false),
                    (5000, false, false),
                    (5100, false, false),
                    (5200, true, false),
                    (5300, false, false),
                    (5400, false, false),
                ],
                &[true, true, false, true, true, true],
            ),
            (
                "a code held still is read on every frame (the repeat suppressor must see it stay)",
                false,
                &[
                    (0, true, true),
                    (3000, false, true),
                    (3100, false, true),
                    (9000, false, true),
                    (9100, false, false),
                ],
                &[true, true, true, true, true],
            ),
            (
                "a decode that could not rule a code out is tried again on the next frame",
                false,
                &[
                    (0, true, false),
                    (5000, false, false),
                    (6000, false, true),
                    (6100, false, true),
                    (9000, false, true),
                    (9100, false, false),
                    (9200, false, false),
                ],
                &[true, true, true, true, true, true, true],
            ),
            (
                "the code goes: full rate for 3.5 s more, then quiet",
                false,
                &[
                    (0, true, true),
                    (100, false, false),
                    (200, false, false),
                    (3550, false, false),
                    (3650, false, false),
                    (3700, false, false),
                ],
                // The frame at 100 still counts: the one before it held a code.
                &[true, true, true, true, false, false],
            ),
            (
                "power save: an empty view decoded once per 3 s",
                true,
                &[
                    (0, true, false),
                    (3500, false, false),
                    (3600, false, false),
                    (5000, false, false),
                    (6500, false, false),
                    (6600, false, false),
                ],
                // 3500: the active window has passed and 3 s since the last decode.
                &[true, true, false, false, true, false],
            ),
            (
                "power save: a change is still decoded at once",
                true,
                &[
                    (0, true, false),
                    (4000, false, false),
                    (5000, false, false),
                    (5100, true, false),
                ],
                &[true, true, false, true],
            ),
        ];
        for (name, power_save, frames, expected) in CASES {
            let mut pacer = Pacer::new(PaceConfig::default());
            let got: Vec<bool> = frames
                .iter()
                .map(|&(t, changed, found)| {
                    let d = pacer.decide(t, changed, *power_save);
                    if d {
                        pacer.decoded(found);
                    }
                    d
                })
                .collect();
            assert_eq!(&got, expected, "{name}");
        }
    }

    #[test]
    fn frame_gap_and_preview_rate() {
        let mut pacer = Pacer::new(PaceConfig::default());
        assert_eq!(
            (pacer.frame_gap_ms(false), pacer.frame_gap_ms(true)),
            (0, 500)
        );
        // Nothing seen yet: the slow preview.
        assert_eq!(pacer.preview_every_ms(0), 1000);
        pacer.decide(1000, true, false);
        assert_eq!(pacer.preview_every_ms(1500), 250);
        assert_eq!(pacer.preview_every_ms(4500), 1000);
    }

    /// A grey scene with a deterministic noise of ±`noise`, and optionally a
    /// `square` (x, y, size) of black and white modules, like a ticket.
    fn scene(noise: u8, seed: u32, square: Option<(usize, usize, usize)>) -> Frame {
        let (w, h) = (1280, 720);
        let mut rng = seed.wrapping_mul(2654435761).max(1);
        let mut luma = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                rng ^= rng << 13;
                rng ^= rng >> 17;
                rng ^= rng << 5;
                let n = (rng % (2 * noise as u32 + 1)) as i32 - noise as i32;
                let mut v = 60 + (x * 100 / w) as i32 + n;
                if let Some((sx, sy, size)) = square {
                    if (sx..sx + size).contains(&x) && (sy..sy + size).contains(&y) {
                        v = if ((x - sx) / 12 + (y - sy) / 12) % 2 == 0 {
                            10
                        } else {
                            245
                        };
                    }
                }
                luma.push(v.clamp(0, 255) as u8);
            }
        }
        Frame::from_luma(w, h, luma).unwrap()
    }

    #[test]
    fn what_counts_as_a_change_in_view() {
        let quiet = Thumb::of(&scene(12, 1, None));
        assert_eq!((quiet.width, quiet.height), (160, 90));
        let cases: &[(&str, Frame, bool)] = &[
            (
                "the same scene, other sensor noise",
                scene(12, 2, None),
                false,
            ),
            (
                "a ticket held up (150 px)",
                scene(12, 3, Some((500, 300, 150))),
                true,
            ),
            (
                "a small code at the edge (96 px)",
                scene(12, 4, Some((0, 0, 96))),
                true,
            ),
            (
                "another resolution",
                Frame::from_luma(640, 480, vec![100; 640 * 480]).unwrap(),
                true,
            ),
        ];
        for (name, frame, changed) in cases {
            assert_eq!(Thumb::of(frame).changed_from(&quiet), *changed, "{name}");
        }
    }
}
