//! Plane projective transforms (homographies).
//!
//! rqrr keeps its grid perspective private and only publishes the four
//! corner points of each grid. From those we rebuild the module→pixel mapping
//! so we can re-sample a grid ourselves (grayscale, local threshold, small
//! offsets) when rqrr's own one-pixel binary sampling fails error correction.

/// A 3x3 projective transform, row-major, normalised so that `m[8] == 1`
/// when possible.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Homography {
    m: [f64; 9],
}

impl Homography {
    pub const IDENTITY: Homography = Homography {
        m: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
    };

    /// Map the unit square (0,0),(1,0),(1,1),(0,1) onto `quad` (same order).
    /// Closed form after Heckbert, "Fundamentals of Texture Mapping" (1989).
    /// `None` when the quad is degenerate (collinear corners, NaNs).
    pub fn unit_square_to_quad(quad: [(f64, f64); 4]) -> Option<Homography> {
        let [(x0, y0), (x1, y1), (x2, y2), (x3, y3)] = quad;
        let dx3 = x0 - x1 + x2 - x3;
        let dy3 = y0 - y1 + y2 - y3;
        let m = if dx3.abs() < 1e-9 && dy3.abs() < 1e-9 {
            [x1 - x0, x2 - x1, x0, y1 - y0, y2 - y1, y0, 0.0, 0.0, 1.0]
        } else {
            let dx1 = x1 - x2;
            let dx2 = x3 - x2;
            let dy1 = y1 - y2;
            let dy2 = y3 - y2;
            let det = dx1 * dy2 - dx2 * dy1;
            if det.abs() < 1e-12 {
                return None;
            }
            let g = (dx3 * dy2 - dx2 * dy3) / det;
            let h = (dx1 * dy3 - dx3 * dy1) / det;
            [
                x1 - x0 + g * x1,
                x3 - x0 + h * x3,
                x0,
                y1 - y0 + g * y1,
                y3 - y0 + h * y3,
                y0,
                g,
                h,
                1.0,
            ]
        };
        let hm = Homography { m };
        (hm.m.iter().all(|v| v.is_finite()) && hm.det().abs() > 1e-12).then_some(hm)
    }

    /// Map the rectangle `[0,w] x [0,h]` onto `quad`.
    pub fn rect_to_quad(w: f64, h: f64, quad: [(f64, f64); 4]) -> Option<Homography> {
        if !(w > 0.0 && h > 0.0) {
            return None;
        }
        let unit = Self::unit_square_to_quad(quad)?;
        Some(unit.then_after(&Homography::scale(1.0 / w, 1.0 / h)))
    }

    pub fn scale(sx: f64, sy: f64) -> Homography {
        Homography {
            m: [sx, 0.0, 0.0, 0.0, sy, 0.0, 0.0, 0.0, 1.0],
        }
    }

    pub fn translate(tx: f64, ty: f64) -> Homography {
        Homography {
            m: [1.0, 0.0, tx, 0.0, 1.0, ty, 0.0, 0.0, 1.0],
        }
    }

    /// `self ∘ first`: apply `first`, then `self`.
    pub fn then_after(&self, first: &Homography) -> Homography {
        let a = &self.m;
        let b = &first.m;
        let mut m = [0.0; 9];
        for r in 0..3 {
            for c in 0..3 {
                m[r * 3 + c] = (0..3).map(|k| a[r * 3 + k] * b[k * 3 + c]).sum();
            }
        }
        Homography { m }
    }

    fn det(&self) -> f64 {
        let m = &self.m;
        m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6])
            + m[2] * (m[3] * m[7] - m[4] * m[6])
    }

    pub fn inverse(&self) -> Option<Homography> {
        let d = self.det();
        if !d.is_finite() || d.abs() < 1e-15 {
            return None;
        }
        let m = &self.m;
        let inv = [
            (m[4] * m[8] - m[5] * m[7]) / d,
            (m[2] * m[7] - m[1] * m[8]) / d,
            (m[1] * m[5] - m[2] * m[4]) / d,
            (m[5] * m[6] - m[3] * m[8]) / d,
            (m[0] * m[8] - m[2] * m[6]) / d,
            (m[2] * m[3] - m[0] * m[5]) / d,
            (m[3] * m[7] - m[4] * m[6]) / d,
            (m[1] * m[6] - m[0] * m[7]) / d,
            (m[0] * m[4] - m[1] * m[3]) / d,
        ];
        Some(Homography { m: inv })
    }

    /// Apply to a point. Points on the line at infinity come back as NaN/inf,
    /// which [`crate::scan::Frame::sample`] treats as "outside".
    #[inline]
    pub fn map(&self, x: f64, y: f64) -> (f64, f64) {
        let m = &self.m;
        let w = m[6] * x + m[7] * y + m[8];
        (
            (m[0] * x + m[1] * y + m[2]) / w,
            (m[3] * x + m[4] * y + m[5]) / w,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: (f64, f64), b: (f64, f64)) -> bool {
        (a.0 - b.0).abs() < 1e-6 && (a.1 - b.1).abs() < 1e-6
    }

    #[test]
    fn maps_corners_of_affine_and_projective_quads() {
        let quads = [
            [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)],
            [(10.0, 20.0), (110.0, 25.0), (105.0, 130.0), (5.0, 120.0)],
            [(10.0, 20.0), (130.0, 10.0), (100.0, 90.0), (30.0, 100.0)],
        ];
        for q in quads {
            let h = Homography::rect_to_quad(25.0, 25.0, q).unwrap();
            for (i, (u, v)) in [(0.0, 0.0), (25.0, 0.0), (25.0, 25.0), (0.0, 25.0)]
                .into_iter()
                .enumerate()
            {
                assert!(close(h.map(u, v), q[i]), "corner {i} of {q:?}");
            }
            let inv = h.inverse().unwrap();
            let p = h.map(7.5, 3.25);
            assert!(close(inv.map(p.0, p.1), (7.5, 3.25)));
        }
    }

    #[test]
    fn degenerate_quads_are_rejected() {
        let line = [(0.0, 0.0), (1.0, 1.0), (2.0, 2.0), (3.0, 3.0)];
        assert!(Homography::unit_square_to_quad(line).is_none());
        let nan = [(f64::NAN, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)];
        assert!(Homography::unit_square_to_quad(nan).is_none());
        assert!(Homography::rect_to_quad(0.0, 1.0, [(0.0, 0.0); 4]).is_none());
    }
}
