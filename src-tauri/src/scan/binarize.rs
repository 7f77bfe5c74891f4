//! Adaptive (local mean) thresholding over a block grid.
//!
//! rqrr's own binariser is a running average along each row. Under a glare
//! gradient, low contrast or vertical shading it misplaces the threshold and
//! the finder patterns break apart. A square-window local mean (Bradley &
//! Roth, "Adaptive Thresholding Using the Integral Image", 2007) follows the
//! illumination in both directions.
//!
//! The mean is taken over 4x4-pixel blocks (as zxing's hybrid binariser
//! does with 8x8): the summed-area table then covers 1/16 of the pixels and
//! stays in cache, each window size costs one pass over the blocks, and the
//! per-pixel work is a single comparison with the block's threshold. At
//! 1280x720 this is ~3x faster than a per-pixel integral image, and it moves
//! a window by at most 2 px, which is nothing next to its 50–130 px size.

use std::cell::RefCell;
use std::rc::Rc;

use super::finder::{pack_dark, runs_from_masks, Bits};
use super::Frame;

/// Side of the blocks the local mean is computed over.
const BLOCK: usize = 4;

/// Returns one byte per pixel: 1 = dark, 0 = light.
///
/// `radius` is half the window side in pixels; `percent` is how far below the
/// local mean a pixel must be to count as dark (Bradley uses 15); `min_delta`
/// is an absolute floor on that distance so sensor noise on flat areas does not
/// turn into speckle (speckle costs rqrr time in its flood fills).
pub fn adaptive_threshold(frame: &Frame, radius: usize, percent: u32, min_delta: u32) -> Vec<u8> {
    LocalMean::new(frame).threshold(radius, percent, min_delta)
}

/// Block sums of a frame, to threshold it at several window sizes for the
/// price of one pass over the pixels.
///
/// The same sums threshold the frame's negative (255 − v) too, bit for bit
/// as if it had been made and summed ([`Self::negated`]): a window of `n`
/// pixels summing to `s` sums to 255 × n − s in the negative. Cloning and
/// negating share the table.
#[derive(Clone)]
pub struct LocalMean<'a> {
    frame: &'a Frame,
    bw: usize,
    bh: usize,
    /// Summed-area table over the block sums, (bw+1) x (bh+1), zero first
    /// row and column. u64: no overflow for any frame size.
    sat: Rc<Vec<u64>>,
    /// These are the means of the frame's negative: [`Self::threshold`]
    /// thresholds 255 − v.
    negative: bool,
}

impl<'a> LocalMean<'a> {
    pub fn new(frame: &'a Frame) -> Self {
        let (w, h) = (frame.width(), frame.height());
        let (bw, bh) = (w.div_ceil(BLOCK), h.div_ceil(BLOCK));
        let luma = frame.luma();
        let stride = bw + 1;
        let mut sat = vec![0u64; stride * (bh + 1)];
        // Per block row: column sums of its (up to) 4 rows, a vectorised
        // add per pixel (the first row is copied, not added to zeros;
        // 4 × 255 fits a u16), then 4 columns per block, then the row of
        // the table. The columns past the frame's width stay 0.
        let mut cols = vec![0u16; bw * BLOCK];
        let mut blocks = vec![0u32; bw];
        for by in 0..bh {
            let (y0, y1) = (by * BLOCK, ((by + 1) * BLOCK).min(h));
            for (c, &v) in cols.iter_mut().zip(&luma[y0 * w..(y0 + 1) * w]) {
                *c = v as u16;
            }
            for y in y0 + 1..y1 {
                for (c, &v) in cols.iter_mut().zip(&luma[y * w..(y + 1) * w]) {
                    *c += v as u16;
                }
            }
            for (b, c) in blocks.iter_mut().zip(cols.chunks_exact(BLOCK)) {
                *b = c[0] as u32 + c[1] as u32 + c[2] as u32 + c[3] as u32;
            }
            let (above, row) = sat.split_at_mut((by + 1) * stride);
            let above = &above[by * stride..];
            let mut run = 0u64;
            for ((s, &a), &b) in row[1..stride].iter_mut().zip(&above[1..]).zip(&blocks) {
                run += b as u64;
                *s = a + run;
            }
        }
        LocalMean {
            frame,
            bw,
            bh,
            sat: Rc::new(sat),
            negative: false,
        }
    }

