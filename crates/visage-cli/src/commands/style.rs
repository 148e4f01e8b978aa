//! `visage style`: neural style transfer by optimisation (visage-style), with a progress bar of
//! the cost terms, snapshots, loss curves and a JSON summary.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressStyle};
use visage_formats::manifest::models_dir;
use visage_image::{decode_file, DecodeOptions, RgbImage};
use visage_style::{
    stylize, Init, IterationRecord, LossNetwork, NetworkDefaults, NetworkKind, Observer, Optimizer,
    StyleImage, StyleOptions,
};

use crate::args::{StyleArgs, StyleInit, StyleNetwork, StyleOptimizer, StyleSmoothing};

const MOBILENET_FILE: &str = "mobilenet_v2/mobilenet_v2-b0353104.pth";

/// Runs `visage style`.
pub fn run(args: StyleArgs) -> anyhow::Result<ExitCode> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.unwrap_or(0))
        .build()
        .context("cannot start the worker threads")?;
    pool.install(|| run_in_pool(args))
}

fn run_in_pool(args: StyleArgs) -> anyhow::Result<ExitCode> {
    let decode = DecodeOptions {
        max_pixels: args.max_pixels,
        ..DecodeOptions::default()
    };
    let content = decode_file(&args.content, &decode)?;
    let blend = parse_blend(args.style_weights.as_deref(), args.styles.len())?;
    let mut styles = Vec::new();
    for (path, weight) in args.styles.iter().zip(blend) {
        styles.push(StyleImage {
            image: decode_file(path, &decode)?,
            weight,
        });
    }
    let device = args.device.device.device()?.autodiff();
    let kind = match args.network {
        StyleNetwork::MobilenetV2 => NetworkKind::MobilenetV2,
        StyleNetwork::Vgg19 => NetworkKind::Vgg19,
    };
    let net = load_network(&args, kind, &device)?;
    let options = options(&args, kind)?;
    let bar = ProgressBar::new(options.iterations as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
        )
        .context("progress template")?
        .progress_chars("=> "),
    );
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut observer = Progress {
        bar: bar.clone(),
        output: args.output.clone(),
        snapshot_error: None,
    };
    let (image, report) = stylize(&net, &content, &styles, &options, &mut observer)?;
    bar.finish_and_clear();
    if let Some(e) = observer.snapshot_error {
        return Err(e);
    }
    save(&image, &args.output)?;
    if let Some(plot) = &args.loss_plot {
        save(
            &visage_style::plot::loss_curves(&report.iterations, 900, 500),
            plot,
        )?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        let last = report.final_losses;
        println!(
            "{}: {}x{}, {} stage(s), {:.1} s ({} per iteration), peak memory {} MB",
            args.output.display(),
            report.width,
            report.height,
            report.stages.len(),
            report.seconds,
            report
                .stages
                .iter()
                .map(|s| format!(
                    "{:.3} s at {}x{}",
                    s.seconds_per_iteration, s.width, s.height
                ))
                .collect::<Vec<_>>()
                .join(", "),
            report.peak_memory_bytes.unwrap_or(0) >> 20
        );
        if let Some(l) = last {
            println!(
                "final costs: total {:.4e} = content {:.4e} + style {:.4e} + tv {:.4e}",
                l.total, l.content, l.style, l.tv
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn load_network(
    args: &StyleArgs,
    kind: NetworkKind,
    device: &Device,
) -> anyhow::Result<LossNetwork> {
    Ok(match kind {
        NetworkKind::MobilenetV2 => {
            let path = match &args.weights {
                Some(p) => p.clone(),
                None => models_dir(args.models.models.as_deref())
                    .context("MobileNetV2 weights: pass --weights, --models or set VISAGE_MODELS")?
                    .join(MOBILENET_FILE),
            };
            LossNetwork::mobilenet_v2(&path, device)?
        }
        NetworkKind::Vgg19 => match (&args.weights, args.random_weights) {
            (_, true) => LossNetwork::vgg19_random(device),
            (Some(p), false) => LossNetwork::vgg19(p, device)?,
            (None, false) => bail!(
                "VGG19 needs --weights (torchvision's vgg19-dcbb9e9d.pth or a safetensors file), or --random-weights for timing"
            ),
        },
    })
}

fn options(args: &StyleArgs, kind: NetworkKind) -> anyhow::Result<StyleOptions> {
    let softmax = match args.smoothing {
        StyleSmoothing::Auto => None,
        StyleSmoothing::On => Some(true),
        StyleSmoothing::Off => Some(false),
    };
    let d = NetworkDefaults::for_network(kind, softmax);
    let content_layer = match &args.content_layer {
        Some(name) => kind.parse_layer(name)?,
        None => d.content_layer,
    };
    let style_layers = match &args.style_layers {
        Some(list) => parse_layers(kind, list)?,
        None => d.style_layers.iter().map(|&l| (l, 1.0)).collect(),
    };
    Ok(StyleOptions {
        content_layer,
        style_layers,
        alpha: args.alpha.unwrap_or(d.alpha),
        beta: args.beta.unwrap_or(d.beta),
        tv_weight: args.tv.unwrap_or(d.tv_weight),
        init: match args.init {
            StyleInit::Noise => Init::Noise,
            StyleInit::Content => Init::Content,
        },
        seed: args.seed,
        optimizer: match args.optimizer {
            StyleOptimizer::Lbfgs => Optimizer::Lbfgs,
            StyleOptimizer::Adam => Optimizer::Adam,
        },
        iterations: args.iters,
        refine_iterations: args.refine_iters.unwrap_or((args.iters / 4).max(1)),
        learning_rate: args.lr,
        size: args.size,
        coarse_size: args.coarse_size.min(args.size),
        style_scale: args.style_scale,
        preserve_color: args.preserve_color,
        softmax: d.softmax,
        max_memory: parse_bytes(&args.max_memory)?,
        snapshot_every: args.snapshot_every,
    })
}

/// `features.1:0.5,relu2_1,...` into (layer, λ) pairs.
fn parse_layers(kind: NetworkKind, list: &str) -> anyhow::Result<Vec<(usize, f64)>> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, lambda) = match item.rsplit_once(':') {
            Some((n, l)) => (
                n,
                l.parse::<f64>()
                    .with_context(|| format!("style layer {item:?}: λ {l:?} is not a number"))?,
            ),
            None => (item, 1.0),
        };
        out.push((kind.parse_layer(name)?, lambda));
    }
    if out.is_empty() {
        bail!("--style-layers names no layer");
    }
    Ok(out)
}

