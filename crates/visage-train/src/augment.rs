//! Small random affine distortions of a square grey image (rotation, scale, shear,
//! translation), sampled bilinearly with background 0 outside, and optional horizontal flips
//! (sensible for faces, not for characters, where a mirrored glyph is another glyph).

use crate::rng::Rng;
use serde::{Deserialize, Serialize};

/// Ranges of the random distortions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    /// Largest rotation either way, degrees.
    pub rotate_deg: f64,
    /// Largest relative change of scale (0.1 = ±10%).
    pub scale: f64,
    /// Largest shear either way (shift in x per pixel of y).
    pub shear: f64,
    /// Largest translation either way, as a fraction of the side.
    pub translate: f64,
    /// Mirror left-right with probability 1/2.
    pub flip: bool,
}

impl Augment {
    /// No distortion at all.
    pub const NONE: Self = Self {
        rotate_deg: 0.0,
        scale: 0.0,
        shear: 0.0,
        translate: 0.0,
        flip: false,
    };

    /// The small distortions used for Omniglot: ±10°, ±10% scale, ±0.1 shear, ±7% shift.
    pub const OMNIGLOT: Self = Self {
        rotate_deg: 10.0,
        scale: 0.1,
        shear: 0.1,
        translate: 0.07,
        flip: false,
    };

    /// Every range (rotation, scale, shear, translation) multiplied by `factor`; flips kept.
    pub fn scaled(&self, factor: f64) -> Self {
        Self {
            rotate_deg: self.rotate_deg * factor,
            scale: self.scale * factor,
            shear: self.shear * factor,
            translate: self.translate * factor,
            flip: self.flip,
        }
    }

    /// Whether this leaves images unchanged.
    pub fn is_identity(&self) -> bool {
        *self == Self::NONE
    }

    /// A randomly distorted copy of `image` (`side x side`, row-major).
    pub fn apply(&self, image: &[f32], side: usize, rng: &mut Rng) -> Vec<f32> {
        if self.is_identity() {
            return image.to_vec();
        }
        let angle = rng.range(-self.rotate_deg, self.rotate_deg).to_radians();
        let scale = 1.0 + rng.range(-self.scale, self.scale);
        let shear = rng.range(-self.shear, self.shear);
        let tx = rng.range(-self.translate, self.translate) * side as f64;
        let ty = rng.range(-self.translate, self.translate) * side as f64;
        let flip = self.flip && rng.uniform() < 0.5;
        // Output pixel -> source pixel: the inverse map, about the image centre.
        let (c, s) = (angle.cos(), angle.sin());
        let centre = (side as f64 - 1.0) / 2.0;
        let mut out = vec![0.0f32; side * side];
        for y in 0..side {
            for x in 0..side {
                let mut u = x as f64 - centre - tx;
                let v = y as f64 - centre - ty;
                if flip {
                    u = -u;
                }
                let u = u - shear * v;
                let sx = (c * u + s * v) / scale + centre;
                let sy = (-s * u + c * v) / scale + centre;
                out[y * side + x] = bilinear(image, side, sx, sy);
            }
        }
        out
    }
}

/// `image` (`side x side`, row-major) sampled at (`x`, `y`) pixels by bilinear interpolation,
/// 0 outside.
pub(crate) fn bilinear(image: &[f32], side: usize, x: f64, y: f64) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = ((x - x0) as f32, (y - y0) as f32);
    let at = |xi: f64, yi: f64| -> f32 {
        if xi < 0.0 || yi < 0.0 || xi >= side as f64 || yi >= side as f64 {
            0.0
        } else {
            image[yi as usize * side + xi as usize]
        }
    };
    let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1.0, y0) * fx;
    let bottom = at(x0, y0 + 1.0) * (1.0 - fx) + at(x0 + 1.0, y0 + 1.0) * fx;
    top * (1.0 - fy) + bottom * fy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_distortion_keeps_the_image_and_a_distortion_keeps_most_ink() {
        let side = 20;
        let mut img = vec![0.0f32; side * side];
        for y in 6..14 {
            for x in 6..14 {
                img[y * side + x] = 1.0;
            }
        }
        let mut rng = Rng::new(3);
        assert_eq!(Augment::NONE.apply(&img, side, &mut rng), img);
        let out = Augment::OMNIGLOT.apply(&img, side, &mut rng);
        assert_ne!(out, img);
        let (a, b): (f32, f32) = (img.iter().sum(), out.iter().sum());
        assert!((b / a - 1.0).abs() < 0.3, "ink {a} -> {b}");
    }

    #[test]
    fn a_scaled_distortion_scales_every_range_and_zero_is_none() {
        let half = Augment::OMNIGLOT.scaled(0.5);
        assert_eq!(
            (half.rotate_deg, half.scale, half.shear, half.translate),
            (5.0, 0.05, 0.05, 0.035)
        );
        assert!(Augment::OMNIGLOT.scaled(0.0).is_identity());
    }

    #[test]
    fn a_flip_mirrors_left_and_right() {
        let side = 4;
        let img: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let flip = Augment {
            flip: true,
            ..Augment::NONE
        };
        // Draw until the coin says flip.
        let mut rng = Rng::new(0);
        let flipped = (0..20)
            .map(|_| flip.apply(&img, side, &mut rng))
            .find(|o| *o != img)
            .unwrap();
        assert_eq!(&flipped[..4], &[3.0, 2.0, 1.0, 0.0]);
    }
}
