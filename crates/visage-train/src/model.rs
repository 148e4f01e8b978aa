//! The embedding network: blocks of 3x3 convolution, batch norm, ReLU and 2x2 max pooling,
//! plain or blurred (the "Conv-4" of prototypical networks), flattened to one vector per image.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// The shape of an [`EmbeddingNet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetConfig {
    /// Input side, pixels (square, one grey channel).
    pub input_size: usize,
    /// Number of conv blocks.
    pub blocks: usize,
    /// Channels of every block but the last.
    pub channels: usize,
    /// Channels of the last block, the embedding's depth, when not `channels`: at 28-pixel
    /// inputs its map is 3x3 pixels, so widening it costs little and lengthens the embedding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_channels: Option<usize>,
    /// How the last block pools its map.
    #[serde(default)]
    pub last_pool: LastPool,
    /// How the blocks that halve their map pool it (checkpoints from before this setting
    /// read as [`Pooling::Max`]).
    #[serde(default)]
    pub pooling: Pooling,
}

/// How a block that halves its feature map pools it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pooling {
    /// 2x2 max pooling with stride 2.
    #[default]
    Max,
    /// Zhang's anti-aliased max pooling ("Making convolutional networks shift-invariant
    /// again"): 2x2 max pooling with stride 1, then each channel blurred by
    /// `[1 2 1]ᵀ[1 2 1] / 16` and sampled with stride 2 ([`BlurDownsample`]). Sampling a max
    /// map every other pixel makes the output jump when a drawing moves by one pixel; the blur
    /// spreads each maximum over its neighbours first.
    Blurred,
}

impl std::str::FromStr for Pooling {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_choice(
            s,
            "pooling",
            &[("max", Pooling::Max), ("blurred", Pooling::Blurred)],
        )
    }
}

/// The value named `name` among `choices` (name, value), or an error naming `what` and
/// every choice.
fn parse_choice<T: Copy>(name: &str, what: &str, choices: &[(&str, T)]) -> Result<T, String> {
    choices
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            format!("unknown {what} {name:?} ({})", names.join(", "))
        })
}

/// How the last block of an [`EmbeddingNet`] pools its feature map.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LastPool {
    /// 2x2 max pooling with stride 2, as every other block: on an odd map (3x3 at 28-pixel
    /// inputs) the last row and column are dropped, so the embedding sees the bottom and
    /// right of the drawing less than the top and left.
    #[default]
    Halve,
    /// The maximum over the whole map: every position counts alike, and the embedding is the
    /// last block's channels.
    Global,
    /// No pooling: the whole last map, flattened (3x3 positions x channels at 28-pixel
    /// inputs), so the embedding keeps where on the drawing each feature lies.
    Keep,
}

impl std::str::FromStr for LastPool {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_choice(
            s,
            "last pooling",
            &[
                ("halve", LastPool::Halve),
                ("global", LastPool::Global),
                ("keep", LastPool::Keep),
            ],
        )
    }
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            input_size: 28,
            blocks: 4,
            channels: 64,
            last_channels: None,
            last_pool: LastPool::Halve,
            pooling: Pooling::Max,
        }
    }
}

impl NetConfig {
    /// Side of the last block's feature map, pixels (each block halves it, rounding down;
    /// a global last pool takes it to 1, and a kept one stays at the last block's input).
    pub fn output_side(&self) -> usize {
        (0..self.blocks).fold(self.input_size, |side, i| side / self.pool_side(i))
    }

    /// Side of the square pooling window of block `i`, pixels: also the factor by which the
    /// block shrinks its map (by its stride, or by a blurred halving block's subsampling).
    fn pool_side(&self, i: usize) -> usize {
        match self.last_pool {
            LastPool::Global if i + 1 == self.blocks => {
                (0..i).fold(self.input_size, |s, _| s / 2).max(1)
            }
            LastPool::Keep if i + 1 == self.blocks => 1,
            _ => 2,
        }
    }

