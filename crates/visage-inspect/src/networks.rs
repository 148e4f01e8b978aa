//! Adapters that let the inspector look into Visage's networks: MobileNetV2 and VGG19 (burn), the
//! dlib face ResNet (Visage's CPU kernels), and embedding networks trained by `visage train`.

use std::path::Path;

use burn::tensor::{Device, Tensor};
use image::RgbImage;
use visage_image::resize::resize_bilinear;
use visage_nn::networks::mobilenet_v2::{MobileNetV2, FEATURE_LAYERS, INPUT_SIZE};
use visage_nn::networks::StepGeometry;
use visage_nn::{FaceResnet, Layout};
use visage_style::vgg19::{self, Vgg19, VggStep};
use visage_train::checkpoint::InspectableNet;
use visage_train::data::{frame_and_shrink, ink, Framing};

use crate::field::{AxisField, ReceptiveField};
use crate::input::{FeatureMap, Input};
use crate::units::Network;
use crate::InspectError;

/// Scales an image so that its shorter side is `side` pixels, then crops the central
/// `side x side` square (torchvision's evaluation transform, without the 256 step).
pub fn center_square(img: &RgbImage, side: u32) -> RgbImage {
    let (w, h) = (img.width().max(1), img.height().max(1));
    let scale = side as f64 / w.min(h) as f64;
    let (nw, nh) = (
        ((w as f64 * scale).round() as u32).max(side),
        ((h as f64 * scale).round() as u32).max(side),
    );
    let resized = resize_bilinear(img, nw, nh);
    image::imageops::crop_imm(&resized, (nw - side) / 2, (nh - side) / 2, side, side).to_image()
}

/// MobileNetV2 on a burn device (the CPU's `flex` backend unless loaded elsewhere); layers
/// `features.0` to `features.18`; inputs are 224x224 centre crops (see
/// [`MobileNetInspector::prepare`]).
#[derive(Debug)]
pub struct MobileNetInspector {
    net: MobileNetV2,
    device: Device,
    fields: Vec<ReceptiveField>,
}

impl MobileNetInspector {
    /// Loads torchvision weights (`mobilenet_v2-b0353104.pth`) on the CPU.
    pub fn load(weights: &Path) -> Result<Self, InspectError> {
        Self::load_on(weights, Device::flex())
    }

    /// Loads torchvision weights onto `device` (a GPU's, for example).
    pub fn load_on(weights: &Path, device: Device) -> Result<Self, InspectError> {
        let net = MobileNetV2::load(weights, &device)
            .map_err(|e| InspectError::Network(e.to_string()))?;
        Ok(Self::from_net(net, device))
    }

    /// Wraps an already built network living on `device`.
    pub fn from_net(net: MobileNetV2, device: Device) -> Self {
        let mut f = ReceptiveField::identity(2);
        let fields = MobileNetV2::geometry()
            .iter()
            .map(|g| {
                f = f.then_square(g.kernel, g.stride, g.padding);
                f.clone()
            })
            .collect();
        Self {
            net,
            device,
            fields,
        }
    }

    /// The network.
    pub fn net(&self) -> &MobileNetV2 {
        &self.net
    }

    /// The device it runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The network's view of a photograph: its 224x224 centre square.
    pub fn prepare(img: &RgbImage) -> Input {
        Input::Image(center_square(img, INPUT_SIZE as u32))
    }

    /// Class scores for one prepared image.
    pub fn logits(&self, img: &RgbImage) -> Result<Vec<f32>, InspectError> {
        let x = imagenet_tensor(&Input::Image(img.clone()), &self.device)?;
        to_vec(self.net.forward(x).into_data())
    }
}

fn to_vec(data: burn::tensor::TensorData) -> Result<Vec<f32>, InspectError> {
    data.try_into_vec::<f32>()
        .map_err(|e| InspectError::Network(format!("{e:?}")))
}

