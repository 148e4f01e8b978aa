//! `visage train omniglot`, `visage train lfw-head` and `visage train faces` (in [`faces`]).

mod faces;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use visage_eval::lfw::ten_fold;
use visage_train::augment::Augment;
use visage_train::data::{load_omniglot, Dataset, Framing};
use visage_train::frozen::{cross_validate, EncodedPair};
use visage_train::mining::Miner;
use visage_train::model::PairFeatures;
use visage_train::train::{train_on, Method, RunSummary, TrainConfig};

use super::load_models;
use crate::args::{TrainArgs, TrainCommand, TrainLfwHeadArgs, TrainOmniglotArgs, TrainingOptions};

pub fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    match args.which {
        TrainCommand::Omniglot(a) => omniglot(a),
        TrainCommand::LfwHead(a) => lfw_head(a),
        TrainCommand::Faces(a) => faces::run(a),
    }
}

/// The method `name` with its settings from the shared options.
fn method(name: &str, o: &TrainingOptions) -> anyhow::Result<Method> {
    if !o.margin.is_finite() || o.margin <= 0.0 {
        bail!("--margin must be positive");
    }
    Ok(match name {
        "triplet" => Method::Triplet {
            margin: o.margin,
            miner: o.miner.parse::<Miner>().map_err(|e| anyhow!(e))?,
            normalize: !o.no_normalize,
        },
        "pair" => Method::Pair {
            features: o.features.parse::<PairFeatures>().map_err(|e| anyhow!(e))?,
        },
        "classify" => Method::Classify {
            classes: 0,
            scale: o.scale,
        },
        _ => Method::Proto { shots: o.shots },
    })
}

/// The shared options over a method's defaults `c`.
fn apply_options(c: &mut TrainConfig, o: &TrainingOptions) -> anyhow::Result<()> {
    c.net.blocks = o.blocks;
    c.net.channels = o.channels;
    if o.last_channels.is_some() {
        c.net.last_channels = o.last_channels;
    }
    if let Some(pool) = o.last_pool {
        c.net.last_pool = pool;
    }
    if let Some(pooling) = o.pooling {
        c.net.pooling = pooling;
    }
    if let Some(s) = o.steps {
        if s == 0 {
            bail!("--steps must be at least 1");
        }
        c.steps = s;
    }
    if let Some(lr) = o.lr {
        if !lr.is_finite() || lr <= 0.0 {
            bail!("--lr must be positive");
        }
        c.learning_rate = lr;
    }
    if let Some(p) = o.classes_per_batch {
        c.classes_per_batch = p;
    }
    if let Some(k) = o.images_per_class {
        c.images_per_class = k;
    }
    if let Some(n) = o.shards {
        c.shards = n;
    }
    if o.no_augment {
        c.augment = Augment::NONE;
    }
    if let Some(f) = o.distortion {
        if !f.is_finite() || f < 0.0 {
            bail!("--distortion must be a factor of 0 or more");
        }
        c.augment = c.augment.scaled(f);
    }
    if let Some(rms) = o.elastic {
        if !rms.is_finite() || !(0.0..=0.5).contains(&rms) {
            bail!("--elastic must be a fraction of the side from 0 to 0.5");
        }
        c.augment.elastic = rms;
        if c.augment.elastic_smoothing == 0.0 {
            c.augment.elastic_smoothing = Augment::OMNIGLOT_WARPED.elastic_smoothing;
        }
    }
    if let Some(sigma) = o.elastic_smoothing {
        if !sigma.is_finite() || !(0.01..=1.0).contains(&sigma) {
            bail!("--elastic-smoothing must be a fraction of the side from 0.01 to 1");
        }
        c.augment.elastic_smoothing = sigma;
    }
    c.seed = o.seed;
    Ok(())
}

/// Runs `work` on a pool of `threads` worker threads.
fn in_pool<T: Send>(
    threads: usize,
    work: impl FnOnce() -> anyhow::Result<T> + Send,
) -> anyhow::Result<T> {
    if threads == 0 {
        bail!("--threads must be at least 1");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("cannot start the worker threads")?;
    pool.install(work)
}

fn config(args: &TrainOmniglotArgs) -> anyhow::Result<TrainConfig> {
    let mut c = TrainConfig::omniglot(method(&args.method, &args.training)?);
    c.net.input_size = args.side;
    apply_options(&mut c, &args.training)?;
    if args.within_alphabet || args.mixed_alphabets {
        c.within_alphabet = args.within_alphabet;
    }
    c.rotations = !args.no_rotations;
    if args.mirrors || args.no_mirrors {
        c.mirrors = args.mirrors;
    }
    match args.framing.as_deref() {
        Some("as-drawn") => c.framing = Framing::AsDrawn,
        Some(_) => c.framing = Framing::OMNIGLOT,
        None => {}
    }
    if let Some(radius) = args.ink_radius {
        if c.framing == Framing::AsDrawn {
            bail!("--ink-radius needs --framing centred");
        }
        c.framing = Framing::Centred { radius };
    }
    c.framing.validate()?;
    c.checkpoint_every = args.checkpoint_every;
    c.stop_on_collapse = args.stop_on_collapse;
    Ok(c)
}

fn omniglot(args: TrainOmniglotArgs) -> anyhow::Result<ExitCode> {
    in_pool(args.training.threads, || omniglot_in_pool(&args))
}

/// Trains with a progress bar on a terminal, or a line every 50 steps in a log.
fn train_with_progress(
    device: &Device,
    cfg: &TrainConfig,
    data: &Dataset,
    out: &Path,
    resume: Option<&Path>,
) -> anyhow::Result<RunSummary> {
    let interactive = std::io::stderr().is_terminal();
    let bar = ProgressBar::new(cfg.steps as u64);
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} steps {msg} eta {eta}") {
        bar.set_style(style);
    }
    let summary = train_on(device, cfg, data, out, resume, &mut |p| {
        bar.set_position(p.step as u64);
        if !interactive && (p.step % 50 == 0 || p.step == p.total) {
            eprintln!(
                "step {}/{} loss {:.4} {:.0} img/s",
                p.step, p.total, p.loss, p.images_per_second
            );
        }
        bar.set_message(format!(
            "loss {:.4} {:.0} img/s",
            p.loss, p.images_per_second
        ));
    })?;
    bar.finish_and_clear();
    Ok(summary)
}

