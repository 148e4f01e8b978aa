//! Feed-forward neural style transfer, run natively: the 26-style network of Dumoulin et al.
//! (2017) from its ONNX weights, with blends of styles, a strength control and colour
//! preservation; and arbitrary style from any picture (Ghiasi et al. 2017) through a small ONNX
//! interpreter. One pass of a small convolutional network per image, no optimisation.
//!
//! ```no_run
//! use visage_fast_style::{stylize, MultiStyleNet, StyleOptions, StyleWeights};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let net = MultiStyleNet::load("models/fast_style/multistyle26.onnx".as_ref())?;
//! let photo = image::open("photo.jpg")?.to_rgb8();
//! let out = stylize(&net, &photo, &StyleWeights::parse("3:0.5,12:0.5")?, &StyleOptions::default())?;
//! out.save("out.png")?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod arbitrary;
pub mod color;
pub mod interpret;
pub mod multistyle;
pub mod ops;
mod weights;

use std::path::{Path, PathBuf};

use image::RgbImage;
use visage_formats::manifest::{Manifest, ManifestError};
use visage_formats::FormatError;
use visage_nn::{Layout, NnError, Shape, Tensor};

pub use arbitrary::{ArbitraryStyle, StyleVector};
pub use multistyle::{MultiStyleNet, MIN_SIDE, NUM_STYLES, SIZE_MULTIPLE};
pub use weights::StyleWeights;