/// An image input as torchvision's ImageNet networks take it (MobileNetV2, VGG19): RGB scaled to
/// 0..1 and normalised per channel, on `device`.
fn imagenet_tensor(input: &Input, device: &Device) -> Result<Tensor<4>, InspectError> {
    let img = input.image()?;
    MobileNetV2::preprocess(
        img.as_raw(),
        img.width() as usize,
        img.height() as usize,
        device,
    )
    .map_err(|e| InspectError::Network(e.to_string()))
}

/// Layer `layer`'s field from a per-layer list (the identity past its end).
fn field_at(fields: &[ReceptiveField], layer: usize) -> ReceptiveField {
    fields
        .get(layer)
        .cloned()
        .unwrap_or_else(|| ReceptiveField::identity(2))
}

fn tensor_map(t: Tensor<4>) -> Result<FeatureMap, InspectError> {
    let [_, c, h, w] = t.dims();
    Ok(FeatureMap {
        channels: c,
        dims: vec![h, w],
        data: to_vec(t.into_data())?,
    })
}

impl Network for MobileNetInspector {
    fn layer_names(&self) -> Vec<String> {
        (0..FEATURE_LAYERS)
            .map(|i| format!("features.{i}"))
            .collect()
    }

    fn receptive_field(&self, layer: usize) -> ReceptiveField {
        field_at(&self.fields, layer)
    }

    fn activations(
        &self,
        input: &Input,
        layers: &[usize],
    ) -> Result<Vec<FeatureMap>, InspectError> {
        let x = imagenet_tensor(input, &self.device)?;
        self.net
            .features(x, layers)
            .map_err(|e| InspectError::Network(e.to_string()))?
            .into_iter()
            .map(tensor_map)
            .collect()
    }
}

/// The dlib face ResNet; its layers are the compiled network's steps (`step{i}` with the step's
/// description, see [`FaceResnet::steps`]); inputs are 150x150 aligned chips.
#[derive(Debug)]
pub struct FaceResnetInspector {
    net: FaceResnet,
    names: Vec<String>,
    fields: Vec<ReceptiveField>,
}

impl FaceResnetInspector {
    /// Wraps a compiled network, working out every step's receptive field through the residual
    /// graph (a branch restarts from its tag's field; an addition takes the union).
    pub fn new(net: FaceResnet) -> Self {
        let steps = net.steps();
        let mut tags: Vec<(u32, ReceptiveField)> = Vec::new();
        let mut f = ReceptiveField::identity(2);
        let mut fields = Vec::with_capacity(steps.len());
        let (rows, cols) = net.input_size();
        let find = |tags: &[(u32, ReceptiveField)], id: u32| {
            tags.iter()
                .rev()
                .find(|(t, _)| *t == id)
                .map(|(_, f)| f.clone())
        };
        for s in &steps {
            f = match s.geometry {
                StepGeometry::Window {
                    kernel,
                    stride,
                    padding,
                    ..
                } => f.then(
                    &[kernel.0, kernel.1],
                    &[stride.0, stride.1],
                    &[padding.0, padding.1],
                ),
                StepGeometry::Pointwise => f,
                // Every output sees the whole input, wherever the chain had got to.
                StepGeometry::Global => ReceptiveField {
                    axes: [rows, cols]
                        .iter()
                        .map(|&n| AxisField {
                            size: n,
                            jump: n,
                            offset: 0,
                        })
                        .collect(),
                },
                StepGeometry::Tag(id) => {
                    tags.push((id, f.clone()));
                    f
                }
                StepGeometry::Skip(id) => find(&tags, id).unwrap_or(f),
                StepGeometry::Add(id) => match find(&tags, id) {
                    Some(t) => f.union(&t),
                    None => f,
                },
            };
            fields.push(f.clone());
        }
        let names = (0..steps.len()).map(|i| format!("step{i}")).collect();
        Self { net, names, fields }
    }

