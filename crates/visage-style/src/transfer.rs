//! The optimisation: J(G) = α J_content + β Σ_l λ[l] J_style[l] + tv · TV(G), minimised over the
//! pixels of G with L-BFGS or Adam, in a coarse-to-fine schedule whose stages are optimised in
//! tiles when a whole image would not fit the memory budget.

use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use visage_image::RgbImage;
use visage_nn::optim::{Adam, Lbfgs};

use crate::color::preserve_color;
use crate::costs::{content_cost, gram, style_layer_cost, total_variation};
use crate::network::{softmax_smoothing, LossNetwork, NetworkKind};
use crate::pixels::{fit_long_side, Planar};
use crate::StyleError;

/// Adam's step size in the finer stages of a coarse-to-fine run, relative to the first stage's.
pub const REFINE_RATE_SCALE: f64 = 0.3;

/// How G is optimised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// L-BFGS (history 10, backtracking line search); one iteration is one line search.
    Lbfgs,
    /// Adam on the pixels, clamped to 0..1 after each step.
    Adam,
}

/// Where G starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// Seeded white noise around mid-grey (the lecture's start).
    Noise,
    /// The content image itself.
    Content,
}

/// Everything that shapes one run.
#[derive(Debug, Clone)]
pub struct StyleOptions {
    /// Layer for J_content (index into the network's `features`).
    pub content_layer: usize,
    /// Style layers and their λ.
    pub style_layers: Vec<(usize, f64)>,
    /// Weight of J_content.
    pub alpha: f64,
    /// Weight of J_style.
    pub beta: f64,
    /// Weight of the squared total variation (pixels on a 0..1 scale).
    pub tv_weight: f64,
    /// Starting image.
    pub init: Init,
    /// Seed of the starting noise.
    pub seed: u64,
    /// Optimiser.
    pub optimizer: Optimizer,
    /// Iterations of the first (coarsest) stage.
    pub iterations: usize,
    /// Iterations of each later, finer stage.
    pub refine_iterations: usize,
    /// Adam's step size on the 0..1 pixel scale, in the first stage (finer stages use
    /// [`REFINE_RATE_SCALE`] times it).
    pub learning_rate: f64,
    /// Long side of the output, pixels.
    pub size: usize,
    /// Long side of the coarsest stage, pixels: stages double from here up to `size`.
    pub coarse_size: usize,
    /// Style images are resized to `style_scale` times the long side of the image being
    /// optimised.
    pub style_scale: f64,
    /// Keep the content's colours (luminance transfer) in the output.
    pub preserve_color: bool,
    /// Softmax over each layer's activations before the losses (Wang et al. 2021).
    pub softmax: bool,
    /// Most bytes the activations of one forward and backward pass may take; a stage that
    /// needs more is optimised in tiles.
    pub max_memory: u64,
    /// Report an image every this many iterations (0: never).
    pub snapshot_every: usize,
}

/// One style image and its share in the blend.
#[derive(Debug, Clone)]
pub struct StyleImage {
    /// The image.
    pub image: RgbImage,
    /// Blend weight (the weights are normalised to sum 1).
    pub weight: f64,
}

/// The cost terms after one evaluation of J.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct IterationRecord {
    /// Stage (0 = coarsest).
    pub stage: usize,
    /// Tile within the stage (0 when the stage is not tiled).
    pub tile: usize,
    /// Evaluation number within the stage and tile, from 1.
    pub iteration: usize,
    /// α J_content.
    pub content: f64,
    /// β J_style.
    pub style: f64,
    /// tv · TV(G).
    pub tv: f64,
    /// Their sum.
    pub total: f64,
    /// Wall time of the evaluation (forward, backward and optimiser step), seconds.
    pub seconds: f64,
}

/// What happened in one stage.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageReport {
    /// Width of the image optimised, pixels.
    pub width: usize,
    /// Height, pixels.
    pub height: usize,
    /// Tiles the stage was split into (1: whole image).
    pub tiles: usize,
    /// Estimated activation memory of one pass over the whole image, bytes.
    pub estimated_bytes: u64,
    /// Evaluations of J.
    pub evaluations: usize,
    /// Mean wall time per evaluation, seconds.
    pub seconds_per_iteration: f64,
}

