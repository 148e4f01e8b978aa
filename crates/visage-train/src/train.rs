//! The training loop for the three ways of learning a similarity: a Siamese embedding with the
//! triplet loss and online mining, the twin network with a pair head (Koch et al.), and
//! prototypical networks on N-way K-shot episodes. Adam on burn's autodiff (flex CPU backend).

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::augment::Augment;
use crate::checkpoint::{self, CheckpointMeta};
use crate::collapse::{spread, Collapse, CollapseGuard};
use crate::data::Dataset;
use crate::loss::{bce_with_logits, prototypical_loss, triplet_loss};
use crate::mining::{mine, squared_distances, Miner};
use crate::model::{l2_normalize, NetConfig, PairFeatures, SimilarityModel};
use crate::rng::Rng;
use crate::TrainError;

/// What is learned.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Method {
    /// Siamese embedding, triplet loss on mined triplets of P×K batches.
    Triplet {
        /// The margin α.
        margin: f32,
        /// How triplets are mined.
        miner: Miner,
        /// Scale embeddings to unit length (FaceNet), so the margin has a fixed meaning.
        normalize: bool,
    },
    /// Twin network and pair head trained end to end with binary cross-entropy on the
    /// same/different pairs of P×K batches (Koch et al.).
    Pair {
        /// The head's features.
        features: PairFeatures,
    },
    /// Prototypical networks: each batch is an episode of `ways` classes with `shots` support
    /// images and the rest of the class's images as queries.
    Proto {
        /// Support images per class; the other `images_per_class - shots` are queries.
        shots: usize,
    },
}

impl Method {
    /// A short name: `triplet`, `pair` or `proto`.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Triplet { .. } => "triplet",
            Method::Pair { .. } => "pair",
            Method::Proto { .. } => "proto",
        }
    }
}

/// Every setting of a run; together with the seed it fixes the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    /// What is learned.
    pub method: Method,
    /// The embedding network.
    pub net: NetConfig,
    /// Optimizer steps in all.
    pub steps: usize,
    /// Adam's learning rate at the start; it follows a cosine down to 5% of it at the end.
    pub learning_rate: f64,
    /// Classes per batch (P, or N ways for episodes).
    pub classes_per_batch: usize,
    /// Images per class in a batch (K, or shots + queries for episodes).
    pub images_per_class: usize,
    /// Add each class rotated by 90/180/270° as new classes.
    pub rotations: bool,
    /// Random distortions of every training image.
    pub augment: Augment,
    /// Seed of the weights' initialisation, batch sampling and augmentation.
    pub seed: u64,
    /// Steps between checkpoints (0: only at the end).
    pub checkpoint_every: usize,
    /// Steps the collapse guard averages over.
    pub collapse_window: usize,
    /// Stop as soon as the embedding has collapsed.
    pub stop_on_collapse: bool,
}

impl TrainConfig {
    /// The defaults for `method` on Omniglot at 28x28 (the settings behind the README figures).
    pub fn omniglot(method: Method) -> Self {
        let (classes, images, steps, lr) = match method {
            Method::Triplet { .. } => (32, 4, 1000, 1e-3),
            Method::Pair { .. } => (32, 4, 1000, 1e-3),
            Method::Proto { .. } => (30, 5, 1000, 1e-3),
        };
        Self {
            method,
            net: NetConfig::default(),
            steps,
            learning_rate: lr,
            classes_per_batch: classes,
            images_per_class: images,
            rotations: true,
            augment: Augment::OMNIGLOT,
            seed: 1,
            checkpoint_every: 250,
            collapse_window: 50,
            stop_on_collapse: false,
        }
    }

    /// The pair-head features when the method has a head.
    pub fn pair_head(&self) -> Option<PairFeatures> {
        match self.method {
            Method::Pair { features } => Some(features),
            _ => None,
        }
    }

    /// Whether embeddings are compared after scaling to unit length.
    pub fn normalizes(&self) -> bool {
        matches!(
            self.method,
            Method::Triplet {
                normalize: true,
                ..
            }
        )
    }

