//! MobileNetV2 (Sandler et al. 2018) in torchvision's layout, as a burn module: `features.0` (a
//! 3x3/2 convolution), `features.1..=17` (inverted residual blocks), `features.18` (a 1x1
//! convolution to 1280 channels), then global average pooling and `classifier` (1280 -> 1000).
//!
//! The module has no backend type: it runs wherever its tensors live. Build it on
//! `Device::flex()` for inference, or on `Device::flex().autodiff()` and call
//! [`burn::module::Module::freeze`] to take gradients with respect to the input (batch norm then
//! uses its running statistics, as in eval mode).

use std::path::Path;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::store::{KeyRemapper, ModuleSnapshot, PytorchStore};
use burn::tensor::activation::relu6;
use burn::tensor::{Device, Tensor, TensorData};

/// Number of blocks in `features` (`features.0` to `features.18`).
pub const FEATURE_LAYERS: usize = 19;

/// ImageNet classes the classifier scores.
pub const NUM_CLASSES: usize = 1000;

/// Side of the square input torchvision evaluates at, in pixels.
pub const INPUT_SIZE: usize = 224;

/// Per-channel RGB mean of torchvision's ImageNet normalisation, on a 0..1 scale.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// Per-channel RGB standard deviation of torchvision's ImageNet normalisation, on a 0..1 scale.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Why a MobileNetV2 could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum MobileNetError {
    /// The weights file could not be read or parsed.
    #[error("reading MobileNetV2 weights from {path}: {message}")]
    Weights {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The file lacks tensors the network needs (it is not a torchvision MobileNetV2).
    #[error("MobileNetV2 weights in {path} lack {count} tensors, for example {example}")]
    Missing {
        /// The file.
        path: String,
        /// How many tensors are missing.
        count: usize,
        /// One of them.
        example: String,
    },
    /// An input image has the wrong number of bytes.
    #[error("image buffer has {got} bytes, expected {width}x{height}x3 = {expected}")]
    Input {
        /// Bytes given.
        got: usize,
        /// Bytes expected.
        expected: usize,
        /// Width, pixels.
        width: usize,
        /// Height, pixels.
        height: usize,
    },
    /// A requested layer index is past `features.18`.
    #[error("layer features.{0} does not exist (MobileNetV2 has features.0 to features.18)")]
    Layer(usize),
}

/// A convolution followed by batch norm (torchvision's `Conv2dNormActivation` minus the
/// activation, which [`MobileNetV2`] applies where torchvision does).
#[derive(Module, Debug)]
pub struct ConvBn {
    /// The convolution (no bias).
    pub conv: Conv2d,
    /// Its batch norm.
    pub bn: BatchNorm,
}

impl ConvBn {
    fn new(
        device: &Device,
        channels: [usize; 2],
        kernel: usize,
        stride: usize,
        groups: usize,
    ) -> Self {
        let pad = kernel / 2;
        Self {
            conv: Conv2dConfig::new(channels, [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_groups(groups)
                .with_bias(false)
                .init(device),
            // torchvision's batch norm epsilon.
            bn: BatchNormConfig::new(channels[1])
                .with_epsilon(1e-5)
                .init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.bn.forward(self.conv.forward(x))
    }
}

/// One inverted residual block: an optional 1x1 expansion (with ReLU6), a 3x3 depthwise
/// convolution (with ReLU6), a linear 1x1 projection, and a skip connection when the shape is
/// unchanged.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    /// 1x1 expansion by the block's factor; absent in `features.1` (factor 1).
    pub expand: Option<ConvBn>,
    /// 3x3 depthwise convolution, carrying the block's stride.
    pub depthwise: ConvBn,
    /// 1x1 projection (no activation).
    pub project: ConvBn,
}

impl InvertedResidual {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = x.clone();
        if let Some(e) = &self.expand {
            h = relu6(e.forward(h));
        }
        h = relu6(self.depthwise.forward(h));
        h = self.project.forward(h);
        // torchvision adds the input exactly when stride is 1 and channels are unchanged, which is
        // when the shapes agree.
        if h.dims() == x.dims() {
            h + x
        } else {
            h
        }
    }
}

/// Spatial arithmetic of one `features.i` block, seen as a single window for receptive-field
/// arithmetic (a block's 1x1 convolutions do not widen it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerGeometry {
    /// Window side, pixels of the layer's input.
    pub kernel: usize,
    /// Step between outputs, pixels of the layer's input.
    pub stride: usize,
    /// Zero padding on each side, pixels of the layer's input.
    pub padding: usize,
    /// Output channels.
    pub channels: usize,
}

