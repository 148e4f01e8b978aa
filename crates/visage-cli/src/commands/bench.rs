//! `visage bench IMAGE`: median times of each pipeline step, and the process's peak memory.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use serde_json::json;
use visage_face::{largest_face, Stage};

use super::{detect_options, load_models};
use crate::args::BenchArgs;
use crate::images;

/// Chips per batch when timing batched encoding (dlib's own batch size).
const BATCH: usize = 16;

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let repeat = args.repeat.max(1);
    let started = Instant::now();
    let models = load_models(&args.models)?;
    let load_s = started.elapsed().as_secs_f64();
    let options = detect_options(&args.detect);

    let decode = median(repeat, || {
        images::load(&args.image, &args.detect).map(|_| ())
    })?;
    let image = images::load(&args.image, &args.detect)?;
    let detect = median(repeat, || {
        models.detect(&image, &options);
        Ok(())
    })?;
    let faces = models.analyze(&image, &options, Stage::Landmarks)?;
    let face =
        largest_face(&faces).ok_or_else(|| anyhow!("{}: no face to time", args.image.display()))?;
    let landmarks = median(repeat, || {
        models.landmarks(&image, &face.rect);
        Ok(())
    })?;
    let chip = models.chip(&image, &face.landmarks)?;
    let align = median(repeat, || {
        models
            .chip(&image, &face.landmarks)
            .map(|_| ())
            .map_err(Into::into)
    })?;
    let one = std::slice::from_ref(&chip);
    let encode_one = median(repeat, || {
        models.encode(one).map(|_| ()).map_err(Into::into)
    })?;
    let batch: Vec<_> = (0..BATCH).map(|_| chip.clone()).collect();
    let encode_batch = median(repeat.min(3), || {
        models.encode(&batch).map(|_| ()).map_err(Into::into)
    })?;
    let pipeline = median(repeat, || {
        let image = images::load(&args.image, &args.detect)?;
        models.analyze(&image, &options, Stage::Encode)?;
        Ok(())
    })?;
    let peak_rss_mb = peak_rss_bytes().map(|b| b as f64 / (1 << 20) as f64);

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let report = json!({
        "image": args.image.display().to_string(),
        "width": image.width(), "height": image.height(), "faces": faces.len(),
        "load_models_ms": load_s * 1e3,
        "decode_ms": ms(decode),
        "detect_ms": ms(detect),
        "landmarks_ms": ms(landmarks),
        "align_ms": ms(align),
        "encode_one_ms": ms(encode_one),
        "encode_per_face_batch16_ms": ms(encode_batch) / BATCH as f64,
        "pipeline_ms": ms(pipeline),
        "peak_rss_mb": peak_rss_mb,
        "threads": rayon::current_num_threads(),
    });
    if args.json {
        println!("{report}");
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(ExitCode::SUCCESS)
}

fn median(repeat: usize, mut step: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    step()?; // warm caches and thread pools before timing
    let mut times = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let t = Instant::now();
        step()?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// Peak resident memory of this process (Linux `VmHWM`), in bytes.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
