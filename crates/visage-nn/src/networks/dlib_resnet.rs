//! dlib's face recognition ResNet (`dlib_face_recognition_resnet_model_v1`): 150x150 RGB chips in,
//! 128-d descriptors out, computed as dlib computes them.
//!
//! The network is compiled from the parsed model into a short list of fused steps: each
//! convolution absorbs the affine layer after it (scaling its filters and bias) and the ReLU after
//! that, and each `add_prev` absorbs the ReLU after it. Activations are kept channel-major across
//! the batch ([`Layout::Cnhw`]), so each convolution over a batch is one large GEMM. Tags and skips
//! are references into a small pool of buffers, never copies.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use visage_formats::dlib::resnet::{AffineMode, Layer, Pool, ResnetModel};

use crate::ops::{
    add_assign, add_zero_padded, affine_channels, avg_pool2d, global_avg_pool, max_pool2d, relu,
    Activation, Conv2d, ConvScratch, ConvSpec, Linear, PoolSpec,
};
use crate::tensor::{Layout, Shape, Tensor};
use crate::NnError;

mod on_device;
pub use on_device::{DeviceFaceResnet, DEVICE_BATCH};

/// Length of a face descriptor.
pub const DESCRIPTOR_LEN: usize = 128;

/// A face descriptor: the network's raw outputs (not normalised; dlib's same-person threshold is a
/// Euclidean distance of 0.6 between them).
pub type Descriptor = [f32; DESCRIPTOR_LEN];

/// Chips go through the network this many at a time, as dlib's `compute_face_descriptor` does:
/// enough pixels for the deep layers' GEMMs to run efficiently, while a call's buffers stay
/// around 40 MiB.
pub const MAX_BATCH: usize = 16;

/// Wall time per step of the compiled network: a step's name (for example
/// `"conv 32->32 3x3/1 +relu"`) and its time.
pub type StepTimes = Vec<(String, Duration)>;

/// One step of the compiled network as [`FaceResnet::steps`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepInfo {
    /// A readable name, for example `"conv 32->32 3x3/1 +relu"`.
    pub name: String,
    /// What the step does to the spatial grid.
    pub geometry: StepGeometry,
}

/// A step's spatial footprint, enough for receptive-field arithmetic over the residual graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepGeometry {
    /// A sliding window (convolution or pooling): sizes as (rows, columns) in input pixels of
    /// the step; `channels` is the number of output channels (0 when unchanged, for pooling).
    Window {
        /// Window size, (rows, columns), pixels.
        kernel: (usize, usize),
        /// Step between windows, (y, x), pixels.
        stride: (usize, usize),
        /// Padding before the first window, (rows, columns), pixels.
        padding: (usize, usize),
        /// Output channels (0: same as the input).
        channels: usize,
    },
    /// Per-pixel (affine, ReLU): the grid is unchanged.
    Pointwise,
    /// Global average pooling: every output sees the whole input.
    Global,
    /// Remembers the current output under this id.
    Tag(u32),
    /// Continues from the output remembered under this id (the start of a parallel branch).
    Skip(u32),
    /// Adds the output remembered under this id to the current one (the end of a residual).
    Add(u32),
}

/// Called after each step with its index and output (see [`FaceResnet::activations`]).
type StepObserver<'a> = &'a mut dyn FnMut(usize, &Tensor);

/// One fused step of the compiled network.
#[derive(Debug)]
enum Step {
    Conv {
        conv: Conv2d,
        activation: Activation,
    },
    Affine {
        gamma: Vec<f32>,
        beta: Vec<f32>,
        activation: Activation,
    },
    Relu,
    MaxPool(PoolSpec),
    AvgPool(PoolSpec),
    GlobalAvgPool,
    Tag(u32),
    Skip(u32),
    AddPrev {
        tag: u32,
        activation: Activation,
    },
}

impl Step {
    fn name(&self) -> String {
        match self {
            Step::Conv { conv, activation } => {
                let s = conv.spec();
                format!(
                    "conv {}->{} {}x{}/{}{}",
                    s.in_channels,
                    s.out_channels,
                    s.kernel.0,
                    s.kernel.1,
                    s.stride.0,
                    if *activation == Activation::Relu {
                        " +relu"
                    } else {
                        ""
                    }
                )
            }
            Step::Affine { .. } => "affine".into(),
            Step::Relu => "relu".into(),
            Step::MaxPool(p) => format!("max_pool {}x{}/{}", p.window.0, p.window.1, p.stride.0),
            Step::AvgPool(p) => format!("avg_pool {}x{}/{}", p.window.0, p.window.1, p.stride.0),
            Step::GlobalAvgPool => "avg_pool_everything".into(),
            Step::Tag(id) => format!("tag{id}"),
            Step::Skip(id) => format!("skip{id}"),
            Step::AddPrev { tag, activation } => format!(
                "add_prev{tag}{}",
                if *activation == Activation::Relu {
                    " +relu"
                } else {
                    ""
                }
            ),
        }
    }
}

/// Buffers reused from one batch to the next.
#[derive(Default)]
struct Workspace {
    /// Activation buffers; tags and the current output are indices into it.
    buffers: Vec<Tensor>,
    conv: ConvScratch,
    flat: Vec<f32>,
}

