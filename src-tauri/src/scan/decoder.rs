//! The frame → payloads pipeline.
//!
//! Order of attempts, cheapest first, each one only when the previous left
//! something unexplained and the frame's time budget allows:
//!
//! 0. **Region of interest**: where codes were in the last frames. A code
//!    held up to the camera stays put for many frames; a small crop decodes
//!    in a fraction of the full-frame time.
//! 1. **Plain rqrr** on the whole frame; grids rqrr finds but cannot
//!    error-correct are re-sampled in grayscale ([`super::refine`]).
//! 2. **Adaptive threshold** (integral-image local mean) and rqrr's detector
//!    on that bitmap: finds finder patterns that glare or low contrast hide
//!    from rqrr's row-wise threshold.
//! 3. **Crop and upscale** each grid found but not decoded, so 2–4 px
//!    modules become ~6 px, then 1–2 again on the crop.
//!
//! We never downscale: it halves rqrr's time but also its read rate on 720p,
//! where codes held at arm's length are only 2–4 px per module.

use std::time::{Duration, Instant};

use super::binarize::{adaptive_threshold, rqrr_threshold};
use super::detect::{detect, Detection};
use super::finder::{find_finders, group, Finder};
use super::refine::{decode_from_finders, refine_and_decode, GridCandidate};
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
    /// No new fallback stage starts once this much time has passed in a frame.
    /// A stage already running finishes, so the worst case is budget plus one
    /// stage. At 30 fps a frame arrives every 33 ms.
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
    /// Run the two binarisations of a full frame on two threads.
    pub parallel: bool,
    /// At most this many finder-pattern triples are tried per bitmap.
    pub max_finder_attempts: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            time_budget: Duration::from_millis(25),
            roi_frames: 10,
            roi_margin: 0.6,
            max_upscaled_regions: 4,
            target_module_px: 6.0,
            parallel: true,
            max_finder_attempts: 6,
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
    /// Regions that were cropped and upscaled.
    pub upscaled: usize,
    /// The time budget ran out before every fallback was tried.
    pub out_of_time: bool,
}

/// Decodes QR codes from a stream of frames, remembering where the last
/// codes were. Use one `Decoder` per camera.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    config: DecoderConfig,
    /// Corners (frame pixels) of the codes read most recently.
    recent: Vec<[(f64, f64); 4]>,
    frames_since_read: u32,
    stats: DecodeStats,
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

/// Codes read so far in this frame.
#[derive(Default)]
struct Found {
    codes: Vec<(String, [(f64, f64); 4])>,
}

impl Found {
    fn add(&mut self, payload: String, corners: [(f64, f64); 4]) -> bool {
        // Several stages see the same code; one code, one result.
        if self.codes.iter().any(|(p, _)| *p == payload) {
            return false;
        }
        self.codes.push((payload, corners));
        true
    }

