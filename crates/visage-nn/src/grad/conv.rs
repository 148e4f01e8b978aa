//! Convolution in 1, 2 and 3 dimensions (cross-correlation, as in deep-learning frameworks) with
//! stride, zero padding, dilation and groups, and its gradients, as im2col/col2im + GEMM.
//!
//! One kernel serves all three dimensionalities: a 1-D signal is a 3-D volume of depth and height
//! 1, a 2-D image one of depth 1. Layouts are `[N, C, L]`, `[N, C, H, W]` and `[N, C, D, H, W]`;
//! filters are `[F, C / groups, k...]`, one bias per filter.
//!
//! * forward: `out_g[Fg, P] = W_g[Fg, Kg] x col_g[Kg, P]`, `col` from im2col, per sample and group;
//! * input gradient: `dcol_g = W_gᵀ x dout_g`, scattered back (col2im, adding overlaps);
//! * weight gradient: `dW_g += dout_g x col_gᵀ`; bias gradient: the sum of `dout` per filter.
//!
//! Samples are shared out between threads when the batch is large enough; a single large sample
//! uses the multi-threaded GEMM instead. Large `f32` 2-D convolutions without groups or dilation
//! go to the tuned kernel of the face ResNet ([`crate::ops::Conv2d`]), forward and (stride 1)
//! input gradient alike, through [`fast_conv2d`] and [`fast_conv2d_input_grad`]: one fast
//! convolution serves inference and training.

use rayon::prelude::*;

use super::array::Array;
use super::gemm::{matmul, View};
use crate::ops::{Activation, Conv2d, ConvScratch, ConvSpec};
use crate::{Float, Layout, NnError, Shape, Tensor};

/// The geometry of a 1-, 2- or 3-D convolution. Spatial values are `[depth, height, width]`;
/// lower-dimensional convolutions keep the unused leading axes at kernel 1, stride 1, padding 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvNd {
    /// Number of spatial dimensions (1, 2 or 3).
    pub dims: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels (filters).
    pub out_channels: usize,
    /// Channel groups: each filter sees `in_channels / groups` channels.
    pub groups: usize,
    /// Filter size per axis, in samples.
    pub kernel: [usize; 3],
    /// Step between outputs per axis, in input samples.
    pub stride: [usize; 3],
    /// Zeros added before and after the input per axis, in samples.
    pub padding: [usize; 3],
    /// Spacing between filter taps per axis, in input samples (1: adjacent).
    pub dilation: [usize; 3],
}

/// Spreads per-axis settings for `D` spatial dimensions over the three internal axes.
fn lift<const D: usize>(v: [usize; D], fill: usize) -> [usize; 3] {
    let mut out = [fill; 3];
    out[3 - D..].copy_from_slice(&v);
    out
}

impl ConvNd {
    /// A convolution with `D` (1, 2 or 3) spatial dimensions, stride 1, no padding, dilation 1
    /// and one group; chain the `with_*` methods to change those.
    pub fn new<const D: usize>(
        in_channels: usize,
        out_channels: usize,
        kernel: [usize; D],
    ) -> Self {
        assert!((1..=3).contains(&D), "1, 2 or 3 spatial dimensions");
        Self {
            dims: D,
            in_channels,
            out_channels,
            groups: 1,
            kernel: lift(kernel, 1),
            stride: [1; 3],
            padding: [0; 3],
            dilation: [1; 3],
        }
    }

    /// Sets the stride per spatial axis.
    pub fn with_stride<const D: usize>(mut self, stride: [usize; D]) -> Self {
        self.stride = lift(stride, 1);
        self
    }

    /// Sets the zero padding per spatial axis.
    pub fn with_padding<const D: usize>(mut self, padding: [usize; D]) -> Self {
        self.padding = lift(padding, 0);
        self
    }

    /// Sets the dilation per spatial axis.
    pub fn with_dilation<const D: usize>(mut self, dilation: [usize; D]) -> Self {
        self.dilation = lift(dilation, 1);
        self
    }

    /// Sets the number of channel groups.
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// Dimensions of the filter bank: `[F, C / groups, k...]`.
    pub fn weight_dims(&self) -> Vec<usize> {
        let mut d = vec![self.out_channels, self.in_channels / self.groups.max(1)];
        d.extend_from_slice(&self.kernel[3 - self.dims..]);
        d
    }

    /// Taps per filter (`C / groups * kd * kh * kw`).
    pub fn taps(&self) -> usize {
        self.in_channels / self.groups.max(1) * self.kernel.iter().product::<usize>()
    }

