//! The training loop for the three ways of learning a similarity: a Siamese embedding with the
//! triplet loss and online mining, the twin network with a pair head (Koch et al.), and
//! prototypical networks on N-way K-shot episodes. Adam on burn's autodiff (flex CPU backend).

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::augment::Augment;
use crate::checkpoint::{self, CheckpointMeta};
use crate::collapse::{spread, Collapse, CollapseGuard};
use crate::data::{Dataset, Framing};
use crate::loss::{bce_with_logits, prototypical_loss, softmax_cross_entropy, triplet_loss};
use crate::mining::{mine, squared_distances, Miner};
use crate::model::{l2_normalize, LastPool, NetConfig, PairFeatures, Pooling, SimilarityModel};
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
    /// An embedding trained as a cosine classifier over all the training classes at once
    /// (Chen et al.'s Baseline++), then used by nearest neighbour like the others.
    Classify {
        /// Training classes (set from the data when training starts).
        classes: usize,
        /// The scale `s` of the logits `s · cos(f, w_c)` (an inverse temperature).
        scale: f32,
    },
}

impl Method {
    /// A short name: `triplet`, `pair` or `proto`.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Triplet { .. } => "triplet",
            Method::Pair { .. } => "pair",
            Method::Proto { .. } => "proto",
            Method::Classify { .. } => "classify",
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
    /// Add each class (and each rotated copy) mirrored left-right as new classes.
    #[serde(default)]
    pub mirrors: bool,
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
    /// Parts each batch is split into, run side by side on the worker threads; their
    /// gradients, each weighted by the part's share of the loss terms, are summed (batch norm
    /// sees each part alone). Only the proto and classify methods split (their losses are means
    /// over queries or images); results depend on this number, not on the threads there are.
    #[serde(default = "one_shard")]
    pub shards: usize,
    /// Draw all the classes of a batch from one alphabet (with its rotated and mirrored
    /// copies), as the one-shot runs do: the network then learns to tell apart characters
    /// that share strokes and style, not only characters of different scripts.
    #[serde(default)]
    pub within_alphabet: bool,
    /// How each drawing is placed in the frame before it is shrunk, in training and alike when
    /// the model is evaluated (checkpoints from before this setting were trained as drawn).
    #[serde(default)]
    pub framing: Framing,
}

/// The prototypical network's embedding length on Omniglot: its last block widened to 256
/// channels: about a point more than 64 on one-shot runs, for 1% more time per step.
pub const PROTO_EMBEDDING: usize = 256;

fn one_shard() -> usize {
    1
}

