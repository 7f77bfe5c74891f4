use std::{cmp, num::NonZeroUsize};

use crate::identify::match_capstones::CapStoneGroup;
use crate::identify::Point;
use lru::LruCache;

/// An black-and-white image that can be mutated on search for QR codes
///
/// During search for QR codes, some black zones will be recolored in
/// 'different' shades of black. This is done to speed up the search and
/// mitigate the impact of a huge zones.
pub struct PreparedImage<S> {
    buffer: S,
    cache: LruCache<u8, ColoredRegion>,
}

impl<S> Clone for PreparedImage<S>
where
    S: Clone,
{
    fn clone(&self) -> Self {
        let mut cache = LruCache::new(self.cache.cap());
        for (k, v) in self.cache.iter() {
            cache.put(*k, *v);
        }

        PreparedImage {
            buffer: self.buffer.clone(),
            cache,
        }
    }
}

pub trait ImageBuffer {
    fn width(&self) -> usize;
    fn height(&self) -> usize;

    fn get_pixel(&self, x: usize, y: usize) -> u8;
    fn set_pixel(&mut self, x: usize, y: usize, val: u8);

    /// Entrada: all pixels as one slice, row by row (`y * width + x`), if the
    /// buffer is stored so; the flood fill then works on rows of it.
    fn pixels_mut(&mut self) -> Option<&mut [u8]> {
        None
    }

    /// Entrada: how many pixels from `(x, y)` rightwards, up to the row's end,
    /// have the value `val` (0 if `(x, y)` does not). The capstone scan uses
    /// it to pass a run of one colour in one step.
    fn run_length(&self, x: usize, y: usize, val: u8) -> usize {
        let w = self.width();
        let mut n = 0;
        while x + n < w && self.get_pixel(x + n, y) == val {
            n += 1;
        }
        n
    }
}

#[cfg(feature = "img")]
impl<
        T: image::GenericImage<Pixel = image::Luma<u8>>
            + image::GenericImageView<Pixel = image::Luma<u8>>,
    > ImageBuffer for T
{
    fn width(&self) -> usize {
        self.width() as usize
    }

    fn height(&self) -> usize {
        self.height() as usize
    }

    fn get_pixel(&self, x: usize, y: usize) -> u8 {
        self.get_pixel(x as u32, y as u32).0[0]
    }

    fn set_pixel(&mut self, x: usize, y: usize, val: u8) {
        let pixel = image::Luma::<u8>::from([val; 1]);

        self.put_pixel(x as u32, y as u32, pixel);
    }
}

#[derive(Clone, Debug)]
pub struct BasicImageBuffer {
    w: usize,
    h: usize,
    pixels: Box<[u8]>,
}

impl ImageBuffer for BasicImageBuffer {
    fn width(&self) -> usize {
        self.w
    }

    fn height(&self) -> usize {
        self.h
    }

    fn get_pixel(&self, x: usize, y: usize) -> u8 {
        let w = self.width();
        self.pixels[(y * w) + x]
    }

    fn set_pixel(&mut self, x: usize, y: usize, val: u8) {
        let w = self.width();
        self.pixels[(y * w) + x] = val
    }

    /// Entrada: the pixels as one slice, so that `flood_fill` works on rows.
    fn pixels_mut(&mut self) -> Option<&mut [u8]> {
        Some(&mut self.pixels)
    }

    /// Entrada: the row's bytes compared eight at a time (the first differing
    /// byte of a word found from the XOR's zero bits) instead of a bounds
    /// checked `get_pixel` per pixel.
    fn run_length(&self, x: usize, y: usize, val: u8) -> usize {
        let row = &self.pixels[y * self.w + x..(y + 1) * self.w];
        // Little-endian words on every machine: the byte first in memory is
        // the lowest, so the first differing byte is the XOR's trailing zeros.
        let splat = u64::from_le_bytes([val; 8]);
        let mut chunks = row.chunks_exact(8);
        let mut n = 0;
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().unwrap());
            let diff = word ^ splat;
            if diff != 0 {
                return n + (diff.trailing_zeros() / 8) as usize;
            }
            n += 8;
        }
        n + chunks.remainder().iter().take_while(|&&p| p == val).count()
    }
}

#[derive(Debug, Clone, Copy, Eq, PartialEq)]
pub struct Row {
    pub left: usize,
    pub right: usize,
    pub y: usize,
}

#[derive(Copy, Clone, Debug, Eq, PartialEq)]
pub enum PixelColor {
    White,
    Black,
    CapStone,
    Alignment,
    Tmp1,
    Discarded(u8),
}

