//! Small random affine distortions of a square grey image (rotation, scale, shear,
//! translation), optionally with a smooth random warp on top (elastic distortion, as Simard et
//! al. did for handwritten digits), sampled bilinearly with background 0 outside, and optional
//! horizontal flips (sensible for faces, not for characters, where a mirrored glyph is another
//! glyph).

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
    /// Root-mean-square length of the elastic warp's displacements, as a fraction of the side
    /// (0: no warp). Each image gets its own random field, smoothed by a Gaussian of
    /// [`Augment::elastic_smoothing`]: strokes bend a little, as another drawer's would.
    #[serde(default)]
    pub elastic: f64,
    /// Standard deviation of the Gaussian that smooths the warp's field, as a fraction of the
    /// side: larger bends whole strokes, smaller wiggles them.
    #[serde(default)]
    pub elastic_smoothing: f64,
}

impl Augment {
    /// No distortion at all.
    pub const NONE: Self = Self {
        rotate_deg: 0.0,
        scale: 0.0,
        shear: 0.0,
        translate: 0.0,
        flip: false,
        elastic: 0.0,
        elastic_smoothing: 0.0,
    };

    /// The small distortions used for Omniglot: ±10°, ±10% scale, ±0.1 shear, ±7% shift.
    pub const OMNIGLOT: Self = Self {
        rotate_deg: 10.0,
        scale: 0.1,
        shear: 0.1,
        translate: 0.07,
        flip: false,
        elastic: 0.0,
        elastic_smoothing: 0.0,
    };

    /// [`Augment::OMNIGLOT`] and an elastic warp of 0.06 of the side (1.7 pixels at 28x28),
    /// smoothed over 0.12 of the side: the prototypical network's training distortions.
    pub const OMNIGLOT_WARPED: Self = Self {
        elastic: 0.06,
        elastic_smoothing: 0.12,
        ..Self::OMNIGLOT
    };

    /// Every range (rotation, scale, shear, translation, warp) multiplied by `factor`; flips
    /// and the warp's smoothing kept.
    pub fn scaled(&self, factor: f64) -> Self {
        Self {
            rotate_deg: self.rotate_deg * factor,
            scale: self.scale * factor,
            shear: self.shear * factor,
            translate: self.translate * factor,
            flip: self.flip,
            elastic: self.elastic * factor,
            elastic_smoothing: self.elastic_smoothing,
        }
    }