    /// Reads dlib's `dlib_face_recognition_resnet_model_v1.dat` and compiles it.
    pub fn load(path: &Path) -> Result<Self, InspectError> {
        let model = visage_formats::dlib::resnet::ResnetModel::from_file(path)
            .map_err(|e| InspectError::Network(format!("{}: {e}", path.display())))?;
        let net =
            FaceResnet::from_model(&model).map_err(|e| InspectError::Network(e.to_string()))?;
        Ok(Self::new(net))
    }

    /// Human-readable description of every step (`"conv 32->32 3x3/1 +relu"`, ...), by index.
    pub fn step_descriptions(&self) -> Vec<String> {
        self.net.steps().into_iter().map(|s| s.name).collect()
    }

    /// Input side in pixels (150).
    pub fn chip_size(&self) -> u32 {
        self.net.input_size().0 as u32
    }
}

impl Network for FaceResnetInspector {
    fn layer_names(&self) -> Vec<String> {
        self.names.clone()
    }

    fn describe_layer(&self, layer: usize) -> String {
        self.net
            .steps()
            .get(layer)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }

    fn receptive_field(&self, layer: usize) -> ReceptiveField {
        field_at(&self.fields, layer)
    }

    fn activations(
        &self,
        input: &Input,
        layers: &[usize],
    ) -> Result<Vec<FeatureMap>, InspectError> {
        let img = input.image()?;
        let side = self.chip_size();
        let resized;
        let chip = if img.width() == side && img.height() == side {
            img
        } else {
            resized = resize_bilinear(img, side, side);
            &resized
        };
        let maps = self
            .net
            .activations(&[chip.as_raw().as_slice()], layers)
            .map_err(|e| InspectError::Network(e.to_string()))?;
        Ok(maps
            .into_iter()
            .map(|t| {
                let s = t.shape();
                debug_assert!(s.n == 1 || t.layout() == Layout::Cnhw);
                // One chip: channel-major and sample-major layouts coincide.
                FeatureMap {
                    channels: s.c,
                    dims: vec![s.h, s.w],
                    data: t.into_vec(),
                }
            })
            .collect())
    }
}

/// VGG19 in torchvision's layout on burn's CPU backend; layers `features.0` to `features.36`
/// (described as `conv1_1`, `relu1_1`, …); inputs are 224x224 centre crops, as for MobileNetV2.
#[derive(Debug)]
pub struct Vgg19Inspector {
    net: Vgg19,
    device: Device,
    fields: Vec<ReceptiveField>,
}

impl Vgg19Inspector {
    /// Loads torchvision weights (`.pth` or `.safetensors`), or, with `None`, draws random ones
    /// (right for receptive fields and shapes, not for what units mean), on the CPU.
    pub fn load(weights: Option<&Path>) -> Result<Self, InspectError> {
        Self::load_on(weights, Device::flex())
    }

    /// [`Vgg19Inspector::load`] onto `device` (a GPU's, for example).
    pub fn load_on(weights: Option<&Path>, device: Device) -> Result<Self, InspectError> {
        let net = match weights {
            Some(path) => {
                Vgg19::load(path, &device).map_err(|e| InspectError::Network(e.to_string()))?
            }
            None => Vgg19::new(&device),
        };
        let mut f = ReceptiveField::identity(2);
        let fields = vgg19::steps()
            .into_iter()
            .map(|step| {
                f = match step {
                    VggStep::Conv(_) => f.then_square(3, 1, 1),
                    VggStep::Relu => f.clone(),
                    VggStep::Pool => f.then_square(2, 2, 0),
                };
                f.clone()
            })
            .collect();
        Ok(Self {
            net,
            device,
            fields,
        })
    }
}

impl Network for Vgg19Inspector {
    fn layer_names(&self) -> Vec<String> {
        (0..self.fields.len())
            .map(|i| format!("features.{i}"))
            .collect()
    }

