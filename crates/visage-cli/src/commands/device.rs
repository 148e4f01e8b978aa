//! `visage device`: the compute devices this build can use, and with `--check` the GPU's parity
//! tests against the CPU and its benchmarks, in one table.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use burn::tensor::Device;
use serde::Serialize;
use serde_json::json;
use visage_face::{largest_face, Stage};
use visage_image::RgbImage;
use visage_nn::Compute;
use visage_style::{stylize, timing_image, LossNetwork, Quiet, StyleImage, StyleOptions};
use visage_train::data::{Class, Dataset, Framing};
use visage_train::mining::Miner;
use visage_train::train::{train_on, Method, TrainConfig};

use super::{decode_options, detect_options, load_models};
use crate::args::{DetectArgs, DeviceCheckArgs};

/// Encodings on the GPU may differ from the CPU's by at most this much per coordinate.
const ENCODING_TOLERANCE: f32 = 1e-3;
/// The relative difference allowed between the CPU's and the GPU's cost curves (style transfer,
/// training): they run the same arithmetic in another order, and Adam amplifies rounding.
const CURVE_TOLERANCE: f64 = 0.02;

/// One parity test's outcome.
#[derive(Debug, Serialize)]
struct Parity {
    what: String,
    measure: String,
    value: f64,
    limit: f64,
    passed: bool,
}

impl Parity {
    /// The test that the GPU's curve of `quantity` follows the CPU's within
    /// [`CURVE_TOLERANCE`], point by point.
    fn of_curves(what: String, quantity: &str, cpu: &[f64], gpu: &[f64]) -> Self {
        let worst = worst_relative(cpu, gpu);
        Self {
            what,
            measure: format!("max relative difference of {quantity}"),
            value: worst,
            limit: CURVE_TOLERANCE,
            passed: worst <= CURVE_TOLERANCE,
        }
    }
}

/// One benchmark: the median seconds of one unit of work on each device.
#[derive(Debug, Serialize)]
struct Timing {
    what: String,
    unit: String,
    gpu_seconds: f64,
    cpu_seconds: Option<f64>,
}

pub fn run(args: DeviceCheckArgs) -> anyhow::Result<ExitCode> {
    let gpu = Compute::Gpu.describe();
    if !args.check {
        let threads = rayon::current_num_threads();
        if args.json {
            println!(
                "{}",
                json!({
                    "cpu": format!("{} ({threads} threads)", Compute::Cpu.describe()?),
                    "gpu": gpu.as_ref().ok(),
                    "gpu_error": gpu.as_ref().err().map(|e| e.to_string()),
                })
            );
        } else {
            println!("cpu: {}, {threads} threads", Compute::Cpu.describe()?);
            match &gpu {
                Ok(name) => println!("gpu: {name}"),
                Err(e) => println!("gpu: none ({e})"),
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut parts: Vec<&str> = Vec::new();
    // Checked before the GPU is opened: a typo costs no borrowed machine time.
    for part in &args.only {
        match part.trim() {
            // Each network alone too: on a fresh GPU, compiling and autotuning VGG19's kernels
            // can take minutes, and a script may give each its own time limit.
            "style" => parts.extend(["style-mobilenet", "style-vgg19"]),
            p @ ("encodings" | "style-mobilenet" | "style-vgg19" | "training") => parts.push(p),
            _ => bail!(
                "--only {part}: expected encodings, style, style-mobilenet, style-vgg19 or training"
            ),
        }
    }
    let card = gpu.context("--check needs a GPU")?;
    let device = Compute::Gpu.device()?;
    exit_on_worker_panic();
    let repeat = args.repeat.max(1);
    let mut parity = Vec::new();
    let mut timings = Vec::new();

    for part in parts {
        eprintln!("{part} on {card} ...");
        let (before, timed_before) = (parity.len(), timings.len());
        // A part that fails (or panics inside the GPU backend) is a failed test; the others
        // still run, so that one run on a borrowed machine says as much as it can.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match part {
            "encodings" => encodings(&args, repeat, &mut parity, &mut timings),
            "style-mobilenet" => style(
                StyleNetwork::MobileNetV2,
                &args,
                &device,
                repeat,
                &mut parity,
                &mut timings,
            ),
            "style-vgg19" => style(
                StyleNetwork::Vgg19,
                &args,
                &device,
                repeat,
                &mut parity,
                &mut timings,
            ),
            _ => training(&device, repeat, &mut parity, &mut timings),
        }));
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("{e:#}")),
            Err(panic) => Some(
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panicked".into()),
            ),
        };
        if let Some(message) = failure {
            parity.push(Parity {
                what: format!("{part}: did not finish"),
                measure: message,
                value: f64::NAN,
                limit: 0.0,
                passed: false,
            });
        }
        for p in &parity[before..] {
            eprintln!(
                "  {} | {} = {:.3e} (limit {:.0e}) {}",
                p.what,
                p.measure,
                p.value,
                p.limit,
                if p.passed { "pass" } else { "FAIL" }
            );
        }
        for t in &timings[timed_before..] {
            eprintln!(
                "  {}: GPU {:.2} ms, CPU {}",
                t.what,
                t.gpu_seconds * 1e3,
                t.cpu_seconds
                    .map(|c| format!("{:.2} ms", c * 1e3))
                    .unwrap_or_else(|| "-".into())
            );
        }
    }

    let passed = parity.iter().all(|p| p.passed);
    if args.json {
        println!(
            "{}",
            json!({"gpu": card, "cpu_threads": rayon::current_num_threads(),
                   "parity": parity, "timings": timings, "passed": passed})
        );
    } else {
        print_tables(&card, &parity, &timings);
    }
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A panic in one of the GPU backend's worker threads leaves the main thread waiting for its
/// answer forever; during the check, such a panic ends the process at once, with its message,
/// so that a script running the parts one by one goes on to the next.
fn exit_on_worker_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        if std::thread::current().name() != Some("main") {
            eprintln!("visage: error: a GPU worker thread panicked; stopping the check");
            std::process::exit(3);
        }
    }));
}

