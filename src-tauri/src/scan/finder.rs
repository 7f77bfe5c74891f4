//! Our own finder-pattern detector and grouping.
//!
//! Measured on the benchmark corpus, most of rqrr's misses are frames where
//! it locates no grid at all: its capstone flood fills break when 2–4 px
//! modules blur into their neighbours, and its grid-size estimate (counting
//! timing-pattern transitions along one pixel line) goes wrong at small module
//! sizes, after which the group is rejected. rqrr keeps its capstones private,
//! so we cannot repair that from outside; instead we find finder patterns the
//! way zxing does — run-length 1:1:3:1:1 scans on rows, confirmed on the
//! column and the row again through the centre — group them by geometry, and
//! hand each plausible triple to the grid refinement in [`super::refine`],
//! where Reed–Solomon decoding rejects every wrong guess.

/// A finder pattern centre, in pixel coordinates (pixel centres at +0.5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Finder {
    pub x: f64,
    pub y: f64,
    /// Estimated module size in pixels.
    pub module: f64,
    /// How many scan rows confirmed it; real patterns are seen on several.
    pub count: u32,
}

/// 1:1:3:1:1 within half a module per run (zxing's tolerance): with the
/// module m = total / 7, |r − m| < m / 2 for the outer runs and
/// |r − 3m| < 3m / 2 for the centre.
///
/// In integers, times 14: |14 r − 2 total| < total and |14 r − 6 total| <
/// 3 total. This is the scan's inner test (every five runs of every row);
/// the f64 form it replaces gave the same answers (see the test
/// `the_integer_ratio_test_is_the_f64_one`: a run exactly on a bound makes
/// total a multiple of 14, where m and 3m are exact in f64 too).
fn ratio_ok(r: &[usize; 5]) -> bool {
    let total: usize = r.iter().sum();
    if total < 7 {
        return false;
    }
    let off = |run: usize, times: usize| (14 * run).abs_diff(2 * times * total);
    off(r[0], 1) < total
        && off(r[1], 1) < total
        && off(r[2], 3) < 3 * total
        && off(r[3], 1) < total
        && off(r[4], 1) < total
}

/// Walk from (x, y) along (dx, dy) through the centre run, the light ring and
/// the dark ring; returns (centre, light, dark) run lengths, not counting the
/// start pixel in `centre`. `None` if the pattern is cut off or too long.
fn walk(
    bits: &impl Bits,
    w: usize,
    h: usize,
    (x, y): (usize, usize),
    (dx, dy): (isize, isize),
    max: usize,
) -> Option<[usize; 3]> {
    let mut counts = [0usize; 3];
    let mut state = 0;
    let (mut cx, mut cy) = (x as isize, y as isize);
    loop {
        cx += dx;
        cy += dy;
        if cx < 0 || cy < 0 || cx >= w as isize || cy >= h as isize {
            // Off the image: acceptable only once the outer dark ring started.
            return (state == 2 && counts[2] > 0).then_some(counts);
        }
        let dark = bits.dark(cx as usize, cy as usize);
        let want_dark = state != 1;
        if dark != want_dark {
            state += 1;
            if state == 3 {
                return Some(counts);
            }
        }
        counts[state] += 1;
        if counts[state] > max {
            return None;
        }
    }
}

/// Cross-check through (x, y) along one axis; returns the refined centre
/// coordinate along that axis and the 5-run total.
fn cross_check(
    bits: &impl Bits,
    w: usize,
    h: usize,
    (x, y): (usize, usize),
    vertical: bool,
    expected_total: usize,
) -> Option<(f64, usize)> {
    if !bits.dark(x, y) {
        return None;
    }
    let max = expected_total.max(7);
    let (fwd, back) = if vertical {
        ((0, 1), (0, -1))
    } else {
        ((1, 0), (-1, 0))
    };
    let a = walk(bits, w, h, (x, y), back, max)?;
    let b = walk(bits, w, h, (x, y), fwd, max)?;
    let runs = [a[2], a[1], a[0] + b[0] + 1, b[1], b[2]];
    let total: usize = runs.iter().sum();
    // Same size as the row that found it, within 40% (zxing's criterion).
    if 5 * total.abs_diff(expected_total) >= 2 * expected_total {
        return None;
    }
    if !ratio_ok(&runs) {
        return None;
    }
    let pos = if vertical { y } else { x } as f64;
    // Centre of the centre run, in continuous coordinates.
    let start = pos - a[0] as f64;
    let end = pos + b[0] as f64 + 1.0;
    Some(((start + end) / 2.0, total))
}

/// Smallest module size (px) we look for. Below ~1.8 px a code cannot be
/// sampled reliably anyway, and sensor noise is full of tiny 1:1:3:1:1 runs:
/// skipping them up front keeps noisy frames from flooding the candidate list.
pub(crate) const MIN_MODULE_PX: f64 = 1.8;