    /// Output channels of block `i` (input first).
    pub fn block_channels(&self, i: usize) -> usize {
        match self.last_channels {
            Some(c) if i + 1 == self.blocks => c,
            _ => self.channels,
        }
    }

    /// Length of the embedding: the last block's channels x side².
    pub fn embedding_dim(&self) -> usize {
        self.block_channels(self.blocks.saturating_sub(1)) * self.output_side().pow(2)
    }
}

/// One block: 3x3 convolution (padding 1), batch norm, ReLU, max pooling (followed, in a
/// halving block with [`Pooling::Blurred`], by a [`BlurDownsample`]).
#[derive(Module, Debug)]
pub struct ConvBlock {
    /// The convolution.
    pub conv: Conv2d,
    /// Its batch norm.
    pub bn: BatchNorm,
    /// The max pooling.
    pub pool: MaxPool2d,
    /// The blur and subsampling after the max pooling, in a halving block with
    /// [`Pooling::Blurred`].
    pub blur: Option<BlurDownsample>,
}

impl ConvBlock {
    fn new(device: &Device, channels: [usize; 2], pool_side: usize, pooling: Pooling) -> Self {
        let blurred = pooling == Pooling::Blurred && pool_side == 2;
        let pool_stride = if blurred { 1 } else { pool_side };
        Self {
            conv: Conv2dConfig::new(channels, [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
            bn: BatchNormConfig::new(channels[1]).init(device),
            pool: MaxPool2dConfig::new([pool_side; 2])
                .with_strides([pool_stride; 2])
                .init(),
            blur: blurred.then_some(BlurDownsample { stride: 2 }),
        }
    }

    /// `act` pooled.
    fn pool(&self, act: Tensor<4>) -> Tensor<4> {
        let pooled = self.pool.forward(act);
        match &self.blur {
            Some(blur) => blur.forward(pooled),
            None => pooled,
        }
    }

    /// The block's output, and its activation before pooling (after the ReLU).
    pub fn forward_with_activation(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let act = relu(batch_norm(&self.bn, self.conv.forward(x)));
        (self.pool(act.clone()), act)
    }

    /// The block's output.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.pool(relu(batch_norm(&self.bn, self.conv.forward(x))))
    }
}

/// Each channel blurred by the fixed binomial kernel `[1 2 1]ᵀ[1 2 1] / 16` (zero padding
/// of 1 pixel) and sampled every `stride` pixels: the anti-aliasing half of
/// [`Pooling::Blurred`]. It has no weights to learn.
#[derive(Module, Debug)]
pub struct BlurDownsample {
    /// Sampling step, pixels.
    pub stride: usize,
}

impl BlurDownsample {
    /// Side of the blur kernel, pixels.
    pub const KERNEL: usize = 3;
    /// Zero padding on each side, pixels: the kernel centred on every sampled pixel.
    pub const PADDING: usize = 1;

    /// `x` `[n, c, h, w]` blurred and subsampled: `[n, c, ⌈h / stride⌉, ⌈w / stride⌉]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, channels, _, _] = x.dims();
        const TAPS: [f32; 3] = [1.0, 2.0, 1.0];
        let kernel: Vec<f32> = (0..channels)
            .flat_map(|_| {
                TAPS.iter()
                    .flat_map(|a| TAPS.iter().map(move |b| a * b / 16.0))
            })
            .collect();
        let weight = Tensor::<4>::from_data(
            burn::tensor::TensorData::new(kernel, [channels, 1, Self::KERNEL, Self::KERNEL]),
            &x.device(),
        );
        burn::tensor::module::conv2d(
            x,
            weight,
            None,
            burn::tensor::ops::ConvOptions::new(
                [self.stride; 2],
                [Self::PADDING; 2],
                [1, 1],
                channels,
            ),
        )
    }
}