/// The face ResNet, ready to run. Shareable between threads: concurrent calls each take their own
/// set of buffers, which are kept for reuse (about 40 MiB each once a full batch has run).
pub struct FaceResnet {
    input_mean: [f32; 3],
    input_size: (usize, usize),
    steps: Vec<Step>,
    fc: Linear,
    workspaces: Mutex<Vec<Workspace>>,
}

impl std::fmt::Debug for FaceResnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceResnet")
            .field("input_mean", &self.input_mean)
            .field("input_size", &self.input_size)
            .field("steps", &self.steps.len())
            .finish_non_exhaustive()
    }
}

fn pool_spec(p: &Pool) -> PoolSpec {
    PoolSpec {
        window: (p.rows, p.cols),
        stride: (p.stride_y, p.stride_x),
        padding: (p.pad_y, p.pad_x),
    }
}

impl FaceResnet {
    /// Compiles a parsed model, checking that every layer's shapes fit the next and that it ends
    /// in a 128-output fully connected layer.
    pub fn from_model(model: &ResnetModel) -> Result<Self, NnError> {
        let (steps, fc) = compile(&model.layers)?;
        let net = Self {
            input_mean: model.input_mean,
            input_size: model.input_size,
            steps,
            fc,
            workspaces: Mutex::new(Vec::new()),
        };
        net.check_shapes()?;
        Ok(net)
    }

    /// Input size as (rows, columns), in pixels: 150x150 for dlib's model.
    pub fn input_size(&self) -> (usize, usize) {
        self.input_size
    }

    /// Encodes chips, each `rows * cols * 3` bytes of interleaved RGB (row-major, HWC) at
    /// [`FaceResnet::input_size`]. Returns one descriptor per chip, in order.
    pub fn encode_batch(&self, chips: &[&[u8]]) -> Result<Vec<Descriptor>, NnError> {
        self.run(chips, None)
    }

    /// Encodes chips like [`FaceResnet::encode_batch`] and also returns the wall time of each
    /// step (fused layer), summed over batches, for profiling.
    pub fn encode_batch_profiled(
        &self,
        chips: &[&[u8]],
    ) -> Result<(Vec<Descriptor>, StepTimes), NnError> {
        let mut times = vec![Duration::ZERO; self.steps.len() + 2];
        let out = self.run(chips, Some(&mut times))?;
        let mut names = vec!["input".to_string()];
        names.extend(self.steps.iter().map(Step::name));
        names.push("fc".into());
        Ok((out, names.into_iter().zip(times).collect()))
    }

