//! `visage identify IMAGE...`: every face, named from the gallery or "not recognized" above τ.

use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;
use rayon::prelude::*;
use serde_json::{json, Value};
use visage_face::{Face, Stage};
use visage_gallery::{Candidate, Gallery, IndexKind};
use visage_image::RgbImage;

use super::gallery_db::{db_path, json_f32, progress_bar};
use super::{detect_options, display, load_models};
use crate::args::{IdentifyArgs, IndexChoice};
use crate::images;

const IMAGES_PER_ROUND: usize = 8;

pub fn run(args: IdentifyArgs) -> anyhow::Result<ExitCode> {
    if let Some(t) = args.threshold {
        if !(t.is_finite() && t > 0.0) {
            bail!("--threshold must be a finite Euclidean distance > 0, got {t}");
        }
    }
    let path = db_path(&args.db)?;
    // Check the gallery before loading models so a wrong --db fails fast; the manifest check
    // follows once the models are known.
    let gallery = Gallery::open_existing(&path)?;
    let models = load_models(&args.models)?;
    gallery.check_manifest(models.manifest_id())?;
    let threshold = match args.threshold {
        Some(t) => t,
        None => gallery.threshold()?,
    };
    let kind = match args.index {
        IndexChoice::Auto => IndexKind::Auto,
        IndexChoice::Exact => IndexKind::Exact,
        IndexChoice::Hnsw => IndexKind::Hnsw,
    };
    let searcher = gallery.searcher(kind)?;
    if searcher.is_empty() {
        bail!(
            "the gallery {} is empty: enroll people first (visage enroll NAME IMAGE...)",
            path.display()
        );
    }
    let options = detect_options(&args.detect);
    let bar = progress_bar(args.images.len(), "images");
    let stdout = std::io::stdout();
    let mut failures = 0usize;
    for round in args.images.chunks(IMAGES_PER_ROUND) {
        let decoded: Vec<anyhow::Result<RgbImage>> = round
            .par_iter()
            .map(|p| images::load(p, &args.detect))
            .collect();
        let ok: Vec<&RgbImage> = decoded.iter().filter_map(|d| d.as_ref().ok()).collect();
        let mut analysed = models
            .analyze_many(&ok, &options, Stage::Encode)?
            .into_iter();
        let mut out = stdout.lock();
        for (p, d) in round.iter().zip(&decoded) {
            match d {
                Err(e) => {
                    failures += 1;
                    bar.suspend(|| eprintln!("visage: error: {e:#}"));
                }
                Ok(_) => {
                    let faces = analysed.next().unwrap_or_default();
                    let results: Vec<(&Face, Vec<Candidate>)> = faces
                        .iter()
                        .map(|f| {
                            (
                                f,
                                f.encoding
                                    .map(|e| searcher.identify(&e, args.top as usize))
                                    .unwrap_or_default(),
                            )
                        })
                        .collect();
                    if args.json {
                        writeln!(out, "{}", json_line(&display(p), threshold, &results))?;
                    } else {
                        write_text(&mut out, &display(p), threshold, &results)?;
                    }
                }
            }
            bar.inc(1);
        }
        out.flush()?;
    }
    bar.finish_and_clear();
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn recognized(candidates: &[Candidate], threshold: f32) -> Option<&Candidate> {
    candidates.first().filter(|c| c.distance <= threshold)
}

fn json_line(file: &str, threshold: f32, results: &[(&Face, Vec<Candidate>)]) -> Value {
    let faces: Vec<Value> = results
        .iter()
        .map(|(f, c)| {
            let r = &f.rect;
            json!({
                "box": [r.left, r.top, r.right, r.bottom],
                "name": recognized(c, threshold).map(|c| c.name.clone()),
                "recognized": recognized(c, threshold).is_some(),
                "candidates": c.iter().map(|c| json!({ "name": c.name, "distance": json_f32(c.distance) })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "file": file, "threshold": json_f32(threshold), "faces": faces })
}

fn write_text(
    out: &mut impl Write,
    file: &str,
    threshold: f32,
    results: &[(&Face, Vec<Candidate>)],
) -> std::io::Result<()> {
    let plural = if results.len() == 1 { "face" } else { "faces" };
    writeln!(out, "{file}: {} {plural}", results.len())?;
    for (i, (f, c)) in results.iter().enumerate() {
        let r = &f.rect;
        let verdict = match (recognized(c, threshold), c.first()) {
            (Some(best), _) => format!(
                "{} (distance {:.3} <= τ {threshold:.3})",
                best.name, best.distance
            ),
            (None, Some(best)) => format!(
                "not recognized (nearest {} at {:.3} > τ {threshold:.3})",
                best.name, best.distance
            ),
            (None, None) => "not recognized (no encoding)".to_string(),
        };
        writeln!(
            out,
            "  face {} [{}, {}, {}, {}]: {verdict}",
            i + 1,
            r.left,
            r.top,
            r.right,
            r.bottom
        )?;
        for (k, cand) in c.iter().enumerate().skip(1) {
            writeln!(out, "    {}. {} {:.3}", k + 1, cand.name, cand.distance)?;
        }
    }
    Ok(())
}
