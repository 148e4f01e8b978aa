//! The ROC curve as a PNG: TAR against FAR on a logarithmic axis, drawn with the `image` crate
//! and a built-in 5x7 pixel font (no system fonts, no font files).

use std::path::Path;

use image::{Rgb, RgbImage};

use crate::roc::Roc;
use crate::EvalError;

const WIDTH: u32 = 720;
const HEIGHT: u32 = 540;
const LEFT: i64 = 90;
const RIGHT: i64 = 24;
const TOP: i64 = 40;
const BOTTOM: i64 = 70;
const FONT_SCALE: i64 = 2;

const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const BLACK: Rgb<u8> = Rgb([0, 0, 0]);
const GRID: Rgb<u8> = Rgb([225, 225, 225]);
const CURVE: Rgb<u8> = Rgb([31, 119, 180]);
const MARK: Rgb<u8> = Rgb([214, 39, 40]);

/// 5x7 glyphs, one string of 7 rows per character; only what the labels use.
fn glyph(c: char) -> Option<[&'static str; 7]> {
    Some(match c {
        '0' => [
            " ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### ",
        ],
        '1' => [
            "  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### ",
        ],
        '2' => [
            " ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####",
        ],
        '3' => [
            "#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### ",
        ],
        '4' => [
            "   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # ",
        ],
        '5' => [
            "#####", "#    ", "#### ", "    #", "    #", "#   #", " ### ",
        ],
        '6' => [
            "  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### ",
        ],
        '7' => [
            "#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   ",
        ],
        '8' => [
            " ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### ",
        ],
        '9' => [
            " ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  ",
        ],
        '.' => [
            "     ", "     ", "     ", "     ", "     ", " ##  ", " ##  ",
        ],
        '-' => [
            "     ", "     ", "     ", "#####", "     ", "     ", "     ",
        ],
        '=' => [
            "     ", "     ", "#####", "     ", "#####", "     ", "     ",
        ],
        'e' => [
            "     ", "     ", " ### ", "#   #", "#####", "#    ", " ### ",
        ],
        '%' => [
            "##   ", "##  #", "   # ", "  #  ", " #   ", "#  ##", "   ##",
        ],
        'A' => [
            " ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #",
        ],
        'E' => [
            "#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####",
        ],
        'F' => [
            "#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    ",
        ],
        'R' => [
            "#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #",
        ],
        'T' => [
            "#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ",
        ],
        ' ' => ["     "; 7],
        _ => return None,
    })
}

fn put(img: &mut RgbImage, x: i64, y: i64, color: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, color);
    }
}

/// Width of `text` in pixels at the plot's font scale.
fn text_width(text: &str) -> i64 {
    text.chars().count() as i64 * 6 * FONT_SCALE
}

fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, color: Rgb<u8>) {
    for (i, c) in text.chars().enumerate() {
        let Some(rows) = glyph(c) else { continue };
        let x0 = x + i as i64 * 6 * FONT_SCALE;
        for (r, row) in rows.iter().enumerate() {
            for (col, b) in row.bytes().enumerate() {
                if b == b'#' {
                    for dy in 0..FONT_SCALE {
                        for dx in 0..FONT_SCALE {
                            put(
                                img,
                                x0 + col as i64 * FONT_SCALE + dx,
                                y + r as i64 * FONT_SCALE + dy,
                                color,
                            );
                        }
                    }
                }
            }
        }
    }
}