/// Per-channel mean and (biased) variance of `x` `[n, c, h, w]` over its images and positions,
/// each `[1, c, 1]`, and `x` as `[n, c, h w]` less its mean. Sums over the outer and inner axes
/// of the contiguous layout, where burn's batch norm first copies the whole activation into
/// channel-major order (the moments and their gradients cost half the time so).
fn channel_moments(x: Tensor<4>) -> (Tensor<3>, Tensor<3>, Tensor<3>) {
    let [n, c, h, w] = x.dims();
    let count = (n * h * w).max(1) as f64;
    let flat = x.reshape([n, c, h * w]);
    let mean = flat.clone().sum_dim(0).sum_dim(2).div_scalar(count);
    let centered = flat - mean.clone();
    let var = centered
        .clone()
        .powi_scalar(2)
        .sum_dim(0)
        .sum_dim(2)
        .div_scalar(count);
    (mean, var, centered)
}

/// `bn` applied to `x` `[n, c, h, w]`, as burn's [`BatchNorm::forward`] computes it: in
/// training (an autodiff device and the layer's training flag on) by the batch's statistics,
/// which also move the running ones by the layer's momentum; otherwise by the running ones.
fn batch_norm(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    if !(x.device().is_autodiff() && bn.training.is_enabled()) {
        return bn.forward(x);
    }
    let [n, c, h, w] = x.dims();
    let device = x.device();
    let (mean, var, centered) = channel_moments(x);
    let momentum = bn.momentum;
    for (running, batch) in [(&bn.running_mean, &mean), (&bn.running_var, &var)] {
        let moved = running
            .value_sync()
            .to_device(&device)
            .mul_scalar(1.0 - momentum)
            .add(batch.clone().detach().reshape([c]).mul_scalar(momentum));
        running.update(moved.detach());
    }
    let scale = var.add_scalar(bn.epsilon).sqrt().recip() * bn.gamma.val().reshape([1, c, 1]);
    (centered * scale + bn.beta.val().reshape([1, c, 1])).reshape([n, c, h, w])
}

/// A stack of [`ConvBlock`]s mapping `[batch, 1, side, side]` images to `[batch, dim]` embeddings.
#[derive(Module, Debug)]
pub struct EmbeddingNet {
    /// The blocks, input first.
    pub blocks: Vec<ConvBlock>,
}

impl EmbeddingNet {
    /// A freshly initialised network (burn's default initialisation, seeded by the device's RNG).
    pub fn new(config: &NetConfig, device: &Device) -> Self {
        let blocks = (0..config.blocks)
            .map(|i| {
                let cin = if i == 0 {
                    1
                } else {
                    config.block_channels(i - 1)
                };
                ConvBlock::new(
                    device,
                    [cin, config.block_channels(i)],
                    config.pool_side(i),
                    config.pooling,
                )
            })
            .collect();
        Self { blocks }
    }

    /// Embeddings `[batch, dim]` of images `[batch, 1, side, side]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.blocks.iter().fold(x, |x, b| b.forward(x));
        x.flatten(1, 3)
    }

    /// Each block's activation after its ReLU and before its pooling, `[batch, channels, h, w]`,
    /// input first: what each convolution unit responds to, for inspecting units.
    pub fn conv_activations(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let mut out = Vec::with_capacity(self.blocks.len());
        let mut x = x;
        for block in &self.blocks {
            let (next, act) = block.forward_with_activation(x);
            out.push(act);
            x = next;
        }
        out
    }

    /// Every spatial layer with its geometry, input first (conv then pool for each block), so
    /// that receptive fields can be traced back to input pixels.
    pub fn layer_geometry(&self) -> Vec<LayerGeometry> {
        let mut out = Vec::new();
        for (i, block) in self.blocks.iter().enumerate() {
            out.push(LayerGeometry {
                name: format!("blocks.{i}.conv"),
                kernel: 3,
                stride: 1,
                padding: 1,
            });
            out.push(LayerGeometry {
                name: format!("blocks.{i}.pool"),
                kernel: block.pool.kernel_size[0],
                stride: block.pool.stride[0],
                padding: 0,
            });
            if let Some(blur) = &block.blur {
                out.push(LayerGeometry {
                    name: format!("blocks.{i}.blur"),
                    kernel: BlurDownsample::KERNEL,
                    stride: blur.stride,
                    padding: BlurDownsample::PADDING,
                });
            }
        }
        out
    }
}

