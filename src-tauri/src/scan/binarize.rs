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
pub struct LocalMean<'a> {
    frame: &'a Frame,
    bw: usize,
    bh: usize,
    /// Summed-area table over the block sums, (bw+1) x (bh+1), zero first
    /// row and column; with it, the pixel count of each block window.
    /// u64: no overflow for any frame size.
    sat: Vec<u64>,
    count: Vec<u64>,
}

impl<'a> LocalMean<'a> {
    pub fn new(frame: &'a Frame) -> Self {
        let (w, h) = (frame.width(), frame.height());
        let (bw, bh) = (w.div_ceil(BLOCK), h.div_ceil(BLOCK));
        let mut sums = vec![0u64; bw * bh];
        let luma = frame.luma();
        // Per block row: column sums of its (up to) 4 rows, a vectorised
        // add per pixel, then 4 columns per block.
        let mut cols = vec![0u16; w];
        for by in 0..bh {
            cols.iter_mut().for_each(|c| *c = 0);
            for y in by * BLOCK..((by + 1) * BLOCK).min(h) {
                for (c, &v) in cols.iter_mut().zip(&luma[y * w..(y + 1) * w]) {
                    *c += v as u16;
                }
            }
            let brow = &mut sums[by * bw..(by + 1) * bw];
            for (b, chunk) in brow.iter_mut().zip(cols.chunks(BLOCK)) {
                *b = chunk.iter().map(|&v| v as u64).sum();
            }
        }
        let stride = bw + 1;
        let mut sat = vec![0u64; stride * (bh + 1)];
        let mut count = vec![0u64; stride * (bh + 1)];
        for by in 0..bh {
            let rows = (h - by * BLOCK).min(BLOCK) as u64;
            let (mut row_sum, mut row_count) = (0u64, 0u64);
            for bx in 0..bw {
                let cols = (w - bx * BLOCK).min(BLOCK) as u64;
                row_sum += sums[by * bw + bx];
                row_count += rows * cols;
                let i = (by + 1) * stride + bx + 1;
                sat[i] = sat[i - stride] + row_sum;
                count[i] = count[i - stride] + row_count;
            }
        }
        LocalMean {
            frame,
            bw,
            bh,
            sat,
            count,
        }
    }

    /// See [`adaptive_threshold`].
    pub fn threshold(&self, radius: usize, percent: u32, min_delta: u32) -> Vec<u8> {
        self.threshold_polarity(radius, percent, min_delta, false)
    }

    /// [`Self::threshold`] of the frame's negative (255 − v), without
    /// making the negative: its block sums are 255 × count − sum, its pixels
    /// 255 − v. 1 = dark in the negative, i.e. light in the frame.
    pub fn threshold_negative(&self, radius: usize, percent: u32, min_delta: u32) -> Vec<u8> {
        self.threshold_polarity(radius, percent, min_delta, true)
    }

    fn threshold_polarity(
        &self,
        radius: usize,
        percent: u32,
        min_delta: u32,
        negative: bool,
    ) -> Vec<u8> {
        let (w, h) = (self.frame.width(), self.frame.height());
        if w == 0 || h == 0 {
            return Vec::new();
        }
        let (bw, bh) = (self.bw, self.bh);
        let r = (radius / BLOCK).max(1);
        let keep = 100u64.saturating_sub(percent.min(100) as u64);
        let stride = bw + 1;
        // Per block: the largest luma that still counts as dark, i.e.
        // below mean * keep / 100 and below mean - min_delta (-1 = none).
        let mut limit = vec![0i32; bw * bh];
        for by in 0..bh {
            let y0 = by.saturating_sub(r);
            let y1 = (by + r + 1).min(bh);
            for bx in 0..bw {
                let x0 = bx.saturating_sub(r);
                let x1 = (bx + r + 1).min(bw);
                let area = |t: &[u64]| {
                    t[y1 * stride + x1] + t[y0 * stride + x0]
                        - t[y0 * stride + x1]
                        - t[y1 * stride + x0]
                };
                let (mut sum, n) = (area(&self.sat), area(&self.count).max(1));
                if negative {
                    sum = (255 * area(&self.count)).saturating_sub(sum);
                }
                // Exact integer form of "p < sum/n * keep/100 and
                // p + min_delta < sum/n": the largest such p.
                let by_pct = (sum * keep).div_ceil(n * 100) as i64 - 1;
                let by_delta = (sum.div_ceil(n)) as i64 - min_delta as i64 - 1;
                limit[by * bw + bx] = by_pct.min(by_delta).clamp(-1, 255) as i32;
            }
        }
        let mut out = vec![0u8; w * h];
        // Each block row's limits spread to one per pixel, so the per-pixel
        // comparison is a straight (vectorised) loop over each row.
        let mut lim = vec![0i16; w];
        for y in 0..h {
            if y % BLOCK == 0 {
                let lrow = &limit[(y / BLOCK) * bw..(y / BLOCK + 1) * bw];
                for (l, &b) in lim.chunks_mut(BLOCK).zip(lrow) {
                    l.fill(b as i16);
                }
            }
            let row = &self.frame.luma()[y * w..(y + 1) * w];
            let out_row = &mut out[y * w..(y + 1) * w];
            if negative {
                for ((o, &p), &l) in out_row.iter_mut().zip(row).zip(&lim) {
                    *o = ((255 - p) as i16 <= l) as u8;
                }
            } else {
                for ((o, &p), &l) in out_row.iter_mut().zip(row).zip(&lim) {
                    *o = (p as i16 <= l) as u8;
                }
            }
        }
        out
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
    fn the_negative_threshold_is_the_threshold_of_the_negative() {
        // A gradient with dark and light specks, 37x23 (blocks cut at the
        // edges): thresholding the negative frame and thresholding the frame
        // as a negative give the same bitmap, bit for bit.
        let (w, h) = (37, 23);
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
                "radius {radius}, {percent} %"
            );
        }
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
