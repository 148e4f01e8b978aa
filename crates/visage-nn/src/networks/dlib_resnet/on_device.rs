//! The compiled face ResNet as burn tensor operations, so that it runs wherever burn runs (a GPU
//! through [`crate::Compute::Gpu`]). The same fused steps as the CPU kernels, with the weights
//! copied to the device once; descriptors agree with [`FaceResnet::encode_batch`] to float
//! rounding.

use burn::tensor::activation::relu;
use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData};

use super::{check_chips, Descriptor, FaceResnet, Step, DESCRIPTOR_LEN};
use crate::ops::{Activation, PoolSpec};
use crate::NnError;

/// Chips per pass on a device: enough to fill a large GPU's cores with the deep layers' small
/// planes, about 600 MiB of activations in `f32`.
pub const DEVICE_BATCH: usize = 128;

/// One fused step with its parameters on the device.
enum DeviceStep {
    Conv {
        weight: Tensor<4>,
        bias: Tensor<1>,
        options: ConvOptions<2>,
        relu: bool,
    },
    Affine {
        gamma: Tensor<4>,
        beta: Tensor<4>,
        relu: bool,
    },
    Relu,
    MaxPool(MaxPoolOptions<2>),
    AvgPool(AvgPoolOptions<2>),
    GlobalAvgPool,
    Tag(u32),
    Skip(u32),
    AddPrev {
        tag: u32,
        relu: bool,
    },
}

/// dlib's face ResNet with its weights on a burn device; see [`FaceResnet::on_device`].
pub struct DeviceFaceResnet {
    device: Device,
    input_mean: [f32; 3],
    input_size: (usize, usize),
    steps: Vec<DeviceStep>,
    /// `[inputs, 128]`.
    fc_weight: Tensor<2>,
    fc_bias: Option<Tensor<2>>,
}

impl std::fmt::Debug for DeviceFaceResnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceFaceResnet")
            .field("device", &self.device)
            .field("steps", &self.steps.len())
            .finish()
    }
}

fn vector(values: &[f32], device: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
}

fn per_channel(values: &[f32], device: &Device) -> Tensor<4> {
    vector(values, device).reshape([1, values.len(), 1, 1])
}

fn max_options(p: &PoolSpec) -> MaxPoolOptions<2> {
    MaxPoolOptions::new([p.window.0, p.window.1])
        .with_stride([p.stride.0, p.stride.1])
        .with_padding([p.padding.0, p.padding.1])
}

/// dlib averages over the part of each window inside the input: padding is not counted.
fn avg_options(p: &PoolSpec) -> AvgPoolOptions<2> {
    AvgPoolOptions::new([p.window.0, p.window.1])
        .with_stride([p.stride.0, p.stride.1])
        .with_padding([p.padding.0, p.padding.1])
        .with_count_include_pad(false)
}

/// `t` grown with zeros at the end of each dimension to `dims` (dlib's `add_prev` of tensors of
/// different sizes).
fn zero_extended(t: Tensor<4>, dims: [usize; 4]) -> Tensor<4> {
    let mut t = t;
    for (axis, &want) in dims.iter().enumerate() {
        let have = t.dims()[axis];
        if have < want {
            let mut pad = t.dims();
            pad[axis] = want - have;
            let zeros = Tensor::<4>::zeros(pad, &t.device());
            t = Tensor::cat(vec![t, zeros], axis);
        }
    }
    t
}

impl FaceResnet {
    /// Copies the network's weights to `device` (for example [`crate::Compute::Gpu`]'s), ready
    /// to encode there.
    pub fn on_device(&self, device: &Device) -> Result<DeviceFaceResnet, NnError> {
        let steps = self
            .steps
            .iter()
            .map(|step| match step {
                Step::Conv { conv, activation } => {
                    let s = conv.spec();
                    let taps = s.taps();
                    let mut w = Vec::with_capacity(s.out_channels * taps);
                    for f in 0..s.out_channels {
                        w.extend((0..taps).map(|t| conv.weight(f, t)));
                    }
                    DeviceStep::Conv {
                        weight: Tensor::from_data(
                            TensorData::new(
                                w,
                                [s.out_channels, s.in_channels, s.kernel.0, s.kernel.1],
                            ),
                            device,
                        ),
                        bias: vector(conv.bias(), device),
                        options: ConvOptions::new(
                            [s.stride.0, s.stride.1],
                            [s.padding.0, s.padding.1],
                            [1, 1],
                            1,
                        ),
                        relu: *activation == Activation::Relu,
                    }
                }
                Step::Affine {
                    gamma,
                    beta,
                    activation,
                } => DeviceStep::Affine {
                    gamma: per_channel(gamma, device),
                    beta: per_channel(beta, device),
                    relu: *activation == Activation::Relu,
                },
                Step::Relu => DeviceStep::Relu,
                Step::MaxPool(p) => DeviceStep::MaxPool(max_options(p)),
                Step::AvgPool(p) => DeviceStep::AvgPool(avg_options(p)),
                Step::GlobalAvgPool => DeviceStep::GlobalAvgPool,
                Step::Tag(id) => DeviceStep::Tag(*id),
                Step::Skip(id) => DeviceStep::Skip(*id),
                Step::AddPrev { tag, activation } => DeviceStep::AddPrev {
                    tag: *tag,
                    relu: *activation == Activation::Relu,
                },
            })
            .collect();
        let (inputs, outputs) = (self.fc.inputs(), self.fc.outputs());
        Ok(DeviceFaceResnet {
            device: device.clone(),
            input_mean: self.input_mean,
            input_size: self.input_size,
            steps,
            fc_weight: Tensor::from_data(
                TensorData::new(self.fc.weights().to_vec(), [inputs, outputs]),
                device,
            ),
            fc_bias: self
                .fc
                .bias()
                .map(|b| vector(b, device).reshape([1, outputs])),
        })
    }
}

