//! The frame → payloads pipeline.
//!
//! Order of attempts, cheapest first; each later one runs only when the
//! earlier ones left something unexplained and the frame's time budget
//! allows:
//!
//! 0. **Region of interest**: where codes were in the last frames. A code
//!    held up to the camera stays put for many frames; the crop around it
//!    goes through stages 1–3 in a fraction of the full-frame time.
//! 1. **Adaptive threshold + our finder patterns** (integral-image local
//!    mean, wide window, then a narrow one; zxing-style 1:1:3:1:1 scan;
//!    grouping; grid fit refined on the grayscale image; rqrr's Reed–Solomon
//!    decoder). ~5 ms at 720p and reads most codes. Done if every solid
//!    finder pattern belongs to a read code; also done, empty-handed, if
//!    there is no finder-like pattern at all.
//! 2. **rqrr's detector** on the adaptive bitmap. Grids rqrr locates but
//!    cannot error-correct are re-sampled in grayscale ([`super::refine`]).
//! 3. **Crop and upscale** each grid or finder triple located but not read,
//!    so 2–4 px modules become ~6 px, then stages 1–2 on the crop.
//!
//! Frames up to 1080p are searched at full resolution: downscaling halves
//! the time but also the read rate on 720p, where codes held at arm's
//! length are only 2–4 px per module. Bigger frames (4K, 12 MP stills) go
//! through an **image pyramid**: stages 1–2 look for finder patterns on a
//! box-filtered copy of at most ~3 MP, and the codes they locate are
//! sampled on the full frame; finder patterns no code explains get a
//! full-resolution crop each. When the coarse level shows no finder-like
//! pattern in either polarity, stage 1 runs once on the full-resolution
//! frame per polarity while the budget lasts (the smallest modules vanish
//! on the coarse level), so an empty big frame costs about 3× its coarse
//! level; above the size where the budget stops growing (6 × 1080p,
//! ~12.4 MP) that pass is skipped, as the deadline cannot cut it short.
//! The dear whole-frame fallbacks never run at full resolution.
//!
//! When stage 1 read nothing, stage 1 runs on the frame's **negative**
//! before any fallback: light-on-dark codes (dark-mode wallets, watches,
//! OLED screens) get their share of the budget, and a frame whose code
//! stage 1 read never pays for it. The **polarity probe** looks earlier
//! still: after the first bitmap of the polarity searched first, the other
//! polarity's strict bitmap, from the same local means, is scanned for
//! finder patterns; three solid ones hand the frame to the other polarity
//! at once (see [`Stage1::Flip`]). A frame that read nothing and ran out of
//! time hands the next frame the other polarity first. A negative whose
//! bitmaps keep only two solid finder patterns (an OLED screen's glow
//! breaks the third) gets the third predicted from the two (stage 1e)
//! before rqrr's detector, which takes half the budget of a 720p frame.
//!
//! The **budget** ([`super::budget`]) counts the decoding thread's CPU
//! time, with a wall-clock cap of [`super::budget::WALL_CAP`] (4) × the
//! budget: on a loaded machine a frame gets the same work, and so the same
//! reads, as on a quiet one, as long as the thread gets more than a quarter
//! of a core. The trade-off: under load a 1080p frame may take up to
//! 100 ms of wall time (4 × 25 ms), and a code shown meanwhile waits for it.
//!
//! Every answer passes Reed–Solomon error correction; the fallbacks only
//! change *where* and *how* modules are sampled, never what counts as a read.

use std::cell::OnceCell;
use std::time::Duration;

use super::binarize::{LocalMean, RowBits};
use super::budget::Deadline;
use super::detect::{detect, Detection};
use super::finder::{
    find_finders_in, find_finders_min, group, merge_finders, Finder, Triple, MIN_CONFIRMATIONS,
    MIN_MODULE_PX,
};
use super::refine::{decode_from_finders, decode_from_finders_within, refine_and_decode};
use super::Frame;

/// One code read from a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub payload: String,
    /// Corners of the code in frame pixels: top-left, top-right,
    /// bottom-right, bottom-left *in the code's own orientation*.
    pub bounds: [(i32, i32); 4],
}

/// Tuning knobs; the defaults are what the benchmark was run with.
#[derive(Debug, Clone)]
pub struct DecoderConfig {
    /// No new fallback stage starts once the decoding thread has spent this
    /// much CPU time on a frame, or four times as much wall
    /// time (see [`super::budget`]: the budget bounds the work per frame so
    /// that a 30 fps stream keeps up; time descheduled is not the decoder's
    /// work). A stage already running finishes, so the worst case is budget
    /// plus one stage. At 30 fps a frame arrives every 33 ms. This is the
    /// budget of a frame up to 1080p; bigger frames get it in proportion to
    /// their pixel count (see [`frame_budget`]).
    pub time_budget: Duration,
    /// For how many frames without a read the last code locations are still
    /// tried first.
    pub roi_frames: u32,
    /// How much context to crop around a remembered code, as a fraction of
    /// its size on each side (codes move a little between frames).
    pub roi_margin: f64,
    /// At most this many undecoded grids are cropped and upscaled per frame.
    pub max_upscaled_regions: usize,
    /// Upscale so that a module spans about this many pixels.
    pub target_module_px: f64,
    /// At most this many finder-pattern triples are tried per call of the
    /// triple search: per bitmap, and again per merged list (stage 1's 1b,
    /// 1c and 1d, and stage 2b, each merge once), so a working image may
    /// get several times this many.
    pub max_finder_attempts: usize,
    /// After the first bitmap of a frame that read nothing, look for the
    /// other polarity's finder patterns in the same local means (see
    /// [`Stage1::Flip`]). Off only to measure what it costs.
    pub polarity_probe: bool,
    /// Stage 1e: a negative with exactly two solid finder patterns gets
    /// the third predicted. Off only to measure what it costs.
    pub predict_third: bool,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            time_budget: Duration::from_millis(25),
            roi_frames: 10,
            roi_margin: 0.6,
            max_upscaled_regions: 4,
            target_module_px: 6.0,
            max_finder_attempts: 6,
            polarity_probe: true,
            predict_third: true,
        }
    }
}

/// What happened in the last [`Decoder::decode`] call (diagnostics for the
/// benchmark and logs; not needed to use the decoder).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// The codes came from the remembered region, the full frame was skipped.
    pub roi_hit: bool,
    /// Stages run on the full frame: 0 (ROI hit) to 3.
    pub stages: u8,
    /// Grids rqrr located (all stages, duplicates included).
    pub grids: usize,
    /// Codes that needed our grayscale re-sampling of an rqrr grid.
    pub resampled: usize,
    /// Codes found through our own finder-pattern grouping.
    pub from_finders: usize,
    /// Finder-pattern triples sampled and decoded (all stages and images).
    pub triples: usize,
    /// Of the codes from finder patterns, those whose triple only a merged
    /// list of several bitmaps' finder patterns made (`merge_and_try`).
    pub from_merged: usize,
    /// Codes read from two finder patterns and a third predicted from them
    /// (a negative whose bitmaps kept only two solid patterns).
    pub from_predicted: usize,
    /// Predicted third finder patterns attempted (stage 1e): at most
    /// [`MAX_PREDICTED`] a frame.
    pub predicted: usize,
    /// Regions that were cropped and upscaled.
    pub upscaled: usize,
    /// The time budget ran out before every fallback was tried on something
    /// code-like (finder candidates were seen).
    pub out_of_time: bool,
    /// Nothing was read and the budget was spent, so some pass (the
    /// negative, a finer pyramid level, a threshold window) may have been
    /// skipped: the frame is no proof that no code is in view. Unlike
    /// `out_of_time` it holds for slow empty frames too, so it keeps the
    /// repeat filter from re-arming, not the scan loop at full rate.
    pub incomplete: bool,
    /// The frame's negative was searched (nothing dark-on-light was read).
    pub negative: bool,
    /// Downscale factor of the last image-pyramid level searched: 1 = full
    /// resolution (also for frames too small for a pyramid), 2 = half…
    pub pyramid: usize,
    /// The first polarity's first bitmap showed the other polarity's finder
    /// patterns, and the other polarity was searched first.
    pub flipped: bool,
    /// Stage 1 ran on the whole full-resolution frame of a pyramid (its
    /// coarse level showed nothing in either polarity).
    pub full_res_stage1: bool,
}

/// Decodes QR codes from a stream of frames, remembering where the last
/// codes were. Use one `Decoder` per camera.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    config: DecoderConfig,
    /// Corners (frame pixels) of the codes read most recently, and whether
    /// each was light on dark.
    recent: Vec<([(f64, f64); 4], bool)>,
    frames_since_read: u32,
    /// Search the negative before the frame itself: the last frame read
    /// nothing and ran out of time, so the polarity it searched second may
    /// never have been reached. Polarity alternates across such frames, so
    /// on a slow machine (or a debug build) each gets its turn.
    negative_first: bool,
    stats: DecodeStats,
    /// Stage 1's wide bitmaps, for the next frame's: a frame of the same
    /// size thresholds into one of these instead of allocating and zeroing
    /// w × h bytes (every byte is written; see [`BitmapPool`]).
    bitmaps: BitmapPool,
}

/// Bitmaps handed back by stage 1 when it did not keep its wide bitmap
/// (nothing pending for stages 2–3), at most [`BitmapPool::KEEP`] of them:
/// one a polarity.
#[derive(Clone, Default)]
struct BitmapPool(Vec<Vec<u8>>);

impl BitmapPool {
    const KEEP: usize = 2;

    fn take(&mut self) -> Vec<u8> {
        self.0.pop().unwrap_or_default()
    }

    fn give(&mut self, bits: Vec<u8>) {
        if self.0.len() < Self::KEEP {
            self.0.push(bits);
        }
    }
}

impl std::fmt::Debug for BitmapPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BitmapPool({} kept)", self.0.len())
    }
}

/// Where a (cropped, scaled) working image sits in the original frame.
#[derive(Debug, Clone, Copy)]
struct Placement {
    ox: f64,
    oy: f64,
    scale: f64,
}

impl Placement {
    const IDENTITY: Placement = Placement {
        ox: 0.0,
        oy: 0.0,
        scale: 1.0,
    };

    fn to_frame(self, p: (f64, f64)) -> (f64, f64) {
        (p.0 / self.scale + self.ox, p.1 / self.scale + self.oy)
    }

    /// Placement of a sub-image cropped at (x, y) and scaled by `scale`.
    fn child(self, x: usize, y: usize, scale: f64) -> Placement {
        Placement {
            ox: self.ox + x as f64 / self.scale,
            oy: self.oy + y as f64 / self.scale,
            scale: self.scale * scale,
        }
    }
}

/// Corners of a code in frame pixels.
type Corners = [(f64, f64); 4];

/// Codes read so far in this frame, each with whether it was read on the
/// negative (a light-on-dark code).
#[derive(Default)]
struct Found {
    codes: Vec<(String, Corners, bool)>,
    /// The image being searched now is the frame's negative.
    negative: bool,
}

impl Found {
    fn add(&mut self, payload: String, corners: [(f64, f64); 4]) -> bool {
        // Several stages see the same code; one code, one result.
        if self.codes.iter().any(|(p, _, _)| *p == payload) {
            return false;
        }
        self.codes.push((payload, corners, self.negative));
        true
    }

    /// Whether a point (frame pixels) lies within the bounding box of a code
    /// already read: a grid there is that code again, not worth re-sampling.
    fn covers(&self, p: (f64, f64)) -> bool {
        self.codes.iter().any(|(_, c, _)| {
            let (x0, y0, x1, y1) = bbox(c);
            p.0 >= x0 && p.0 <= x1 && p.1 >= y0 && p.1 <= y1
        })
    }
}

fn bbox(c: &[(f64, f64); 4]) -> (f64, f64, f64, f64) {
    let xs = c.iter().map(|p| p.0);
    let ys = c.iter().map(|p| p.1);
    (
        xs.clone().fold(f64::INFINITY, f64::min),
        ys.clone().fold(f64::INFINITY, f64::min),
        xs.fold(f64::NEG_INFINITY, f64::max),
        ys.fold(f64::NEG_INFINITY, f64::max),
    )
}