/// The JSON summary of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StyleReport {
    /// The network used.
    pub network: crate::NetworkKind,
    /// The optimiser used.
    pub optimizer: Optimizer,
    /// Output width, pixels.
    pub width: usize,
    /// Output height, pixels.
    pub height: usize,
    /// The stages, coarsest first.
    pub stages: Vec<StageReport>,
    /// Every evaluation, in order.
    pub iterations: Vec<IterationRecord>,
    /// The last evaluation of the last stage.
    pub final_losses: Option<IterationRecord>,
    /// Wall time of the whole run, seconds.
    pub seconds: f64,
    /// Peak resident memory of the process (VmHWM), bytes, where the system reports it.
    pub peak_memory_bytes: Option<u64>,
}

/// Hooks the caller can use for progress bars and snapshots.
pub trait Observer {
    /// A stage starts: its index, count, and size.
    fn stage(
        &mut self,
        _stage: usize,
        _stages: usize,
        _width: usize,
        _height: usize,
        _iterations: usize,
    ) {
    }
    /// One evaluation of J finished.
    fn iteration(&mut self, _record: &IterationRecord) {}
    /// The current image, every `snapshot_every` iterations.
    fn snapshot(&mut self, _stage: usize, _iteration: usize, _image: &RgbImage) {}
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// Peak resident memory of this process (VmHWM in /proc/self/status), bytes.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Defaults per network, chosen by looking at results (docs/STYLE.md): layers, α, β, TV.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkDefaults {
    /// Content layer.
    pub content_layer: usize,
    /// Style layers, λ = 1 each.
    pub style_layers: Vec<usize>,
    /// α.
    pub alpha: f64,
    /// β.
    pub beta: f64,
    /// Total-variation weight.
    pub tv_weight: f64,
    /// Softmax smoothing of activations.
    pub softmax: bool,
}

impl NetworkDefaults {
    /// The defaults for `kind`, with or without softmax smoothing (`None`: off; looking at the
    /// results, plain Gram losses with a large β transfer MobileNetV2 styles better than the
    /// smoothed ones, see docs/STYLE.md).
    pub fn for_network(kind: crate::NetworkKind, softmax: Option<bool>) -> Self {
        match kind {
            crate::NetworkKind::MobilenetV2 => {
                let softmax = softmax.unwrap_or(false);
                Self {
                    content_layer: 7,
                    style_layers: vec![1, 3, 6, 10, 13],
                    alpha: 1.0,
                    beta: if softmax { 1e5 } else { 3e5 },
                    tv_weight: 10.0,
                    softmax,
                }
            }
            crate::NetworkKind::Vgg19 => {
                let softmax = softmax.unwrap_or(false);
                Self {
                    // relu4_2; relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (Gatys et al.).
                    content_layer: 22,
                    style_layers: vec![1, 6, 11, 20, 29],
                    alpha: 1.0,
                    beta: if softmax { 1e5 } else { 1e3 },
                    tv_weight: 1.0,
                    softmax,
                }
            }
        }
    }
}

impl StyleOptions {
    /// The settings iterations are timed with (`style_bench`, `visage device --check`): one
    /// stage of `side` pixels from white noise, Adam at 0.02, content at `relu4_2` (VGG19) or
    /// `features.7` (MobileNetV2), five unit-weight style layers (`relu1_1` .. `relu5_1`, or
    /// `features.1, 3, 6, 10, 13`), no total variation, no memory limit.
    pub fn for_timing(kind: NetworkKind, side: usize, iterations: usize) -> Self {
        let (content_layer, style_layers) = match kind {
            NetworkKind::Vgg19 => (22, vec![1, 6, 11, 20, 29]),
            NetworkKind::MobilenetV2 => (7, vec![1, 3, 6, 10, 13]),
        };
        Self {
            content_layer,
            style_layers: style_layers.into_iter().map(|l| (l, 1.0)).collect(),
            alpha: 1.0,
            beta: 1.0,
            tv_weight: 0.0,
            init: Init::Noise,
            seed: 1,
            optimizer: Optimizer::Adam,
            iterations,
            refine_iterations: 1,
            learning_rate: 0.02,
            size: side,
            coarse_size: side,
            style_scale: 1.0,
            preserve_color: false,
            softmax: false,
            max_memory: u64::MAX,
            snapshot_every: 0,
        }
    }

