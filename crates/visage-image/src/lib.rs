//! Images in and out: decoding (EXIF orientation applied, a pixel limit checked before decoding),
//! and the resampling steps whose exact rounding the face pipeline depends on.

pub mod decode;
mod jpeg;
pub mod pyramid;
pub mod resize;

pub use decode::{decode_bytes, decode_file, DecodeOptions, ImageError, DEFAULT_MAX_PIXELS};
pub use image::RgbImage;