fn centre(c: &[(f64, f64); 4]) -> (f64, f64) {
    (
        c.iter().map(|p| p.0).sum::<f64>() / 4.0,
        c.iter().map(|p| p.1).sum::<f64>() / 4.0,
    )
}

/// Integer crop rectangle around corners, `margin` × size on each side,
/// clamped to a `w` × `h` image. `None` if nothing of it is inside.
fn crop_rect(
    c: &[(f64, f64); 4],
    margin: f64,
    w: usize,
    h: usize,
) -> Option<(usize, usize, usize, usize)> {
    let (x0, y0, x1, y1) = bbox(c);
    if !(x0.is_finite() && y0.is_finite() && x1.is_finite() && y1.is_finite()) {
        return None;
    }
    let mx = (x1 - x0) * margin + 4.0;
    let my = (y1 - y0) * margin + 4.0;
    let cx0 = (x0 - mx).floor().max(0.0) as usize;
    let cy0 = (y0 - my).floor().max(0.0) as usize;
    let cx1 = ((x1 + mx).ceil().max(0.0) as usize).min(w);
    let cy1 = ((y1 + my).ceil().max(0.0) as usize).min(h);
    (cx1 > cx0 + 20 && cy1 > cy0 + 20).then_some((cx0, cy0, cx1, cy1))
}

impl Decoder {
    pub fn new(config: DecoderConfig) -> Self {
        Decoder {
            config,
            ..Decoder::default()
        }
    }

    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Diagnostics of the last `decode` call.
    pub fn last_stats(&self) -> &DecodeStats {
        &self.stats
    }

    /// Forget remembered code locations (e.g. when the camera changes).
    pub fn reset(&mut self) {
        self.recent.clear();
        self.frames_since_read = 0;
        self.negative_first = false;
    }

    /// Read every QR code in `frame`. Never panics, whatever the pixels.
    pub fn decode(&mut self, frame: &Frame) -> Vec<Decoded> {
        let deadline = Deadline::start(frame_budget(
            self.config.time_budget,
            frame.width(),
            frame.height(),
        ));
        self.stats = DecodeStats::default();
        let mut found = Found::default();
        if frame.is_empty() {
            return Vec::new();
        }

        let mut done = false;
        if !self.recent.is_empty() && self.frames_since_read <= self.config.roi_frames {
            let recent = self.recent.clone();
            let mut all_seen = true;
            for (corners, negative) in &recent {
                let before = found.codes.len();
                if let Some((x0, y0, x1, y1)) = crop_rect(
                    corners,
                    self.config.roi_margin,
                    frame.width(),
                    frame.height(),
                ) {
                    let mut crop = frame.crop(x0, y0, x1, y1);
                    if *negative {
                        crop = crop.inverted();
                    }
                    found.negative = *negative;
                    let place = Placement::IDENTITY.child(x0, y0, 1.0);
                    self.chain(&crop, None, place, deadline, &mut found, true, None);
                }
                all_seen &= found.codes.len() > before || found.covers(centre(corners));
            }
            // Every remembered code is still there: the rest of the frame
            // very probably holds nothing new, and the full scan is the
            // expensive part.
            done = all_seen && !found.codes.is_empty();
            self.stats.roi_hit = done;
        }
        if !done {
            self.stats.stages = 0;
            found.negative = false;
            self.search(frame, deadline, &mut found);
            // Nothing read and the budget spent: some pass (the other
            // polarity, a finer pyramid level, a threshold window) may have
            // been skipped, so the frame is not proof that no code is there
            // (the repeat filter and the pacer must not take it as an empty
            // view), and the next frame starts with the other polarity.
            if found.codes.is_empty() && deadline.passed() {
                self.stats.incomplete = true;
                self.negative_first = !self.negative_first;
            }
        }

        if found.codes.is_empty() {
            self.frames_since_read = self.frames_since_read.saturating_add(1);
            if self.frames_since_read > self.config.roi_frames {
                self.recent.clear();
            }
        } else {
            self.frames_since_read = 0;
            self.negative_first = false;
            self.recent = found.codes.iter().map(|(_, c, neg)| (*c, *neg)).collect();
        }
        found
            .codes
            .into_iter()
            .map(|(payload, c, _)| Decoded {
                payload,
                bounds: c.map(|(x, y)| (x.round() as i32, y.round() as i32)),
            })
            .collect()
    }

    /// Window radius of the adaptive threshold. It must be wider than a
    /// finder pattern (7 modules) so the pattern's 3x3 dark centre stays
    /// below the local mean.
    fn adaptive_radius((w, h): (usize, usize), module_px: Option<f64>) -> usize {
        match module_px {
            Some(m) => (m * 5.0) as usize,
            None => w.max(h) / 20,
        }
        .clamp(6, 80)
    }

    /// A code cropped to its edge (a screenshot, a tight crop) fills the
    /// frame: its finder patterns are a third of the frame wide, and both
    /// windows above would hollow out their 3x3 centres. Small frames get
    /// a window of half the frame as well.
    fn fill_radius((w, h): (usize, usize)) -> Option<usize> {
        (w.max(h) <= SMALL_FRAME_SIDE).then(|| (w.min(h) / 2).max(6))
    }

    /// The narrow window: about 6 modules of a small (4 px) code at 720p.
    fn narrow_radius((w, h): (usize, usize)) -> usize {
        (w.max(h) / 48).clamp(6, 40)
    }

    /// The whole frame and its negative, on an image pyramid when it is big:
    /// finder patterns are looked for on a `k`-times smaller copy, codes
    /// are sampled at full resolution.
    ///
    /// Cheapest first across both polarities: stage 1 of the polarity
    /// expected first, stage 1 of the other one (only if nothing was read),
    /// then the fallbacks of each. The negative so gets its share of the
    /// budget before the dear fallbacks of the positive take it all, and a
    /// frame whose stage 1 read its code never pays for the negative.
    ///
    /// Full-resolution crops follow for a polarity whose coarse level
    /// showed finder-like patterns, while nothing was read and time is
    /// left; when neither polarity's coarse level showed any, stage 1 runs
    /// on the full-resolution frame (not above ~12.4 MP, see
    /// [`full_res_beyond_budget`]): an empty 4K or 12 MP frame costs about
    /// 3× its coarse level.
    fn search(&mut self, frame: &Frame, deadline: Deadline, found: &mut Found) {
        let top = pyramid_factor(frame.width(), frame.height());
        self.stats.pyramid = top;
        let small = (top > 1).then(|| frame.downscaled(top));
        // The negatives are made only when their pixels are read: stage 1
        // thresholds the negative from the frame's own local means (see
        // `Shared`) and samples it only for a triple, so a frame whose
        // negative shows no finder pattern (most empty frames) never makes
        // it (a pass over the pixels and, on a 12 MP frame, 12 MB of fresh
        // pages).
        let inverted: OnceCell<Frame> = OnceCell::new();
        let small_inverted: OnceCell<Frame> = OnceCell::new();
        let negative = Img::Negative(frame, &inverted);
        let small_negative = small.as_ref().map(|s| Img::Negative(s, &small_inverted));
        // The working image and detection image of a polarity.
        let images = |neg: bool| {
            if neg {
                (negative, small_negative)
            } else {
                (Img::Ready(frame), small.as_ref().map(Img::Ready))
            }
        };
        let order = if self.negative_first {
            [true, false]
        } else {
            [false, true]
        };
        let mut pending: [Option<Pending>; 2] = [None, None];
        let mut shared = Shared {
            positive: small.as_ref().unwrap_or(frame),
            means: None,
            strict: [None, None],
        };
        // Finder patterns of the coarse level, per polarity.
        let mut candidates: [Option<Vec<Finder>>; 2] = [None, None];
        // (polarity, whether its stage 1 may hand over to the other one
        // after its first bitmap: see `Stage1::Flip`).
        let mut queue: Vec<(bool, bool)> = vec![(order[0], true), (order[1], false)];
        // (polarity, the triples a flip attempted on its image and the
        // regions of those that failed).
        let mut flip_tried: Option<(bool, Tried, Vec<Region>)> = None;
        let mut i = 0;
        while i < queue.len() {
            let (neg, may_flip) = queue[i];
            i += 1;
            if i > 1 && (!found.codes.is_empty() || deadline.passed()) {
                break;
            }
            self.stats.negative |= neg;
            found.negative = neg;
            let (img, coarse) = images(neg);
            let coarse = coarse.map(|s| (s, top));
            let flip = may_flip && self.config.polarity_probe;
            // The triples a flip attempted on this image (below) are not
            // attempted again by its stage 1; the ones that failed go into
            // its `failed`, for the upscale (stage 3).
            let attempted = match flip_tried.take() {
                Some((n, t, f)) if n == neg => (t, f),
                other => {
                    flip_tried = other;
                    (Tried::default(), Vec::new())
                }
            };
            match self.stage1(
                img,
                coarse,
                Placement::IDENTITY,
                deadline,
                found,
                None,
                flip,
                attempted,
                Some(&mut shared),
            ) {
                Stage1::Nothing | Stage1::Done => {}
                Stage1::Pending(p) => {
                    if top > 1 && solid_count(&p.finders) > 0 {
                        // A big frame's solid finder patterns are looked at
                        // in full-resolution crops right away, before the
                        // other polarity and before the coarse level's
                        // fallbacks: a few 200–400 px crops cost less than
                        // one more pass over a 2–3 MP level, and the
                        // smallest modules (1.5–1.75 px on the coarse
                        // level) are only sampled well at full resolution
                        // (issue 18: 12 MP 1/6, 4K 0/6).
                        self.stats.pyramid = 1;
                        self.around(img.get(), p.finders.clone(), deadline, found);
                    } else {
                        candidates[neg as usize] = Some(p.finders.clone());
                    }
                    pending[neg as usize] = Some(p);
                }
                Stage1::Flip(other) => {
                    // The other polarity's finder patterns are already
                    // there (its strict bitmap, 1d): their triples first,
                    // sampled on its image; then its stage 1 in full and
                    // this one's again, if that read nothing.
                    self.stats.flipped = true;
                    self.stats.negative = true;
                    found.negative = !neg;
                    let oimg = images(!neg).0;
                    let mut failed = Vec::new();
                    let place = Placement::IDENTITY;
                    let mut tried = Tried::default();
                    self.try_triples(
                        oimg,
                        &other,
                        place,
                        deadline,
                        found,
                        &mut failed,
                        &mut tried,
                    );
                    flip_tried = Some((!neg, tried, failed));
                    queue.truncate(i);
                    queue.push((!neg, false));
                    queue.push((neg, false));
                }
            }
        }
        // Neither polarity showed a finder-like pattern (on a pyramid: on
        // its coarse level).
        let nothing_seen = pending.iter().all(Option::is_none) && !self.stats.flipped;
        // The fallbacks (and the full-resolution crops of a pyramid) go to
        // the polarity with more solid finder patterns first: a light-on-dark
        // code leaves its three in the negative and texture in the frame
        // itself, whose dear fallbacks spent the budget before the
        // negative's got their turn (issue 18: inverted 4/6).
        let solid = |neg: bool| {
            pending[neg as usize]
                .as_ref()
                .map_or(0, |p| solid_count(&p.finders))
        };
        let order = if solid(order[1]) > solid(order[0]) {
            [order[1], order[0]]
        } else {
            order
        };
        for neg in order {
            let Some(p) = pending[neg as usize].take() else {
                continue;
            };
            // The other polarity read the code, or codes read since explain
            // every solid finder pattern: nothing left to look for.
            if found.codes.iter().any(|c| c.2 != neg)
                || (!found.codes.is_empty()
                    && p.finders
                        .iter()
                        .all(|f| f.count < 3 || found.covers((f.x, f.y))))
            {
                continue;
            }
            found.negative = neg;
            let (img, coarse) = images(neg);
            let coarse = coarse.map(|s| (s, top));
            self.fallbacks(
                img.get(),
                coarse.map(|(s, k)| (s.get(), k)),
                Placement::IDENTITY,
                deadline,
                found,
                true,
                None,
                p,
            );
        }
        // Finder-like patterns on the coarse level that no code explains:
        // look at full resolution around each, not at the whole frame.
        if top > 1 {
            for neg in order {
                if !found.codes.is_empty() || deadline.passed() {
                    break;
                }
                let Some(finders) = candidates[neg as usize].take() else {
                    continue;
                };
                self.stats.pyramid = 1;
                found.negative = neg;
                self.around(images(neg).0.get(), finders, deadline, found);
            }
            // Not one finder-like pattern on the coarse level, in either
            // polarity: the smallest modules (3 px in a 4K frame, 3.5 px in
            // a blurred 12 MP photo) are 1.5–1.75 px there, and blur and
            // the box filter leave no 1:1:3:1:1 run of them. Stage 1 at
            // full resolution, once per polarity while the (size-scaled)
            // budget lasts, and full-resolution crops around what it finds
            // instead of the dear whole-frame fallbacks. An empty big frame
            // pays this too (about 3× its coarse level; zxing-cpp spends
            // longer on it).
            //
            // Not above the size where the budget stops growing: a pass over
            // the full frame is not interrupted by the deadline, and on a
            // 48 MP frame it would take several times the (capped) budget.
            if nothing_seen && !full_res_beyond_budget(frame.width(), frame.height()) {
                for neg in order {
                    if !found.codes.is_empty() || deadline.passed() {
                        break;
                    }
                    found.negative = neg;
                    self.stats.negative |= neg;
                    // Stage 1 without shared means reads the pixels.
                    let img = images(neg).0.get();
                    self.stats.pyramid = 1;
                    self.stats.full_res_stage1 = true;
                    let place = Placement::IDENTITY;
                    if let Stage1::Pending(p) = self.stage1(
                        img,
                        None,
                        place,
                        deadline,
                        found,
                        None,
                        false,
                        (Tried::default(), Vec::new()),
                        None,
                    ) {
                        self.around(img, p.finders, deadline, found);
                    }
                }
            }
        }
    }