impl TrainConfig {
    /// The defaults for `method` on Omniglot at 28x28 (the settings behind the README figures).
    pub fn omniglot(method: Method) -> Self {
        let proto = matches!(method, Method::Proto { .. });
        let (classes, images, steps, lr) = match method {
            Method::Triplet { .. } => (32, 4, 1000, 1e-3),
            Method::Pair { .. } => (32, 4, 1000, 1e-3),
            Method::Proto { .. } => (60, 5, 3000, 2e-3),
            Method::Classify { .. } => (64, 2, 1000, 1e-3),
        };
        Self {
            method,
            net: NetConfig {
                last_channels: proto.then_some(PROTO_EMBEDDING),
                last_pool: if proto {
                    LastPool::Global
                } else {
                    LastPool::Halve
                },
                pooling: if proto {
                    Pooling::Blurred
                } else {
                    Pooling::Max
                },
                ..NetConfig::default()
            },
            steps,
            learning_rate: lr,
            classes_per_batch: classes,
            images_per_class: images,
            rotations: true,
            mirrors: matches!(method, Method::Proto { .. }),
            augment: match method {
                Method::Proto { .. } => Augment::OMNIGLOT_WARPED,
                _ => Augment::OMNIGLOT,
            },
            seed: 1,
            checkpoint_every: 250,
            collapse_window: 50,
            stop_on_collapse: false,
            shards: match method {
                Method::Proto { .. } | Method::Classify { .. } => 2,
                _ => 1,
            },
            within_alphabet: matches!(method, Method::Proto { .. }),
            framing: match method {
                Method::Proto { .. } => Framing::OMNIGLOT,
                _ => Framing::AsDrawn,
            },
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
            } | Method::Classify { .. }
        )
    }

    /// Parts a batch is split into for this method (see [`TrainConfig::shards`]).
    fn effective_shards(&self) -> usize {
        match self.method {
            Method::Proto { .. } | Method::Classify { .. } => self.shards.max(1),
            _ => 1,
        }
    }

    fn validate(&self, data: &Dataset) -> Result<(), TrainError> {
        self.framing.validate()?;
        let bad = |m: String| Err(TrainError::Config(m));
        if data.framing != self.framing {
            return bad(format!(
                "the images were framed {:?} but the settings say {:?} (evaluation frames by the settings)",
                data.framing, self.framing
            ));
        }
        if data.side != self.net.input_size {
            return bad(format!(
                "images are {0}x{0} but the network expects {1}x{1}",
                data.side, self.net.input_size
            ));
        }
        if self.net.channels == 0 || self.net.last_channels == Some(0) {
            return bad("a block needs at least one channel".into());
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
        if let Method::Classify { classes, scale } = self.method {
            if classes != data.classes.len() {
                return bad(format!(
                    "the classifier has {classes} classes but the data {}",
                    data.classes.len()
                ));
            }
            if !(scale.is_finite() && scale > 0.0) {
                return bad("the classifier's scale must be positive".into());
            }
        }
        if self.shards == 0 || self.shards > 64 {
            return bad("shards must be between 1 and 64".into());
        }
        if self.within_alphabet {
            let eligible: Vec<usize> = (0..data.classes.len())
                .filter(|&c| data.classes[c].images.len() >= self.images_per_class)
                .collect();
            if alphabet_groups(data, &eligible, self.classes_per_batch).is_empty() {
                return bad(format!(
                    "no alphabet has {} classes for within-alphabet batches",
                    self.classes_per_batch
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

/// One batch: images with their label within the batch, their class in the data set and, for
/// episodes, whether they are support images; for the pair method, the pairs to score.
#[derive(Clone)]
struct Batch {
    images: Vec<Vec<f32>>,
    labels: Vec<usize>,
    classes: Vec<usize>,
    support: Vec<bool>,
    /// `(i, j, 1 = same class)` for the pair method.
    pairs: Vec<(usize, usize, f32)>,
}

impl Batch {
    /// The images at `indices`, in that order (pairs are not carried over).
    fn subset(&self, indices: &[usize]) -> Batch {
        Batch {
            images: indices.iter().map(|&i| self.images[i].clone()).collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            classes: indices.iter().map(|&i| self.classes[i]).collect(),
            support: indices.iter().map(|&i| self.support[i]).collect(),
            pairs: Vec::new(),
        }
    }

    /// Splits the batch into `parts` sub-batches whose losses, weighted by the returned
    /// fractions, add up to the whole batch's: the classifier's images are dealt out in turn;
    /// every episode part keeps all support images and takes its turn of the queries.
    fn split(self, method: &Method, parts: usize) -> Vec<(Batch, f32)> {
        let n = self.images.len();
        let counted: Vec<usize> = match method {
            Method::Classify { .. } => (0..n).collect(),
            Method::Proto { .. } => (0..n).filter(|&i| !self.support[i]).collect(),
            _ => Vec::new(),
        };
        if parts <= 1 || counted.len() < parts {
            return vec![(self, 1.0)];
        }
        let shared: Vec<usize> = (0..n).filter(|&i| self.support[i]).collect();
        (0..parts)
            .map(|p| {
                let mine: Vec<usize> = counted.iter().copied().skip(p).step_by(parts).collect();
                let weight = mine.len() as f32 / counted.len() as f32;
                let indices: Vec<usize> = shared.iter().copied().chain(mine).collect();
                (self.subset(&indices), weight)
            })
            .collect()
    }
}

/// The classes a batch may be drawn from: all those with enough images or, within alphabets,
/// those of one alphabet picked with probability proportional to its size among the alphabets
/// with enough of them.
fn eligible_classes(data: &Dataset, config: &TrainConfig, rng: &mut Rng) -> Vec<usize> {
    let eligible: Vec<usize> = (0..data.classes.len())
        .filter(|&c| data.classes[c].images.len() >= config.images_per_class)
        .collect();
    if !config.within_alphabet {
        return eligible;
    }
    let groups = alphabet_groups(data, &eligible, config.classes_per_batch);
    let total: usize = groups.iter().map(Vec::len).sum();
    let mut pick = rng.below(total.max(1));
    for group in &groups {
        if pick < group.len() {
            return group.clone();
        }
        pick -= group.len();
    }
    eligible
}

/// `classes` grouped by alphabet (the class name before its `/`), keeping the groups of at
/// least `min` classes, in first-seen order.
fn alphabet_groups(data: &Dataset, classes: &[usize], min: usize) -> Vec<Vec<usize>> {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for &c in classes {
        let alphabet = data.classes[c].name.split('/').next().unwrap_or_default();
        match groups.iter_mut().find(|(a, _)| *a == alphabet) {
            Some((_, g)) => g.push(c),
            None => groups.push((alphabet, vec![c])),
        }
    }
    groups
        .into_iter()
        .map(|(_, g)| g)
        .filter(|g| g.len() >= min)
        .collect()
}

fn sample_batch(data: &Dataset, config: &TrainConfig, rng: &mut Rng) -> Batch {
    let eligible = eligible_classes(data, config, rng);
    let picked = rng.choose(eligible.len(), config.classes_per_batch);
    let shots = match config.method {
        Method::Proto { shots } => shots,
        _ => 0,
    };
    let mut batch = Batch {
        images: Vec::new(),
        labels: Vec::new(),
        classes: Vec::new(),
        support: Vec::new(),
        pairs: Vec::new(),
    };
    for (label, &i) in picked.iter().enumerate() {
        let class = &data.classes[eligible[i]];
        for (k, j) in rng
            .choose(class.images.len(), config.images_per_class)
            .into_iter()
            .enumerate()
        {
            batch
                .images
                .push(config.augment.apply(&class.images[j], data.side, rng));
            batch.labels.push(label);
            batch.classes.push(eligible[i]);
            batch.support.push(k < shots);
        }
    }
    if matches!(config.method, Method::Pair { .. }) {
        batch.pairs = balanced_pairs(&batch.labels, rng);
    }
    batch
}

/// Every same-class pair of a batch, and as many different-class pairs drawn at random.
fn balanced_pairs(labels: &[usize], rng: &mut Rng) -> Vec<(usize, usize, f32)> {
    let n = labels.len();
    let mut pairs = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            if labels[i] == labels[j] {
                pairs.push((i, j, 1.0));
            }
        }
    }
    let positives = pairs.len();
    while pairs.len() < 2 * positives {
        let (i, j) = (rng.below(n), rng.below(n));
        if labels[i] != labels[j] {
            pairs.push((i, j, 0.0));
        }
    }
    pairs
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

/// One batch's loss tensor, its accuracy figure and the batch spread.
fn step_loss(
    model: &SimilarityModel,
    config: &TrainConfig,
    batch: &Batch,
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
            let pick = |f: fn(&(usize, usize, f32)) -> usize| {
                index(batch.pairs.iter().map(|p| f(p) as i64).collect(), device)
            };
            let targets: Vec<f32> = batch.pairs.iter().map(|p| p.2).collect();
            let a = emb.clone().select(0, pick(|p| p.0));
            let b = emb.select(0, pick(|p| p.1));
            let logits = head.forward(features.compute(a, b));
            let z = values(logits.clone().detach());
            let correct = z
                .iter()
                .zip(&targets)
                .filter(|(z, t)| (**z > 0.0) == (**t > 0.5))
                .count();
            Ok((
                bce_with_logits(logits, &targets),
                correct as f32 / targets.len().max(1) as f32,
                batch_spread,
            ))
        }
        Method::Proto { shots } => {
            // Support images come class by class, `shots` of each, labels 0..ways in order.
            let support: Vec<i64> = (0..batch.images.len())
                .filter(|&i| batch.support[i])
                .map(|i| i as i64)
                .collect();
            let ways = support.len() / shots.max(1);
            let query: Vec<usize> = (0..batch.images.len())
                .filter(|&i| !batch.support[i])
                .collect();
            let query_labels: Vec<usize> = query.iter().map(|&i| batch.labels[i]).collect();
            let s = emb.clone().select(0, index(support, device));
            let protos = s
                .reshape([ways, shots, dim])
                .mean_dim(1)
                .reshape([ways, dim]);
            let q = emb.select(0, index(query.iter().map(|&i| i as i64).collect(), device));
            let (loss, acc) = prototypical_loss(protos, q, &query_labels);
            Ok((loss, acc, batch_spread))
        }
        Method::Classify { scale, .. } => {
            let classifier = model
                .classifier
                .as_ref()
                .ok_or_else(|| TrainError::Config("classify method without a classifier".into()))?;
            let logits = classifier.forward(emb, scale);
            let (loss, acc) = softmax_cross_entropy(logits, &batch.classes);
            Ok((loss, acc, batch_spread))
        }
    }
}

/// What one part of a batch gave: gradients of its weighted loss, the loss, the accuracy
/// figure and the spread.
struct PartOutcome {
    grads: GradientsParams,
    loss: f32,
    accuracy: f32,
    spread: f32,
}

fn run_part(
    model: &SimilarityModel,
    config: &TrainConfig,
    part: &Batch,
    weight: f32,
    device: &Device,
) -> Result<PartOutcome, TrainError> {
    let (loss, accuracy, spread) = step_loss(model, config, part, device)?;
    let value = scalar(&loss);
    let grads = loss.mul_scalar(weight).backward();
    Ok(PartOutcome {
        grads: GradientsParams::from_grads(grads, model),
        loss: value,
        accuracy,
        spread,
    })
}

/// Adds the gradients of `from` into `into`, parameter by parameter.
struct SumGradients<'a> {
    into: &'a mut GradientsParams,
    from: &'a mut GradientsParams,
}

impl ModuleVisitor for SumGradients<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(b) = self.from.remove::<D>(param.id) {
            let sum = match self.into.remove::<D>(param.id) {
                Some(a) => a + b,
                None => b,
            };
            self.into.register(param.id, sum);
        }
    }
}

