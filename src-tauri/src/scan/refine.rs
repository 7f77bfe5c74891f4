//! Grid refinement and grayscale re-sampling of a located QR grid.
//!
//! About half of rqrr's misses on camera frames are grids it *found* but could
//! not error-correct. rqrr samples one binarised pixel per module through a
//! perspective fitted to its own binarisation; with 2–4 px modules, blur and
//! JPEG blocking, a fraction of a pixel of misfit or a threshold that is a few
//! grey levels off flips enough modules to exceed the Reed–Solomon budget.
//!
//! Here we start from rqrr's corners, nudge the four corners so that the
//! modules whose colour the standard fixes (finder patterns, separators, timing
//! lines, alignment patterns) match the grayscale image best, then sample every
//! module in grayscale and try a few thresholds (local mean in module space,
//! global two-class split), each checked by rqrr's own Reed–Solomon decoder.
//! A wrong guess cannot produce a payload: the error correction rejects it.

use super::budget::Deadline;

use super::geometry::Homography;
use super::Frame;

/// Module-space corners (0,0),(n,0),(n,n),(0,n) in image pixels.
type Corners = [(f64, f64); 4];

/// A module whose colour the QR standard fixes.
#[derive(Clone, Copy)]
struct Known {
    x: f64,
    y: f64,
    dark: bool,
}

/// Alignment pattern centre coordinates for a version (ISO 18004 Annex E),
/// computed the way Nayuki's reference encoder does rather than tabulated.
fn alignment_positions(version: usize) -> Vec<usize> {
    if version < 2 {
        return Vec::new();
    }
    let size = version * 4 + 17;
    let n = version / 7 + 2;
    let step = if version == 32 {
        26
    } else {
        (version * 4 + n * 2 + 1) / (n * 2 - 2) * 2
    };
    let mut pos = vec![6];
    let mut p = size - 7;
    let mut tail = Vec::with_capacity(n - 1);
    for _ in 0..n - 1 {
        tail.push(p);
        p = p.saturating_sub(step);
    }
    tail.reverse();
    pos.extend(tail);
    pos
}

fn known_modules(size: usize) -> Vec<Known> {
    let mut out = Vec::with_capacity(400);
    let n = size as i64;
    let mut push = |x: i64, y: i64, dark: bool| {
        if (0..n).contains(&x) && (0..n).contains(&y) {
            out.push(Known {
                x: x as f64 + 0.5,
                y: y as f64 + 0.5,
                dark,
            });
        }
    };
    // Finder patterns with their one-module light separator.
    for (ox, oy) in [(0i64, 0i64), (n - 7, 0), (0, n - 7)] {
        for dy in -1..=7i64 {
            for dx in -1..=7i64 {
                let ring = (dx - 3).abs().max((dy - 3).abs());
                push(ox + dx, oy + dy, ring == 3 || ring <= 1);
            }
        }
    }
    // Timing patterns between the finders.
    for i in 8..n - 8 {
        push(i, 6, i % 2 == 0);
        push(6, i, i % 2 == 0);
    }
    // Alignment patterns, skipping the three that would overlap finders.
    let version = (size.saturating_sub(17)) / 4;
    let pos = alignment_positions(version);
    let last = pos.len().saturating_sub(1);
    for (i, &cy) in pos.iter().enumerate() {
        for (j, &cx) in pos.iter().enumerate() {
            // The three corners next to finder patterns hold no alignment pattern.
            let next_to_finder = (i == 0 && (j == 0 || j == last)) || (j == 0 && i == last);
            if next_to_finder {
                continue;
            }
            for dy in -2..=2i64 {
                for dx in -2..=2i64 {
                    let ring = dx.abs().max(dy.abs());
                    push(cx as i64 + dx, cy as i64 + dy, ring != 1);
                }
            }
        }
    }
    out
}

fn homography(size: usize, c: &Corners) -> Option<Homography> {
    Homography::rect_to_quad(size as f64, size as f64, *c)
}