/// Builds a module with `init` right after seeding burn's random generator with `seed`, and
/// draws all its initial weights before returning. burn's CPU backend keeps one generator for
/// the whole process and initialises parameters lazily (at first use), so seeding and drawing
/// happen together under one lock: a run stays repeatable while other models are made beside it.
pub fn seeded<M: Module>(device: &Device, seed: u64, init: impl FnOnce() -> M) -> M {
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _held = INIT.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    let module = init();
    // Clones share the lazy parameters: recording one initialises them all, now.
    let _ = module.clone().into_record();
    module
}

/// One spatial layer's geometry (square kernels), in pixels of its input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerGeometry {
    /// The layer's path in the module (`blocks.<i>.conv`, `blocks.<i>.pool` or
    /// `blocks.<i>.blur`).
    pub name: String,
    /// Kernel side.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on each side.
    pub padding: usize,
}

/// Squared Euclidean distance between two embeddings (0 to 4 for unit-length ones).
pub fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Rows scaled to unit Euclidean length (a small epsilon keeps zero rows finite).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).add_scalar(1e-10).sqrt();
    x / norm
}

/// Which features of an embedding pair the [`PairHead`] weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PairFeatures {
    /// `|f_i - f_j|` per component (Koch et al.).
    AbsDiff,
    /// `(f_i - f_j)² / (|f_i| + |f_j|)` per component (the χ² form; absolute values keep it
    /// defined for encodings with negative components).
    ChiSquare,
    /// Both, concatenated.
    Both,
}

impl PairFeatures {
    /// The CLI name: `abs`, `chi2` or `both`.
    pub fn name(&self) -> &'static str {
        match self {
            PairFeatures::AbsDiff => "abs",
            PairFeatures::ChiSquare => "chi2",
            PairFeatures::Both => "both",
        }
    }

    /// Features per component pair (1 or 2).
    pub fn width(&self) -> usize {
        if *self == PairFeatures::Both {
            2
        } else {
            1
        }
    }

    /// The features `[n, width x dim]` of embedding pairs `a`, `b` (`[n, dim]` each).
    pub fn compute(&self, a: Tensor<2>, b: Tensor<2>) -> Tensor<2> {
        let abs = || (a.clone() - b.clone()).abs();
        let chi = || {
            let num = (a.clone() - b.clone()).powi_scalar(2);
            num / (a.clone().abs() + b.clone().abs()).add_scalar(1e-6)
        };
        match self {
            PairFeatures::AbsDiff => abs(),
            PairFeatures::ChiSquare => chi(),
            PairFeatures::Both => Tensor::cat(vec![abs(), chi()], 1),
        }
    }
}

impl std::str::FromStr for PairFeatures {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "abs" => Ok(PairFeatures::AbsDiff),
            "chi2" => Ok(PairFeatures::ChiSquare),
            "both" => Ok(PairFeatures::Both),
            _ => Err(format!("unknown pair features {s:?} (abs, chi2, both)")),
        }
    }
}

/// The pair head: `ŷ = σ(Σ_k w_k φ_k(f_i, f_j) + b)` over [`PairFeatures`] `φ`.
#[derive(Module, Debug)]
pub struct PairHead {
    /// The weights `w` and bias `b`.
    pub linear: Linear,
}

