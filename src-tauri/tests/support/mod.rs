//! Test support: render real QR codes into camera-like frames and degrade
//! them the way gate cameras do (small modules, rotation, perspective, blur,
//! sensor noise, low contrast, glare, cluttered background, JPEG).
//!
//! Shared by the integration tests and the benchmark (`#[path]`-included), so
//! both exercise exactly the same scenes. Deterministic for a given seed.
#![allow(dead_code)] // each includer uses a different subset

use entrada_desktop::scan::geometry::Homography;
use image::GrayImage;
use rand::{RngExt, SeedableRng};
use rand_xorshift::XorShiftRng;

pub type Rng = XorShiftRng;

pub fn rng(seed: u64) -> Rng {
    XorShiftRng::seed_from_u64(seed)
}

/// A plain ticket code as in the spec, e.g. `TKT-2025-ABC123`.
pub fn tkt_payload(rng: &mut Rng) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let tail: String = (0..6)
        .map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char)
        .collect();
    format!("TKT-2025-{tail}")
}

/// A signed-looking code: `ENT1.` + 120 base64url characters.
pub fn ent1_payload(rng: &mut Rng) -> String {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let body: String = (0..120)
        .map(|_| B64[rng.random_range(0..B64.len())] as char)
        .collect();
    format!("ENT1.{body}")
}

/// QR modules of `payload` (EC level M, the qrcode crate's default).
pub fn qr_modules(payload: &str) -> (usize, Vec<bool>) {
    let code = qrcode::QrCode::new(payload.as_bytes()).expect("payload fits a QR code");
    let n = code.width();
    let bits = code
        .to_colors()
        .into_iter()
        .map(|c| c == qrcode::Color::Dark)
        .collect();
    (n, bits)
}

/// Where and how a code sits in the frame.
#[derive(Debug, Clone, Copy)]
pub struct Pose {
    pub centre: (f64, f64),
    pub module_px: f64,
    pub rotation_deg: f64,
    /// Perspective: relative shrink of one edge vs the opposite, per axis.
    pub tilt: (f64, f64),
}

/// Image-level degradations, applied after rendering in this order:
/// glare, blur, noise, JPEG.
#[derive(Debug, Clone, Copy)]
pub struct Degrade {
    /// Printed dark and light levels of the code (0–255).
    pub dark: u8,
    pub light: u8,
    /// Gaussian blur sigma in pixels (focus, motion).
    pub blur_sigma: f64,
    /// Gaussian sensor noise sigma in grey levels.
    pub noise_sigma: f64,
    /// Glare spot strength 0..1 (fraction washed out to white at the centre).
    pub glare: f64,
    /// Busy background (boxes, stripes, checkers) instead of a plain wall.
    pub clutter: bool,
    pub jpeg_quality: Option<u8>,
    /// Light modules on a dark ground (dark-mode wallets, watches, OLED
    /// screens): the code's dark modules get `light`, its ground `dark`.
    pub inverted: bool,
    /// Bloom of a bright screen seen by a camera: this fraction of the
    /// light, blurred over about a module, is added back (0 = none).
    pub glow: f64,
    /// Modules of ground (paper, screen) painted around the code: 4 is the
    /// standard quiet zone, less is a trimmed sticker or a tight crop, more
    /// is a screen that is black well beyond the code.
    pub quiet: f64,
    /// A band of `border.1` grey, `border.0` modules wide, around the ground:
    /// a phone's bezel or the dark table a trimmed sticker lies on.
    pub border: (f64, u8),
}

impl Default for Degrade {
    fn default() -> Self {
        Degrade {
            dark: 35,
            light: 215,
            // Every real camera has some optical blur and sensor noise.
            blur_sigma: 0.6,
            noise_sigma: 3.0,
            glare: 0.0,
            clutter: false,
            jpeg_quality: None,
            inverted: false,
            glow: 0.0,
            quiet: QUIET,
            border: (0.0, 0),
        }
    }
}

/// A rendered frame; `jpeg` holds the encoded bytes when JPEG degradation was
/// applied (so a corpus can store exactly what the decoders saw).
pub struct Rendered {
    pub image: GrayImage,
    pub jpeg: Option<Vec<u8>>,
}

const QUIET: f64 = 4.0;