    fn run(
        &self,
        chips: &[&[u8]],
        mut times: Option<&mut Vec<Duration>>,
    ) -> Result<Vec<Descriptor>, NnError> {
        check_chips(self.input_size, chips)?;
        let mut ws = self
            .workspaces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        let mut out = Vec::with_capacity(chips.len());
        let result = chips.chunks(MAX_BATCH).try_for_each(|batch| {
            self.forward(&mut ws, batch, &mut out, times.as_deref_mut(), None)
        });
        self.workspaces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ws);
        result.map(|()| out)
    }

    /// Runs one batch (at most [`MAX_BATCH`] chips of the right size) and appends its descriptors.
    fn forward(
        &self,
        ws: &mut Workspace,
        chips: &[&[u8]],
        out: &mut Vec<Descriptor>,
        mut times: Option<&mut Vec<Duration>>,
        mut observe: Option<StepObserver<'_>>,
    ) -> Result<(), NnError> {
        let mut clock = Instant::now();
        let mut lap = |slot: usize, times: &mut Option<&mut Vec<Duration>>| {
            if let Some(t) = times.as_deref_mut() {
                let now = Instant::now();
                t[slot] += now - clock;
                clock = now;
            }
        };
        let Workspace {
            buffers,
            conv: conv_scratch,
            flat,
        } = ws;
        // Tag id -> buffer index; at most a few live at once.
        let mut tags: Vec<(u32, usize)> = Vec::new();
        let mut cur = free_buffer(buffers, usize::MAX, &tags);
        self.load_input(chips, &mut buffers[cur]);
        lap(0, &mut times);

        for (i, step) in self.steps.iter().enumerate() {
            match step {
                Step::Conv { conv, activation } => {
                    let dst = free_buffer(buffers, cur, &tags);
                    let (src, dst_t) = pair(buffers, cur, dst);
                    conv.forward(src, dst_t, *activation, conv_scratch)?;
                    cur = dst;
                }
                Step::Affine {
                    gamma,
                    beta,
                    activation,
                } => {
                    cur = unshared(buffers, cur, &tags);
                    affine_channels(&mut buffers[cur], gamma, beta, *activation)?;
                }
                Step::Relu => {
                    cur = unshared(buffers, cur, &tags);
                    relu(&mut buffers[cur]);
                }
                Step::MaxPool(spec) | Step::AvgPool(spec) => {
                    let dst = free_buffer(buffers, cur, &tags);
                    let (src, dst_t) = pair(buffers, cur, dst);
                    if matches!(step, Step::MaxPool(_)) {
                        max_pool2d(src, dst_t, *spec)?;
                    } else {
                        avg_pool2d(src, dst_t, *spec)?;
                    }
                    cur = dst;
                }
                Step::GlobalAvgPool => {
                    let dst = free_buffer(buffers, cur, &tags);
                    let (src, dst_t) = pair(buffers, cur, dst);
                    global_avg_pool(src, dst_t);
                    cur = dst;
                }
                Step::Tag(id) => {
                    tags.retain(|&(t, _)| t != *id);
                    tags.push((*id, cur));
                }
                Step::Skip(id) => cur = tag_buffer(&tags, *id)?,
                Step::AddPrev { tag, activation } => {
                    let other = tag_buffer(&tags, *tag)?;
                    let same = buffers[cur].shape() == buffers[other].shape();
                    if same && other != cur && !tags.iter().any(|&(_, b)| b == cur) {
                        let (dst_t, src) = pair_mut_first(buffers, cur, other);
                        add_assign(dst_t, src, *activation)?;
                    } else {
                        let dst = free_buffer(buffers, cur, &tags);
                        // Taken out of the pool so that both operands can be borrowed beside it.
                        let mut sum = std::mem::take(&mut buffers[dst]);
                        let result =
                            add_zero_padded(&buffers[cur], &buffers[other], &mut sum, *activation);
                        buffers[dst] = sum;
                        result?;
                        cur = dst;
                    }
                }
            }
            if let Some(f) = observe.as_deref_mut() {
                f(i, &buffers[cur]);
            }
            lap(i + 1, &mut times);
        }

        let values = self.fc.forward(&buffers[cur], flat)?;
        for row in values.chunks_exact(DESCRIPTOR_LEN) {
            let mut d = [0f32; DESCRIPTOR_LEN];
            d.copy_from_slice(row);
            out.push(d);
        }
        lap(self.steps.len() + 1, &mut times);
        Ok(())
    }

    /// Every step of the compiled network with its spatial footprint, in execution order; the
    /// indices are the ones [`FaceResnet::activations`] takes.
    pub fn steps(&self) -> Vec<StepInfo> {
        self.steps
            .iter()
            .map(|step| StepInfo {
                name: step.name(),
                geometry: match step {
                    Step::Conv { conv, .. } => {
                        let s = conv.spec();
                        StepGeometry::Window {
                            kernel: s.kernel,
                            stride: s.stride,
                            padding: s.padding,
                            channels: s.out_channels,
                        }
                    }
                    Step::MaxPool(p) | Step::AvgPool(p) => StepGeometry::Window {
                        kernel: p.window,
                        stride: p.stride,
                        padding: p.padding,
                        channels: 0,
                    },
                    Step::Affine { .. } | Step::Relu => StepGeometry::Pointwise,
                    Step::GlobalAvgPool => StepGeometry::Global,
                    Step::Tag(id) => StepGeometry::Tag(*id),
                    Step::Skip(id) => StepGeometry::Skip(*id),
                    Step::AddPrev { tag, .. } => StepGeometry::Add(*tag),
                },
            })
            .collect()
    }

    /// Runs chips (as for [`FaceResnet::encode_batch`]) and returns, for each index in
    /// `capture` (indices into [`FaceResnet::steps`]), the output of that step for all chips, in
    /// the [`Layout::Cnhw`] layout (read a map with `plane(chip, channel)`). Step outputs are
    /// taken after the ReLU fused into them. Memory grows with the chips passed: callers stream
    /// a few at a time.
    pub fn activations(&self, chips: &[&[u8]], capture: &[usize]) -> Result<Vec<Tensor>, NnError> {
        check_chips(self.input_size, chips)?;
        if let Some(&bad) = capture.iter().find(|&&i| i >= self.steps.len()) {
            return Err(NnError::Input(format!(
                "step {bad} does not exist (the network has {} steps)",
                self.steps.len()
            )));
        }
        let mut ws = Workspace::default();
        let mut out = Vec::new();
        // Per batch, per captured step; joined across batches below.
        let mut per_batch: Vec<Vec<Tensor>> = Vec::new();
        for batch in chips.chunks(MAX_BATCH) {
            let mut got: Vec<Option<Tensor>> = vec![None; capture.len()];
            let mut observe = |i: usize, t: &Tensor| {
                for (slot, _) in capture.iter().enumerate().filter(|(_, &c)| c == i) {
                    got[slot] = Some(t.clone());
                }
            };
            self.forward(&mut ws, batch, &mut out, None, Some(&mut observe))?;
            per_batch.push(got.into_iter().flatten().collect());
        }
        let mut joined = Vec::with_capacity(capture.len());
        for slot in 0..capture.len() {
            let parts: Vec<&Tensor> = per_batch.iter().map(|b| &b[slot]).collect();
            let Some(first) = parts.first() else {
                joined.push(Tensor::zeros(Shape::new(0, 0, 0, 0), Layout::Cnhw));
                continue;
            };
            let s = first.shape();
            let n: usize = parts.iter().map(|p| p.shape().n).sum();
            let plane = s.h * s.w;
            let mut data = vec![0f32; n * s.c * plane];
            let mut n0 = 0;
            for p in &parts {
                let pn = p.shape().n;
                for c in 0..s.c {
                    for i in 0..pn {
                        let dst = (c * n + n0 + i) * plane;
                        data[dst..dst + plane].copy_from_slice(p.plane(i, c));
                    }
                }
                n0 += pn;
            }
            joined.push(Tensor::from_vec(
                Shape::new(n, s.c, s.h, s.w),
                Layout::Cnhw,
                data,
            )?);
        }
        Ok(joined)
    }

    /// Writes `(pixel - mean) / 256` per channel, planar, channel-major across the batch.
    fn load_input(&self, chips: &[&[u8]], dst: &mut Tensor) {
        let (rows, cols) = self.input_size;
        let n = chips.len();
        dst.reset(Shape::new(n, 3, rows, cols), Layout::Cnhw);
        let plane = rows * cols;
        let data = dst.data_mut();
        for (i, chip) in chips.iter().enumerate() {
            for c in 0..3 {
                let mean = self.input_mean[c];
                let start = (c * n + i) * plane;
                for (d, px) in data[start..start + plane]
                    .iter_mut()
                    .zip(chip.chunks_exact(3))
                {
                    *d = (px[c] as f32 - mean) / 256.0;
                }
            }
        }
    }

    /// Walks the steps with a one-sample shape, so that a model whose layers do not fit together
    /// is refused when it is loaded rather than when it is run.
    fn check_shapes(&self) -> Result<(), NnError> {
        let (rows, cols) = self.input_size;
        let mut shape = Shape::new(1, 3, rows, cols);
        let mut tags: Vec<(u32, Shape)> = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let at = |e: NnError| match e {
                NnError::Shape { what, message } => {
                    NnError::shape(format!("step {i} ({}): {what}", step.name()), message)
                }
                other => other,
            };
            shape = match step {
                Step::Conv { conv, .. } => conv.spec().output_shape(shape).map_err(at)?,
                Step::Affine { gamma, .. } => {
                    if gamma.len() != shape.c {
                        return Err(at(NnError::shape(
                            "affine",
                            format!("{} channels in, {} gammas", shape.c, gamma.len()),
                        )));
                    }
                    shape
                }
                Step::Relu => shape,
                Step::MaxPool(spec) | Step::AvgPool(spec) => {
                    spec.output_shape(shape).map_err(at)?
                }
                Step::GlobalAvgPool => Shape::new(shape.n, shape.c, 1, 1),
                Step::Tag(id) => {
                    tags.retain(|&(t, _)| t != *id);
                    tags.push((*id, shape));
                    shape
                }
                Step::Skip(id) | Step::AddPrev { tag: id, .. } => {
                    let other = tags
                        .iter()
                        .find(|&&(t, _)| t == *id)
                        .map(|&(_, s)| s)
                        .ok_or_else(|| at(NnError::shape("tags", format!("no tag{id} below"))))?;
                    if matches!(step, Step::Skip(_)) {
                        other
                    } else {
                        Shape::new(
                            shape.n.max(other.n),
                            shape.c.max(other.c),
                            shape.h.max(other.h),
                            shape.w.max(other.w),
                        )
                    }
                }
            };
        }
        let per_sample = shape.c * shape.h * shape.w;
        if per_sample != self.fc.inputs() {
            return Err(NnError::shape(
                "fc",
                format!(
                    "{per_sample} values per sample reach an fc layer of {} inputs",
                    self.fc.inputs()
                ),
            ));
        }
        Ok(())
    }
}

