//! `visage train faces`: an embedding trained on small grey LFW face chips of the people of 9
//! folds, tested on the 10th fold's pairs with a threshold chosen on the 9 folds' pairs.

use burn::tensor::Device;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use serde::Serialize;
use serde_json::json;
use visage_eval::chips::{extract_all, ChipCache, ChipExtractor, ChipStats, GreyChip};
use visage_eval::faces::{FaceChoice, PipelineEncoder};
use visage_eval::folds::{FoldOutcome, KFold};
use visage_eval::lfw::{distinct_images, parse_pairs, ten_fold, Pair};
use visage_eval::lfw_split::{held_out_accuracy, split_by_fold, FoldSplit};
use visage_eval::runner::ImageEncoder;
use visage_face::FaceModels;
use visage_train::checkpoint;
use visage_train::faces::{face_config, people_dataset, squared_distance};
use visage_train::train::{embed, TrainConfig};

use super::super::gallery_db::{open_cache, progress_bar};
use super::super::{decode_options, detect_options, load_models};
use crate::args::TrainFacesArgs;

/// The outcome on one held-out fold.
#[derive(Debug, Clone, Serialize)]
struct FoldReport {
    /// 1-based.
    fold: usize,
    /// People trained on (with at least 2 chips) and their chips.
    train_people: usize,
    train_chips: usize,
    /// Threshold on the squared distance, chosen on the other folds' pairs, and the accuracies.
    squared_distance_threshold: f64,
    train_pairs_accuracy: f64,
    test_pairs: usize,
    accuracy: f64,
    /// The same fold's accuracy of dlib's encodings with `visage eval lfw`'s threshold search,
    /// when the encoding cache holds every image.
    dlib_accuracy: Option<f64>,
    train_seconds: f64,
    final_loss: f32,
    out: PathBuf,
}

pub fn run(args: TrainFacesArgs) -> anyhow::Result<ExitCode> {
    super::in_pool(args.training.threads, || run_in_pool(&args))
}

fn config(args: &TrainFacesArgs) -> anyhow::Result<TrainConfig> {
    let mut c = face_config(super::method(&args.method, &args.training)?, args.side);
    super::apply_options(&mut c, &args.training)?;
    if args.training.no_augment {
        // Faces distort with flips as well: none of them.
        c.augment = visage_train::augment::Augment::NONE;
    }
    c.checkpoint_every = 0;
    Ok(c)
}