fn code_homography(n: usize, pose: &Pose) -> Homography {
    let total = n as f64 + 2.0 * QUIET;
    let half = total * pose.module_px / 2.0;
    let (s, c) = pose.rotation_deg.to_radians().sin_cos();
    let corner = |sx: f64, sy: f64| {
        // Perspective-like: edges at +sy are wider by tilt.1, edges at +sx taller by tilt.0.
        let x = sx * (1.0 + pose.tilt.1 * sy) * half;
        let y = sy * (1.0 + pose.tilt.0 * sx) * half;
        (pose.centre.0 + c * x - s * y, pose.centre.1 + s * x + c * y)
    };
    let quad = [
        corner(-1.0, -1.0),
        corner(1.0, -1.0),
        corner(1.0, 1.0),
        corner(-1.0, 1.0),
    ];
    // Module space including the quiet zone: [-QUIET, n + QUIET].
    Homography::rect_to_quad(total, total, quad)
        .expect("non-degenerate pose")
        .then_after(&Homography::translate(QUIET, QUIET))
}

/// Image-space bounding box of a code (with quiet zone) for a pose.
pub fn code_extent(payload: &str, pose: &Pose) -> (f64, f64, f64, f64) {
    code_extent_with(payload, pose, QUIET)
}

/// Image-space bounding box of a code with `quiet` modules of ground around it.
pub fn code_extent_with(payload: &str, pose: &Pose, quiet: f64) -> (f64, f64, f64, f64) {
    let (n, _) = qr_modules(payload);
    let h = code_homography(n, pose);
    let e = n as f64 + quiet;
    let pts = [
        h.map(-quiet, -quiet),
        h.map(e, -quiet),
        h.map(e, e),
        h.map(-quiet, e),
    ];
    let xs = pts.iter().map(|p| p.0);
    let ys = pts.iter().map(|p| p.1);
    (
        xs.clone().fold(f64::INFINITY, f64::min),
        ys.clone().fold(f64::INFINITY, f64::min),
        xs.fold(f64::NEG_INFINITY, f64::max),
        ys.fold(f64::NEG_INFINITY, f64::max),
    )
}

fn background(w: u32, h: u32, clutter: bool, rng: &mut Rng) -> Vec<f32> {
    let (w, h) = (w as usize, h as usize);
    // A wall with a gentle lighting gradient.
    let base = rng.random_range(90.0..150.0f32);
    let gx = rng.random_range(-40.0..40.0f32) / w as f32;
    let gy = rng.random_range(-40.0..40.0f32) / h as f32;
    let mut img: Vec<f32> = (0..w * h)
        .map(|i| base + gx * (i % w) as f32 + gy * (i / w) as f32)
        .collect();
    if !clutter {
        return img;
    }
    // Boxes, stripe patterns (barcode-like) and checkerboards: the things
    // that produce false finder-pattern candidates.
    for _ in 0..40 {
        let bw = rng.random_range(10..w / 4);
        let bh = rng.random_range(10..h / 4);
        let x0 = rng.random_range(0..w - bw);
        let y0 = rng.random_range(0..h - bh);
        let kind = rng.random_range(0..3);
        let v1 = rng.random_range(0.0..255.0f32);
        let v2 = rng.random_range(0.0..255.0f32);
        let period = rng.random_range(2..12usize);
        for y in y0..y0 + bh {
            for x in x0..x0 + bw {
                let v = match kind {
                    0 => v1,
                    1 => {
                        if ((x - x0) / period) % 2 == 0 {
                            v1
                        } else {
                            v2
                        }
                    }
                    _ => {
                        if ((x - x0) / period + (y - y0) / period) % 2 == 0 {
                            v1
                        } else {
                            v2
                        }
                    }
                };
                img[y * w + x] = v;
            }
        }
    }
    img
}

fn gaussian_blur(img: &mut [f32], w: usize, h: usize, sigma: f64) {
    if sigma <= 0.05 {
        return;
    }
    let r = (sigma * 3.0).ceil() as isize;
    let kernel: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp() as f32)
        .collect();
    let sum: f32 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.iter().map(|k| k / sum).collect();
    let mut tmp = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (k, kv) in kernel.iter().enumerate() {
                let sx = (x as isize + k as isize - r).clamp(0, w as isize - 1) as usize;
                acc += img[y * w + sx] * kv;
            }
            tmp[y * w + x] = acc;
        }
    }
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (k, kv) in kernel.iter().enumerate() {
                let sy = (y as isize + k as isize - r).clamp(0, h as isize - 1) as usize;
                acc += tmp[sy * w + x] * kv;
            }
            img[y * w + x] = acc;
        }
    }
}