/// At most this many candidates are kept (merging is linear in the list).
///
/// Sensor noise is full of one-row 1:1:3:1:1 runs. A candidate seen on one
/// row only is dropped once the scan is past every row that could still
/// confirm it ([`prune_stale`]), so noise above a code cannot fill the list
/// before the scan reaches the code's finder patterns; and a full list still
/// counts the rows confirming a candidate already in it.
const MAX_CANDIDATES: usize = 400;

/// All finder patterns in a 0/1 bitmap (1 = dark).
#[cfg(test)]
pub(crate) fn find_finders(bits: &[u8], w: usize, h: usize) -> Vec<Finder> {
    find_finders_min(bits, w, h, MIN_MODULE_PX)
}

/// All finder patterns with modules of at least `min_module` px. A coarse
/// pyramid level looks for smaller ones than [`MIN_MODULE_PX`]: its box
/// filter has averaged the noise away, and the code is sampled at full
/// resolution.
pub(crate) fn find_finders_min(bits: &[u8], w: usize, h: usize, min_module: f64) -> Vec<Finder> {
    if bits.len() != w * h {
        return Vec::new();
    }
    find_finders_in(&Bitmap { bits, w }, w, h, min_module)
}

/// A w × h bitmap the finder scan reads as each row's run boundaries, and
/// pixel by pixel around a candidate (the cross checks): a stored bitmap
/// ([`Bitmap`]), or one thresholded a row at a time that is never stored
/// whole (`binarize::RowBits`).
pub(crate) trait Bits {
    /// Whether pixel (x, y) is dark.
    fn dark(&self, x: usize, y: usize) -> bool;
    /// Row `y`'s run boundaries (see [`runs_from_masks`]; `bounds` holds
    /// w + 1), the number of runs, and whether the first run is dark.
    fn runs(&self, y: usize, bounds: &mut [usize]) -> (usize, bool);
}

/// A stored bitmap, `w` pixels a row.
pub(crate) struct Bitmap<'b> {
    pub bits: &'b [u8],
    pub w: usize,
}

impl Bits for Bitmap<'_> {
    /// The run boundaries from the row's bytes, 64 at a time (see
    /// [`runs_from_masks`]).
    #[inline(always)]
    fn runs(&self, y: usize, bounds: &mut [usize]) -> (usize, bool) {
        let w = self.w;
        let row = &self.bits[y * w..(y + 1) * w];
        let Some(&first) = row.first() else {
            return (0, false);
        };
        // 0 or 1 a byte: a stored bitmap's dark bytes are any non-zero.
        let dark = |bytes: &[u8]| {
            let mut out = [0u8; 64];
            for (d, &b) in out.iter_mut().zip(bytes) {
                *d = (b != 0) as u8;
            }
            pack_dark(&out)
        };
        let n = runs_from_masks(
            w,
            first != 0,
            bounds,
            |x| dark(&row[x..x + 64]),
            |x| dark(&row[x..]),
        );
        (n, first != 0)
    }

    #[inline(always)]
    fn dark(&self, x: usize, y: usize) -> bool {
        self.bits[y * self.w + x] != 0
    }
}

/// [`find_finders_min`] of any [`Bits`] of w × h pixels.
pub(crate) fn find_finders_in(
    bits: &impl Bits,
    w: usize,
    h: usize,
    min_module: f64,
) -> Vec<Finder> {
    let mut found: Vec<Finder> = Vec::new();
    if w < 7 || h < 7 {
        return found;
    }
    // The run boundaries of one row (see [`runs_from_masks`]): run k is
    // `bounds[k]..bounds[k + 1]`. A row has at most w runs, so the buffer
    // is made once at its full size and written by index: no `Vec::push`
    // (its length and capacity checks per run were a fifth of an empty
    // frame's finder scan; a noise bitmap has a run every 2–3 px).
    let mut bounds = vec![0usize; w + 1];
    // `total as f64 >= 7.0 * min_module` for an integer total, as one
    // integer comparison (a NaN module admits nothing, as before).
    let min_total = {
        let t = (7.0 * min_module).ceil();
        if t.is_nan() {
            usize::MAX
        } else {
            t.max(0.0) as usize
        }
    };
    for y in 0..h {
        prune_stale(&mut found, y);
        // Run-length encode the row; colour alternates, and the first
        // run's colour is the first pixel's.
        let (n, first_dark) = bits.runs(y, &mut bounds);
        let mut i = if first_dark { 0 } else { 1 };
        while i + 4 < n {
            let b = &bounds[i..i + 6];
            // The five runs' total is one difference of boundaries. The
            // centre run longer than its two neighbours is implied by
            // `ratio_ok` (14 r1 < 3 t < 14 r2, the same for r3), so testing
            // it first changes no answer; it rejects most windows of
            // texture and noise before the full test.
            let total = b[5] - b[0];
            let (r1, r2, r3) = (b[2] - b[1], b[3] - b[2], b[4] - b[3]);
            if total >= min_total && r2 > r1 && r2 > r3 {
                let r = [b[1] - b[0], r1, r2, r3, b[5] - b[4]];
                if ratio_ok(&r) {
                    let cx = b[2] + r2 / 2;
                    if let Some((vy, vtotal)) = cross_check(bits, w, h, (cx, y), true, total) {
                        let yy = (vy.floor() as usize).min(h - 1);
                        if let Some((hx, htotal)) = cross_check(bits, w, h, (cx, yy), false, total)
                        {
                            let module = (vtotal + htotal) as f64 / 14.0;
                            add(&mut found, hx, vy, module, MAX_CANDIDATES);
                        }
                    }
                }
            }
            i += 2;
        }
    }
    found
}