    /// The local means of the frame's negative (of the frame itself, if
    /// these are a negative's), from the same table: no pass over the
    /// pixels, and no negative frame made.
    pub fn negated(&self) -> LocalMean<'a> {
        LocalMean {
            negative: !self.negative,
            ..self.clone()
        }
    }

    /// See [`adaptive_threshold`].
    pub fn threshold(&self, radius: usize, percent: u32, min_delta: u32) -> Vec<u8> {
        self.threshold_polarity(radius, percent, min_delta, self.negative)
    }

    /// [`Self::threshold`] into `out`, whatever it held (its allocation is
    /// reused when it is w × h bytes long; every byte is written).
    pub fn threshold_into(&self, radius: usize, percent: u32, min_delta: u32, out: &mut Vec<u8>) {
        self.threshold_polarity_into(radius, percent, min_delta, self.negative, out)
    }

    /// [`Self::threshold`] of the frame's negative (255 − v), without
    /// making the negative: its block sums are 255 × count − sum, its pixels
    /// 255 − v. 1 = dark in the negative, i.e. light in the frame.
    pub fn threshold_negative(&self, radius: usize, percent: u32, min_delta: u32) -> Vec<u8> {
        self.threshold_polarity(radius, percent, min_delta, !self.negative)
    }

    fn threshold_polarity(
        &self,
        radius: usize,
        percent: u32,
        min_delta: u32,
        negative: bool,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        self.threshold_polarity_into(radius, percent, min_delta, negative, &mut out);
        out
    }

    /// [`Self::threshold_polarity`] into `out`, whatever it held: it is
    /// made w × h bytes long and every byte is written.
    fn threshold_polarity_into(
        &self,
        radius: usize,
        percent: u32,
        min_delta: u32,
        negative: bool,
        out: &mut Vec<u8>,
    ) {
        let (w, h) = (self.frame.width(), self.frame.height());
        if w == 0 || h == 0 {
            out.clear();
            return;
        }
        let luma = self.frame.luma();
        if out.len() != w * h {
            *out = vec![0u8; w * h];
        }
        // The cut of one block row, one per pixel, so the per-pixel
        // comparison is a straight loop over bytes (16 or 32 pixels per
        // vector instruction).
        let mut cut = vec![0u8; w];
        self.block_cuts(radius, percent, min_delta, negative, |by, cuts| {
            expand_cuts(cuts, &mut cut);
            for y in by * BLOCK..((by + 1) * BLOCK).min(h) {
                compare_row(
                    &luma[y * w..(y + 1) * w],
                    &cut,
                    negative,
                    &mut out[y * w..(y + 1) * w],
                );
            }
        });
    }

    /// The bitmap of [`Self::threshold`] (of the negative's when
    /// `negative_side`) as [`RowBits`]: only the blocks' cuts are stored
    /// (1/16 of the pixels); the finder scan thresholds a row when it
    /// reads it and a pixel when a cross check does.
    pub fn row_bits(
        &self,
        radius: usize,
        percent: u32,
        min_delta: u32,
        negative_side: bool,
    ) -> RowBits<'a> {
        let negative = self.negative != negative_side;
        let (w, h) = (self.frame.width(), self.frame.height());
        let mut cuts = Vec::with_capacity(self.bw * self.bh);
        if w > 0 && h > 0 {
            self.block_cuts(radius, percent, min_delta, negative, |_, row| {
                cuts.extend_from_slice(row)
            });
        }
        RowBits {
            luma: self.frame.luma(),
            w,
            bw: self.bw,
            negative,
            cuts,
            expanded: RefCell::new((usize::MAX, vec![0u8; w])),
        }
    }

    /// The cuts of every block of the frame (w, h > 0), one block row at
    /// a time: `emit(by, cuts)` with one cut per block of row `by`. A
    /// block's limit `l` (the largest dark luma) is in −1..=254 (see
    /// [`block_limit`]), so as a byte the frame's pixel is dark when p <
    /// l + 1 (the cut), and the negative's (255 − p ≤ l) when p > 254 − l:
    /// both cuts fit in a u8.
    fn block_cuts(
        &self,
        radius: usize,
        percent: u32,
        min_delta: u32,
        negative: bool,
        mut emit: impl FnMut(usize, &[u8]),
    ) {
        let (w, h) = (self.frame.width(), self.frame.height());
        let (bw, bh) = (self.bw, self.bh);
        let r = (radius / BLOCK).max(1);
        let keep = 100u64.saturating_sub(percent.min(100) as u64);
        let stride = bw + 1;
        // Per block of the row: its window's sum and pixel count, then its
        // limit, in separate loops so the arithmetic one vectorises.
        let (mut sums, mut counts) = (vec![0f64; bw], vec![0f64; bw]);
        let mut cuts = vec![0u8; bw];
        let keep_int = keep;
        let crossover = Crossover::new(keep_int, min_delta.min(256) as i32);
        let (keep, min_delta) = (keep as f64, min_delta.min(256) as i32);
        // The cuts of blocks from their window sums and pixel counts.
        let edge_limits = |cuts: &mut [u8], sums: &[f64], counts: &[f64]| {
            for ((t, &sum), &n) in cuts.iter_mut().zip(sums).zip(counts) {
                let l = block_limit(sum, n, keep, min_delta);
                *t = if negative {
                    (254 - l) as u8
                } else {
                    (l + 1) as u8
                };
            }
        };
        // Per block row: the column sums of its window's rows (a
        // difference of two rows of the table), then each block's window
        // sum as a difference of two of those. Blocks whose window lies
        // inside the frame (all but r at each side) share one pixel count
        // and a straight loop.
        let mut cols = vec![0i64; stride];
        let mut steps: Option<StepTable> = None;
        let start = r.min(bw);
        let inner = start..bw.saturating_sub(r + 1).max(start);
        for by in 0..bh {
            let y0 = by.saturating_sub(r);
            let y1 = (by + r + 1).min(bh);
            let rows = ((y1 * BLOCK).min(h) - y0 * BLOCK) as i64;
            let top = &self.sat[y0 * stride..(y0 + 1) * stride];
            let bottom = &self.sat[y1 * stride..(y1 + 1) * stride];
            for ((c, &b), &t) in cols.iter_mut().zip(bottom).zip(top) {
                *c = (b - t) as i64;
            }
            let n_inner = rows * ((2 * r + 1) * BLOCK) as i64;
            let (lo, hi) = (&cols[..], cols.get(2 * r + 1..).unwrap_or(&[]));
            // The inner blocks share one pixel count, so their limit is a
            // function of the sum alone: two divisions by constants of the
            // block row, as multiplications (see [`InnerLimit`]) instead
            // of two f64 divisions a block.
            let wide_row = inner.len() >= StepTable::MIN_BLOCKS;
            if wide_row && steps.as_ref().is_none_or(|t| t.n != n_inner as u64) {
                steps = StepTable::new(n_inner as u64, keep_int, min_delta);
            }
            if let Some(table) = steps.as_ref().filter(|t| wide_row && t.n == n_inner as u64) {
                // The limit as a table of its steps (see [`StepTable`]),
                // remade only when the window's pixel count changes (the
                // top and bottom r block rows).
                // One loop a polarity: a select of the polarity in the
                // loop was more than half of its instructions.
                let top = 255 * table.n;
                let blocks = cuts[inner.clone()].iter_mut().zip(hi).zip(lo);
                if negative {
                    for ((t, &a), &b) in blocks {
                        *t = (254 - table.limit(top - (a - b) as u64)) as u8;
                    }
                } else {
                    for ((t, &a), &b) in blocks {
                        *t = (table.limit((a - b) as u64) + 1) as u8;
                    }
                }
            } else if let Some(lim) =
                InnerLimit::new(n_inner as u64, keep_int, min_delta, crossover)
            {
                // Neighbouring blocks mostly have similar means, so the
                // rule that decided the last block likely decides this one.
                let mut pct_first = false;
                for ((t, &a), &b) in cuts[inner.clone()].iter_mut().zip(hi).zip(lo) {
                    let sum = (a - b) as u64;
                    let l = lim.limit(
                        if negative {
                            255 * n_inner as u64 - sum
                        } else {
                            sum
                        },
                        &mut pct_first,
                    );
                    *t = if negative {
                        (254 - l) as u8
                    } else {
                        (l + 1) as u8
                    };
                }
            } else {
                for (((s, c), &a), &b) in sums[inner.clone()]
                    .iter_mut()
                    .zip(&mut counts[inner.clone()])
                    .zip(hi)
                    .zip(lo)
                {
                    let sum = a - b;
                    *s = if negative { 255 * n_inner - sum } else { sum } as f64;
                    *c = n_inner as f64;
                }
                edge_limits(
                    &mut cuts[inner.clone()],
                    &sums[inner.clone()],
                    &counts[inner.clone()],
                );
            }
            for bx in (0..inner.start).chain(inner.end..bw) {
                let x0 = bx.saturating_sub(r);
                let x1 = (bx + r + 1).min(bw);
                // Pixels in the window (blocks at the right and bottom edges
                // are cut), and their sum.
                let n = (rows * ((x1 * BLOCK).min(w) - x0 * BLOCK) as i64).max(1);
                let mut sum = cols[x1] - cols[x0];
                if negative {
                    sum = (255 * n - sum).max(0);
                }
                sums[bx] = sum as f64;
                counts[bx] = n as f64;
            }
            edge_limits(
                &mut cuts[..inner.start],
                &sums[..inner.start],
                &counts[..inner.start],
            );
            edge_limits(
                &mut cuts[inner.end..],
                &sums[inner.end..],
                &counts[inner.end..],
            );
            emit(by, &cuts);
        }
    }
}