    /// Full-resolution crops around finder patterns a coarse pyramid level
    /// found (in `img` pixels), strongest first, each searched as a small
    /// frame. A crop reaches [`AROUND_MODULES`] modules from its finder
    /// pattern: a code up to version 9 whichever corner it is, and most of a
    /// bigger one, whose other finders the crop then shows.
    fn around(
        &mut self,
        img: &Frame,
        mut finders: Vec<Finder>,
        deadline: Deadline,
        found: &mut Found,
    ) {
        finders.sort_by_key(|f| std::cmp::Reverse(f.count));
        let mut crops: Vec<(f64, f64, f64)> = Vec::new();
        for f in finders {
            let late = deadline.passed();
            if crops.len() >= self.config.max_upscaled_regions || late {
                self.stats.out_of_time |= late;
                break;
            }
            let covered = found.covers((f.x, f.y))
                || crops
                    .iter()
                    .any(|&(x, y, r)| (f.x - x).abs() < r / 2.0 && (f.y - y).abs() < r / 2.0);
            if covered || !(f.module.is_finite() && f.module > 0.0) {
                continue;
            }
            let Some((r, [x0, y0, x1, y1])) = around_rect(&f, img.width(), img.height()) else {
                continue;
            };
            crops.push((f.x, f.y, r));
            let crop = img.crop(x0, y0, x1, y1);
            let place = Placement::IDENTITY.child(x0, y0, 1.0);
            self.chain(&crop, None, place, deadline, found, true, Some(f.module));
        }
    }

    /// Stages 1–3 on one working image. `module_px` is known for upscaled
    /// crops and sizes the adaptive window. `coarse`: look for the code on
    /// this `k`-times smaller copy of `img`, decode it on `img`.
    #[allow(clippy::too_many_arguments)]
    fn chain(
        &mut self,
        img: &Frame,
        coarse: Option<(&Frame, usize)>,
        place: Placement,
        deadline: Deadline,
        found: &mut Found,
        allow_upscale: bool,
        module_px: Option<f64>,
    ) {
        if let Stage1::Pending(p) = self.stage1(
            img,
            coarse.map(|(s, k)| (Img::Ready(s), k)),
            place,
            deadline,
            found,
            module_px,
            false,
            (Tried::default(), Vec::new()),
            None,
        ) {
            self.fallbacks(
                img,
                coarse,
                place,
                deadline,
                found,
                allow_upscale,
                module_px,
                p,
            );
        }
    }

    /// `stage1`'s result, its wide bitmap (not kept: nothing pending)
    /// handed to the pool for the next frame.
    fn recycle(&mut self, abits: Vec<u8>, result: Stage1) -> Stage1 {
        self.bitmaps.give(abits);
        result
    }

    /// Stage 1: adaptive bitmaps, our finder patterns, grid fit. Cheap
    /// (~5 ms at 720p) and reads most codes.
    /// `flip`: after the first bitmap, check whether the other polarity
    /// holds the code (see [`Stage1::Flip`]). `attempted`: the triples
    /// already attempted on `img` (not attempted again) and the regions of
    /// those that failed (kept for the upscale).
    #[allow(clippy::too_many_arguments)]
    fn stage1<'i>(
        &mut self,
        img: impl Into<Img<'i>>,
        coarse: Option<(Img<'i>, usize)>,
        place: Placement,
        deadline: Deadline,
        found: &mut Found,
        module_px: Option<f64>,
        flip: bool,
        attempted: (Tried, Vec<Region>),
        shared: Option<&mut Shared>,
    ) -> Stage1 {
        let img = img.into();
        let before = found.codes.len();
        let (mut tried, mut failed) = attempted;
        let (dimg, k) = coarse.unwrap_or((img, 1));
        let dims = dimg.dims();
        let kf = k as f64;
        // Finder patterns of the detection image, in `img` pixels.
        let finders_of = |bits: &[u8]| {
            let fs = find_finders_min(bits, dims.0, dims.1, min_module(k));
            scale_finders(solid_finders(fs, k), kf)
        };
        // The same, of a bitmap only scanned for finder patterns (not
        // kept): thresholded a row at a time as the scan reads it.
        let finders_in = |bits: RowBits| {
            if !bits.fits(dims.0, dims.1) {
                return Vec::new();
            }
            let fs = find_finders_in(&bits, dims.0, dims.1, min_module(k));
            scale_finders(solid_finders(fs, k), kf)
        };

        self.stats.stages = self.stats.stages.max(1);
        // The whole frame's two polarities share one table of local means
        // (the negative's are the frame's, negated) and the strict bitmap
        // the probe made (see `Shared`).
        let neg = found.negative;
        let mut shared = shared;
        let means = match shared.as_deref_mut() {
            Some(sh) => {
                // The shared means are the frame's own: `dimg` must be that
                // image or its negative, or the bitmaps would be another size.
                debug_assert_eq!((sh.positive.width(), sh.positive.height()), dims);
                let m = sh.means.get_or_insert_with(|| LocalMean::new(sh.positive));
                if neg {
                    m.negated()
                } else {
                    m.clone()
                }
            }
            None => LocalMean::new(dimg.get()),
        };
        let mut abits = self.bitmaps.take();
        means.threshold_into(
            Self::adaptive_radius(dims, module_px.map(|m| m / kf)),
            5,
            4,
            &mut abits,
        );
        let mut afinders = finders_of(&abits);
        self.try_triples(
            img,
            &afinders,
            place,
            deadline,
            found,
            &mut failed,
            &mut tried,
        );
        if self.all_explained(&afinders, place, found, before, &failed) {
            return self.recycle(abits, Stage1::Done);
        }
        // The first polarity searched shows no code of its own: is there
        // one of the other polarity? Its strict bitmap (1d below: what reads
        // glowing OLED codes), taken from this image's local means without
        // making the negative. Three solid finder patterns there hand the
        // frame to the other polarity before this one's narrower windows: on
        // a loaded machine those spent the budget on light-on-dark codes
        // before their negative was looked at (issue 18, inverted 4/6). One
        // threshold pass and one finder scan; an empty frame pays them once.
        // (When the negative goes first, the same probe looks at the frame
        // itself with the strict cut.)
        if flip && found.codes.len() == before && solid_count(&afinders) < 3 {
            let ofinders = finders_in(means.row_bits(Self::narrow_radius(dims), 20, 4, true));
            if let Some(sh) = shared.as_deref_mut() {
                sh.strict[usize::from(!neg)] = Some(ofinders.clone());
            }
            if solid_count(&ofinders) >= 3 {
                return self.recycle(abits, Stage1::Flip(ofinders));
            }
        }
        if module_px.is_none() && !deadline.passed() {
            // 1b: a narrower window. Next to a dark background the wide one
            // sits below the code's own mid-grey and thins the finder rings
            // of low-contrast codes (the narrow one alone would hollow out
            // finders of big modules, hence both).
            let nfinders = finders_in(means.row_bits(Self::narrow_radius(dims), 5, 4, false));
            self.try_triples(
                img,
                &nfinders,
                place,
                deadline,
                found,
                &mut failed,
                &mut tried,
            );
            self.merge_and_try(
                img,
                &mut afinders,
                nfinders,
                place,
                deadline,
                found,
                &mut failed,
                &mut tried,
            );
            if self.all_explained(&afinders, place, found, before, &failed) {
                return self.recycle(abits, Stage1::Done);
            }
            // 1c: a small frame that a code may fill.
            if let Some(r) = Self::fill_radius(dims).filter(|_| found.codes.len() == before) {
                let ffinders = finders_in(means.row_bits(r, 5, 4, false));
                self.try_triples(
                    img,
                    &ffinders,
                    place,
                    deadline,
                    found,
                    &mut failed,
                    &mut tried,
                );
                self.merge_and_try(
                    img,
                    &mut afinders,
                    ffinders,
                    place,
                    deadline,
                    found,
                    &mut failed,
                    &mut tried,
                );
                if self.all_explained(&afinders, place, found, before, &failed) {
                    return self.recycle(abits, Stage1::Done);
                }
            }
        }
        // 1d: the negative of a light-on-dark screen. The screen's glow
        // lifts the black ring of each finder pattern towards the light
        // modules; in the negative that ring is a mid grey, and the wide
        // black (now white) surround pulls the local mean above it, so it
        // reads dark and the pattern fills in. A stricter cut (20 % under
        // the mean instead of 5 %) keeps the ring light and the modules
        // dark. Same local means, no new pass over the image.
        if found.negative && found.codes.len() == before && !deadline.passed() {
            // The probe of the frame's own stage 1 made this very bitmap.
            let sfinders = shared
                .and_then(|sh| sh.strict[usize::from(neg)].take())
                .unwrap_or_else(|| {
                    finders_in(means.row_bits(Self::narrow_radius(dims), 20, 4, false))
                });
            self.try_triples(
                img,
                &sfinders,
                place,
                deadline,
                found,
                &mut failed,
                &mut tried,
            );
            self.merge_and_try(
                img,
                &mut afinders,
                sfinders,
                place,
                deadline,
                found,
                &mut failed,
                &mut tried,
            );
            if self.all_explained(&afinders, place, found, before, &failed) {
                return self.recycle(abits, Stage1::Done);
            }
        }
        // 1e: two solid patterns and no triple, in a negative. The glow
        // around an OLED code breaks one finder pattern on every bitmap
        // (issue 18, frame 0202: two solid ones in the negative's strict
        // bitmap, none in its wide and narrow ones); rqrr's detector, the
        // next stage, locates such a grid only after 10–13 ms of flood fills
        // over the whole frame, past the budget. Where the third pattern can
        // be is known from the two (see [`third_finder_candidates`]); a
        // wrong guess is one more ordinary attempt (it may pass the timing
        // check on a real timing line and reach a full decode), and
        // Reed–Solomon stays the judge of a read.
        if found.negative
            && found.codes.len() == before
            && !deadline.passed()
            && solid_count(&afinders) == 2
            && self.config.predict_third
        {
            let two: Vec<Finder> = afinders.iter().filter(|f| f.count >= 3).copied().collect();
            for (third, version) in third_finder_candidates(img.get(), two[0], two[1]) {
                if found.codes.len() > before
                    || deadline.passed()
                    || self.stats.predicted >= MAX_PREDICTED
                {
                    break;
                }
                self.try_predicted(
                    img.get(),
                    [two[0], two[1], third],
                    version,
                    place,
                    deadline,
                    found,
                    &mut tried,
                );
            }
            if self.all_explained(&afinders, place, found, before, &failed) {
                return self.recycle(abits, Stage1::Done);
            }
        }
        // Not a single finder-like pattern on either bitmap: nothing for
        // rqrr to group either (it looks for the same 1:1:3:1:1 runs). Most
        // gate frames are empty, and this keeps them at the cost of stage 1
        // (measured: the read rate did not drop, the 720p p95 fell ~5 ms).
        if afinders.is_empty() {
            return self.recycle(abits, Stage1::Nothing);
        }
        Stage1::Pending(Pending {
            abits,
            failed,
            before,
            finders: afinders,
            tried,
        })
    }