/// The row scan before [`runs_from_masks`] (byte rows, 8 bytes at a
/// time), kept as the tests' reference for the boundaries.
///
/// Run-length encode a row as run boundaries: `bounds[0] = 0`, then each
/// x where `row[x] != row[x - 1]`, then `row.len()`; returns the number of
/// runs n (`bounds[..=n]` are written; `bounds` must hold `row.len() + 1`).
/// An empty row has no run (and writes nothing).
///
/// The row scan is most of the finder search's time, and most of a bitmap
/// is long runs: eight bytes are compared at once (a row against itself
/// shifted by one, as `u64`s), four such words share one branch, and only
/// the bytes that differ are visited.
#[cfg(test)]
fn run_bounds(row: &[u8], bounds: &mut [usize]) -> usize {
    let w = row.len();
    if w == 0 {
        return 0;
    }
    assert!(bounds.len() > w, "a row of {w} px needs {} bounds", w + 1);
    const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HI: u64 = 0x8080_8080_8080_8080;
    let word = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&row[i..i + 8]);
        u64::from_le_bytes(b)
    };
    bounds[0] = 0;
    let mut n = 1;
    // The runs starting at the bytes of `diff` (8 bytes from `x` XORed
    // with their left neighbours) that are not zero. At most one boundary
    // per byte x in 1..w: `n` stays ≤ w.
    let emit = |x: usize, diff: u64, bounds: &mut [usize], n: &mut usize| {
        // The high bit of each byte that is not zero (no carries between
        // bytes: each byte adds at most 0x7f + 0x7f).
        let mut m = (((diff & LO7) + LO7) | diff) & HI;
        let mut k = *n;
        while m != 0 {
            bounds[k] = x + (m.trailing_zeros() / 8) as usize;
            k += 1;
            m &= m - 1;
        }
        *n = k;
    };
    // x: the first of 8 bytes compared with their left neighbours. Most
    // of a bitmap row is long runs: 32 bytes at a time, one branch when
    // none of them changes.
    let mut x = 1;
    while x + 32 <= w {
        let d = [
            word(x) ^ word(x - 1),
            word(x + 8) ^ word(x + 7),
            word(x + 16) ^ word(x + 15),
            word(x + 24) ^ word(x + 23),
        ];
        if d[0] | d[1] | d[2] | d[3] != 0 {
            for (k, &diff) in d.iter().enumerate() {
                if diff != 0 {
                    emit(x + 8 * k, diff, bounds, &mut n);
                }
            }
        }
        x += 32;
    }
    while x + 8 <= w {
        let diff = word(x) ^ word(x - 1);
        if diff != 0 {
            emit(x, diff, bounds, &mut n);
        }
        x += 8;
    }
    for at in x..w {
        if row[at] != row[at - 1] {
            bounds[n] = at;
            n += 1;
        }
    }
    bounds[n] = w;
    n
}

/// The run boundaries of a row of `w` pixels (`bounds[0] = 0`, each x whose colour differs from x − 1's, then `w`;
/// `bounds` holds w + 1); returns the number of runs. `first` is whether
/// pixel 0 is dark, `mask(x)` the dark bits of pixels x..x + 64 (bit i:
/// pixel x + i; see [`pack_dark`]), `tail(x)` those of the last pixels
/// x..w (fewer than 64; the bits past w are ignored).
///
/// Finding the run boundaries was a third of an empty frame's finder scan
/// (a byte row read back 8 bytes at a time and visited byte by byte where it
/// changed, after the thresholded row was written out). From 64 pixels'
/// bits at a time, the colour changes are the set bits of `m ^ (m << 1 |
/// last bit of the word before)`, one `trailing_zeros` each.
#[inline(always)]
pub(crate) fn runs_from_masks(
    w: usize,
    first: bool,
    bounds: &mut [usize],
    mut mask: impl FnMut(usize) -> u64,
    tail: impl FnOnce(usize) -> u64,
) -> usize {
    if w == 0 {
        return 0;
    }
    assert!(bounds.len() > w, "a row of {w} px needs {} bounds", w + 1);
    bounds[0] = 0;
    let mut n = 1;
    // The boundaries at x + the set bits of `t`: each x in 1..w at most
    // once, so `n` stays ≤ w.
    let mut emit = |mut t: u64, x: usize, n: &mut usize| {
        let mut k = *n;
        while t != 0 {
            bounds[k] = x + t.trailing_zeros() as usize;
            k += 1;
            t &= t - 1;
        }
        *n = k;
    };
    // The last pixel's bit of the word before; for the first word the
    // first pixel's own, so x = 0 is no boundary.
    let mut carry = first as u64;
    let mut x = 0;
    while x + 64 <= w {
        let m = mask(x);
        emit(m ^ (m << 1 | carry), x, &mut n);
        carry = m >> 63;
        x += 64;
    }
    let rest = w - x;
    if rest > 0 {
        let m = tail(x);
        // No boundary at the row's end, whatever the bits past it.
        emit(
            (m ^ (m << 1 | carry)) & (u64::MAX >> (64 - rest)),
            x,
            &mut n,
        );
    }
    bounds[n] = w;
    n
}

