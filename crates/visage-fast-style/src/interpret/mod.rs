//! A small ONNX interpreter for the operators the arbitrary-style networks use (convolution,
//! element-wise arithmetic, reflection padding, nearest-neighbour resizing, global pooling,
//! reshape/transpose, and the quantize/dequantize pairs of int8 models). Everything that depends
//! only on weights (dequantizing them, style-independent constants) is computed once when the
//! model is loaded; `run` then evaluates the remaining nodes in order, dropping each
//! intermediate value after its last use.

pub mod array;
pub mod conv;
pub mod pad;
pub mod quant;
pub mod resize;

use std::collections::HashMap;

use visage_formats::onnx::{Model, Node, Tensor as OnnxTensor, TensorData};
use visage_nn::ops::ConvScratch;

use crate::StyleError;
use array::NdArray;
use conv::{conv, ConvGeometry};
use quant::{dequantize, quantize, QuantRange};

/// A loaded ONNX graph, ready to evaluate.
#[derive(Debug)]
pub struct Interpreter {
    nodes: Vec<Node>,
    constants: HashMap<String, NdArray>,
    ranges: HashMap<String, QuantRange>,
    inputs: Vec<String>,
    outputs: Vec<String>,
}

fn fail(node: &Node, message: impl std::fmt::Display) -> StyleError {
    StyleError::Model(format!("{} node {:?}: {message}", node.op_type, node.name))
}

fn to_array(t: &OnnxTensor) -> Result<NdArray, StyleError> {
    NdArray::new(t.dims.clone(), t.data.to_f32())
}

fn range_of(t: &OnnxTensor) -> Option<QuantRange> {
    match t.data {
        TensorData::U8(_) => Some(QuantRange::U8),
        TensorData::I8(_) => Some(QuantRange::I8),
        TensorData::I32(_) => Some(QuantRange::I32),
        _ => None,
    }
}

impl Interpreter {
    /// Prepares `model`'s graph: weights converted, weight-only nodes evaluated.
    pub fn new(model: &Model) -> Result<Self, StyleError> {
        let g = &model.graph;
        let mut constants = HashMap::new();
        let mut ranges = HashMap::new();
        for (name, t) in &g.initializers {
            constants.insert(name.clone(), to_array(t)?);
            if let Some(r) = range_of(t) {
                ranges.insert(name.clone(), r);
            }
        }
        let mut interp = Self {
            nodes: Vec::new(),
            constants,
            ranges,
            inputs: g.inputs.clone(),
            outputs: g.outputs.clone(),
        };
        let mut scratch = ConvScratch::default();
        for node in &g.nodes {
            let constant = node
                .inputs
                .iter()
                .all(|i| i.is_empty() || interp.constants.contains_key(i));
            if constant {
                let outs = interp.eval(node, &HashMap::new(), &mut scratch)?;
                for (name, v) in node.outputs.iter().zip(outs) {
                    interp.constants.insert(name.clone(), v);
                }
            } else {
                interp.nodes.push(node.clone());
            }
        }
        Ok(interp)
    }

    /// Names of the inputs `run` expects, in order.
    pub fn inputs(&self) -> &[String] {
        &self.inputs
    }

