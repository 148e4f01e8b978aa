//! Loss curves of a run as a PNG-ready picture: each cost term against the evaluation number, on
//! a log scale, one colour per term, stage boundaries as grey lines.

use image::{Rgb, RgbImage};
use visage_image::font::{draw_text, GLYPH_H};

use crate::transfer::IterationRecord;

/// Colours of the curves: total, content, style, total variation.
const COLOURS: [Rgb<u8>; 4] = [
    Rgb([20, 20, 20]),
    Rgb([30, 100, 220]),
    Rgb([220, 60, 40]),
    Rgb([40, 160, 60]),
];

/// Draws the total, content, style and TV costs of `records` (in order) into a `width x height`
/// picture with a log-scale value axis. Terms that are zero throughout are left out.
pub fn loss_curves(records: &[IterationRecord], width: u32, height: u32) -> RgbImage {
    let mut img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    let (left, right, top, bottom) = (70i64, 10i64, 30i64, 30i64);
    let plot_w = (width as i64 - left - right).max(1);
    let plot_h = (height as i64 - top - bottom).max(1);
    let series: Vec<(&str, Vec<f64>)> = vec![
        ("total", records.iter().map(|r| r.total).collect()),
        ("content", records.iter().map(|r| r.content).collect()),
        ("style", records.iter().map(|r| r.style).collect()),
        ("tv", records.iter().map(|r| r.tv).collect()),
    ];
    let positive = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| *v > 0.0 && v.is_finite());
    let (lo, hi) = positive.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() || records.is_empty() {
        return img;
    }
    let (llo, lhi) = (
        lo.log10().floor(),
        hi.log10().ceil().max(lo.log10().floor() + 1.0),
    );
    let y_of =
        |v: f64| top + plot_h - ((v.max(lo).log10() - llo) / (lhi - llo) * plot_h as f64) as i64;
    let x_of = |i: usize| {
        left + (i as f64 / (records.len().max(2) - 1) as f64 * (plot_w - 1) as f64) as i64
    };
    let grey = Rgb([200, 200, 200]);
    let mut put = |img: &mut RgbImage, x: i64, y: i64, c: Rgb<u8>| {
        if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
            img.put_pixel(x as u32, y as u32, c);
        }
    };
    // Decade grid lines and labels.
    let mut decade = llo;
    while decade <= lhi {
        let y = y_of(10f64.powf(decade));
        for x in left..left + plot_w {
            put(&mut img, x, y, grey);
        }
        draw_text(
            &mut img,
            4,
            y - GLYPH_H as i64,
            &format!("1E{}", decade as i64),
            2,
            Rgb([0, 0, 0]),
        );
        decade += 1.0;
    }
    // Stage and tile boundaries.
    for i in 1..records.len() {
        if (records[i].stage, records[i].tile) != (records[i - 1].stage, records[i - 1].tile) {
            let x = x_of(i);
            for y in top..top + plot_h {
                put(&mut img, x, y, grey);
            }
        }
    }
    let mut legend_x = left;
    for ((name, values), colour) in series.iter().zip(COLOURS) {
        if values.iter().all(|v| *v <= 0.0) {
            continue;
        }
        let mut last: Option<(i64, i64)> = None;
        for (i, v) in values.iter().enumerate() {
            let p = (x_of(i), y_of(*v));
            if let Some(q) = last {
                line(&mut img, q, p, colour, &mut put);
            }
            last = Some(p);
        }
        draw_text(&mut img, legend_x, 8, name, 2, colour);
        legend_x += 110;
    }
    draw_text(
        &mut img,
        left,
        height as i64 - 20,
        &format!("evaluations: {}", records.len()),
        2,
        Rgb([0, 0, 0]),
    );
    img
}

fn line(
    img: &mut RgbImage,
    (x0, y0): (i64, i64),
    (x1, y1): (i64, i64),
    colour: Rgb<u8>,
    put: &mut impl FnMut(&mut RgbImage, i64, i64, Rgb<u8>),
) {
    let steps = (x1 - x0).abs().max((y1 - y0).abs()).max(1);
    for s in 0..=steps {
        let x = x0 + (x1 - x0) * s / steps;
        let y = y0 + (y1 - y0) * s / steps;
        put(img, x, y, colour);
        put(img, x, y + 1, colour);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_decreasing_curves() {
        let records: Vec<IterationRecord> = (0..50)
            .map(|i| IterationRecord {
                stage: 0,
                tile: 0,
                iteration: i + 1,
                content: 100.0 / (i + 1) as f64,
                style: 1000.0 / (i + 1) as f64,
                tv: 0.0,
                total: 1100.0 / (i + 1) as f64,
                seconds: 0.1,
            })
            .collect();
        let img = loss_curves(&records, 400, 300);
        let red = img.pixels().filter(|p| **p == COLOURS[2]).count();
        assert!(red > 100, "{red}");
        assert!(img.pixels().all(|p| *p != COLOURS[3]));
    }
}