#[derive(Copy, Clone, Debug, Eq, PartialEq)]
pub enum ColoredRegion {
    Unclaimed {
        color: PixelColor,
        src_x: usize,
        src_y: usize,
        pixel_count: usize,
    },
    CapStone,
    Alignment,
    Tmp1,
}

impl From<u8> for PixelColor {
    fn from(x: u8) -> Self {
        match x {
            0 => PixelColor::White,
            1 => PixelColor::Black,
            2 => PixelColor::CapStone,
            3 => PixelColor::Alignment,
            4 => PixelColor::Tmp1,
            x => PixelColor::Discarded(x - 5),
        }
    }
}

impl From<PixelColor> for u8 {
    fn from(c: PixelColor) -> Self {
        match c {
            PixelColor::White => 0,
            PixelColor::Black => 1,
            PixelColor::CapStone => 2,
            PixelColor::Alignment => 3,
            PixelColor::Tmp1 => 4,
            PixelColor::Discarded(x) => x + 5,
        }
    }
}

impl PartialEq<u8> for PixelColor {
    fn eq(&self, other: &u8) -> bool {
        let rep: u8 = (*self).into();
        rep == *other
    }
}

pub trait AreaFiller {
    fn update(&mut self, row: Row);
}

impl<F> AreaFiller for F
where
    F: FnMut(Row),
{
    fn update(&mut self, row: Row) {
        self(row)
    }
}

struct AreaCounter(usize);

impl AreaFiller for AreaCounter {
    fn update(&mut self, row: Row) {
        self.0 += row.right - row.left + 1;
    }
}