/// Bresenham, `thick` pixels wide (square pen).
fn draw_line(
    img: &mut RgbImage,
    (x0, y0): (i64, i64),
    (x1, y1): (i64, i64),
    color: Rgb<u8>,
    thick: i64,
) {
    let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
    let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
    let (mut x, mut y, mut err) = (x0, y0, dx + dy);
    loop {
        for ox in 0..thick {
            for oy in 0..thick {
                put(img, x + ox - thick / 2, y + oy - thick / 2, color);
            }
        }
        if x == x1 && y == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

fn far_label(exp: i32) -> String {
    match exp {
        0 => "1".into(),
        -1 => "0.1".into(),
        e => format!("1e{e}"),
    }
}

/// Draws the ROC: x = FAR from 10^-4 (or one impostor pair, if fewer) to 1 on a log scale,
/// y = TAR over the range the curve needs; the equal-error point is marked in red.
pub fn render_roc(roc: &Roc) -> RgbImage {
    let mut img = RgbImage::from_pixel(WIDTH, HEIGHT, WHITE);
    let (w, h) = (WIDTH as i64 - LEFT - RIGHT, HEIGHT as i64 - TOP - BOTTOM);
    let min_far = 1.0 / roc.impostor.max(1) as f64;
    let x_min = (min_far.log10().floor() as i32).clamp(-6, -1).min(-4);
    let visible_tar = roc
        .points
        .iter()
        .filter(|p| p.far >= 10f64.powi(x_min))
        .map(|p| p.tar())
        .fold(1.0f64, f64::min);
    let y_min = ((visible_tar * 10.0).floor() / 10.0).clamp(0.0, 0.9);
    let y_step = if 1.0 - y_min <= 0.31 { 0.05 } else { 0.1 };
    let px = |far: f64| {
        LEFT + (((far.max(10f64.powi(x_min)).log10() - x_min as f64) / -x_min as f64) * w as f64)
            .round() as i64
    };
    let py =
        |tar: f64| TOP + h - (((tar.max(y_min) - y_min) / (1.0 - y_min)) * h as f64).round() as i64;

    for e in x_min..=0 {
        let x = px(10f64.powi(e));
        draw_line(&mut img, (x, TOP), (x, TOP + h), GRID, 1);
        let label = far_label(e);
        draw_text(
            &mut img,
            x - text_width(&label) / 2,
            TOP + h + 10,
            &label,
            BLACK,
        );
    }
    let steps = ((1.0 - y_min) / y_step).round() as i64;
    for s in 0..=steps {
        let tar = y_min + s as f64 * y_step;
        let y = py(tar);
        draw_line(&mut img, (LEFT, y), (LEFT + w, y), GRID, 1);
        let label = format!("{tar:.2}");
        draw_text(
            &mut img,
            LEFT - 10 - text_width(&label),
            y - 7,
            &label,
            BLACK,
        );
    }
    draw_line(&mut img, (LEFT, TOP), (LEFT, TOP + h), BLACK, 2);
    draw_line(&mut img, (LEFT, TOP + h), (LEFT + w, TOP + h), BLACK, 2);
    draw_text(
        &mut img,
        LEFT + w / 2 - text_width("FAR") / 2,
        TOP + h + 40,
        "FAR",
        BLACK,
    );
    // Above the y axis, where it cannot collide with the tick labels.
    draw_text(&mut img, LEFT + 8, 10, "TAR", BLACK);

    let mut last: Option<(i64, i64)> = None;
    for p in &roc.points {
        let here = (px(p.far), py(p.tar()));
        if let Some(prev) = last {
            // Steps, not diagonals: between two observed thresholds the rates are constant.
            draw_line(&mut img, prev, (here.0, prev.1), CURVE, 2);
            draw_line(&mut img, (here.0, prev.1), here, CURVE, 2);
        }
        last = Some(here);
    }
    if roc.eer.is_finite() {
        let (x, y) = (px(roc.eer), py(1.0 - roc.eer));
        for d in -4..=4 {
            draw_line(&mut img, (x - 4, y + d), (x + 4, y + d), MARK, 1);
        }
        let label = format!("EER {:.2}%", roc.eer * 100.0);
        draw_text(
            &mut img,
            LEFT + w - text_width(&label) - 10,
            TOP + h - 30,
            &label,
            MARK,
        );
    }
    img
}

/// Writes [`render_roc`] to `path` as PNG.
pub fn write_roc_png(roc: &Roc, path: &Path) -> Result<(), EvalError> {
    render_roc(roc)
        .save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| EvalError::Plot {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roc::roc;

    #[test]
    fn renders_a_curve_and_writes_png() {
        let g: Vec<f32> = (0..200).map(|i| 0.2 + i as f32 * 0.002).collect();
        let i: Vec<f32> = (0..3000).map(|k| 0.55 + k as f32 * 0.0003).collect();
        let r = roc(&g, &i);
        let img = render_roc(&r);
        assert_eq!(img.dimensions(), (WIDTH, HEIGHT));
        assert!(img.pixels().any(|p| *p == CURVE));
        assert!(img.pixels().any(|p| *p == BLACK));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roc.png");
        write_roc_png(&r, &path).unwrap();
        assert!(std::fs::read(&path).unwrap().starts_with(b"\x89PNG"));
        assert!(write_roc_png(&r, &dir.path().join("missing/dir/roc.png")).is_err());
    }
}