/// torchvision's block table: (expansion, output channels, repeats, first stride).
const BLOCKS: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// MobileNetV2 for 1000 ImageNet classes, width multiplier 1.
#[derive(Module, Debug)]
pub struct MobileNetV2 {
    /// `features.0`: 3 -> 32, 3x3, stride 2, ReLU6.
    pub stem: ConvBn,
    /// `features.1` to `features.17`.
    pub blocks: Vec<InvertedResidual>,
    /// `features.18`: 320 -> 1280, 1x1, ReLU6.
    pub head: ConvBn,
    /// `classifier.1` (torchvision's `classifier.0` is dropout).
    pub classifier: Linear,
}

impl MobileNetV2 {
    /// A network with freshly initialised weights on `device`.
    pub fn new(device: &Device) -> Self {
        let mut blocks = Vec::new();
        let mut cin = 32;
        for (t, c, n, s) in BLOCKS {
            for i in 0..n {
                let stride = if i == 0 { s } else { 1 };
                let hidden = cin * t;
                blocks.push(InvertedResidual {
                    expand: (t != 1).then(|| ConvBn::new(device, [cin, hidden], 1, 1, 1)),
                    depthwise: ConvBn::new(device, [hidden, hidden], 3, stride, hidden),
                    project: ConvBn::new(device, [hidden, c], 1, 1, 1),
                });
                cin = c;
            }
        }
        Self {
            stem: ConvBn::new(device, [3, 32], 3, 2, 1),
            blocks,
            head: ConvBn::new(device, [320, 1280], 1, 1, 1),
            classifier: LinearConfig::new(1280, NUM_CLASSES).init(device),
        }
    }

    /// Loads torchvision's state dict (for example `mobilenet_v2-b0353104.pth`) onto `device`.
    /// Every tensor the network needs must be present; batch norm keeps its running statistics.
    pub fn load(path: &Path, device: &Device) -> Result<Self, MobileNetError> {
        let shown = path.display().to_string();
        let weights_err = |message: String| MobileNetError::Weights {
            path: shown.clone(),
            message,
        };
        let mut model = Self::new(device);
        let remap = Self::key_remapper().map_err(weights_err)?;
        let mut store = PytorchStore::from_file(path)
            .map_indices_contiguous(false)
            .allow_partial(true)
            .remap(remap);
        let result = model
            .load_from(&mut store)
            .map_err(|e| weights_err(e.to_string()))?;
        if let Some(e) = result.errors.first() {
            return Err(weights_err(format!("{e:?}")));
        }
        if let Some((name, _)) = result.missing.first() {
            return Err(MobileNetError::Missing {
                path: shown,
                count: result.missing.len(),
                example: name.clone(),
            });
        }
        Ok(model)
    }

    /// torchvision key -> this module's path. The blocks' inner indices depend on whether the
    /// block has an expansion (`features.1` has none), so each is spelled out.
    fn key_remapper() -> Result<KeyRemapper, String> {
        let mut pairs: Vec<(String, String)> = vec![
            (r"^features\.0\.0\.".into(), "stem.conv.".into()),
            (r"^features\.0\.1\.".into(), "stem.bn.".into()),
            (r"^features\.18\.0\.".into(), "head.conv.".into()),
            (r"^features\.18\.1\.".into(), "head.bn.".into()),
            (r"^classifier\.1\.".into(), "classifier.".into()),
            (
                r"^features\.1\.conv\.0\.0\.".into(),
                "blocks.0.depthwise.conv.".into(),
            ),
            (
                r"^features\.1\.conv\.0\.1\.".into(),
                "blocks.0.depthwise.bn.".into(),
            ),
            (
                r"^features\.1\.conv\.1\.".into(),
                "blocks.0.project.conv.".into(),
            ),
            (
                r"^features\.1\.conv\.2\.".into(),
                "blocks.0.project.bn.".into(),
            ),
        ];
        for f in 2..=17 {
            let b = f - 1;
            for (from, to) in [
                ("conv\\.0\\.0\\.", "expand.conv."),
                ("conv\\.0\\.1\\.", "expand.bn."),
                ("conv\\.1\\.0\\.", "depthwise.conv."),
                ("conv\\.1\\.1\\.", "depthwise.bn."),
                ("conv\\.2\\.", "project.conv."),
                ("conv\\.3\\.", "project.bn."),
            ] {
                pairs.push((
                    format!(r"^features\.{f}\.{from}"),
                    format!("blocks.{b}.{to}"),
                ));
            }
        }
        KeyRemapper::from_patterns(pairs).map_err(|e| e.to_string())
    }

