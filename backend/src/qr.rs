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
}