    fn check(&self, styles: &[StyleImage]) -> Result<(), StyleError> {
        let style_weight: f64 = self.style_layers.iter().map(|(_, l)| l.abs()).sum();
        if self.alpha == 0.0 && (self.beta == 0.0 || style_weight == 0.0) && self.tv_weight == 0.0 {
            return Err(StyleError::Options(
                "every cost weight is zero (alpha, beta or all style-layer λ, tv): nothing to optimise".into(),
            ));
        }
        let weights = [self.alpha, self.beta, self.tv_weight];
        if weights
            .iter()
            .chain(self.style_layers.iter().map(|(_, l)| l))
            .any(|w| !w.is_finite() || *w < 0.0)
        {
            return Err(StyleError::Options(
                "weights must be finite and not negative".into(),
            ));
        }
        if styles.is_empty() && self.beta != 0.0 {
            return Err(StyleError::Options("no style image given".into()));
        }
        let blend: f64 = styles.iter().map(|s| s.weight).sum();
        if styles
            .iter()
            .any(|s| !s.weight.is_finite() || s.weight < 0.0)
            || (!styles.is_empty() && blend <= 0.0)
        {
            return Err(StyleError::Options(
                "style blend weights must be non-negative with a positive sum".into(),
            ));
        }
        if self.size < 16 || self.coarse_size < 16 {
            return Err(StyleError::Options(
                "--size must be at least 16 pixels".into(),
            ));
        }
        if !(self.style_scale > 0.0 && self.style_scale.is_finite()) {
            return Err(StyleError::Options("--style-scale must be positive".into()));
        }
        if self.iterations == 0 {
            return Err(StyleError::Options("--iters must be at least 1".into()));
        }
        Ok(())
    }

    fn layers(&self) -> Vec<usize> {
        let mut l = vec![self.content_layer];
        l.extend(self.style_layers.iter().map(|(i, _)| *i));
        l
    }

    /// The long sides of the stages, coarsest first: doubling from `coarse_size` up to `size`.
    pub fn stage_sizes(&self) -> Vec<usize> {
        let mut sizes = vec![self.size];
        while *sizes.last().unwrap_or(&0) > self.coarse_size {
            let half = sizes.last().copied().unwrap_or(0) / 2;
            sizes.push(half.max(self.coarse_size));
            if half <= self.coarse_size {
                break;
            }
        }
        sizes.reverse();
        sizes.dedup();
        sizes
    }
}

/// The constant targets of one stage: the content activations and the blended style Grams per
/// position.
struct Targets {
    /// Per style layer: Σ_s w_s G(S_s) / (n_H n_W) of style s, `[1, C, C]`.
    grams_per_position: Vec<Tensor<3>>,
}

fn tensor_of(p: &Planar, device: &Device) -> Tensor<4> {
    Tensor::from_data(
        TensorData::new(p.data.clone(), [1, 3, p.height, p.width]),
        device,
    )
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_data()
        .try_to_vec::<f32>()
        .map(|v| v[0] as f64)
        .unwrap_or(f64::NAN)
}

/// A deterministic `side` x `side` picture with edges and colours (`salt` varies it), for timing:
/// costs and timings do not depend on what it shows.
pub fn timing_image(side: usize, salt: usize) -> RgbImage {
    let raw: Vec<u8> = (0..side * side * 3)
        .map(|i| ((i * 7919 + salt) % 251) as u8 ^ ((i / (3 * side)) as u8))
        .collect();
    RgbImage::from_raw(side as u32, side as u32, raw)
        .unwrap_or_else(|| RgbImage::new(side as u32, side as u32))
}