/// How well the fixed patterns match: light modules add their brightness,
/// dark ones subtract it. The fixed patterns are about half dark, so a grid
/// parked on a flat area scores about zero, and one on the code scores high.
fn fitness(frame: &Frame, h: &Homography, known: &[Known]) -> f64 {
    let mut score = 0.0;
    for k in known {
        let (px, py) = h.map(k.x, k.y);
        let v = match frame.sample(px, py) {
            Some(v) => v as f64,
            // Off-frame: count as maximally wrong so the fit stays on the image.
            None => {
                if k.dark {
                    255.0
                } else {
                    0.0
                }
            }
        };
        score += if k.dark { -v } else { v };
    }
    score
}

/// Fraction of the fixed-colour modules that come out right when split at
/// the midpoint of their expected-dark and expected-light means. A grid
/// hypothesis (size, fit) that is wrong lands near 0.5–0.7; a right one on a
/// readable code above ~0.85. Used to drop hopeless hypotheses before the
/// comparatively expensive sampling and decoding.
fn match_fraction(frame: &Frame, h: &Homography, known: &[Known]) -> f64 {
    let mut vals = Vec::with_capacity(known.len());
    let (mut dark_sum, mut dark_n, mut light_sum, mut light_n) = (0.0, 0.0, 0.0, 0.0);
    for k in known {
        let (px, py) = h.map(k.x, k.y);
        let Some(v) = frame.sample(px, py) else {
            return 0.0;
        };
        let v = v as f64;
        vals.push((v, k.dark));
        if k.dark {
            dark_sum += v;
            dark_n += 1.0;
        } else {
            light_sum += v;
            light_n += 1.0;
        }
    }
    if dark_n == 0.0 || light_n == 0.0 {
        return 0.0;
    }
    let (dm, lm) = (dark_sum / dark_n, light_sum / light_n);
    if lm - dm < 4.0 {
        return 0.0;
    }
    let t = (dm + lm) / 2.0;
    let right = vals.iter().filter(|(v, dark)| (*v < t) == *dark).count();
    right as f64 / vals.len() as f64
}