impl<S> PreparedImage<S>
where
    S: ImageBuffer,
{
    pub fn prepare(mut buf: S) -> Self {
        let w = buf.width();
        let h = buf.height();
        let mut row_average = vec![0; w];
        let mut avg_v = 0;
        let mut avg_u = 0;

        let threshold_s = cmp::max(w / 8, 1);

        for y in 0..h {
            row_average.fill(0);

            for x in 0..w {
                let (v, u) = if y % 2 == 0 {
                    (w - 1 - x, x)
                } else {
                    (x, w - 1 - x)
                };
                avg_v = avg_v * (threshold_s - 1) / threshold_s + buf.get_pixel(v, y) as usize;
                avg_u = avg_u * (threshold_s - 1) / threshold_s + buf.get_pixel(u, y) as usize;
                row_average[v] += avg_v;
                row_average[u] += avg_u;
            }

            #[allow(clippy::needless_range_loop)]
            for x in 0..w {
                let fill = if (buf.get_pixel(x, y) as usize)
                    < row_average[x] * (100 - 5) / (200 * threshold_s)
                {
                    PixelColor::Black
                } else {
                    PixelColor::White
                };
                buf.set_pixel(x, y, fill.into());
            }
        }

        PreparedImage {
            buffer: buf,
            cache: LruCache::new(NonZeroUsize::new(251).unwrap()),
        }
    }

    /// Group [CapStones](struct.CapStone.html) into [Grids](struct.Grid.html)
    /// that are likely QR codes
    ///
    /// Return a vector of Grids
    pub fn detect_grids<'a>(
        &'a mut self,
    ) -> Vec<crate::Grid<crate::identify::grid::RefGridImage<'a, S>>>
    where
        S: Clone,
    {
        let mut res = Vec::new();
        let stones = crate::capstones_from_image(self);
        let groups = self.find_groupings(stones);
        let locations: Vec<_> = groups
            .into_iter()
            .filter_map(|v| crate::SkewedGridLocation::from_group(self, v))
            .collect();
        for grid_location in locations {
            let bounds = [
                grid_location.c.map(0.0, 0.0),
                grid_location
                    .c
                    .map(grid_location.grid_size as f64 + 1.0, 0.0),
                grid_location.c.map(
                    grid_location.grid_size as f64 + 1.0,
                    grid_location.grid_size as f64 + 1.0,
                ),
                grid_location
                    .c
                    .map(0.0, grid_location.grid_size as f64 + 1.0),
            ];
            let grid = grid_location.into_grid_image(self);
            res.push(crate::Grid { grid, bounds });
        }

        res
    }

    /// Find CapStones that form a grid
    ///
    /// By trying to match up the relative perspective of 3
    /// [CapStones](struct.CapStone.html) along with other criteria we can find the
    /// CapStones that corner the same QR code.
    fn find_groupings(&mut self, capstones: Vec<crate::CapStone>) -> Vec<CapStoneGroup>
    where
        S: Clone,
    {
        let mut used_capstones = Vec::new();
        let mut groups = Vec::new();
        for idx in 0..capstones.len() {
            if used_capstones.contains(&idx) {
                continue;
            }
            let pairs = crate::identify::find_and_rank_possible_neighbors(&capstones, idx);
            for pair in pairs {
                if used_capstones.contains(&pair.0) || used_capstones.contains(&pair.1) {
                    continue;
                }
                let group_under_test = CapStoneGroup(
                    capstones[pair.0].clone(),
                    capstones[idx].clone(),
                    capstones[pair.1].clone(),
                );
                // Confirm that this group has the other requirements of a QR code.
                // A copy of the input image is used to not contaminate the
                // original on an incorrect set of CapStones
                let mut image_copy = self.clone();
                if crate::SkewedGridLocation::from_group(&mut image_copy, group_under_test.clone())
                    .is_none()
                {
                    continue;
                }
                // This is a viable set, save this grouping
                groups.push(group_under_test);
                used_capstones.push(pair.0);
                used_capstones.push(idx);
                used_capstones.push(pair.1);
            }
        }
        groups
    }

    pub fn without_preparation(buf: S) -> Self {
        for y in 0..buf.height() {
            for x in 0..buf.width() {
                assert!(buf.get_pixel(x, y) < 2);
            }
        }

        PreparedImage {
            buffer: buf,
            cache: LruCache::new(NonZeroUsize::new(251).unwrap()),
        }
    }

    /// Return the width of the image
    pub fn width(&self) -> usize {
        self.buffer.width()
    }

    /// Return the height of the image
    pub fn height(&self) -> usize {
        self.buffer.height()
    }

    pub(crate) fn get_region(&mut self, (x, y): (usize, usize)) -> ColoredRegion {
        let color: PixelColor = self.buffer.get_pixel(x, y).into();
        match color {
            PixelColor::Discarded(r) => *self.cache.get(&r).unwrap(),
            PixelColor::Black => {
                let cache_fill = self.cache.len();
                let reg_idx = if cache_fill == self.cache.cap().get() {
                    let (c, reg) = self.cache.pop_lru().expect("fill is at capacity (251)");
                    #[allow(clippy::single_match)]
                    match reg {
                        ColoredRegion::Unclaimed {
                            src_x,
                            src_y,
                            color,
                            ..
                        } => {
                            let _ = self.flood_fill(
                                src_x,
                                src_y,
                                color.into(),
                                PixelColor::Black.into(),
                                |_| (),
                            );
                        }
                        _ => (),
                    }
                    c
                } else {
                    cache_fill as u8
                };
                let next_reg_color = PixelColor::Discarded(reg_idx);
                let counter = self.repaint_and_apply((x, y), next_reg_color, AreaCounter(0));
                let new_reg = ColoredRegion::Unclaimed {
                    color: next_reg_color,
                    src_x: x,
                    src_y: y,
                    pixel_count: counter.0,
                };
                self.cache.put(reg_idx, new_reg);
                new_reg
            }
            PixelColor::Tmp1 => ColoredRegion::Tmp1,
            PixelColor::Alignment => ColoredRegion::Alignment,
            PixelColor::CapStone => ColoredRegion::CapStone,
            PixelColor::White => panic!("Tried to color white patch"),
        }
    }

    pub(crate) fn repaint_and_apply<F>(
        &mut self,
        (x, y): (usize, usize),
        target_color: PixelColor,
        fill: F,
    ) -> F
    where
        F: AreaFiller,
    {
        let src = self.buffer.get_pixel(x, y);
        if PixelColor::White == src || target_color == src {
            panic!("Cannot repaint with white or same color");
        }

        self.flood_fill(x, y, src, target_color.into(), fill)
    }

    pub fn get_pixel_at_point(&self, p: Point) -> PixelColor {
        let x = cmp::max(0, cmp::min((self.width() - 1) as i32, p.x));
        let y = cmp::max(0, cmp::min((self.height() - 1) as i32, p.y));
        self.buffer.get_pixel(x as usize, y as usize).into()
    }

    pub fn get_pixel_at(&self, x: usize, y: usize) -> PixelColor {
        self.buffer.get_pixel(x, y).into()
    }

    /// Entrada: how many pixels from `(x, y)` rightwards, up to the row's end,
    /// have the colour `color` (see `ImageBuffer::run_length`).
    pub(crate) fn run_length_at(&self, x: usize, y: usize, color: PixelColor) -> usize {
        self.buffer.run_length(x, y, color.into())
    }

    #[cfg(feature = "img")]
    pub fn write_state_to(&self, p: &str) {
        let mut dyn_img = image::RgbImage::new(self.width() as u32, self.height() as u32);
        const COLORS: [[u8; 3]; 8] = [
            [255, 0, 0],
            [0, 255, 0],
            [0, 0, 255],
            [255, 255, 0],
            [255, 0, 255],
            [0, 255, 255],
            [128, 128, 128],
            [128, 0, 128],
        ];
        for y in 0..self.height() {
            for x in 0..self.width() {
                let px = self.buffer.get_pixel(x, y);
                dyn_img.get_pixel_mut(x as u32, y as u32).0 = if px == 0 {
                    [255, 255, 255]
                } else if px == 1 {
                    [0, 0, 0]
                } else {
                    let i = self.buffer.get_pixel(x, y) - 2;
                    COLORS[(i % 8) as usize]
                }
            }
        }
        dyn_img.save(p).unwrap();
    }

    fn flood_fill<F>(&mut self, x: usize, y: usize, from: u8, to: u8, mut fill: F) -> F
    where
        F: AreaFiller,
    {
        assert_ne!(from, to);
        let w = self.width();
        // Entrada: on a buffer that lends its pixels as one slice, the same
        // fill by rows of that slice (no per-pixel bounds-checked trait call).
        let h = self.height();
        if let Some(pixels) = self.buffer.pixels_mut() {
            return flood_fill_pixels(pixels, w, h, (x, y), from, to, fill);
        }
        let mut queue = Vec::new();
        queue.push((x, y));

        while let Some((x, y)) = queue.pop() {
            // Bail early in case there is nothing to fill
            if self.buffer.get_pixel(x, y) == to || self.buffer.get_pixel(x, y) != from {
                continue;
            }

            let mut left = x;
            let mut right = x;

            while left > 0 && self.buffer.get_pixel(left - 1, y) == from {
                left -= 1;
            }
            while right < w - 1 && self.buffer.get_pixel(right + 1, y) == from {
                right += 1
            }

            /* Fill the extent */
            for idx in left..=right {
                self.buffer.set_pixel(idx, y, to);
            }

            fill.update(Row { left, right, y });

            /* Seed new flood-fills */
            if y > 0 {
                let mut seeded_previous = false;
                for x in left..=right {
                    let p = self.buffer.get_pixel(x, y - 1);
                    if p == from {
                        if !seeded_previous {
                            queue.push((x, y - 1));
                        }
                        seeded_previous = true;
                    } else {
                        seeded_previous = false;
                    }
                }
            }
            if y < self.height() - 1 {
                let mut seeded_previous = false;
                for x in left..=right {
                    let p = self.buffer.get_pixel(x, y + 1);
                    if p == from {
                        if !seeded_previous {
                            queue.push((x, y + 1));
                        }
                        seeded_previous = true;
                    } else {
                        seeded_previous = false;
                    }
                }
            }
        }
        fill
    }
}