    /// The output dimensions for input dimensions `[N, C, spatial...]`, or why they do not fit.
    pub fn output_dims(&self, input: &[usize]) -> Result<Vec<usize>, NnError> {
        let what = "conv";
        if !(1..=3).contains(&self.dims) {
            return Err(NnError::Unsupported(format!("{}-D convolution", self.dims)));
        }
        if self.groups == 0
            || !self.in_channels.is_multiple_of(self.groups)
            || !self.out_channels.is_multiple_of(self.groups)
        {
            return Err(NnError::shape(
                what,
                format!(
                    "{} groups do not divide {} input and {} output channels",
                    self.groups, self.in_channels, self.out_channels
                ),
            ));
        }
        if input.len() != self.dims + 2 || input[1] != self.in_channels {
            return Err(NnError::shape(
                what,
                format!(
                    "input {input:?}, expected [N, {}, {}-D]",
                    self.in_channels, self.dims
                ),
            ));
        }
        let mut out = vec![input[0], self.out_channels];
        for (a, &len) in input[2..].iter().enumerate() {
            let ax = a + 3 - self.dims;
            if self.stride[ax] == 0 || self.dilation[ax] == 0 || self.kernel[ax] == 0 {
                return Err(NnError::shape(what, "zero kernel, stride or dilation"));
            }
            let span = self.dilation[ax] * (self.kernel[ax] - 1) + 1;
            let padded = len + 2 * self.padding[ax];
            if padded < span {
                return Err(NnError::shape(
                    what,
                    format!(
                        "axis of {len} (padded {padded}) is shorter than the filter span {span}"
                    ),
                ));
            }
            out.push((padded - span) / self.stride[ax] + 1);
        }
        Ok(out)
    }

    fn spatial(&self, dims: &[usize]) -> [usize; 3] {
        let mut s = [1; 3];
        s[3 - self.dims..].copy_from_slice(&dims[2..]);
        s
    }

    fn check_params<T>(&self, weights: &[T], bias: Option<&[T]>) -> Result<(), NnError> {
        let want = self.out_channels * self.taps();
        if weights.len() != want {
            return Err(NnError::shape(
                "conv",
                format!(
                    "{} weights, expected {want} ({:?})",
                    weights.len(),
                    self.weight_dims()
                ),
            ));
        }
        if let Some(b) = bias {
            if b.len() != self.out_channels {
                return Err(NnError::shape(
                    "conv",
                    format!("{} biases, expected {}", b.len(), self.out_channels),
                ));
            }
        }
        Ok(())
    }
}

/// Shapes of one convolution call, resolved.
struct Plan {
    g: ConvNd,
    n: usize,
    in_sp: [usize; 3],
    out_sp: [usize; 3],
    /// Values per input sample.
    in_len: usize,
    /// Output positions per channel.
    p: usize,
    /// Input channels and filters per group.
    cg: usize,
    fg: usize,
    /// Taps per filter.
    kg: usize,
}

impl Plan {
    fn new(g: &ConvNd, input: &[usize]) -> Result<(Self, Vec<usize>), NnError> {
        let out = g.output_dims(input)?;
        let in_sp = g.spatial(input);
        let out_sp = g.spatial(&out);
        let plan = Plan {
            g: *g,
            n: input[0],
            in_sp,
            out_sp,
            in_len: g.in_channels * in_sp.iter().product::<usize>(),
            p: out_sp.iter().product(),
            cg: g.in_channels / g.groups,
            fg: g.out_channels / g.groups,
            kg: g.taps(),
        };
        Ok((plan, out))
    }

    /// Calls `f(row, out_offset, in_offset_or_none)` over every (tap, output position) pair of
    /// channel group `group`: `row` indexes the tap within the group, the offsets index the
    /// output positions of that row and one input sample.
    #[inline(always)]
    fn for_each_tap(&self, group: usize, mut f: impl FnMut(usize, usize, Option<usize>)) {
        let g = &self.g;
        let [id, ih, iw] = self.in_sp;
        let [od, oh, ow] = self.out_sp;
        let [kd, kh, kw] = g.kernel;
        let mut row = 0;
        for c in 0..self.cg {
            let chan = (group * self.cg + c) * id * ih * iw;
            for a in 0..kd {
                for b in 0..kh {
                    for e in 0..kw {
                        let mut o = 0;
                        for z in 0..od {
                            let zi = (z * g.stride[0] + a * g.dilation[0]) as isize
                                - g.padding[0] as isize;
                            for y in 0..oh {
                                let yi = (y * g.stride[1] + b * g.dilation[1]) as isize
                                    - g.padding[1] as isize;
                                let inside_zy =
                                    zi >= 0 && (zi as usize) < id && yi >= 0 && (yi as usize) < ih;
                                let base =
                                    chan + (zi.max(0) as usize * ih + yi.max(0) as usize) * iw;
                                for x in 0..ow {
                                    let xi = (x * g.stride[2] + e * g.dilation[2]) as isize
                                        - g.padding[2] as isize;
                                    let src = (inside_zy && xi >= 0 && (xi as usize) < iw)
                                        .then(|| base + xi as usize);
                                    f(row, o, src);
                                    o += 1;
                                }
                            }
                        }
                        row += 1;
                    }
                }
            }
        }
    }