fn gaussian(rng: &mut Rng) -> f32 {
    // Box–Muller.
    let u1: f64 = rng.random_range(1e-12..1.0);
    let u2: f64 = rng.random_range(0.0..1.0);
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// Render `codes` into a `w`×`h` frame and degrade it.
pub fn render(w: u32, h: u32, codes: &[(&str, Pose)], d: &Degrade, rng: &mut Rng) -> Rendered {
    let (wu, hu) = (w as usize, h as usize);
    let mut img = background(w, h, d.clutter, rng);
    // Light the codes give off above their ground (for `glow` only).
    let mut emitted = if d.glow > 0.0 {
        vec![0f32; wu * hu]
    } else {
        Vec::new()
    };
    for (payload, pose) in codes {
        let (n, bits) = qr_modules(payload);
        let fwd = code_homography(n, pose);
        let inv = fwd.inverse().expect("invertible pose");
        let q = d.quiet.max(0.0);
        let outer = q + d.border.0.max(0.0);
        let (x0, y0, x1, y1) = code_extent_with(payload, pose, outer);
        let (ground, ink) = if d.inverted {
            (d.dark as f32, d.light as f32)
        } else {
            (d.light as f32, d.dark as f32)
        };
        let xs = (x0.floor().max(0.0) as usize)..(x1.ceil().max(0.0) as usize).min(wu);
        let ys = (y0.floor().max(0.0) as usize)..(y1.ceil().max(0.0) as usize).min(hu);
        // 4x4 supersampling: small modules must be anti-aliased like a
        // real sensor integrates light, or the test would be too easy.
        const SS: usize = 4;
        for y in ys {
            for x in xs.clone() {
                let mut acc = 0.0f32;
                let mut inside = 0;
                for sy in 0..SS {
                    for sx in 0..SS {
                        let px = x as f64 + (sx as f64 + 0.5) / SS as f64;
                        let py = y as f64 + (sy as f64 + 0.5) / SS as f64;
                        let (u, v) = inv.map(px, py);
                        let within =
                            |m: f64| u >= -m && v >= -m && u < n as f64 + m && v < n as f64 + m;
                        if within(q) {
                            inside += 1;
                            let dark = u >= 0.0
                                && v >= 0.0
                                && (u as usize) < n
                                && (v as usize) < n
                                && bits[v as usize * n + u as usize];
                            acc += if dark { ink } else { ground };
                        } else if within(outer) {
                            inside += 1;
                            acc += d.border.1 as f32;
                        }
                    }
                }
                if inside > 0 {
                    let bg = img[y * wu + x];
                    let total = (SS * SS) as f32;
                    img[y * wu + x] = (acc + bg * (total - inside as f32)) / total;
                    if let Some(e) = emitted.get_mut(y * wu + x) {
                        *e = (acc - ground * inside as f32).max(0.0) / total;
                    }
                }
            }
        }
    }
    if d.glow > 0.0 {
        // A lit screen in a camera: the light modules bleed into the dark
        // gaps between them (lens and sensor bloom), over about a module.
        let sigma = codes.first().map_or(2.0, |(_, p)| p.module_px);
        gaussian_blur(&mut emitted, wu, hu, sigma);
        for (v, b) in img.iter_mut().zip(&emitted) {
            *v += d.glow as f32 * b;
        }
    }
    if d.glare > 0.0 {
        // A specular spot near the first code (phone screens, laminated tickets).
        let (cx, cy, radius) = match codes.first() {
            Some((p, pose)) => {
                let (x0, y0, x1, y1) = code_extent(p, pose);
                let r = (x1 - x0).max(y1 - y0) * rng.random_range(0.35..0.6);
                (
                    rng.random_range(x0..x1.max(x0 + 1.0)),
                    rng.random_range(y0..y1.max(y0 + 1.0)),
                    r,
                )
            }
            None => (w as f64 / 2.0, h as f64 / 2.0, w as f64 / 4.0),
        };
        for y in 0..hu {
            for x in 0..wu {
                let d2 = (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2);
                let g = (d.glare * (-d2 / (2.0 * radius * radius)).exp()) as f32;
                let v = &mut img[y * wu + x];
                *v += g * (255.0 - *v);
            }
        }
    }
    gaussian_blur(&mut img, wu, hu, d.blur_sigma);
    if d.noise_sigma > 0.0 {
        for v in img.iter_mut() {
            *v += gaussian(rng) * d.noise_sigma as f32;
        }
    }
    let bytes: Vec<u8> = img
        .iter()
        .map(|v| v.round().clamp(0.0, 255.0) as u8)
        .collect();
    let gray = GrayImage::from_raw(w, h, bytes).expect("buffer size matches");
    match d.jpeg_quality {
        None => Rendered {
            image: gray,
            jpeg: None,
        },
        Some(q) => {
            let mut jpeg = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, q)
                .encode(gray.as_raw(), w, h, image::ExtendedColorType::L8)
                .expect("in-memory JPEG encoding");
            let image = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)
                .expect("decode our own JPEG")
                .to_luma8();
            Rendered {
                image,
                jpeg: Some(jpeg),
            }
        }
    }
}

