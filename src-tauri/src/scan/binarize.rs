//! Adaptive (local mean) thresholding with an integral image.
//!
//! rqrr's own binariser is a running average along each row. Under a glare
//! gradient, low contrast or vertical shading it misplaces the threshold and
//! the finder patterns break apart. A square-window local mean (Bradley & Roth,
//! "Adaptive Thresholding Using the Integral Image", 2007) follows the
//! illumination in both directions, at a fixed cost per pixel whatever the
//! window size.

use super::Frame;

/// Returns one byte per pixel: 1 = dark, 0 = light.
///
/// `radius` is half the window side in pixels; `percent` is how far below the
/// local mean a pixel must be to count as dark (Bradley uses 15); `min_delta`
/// is an absolute floor on that distance so sensor noise on flat areas does not
/// turn into speckle (speckle costs rqrr time in its flood fills).
pub fn adaptive_threshold(frame: &Frame, radius: usize, percent: u32, min_delta: u32) -> Vec<u8> {
    LocalMean::new(frame).threshold(radius, percent, min_delta)
}

/// A summed-area table of a frame, to threshold it at several window sizes
/// for the price of one table.
pub struct LocalMean<'a> {
    frame: &'a Frame,
    /// (w+1) x (h+1), zero first row and column. Built with wrapping adds:
    /// a window's sum, taken with wrapping subtractions, is exact as long as
    /// the window itself sums below 2^32, whatever the frame size.
    sat: Vec<u32>,
}

impl<'a> LocalMean<'a> {
    pub fn new(frame: &'a Frame) -> Self {
        let (w, h) = (frame.width(), frame.height());
        if w == 0 || h == 0 {
            return LocalMean {
                frame,
                sat: Vec::new(),
            };
        }
        let luma = frame.luma();
        let stride = w + 1;
        let mut sat = vec![0u32; stride * (h + 1)];
        for y in 0..h {
            let mut row_sum = 0u32;
            let row = &luma[y * w..(y + 1) * w];
            for x in 0..w {
                row_sum = row_sum.wrapping_add(row[x] as u32);
                sat[(y + 1) * stride + x + 1] = sat[y * stride + x + 1].wrapping_add(row_sum);
            }
        }
        LocalMean { frame, sat }
    }

    /// See [`adaptive_threshold`]. The radius is capped at 1000 px so a
    /// window's sum always fits the table's 32 bits.
    pub fn threshold(&self, radius: usize, percent: u32, min_delta: u32) -> Vec<u8> {
        let (w, h) = (self.frame.width(), self.frame.height());
        if w == 0 || h == 0 {
            return Vec::new();
        }
        let luma = self.frame.luma();
        let sat = &self.sat;
        let stride = w + 1;
        let r = radius.clamp(1, 1000);
        // "percent below the mean" as a fraction of 256, so the hot loop
        // needs no division: dark iff p < mean * keep / 256, and
        // p < mean - min_delta.
        let keep = (256 * 100u64.saturating_sub(percent.min(100) as u64)) / 100;
        let min_delta = min_delta as u64;
        let mut out = vec![0u8; w * h];
        let dark = |p: u8, sum: u64, count: u64| -> u8 {
            let p = p as u64 * count;
            (p * 256 < sum * keep && p + min_delta * count < sum) as u8
        };
        for y in 0..h {
            let y0 = y.saturating_sub(r);
            let y1 = (y + r + 1).min(h);
            let rows = (y1 - y0) as u64;
            let top = &sat[y0 * stride..(y0 + 1) * stride];
            let bot = &sat[y1 * stride..(y1 + 1) * stride];
            let row = &luma[y * w..(y + 1) * w];
            let out_row = &mut out[y * w..(y + 1) * w];
            let window_sum = |x0: usize, x1: usize| {
                bot[x1]
                    .wrapping_add(top[x0])
                    .wrapping_sub(bot[x0])
                    .wrapping_sub(top[x1]) as u64
            };
            // Border columns, where the window is clipped.
            let inner = r..w.saturating_sub(r + 1);
            for x in (0..w).filter(|x| !inner.contains(x)) {
                let x0 = x.saturating_sub(r);
                let x1 = (x + r + 1).min(w);
                out_row[x] = dark(row[x], window_sum(x0, x1), (x1 - x0) as u64 * rows);
            }
            // Interior: full-width window, constant pixel count; this is
            // where the time goes, so no clamping here.
            let count = (2 * r + 1) as u64 * rows;
            for x in inner {
                out_row[x] = dark(row[x], window_sum(x - r, x + r + 1), count);
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
    fn flat_noisy_area_stays_light_and_empty_frame_is_fine() {
        let luma: Vec<u8> = (0..64 * 64).map(|i| 128 + (i * 7 % 5) as u8).collect();
        let f = Frame::from_luma(64, 64, luma).unwrap();
        assert!(adaptive_threshold(&f, 8, 15, 6).iter().all(|&b| b == 0));
        let empty = Frame::from_luma(0, 0, vec![]).unwrap();
        assert!(adaptive_threshold(&empty, 8, 15, 6).is_empty());
    }
}