impl DeviceFaceResnet {
    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Encodes chips (each `rows * cols * 3` bytes of interleaved RGB at the network's input
    /// size), [`DEVICE_BATCH`] at a time; one descriptor per chip, in order.
    pub fn encode_batch(&self, chips: &[&[u8]]) -> Result<Vec<Descriptor>, NnError> {
        check_chips(self.input_size, chips)?;
        let mut out = Vec::with_capacity(chips.len());
        for batch in chips.chunks(DEVICE_BATCH) {
            let values = self
                .forward(batch)?
                .into_data()
                .try_to_vec::<f32>()
                .map_err(|e| NnError::Device(format!("reading descriptors back: {e:?}")))?;
            out.extend(values.chunks_exact(DESCRIPTOR_LEN).map(|row| {
                let mut d = [0f32; DESCRIPTOR_LEN];
                d.copy_from_slice(row);
                d
            }));
        }
        Ok(out)
    }

    /// `[n, 128]` descriptors of one batch of checked chips.
    fn forward(&self, chips: &[&[u8]]) -> Result<Tensor<2>, NnError> {
        let (rows, cols) = self.input_size;
        let plane = rows * cols;
        let n = chips.len();
        let mut input = vec![0f32; n * 3 * plane];
        for (chip, dst) in chips.iter().zip(input.chunks_exact_mut(3 * plane)) {
            for (p, px) in chip.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    dst[c * plane + p] = (px[c] as f32 - self.input_mean[c]) / 256.0;
                }
            }
        }
        let mut cur =
            Tensor::<4>::from_data(TensorData::new(input, [n, 3, rows, cols]), &self.device);
        let mut tags: Vec<(u32, Tensor<4>)> = Vec::new();
        let tagged = |tags: &[(u32, Tensor<4>)], id: u32| {
            tags.iter()
                .rev()
                .find(|(t, _)| *t == id)
                .map(|(_, x)| x.clone())
                .ok_or_else(|| NnError::shape("tags", format!("no tag{id} below")))
        };
        let relu_if = |x: Tensor<4>, on: bool| if on { relu(x) } else { x };
        for step in &self.steps {
            cur = match step {
                DeviceStep::Conv {
                    weight,
                    bias,
                    options,
                    relu,
                } => relu_if(
                    conv2d(cur, weight.clone(), Some(bias.clone()), options.clone()),
                    *relu,
                ),
                DeviceStep::Affine { gamma, beta, relu } => {
                    relu_if(cur * gamma.clone() + beta.clone(), *relu)
                }
                DeviceStep::Relu => relu(cur),
                DeviceStep::MaxPool(options) => max_pool2d(cur, options.clone()),
                DeviceStep::AvgPool(options) => avg_pool2d(cur, options.clone()),
                DeviceStep::GlobalAvgPool => cur.mean_dim(3).mean_dim(2),
                DeviceStep::Tag(id) => {
                    tags.retain(|(t, _)| t != id);
                    tags.push((*id, cur.clone()));
                    cur
                }
                DeviceStep::Skip(id) => tagged(&tags, *id)?,
                DeviceStep::AddPrev { tag, relu } => {
                    let other = tagged(&tags, *tag)?;
                    let (a, b) = (cur.dims(), other.dims());
                    let sum = if a == b {
                        cur + other
                    } else {
                        let dims = [0, 1, 2, 3].map(|i| a[i].max(b[i]));
                        zero_extended(cur, dims) + zero_extended(other, dims)
                    };
                    relu_if(sum, *relu)
                }
            };
        }
        let [n, c, h, w] = cur.dims();
        let y = cur.reshape([n, c * h * w]).matmul(self.fc_weight.clone());
        Ok(match &self.fc_bias {
            Some(b) => y + b.clone(),
            None => y,
        })
    }
}