/// 64 bytes of 0 (light) or 1 (dark) as one u64, bit i from byte i: byte i
/// of an 8-byte word times 0x0102_0408_1020_4080 lands at bit 56 + i, and
/// no two of the products overlap, so nothing carries.
#[inline(always)]
pub(crate) fn pack_dark(bytes: &[u8; 64]) -> u64 {
    let mut m = 0u64;
    for (k, b) in bytes.chunks_exact(8).enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(b);
        m |= (u64::from_le_bytes(word).wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * k);
    }
    m
}

/// Merge finders found on another bitmap of the same image into `into`.
pub(crate) fn merge_finders(into: &mut Vec<Finder>, other: Vec<Finder>) {
    for f in other {
        let before = into.len();
        add(into, f.x, f.y, f.module, usize::MAX);
        // `add` counted it once; carry over how often it was confirmed.
        if into.len() == before {
            if let Some(m) = into.iter_mut().find(|m| {
                (m.x - f.x).abs() <= m.module.max(f.module) * 1.5
                    && (m.y - f.y).abs() <= m.module.max(f.module) * 1.5
            }) {
                m.count += f.count.saturating_sub(1);
            }
        } else if let Some(last) = into.last_mut() {
            last.count = f.count;
        }
    }
}

/// Drop the candidates seen on a single row that a row from `y` on is
/// unlikely to confirm. A row confirms a pattern only through its centre
/// run (3 modules tall, centred on the candidate's `y`), and [`add`] merges
/// within 1.5 modules of it: past `y + 3 modules + 1 px` a one-row
/// candidate stays a one-row candidate, and every caller drops those
/// ([`MIN_CONFIRMATIONS`]). The bound is in the candidate's own module
/// size: a later run of a much bigger module (which [`add`] also measures
/// the distance in) could still have merged, so it is a heuristic for a
/// full list, not exact.
fn prune_stale(found: &mut Vec<Finder>, y: usize) {
    // Cheap enough per row, but only needed when the list fills up.
    if found.len() < MAX_CANDIDATES / 2 {
        return;
    }
    let y = y as f64;
    found.retain(|f| f.count >= MIN_CONFIRMATIONS || f.y + 3.0 * f.module + 1.0 >= y);
}

/// Scan rows that must confirm a finder pattern before it is used
/// (patterns seen on one row are mostly texture and noise).
pub(crate) const MIN_CONFIRMATIONS: u32 = 2;

/// Merge with a nearby pattern of similar size (seen on an earlier row), or
/// add it if the list holds fewer than `cap`.
fn add(found: &mut Vec<Finder>, x: f64, y: f64, module: f64, cap: usize) {
    for f in found.iter_mut() {
        if (f.x - x).abs() <= f.module.max(module) * 1.5
            && (f.y - y).abs() <= f.module.max(module) * 1.5
            && (f.module - module).abs() <= f.module.max(module) * 0.5
        {
            let n = f.count as f64;
            f.x = (f.x * n + x) / (n + 1.0);
            f.y = (f.y * n + y) / (n + 1.0);
            f.module = (f.module * n + module) / (n + 1.0);
            f.count += 1;
            return;
        }
    }
    if found.len() < cap {
        found.push(Finder {
            x,
            y,
            module,
            count: 1,
        });
    }
}

/// Three finders that may be the corners of one code, in code orientation,
/// with the grid size estimated from their spacing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Triple {
    pub tl: (f64, f64),
    pub tr: (f64, f64),
    pub bl: (f64, f64),
    pub size: usize,
    pub module: f64,
    /// Module size measured at each finder (tl, tr, bl): tells the local
    /// scale, hence the perspective.
    pub modules: [f64; 3],
    /// Lower is more square-like; used to try the best candidates first.
    pub badness: f64,
    pub members: [usize; 3],
}

fn dist(a: &Finder, b: &Finder) -> f64 {
    (a.x - b.x).hypot(a.y - b.y)
}

