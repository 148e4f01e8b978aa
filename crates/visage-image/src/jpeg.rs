//! JPEG decoding with libjpeg-turbo's decoder (as built into mozjpeg): the integer "islow" IDCT
//! and fancy chroma upsampling, the library and defaults PIL uses. The pure-Rust decoders round
//! differently by a grey level here and there, and the shape predictor's pixel comparisons are
//! sensitive enough to such differences to move a landmark by a pixel.

use std::panic::{catch_unwind, AssertUnwindSafe};

use image::RgbImage;

/// Decodes a complete JPEG into RGB, or says why not. `None` means libjpeg cannot produce RGB
/// from this file (CMYK, say) and another decoder should try.
pub(crate) fn decode(bytes: &[u8]) -> Option<Result<RgbImage, String>> {
    // libjpeg reports errors by unwinding through the FFI boundary (mozjpeg's error manager);
    // catching it here turns every libjpeg error into a value.
    let result = catch_unwind(AssertUnwindSafe(|| -> std::io::Result<Option<RgbImage>> {
        let decompress = mozjpeg::Decompress::new_mem(bytes)?;
        let mut started = match decompress.rgb() {
            Ok(started) => started,
            Err(_) => return Ok(None),
        };
        let (width, height) = (started.width() as u32, started.height() as u32);
        let pixels: Vec<u8> = started.read_scanlines::<u8>()?;
        started.finish()?;
        Ok(RgbImage::from_raw(width, height, pixels))
    }));
    match result {
        Ok(Ok(Some(image))) => Some(Ok(image)),
        Ok(Ok(None)) => None,
        Ok(Err(e)) => Some(Err(e.to_string())),
        Err(panic) => Some(Err(panic
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "libjpeg failed".to_string()))),
    }
}

/// True when the JPEG's marker structure runs from SOI to an EOI marker. libjpeg pads a
/// truncated file with grey and only warns; a truncated photo must be refused instead.
pub(crate) fn is_complete(bytes: &[u8]) -> bool {
    if bytes.len() < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8 {
        return false;
    }
    let mut i = 2;
    loop {
        // Entropy-coded data and fill bytes run until the next 0xFF.
        while i < bytes.len() && bytes[i] != 0xFF {
            i += 1;
        }
        while i < bytes.len() && bytes[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = bytes.get(i) else {
            return false;
        };
        i += 1;
        match marker {
            0xD9 => return true,
            // Stuffed zero, restart markers and TEM carry no length.
            0x00 | 0x01 | 0xD0..=0xD7 => {}
            _ => {
                let Some(len) = bytes
                    .get(i..i + 2)
                    .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                else {
                    return false;
                };
                // Skipping by length keeps an EXIF thumbnail's own EOI from counting.
                i += len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_jpeg() -> Vec<u8> {
        let img = RgbImage::from_fn(40, 24, |x, y| {
            image::Rgb([(x * 6) as u8, (y * 10) as u8, 128])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        out.into_inner()
    }

    #[test]
    fn decodes_a_complete_jpeg() {
        let bytes = sample_jpeg();
        assert!(is_complete(&bytes));
        let img = decode(&bytes).unwrap().unwrap();
        assert_eq!(img.dimensions(), (40, 24));
        let p = img.get_pixel(20, 12).0;
        assert!(
            (i32::from(p[0]) - 120).abs() < 12 && (i32::from(p[2]) - 128).abs() < 12,
            "{p:?}"
        );
    }

    #[test]
    fn every_truncation_is_detected() {
        let bytes = sample_jpeg();
        for cut in [
            0,
            1,
            3,
            10,
            bytes.len() / 2,
            bytes.len() - 2,
            bytes.len() - 1,
        ] {
            assert!(!is_complete(&bytes[..cut]), "cut at {cut}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_crash() {
        let mut bytes = sample_jpeg();
        for b in bytes.iter_mut().skip(2).take(200) {
            *b = 0x5a;
        }
        assert!(matches!(decode(&bytes), Some(Err(_)) | None));
    }
}
