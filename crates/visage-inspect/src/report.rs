//! Turning a scan into pictures and files: crops of each top hit's receptive field, one PNG grid
//! per layer (units x their top patches, with the activation values written under them), an
//! HTML page joining the grids, and JSON with every unit's hits.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};
use rayon::prelude::*;
use serde::Serialize;

use crate::field::ReceptiveField;
use crate::font::{draw_text, text_width, GLYPH_H};
use crate::input::{FeatureMap, Input, Patch, PAD_COLOUR};
use crate::units::{Hit, ScanResult};
use crate::InspectError;

const BACKGROUND: Rgb<u8> = Rgb([24, 24, 24]);
const INK: Rgb<u8> = Rgb([235, 235, 235]);
const DIM_INK: Rgb<u8> = Rgb([150, 150, 150]);

/// One hit with the crop of its receptive field.
#[derive(Debug, Clone)]
pub struct PatchHit {
    /// The hit.
    pub hit: Hit,
    /// The input interval per axis that the hit's position sees, unclipped, in input samples.
    pub span: Vec<(isize, isize)>,
    /// The crop of that interval.
    pub patch: Patch,
}

/// The hits of one unit with their crops, strongest first.
#[derive(Debug, Clone)]
pub struct UnitPatches {
    /// The unit (channel) index.
    pub unit: usize,
    /// Its hits.
    pub hits: Vec<PatchHit>,
}

/// One layer's shown units with their crops.
#[derive(Debug, Clone)]
pub struct LayerPatches {
    /// Layer name.
    pub name: String,
    /// Receptive field of the layer.
    pub field: ReceptiveField,
    /// The units shown, in unit order.
    pub units: Vec<UnitPatches>,
}

/// Which units of a layer to show: the `n` whose strongest hit is largest (dead units carry no
/// picture worth a row), listed in unit order. `n >= units` shows them all.
pub fn pick_units(result: &ScanResult, layer: usize, n: usize) -> Vec<usize> {
    let Some(l) = result.layers.get(layer) else {
        return Vec::new();
    };
    let mut best: Vec<(usize, f32)> = l
        .units
        .iter()
        .enumerate()
        .filter_map(|(u, t)| t.sorted().first().map(|h| (u, h.value)))
        .collect();
    best.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut chosen: Vec<usize> = best.into_iter().take(n).map(|(u, _)| u).collect();
    chosen.sort_unstable();
    chosen
}

/// Crops every hit of the chosen units (`units[layer]`) by loading each input that appears once
/// (in parallel). An input that no longer loads is an error: the scan read it moments ago.
pub fn collect_patches<L>(
    result: &ScanResult,
    units: &[Vec<usize>],
    load: L,
) -> Result<Vec<LayerPatches>, InspectError>
where
    L: Fn(usize) -> Result<Input, String> + Sync,
{
    // input -> (layer, unit slot, hit slot, span)
    type Need = (usize, usize, usize, Vec<(isize, isize)>);
    let mut wanted: BTreeMap<usize, Vec<Need>> = BTreeMap::new();
    let mut layers: Vec<LayerPatches> = Vec::new();
    let mut all_hits: Vec<Vec<Vec<Hit>>> = Vec::new();
    for (li, layer) in result.layers.iter().enumerate() {
        let chosen = units.get(li).cloned().unwrap_or_default();
        let mut hits_of_layer = Vec::new();
        for (slot, &u) in chosen.iter().enumerate() {
            let hits = layer.units.get(u).map(|t| t.sorted()).unwrap_or_default();
            for (h, hit) in hits.iter().enumerate() {
                let span = layer.field.span(&hit.position);
                wanted
                    .entry(hit.image)
                    .or_default()
                    .push((li, slot, h, span));
            }
            hits_of_layer.push(hits);
        }
        all_hits.push(hits_of_layer);
        layers.push(LayerPatches {
            name: layer.name.clone(),
            field: layer.field.clone(),
            units: chosen
                .iter()
                .map(|&unit| UnitPatches {
                    unit,
                    hits: Vec::new(),
                })
                .collect(),
        });
    }
    let wanted: Vec<_> = wanted.into_iter().collect();
    type Crop = (usize, usize, usize, Vec<(isize, isize)>, Patch);
    let crops: Vec<Vec<Crop>> = wanted
        .par_iter()
        .map(|(image, needs)| {
            let input = load(*image).map_err(|why| InspectError::Reload { image: *image, why })?;
            needs
                .iter()
                .map(|(li, slot, h, span)| {
                    let patch = input.crop(span).ok_or(InspectError::Axes {
                        expected: span.len(),
                        got: input.axes(),
                    })?;
                    Ok((*li, *slot, *h, span.clone(), patch))
                })
                .collect::<Result<Vec<_>, InspectError>>()
        })
        .collect::<Result<_, _>>()?;
    let mut slots: Vec<Vec<Vec<Option<PatchHit>>>> = all_hits
        .iter()
        .map(|l| l.iter().map(|u| vec![None; u.len()]).collect())
        .collect();
    for (li, slot, h, span, patch) in crops.into_iter().flatten() {
        slots[li][slot][h] = Some(PatchHit {
            hit: all_hits[li][slot][h].clone(),
            span,
            patch,
        });
    }
    for (layer, l_slots) in layers.iter_mut().zip(slots) {
        for (unit, u_slots) in layer.units.iter_mut().zip(l_slots) {
            unit.hits = u_slots.into_iter().flatten().collect();
        }
    }
    Ok(layers)
}

