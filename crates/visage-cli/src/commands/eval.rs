//! `visage eval lfw` and `visage eval identify`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use serde_json::json;
use visage_eval::cache::ImageEncoding;
use visage_eval::faces::{FaceChoice, PipelineEncoder};
use visage_eval::identify::open_set;
use visage_eval::lfw::{distinct_images, parse_pairs, ten_fold, Pair};
use visage_eval::plot::write_roc_png;
use visage_eval::roc::{roc, threshold_for_far};
use visage_eval::runner::{encode_all, EncodeStats};
use visage_face::FaceModels;
use visage_gallery::Encoding;

use super::gallery_db::{open_cache, person_folders, progress_bar};
use super::{decode_options, detect_options, load_models_on};
use crate::args::{CacheArgs, DetectArgs, EvalArgs, EvalCommand, EvalIdentifyArgs, EvalLfwArgs};

pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    match args.which {
        EvalCommand::Lfw(a) => lfw(a),
        EvalCommand::Identify(a) => identify(a),
    }
}

fn failures(stats: &EncodeStats) -> anyhow::Result<()> {
    if stats.failed.is_empty() {
        return Ok(());
    }
    let first: Vec<String> = stats
        .failed
        .iter()
        .take(5)
        .map(|(_, m)| m.clone())
        .collect();
    bail!(
        "{} images could not be read or encoded (the others are cached): {}",
        stats.failed.len(),
        first.join("; ")
    )
}