    /// Whether a point (frame pixels) lies within the bounding box of a code
    /// already read: a grid there is that code again, not worth re-sampling.
    fn covers(&self, p: (f64, f64)) -> bool {
        self.codes.iter().any(|(_, c)| {
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
    }

    /// Read every QR code in `frame`. Never panics, whatever the pixels.
    pub fn decode(&mut self, frame: &Frame) -> Vec<Decoded> {
        let start = Instant::now();
        let deadline = start + self.config.time_budget;
        self.stats = DecodeStats::default();
        let mut found = Found::default();
        if frame.is_empty() {
            return Vec::new();
        }

        let mut done = false;
        if !self.recent.is_empty() && self.frames_since_read <= self.config.roi_frames {
            let recent = self.recent.clone();
            let mut all_seen = true;
            for corners in &recent {
                let before = found.codes.len();
                if let Some((x0, y0, x1, y1)) = crop_rect(
                    corners,
                    self.config.roi_margin,
                    frame.width(),
                    frame.height(),
                ) {
                    let crop = frame.crop(x0, y0, x1, y1);
                    let place = Placement::IDENTITY.child(x0, y0, 1.0);
                    self.chain(&crop, place, deadline, &mut found, true, None);
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
            self.chain(frame, Placement::IDENTITY, deadline, &mut found, true, None);
        }

        if found.codes.is_empty() {
            self.frames_since_read = self.frames_since_read.saturating_add(1);
            if self.frames_since_read > self.config.roi_frames {
                self.recent.clear();
            }
        } else {
            self.frames_since_read = 0;
            self.recent = found.codes.iter().map(|(_, c)| *c).collect();
        }
        found
            .codes
            .into_iter()
            .map(|(payload, c)| Decoded {
                payload,
                bounds: c.map(|(x, y)| (x.round() as i32, y.round() as i32)),
            })
            .collect()
    }

    /// Detection under both binarisations, on two threads when the image is
    /// big enough for that to pay off (thread start-up is ~50 µs, a 720p
    /// detection ~8 ms). Both always run: a frame with one code found by the
    /// first binarisation may hold a second one only the other one finds.
    /// Returns the detections and the two bitmaps (plain, adaptive) for the
    /// finder-pattern stage.
    fn detect_both(
        &self,
        img: &Frame,
        module_px: Option<f64>,
    ) -> (Vec<Detection>, Vec<u8>, Vec<u8>) {
        // The window must be wider than a finder pattern (7 modules) so its
        // 3x3 dark centre stays below the local mean.
        let radius = match module_px {
            Some(m) => (m * 5.0) as usize,
            None => img.width().max(img.height()) / 20,
        }
        .clamp(6, 80);
        let plain = || {
            let bits = rqrr_threshold(img);
            (detect(img, &bits), bits)
        };
        let adaptive = || {
            let bits = adaptive_threshold(img, radius, 12, 6);
            (detect(img, &bits), bits)
        };
        let ((mut dets, pbits), (adets, abits)) =
            if self.config.parallel && img.width() * img.height() >= 200_000 {
                std::thread::scope(|scope| {
                    let other = scope.spawn(adaptive);
                    let p = plain();
                    // A panic in the other thread is already contained by
                    // `detect`; if the thread still failed, go on without it.
                    (p, other.join().unwrap_or_default())
                })
            } else {
                (plain(), adaptive())
            };
        dets.extend(adets);
        (dets, pbits, abits)
    }

    /// Our own finder-pattern detection and grouping on a bitmap (see
    /// [`super::finder`]): catches grids rqrr does not locate.
    fn finder_stage(
        &mut self,
        img: &Frame,
        bits: &[u8],
        place: Placement,
        deadline: Instant,
        found: &mut Found,
    ) {
        let finders = find_finders(bits, img.width(), img.height());
        // Real finder patterns are confirmed on several rows; single hits are
        // mostly texture, and each triple costs a decode attempt.
        let finders: Vec<Finder> = finders.into_iter().filter(|f| f.count >= 2).collect();
        let triples = group(&finders, 16);
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
            if attempts >= self.config.max_finder_attempts || Instant::now() > deadline {
                self.stats.out_of_time |= Instant::now() > deadline;
                break;
            }
            attempts += 1;
            if let Some((payload, c)) = decode_from_finders(img, t.tl, t.tr, t.bl, t.size, deadline)
            {
                self.stats.from_finders += 1;
                found.add(payload, c.map(|p| place.to_frame(p)));
                used.extend(t.members);
            }
        }
    }

    /// Stages 1–3 on one working image. `module_px` is known for upscaled
    /// crops and sizes the adaptive window.
    fn chain(
        &mut self,
        img: &Frame,
        place: Placement,
        deadline: Instant,
        found: &mut Found,
        allow_upscale: bool,
        module_px: Option<f64>,
    ) {
        let (detections, plain_bits, adaptive_bits) = self.detect_both(img, module_px);
        self.stats.stages = self.stats.stages.max(2);
        self.stats.grids += detections.len();

        // Grids rqrr decoded itself first, so re-sampling can skip them.
        let mut failed: Vec<GridCandidate> = Vec::new();
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
            // Both binarisations usually locate the same grid; re-sample the
            // second copy only if the first failed and its fit differs.
            let side = (corners[1].0 - corners[0].0).hypot(corners[1].1 - corners[0].1);
            if tried
                .iter()
                .any(|t| (t.0 - c.0).hypot(t.1 - c.1) < side / 40.0)
            {
                continue;
            }
            tried.push(c);
            if Instant::now() > deadline {
                self.stats.out_of_time = true;
                failed.push(grid);
                continue;
            }
            match refine_and_decode(img, &grid, deadline) {
                Some((payload, c)) => {
                    self.stats.resampled += 1;
                    found.add(payload, c.map(|p| place.to_frame(p)));
                }
                None => failed.push(grid),
            }
        }
        if Instant::now() < deadline {
            self.stats.stages = self.stats.stages.max(3);
            self.finder_stage(img, &adaptive_bits, place, deadline, found);
            self.finder_stage(img, &plain_bits, place, deadline, found);
        }
        if !allow_upscale {
            return;
        }

        self.stats.stages = self.stats.stages.max(4);
        let mut regions_done: Vec<(f64, f64)> = Vec::new();
        for cand in failed {
            if self.stats.upscaled >= self.config.max_upscaled_regions {
                break;
            }
            if Instant::now() > deadline {
                self.stats.out_of_time = true;
                return;
            }
            let Some(corners) = cand.corners() else {
                continue;
            };
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
            let module = side / cand.size as f64;
            if !(module.is_finite() && module > 0.0) {
                continue;
            }
            let factor = (self.config.target_module_px / module).clamp(1.5, 4.0);
            let Some((x0, y0, x1, y1)) = crop_rect(&corners, 0.15, img.width(), img.height())
            else {
                continue;
            };
            self.stats.upscaled += 1;
            let crop = img.crop(x0, y0, x1, y1).scaled(factor as f32);
            let child = place.child(x0, y0, factor);
            self.chain(&crop, child, deadline, found, false, Some(module * factor));
        }
    }
}