    fn im2col<T: Float>(&self, x: &[T], group: usize, col: &mut [T]) {
        let p = self.p;
        self.for_each_tap(group, |row, o, src| {
            col[row * p + o] = src.map_or(T::ZERO, |i| x[i]);
        });
    }

    fn col2im<T: Float>(&self, col: &[T], group: usize, dx: &mut [T]) {
        let p = self.p;
        self.for_each_tap(group, |row, o, src| {
            if let Some(i) = src {
                dx[i] += col[row * p + o];
            }
        });
    }

    /// Samples per thread task: whole batch on one task when it is a single sample (the GEMM is
    /// then multi-threaded instead).
    fn chunk(&self) -> usize {
        let threads = rayon::current_num_threads().max(1);
        self.n.div_ceil(threads).max(1)
    }
}

/// Convolves `input` (`[N, C, spatial...]`) with `weights` (`[F, C / groups, k...]`) and adds
/// `bias` (one per filter) when given.
pub fn conv_forward<T: Float>(
    geometry: &ConvNd,
    input: &Array<T>,
    weights: &[T],
    bias: Option<&[T]>,
) -> Result<Array<T>, NnError> {
    let (plan, out_dims) = Plan::new(geometry, input.dims())?;
    geometry.check_params(weights, bias)?;
    if let Some(out) = fast_forward(&plan, input, weights, bias, &out_dims)? {
        return Ok(out);
    }
    let mut out = Array::zeros(&out_dims);
    let out_len = geometry.out_channels * plan.p;
    if out.is_empty() {
        return Ok(out);
    }
    let single = plan.n == 1;
    let chunk = plan.chunk();
    out.data_mut()
        .par_chunks_mut(out_len * chunk)
        .zip(input.data().par_chunks(plan.in_len * chunk))
        .for_each(|(out_c, x_c)| {
            let mut col = vec![T::ZERO; plan.kg * plan.p];
            for (o, x) in out_c.chunks_mut(out_len).zip(x_c.chunks(plan.in_len)) {
                for grp in 0..geometry.groups {
                    plan.im2col(x, grp, &mut col);
                    let w = &weights[grp * plan.fg * plan.kg..(grp + 1) * plan.fg * plan.kg];
                    let dst = &mut o[grp * plan.fg * plan.p..(grp + 1) * plan.fg * plan.p];
                    matmul(
                        dst,
                        View::new(w, plan.fg, plan.kg),
                        View::new(&col, plan.kg, plan.p),
                        false,
                        single,
                    );
                }
                if let Some(b) = bias {
                    for (row, &bv) in o.chunks_mut(plan.p).zip(b) {
                        row.iter_mut().for_each(|v| *v += bv);
                    }
                }
            }
        });
    Ok(out)
}

/// Per sample, convolutions with at least this many multiply-adds go to the tuned `f32` kernel
/// (below it, building that kernel's filter bank costs more than it saves).
const FAST_MIN_MACS: usize = 1 << 22;

/// Whether the tuned `f32` kernel computes this convolution (2-D, no groups, no dilation, large).
fn fast_eligible(plan: &Plan) -> bool {
    let g = &plan.g;
    g.dims == 2
        && g.groups == 1
        && g.dilation == [1; 3]
        && plan.kg * plan.p * g.out_channels >= FAST_MIN_MACS
}

fn as_tensor(dims: &[usize], data: &[f32]) -> Result<Tensor, NnError> {
    Tensor::from_vec(
        Shape::new(dims[0], dims[1], dims[2], dims[3]),
        Layout::Nchw,
        data.to_vec(),
    )
}

fn from_tensor<T: Float>(t: Tensor, dims: &[usize]) -> Result<Option<Array<T>>, NnError> {
    Ok(match T::from_f32_vec(t.into_vec()) {
        Some(v) => Some(Array::from_vec(dims, v)?),
        None => None,
    })
}