/// One cut a pixel from one a block (`cut` is the row's width).
#[inline(always)]
fn expand_cuts(cuts: &[u8], cut: &mut [u8]) {
    let w = cut.len();
    // Four bytes per block as one store (`fill` on bytes is a call
    // to memset per block).
    let mut chunks = cut.chunks_exact_mut(BLOCK);
    for (l, &b) in (&mut chunks).zip(cuts) {
        l.copy_from_slice(&[b; BLOCK]);
    }
    let rest = chunks.into_remainder();
    if let Some(&b) = cuts.get(w / BLOCK) {
        rest.fill(b);
    }
}

/// One bitmap row: 1 where the pixel is past its cut.
#[inline(always)]
fn compare_row(row: &[u8], cut: &[u8], negative: bool, dst: &mut [u8]) {
    // Three slices of one length: a vectorised loop (an
    // `extend` from the zipped iterators was not: ~3.4
    // instructions a pixel).
    if negative {
        for ((d, &p), &u) in dst.iter_mut().zip(row).zip(cut) {
            *d = (p > u) as u8;
        }
    } else {
        for ((d, &p), &t) in dst.iter_mut().zip(row).zip(cut) {
            *d = (p < t) as u8;
        }
    }
}

/// The run boundaries of the bitmap row [`compare_row`] makes from `row`
/// and `cut` (of the same length), without making that row: see
/// [`runs_from_masks`] (64 comparisons at a time packed into one u64).
fn compare_run_bounds(
    row: &[u8],
    cut: &[u8],
    negative: bool,
    bounds: &mut [usize],
) -> (usize, bool) {
    // One loop a polarity (the select inside would be in the inner loop).
    if negative {
        compare_runs_of::<true>(row, cut, bounds)
    } else {
        compare_runs_of::<false>(row, cut, bounds)
    }
}

/// [`compare_run_bounds`] of one polarity.
#[inline(always)]
fn compare_runs_of<const NEGATIVE: bool>(
    row: &[u8],
    cut: &[u8],
    bounds: &mut [usize],
) -> (usize, bool) {
    let w = row.len();
    let cut = &cut[..w];
    let Some((&p0, &c0)) = row.first().zip(cut.first()) else {
        return (0, false);
    };
    let first = if NEGATIVE { p0 > c0 } else { p0 < c0 };
    let n = runs_from_masks(
        w,
        first,
        bounds,
        |x| dark_mask::<NEGATIVE>(&row[x..x + 64], &cut[x..x + 64]),
        |x| {
            // Padded with zeros, which compare light either way (0 < 0
            // and 0 > 0 are false).
            let (mut p, mut c) = ([0u8; 64], [0u8; 64]);
            p[..w - x].copy_from_slice(&row[x..]);
            c[..w - x].copy_from_slice(&cut[x..]);
            dark_mask::<NEGATIVE>(&p, &c)
        },
    );
    (n, first)
}

/// The dark bits of 64 pixels `p` against their cuts `c` (64 each): the
/// comparisons as bytes (a vectorised loop, in registers), packed.
#[inline(always)]
fn dark_mask<const NEGATIVE: bool>(p: &[u8], c: &[u8]) -> u64 {
    let (p, c) = (&p[..64], &c[..64]);
    let mut bytes = [0u8; 64];
    for ((d, &p), &c) in bytes.iter_mut().zip(p).zip(c) {
        *d = if NEGATIVE { p > c } else { p < c } as u8;
    }
    pack_dark(&bytes)
}

/// A thresholded bitmap that is never stored whole ([`LocalMean::row_bits`]):
/// the cut of each block, and the frame's pixels. For the bitmaps stage 1
/// only scans for finder patterns: the scan reads each row's run
/// boundaries once (straight from the comparison with the block row's
/// cuts, expanded once per block row) and a few pixels around each
/// candidate; no w × h bytes are written and read back. Bit for bit
/// [`LocalMean::threshold`]'s bitmap.
pub struct RowBits<'f> {
    luma: &'f [u8],
    w: usize,
    bw: usize,
    negative: bool,
    /// bw × bh, one per block.
    cuts: Vec<u8>,
    /// The last block row whose cuts were expanded to one a pixel, and
    /// that expansion.
    expanded: RefCell<(usize, Vec<u8>)>,
}

impl RowBits<'_> {
    /// Whether these are the bits of a w × h image: the row scan indexes
    /// `luma` by w and h, so a scan of other dimensions finds nothing
    /// rather than panic (as a stored bitmap of the wrong size does).
    pub fn fits(&self, w: usize, h: usize) -> bool {
        self.w == w && w.checked_mul(h) == Some(self.luma.len())
    }
}

impl RowBits<'_> {
    /// `f(luma row y, its cuts one a pixel)`: the cuts of y's block row,
    /// expanded once per block row.
    #[inline(always)]
    fn with_row<T>(&self, y: usize, f: impl FnOnce(&[u8], &[u8]) -> T) -> T {
        let w = self.w;
        let by = y / BLOCK;
        let mut expanded = self.expanded.borrow_mut();
        let (at, cut) = &mut *expanded;
        if *at != by {
            expand_cuts(&self.cuts[by * self.bw..(by + 1) * self.bw], cut);
            *at = by;
        }
        f(&self.luma[y * w..(y + 1) * w], cut)
    }
}

impl RowBits<'_> {
    /// Row `y` as bytes (1 = dark), in `buf`: what the scan's runs are of.
    #[cfg(test)]
    fn row<'a>(&self, y: usize, buf: &'a mut [u8]) -> &'a [u8] {
        let buf = &mut buf[..self.w];
        self.with_row(y, |row, cut| compare_row(row, cut, self.negative, buf));
        buf
    }
}

