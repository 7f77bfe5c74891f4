//! Grayscale frames: the one pixel format the decoder works on.
//!
//! Cameras hand out YUYV or RGB(A); files decode to anything. Everything is
//! converted to 8-bit luma once, at the edge, so the pipeline has a single
//! representation to optimise for.

use thiserror::Error;

/// Why raw bytes could not be turned into a [`Frame`].
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("{format} frame of {width}x{height} needs {expected} bytes, got {actual}")]
    WrongLength {
        format: &'static str,
        width: usize,
        height: usize,
        expected: usize,
        actual: usize,
    },
    #[error("frame dimensions {width}x{height} overflow")]
    TooLarge { width: usize, height: usize },
    #[error("YUYV frames need an even width, got {0}")]
    OddYuyvWidth(usize),
}

/// An 8-bit grayscale image, row-major, no padding.
///
/// Zero-sized frames are allowed (a camera can hand one out while it starts);
/// the decoder simply finds nothing in them.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    width: usize,
    height: usize,
    luma: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pixel buffer is megabytes; print only the shape.
        f.debug_struct("Frame")
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

fn checked_len(
    format: &'static str,
    width: usize,
    height: usize,
    bytes_per_pixel: usize,
    actual: usize,
) -> Result<usize, FrameError> {
    let expected = width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(bytes_per_pixel))
        .ok_or(FrameError::TooLarge { width, height })?;
    if expected != actual {
        return Err(FrameError::WrongLength {
            format,
            width,
            height,
            expected,
            actual,
        });
    }
    Ok(expected)
}

/// ITU-R BT.601 luma in fixed point (weights sum to 256), the same weights
/// camera YUV uses, so RGB and YUYV sources of one scene give the same frame.
#[inline]
fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((77 * r as u32 + 150 * g as u32 + 29 * b as u32 + 128) >> 8) as u8
}

impl Frame {
    /// Upper bound on [`Frame::scaled`] output: 8K UHD.
    pub const MAX_SCALED_PIXELS: usize = 7680 * 4320;

    /// Wrap an existing luma buffer (`width * height` bytes).
    pub fn from_luma(width: usize, height: usize, luma: Vec<u8>) -> Result<Self, FrameError> {
        checked_len("luma", width, height, 1, luma.len())?;
        Ok(Frame {
            width,
            height,
            luma,
        })
    }

    /// Convert packed RGB8 (`width * height * 3` bytes).
    pub fn from_rgb(width: usize, height: usize, rgb: &[u8]) -> Result<Self, FrameError> {
        checked_len("RGB", width, height, 3, rgb.len())?;
        let luma = rgb
            .chunks_exact(3)
            .map(|p| luma(p[0], p[1], p[2]))
            .collect();
        Ok(Frame {
            width,
            height,
            luma,
        })
    }

    /// Convert packed RGBA8 (`width * height * 4` bytes); alpha is ignored
    /// because camera frames are opaque.
    pub fn from_rgba(width: usize, height: usize, rgba: &[u8]) -> Result<Self, FrameError> {
        checked_len("RGBA", width, height, 4, rgba.len())?;
        let luma = rgba
            .chunks_exact(4)
            .map(|p| luma(p[0], p[1], p[2]))
            .collect();
        Ok(Frame {
            width,
            height,
            luma,
        })
    }

    /// Convert YUYV 4:2:2 (`Y0 U Y1 V` per two pixels), the usual raw format of
    /// USB webcams. The Y samples already are the luma: no colour math needed.
    pub fn from_yuyv(width: usize, height: usize, yuyv: &[u8]) -> Result<Self, FrameError> {
        if !width.is_multiple_of(2) {
            return Err(FrameError::OddYuyvWidth(width));
        }
        checked_len("YUYV", width, height, 2, yuyv.len())?;
        let luma = yuyv.iter().step_by(2).copied().collect();
        Ok(Frame {
            width,
            height,
            luma,
        })
    }