/// Degradation classes exercised by the tests and the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Clean,
    SmallModules,
    Rotation,
    Perspective,
    Blur,
    Noise,
    LowContrast,
    Glare,
    Clutter,
    Jpeg,
    Combined,
}

impl Class {
    pub const ALL: [Class; 11] = [
        Class::Clean,
        Class::SmallModules,
        Class::Rotation,
        Class::Perspective,
        Class::Blur,
        Class::Noise,
        Class::LowContrast,
        Class::Glare,
        Class::Clutter,
        Class::Jpeg,
        Class::Combined,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::Clean => "clean",
            Class::SmallModules => "small",
            Class::Rotation => "rotation",
            Class::Perspective => "perspective",
            Class::Blur => "blur",
            Class::Noise => "noise",
            Class::LowContrast => "lowcontrast",
            Class::Glare => "glare",
            Class::Clutter => "clutter",
            Class::Jpeg => "jpeg",
            Class::Combined => "combined",
        }
    }

    /// Module size, rotation, tilt and degradations for a severity 0 (mild)
    /// to 2 (hard). Positions are chosen by [`place`].
    pub fn params(self, severity: usize, rng: &mut Rng) -> (f64, f64, (f64, f64), Degrade) {
        let s = severity.min(2);
        let pick = |v: [f64; 3]| v[s];
        let mut d = Degrade::default();
        let module;
        let mut rot = rng.random_range(-8.0..8.0);
        let mut tilt = (0.0, 0.0);
        match self {
            Class::Clean => module = 5.0,
            Class::SmallModules => module = pick([3.5, 3.0, 2.5]),
            Class::Rotation => {
                rot = rng.random_range(0.0..360.0);
                module = pick([4.5, 3.5, 3.0]);
            }
            Class::Perspective => {
                let t = pick([0.15, 0.25, 0.35]);
                tilt = (
                    t * if rng.random_bool(0.5) { 1.0 } else { -1.0 },
                    t * rng.random_range(-0.6..0.6),
                );
                module = 4.5;
            }
            Class::Blur => {
                d.blur_sigma = pick([1.0, 1.4, 1.8]);
                module = 5.0;
            }
            Class::Noise => {
                d.noise_sigma = pick([12.0, 20.0, 30.0]);
                module = 4.0;
            }
            Class::LowContrast => {
                let (dk, lt) = [(90, 170), (110, 160), (120, 150)][s];
                d.dark = dk;
                d.light = lt;
                module = 4.0;
            }
            Class::Glare => {
                d.glare = pick([0.6, 0.75, 0.85]);
                module = 4.5;
            }
            Class::Clutter => {
                d.clutter = true;
                module = pick([4.5, 3.5, 3.0]);
            }
            Class::Jpeg => {
                d.jpeg_quality = Some([35u8, 22, 12][s]);
                module = 4.0;
            }
            Class::Combined => {
                module = pick([4.0, 3.5, 3.0]);
                rot = rng.random_range(-25.0..25.0);
                tilt = (rng.random_range(-0.12..0.12), rng.random_range(-0.12..0.12));
                d.blur_sigma = pick([0.8, 1.0, 1.2]);
                d.noise_sigma = pick([5.0, 8.0, 10.0]);
                d.dark = 60;
                d.light = 190;
                d.glare = pick([0.0, 0.3, 0.5]);
                d.jpeg_quality = Some([50u8, 40, 30][s]);
            }
        }
        (module, rot, tilt, d)
    }
}