/// Refuses chips that are not `rows * cols * 3` bytes for an input of (rows, columns).
fn check_chips((rows, cols): (usize, usize), chips: &[&[u8]]) -> Result<(), NnError> {
    let expected = rows * cols * 3;
    match chips.iter().enumerate().find(|(_, c)| c.len() != expected) {
        Some((i, chip)) => Err(NnError::Input(format!(
            "chip {i} has {} bytes, expected {rows}x{cols}x3 = {expected}",
            chip.len()
        ))),
        None => Ok(()),
    }
}

/// Turns the model's layers into fused steps and the final fully connected layer.
fn compile(layers: &[Layer]) -> Result<(Vec<Step>, Linear), NnError> {
    let mut steps = Vec::new();
    let mut i = 0;
    let relu_at = |j: usize| matches!(layers.get(j), Some(Layer::Relu));
    while i < layers.len() {
        let layer = &layers[i];
        i += 1;
        match layer {
            Layer::Conv(c) => {
                let spec = ConvSpec {
                    out_channels: c.filters,
                    in_channels: c.channels,
                    kernel: (c.kernel_rows, c.kernel_cols),
                    stride: (c.stride_y, c.stride_x),
                    padding: (c.pad_y, c.pad_x),
                };
                let mut conv = Conv2d::new(spec, c.weights.clone(), c.bias.clone())?;
                if let Some(Layer::Affine {
                    mode: AffineMode::PerChannel,
                    gamma,
                    beta,
                }) = layers.get(i)
                {
                    conv.fold_affine(gamma, beta)?;
                    i += 1;
                }
                let activation = if relu_at(i) {
                    i += 1;
                    Activation::Relu
                } else {
                    Activation::Identity
                };
                steps.push(Step::Conv { conv, activation });
            }
            Layer::Affine { mode, gamma, beta } => {
                if *mode != AffineMode::PerChannel {
                    return Err(NnError::Unsupported(format!(
                        "layer {}: per-element (fc mode) affine layers",
                        i - 1
                    )));
                }
                let activation = if relu_at(i) {
                    i += 1;
                    Activation::Relu
                } else {
                    Activation::Identity
                };
                steps.push(Step::Affine {
                    gamma: gamma.clone(),
                    beta: beta.clone(),
                    activation,
                });
            }
            Layer::Relu => steps.push(Step::Relu),
            Layer::MaxPool(p) if p.is_global() => {
                return Err(NnError::Unsupported(format!(
                    "layer {}: global max pooling",
                    i - 1
                )))
            }
            Layer::MaxPool(p) => steps.push(Step::MaxPool(pool_spec(p))),
            Layer::AvgPool(p) if p.is_global() => steps.push(Step::GlobalAvgPool),
            Layer::AvgPool(p) => steps.push(Step::AvgPool(pool_spec(p))),
            Layer::Tag { id } => steps.push(Step::Tag(*id)),
            Layer::Skip { tag } => steps.push(Step::Skip(*tag)),
            Layer::AddPrev { tag } => {
                let activation = if relu_at(i) {
                    i += 1;
                    Activation::Relu
                } else {
                    Activation::Identity
                };
                steps.push(Step::AddPrev {
                    tag: *tag,
                    activation,
                });
            }
            Layer::Fc {
                inputs,
                outputs,
                weights,
                bias,
            } => {
                if i != layers.len() {
                    return Err(NnError::Unsupported(format!(
                        "layer {}: an fc layer below the top of the network",
                        i - 1
                    )));
                }
                if *outputs != DESCRIPTOR_LEN {
                    return Err(NnError::shape(
                        "fc",
                        format!("{outputs} outputs, a face descriptor has {DESCRIPTOR_LEN}"),
                    ));
                }
                let fc = Linear::new(*inputs, *outputs, weights.clone(), bias.clone())?;
                return Ok((steps, fc));
            }
        }
    }
    Err(NnError::Unsupported(
        "a network without a final fc layer".into(),
    ))
}