impl Bits for RowBits<'_> {
    /// The row's run boundaries straight from the comparison (see
    /// [`compare_run_bounds`]): the byte row is never made.
    fn runs(&self, y: usize, bounds: &mut [usize]) -> (usize, bool) {
        self.with_row(y, |row, cut| {
            compare_run_bounds(row, cut, self.negative, bounds)
        })
    }

    #[inline(always)]
    fn dark(&self, x: usize, y: usize) -> bool {
        let cut = self.cuts[(y / BLOCK) * self.bw + x / BLOCK];
        let p = self.luma[y * self.w + x];
        if self.negative {
            p > cut
        } else {
            p < cut
        }
    }
}

/// The largest luma that still counts as dark in a window of `n` pixels
/// summing to `sum` (−1 = none): p < mean × keep / 100 and p + min_delta <
/// mean, i.e. `min(ceil(sum × keep / (100 n)) − 1, ceil(sum / n) −
/// min_delta − 1)`, clamped to −1..=254 (the mean is at most 255 and the
/// luma must be below it: 254 at most, whatever `keep` ≤ 100).
///
/// In f64 rather than two integer divisions (those, one block at a time,
/// were a quarter of the threshold's time; this vectorises). The arguments
/// are integers: `sum` ≤ 255 n, `keep` ≤ 100, `min_delta` ≤ 256. Every
/// integer here is exact in f64 (< 2^53) and the quotients are ≤ 255, so an
/// f64 quotient is within 2^-44 of the true one, while a fraction's distance
/// to the next integer is at least 1 / (100 n) > 2^-40 (n < 2^33):
/// truncating it gives the exact floor, and q × b == a (exact too) tells an
/// integer quotient, whose ceil is q rather than q + 1.
#[inline(always)]
fn block_limit(sum: f64, n: f64, keep: f64, min_delta: i32) -> i16 {
    let (a, b) = (sum * keep, n * 100.0);
    let q = (a / b) as i32;
    let by_pct = q - (q as f64 * b == a) as i32;
    let m = (sum / n) as i32;
    let by_delta = m + (m as f64 * n != sum) as i32 - min_delta - 1;
    by_pct.min(by_delta).clamp(-1, 254) as i16
}

/// Where one of [`block_limit`]'s two rules decides alone, known from
/// one quotient: the other quotient (a second multiplication a block in
/// [`InnerLimit::limit`]) is then not needed.
///
/// With c = ceil(sum / n): sum / n > c − 1 when sum > 0 (and = 0 = c
/// otherwise), so sum / n ≥ c − 1 and by_pct = ceil(sum × keep / (100 n)) −
/// 1 ≥ ceil((c − 1) keep / 100) − 1: when that is ≥ by_delta = c − min_delta
/// − 1, by_delta is the minimum. With p = by_pct and keep > 0: sum × keep /
/// (100 n) > p, so sum / n > 100 p / keep and c ≥ floor(100 p / keep) + 1:
/// when floor(100 p / keep) − min_delta ≥ p, by_pct is the minimum. Both
/// tests depend on the quotient only (c in 0..=255, p in −1..=254): a
/// prefix of c and a suffix of p, found once per threshold.
#[derive(Clone, Copy)]
struct Crossover {
    /// by_delta decides for every c ≤ this (−1: none).
    delta_up_to: i64,
    /// by_pct decides for every p ≥ this (255: none).
    pct_from: i64,
}

impl Crossover {
    fn new(keep: u64, min_delta: i32) -> Crossover {
        let (k, md) = (keep.min(100) as i64, min_delta as i64);
        let delta_decides = |c: i64| {
            // ceil((c − 1) k / 100) for c − 1 ≥ −1.
            let lo = ((c - 1) * k).div_euclid(100) + ((c - 1) * k).rem_euclid(100).min(1);
            lo >= c - md
        };
        let pct_decides = |p: i64| k > 0 && (100 * p).div_euclid(k) - md >= p;
        let delta_up_to = (0..=255)
            .take_while(|&c| delta_decides(c))
            .last()
            .unwrap_or(-1);
        let pct_from = (-1..=254)
            .rev()
            .take_while(|&p| pct_decides(p))
            .last()
            .unwrap_or(255);
        Crossover {
            delta_up_to,
            pct_from,
        }
    }
}

/// [`block_limit`] for one pixel count `n`, in integers: both ceilings
/// are floors of (a + d − 1) / d by a divisor d fixed for the block row
/// (n and 100 n), taken as the high half of a × ⌈2^64 / d⌉.
///
/// Exact when a × d < 2^64 (with M d = 2^64 + e, 0 ≤ e < d, a M / 2^64 =
/// a / d + a e / (d 2^64), and a e < 2^64 keeps that below the next
/// integer). Here a ≤ 25,600 n and d = 100 n: n below 2^21 is far
/// inside that (2^21 px is a window of 1,448 px square; the decoder's
/// largest is 404). Bigger windows take the f64 path ([`Self::new`] says
/// no).
#[derive(Clone, Copy)]
struct InnerLimit {
    n: u64,
    hundred_n: u64,
    keep: u64,
    min_delta: i64,
    by_n: u64,
    by_hundred_n: u64,
    crossover: Crossover,
}

impl InnerLimit {
    fn new(n: u64, keep: u64, min_delta: i32, crossover: Crossover) -> Option<InnerLimit> {
        if n == 0 || n >= 1 << 21 || keep > 100 {
            return None;
        }
        let recip = |d: u64| u64::MAX / d + 1;
        Some(InnerLimit {
            n,
            hundred_n: 100 * n,
            keep,
            min_delta: min_delta as i64,
            by_n: recip(n),
            by_hundred_n: recip(100 * n),
            crossover,
        })
    }

    /// `block_limit(sum, n, keep, min_delta)`, for a sum of `n` pixels
    /// (≤ 255 n). One quotient first (by_pct's when `pct_first`), the
    /// other only when [`Crossover`] says the first does not decide alone;
    /// `pct_first` then turns to the other rule for the next block.
    #[inline(always)]
    fn limit(&self, sum: u64, pct_first: &mut bool) -> i16 {
        let div = |a: u64, m: u64| ((a as u128 * m as u128) >> 64) as i64;
        let by_pct = || div(sum * self.keep + self.hundred_n - 1, self.by_hundred_n) - 1;
        let ceil_mean = || div(sum + self.n - 1, self.by_n);
        let l = if *pct_first {
            let p = by_pct();
            if p >= self.crossover.pct_from {
                p
            } else {
                *pct_first = false;
                p.min(ceil_mean() - self.min_delta - 1)
            }
        } else {
            let c = ceil_mean();
            let d = c - self.min_delta - 1;
            if c <= self.crossover.delta_up_to {
                d
            } else {
                *pct_first = true;
                by_pct().min(d)
            }
        };
        l.clamp(-1, 254) as i16
    }
}