/// A random position where a code of this size fits fully in the frame.
pub fn place(
    w: u32,
    h: u32,
    payload: &str,
    module_px: f64,
    rotation_deg: f64,
    tilt: (f64, f64),
    rng: &mut Rng,
) -> Pose {
    let mut pose = Pose {
        centre: (w as f64 / 2.0, h as f64 / 2.0),
        module_px,
        rotation_deg,
        tilt,
    };
    let (x0, y0, x1, y1) = code_extent(payload, &pose);
    let (hw, hh) = ((x1 - x0) / 2.0 + 2.0, (y1 - y0) / 2.0 + 2.0);
    let cx = if w as f64 > 2.0 * hw {
        rng.random_range(hw..w as f64 - hw)
    } else {
        w as f64 / 2.0
    };
    let cy = if h as f64 > 2.0 * hh {
        rng.random_range(hh..h as f64 - hh)
    } else {
        h as f64 / 2.0
    };
    pose.centre = (cx, cy);
    pose
}

/// One code of `class`/`severity` in a `w`×`h` frame.
pub fn scene(
    w: u32,
    h: u32,
    payload: &str,
    class: Class,
    severity: usize,
    rng: &mut Rng,
) -> Rendered {
    let (module, rot, tilt, d) = class.params(severity, rng);
    let pose = place(w, h, payload, module, rot, tilt, rng);
    render(w, h, &[(payload, pose)], &d, rng)
}

/// Convert a rendered image to the decoder's frame type.
pub fn to_frame(img: &GrayImage) -> entrada_desktop::scan::Frame {
    entrada_desktop::scan::Frame::from_luma(
        img.width() as usize,
        img.height() as usize,
        img.as_raw().clone(),
    )
    .expect("gray image has w*h bytes")
}

/// Two codes side by side (left and right half of the frame), mildly degraded.
pub fn two_code_scene(w: u32, h: u32, a: &str, b: &str, module_px: f64, rng: &mut Rng) -> Rendered {
    let rot_a = rng.random_range(-8.0..8.0);
    let rot_b = rng.random_range(-8.0..8.0);
    let pa = place(w / 2, h, a, module_px, rot_a, (0.0, 0.0), rng);
    let mut pb = place(w / 2, h, b, module_px, rot_b, (0.0, 0.0), rng);
    pb.centre.0 += (w / 2) as f64;
    render(w, h, &[(a, pa), (b, pb)], &Degrade::default(), rng)
}

/// A frame with no code: busy background, noise, optionally JPEG.
pub fn empty_scene(w: u32, h: u32, jpeg: bool, rng: &mut Rng) -> Rendered {
    let d = Degrade {
        clutter: true,
        noise_sigma: 8.0,
        jpeg_quality: jpeg.then_some(30),
        ..Degrade::default()
    };
    render(w, h, &[], &d, rng)
}

/// What people actually show at a gate, beyond the camera degradations of
/// [`Class`]: each class picks its own frame size and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorldClass {
    /// Light modules on an OLED-black screen (dark-mode wallets, watches),
    /// with the screen's glow.
    Inverted,
    /// 1, ½ or 0 modules of quiet zone: a tight crop, a trimmed sticker, a
    /// code against a phone's bezel.
    Tight,
    /// A small code in a 12-megapixel photo (4000×3000, JPEG 90).
    Photo12Mp,
    /// A small code in a 4K camera frame (3840×2160, MJPEG-like JPEG 80).
    Frame4K,
    /// Versions 10–40 in a 1080p frame.
    BigVersion,
    /// Nine-character payloads (version 1) with small, noisy modules.
    Short9,
}

impl WorldClass {
    pub const ALL: [WorldClass; 6] = [
        WorldClass::Inverted,
        WorldClass::Tight,
        WorldClass::Photo12Mp,
        WorldClass::Frame4K,
        WorldClass::BigVersion,
        WorldClass::Short9,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WorldClass::Inverted => "inverted",
            WorldClass::Tight => "tight",
            WorldClass::Photo12Mp => "12mp",
            WorldClass::Frame4K => "4k",
            WorldClass::BigVersion => "v10-40",
            WorldClass::Short9 => "short9",
        }
    }
}