    fn validate(&self, data: &Dataset) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::Config(m));
        if data.side != self.net.input_size {
            return bad(format!(
                "images are {0}x{0} but the network expects {1}x{1}",
                data.side, self.net.input_size
            ));
        }
        if self.net.output_side() == 0 {
            return bad(format!(
                "{} blocks shrink a {}-pixel input to nothing",
                self.net.blocks, self.net.input_size
            ));
        }
        if self.classes_per_batch < 2 || self.images_per_class < 2 {
            return bad("a batch needs at least 2 classes of at least 2 images".into());
        }
        if let Method::Proto { shots } = self.method {
            if shots == 0 || shots >= self.images_per_class {
                return bad(format!(
                    "episodes need 1 <= shots < images per class ({})",
                    self.images_per_class
                ));
            }
        }
        let usable = data
            .classes
            .iter()
            .filter(|c| c.images.len() >= self.images_per_class)
            .count();
        if usable < self.classes_per_batch {
            return bad(format!(
                "{} classes per batch, but only {usable} classes have {} images",
                self.classes_per_batch, self.images_per_class
            ));
        }
        Ok(())
    }
}

/// One point of the learning curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Step (1-based).
    pub step: usize,
    /// The batch's loss.
    pub loss: f32,
    /// The batch's accuracy where the method has one (pairs classified, queries placed), or
    /// the fraction of mined triplets with a positive loss for the triplet method.
    pub accuracy: f32,
}

/// Where a run stands, for progress bars.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Steps done.
    pub step: usize,
    /// Steps in all.
    pub total: usize,
    /// Loss of the last step.
    pub loss: f32,
    /// Images per second over this session.
    pub images_per_second: f64,
}

/// What a finished run reports (also written as `summary.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    /// The settings.
    pub config: TrainConfig,
    /// Steps done.
    pub steps_done: usize,
    /// Classes trained on (after rotations).
    pub classes: usize,
    /// Images trained on (before augmentation).
    pub images: usize,
    /// Mean loss over the last 50 steps.
    pub final_loss: f32,
    /// Mean accuracy (see [`CurvePoint::accuracy`]) over the last 50 steps.
    pub final_accuracy: f32,
    /// Training time, seconds, summed over resumed sessions.
    pub train_seconds: f64,
    /// Worker threads of this session.
    pub threads: usize,
    /// The first collapse the guard saw, if any.
    pub collapse: Option<Collapse>,
    /// The final checkpoint.
    pub checkpoint: PathBuf,
    /// The learning-curve PNG.
    pub curve_png: PathBuf,
}

struct Batch {
    images: Vec<Vec<f32>>,
    labels: Vec<usize>,
}

fn sample_batch(data: &Dataset, config: &TrainConfig, rng: &mut Rng) -> Batch {
    let eligible: Vec<usize> = (0..data.classes.len())
        .filter(|&c| data.classes[c].images.len() >= config.images_per_class)
        .collect();
    let picked = rng.choose(eligible.len(), config.classes_per_batch);
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for (label, &i) in picked.iter().enumerate() {
        let class = &data.classes[eligible[i]];
        for j in rng.choose(class.images.len(), config.images_per_class) {
            images.push(config.augment.apply(&class.images[j], data.side, rng));
            labels.push(label);
        }
    }
    Batch { images, labels }
}

fn values(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}

fn scalar(t: &Tensor<1>) -> f32 {
    t.clone()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map(|v| v[0])
        .unwrap_or(f32::NAN)
}

fn index(values: Vec<i64>, device: &Device) -> Tensor<1, burn::tensor::Int> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