/// The forward pass on the face ResNet's kernel, when `T` is `f32` and [`fast_eligible`].
fn fast_forward<T: Float>(
    plan: &Plan,
    input: &Array<T>,
    weights: &[T],
    bias: Option<&[T]>,
    out_dims: &[usize],
) -> Result<Option<Array<T>>, NnError> {
    if !fast_eligible(plan) {
        return Ok(None);
    }
    let (Some(x), Some(w)) = (T::as_f32(input.data()), T::as_f32(weights)) else {
        return Ok(None);
    };
    let b = match bias {
        Some(b) => T::as_f32(b).map(<[f32]>::to_vec),
        None => Some(vec![0.0; plan.g.out_channels]),
    };
    let Some(b) = b else { return Ok(None) };
    let conv = fast_conv2d(&plan.g, w, &b)?;
    let mut out = Tensor::default();
    conv.forward(
        &as_tensor(input.dims(), x)?,
        &mut out,
        Activation::Identity,
        &mut ConvScratch::default(),
    )?;
    from_tensor(out, out_dims)
}

/// The input gradient on the face ResNet's kernel, when `T` is `f32`, [`fast_eligible`] and the
/// stride is 1 (see [`fast_conv2d_input_grad`]).
fn fast_input_grad<T: Float>(
    plan: &Plan,
    input: &Array<T>,
    weights: &[T],
    grad_out: &Array<T>,
) -> Result<Option<Array<T>>, NnError> {
    let g = &plan.g;
    if !fast_eligible(plan)
        || g.stride != [1; 3]
        || g.padding[1] >= g.kernel[1]
        || g.padding[2] >= g.kernel[2]
    {
        return Ok(None);
    }
    let (Some(w), Some(dy)) = (T::as_f32(weights), T::as_f32(grad_out.data())) else {
        return Ok(None);
    };
    let conv = fast_conv2d_input_grad(g, w)?;
    let mut out = Tensor::default();
    conv.forward(
        &as_tensor(grad_out.dims(), dy)?,
        &mut out,
        Activation::Identity,
        &mut ConvScratch::default(),
    )?;
    from_tensor(out, input.dims())
}

/// Gradients of a convolution with respect to its input, weights and bias.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvGrads<T> {
    /// Gradient with respect to the input, shaped like it.
    pub input: Array<T>,
    /// Gradient with respect to the weights, `[F, C / groups, k...]` flattened.
    pub weights: Vec<T>,
    /// Gradient with respect to the bias, one per filter.
    pub bias: Vec<T>,
}

/// Back-propagates `grad_out` (the loss gradient with respect to the output of
/// [`conv_forward`]) to the input, the weights and the bias.
pub fn conv_backward<T: Float>(
    geometry: &ConvNd,
    input: &Array<T>,
    weights: &[T],
    grad_out: &Array<T>,
) -> Result<ConvGrads<T>, NnError> {
    let (plan, out_dims) = Plan::new(geometry, input.dims())?;
    geometry.check_params(weights, None)?;
    if grad_out.dims() != out_dims.as_slice() {
        return Err(NnError::shape(
            "conv backward",
            format!(
                "output gradient {:?}, expected {out_dims:?}",
                grad_out.dims()
            ),
        ));
    }
    let fast_dx = fast_input_grad(&plan, input, weights, grad_out)?;
    let need_dx = fast_dx.is_none();
    let mut dx = Array::zeros(input.dims());
    let out_len = geometry.out_channels * plan.p;
    let wlen = weights.len();
    let single = plan.n == 1;
    let chunk = plan.chunk();
    if input.is_empty() || grad_out.is_empty() {
        return Ok(ConvGrads {
            input: dx,
            weights: vec![T::ZERO; wlen],
            bias: vec![T::ZERO; geometry.out_channels],
        });
    }
    // Each task accumulates its own weight gradient; they are summed at the end, which keeps
    // the result independent of scheduling (the tasks are fixed by the batch size).
    let partial: Vec<Vec<T>> = dx
        .data_mut()
        .par_chunks_mut(plan.in_len * chunk)
        .zip(input.data().par_chunks(plan.in_len * chunk))
        .zip(grad_out.data().par_chunks(out_len * chunk))
        .map(|((dx_c, x_c), dy_c)| {
            let mut dw = vec![T::ZERO; wlen];
            let mut col = vec![T::ZERO; plan.kg * plan.p];
            let mut dcol = vec![T::ZERO; plan.kg * plan.p];
            for ((dxs, x), dy) in dx_c
                .chunks_mut(plan.in_len)
                .zip(x_c.chunks(plan.in_len))
                .zip(dy_c.chunks(out_len))
            {
                for grp in 0..geometry.groups {
                    let wr = grp * plan.fg * plan.kg..(grp + 1) * plan.fg * plan.kg;
                    let dyg = View::new(
                        &dy[grp * plan.fg * plan.p..(grp + 1) * plan.fg * plan.p],
                        plan.fg,
                        plan.p,
                    );
                    plan.im2col(x, grp, &mut col);
                    matmul(
                        &mut dw[wr.clone()],
                        dyg,
                        View::new(&col, plan.kg, plan.p).t(),
                        true,
                        single,
                    );
                    if need_dx {
                        matmul(
                            &mut dcol,
                            View::new(&weights[wr], plan.fg, plan.kg).t(),
                            dyg,
                            false,
                            single,
                        );
                        plan.col2im(&dcol, grp, dxs);
                    }
                }
            }
            dw
        })
        .collect();
    let mut dw = vec![T::ZERO; wlen];
    for part in &partial {
        dw.iter_mut().zip(part).for_each(|(a, &b)| *a += b);
    }
    let mut db = vec![T::ZERO; geometry.out_channels];
    for sample in grad_out.data().chunks(out_len) {
        for (d, row) in db.iter_mut().zip(sample.chunks(plan.p)) {
            *d += row.iter().copied().sum::<T>();
        }
    }
    Ok(ConvGrads {
        input: fast_dx.unwrap_or(dx),
        weights: dw,
        bias: db,
    })
}