/// Runs the parts of a batch side by side: the first on `model` on this thread (so that its
/// batch-norm running statistics are updated exactly as in a one-part run), the others on
/// `replicas` loaded with the same weights. Returns the summed gradients and the parts'
/// weighted loss, accuracy and spread.
fn run_parts(
    model: &SimilarityModel,
    replicas: &mut [SimilarityModel],
    config: &TrainConfig,
    parts: Vec<(Batch, f32)>,
    device: &Device,
) -> Result<PartOutcome, TrainError> {
    if parts.len() == 1 {
        let (part, weight) = &parts[0];
        return run_part(model, config, part, *weight, device);
    }
    let record = model.clone().into_record();
    for r in replicas.iter_mut().take(parts.len() - 1) {
        // Fresh leaves for each replica: parts sharing parameter tensors would share one
        // autodiff graph, whose backward passes run one at a time.
        *r = r
            .clone()
            .try_load_record(record.clone())
            .map_err(|e| TrainError::Config(format!("replica: {e}")))?
            .fork(device);
    }
    let (first, rest) = parts
        .split_first()
        .ok_or_else(|| TrainError::Config("a batch split into no parts".into()))?;
    let (head, tail) = rayon::join(
        || run_part(model, config, &first.0, first.1, device),
        || {
            rest.par_iter()
                .zip(replicas.par_iter())
                .map(|((part, weight), replica)| run_part(replica, config, part, *weight, device))
                .collect::<Result<Vec<_>, _>>()
        },
    );
    let mut total = head?;
    let weights: Vec<f32> = parts.iter().map(|p| p.1).collect();
    total.loss *= weights[0];
    total.accuracy *= weights[0];
    total.spread *= weights[0];
    for (mut o, w) in tail?.into_iter().zip(&weights[1..]) {
        model.visit(&mut SumGradients {
            into: &mut total.grads,
            from: &mut o.grads,
        });
        total.loss += w * o.loss;
        total.accuracy += w * o.accuracy;
        total.spread += w * o.spread;
    }
    Ok(total)
}