/// `len` random characters from `A-Z a-z 0-9`.
pub fn short_payload(len: usize, rng: &mut Rng) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// A random base64url payload whose smallest QR version (EC level M) is
/// exactly `version` (1–40).
pub fn payload_for_version(version: usize, rng: &mut Rng) -> String {
    let full = ent1_payload(rng);
    let mut body = String::new();
    while body.len() < 2400 {
        body.push_str(&full);
    }
    let want = version * 4 + 17;
    let width = |len: usize| qr_modules(&body[..len]).0;
    // Smallest length that needs `version`: binary search on the width.
    let (mut lo, mut hi) = (1usize, 2331usize);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if width(mid) >= want {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    // Anywhere in the version's range, not only at its lower end.
    let mut len = (lo + rng.random_range(0..40usize)).min(2331);
    while width(len) > want {
        len -= 1;
    }
    assert_eq!(width(len), want, "payload of version {version}");
    body[..len].to_string()
}

fn tkt_or_ent1(rng: &mut Rng) -> String {
    if rng.random_bool(0.5) {
        tkt_payload(rng)
    } else {
        ent1_payload(rng)
    }
}

/// One frame of `class` at `severity` 0 (mild) to 2 (hard): the payload and
/// the rendered frame.
pub fn world_scene(class: WorldClass, severity: usize, rng: &mut Rng) -> (String, Rendered) {
    let s = severity.min(2);
    let small_frame = |rng: &mut Rng| {
        if rng.random_bool(0.5) {
            (640, 480)
        } else {
            (1280, 720)
        }
    };
    let mut d = Degrade::default();
    let rot = rng.random_range(-8.0..8.0);
    match class {
        WorldClass::Inverted => {
            let (w, h) = small_frame(rng);
            let p = tkt_or_ent1(rng);
            let module = [4.5, 4.0, 3.5][s];
            d.inverted = true;
            d.dark = [14, 10, 6][s];
            d.light = [225, 205, 185][s];
            d.glow = [0.25, 0.4, 0.55][s];
            d.blur_sigma = [0.6, 0.8, 1.0][s];
            // The screen stays black some modules beyond the quiet zone.
            d.quiet = QUIET + rng.random_range(1.0..6.0);
            d.border = (rng.random_range(1.0..3.0), rng.random_range(20..60));
            let pose = place_with(w, h, &p, module, rot, d.quiet + d.border.0, rng);
            let r = render(w, h, &[(&p, pose)], &d, rng);
            (p, r)
        }
        WorldClass::Tight => {
            let (w, h) = small_frame(rng);
            let p = tkt_or_ent1(rng);
            let module = [5.0, 4.5, 4.0][s];
            d.quiet = [1.0, 0.5, 0.0][s];
            match rng.random_range(0..3) {
                0 => {
                    // A tight crop of a photo or screenshot: the frame ends
                    // where the ground does.
                    let pose = place_with(w, h, &p, module, rot / 3.0, d.quiet, rng);
                    let full = render(w, h, &[(&p, pose)], &d, rng);
                    let (x0, y0, x1, y1) = code_extent_with(&p, &pose, d.quiet);
                    let x0 = x0.floor().max(0.0) as u32;
                    let y0 = y0.floor().max(0.0) as u32;
                    let x1 = (x1.ceil() as u32).min(w);
                    let y1 = (y1.ceil() as u32).min(h);
                    let image =
                        image::imageops::crop_imm(&full.image, x0, y0, x1 - x0, y1 - y0).to_image();
                    (p, Rendered { image, jpeg: None })
                }
                1 => {
                    // Against a phone's bezel or on a dark table.
                    d.border = (rng.random_range(2.0..8.0), rng.random_range(15..50));
                    let pose = place_with(w, h, &p, module, rot, d.quiet + d.border.0, rng);
                    let r = render(w, h, &[(&p, pose)], &d, rng);
                    (p, r)
                }
                _ => {
                    // A trimmed sticker on a busy surface.
                    d.clutter = true;
                    let pose = place_with(w, h, &p, module, rot, d.quiet, rng);
                    let r = render(w, h, &[(&p, pose)], &d, rng);
                    (p, r)
                }
            }
        }
        WorldClass::Photo12Mp | WorldClass::Frame4K => {
            let photo = class == WorldClass::Photo12Mp;
            let (w, h) = if photo { (4000, 3000) } else { (3840, 2160) };
            let p = tkt_or_ent1(rng);
            let module = if photo {
                [6.0, 4.5, 3.5][s]
            } else {
                [5.0, 4.0, 3.0][s]
            };
            d.blur_sigma = [0.8, 1.0, 1.2][s];
            d.noise_sigma = [3.0, 5.0, 6.0][s];
            d.clutter = rng.random_bool(0.5);
            d.jpeg_quality = Some(if photo { 90 } else { 80 });
            let pose = place(w, h, &p, module, rot, (0.0, 0.0), rng);
            let r = render(w, h, &[(&p, pose)], &d, rng);
            (p, r)
        }
        WorldClass::BigVersion => {
            let (w, h) = (1920, 1080);
            let (v0, v1) = [(10, 20), (20, 30), (30, 40)][s];
            let version = rng.random_range(v0..=v1);
            let p = payload_for_version(version, rng);
            let module = [4.5, 4.0, 3.5][s];
            // The biggest codes fill most of the frame: no room to turn.
            let pose = place(w, h, &p, module, rot / 4.0, (0.0, 0.0), rng);
            let r = render(w, h, &[(&p, pose)], &d, rng);
            (p, r)
        }
        WorldClass::Short9 => {
            let (w, h) = small_frame(rng);
            let p = short_payload(9, rng);
            let module = [3.2, 2.8, 2.4][s];
            d.noise_sigma = [10.0, 15.0, 20.0][s];
            d.blur_sigma = 0.8;
            let pose = place(w, h, &p, module, rot, (0.0, 0.0), rng);
            let r = render(w, h, &[(&p, pose)], &d, rng);
            (p, r)
        }
    }
}

/// [`place`] for a code with `ground` modules of ground (quiet zone,
/// border) around it instead of the standard 4: the whole of it fits in the
/// frame, and with less ground the code may come closer to the edge.
pub fn place_with(
    w: u32,
    h: u32,
    payload: &str,
    module_px: f64,
    rotation_deg: f64,
    ground: f64,
    rng: &mut Rng,
) -> Pose {
    let mut pose = Pose {
        centre: (w as f64 / 2.0, h as f64 / 2.0),
        module_px,
        rotation_deg,
        tilt: (0.0, 0.0),
    };
    let (x0, y0, x1, y1) = code_extent_with(payload, &pose, ground);
    let (hw, hh) = ((x1 - x0) / 2.0 + 1.0, (y1 - y0) / 2.0 + 1.0);
    let pick = |lo: f64, hi: f64, rng: &mut Rng| {
        if hi > lo {
            rng.random_range(lo..hi)
        } else {
            (lo + hi) / 2.0
        }
    };
    pose.centre = (pick(hw, w as f64 - hw, rng), pick(hh, h as f64 - hh, rng));
    pose
}

/// A frame with no code for the world classes: a big cluttered JPEG frame,
/// a dark screen's glow, or pure sensor noise.
pub fn world_empty(kind: usize, rng: &mut Rng) -> (String, Rendered) {
    match kind % 4 {
        0 => ("empty-4k".into(), empty_scene(3840, 2160, true, rng)),
        1 => ("empty-12mp".into(), empty_scene(4000, 3000, true, rng)),
        2 => {
            // A dark room or a black screen with bits of UI: what the
            // inverted image of it looks like is what matters here.
            let d = Degrade {
                clutter: true,
                noise_sigma: 4.0,
                ..Degrade::default()
            };
            let mut r = render(1280, 720, &[], &d, rng);
            for v in r.image.iter_mut() {
                *v /= 4;
            }
            ("empty-dark".into(), r)
        }
        _ => {
            let (w, h) = (1280u32, 720u32);
            let bytes: Vec<u8> = (0..w * h).map(|_| rng.random::<u8>()).collect();
            let image = GrayImage::from_raw(w, h, bytes).expect("w*h bytes");
            ("noise".into(), Rendered { image, jpeg: None })
        }
    }
}