    /// Stages 2–3 for what stage 1 located but did not read.
    #[allow(clippy::too_many_arguments)]
    fn fallbacks(
        &mut self,
        img: &Frame,
        coarse: Option<(&Frame, usize)>,
        place: Placement,
        deadline: Deadline,
        found: &mut Found,
        allow_upscale: bool,
        module_px: Option<f64>,
        pending: Pending,
    ) {
        let Pending {
            abits,
            mut failed,
            before,
            finders: stage1_finders,
            mut tried,
        } = pending;
        let (dimg, k) = coarse.unwrap_or((img, 1));
        let dims = (dimg.width(), dimg.height());
        let kf = k as f64;
        let finders_of = |bits: &[u8]| {
            let fs = find_finders_min(bits, dims.0, dims.1, min_module(k));
            scale_finders(solid_finders(fs, k), kf)
        };
        if deadline.passed() {
            self.stats.out_of_time = true;
            return;
        }

        // Stage 2: rqrr's detector on the same bitmap. It finds capstones by
        // flood-filling regions and fits the fourth corner from capstone
        // edges, which still locates some extreme-perspective codes our
        // grouping misses. (Running it on rqrr's own row-average threshold
        // too, on a second thread, added one read in 200 frames for twice
        // the CPU; dropped.)
        self.stats.stages = self.stats.stages.max(2);
        let dets: Vec<Detection> = detect(dimg, &abits)
            .into_iter()
            .map(|mut d| {
                d.grid.rqrr_bounds = d.grid.rqrr_bounds.map(|(x, y)| (x * kf, y * kf));
                d
            })
            .collect();
        self.stats.grids += dets.len();
        self.try_detections(img, dets, place, deadline, found, &mut failed);

        // Stage 2b: nothing read yet although finder-like patterns are
        // there: try once more on a 3x3-blurred copy. Heavy sensor noise
        // breaks the 1:1:3:1:1 runs and flips single module samples; the
        // blur divides it by three at the price of ~1 ms.
        if found.codes.len() == before && module_px.is_none() && !deadline.passed() {
            let smooth = dimg.box_blur3();
            let bits = LocalMean::new(&smooth).threshold(Self::adaptive_radius(dims, None), 5, 4);
            let finders = finders_of(&bits);
            // At full resolution the blurred copy is also the one to sample;
            // a coarse level already averaged the noise away.
            let sampled = if k == 1 { &smooth } else { img };
            // What stage 1 attempted failed on `img`; the blurred bitmap's
            // own triples get their attempts on the blurred copy.
            let stage1_tried = if k == 1 {
                std::mem::take(&mut tried)
            } else {
                Tried::default()
            };
            self.try_triples(
                sampled,
                &finders,
                place,
                deadline,
                found,
                &mut failed,
                &mut tried,
            );
            // With stage 1's patterns: noise breaks a different finder
            // pattern on each bitmap. Only the triples neither list made:
            // stage 1's own ones failed already, and re-trying them all on
            // the blurred copy was where a hard frame's budget went; the
            // blurred bitmap's own ones were just attempted.
            tried.extend(stage1_tried);
            let mut merged = stage1_finders;
            self.merge_and_try(
                sampled,
                &mut merged,
                finders,
                place,
                deadline,
                found,
                &mut failed,
                &mut tried,
            );
        }

        if !allow_upscale {
            return;
        }
        // Stage 3: crop + upscale what was located but not read.
        self.stats.stages = self.stats.stages.max(3);
        let mut regions_done: Vec<(f64, f64)> = Vec::new();
        for region in failed {
            if self.stats.upscaled >= self.config.max_upscaled_regions {
                break;
            }
            if deadline.passed() {
                self.stats.out_of_time = true;
                return;
            }
            let corners = region.corners;
            // Upscale each region once, and not at all if a code there has
            // been decoded since.
            let c = centre(&corners);
            let side = (corners[1].0 - corners[0].0).hypot(corners[1].1 - corners[0].1);
            if found.covers(place.to_frame(c))
                || regions_done
                    .iter()
                    .any(|d| (d.0 - c.0).hypot(d.1 - c.1) < side / 4.0)
            {
                continue;
            }
            regions_done.push(c);
            let module = region.module_px;
            if !(module.is_finite() && module > 0.0) {
                continue;
            }
            let Some((x0, y0, x1, y1)) = crop_rect(&corners, 0.15, img.width(), img.height())
            else {
                continue;
            };
            // Upscaled crops are capped at ~0.4 MP: a bigger one costs as much
            // as a full frame, and the budget cannot interrupt a stage.
            let area = ((x1 - x0) * (y1 - y0)) as f64;
            let factor = (self.config.target_module_px / module)
                .min((400_000.0 / area).sqrt())
                .clamp(1.0, 4.0);
            if factor < 1.2 {
                continue;
            }
            self.stats.upscaled += 1;
            let crop = img.crop(x0, y0, x1, y1).scaled(factor as f32);
            let child = place.child(x0, y0, factor);
            self.chain(
                &crop,
                None,
                child,
                deadline,
                found,
                false,
                Some(module * factor),
            );
        }
    }

    /// Stop after stage 1 when it read something and every solid finder
    /// pattern lies in a code that was read (no second code left behind).
    fn all_explained(
        &self,
        finders: &[Finder],
        place: Placement,
        found: &Found,
        before: usize,
        failed: &[Region],
    ) -> bool {
        let unexplained = finders
            .iter()
            .filter(|f| f.count >= 3 && !found.covers(place.to_frame((f.x, f.y))))
            .count();
        found.codes.len() > before && unexplained == 0 && failed.is_empty()
    }

    /// rqrr's grids: take its payload, else re-sample the grid ourselves.
    fn try_detections(
        &mut self,
        img: &Frame,
        detections: Vec<Detection>,
        place: Placement,
        deadline: Deadline,
        found: &mut Found,
        failed: &mut Vec<Region>,
    ) {
        // Grids rqrr decoded itself first, so re-sampling can skip them.
        let mut pending = Vec::new();
        for d in detections {
            let Some(corners) = d.grid.corners() else {
                continue;
            };
            match d.payload {
                Some(p) => {
                    found.add(p, corners.map(|c| place.to_frame(c)));
                }
                None => pending.push((d.grid, corners)),
            }
        }
        let mut tried: Vec<(f64, f64)> = Vec::new();
        for (grid, corners) in pending {
            let c = centre(&corners);
            if found.covers(place.to_frame(c)) {
                continue;
            }
            // Both bitmaps usually locate the same grid; re-sample it once.
            let side = (corners[1].0 - corners[0].0).hypot(corners[1].1 - corners[0].1);
            if tried
                .iter()
                .any(|t| (t.0 - c.0).hypot(t.1 - c.1) < side / 10.0)
            {
                continue;
            }
            tried.push(c);
            let region = Region {
                corners,
                module_px: side / grid.size as f64,
            };
            if deadline.passed() {
                self.stats.out_of_time = true;
                failed.push(region);
                continue;
            }
            match refine_and_decode(img, &grid, deadline) {
                Some((payload, c)) => {
                    self.stats.resampled += 1;
                    found.add(payload, c.map(|p| place.to_frame(p)));
                }
                None => failed.push(region),
            }
        }
    }

    /// Merge finder patterns another bitmap found into `into`, and attempt
    /// the triples the merged list makes that neither list made alone.
    /// Heavy noise breaks a different one of a code's three patterns on
    /// each bitmap: two on one, two on another, three only together
    /// (issue 18: a σ 30 frame zxing-cpp read).
    #[allow(clippy::too_many_arguments)]
    fn merge_and_try<'i>(
        &mut self,
        img: impl Into<Img<'i>>,
        into: &mut Vec<Finder>,
        other: Vec<Finder>,
        place: Placement,
        deadline: Deadline,
        found: &mut Found,
        failed: &mut Vec<Region>,
        tried: &mut Tried,
    ) {
        let before = into.len();
        merge_finders(into, other);
        if into.len() > before && into.len() >= 3 {
            // Only the first bitmap's call tries its best triple past the
            // deadline; a merged list is extra work a hostile frame must
            // not get after its budget.
            if deadline.passed() {
                self.stats.out_of_time = true;
                return;
            }
            // A merged triple that fails is no sign of an unread code:
            // merged counts add up rows of different bitmaps, so "confirmed
            // on several rows" does not hold for them. Not kept in `failed`
            // (which would keep a read frame from being `all_explained`).
            let kept = failed.len();
            self.stats.from_merged += self.try_triples_within(
                img,
                into,
                place,
                deadline,
                found,
                failed,
                tried,
                MERGED_TRIPLE_MODULES,
            );
            failed.truncate(kept);
        }
    }

    /// One guess of stage 1e: the two finder patterns and a predicted third,
    /// decoded as the version their spacing implies (± 1: the module size
    /// is an estimate), never more. Not kept for the upscale (a guess is no
    /// evidence of a code). Returns whether it read a code.
    #[allow(clippy::too_many_arguments)]
    fn try_predicted(
        &mut self,
        img: &Frame,
        finders: [Finder; 3],
        version: usize,
        place: Placement,
        deadline: Deadline,
        found: &mut Found,
        tried: &mut Tried,
    ) -> bool {
        let Some(t) = group(&finders, 3).into_iter().next() else {
            return false;
        };
        let centre = ((t.tr.0 + t.bl.0) / 2.0, (t.tr.1 + t.bl.1) / 2.0);
        if found.covers(place.to_frame(centre)) || tried.contains(&t, SAME_TRIPLE_MODULES) {
            return false;
        }
        self.stats.triples += 1;
        self.stats.predicted += 1;
        tried.push(t);
        let size = 4 * version + 17;
        let pts = [t.tl, t.tr, t.bl];
        match decode_from_finders_within(img, pts, t.modules, size, 1, deadline) {
            Some((payload, c)) => {
                self.stats.from_finders += 1;
                let read = found.add(payload, c.map(|p| place.to_frame(p)));
                self.stats.from_predicted += usize::from(read);
                read
            }
            None => false,
        }
    }

    /// Our finder-pattern triples (see [`super::finder`]), best first;
    /// none that `tried` holds (within [`SAME_TRIPLE_MODULES`]), and each
    /// attempted one goes into it.
    #[allow(clippy::too_many_arguments)]
    fn try_triples<'i>(
        &mut self,
        img: impl Into<Img<'i>>,
        finders: &[Finder],
        place: Placement,
        deadline: Deadline,
        found: &mut Found,
        failed: &mut Vec<Region>,
        tried: &mut Tried,
    ) -> usize {
        self.try_triples_within(
            img,
            finders,
            place,
            deadline,
            found,
            failed,
            tried,
            SAME_TRIPLE_MODULES,
        )
    }

    /// [`Self::try_triples`], a triple within `same` modules of an attempted
    /// one counting as attempted. Returns the codes it read.
    #[allow(clippy::too_many_arguments)]
    fn try_triples_within<'i>(
        &mut self,
        img: impl Into<Img<'i>>,
        finders: &[Finder],
        place: Placement,
        deadline: Deadline,
        found: &mut Found,
        failed: &mut Vec<Region>,
        tried: &mut Tried,
        same: f64,
    ) -> usize {
        let img = img.into();
        let mut read = 0;
        let triples = group(finders, 16);
        let mut used: Vec<usize> = Vec::new();
        let mut attempts = 0;
        for t in triples {
            if t.members.iter().any(|m| used.contains(m)) {
                continue;
            }
            let centre = ((t.tr.0 + t.bl.0) / 2.0, (t.tr.1 + t.bl.1) / 2.0);
            if found.covers(place.to_frame(centre)) {
                continue;
            }
            // Worth an upscale only if it looks like a real code: all three
            // patterns confirmed on several rows.
            let solid = t.members.iter().all(|&m| finders[m].count >= 3);
            if tried.contains(&t, same) {
                // Attempted and failed before, maybe from a list where it
                // did not look solid (or by a flip, whose `failed` is not
                // this one): kept for the upscale now that it does, else
                // skipping it here would lose the code's stage 3.
                if solid {
                    failed.push(upscale_region(&t));
                }
                continue;
            }
            // The best triple is always tried: the budget stops the
            // following ones (on a slow machine stage 1 alone may spend it).
            let full = attempts >= self.config.max_finder_attempts;
            let late = (full || attempts > 0) && deadline.passed();
            if full || late {
                self.stats.out_of_time |= late;
                break;
            }
            attempts += 1;
            self.stats.triples += 1;
            tried.push(t);
            match decode_from_finders(img.get(), [t.tl, t.tr, t.bl], t.modules, t.size, deadline) {
                Some((payload, c)) => {
                    self.stats.from_finders += 1;
                    read += usize::from(found.add(payload, c.map(|p| place.to_frame(p))));
                    used.extend(t.members);
                }
                None => {
                    if solid {
                        failed.push(upscale_region(&t));
                    }
                }
            }
        }
        read
    }
}