/// Entrada: `PreparedImage::flood_fill` on a `w` x `h` image held as one
/// slice of rows: the same steps (the same queue, rows, fill order and
/// `AreaFiller` calls) with the row's pixels read and written through slices.
fn flood_fill_pixels<F>(
    pixels: &mut [u8],
    w: usize,
    h: usize,
    (x, y): (usize, usize),
    from: u8,
    to: u8,
    mut fill: F,
) -> F
where
    F: AreaFiller,
{
    // Push the first pixel of every run of `from` in `row` (its first pixel
    // at `left` in row `y`), as the per-pixel loop's `seeded_previous` does.
    fn seed(row: &[u8], left: usize, y: usize, from: u8, queue: &mut Vec<(usize, usize)>) {
        let mut seeded_previous = false;
        for (i, &p) in row.iter().enumerate() {
            if p == from {
                if !seeded_previous {
                    queue.push((left + i, y));
                }
                seeded_previous = true;
            } else {
                seeded_previous = false;
            }
        }
    }

    let mut queue = Vec::new();
    queue.push((x, y));

    while let Some((x, y)) = queue.pop() {
        let row = &mut pixels[y * w..(y + 1) * w];
        // Bail early in case there is nothing to fill
        if row[x] == to || row[x] != from {
            continue;
        }

        let mut left = x;
        let mut right = x;
        while left > 0 && row[left - 1] == from {
            left -= 1;
        }
        while right < w - 1 && row[right + 1] == from {
            right += 1
        }

        /* Fill the extent */
        row[left..=right].fill(to);

        fill.update(Row { left, right, y });

        /* Seed new flood-fills */
        if y > 0 {
            let above = (y - 1) * w;
            seed(
                &pixels[above + left..=above + right],
                left,
                y - 1,
                from,
                &mut queue,
            );
        }
        if y < h - 1 {
            let below = (y + 1) * w;
            seed(
                &pixels[below + left..=below + right],
                left,
                y + 1,
                from,
                &mut queue,
            );
        }
    }
    fill
}

