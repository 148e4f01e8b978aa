//! The learning curve as a PNG: loss per step (grey) and its running mean over 50 steps
//! (blue), on a white canvas with the axes from (0 steps, 0 loss) to (last step, largest running
//! mean x 1.1), drawn with the shared plotting helpers of `visage-demos`.

use std::path::Path;

use image::RgbImage;
use visage_demos::plot::line;

use crate::train::CurvePoint;
use crate::TrainError;

const WIDTH: u32 = 640;
const HEIGHT: u32 = 400;
const MARGIN: f64 = 30.0;

/// Renders `curve` (see the module docs for the axes).
pub fn render_curve(curve: &[CurvePoint]) -> RgbImage {
    let mut img = RgbImage::from_pixel(WIDTH, HEIGHT, image::Rgb([255, 255, 255]));
    let (w, h) = (WIDTH as f64 - 2.0 * MARGIN, HEIGHT as f64 - 2.0 * MARGIN);
    let black = [0, 0, 0];
    line(&mut img, (MARGIN, MARGIN), (MARGIN, MARGIN + h), black);
    line(
        &mut img,
        (MARGIN, MARGIN + h),
        (MARGIN + w, MARGIN + h),
        black,
    );
    if curve.is_empty() {
        return img;
    }
    let window = 50usize;
    let smooth: Vec<f64> = (0..curve.len())
        .map(|i| {
            let lo = i.saturating_sub(window - 1);
            curve[lo..=i].iter().map(|p| p.loss as f64).sum::<f64>() / (i - lo + 1) as f64
        })
        .collect();
    let top = smooth.iter().copied().fold(0.0f64, f64::max).max(1e-9) * 1.1;
    let last = curve.last().map_or(1, |p| p.step).max(1) as f64;
    let at = |step: usize, v: f64| {
        (
            MARGIN + w * step as f64 / last,
            MARGIN + h * (1.0 - (v / top).min(1.0)),
        )
    };
    for pair in curve.windows(2) {
        let a = at(pair[0].step, pair[0].loss as f64);
        let b = at(pair[1].step, pair[1].loss as f64);
        line(&mut img, a, b, [200, 200, 200]);
    }
    for i in 1..curve.len() {
        let a = at(curve[i - 1].step, smooth[i - 1]);
        let b = at(curve[i].step, smooth[i]);
        line(&mut img, a, b, [31, 119, 180]);
    }
    img
}

/// Writes the learning curve to `path` as PNG.
pub fn write_curve_png(curve: &[CurvePoint], path: &Path) -> Result<(), TrainError> {
    render_curve(curve)
        .save(path)
        .map_err(|e| TrainError::Image {
            path: path.display().to_string(),
            message: e.to_string(),
        })
}