/// At most this many predicted third finder patterns are attempted per
/// frame (stage 1e), whatever the number of working images that reach it.
const MAX_PREDICTED: usize = 6;

/// Where the third finder pattern of a code whose other two are `a` and `b`
/// can be, each with the version the pair's spacing implies if it is
/// there, likeliest first: the two are a side of the code (the third is a
/// side's length from either, at a right angle: four places) or its
/// diagonal (half a diagonal from their midpoint: two places).
///
/// Finder centres of a version-v code are 4v + 10 modules apart along a
/// side and √2 times that along the diagonal. The module size comes from
/// row and column runs, which a code rotated by t crosses at 1 / cos t of
/// its width: it is corrected with each hypothesis's own rotation (the
/// pair's direction for a side, 45° off it for a diagonal), as
/// [`group`] does, and the hypothesis whose spacing is nearer a 4v + 10
/// comes first. Within it, the places are ordered by how much the image
/// there looks like a finder pattern, sampled along the code's axes (the
/// code lies on one side of the pair only: its rotation decides which).
/// A place whose centre is off the image, or a spacing past version 40,
/// is no guess. Each wrong guess costs a failed decode attempt (up to
/// ~3 ms at 720p). The predicted pattern counts as seen on 2 rows only.
fn third_finder_candidates(img: &Frame, a: Finder, b: Finder) -> Vec<(Finder, usize)> {
    use std::f64::consts::{FRAC_PI_2, FRAC_PI_4, SQRT_2};
    let (vx, vy) = (b.x - a.x, b.y - a.y);
    let len = vx.hypot(vy);
    let measured = (a.module + b.module) / 2.0;
    if !(len > 0.0 && measured > 0.0) {
        return Vec::new();
    }
    let (px, py) = (-vy, vx);
    let (mx, my) = ((a.x + b.x) / 2.0, (a.y + b.y) / 2.0);
    // Rotation folded into 0..45°, and the module size it implies.
    let module_at = |angle: f64| {
        let t = angle.abs() % FRAC_PI_2;
        measured * t.min(FRAC_PI_2 - t).cos()
    };
    let angle = vy.atan2(vx);
    // (module, nearest version, distance to it in modules).
    let fit = |module: f64, side_px: f64| {
        let modules = side_px / module;
        let v = ((modules - 10.0) / 4.0).round().max(1.0);
        (module, v, (modules - (4.0 * v + 10.0)).abs())
    };
    let side = fit(module_at(angle), len);
    let diagonal = fit(module_at(angle - FRAC_PI_4), len / SQRT_2);
    // The code's unit axes if the pair is a side, and if it is the diagonal.
    let (ux, uy) = (vx / len, vy / len);
    let (wx, wy) = (px / len, py / len);
    let side_axes = ((ux, uy), (wx, wy));
    let diag_axes = (
        ((ux + wx) / SQRT_2, (uy + wy) / SQRT_2),
        ((ux - wx) / SQRT_2, (uy - wy) / SQRT_2),
    );
    // One hypothesis: (distance to a 4v + 10, its guesses: place, version,
    // evidence), or none past version 40.
    type Guess = (Finder, usize, f64);
    let guesses = |places: &[(f64, f64)], (module, version, dist): (f64, f64, f64), axes| {
        (version <= 40.0).then(|| {
            let g: Vec<Guess> = places
                .iter()
                .filter_map(|&(x, y)| {
                    let e = finder_evidence(img, (x, y), module, axes)?;
                    let f = Finder {
                        x,
                        y,
                        module: measured,
                        count: MIN_CONFIRMATIONS,
                    };
                    Some((f, version as usize, e))
                })
                .collect();
            (dist, g)
        })
    };
    let side_places = [
        (a.x + px, a.y + py),
        (a.x - px, a.y - py),
        (b.x + px, b.y + py),
        (b.x - px, b.y - py),
    ];
    let diag_places = [
        (mx + px / 2.0, my + py / 2.0),
        (mx - px / 2.0, my - py / 2.0),
    ];
    let mut groups: Vec<(f64, Vec<Guess>)> = [
        guesses(&side_places, side, side_axes),
        guesses(&diag_places, diagonal, diag_axes),
    ]
    .into_iter()
    .flatten()
    .collect();
    groups.sort_by(|x, y| x.0.total_cmp(&y.0));
    groups
        .into_iter()
        .flat_map(|(_, mut g)| {
            g.sort_by(|x, y| y.2.total_cmp(&x.2));
            g.into_iter().map(|(f, v, _)| (f, v))
        })
        .collect()
}

/// How much the image around `c` looks like a finder pattern whose modules
/// are `module` px along `axes`: the light ring's mean minus the dark
/// centre's and outer ring's, from one sample per module (49). `None` when
/// the centre is off the image.
fn finder_evidence(
    img: &Frame,
    c: (f64, f64),
    module: f64,
    (u, w): ((f64, f64), (f64, f64)),
) -> Option<f64> {
    img.sample(c.0, c.1)?;
    let (mut light, mut nl, mut dark, mut nd) = (0.0, 0.0, 0.0, 0.0);
    for j in -3i32..=3 {
        for i in -3i32..=3 {
            let (di, dj) = (i as f64 * module, j as f64 * module);
            let p = (c.0 + di * u.0 + dj * w.0, c.1 + di * u.1 + dj * w.1);
            let Some(v) = img.sample(p.0, p.1) else {
                continue;
            };
            if i.abs().max(j.abs()) == 2 {
                light += v as f64;
                nl += 1.0;
            } else {
                dark += v as f64;
                nd += 1.0;
            }
        }
    }
    Some(if nl > 0.0 && nd > 0.0 {
        light / nl - dark / nd
    } else {
        f64::NEG_INFINITY
    })
}

/// The code a failed triple outlines, for the crop-and-upscale stage.
fn upscale_region(t: &Triple) -> Region {
    let centre = ((t.tr.0 + t.bl.0) / 2.0, (t.tr.1 + t.bl.1) / 2.0);
    let br = (t.tr.0 + t.bl.0 - t.tl.0, t.tr.1 + t.bl.1 - t.tl.1);
    // Finder centres are 3.5 modules inside the corners.
    let grow = |p: (f64, f64)| {
        let k = t.size as f64 / (t.size as f64 - 7.0);
        (
            centre.0 + (p.0 - centre.0) * k,
            centre.1 + (p.1 - centre.1) * k,
        )
    };
    Region {
        corners: [grow(t.tl), grow(t.tr), grow(br), grow(t.bl)],
        module_px: t.module,
    }
}

/// Patterns seen on a single scan row are mostly texture; each triple costs
/// a decode attempt, so keep the ones confirmed at least twice.
///
/// Modules under ~1.8 px cannot be sampled reliably anyway, and sensor noise
/// is full of tiny 1:1:3:1:1 runs.
///
/// On a coarse pyramid level (`k` > 1) the box filter has already divided
/// the noise by `k`, and a module of 1.4 px there is 2.8+ px in the frame,
/// where the code is sampled: smaller patterns are worth keeping.
fn solid_finders(finders: Vec<Finder>, k: usize) -> Vec<Finder> {
    let min = min_module(k);
    finders
        .into_iter()
        .filter(|f| f.count >= MIN_CONFIRMATIONS && f.module >= min)
        .collect()
}

/// Smallest module (px) kept on a coarse pyramid level.
const COARSE_MIN_MODULE_PX: f64 = 1.4;

/// Smallest module (px) looked for on a `k`-times smaller detection image.
fn min_module(k: usize) -> f64 {
    if k > 1 {
        COARSE_MIN_MODULE_PX
    } else {
        MIN_MODULE_PX
    }
}

/// Finder patterns found on a `k`-times smaller copy, in full-size pixels
/// (pixel `i` of the copy covers `[k i, k (i + 1))`).
fn scale_finders(finders: Vec<Finder>, k: f64) -> Vec<Finder> {
    if k == 1.0 {
        return finders;
    }
    finders
        .into_iter()
        .map(|f| Finder {
            x: f.x * k,
            y: f.y * k,
            module: f.module * k,
            count: f.count,
        })
        .collect()
}

/// Frames no wider or taller than this are small enough for a code to fill
/// them (crops, screenshots): they get a third, frame-sized window.
const SMALL_FRAME_SIDE: usize = 400;

/// Frames up to this many pixels (1080p, 1536p) are searched as they are;
/// bigger ones on a pyramid. 12 MP stills get a half-size level (3 MP), not
/// a third: their 4.5 px modules would be 1.5 px there, too thin for the
/// 1:1:3:1:1 runs of a blurred photo.
const PYRAMID_PIXELS: usize = 3_200_000;

/// Downscale factor of the coarse level a `w`×`h` frame is searched on:
/// the smallest that brings it under [`PYRAMID_PIXELS`] (1: searched as
/// it is).
fn pyramid_factor(w: usize, h: usize) -> usize {
    let mut k = 1;
    while (w / k) * (h / k) > PYRAMID_PIXELS {
        k += 1;
    }
    k
}

/// Pixels of the frame size the configured time budget is meant for (1080p).
const BUDGET_PIXELS: usize = 1920 * 1080;

/// At most this many times the configured budget, whatever the frame size.
const MAX_BUDGET_SCALE: f64 = 6.0;

/// The time budget of a `w`×`h` frame: the configured one up to 1080p, and
/// in proportion to the pixel count above it (4K: 4×, 12 MP: 5.8×, capped
/// at [`MAX_BUDGET_SCALE`]).
///
/// Why: the budget keeps a 30 fps stream of frames up to 1080p from falling
/// behind. A 4K or 12 MP frame cannot be read at that rate by anything
/// (zxing-cpp's median on them is 3–6× our 1080p budget), and every pass
/// over it (box downscale, negative, full-resolution sampling) costs in
/// proportion to its pixels: with the 1080p budget, a big frame under load
/// spent it on the coarse level's stage 1 and never reached the
/// full-resolution sampling or the negative (issue 18: 12 MP 1/6, 4K 0/6).
/// The same time per pixel as a 1080p frame keeps a big frame's share of
/// the machine the same; a 4K camera stream is then read at ~8–10 fps
/// instead of being given up on every frame.
fn frame_budget(budget: Duration, w: usize, h: usize) -> Duration {
    let scale = ((w * h) as f64 / BUDGET_PIXELS as f64).clamp(1.0, MAX_BUDGET_SCALE);
    // `mul_f64` panics past `Duration::MAX`; a budget that big is no budget.
    Duration::try_from_secs_f64(budget.as_secs_f64() * scale).unwrap_or(Duration::MAX)
}

/// A `w`×`h` frame is bigger than the budget grows for ([`frame_budget`]
/// stops at [`MAX_BUDGET_SCALE`] × 1080p, ~12.4 MP): a whole pass over it
/// at full resolution, which the deadline cannot cut short, costs more
/// than its budget.
fn full_res_beyond_budget(w: usize, h: usize) -> bool {
    (w * h) as f64 > MAX_BUDGET_SCALE * BUDGET_PIXELS as f64
}

/// How far (in modules) a full-resolution crop around a coarse level's
/// finder pattern reaches on each side: to the far edge of a version 9
/// code (53 modules: the other finder patterns' centres 46 modules away,
/// their outer edges 3.5 further) whichever finder pattern the coarse level
/// kept. Our signed tickets (`ENT1.…`, 125 bytes) are version 8; at 30
/// modules (version 4) a crop around one finder pattern of such a code cut
/// the other two off, and a 12 MP or 4K frame whose coarse level kept one or
/// two of the three read nothing (issue 18, session 37: 2 of 24).
const AROUND_MODULES: f64 = 50.0;