/// Correlation of the two timing lines (row and column 6 between the
/// finders) with their alternating pattern under a grid hypothesis. The
/// lines run right next to the finders that fixed the hypothesis, so they
/// are placed well even before refinement: a good test of the grid size.
fn timing_score(frame: &Frame, h: &Homography, size: usize) -> f64 {
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for i in 8..size.saturating_sub(8) {
        let expect = if i % 2 == 0 { -1.0 } else { 1.0 };
        for (u, v) in [(i as f64 + 0.5, 6.5), (6.5, i as f64 + 0.5)] {
            let (px, py) = h.map(u, v);
            if let Some(val) = frame.sample(px, py) {
                xs.push(val as f64);
                ys.push(expect);
            }
        }
    }
    let n = xs.len() as f64;
    if n < 4.0 {
        return 0.0;
    }
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in xs.iter().zip(&ys) {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    if sxx <= 0.0 || syy <= 0.0 {
        return 0.0;
    }
    sxy / (sxx * syy).sqrt()
}

/// Coordinate-wise hill climb on the 8 corner coordinates, with step sizes
/// shrinking from half a module to 1/8 of a module.
fn refine_corners(frame: &Frame, size: usize, start: Corners, deadline: Deadline) -> Corners {
    let known = known_modules(size);
    let Some(h0) = homography(size, &start) else {
        return start;
    };
    let mut best_score = fitness(frame, &h0, &known);
    let mut best = start;
    let module_px = {
        let (a, b) = (start[0], start[1]);
        ((b.0 - a.0).hypot(b.1 - a.1) / size as f64).max(0.5)
    };
    let mut step = module_px * 0.5;
    while step > module_px / 10.0 {
        let mut improved = true;
        let mut passes = 0;
        while improved && passes < 3 {
            improved = false;
            passes += 1;
            for corner in 0..4 {
                for axis in 0..2 {
                    for sign in [-1.0, 1.0] {
                        let mut cand = best;
                        if axis == 0 {
                            cand[corner].0 += sign * step;
                        } else {
                            cand[corner].1 += sign * step;
                        }
                        let Some(h) = homography(size, &cand) else {
                            continue;
                        };
                        let s = fitness(frame, &h, &known);
                        if s > best_score {
                            best_score = s;
                            best = cand;
                            improved = true;
                        }
                    }
                }
            }
            if deadline.passed() {
                return best;
            }
        }
        step *= 0.5;
    }
    best
}

/// Grayscale value at every module centre, optionally averaged with four
/// points a quarter-module away (helps against noise once modules are ≥3 px).
fn sample_modules(frame: &Frame, h: &Homography, size: usize, spread: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(size * size);
    for y in 0..size {
        for x in 0..size {
            let (cx, cy) = (x as f64 + 0.5, y as f64 + 0.5);
            let mut acc = 0.0f32;
            let mut n = 0.0f32;
            let offsets: &[(f64, f64)] = if spread > 0.0 {
                &[(0.0, 0.0), (-1.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.0, 1.0)]
            } else {
                &[(0.0, 0.0)]
            };
            for &(dx, dy) in offsets {
                let (px, py) = h.map(cx + dx * spread, cy + dy * spread);
                if let Some(v) = frame.sample(px, py) {
                    acc += v;
                    n += 1.0;
                }
            }
            out.push(if n > 0.0 { acc / n } else { 255.0 });
        }
    }
    out
}

/// Threshold each module against the mean of the modules within `radius`
/// (in module units); masking keeps QR data close to half dark locally, so the
/// local mean sits between the two colours even under a glare gradient.
fn local_mean_threshold(samples: &[f32], size: usize, radius: usize) -> Vec<f32> {
    let stride = size + 1;
    let mut sat = vec![0f64; stride * stride];
    for y in 0..size {
        let mut row = 0f64;
        for x in 0..size {
            row += samples[y * size + x] as f64;
            sat[(y + 1) * stride + x + 1] = sat[y * stride + x + 1] + row;
        }
    }
    let mut thr = Vec::with_capacity(size * size);
    for y in 0..size {
        let y0 = y.saturating_sub(radius);
        let y1 = (y + radius + 1).min(size);
        for x in 0..size {
            let x0 = x.saturating_sub(radius);
            let x1 = (x + radius + 1).min(size);
            let sum = sat[y1 * stride + x1] + sat[y0 * stride + x0]
                - sat[y0 * stride + x1]
                - sat[y1 * stride + x0];
            thr.push((sum / ((x1 - x0) * (y1 - y0)) as f64) as f32);
        }
    }
    thr
}

/// Isodata two-class split over all module samples.
fn global_threshold(samples: &[f32]) -> f32 {
    let mut t = samples.iter().sum::<f32>() / samples.len().max(1) as f32;
    for _ in 0..8 {
        let (mut lo, mut nlo, mut hi, mut nhi) = (0.0, 0.0, 0.0, 0.0);
        for &s in samples {
            if s < t {
                lo += s;
                nlo += 1.0;
            } else {
                hi += s;
                nhi += 1.0;
            }
        }
        if nlo == 0.0 || nhi == 0.0 {
            break;
        }
        t = (lo / nlo + hi / nhi) / 2.0;
    }
    t
}

fn try_decode(size: usize, samples: &[f32], thr: &dyn Fn(usize) -> f32) -> Option<String> {
    let grid = rqrr::SimpleGrid::from_func(size, |x, y| {
        let i = y * size + x;
        samples[i] < thr(i)
    });
    let grid = rqrr::Grid::new(grid);
    // rqrr has internal asserts; a corrupt grid must never take the app down.
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| grid.decode()));
    match res {
        Ok(Ok((_meta, text))) if !text.is_empty() => Some(text),
        _ => None,
    }
}