    /// Evaluates the graph on `inputs` (one array per graph input, in order) and returns its
    /// outputs in order.
    pub fn run(&self, inputs: Vec<NdArray>) -> Result<Vec<NdArray>, StyleError> {
        if inputs.len() != self.inputs.len() {
            return Err(StyleError::Model(format!(
                "{} inputs given, the graph takes {}",
                inputs.len(),
                self.inputs.len()
            )));
        }
        let mut last_use: HashMap<&str, usize> = HashMap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            for input in &node.inputs {
                last_use.insert(input.as_str(), i);
            }
        }
        let mut values: HashMap<String, NdArray> =
            self.inputs.iter().cloned().zip(inputs).collect();
        let mut scratch = ConvScratch::default();
        for (i, node) in self.nodes.iter().enumerate() {
            let outs = self.eval(node, &values, &mut scratch)?;
            for input in &node.inputs {
                if last_use.get(input.as_str()) == Some(&i) && !self.outputs.contains(input) {
                    values.remove(input);
                }
            }
            for (name, v) in node.outputs.iter().zip(outs) {
                values.insert(name.clone(), v);
            }
        }
        self.outputs
            .iter()
            .map(|name| {
                values
                    .remove(name)
                    .or_else(|| self.constants.get(name).cloned())
                    .ok_or_else(|| StyleError::Model(format!("output {name:?} was not computed")))
            })
            .collect()
    }

    fn eval(
        &self,
        node: &Node,
        values: &HashMap<String, NdArray>,
        scratch: &mut ConvScratch,
    ) -> Result<Vec<NdArray>, StyleError> {
        let input = |i: usize| -> Result<Option<&NdArray>, StyleError> {
            match node.inputs.get(i).map(String::as_str) {
                None | Some("") => Ok(None),
                Some(name) => values
                    .get(name)
                    .or_else(|| self.constants.get(name))
                    .map(Some)
                    .ok_or_else(|| fail(node, format!("input {name:?} is not available"))),
            }
        };
        let required = |i: usize| -> Result<&NdArray, StyleError> {
            input(i)?.ok_or_else(|| fail(node, format!("input {i} is missing")))
        };
        let binary = |f: fn(f32, f32) -> f32| -> Result<NdArray, StyleError> {
            NdArray::broadcast(required(0)?, required(1)?, f)
        };
        let out = match node.op_type.as_str() {
            "Constant" => {
                let t = node
                    .tensor("value")
                    .ok_or_else(|| fail(node, "only tensor values are supported"))?;
                to_array(t)?
            }
            "Add" => binary(|a, b| a + b)?,
            "Sub" => binary(|a, b| a - b)?,
            "Mul" => binary(|a, b| a * b)?,
            "Div" => binary(|a, b| a / b)?,
            "Relu" => required(0)?.clone().map(|v| v.max(0.0)),
            "Sigmoid" => required(0)?.clone().map(|v| 1.0 / (1.0 + (-v).exp())),
            "Sqrt" => required(0)?.clone().map(f32::sqrt),
            "Reciprocal" => required(0)?.clone().map(|v| 1.0 / v),
            "Clip" => {
                let lo = input(1)?
                    .map(|a| a.data[0])
                    .unwrap_or(node.float("min", f32::NEG_INFINITY));
                let hi = input(2)?
                    .map(|a| a.data[0])
                    .unwrap_or(node.float("max", f32::INFINITY));
                required(0)?.clone().map(|v| v.clamp(lo, hi))
            }
            "Reshape" => {
                let shape: Vec<i64> = required(1)?.data.iter().map(|&v| v as i64).collect();
                required(0)?.clone().reshape(&shape)?
            }
            "Transpose" => {
                let x = required(0)?;
                let perm: Vec<usize> = match node.ints("perm") {
                    Some(p) => p.iter().map(|&v| v as usize).collect(),
                    None => (0..x.dims.len()).rev().collect(),
                };
                x.transpose(&perm)?
            }
            "GlobalAveragePool" => {
                let x = required(0)?;
                if x.dims.len() != 4 {
                    return Err(fail(node, "needs a 4-D input"));
                }
                let plane = x.dims[2] * x.dims[3];
                let data = x
                    .data
                    .chunks_exact(plane.max(1))
                    .map(|p| (p.iter().map(|&v| v as f64).sum::<f64>() / plane as f64) as f32)
                    .collect();
                NdArray::new(vec![x.dims[0], x.dims[1], 1, 1], data)?
            }
            "Pad" => self.pad(node, required(0)?, required(1)?, input(2)?)?,
            "Resize" => {
                let x = required(0)?;
                if node.string("mode").as_deref().unwrap_or("nearest") != "nearest"
                    || node.string("coordinate_transformation_mode").as_deref()
                        != Some("asymmetric")
                    || node
                        .string("nearest_mode")
                        .as_deref()
                        .unwrap_or("round_prefer_floor")
                        != "floor"
                {
                    return Err(fail(node, "only nearest, asymmetric, floor is supported"));
                }
                let scales = input(2)?
                    .filter(|s| !s.data.is_empty())
                    .ok_or_else(|| fail(node, "needs scales"))?;
                resize::nearest(x, &scales.data).map_err(|e| fail(node, e))?
            }
            "Conv" => {
                let pads = match node.ints("pads") {
                    Some(p) if p.len() == 4 => [p[0], p[1], p[2], p[3]].map(|v| v.max(0) as usize),
                    Some(_) => return Err(fail(node, "only 2-D padding is supported")),
                    None => [0; 4],
                };
                if node.string("auto_pad").is_some_and(|a| a != "NOTSET") {
                    return Err(fail(node, "auto_pad is not supported"));
                }
                if node
                    .ints("dilations")
                    .is_some_and(|d| d.iter().any(|&v| v != 1))
                {
                    return Err(fail(node, "dilation is not supported"));
                }
                let s = node.ints("strides").unwrap_or(&[1, 1]);
                let geometry = ConvGeometry {
                    pads,
                    strides: [
                        s[0].max(1) as usize,
                        s.get(1).copied().unwrap_or(1).max(1) as usize,
                    ],
                    group: node.int("group", 1).max(1) as usize,
                };
                conv(required(0)?, required(1)?, input(2)?, geometry, scratch)?
            }
            "QuantizeLinear" => {
                let range = match node.inputs.get(2) {
                    Some(z) if !z.is_empty() => *self.ranges.get(z).unwrap_or(&QuantRange::U8),
                    _ => QuantRange::U8,
                };
                quantize(
                    required(0)?,
                    required(1)?,
                    input(2)?,
                    range,
                    node.int("axis", 1),
                )?
            }
            "DequantizeLinear" => {
                dequantize(required(0)?, required(1)?, input(2)?, node.int("axis", 1))?
            }
            op => return Err(fail(node, format!("operator {op} is not supported"))),
        };
        Ok(vec![out])
    }

    fn pad(
        &self,
        node: &Node,
        x: &NdArray,
        pads: &NdArray,
        fill: Option<&NdArray>,
    ) -> Result<NdArray, StyleError> {
        let p: Vec<i64> = pads.data.iter().map(|&v| v as i64).collect();
        let rank = x.dims.len();
        if p.len() != 2 * rank || p.iter().any(|&v| v < 0) {
            return Err(fail(node, format!("pads {p:?} for {:?}", x.dims)));
        }
        let mode = node.string("mode").unwrap_or_else(|| "constant".into());
        let value = fill.and_then(|f| f.data.first().copied()).unwrap_or(0.0);
        let pairs: Vec<(usize, usize)> = (0..rank)
            .map(|d| (p[d] as usize, p[d + rank] as usize))
            .collect();
        match mode.as_str() {
            "reflect" => pad::reflect(x, &pairs).map_err(|e| fail(node, e)),
            "constant" => Ok(pad::constant(x, &pairs, value)),
            other => Err(fail(
                node,
                format!("padding mode {other:?} is not supported"),
            )),
        }
    }
}
