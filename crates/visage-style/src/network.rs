//! The loss networks: MobileNetV2 (torchvision weights, batch norm folded into the convolutions)
//! and VGG19 (torchvision layout, a user's weights or random ones), behind one interface that
//! names layers, taps their activations and knows their receptive fields.

use std::path::Path;

use burn::tensor::activation::softmax;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};
use visage_nn::networks::mobilenet_v2::{
    ConvBn, MobileNetV2, FEATURE_LAYERS, IMAGENET_MEAN, IMAGENET_STD,
};

use crate::vgg19::{self, Vgg19, VggStep};
use crate::StyleError;

/// Which network measures content and style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkKind {
    /// torchvision's ImageNet MobileNetV2; layers `features.0` to `features.18`.
    MobilenetV2,
    /// VGG19 in torchvision's layout; layers `features.0` to `features.36` or `relu4_2`-style
    /// names.
    Vgg19,
}

impl NetworkKind {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Self::MobilenetV2 => "MobileNetV2",
            Self::Vgg19 => "VGG19",
        }
    }

    /// How many tappable layers the network has.
    pub fn layer_count(self) -> usize {
        match self {
            Self::MobilenetV2 => FEATURE_LAYERS,
            Self::Vgg19 => vgg19::steps().len(),
        }
    }

    /// The index of a layer given as `features.N`, `N` or (VGG19) `relu4_2`.
    pub fn parse_layer(self, name: &str) -> Result<usize, StyleError> {
        let trimmed = name.trim();
        let number = trimmed.strip_prefix("features.").unwrap_or(trimmed);
        let index = number.parse::<usize>().ok().or_else(|| match self {
            Self::Vgg19 => vgg19::step_names().iter().position(|n| n == trimmed),
            Self::MobilenetV2 => None,
        });
        match index {
            Some(i) if i < self.layer_count() => Ok(i),
            _ => Err(StyleError::Layer {
                network: self.name(),
                name: name.to_string(),
                known: match self {
                    Self::MobilenetV2 => "features.0 to features.18".into(),
                    Self::Vgg19 => {
                        "features.0 to features.36, or conv1_1 .. relu5_4, pool1 .. pool5".into()
                    }
                },
            }),
        }
    }

    /// The conventional name of layer `index`.
    pub fn layer_name(self, index: usize) -> String {
        match self {
            Self::MobilenetV2 => format!("features.{index}"),
            Self::Vgg19 => vgg19::step_names()
                .get(index)
                .cloned()
                .unwrap_or_else(|| format!("features.{index}")),
        }
    }

    /// (receptive field side, total stride) of layer `index`, in input pixels.
    pub fn receptive_field(self, index: usize) -> (usize, usize) {
        let windows: Vec<(usize, usize)> = match self {
            Self::MobilenetV2 => MobileNetV2::geometry()
                .iter()
                .take(index + 1)
                .map(|g| (g.kernel, g.stride))
                .collect(),
            Self::Vgg19 => vgg19::steps()
                .into_iter()
                .take(index + 1)
                .filter_map(|s| match s {
                    VggStep::Conv(_) => Some((3, 1)),
                    VggStep::Pool => Some((2, 2)),
                    VggStep::Relu => None,
                })
                .collect(),
        };
        let (mut field, mut jump) = (1, 1);
        for (k, s) in windows {
            field += (k - 1) * jump;
            jump *= s;
        }
        (field, jump)
    }

    /// Bytes of activations one input pixel costs per forward and backward pass through layers
    /// up to `deepest`, from the layer shapes: every tensor the backward pass keeps, in `f32`,
    /// times [`MEMORY_FACTOR`].
    pub fn bytes_per_pixel(self, deepest: usize) -> f64 {
        // Floats per input pixel written by each layer: channels / stride², counting the
        // intermediate tensors inside a MobileNetV2 block (expansion, depthwise, projection).
        let mut floats = 3.0;
        match self {
            Self::MobilenetV2 => {
                let geo = MobileNetV2::geometry();
                let mut jump = 1.0;
                let mut cin = 3.0;
                for (i, g) in geo.iter().enumerate().take(deepest + 1) {
                    let c = g.channels as f64;
                    let expansion = if i <= 1 { 1.0 } else { 6.0 };
                    let hidden = cin * expansion;
                    let before = jump;
                    jump *= g.stride as f64;
                    if i == 0 {
                        floats += 2.0 * c / (jump * jump);
                    } else {
                        // expand + relu6 (full res), depthwise + relu6 (strided), projection.
                        floats += 2.0 * hidden / (before * before)
                            + 2.0 * hidden / (jump * jump)
                            + c / (jump * jump);
                    }
                    cin = c;
                }
            }
            Self::Vgg19 => {
                let (mut jump, mut channels) = (1.0, 3.0);
                for s in vgg19::steps().into_iter().take(deepest + 1) {
                    match s {
                        VggStep::Conv(c) => {
                            channels = c as f64;
                            floats += channels / (jump * jump);
                        }
                        VggStep::Relu => floats += channels / (jump * jump),
                        VggStep::Pool => {
                            jump *= 2.0;
                            floats += channels / (jump * jump);
                        }
                    }
                }
            }
        }
        floats * 4.0 * MEMORY_FACTOR
    }
}

