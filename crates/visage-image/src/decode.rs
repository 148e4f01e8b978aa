//! Decoding files into RGB: JPEG, PNG, WebP, GIF (first frame), BMP and PNM. Grayscale and RGBA
//! become RGB as PIL's `convert("RGB")` does (gray copied to all channels, alpha dropped), and the
//! EXIF orientation is applied, so every later step sees the image upright.

use std::io::{BufRead, Cursor, Seek};
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

use crate::jpeg;

/// Default largest image accepted, in pixels (width × height): 100 megapixels.
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

/// How images are decoded.
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    /// Largest image accepted, in pixels (width × height). Checked from the header, before any
    /// pixel is decoded, so a small file that claims a huge image is refused cheaply.
    pub max_pixels: u64,
    /// Apply the EXIF orientation tag (true by default).
    pub apply_orientation: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            max_pixels: DEFAULT_MAX_PIXELS,
            apply_orientation: true,
        }
    }
}

/// Why an image was not decoded.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("{path}: empty file")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The bytes are not an image in a supported format.
    #[error("{path}: not a supported image (JPEG, PNG, WebP, GIF, BMP, PNM)")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The header claims more pixels than allowed.
    #[error("{path}: image of {width}x{height} pixels is over the limit of {max_pixels} pixels")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// The limit, in pixels.
        max_pixels: u64,
    },
    /// The image is damaged (truncated, corrupt).
    #[error("{path}: damaged image: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },
}

/// Reads and decodes the image at `path` into upright RGB.
pub fn decode_file(path: &Path, options: &DecodeOptions) -> Result<RgbImage, ImageError> {
    let bytes = std::fs::read(path).map_err(|source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_bytes(&bytes, path, options)
}

/// Decodes `bytes` into upright RGB; `name` is used in error messages.
pub fn decode_bytes(
    bytes: &[u8],
    name: &Path,
    options: &DecodeOptions,
) -> Result<RgbImage, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty {
            path: name.to_path_buf(),
        });
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|source| ImageError::Io {
            path: name.to_path_buf(),
            source,
        })?;
    let format = reader.format().ok_or_else(|| ImageError::UnknownFormat {
        path: name.to_path_buf(),
    })?;
    let is_jpeg = format == ImageFormat::Jpeg;
    if is_jpeg && !jpeg::is_complete(bytes) {
        return Err(ImageError::Corrupt {
            path: name.to_path_buf(),
            message: "JPEG data ends before its end marker (truncated file?)".into(),
        });
    }
    decode_reader(reader, bytes, is_jpeg, name, options)
}

fn decode_reader<R: BufRead + Seek>(
    reader: ImageReader<R>,
    bytes: &[u8],
    is_jpeg: bool,
    name: &Path,
    options: &DecodeOptions,
) -> Result<RgbImage, ImageError> {
    let corrupt = |e: image::ImageError| ImageError::Corrupt {
        path: name.to_path_buf(),
        message: e.to_string(),
    };
    // The image crate reads the header (size, EXIF orientation) for every format.
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > options.max_pixels {
        return Err(ImageError::TooLarge {
            path: name.to_path_buf(),
            width,
            height,
            max_pixels: options.max_pixels,
        });
    }
    let orientation = if options.apply_orientation {
        decoder.orientation().ok()
    } else {
        None
    };
    let libjpeg = if is_jpeg { jpeg::decode(bytes) } else { None };
    let mut image = match libjpeg {
        Some(Ok(rgb)) => DynamicImage::ImageRgb8(rgb),
        Some(Err(message)) => {
            return Err(ImageError::Corrupt {
                path: name.to_path_buf(),
                message,
            })
        }
        None => DynamicImage::from_decoder(decoder).map_err(corrupt)?,
    };
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(to_rgb(image))
}

/// Converts to 8-bit RGB the way PIL's `convert("RGB")` does: gray is copied into the three
/// channels, alpha is dropped (not composited), 16-bit samples are scaled to 8 bits.
fn to_rgb(image: DynamicImage) -> RgbImage {
    match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_bytes(img: &DynamicImage) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn gray_becomes_three_equal_channels() {
        let gray = image::GrayImage::from_fn(4, 3, |x, y| image::Luma([(x * 10 + y) as u8]));
        let rgb = decode_bytes(
            &png_bytes(&DynamicImage::ImageLuma8(gray)),
            Path::new("g.png"),
            &DecodeOptions::default(),
        )
        .unwrap();
        assert_eq!(rgb.dimensions(), (4, 3));
        assert_eq!(rgb.get_pixel(2, 1).0, [21, 21, 21]);
    }

    #[test]
    fn rgba_drops_alpha() {
        let rgba = image::RgbaImage::from_pixel(2, 2, image::Rgba([10, 20, 30, 0]));
        let rgb = decode_bytes(
            &png_bytes(&DynamicImage::ImageRgba8(rgba)),
            Path::new("a.png"),
            &DecodeOptions::default(),
        )
        .unwrap();
        assert_eq!(rgb.get_pixel(1, 1).0, [10, 20, 30]);
    }

    #[test]
    fn pixel_limit_is_checked_before_decoding() {
        let img = DynamicImage::ImageRgb8(RgbImage::new(100, 100));
        let opts = DecodeOptions {
            max_pixels: 9_999,
            ..Default::default()
        };
        let err = decode_bytes(&png_bytes(&img), Path::new("big.png"), &opts).unwrap_err();
        assert!(
            matches!(
                err,
                ImageError::TooLarge {
                    width: 100,
                    height: 100,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn empty_text_and_truncated_inputs_are_errors() {
        let opts = DecodeOptions::default();
        assert!(matches!(
            decode_bytes(b"", Path::new("e.jpg"), &opts),
            Err(ImageError::Empty { .. })
        ));
        assert!(matches!(
            decode_bytes(b"hello, this is text", Path::new("t.jpg"), &opts),
            Err(ImageError::UnknownFormat { .. })
        ));
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(64, 64, image::Rgb([1, 2, 3])));
        let bytes = png_bytes(&img);
        let err =
            decode_bytes(&bytes[..bytes.len() / 2], Path::new("half.png"), &opts).unwrap_err();
        assert!(matches!(err, ImageError::Corrupt { .. }), "{err}");
    }
}