fn parse_blend(list: Option<&str>, styles: usize) -> anyhow::Result<Vec<f64>> {
    let Some(list) = list else {
        return Ok(vec![1.0; styles]);
    };
    let weights = list
        .split(',')
        .map(|w| {
            w.trim()
                .parse::<f64>()
                .with_context(|| format!("--style-weights: {w:?} is not a number"))
        })
        .collect::<anyhow::Result<Vec<f64>>>()?;
    if weights.len() != styles {
        bail!(
            "--style-weights has {} weights for {styles} style images",
            weights.len()
        );
    }
    Ok(weights)
}

/// `4G`, `800M`, `512K` or plain bytes.
fn parse_bytes(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let (number, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], t[i..].to_ascii_uppercase()),
        None => (t, String::new()),
    };
    let scale = match unit.trim_end_matches('B').trim_end_matches('I') {
        "" => 1u64,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => bail!("--max-memory {text:?}: use a size such as 4G, 800M or a number of bytes"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .with_context(|| format!("--max-memory {text:?} is not a size"))?;
    if value.is_nan() || value <= 0.0 {
        bail!("--max-memory must be positive");
    }
    Ok((value * scale as f64) as u64)
}

fn save(image: &RgbImage, path: &Path) -> anyhow::Result<()> {
    image
        .save(path)
        .with_context(|| format!("cannot write {}", path.display()))
}

struct Progress {
    bar: ProgressBar,
    output: PathBuf,
    snapshot_error: Option<anyhow::Error>,
}

impl Observer for Progress {
    fn stage(
        &mut self,
        stage: usize,
        stages: usize,
        width: usize,
        height: usize,
        iterations: usize,
    ) {
        self.bar
            .set_prefix(format!("stage {}/{stages} {width}x{height}", stage + 1));
        self.bar.set_length(iterations as u64);
        self.bar.set_position(0);
    }

    fn iteration(&mut self, r: &IterationRecord) {
        self.bar.set_position(r.iteration as u64);
        self.bar.set_message(format!(
            "J {:.3e} = content {:.3e} + style {:.3e} + tv {:.3e}, {:.2} s/it",
            r.total, r.content, r.style, r.tv, r.seconds
        ));
    }

    fn snapshot(&mut self, stage: usize, iteration: usize, image: &RgbImage) {
        let stem = self
            .output
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("style");
        let path = self
            .output
            .with_file_name(format!("{stem}-stage{stage}-iter{iteration}.png"));
        if let Err(e) = save(image, &path) {
            self.snapshot_error.get_or_insert(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_lists_parse() {
        assert_eq!(parse_bytes("4G").unwrap(), 4 << 30);
        assert_eq!(parse_bytes("800MB").unwrap(), 800 << 20);
        assert_eq!(parse_bytes("1000").unwrap(), 1000);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("-1G").is_err());
        let l = parse_layers(NetworkKind::Vgg19, "relu1_1:0.5, relu2_1").unwrap();
        assert_eq!(l, vec![(1, 0.5), (6, 1.0)]);
        assert!(parse_layers(NetworkKind::MobilenetV2, "features.30").is_err());
        assert_eq!(parse_blend(Some("1,3"), 2).unwrap(), vec![1.0, 3.0]);
        assert!(parse_blend(Some("1"), 2).is_err());
    }
}
