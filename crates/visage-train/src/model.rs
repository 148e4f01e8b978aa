//! The embedding network: blocks of 3x3 convolution, batch norm, ReLU and 2x2 max pooling
//! (the "Conv-4" of prototypical networks), flattened to one vector per image.

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
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            input_size: 28,
            blocks: 4,
            channels: 64,
            last_channels: None,
        }
    }
}

impl NetConfig {
    /// Side of the last block's feature map, pixels (each block halves it, rounding down).
    pub fn output_side(&self) -> usize {
        (0..self.blocks).fold(self.input_size, |s, _| s / 2)
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

/// One block: 3x3 convolution (padding 1), batch norm, ReLU, 2x2 max pooling.
#[derive(Module, Debug)]
pub struct ConvBlock {
    /// The convolution.
    pub conv: Conv2d,
    /// Its batch norm.
    pub bn: BatchNorm,
    /// The pooling.
    pub pool: MaxPool2d,
}

impl ConvBlock {
    fn new(device: &Device, channels: [usize; 2]) -> Self {
        Self {
            conv: Conv2dConfig::new(channels, [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
            bn: BatchNormConfig::new(channels[1]).init(device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
        }
    }

    /// The block's output, and its activation before pooling (after the ReLU).
    pub fn forward_with_activation(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let act = relu(self.bn.forward(self.conv.forward(x)));
        (self.pool.forward(act.clone()), act)
    }

    /// The block's output.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.pool
            .forward(relu(self.bn.forward(self.conv.forward(x))))
    }
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
                ConvBlock::new(device, [cin, config.block_channels(i)])
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
        for i in 0..self.blocks.len() {
            out.push(LayerGeometry {
                name: format!("blocks.{i}.conv"),
                kernel: 3,
                stride: 1,
                padding: 1,
            });
            out.push(LayerGeometry {
                name: format!("blocks.{i}.pool"),
                kernel: 2,
                stride: 2,
                padding: 0,
            });
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
    /// The layer's path in the module (`blocks.<i>.conv` or `blocks.<i>.pool`).
    pub name: String,
    /// Kernel side.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on each side.
    pub padding: usize,
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
}