/// One step's loss tensor, its accuracy figure and the batch spread.
fn step_loss(
    model: &SimilarityModel,
    config: &TrainConfig,
    batch: &Batch,
    rng: &mut Rng,
    device: &Device,
) -> Result<(Tensor<1>, f32, f32), TrainError> {
    let x = checkpoint::images_tensor(&batch.images, config.net.input_size, device)?;
    let mut emb = model.net.forward(x);
    if config.normalizes() {
        emb = l2_normalize(emb);
    }
    let dim = emb.dims()[1];
    let plain = values(emb.clone().detach());
    let batch_spread = spread(&plain, dim);
    match config.method {
        Method::Triplet { margin, miner, .. } => {
            let dist = squared_distances(&plain, dim);
            let triplets = mine(&dist, &batch.labels, miner);
            let n = batch.labels.len();
            let active = triplets
                .iter()
                .filter(|t| {
                    dist[t.anchor * n + t.positive] - dist[t.anchor * n + t.negative] + margin > 0.0
                })
                .count();
            let frac = active as f32 / triplets.len().max(1) as f32;
            Ok((triplet_loss(emb, &triplets, margin), frac, batch_spread))
        }
        Method::Pair { features } => {
            let head = model
                .head
                .as_ref()
                .ok_or_else(|| TrainError::Config("pair method without a head".into()))?;
            let n = batch.labels.len();
            let mut left = Vec::new();
            let mut right = Vec::new();
            let mut targets = Vec::new();
            for i in 0..n {
                for j in i + 1..n {
                    if batch.labels[i] == batch.labels[j] {
                        left.push(i as i64);
                        right.push(j as i64);
                        targets.push(1.0f32);
                    }
                }
            }
            let positives = targets.len();
            while targets.len() < 2 * positives {
                let (i, j) = (rng.below(n), rng.below(n));
                if batch.labels[i] != batch.labels[j] {
                    left.push(i as i64);
                    right.push(j as i64);
                    targets.push(0.0);
                }
            }
            let a = emb.clone().select(0, index(left, device));
            let b = emb.select(0, index(right, device));
            let logits = head.forward(features.compute(a, b));
            let z = values(logits.clone().detach());
            let correct = z
                .iter()
                .zip(&targets)
                .filter(|(z, t)| (**z > 0.0) == (**t > 0.5))
                .count();
            Ok((
                bce_with_logits(logits, &targets),
                correct as f32 / targets.len() as f32,
                batch_spread,
            ))
        }
        Method::Proto { shots } => {
            let k = config.images_per_class;
            let ways = batch.labels.len() / k;
            let mut support = Vec::new();
            let mut query = Vec::new();
            let mut query_labels = Vec::new();
            for c in 0..ways {
                for j in 0..k {
                    if j < shots {
                        support.push((c * k + j) as i64);
                    } else {
                        query.push((c * k + j) as i64);
                        query_labels.push(c);
                    }
                }
            }
            let s = emb.clone().select(0, index(support, device));
            let protos = s
                .reshape([ways, shots, dim])
                .mean_dim(1)
                .reshape([ways, dim]);
            let q = emb.select(0, index(query, device));
            let (loss, acc) = prototypical_loss(protos, q, &query_labels);
            Ok((loss, acc, batch_spread))
        }
    }
}

