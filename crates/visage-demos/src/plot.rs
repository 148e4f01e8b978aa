//! Minimal plotting on RGB images: polylines, markers, and grey-scale maps.

use image::{Rgb, RgbImage};

/// Draws a straight line from `(x0, y0)` to `(x1, y1)` (pixels; parts outside are clipped).
pub fn line(img: &mut RgbImage, (x0, y0): (f64, f64), (x1, y1): (f64, f64), color: [u8; 3]) {
    let steps = (x1 - x0).abs().max((y1 - y0).abs()).ceil().max(1.0) as usize;
    for s in 0..=steps {
        let t = s as f64 / steps as f64;
        put(img, x0 + t * (x1 - x0), y0 + t * (y1 - y0), color);
    }
}

/// Sets one pixel if it lies inside the image.
pub fn put(img: &mut RgbImage, x: f64, y: f64, color: [u8; 3]) {
    if x >= 0.0 && y >= 0.0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, Rgb(color));
    }
}

/// A filled square marker of half-size `r` pixels centred at `(x, y)`.
pub fn marker(img: &mut RgbImage, x: f64, y: f64, r: i32, color: [u8; 3]) {
    for dy in -r..=r {
        for dx in -r..=r {
            put(img, x + dx as f64, y + dy as f64, color);
        }
    }
}

/// Paints a `w x h` map of values (row-major) into `img` at `(left, top)`, each value a
/// `scale x scale` block, grey from the map's minimum (black) to its maximum (white).
pub fn heatmap(
    img: &mut RgbImage,
    values: &[f32],
    w: usize,
    h: usize,
    left: u32,
    top: u32,
    scale: u32,
) {
    let lo = values.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let span = if hi > lo { hi - lo } else { 1.0 };
    for y in 0..h {
        for x in 0..w {
            let v = ((values[y * w + x] - lo) / span * 255.0).clamp(0.0, 255.0) as u8;
            for dy in 0..scale {
                for dx in 0..scale {
                    let (px, py) = (left + x as u32 * scale + dx, top + y as u32 * scale + dy);
                    if px < img.width() && py < img.height() {
                        img.put_pixel(px, py, Rgb([v, v, v]));
                    }
                }
            }
        }
    }
}
