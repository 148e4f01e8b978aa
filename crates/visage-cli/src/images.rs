//! Reading the images named on the command line.

use std::path::Path;

use visage_image::{decode_file, DecodeOptions, RgbImage};

use crate::args::DetectArgs;

/// Decodes one image with the command's pixel limit; the error names the file.
pub fn load(path: &Path, detect: &DetectArgs) -> anyhow::Result<RgbImage> {
    let options = DecodeOptions {
        max_pixels: detect.max_pixels,
        ..DecodeOptions::default()
    };
    Ok(decode_file(path, &options)?)
}