/// At most this far (px) on each side: a crop is for modules the coarse
/// level samples badly (1.5–3 px there), not for big ones, which its stage 1
/// reads. 50 modules of a 22 px finder-like sticker in a 4K frame were a
/// 2,200 px crop, searched with its fallbacks (rqrr's detector, the
/// upscale) at full resolution, and the deadline is checked only between
/// crops. 640 px still holds a version 9 code of 12.8 px modules.
const AROUND_MAX_PX: f64 = 640.0;

/// The crop [`Decoder::around`] makes around `f` in a `w`×`h` image: its
/// reach and `[x0, y0, x1, y1]`, or `None` when the frame leaves less than
/// 20 px of it either way.
fn around_rect(f: &Finder, w: usize, h: usize) -> Option<(f64, [usize; 4])> {
    let r = (f.module * AROUND_MODULES).min(AROUND_MAX_PX);
    let x0 = (f.x - r).max(0.0) as usize;
    let y0 = (f.y - r).max(0.0) as usize;
    let x1 = ((f.x + r).max(0.0) as usize).min(w);
    let y1 = ((f.y + r).max(0.0) as usize).min(h);
    (x1 > x0 + 20 && y1 > y0 + 20).then_some((r, [x0, y0, x1, y1]))
}

/// Finder patterns confirmed on at least three scan rows: what a real code
/// leaves three of, and texture rarely.
fn solid_count(finders: &[Finder]) -> usize {
    finders.iter().filter(|f| f.count >= 3).count()
}

/// How stage 1 left a working image.
enum Stage1 {
    /// Nothing read, and the other polarity's strict bitmap shows solid
    /// finder patterns (these, in `img` pixels): search it first.
    Flip(Vec<Finder>),
    /// No finder-like pattern at all.
    Nothing,
    /// Every solid finder pattern lies in a code that was read.
    Done,
    /// Finder-like patterns are left unexplained: the fallbacks may help.
    Pending(Pending),
}

/// What stage 1 hands to the fallbacks.
struct Pending {
    /// The wide-window bitmap of the detection image.
    abits: Vec<u8>,
    /// Triples stage 1 attempted.
    tried: Tried,
    /// Triples located but not read.
    failed: Vec<Region>,
    /// Codes read before this working image.
    before: usize,
    /// Stage 1's finder patterns, in `img` pixels.
    finders: Vec<Finder>,
}

/// What the whole-frame stage 1 of one polarity leaves for the other's
/// (see [`Decoder::search`]). Both threshold the same detection image, one
/// as it is and one as its negative: the negative's local means are the
/// frame's negated ([`LocalMean::negated`]: 255 × n − sum), so the table is
/// summed once per frame; and the probe of the polarity searched first
/// thresholds the other's strict bitmap (1d) from those means, so its
/// finder patterns are kept for that polarity's 1d. Bit for bit what each
/// polarity computed for itself before.
struct Shared<'a> {
    /// The frame's (not its negative's) detection image: the frame, or its
    /// coarse pyramid level. Stage 1 is given this image or its negative
    /// (`found.negative` says which), never another.
    positive: &'a Frame,
    /// Its local means, made by the first stage 1 that needs them.
    means: Option<LocalMean<'a>>,
    /// The finder patterns of each polarity's strict bitmap (index: 1 =
    /// the negative), when a probe made it.
    strict: [Option<Vec<Finder>>; 2],
}

/// A working image, or the negative of a frame, made the first time its
/// pixels are read (see [`Decoder::search`]).
#[derive(Clone, Copy)]
enum Img<'a> {
    Ready(&'a Frame),
    Negative(&'a Frame, &'a OnceCell<Frame>),
}

impl<'a> Img<'a> {
    fn get(self) -> &'a Frame {
        match self {
            Img::Ready(f) => f,
            Img::Negative(f, cell) => cell.get_or_init(|| f.inverted()),
        }
    }

    /// Width and height (the negative's are the frame's).
    fn dims(self) -> (usize, usize) {
        let f = match self {
            Img::Ready(f) | Img::Negative(f, _) => f,
        };
        (f.width(), f.height())
    }
}

impl<'a> From<&'a Frame> for Img<'a> {
    fn from(f: &'a Frame) -> Self {
        Img::Ready(f)
    }
}

/// Finder-pattern triples already attempted on one working image, so that
/// a merged list of finder patterns attempts only its new triples.
#[derive(Default)]
struct Tried(Vec<Triple>);

impl Tried {
    fn push(&mut self, t: Triple) {
        self.0.push(t);
    }

    /// Triples attempted so far.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.len()
    }

    /// Add the triples another record holds.
    fn extend(&mut self, other: Tried) {
        self.0.extend(other.0);
    }

    /// `t` is a triple attempted before: each of its corners within
    /// `modules` modules of the same corner of an attempted one.
    fn contains(&self, t: &Triple, modules: f64) -> bool {
        let near =
            |a: (f64, f64), b: (f64, f64), m: f64| (a.0 - b.0).hypot(a.1 - b.1) <= modules * m;
        self.0.iter().any(|o| {
            let m = o.module.max(t.module);
            near(o.tl, t.tl, m) && near(o.tr, t.tr, m) && near(o.bl, t.bl, m)
        })
    }
}

/// A bitmap's own triple is "the same" as an attempted one within half a
/// module: another bitmap's patterns of the same code, centred a module
/// better, sample a different grid and may read where the first failed, so
/// they get their attempt (1.5 modules suppressed them: see BENCHMARKS.md,
/// session 33).
const SAME_TRIPLE_MODULES: f64 = 0.5;

/// In a merged list a pattern's centre is the running mean of the bitmaps'
/// centres ([`merge_finders`] moves it by up to 1.5 modules / (count + 1)):
/// a merged triple within 1.5 modules of an attempted one is that one again,
/// and the merged list is there only for the triples no bitmap made.
const MERGED_TRIPLE_MODULES: f64 = 1.5;

/// Something that looks like a code but was not read: a candidate for the
/// crop-and-upscale stage.
#[derive(Debug, Clone, Copy)]
struct Region {
    corners: [(f64, f64); 4],
    module_px: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clean code with `m`-px modules and a 4-module quiet zone, and its
    /// three finder patterns' centres (top-left, top-right, bottom-left).
    fn clean_code(payload: &str, m: usize) -> (Frame, [Finder; 3]) {
        let code = qrcode::QrCode::new(payload.as_bytes()).expect("code");
        let n = code.width();
        let colors = code.to_colors();
        let side = (n + 8) * m;
        let mut luma = vec![230u8; side * side];
        for y in 0..n {
            for x in 0..n {
                if colors[y * n + x] == qrcode::Color::Dark {
                    for py in 0..m {
                        let row = ((y + 4) * m + py) * side;
                        luma[row + (x + 4) * m..row + (x + 5) * m].fill(25);
                    }
                }
            }
        }
        let frame = Frame::from_luma(side, side, luma).expect("frame");
        let at = |mx: f64, my: f64| Finder {
            x: (4.0 + mx) * m as f64,
            y: (4.0 + my) * m as f64,
            module: m as f64,
            count: 5,
        };
        let far = n as f64 - 3.5;
        (frame, [at(3.5, 3.5), at(far, 3.5), at(3.5, far)])
    }

    #[test]
    fn two_bitmaps_with_two_finder_patterns_each_read_the_code_together() {
        let (frame, [a, b, c]) = clean_code("TKT-2025-MERGED", 4);
        let mut dec = Decoder::default();
        let deadline = Deadline::start(Duration::from_secs(10));
        let mut found = Found::default();
        let (mut failed, mut tried) = (Vec::new(), Tried::default());
        let place = Placement::IDENTITY;
        // Each bitmap alone: two patterns, no triple, nothing read.
        let mut wide = vec![a, b];
        for list in [&wide[..], &[a, c][..]] {
            dec.try_triples(
                &frame,
                list,
                place,
                deadline,
                &mut found,
                &mut failed,
                &mut tried,
            );
        }
        assert!(found.codes.is_empty());
        // Merged: the triple they make together is attempted and read.
        let (mut failed, mut tried) = (Vec::new(), Tried::default());
        dec.merge_and_try(
            &frame,
            &mut wide,
            vec![a, c],
            place,
            deadline,
            &mut found,
            &mut failed,
            &mut tried,
        );
        assert_eq!(wide.len(), 3);
        let payloads: Vec<&str> = found.codes.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(payloads, ["TKT-2025-MERGED"]);
        assert_eq!(tried.len(), 1);
    }

    #[test]
    fn a_triple_already_attempted_is_not_attempted_again() {
        let (frame, [a, b, c]) = clean_code("TKT-2025-TRIED1", 4);
        let mut dec = Decoder::default();
        let deadline = Deadline::start(Duration::from_secs(10));
        let place = Placement::IDENTITY;
        let (mut failed, mut tried) = (Vec::new(), Tried::default());
        let mut found = Found::default();
        dec.try_triples(
            &frame,
            &[a, b, c],
            place,
            deadline,
            &mut found,
            &mut failed,
            &mut tried,
        );
        assert_eq!(found.codes.len(), 1, "the clean code reads");
        // The same patterns, merged from another bitmap (centres moved by
        // under a module): the triple is known, no second attempt.
        let moved = [a, b, c].map(|f| Finder {
            x: f.x + 2.0,
            y: f.y - 1.5,
            ..f
        });
        let mut again = Found::default();
        dec.try_triples_within(
            &frame,
            &moved,
            place,
            deadline,
            &mut again,
            &mut failed,
            &mut tried,
            MERGED_TRIPLE_MODULES,
        );
        assert!(again.codes.is_empty());
        assert_eq!(tried.len(), 1);
        // A fresh record attempts (and reads) it.
        dec.try_triples(
            &frame,
            &moved,
            place,
            deadline,
            &mut again,
            &mut failed,
            &mut Tried::default(),
        );
        assert_eq!(again.codes.len(), 1);
    }

    #[test]
    fn a_better_centred_retry_of_a_triple_is_attempted() {
        let (frame, [a, b, c]) = clean_code("TKT-2025-CENTRE", 4);
        let mut dec = Decoder::default();
        let deadline = Deadline::start(Duration::from_secs(10));
        let place = Placement::IDENTITY;
        let (mut failed, mut tried) = (Vec::new(), Tried::default());
        // One bitmap's patterns, a module off centre (what a thinned ring
        // gives): attempted, whatever it reads.
        let off = [a, b, c].map(|f| Finder {
            x: f.x + f.module,
            ..f
        });
        dec.try_triples(
            &frame,
            &off,
            place,
            deadline,
            &mut Found::default(),
            &mut failed,
            &mut tried,
        );
        assert_eq!(tried.len(), 1);
        // Another bitmap's, centred: a different triple, attempted and read.
        let mut found = Found::default();
        dec.try_triples(
            &frame,
            &[a, b, c],
            place,
            deadline,
            &mut found,
            &mut failed,
            &mut tried,
        );
        assert_eq!(tried.len(), 2, "the better-centred triple was skipped");
        assert_eq!(found.codes.len(), 1);
        // A merged list's triple that close to an attempted one is that one
        // again (merging moves centres): not attempted.
        let merged = [a, b, c].map(|f| Finder {
            x: f.x + 0.8 * f.module,
            ..f
        });
        dec.try_triples_within(
            &frame,
            &merged,
            place,
            deadline,
            &mut Found::default(),
            &mut failed,
            &mut tried,
            MERGED_TRIPLE_MODULES,
        );
        assert_eq!(tried.len(), 2);
    }

    /// A code whose data is destroyed (finder patterns intact), and its
    /// finder patterns: every triple fails, so every pass that finds it
    /// attempts it.
    fn unreadable_code() -> (Frame, [Finder; 3]) {
        let (frame, finders) = clean_code("ENT1.unreadable-code-with-intact-finders", 4);
        let [a, _, c] = finders;
        let w = frame.width();
        let mut luma: Vec<u8> = frame.luma().to_vec();
        // Scribble over the middle of the code (between the finders).
        let (lo, hi) = (
            (a.x + 5.0 * a.module) as usize,
            (c.y - 5.0 * a.module) as usize,
        );
        for y in lo..hi {
            for x in lo..hi {
                luma[y * w + x] = if (x / 3 + y / 5) % 2 == 0 { 230 } else { 25 };
            }
        }
        let h = frame.height();
        (Frame::from_luma(w, h, luma).expect("frame"), finders)
    }