/// [`block_limit`] for one pixel count `n` as a table of its steps: the
/// limit of a sum s is a step function of s, one step up at each t_l, the
/// smallest sum whose limit is ≥ l (l in 0..=254): by_pct ≥ l ⇔ s × keep >
/// 100 n l ⇔ s ≥ floor(100 n l / keep) + 1 (never when keep = 0), by_delta ≥
/// l ⇔ s > n (l + min_delta), so t_l = max of the two. Each of the two
/// sequences grows by at least n a step (100 n / keep ≥ n), and so does
/// their maximum: t_(l+1) ≥ t_l + n. Buckets of 2^k ≤ n sums then hold at
/// most one step each, and a sum's limit is its bucket's limit at the
/// bucket's start plus one when it is at or past the bucket's step: one
/// shift, one load and one compare a block, against two multiply-highs
/// ([`InnerLimit`]). 255 n / 2^k < 511 buckets, made once per pixel count.
struct StepTable {
    n: u64,
    shift: u32,
    /// Per bucket: (the step in it, or `u32::MAX`; the limit below it).
    buckets: Vec<(u32, i16)>,
}

impl StepTable {
    /// Rows with fewer inner blocks use [`InnerLimit`]: making the table
    /// costs about as much as the multiplications of a few dozen blocks.
    const MIN_BLOCKS: usize = 64;

    fn new(n: u64, keep: u64, min_delta: i32) -> Option<StepTable> {
        if n == 0 || n >= 1 << 21 || keep > 100 {
            return None;
        }
        let shift = 63 - n.leading_zeros();
        let top = 255 * n;
        let mut buckets = vec![(u32::MAX, 0i16); (top >> shift) as usize + 1];
        for l in 0..=254u64 {
            if keep == 0 {
                break;
            }
            let by_pct = 100 * n * l / keep + 1;
            let by_delta = n * (l + min_delta.max(0) as u64) + 1;
            let t = by_pct.max(by_delta);
            if t > top {
                break;
            }
            let b = &mut buckets[(t >> shift) as usize].0;
            debug_assert_eq!(*b, u32::MAX, "two steps in one bucket");
            *b = t as u32;
        }
        let mut below = -1i16;
        for b in buckets.iter_mut() {
            b.1 = below;
            below += (b.0 != u32::MAX) as i16;
        }
        Some(StepTable { n, shift, buckets })
    }