/// Sample and decode a grid under one homography with the threshold variants.
fn decode_with(frame: &Frame, h: &Homography, size: usize) -> Option<String> {
    for spread in [0.0, 0.22] {
        let samples = sample_modules(frame, h, size, spread);
        let local3 = local_mean_threshold(&samples, size, 3);
        if let Some(t) = try_decode(size, &samples, &|i| local3[i]) {
            return Some(t);
        }
        let g = global_threshold(&samples);
        if let Some(t) = try_decode(size, &samples, &|_| g) {
            return Some(t);
        }
        let local6 = local_mean_threshold(&samples, size, 6);
        if let Some(t) = try_decode(size, &samples, &|i| local6[i]) {
            return Some(t);
        }
    }
    None
}

/// A grid found by rqrr (or by us) in frame coordinates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GridCandidate {
    /// rqrr's bounds: module-space (0,0),(n+1,0),(n+1,n+1),(0,n+1), mapped
    /// (rqrr publishes them one module past the grid).
    pub rqrr_bounds: [(f64, f64); 4],
    pub size: usize,
}

impl GridCandidate {
    /// Module space → image homography.
    pub fn homography(&self) -> Option<Homography> {
        let n = self.size as f64 + 1.0;
        Homography::rect_to_quad(n, n, self.rqrr_bounds)
    }

    /// The four corners of the code itself (module space 0..n).
    pub fn corners(&self) -> Option<Corners> {
        let h = self.homography()?;
        let n = self.size as f64;
        Some([h.map(0.0, 0.0), h.map(n, 0.0), h.map(n, n), h.map(0.0, n)])
    }
}

/// Re-sample a detected grid: refine its fit, then try several thresholds
/// and, if time allows, the neighbouring grid sizes (rqrr counts
/// timing-pattern transitions to get the size, and blur makes that count
/// wrong by one version now and then).
pub(crate) fn refine_and_decode(
    frame: &Frame,
    cand: &GridCandidate,
    deadline: Deadline,
) -> Option<(String, Corners)> {
    let start = cand.corners()?;
    let sizes = [cand.size, cand.size + 4, cand.size.saturating_sub(4)];
    for (attempt, &size) in sizes.iter().enumerate() {
        if !(21..=177).contains(&size) {
            continue;
        }
        if attempt > 0 && deadline.passed() {
            break;
        }
        let init = if size == cand.size {
            start
        } else {
            rescale_corners(&start, cand.size, size)?
        };
        if let Some(r) = decode_at(frame, size, init, false, attempt == 0, deadline) {
            return Some(r);
        }
    }
    None
}

/// Decode a code whose three finder-pattern centres are known (from
/// [`super::finder`]). The fourth corner is first put where a parallelogram
/// would have it, then searched for, because perspective moves it.
pub(crate) fn decode_from_finders(
    frame: &Frame,
    finders: [(f64, f64); 3],
    modules: [f64; 3],
    size_estimate: usize,
    deadline: Deadline,
) -> Option<(String, Corners)> {
    decode_from_finders_within(frame, finders, modules, size_estimate, 2, deadline)
}