    #[test]
    fn stage_1_does_not_attempt_again_the_triples_a_flip_attempted() {
        let (frame, finders) = unreadable_code();
        let deadline = Deadline::start(Duration::from_secs(60));
        let place = Placement::IDENTITY;
        let stage1 = |attempted: Tried| {
            let mut dec = Decoder::default();
            // As on the negative after a flip: 1d (the strict bitmap the
            // probe used) runs too.
            let mut found = Found {
                negative: true,
                ..Found::default()
            };
            dec.stage1(
                &frame,
                None,
                place,
                deadline,
                &mut found,
                None,
                false,
                (attempted, Vec::new()),
                None,
            );
            assert!(found.codes.is_empty());
            dec.stats.triples
        };
        // Unseeded: the wide, narrow and strict bitmaps find the code's
        // patterns, and its triple is attempted.
        assert!(stage1(Tried::default()) >= 1);
        // Seeded with what the flip attempted on this image: not again.
        let mut flip = Tried::default();
        Decoder::default().try_triples(
            &frame,
            &finders,
            place,
            deadline,
            &mut Found::default(),
            &mut Vec::new(),
            &mut flip,
        );
        assert_eq!(flip.len(), 1);
        assert_eq!(stage1(flip), 0);
    }

    #[test]
    fn a_triple_the_flip_attempted_and_failed_is_still_upscaled() {
        let (frame, finders) = unreadable_code();
        let deadline = Deadline::start(Duration::from_secs(60));
        let place = Placement::IDENTITY;
        // What stage 1 on the negative hands to the fallbacks, seeded with
        // what a flip attempted on it and the regions of those that failed.
        let pending = |attempted: (Tried, Vec<Region>)| {
            let mut dec = Decoder::default();
            let mut found = Found {
                negative: true,
                ..Found::default()
            };
            let s = dec.stage1(
                &frame, None, place, deadline, &mut found, None, false, attempted, None,
            );
            assert_eq!(
                dec.stats.triples, 0,
                "the flip's triple was attempted again"
            );
            match s {
                Stage1::Pending(p) => p.failed,
                _ => panic!("the unreadable code left nothing pending"),
            }
        };
        let (mut tried, mut failed) = (Tried::default(), Vec::new());
        Decoder::default().try_triples(
            &frame,
            &finders,
            place,
            deadline,
            &mut Found::default(),
            &mut failed,
            &mut tried,
        );
        assert_eq!((tried.len(), failed.len()), (1, 1));
        let flip_region = failed[0];
        let near = |regions: &[Region], to: Region| {
            let c = centre(&to.corners);
            regions.iter().any(|r| {
                let d = centre(&r.corners);
                (d.0 - c.0).hypot(d.1 - c.1) < to.module_px
            })
        };
        // The flip's `failed` is handed over into stage 1's, for stage 3,
        // whatever stage 1's bitmaps find (a region they cannot find, far
        // off, shows it).
        let far = Region {
            corners: flip_region.corners.map(|(x, y)| (x + 5000.0, y)),
            ..flip_region
        };
        let got = pending((Tried(tried.0.clone()), vec![far]));
        assert!(near(&got, far));
        // Not handed over: stage 1 skips the triple its bitmaps find again
        // (solid there), and keeps it for the upscale all the same (on the
        // old code it was lost: `failed` stayed empty).
        assert!(near(&pending((tried, Vec::new())), flip_region));
    }

    #[test]
    fn stage_2b_does_not_attempt_stage_1s_own_triples_again() {
        // The unreadable code, and light space right of it where stage 1
        // "saw" a triple of its own (say texture) that failed: patterns
        // 14 px wide, over 3× the code's, so no triple mixes the two.
        let (code, _) = unreadable_code();
        let (cw, ch) = (code.width(), code.height());
        let (w, h) = (cw + 300, ch.max(300));
        let mut luma = vec![230u8; w * h];
        for y in 0..ch {
            luma[y * w..y * w + cw].copy_from_slice(&code.luma()[y * cw..(y + 1) * cw]);
        }
        let frame = Frame::from_luma(w, h, luma).expect("frame");
        let at = |x: f64, y: f64| Finder {
            x: cw as f64 + x,
            y,
            module: 14.0,
            count: 5,
        };
        let elsewhere = [at(40.0, 40.0), at(236.0, 40.0), at(40.0, 236.0)];
        let deadline = Deadline::start(Duration::from_secs(60));
        let place = Placement::IDENTITY;
        let mut dec = Decoder::default();
        let mut tried = Tried::default();
        dec.try_triples(
            &frame,
            &elsewhere,
            place,
            deadline,
            &mut Found::default(),
            &mut Vec::new(),
            &mut tried,
        );
        assert_eq!(dec.stats.triples, 1);
        // Stage 2b's blurred bitmap finds the code's patterns: its triple
        // is attempted on the blurred copy, and the merged list (with stage
        // 1's patterns) adds nothing new; stage 1's triple is not repeated.
        let abits = LocalMean::new(&frame).threshold(
            Decoder::adaptive_radius((frame.width(), frame.height()), None),
            5,
            4,
        );
        let pending = Pending {
            abits,
            tried,
            failed: Vec::new(),
            before: 0,
            finders: elsewhere.to_vec(),
        };
        let mut found = Found::default();
        dec.fallbacks(
            &frame, None, place, deadline, &mut found, false, None, pending,
        );
        assert!(found.codes.is_empty());
        assert_eq!(dec.stats.triples, 2, "{:?}", dec.stats);
    }

    #[test]
    fn an_empty_48_megapixel_frame_skips_the_full_resolution_stage_1() {
        // A budget no pass outlasts, so only the size decides. An empty
        // 12 MP frame (under the 6 × 1080p where the budget stops growing)
        // gets stage 1 at full resolution when its coarse level shows
        // nothing; an empty 48 MP frame does not.
        let mut decoder = Decoder::new(DecoderConfig {
            time_budget: Duration::from_secs(600),
            ..DecoderConfig::default()
        });
        let (w, h) = (4000, 3000);
        let twelve = Frame::from_luma(w, h, vec![128; w * h]).unwrap();
        assert!(decoder.decode(&twelve).is_empty());
        let stats = decoder.last_stats().clone();
        assert!(stats.full_res_stage1 && stats.pyramid == 1, "{stats:?}");
        drop(twelve);
        let (w, h) = (8000, 6000);
        let big = Frame::from_luma(w, h, vec![128; w * h]).unwrap();
        assert!(decoder.decode(&big).is_empty());
        let stats = decoder.last_stats().clone();
        assert!(!stats.full_res_stage1 && stats.pyramid > 1, "{stats:?}");
        assert!(stats.negative && !stats.incomplete, "{stats:?}");
    }

    #[test]
    fn a_crop_around_any_one_finder_pattern_of_a_signed_ticket_holds_the_whole_code() {
        // A signed ticket (`ENT1.` and 120 more bytes) is version 8: its
        // finder patterns' centres are 42 modules apart. Placed in the
        // middle of a bigger light frame (as in a 12 MP photo), so that no
        // crop is clamped by the frame's edge.
        let payload = format!("ENT1.{}", "x".repeat(120));
        let m = 5;
        let (code, finders) = clean_code(&payload, m);
        assert_eq!(code.width(), (49 + 8) * m, "version 8");
        let pad = 400;
        let side = code.width() + 2 * pad;
        let mut luma = vec![230u8; side * side];
        for (y, row) in code.luma().chunks(code.width()).enumerate() {
            let at = (y + pad) * side + pad;
            luma[at..at + row.len()].copy_from_slice(row);
        }
        let frame = Frame::from_luma(side, side, luma).unwrap();
        // Whichever one finder pattern the coarse level kept, its crop reads
        // the code (at 30 modules none did: the other two were cut off).
        for f in finders {
            let mut dec = Decoder::default();
            let mut found = Found::default();
            let one = Finder {
                x: f.x + pad as f64,
                y: f.y + pad as f64,
                ..f
            };
            dec.around(
                &frame,
                vec![one],
                Deadline::start(Duration::from_secs(60)),
                &mut found,
            );
            let payloads: Vec<&str> = found.codes.iter().map(|c| c.0.as_str()).collect();
            assert_eq!(payloads, [payload.as_str()], "around {one:?}");
        }
    }

    #[test]
    fn a_crop_around_a_big_finder_pattern_stays_small() {
        let f = |module: f64| Finder {
            x: 1920.0,
            y: 1080.0,
            module,
            count: 5,
        };
        // A small module: 50 of them each way.
        let (r, rect) = around_rect(&f(4.0), 3840, 2160).unwrap();
        assert_eq!((r, rect), (200.0, [1720, 880, 2120, 1280]));
        // A 22 px finder-like sticker: capped, not a 2,200 px crop.
        let (r, [x0, y0, x1, y1]) = around_rect(&f(22.0), 3840, 2160).unwrap();
        assert_eq!(r, AROUND_MAX_PX);
        assert!(x1 - x0 <= 1280 && y1 - y0 <= 1280, "{x0} {y0} {x1} {y1}");
        // Clamped by the frame, and nothing left of it at its edge.
        let edge = Finder {
            x: 3835.0,
            ..f(4.0)
        };
        assert_eq!(around_rect(&edge, 3840, 2160).unwrap().1[2], 3840);
        let out = Finder {
            x: 3900.0,
            ..f(0.2)
        };
        assert_eq!(around_rect(&out, 3840, 2160), None);
    }

    #[test]
    fn a_huge_configured_budget_does_not_panic() {
        assert_eq!(frame_budget(Duration::MAX, 8000, 6000), Duration::MAX);
        assert_eq!(
            frame_budget(Duration::from_millis(25), 3840, 2160),
            Duration::from_millis(100)
        );
        let mut decoder = Decoder::new(DecoderConfig {
            time_budget: Duration::MAX,
            ..DecoderConfig::default()
        });
        let blank = Frame::from_luma(320, 240, vec![200; 320 * 240]).unwrap();
        assert!(decoder.decode(&blank).is_empty());
        assert!(!decoder.last_stats().incomplete);
    }

    #[test]
    fn a_frame_whose_budget_ran_out_before_the_negative_is_not_read_to_the_end() {
        // Budget zero: the first search runs (a running stage finishes), the
        // negative pass is skipped, so the frame must say it ran out of time.
        let mut decoder = Decoder::new(DecoderConfig {
            time_budget: Duration::ZERO,
            ..DecoderConfig::default()
        });
        let blank = Frame::from_luma(320, 240, vec![200; 320 * 240]).unwrap();
        assert!(decoder.decode(&blank).is_empty());
        assert!(!decoder.last_stats().negative, "the negative was skipped");
        assert!(decoder.last_stats().incomplete);
        // With time to spare, the same empty frame is read to the end.
        let mut decoder = Decoder::new(DecoderConfig {
            time_budget: Duration::from_secs(60),
            ..DecoderConfig::default()
        });
        assert!(decoder.decode(&blank).is_empty());
        assert!(decoder.last_stats().negative, "the negative was searched");
        assert!(!decoder.last_stats().incomplete);
    }

    #[test]
    fn a_frame_that_ran_out_of_time_hands_the_next_one_the_other_polarity_first() {
        // Budget zero: only the polarity searched first gets its stage 1.
        let mut decoder = Decoder::new(DecoderConfig {
            time_budget: Duration::ZERO,
            ..DecoderConfig::default()
        });
        let blank = Frame::from_luma(320, 240, vec![200; 320 * 240]).unwrap();
        let negatives: Vec<bool> = (0..4)
            .map(|_| {
                decoder.decode(&blank);
                assert!(decoder.last_stats().incomplete);
                decoder.last_stats().negative
            })
            .collect();
        assert_eq!(negatives, [false, true, false, true]);
        // A camera change starts over with the frame itself.
        decoder.decode(&blank);
        decoder.reset();
        decoder.decode(&blank);
        assert!(!decoder.last_stats().negative);
    }

