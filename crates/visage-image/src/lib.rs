//! Images in and out: decoding (EXIF orientation applied, a pixel limit checked before decoding),
//! the resampling steps whose exact rounding the face pipeline depends on, and contact sheets
//! (grids of images with labels) for showing results.

pub mod decode;
pub mod font;
mod jpeg;
pub mod pyramid;
pub mod resize;
pub mod sheet;

pub use decode::{decode_bytes, decode_file, DecodeOptions, ImageError, DEFAULT_MAX_PIXELS};
pub use image::RgbImage;
pub use sheet::{contact_sheet, Header, SheetError, SheetOptions};