/// LFW's pairs (`pairs.txt` against the images folder) and the encodings of their images, as
/// the peer's protocol chooses faces, through the encoding cache; an error if any image fails.
pub(super) fn encode_lfw_pairs(
    models: &FaceModels,
    pairs_file: &Path,
    images: &Path,
    detect: &DetectArgs,
    cache: &CacheArgs,
) -> anyhow::Result<(Vec<Pair>, HashMap<PathBuf, ImageEncoding>, EncodeStats)> {
    let text = std::fs::read_to_string(pairs_file)
        .with_context(|| format!("cannot read {}", pairs_file.display()))?;
    let pairs = parse_pairs(&text, images)?;
    let encoder = PipelineEncoder::new(
        models,
        detect_options(detect),
        decode_options(detect),
        FaceChoice::LfwCentreOrBox,
    );
    let mut cache = open_cache(cache)?;
    let paths = distinct_images(&pairs);
    let bar = progress_bar(paths.len(), "images");
    let (encodings, stats) = encode_all(&encoder, &paths, cache.as_mut(), &|n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    failures(&stats)?;
    Ok((pairs, encodings, stats))
}

fn lfw(args: EvalLfwArgs) -> anyhow::Result<ExitCode> {
    let models = load_models_on(&args.models, args.device)?;
    let start = Instant::now();
    let (pairs, encodings, stats) = encode_lfw_pairs(
        &models,
        &args.pairs,
        &args.images,
        &args.detect,
        &args.cache,
    )?;
    let mut items = Vec::with_capacity(pairs.len());
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    for p in &pairs {
        let get = |path: &PathBuf| encodings.get(path).and_then(|e| e.encoding);
        let (Some(a), Some(b)) = (get(&p.a), get(&p.b)) else {
            bail!(
                "no encoding for a pair of fold {}: {} / {}",
                p.fold + 1,
                p.a.display(),
                p.b.display()
            );
        };
        let d = visage_gallery::squared_distance(&a, &b).sqrt();
        items.push((p.fold, d, p.same));
        if p.same {
            genuine.push(d)
        } else {
            impostor.push(d)
        }
    }
    let protocol = ten_fold(&items);
    let curve = roc(&genuine, &impostor);
    let at_1e3 = threshold_for_far(&genuine, &impostor, 1e-3);
    let wall = start.elapsed().as_secs_f64();
    if let Some(png) = &args.plot {
        write_roc_png(&curve, png)?;
    }
    let threads = rayon::current_num_threads();
    if args.json {
        let line = json!({
            "pairs": pairs.len(), "folds": protocol.folds,
            "mean_accuracy": protocol.mean_accuracy, "std_accuracy": protocol.std_accuracy,
            "images": stats.images, "images_without_face": stats.without_face,
            "images_from_cache": stats.from_cache, "images_encoded": stats.encoded,
            "seconds_per_image": stats.seconds_per_image(), "threads": threads, "wall_seconds": wall,
            "eer": curve.eer, "eer_threshold": curve.eer_threshold,
            "tar_at_far_1e-3": at_1e3.map(|o| o.tar), "threshold_at_far_1e-3": at_1e3.map(|o| o.threshold),
            "manifest_id": models.manifest_id(),
        });
        println!("{line}");
    } else {
        println!(
            "LFW View 2: {} pairs in {} folds; {} images, {} without a face (fallback box 75,75,175,175)",
            pairs.len(),
            protocol.folds.len(),
            stats.images,
            stats.without_face
        );
        println!(
            "accuracy {:.2}% ± {:.2} (mean ± std over {} folds)",
            protocol.mean_accuracy * 100.0,
            protocol.std_accuracy * 100.0,
            protocol.folds.len()
        );
        println!("fold  threshold  accuracy");
        for (i, f) in protocol.folds.iter().enumerate() {
            println!(
                "{:>4}  {:>9.3}  {:>7.2}%",
                i + 1,
                f.threshold,
                f.accuracy * 100.0
            );
        }
        println!(
            "EER {:.2}% at τ {:.3}",
            curve.eer * 100.0,
            curve.eer_threshold
        );
        if let Some(o) = at_1e3 {
            println!(
                "TAR {:.4} at FAR 1e-3 (τ {:.3}; {} impostor pairs)",
                o.tar,
                o.threshold,
                impostor.len()
            );
        }
        match stats.seconds_per_image() {
            Some(s) => println!(
                "time: {} images encoded in {:.1} s = {s:.3} s per image ({threads} threads); {} from the cache",
                stats.encoded, stats.pipeline_seconds, stats.from_cache
            ),
            None => println!("time: all {} images from the cache; {wall:.2} s in all", stats.images),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn identify(args: EvalIdentifyArgs) -> anyhow::Result<ExitCode> {
    if args.threshold.iter().any(|t| !(t.is_finite() && *t > 0.0)) {
        bail!("--threshold values must be finite Euclidean distances > 0");
    }
    let mut people = person_folders(&args.dir)?;
    if let Some(n) = args.max_people {
        people.truncate(n);
    }
    let models = load_models_on(&args.models, args.device)?;
    let encoder = PipelineEncoder::new(
        &models,
        detect_options(&args.detect),
        decode_options(&args.detect),
        FaceChoice::Centre,
    );
    let mut cache = open_cache(&args.cache)?;
    let paths: Vec<PathBuf> = people.iter().flat_map(|(_, v)| v.iter().cloned()).collect();
    let bar = progress_bar(paths.len(), "images");
    let (encodings, stats) = encode_all(&encoder, &paths, cache.as_mut(), &|n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    failures(&stats)?;
    let sets: Vec<Vec<Encoding>> = people
        .iter()
        .map(|(_, v)| {
            v.iter()
                .filter_map(|p| encodings.get(p).and_then(|e| e.encoding))
                .collect()
        })
        .filter(|v: &Vec<Encoding>| !v.is_empty())
        .collect();
    let report = open_set(&sets, &args.threshold);
    if report.genuine_probes == 0 {
        bail!(
            "nobody in {} has two photos with a face: nothing to probe",
            args.dir.display()
        );
    }
    if args.json {
        let mut v = serde_json::to_value(&report)?;
        v["images"] = json!(stats.images);
        v["images_without_face"] = json!(stats.without_face);
        v["images_from_cache"] = json!(stats.from_cache);
        println!("{v}");
    } else {
        println!(
            "{} people enrolled (one photo each); {} probes of enrolled people, {} of people never enrolled; {} images without a face",
            report.enrolled, report.genuine_probes, report.stranger_probes, stats.without_face
        );
        println!("rank-1 accuracy {:.2}%", report.rank1_accuracy * 100.0);
        println!("τ      correct  not-recognized  misidentified  false-accepts (of strangers)");
        for p in &report.points {
            println!(
                "{:.3}  {:>6.2}%  {:>13.2}%  {:>12.2}%  {:>6.2}% ({} of {})",
                p.threshold,
                p.dir * 100.0,
                p.frr * 100.0,
                p.misidentification_rate * 100.0,
                p.far * 100.0,
                p.false_accepts,
                report.stranger_probes
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