    #[test]
    fn placement_maps_crop_and_scale_back_to_the_frame() {
        // A crop at (100, 50), upscaled 2x, then a crop at (10, 20) of that,
        // upscaled 3x: a point there maps back through both.
        let p = Placement::IDENTITY.child(100, 50, 2.0).child(10, 20, 3.0);
        let (x, y) = p.to_frame((30.0, 60.0));
        assert!((x - (100.0 + (10.0 + 30.0 / 3.0) / 2.0)).abs() < 1e-9);
        assert!((y - (50.0 + (20.0 + 60.0 / 3.0) / 2.0)).abs() < 1e-9);
    }

    #[test]
    fn crop_rect_adds_margin_and_clamps() {
        let c = [
            (100.0, 100.0),
            (200.0, 100.0),
            (200.0, 200.0),
            (100.0, 200.0),
        ];
        // 10% of 100 px plus 4 px on each side.
        assert_eq!(crop_rect(&c, 0.1, 1000, 1000), Some((86, 86, 214, 214)));
        assert_eq!(crop_rect(&c, 0.1, 150, 150), Some((86, 86, 150, 150)));
        // Entirely outside, too small, or not finite: no crop.
        assert_eq!(crop_rect(&c, 0.1, 50, 50), None);
        let nan = [(f64::NAN, 0.0); 4];
        assert_eq!(crop_rect(&nan, 0.1, 1000, 1000), None);
    }

    #[test]
    fn big_frames_are_searched_on_a_coarse_level() {
        assert_eq!(pyramid_factor(640, 480), 1);
        assert_eq!(pyramid_factor(1920, 1080), 1);
        // 4K: 1920x1080; 12 MP: 2000x1500.
        assert_eq!(pyramid_factor(3840, 2160), 2);
        assert_eq!(pyramid_factor(4000, 3000), 2);
        assert_eq!(pyramid_factor(8000, 6000), 4);
        assert_eq!(pyramid_factor(0, 0), 1);
    }

    #[test]
    fn big_frames_get_a_budget_in_proportion_to_their_pixels() {
        let b = Duration::from_millis(25);
        // Up to 1080p: the configured budget.
        assert_eq!(frame_budget(b, 640, 480), b);
        assert_eq!(frame_budget(b, 1920, 1080), b);
        // 4K: four times 1080p's pixels; 12 MP: 5.8 times.
        assert_eq!(frame_budget(b, 3840, 2160), Duration::from_millis(100));
        let mp12 = frame_budget(b, 4000, 3000).as_secs_f64() * 1000.0;
        assert!((mp12 - 144.7).abs() < 0.1, "{mp12} ms");
        // Capped: a 48 MP still gets 6 times, not 23.
        assert_eq!(frame_budget(b, 8000, 6000), Duration::from_millis(150));
        assert_eq!(frame_budget(Duration::ZERO, 4000, 3000), Duration::ZERO);
    }

    #[test]
    fn coarse_finders_are_scaled_to_frame_pixels() {
        let f = Finder {
            x: 10.5,
            y: 20.0,
            module: 1.5,
            count: 3,
        };
        let s = scale_finders(vec![f], 3.0);
        assert_eq!(
            (s[0].x, s[0].y, s[0].module, s[0].count),
            (31.5, 60.0, 4.5, 3)
        );
        // 1.5 px modules are kept on a coarse level only.
        assert!(solid_finders(vec![f], 1).is_empty());
        assert_eq!(solid_finders(vec![f], 2).len(), 1);
    }

    /// A code rotated by `deg` degrees about the frame's centre, `m`-px
    /// modules, light modules and background (a negative, as stage 1e
    /// sees it), and its version and finder centres (tl, tr, bl).
    fn rotated_code(payload: &str, m: f64, deg: f64) -> (Frame, usize, [(f64, f64); 3]) {
        let code = qrcode::QrCode::new(payload.as_bytes()).expect("code");
        let n = code.width();
        let colors = code.to_colors();
        let side = ((n as f64 + 12.0) * m * 1.5) as usize;
        let (c, s) = (deg.to_radians().cos(), deg.to_radians().sin());
        let half = side as f64 / 2.0;
        let cm = n as f64 / 2.0;
        // Module (u, v) → pixel.
        let to_px = |u: f64, v: f64| {
            let (x, y) = ((u - cm) * m, (v - cm) * m);
            (half + x * c - y * s, half + x * s + y * c)
        };
        let mut luma = vec![230u8; side * side];
        for py in 0..side {
            for px in 0..side {
                let (x, y) = (px as f64 + 0.5 - half, py as f64 + 0.5 - half);
                let u = (x * c + y * s) / m + cm;
                let v = (-x * s + y * c) / m + cm;
                if u >= 0.0 && v >= 0.0 && (u as usize) < n && (v as usize) < n {
                    let dark = colors[v as usize * n + u as usize] == qrcode::Color::Dark;
                    luma[py * side + px] = if dark { 25 } else { 230 };
                }
            }
        }
        let far = n as f64 - 3.5;
        let version = (n - 17) / 4;
        let frame = Frame::from_luma(side, side, luma).expect("frame");
        (
            frame,
            version,
            [to_px(3.5, 3.5), to_px(far, 3.5), to_px(3.5, far)],
        )
    }

    #[test]
    fn the_third_finder_pattern_is_predicted_from_a_side_or_the_diagonal() {
        // Rendered codes rotated 2°, 17°, … 347°, their finder patterns as the
        // detector measures them (run-length module sizes, 1 / cos of the
        // rotation too big): from each side pair and from the diagonal
        // pair, the first guess is the true third pattern, with the code's
        // version, and no guess is solid. (With the unrotated module the
        // diagonal of a code rotated ~30° looked like a side: its guesses
        // came after four wrong side ones.)
        for (payload, m) in [
            ("TKT-1E", 4.0),
            ("ENT1.a-version-3-or-so-payload-here", 3.0),
        ] {
            for step in 0..24 {
                let deg = step as f64 * 15.0 + 2.0;
                let (frame, version, truth) = rotated_code(payload, m, deg);
                let radius = Decoder::adaptive_radius((frame.width(), frame.height()), Some(m));
                let bits = LocalMean::new(&frame).threshold(radius, 5, 4);
                let found =
                    super::super::finder::find_finders(&bits, frame.width(), frame.height());
                let nearest = |p: (f64, f64)| {
                    *found
                        .iter()
                        .filter(|f| f.count >= 3)
                        .min_by(|a, b| {
                            let da = (a.x - p.0).hypot(a.y - p.1);
                            let db = (b.x - p.0).hypot(b.y - p.1);
                            da.total_cmp(&db)
                        })
                        .expect("a finder pattern")
                };
                let [tl, tr, bl] = truth.map(nearest);
                for (a, b, third) in [(tl, bl, tr), (tr, tl, bl), (tr, bl, tl)] {
                    let got = third_finder_candidates(&frame, a, b);
                    let first = got.first().unwrap_or_else(|| {
                        panic!("{deg}° no guess: {a:?} {b:?} {third:?} {found:?} {truth:?}")
                    });
                    let off = (first.0.x - third.x).hypot(first.0.y - third.y);
                    assert!(
                        off < 2.0 * m && first.1 == version,
                        "{deg}°, v{version}: first guess {first:?}, true {third:?}, all {got:?}"
                    );
                    assert!(got.len() <= 6 && got.iter().all(|g| g.0.count < 3));
                }
            }
        }
    }

    #[test]
    fn stage_1e_reads_nothing_on_frames_without_a_code_and_guesses_at_most_six_times() {
        // Two light-on-dark finder patterns with nothing else (a negative
        // with two solid patterns: what reaches 1e), in several sizes and
        // places, plus empty and noise frames: no read, at most six
        // guesses a frame, and 1e does run on the first kind.
        let finder_pair = |w: usize, h: usize, m: usize, gap: usize| {
            let mut luma = vec![10u8; w * h];
            for (ox, oy) in [(40, 40), (40 + gap * m, 40)] {
                for my in 0..7 {
                    for mx in 0..7 {
                        let ring = (mx as i32 - 3).abs().max((my as i32 - 3).abs());
                        let light = ring == 3 || ring <= 1;
                        for py in 0..m {
                            for px in 0..m {
                                let i = (oy + my * m + py) * w + ox + mx * m + px;
                                luma[i] = if light { 220 } else { 10 };
                            }
                        }
                    }
                }
            }
            Frame::from_luma(w, h, luma).expect("frame")
        };
        let mut state = 5u32;
        let mut noise = |w: usize, h: usize| {
            let luma = (0..w * h)
                .map(|_| {
                    state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (state >> 16) as u8
                })
                .collect();
            Frame::from_luma(w, h, luma).expect("frame")
        };
        let mut reached = 0;
        let frames = vec![
            (finder_pair(640, 480, 4, 14), true),
            (finder_pair(640, 480, 3, 40), true),
            (finder_pair(1280, 720, 5, 24), true),
            (finder_pair(1280, 720, 2, 150), true),
            (
                Frame::from_luma(640, 480, vec![128; 640 * 480]).unwrap(),
                false,
            ),
            (noise(640, 480), false),
            (noise(1280, 720), false),
        ];
        for (frame, pair) in frames {
            let mut decoder = Decoder::new(DecoderConfig {
                time_budget: Duration::from_secs(60),
                ..DecoderConfig::default()
            });
            assert!(decoder.decode(&frame).is_empty());
            let stats = decoder.last_stats();
            assert!(stats.predicted <= MAX_PREDICTED, "{stats:?}");
            assert_eq!(stats.from_predicted, 0, "{stats:?}");
            if pair {
                assert!(stats.negative, "{stats:?}");
                reached += usize::from(stats.predicted > 0);
            }
        }
        assert!(
            reached >= 3,
            "1e ran on {reached} of the 4 two-pattern frames"
        );
    }

    /// `n` finder patterns, dark on light (`dark` false: light on dark),
    /// with `m`-px modules, their top-left corners at `at`.
    fn finder_patterns(w: usize, h: usize, m: usize, at: &[(usize, usize)], dark: bool) -> Frame {
        let (bg, fg) = if dark { (220u8, 20u8) } else { (10u8, 220u8) };
        let mut luma = vec![bg; w * h];
        for &(ox, oy) in at {
            for my in 0..7 {
                for mx in 0..7 {
                    let ring = (mx as i32 - 3).abs().max((my as i32 - 3).abs());
                    let v = if ring == 3 || ring <= 1 { fg } else { bg };
                    for py in 0..m {
                        let row = (oy + my * m + py) * w + ox + mx * m;
                        luma[row..row + m].fill(v);
                    }
                }
            }
        }
        Frame::from_luma(w, h, luma).expect("frame")
    }

    #[test]
    fn the_cap_on_predicted_finder_patterns_holds_across_stage_1_calls_of_a_frame() {
        // Two dark-on-light finder patterns in a negative: what reaches 1e.
        // The cap is per frame (the stats of one `decode`), not per call of
        // stage 1: a frame's ROI crops, pyramid crops and upscales each run
        // stage 1, and each reaching 1e must not get six guesses of its own.
        let neg = finder_patterns(640, 480, 4, &[(40, 40), (96, 40)], true);
        let deadline = Deadline::start(Duration::from_secs(60));
        let mut dec = Decoder::default();
        let stage1 = |dec: &mut Decoder| {
            let mut found = Found {
                negative: true,
                ..Found::default()
            };
            let place = Placement::IDENTITY;
            let no = (Tried::default(), Vec::new());
            dec.stage1(
                &neg, None, place, deadline, &mut found, None, false, no, None,
            );
            assert!(found.codes.is_empty());
        };
        stage1(&mut dec);
        // Four places on the image: two beside each pattern is off it.
        assert!(dec.stats.predicted >= 2, "{:?}", dec.stats);
        dec.stats.predicted = MAX_PREDICTED - 1;
        stage1(&mut dec);
        assert_eq!(dec.stats.predicted, MAX_PREDICTED, "{:?}", dec.stats);
    }

    #[test]
    fn found_keeps_one_result_per_payload() {
        let mut f = Found::default();
        let c = [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)];
        assert!(f.add("A".into(), c));
        assert!(!f.add("A".into(), c));
        assert!(f.covers((5.0, 5.0)));
        assert!(!f.covers((50.0, 5.0)));
    }
}