/// [`decode_from_finders`], trying the versions up to `spread` either side
/// of the estimate's.
pub(crate) fn decode_from_finders_within(
    frame: &Frame,
    [tl, tr, bl]: [(f64, f64); 3],
    modules: [f64; 3],
    size_estimate: usize,
    spread: i64,
    deadline: Deadline,
) -> Option<(String, Corners)> {
    // The size estimate from finder spacing is rough under perspective and
    // rotation; rank the neighbouring sizes by how well their timing
    // patterns fit, and fit only the best two.
    let sizes: Vec<usize> = (-spread..=spread)
        .map(|k| size_estimate as i64 + 4 * k)
        .filter(|s| (21..=177).contains(s))
        .map(|s| s as usize)
        .collect();
    // (timing score, grid size, grid fitted to the alignment pattern if
    // already computed, with whether the pattern was found)
    type Hypothesis = (f64, usize, Option<(Homography, bool)>);
    let mut hypotheses: Vec<Hypothesis> = sizes
        .iter()
        .filter_map(|&size| {
            let h = guess_from_finders([tl, tr, bl], modules, size)?;
            Some((timing_score(frame, &h, size), size, None))
        })
        .collect();
    hypotheses.sort_by(|a, b| b.0.total_cmp(&a.0));
    // Under strong perspective the three-point guess drifts off the timing
    // lines and no size scores clearly; then score each size again with its
    // alignment-pattern fit (dearer: a local search per size).
    if hypotheses.first().is_some_and(|h| h.0 < 0.5) {
        hypotheses = sizes
            .iter()
            .filter_map(|&size| {
                let (h, aligned) = grid_from_finders(frame, [tl, tr, bl], modules, size)?;
                Some((timing_score(frame, &h, size), size, Some((h, aligned))))
            })
            .collect();
        hypotheses.sort_by(|a, b| b.0.total_cmp(&a.0));
    }
    for (rank, (score, size, h)) in hypotheses.into_iter().take(2).enumerate() {
        // A timing line that does not alternate is no QR grid: this is what
        // turns away most triples made of texture, cheaply.
        if score < 0.2 || (rank > 0 && deadline.passed()) {
            break;
        }
        let Some((h, aligned)) =
            h.or_else(|| grid_from_finders(frame, [tl, tr, bl], modules, size))
        else {
            continue;
        };
        let n = size as f64;
        let init = [h.map(0.0, 0.0), h.map(n, 0.0), h.map(n, n), h.map(0.0, n)];
        // With the alignment pattern found, the fourth corner is known; only
        // a guessed one needs the coarse search.
        if let Some(r) = decode_at(frame, size, init, !aligned, rank == 0, deadline) {
            return Some(r);
        }
    }
    None
}

/// Module → image homography from the three finder centres alone.
///
/// The fourth point gets a perspective correction: each finder's module size
/// tells the local scale, so the right edge is as much longer than the left
/// as the top-right finder is bigger than the top-left one (likewise for the
/// bottom edge). A plain parallelogram misses the corner by up to ~9 modules
/// on a tilted ticket, beyond any local search.
fn guess_from_finders(
    [tl, tr, bl]: [(f64, f64); 3],
    [m_tl, m_tr, m_bl]: [f64; 3],
    size: usize,
) -> Option<Homography> {
    let n = size as f64;
    let (sr, sb) = if m_tl > 0.0 {
        ((m_tr / m_tl).clamp(0.4, 2.5), (m_bl / m_tl).clamp(0.4, 2.5))
    } else {
        (1.0, 1.0)
    };
    let p1 = (tr.0 + (bl.0 - tl.0) * sr, tr.1 + (bl.1 - tl.1) * sr);
    let p2 = (bl.0 + (tr.0 - tl.0) * sb, bl.1 + (tr.1 - tl.1) * sb);
    let br = ((p1.0 + p2.0) / 2.0, (p1.1 + p2.1) / 2.0);
    let centres = Homography::unit_square_to_quad([
        (3.5, 3.5),
        (n - 3.5, 3.5),
        (n - 3.5, n - 3.5),
        (3.5, n - 3.5),
    ])?
    .inverse()?;
    Some(Homography::unit_square_to_quad([tl, tr, br, bl])?.then_after(&centres))
}

/// [`guess_from_finders`], then, for version 2 and up, the projective part
/// fixed by the bottom-right alignment pattern found near its predicted spot.
///
/// The flag tells whether the alignment pattern was found (if not, the
/// fourth corner is still only a guess).
fn grid_from_finders(
    frame: &Frame,
    [tl, tr, bl]: [(f64, f64); 3],
    modules: [f64; 3],
    size: usize,
) -> Option<(Homography, bool)> {
    let guess = guess_from_finders([tl, tr, bl], modules, size)?;
    if size <= 21 {
        return Some((guess, false));
    }
    let Some(align) = locate_alignment(frame, &guess, size) else {
        return Some((guess, false));
    };
    let n = size as f64;
    let src = Homography::unit_square_to_quad([
        (3.5, 3.5),
        (n - 3.5, 3.5),
        (n - 6.5, n - 6.5),
        (3.5, n - 3.5),
    ])?;
    let dst = Homography::unit_square_to_quad([tl, tr, align, bl])?;
    Some((dst.then_after(&src.inverse()?), true))
}