/// Stylises `content` with the blend of `styles`, measuring costs with `net`, on the device
/// where `net` lives ([`LossNetwork::device`]).
pub fn stylize(
    net: &LossNetwork,
    content: &RgbImage,
    styles: &[StyleImage],
    options: &StyleOptions,
    observer: &mut dyn Observer,
) -> Result<(RgbImage, StyleReport), StyleError> {
    options.check(styles)?;
    let started = Instant::now();
    let device = net.device().clone().autodiff();
    let kind = net.kind();
    let content_full = Planar::from_rgb(content);
    if content_full.width == 0 || content_full.height == 0 {
        return Err(StyleError::Input("the content image is empty".into()));
    }
    let styles_full: Vec<(Planar, f64)> = styles
        .iter()
        .map(|s| (Planar::from_rgb(&s.image), s.weight))
        .collect();
    let blend_sum: f64 = styles.iter().map(|s| s.weight).sum();
    let deepest_style = options.style_layers.iter().map(|(l, _)| *l).max();
    let sizes = options.stage_sizes();
    let final_long = *sizes.last().unwrap_or(&options.size);
    // Refuse a style image that cannot fill one receptive field of the deepest style layer at
    // the final stage: its Gram would be built from padding.
    if let Some(deepest) = deepest_style {
        let (field, _) = kind.receptive_field(deepest);
        for (i, (s, _)) in styles_full.iter().enumerate() {
            let long = (final_long as f64 * options.style_scale).round() as usize;
            let (w, h) = fit_long_side(s.width, s.height, long);
            if w.min(h) < field && s.width.min(s.height) < field {
                return Err(StyleError::Input(format!(
                    "style image {} is {}x{} pixels, smaller than the {} px receptive field of {} ({}): use a larger style image, or shallower --style-layers",
                    i + 1,
                    s.width,
                    s.height,
                    field,
                    kind.layer_name(deepest),
                    kind.name()
                )));
            }
        }
    }
    let layers = options.layers();
    let mut report = StyleReport {
        network: kind,
        optimizer: options.optimizer,
        width: 0,
        height: 0,
        stages: Vec::new(),
        iterations: Vec::new(),
        final_losses: None,
        seconds: 0.0,
        peak_memory_bytes: None,
    };
    let mut current: Option<Planar> = None;
    for (stage, &long) in sizes.iter().enumerate() {
        let (w, h) = fit_long_side(content_full.width, content_full.height, long);
        let content_stage = content_full.resize(w, h);
        let style_long = ((long as f64 * options.style_scale).round() as usize).max(16);
        let targets = style_targets(net, &styles_full, blend_sum, style_long, options, &device);
        let start = match current.take() {
            Some(prev) => prev.resize(w, h),
            None => match options.init {
                Init::Noise => Planar::noise(w, h, options.seed, 0.1),
                Init::Content => content_stage.clone(),
            },
        };
        let iterations = if stage == 0 {
            options.iterations
        } else {
            options.refine_iterations.max(1)
        };
        let per_pixel = kind.bytes_per_pixel(*layers.iter().max().unwrap_or(&0));
        let estimated = (per_pixel * (w * h) as f64) as u64;
        observer.stage(stage, sizes.len(), w, h, iterations);
        let tiles = plan_tiles(
            w,
            h,
            per_pixel,
            options.max_memory,
            kind.receptive_field(*layers.iter().max().unwrap_or(&0)).0,
        );
        let before = report.iterations.len();
        let stage_started = Instant::now();
        let mut result = start.clone();
        if tiles.len() == 1 {
            result = optimise(
                net,
                &device,
                &targets,
                &content_stage,
                start,
                options,
                &layers,
                iterations,
                (stage, 0),
                observer,
                &mut report.iterations,
            )?;
        } else {
            let mut acc = vec![0f32; 3 * w * h];
            let mut weight = vec![0f32; w * h];
            for (t, tile) in tiles.iter().enumerate() {
                let crop = result.crop(tile.left, tile.top, tile.width, tile.height);
                let content_crop = content_stage.crop(tile.left, tile.top, tile.width, tile.height);
                let out = optimise(
                    net,
                    &device,
                    &targets,
                    &content_crop,
                    crop,
                    options,
                    &layers,
                    iterations,
                    (stage, t),
                    observer,
                    &mut report.iterations,
                )?;
                tile.blend_into(&out, &mut acc, &mut weight, w, h);
            }
            let plane = w * h;
            for c in 0..3 {
                for i in 0..plane {
                    result.data[c * plane + i] = acc[c * plane + i] / weight[i].max(1e-6);
                }
            }
        }
        let evaluations = report.iterations.len() - before;
        report.stages.push(StageReport {
            width: w,
            height: h,
            tiles: tiles.len(),
            estimated_bytes: estimated,
            evaluations,
            seconds_per_iteration: stage_started.elapsed().as_secs_f64()
                / evaluations.max(1) as f64,
        });
        current = Some(result);
    }
    let mut out = current.ok_or_else(|| StyleError::Options("no stage ran".into()))?;
    if options.preserve_color {
        out = preserve_color(&content_full.resize(out.width, out.height), &out);
    }
    report.width = out.width;
    report.height = out.height;
    report.final_losses = report.iterations.last().copied();
    report.seconds = started.elapsed().as_secs_f64();
    report.peak_memory_bytes = peak_memory_bytes();
    Ok((out.to_rgb(), report))
}