impl PreparedImage<BasicImageBuffer> {
    /// Given a function with binary output, generate a searchable image
    ///
    /// If the given function returns `true` the matching pixel will be 'black'.
    pub fn prepare_from_bitmap<F>(w: usize, h: usize, mut fill: F) -> Self
    where
        F: FnMut(usize, usize) -> bool,
    {
        let capacity = w.checked_mul(h).expect("Image dimensions caused overflow");
        let mut pixels = Vec::with_capacity(capacity);

        for y in 0..h {
            for x in 0..w {
                let col = if fill(x, y) {
                    PixelColor::Black
                } else {
                    PixelColor::White
                };
                pixels.push(col.into())
            }
        }
        let pixels = pixels.into_boxed_slice();
        let buffer = BasicImageBuffer { w, h, pixels };
        PreparedImage::without_preparation(buffer)
    }

    /// Entrada: a searchable image from a bitmap of one byte a pixel, row by
    /// row (`bits[y * w + x]`), a byte other than 0 being 'black'.
    ///
    /// The same image as `prepare_from_bitmap(w, h, |x, y| bits[y * w + x] != 0)`,
    /// without that constructor's per-pixel closure call, `PixelColor` round
    /// trip, capacity-checked push and (in `without_preparation`) per-pixel
    /// assert: one pass that maps each byte to 0 or 1, so every pixel is a
    /// valid colour (0 = white, 1 = black) by construction. On a 2 MP bitmap
    /// that per-pixel work was a fifth of the instructions of a frame that
    /// shows finder-like texture but no code (issue 18).
    ///
    /// Panics if `bits.len()` is not `w * h` (or that product overflows).
    pub fn prepare_from_bits(w: usize, h: usize, bits: &[u8]) -> Self {
        let capacity = w.checked_mul(h).expect("Image dimensions caused overflow");
        assert_eq!(bits.len(), capacity, "bitmap length is not w * h");
        let pixels: Box<[u8]> = bits.iter().map(|&b| u8::from(b != 0)).collect();
        let buffer = BasicImageBuffer { w, h, pixels };
        PreparedImage {
            buffer,
            cache: LruCache::new(NonZeroUsize::new(251).unwrap()),
        }
    }