/// The index of a buffer that is neither `cur` nor held by a tag, adding one if all are in use.
fn free_buffer(buffers: &mut Vec<Tensor>, cur: usize, tags: &[(u32, usize)]) -> usize {
    let in_use = |i: usize| i == cur || tags.iter().any(|&(_, b)| b == i);
    match (0..buffers.len()).find(|&i| !in_use(i)) {
        Some(i) => i,
        None => {
            buffers.push(Tensor::default());
            buffers.len() - 1
        }
    }
}

/// `cur`, or a copy of it when a tag also refers to it, so that it can be changed in place.
fn unshared(buffers: &mut Vec<Tensor>, cur: usize, tags: &[(u32, usize)]) -> usize {
    if !tags.iter().any(|&(_, b)| b == cur) {
        return cur;
    }
    let dst = free_buffer(buffers, cur, tags);
    let (src, d) = pair(buffers, cur, dst);
    d.copy_from(src);
    dst
}

fn tag_buffer(tags: &[(u32, usize)], id: u32) -> Result<usize, NnError> {
    tags.iter()
        .rev()
        .find(|&&(t, _)| t == id)
        .map(|&(_, b)| b)
        .ok_or_else(|| NnError::shape("tags", format!("no tag{id} below")))
}

/// Borrows buffer `a` shared and buffer `b` mutably (`a != b`).
fn pair(buffers: &mut [Tensor], a: usize, b: usize) -> (&Tensor, &mut Tensor) {
    let (b_ref, a_ref) = pair_mut_first(buffers, b, a);
    (a_ref, b_ref)
}