/// Plausible triples, best first. Perspective bends the right angle and the
/// equal legs, so the tolerances are generous; a wrong triple only costs a
/// failed decode attempt.
pub(crate) fn group(finders: &[Finder], max_finders: usize) -> Vec<Triple> {
    let mut fs: Vec<(usize, &Finder)> = finders.iter().enumerate().collect();
    fs.sort_by_key(|f| std::cmp::Reverse(f.1.count));
    fs.truncate(max_finders);
    let mut out = Vec::new();
    for i in 0..fs.len() {
        for j in i + 1..fs.len() {
            for k in j + 1..fs.len() {
                let tri = [fs[i], fs[j], fs[k]];
                let mods = tri.map(|t| t.1.module);
                let (mn, mx) = (
                    mods.iter().cloned().fold(f64::INFINITY, f64::min),
                    mods.iter().cloned().fold(0.0, f64::max),
                );
                // A ticket tilted steeply, close to the camera, shows
                // finders that differ 2-3x in size; the timing-pattern check
                // in `refine` rejects the extra false triples this admits.
                if mx > mn * 3.0 {
                    continue;
                }
                // The corner (top-left) is opposite the longest side.
                let d = [
                    dist(tri[1].1, tri[2].1),
                    dist(tri[0].1, tri[2].1),
                    dist(tri[0].1, tri[1].1),
                ];
                let c = (0..3).max_by(|&a, &b| d[a].total_cmp(&d[b])).unwrap_or(0);
                let a = tri[c].1;
                let (mut b, mut e) = (tri[(c + 1) % 3].1, tri[(c + 2) % 3].1);
                let (v1, v2) = ((b.x - a.x, b.y - a.y), (e.x - a.x, e.y - a.y));
                let (l1, l2) = (v1.0.hypot(v1.1), v2.0.hypot(v2.1));
                if l1 < 1.0 || l2 < 1.0 || l1.max(l2) > 2.0 * l1.min(l2) {
                    continue;
                }
                let cos = (v1.0 * v2.0 + v1.1 * v2.1) / (l1 * l2);
                if cos.abs() > 0.45 {
                    continue;
                }
                // Rows and columns cross a finder rotated by t at 1/cos(t) of
                // its width, so the run-length module size is inflated by
                // that much; undo it with the code's rotation (from its top
                // edge), folded into 0..45 degrees.
                let t = v1.1.atan2(v1.0).abs() % std::f64::consts::FRAC_PI_2;
                let t = t.min(std::f64::consts::FRAC_PI_2 - t);
                let module = mods.iter().sum::<f64>() / 3.0 * t.cos();
                // Finder centres are n-7 modules apart.
                let modules = (l1 + l2) / 2.0 / module + 7.0;
                let version = ((modules - 17.0) / 4.0).round();
                if !(1.0..=40.0).contains(&version) {
                    continue;
                }
                // Image y points down: top-right is clockwise from top-left.
                let mut members = [tri[c].0, tri[(c + 1) % 3].0, tri[(c + 2) % 3].0];
                let mut modules = [a.module, b.module, e.module];
                if v1.0 * v2.1 - v1.1 * v2.0 < 0.0 {
                    std::mem::swap(&mut b, &mut e);
                    members.swap(1, 2);
                    modules.swap(1, 2);
                }
                let badness = cos.abs() + (l1 - l2).abs() / l1.max(l2) + (mx - mn) / mx;
                out.push(Triple {
                    tl: (a.x, a.y),
                    tr: (b.x, b.y),
                    bl: (e.x, e.y),
                    size: version as usize * 4 + 17,
                    module,
                    modules,
                    badness,
                    members,
                });
            }
        }
    }
    out.sort_by(|a, b| a.badness.total_cmp(&b.badness));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Draw a 7x7-module finder pattern with `m`-pixel modules at (ox, oy).
    fn draw_finder(bits: &mut [u8], w: usize, ox: usize, oy: usize, m: usize) {
        for my in 0..7 {
            for mx in 0..7 {
                let ring = (mx as i32 - 3).abs().max((my as i32 - 3).abs());
                let dark = ring == 3 || ring <= 1;
                for py in 0..m {
                    for px in 0..m {
                        bits[(oy + my * m + py) * w + ox + mx * m + px] = dark as u8;
                    }
                }
            }
        }
    }

    fn candidate(x: f64, y: f64, count: u32) -> Finder {
        Finder {
            x,
            y,
            module: 2.0,
            count,
        }
    }

    #[test]
    fn one_row_candidates_are_dropped_once_no_row_can_confirm_them() {
        // A full list: 399 one-row candidates near the top, one confirmed.
        let mut found: Vec<Finder> = (0..399)
            .map(|i| candidate(10.0 + 20.0 * i as f64, 10.0, 1))
            .collect();
        found.push(candidate(5.0, 10.0, 3));
        // Rows that can still confirm them (within 3 modules + 1 px): kept.
        prune_stale(&mut found, 17);
        assert_eq!(found.len(), 400);
        // Past them: only the confirmed one stays, and the list has room.
        prune_stale(&mut found, 18);
        assert_eq!(found, [candidate(5.0, 10.0, 3)]);
        // A short list is left alone (nothing to make room for).
        let mut short = vec![candidate(10.0, 10.0, 1)];
        prune_stale(&mut short, 1000);
        assert_eq!(short.len(), 1);
    }

    #[test]
    fn a_full_list_still_counts_confirmations_of_its_candidates() {
        let mut found: Vec<Finder> = (0..MAX_CANDIDATES)
            .map(|i| candidate(10.0 + 20.0 * i as f64, 10.0, 1))
            .collect();
        // A new pattern does not fit…
        add(&mut found, 5.0, 300.0, 2.0, MAX_CANDIDATES);
        assert_eq!(found.len(), MAX_CANDIDATES);
        // …but a row confirming one already listed counts.
        add(&mut found, 30.5, 10.5, 2.0, MAX_CANDIDATES);
        assert_eq!(found.len(), MAX_CANDIDATES);
        assert_eq!(found[1].count, 2);
    }

    #[test]
    fn finds_three_finders_and_groups_them_in_order() {
        let (w, h, m) = (200, 200, 3);
        let mut bits = vec![0u8; w * h];
        // A version-2 (25-module) layout: finders at modules (0,0), (18,0), (0,18).
        let (ox, oy) = (40, 50);
        draw_finder(&mut bits, w, ox, oy, m);
        draw_finder(&mut bits, w, ox + 18 * m, oy, m);
        draw_finder(&mut bits, w, ox, oy + 18 * m, m);
        let finders = find_finders(&bits, w, h);
        assert_eq!(finders.len(), 3, "{finders:?}");
        for f in &finders {
            assert!((f.module - 3.0).abs() < 0.3, "{f:?}");
            assert!(f.count >= 3);
        }
        let triples = group(&finders, 20);
        assert_eq!(triples.len(), 1);
        let t = triples[0];
        assert_eq!(t.size, 25);
        let c = |mx: f64, my: f64| (ox as f64 + mx * 3.0, oy as f64 + my * 3.0);
        let near =
            |a: (f64, f64), b: (f64, f64)| (a.0 - b.0).abs() < 1.0 && (a.1 - b.1).abs() < 1.0;
        assert!(near(t.tl, c(3.5, 3.5)), "{t:?}");
        assert!(near(t.tr, c(21.5, 3.5)), "{t:?}");
        assert!(near(t.bl, c(3.5, 21.5)), "{t:?}");
    }

    #[test]
    fn the_integer_ratio_test_is_the_f64_one() {
        // The f64 test the scan used before, on every five runs of up to
        // 24 px each (every total up to 120, every run on and next to each
        // bound): the integer one agrees everywhere.
        fn f64_ratio_ok(r: &[usize; 5]) -> bool {
            let total: usize = r.iter().sum();
            if total < 7 {
                return false;
            }
            let m = total as f64 / 7.0;
            let tol = m * 0.5;
            (r[0] as f64 - m).abs() < tol
                && (r[1] as f64 - m).abs() < tol
                && (r[2] as f64 - 3.0 * m).abs() < 3.0 * tol
                && (r[3] as f64 - m).abs() < tol
                && (r[4] as f64 - m).abs() < tol
        }
        let mut accepted = 0;
        for a in 0..25 {
            for b in 0..25 {
                for c in 0..73 {
                    for d in 0..25 {
                        for e in [a, b, d, (a + b) / 2, 1] {
                            let r = [a, b, c, d, e];
                            assert_eq!(ratio_ok(&r), f64_ratio_ok(&r), "{r:?}");
                            // The finder scan's pre-test (centre longer
                            // than both neighbours) only drops windows
                            // `ratio_ok` refuses.
                            assert!(!ratio_ok(&r) || (c > b && c > d), "{r:?}");
                            accepted += usize::from(ratio_ok(&r));
                        }
                    }
                }
            }
        }
        assert!(accepted > 1000, "{accepted}");
    }

    /// A row's runs, byte by byte: (start, len).
    fn reference_runs(row: &[u8]) -> Vec<(usize, usize)> {
        let mut runs = Vec::new();
        let mut start = 0;
        for x in 1..=row.len() {
            if x == row.len() || row[x] != row[start] {
                runs.push((start, x - start));
                start = x;
            }
        }
        runs
    }

    /// [`run_bounds`] as (start, len) pairs.
    fn run_lengths(row: &[u8], runs: &mut Vec<(usize, usize)>) {
        // One slot more than needed, poisoned: a write past the last
        // boundary or a stale one would show.
        let mut bounds = vec![usize::MAX; row.len() + 2];
        let n = run_bounds(row, &mut bounds);
        runs.clear();
        runs.extend((0..n).map(|k| (bounds[k], bounds[k + 1] - bounds[k])));
        if n > 0 {
            assert_eq!(bounds[n], row.len());
        }
        assert_eq!(bounds[n + 1], usize::MAX, "written past the last run");
    }

    /// The finder scan as it was before the run boundaries (session 37:
    /// a `Vec` of runs, every window of five given to `ratio_ok`), with
    /// the byte-by-byte run list: what [`find_finders_min`] must equal.
    fn reference_find_finders(bits: &[u8], w: usize, h: usize, min_module: f64) -> Vec<Finder> {
        let mut found: Vec<Finder> = Vec::new();
        if w < 7 || h < 7 || bits.len() != w * h {
            return found;
        }
        let stored = Bitmap { bits, w };
        let bits = &stored;
        for y in 0..h {
            prune_stale(&mut found, y);
            let row = &stored.bits[y * w..(y + 1) * w];
            let runs = reference_runs(row);
            let mut i = if row[0] != 0 { 0 } else { 1 };
            while i + 4 < runs.len() {
                let r = [
                    runs[i].1,
                    runs[i + 1].1,
                    runs[i + 2].1,
                    runs[i + 3].1,
                    runs[i + 4].1,
                ];
                let total: usize = r.iter().sum();
                if total as f64 >= 7.0 * min_module && ratio_ok(&r) {
                    let (cs, cl) = runs[i + 2];
                    let cx = cs + cl / 2;
                    if let Some((vy, vtotal)) = cross_check(bits, w, h, (cx, y), true, total) {
                        let yy = (vy.floor() as usize).min(h - 1);
                        if let Some((hx, htotal)) = cross_check(bits, w, h, (cx, yy), false, total)
                        {
                            let module = (vtotal + htotal) as f64 / 14.0;
                            add(&mut found, hx, vy, module, MAX_CANDIDATES);
                        }
                    }
                }
                i += 2;
            }
        }
        found
    }

    #[test]
    fn the_finder_scan_equals_the_run_list_scan() {
        // Bitmaps of finder patterns (module 1–5 px; some whole, some cut
        // by an edge of the frame, as a code without a quiet zone at the
        // frame's edge is) in speckle of several densities: the scan over
        // run boundaries finds exactly the patterns, in the order and with
        // the counts, of the scan over a list of runs. A full candidate
        // list is the next test's.
        let mut state = 987_654_321u32;
        let mut rnd = |n: u32| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (state >> 8) % n
        };
        let mut total_found = 0;
        for case in 0..60 {
            let (w, h) = (7 + rnd(250) as usize, 7 + rnd(200) as usize);
            let density = [0, 2, 5, 20, 100][case % 5];
            let mut bits: Vec<u8> = (0..w * h)
                .map(|_| u8::from(density > 0 && rnd(density) == 0))
                .collect();
            for _ in 0..rnd(6) {
                let m = 1 + rnd(5) as usize;
                if 7 * m <= w && 7 * m <= h {
                    let (ox, oy) = (rnd((w - 7 * m + 1) as u32), rnd((h - 7 * m + 1) as u32));
                    draw_finder(&mut bits, w, ox as usize, oy as usize, m);
                }
            }
            // Patterns cut by the left, right, top and bottom edges.
            for _ in 0..rnd(4) {
                let m = 1 + rnd(5) as i64;
                let cut = 1 + rnd(3 * m as u32) as i64;
                let (wi, hi) = (w as i64, h as i64);
                let (ox, oy) = match rnd(4) {
                    0 => (-cut, rnd(h as u32) as i64 - 3 * m),
                    1 => (wi - 7 * m + cut, rnd(h as u32) as i64 - 3 * m),
                    2 => (rnd(w as u32) as i64 - 3 * m, -cut),
                    _ => (rnd(w as u32) as i64 - 3 * m, hi - 7 * m + cut),
                };
                draw_finder_clipped(&mut bits, w, h, ox, oy, m);
            }
            for min_module in [MIN_MODULE_PX, 1.0, 0.0, 3.3] {
                let want = reference_find_finders(&bits, w, h, min_module);
                let got = find_finders_min(&bits, w, h, min_module);
                assert_eq!(got, want, "case {case} {w}x{h} min {min_module}");
                total_found += got.len();
            }
        }
        assert!(total_found > 100, "{total_found}");
    }

    /// `draw_finder` at (`ox`, `oy`), which may lie outside the bitmap:
    /// only the pixels inside are drawn.
    fn draw_finder_clipped(bits: &mut [u8], w: usize, h: usize, ox: i64, oy: i64, m: i64) {
        for y in 0..7 * m {
            for x in 0..7 * m {
                let (px, py) = (ox + x, oy + y);
                if px < 0 || py < 0 || px >= w as i64 || py >= h as i64 {
                    continue;
                }
                let ring = (x / m - 3).abs().max((y / m - 3).abs());
                bits[py as usize * w + px as usize] = u8::from(ring == 3 || ring <= 1);
            }
        }
    }

    #[test]
    fn a_full_candidate_list_is_the_same_from_both_scans() {
        // 21 × 21 whole patterns (module 2 px, one module apart): more than
        // the list holds, so it fills up and stale ones are pruned; both
        // scans keep the same MAX_CANDIDATES.
        let (m, pitch, n) = (2, 16, 21);
        let (w, h) = (n * pitch, n * pitch);
        let mut bits = vec![0u8; w * h];
        for gy in 0..n {
            for gx in 0..n {
                draw_finder(&mut bits, w, gx * pitch + 1, gy * pitch + 1, m);
            }
        }
        let want = reference_find_finders(&bits, w, h, 1.0);
        let got = find_finders_min(&bits, w, h, 1.0);
        assert_eq!(got.len(), MAX_CANDIDATES);
        assert_eq!(got, want);
    }

    #[test]
    fn run_lengths_match_a_byte_by_byte_scan() {
        let reference = reference_runs;
        // Rows of every length around the 8-byte steps, with long runs,
        // single-pixel runs and values other than 0 and 1.
        let mut state = 12345u32;
        let mut runs = Vec::new();
        for len in 0..140 {
            for density in [1, 3, 20, 60] {
                // A new random value (0, 1 or 255) once in `density` pixels.
                let mut v = 0u8;
                let row: Vec<u8> = (0..len)
                    .map(|_| {
                        state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                        if (state >> 16).is_multiple_of(density) {
                            v = [0, 1, 255][((state >> 8) % 3) as usize];
                        }
                        v
                    })
                    .collect();
                run_lengths(&row, &mut runs);
                let want = if len == 0 {
                    Vec::new()
                } else {
                    reference(&row)
                };
                assert_eq!(runs, want, "{row:?}");
            }
        }
        run_lengths(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 1], &mut runs);
        assert_eq!(runs, [(0, 9), (9, 1)]);
        run_lengths(&[1; 17], &mut runs);
        assert_eq!(runs, [(0, 17)]);
    }

    #[test]
    fn the_runs_of_a_stored_row_are_its_byte_runs() {
        // Rows of every width 0–200 and some longer ones (not multiples
        // of 64, one word ± 1, 720p): random bytes (0, 1 or 255: any
        // non-zero byte is dark), alternating pixels (all w + 1 bounds
        // written), runs of 1–150 px (across word boundaries, ending at
        // the row's end), all dark, all light, one dark pixel at each word
        // edge. `Bitmap::runs` equals the runs of (byte != 0) byte by byte,
        // and the old scan's ([`run_bounds`]) on 0/1 rows.
        let mut state = 99u32;
        let mut rnd = move |n: u32| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (state >> 8) % n
        };
        let mut widths: Vec<usize> = (0..=200).collect();
        widths.extend([255, 256, 257, 319, 320, 321, 1280]);
        let mut rows = 0;
        for &w in &widths {
            let mut cases: Vec<Vec<u8>> = vec![
                (0..w).map(|_| [0, 1, 255][rnd(3) as usize]).collect(),
                (0..w).map(|x| (x % 2) as u8).collect(),
                (0..w).map(|x| ((x + 1) % 2) as u8).collect(),
                vec![0; w],
                vec![1; w],
            ];
            let mut runs = Vec::with_capacity(w);
            while runs.len() < w {
                let (len, v) = (1 + rnd(150) as usize, rnd(2) as u8);
                runs.extend(std::iter::repeat_n(v, len.min(w - runs.len())));
            }
            cases.push(runs);
            for at in [63, 64, 65, 127, 128, w.wrapping_sub(1)] {
                if at < w {
                    let mut row = vec![0u8; w];
                    row[at] = 1;
                    cases.push(row);
                }
            }
            for row in &cases {
                let dark: Vec<u8> = row.iter().map(|&b| u8::from(b != 0)).collect();
                let want: Vec<(usize, usize)> = reference_runs(&dark);
                let mut bounds = vec![usize::MAX; w + 1];
                let (n, first) = Bitmap { bits: row, w }.runs(0, &mut bounds);
                let got: Vec<(usize, usize)> = (0..n)
                    .map(|k| (bounds[k], bounds[k + 1] - bounds[k]))
                    .collect();
                assert_eq!(got, want, "{row:?}");
                assert_eq!(first, dark.first() == Some(&1), "{row:?}");
                if w > 0 {
                    assert_eq!(bounds[n], w);
                }
                if row.iter().all(|&b| b <= 1) {
                    let mut old = vec![usize::MAX; w + 1];
                    let m = run_bounds(row, &mut old);
                    assert_eq!((n, &bounds[..=n.min(w)]), (m, &old[..=m.min(w)]), "{row:?}");
                }
                rows += 1;
            }
        }
        assert!(rows > 1500, "{rows} rows");
    }

    #[test]
    fn stripes_and_blank_images_have_no_finders() {
        let (w, h) = (64, 64);
        assert!(find_finders(&vec![0; w * h], w, h).is_empty());
        assert!(find_finders(&vec![1; w * h], w, h).is_empty());
        // Vertical 1:1:3:1:1 stripes pass the row test but not the column check.
        let stripes: Vec<u8> = (0..w * h)
            .map(|i| [1, 0, 1, 1, 1, 0, 1, 0][(i % w) / 3 % 8])
            .collect();
        assert!(find_finders(&stripes, w, h).is_empty());
        assert!(find_finders(&[], 0, 0).is_empty());
        assert!(find_finders(&[1; 10], 7, 7).is_empty(), "wrong length");
    }
}