/// Search ±4 modules around the predicted position of the bottom-right
/// alignment pattern (centre at module n-6.5) for the 5x5 dark-light-dark
/// target; `None` when nothing there has the contrast of one.
fn locate_alignment(frame: &Frame, guess: &Homography, size: usize) -> Option<(f64, f64)> {
    let c = size as f64 - 6.5;
    let origin = guess.map(c, c);
    let ex = {
        let p = guess.map(c + 1.0, c);
        (p.0 - origin.0, p.1 - origin.1)
    };
    let ey = {
        let p = guess.map(c, c + 1.0);
        (p.0 - origin.0, p.1 - origin.1)
    };
    // The candidate centres lie on a quarter-module lattice (±16 steps)
    // and each looks at the 5x5 modules around it, whole modules (4 steps)
    // apart: every sample is a lattice point within ±24 steps. Sampled once
    // each (2,401 samples instead of 33 × 33 × 25 = 27,225).
    const STEPS: i32 = 16;
    const SPAN: i32 = STEPS + 8;
    const SIDE: usize = (2 * SPAN + 1) as usize;
    let at = |lx: i32, ly: i32| {
        let (du, dv) = (lx as f64 * 0.25, ly as f64 * 0.25);
        (
            origin.0 + du * ex.0 + dv * ey.0,
            origin.1 + du * ex.1 + dv * ey.1,
        )
    };
    let mut lattice = Vec::with_capacity(SIDE * SIDE);
    for ly in -SPAN..=SPAN {
        for lx in -SPAN..=SPAN {
            let p = at(lx, ly);
            lattice.push(frame.sample(p.0, p.1));
        }
    }
    let value = |lx: i32, ly: i32| lattice[(ly + SPAN) as usize * SIDE + (lx + SPAN) as usize];
    let mut best: Option<(f64, (f64, f64))> = None;
    for sy in -STEPS..=STEPS {
        for sx in -STEPS..=STEPS {
            let (mut dark, mut light) = (0.0f64, 0.0f64);
            let mut ok = true;
            'rows: for j in -2i32..=2 {
                for i in -2i32..=2 {
                    let Some(v) = value(sx + 4 * i, sy + 4 * j) else {
                        ok = false;
                        break 'rows;
                    };
                    if i.abs().max(j.abs()) == 1 {
                        light += v as f64;
                    } else {
                        dark += v as f64;
                    }
                }
            }
            if !ok {
                continue;
            }
            // 8 light modules around the centre, 17 dark (centre + outer ring).
            let score = light / 8.0 - dark / 17.0;
            if best.is_none_or(|b| score > b.0) {
                best = Some((score, at(sx, sy)));
            }
        }
    }
    best.filter(|b| b.0 > 10.0).map(|b| b.1)
}

/// Fit, sample and decode one grid-size hypothesis. `search_corner`: the
/// bottom-right corner is only a guess and gets a coarse search first.
/// `shifts`: also try quarter-module shifts (when the fit may have converged
/// slightly off).
fn decode_at(
    frame: &Frame,
    size: usize,
    init: Corners,
    search_corner: bool,
    shifts: bool,
    deadline: Deadline,
) -> Option<(String, Corners)> {
    // Fast path: on a clean frame the initial fit is already good enough,
    // and one sampling + Reed–Solomon pass (~0.1 ms) saves the refinement.
    if let Some(h) = homography(size, &init) {
        let samples = sample_modules(frame, &h, size, 0.0);
        let local3 = local_mean_threshold(&samples, size, 3);
        if let Some(t) = try_decode(size, &samples, &|i| local3[i]) {
            return Some((t, init));
        }
    }
    // Version 1 has no alignment pattern to pin the fourth corner; the
    // parallelogram guess is all there is, and small codes barely bend.
    let init = if search_corner && size > 21 {
        search_fourth_corner(frame, size, init)
    } else {
        init
    };
    let refined = refine_corners(frame, size, init, deadline);
    let h = homography(size, &refined)?;
    // Below this the hypothesis is wrong or the code unreadable; sampling
    // and Reed–Solomon would only confirm it, at several times the cost.
    if match_fraction(frame, &h, &known_modules(size)) < 0.75 {
        return None;
    }
    if let Some(t) = decode_with(frame, &h, size) {
        return Some((t, refined));
    }
    if shifts {
        for (dx, dy) in [(0.25, 0.0), (-0.25, 0.0), (0.0, 0.25), (0.0, -0.25)] {
            if deadline.passed() {
                return None;
            }
            let shifted = h.then_after(&Homography::translate(dx, dy));
            if let Some(t) = decode_with(frame, &shifted, size) {
                let n = size as f64;
                let c = [
                    shifted.map(0.0, 0.0),
                    shifted.map(n, 0.0),
                    shifted.map(n, n),
                    shifted.map(0.0, n),
                ];
                return Some((t, c));
            }
        }
    }
    None
}

