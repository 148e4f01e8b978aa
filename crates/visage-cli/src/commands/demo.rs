//! `visage demo`: the worked examples of the nn ops (see the `visage-demos` crate).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use visage_demos::{ekg, volume};

use crate::args::{DemoArgs, DemoEkgArgs, DemoKind, DemoVolumeArgs};

/// Where the EKG recording lies inside the shared folder.
const EKG_FILE: &str = "data/ekg/mitbih_208_360hz_mv.csv";

/// Runs one demo.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    match args.demo {
        DemoKind::Ekg(a) => run_ekg(a),
        DemoKind::Volume(a) => run_volume(a),
    }
}

fn pool(threads: usize) -> anyhow::Result<rayon::ThreadPool> {
    if threads == 0 {
        bail!("--threads must be at least 1");
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("cannot start the worker threads")
}

/// The recording from the flag, else under `$VISAGE_SHARED` (default `../shared`), as the tests
/// find their data.
pub(crate) fn ekg_csv(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = flag {
        return Ok(p);
    }
    let shared =
        std::env::var_os("VISAGE_SHARED").map_or_else(|| PathBuf::from("../shared"), PathBuf::from);
    let path = shared.join(EKG_FILE);
    if path.is_file() {
        return Ok(path);
    }
    bail!(
        "no EKG recording at {}; pass --csv FILE or set VISAGE_SHARED",
        path.display()
    )
}

fn run_ekg(a: DemoEkgArgs) -> anyhow::Result<ExitCode> {
    let csv = ekg_csv(a.csv)?;
    let mut opts = ekg::EkgOptions::new(csv.clone());
    opts.seed = a.seed;
    opts.steps = a.steps;
    opts.plot = Some(a.plot.clone());
    let start = std::time::Instant::now();
    let r = pool(a.threads)?
        .install(|| ekg::run(&opts))
        .with_context(|| format!("EKG demo on {}", csv.display()))?;
    let total = start.elapsed().as_secs_f64();
    if a.json {
        let v = serde_json::json!({
            "csv": csv.display().to_string(),
            "seed": a.seed,
            "steps": a.steps,
            "train_beats": r.train_beats,
            "reference_beats": r.reference_beats,
            "detected_beats": r.detected_beats,
            "true_positives": r.true_positives,
            "precision": r.precision,
            "recall": r.recall,
            "f1": r.f1,
            "heart_rate_bpm": r.heart_rate_bpm,
            "reference_heart_rate_bpm": r.reference_heart_rate_bpm,
            "loss_start": r.loss_start,
            "loss_end": r.loss_end,
            "train_time_s": r.train_time_s,
            "total_time_s": total,
            "plot": a.plot.display().to_string(),
        });
        println!("{v}");
    } else {
        println!("EKG {} (360 Hz)", csv.display());
        println!(
            "Pan–Tompkins labels: {} beats in the first 4 min (training), {} in the held-out minute",
            r.train_beats, r.reference_beats
        );
        println!(
            "1-D CNN, {} steps in {:.1} s, loss {:.4} -> {:.4}",
            a.steps, r.train_time_s, r.loss_start, r.loss_end
        );
        println!(
            "held-out minute: {} detections, {} matched within {:.0} ms",
            r.detected_beats,
            r.true_positives,
            ekg::MATCH_TOLERANCE_S * 1e3
        );
        println!(
            "precision {:.4}  recall {:.4}  F1 {:.4}",
            r.precision, r.recall, r.f1
        );
        println!(
            "heart rate {:.1} bpm (Pan–Tompkins: {:.1} bpm)",
            r.heart_rate_bpm, r.reference_heart_rate_bpm
        );
        println!("plot: {}   total {:.1} s", a.plot.display(), total);
    }
    Ok(ExitCode::SUCCESS)
}

fn run_volume(a: DemoVolumeArgs) -> anyhow::Result<ExitCode> {
    let opts = volume::VolumeOptions {
        seed: a.seed,
        train: a.train,
        test: a.test,
        epochs: a.epochs,
        picture: Some(a.picture.clone()),
        ..Default::default()
    };
    let start = std::time::Instant::now();
    let r = pool(a.threads)?
        .install(|| volume::run(&opts))
        .context("volume demo")?;
    let total = start.elapsed().as_secs_f64();
    if a.json {
        let v = serde_json::json!({
            "seed": a.seed,
            "train": a.train,
            "test": r.test,
            "epochs": a.epochs,
            "accuracy": r.accuracy,
            "confusion": r.confusion,
            "classes": volume::CLASSES,
            "loss_first_epoch": r.loss_first_epoch,
            "loss_last_epoch": r.loss_last_epoch,
            "parameters": r.parameters,
            "train_time_s": r.train_time_s,
            "total_time_s": total,
            "picture": a.picture.display().to_string(),
        });
        println!("{v}");
    } else {
        let s = volume::SIZE;
        println!(
            "{}x{s}x{s}x{s} synthetic volumes, classes {:?}; 3-D CNN with {} parameters",
            a.train + a.test,
            volume::CLASSES,
            r.parameters
        );
        println!(
            "{} epochs over {} volumes in {:.1} s, loss {:.4} -> {:.4}",
            a.epochs, a.train, r.train_time_s, r.loss_first_epoch, r.loss_last_epoch
        );
        println!(
            "held-out accuracy {:.2}% on {} volumes; confusion [true][predicted] {:?}",
            100.0 * r.accuracy,
            r.test,
            r.confusion
        );
        println!(
            "picture: {} (rows: volumes; columns: middle z/y/x slices, then the middle z slice of each conv1 and conv2 map)   total {:.1} s",
            a.picture.display(),
            total
        );
    }
    Ok(ExitCode::SUCCESS)
}