/// Why stylisation failed.
#[derive(Debug, thiserror::Error)]
pub enum StyleError {
    /// A model file is missing, altered or unreadable.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A model file could not be decoded.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The model decoded but is not the network expected.
    #[error("unexpected style network: {0}")]
    Model(String),
    /// The caller's input (image, style, option) is not usable.
    #[error("{0}")]
    Input(String),
    /// A kernel refused its operands.
    #[error(transparent)]
    Nn(#[from] NnError),
}

/// How a stylised image is finished.
#[derive(Debug, Clone, Copy)]
pub struct StyleOptions {
    /// 0 to 1: how much of the stylised image is mixed over the photo (1: all of it).
    pub strength: f32,
    /// Keep the photo's colours, taking only the brightness from the stylised image.
    pub preserve_color: bool,
}

impl Default for StyleOptions {
    fn default() -> Self {
        Self {
            strength: 1.0,
            preserve_color: false,
        }
    }
}

impl StyleOptions {
    fn check(&self) -> Result<(), StyleError> {
        if !(0.0..=1.0).contains(&self.strength) {
            return Err(StyleError::Input(format!(
                "strength must be between 0 and 1, got {}",
                self.strength
            )));
        }
        Ok(())
    }
}

/// The path of the 26-style network in a models directory, checked against the fast-style
/// manifest (size and SHA-256); a missing or altered file gives an error naming it.
pub fn multistyle_path(models_dir: &Path) -> Result<PathBuf, StyleError> {
    let mut paths = Manifest::fast_style().require(models_dir, &["multistyle26"])?;
    Ok(paths.remove(0))
}

/// An RGB image as a 1x3xHxW tensor of values 0 to 1.
pub fn image_to_tensor(image: &RgbImage) -> Tensor {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let mut data = vec![0f32; 3 * w * h];
    let (r, rest) = data.split_at_mut(w * h);
    let (g, b) = rest.split_at_mut(w * h);
    for (i, p) in image.pixels().enumerate() {
        r[i] = p.0[0] as f32 / 255.0;
        g[i] = p.0[1] as f32 / 255.0;
        b[i] = p.0[2] as f32 / 255.0;
    }
    Tensor::from_vec(Shape::new(1, 3, h, w), Layout::Nchw, data).expect("sizes agree")
}

/// The top-left `width x height` pixels of a 1x3xHxW tensor of values 0 to 1 as an RGB image,
/// each value clipped to 0..1 and rounded to the nearest of 256 levels.
pub fn tensor_to_image(t: &Tensor, width: u32, height: u32) -> RgbImage {
    let s = t.shape();
    assert!(
        s.h >= height as usize && s.w >= width as usize && s.c >= 3,
        "tensor too small"
    );
    let planes = [t.plane(0, 0), t.plane(0, 1), t.plane(0, 2)];
    let mut out = RgbImage::new(width, height);
    for (y, row) in out.rows_mut().enumerate() {
        for (x, p) in row.enumerate() {
            for (c, plane) in planes.iter().enumerate() {
                let v = plane[y * s.w + x];
                p.0[c] = (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
            }
        }
    }
    out
}

/// Stylises `image` with the built-in styles mixed by `weights`, then applies `options`.
/// Sizes that are not multiples of [`SIZE_MULTIPLE`] are reflection-padded on the bottom and
/// right and cropped back, so the output has the photo's size. Images smaller than
/// [`MIN_SIDE`] pixels on a side are refused.
pub fn stylize(
    net: &MultiStyleNet,
    image: &RgbImage,
    weights: &StyleWeights,
    options: &StyleOptions,
) -> Result<RgbImage, StyleError> {
    options.check()?;
    let (w, h) = image.dimensions();
    if (w as usize) < MIN_SIDE || (h as usize) < MIN_SIDE {
        return Err(StyleError::Input(format!(
            "image of {w}x{h} pixels is too small: both sides need at least {MIN_SIDE}"
        )));
    }
    let input = pad_to_multiple(&image_to_tensor(image), SIZE_MULTIPLE)?;
    let out = net.forward(&input, weights)?;
    let mut stylized = tensor_to_image(&out, w, h);
    if options.preserve_color {
        stylized = color::preserve_color(&stylized, image);
    }
    if options.strength < 1.0 {
        stylized = color::mix(image, &stylized, options.strength);
    }
    Ok(stylized)
}

/// Scales `image` down (Lanczos, aspect kept) so that its longer side is at most `max_size`
/// pixels; smaller images, and any image when `max_size` is 0, are returned as they are. The
/// reference pipeline limits photos this way (1024 by default) before stylising.
pub fn fit_longer_side(image: RgbImage, max_size: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    if max_size == 0 || w.max(h) <= max_size {
        return image;
    }
    let scale = max_size as f64 / w.max(h) as f64;
    let nw = ((w as f64 * scale).round() as u32).max(1);
    let nh = ((h as f64 * scale).round() as u32).max(1);
    image::imageops::resize(&image, nw, nh, image::imageops::FilterType::Lanczos3)
}

/// Reflection-pads the bottom and right of a 1xCxHxW tensor up to multiples of `m`.
fn pad_to_multiple(t: &Tensor, m: usize) -> Result<Tensor, StyleError> {
    let s = t.shape();
    let (h, w) = (s.h.div_ceil(m) * m, s.w.div_ceil(m) * m);
    if (h, w) == (s.h, s.w) {
        return Ok(t.clone());
    }
    let mut out = vec![0f32; s.c * h * w];
    let reflect = |i: usize, len: usize| if i < len { i } else { 2 * (len - 1) - i };
    for c in 0..s.c {
        let plane = t.plane(0, c);
        for y in 0..h {
            let sy = reflect(y, s.h);
            for x in 0..w {
                out[(c * h + y) * w + x] = plane[sy * s.w + reflect(x, s.w)];
            }
        }
    }
    Ok(Tensor::from_vec(
        Shape::new(1, s.c, h, w),
        Layout::Nchw,
        out,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_scales_only_large_images() {
        let img = RgbImage::new(400, 100);
        assert_eq!(fit_longer_side(img.clone(), 200).dimensions(), (200, 50));
        assert_eq!(fit_longer_side(img.clone(), 400).dimensions(), (400, 100));
        assert_eq!(fit_longer_side(img, 0).dimensions(), (400, 100));
    }

    #[test]
    fn image_tensor_round_trip_is_exact() {
        let img = RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 50, y as u8 * 90, 7]));
        let t = image_to_tensor(&img);
        assert_eq!(t.shape(), Shape::new(1, 3, 3, 5));
        assert_eq!(tensor_to_image(&t, 5, 3), img);
    }

    #[test]
    fn padding_to_a_multiple_reflects_without_repeating_the_edge() {
        let row = [0., 1., 2., 3., 4.];
        let t = Tensor::from_vec(Shape::new(1, 1, 3, 5), Layout::Nchw, row.repeat(3)).unwrap();
        let p = pad_to_multiple(&t, 4).unwrap();
        assert_eq!(p.shape(), Shape::new(1, 1, 4, 8));
        assert_eq!(&p.plane(0, 0)[..8], [0., 1., 2., 3., 4., 3., 2., 1.]);
    }
}