/// A new model for `config`, drawn on the CPU (burn's seeded generator) and forked to `device`
/// (a fork, not a move: the copy's parameters are leaves of the new device's autodiff graph,
/// where a moved parameter would stay a node of the CPU's and its tape be spent by the first
/// backward pass).
fn new_model_on(config: &TrainConfig, device: &Device) -> SimilarityModel {
    let model = checkpoint::new_model(config, &Device::flex().autodiff());
    if visage_nn::device::is_cpu(device) {
        model
    } else {
        model.fork(device)
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
    train_on(&Device::flex(), config, data, out_dir, resume, progress)
}

/// [`train`] on `device` (for example a GPU's, from `visage_nn::Compute`). New weights are
/// drawn on the CPU from the run's seed and then moved, so a run starts from the same weights
/// on every device.
pub fn train_on(
    device: &Device,
    config: &TrainConfig,
    data: &Dataset,
    out_dir: &Path,
    resume: Option<&Path>,
    progress: &mut dyn FnMut(Progress),
) -> Result<RunSummary, TrainError> {
    std::fs::create_dir_all(out_dir).map_err(|e| TrainError::io(out_dir, e))?;
    let device = device.clone().autodiff();
    let mut optim = AdamConfig::new().init();
    let (mut model, config, mut step, mut rng, mut curve, mut seconds) = match resume {
        Some(path) => {
            let (model, meta) = checkpoint::load(path, &device)?;
            if let Some(state) = &meta.optimizer {
                optim = optim.load_record(checkpoint::load_optimizer(path, state)?);
            }
            let mut c = meta.config;
            c.steps = config.steps;
            (
                model,
                c,
                meta.step,
                Rng::new(meta.rng_state),
                meta.curve,
                meta.train_seconds,
            )
        }
        None => {
            let mut config = config.clone();
            if let Method::Classify { classes, .. } = &mut config.method {
                *classes = data.classes.len();
            }
            let model = new_model_on(&config, &device);
            let rng = crate::rng::from_seed(config.seed);
            (model, config, 0, rng, Vec::new(), 0.0)
        }
    };
    config.validate(data)?;
    let margin = match config.method {
        Method::Triplet { margin, .. } => margin,
        _ => 0.0,
    };
    let mut replicas: Vec<SimilarityModel> = (1..config.effective_shards())
        .map(|_| new_model_on(&config, &device))
        .collect();
    let mut guard = CollapseGuard::new(margin, config.collapse_window);
    let mut collapse = None;
    let start = Instant::now();
    let ckpt = out_dir.join("model.safetensors");
    let session_start = step;
    let save = |model: &SimilarityModel,
                optim: &ModuleOptimizer,
                step,
                rng: &Rng,
                curve: &[CurvePoint],
                secs| {
        let meta = CheckpointMeta {
            config: config.clone(),
            step,
            rng_state: rng.state(),
            curve: curve.to_vec(),
            train_seconds: secs,
            param_ids: Vec::new(),
            optimizer: Some(checkpoint::save_optimizer(optim, out_dir)?),
        };
        checkpoint::save(model, &meta, &ckpt)
    };
    while step < config.steps {
        let batch = sample_batch(data, &config, &mut rng);
        let batch_images = batch.images.len();
        let parts = batch.split(&config.method, config.effective_shards());
        let outcome = run_parts(&model, &mut replicas, &config, parts, &device)?;
        let (loss_value, accuracy, batch_spread) = (outcome.loss, outcome.accuracy, outcome.spread);
        if !loss_value.is_finite() {
            return Err(TrainError::Config(format!(
                "loss became {loss_value} at step {}: lower the learning rate",
                step + 1
            )));
        }
        model = optim.step(learning_rate(&config, step), model, outcome.grads);
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
            images_per_second: ((step - session_start) * batch_images) as f64 / elapsed.max(1e-9),
        });
        if config.checkpoint_every > 0 && step % config.checkpoint_every == 0 {
            save(&model, &optim, step, &rng, &curve, seconds + elapsed)?;
        }
        if collapse.is_some() && config.stop_on_collapse {
            break;
        }
    }
    seconds += start.elapsed().as_secs_f64();
    save(&model, &optim, step, &rng, &curve, seconds)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Class;

    fn batch(labels: &[usize], support: &[bool]) -> Batch {
        Batch {
            images: labels.iter().map(|&l| vec![l as f32; 4]).collect(),
            labels: labels.to_vec(),
            classes: labels.iter().map(|&l| 10 + l).collect(),
            support: support.to_vec(),
            pairs: Vec::new(),
        }
    }

    #[test]
    fn episode_parts_keep_every_support_image_and_share_out_the_queries() {
        let proto = Method::Proto { shots: 1 };
        let b = batch(
            &[0, 0, 0, 1, 1, 1, 2, 2, 2],
            &[true, false, false, true, false, false, true, false, false],
        );
        let parts = b.split(&proto, 2);
        assert_eq!(parts.len(), 2);
        for (part, weight) in &parts {
            assert_eq!(part.support.iter().filter(|s| **s).count(), 3);
            assert_eq!(&part.labels[..3], &[0, 1, 2]);
            assert!((weight - 0.5).abs() < 1e-6);
        }
        let queries: usize = parts.iter().map(|(p, _)| p.images.len() - 3).sum();
        assert_eq!(queries, 6);

        let classify = Method::Classify {
            classes: 3,
            scale: 10.0,
        };
        let b = batch(&[0, 0, 1, 1, 2], &[false; 5]);
        let parts = b.split(&classify, 2);
        let weights: Vec<f32> = parts.iter().map(|p| p.1).collect();
        assert_eq!(weights, vec![0.6, 0.4]);
        assert_eq!(parts[0].0.classes, vec![10, 11, 12]);
        assert_eq!(parts[1].0.classes, vec![10, 11]);
        // Triplet batches are never split: mining needs the whole batch.
        let triplet = Method::Triplet {
            margin: 0.2,
            miner: crate::mining::Miner::All,
            normalize: true,
        };
        assert_eq!(
            batch(&[0, 0, 1, 1], &[false; 4]).split(&triplet, 2).len(),
            1
        );
    }

    #[test]
    fn settings_saved_before_framing_wide_last_blocks_and_warps_read_as_drawn_uniform_and_unwarped()
    {
        let mut saved = serde_json::to_value(TrainConfig::omniglot(Method::Proto { shots: 1 }))
            .expect("serialises");
        let fields = saved.as_object_mut().expect("an object");
        assert!(fields.remove("framing").is_some());
        let net = fields
            .get_mut("net")
            .and_then(|n| n.as_object_mut())
            .expect("net");
        assert_eq!(net.remove("last_channels"), Some(PROTO_EMBEDDING.into()));
        assert!(net.remove("last_pool").is_some());
        assert_eq!(net.remove("pooling"), Some("blurred".into()));
        let augment = fields
            .get_mut("augment")
            .and_then(|n| n.as_object_mut())
            .expect("augment");
        assert!(augment.remove("elastic").is_some());
        assert!(augment.remove("elastic_smoothing").is_some());
        let read: TrainConfig = serde_json::from_value(saved).expect("reads");
        assert_eq!(read.augment.elastic, 0.0);
        assert_eq!(read.framing, Framing::AsDrawn);
        assert_eq!(read.net, NetConfig::default());
        assert_eq!(read.net.embedding_dim(), 64);
    }

    #[test]
    fn proto_defaults_pool_the_whole_last_map_into_the_embedding() {
        let proto = TrainConfig::omniglot(Method::Proto { shots: 1 });
        assert_eq!(proto.net.last_pool, LastPool::Global);
        assert_eq!(proto.net.pooling, Pooling::Blurred);
        assert_eq!(proto.net.output_side(), 1);
        assert_eq!(proto.net.embedding_dim(), PROTO_EMBEDDING);
        let triplet = TrainConfig::omniglot(Method::Triplet {
            miner: Miner::SemiHard,
            margin: 0.2,
            normalize: true,
        });
        assert_eq!(triplet.net, NetConfig::default());
    }

    #[test]
    fn within_alphabet_batches_draw_every_class_from_one_alphabet() {
        let names = [
            "A/a", "A/b", "A/c", "B/a", "B/b", "B/c", "B/d", "C/a", "A/a@90",
        ];
        let data = Dataset {
            side: 2,
            framing: Framing::OMNIGLOT,
            classes: names
                .iter()
                .map(|n| Class {
                    name: n.to_string(),
                    images: vec![vec![0.0; 4]; 2],
                })
                .collect(),
        };
        let mut config = TrainConfig::omniglot(Method::Proto { shots: 1 });
        config.classes_per_batch = 3;
        config.images_per_class = 2;
        config.augment = Augment::NONE;
        config.within_alphabet = true;
        let mut rng = crate::rng::from_seed(9);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..50 {
            let b = sample_batch(&data, &config, &mut rng);
            let alphabets: std::collections::BTreeSet<&str> =
                b.classes.iter().map(|&c| &names[c][..1]).collect();
            assert_eq!(alphabets.len(), 1, "{:?}", b.classes);
            seen.extend(alphabets);
        }
        // C has one class: never enough for a batch of three.
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec!["A", "B"]);
        config.classes_per_batch = 5;
        assert!(config.validate(&data).is_err());
    }

    #[test]
    fn two_half_weighted_copies_of_a_batch_give_the_whole_batch_gradient() {
        let data = Dataset {
            side: 12,
            framing: Framing::AsDrawn,
            classes: (0..4)
                .map(|c| Class {
                    name: format!("c{c}"),
                    images: (0..3)
                        .map(|i| {
                            (0..144)
                                .map(|p| ((p * (c + 2) + i) % 7) as f32 / 7.0)
                                .collect()
                        })
                        .collect(),
                })
                .collect(),
        };
        let mut config = TrainConfig::omniglot(Method::Classify {
            classes: 4,
            scale: 10.0,
        });
        config.net = NetConfig {
            input_size: 12,
            blocks: 2,
            channels: 4,
            last_channels: None,
            ..NetConfig::default()
        };
        config.classes_per_batch = 4;
        config.images_per_class = 2;
        config.augment = Augment::NONE;
        let device = Device::flex().autodiff();
        let model = checkpoint::new_model(&config, &device);
        let b = sample_batch(&data, &config, &mut crate::rng::from_seed(5));
        let whole = run_parts(&model, &mut [], &config, vec![(b.clone(), 1.0)], &device).unwrap();
        let mut replicas = vec![checkpoint::new_model(&config, &device)];
        let halves = vec![(b.clone(), 0.5), (b, 0.5)];
        let summed = run_parts(&model, &mut replicas, &config, halves, &device).unwrap();
        assert!((whole.loss - summed.loss).abs() < 1e-5);
        let mut compared = 0;
        for block in &model.net.blocks {
            let id = block.conv.weight.id;
            let a: Tensor<4> = whole.grads.get(id).unwrap();
            let b: Tensor<4> = summed.grads.get(id).unwrap();
            let diff = (a.clone() - b).abs().max().into_scalar::<f32>();
            let size = a.abs().max().into_scalar::<f32>();
            assert!(size > 0.0 && diff <= 1e-5 * size, "{diff} vs {size}");
            compared += 1;
        }
        assert_eq!(compared, 2);
    }
}