fn run_in_pool(args: &TrainFacesArgs) -> anyhow::Result<ExitCode> {
    let cfg = config(args)?;
    let text = std::fs::read_to_string(&args.pairs)
        .with_context(|| format!("cannot read the pairs file {}", args.pairs.display()))?;
    let pairs = parse_pairs(&text, &args.images)?;
    let folds = pairs.iter().map(|p| p.fold + 1).max().unwrap_or(0);
    let test_folds: Vec<usize> = if args.all_folds {
        (0..folds).collect()
    } else {
        if args.test_fold == 0 || args.test_fold > folds {
            bail!(
                "--test-fold {} does not exist: the pairs file has folds 1 to {folds}",
                args.test_fold
            );
        }
        vec![args.test_fold - 1]
    };
    let device = args.training.device.device.device()?;
    let models = load_models(&args.models)?;
    let start = Instant::now();
    let (chips, stats) = lfw_chips(&models, &pairs, args)?;
    let chip_seconds = start.elapsed().as_secs_f64();
    let dlib = dlib_fold_accuracies(&models, &pairs, args)?;
    let mut reports = Vec::new();
    for &fold in &test_folds {
        let split = split_by_fold(&pairs, fold)?;
        let out = if args.all_folds {
            args.out.join(format!("fold-{:02}", fold + 1))
        } else {
            args.out.clone()
        };
        let report = train_and_test(&device, &cfg, &split, &chips, &out, args.side)?;
        let report = FoldReport {
            dlib_accuracy: dlib.as_ref().map(|d| d[fold]),
            ..report
        };
        add_to_summary(&out.join("summary.json"), &report)?;
        if !args.training.json {
            print_fold(&report);
        }
        reports.push(report);
    }
    let k = KFold::from_folds(
        reports
            .iter()
            .map(|r| FoldOutcome {
                threshold: r.squared_distance_threshold,
                train_accuracy: r.train_pairs_accuracy,
                accuracy: r.accuracy,
            })
            .collect(),
    );
    let dlib_mean = dlib
        .as_ref()
        .map(|d| test_folds.iter().map(|&f| d[f]).sum::<f64>() / test_folds.len().max(1) as f64);
    let result = json!({
        "method": cfg.method.name(), "side": args.side, "steps": cfg.steps,
        "folds": reports, "mean_accuracy": k.mean_accuracy, "std_accuracy": k.std_accuracy,
        "dlib_mean_accuracy": dlib_mean,
        "chips": stats, "chip_seconds": chip_seconds,
        "wall_seconds": start.elapsed().as_secs_f64(), "threads": args.training.threads,
    });
    if args.all_folds {
        let path = args.out.join("summary.json");
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))?;
        std::fs::write(&path, serde_json::to_string_pretty(&result)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.training.json {
        println!("{result}");
    } else {
        if args.all_folds {
            println!(
                "{} folds: {:.2}% ± {:.2} (mean ± std){}",
                reports.len(),
                k.mean_accuracy * 100.0,
                k.std_accuracy * 100.0,
                dlib_mean
                    .map(|m| format!("; dlib threshold {:.2}%", m * 100.0))
                    .unwrap_or_default()
            );
        }
        println!(
            "chips: {} images ({} from the cache, {} without a detection: fallback box), {:.0} s; {:.0} s in all",
            stats.images,
            stats.from_cache,
            stats.without_face,
            chip_seconds,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Grey chips of every image of the pairs, as `visage eval lfw` chooses faces, through the chip
/// cache; an error if any image cannot be read.
fn lfw_chips(
    models: &FaceModels,
    pairs: &[Pair],
    args: &TrainFacesArgs,
) -> anyhow::Result<(HashMap<PathBuf, GreyChip>, ChipStats)> {
    let extractor = ChipExtractor::new(
        models,
        detect_options(&args.detect),
        decode_options(&args.detect),
        FaceChoice::LfwCentreOrBox,
        args.side,
    )?;
    let mut cache = if args.cache.no_cache {
        None
    } else {
        let dir = match &args.chips {
            Some(d) => d.clone(),
            None => dirs::cache_dir()
                .map(|d| d.join("visage").join("chips"))
                .ok_or_else(|| {
                    anyhow!(
                        "cannot find the user's cache directory; pass --chips DIR or --no-cache"
                    )
                })?,
        };
        Some(ChipCache::open(&dir, &extractor)?)
    };
    let paths = distinct_images(pairs);
    let bar = progress_bar(paths.len(), "chips");
    let (chips, stats) = extract_all(&extractor, &paths, cache.as_mut(), &|n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    if !stats.failed.is_empty() {
        let first: Vec<&str> = stats
            .failed
            .iter()
            .take(3)
            .map(|(_, m)| m.as_str())
            .collect();
        bail!(
            "{} images could not be read (the others are cached): {}",
            stats.failed.len(),
            first.join("; ")
        );
    }
    if chips.is_empty() {
        bail!("no face chip in any image of {}", args.pairs.display());
    }
    Ok((chips, stats))
}

/// Per fold (0-based), the accuracy of dlib's encodings under `visage eval lfw`'s protocol,
/// when the encoding cache holds every image (this build's `visage eval lfw` fills it); `None`
/// otherwise, without encoding anything.
fn dlib_fold_accuracies(
    models: &FaceModels,
    pairs: &[Pair],
    args: &TrainFacesArgs,
) -> anyhow::Result<Option<Vec<f64>>> {
    let Some(cache) = open_cache(&args.cache)? else {
        return Ok(None);
    };
    let encoder = PipelineEncoder::new(
        models,
        detect_options(&args.detect),
        decode_options(&args.detect),
        FaceChoice::LfwCentreOrBox,
    );
    let key = encoder.cache_key();
    let mut known = HashMap::new();
    let mut items = Vec::with_capacity(pairs.len());
    for p in pairs {
        let mut get = |path: &PathBuf| -> Option<visage_gallery::Encoding> {
            if let Some(e) = known.get(path) {
                return Some(*e);
            }
            let e = cache.get(path, &key)?.encoding?;
            known.insert(path.clone(), e);
            Some(e)
        };
        let (Some(a), Some(b)) = (get(&p.a), get(&p.b)) else {
            return Ok(None);
        };
        let d = visage_gallery::squared_distance(&a, &b).sqrt();
        items.push((p.fold, d, p.same));
    }
    Ok(Some(
        ten_fold(&items).folds.iter().map(|f| f.accuracy).collect(),
    ))
}

fn train_and_test(
    device: &Device,
    cfg: &TrainConfig,
    split: &FoldSplit,
    chips: &HashMap<PathBuf, GreyChip>,
    out: &Path,
    side: usize,
) -> anyhow::Result<FoldReport> {
    let people = split.train_people.iter().map(|(name, images)| {
        let values = images
            .iter()
            .filter_map(|p| chips.get(p).map(GreyChip::values))
            .collect();
        (name.clone(), values)
    });
    let data = people_dataset(side, people, 2);
    if data.classes.len() < cfg.classes_per_batch {
        bail!(
            "only {} training people have 2 face chips or more; a batch needs {}",
            data.classes.len(),
            cfg.classes_per_batch
        );
    }
    let summary = super::train_with_progress(device, cfg, &data, out, None)?;
    let (model, meta) = checkpoint::load(&summary.checkpoint, &checkpoint::plain_device())?;
    let mut images: Vec<&PathBuf> = split
        .train_pairs
        .iter()
        .chain(&split.test_pairs)
        .flat_map(|p| [&p.a, &p.b])
        .collect();
    images.sort();
    images.dedup();
    let inputs: Vec<Vec<f32>> = images
        .iter()
        .map(|p| {
            chips
                .get(*p)
                .map(GreyChip::values)
                .ok_or_else(|| anyhow!("no face chip for {}", p.display()))
        })
        .collect::<anyhow::Result<_>>()?;
    let embeddings = embed(&model, &meta.config, &inputs)?;
    let index: HashMap<&PathBuf, usize> = images.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let scores = |pairs: &[Pair]| -> Vec<(f64, bool)> {
        pairs
            .iter()
            .map(|p| {
                let (a, b) = (&embeddings[index[&p.a]], &embeddings[index[&p.b]]);
                (f64::from(squared_distance(a, b)), p.same)
            })
            .collect()
    };
    let outcome = held_out_accuracy(&scores(&split.train_pairs), &scores(&split.test_pairs));
    Ok(FoldReport {
        fold: split.test_fold + 1,
        train_people: data.classes.len(),
        train_chips: data.image_count(),
        squared_distance_threshold: outcome.threshold,
        train_pairs_accuracy: outcome.train_accuracy,
        test_pairs: split.test_pairs.len(),
        accuracy: outcome.accuracy,
        dlib_accuracy: None,
        train_seconds: summary.train_seconds,
        final_loss: summary.final_loss,
        out: out.to_path_buf(),
    })
}

/// Adds the LFW result to the run's `summary.json` (written by the training loop).
fn add_to_summary(path: &Path, report: &FoldReport) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut summary: serde_json::Value = serde_json::from_str(&text)?;
    summary["lfw"] = serde_json::to_value(report)?;
    std::fs::write(path, serde_json::to_string_pretty(&summary)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn print_fold(r: &FoldReport) {
    println!(
        "fold {}: {:.2}% of {} pairs (squared-distance threshold {:.3} from the other folds, {:.2}% there){}",
        r.fold,
        r.accuracy * 100.0,
        r.test_pairs,
        r.squared_distance_threshold,
        r.train_pairs_accuracy * 100.0,
        r.dlib_accuracy
            .map(|a| format!("; dlib encodings, same fold: {:.2}%", a * 100.0))
            .unwrap_or_else(|| "; dlib baseline: not in the encoding cache (run visage eval lfw)".into())
    );
    println!(
        "  trained on {} people ({} chips) in {:.0} s, final loss {:.4}; {}",
        r.train_people,
        r.train_chips,
        r.train_seconds,
        r.final_loss,
        r.out.join("summary.json").display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use visage_face::DetectOptions;
    use visage_image::DecodeOptions;
    use visage_testdata::shared;
    use visage_train::mining::Miner;
    use visage_train::train::{train, Method};

    /// A few real LFW people with several images each, chipped by the real pipeline.
    #[test]
    fn a_tiny_run_on_real_face_chips_lowers_the_loss() {
        let models = FaceModels::load(&shared().join("models")).expect("models in ../shared");
        let extractor = ChipExtractor::new(
            &models,
            DetectOptions {
                upsample: 1,
                adjust_threshold: 0.0,
            },
            DecodeOptions::default(),
            FaceChoice::LfwCentreOrBox,
            16,
        )
        .unwrap();
        let root = shared().join("data/lfw/images");
        let mut people = Vec::new();
        for name in ["Aaron_Peirsol", "Abdullah_Gul", "Adrien_Brody", "Al_Gore"] {
            let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(name))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            files.truncate(3);
            let (chips, stats) = extract_all(&extractor, &files, None, &|_| {}).unwrap();
            assert!(stats.failed.is_empty());
            people.push((
                name.to_string(),
                files.iter().map(|f| chips[f].values()).collect::<Vec<_>>(),
            ));
        }
        let data = people_dataset(16, people, 2);
        assert_eq!(data.classes.len(), 4);
        // Every triplet and no distortion: a steady loss to compare at the two ends.
        let mut cfg = face_config(
            Method::Triplet {
                margin: 0.2,
                miner: Miner::All,
                normalize: true,
            },
            16,
        );
        cfg.augment = visage_train::augment::Augment::NONE;
        cfg.net.blocks = 2;
        cfg.net.channels = 8;
        cfg.classes_per_batch = 4;
        cfg.images_per_class = 3;
        cfg.steps = 40;
        cfg.learning_rate = 3e-3;
        cfg.checkpoint_every = 0;
        let dir = tempfile::tempdir().unwrap();
        let summary = train(&cfg, &data, dir.path(), None, &mut |_| {}).unwrap();
        let meta = checkpoint::read_meta(&summary.checkpoint).unwrap();
        let first: f32 = meta.curve[..5].iter().map(|p| p.loss).sum::<f32>() / 5.0;
        let last: f32 = meta.curve[35..].iter().map(|p| p.loss).sum::<f32>() / 5.0;
        assert!(last < first, "loss {first} -> {last}");
    }
}