fn omniglot_in_pool(args: &TrainOmniglotArgs) -> anyhow::Result<ExitCode> {
    let mut cfg = config(args)?;
    if let Some(ckpt) = &args.resume {
        let meta = visage_train::checkpoint::read_meta(ckpt)?;
        let steps = cfg.steps;
        cfg = meta.config;
        cfg.steps = args.training.steps.unwrap_or(steps.max(meta.step));
    }
    let data = load_omniglot(&args.data, cfg.net.input_size, cfg.framing)
        .with_context(|| format!("cannot load Omniglot from {}", args.data.display()))?;
    let data = if cfg.rotations {
        data.with_rotated_classes()
    } else {
        data
    };
    let data = if cfg.mirrors {
        data.with_mirrored_classes()
    } else {
        data
    };
    let device = args.training.device.device.device()?;
    let summary = train_with_progress(&device, &cfg, &data, &args.out, args.resume.as_deref())?;
    if args.training.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!(
            "{}: {} steps on {} classes ({} images) in {:.0} s with {} threads; final loss {:.4}, batch accuracy {:.3}",
            cfg.method.name(),
            summary.steps_done,
            summary.classes,
            summary.images,
            summary.train_seconds,
            summary.threads,
            summary.final_loss,
            summary.final_accuracy
        );
        if let Some(c) = &summary.collapse {
            println!(
                "warning: embedding collapsed at step {}: {}",
                c.step, c.reason
            );
        }
        println!(
            "checkpoint {}; curve {}; summary {}",
            summary.checkpoint.display(),
            summary.curve_png.display(),
            args.out.join("summary.json").display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn lfw_head(args: TrainLfwHeadArgs) -> anyhow::Result<ExitCode> {
    let features = args
        .features
        .iter()
        .map(|f| f.parse::<PairFeatures>().map_err(|e| anyhow!(e)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let models = load_models(&args.models)?;
    let (pairs, encodings, _) = super::eval::encode_lfw_pairs(
        &models,
        &args.pairs,
        &args.images,
        &args.detect,
        &args.cache,
    )?;
    let mut encoded = Vec::with_capacity(pairs.len());
    let mut folds = Vec::with_capacity(pairs.len());
    let mut items = Vec::with_capacity(pairs.len());
    for p in &pairs {
        let get = |path: &PathBuf| encodings.get(path).and_then(|e| e.encoding);
        let (Some(a), Some(b)) = (get(&p.a), get(&p.b)) else {
            bail!("no encoding for {} / {}", p.a.display(), p.b.display());
        };
        let (a, b): (Vec<f32>, Vec<f32>) = (a.to_vec(), b.to_vec());
        let d = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f32>()
            .sqrt();
        items.push((p.fold, d, p.same));
        encoded.push(EncodedPair { a, b, same: p.same });
        folds.push(p.fold);
    }
    let threshold = ten_fold(&items);
    let mean_std = |acc: &[f64]| {
        let n = acc.len().max(1) as f64;
        let m = acc.iter().sum::<f64>() / n;
        (
            m,
            (acc.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / n).sqrt(),
        )
    };
    let mut heads = Vec::new();
    for f in features {
        let start = Instant::now();
        let acc = cross_validate(&encoded, &folds, f, args.epochs);
        let (m, s) = mean_std(&acc);
        heads.push((f, m, s, acc, start.elapsed().as_secs_f64()));
    }
    if args.json {
        let heads: Vec<_> = heads
            .iter()
            .map(|(f, m, s, acc, secs)| {
                json!({"features": f.name(), "mean_accuracy": m, "std_accuracy": s, "fold_accuracy": acc, "seconds": secs})
            })
            .collect();
        println!(
            "{}",
            json!({
                "pairs": pairs.len(), "epochs": args.epochs,
                "threshold": {"mean_accuracy": threshold.mean_accuracy, "std_accuracy": threshold.std_accuracy},
                "pair_heads": heads,
            })
        );
    } else {
        println!(
            "LFW View 2, {} pairs, 10 folds (train on 9, test on the 10th):",
            pairs.len()
        );
        println!(
            "  plain threshold on Euclidean distance: {:.2}% ± {:.2}",
            threshold.mean_accuracy * 100.0,
            threshold.std_accuracy * 100.0
        );
        for (f, m, s, _, secs) in &heads {
            println!(
                "  pair head, {:<4} features:            {:.2}% ± {:.2}  ({secs:.1} s)",
                f.name(),
                m * 100.0,
                s * 100.0
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