fn print_tables(card: &str, parity: &[Parity], timings: &[Timing]) {
    println!(
        "GPU: {card}; CPU: {} threads\n",
        rayon::current_num_threads()
    );
    println!("| parity test | measure | value | limit | result |");
    println!("| --- | --- | --- | --- | --- |");
    for p in parity {
        println!(
            "| {} | {} | {:.3e} | {:.0e} | {} |",
            p.what,
            p.measure,
            p.value,
            p.limit,
            if p.passed { "pass" } else { "FAIL" }
        );
    }
    println!("\n| benchmark | unit | GPU | CPU |");
    println!("| --- | --- | --- | --- |");
    for t in timings {
        println!(
            "| {} | {} | {:.2} ms | {} |",
            t.what,
            t.unit,
            t.gpu_seconds * 1e3,
            t.cpu_seconds
                .map(|s| format!("{:.2} ms", s * 1e3))
                .unwrap_or_else(|| "-".into())
        );
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Median seconds of `repeat` runs of `f` after one untimed warm-up run (which also lets the
/// GPU compile and autotune its kernels).
fn timed(repeat: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    f()?;
    let mut times = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    Ok(median(times))
}

/// Face chips to encode: from `--images` (the largest face of each, aligned as the pipeline
/// does), else smooth synthetic chips; repeated to `count`.
fn chips(
    args: &DeviceCheckArgs,
    models: &visage_face::FaceModels,
    count: usize,
) -> anyhow::Result<(Vec<RgbImage>, &'static str)> {
    let detect = DetectArgs {
        upsample: 1,
        adjust_threshold: 0.0,
        max_pixels: visage_image::DEFAULT_MAX_PIXELS,
    };
    let mut real = Vec::new();
    for path in &args.images {
        let image = visage_image::decode_file(path, &decode_options(&detect))
            .with_context(|| format!("cannot read {}", path.display()))?;
        let faces = models.analyze(&image, &detect_options(&detect), Stage::Landmarks)?;
        if let Some(face) = largest_face(&faces) {
            real.push(models.chip(&image, &face.landmarks)?);
        }
    }
    let (base, kind) = if real.is_empty() {
        if !args.images.is_empty() {
            bail!("no face found in the --images given");
        }
        let synthetic = (0..16).map(|k| timing_image(150, 37 * k)).collect();
        (synthetic, "synthetic chips")
    } else {
        (real, "face chips")
    };
    Ok((base.iter().cycle().take(count).cloned().collect(), kind))
}

fn encodings(
    args: &DeviceCheckArgs,
    repeat: usize,
    parity: &mut Vec<Parity>,
    timings: &mut Vec<Timing>,
) -> anyhow::Result<()> {
    let mut models = load_models(&args.models)?;
    let (chips, kind) = chips(args, &models, args.chips.max(1))?;
    let distinct = chips.len().min(64);
    let on_cpu = models.encode(&chips[..distinct])?;
    models.encode_on(Compute::Gpu)?;
    let on_gpu = models.encode(&chips[..distinct])?;
    let worst = on_cpu
        .iter()
        .zip(&on_gpu)
        .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
        .fold(0f32, f32::max);
    parity.push(Parity {
        what: format!("face encodings, {distinct} {kind}"),
        measure: "max abs(GPU - CPU) per coordinate".into(),
        value: worst as f64,
        limit: ENCODING_TOLERANCE as f64,
        passed: worst <= ENCODING_TOLERANCE && on_gpu.len() == distinct,
    });
    let gpu = timed(repeat, || {
        models.encode(&chips).map(|_| ()).map_err(Into::into)
    })?;
    models.encode_on(Compute::Cpu)?;
    let cpu = timed(1, || models.encode(&chips).map(|_| ()).map_err(Into::into))?;
    timings.push(Timing {
        what: format!("encode {} chips (150x150, dlib ResNet)", chips.len()),
        unit: "all chips".into(),
        gpu_seconds: gpu,
        cpu_seconds: Some(cpu),
    });
    Ok(())
}

/// The total cost after each iteration of a short Gatys run of `net` at `side` pixels.
fn style_curve(
    net: &LossNetwork,
    side: usize,
    iterations: usize,
) -> anyhow::Result<Vec<(f64, f64)>> {
    let content = timing_image(side, 0);
    let styles = [StyleImage {
        image: timing_image(side, 101),
        weight: 1.0,
    }];
    let options = StyleOptions::for_timing(net.kind(), side, iterations);
    let (_, report) = stylize(net, &content, &styles, &options, &mut Quiet)?;
    Ok(report
        .iterations
        .iter()
        .map(|r| (r.total, r.seconds))
        .collect())
}

fn worst_relative(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return f64::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / x.abs().max(y.abs()).max(1e-12))
        .fold(0.0, f64::max)
}

/// The loss networks of the style check.
#[derive(Debug, Clone, Copy)]
enum StyleNetwork {
    MobileNetV2,
    Vgg19,
}

/// Runs `work`, saying on stderr what it is and, when done, how many seconds it took: when a
/// time limit stops the check, the last line says where.
fn stage<T>(what: &str, work: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    eprintln!("  {what} ...");
    let start = Instant::now();
    let out = work()?;
    eprintln!("  {what}: {:.1} s", start.elapsed().as_secs_f64());
    Ok(out)
}

fn style(
    network: StyleNetwork,
    args: &DeviceCheckArgs,
    device: &Device,
    repeat: usize,
    parity: &mut Vec<Parity>,
    timings: &mut Vec<Timing>,
) -> anyhow::Result<()> {
    // The same random weights on both devices: drawn once on the CPU, then copied.
    let cpu = Compute::Cpu.device()?.autodiff();
    let gpu = device.clone().autodiff();
    let (name, on_cpu) = match network {
        StyleNetwork::Vgg19 => ("VGG19", LossNetwork::vgg19_random(&cpu)),
        StyleNetwork::MobileNetV2 => ("MobileNetV2", LossNetwork::mobilenet_v2_random(&cpu)?),
    };
    let on_gpu = on_cpu.to_device(&gpu);
    for (k, &side) in args.sizes.iter().enumerate() {
        // The parity test runs at the first size, on the same shapes as its timing: on a fresh
        // GPU, compiling and tuning the kernels of each new size is what takes longest.
        let parity_iterations = if k == 0 { args.parity_iterations } else { 0 };
        let on_cpu_curve = if parity_iterations > 0 {
            stage(&format!("{name} at {side} px on the CPU"), || {
                style_curve(&on_cpu, side, parity_iterations)
            })?
        } else {
            Vec::new()
        };
        // The first iteration also compiles and autotunes the GPU's kernels; the cost curve's
        // first iterations do not depend on how many follow (constant step size).
        let on_gpu_curve = stage(
            &format!("{name} at {side} px on the GPU (the first iteration compiles and tunes)"),
            || style_curve(&on_gpu, side, parity_iterations.max(repeat + 1)),
        )?;
        if parity_iterations > 0 {
            let costs = |curve: &[(f64, f64)]| -> Vec<f64> {
                curve.iter().take(parity_iterations).map(|p| p.0).collect()
            };
            let test = Parity::of_curves(
                format!(
                    "{name} Gatys loss curve, {parity_iterations} Adam iterations at {side} px"
                ),
                "the total cost",
                &costs(&on_cpu_curve),
                &costs(&on_gpu_curve),
            );
            eprintln!("  {}: {:.3e}", test.what, test.value);
            parity.push(test);
        }
        let gpu_seconds = median(on_gpu_curve.iter().skip(1).map(|p| p.1).collect());
        // Said at once: a time limit that stops a later size loses nothing measured.
        eprintln!(
            "  {name} at {side} px: {:.2} ms per iteration",
            gpu_seconds * 1e3
        );
        timings.push(Timing {
            what: format!("Gatys iteration, {name}, {side}x{side}"),
            unit: "iteration (forward, backward, Adam)".into(),
            gpu_seconds,
            cpu_seconds: None,
        });
    }
    Ok(())
}

/// Synthetic 28x28 "characters": a few strokes per class, jittered per image.
fn synthetic_characters(classes: usize, per_class: usize) -> Dataset {
    let side = 28;
    let mut state = 12345u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as f32 / (1u64 << 31) as f32
    };
    let classes = (0..classes)
        .map(|c| {
            let strokes: Vec<[f32; 4]> = (0..3)
                .map(|_| {
                    [
                        next() * 20.0 + 4.0,
                        next() * 20.0 + 4.0,
                        next() * 20.0 + 4.0,
                        next() * 20.0 + 4.0,
                    ]
                })
                .collect();
            let images = (0..per_class)
                .map(|_| {
                    let (dx, dy) = (next() * 2.0 - 1.0, next() * 2.0 - 1.0);
                    let mut img = vec![0f32; side * side];
                    for s in &strokes {
                        for t in 0..40 {
                            let u = t as f32 / 39.0;
                            let x = (s[0] + (s[2] - s[0]) * u + dx).round() as usize;
                            let y = (s[1] + (s[3] - s[1]) * u + dy).round() as usize;
                            if x < side && y < side {
                                img[y * side + x] = 1.0;
                            }
                        }
                    }
                    img
                })
                .collect();
            Class {
                name: format!("synthetic/{c}"),
                images,
            }
        })
        .collect();
    Dataset {
        side,
        framing: Framing::AsDrawn,
        classes,
    }
}

/// Loss after each step and seconds per step of a short triplet run on `device`.
fn triplet_run(
    device: &Device,
    data: &Dataset,
    steps: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let mut config = TrainConfig::omniglot(Method::Triplet {
        margin: 0.2,
        miner: Miner::SemiHard,
        normalize: true,
    });
    config.steps = steps;
    config.rotations = false;
    config.mirrors = false;
    config.checkpoint_every = 0;
    let out = std::env::temp_dir().join(format!("visage-device-check-{}", std::process::id()));
    let (mut losses, mut times) = (Vec::new(), Vec::new());
    let mut last = Instant::now();
    let result = train_on(device, &config, data, &out, None, &mut |p| {
        times.push(last.elapsed().as_secs_f64());
        losses.push(p.loss as f64);
        last = Instant::now();
    });
    let _ = std::fs::remove_dir_all(&out);
    result?;
    Ok((losses, times))
}

fn training(
    device: &Device,
    repeat: usize,
    parity: &mut Vec<Parity>,
    timings: &mut Vec<Timing>,
) -> anyhow::Result<()> {
    let data = synthetic_characters(64, 8);
    let steps = 5.max(repeat + 1);
    let (cpu_losses, cpu_times) = triplet_run(&Compute::Cpu.device()?, &data, steps)?;
    let (gpu_losses, gpu_times) = triplet_run(device, &data, steps)?;
    parity.push(Parity::of_curves(
        format!("triplet training (semi-hard, 32x4 batches), {steps} steps"),
        "the loss",
        &cpu_losses,
        &gpu_losses,
    ));
    timings.push(Timing {
        what: "triplet training step, Conv-4 on 28x28, 32x4 batch".into(),
        unit: "step (forward, mining, backward, Adam)".into(),
        gpu_seconds: median(gpu_times.into_iter().skip(1).collect()),
        cpu_seconds: Some(median(cpu_times.into_iter().skip(1).collect())),
    });
    Ok(())
}