/// A short rendering of an activation value for labels (3 significant digits).
pub fn format_value(v: f32) -> String {
    let a = v.abs();
    if a != 0.0 && !(0.01..10000.0).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Draws a patch into a `cell x cell` square. Images are scaled (nearest neighbour when
/// enlarging, so single pixels of shallow fields stay visible); signals are plotted as a line;
/// volumes show their central slice.
pub fn render_patch(patch: &Patch, cell: u32) -> RgbImage {
    match patch {
        Patch::Image(img) => {
            let filter = if img.width() < cell {
                FilterType::Nearest
            } else {
                FilterType::Triangle
            };
            imageops::resize(img, cell, cell, filter)
        }
        Patch::Signal(s) => plot_signal(s, cell),
        Patch::Volume { dims, data } => {
            let z = dims[0] / 2;
            let plane = &data[z * dims[1] * dims[2]..(z + 1) * dims[1] * dims[2]];
            let (lo, hi) = min_max(plane.iter().flatten().copied());
            let img = RgbImage::from_fn(dims[2] as u32, dims[1] as u32, |x, y| {
                match plane[y as usize * dims[2] + x as usize] {
                    Some(v) => {
                        let g = (255.0 * (v - lo) / (hi - lo).max(f32::EPSILON)) as u8;
                        Rgb([g, g, g])
                    }
                    None => PAD_COLOUR,
                }
            });
            imageops::resize(&img, cell, cell, FilterType::Nearest)
        }
    }
}

fn min_max(values: impl Iterator<Item = f32>) -> (f32, f32) {
    values.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

fn plot_signal(s: &[Option<f32>], cell: u32) -> RgbImage {
    let mut img = RgbImage::from_pixel(cell, cell, Rgb([250, 250, 250]));
    let (lo, hi) = min_max(s.iter().flatten().copied());
    let n = s.len().max(2);
    let to_y = |v: f32| {
        let t = (v - lo) / (hi - lo).max(f32::EPSILON);
        ((1.0 - t) * (cell - 1) as f32).round() as i64
    };
    let mut prev: Option<(i64, i64)> = None;
    for x in 0..cell {
        let i = (x as usize * (n - 1)) / (cell.max(2) - 1) as usize;
        match s.get(i).copied().flatten() {
            Some(v) => {
                let y = to_y(v);
                let (px, py) = prev.unwrap_or((x as i64, y));
                let (a, b) = (py.min(y), py.max(y));
                for yy in a..=b {
                    let xx = if yy == y { x as i64 } else { px };
                    img.put_pixel(
                        xx as u32,
                        yy.clamp(0, cell as i64 - 1) as u32,
                        Rgb([20, 60, 200]),
                    );
                }
                prev = Some((x as i64, y));
            }
            None => {
                for y in 0..cell {
                    img.put_pixel(x, y, PAD_COLOUR);
                }
                prev = None;
            }
        }
    }
    img
}

/// Renders one layer's grid: a title line, then one row per unit (its label, then its patches
/// strongest first, each with its activation value underneath). `cell` is the side of a patch
/// in the grid, pixels.
pub fn render_grid(layer: &LayerPatches, k: usize, cell: u32, title: &str) -> RgbImage {
    let gap = 3u32;
    let label_w = text_width("U0000", 1) + 6;
    let text_h = GLYPH_H + 3;
    let row_h = cell + text_h + gap;
    let title_h = 2 * GLYPH_H + 10;
    let width = (label_w + k as u32 * (cell + gap) + gap).max(text_width(title, 1) + 8);
    let height = title_h + layer.units.len() as u32 * row_h + gap;
    let mut img = RgbImage::from_pixel(width, height, BACKGROUND);
    draw_text(&mut img, 4, 3, title, 1, INK);
    let sub = format!("FIELD {} PX", layer.field.describe());
    draw_text(&mut img, 4, 3 + GLYPH_H as i64 + 3, &sub, 1, DIM_INK);
    for (r, unit) in layer.units.iter().enumerate() {
        let y0 = title_h + r as u32 * row_h;
        draw_text(
            &mut img,
            2,
            (y0 + cell / 2) as i64 - 2,
            &format!("U{}", unit.unit),
            1,
            INK,
        );
        for (c, ph) in unit.hits.iter().take(k).enumerate() {
            let x0 = label_w + c as u32 * (cell + gap);
            let tile = render_patch(&ph.patch, cell);
            imageops::replace(&mut img, &tile, x0 as i64, y0 as i64);
            draw_text(
                &mut img,
                x0 as i64,
                (y0 + cell + 2) as i64,
                &format_value(ph.hit.value),
                1,
                DIM_INK,
            );
        }
    }
    img
}

/// One hit in the JSON report.
#[derive(Debug, Serialize)]
pub struct JsonHit {
    /// The input's name (path as given).
    pub image: String,
    /// Output position, outermost axis first.
    pub position: Vec<usize>,
    /// Activation value.
    pub value: f32,
    /// Receptive field as `[start, end)` per axis, in input samples (unclipped).
    pub field: Vec<(isize, isize)>,
}

/// One unit in the JSON report.
#[derive(Debug, Serialize)]
pub struct JsonUnit {
    /// Unit (channel) index.
    pub unit: usize,
    /// Its top hits, strongest first.
    pub top: Vec<JsonHit>,
}

/// One layer in the JSON report.
#[derive(Debug, Serialize)]
pub struct JsonLayer {
    /// Layer name.
    pub layer: String,
    /// Its receptive field.
    pub receptive_field: ReceptiveField,
    /// Every unit of the layer.
    pub units: Vec<JsonUnit>,
    /// File name of the grid picture, beside the JSON.
    pub grid: String,
}

/// The whole JSON report.
#[derive(Debug, Serialize)]
pub struct JsonReport {
    /// Network name.
    pub model: String,
    /// Inputs scanned (including skipped ones).
    pub inputs: usize,
    /// Inputs skipped, with the reason.
    pub skipped: Vec<(String, String)>,
    /// One entry per layer.
    pub layers: Vec<JsonLayer>,
}

/// File name of a layer's grid: its name with anything but letters and digits replaced.
pub fn grid_file_name(layer: &str) -> String {
    let safe: String = layer
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("units_{safe}.png")
}

/// Builds the JSON report for every unit of every scanned layer.
pub fn json_report(model: &str, result: &ScanResult, names: &[String]) -> JsonReport {
    let name = |i: usize| names.get(i).cloned().unwrap_or_else(|| format!("#{i}"));
    JsonReport {
        model: model.to_string(),
        inputs: names.len(),
        skipped: result
            .skipped
            .iter()
            .map(|(i, why)| (name(*i), why.clone()))
            .collect(),
        layers: result
            .layers
            .iter()
            .map(|l| JsonLayer {
                layer: l.name.clone(),
                receptive_field: l.field.clone(),
                grid: grid_file_name(&l.name),
                units: l
                    .units
                    .iter()
                    .enumerate()
                    .map(|(unit, t)| JsonUnit {
                        unit,
                        top: t
                            .sorted()
                            .into_iter()
                            .map(|h| JsonHit {
                                image: name(h.image),
                                field: l.field.span(&h.position),
                                position: h.position,
                                value: h.value,
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An HTML page showing every layer's grid, shallow to deep.
pub fn html_page(model: &str, inputs: usize, layers: &[LayerPatches]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{m}: top patches per unit</title>\
         <style>body{{background:#181818;color:#ddd;font-family:sans-serif}}img{{image-rendering:pixelated;max-width:100%}}</style>\
         </head><body>\n<h1>{m}: the top patches of each unit</h1>\n<p>{inputs} inputs scanned. Each row is \
         one unit; its patches are the receptive fields of its strongest responses (one per input), strongest \
         first, with the activation under each. Magenta marks padding outside the input. Details: \
         <a href=\"units.json\">units.json</a>.</p>\n",
        m = escape(model)
    );
    for l in layers {
        let _ = writeln!(
            h,
            "<h2>{}</h2>\n<p>receptive field {} px; {} units shown</p>\n<img src=\"{}\" alt=\"{}\">",
            escape(&l.name),
            escape(&l.field.describe()),
            l.units.len(),
            grid_file_name(&l.name),
            escape(&l.name)
        );
    }
    h.push_str("</body></html>\n");
    h
}

/// Writes the grids, `index.html` and `units.json` into `dir` (created if needed).
pub fn write_report(
    dir: &Path,
    model: &str,
    result: &ScanResult,
    layers: &[LayerPatches],
    names: &[String],
    cell: u32,
) -> Result<(), InspectError> {
    let io = |e: std::io::Error| InspectError::Io {
        path: dir.display().to_string(),
        source: e,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    for l in layers {
        let k = l.units.iter().map(|u| u.hits.len()).max().unwrap_or(0);
        let title = format!("{model} {}", l.name);
        let img = render_grid(l, k, cell, &title);
        save_png(&img, &dir.join(grid_file_name(&l.name)))?;
    }
    let json = serde_json::to_string_pretty(&json_report(model, result, names))
        .map_err(|e| io(std::io::Error::other(e)))?;
    std::fs::write(dir.join("units.json"), json).map_err(io)?;
    std::fs::write(
        dir.join("index.html"),
        html_page(model, names.len(), layers),
    )
    .map_err(io)?;
    Ok(())
}

/// Saves a PNG (maximum compression: the grids are meant to be kept in documentation), naming
/// the path in errors.
pub fn save_png(img: &RgbImage, path: &Path) -> Result<(), InspectError> {
    use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
    use image::ImageEncoder;
    let err = |e: std::io::Error| InspectError::Io {
        path: path.display().to_string(),
        source: e,
    };
    let file = std::fs::File::create(path).map_err(err)?;
    let encoder = PngEncoder::new_with_quality(
        std::io::BufWriter::new(file),
        CompressionType::Best,
        PngFilter::Adaptive,
    );
    encoder
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| err(std::io::Error::other(e)))
}

/// A perceptually ordered colour map (dark blue through red to yellow) for `t` in 0..=1.
pub fn heat(t: f32) -> Rgb<u8> {
    const STOPS: [[f32; 3]; 5] = [
        [0.0, 0.0, 4.0],
        [60.0, 15.0, 110.0],
        [180.0, 55.0, 100.0],
        [250.0, 140.0, 40.0],
        [252.0, 253.0, 191.0],
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    } * (STOPS.len() - 1) as f32;
    let i = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - i as f32;
    let c = |k: usize| (STOPS[i][k] + (STOPS[i + 1][k] - STOPS[i][k]) * f) as u8;
    Rgb([c(0), c(1), c(2)])
}

/// Feature maps of several layers as one picture: per layer a title and a grid of its first
/// `max_channels` channels (each normalised to its own range, grey), each map scaled to `tile`
/// pixels on its longer side. 1D maps are drawn as one-pixel-high strips.
pub fn render_activations(
    layers: &[(String, FeatureMap)],
    max_channels: usize,
    tile: u32,
) -> RgbImage {
    let cols = 16u32;
    let gap = 2u32;
    let title_h = GLYPH_H * 2 + 6;
    let mut blocks = Vec::new();
    for (name, map) in layers {
        let (h, w) = match map.dims.as_slice() {
            [w] => (1, *w),
            [h, w] => (*h, *w),
            [.., h, w] => (*h, *w),
            [] => (1, 1),
        };
        let scale = tile as f32 / h.max(w).max(1) as f32;
        let (th, tw) = (
            ((h as f32 * scale) as u32).max(1),
            ((w as f32 * scale) as u32).max(1),
        );
        let n = map.channels.min(max_channels) as u32;
        let rows = n.div_ceil(cols).max(1);
        let mut block = RgbImage::from_pixel(
            cols * (tw + gap) + gap,
            title_h + rows * (th + gap) + gap,
            BACKGROUND,
        );
        let title = format!("{name}: {} CHANNELS, {h}X{w}", map.channels);
        draw_text(&mut block, 4, 4, &title, 2, INK);
        let plane_len = h * w;
        for c in 0..n as usize {
            // Volumes show their central slice.
            let plane = map.channel(c);
            let start = (plane.len() / plane_len.max(1) / 2) * plane_len;
            let plane = &plane[start..start + plane_len];
            let (lo, hi) = min_max(plane.iter().copied());
            let small = RgbImage::from_fn(w as u32, h as u32, |x, y| {
                let v = plane[y as usize * w + x as usize];
                let g = (255.0 * (v - lo) / (hi - lo).max(f32::EPSILON)) as u8;
                Rgb([g, g, g])
            });
            // Enlarged maps keep their cells square and sharp; reduced ones are averaged.
            let filter = if tw >= w as u32 {
                FilterType::Nearest
            } else {
                FilterType::Triangle
            };
            let big = imageops::resize(&small, tw, th, filter);
            let (r, col) = (c as u32 / cols, c as u32 % cols);
            imageops::replace(
                &mut block,
                &big,
                (gap + col * (tw + gap)) as i64,
                (title_h + gap + r * (th + gap)) as i64,
            );
        }
        blocks.push(block);
    }
    stack(&blocks)
}

fn stack(blocks: &[RgbImage]) -> RgbImage {
    let w = blocks.iter().map(|b| b.width()).max().unwrap_or(1);
    let h = blocks.iter().map(|b| b.height()).sum::<u32>().max(1);
    let mut out = RgbImage::from_pixel(w, h, BACKGROUND);
    let mut y = 0;
    for b in blocks {
        imageops::replace(&mut out, b, 0, y as i64);
        y += b.height();
    }
    out
}

/// A Gram matrix (`channels x channels`, row-major) as a heat map, each entry a square of
/// about `side / channels` pixels (at least 1), scaled from the smallest to the largest entry,
/// under a title.
pub fn render_gram(gram: &[f32], channels: usize, side: u32, title: &str) -> RgbImage {
    let px = (side / channels.max(1) as u32).max(1);
    let n = channels as u32 * px;
    let title_h = GLYPH_H * 2 + 8;
    let mut img = RgbImage::from_pixel(n.max(text_width(title, 2) + 8), n + title_h, BACKGROUND);
    draw_text(&mut img, 4, 4, title, 2, INK);
    let (lo, hi) = min_max(gram.iter().copied());
    for i in 0..channels {
        for j in 0..channels {
            let colour = heat((gram[i * channels + j] - lo) / (hi - lo).max(f32::EPSILON));
            for dy in 0..px {
                for dx in 0..px {
                    img.put_pixel(j as u32 * px + dx, title_h + i as u32 * px + dy, colour);
                }
            }
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_short() {
        assert_eq!(format_value(0.5321), "0.53");
        assert_eq!(format_value(12.34), "12.3");
        assert_eq!(format_value(123.4), "123");
        assert_eq!(format_value(-0.0012), "-1.2e-3");
        assert_eq!(heat(0.0), Rgb([0, 0, 4]));
        assert_eq!(grid_file_name("features.4"), "units_features_4.png");
    }
}