/// Allowance over the bytes of the activations the layers write (their gradients, the
/// allocator's slack). Conservative: with it, a MobileNetV2 pass at 512x384 is estimated at
/// 598 MB against a measured process peak (VmHWM) of 280-340 MB.
pub const MEMORY_FACTOR: f64 = 3.0;

/// ReLU6 whose backward pass is a multiplication by a 0/1 mask. burn's own clamp and ReLU
/// backward passes use a branchy masked fill that mispredicts on the random signs of
/// activations and took over a third of each iteration (measured with perf, docs/STYLE.md).
/// The value is `clamp(x, 0, 6)`; the gradient is that of `x * mask` with the mask constant.
pub fn relu6_masked(x: Tensor<4>) -> Tensor<4> {
    clamp_masked(x, 0.0, Some(6.0))
}

/// ReLU with the same mask-multiplying backward pass as [`relu6_masked`].
pub fn relu_masked(x: Tensor<4>) -> Tensor<4> {
    clamp_masked(x, 0.0, None)
}

fn clamp_masked(x: Tensor<4>, low: f64, high: Option<f64>) -> Tensor<4> {
    // The mask and the offset are computed outside autodiff: on the autodiff backend even an
    // untracked clamp goes through the slow masked fill.
    if !x.is_autodiff() {
        return match high {
            Some(h) => x.clamp(low, h),
            None => x.clamp_min(low),
        };
    }
    let value = x.clone().inner();
    let mut mask = value.clone().greater_elem(low).float();
    let mut offset = mask.zeros_like();
    if let Some(h) = high {
        mask = mask * value.clone().lower_elem(h).float();
        offset = value.greater_equal_elem(h).float().mul_scalar(h);
    }
    if !x.is_tracked() {
        return Tensor::from_inner(x.inner() * mask + offset);
    }
    // Equal to clamp(x, low, high) when low is 0; the gradient is the mask.
    x * Tensor::from_inner(mask) + Tensor::from_inner(offset)
}

/// A convolution with its batch norm folded in: `w' = w γ/σ`, `b' = β − μ γ/σ`, exact for batch
/// norm in eval mode, and one op instead of five in the autodiff graph.
#[derive(Debug, Clone)]
struct FoldedConv {
    weight: Tensor<4>,
    bias: Tensor<1>,
    options: ConvOptions<2>,
}