    /// `block_limit(sum, n, keep, min_delta)` for a sum ≤ 255 n.
    #[inline(always)]
    fn limit(&self, sum: u64) -> i16 {
        let (step, below) = self.buckets[(sum >> self.shift) as usize];
        below + (sum >= step as u64) as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_a_brightness_gradient() {
        // A dark square on a background whose brightness ramps 40 → 240 (0.8 levels/px):
        // one global threshold would either swallow the left side or lose the
        // square; the local mean keeps exactly the square.
        let (w, h) = (240, 40);
        let mut luma = vec![0u8; w * h];
        for y in 0..h {
            for x in 0..w {
                let bg = 40 + (200 * x / w) as u8;
                let in_square =
                    (10..20).contains(&y) && ((30..40).contains(&x) || (190..200).contains(&x));
                luma[y * w + x] = if in_square { bg / 3 } else { bg };
            }
        }
        let f = Frame::from_luma(w, h, luma).unwrap();
        let bin = adaptive_threshold(&f, 12, 15, 4);
        for y in 0..h {
            for x in 0..w {
                let in_square =
                    (10..20).contains(&y) && ((30..40).contains(&x) || (190..200).contains(&x));
                assert_eq!(bin[y * w + x] == 1, in_square, "pixel {x},{y}");
            }
        }
    }

    #[test]
    fn the_threshold_is_the_local_mean_rule_pixel_by_pixel() {
        // Frames cut mid-block at the right and bottom, random pixels with
        // flat patches: every pixel is dark exactly when it is below both
        // mean × (100 − percent) / 100 and mean − min_delta, the mean taken
        // over the pixels of its block window (blocks within radius / 4).
        let mut state = 99u32;
        // 300 px: rows of more than StepTable::MIN_BLOCKS inner blocks at
        // the narrower windows (their limits come from the step table).
        for (w, h) in [(37, 23), (64, 16), (9, 50), (300, 37)] {
            let luma: Vec<u8> = (0..w * h)
                .map(|i| {
                    state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    if (i / 7) % 3 == 0 {
                        128
                    } else {
                        (state >> 16) as u8
                    }
                })
                .collect();
            let frame = Frame::from_luma(w, h, luma.clone()).unwrap();
            let means = LocalMean::new(&frame);
            for (radius, percent, min_delta) in [(4, 5, 4), (8, 15, 0), (13, 20, 6), (80, 0, 4)] {
                let bits = means.threshold(radius, percent, min_delta);
                let r = (radius / BLOCK).max(1);
                for y in 0..h {
                    for x in 0..w {
                        let (bx, by) = (x / BLOCK, y / BLOCK);
                        let xs = bx.saturating_sub(r) * BLOCK..((bx + r + 1) * BLOCK).min(w);
                        let ys = by.saturating_sub(r) * BLOCK..((by + r + 1) * BLOCK).min(h);
                        let n = (xs.len() * ys.len()) as u64;
                        let sum: u64 = ys
                            .flat_map(|yy| xs.clone().map(move |xx| (xx, yy)))
                            .map(|(xx, yy)| luma[yy * w + xx] as u64)
                            .sum();
                        let p = luma[y * w + x] as u64;
                        let dark = p * n * 100 < sum * (100 - percent as u64)
                            && (p + min_delta as u64) * n < sum;
                        assert_eq!(bits[y * w + x] == 1, dark, "{w}x{h} r{radius} at {x},{y}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_negative_threshold_is_the_threshold_of_the_negative() {
        // A gradient with dark and light specks, 37x23 (blocks cut at the
        // edges): thresholding the negative frame and thresholding the frame
        // as a negative give the same bitmap, bit for bit. 301x23: rows of
        // more than StepTable::MIN_BLOCKS inner blocks (the table's loop of
        // each polarity).
        for (w, h) in [(37usize, 23usize), (301, 23)] {
            let luma: Vec<u8> = (0..w * h)
                .map(|i| {
                    let (x, y) = (i % w, i / w);
                    let base = (x * 5 + y * 3) as u8;
                    match (x * 7 + y * 13) % 11 {
                        0 => base / 3,
                        1 => base.saturating_add(90),
                        _ => base,
                    }
                })
                .collect();
            let frame = Frame::from_luma(w, h, luma).unwrap();
            let means = LocalMean::new(&frame);
            let negative = frame.inverted();
            for (radius, percent) in [(6, 5), (12, 20), (40, 5)] {
                assert_eq!(
                    means.threshold_negative(radius, percent, 4),
                    LocalMean::new(&negative).threshold(radius, percent, 4),
                    "{w}x{h} radius {radius}, {percent} %"
                );
            }
        }
    }

    #[test]
    fn negated_means_threshold_the_negative_and_back() {
        // Random pixels with flat patches, blocks cut at the edges: the
        // negated means give the negative frame's bitmaps bit for bit, and
        // negating twice gives the frame's own.
        let (w, h) = (53, 29);
        let mut state = 7u32;
        let luma: Vec<u8> = (0..w * h)
            .map(|i| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if (i / 5) % 4 == 0 {
                    200
                } else {
                    (state >> 16) as u8
                }
            })
            .collect();
        let frame = Frame::from_luma(w, h, luma).unwrap();
        let negative = frame.inverted();
        let means = LocalMean::new(&frame);
        let neg_means = LocalMean::new(&negative);
        for (radius, percent) in [(6, 5), (12, 20), (40, 5)] {
            let of_negative = neg_means.threshold(radius, percent, 4);
            assert_eq!(means.negated().threshold(radius, percent, 4), of_negative);
            assert_eq!(means.threshold_negative(radius, percent, 4), of_negative);
            assert_eq!(
                means.negated().threshold_negative(radius, percent, 4),
                means.threshold(radius, percent, 4)
            );
            assert_eq!(
                means.negated().negated().threshold(radius, percent, 4),
                means.threshold(radius, percent, 4)
            );
        }
    }

    /// Pseudo-random luma: finder patterns (module `m` px, some cut by
    /// the frame's edges), dark ones on light and light ones on dark,
    /// over a gradient with noise of amplitude `noise`.
    fn finder_frame(w: usize, h: usize, m: usize, noise: u32, seed: u32) -> Frame {
        let mut state = seed;
        let mut rnd = move || {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            state >> 16
        };
        let mut luma: Vec<u8> = (0..w * h)
            .map(|i| ((60 + (i % w) * 120 / w) as u8).saturating_add((rnd() % (noise + 1)) as u8))
            .collect();
        let side = 7 * m as i64;
        let mut oy = -(side / 3);
        while oy < h as i64 {
            let mut ox = -(side / 2);
            while ox < w as i64 {
                let inverse = rnd() % 3 == 0;
                for y in 0..side {
                    for x in 0..side {
                        let (px, py) = (ox + x, oy + y);
                        if px < 0 || py < 0 || px >= w as i64 || py >= h as i64 {
                            continue;
                        }
                        let ring = (x / m as i64 - 3).abs().max((y / m as i64 - 3).abs());
                        let dark = (ring == 3 || ring <= 1) != inverse;
                        let v: u8 = if dark { 20 } else { 230 };
                        // Saturating: 230 plus noise of 40 would wrap to a dark pixel.
                        luma[py as usize * w + px as usize] =
                            v.saturating_add((rnd() % (noise + 1)) as u8);
                    }
                }
                ox += side + 1 + (rnd() % (3 * m as u32)) as i64;
            }
            oy += side + 1 + (rnd() % (2 * m as u32)) as i64;
        }
        Frame::from_luma(w, h, luma).unwrap()
    }

    #[test]
    fn a_bitmap_thresholded_into_a_used_buffer_equals_a_fresh_one() {
        // One buffer, dirty (0xAA) and of another frame's size at first,
        // then holding the last bitmap: frames of several sizes, both
        // means' polarities, several windows and cuts; each bitmap equals
        // the one made fresh.
        let mut buf = vec![0xAA; 7 * 5];
        for (w, h, m) in [
            (64usize, 48usize, 2usize),
            (64, 48, 3),
            (37, 29, 1),
            (5, 3, 1),
        ] {
            let frame = finder_frame(w, h, m, 40, (w + h + m) as u32);
            let means = LocalMean::new(&frame);
            for mm in [means.clone(), means.negated()] {
                for (radius, percent) in [(6, 5), (6, 20), (40, 5), (3, 15)] {
                    mm.threshold_into(radius, percent, 4, &mut buf);
                    assert_eq!(
                        buf,
                        mm.threshold(radius, percent, 4),
                        "{w}x{h} r {radius} {percent} %"
                    );
                }
            }
            buf.fill(0xAA);
        }
    }

    #[test]
    fn row_bits_are_the_stored_bitmap_row_by_row_and_pixel_by_pixel() {
        // Frames of several sizes (not all multiples of the block), both
        // means' polarities, both sides, several windows and cuts: every
        // row (read in order, then bottom up, so the expanded block row
        // is both reused and remade; the row buffer dirty) and every pixel
        // of the row bits equal the stored bitmap.
        for (w, h, m) in [
            (64usize, 48usize, 2usize),
            (37, 29, 1),
            (5, 3, 1),
            (9, 50, 3),
        ] {
            let frame = finder_frame(w, h, m, 40, (w * h) as u32);
            let means = LocalMean::new(&frame);
            for mm in [means.clone(), means.negated()] {
                for (radius, percent) in [(6, 5), (6, 20), (40, 5), (3, 15)] {
                    for neg in [false, true] {
                        let stored = if neg {
                            mm.threshold_negative(radius, percent, 4)
                        } else {
                            mm.threshold(radius, percent, 4)
                        };
                        let rows = mm.row_bits(radius, percent, 4, neg);
                        let what = format!("{w}x{h} r {radius} {percent} % neg {neg}");
                        let mut buf = vec![0xAA; w];
                        for y in (0..h).chain((0..h).rev()) {
                            assert_eq!(
                                rows.row(y, &mut buf),
                                &stored[y * w..(y + 1) * w],
                                "{what}, row {y}"
                            );
                        }
                        // The runs of each row are the stored row's,
                        // byte by byte.
                        let mut got = vec![0; w + 1];
                        for y in (0..h).chain((0..h).rev()) {
                            // Poisoned before each row: a version that
                            // skipped writes would leave it showing.
                            got.fill(usize::MAX);
                            let (n, first) = rows.runs(y, &mut got);
                            let want = naive_runs(&stored[y * w..(y + 1) * w]);
                            assert_eq!(
                                (&got[..=n], first),
                                (&want.0[..], want.1),
                                "{what}, runs of row {y}"
                            );
                        }
                        for y in 0..h {
                            for x in 0..w {
                                assert_eq!(
                                    rows.dark(x, y),
                                    stored[y * w + x] != 0,
                                    "{what}, pixel {x},{y}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_finder_scan_of_row_bits_equals_the_scan_of_the_stored_bitmap() {
        // Frames full of finder patterns (both colours, modules 1–5 px,
        // cut by every edge, noise 0–60 levels) at the windows and cuts
        // stage 1 uses, both polarities: the scan reading row bits finds
        // the same candidates, in the same order, as the scan of the stored
        // bitmap. One frame holds more patterns than the candidate list
        // (400), so pruning and a full list are the same too.
        use super::super::finder::{find_finders_in, find_finders_min};
        let mut total = 0;
        let mut longest = 0;
        for (i, (w, h, m, noise)) in [
            (160usize, 120usize, 2usize, 0u32),
            (203, 97, 3, 30),
            (331, 211, 1, 10),
            (97, 131, 5, 60),
            (420, 420, 2, 4),
        ]
        .into_iter()
        .enumerate()
        {
            let frame = finder_frame(w, h, m, noise, 17 + i as u32);
            let means = LocalMean::new(&frame);
            for (radius, percent) in [(6, 5), (6, 20), (21, 5), (80, 5), (60, 5)] {
                for neg in [false, true] {
                    let stored = if neg {
                        means.threshold_negative(radius, percent, 4)
                    } else {
                        means.threshold(radius, percent, 4)
                    };
                    for min_module in [1.0, 1.8] {
                        let want = find_finders_min(&stored, w, h, min_module);
                        let got = find_finders_in(
                            &means.row_bits(radius, percent, 4, neg),
                            w,
                            h,
                            min_module,
                        );
                        assert_eq!(got, want, "{w}x{h} r {radius} {percent} % neg {neg}");
                        total += want.len();
                        longest = longest.max(want.len());
                    }
                }
            }
        }
        assert!(total > 2000, "only {total} candidates");
        assert_eq!(longest, 400, "no scan filled the candidate list");
    }

    /// The run boundaries of a 0/1 row, byte by byte: the reference for
    /// [`compare_run_bounds`].
    fn naive_runs(bits: &[u8]) -> (Vec<usize>, bool) {
        let mut b: Vec<usize> = (1..bits.len())
            .filter(|&x| bits[x] != bits[x - 1])
            .collect();
        if !bits.is_empty() {
            b.insert(0, 0);
            b.push(bits.len());
        }
        (b, bits.first() == Some(&1))
    }

    #[test]
    fn the_runs_from_the_comparison_are_the_runs_of_the_compared_row() {
        // Rows of every width 0–200 and some longer ones (not multiples
        // of 64, one word, one word ± 1, 720p), both polarities: random
        // pixels against random cuts (a change almost every pixel; some
        // rows every pixel, so all w + 1 bounds are written), runs of
        // 1–150 px (across word boundaries, ending at the row's end),
        // all dark, all light, and one pixel changed at each word edge.
        let mut state = 7u32;
        let mut rnd = move |n: u32| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (state >> 8) % n
        };
        let mut widths: Vec<usize> = (0..=200).collect();
        widths.extend([255, 256, 257, 319, 320, 321, 1280]);
        let mut rows = 0;
        for &w in &widths {
            let mut cases: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            let random = |rnd: &mut dyn FnMut(u32) -> u32| (0..w).map(|_| rnd(256) as u8).collect();
            cases.push((random(&mut rnd), random(&mut rnd)));
            // Alternating: the pixels 0 and 255 against a cut of 128.
            cases.push(((0..w).map(|x| (x % 2 * 255) as u8).collect(), vec![128; w]));
            let mut runs = Vec::with_capacity(w);
            while runs.len() < w {
                let (len, v) = (1 + rnd(150) as usize, if rnd(2) == 0 { 10 } else { 200 });
                runs.extend(std::iter::repeat_n(v, len.min(w - runs.len())));
            }
            cases.push((runs, vec![100; w]));
            for v in [0u8, 255] {
                cases.push((vec![v; w], vec![v; w]));
                cases.push((vec![v; w], vec![128; w]));
            }
            for at in [63, 64, 65, 127, 128, w.wrapping_sub(1)] {
                if at < w {
                    let mut row = vec![10u8; w];
                    row[at] = 200;
                    cases.push((row, vec![100; w]));
                }
            }
            for (row, cut) in &cases {
                for negative in [false, true] {
                    let mut bits = vec![0xAA; w];
                    compare_row(row, cut, negative, &mut bits);
                    let (want, want_first) = naive_runs(&bits);
                    let mut bounds = vec![usize::MAX; w + 1];
                    let (n, first) = compare_run_bounds(row, cut, negative, &mut bounds);
                    let got = if w == 0 { &bounds[..0] } else { &bounds[..=n] };
                    assert_eq!(
                        got,
                        &want[..],
                        "w {w} neg {negative} row {row:?} cut {cut:?}"
                    );
                    assert_eq!(first, want_first, "w {w} neg {negative}");
                    rows += 1;
                }
            }
        }
        assert!(rows > 3000, "{rows} rows");
    }

    /// [`block_limit`] in integers: min(ceil(sum × keep / (100 n)) − 1,
    /// ceil(sum / n) − min_delta − 1), clamped to −1..=255 (not 254: the
    /// tests comparing the two also show that 255 never occurs, which the
    /// byte cuts of `threshold_polarity` rely on).
    fn block_limit_exact(sum: u64, n: u64, keep: u64, min_delta: u64) -> i16 {
        let by_pct = (sum * keep).div_ceil(100 * n) as i64 - 1;
        let by_delta = sum.div_ceil(n) as i64 - min_delta as i64 - 1;
        by_pct.min(by_delta).clamp(-1, 255) as i16
    }

    /// Every `keep` the decoder and the tests use (percent 0, 5, 15, 20),
    /// and 0 (percent ≥ 100).
    const KEEPS: [u64; 5] = [100, 95, 85, 80, 0];
    const MIN_DELTAS: [u64; 3] = [0, 4, 300];

    fn check_block_limit(sum: u64, n: u64) {
        for keep in KEEPS {
            for md in MIN_DELTAS {
                let got = block_limit(sum as f64, n as f64, keep as f64, md.min(256) as i32);
                assert_eq!(
                    got,
                    block_limit_exact(sum, n, keep, md),
                    "sum {sum}, n {n}, keep {keep}, min_delta {md}"
                );
            }
        }
    }

    #[test]
    fn the_inner_limit_is_the_integer_ceiling_for_every_sum() {
        // The integer path of the inner blocks: every sum of windows of
        // 12 (3 blocks of a last, 1-row block row), 144, 26,896 (41 x 41
        // blocks, the largest the wide window makes) and 163,216 px (the
        // fill window of a 404 px frame), and the largest n it takes.
        // Past 26,896: every 7th sum and each sum next to a multiple of n
        // (where a quotient is exact).
        for n in [12u64, 144, 26_896, 163_216, (1 << 21) - 1] {
            let step = if n <= 26_896 {
                1
            } else if n <= 200_000 {
                7
            } else {
                997
            };
            let near = (0..=255)
                .flat_map(|k| [k * n, k * n + 1])
                .map(|s| s.saturating_sub(1));
            let sums: Vec<u64> = (0..=255 * n)
                .step_by(step)
                .chain(near)
                .chain([255 * n])
                .collect();
            for keep in KEEPS {
                for md in MIN_DELTAS {
                    let md32 = md.min(256) as i32;
                    let lim = InnerLimit::new(n, keep, md32, Crossover::new(keep, md32)).unwrap();
                    for &sum in &sums {
                        // Either quotient first: both orders, and the
                        // shortcuts each takes, give the exact limit.
                        let exact = block_limit_exact(sum, n, keep, md);
                        for first in [false, true] {
                            assert_eq!(
                                lim.limit(sum, &mut { first }),
                                exact,
                                "sum {sum}, n {n}, keep {keep}, min_delta {md}, pct first {first}"
                            );
                        }
                    }
                }
            }
        }
        assert!(InnerLimit::new(1 << 21, 95, 4, Crossover::new(95, 4)).is_none());
    }

    #[test]
    fn the_step_table_is_the_integer_ceiling_for_every_sum() {
        // Pixel counts of every power-of-two bucket width, a power of two
        // and one either side of it (a bucket exactly n wide), the counts
        // of the inner test above: every sum up to 255 n (every 7th past
        // 26,896, every 997th past 200,000, and each next to a step), each
        // keep and min_delta.
        let ns = [
            1u64,
            2,
            3,
            7,
            12,
            63,
            64,
            65,
            100,
            144,
            1023,
            1024,
            1025,
            26_896,
            163_216,
            (1 << 21) - 1,
        ];
        for n in ns {
            for keep in KEEPS {
                for md in MIN_DELTAS {
                    let md32 = md.min(256) as i32;
                    let table = StepTable::new(n, keep, md32).unwrap();
                    // As the inner test: every 997th past 200,000 px (the
                    // decoder builds no table past 26,896; this keeps the
                    // debug run of CI short), each sum next to a step.
                    let step = if n <= 26_896 {
                        1
                    } else if n <= 200_000 {
                        7
                    } else {
                        997
                    };
                    let near = (0..=255u64).flat_map(|l| {
                        let by_pct = (100 * n * l).checked_div(keep).map_or(0, |q| q + 1);
                        let by_delta = n * (l + md.min(256)) + 1;
                        [by_pct, by_delta]
                            .into_iter()
                            .flat_map(|t| [t.saturating_sub(1), t, t + 1])
                    });
                    for sum in (0..=255 * n)
                        .step_by(step)
                        .chain(near.filter(|&s| s <= 255 * n))
                    {
                        assert_eq!(
                            table.limit(sum),
                            block_limit_exact(sum, n, keep, md),
                            "sum {sum}, n {n}, keep {keep}, min_delta {md}"
                        );
                    }
                }
            }
        }
        assert!(StepTable::new(1 << 21, 95, 4).is_none());
        assert!(StepTable::new(0, 95, 4).is_none());
    }

    #[test]
    fn the_block_limit_is_the_integer_ceiling_for_every_sum() {
        // Every window sum of windows of 1, 7, 144 (3x3 blocks) and 26896
        // (41x41 blocks) pixels: exact quotients (sum a multiple of n, or
        // sum × keep a multiple of 100 n) are where a floor taken as a
        // ceiling is off by one.
        for n in [1u64, 7, 144, 26_896] {
            for sum in 0..=255 * n {
                check_block_limit(sum, n);
            }
        }
    }

    #[test]
    fn the_block_limit_is_the_integer_ceiling_for_huge_windows() {
        // Windows of up to a 100 MP frame: every multiple of n and of the
        // step at which sum × keep is a multiple of 100 n, one either side
        // of each, and pseudo-random sums.
        fn gcd(a: u64, b: u64) -> u64 {
            if b == 0 {
                a
            } else {
                gcd(b, a % b)
            }
        }
        let mut state = 7u64;
        for n in [12_000_000u64, 48_000_000, 99_999_989] {
            let max = 255 * n;
            let mut sums: Vec<u64> = (0..=255).map(|k| k * n).collect();
            for keep in KEEPS.into_iter().filter(|&k| k > 0) {
                let step = 100 * n / gcd(keep, 100 * n);
                sums.extend((0..=max).step_by(step as usize));
            }
            for _ in 0..20_000 {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                sums.push((state >> 20) % (max + 1));
            }
            for &sum in &sums {
                for s in [sum.saturating_sub(1), sum, (sum + 1).min(max)] {
                    check_block_limit(s, n);
                }
            }
        }
    }

    #[test]
    fn a_flat_frame_has_no_dark_pixel_and_one_level_below_it_is_dark() {
        // All pixels 100, percent 0, min_delta 0: the mean is exactly 100
        // and no pixel is below it. One pixel of 99 pulls the mean of its
        // windows to just under 100: that pixel alone is dark.
        let (w, h) = (32, 32);
        let flat = Frame::from_luma(w, h, vec![100; w * h]).unwrap();
        assert!(adaptive_threshold(&flat, 8, 0, 0).iter().all(|&b| b == 0));
        let mut luma = vec![100; w * h];
        luma[13 * w + 17] = 99;
        let dip = Frame::from_luma(w, h, luma).unwrap();
        let bits = adaptive_threshold(&dip, 8, 0, 0);
        for (i, &b) in bits.iter().enumerate() {
            assert_eq!(b == 1, i == 13 * w + 17, "pixel {},{}", i % w, i / w);
        }
        // A min_delta past any luma leaves nothing dark (it used to wrap to
        // a negative i32 and let the 99 through).
        assert!(adaptive_threshold(&dip, 8, 0, u32::MAX)
            .iter()
            .all(|&b| b == 0));
    }

    #[test]
    fn flat_noisy_area_stays_light_and_empty_frame_is_fine() {
        let luma: Vec<u8> = (0..64 * 64).map(|i| 128 + (i * 7 % 5) as u8).collect();
        let f = Frame::from_luma(64, 64, luma).unwrap();
        assert!(adaptive_threshold(&f, 8, 15, 6).iter().all(|&b| b == 0));
        let empty = Frame::from_luma(0, 0, vec![]).unwrap();
        assert!(adaptive_threshold(&empty, 8, 15, 6).is_empty());
    }
}