    /// Convert any decoded image (files, screenshots, test renders).
    /// Colour images go through [`Frame::from_rgb`] (not `image`'s own
    /// Rec. 709 `to_luma8`) so a file and a camera frame of the same scene
    /// give the same luma.
    pub fn from_dynamic(img: &image::DynamicImage) -> Self {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let luma = match img {
            image::DynamicImage::ImageLuma8(g) => g.as_raw().clone(),
            other if !other.color().has_color() => other.to_luma8().into_raw(),
            other => {
                let rgb = other.to_rgb8();
                return Frame::from_rgb(w, h, rgb.as_raw())
                    .expect("image crate returns w*h*3 RGB bytes");
            }
        };
        Frame {
            width: w,
            height: h,
            luma,
        }
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// Row-major luma bytes, `width * height` long.
    pub fn luma(&self) -> &[u8] {
        &self.luma
    }

    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// Copy of the axis-aligned rectangle `[x0, x1) x [y0, y1)`, clamped to the frame.
    pub fn crop(&self, x0: usize, y0: usize, x1: usize, y1: usize) -> Frame {
        let x1 = x1.min(self.width);
        let y1 = y1.min(self.height);
        let x0 = x0.min(x1);
        let y0 = y0.min(y1);
        let (w, h) = (x1 - x0, y1 - y0);
        let mut luma = Vec::with_capacity(w * h);
        for y in y0..y1 {
            luma.extend_from_slice(&self.luma[y * self.width + x0..y * self.width + x1]);
        }
        Frame {
            width: w,
            height: h,
            luma,
        }
    }

    /// Bilinear resize by an integer-free factor. Used to enlarge small codes so
    /// that each module spans several pixels before rqrr binarises them.
    ///
    /// Returns an empty frame for a non-positive or non-finite factor, or
    /// when the result would exceed [`Frame::MAX_SCALED_PIXELS`] (a bad
    /// factor must not turn into a multi-gigabyte allocation).
    pub fn scaled(&self, factor: f32) -> Frame {
        let empty = Frame {
            width: 0,
            height: 0,
            luma: Vec::new(),
        };
        if self.is_empty() || !(factor.is_finite() && factor > 0.0) {
            return empty;
        }
        let w = (self.width as f64 * factor as f64).round().max(1.0);
        let h = (self.height as f64 * factor as f64).round().max(1.0);
        if w * h > Self::MAX_SCALED_PIXELS as f64 {
            return empty;
        }
        let (w, h) = (w as usize, h as usize);
        let mut luma = Vec::with_capacity(w * h);
        let inv = 1.0 / factor;
        // Precompute the horizontal taps once per column: the inner loop is hot.
        let xs: Vec<(usize, usize, f32)> = (0..w)
            .map(|x| {
                let sx = ((x as f32 + 0.5) * inv - 0.5).max(0.0);
                let x0 = (sx as usize).min(self.width - 1);
                let x1 = (x0 + 1).min(self.width - 1);
                (x0, x1, sx - x0 as f32)
            })
            .collect();
        for y in 0..h {
            let sy = ((y as f32 + 0.5) * inv - 0.5).max(0.0);
            let y0 = (sy as usize).min(self.height - 1);
            let y1 = (y0 + 1).min(self.height - 1);
            let fy = sy - y0 as f32;
            let r0 = &self.luma[y0 * self.width..(y0 + 1) * self.width];
            let r1 = &self.luma[y1 * self.width..(y1 + 1) * self.width];
            for &(x0, x1, fx) in &xs {
                let top = r0[x0] as f32 * (1.0 - fx) + r0[x1] as f32 * fx;
                let bot = r1[x0] as f32 * (1.0 - fx) + r1[x1] as f32 * fx;
                luma.push((top * (1.0 - fy) + bot * fy + 0.5) as u8);
            }
        }
        Frame {
            width: w,
            height: h,
            luma,
        }
    }

    /// The negative (255 − v): light-on-dark codes (dark-mode wallets,
    /// watches) become ordinary dark-on-light ones.
    pub fn inverted(&self) -> Frame {
        Frame {
            width: self.width,
            height: self.height,
            luma: self.luma.iter().map(|&v| 255 - v).collect(),
        }
    }

    /// Shrink by an integer factor `k`, each output pixel the mean of a
    /// `k`×`k` block (the right and bottom remainders are dropped). The
    /// coarse level of the image pyramid big frames are searched on.
    /// `k` of 0 or 1 returns a copy.
    pub fn downscaled(&self, k: usize) -> Frame {
        if k <= 1 {
            return self.clone();
        }
        let (w, h) = (self.width / k, self.height / k);
        let mut luma = vec![0u8; w * h];
        // Column sums of the k rows first (a straight, vectorised add per
        // pixel), then k of those per output pixel: the per-chunk sums this
        // replaced were the hot spot of a 4K frame.
        let mut cols = vec![0u32; w * k];
        let half = (k * k / 2) as u32;
        let n = (k * k) as u32;
        for (oy, out) in luma.chunks_exact_mut(w.max(1)).enumerate().take(h) {
            // The first of the k rows is copied, not added to zeros (the
            // zeroing was a memset of 4 k bytes a pixel column, a few % of
            // an empty 4K frame).
            let row = |y: usize| &self.luma[y * self.width..y * self.width + w * k];
            for (a, &v) in cols.iter_mut().zip(row(oy * k)) {
                *a = v as u32;
            }
            for y in oy * k + 1..(oy + 1) * k {
                for (a, &v) in cols.iter_mut().zip(row(y)) {
                    *a += v as u32;
                }
            }
            // Literal divisors for the usual factors: a division by a
            // variable does not vectorise, one by a constant becomes a
            // multiply and a shift.
            match k {
                2 => {
                    for (o, c) in out.iter_mut().zip(cols.chunks_exact(2)) {
                        *o = ((c[0] + c[1] + 2) / 4) as u8;
                    }
                }
                3 => {
                    for (o, c) in out.iter_mut().zip(cols.chunks_exact(3)) {
                        *o = ((c[0] + c[1] + c[2] + 4) / 9) as u8;
                    }
                }
                _ => {
                    for (o, c) in out.iter_mut().zip(cols.chunks_exact(k)) {
                        *o = ((c.iter().sum::<u32>() + half) / n) as u8;
                    }
                }
            }
        }
        Frame {
            width: w,
            height: h,
            luma,
        }
    }

    /// 3x3 box blur (edges use the available neighbours). Averaging nine
    /// pixels divides sensor noise by three; used as a fallback for noisy
    /// frames, where single pixels flip finder-pattern runs.
    ///
    /// Rounded mean of the 1–9 pixels, as [`Self::box_blur3_reference`]
    /// computes it pixel by pixel (a test holds them equal). Here each row
    /// is a few straight loops over slices: the horizontal sums from three
    /// shifted slices, the vertical ones by adding whole rows, and the
    /// division by a constant per row (9 inside, 6 on the top and bottom
    /// rows), which the compiler turns into a multiplication and
    /// vectorises; only the first and last column divide by their own
    /// count. It runs in stage 2b on every frame whose stage 1 saw a
    /// finder-like pattern, on a 2–3 MP level for 4K and 12 MP frames:
    /// the per-pixel version (bounds checks, a division by a variable per
    /// pixel) was a fifth of an empty 4K frame's time.
    pub fn box_blur3(&self) -> Frame {
        let (w, h) = (self.width, self.height);
        if w == 0 || h == 0 {
            return self.clone();
        }
        // Horizontal sums of 1-3 pixels.
        let mut hsum = vec![0u16; w * h];
        for (row, out) in self.luma.chunks_exact(w).zip(hsum.chunks_exact_mut(w)) {
            if w == 1 {
                out[0] = row[0] as u16;
                continue;
            }
            for (((o, &l), &c), &r) in out[1..w - 1]
                .iter_mut()
                .zip(&row[..w - 2])
                .zip(&row[1..w - 1])
                .zip(&row[2..])
            {
                *o = l as u16 + c as u16 + r as u16;
            }
            out[0] = row[0] as u16 + row[1] as u16;
            out[w - 1] = row[w - 2] as u16 + row[w - 1] as u16;
        }
        // Pixels summed horizontally at column x: 1-3.
        let hcnt = |x: usize| (x.min(1) + 1 + (w - 1 - x).min(1)) as u16;
        let mut luma = vec![0u8; w * h];
        let mut sum = vec![0u16; w];
        for (y, out) in luma.chunks_exact_mut(w).enumerate() {
            let up = y.saturating_sub(1);
            let down = (y + 1).min(h - 1);
            let rows = (y - up + down - y + 1) as u16;
            sum.copy_from_slice(&hsum[y * w..(y + 1) * w]);
            for other in [up, down] {
                if other != y {
                    for (s, &v) in sum.iter_mut().zip(&hsum[other * w..(other + 1) * w]) {
                        *s += v;
                    }
                }
            }
            // Every column as if it summed three pixels across, then the
            // first and last with their own count (which also covers frames
            // one or two pixels wide).
            match rows {
                3 => divide_rounded::<9>(&sum, out),
                2 => divide_rounded::<6>(&sum, out),
                _ => divide_rounded::<3>(&sum, out),
            }
            for x in [0, w - 1] {
                let n = rows * hcnt(x);
                out[x] = ((sum[x] + n / 2) / n) as u8;
            }
        }
        Frame {
            width: w,
            height: h,
            luma,
        }
    }

    /// The 3x3 box blur pixel by pixel (the code [`Self::box_blur3`]
    /// replaced): what it must equal.
    #[cfg(test)]
    pub(crate) fn box_blur3_reference(&self) -> Frame {
        let (w, h) = (self.width, self.height);
        if w == 0 || h == 0 {
            return self.clone();
        }
        // Horizontal sums of 1-3 pixels, then vertical sums of those.
        let mut hsum = vec![0u16; w * h];
        let hcnt: Vec<u16> = (0..w)
            .map(|x| (x.min(1) + 1 + (w - 1 - x).min(1)) as u16)
            .collect();
        for y in 0..h {
            let row = &self.luma[y * w..(y + 1) * w];
            let out = &mut hsum[y * w..(y + 1) * w];
            for x in 0..w {
                let l = if x > 0 { row[x - 1] } else { 0 } as u16;
                let r = if x + 1 < w { row[x + 1] } else { 0 } as u16;
                out[x] = l + row[x] as u16 + r;
            }
        }
        let mut luma = vec![0u8; w * h];
        for y in 0..h {
            let up = y.saturating_sub(1);
            let down = (y + 1).min(h - 1);
            let rows = (y - up + down - y + 1) as u16;
            for x in 0..w {
                let mut s = hsum[y * w + x];
                if up != y {
                    s += hsum[up * w + x];
                }
                if down != y {
                    s += hsum[down * w + x];
                }
                let n = rows * hcnt[x];
                luma[y * w + x] = ((s + n / 2) / n) as u8;
            }
        }
        Frame {
            width: w,
            height: h,
            luma,
        }
    }

    /// Bilinear sample at a sub-pixel position (pixel centres at integer + 0.5),
    /// clamped at the border. Returns `None` far outside the frame.
    #[inline]
    pub fn sample(&self, x: f64, y: f64) -> Option<f32> {
        if self.is_empty() || !x.is_finite() || !y.is_finite() {
            return None;
        }
        let sx = x - 0.5;
        let sy = y - 0.5;
        if sx < -1.0 || sy < -1.0 || sx > self.width as f64 || sy > self.height as f64 {
            return None;
        }
        let sx = sx.clamp(0.0, (self.width - 1) as f64);
        let sy = sy.clamp(0.0, (self.height - 1) as f64);
        let x0 = sx as usize;
        let y0 = sy as usize;
        let x1 = (x0 + 1).min(self.width - 1);
        let y1 = (y0 + 1).min(self.height - 1);
        let fx = (sx - x0 as f64) as f32;
        let fy = (sy - y0 as f64) as f32;
        let p = |x: usize, y: usize| self.luma[y * self.width + x] as f32;
        let top = p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx;
        let bot = p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx;
        Some(top * (1.0 - fy) + bot * fy)
    }
}

/// `out[x] = round(sum[x] / N)` (halves up), for sums of at most 9
/// bytes (≤ 2,295: no overflow of `sum + N / 2`). A constant divisor, so
/// a multiplication the compiler vectorises.
fn divide_rounded<const N: u16>(sum: &[u16], out: &mut [u8]) {
    for (o, &s) in out.iter_mut().zip(sum) {
        *o = ((s + N / 2) / N) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_reject_wrong_lengths() {
        let cases: &[(&str, Result<Frame, FrameError>)] = &[
            ("luma short", Frame::from_luma(2, 2, vec![0; 3])),
            ("rgb short", Frame::from_rgb(2, 2, &[0; 11])),
            ("rgba long", Frame::from_rgba(2, 2, &[0; 17])),
            ("yuyv short", Frame::from_yuyv(2, 2, &[0; 7])),
            ("yuyv odd width", Frame::from_yuyv(3, 2, &[0; 12])),
            ("overflow", Frame::from_rgb(usize::MAX, 2, &[])),
        ];
        for (name, result) in cases {
            assert!(result.is_err(), "{name} should be rejected");
        }
    }

    #[test]
    fn zero_sized_frames_are_valid_and_empty() {
        for (w, h) in [(0, 0), (0, 5), (5, 0)] {
            let f = Frame::from_luma(w, h, vec![]).unwrap();
            assert!(f.is_empty());
            assert_eq!(f.sample(0.0, 0.0), None);
            assert!(f.scaled(2.0).is_empty());
            assert!(f.crop(0, 0, 10, 10).is_empty());
        }
    }

    #[test]
    fn colour_formats_agree_on_luma() {
        // One white, one black, one pure-red, one pure-green pixel.
        let rgb = [255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 255, 0];
        let rgba: Vec<u8> = rgb.chunks(3).flat_map(|p| [p[0], p[1], p[2], 7]).collect();
        let a = Frame::from_rgb(2, 2, &rgb).unwrap();
        let b = Frame::from_rgba(2, 2, &rgba).unwrap();
        assert_eq!(a, b);
        // BT.601 in 8.8 fixed point: red 77, green 149.
        assert_eq!(a.luma(), &[255, 0, 77, 149]);
        let img =
            image::DynamicImage::ImageRgb8(image::RgbImage::from_raw(2, 2, rgb.to_vec()).unwrap());
        assert_eq!(Frame::from_dynamic(&img).luma(), a.luma());
    }

    #[test]
    fn yuyv_keeps_the_y_samples() {
        let yuyv = [10, 128, 20, 128, 30, 99, 40, 99];
        let f = Frame::from_yuyv(2, 2, &yuyv).unwrap();
        assert_eq!(f.luma(), &[10, 20, 30, 40]);
    }

    #[test]
    fn box_blur_averages_neighbours_and_keeps_flat_areas() {
        let f = Frame::from_luma(3, 3, vec![0, 0, 0, 0, 90, 0, 0, 0, 0]).unwrap();
        let b = f.box_blur3();
        assert_eq!(b.luma()[4], 10, "centre: 90 / 9");
        assert_eq!(b.luma()[0], 23, "corner: 90 / 4, rounded");
        let flat = Frame::from_luma(4, 2, vec![77; 8]).unwrap();
        assert_eq!(flat.box_blur3(), flat);
        let one = Frame::from_luma(1, 1, vec![5]).unwrap();
        assert_eq!(one.box_blur3(), one);
    }

    #[test]
    fn the_box_blur_equals_the_pixel_by_pixel_one() {
        // Every size up to 12 x 12 (one- and two-pixel rows and columns,
        // where the edge counts differ) and a few bigger ones, random
        // bytes and runs of 0 and 255 (sums at the top of the range,
        // rounding at .5 of every divisor).
        let mut state = 4_242_777u32;
        let mut next = || {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (state >> 8) as u8
        };
        let sizes = (1..=12).flat_map(|w| (1..=12).map(move |h| (w, h))).chain([
            (37, 5),
            (5, 37),
            (64, 48),
            (255, 3),
        ]);
        for (w, h) in sizes {
            for kind in 0..3 {
                let luma: Vec<u8> = (0..w * h)
                    .map(|_| match kind {
                        0 => next(),
                        1 => [0, 255][usize::from(next() > 127)],
                        _ => [0, 1, 254, 255][usize::from(next() % 4)],
                    })
                    .collect();
                let f = Frame::from_luma(w, h, luma).unwrap();
                assert_eq!(
                    f.box_blur3().luma(),
                    f.box_blur3_reference().luma(),
                    "{w}x{h} kind {kind}"
                );
            }
        }
        let empty = Frame::from_luma(0, 3, vec![]).unwrap();
        assert!(empty.box_blur3().is_empty());
    }

    #[test]
    fn inverted_is_the_negative() {
        let f = Frame::from_luma(3, 1, vec![0, 100, 255]).unwrap();
        assert_eq!(f.inverted().luma(), &[255, 155, 0]);
        assert_eq!(f.inverted().inverted(), f);
    }

    #[test]
    fn downscaled_averages_blocks_and_drops_remainders() {
        // 5x3 at k = 2: two 2x2 blocks of the first two rows; column 4 and
        // row 2 are dropped.
        let f = Frame::from_luma(
            5,
            3,
            vec![
                0, 10, 100, 100, 9, //
                20, 30, 100, 101, 9, //
                7, 7, 7, 7, 7,
            ],
        )
        .unwrap();
        let d = f.downscaled(2);
        assert_eq!((d.width(), d.height()), (2, 1));
        assert_eq!(d.luma(), &[15, 100]);
        assert_eq!(f.downscaled(1), f);
        assert!(f.downscaled(4).is_empty());
        let empty = Frame::from_luma(0, 0, vec![]).unwrap();
        assert!(empty.downscaled(3).is_empty());
        // Every factor is the rounded block mean (k = 2 and 3 have their
        // own loops).
        let (w, h) = (23, 17);
        let f = Frame::from_luma(w, h, (0..w * h).map(|i| (i * 37 % 256) as u8).collect()).unwrap();
        for k in 2..=5 {
            let d = f.downscaled(k);
            assert_eq!((d.width(), d.height()), (w / k, h / k));
            for oy in 0..h / k {
                for ox in 0..w / k {
                    let sum: usize = (0..k * k)
                        .map(|i| f.luma()[(oy * k + i / k) * w + ox * k + i % k] as usize)
                        .sum();
                    let want = ((sum + k * k / 2) / (k * k)) as u8;
                    assert_eq!(d.luma()[oy * (w / k) + ox], want, "k {k} at {ox},{oy}");
                }
            }
        }
    }

    #[test]
    fn crop_clamps_and_scaled_doubles() {
        let f = Frame::from_luma(3, 2, vec![1, 2, 3, 4, 5, 6]).unwrap();
        assert_eq!(f.crop(1, 0, 99, 99).luma(), &[2, 3, 5, 6]);
        assert_eq!(f.crop(5, 5, 1, 1).width(), 0);
        let s = f.scaled(2.0);
        assert_eq!((s.width(), s.height()), (6, 4));
        assert_eq!(s.luma()[0], 1);
        for bad in [0.0, -1.0, f32::NAN, f32::INFINITY, 1e9] {
            assert!(f.scaled(bad).is_empty(), "factor {bad}");
        }
    }
}