/// 1-D convolution of `[N, C, L]` with `[F, C / groups, k]` filters; see [`conv_forward`].
pub fn conv1d<T: Float>(
    g: &ConvNd,
    x: &Array<T>,
    w: &[T],
    b: Option<&[T]>,
) -> Result<Array<T>, NnError> {
    expect_dims(g, 1)?;
    conv_forward(g, x, w, b)
}

/// 2-D convolution of `[N, C, H, W]` with `[F, C / groups, kh, kw]` filters; see [`conv_forward`].
pub fn conv2d<T: Float>(
    g: &ConvNd,
    x: &Array<T>,
    w: &[T],
    b: Option<&[T]>,
) -> Result<Array<T>, NnError> {
    expect_dims(g, 2)?;
    conv_forward(g, x, w, b)
}

/// 3-D convolution of `[N, C, D, H, W]` with `[F, C / groups, kd, kh, kw]` filters; see
/// [`conv_forward`].
pub fn conv3d<T: Float>(
    g: &ConvNd,
    x: &Array<T>,
    w: &[T],
    b: Option<&[T]>,
) -> Result<Array<T>, NnError> {
    expect_dims(g, 3)?;
    conv_forward(g, x, w, b)
}

fn expect_dims(g: &ConvNd, dims: usize) -> Result<(), NnError> {
    if g.dims == dims {
        Ok(())
    } else {
        Err(NnError::shape(
            "conv",
            format!("a {}-D geometry given to conv{dims}d", g.dims),
        ))
    }
}

/// The face ResNet's tuned `f32` kernel for a 2-D convolution (no groups, no dilation), with
/// `weights` `[F, C, kh, kw]`: what [`conv_forward`] computes, faster on large layers.
pub fn fast_conv2d(g: &ConvNd, weights: &[f32], bias: &[f32]) -> Result<Conv2d, NnError> {
    let spec = fast_spec(g)?;
    Conv2d::new(spec, weights.to_vec(), bias.to_vec())
}

/// A convolution whose forward pass, on the output gradient of the stride-1 convolution `g`
/// (no groups, no dilation), gives the gradient with respect to that convolution's input.
///
/// With stride 1, the input gradient is a full correlation of the output gradient with the
/// filters rotated 180° and their in/out channels swapped: a plain convolution with padding
/// `k - 1 - p`, so the tuned forward kernel serves the backward pass as well.
pub fn fast_conv2d_input_grad(g: &ConvNd, weights: &[f32]) -> Result<Conv2d, NnError> {
    let spec = fast_spec(g)?;
    if spec.stride != (1, 1) || spec.padding.0 >= spec.kernel.0 || spec.padding.1 >= spec.kernel.1 {
        return Err(NnError::Unsupported(
            "the fast input gradient needs stride 1 and padding smaller than the filter".into(),
        ));
    }
    let (f, c) = (spec.out_channels, spec.in_channels);
    let (kh, kw) = spec.kernel;
    let mut flipped = vec![0.0f32; weights.len()];
    for fi in 0..f {
        for ci in 0..c {
            for y in 0..kh {
                for x in 0..kw {
                    flipped[((ci * f + fi) * kh + (kh - 1 - y)) * kw + (kw - 1 - x)] =
                        weights[((fi * c + ci) * kh + y) * kw + x];
                }
            }
        }
    }
    let t = ConvSpec {
        out_channels: c,
        in_channels: f,
        kernel: spec.kernel,
        stride: (1, 1),
        padding: (kh - 1 - spec.padding.0, kw - 1 - spec.padding.1),
    };
    Conv2d::new(t, flipped, vec![0.0; c])
}