fn learning_rate(config: &TrainConfig, step: usize) -> f64 {
    let t = step as f64 / config.steps.max(1) as f64;
    let floor = 0.05;
    config.learning_rate * (floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
}

fn mean_tail(curve: &[CurvePoint], f: fn(&CurvePoint) -> f32) -> f32 {
    let tail = &curve[curve.len().saturating_sub(50)..];
    tail.iter().map(f).sum::<f32>() / tail.len().max(1) as f32
}

/// Trains on `data` into `out_dir` (`model.safetensors`, `summary.json`, `curve.png`),
/// starting from scratch or from the checkpoint `resume` (whose settings then apply, except the
/// total number of steps, taken from `config`). `progress` is called after every step.
pub fn train(
    config: &TrainConfig,
    data: &Dataset,
    out_dir: &Path,
    resume: Option<&Path>,
    progress: &mut dyn FnMut(Progress),
) -> Result<RunSummary, TrainError> {
    std::fs::create_dir_all(out_dir).map_err(|e| TrainError::io(out_dir, e))?;
    let device = Device::flex().autodiff();
    let (mut model, config, mut step, mut rng, mut curve, mut seconds) = match resume {
        Some(path) => {
            let (model, meta) = checkpoint::load(path, &device)?;
            let mut c = meta.config;
            c.steps = config.steps;
            (
                model,
                c,
                meta.step,
                Rng::from_state(meta.rng_state),
                meta.curve,
                meta.train_seconds,
            )
        }
        None => {
            let model = checkpoint::new_model(config, &device);
            (
                model,
                config.clone(),
                0,
                Rng::new(config.seed),
                Vec::new(),
                0.0,
            )
        }
    };
    config.validate(data)?;
    let margin = match config.method {
        Method::Triplet { margin, .. } => margin,
        _ => 0.0,
    };
    let mut guard = CollapseGuard::new(margin, config.collapse_window);
    let mut collapse = None;
    let mut optim = AdamConfig::new().init();
    let start = Instant::now();
    let ckpt = out_dir.join("model.safetensors");
    let session_start = step;
    let save = |model: &SimilarityModel, step, rng: &Rng, curve: &[CurvePoint], secs| {
        let meta = CheckpointMeta {
            config: config.clone(),
            step,
            rng_state: rng.state(),
            curve: curve.to_vec(),
            train_seconds: secs,
        };
        checkpoint::save(model, &meta, &ckpt)
    };
    while step < config.steps {
        let batch = sample_batch(data, &config, &mut rng);
        let (loss, accuracy, batch_spread) = step_loss(&model, &config, &batch, &mut rng, &device)?;
        let loss_value = scalar(&loss);
        if !loss_value.is_finite() {
            return Err(TrainError::Config(format!(
                "loss became {loss_value} at step {}: lower the learning rate",
                step + 1
            )));
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(learning_rate(&config, step), model, grads);
        step += 1;
        curve.push(CurvePoint {
            step,
            loss: loss_value,
            accuracy,
        });
        if matches!(config.method, Method::Triplet { .. }) && collapse.is_none() {
            collapse = guard.observe(step, loss_value, batch_spread);
        }
        let elapsed = start.elapsed().as_secs_f64();
        progress(Progress {
            step,
            total: config.steps,
            loss: loss_value,
            images_per_second: ((step - session_start) * batch.images.len()) as f64
                / elapsed.max(1e-9),
        });
        if config.checkpoint_every > 0 && step % config.checkpoint_every == 0 {
            save(&model, step, &rng, &curve, seconds + elapsed)?;
        }
        if collapse.is_some() && config.stop_on_collapse {
            break;
        }
    }
    seconds += start.elapsed().as_secs_f64();
    save(&model, step, &rng, &curve, seconds)?;
    let curve_png = out_dir.join("curve.png");
    crate::plot::write_curve_png(&curve, &curve_png)?;
    let summary = RunSummary {
        config: config.clone(),
        steps_done: step,
        classes: data.classes.len(),
        images: data.image_count(),
        final_loss: mean_tail(&curve, |p| p.loss),
        final_accuracy: mean_tail(&curve, |p| p.accuracy),
        train_seconds: seconds,
        threads: rayon::current_num_threads(),
        collapse,
        checkpoint: ckpt,
        curve_png,
    };
    let json =
        serde_json::to_string_pretty(&summary).map_err(|e| TrainError::Config(e.to_string()))?;
    let path = out_dir.join("summary.json");
    std::fs::write(&path, json).map_err(|e| TrainError::io(&path, e))?;
    Ok(summary)
}

/// Embeddings of `images` (each `side x side`, ink in `[0, 1]`) by a model on the plain CPU
/// device, in batches; unit length when the model was trained that way.
pub fn embed(
    model: &SimilarityModel,
    config: &TrainConfig,
    images: &[Vec<f32>],
) -> Result<Vec<Vec<f32>>, TrainError> {
    let device = Device::flex();
    let mut out = Vec::with_capacity(images.len());
    for chunk in images.chunks(256) {
        let x = checkpoint::images_tensor(chunk, config.net.input_size, &device)?;
        let mut e = model.net.forward(x);
        if config.normalizes() {
            e = l2_normalize(e);
        }
        let dim = e.dims()[1];
        out.extend(values(e).chunks(dim).map(|c| c.to_vec()));
    }
    Ok(out)
}