fn style_targets(
    net: &LossNetwork,
    styles: &[(Planar, f64)],
    blend_sum: f64,
    long: usize,
    options: &StyleOptions,
    device: &Device,
) -> Targets {
    let style_layers: Vec<usize> = options.style_layers.iter().map(|(l, _)| *l).collect();
    let mut grams: Vec<Option<Tensor<3>>> = vec![None; style_layers.len()];
    for (image, weight) in styles {
        let (w, h) = fit_long_side(image.width, image.height, long);
        let x = tensor_of(&image.resize(w, h), device);
        let feats = net.features(x, &style_layers);
        for (slot, f) in grams.iter_mut().zip(feats) {
            let f = if options.softmax {
                softmax_smoothing(f)
            } else {
                f
            };
            let [_, _, fh, fw] = f.dims();
            let g = gram(f)
                .mul_scalar(weight / blend_sum / (fh * fw) as f64)
                .detach();
            *slot = Some(match slot.take() {
                Some(acc) => acc + g,
                None => g,
            });
        }
    }
    Targets {
        grams_per_position: grams.into_iter().flatten().collect(),
    }
}

/// Runs the optimiser on one image (or tile) and returns the optimised pixels.
#[allow(clippy::too_many_arguments)]
fn optimise(
    net: &LossNetwork,
    device: &Device,
    targets: &Targets,
    content: &Planar,
    start: Planar,
    options: &StyleOptions,
    layers: &[usize],
    iterations: usize,
    (stage, tile): (usize, usize),
    observer: &mut dyn Observer,
    records: &mut Vec<IterationRecord>,
) -> Result<Planar, StyleError> {
    let (w, h) = (start.width, start.height);
    let content_target = {
        let feats = net.features(tensor_of(content, device), &layers[..1]);
        let f = feats
            .into_iter()
            .next()
            .ok_or_else(|| StyleError::Network("no content activations".into()))?;
        let f = if options.softmax {
            softmax_smoothing(f)
        } else {
            f
        };
        f.detach()
    };
    let mut evaluation = 0usize;
    let mut evaluate = |pixels: &[f32], grad: &mut [f32]| -> Result<f64, StyleError> {
        let t0 = Instant::now();
        let x = Tensor::<4>::from_data(TensorData::new(pixels.to_vec(), [1, 3, h, w]), device)
            .require_grad();
        let feats = net.features(x.clone(), layers);
        let mut feats = feats.into_iter().map(|f| {
            if options.softmax {
                softmax_smoothing(f)
            } else {
                f
            }
        });
        let content_act = feats
            .next()
            .ok_or_else(|| StyleError::Network("no content activations".into()))?;
        let jc = content_cost(content_target.clone(), content_act).mul_scalar(options.alpha);
        let mut js = Tensor::<1>::zeros([1], device);
        for ((f, (_, lambda)), target) in feats
            .zip(&options.style_layers)
            .zip(&targets.grams_per_position)
        {
            if *lambda == 0.0 {
                continue;
            }
            let [_, c, fh, fw] = f.dims();
            let g = gram(f);
            let target = target.clone().mul_scalar((fh * fw) as f64);
            js = js + style_layer_cost(target, g, [c, fh, fw]).mul_scalar(*lambda);
        }
        let js = js.mul_scalar(options.beta);
        let tv = total_variation(x.clone()).mul_scalar(options.tv_weight);
        let total = jc.clone() + js.clone() + tv.clone();
        let grads = total.clone().backward();
        let g = x
            .grad(&grads)
            .ok_or_else(|| StyleError::Network("no gradient reached the image".into()))?
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| StyleError::Network(format!("{e:?}")))?;
        grad.copy_from_slice(&g);
        evaluation += 1;
        let record = IterationRecord {
            stage,
            tile,
            iteration: evaluation,
            content: scalar(jc.detach()),
            style: scalar(js.detach()),
            tv: scalar(tv.detach()),
            total: scalar(total.detach()),
            seconds: t0.elapsed().as_secs_f64(),
        };
        records.push(record);
        observer.iteration(&record);
        if options.snapshot_every > 0 && evaluation.is_multiple_of(options.snapshot_every) {
            let snap = Planar {
                width: w,
                height: h,
                data: pixels.to_vec(),
            };
            observer.snapshot(stage, evaluation, &snap.to_rgb());
        }
        Ok(record.total)
    };
    let mut pixels = start.data;
    let mut grad = vec![0f32; pixels.len()];
    match options.optimizer {
        Optimizer::Adam => {
            // Finer stages start from an upsampled optimum: full-size steps there add pixel noise
            // (seen in the contact-sheet runs), so they take smaller ones.
            let rate = if stage == 0 {
                options.learning_rate
            } else {
                options.learning_rate * REFINE_RATE_SCALE
            };
            let mut adam = Adam::new(rate);
            for _ in 0..iterations {
                evaluate(&pixels, &mut grad)?;
                adam.step_flat(&mut pixels, &grad);
                pixels.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
            }
        }
        Optimizer::Lbfgs => {
            let lbfgs = Lbfgs {
                history: 10,
                max_iterations: iterations,
                gradient_tolerance: 0.0,
                armijo: 1e-4,
            };
            let mut failure = None;
            lbfgs.minimize(&mut pixels, |x: &[f32], g: &mut [f32]| {
                match evaluate(x, g) {
                    Ok(v) => v as f32,
                    Err(e) => {
                        failure.get_or_insert(e);
                        g.iter_mut().for_each(|v| *v = 0.0);
                        0.0
                    }
                }
            });
            if let Some(e) = failure {
                return Err(e);
            }
        }
    }
    Ok(Planar {
        width: w,
        height: h,
        data: pixels,
    })
}

