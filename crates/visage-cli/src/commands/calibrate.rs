//! `visage calibrate`: τ from labelled pairs, with the ROC, EER and TAR at a FAR.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use serde_json::json;
use visage_eval::faces::{FaceChoice, PipelineEncoder};
use visage_eval::identify::draw_pairs;
use visage_eval::lfw::parse_pairs;
use visage_eval::plot::write_roc_png;
use visage_eval::roc::{rates_at, roc, threshold_for_far};
use visage_eval::runner::encode_all;
use visage_gallery::Gallery;

use super::gallery_db::{db_path, json_f32, open_cache, person_folders, progress_bar};
use super::{decode_options, detect_options, load_models};
use crate::args::CalibrateArgs;

/// Seed of the impostor draw, so that a calibration on the same folder repeats exactly.
const PAIR_SEED: u64 = 0x7669_7361_6765;

pub fn run(args: CalibrateArgs) -> anyhow::Result<ExitCode> {
    if !(args.target_far > 0.0 && args.target_far <= 1.0) {
        bail!(
            "--target-far must be a fraction in (0, 1], got {}",
            args.target_far
        );
    }
    let pairs: Vec<(PathBuf, PathBuf, bool)> = match (&args.pairs, &args.images, &args.dir) {
        (Some(file), Some(images), _) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            parse_pairs(&text, images)?
                .into_iter()
                .map(|p| (p.a, p.b, p.same))
                .collect()
        }
        (_, _, Some(dir)) => {
            let people = person_folders(dir)?;
            let counts: Vec<usize> = people.iter().map(|(_, v)| v.len()).collect();
            draw_pairs(&counts, args.pairs_per_person, PAIR_SEED)
                .into_iter()
                .map(|((pa, ia), (pb, ib), same)| {
                    (people[pa].1[ia].clone(), people[pb].1[ib].clone(), same)
                })
                .collect()
        }
        _ => bail!("give --pairs FILE --images DIR, or --dir DIR"),
    };
    let models = load_models(&args.models)?;
    let db = db_path(&args.db)?;
    // Opened first so that a gallery of other models fails before the long encoding run.
    let mut gallery = if args.save {
        Some(Gallery::open(&db, models.manifest_id())?)
    } else {
        None
    };
    let decode = decode_options(&args.detect);
    let encoder = PipelineEncoder::new(
        &models,
        detect_options(&args.detect),
        decode,
        FaceChoice::Largest,
    );
    let mut cache = open_cache(&args.cache)?;
    let paths: Vec<PathBuf> = pairs
        .iter()
        .flat_map(|(a, b, _)| [a.clone(), b.clone()])
        .collect();
    let mut unique = paths.clone();
    unique.sort();
    unique.dedup();
    let bar = progress_bar(unique.len(), "images");
    let (encodings, stats) = encode_all(&encoder, &paths, cache.as_mut(), &|n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    let (mut genuine, mut impostor, mut dropped) = (Vec::new(), Vec::new(), 0usize);
    for (a, b, same) in &pairs {
        match (
            encodings.get(a).and_then(|e| e.encoding),
            encodings.get(b).and_then(|e| e.encoding),
        ) {
            (Some(x), Some(y)) => {
                let d = visage_gallery::squared_distance(&x, &y).sqrt();
                if *same {
                    genuine.push(d)
                } else {
                    impostor.push(d)
                }
            }
            _ => dropped += 1,
        }
    }
    if genuine.is_empty() || impostor.is_empty() {
        bail!(
            "calibration needs both genuine and impostor pairs with a face in each image; got {} genuine and {} impostor ({dropped} pairs dropped)",
            genuine.len(),
            impostor.len()
        );
    }
    let curve = roc(&genuine, &impostor);
    let op =
        threshold_for_far(&genuine, &impostor, args.target_far).context("no impostor pairs")?;
    let at_1e3 = threshold_for_far(&genuine, &impostor, 1e-3);
    let grid: Vec<_> = (0..=200)
        .map(|i| rates_at(&genuine, &impostor, i as f32 * 0.01))
        .collect();
    let summary = json!({
        "genuine_pairs": genuine.len(), "impostor_pairs": impostor.len(), "dropped_pairs": dropped,
        "images": stats.images, "images_without_face": stats.without_face, "images_failed": stats.failed.len(),
        "images_from_cache": stats.from_cache,
        "eer": curve.eer, "eer_threshold": json_f32(curve.eer_threshold),
        "tar_at_far_1e-3": at_1e3.map(|o| o.tar), "threshold_at_far_1e-3": at_1e3.map(|o| json_f32(o.threshold)),
        "target_far": args.target_far, "threshold": json_f32(op.threshold), "far": op.far, "tar": op.tar,
        "saved_to": if args.save { Some(db.display().to_string()) } else { None },
        "min_far_resolution": 1.0 / impostor.len() as f64,
    });
    if let Some(out) = &args.out {
        let mut full = summary.clone();
        full["roc"] = json!(grid);
        std::fs::write(out, serde_json::to_string_pretty(&full)?)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    if let Some(png) = &args.plot {
        write_roc_png(&curve, png)?;
    }
    if let Some(g) = gallery.as_mut() {
        g.set_threshold(op.threshold)?;
    }
    if args.json {
        println!("{summary}");
    } else {
        println!(
            "{} genuine and {} impostor pairs ({dropped} dropped: no face); {} images, {} from the cache",
            genuine.len(),
            impostor.len(),
            stats.images,
            stats.from_cache
        );
        println!(
            "EER {:.2}% at τ {:.3}",
            curve.eer * 100.0,
            curve.eer_threshold
        );
        if let Some(o) = at_1e3 {
            println!("TAR {:.4} at FAR 1e-3 (τ {:.3})", o.tar, o.threshold);
        }
        println!(
            "τ {:.3} for target FAR {}: measured FAR {:.5}, TAR {:.4}{}",
            op.threshold,
            args.target_far,
            op.far,
            op.tar,
            if args.save {
                format!("; saved to {}", db.display())
            } else {
                String::new()
            }
        );
        if args.target_far < 1.0 / impostor.len() as f64 {
            eprintln!(
                "visage: warning: {} impostor pairs cannot measure a FAR below {:.1e}; τ is the strictest these pairs allow",
                impostor.len(),
                1.0 / impostor.len() as f64
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