/// Grid search (±3 modules, half-module steps) for the bottom-right corner,
/// scored by the fixed patterns. Needed under perspective, where the
/// parallelogram guess can be several modules off, beyond what the hill
/// climb's half-module steps recover.
fn search_fourth_corner(frame: &Frame, size: usize, init: Corners) -> Corners {
    let known = known_modules(size);
    let module_px = {
        let (a, b) = (init[0], init[1]);
        ((b.0 - a.0).hypot(b.1 - a.1) / size as f64).max(0.5)
    };
    let mut best = init;
    let mut best_score = f64::NEG_INFINITY;
    for dy in -6..=6 {
        for dx in -6..=6 {
            let mut cand = init;
            cand[2].0 += dx as f64 * 0.5 * module_px;
            cand[2].1 += dy as f64 * 0.5 * module_px;
            if let Some(h) = homography(size, &cand) {
                let s = fitness(frame, &h, &known);
                if s > best_score {
                    best_score = s;
                    best = cand;
                }
            }
        }
    }
    best
}

/// Re-express corners for a different grid size, keeping the finder-pattern
/// centres (module 3.5 and n-3.5) where they are in the image.
fn rescale_corners(c: &Corners, from: usize, to: usize) -> Option<Corners> {
    let h = homography(from, c)?;
    let k = (from as f64 - 7.0) / (to as f64 - 7.0);
    let map = |u: f64| 3.5 + (u - 3.5) * k;
    let n = to as f64;
    Some([
        h.map(map(0.0), map(0.0)),
        h.map(map(n), map(0.0)),
        h.map(map(n), map(n)),
        h.map(map(0.0), map(n)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_positions_match_the_standard_table() {
        let cases: &[(usize, &[usize])] = &[
            (1, &[]),
            (2, &[6, 18]),
            (7, &[6, 22, 38]),
            (8, &[6, 24, 42]),
            (14, &[6, 26, 46, 66]),
            (32, &[6, 34, 60, 86, 112, 138]),
            (40, &[6, 30, 58, 86, 114, 142, 170]),
        ];
        for (v, expected) in cases {
            assert_eq!(&alignment_positions(*v), expected, "version {v}");
        }
    }

    #[test]
    fn known_modules_of_version_1_are_the_finders_and_timing() {
        let k = known_modules(21);
        // 3 finders with separators clipped at the edges (8x8 each) + 2x5 timing.
        assert_eq!(k.len(), 3 * 64 + 10);
        let dark = k.iter().filter(|m| m.dark).count();
        assert_eq!(dark, 3 * 33 + 2 * 3);
    }

    #[test]
    fn thresholds_split_two_levels() {
        let samples: Vec<f32> = (0..25)
            .map(|i| if i % 3 == 0 { 60.0 } else { 180.0 })
            .collect();
        let g = global_threshold(&samples);
        assert!(g > 60.0 && g < 180.0);
        let local = local_mean_threshold(&samples, 5, 2);
        assert!(local.iter().all(|&t| t > 60.0 && t < 180.0));
    }
}