/// A window of a stage optimised on its own, with its feathered blend weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    /// Left edge, pixels.
    pub left: usize,
    /// Top edge, pixels.
    pub top: usize,
    /// Width, pixels.
    pub width: usize,
    /// Height, pixels.
    pub height: usize,
    /// Overlap with neighbours over which the weights ramp, pixels.
    pub overlap: usize,
}

impl Tile {
    fn blend_into(&self, tile: &Planar, acc: &mut [f32], weight: &mut [f32], w: usize, h: usize) {
        let ramp = |d: usize| ((d as f32 + 1.0) / (self.overlap as f32 + 1.0)).min(1.0);
        for y in 0..self.height {
            let wy =
                if self.top == 0 { 1.0 } else { ramp(y) }.min(if self.top + self.height == h {
                    1.0
                } else {
                    ramp(self.height - 1 - y)
                });
            for x in 0..self.width {
                let wx = if self.left == 0 { 1.0 } else { ramp(x) }.min(
                    if self.left + self.width == w {
                        1.0
                    } else {
                        ramp(self.width - 1 - x)
                    },
                );
                let at = (self.top + y) * w + self.left + x;
                let k = wx * wy;
                weight[at] += k;
                for c in 0..3 {
                    acc[c * w * h + at] +=
                        k * tile.data[c * self.width * self.height + y * self.width + x];
                }
            }
        }
    }
}

/// Splits a `w x h` stage into overlapping tiles whose passes each fit `budget` bytes at
/// `bytes_per_pixel`; one tile when the whole image fits. Overlaps are half a receptive field
/// (at least 32 px) so seams are optimised from both sides.
pub fn plan_tiles(
    w: usize,
    h: usize,
    bytes_per_pixel: f64,
    budget: u64,
    field: usize,
) -> Vec<Tile> {
    if bytes_per_pixel * (w * h) as f64 <= budget as f64 {
        return vec![Tile {
            left: 0,
            top: 0,
            width: w,
            height: h,
            overlap: 0,
        }];
    }
    let overlap = (field / 2).clamp(32, 256);
    let side = ((budget as f64 / bytes_per_pixel).sqrt() as usize).max(2 * overlap + 32);
    let starts = |len: usize| -> Vec<(usize, usize)> {
        if len <= side {
            return vec![(0, len)];
        }
        let step = side - overlap;
        let count = (len - overlap).div_ceil(step);
        (0..count)
            .map(|i| {
                let start = (i * (len - side)) / (count - 1).max(1);
                (start, side)
            })
            .collect()
    };
    let mut tiles = Vec::new();
    for &(top, th) in &starts(h) {
        for &(left, tw) in &starts(w) {
            tiles.push(Tile {
                left,
                top,
                width: tw,
                height: th,
                overlap,
            });
        }
    }
    tiles
}

#[cfg(test)]
mod tests {
    use super::*;
    use visage_testdata::shared;

    fn options() -> StyleOptions {
        StyleOptions {
            content_layer: 4,
            style_layers: vec![(1, 1.0), (3, 1.0)],
            refine_iterations: 5,
            learning_rate: 0.05,
            max_memory: 4 << 30,
            ..StyleOptions::for_timing(NetworkKind::MobilenetV2, 512, 10)
        }
    }