impl PairHead {
    /// A head for embeddings of `dim` components and `width` features per component.
    pub fn new(dim: usize, width: usize, device: &Device) -> Self {
        Self {
            linear: LinearConfig::new(dim * width, 1).init(device),
        }
    }

    /// The logits `[n, 1]` (before the sigmoid) of pair features `[n, width x dim]`.
    pub fn forward(&self, features: Tensor<2>) -> Tensor<2> {
        self.linear.forward(features)
    }
}

/// A cosine classifier over the training classes (the "Baseline++" of Chen et al., 2019):
/// logits `s · cos(f, w_c)` for every class `c`, so that training pulls each embedding towards
/// its class's weight vector and away from all the others at once. Only the embedding is kept
/// for one-shot use; new classes are compared by cosine distance.
#[derive(Module, Debug)]
pub struct CosineClassifier {
    /// One weight vector per class (`[dim, classes]`, no bias).
    pub weights: Linear,
}

impl CosineClassifier {
    /// A classifier of embeddings of `dim` components into `classes` classes.
    pub fn new(dim: usize, classes: usize, device: &Device) -> Self {
        Self {
            weights: LinearConfig::new(dim, classes)
                .with_bias(false)
                .init(device),
        }
    }

    /// The logits `[n, classes]` of unit-length embeddings `[n, dim]`: `scale` times the
    /// cosine with each class's weight vector.
    pub fn forward(&self, unit_embeddings: Tensor<2>, scale: f32) -> Tensor<2> {
        let w = self.weights.weight.val();
        let norm = w.clone().powi_scalar(2).sum_dim(0).add_scalar(1e-10).sqrt();
        unit_embeddings.matmul(w / norm).mul_scalar(scale)
    }
}

/// An embedding network with, for the pair method, its pair head, and for the classify
/// method, its classifier: what a checkpoint holds.
#[derive(Module, Debug)]
pub struct SimilarityModel {
    /// The twin (shared) embedding network.
    pub net: EmbeddingNet,
    /// The pair head, for models trained as verifiers.
    pub head: Option<PairHead>,
    /// The classifier over the training classes, for models trained as classifiers.
    pub classifier: Option<CosineClassifier>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wider_last_block_lengthens_the_embedding() {
        let device = Device::flex();
        let config = NetConfig {
            input_size: 28,
            blocks: 4,
            channels: 8,
            last_channels: Some(32),
            last_pool: LastPool::Halve,
            pooling: Pooling::Max,
        };
        assert_eq!(
            (0..4).map(|i| config.block_channels(i)).collect::<Vec<_>>(),
            [8, 8, 8, 32]
        );
        assert_eq!(config.embedding_dim(), 32);
        let net = EmbeddingNet::new(&config, &device);
        let e = net.forward(Tensor::<4>::ones([2, 1, 28, 28], &device));
        assert_eq!(e.dims(), [2, 32]);
        let same = NetConfig {
            last_channels: None,
            ..config
        };
        assert_eq!(same.embedding_dim(), 8);
    }

    #[test]
    fn blurred_subsampling_keeps_an_impulse_whichever_pixel_it_lies_on() {
        let device = Device::flex();
        let blur = BlurDownsample { stride: 2 };
        // Sampling every other pixel keeps an impulse on an even pixel whole and loses one
        // on an odd pixel; blurred first, a quarter of it is kept either way, spread over
        // one, two or four samples.
        for (y, x, samples) in [(4, 4, 1), (4, 5, 2), (5, 4, 2), (5, 5, 4)] {
            let mut image = vec![0.0f32; 100];
            image[y * 10 + x] = 1.0;
            let out = blur.forward(Tensor::<4>::from_data(
                burn::tensor::TensorData::new(image, [1, 1, 10, 10]),
                &device,
            ));
            assert_eq!(out.dims(), [1, 1, 5, 5]);
            let values = out.into_data().try_to_vec::<f32>().expect("f32");
            let total: f32 = values.iter().sum();
            assert!((total - 0.25).abs() < 1e-6, "({y}, {x}): {total}");
            assert_eq!(values.iter().filter(|v| **v > 0.0).count(), samples);
        }
    }