fn fast_spec(g: &ConvNd) -> Result<ConvSpec, NnError> {
    if g.dims != 2 || g.groups != 1 || g.dilation != [1; 3] {
        return Err(NnError::Unsupported(
            "the tuned kernel is for 2-D convolution without groups or dilation".into(),
        ));
    }
    Ok(ConvSpec {
        out_channels: g.out_channels,
        in_channels: g.in_channels,
        kernel: (g.kernel[1], g.kernel[2]),
        stride: (g.stride[1], g.stride[2]),
        padding: (g.padding[1], g.padding[2]),
    })
}

/// Runs a tuned [`Conv2d`] on an `f32` array `[N, C, H, W]`.
pub fn run_fast(
    conv: &Conv2d,
    input: &Array<f32>,
    scratch: &mut ConvScratch,
) -> Result<Array<f32>, NnError> {
    let d = input.dims();
    if d.len() != 4 {
        return Err(NnError::shape(
            "conv",
            format!("input {d:?} is not [N, C, H, W]"),
        ));
    }
    let t = Tensor::from_vec(
        Shape::new(d[0], d[1], d[2], d[3]),
        Layout::Nchw,
        input.data().to_vec(),
    )?;
    let mut out = Tensor::default();
    conv.forward(&t, &mut out, Activation::Identity, scratch)?;
    let s = out.shape();
    Array::from_vec(&[s.n, s.c, s.h, s.w], out.into_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grad::check::max_gradient_error;
    use visage_rng::SplitMix64;

    /// Direct loops over the definition, for 3-D (lower dimensions as depth/height 1).
    fn reference(g: &ConvNd, x: &Array<f64>, w: &[f64], b: &[f64]) -> Array<f64> {
        let out_dims = g.output_dims(x.dims()).unwrap();
        let is = g.spatial(x.dims());
        let os = g.spatial(&out_dims);
        let (cg, fg) = (g.in_channels / g.groups, g.out_channels / g.groups);
        let mut out = Array::zeros(&out_dims);
        let k = g.kernel;
        let mut i = 0;
        for n in 0..x.dims()[0] {
            for f in 0..g.out_channels {
                let grp = f / fg;
                for z in 0..os[0] {
                    for y in 0..os[1] {
                        for xo in 0..os[2] {
                            let mut s = b[f];
                            for c in 0..cg {
                                for a in 0..k[0] {
                                    for bb in 0..k[1] {
                                        for e in 0..k[2] {
                                            let zi = (z * g.stride[0] + a * g.dilation[0]) as isize
                                                - g.padding[0] as isize;
                                            let yi = (y * g.stride[1] + bb * g.dilation[1])
                                                as isize
                                                - g.padding[1] as isize;
                                            let xi = (xo * g.stride[2] + e * g.dilation[2])
                                                as isize
                                                - g.padding[2] as isize;
                                            if zi < 0
                                                || yi < 0
                                                || xi < 0
                                                || zi as usize >= is[0]
                                                || yi as usize >= is[1]
                                                || xi as usize >= is[2]
                                            {
                                                continue;
                                            }
                                            let xv =
                                                x.data()[(((n * g.in_channels + grp * cg + c)
                                                    * is[0]
                                                    + zi as usize)
                                                    * is[1]
                                                    + yi as usize)
                                                    * is[2]
                                                    + xi as usize];
                                            let wv = w[(((f * cg + c) * k[0] + a) * k[1] + bb)
                                                * k[2]
                                                + e];
                                            s += xv * wv;
                                        }
                                    }
                                }
                            }
                            out.data_mut()[i] = s;
                            i += 1;
                        }
                    }
                }
            }
        }
        out
    }

    fn random_case(
        g: &ConvNd,
        n: usize,
        spatial: &[usize],
        seed: u64,
    ) -> (Array<f64>, Vec<f64>, Vec<f64>) {
        let mut rng = SplitMix64::new(seed);
        let mut dims = vec![n, g.in_channels];
        dims.extend_from_slice(spatial);
        let len = dims.iter().product();
        let x = Array::from_vec(&dims, rng.vec(len)).unwrap();
        let w = rng.vec(g.out_channels * g.taps());
        let b = rng.vec(g.out_channels);
        (x, w, b)
    }

    fn check_forward(g: &ConvNd, n: usize, spatial: &[usize]) {
        let (x, w, b) = random_case(g, n, spatial, 7);
        let got = conv_forward(g, &x, &w, Some(&b)).unwrap();
        let want = reference(g, &x, &w, &b);
        assert_eq!(got.dims(), want.dims());
        for (a, e) in got.data().iter().zip(want.data()) {
            assert!((a - e).abs() < 1e-10, "{g:?}: {a} vs {e}");
        }
        // The f32 kernels agree too.
        let got32 = conv_forward(g, &x.cast::<f32>(), &to32(&w), Some(&to32(&b))).unwrap();
        for (a, e) in got32.data().iter().zip(want.data()) {
            assert!(
                (*a as f64 - e).abs() < 1e-4 * (1.0 + e.abs()),
                "f32 {a} vs {e}"
            );
        }
    }

    fn to32(v: &[f64]) -> Vec<f32> {
        v.iter().map(|&x| x as f32).collect()
    }

    /// Checks all three gradients of `L = Σ r ⊙ conv(x)` against central differences.
    fn check_backward(g: &ConvNd, n: usize, spatial: &[usize]) {
        let (x, w, b) = random_case(g, n, spatial, 11);
        let out_dims = g.output_dims(x.dims()).unwrap();
        let r =
            Array::from_vec(&out_dims, SplitMix64::new(3).vec(out_dims.iter().product())).unwrap();
        let grads = conv_backward(g, &x, &w, &r).unwrap();
        let loss = |x: &Array<f64>, w: &[f64], b: &[f64]| -> f64 {
            let y = conv_forward(g, x, w, Some(b)).unwrap();
            y.data().iter().zip(r.data()).map(|(a, b)| a * b).sum()
        };
        let ex = max_gradient_error(
            |v| loss(&Array::from_vec(x.dims(), v.to_vec()).unwrap(), &w, &b),
            x.data(),
            grads.input.data(),
            1e-5,
        );
        let ew = max_gradient_error(|v| loss(&x, v, &b), &w, &grads.weights, 1e-5);
        let eb = max_gradient_error(|v| loss(&x, &w, v), &b, &grads.bias, 1e-5);
        assert!(ex < 1e-7 && ew < 1e-7 && eb < 1e-7, "{g:?}: {ex} {ew} {eb}");
    }

    #[test]
    fn lecture_shapes() {
        for c in [1, 3, 8] {
            for f in [1, 4] {
                let x = Array::<f32>::zeros(&[1, c, 14]);
                let g = ConvNd::new(c, f, [5]);
                let w = vec![0.0; f * g.taps()];
                assert_eq!(conv1d(&g, &x, &w, None).unwrap().dims(), &[1, f, 10]);
                let g = ConvNd::new(c, f, [5, 5]);
                let w = vec![0.0; f * g.taps()];
                let x = Array::<f32>::zeros(&[1, c, 14, 14]);
                assert_eq!(conv2d(&g, &x, &w, None).unwrap().dims(), &[1, f, 10, 10]);
                let g = ConvNd::new(c, f, [5, 5, 5]);
                let w = vec![0.0; f * g.taps()];
                let x = Array::<f32>::zeros(&[1, c, 14, 14, 14]);
                assert_eq!(
                    conv3d(&g, &x, &w, None).unwrap().dims(),
                    &[1, f, 10, 10, 10]
                );
            }
        }
    }

    #[test]
    fn lecture_shapes_match_reference() {
        check_forward(&ConvNd::new(2, 3, [5]), 2, &[14]);
        check_forward(&ConvNd::new(2, 3, [5, 5]), 1, &[14, 14]);
        check_forward(&ConvNd::new(2, 2, [5, 5, 5]), 1, &[14, 14, 14]);
    }

    #[test]
    fn conv1d_forward_and_gradients() {
        for g in [
            ConvNd::new(2, 3, [5]),
            ConvNd::new(2, 4, [3])
                .with_stride([2])
                .with_padding([2])
                .with_dilation([2]),
            ConvNd::new(4, 6, [3]).with_groups(2).with_padding([1]),
        ] {
            check_forward(&g, 3, &[14]);
            check_backward(&g, 2, &[11]);
        }
    }

    #[test]
    fn conv2d_forward_and_gradients() {
        for g in [
            ConvNd::new(2, 3, [5, 5]),
            ConvNd::new(2, 2, [3, 2])
                .with_stride([2, 1])
                .with_padding([1, 2])
                .with_dilation([1, 2]),
            ConvNd::new(4, 4, [3, 3])
                .with_groups(4)
                .with_padding([1, 1]),
        ] {
            check_forward(&g, 2, &[9, 8]);
            check_backward(&g, 2, &[7, 6]);
        }
    }

    #[test]
    fn conv3d_forward_and_gradients() {
        for g in [
            ConvNd::new(1, 2, [3, 3, 3]),
            ConvNd::new(2, 2, [2, 3, 2])
                .with_stride([2, 1, 2])
                .with_padding([1, 0, 1])
                .with_dilation([1, 2, 1]),
            ConvNd::new(2, 4, [3, 3, 3])
                .with_groups(2)
                .with_padding([1, 1, 1]),
        ] {
            check_forward(&g, 2, &[6, 7, 5]);
            check_backward(&g, 1, &[5, 5, 4]);
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        let g = ConvNd::new(3, 2, [5, 5]);
        let x = Array::<f32>::zeros(&[1, 3, 4, 4]);
        assert!(conv2d(&g, &x, &[0.0; 150], None).is_err());
        let x = Array::<f32>::zeros(&[1, 2, 9, 9]);
        assert!(conv2d(&g, &x, &[0.0; 150], None).is_err());
        assert!(conv1d(&g, &x, &[0.0; 150], None).is_err());
        let g = ConvNd::new(3, 2, [1, 1]).with_groups(2);
        assert!(g.output_dims(&[1, 3, 4, 4]).is_err());
    }

    /// Large `f32` convolutions take the tuned kernel inside `conv_forward`/`conv_backward`;
    /// the same call in `f64` takes the generic one.
    #[test]
    fn large_f32_convolutions_agree_with_f64() {
        let mut rng = SplitMix64::new(8);
        let g = ConvNd::new(16, 32, [3, 3]).with_padding([1, 1]);
        let dims = [1, 16, 48, 48];
        let x = Array::from_vec(&dims, rng.vec(16 * 48 * 48)).unwrap();
        let (w, b) = (rng.vec(32 * g.taps()), rng.vec(32));
        let (plan, out_dims) = Plan::new(&g, &dims).unwrap();
        assert!(fast_eligible(&plan));
        let y64 = conv_forward(&g, &x, &w, Some(&b)).unwrap();
        let y32 = conv_forward(&g, &x.cast::<f32>(), &to32(&w), Some(&to32(&b))).unwrap();
        for (a, e) in y32.data().iter().zip(y64.data()) {
            assert!((*a as f64 - e).abs() < 1e-3, "{a} vs {e}");
        }
        let dy = Array::from_vec(&out_dims, rng.vec(out_dims.iter().product())).unwrap();
        let g64 = conv_backward(&g, &x, &w, &dy).unwrap();
        let g32 = conv_backward(&g, &x.cast::<f32>(), &to32(&w), &dy.cast::<f32>()).unwrap();
        for (a, e) in g32.input.data().iter().zip(g64.input.data()) {
            assert!((*a as f64 - e).abs() < 1e-3, "{a} vs {e}");
        }
        for (a, e) in g32.weights.iter().zip(&g64.weights) {
            assert!((*a as f64 - e).abs() < 1e-2 * (1.0 + e.abs()), "{a} vs {e}");
        }
    }

    #[test]
    fn fast_kernels_agree_with_generic() {
        let mut rng = SplitMix64::new(5);
        let g = ConvNd::new(5, 7, [3, 3]).with_padding([1, 1]);
        let x = Array::from_vec(&[2, 5, 12, 11], rng.vec(2 * 5 * 132))
            .unwrap()
            .cast::<f32>();
        let w = to32(&rng.vec(7 * g.taps()));
        let b = to32(&rng.vec(7));
        let mut scratch = ConvScratch::default();
        let want = conv_forward(&g, &x, &w, Some(&b)).unwrap();
        let got = run_fast(&fast_conv2d(&g, &w, &b).unwrap(), &x, &mut scratch).unwrap();
        for (a, e) in got.data().iter().zip(want.data()) {
            assert!((a - e).abs() < 1e-4, "{a} vs {e}");
        }
        let dy = Array::from_vec(want.dims(), to32(&rng.vec(want.len()))).unwrap();
        let want = conv_backward(&g, &x, &w, &dy).unwrap().input;
        let got = run_fast(&fast_conv2d_input_grad(&g, &w).unwrap(), &dy, &mut scratch).unwrap();
        assert_eq!(got.dims(), want.dims());
        for (a, e) in got.data().iter().zip(want.data()) {
            assert!((a - e).abs() < 1e-4, "{a} vs {e}");
        }
    }
}