    /// Given a byte valued function, generate a searchable image
    ///
    /// The values returned by the function are interpreted as luminance. i.e. a
    /// value of 0 is black, 255 is white.
    pub fn prepare_from_greyscale<F>(w: usize, h: usize, mut fill: F) -> Self
    where
        F: FnMut(usize, usize) -> u8,
    {
        let capacity = w.checked_mul(h).expect("Image dimensions caused overflow");
        let mut data = Vec::with_capacity(capacity);
        for y in 0..h {
            for x in 0..w {
                data.push(fill(x, y));
            }
        }
        let pixels = data.into_boxed_slice();
        let buffer = BasicImageBuffer { w, h, pixels };
        PreparedImage::prepare(buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img_from_array(array: [[u8; 3]; 3]) -> PreparedImage<BasicImageBuffer> {
        let mut pixels = Vec::new();
        for col in array.iter() {
            for item in col.iter() {
                if *item == 0 {
                    pixels.push(0)
                } else {
                    pixels.push(1)
                }
            }
        }
        let buffer = BasicImageBuffer {
            w: 3,
            h: 3,
            pixels: pixels.into_boxed_slice(),
        };

        PreparedImage {
            buffer,
            cache: LruCache::new(NonZeroUsize::new(251).unwrap()),
        }
    }

    #[test]
    fn test_flood_fill_full() {
        let mut test_full = img_from_array([[1, 1, 1], [1, 1, 1], [1, 1, 1]]);

        test_full.flood_fill(0, 0, 1, 2, &mut |_| ());

        for x in 0..3 {
            for y in 0..3 {
                assert_eq!(test_full.get_pixel_at(x, y), 2);
            }
        }
    }

    #[test]
    fn test_flood_fill_single() {
        let mut test_single = img_from_array([[1, 0, 1], [0, 1, 0], [1, 0, 1]]);

        test_single.flood_fill(1, 1, 1, 2, &mut |_| ());

        for x in 0..3 {
            for y in 0..3 {
                if x == 1 && y == 1 {
                    assert_eq!(test_single.get_pixel_at(x, y), 2);
                } else {
                    let col = if (x + y) % 2 == 0 { 1 } else { 0 };
                    assert_eq!(test_single.get_pixel_at(x, y), col);
                }
            }
        }
    }

    #[test]
    fn test_flood_fill_ring() {
        let mut test_ring = img_from_array([[1, 1, 1], [1, 0, 1], [1, 1, 1]]);

        test_ring.flood_fill(0, 0, 1, 2, &mut |_| ());

        for x in 0..3 {
            for y in 0..3 {
                if x == 1 && y == 1 {
                    assert_eq!(test_ring.get_pixel_at(x, y), 0);
                } else {
                    assert_eq!(test_ring.get_pixel_at(x, y), 2);
                }
            }
        }
    }

    #[test]
    fn test_flood_fill_u() {
        let mut test_u = img_from_array([[1, 0, 1], [1, 0, 1], [1, 1, 1]]);

        test_u.flood_fill(0, 0, 1, 2, &mut |_| ());

        for x in 0..3 {
            for y in 0..3 {
                if x == 1 && (y == 0 || y == 1) {
                    assert_eq!(test_u.get_pixel_at(x, y), 0);
                } else {
                    assert_eq!(test_u.get_pixel_at(x, y), 2);
                }
            }
        }
    }

    #[test]
    fn test_flood_fill_empty() {
        let mut test_empty = img_from_array([[0, 0, 0], [0, 0, 0], [0, 0, 0]]);

        test_empty.flood_fill(1, 1, 1, 2, &mut |_| ());

        for x in 0..3 {
            for y in 0..3 {
                assert_eq!(test_empty.get_pixel_at(x, y), 0)
            }
        }
    }

    #[test]
    fn test_get_region() {
        let mut test_u = img_from_array([[1, 0, 1], [1, 0, 1], [1, 1, 1]]);

        let reg = test_u.get_region((0, 0));
        let (color, src_x, src_y, pixel_count) = match reg {
            ColoredRegion::Unclaimed {
                color,
                src_x,
                src_y,
                pixel_count,
            } => (color, src_x, src_y, pixel_count),
            x => panic!("Expected Region::Unclaimed, got {:?}", x),
        };
        assert_eq!(0, src_x);
        assert_eq!(0, src_y);
        assert_eq!(7, pixel_count);
        for x in 0..3 {
            for y in 0..3 {
                if x == 1 && (y == 0 || y == 1) {
                    assert_eq!(PixelColor::White, test_u.get_pixel_at(x, y));
                } else {
                    assert_eq!(color, test_u.get_pixel_at(x, y));
                }
            }
        }
    }

    /// Entrada: `prepare_from_bits` gives the image `prepare_from_bitmap` gives
    /// for the same bitmap (any non-zero byte black), and rqrr's detector
    /// finds the same capstones and grids on it, reads the same contents and
    /// leaves the same repainted pixels behind.
    #[test]
    fn prepare_from_bits_is_prepare_from_bitmap() {
        let cases = super::test_images::all();
        let mut grids_seen = 0;
        for (name, (w, h, bits)) in cases {
            let old = PreparedImage::prepare_from_bitmap(w, h, |x, y| bits[y * w + x] != 0);
            let new = PreparedImage::prepare_from_bits(w, h, &bits);
            assert!(old.buffer.pixels == new.buffer.pixels, "{}: pixels", name);
            assert_eq!((old.width(), old.height()), (new.width(), new.height()));

            let (mut o, mut n) = (old.clone(), new.clone());
            let caps = |img: &mut PreparedImage<BasicImageBuffer>| {
                let caps = crate::capstones_from_image(img);
                caps.iter()
                    .map(|c| format!("{:?} {:?} {:?}", c.corners, c.center, c.c))
                    .collect::<Vec<_>>()
            };
            assert_eq!(caps(&mut o), caps(&mut n), "{}: capstones", name);
            assert!(o.buffer.pixels == n.buffer.pixels, "{}: repainted", name);

            let (mut o, mut n) = (old, new);
            let read = |img: &mut PreparedImage<BasicImageBuffer>| {
                img.detect_grids()
                    .iter()
                    .map(|g| format!("{:?} {:?}", g.bounds, g.decode().map(|(_, s)| s)))
                    .collect::<Vec<_>>()
            };
            let (ro, rn) = (read(&mut o), read(&mut n));
            assert_eq!(ro, rn, "{}: grids", name);
            assert!(o.buffer.pixels == n.buffer.pixels, "{}: repainted", name);
            if name.contains("code") {
                // (rqrr also groups capstones of neighbouring tiled codes)
                let read = rn.iter().filter(|r| r.ends_with("Ok(\"rqrr\")")).count();
                assert!(read > 0, "{}: {:?}", name, rn);
                grids_seen += read;
            }
        }
        assert!(grids_seen >= 3, "{}", grids_seen);
    }

    /// Entrada: a `BasicImageBuffer` behind only the four required
    /// `ImageBuffer` methods, so rqrr runs its per-pixel default paths on it
    /// (`run_length` pixel by pixel, `flood_fill` through `get_pixel` and
    /// `set_pixel`), as the published crate does.
    #[derive(Clone)]
    struct Plain(BasicImageBuffer);

    impl ImageBuffer for Plain {
        fn width(&self) -> usize {
            self.0.width()
        }
        fn height(&self) -> usize {
            self.0.height()
        }
        fn get_pixel(&self, x: usize, y: usize) -> u8 {
            self.0.get_pixel(x, y)
        }
        fn set_pixel(&mut self, x: usize, y: usize, val: u8) {
            self.0.set_pixel(x, y, val)
        }
    }

    /// Entrada: rqrr's detector on a `BasicImageBuffer` (its slice flood fill
    /// and word-at-a-time runs) finds the same capstones and grids, reads the
    /// same contents and repaints the same pixels as on the per-pixel paths.
    #[test]
    fn the_slice_paths_detect_what_the_per_pixel_paths_detect() {
        for (name, (w, h, bits)) in super::test_images::all() {
            let fast = PreparedImage::prepare_from_bits(w, h, &bits);
            let plain = PreparedImage {
                buffer: Plain(fast.buffer.clone()),
                cache: LruCache::new(NonZeroUsize::new(251).unwrap()),
            };

            let (mut f, mut p) = (fast.clone(), plain.clone());
            let show = |caps: Vec<crate::CapStone>| {
                caps.iter()
                    .map(|c| format!("{:?} {:?} {:?}", c.corners, c.center, c.c))
                    .collect::<Vec<_>>()
            };
            let caps_f = show(crate::capstones_from_image(&mut f));
            let caps_p = show(crate::capstones_from_image(&mut p));
            assert_eq!(caps_p, caps_f, "{}: capstones", name);
            assert!(f.buffer.pixels == p.buffer.0.pixels, "{}: repainted", name);

            let (mut f, mut p) = (fast, plain);
            let grids_f: Vec<_> = f
                .detect_grids()
                .iter()
                .map(|g| format!("{:?} {:?}", g.bounds, g.decode().map(|(_, s)| s)))
                .collect();
            let grids_p: Vec<_> = p
                .detect_grids()
                .iter()
                .map(|g| format!("{:?} {:?}", g.bounds, g.decode().map(|(_, s)| s)))
                .collect();
            assert_eq!(grids_p, grids_f, "{}: grids", name);
            assert!(f.buffer.pixels == p.buffer.0.pixels, "{}: repainted", name);
        }
    }

    /// Entrada: `BasicImageBuffer`'s word-at-a-time `run_length` counts what
    /// the trait's per-pixel default counts, at every position and value,
    /// for runs shorter and longer than a word and up to the row's end.
    #[test]
    fn run_length_is_the_per_pixel_count() {
        let lens = [1usize, 2, 3, 7, 8, 9, 15, 16, 17, 30];
        let vals = [0u8, 1, 7, 255];
        for w in [1usize, 7, 8, 9, 40, 67] {
            let h = 5;
            let mut bits = Vec::with_capacity(w * h);
            let mut i = 0;
            while bits.len() < w * h {
                let n = lens[i % lens.len()].min(w * h - bits.len());
                bits.extend(std::iter::repeat_n(vals[i % vals.len()], n));
                i += 1;
            }
            let buf = BasicImageBuffer {
                w,
                h,
                pixels: bits.into_boxed_slice(),
            };
            let plain = Plain(buf.clone());
            for y in 0..h {
                for x in 0..=w {
                    for val in [0u8, 1, 7, 255, 3] {
                        assert_eq!(
                            plain.run_length(x, y, val),
                            buf.run_length(x, y, val),
                            "w {} ({}, {}) value {}",
                            w,
                            x,
                            y,
                            val
                        );
                    }
                }
            }
        }
    }
}

/// Entrada: test images shared by the tests of our changes here and in
/// `detect.rs`.
#[cfg(test)]
pub(crate) mod test_images {
    /// Entrada: a test image: width, height and one byte a pixel.
    pub(crate) type Bitmap = (usize, usize, Vec<u8>);

    /// Entrada: the "rqrr" code of `lib.rs`'s `test_rqrr`, one row a word
    /// (the leftmost module in the highest of 21 bits).
    pub(crate) const RQRR_CODE: [u32; 21] = [
        0b111111100010001111111,
        0b100000101110001000001,
        0b101110100101101011101,
        0b101110100000101011101,
        0b101110101101101011101,
        0b100000100111001000001,
        0b111111101010101111111,
        0b000000000010000000000,
        0b101010100000100010010,
        0b100110000001010101001,
        0b010110110111011101111,
        0b110001001111110110011,
        0b001011101001011101001,
        0b000000001110001001001,
        0b111111100110100010011,
        0b100000100110001000010,
        0b101110101000101011011,
        0b101110100101010101010,
        0b101110101101011100001,
        0b100000100011110111010,
        0b111111101001011100111,
    ];

    /// Entrada: `RQRR_CODE` drawn with `m`-pixel modules and a 4-module quiet
    /// zone; a dark module is `dark`, a light one 0.
    pub(crate) fn rendered_code(m: usize, dark: u8) -> Bitmap {
        let side = (21 + 8) * m;
        let mut bits = vec![0u8; side * side];
        for y in 0..side {
            for x in 0..side {
                let (my, mx) = (y / m, x / m);
                if (4..25).contains(&my)
                    && (4..25).contains(&mx)
                    && RQRR_CODE[my - 4] >> (20 - (mx - 4)) & 1 == 1
                {
                    bits[y * side + x] = dark;
                }
            }
        }
        (side, side, bits)
    }

    /// Entrada: one of the crate's test images, dark (< 128) as 1.
    pub(crate) fn thresholded(png: &[u8]) -> Bitmap {
        let img = image::load_from_memory(png).unwrap().to_luma8();
        let bits = img.pixels().map(|p| u8::from(p.0[0] < 128)).collect();
        (img.width() as usize, img.height() as usize, bits)
    }

    /// Entrada: `w` x `h` pixels of blocky noise (runs of 1 to 8 pixels,
    /// about one dark in `1 / dark_in`), from a fixed seed.
    pub(crate) fn noise(w: usize, h: usize, dark_in: u32, seed: u32) -> Bitmap {
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            state >> 16
        };
        let mut bits = Vec::with_capacity(w * h);
        while bits.len() < w * h {
            let r = next();
            let run = (r & 7) as usize + 1;
            let dark = u8::from((r >> 3) % dark_in == 0);
            for _ in 0..run.min(w * h - bits.len()) {
                bits.push(dark);
            }
        }
        (w, h, bits)
    }

    /// Entrada: `RQRR_CODE` with 3-pixel modules, tiled `n` x `n` times.
    pub(crate) fn tiled_codes(n: usize) -> Bitmap {
        let (cw, ch, code) = rendered_code(3, 1);
        let (w, h) = (cw * n, ch * n);
        let mut bits = vec![0u8; w * h];
        for y in 0..h {
            for x in 0..w {
                bits[y * w + x] = code[(y % ch) * cw + x % cw];
            }
        }
        (w, h, bits)
    }

    /// Entrada: the images the equivalence tests of our changes run on.
    pub(crate) fn all() -> Vec<(&'static str, Bitmap)> {
        vec![
            ("code, 3 px modules", rendered_code(3, 1)),
            ("code, 4 px modules, dark = 255", rendered_code(4, 255)),
            ("9 codes", tiled_codes(3)),
            ("cap.png", thresholded(include_bytes!("test_data/cap.png"))),
            (
                "cap_connect.png",
                thresholded(include_bytes!("test_data/cap_connect.png")),
            ),
            (
                "cap_disconnect.png",
                thresholded(include_bytes!("test_data/cap_disconnect.png")),
            ),
            (
                "cap_size.png",
                thresholded(include_bytes!("test_data/cap_size.png")),
            ),
            ("sparse noise", noise(97, 61, 4, 12345)),
            ("dense noise", noise(301, 203, 2, 777)),
        ]
    }
}