    fn pattern(w: u32, h: u32, k: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                ((x * k) % 256) as u8,
                ((y * 3 * k) % 256) as u8,
                (((x + y) * 7) % 256) as u8,
            ])
        })
    }

    #[test]
    fn vgg19_with_random_weights_takes_gradients_and_lowers_the_cost() {
        let device = Device::flex().autodiff();
        let net = LossNetwork::vgg19_random(&device);
        let mut o = options();
        // relu2_2 for content; relu1_1, relu2_1, relu3_1 for style.
        o.content_layer = 8;
        o.style_layers = vec![(1, 1.0), (6, 1.0), (11, 1.0)];
        o.size = 40;
        o.coarse_size = 40;
        o.iterations = 8;
        let styles = [StyleImage {
            image: pattern(48, 48, 5),
            weight: 1.0,
        }];
        let (out, report) = stylize(&net, &pattern(40, 30, 2), &styles, &o, &mut Quiet).unwrap();
        assert_eq!(out.dimensions(), (40, 30));
        let totals: Vec<f64> = report.iterations.iter().map(|r| r.total).collect();
        assert_eq!(totals.len(), 8);
        assert!(totals.iter().all(|t| t.is_finite()));
        assert!(totals[7] < totals[0], "{totals:?}");
    }

    #[test]
    fn mobilenet_v2_lowers_the_style_cost_of_a_real_painting() {
        let weights = shared().join("models/mobilenet_v2/mobilenet_v2-b0353104.pth");
        let device = Device::flex().autodiff();
        let net = LossNetwork::mobilenet_v2(&weights, &device).unwrap();
        let read =
            |p: &str| visage_image::decode_file(&shared().join(p), &Default::default()).unwrap();
        let content = read("data/style/photos/tubingen.jpg");
        let style = read("data/style/paintings/starry_night.jpg");
        let d = NetworkDefaults::for_network(crate::NetworkKind::MobilenetV2, None);
        let mut o = options();
        o.content_layer = d.content_layer;
        o.style_layers = d.style_layers.iter().map(|&l| (l, 1.0)).collect();
        o.alpha = d.alpha;
        o.beta = d.beta;
        o.softmax = d.softmax;
        o.size = 96;
        o.coarse_size = 96;
        o.iterations = 20;
        o.optimizer = Optimizer::Lbfgs;
        let styles = [StyleImage {
            image: style,
            weight: 1.0,
        }];
        let (_, report) = stylize(&net, &content, &styles, &o, &mut Quiet).unwrap();
        let first = report.iterations.first().unwrap();
        let last = report.final_losses.unwrap();
        assert!(last.total < 0.5 * first.total, "{first:?} -> {last:?}");
        assert!(last.style < first.style, "{first:?} -> {last:?}");
    }

    #[test]
    fn stages_double_up_to_the_size() {
        let mut o = options();
        assert_eq!(o.stage_sizes(), vec![512]);
        o.size = 2048;
        assert_eq!(o.stage_sizes(), vec![512, 1024, 2048]);
        o.size = 1500;
        assert_eq!(o.stage_sizes(), vec![512, 750, 1500]);
        o.size = 300;
        assert_eq!(o.stage_sizes(), vec![300]);
    }

    #[test]
    fn tiles_cover_the_image_within_the_budget() {
        assert_eq!(plan_tiles(100, 80, 10.0, 1 << 20, 64).len(), 1);
        let tiles = plan_tiles(2048, 1365, 1000.0, 500_000_000, 300);
        assert!(tiles.len() > 1);
        let mut covered = vec![false; 2048 * 1365];
        for t in &tiles {
            assert!(1000.0 * (t.width * t.height) as f64 <= 500_000_000.0);
            for y in t.top..t.top + t.height {
                for x in t.left..t.left + t.width {
                    covered[y * 2048 + x] = true;
                }
            }
        }
        assert!(covered.iter().all(|&c| c));
    }

    #[test]
    fn zero_weights_everywhere_are_refused() {
        let mut o = options();
        o.alpha = 0.0;
        o.beta = 0.0;
        let e = o.check(&[]).unwrap_err();
        assert!(e.to_string().contains("zero"), "{e}");
        let mut o = options();
        o.alpha = 0.0;
        o.style_layers = vec![(1, 0.0)];
        assert!(o.check(&[]).is_err());
    }
}
