//! Renders ticket codes as QR images for printing, e-mail and screens.
//! Error correction M (15 %): survives a scuffed print or a cracked screen
//! while keeping modules large enough for a gate camera at arm's length;
//! the standard 4-module quiet zone.

use qrcode::{EcLevel, QrCode};

#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("text too long for a QR code: {0}")]
    TooLong(#[from] qrcode::types::QrError),
    #[error("cannot write image: {0}")]
    Image(#[from] image::ImageError),
    #[error("unknown image format {0:?}: use .png or .svg")]
    Format(String),
}

fn code(text: &str) -> Result<QrCode, QrError> {
    Ok(QrCode::with_error_correction_level(
        text.as_bytes(),
        EcLevel::M,
    )?)
}

/// PNG bytes, 8 pixels per module.
pub fn png(text: &str) -> Result<Vec<u8>, QrError> {
    let img = code(text)?
        .render::<image::Luma<u8>>()
        .module_dimensions(8, 8)
        .build();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

pub fn svg(text: &str) -> Result<String, QrError> {
    Ok(code(text)?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .build())
}

/// The file name (no folder) for a ticket code's image: never a path, and
/// one per code. A code of only `A-Z 0-9 - _` (and not a name Windows
/// reserves) is its own name; any other gets its safe characters (others
/// become `_`) plus `.` and 16 hex digits of its SHA-256. A kept name holds
/// no `.` and no lowercase letter, so it never equals a hashed one, even on
/// a case-insensitive disk. `ext` is `png` or `svg`.
pub fn file_name(code: &str, ext: &str) -> Result<String, QrError> {
    let ext = ext.to_ascii_lowercase();
    if !matches!(ext.as_str(), "png" | "svg") {
        return Err(QrError::Format(ext));
    }
    let kept = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_';
    let stem: String = code
        .chars()
        .map(|c| {
            if kept(c) || c.is_ascii_lowercase() {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !code.is_empty() && code.chars().all(kept) && !windows_reserved(code) {
        return Ok(format!("{code}.{ext}"));
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(code.as_bytes());
    let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{stem}.{hash}.{ext}"))
}

/// CON, PRN, AUX, NUL, COM1–9, LPT1–9: devices, not files, on Windows.
fn windows_reserved(stem: &str) -> bool {
    let upper = stem.to_ascii_uppercase();
    matches!(upper.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((upper.starts_with("COM") || upper.starts_with("LPT"))
            && upper.len() == 4
            && upper.as_bytes()[3].is_ascii_digit())
}

/// Renders by the file name's extension.
pub fn write(
    text: &str,
    path: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let bytes = match ext.as_str() {
        "png" => png(text)?,
        "svg" => svg(text)?.into_bytes(),
        _ => return Err(QrError::Format(ext).into()),
    };
    std::fs::write(path, bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_png_and_svg() {
        let text = "ENT1.AAAAAQAAAAAAAAABAAAAAQAPVEtULTIwMjUtQUJDMTIz.signature";
        let bytes = png(text).unwrap();
        let img = image::load_from_memory(&bytes).unwrap().to_luma8();
        // Quiet zone: the border is white; the code is square.
        assert_eq!(img.width(), img.height());
        assert!((0..img.width()).all(|x| img.get_pixel(x, 0).0[0] == 255));
        assert!(svg(text).unwrap().starts_with("<?xml"));
        assert!(png(&"x".repeat(5000)).is_err());
    }

    #[test]
    fn file_names_stay_in_the_folder_and_one_per_code() {
        let hashed = |code: &str, stem: &str| {
            let name = file_name(code, "png").unwrap();
            let (rest, ext) = name.rsplit_once('.').unwrap();
            let (s, hash) = rest.rsplit_once('.').unwrap();
            assert_eq!((s, ext, hash.len()), (stem, "png", 16), "{code} -> {name}");
            assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
            name
        };
        // Kept as they are.
        for code in ["TKT-2025-ABC123", "DEMO_1-0001", "7", "COM10", "CONSOLE"] {
            assert_eq!(file_name(code, "png").unwrap(), format!("{code}.png"));
        }
        assert_eq!(file_name("T-1", "SVG").unwrap(), "T-1.svg");
        // Hostile or merely unusual: safe stem plus a hash.
        let cases = [
            ("../x", "___x"),
            ("..", "__"),
            (".", "_"),
            ("a/b", "a_b"),
            ("a\\b", "a_b"),
            ("/etc/passwd", "_etc_passwd"),
            ("C:x", "C_x"),
            ("x.png", "x_png"),
            ("abc", "abc"),
            ("CON", "CON"),
            ("lpt1", "lpt1"),
            ("%2e%2e%2fx", "_2e_2e_2fx"),
        ];
        let mut names = std::collections::HashSet::new();
        for (code, stem) in cases {
            let name = hashed(code, stem);
            assert!(!name.contains('/') && !name.contains('\\') && !name.starts_with('.'));
            let path = std::path::Path::new("out").join(&name);
            assert_eq!(path.parent(), Some(std::path::Path::new("out")), "{name}");
            assert!(names.insert(name.to_ascii_lowercase()), "{code}: {name}");
        }
        // Codes that differ only in a replaced character, or in letter case,
        // still get names that differ (also on a case-insensitive disk).
        for (a, b) in [
            ("a/b", "a_b"),
            ("a/b", "a.b"),
            ("abc", "ABC"),
            ("abc", "aBc"),
            ("x.y", "x_y"),
        ] {
            let (na, nb) = (file_name(a, "png").unwrap(), file_name(b, "png").unwrap());
            assert_ne!(
                na.to_ascii_lowercase(),
                nb.to_ascii_lowercase(),
                "{a} / {b}"
            );
        }
        assert!(matches!(
            file_name("T-1", "png/../../x"),
            Err(QrError::Format(_))
        ));
        assert!(matches!(file_name("T-1", "exe"), Err(QrError::Format(_))));
    }
}