    #[test]
    fn poolings_parse_by_name_and_unknown_names_list_the_choices() {
        assert_eq!("blurred".parse::<Pooling>(), Ok(Pooling::Blurred));
        assert_eq!("global".parse::<LastPool>(), Ok(LastPool::Global));
        let err = "mean".parse::<Pooling>().expect_err("unknown");
        assert_eq!(err, "unknown pooling \"mean\" (max, blurred)");
    }

    #[test]
    fn blurred_pooling_keeps_the_map_sizes_and_traces_its_blur() {
        let device = Device::flex();
        let config = NetConfig {
            channels: 4,
            last_channels: Some(16),
            last_pool: LastPool::Global,
            pooling: Pooling::Blurred,
            ..NetConfig::default()
        };
        assert_eq!((config.output_side(), config.embedding_dim()), (1, 16));
        let net = seeded(&device, 2, || EmbeddingNet::new(&config, &device));
        let images = Tensor::<4>::ones([2, 1, 28, 28], &device);
        let maps: Vec<usize> = net
            .conv_activations(images.clone())
            .iter()
            .map(|a| a.dims()[2])
            .collect();
        assert_eq!(maps, [28, 14, 7, 3]);
        assert_eq!(net.forward(images).dims(), [2, 16]);
        // The three halving blocks pool at stride 1 and subsample in their blur; the last
        // block's global pool is left as it is.
        let geometry: Vec<(String, usize, usize, usize)> = net
            .layer_geometry()
            .into_iter()
            .map(|g| (g.name, g.kernel, g.stride, g.padding))
            .collect();
        for i in 0..3 {
            let block: Vec<_> = geometry
                .iter()
                .filter(|g| g.0.starts_with(&format!("blocks.{i}.")))
                .map(|g| (g.0.rsplit('.').next().unwrap_or_default(), g.1, g.2, g.3))
                .collect();
            assert_eq!(
                block,
                [("conv", 3, 1, 1), ("pool", 2, 1, 0), ("blur", 3, 2, 1)]
            );
        }
        assert_eq!(
            geometry.last().map(|g| (g.0.as_str(), g.1, g.2)),
            Some(("blocks.3.pool", 3, 3))
        );
    }

    #[test]
    fn a_kept_last_map_is_flattened_whole() {
        let device = Device::flex();
        let config = NetConfig {
            channels: 4,
            last_channels: Some(16),
            last_pool: LastPool::Keep,
            ..NetConfig::default()
        };
        // 28 -> 14 -> 7 -> 3, and the last 3x3 map kept: 16 channels x 9 positions.
        assert_eq!((config.output_side(), config.embedding_dim()), (3, 144));
        let net = seeded(&device, 2, || EmbeddingNet::new(&config, &device));
        let images = Tensor::<4>::ones([2, 1, 28, 28], &device);
        assert_eq!(net.forward(images).dims(), [2, 144]);
        let last = net.layer_geometry().pop().expect("layers");
        assert_eq!((last.kernel, last.stride), (1, 1));
    }