/// Borrows buffer `a` mutably and buffer `b` shared (`a != b`).
fn pair_mut_first(buffers: &mut [Tensor], a: usize, b: usize) -> (&mut Tensor, &Tensor) {
    debug_assert_ne!(a, b);
    if a < b {
        let (lo, hi) = buffers.split_at_mut(b);
        (&mut lo[a], &hi[0])
    } else {
        let (lo, hi) = buffers.split_at_mut(a);
        (&mut hi[0], &lo[b])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> ResnetModel {
        let path =
            visage_testdata::shared().join("models/dlib/dlib_face_recognition_resnet_model_v1.dat");
        ResnetModel::from_file(&path).unwrap_or_else(|e| panic!("{e}"))
    }

    fn chips(n: usize, seed: u64) -> Vec<Vec<u8>> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                (0..150 * 150 * 3)
                    .map(|i| {
                        state = state
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        // Smooth-ish content with noise, closer to a photo than pure noise.
                        let base = ((i / 3) % 150 + (i / 450)) as u64;
                        ((base + (state >> 59)) % 256) as u8
                    })
                    .collect()
            })
            .collect()
    }

    /// dlib's face ResNet architecture (`dnn_face_recognition_ex.cpp`) with random weights
    /// scaled to keep activations near 1, so timing needs no model file.
    fn synthetic_model() -> ResnetModel {
        use visage_formats::dlib::resnet::{Conv, LossMetric};
        let mut state = 7u64;
        let mut rand = move |n: usize, scale: f32| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
                })
                .collect()
        };
        let mut layers = Vec::new();
        let mut conv = |layers: &mut Vec<Layer>, c: usize, f: usize, k: usize, s: usize| {
            let pad = if s == 1 { k / 2 } else { 0 };
            let scale = (3.0 / (c * k * k) as f32).sqrt();
            layers.push(Layer::Conv(Conv {
                filters: f,
                channels: c,
                kernel_rows: k,
                kernel_cols: k,
                stride_y: s,
                stride_x: s,
                pad_y: pad,
                pad_x: pad,
                weights: rand(f * c * k * k, scale),
                bias: rand(f, 0.1),
            }));
            layers.push(Layer::Affine {
                mode: AffineMode::PerChannel,
                gamma: vec![1.0; f],
                beta: vec![0.0; f],
            });
        };
        let pool = |k: usize, s: usize| Pool {
            rows: k,
            cols: k,
            stride_y: s,
            stride_x: s,
            pad_y: 0,
            pad_x: 0,
        };
        conv(&mut layers, 3, 32, 7, 2);
        layers.push(Layer::Relu);
        layers.push(Layer::MaxPool(pool(3, 2)));
        let mut c = 32;
        for (n, plain) in [(32, 3), (64, 3), (128, 2), (256, 2), (256, 0)] {
            // Every level but the first starts with a downsampling block.
            if n != 32 {
                layers.push(Layer::Tag { id: 1 });
                conv(&mut layers, c, n, 3, 2);
                layers.push(Layer::Relu);
                conv(&mut layers, n, n, 3, 1);
                layers.extend([
                    Layer::Tag { id: 2 },
                    Layer::Skip { tag: 1 },
                    Layer::AvgPool(pool(2, 2)),
                ]);
                layers.extend([Layer::AddPrev { tag: 2 }, Layer::Relu]);
                c = n;
            }
            for _ in 0..plain {
                layers.push(Layer::Tag { id: 1 });
                conv(&mut layers, n, n, 3, 1);
                layers.push(Layer::Relu);
                conv(&mut layers, n, n, 3, 1);
                layers.extend([Layer::AddPrev { tag: 1 }, Layer::Relu]);
            }
        }
        layers.push(Layer::AvgPool(Pool {
            rows: 0,
            cols: 0,
            stride_y: 1,
            stride_x: 1,
            pad_y: 0,
            pad_x: 0,
        }));
        layers.push(Layer::Fc {
            inputs: 256,
            outputs: 128,
            weights: rand(256 * 128, 0.1),
            bias: None,
        });
        ResnetModel {
            input_mean: [122.782, 117.001, 104.298],
            input_size: (150, 150),
            layers,
            loss: LossMetric {
                margin: 0.04,
                distance_threshold: 0.6,
            },
        }
    }

    #[test]
    fn synthetic_model_has_the_real_architecture() {
        let (real, synthetic) = (model(), synthetic_model());
        assert_eq!(real.layers.len(), synthetic.layers.len());
        for (i, (a, b)) in real.layers.iter().zip(&synthetic.layers).enumerate() {
            let same = match (a, b) {
                (Layer::Conv(x), Layer::Conv(y)) => {
                    (
                        x.filters,
                        x.channels,
                        x.kernel_rows,
                        x.stride_y,
                        x.pad_y,
                        x.pad_x,
                    ) == (
                        y.filters,
                        y.channels,
                        y.kernel_rows,
                        y.stride_y,
                        y.pad_y,
                        y.pad_x,
                    )
                }
                (Layer::Affine { gamma: x, .. }, Layer::Affine { gamma: y, .. }) => {
                    x.len() == y.len()
                }
                (Layer::Fc { inputs: x, .. }, Layer::Fc { inputs: y, .. }) => x == y,
                _ => a == b,
            };
            assert!(same, "layer {i}: {a:?} vs {b:?}");
        }
        assert_eq!(real.param_count(), synthetic.param_count());
    }

    /// A plain interpreter of the parsed layers, one sample, NCHW, f64 accumulation: the
    /// definition the fused, batched network must reproduce.
    fn reference(model: &ResnetModel, chip: &[u8]) -> Vec<f32> {
        let (h0, w0) = model.input_size;
        let mut x: Vec<f32> = (0..3)
            .flat_map(|c| (0..h0 * w0).map(move |i| (c, i)))
            .map(|(c, i)| (chip[i * 3 + c] as f32 - model.input_mean[c]) / 256.0)
            .collect();
        let (mut c, mut h, mut w) = (3usize, h0, w0);
        // Tag id -> (values, channels, rows, columns).
        type Saved = (Vec<f32>, usize, usize, usize);
        let mut tags: Vec<(u32, Saved)> = Vec::new();
        for layer in &model.layers {
            match layer {
                Layer::Conv(k) => {
                    let oh = 1 + (h + 2 * k.pad_y - k.kernel_rows) / k.stride_y;
                    let ow = 1 + (w + 2 * k.pad_x - k.kernel_cols) / k.stride_x;
                    let mut out = vec![0f32; k.filters * oh * ow];
                    for f in 0..k.filters {
                        for oy in 0..oh {
                            for ox in 0..ow {
                                let mut acc = 0f64;
                                for ci in 0..c {
                                    for ky in 0..k.kernel_rows {
                                        let iy = (oy * k.stride_y + ky) as isize - k.pad_y as isize;
                                        if iy < 0 || iy >= h as isize {
                                            continue;
                                        }
                                        for kx in 0..k.kernel_cols {
                                            let ix =
                                                (ox * k.stride_x + kx) as isize - k.pad_x as isize;
                                            if ix < 0 || ix >= w as isize {
                                                continue;
                                            }
                                            let wt = k.weights[((f * c + ci) * k.kernel_rows + ky)
                                                * k.kernel_cols
                                                + kx];
                                            acc += wt as f64
                                                * x[(ci * h + iy as usize) * w + ix as usize]
                                                    as f64;
                                        }
                                    }
                                }
                                out[(f * oh + oy) * ow + ox] = (acc + k.bias[f] as f64) as f32;
                            }
                        }
                    }
                    (x, c, h, w) = (out, k.filters, oh, ow);
                }
                Layer::Affine { gamma, beta, .. } => {
                    for (i, v) in x.iter_mut().enumerate() {
                        let ch = i / (h * w);
                        *v = gamma[ch] * *v + beta[ch];
                    }
                }
                Layer::Relu => x.iter_mut().for_each(|v| *v = v.max(0.0)),
                Layer::MaxPool(p) | Layer::AvgPool(p) => {
                    let is_max = matches!(layer, Layer::MaxPool(_));
                    let (kh, kw, sy, sx) = if p.is_global() {
                        (h, w, 1, 1)
                    } else {
                        (p.rows, p.cols, p.stride_y, p.stride_x)
                    };
                    let oh = 1 + (h + 2 * p.pad_y - kh) / sy;
                    let ow = 1 + (w + 2 * p.pad_x - kw) / sx;
                    let mut out = Vec::with_capacity(c * oh * ow);
                    for ch in 0..c {
                        for oy in 0..oh {
                            for ox in 0..ow {
                                let mut vals = Vec::new();
                                for ky in 0..kh {
                                    for kx in 0..kw {
                                        let iy = (oy * sy + ky) as isize - p.pad_y as isize;
                                        let ix = (ox * sx + kx) as isize - p.pad_x as isize;
                                        if iy >= 0 && ix >= 0 && iy < h as isize && ix < w as isize
                                        {
                                            vals.push(
                                                x[(ch * h + iy as usize) * w + ix as usize] as f64,
                                            );
                                        }
                                    }
                                }
                                out.push(if is_max {
                                    vals.iter().copied().fold(f64::NEG_INFINITY, f64::max) as f32
                                } else {
                                    (vals.iter().sum::<f64>() / vals.len() as f64) as f32
                                });
                            }
                        }
                    }
                    (x, h, w) = (out, oh, ow);
                }
                Layer::Tag { id } => {
                    tags.retain(|(t, _)| t != id);
                    tags.push((*id, (x.clone(), c, h, w)));
                }
                Layer::Skip { tag } => {
                    let (_, (v, tc, th, tw)) = tags.iter().find(|(t, _)| t == tag).unwrap().clone();
                    (x, c, h, w) = (v, tc, th, tw);
                }
                Layer::AddPrev { tag } => {
                    let (_, (v, tc, th, tw)) = tags.iter().find(|(t, _)| t == tag).unwrap().clone();
                    let (nc, nh, nw) = (c.max(tc), h.max(th), w.max(tw));
                    let mut out = vec![0f32; nc * nh * nw];
                    for (src, sc, sh, sw) in [(&x, c, h, w), (&v, tc, th, tw)] {
                        for ch in 0..sc {
                            for y in 0..sh {
                                for xx in 0..sw {
                                    out[(ch * nh + y) * nw + xx] += src[(ch * sh + y) * sw + xx];
                                }
                            }
                        }
                    }
                    (x, c, h, w) = (out, nc, nh, nw);
                }
                Layer::Fc {
                    inputs,
                    outputs,
                    weights,
                    ..
                } => {
                    assert_eq!(*inputs, x.len());
                    return (0..*outputs)
                        .map(|o| {
                            (0..*inputs)
                                .map(|i| x[i] as f64 * weights[i * outputs + o] as f64)
                                .sum::<f64>() as f32
                        })
                        .collect();
                }
            }
        }
        panic!("no fc layer");
    }

    #[test]
    fn matches_a_plain_interpreter_of_the_model() {
        let model = model();
        let net = FaceResnet::from_model(&model).unwrap();
        let chips = chips(3, 1);
        let refs: Vec<&[u8]> = chips.iter().map(Vec::as_slice).collect();
        let got = net.encode_batch(&refs).unwrap();
        let mut worst = 0f32;
        for (chip, enc) in chips.iter().zip(&got) {
            let expect = reference(&model, chip);
            for (a, b) in enc.iter().zip(&expect) {
                worst = worst.max((a - b).abs());
            }
        }
        assert!(
            worst < 1e-5,
            "worst diff against the plain interpreter: {worst}"
        );
        // The same chip alone gives the same descriptor as within a batch.
        let alone = net.encode_batch(&refs[1..2]).unwrap();
        let diff = alone[0]
            .iter()
            .zip(&got[1])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-6, "batch of 1 vs batch of 3: {diff}");
    }

    /// The burn version (what a GPU runs) computes what the CPU kernels compute: run here on
    /// burn's CPU backend, over batches that cross [`DEVICE_BATCH`] and include the
    /// zero-extended residual sums of the downsampling blocks.
    #[test]
    fn the_burn_version_matches_the_cpu_kernels() {
        let model = model();
        let net = FaceResnet::from_model(&model).unwrap();
        let on_cpu = net.on_device(&burn::tensor::Device::flex()).unwrap();
        let chips = chips(DEVICE_BATCH + 2, 5);
        let refs: Vec<&[u8]> = chips.iter().map(Vec::as_slice).collect();
        let ours = net.encode_batch(&refs).unwrap();
        let burns = on_cpu.encode_batch(&refs).unwrap();
        assert_eq!(burns.len(), refs.len());
        let worst = ours
            .iter()
            .zip(&burns)
            .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
            .fold(0f32, f32::max);
        assert!(worst < 1e-4, "worst difference: {worst}");
        assert!(matches!(
            on_cpu.encode_batch(&[&[0u8; 12][..]]),
            Err(NnError::Input(_))
        ));
        assert!(on_cpu.encode_batch(&[]).unwrap().is_empty());
    }

    #[test]
    fn wrong_inputs_and_models_are_errors() {
        let model = model();
        let net = FaceResnet::from_model(&model).unwrap();
        let short = vec![0u8; 150 * 150 * 3 - 1];
        assert!(matches!(
            net.encode_batch(&[&short]),
            Err(NnError::Input(_))
        ));
        assert!(net.encode_batch(&[]).unwrap().is_empty());

        // A conv whose channels do not match what reaches it.
        let mut bad = model.clone();
        if let Layer::Conv(c) = &mut bad.layers[5] {
            c.channels = 16;
            c.weights.truncate(c.filters * 16 * 9);
        }
        let err = FaceResnet::from_model(&bad).unwrap_err();
        assert!(matches!(err, NnError::Shape { .. }), "{err}");

        // An fc layer that does not give 128 values.
        let mut bad = model.clone();
        if let Some(Layer::Fc {
            outputs, weights, ..
        }) = bad.layers.last_mut()
        {
            *outputs = 64;
            weights.truncate(256 * 64);
        }
        assert!(FaceResnet::from_model(&bad).is_err());
    }

    /// Timing, not a check: `cargo test --release -p visage-nn -- --ignored --nocapture timing`.
    /// Reports the fastest of several runs (the machine may be shared), on 1 thread and on all.
    /// Uses the synthetic model (same architecture, random weights), so it runs without the
    /// shared data.
    #[test]
    #[ignore]
    fn timing() {
        let net = FaceResnet::from_model(&synthetic_model()).unwrap();
        let chips = chips(MAX_BATCH, 2);
        let refs: Vec<&[u8]> = chips.iter().map(Vec::as_slice).collect();
        let all = rayon::current_num_threads();
        for threads in [1, all] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                for batch in [1, MAX_BATCH] {
                    let input = &refs[..batch];
                    net.encode_batch(input).unwrap();
                    let reps = if batch == 1 { 60 } else { 8 };
                    let mut best = f64::INFINITY;
                    for _ in 0..reps {
                        let start = Instant::now();
                        net.encode_batch(input).unwrap();
                        best = best.min(start.elapsed().as_secs_f64());
                    }
                    let per_face = best * 1e3 / batch as f64;
                    println!("{threads} thread(s), batch {batch}: {per_face:.2} ms per face (best of {reps})");
                    // Per step: the fastest run of each step.
                    let mut fastest: Vec<(String, Duration)> = Vec::new();
                    for _ in 0..reps {
                        let (_, steps) = net.encode_batch_profiled(input).unwrap();
                        if fastest.is_empty() {
                            fastest = steps;
                        } else {
                            fastest.iter_mut().zip(steps).for_each(|(t, s)| t.1 = t.1.min(s.1));
                        }
                    }
                    let total: f64 = fastest.iter().map(|t| t.1.as_secs_f64()).sum();
                    // Steps of the same kind together, the slowest first.
                    let mut kinds: Vec<(String, f64, usize)> = Vec::new();
                    for (name, t) in &fastest {
                        match kinds.iter_mut().find(|k| k.0 == *name) {
                            Some(k) => (k.1, k.2) = (k.1 + t.as_secs_f64(), k.2 + 1),
                            None => kinds.push((name.clone(), t.as_secs_f64(), 1)),
                        }
                    }
                    kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
                    for (name, t, count) in kinds.iter().filter(|k| k.1 > total * 0.01) {
                        let ms = t * 1e3 / batch as f64;
                        println!("  {count:2} x {name:<28} {ms:7.3} ms/face {:5.1}%", 100.0 * t / total);
                    }
                }
            });
        }
    }
}