    /// Whether the elastic warp is on.
    fn warps(&self) -> bool {
        self.elastic > 0.0 && self.elastic_smoothing > 0.0
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
        // Drawn last so that settings without a warp see the same random numbers as before it.
        let warp = self.warps().then(|| {
            warp_field(
                side,
                self.elastic * side as f64,
                self.elastic_smoothing * side as f64,
                rng,
            )
        });
        // Output pixel -> source pixel: the inverse map, about the image centre.
        let (c, s) = (angle.cos(), angle.sin());
        let centre = (side as f64 - 1.0) / 2.0;
        let mut out = vec![0.0f32; side * side];
        for y in 0..side {
            for x in 0..side {
                let (dx, dy) = warp
                    .as_ref()
                    .map_or((0.0, 0.0), |(wx, wy)| (wx[y * side + x], wy[y * side + x]));
                let mut u = x as f64 + dx - centre - tx;
                let v = y as f64 + dy - centre - ty;
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

/// A smooth random displacement field over a `side x side` grid, x and y parts in pixels:
/// uniform noise smoothed by a Gaussian of `sigma` pixels, then scaled so that the displacements'
/// root mean square is `rms` pixels.
fn warp_field(side: usize, rms: f64, sigma: f64, rng: &mut Rng) -> (Vec<f64>, Vec<f64>) {
    let radius = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f64> = (-radius..=radius)
        .map(|i| (-0.5 * (i as f64 / sigma).powi(2)).exp())
        .collect();
    let mut field = || {
        let noise: Vec<f64> = (0..side * side).map(|_| rng.range(-1.0, 1.0)).collect();
        let along = |src: &[f64], horizontal: bool| -> Vec<f64> {
            let mut dst = vec![0.0; side * side];
            for y in 0..side {
                for x in 0..side {
                    let mut sum = 0.0;
                    for (k, w) in kernel.iter().enumerate() {
                        let o = k as isize - radius;
                        let (xi, yi) = if horizontal {
                            (x as isize + o, y as isize)
                        } else {
                            (x as isize, y as isize + o)
                        };
                        // Zero beyond the border: the field fades there rather than repeating.
                        if (0..side as isize).contains(&xi) && (0..side as isize).contains(&yi) {
                            sum += w * src[yi as usize * side + xi as usize];
                        }
                    }
                    dst[y * side + x] = sum;
                }
            }
            dst
        };
        along(&along(&noise, true), false)
    };
    let (mut fx, mut fy) = (field(), field());
    let power = fx.iter().chain(&fy).map(|v| v * v).sum::<f64>() / (side * side) as f64;
    let gain = if power > 0.0 { rms / power.sqrt() } else { 0.0 };
    fx.iter_mut().chain(fy.iter_mut()).for_each(|v| *v *= gain);
    (fx, fy)
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
        let mut rng = crate::rng::from_seed(3);
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
    fn a_warp_moves_pixels_by_its_root_mean_square_and_smoothly() {
        let (side, rms, sigma) = (28, 1.2, 3.0);
        let (fx, fy) = warp_field(side, rms, sigma, &mut crate::rng::from_seed(9));
        let power = fx.iter().chain(&fy).map(|v| v * v).sum::<f64>() / (side * side) as f64;
        assert!((power.sqrt() - rms).abs() < 1e-9, "rms {}", power.sqrt());
        // Smooth: neighbours move alike, far more alike than the field's own spread.
        let step: f64 = (0..side * side)
            .filter(|i| i % side + 1 < side)
            .map(|i| (fx[i + 1] - fx[i]).powi(2))
            .sum::<f64>()
            / (side * (side - 1)) as f64;
        let spread = fx.iter().map(|v| v * v).sum::<f64>() / (side * side) as f64;
        assert!(step < 0.1 * spread, "step {step} against {spread}");
        // Another draw, another field.
        let (gx, _) = warp_field(side, rms, sigma, &mut crate::rng::from_seed(10));
        assert_ne!(fx, gx);
    }

    #[test]
    fn a_warp_bends_a_stroke_without_losing_it_and_off_draws_as_before() {
        let side = 28;
        let mut img = vec![0.0f32; side * side];
        for x in 4..24 {
            img[14 * side + x] = 1.0;
        }
        let warped = Augment {
            elastic: 0.05,
            elastic_smoothing: 0.12,
            ..Augment::NONE
        };
        let out = warped.apply(&img, side, &mut crate::rng::from_seed(4));
        assert_ne!(out, img);
        let (a, b): (f32, f32) = (img.iter().sum(), out.iter().sum());
        assert!((b / a - 1.0).abs() < 0.35, "ink {a} -> {b}");
        // A straight stroke stays a stroke: most ink within 3 rows of where it was.
        let near: f32 = (11..18)
            .map(|y| out[y * side..(y + 1) * side].iter().sum::<f32>())
            .sum();
        assert!(near > 0.8 * b, "{near} of {b} near the stroke");
        // Without a warp, the same seed gives the same affine distortion as ever: the warp's
        // random numbers come after the others.
        let affine = Augment::OMNIGLOT;
        let both = Augment {
            elastic: 0.05,
            elastic_smoothing: 0.12,
            ..affine
        };
        let (mut r1, mut r2) = (crate::rng::from_seed(8), crate::rng::from_seed(8));
        let plain = affine.apply(&img, side, &mut r1);
        assert_ne!(both.apply(&img, side, &mut r2), plain);
        assert_eq!(affine.scaled(2.0).elastic, 0.0);
        assert_eq!(both.scaled(0.5).elastic, 0.025);
        assert_eq!(both.scaled(0.5).elastic_smoothing, 0.12);
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
        let mut rng = crate::rng::from_seed(0);
        let flipped = (0..20)
            .map(|_| flip.apply(&img, side, &mut rng))
            .find(|o| *o != img)
            .unwrap();
        assert_eq!(&flipped[..4], &[3.0, 2.0, 1.0, 0.0]);
    }
}