impl FoldedConv {
    fn fold(layer: &ConvBn, device: &Device) -> Result<Self, StyleError> {
        let to_vec = |t: Tensor<1>| {
            t.into_data()
                .try_to_vec::<f32>()
                .map_err(|e| StyleError::Network(format!("{e:?}")))
        };
        let w = layer.conv.weight.val();
        let dims = w.dims();
        let mut weight = w
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| StyleError::Network(format!("{e:?}")))?;
        let gamma = to_vec(layer.bn.gamma.val())?;
        let beta = to_vec(layer.bn.beta.val())?;
        let mean = to_vec(layer.bn.running_mean.value())?;
        let var = to_vec(layer.bn.running_var.value())?;
        let per_out = weight.len() / dims[0];
        let mut bias = vec![0f32; dims[0]];
        for o in 0..dims[0] {
            let scale = gamma[o] / (var[o] + layer.bn.epsilon as f32).sqrt();
            weight[o * per_out..(o + 1) * per_out]
                .iter_mut()
                .for_each(|v| *v *= scale);
            bias[o] = beta[o] - mean[o] * scale;
        }
        let conv = &layer.conv;
        let pad = dims[2] / 2;
        Ok(Self {
            weight: Tensor::from_data(TensorData::new(weight, dims), device),
            bias: Tensor::from_data(TensorData::new(bias, [dims[0]]), device),
            options: ConvOptions::new(conv.stride, [pad, pad], conv.dilation, conv.groups),
        })
    }

    fn to_device(&self, device: &Device) -> Self {
        Self {
            weight: self.weight.clone().to_device(device),
            bias: self.bias.clone().to_device(device),
            options: self.options.clone(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv2d(
            x,
            self.weight.clone(),
            Some(self.bias.clone()),
            self.options.clone(),
        )
    }
}

#[derive(Debug, Clone)]
struct FoldedBlock {
    expand: Option<FoldedConv>,
    depthwise: FoldedConv,
    project: FoldedConv,
}

/// MobileNetV2's `features` with batch norm folded, on any device (weights are constants, so
/// autodiff only tracks the input).
#[derive(Debug, Clone)]
struct FoldedMobileNet {
    stem: FoldedConv,
    blocks: Vec<FoldedBlock>,
    head: FoldedConv,
}

impl FoldedMobileNet {
    fn new(net: &MobileNetV2, device: &Device) -> Result<Self, StyleError> {
        let blocks = net
            .blocks
            .iter()
            .map(|b| {
                Ok(FoldedBlock {
                    expand: b
                        .expand
                        .as_ref()
                        .map(|e| FoldedConv::fold(e, device))
                        .transpose()?,
                    depthwise: FoldedConv::fold(&b.depthwise, device)?,
                    project: FoldedConv::fold(&b.project, device)?,
                })
            })
            .collect::<Result<Vec<_>, StyleError>>()?;
        Ok(Self {
            stem: FoldedConv::fold(&net.stem, device)?,
            blocks,
            head: FoldedConv::fold(&net.head, device)?,
        })
    }

    fn to_device(&self, device: &Device) -> Self {
        Self {
            stem: self.stem.to_device(device),
            blocks: self
                .blocks
                .iter()
                .map(|b| FoldedBlock {
                    expand: b.expand.as_ref().map(|e| e.to_device(device)),
                    depthwise: b.depthwise.to_device(device),
                    project: b.project.to_device(device),
                })
                .collect(),
            head: self.head.to_device(device),
        }
    }

    fn features(&self, x: Tensor<4>, layers: &[usize]) -> Vec<Tensor<4>> {
        let deepest = layers.iter().copied().max().unwrap_or(0);
        let mut out: Vec<Option<Tensor<4>>> = vec![None; layers.len()];
        let mut keep = |i: usize, t: &Tensor<4>| {
            for (slot, _) in layers.iter().enumerate().filter(|(_, &l)| l == i) {
                out[slot] = Some(t.clone());
            }
        };
        let mut h = relu6_masked(self.stem.forward(x));
        keep(0, &h);
        for (b, block) in self
            .blocks
            .iter()
            .enumerate()
            .take(deepest.min(FEATURE_LAYERS - 2))
        {
            let mut y = h.clone();
            if let Some(e) = &block.expand {
                y = relu6_masked(e.forward(y));
            }
            y = relu6_masked(block.depthwise.forward(y));
            y = block.project.forward(y);
            h = if y.dims() == h.dims() { y + h } else { y };
            keep(b + 1, &h);
        }
        if deepest == FEATURE_LAYERS - 1 {
            h = relu6_masked(self.head.forward(h));
            keep(FEATURE_LAYERS - 1, &h);
        }
        out.into_iter().flatten().collect()
    }
}

/// A loss network ready to tap, on one device; style transfer runs where its network lives.
#[derive(Debug, Clone)]
pub struct LossNetwork {
    kind: NetworkKind,
    inner: Inner,
    device: Device,
}

#[derive(Debug, Clone)]
enum Inner {
    Mobile(Box<FoldedMobileNet>),
    Vgg(Vgg19),
}

impl LossNetwork {
    /// torchvision's MobileNetV2 from its `.pth` state dict.
    pub fn mobilenet_v2(weights: &Path, device: &Device) -> Result<Self, StyleError> {
        if !weights.is_file() {
            return Err(StyleError::MissingWeights {
                network: "MobileNetV2",
                path: weights.display().to_string(),
                hint: "set --models or $VISAGE_MODELS to the folder holding mobilenet_v2/, or pass --weights",
            });
        }
        let net = MobileNetV2::load(weights, &Device::flex()).map_err(|e| StyleError::Weights {
            network: "MobileNetV2",
            path: weights.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(Self {
            kind: NetworkKind::MobilenetV2,
            inner: Inner::Mobile(Box::new(FoldedMobileNet::new(&net, device)?)),
            device: device.clone(),
        })
    }

    /// MobileNetV2 with random weights (tests).
    pub fn mobilenet_v2_random(device: &Device) -> Result<Self, StyleError> {
        let net = MobileNetV2::new(&Device::flex());
        Ok(Self {
            kind: NetworkKind::MobilenetV2,
            inner: Inner::Mobile(Box::new(FoldedMobileNet::new(&net, device)?)),
            device: device.clone(),
        })
    }

    /// VGG19 from a torchvision `.pth` or safetensors file.
    pub fn vgg19(weights: &Path, device: &Device) -> Result<Self, StyleError> {
        use burn::module::Module;
        Ok(Self {
            kind: NetworkKind::Vgg19,
            inner: Inner::Vgg(Vgg19::load(weights, device)?.no_grad()),
            device: device.clone(),
        })
    }

    /// VGG19 with random weights: right for timing, shapes and gradients only.
    pub fn vgg19_random(device: &Device) -> Self {
        use burn::module::Module;
        Self {
            kind: NetworkKind::Vgg19,
            inner: Inner::Vgg(Vgg19::new(device).no_grad()),
            device: device.clone(),
        }
    }

    /// The same network (the same weights) on another device: a network loaded once on the
    /// CPU and moved to a GPU computes the same costs there, to float rounding.
    pub fn to_device(&self, device: &Device) -> Self {
        use burn::module::Module;
        Self {
            kind: self.kind,
            inner: match &self.inner {
                Inner::Mobile(m) => Inner::Mobile(Box::new(m.to_device(device))),
                Inner::Vgg(v) => Inner::Vgg(v.clone().to_device(device).no_grad()),
            },
            device: device.clone(),
        }
    }

    /// The device the weights live on (with autodiff if they were loaded onto an autodiff
    /// device).
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Which network this is.
    pub fn kind(&self) -> NetworkKind {
        self.kind
    }

    /// Activations of `layers` for `[N, 3, H, W]` RGB images on a 0..1 scale (the ImageNet
    /// normalisation both networks were trained with is applied here).
    pub fn features(&self, images: Tensor<4>, layers: &[usize]) -> Vec<Tensor<4>> {
        let device = images.device();
        let mean = Tensor::<1>::from_data(TensorData::new(IMAGENET_MEAN.to_vec(), [3]), &device)
            .reshape([1, 3, 1, 1]);
        let std = Tensor::<1>::from_data(TensorData::new(IMAGENET_STD.to_vec(), [3]), &device)
            .reshape([1, 3, 1, 1]);
        let x = (images - mean) / std;
        match &self.inner {
            Inner::Mobile(m) => m.features(x, layers),
            Inner::Vgg(v) => v.features(x, layers),
        }
    }
}

/// Wang et al. (CVPR 2021): a softmax over all activations of a layer (per image) before the
/// losses, which evens out the few huge activations that make Gram losses weak on non-VGG
/// networks. Scaled by the number of activations so that values average 1 and the costs keep
/// VGG-like magnitudes.
pub fn softmax_smoothing(activations: Tensor<4>) -> Tensor<4> {
    let [n, c, h, w] = activations.dims();
    let flat = activations.reshape([n, c * h * w]);
    softmax(flat, 1)
        .mul_scalar((c * h * w) as f64)
        .reshape([n, c, h, w])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_parse_by_index_and_name() {
        let m = NetworkKind::MobilenetV2;
        assert_eq!(m.parse_layer("features.7").unwrap(), 7);
        assert_eq!(m.parse_layer("13").unwrap(), 13);
        assert!(m.parse_layer("features.19").is_err());
        assert!(m.parse_layer("relu4_2").is_err());
        let v = NetworkKind::Vgg19;
        assert_eq!(v.parse_layer("relu4_2").unwrap(), 22);
        assert_eq!(v.parse_layer("features.29").unwrap(), 29);
        assert_eq!(v.layer_name(22), "relu4_2");
    }

    #[test]
    fn receptive_fields_match_the_known_values() {
        // VGG19: relu1_1 sees 3 px; relu5_1 156 px (5, 6, 14, 16, 48, 52, 116, 124, +32).
        assert_eq!(NetworkKind::Vgg19.receptive_field(1), (3, 1));
        assert_eq!(NetworkKind::Vgg19.receptive_field(29), (156, 16));
        assert_eq!(NetworkKind::MobilenetV2.receptive_field(13), (267, 16));
        // MobileNetV2 features.0: one 3x3/2 window.
        assert_eq!(NetworkKind::MobilenetV2.receptive_field(0), (3, 2));
    }

    #[test]
    fn folding_batch_norm_keeps_the_network_s_outputs() {
        let device = Device::flex();
        let net = MobileNetV2::new(&device);
        let folded = FoldedMobileNet::new(&net, &device).unwrap();
        let x = Tensor::<4>::from_data(
            TensorData::new(
                (0..3 * 40 * 40)
                    .map(|i| ((i % 17) as f32 - 8.0) / 8.0)
                    .collect::<Vec<_>>(),
                [1, 3, 40, 40],
            ),
            &device,
        );
        let a = net.features(x.clone(), &[3, 7]).unwrap();
        let b = folded.features(x, &[3, 7]);
        for (p, q) in a.into_iter().zip(b) {
            let p = p.into_data().try_to_vec::<f32>().unwrap();
            let q = q.into_data().try_to_vec::<f32>().unwrap();
            let worst = p
                .iter()
                .zip(&q)
                .map(|(u, v)| (u - v).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-4, "{worst}");
        }
    }

    #[test]
    fn softmax_smoothing_averages_one() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0], [1, 2, 1, 3]),
            &device,
        );
        let s = softmax_smoothing(x)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let mean = s.iter().sum::<f32>() / 6.0;
        assert!((mean - 1.0).abs() < 1e-5);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
    }
}