    fn describe_layer(&self, layer: usize) -> String {
        vgg19::step_names().get(layer).cloned().unwrap_or_default()
    }

    fn receptive_field(&self, layer: usize) -> ReceptiveField {
        field_at(&self.fields, layer)
    }

    fn activations(
        &self,
        input: &Input,
        layers: &[usize],
    ) -> Result<Vec<FeatureMap>, InspectError> {
        let x = imagenet_tensor(input, &self.device)?;
        self.net
            .features(x, layers)
            .into_iter()
            .map(tensor_map)
            .collect()
    }
}

/// An embedding network from a `visage train` checkpoint; layers `blocks.<i>.conv` (after batch
/// norm and ReLU); inputs are grey images shrunk to the network's side (28 pixels by default),
/// with ink as the network saw it in training (see [`grey_square`]).
#[derive(Debug)]
pub struct CheckpointInspector {
    net: InspectableNet,
    /// The conv layers' names and receptive fields.
    layers: Vec<(String, ReceptiveField)>,
}

impl CheckpointInspector {
    /// Loads a checkpoint written by `visage train`.
    pub fn load(path: &Path) -> Result<Self, InspectError> {
        let net = InspectableNet::load(path).map_err(|e| InspectError::Network(e.to_string()))?;
        let mut f = ReceptiveField::identity(2);
        let mut layers = Vec::new();
        for g in net.geometry() {
            f = f.then_square(g.kernel, g.stride, g.padding);
            if g.name.ends_with(".conv") {
                layers.push((g.name, f.clone()));
            }
        }
        Ok(Self { net, layers })
    }

    /// Input side, pixels.
    pub fn input_size(&self) -> usize {
        self.net.input_size()
    }

    /// How the network's training framed each drawing (inputs must be framed alike).
    pub fn framing(&self) -> Framing {
        self.net.meta.config.framing
    }
}

/// A photograph as a `visage train` network sees it: grey, framed by `framing` (as the
/// checkpoint was trained, [`CheckpointInspector::framing`]) and shrunk to `side x side` pixels
/// (kept as RGB so that patches can be cut from it).
pub fn grey_square(img: &RgbImage, side: usize, framing: Framing) -> Input {
    let grey = frame_and_shrink(
        image::DynamicImage::ImageRgb8(img.clone()).to_luma8(),
        side,
        framing,
    );
    Input::Image(image::DynamicImage::ImageLuma8(grey).to_rgb8())
}

impl Network for CheckpointInspector {
    fn layer_names(&self) -> Vec<String> {
        self.layers.iter().map(|(n, _)| n.clone()).collect()
    }

    fn receptive_field(&self, layer: usize) -> ReceptiveField {
        self.layers
            .get(layer)
            .map(|(_, f)| f.clone())
            .unwrap_or_else(|| ReceptiveField::identity(2))
    }

    fn activations(
        &self,
        input: &Input,
        layers: &[usize],
    ) -> Result<Vec<FeatureMap>, InspectError> {
        let img = input.image()?;
        let side = self.input_size();
        if (img.width() as usize, img.height() as usize) != (side, side) {
            return Err(InspectError::Network(format!(
                "the checkpoint's network takes {side}x{side} images, got {}x{} (see grey_square)",
                img.width(),
                img.height()
            )));
        }
        let grey = image::DynamicImage::ImageRgb8(img.clone()).to_luma8();
        let all = self
            .net
            .activations(&[ink(&grey)])
            .map_err(|e| InspectError::Network(e.to_string()))?;
        layers
            .iter()
            .map(|&l| {
                let a = all.get(l).ok_or_else(|| InspectError::Layer {
                    name: l.to_string(),
                    known: self.layer_names().join(", "),
                })?;
                let [_, c, h, w] = a.dims;
                Ok(FeatureMap {
                    channels: c,
                    dims: vec![h, w],
                    data: a.values.clone(),
                })
            })
            .collect()
    }
}