    #[test]
    fn a_global_last_pool_sees_the_whole_map() {
        let device = Device::flex();
        let config = NetConfig {
            channels: 4,
            last_channels: Some(16),
            last_pool: LastPool::Global,
            ..NetConfig::default()
        };
        assert_eq!((config.output_side(), config.embedding_dim()), (1, 16));
        let net = seeded(&device, 2, || EmbeddingNet::new(&config, &device));
        let geometry = net.layer_geometry();
        let last = geometry.last().expect("layers");
        // 28 -> 14 -> 7 -> 3: the last block pools its 3x3 map at once.
        assert_eq!(
            (last.name.as_str(), last.kernel, last.stride),
            ("blocks.3.pool", 3, 3)
        );
        assert!(geometry[..6]
            .iter()
            .skip(1)
            .step_by(2)
            .all(|g| g.kernel == 2));
        // A blob in the bottom-right corner, where a 2x2 last pool drops the map's last row
        // and column, moves the global embedding more.
        let mut corner = vec![0.0f32; 28 * 28];
        for y in 24..28 {
            for x in 24..28 {
                corner[y * 28 + x] = 1.0;
            }
        }
        let images = Tensor::<4>::from_data(
            burn::tensor::TensorData::new([vec![0.0f32; 28 * 28], corner].concat(), [2, 1, 28, 28]),
            &device,
        );
        let change = |net: &EmbeddingNet| {
            let e = net.forward(images.clone());
            let [blank, blob] = [0, 1].map(|i| e.clone().narrow(0, i, 1));
            (blob - blank).abs().sum().into_scalar::<f32>()
        };
        let halving = NetConfig {
            last_pool: LastPool::Halve,
            ..config
        };
        let halved = seeded(&device, 2, || EmbeddingNet::new(&halving, &device));
        assert!(
            change(&net) > change(&halved),
            "{} vs {}",
            change(&net),
            change(&halved)
        );
    }

    #[test]
    fn batch_norm_in_training_matches_burns_values_gradients_and_running_statistics() {
        let device = Device::flex().autodiff();
        let values = |t: Tensor<1>| {
            t.into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .unwrap()
        };
        let close = |a: Vec<f32>, b: Vec<f32>, what: &str| {
            let worst = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max);
            let size = b.iter().map(|y| y.abs()).fold(0.0, f32::max);
            assert!(
                a.len() == b.len() && worst <= 1e-4 * size.max(1.0),
                "{what}: {worst}"
            );
        };
        let pixels: Vec<f32> = (0..6 * 5 * 7 * 7)
            .map(|i| ((i * 7919) % 211) as f32 / 50.0 - 1.5)
            .collect();
        let weights: Vec<f32> = (0..6 * 5 * 7 * 7)
            .map(|i| ((i * 104729) % 97) as f32 / 97.0)
            .collect();
        let tensor = |v: &[f32]| {
            Tensor::<4>::from_data(
                burn::tensor::TensorData::new(v.to_vec(), [6, 5, 7, 7]),
                &device,
            )
        };
        let mut ours = Vec::new();
        for use_burn in [true, false] {
            let bn = BatchNormConfig::new(5).init(&device);
            let gamma: Vec<f32> = (0..5).map(|c| 0.5 + c as f32 / 4.0).collect();
            let bn = BatchNorm {
                gamma: burn::module::Param::from_tensor(Tensor::from_data(
                    burn::tensor::TensorData::new(gamma, [5]),
                    &device,
                )),
                ..bn
            };
            let x = tensor(&pixels).require_grad();
            let y = if use_burn {
                bn.forward(x.clone())
            } else {
                batch_norm(&bn, x.clone())
            };
            let grads = (y.clone() * tensor(&weights)).sum().backward();
            let flat = |t: Tensor<4>| values(t.flatten::<1>(0, 3));
            ours.push(vec![
                flat(y.detach()),
                flat(x.grad(&grads).expect("input gradient")),
                values(bn.gamma.grad(&grads).expect("gamma gradient")),
                values(bn.beta.grad(&grads).expect("beta gradient")),
                values(bn.running_mean.value_sync()),
                values(bn.running_var.value_sync()),
            ]);
        }
        let (ours, burns) = (ours.pop().unwrap(), ours.pop().unwrap());
        let names = [
            "output",
            "input gradient",
            "gamma gradient",
            "beta gradient",
            "running mean",
            "running variance",
        ];
        for ((a, b), what) in ours.into_iter().zip(burns).zip(names) {
            close(a, b, what);
        }
    }
}
