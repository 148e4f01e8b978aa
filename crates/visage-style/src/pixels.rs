//! Images as planar `f32` RGB on a 0..1 scale (`[3, H, W]`, the layout the networks take), and
//! the conversions, resizing and seeded noise the optimisation needs.

use visage_image::RgbImage;

/// A planar RGB image with values on a 0..1 scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Planar {
    /// Width, pixels.
    pub width: usize,
    /// Height, pixels.
    pub height: usize,
    /// `3 * height * width` values: the red plane, then green, then blue, each row-major.
    pub data: Vec<f32>,
}

impl Planar {
    /// From interleaved 8-bit RGB.
    pub fn from_rgb(image: &RgbImage) -> Self {
        let (width, height) = (image.width() as usize, image.height() as usize);
        let plane = width * height;
        let mut data = vec![0f32; 3 * plane];
        for (i, px) in image.pixels().enumerate() {
            for c in 0..3 {
                data[c * plane + i] = px.0[c] as f32 / 255.0;
            }
        }
        Self {
            width,
            height,
            data,
        }
    }

    /// To interleaved 8-bit RGB, clamping to 0..1 and rounding.
    pub fn to_rgb(&self) -> RgbImage {
        let plane = self.width * self.height;
        let mut out = RgbImage::new(self.width as u32, self.height as u32);
        for (i, px) in out.pixels_mut().enumerate() {
            for c in 0..3 {
                px.0[c] = (self.data[c * plane + i].clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
        out
    }

    /// Bilinear resampling to `width x height` (pixel centres aligned, as most resizers do).
    pub fn resize(&self, width: usize, height: usize) -> Self {
        let mut data = vec![0f32; 3 * width * height];
        let sx = self.width as f32 / width as f32;
        let sy = self.height as f32 / height as f32;
        let (w0, h0) = (self.width, self.height);
        for y in 0..height {
            let fy = ((y as f32 + 0.5) * sy - 0.5).clamp(0.0, (h0 - 1) as f32);
            let y0 = fy.floor() as usize;
            let y1 = (y0 + 1).min(h0 - 1);
            let ty = fy - y0 as f32;
            for x in 0..width {
                let fx = ((x as f32 + 0.5) * sx - 0.5).clamp(0.0, (w0 - 1) as f32);
                let x0 = fx.floor() as usize;
                let x1 = (x0 + 1).min(w0 - 1);
                let tx = fx - x0 as f32;
                for c in 0..3 {
                    let p = &self.data[c * w0 * h0..(c + 1) * w0 * h0];
                    let top = p[y0 * w0 + x0] * (1.0 - tx) + p[y0 * w0 + x1] * tx;
                    let bottom = p[y1 * w0 + x0] * (1.0 - tx) + p[y1 * w0 + x1] * tx;
                    data[c * width * height + y * width + x] = top * (1.0 - ty) + bottom * ty;
                }
            }
        }
        Self {
            width,
            height,
            data,
        }
    }

    /// The `width x height` window at (`left`, `top`).
    pub fn crop(&self, left: usize, top: usize, width: usize, height: usize) -> Self {
        let mut data = Vec::with_capacity(3 * width * height);
        for c in 0..3 {
            for y in top..top + height {
                let row = c * self.width * self.height + y * self.width;
                data.extend_from_slice(&self.data[row + left..row + left + width]);
            }
        }
        Self {
            width,
            height,
            data,
        }
    }

    /// Seeded white noise: mid-grey plus Gaussian noise of standard deviation `sigma`, the same
    /// image for the same seed on every machine.
    pub fn noise(width: usize, height: usize, seed: u64, sigma: f32) -> Self {
        let mut rng = visage_rng::SplitMix64::new(seed);
        let data = (0..3 * width * height)
            .map(|_| (0.5 + sigma * rng.normal() as f32).clamp(0.0, 1.0))
            .collect();
        Self {
            width,
            height,
            data,
        }
    }
}

/// The size with long side `long` and the aspect ratio of `width x height` (at least 1 px).
pub fn fit_long_side(width: usize, height: usize, long: usize) -> (usize, usize) {
    let scale = long as f64 / width.max(height) as f64;
    (
        ((width as f64 * scale).round() as usize).max(1),
        ((height as f64 * scale).round() as usize).max(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_crops() {
        let mut img = RgbImage::new(4, 3);
        for (i, p) in img.pixels_mut().enumerate() {
            p.0 = [i as u8 * 10, 255 - i as u8, 7];
        }
        let p = Planar::from_rgb(&img);
        assert_eq!(p.to_rgb(), img);
        let c = p.crop(1, 1, 2, 2);
        assert_eq!(c.data[0], p.data[5]);
        assert_eq!(c.data[3], p.data[10]);
        let same = p.resize(4, 3);
        assert_eq!(same.to_rgb(), img);
    }

    #[test]
    fn noise_is_seeded() {
        let a = Planar::noise(8, 8, 1, 0.2);
        assert_eq!(a, Planar::noise(8, 8, 1, 0.2));
        assert_ne!(a, Planar::noise(8, 8, 2, 0.2));
        let mean = a.data.iter().sum::<f32>() / a.data.len() as f32;
        assert!((mean - 0.5).abs() < 0.05, "{mean}");
        assert_eq!(fit_long_side(1000, 500, 512), (512, 256));
    }
}