    /// Class scores (logits) for a batch `[n, 3, h, w]` normalised as [`MobileNetV2::preprocess`]
    /// does.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let Ok(mut feats) = self.features(x, &[FEATURE_LAYERS - 1]) else {
            unreachable!("features.18 exists")
        };
        let last = feats.remove(0);
        let pooled: Tensor<2> = last.mean_dims(&[2, 3]).flatten(1, 3);
        self.classifier.forward(pooled)
    }

    /// The outputs of the `features.i` blocks named in `layers` (any order, repeats allowed), in
    /// that order; computation stops after the deepest one asked for. Shapes `[n, channels, h,
    /// w]`, after the block's activation (ReLU6 for `features.0` and `features.18`; the linear
    /// bottleneck plus skip for the others).
    pub fn features(
        &self,
        x: Tensor<4>,
        layers: &[usize],
    ) -> Result<Vec<Tensor<4>>, MobileNetError> {
        if let Some(&bad) = layers.iter().find(|&&l| l >= FEATURE_LAYERS) {
            return Err(MobileNetError::Layer(bad));
        }
        let deepest = layers.iter().copied().max().unwrap_or(0);
        let mut out: Vec<Option<Tensor<4>>> = vec![None; layers.len()];
        let mut keep = |i: usize, t: &Tensor<4>| {
            for (slot, _) in layers.iter().enumerate().filter(|(_, &l)| l == i) {
                out[slot] = Some(t.clone());
            }
        };
        let mut h = relu6(self.stem.forward(x));
        keep(0, &h);
        for (b, block) in self.blocks.iter().enumerate() {
            if b + 1 > deepest {
                break;
            }
            h = block.forward(h);
            keep(b + 1, &h);
        }
        if deepest == FEATURE_LAYERS - 1 {
            h = relu6(self.head.forward(h));
            keep(FEATURE_LAYERS - 1, &h);
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// The window arithmetic of each `features.i`, from `features.0` to `features.18`.
    pub fn geometry() -> Vec<LayerGeometry> {
        let mut g = vec![LayerGeometry {
            kernel: 3,
            stride: 2,
            padding: 1,
            channels: 32,
        }];
        for (_, c, n, s) in BLOCKS {
            for i in 0..n {
                g.push(LayerGeometry {
                    kernel: 3,
                    stride: if i == 0 { s } else { 1 },
                    padding: 1,
                    channels: c,
                });
            }
        }
        g.push(LayerGeometry {
            kernel: 1,
            stride: 1,
            padding: 0,
            channels: 1280,
        });
        g
    }

    /// Turns interleaved RGB bytes (row-major, `width * height * 3`) into a `[1, 3, height,
    /// width]` tensor with torchvision's ImageNet normalisation. Resizing is the caller's.
    pub fn preprocess(
        rgb: &[u8],
        width: usize,
        height: usize,
        device: &Device,
    ) -> Result<Tensor<4>, MobileNetError> {
        let expected = width * height * 3;
        if rgb.len() != expected {
            return Err(MobileNetError::Input {
                got: rgb.len(),
                expected,
                width,
                height,
            });
        }
        let plane = width * height;
        let mut data = vec![0f32; expected];
        for (i, px) in rgb.chunks_exact(3).enumerate() {
            for c in 0..3 {
                data[c * plane + i] = (px[c] as f32 / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
            }
        }
        Ok(Tensor::from_data(
            TensorData::new(data, [1, 3, height, width]),
            device,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_matches_the_module() {
        let g = MobileNetV2::geometry();
        assert_eq!(g.len(), FEATURE_LAYERS);
        let device = Device::flex();
        let net = MobileNetV2::new(&device);
        assert_eq!(net.blocks.len(), FEATURE_LAYERS - 2);
        let x = Tensor::<4>::zeros([1, 3, 64, 64], &device);
        let layers: Vec<usize> = (0..FEATURE_LAYERS).collect();
        let feats = net.features(x, &layers).expect("valid layers");
        let mut side = 64;
        for (f, geo) in feats.iter().zip(&g) {
            side = (side + 2 * geo.padding - geo.kernel) / geo.stride + 1;
            assert_eq!(f.dims()[1], geo.channels);
            assert_eq!(f.dims()[2], side);
        }
        assert!(matches!(
            net.features(Tensor::<4>::zeros([1, 3, 8, 8], &device), &[19]),
            Err(MobileNetError::Layer(19))
        ));
    }

    #[test]
    fn gradients_reach_the_input_on_an_autodiff_device() {
        let device = Device::flex().autodiff();
        // Frozen: batch norm uses its running statistics and the weights take no gradients,
        // as style transfer needs.
        let net = MobileNetV2::new(&device).freeze();
        let x = Tensor::<4>::ones([1, 3, 32, 32], &device).require_grad();
        let feats = net.features(x.clone(), &[4]).expect("valid layer");
        let loss = feats[0].clone().powf_scalar(2.0).sum();
        let grads = loss.backward();
        let g = x.grad(&grads).expect("input gradient");
        assert_eq!(g.dims(), [1, 3, 32, 32]);
        let values = g.into_data().try_to_vec::<f32>().expect("f32");
        assert!(values.iter().all(|v| v.is_finite()));
        assert!(values.iter().any(|v| *v != 0.0));
    }
}
