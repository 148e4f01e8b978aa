//! 2-D convolution (cross-correlation with zero padding, plus a bias).
//!
//! On machines with AVX-512, banks of filters in multiples of 32 run the [`direct`] kernel: no
//! intermediate matrix, the input read in place from a padded copy. Everything else (other
//! CPUs, odd filter counts) runs as im2col + GEMM, described here.
//!
//! The output pixels of a convolution are the columns of one matrix product,
//! `out[F, pixels] = weights[F, C*kh*kw] x col[C*kh*kw, pixels]`, where each row of `col` holds
//! what one filter tap sees from every output pixel. Two ways of building `col` are used:
//!
//! * **Grid** (most layers): the input is first copied once into zero-padded planes, split by
//!   stride phase (for stride 2, the even and odd rows and columns go to separate planes). In that
//!   "grid" every filter tap sees a *contiguous* range of values, so each row of `col` is a single
//!   copy. The price is a few wasted columns (the grid is a little wider than the output: the
//!   padding columns), which are computed and dropped.
//! * **Classic** (small planes, where the grid would waste too much): `col` is gathered straight
//!   from the input, run by run along output rows, or through a per-tap index table when rows are
//!   too short for runs to pay. A 1x1 convolution with stride 1 and no padding needs no `col` at
//!   all: the input planes already are that matrix.
//!
//! `col` is built in blocks of columns small enough to stay in the L2 cache while the GEMM reads
//! them; the bias and activation are applied to each block right after its GEMM, while it is
//! still cached; and blocks are shared out between threads (or, for layers with few pixels, the
//! filters are).
//!
//! Large filter banks are stored transposed (`[K][F]`, see `Filters`), so that the GEMMs of
//! few-pixel layers can read them in place instead of copying megabytes of filters to compute a
//! handful of outputs.

use rayon::prelude::*;

use crate::tensor::{plane_offset, Layout, Shape, Tensor};
use crate::NnError;

mod direct;

use direct::DirectFilters;

/// What is applied to each output value after the bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// The value as is.
    Identity,
    /// `max(x, 0)`.
    Relu,
}

impl Activation {
    #[inline(always)]
    pub(crate) fn apply(self, v: f32) -> f32 {
        match self {
            Activation::Identity => v,
            Activation::Relu => v.max(0.0),
        }
    }
}

/// The geometry of a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSpec {
    /// Number of filters (output channels).
    pub out_channels: usize,
    /// Number of input channels.
    pub in_channels: usize,
    /// Filter size as (rows, columns), in pixels.
    pub kernel: (usize, usize),
    /// Step between output pixels as (y, x), in input pixels.
    pub stride: (usize, usize),
    /// Zero padding as (rows above and below, columns left and right), in pixels.
    pub padding: (usize, usize),
}

impl ConvSpec {
    /// Number of filter taps per output value (`in_channels * kh * kw`).
    pub fn taps(&self) -> usize {
        self.in_channels * self.kernel.0 * self.kernel.1
    }

    /// The output shape for an input shape, or why the input does not fit.
    pub fn output_shape(&self, input: Shape) -> Result<Shape, NnError> {
        let what = "conv2d";
        if input.c != self.in_channels {
            return Err(NnError::shape(
                what,
                format!(
                    "input has {} channels, the filters expect {}",
                    input.c, self.in_channels
                ),
            ));
        }
        let (kh, kw) = self.kernel;
        let (py, px) = self.padding;
        let (sy, sx) = self.stride;
        if input.h + 2 * py < kh || input.w + 2 * px < kw {
            return Err(NnError::shape(
                what,
                format!(
                    "a {kh}x{kw} filter does not fit a {}x{} input padded by ({py}, {px})",
                    input.h, input.w
                ),
            ));
        }
        Ok(Shape::new(
            input.n,
            self.out_channels,
            1 + (input.h + 2 * py - kh) / sy,
            1 + (input.w + 2 * px - kw) / sx,
        ))
    }

    fn is_pointwise(&self) -> bool {
        self.kernel == (1, 1) && self.stride == (1, 1) && self.padding == (0, 0)
    }
}

/// A convolution layer: a bank of filters and one bias per filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2d {
    spec: ConvSpec,
    filters: Filters,
    bias: Vec<f32>,
}

/// How the filter bank is stored, as the GEMM's left operand.
#[derive(Debug, Clone, PartialEq)]
enum Filters {
    /// `[F][K]` (one filter per row, taps in (C, kh, kw) order): as models store them.
    Rows(Vec<f32>),
    /// `[K][F]`, for large banks. The GEMM can read these in place, where it copies (packs) a
    /// `[F][K]` bank on every call; for the few-pixel layers deep in a network, that copy would
    /// cost more than the arithmetic.
    Columns(Vec<f32>),
    /// Blocks of 32 filters for the direct AVX-512 kernel (see [`direct`]), chosen wherever it
    /// runs: it needs no im2col copy and wastes nothing on small planes.
    Direct(DirectFilters),
}

/// Banks of at least this many values (1 MiB) are stored as [`Filters::Columns`].
const COLUMNS_MIN_VALUES: usize = 1 << 18;

/// Filters over fewer input channels than this (a first layer, on image channels) are stored as
/// [`Filters::Columns`] too: measured on the face ResNet's 3-channel 7x7 layer, the GEMM runs
/// 30% faster that way with AVX-512 kernels, and the same with AVX2 ones.
const COLUMNS_MAX_IN_CHANNELS: usize = 8;

/// With [`Filters::Columns`], GEMMs over fewer columns than this write pixel-major blocks, which
/// lets them read the filters in place.
const PIXEL_MAJOR_MAX_COLS: usize = 64;

/// Where a GEMM writes `m` filters by `len` columns.
#[derive(Clone, Copy)]
enum Out {
    /// Filter rows `rs` apart, each `len` contiguous values (the output, or a block).
    Rows(*mut f32, usize),
    /// A pixel-major block: `len` rows of `m` filters.
    Pixels(*mut f32),
}

/// Reusable buffers for [`Conv2d::forward`]. Keeping one across calls avoids reallocating (and
/// the kernel zero-filling fresh pages) on every layer.
#[derive(Debug, Default)]
pub struct ConvScratch {
    /// Per worker thread: an im2col block and, for the grid path, the GEMM's output block.
    workers: Vec<Worker>,
    /// The zero-padded, phase-split copy of the input (grid path).
    grid: Vec<f32>,
}

#[derive(Debug, Default)]
struct Worker {
    col: Vec<f32>,
    out: Vec<f32>,
}

/// Grows `buf` to at least `len` values (never shrinks, so it is zero-filled only once).
fn ensure_len(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// Which way `col` is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// Only the tests force a particular way.
#[cfg_attr(not(test), allow(dead_code))]
enum Strategy {
    /// The grid when it wastes little, the classic gather otherwise.
    Auto,
    Classic,
    Grid,
}

/// The grid may hold at most this many columns per real output column.
const MAX_GRID_WASTE: f64 = 1.3;

/// Below this many multiply-adds a layer runs on one thread: splitting costs more than it saves.
const PARALLEL_MIN_MACS: usize = 1 << 20;
/// Target size of one im2col block, in floats (512 KiB: inside a 1-2 MiB L2 together with the
/// filters of a mid-sized layer).
const COL_BLOCK_FLOATS: usize = 128 * 1024;
/// Smallest block width, in columns: narrower GEMMs waste most of each vector register tile.
const MIN_BLOCK_COLS: usize = 48;
/// Fewer columns per thread than this and threads split the filters instead of the columns.
const MIN_COLS_PER_THREAD: usize = 64;

/// Columns per im2col block for `taps` rows and `cols` columns in all: about
/// [`COL_BLOCK_FLOATS`] values, with the columns shared evenly between the blocks (a last,
/// narrow block would make a slow GEMM).
fn block_cols(taps: usize, cols: usize) -> usize {
    let most = (COL_BLOCK_FLOATS / taps).max(MIN_BLOCK_COLS);
    let blocks = cols.div_ceil(most).max(1);
    cols.div_ceil(blocks).next_multiple_of(16)
}

/// A raw pointer that may cross threads; every use writes a region no other thread touches.
#[derive(Clone, Copy)]
struct SyncPtr(*mut f32);
// SAFETY: the pointer is only dereferenced through `gemm` and the bias/activation passes, on
// regions that are disjoint between tasks (distinct column ranges or distinct filter rows).
unsafe impl Send for SyncPtr {}
unsafe impl Sync for SyncPtr {}

impl SyncPtr {
    /// The pointer. A method rather than a field access, so that closures capture the whole
    /// (Sync) wrapper instead of the bare pointer.
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// How output columns (sample, pixel) map onto the input, the col matrix and the output.
#[derive(Clone, Copy)]
struct Plan {
    spec: ConvSpec,
    input: Shape,
    output: Shape,
    layout: Layout,
    /// Output pixels per sample.
    ohw: usize,
    /// Output columns in the batch.
    cols: usize,
    /// Distance between consecutive filters' rows in the output.
    dst_rs: usize,
}

impl Plan {
    /// Offset of output (filter 0, column j).
    fn dst_base(&self, j: usize) -> usize {
        match self.layout {
            Layout::Cnhw => j,
            Layout::Nchw => (j / self.ohw) * self.spec.out_channels * self.ohw + j % self.ohw,
        }
    }

    /// For a pointwise convolution: offset of input (channel 0, column j) and the channel stride.
    fn direct_rhs(&self, j: usize) -> (usize, usize) {
        match self.layout {
            Layout::Cnhw => (j, self.cols),
            Layout::Nchw => (
                (j / self.ohw) * self.input.c * self.ohw + j % self.ohw,
                self.ohw,
            ),
        }
    }

    /// The end of the run of columns starting at `j` that is contiguous in the output rows.
    fn segment_end(&self, j: usize, limit: usize) -> usize {
        match self.layout {
            Layout::Cnhw => limit,
            Layout::Nchw => limit.min((j / self.ohw + 1) * self.ohw),
        }
    }
}

/// The grid: for each (channel, phase row, phase column), one row of `n` planes of `gh x gw`
/// values, where grid value (qy, qx) of phase (ry, rx) is the padded input at
/// (qy * stride_y + ry, qx * stride_x + rx). Grid column `n * gp + oy * gw + ox` then sees, through
/// tap (ky, kx), the value at column + (ky / stride_y) * gw + kx / stride_x of phase
/// (ky % stride_y, kx % stride_x): a contiguous range for every tap.
#[derive(Clone, Copy)]
struct Grid {
    gw: usize,
    /// Values per grid plane (`gh * gw`).
    gp: usize,
    /// Values per (channel, phase) row (`n * gp`).
    row: usize,
    /// Grid columns that hold an output pixel or lie between two (the last plane's trailing
    /// rows and columns are left out, so no tap reads past the grid).
    cols: usize,
}

impl Grid {
    fn new(plan: &Plan) -> Self {
        let (sy, sx) = plan.spec.stride;
        let (py, px) = plan.spec.padding;
        let gh = (plan.input.h + 2 * py).div_ceil(sy);
        let gw = (plan.input.w + 2 * px).div_ceil(sx);
        let gp = gh * gw;
        let o = plan.output;
        Self {
            gw,
            gp,
            row: o.n * gp,
            cols: (o.n - 1) * gp + (o.h - 1) * gw + o.w,
        }
    }
}

impl Conv2d {
    /// A convolution from its geometry, `out * in * kh * kw` filter taps and `out` biases.
    pub fn new(spec: ConvSpec, weights: Vec<f32>, bias: Vec<f32>) -> Result<Self, NnError> {
        let what = "Conv2d::new";
        let (kh, kw) = spec.kernel;
        if spec.out_channels == 0 || spec.in_channels == 0 || kh == 0 || kw == 0 {
            return Err(NnError::shape(what, format!("empty convolution {spec:?}")));
        }
        if spec.stride.0 == 0 || spec.stride.1 == 0 {
            return Err(NnError::shape(what, "stride must be at least 1"));
        }
        let taps = spec
            .out_channels
            .checked_mul(spec.taps())
            .ok_or_else(|| NnError::shape(what, "filter size overflows"))?;
        if weights.len() != taps {
            return Err(NnError::shape(
                what,
                format!(
                    "{} filter taps, expected {taps} for {spec:?}",
                    weights.len()
                ),
            ));
        }
        if bias.len() != spec.out_channels {
            return Err(NnError::shape(
                what,
                format!("{} biases for {} filters", bias.len(), spec.out_channels),
            ));
        }
        let filters =
            if let Some(direct) = DirectFilters::new(&spec, |f, t| weights[f * spec.taps() + t]) {
                Filters::Direct(direct)
            } else if taps >= COLUMNS_MIN_VALUES || spec.in_channels < COLUMNS_MAX_IN_CHANNELS {
                let k = spec.taps();
                let f = spec.out_channels;
                let mut t = vec![0f32; taps];
                for (fi, filter) in weights.chunks_exact(k).enumerate() {
                    for (ti, w) in filter.iter().enumerate() {
                        t[ti * f + fi] = *w;
                    }
                }
                Filters::Columns(t)
            } else {
                Filters::Rows(weights)
            };
        Ok(Self {
            spec,
            filters,
            bias,
        })
    }

    /// The geometry.
    pub fn spec(&self) -> ConvSpec {
        self.spec
    }

    /// Filter `f`'s tap `t`, taps in (C, kh, kw) row-major order.
    pub fn weight(&self, f: usize, t: usize) -> f32 {
        match &self.filters {
            Filters::Rows(w) => w[f * self.spec.taps() + t],
            Filters::Columns(w) => w[t * self.spec.out_channels + f],
            Filters::Direct(d) => d.weight(f, t, self.spec.taps()),
        }
    }

    /// The biases, one per filter.
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    /// Folds a following per-channel affine layer `y = gamma[f] * x + beta[f]` into this
    /// convolution, so that one pass computes both. The result differs from applying the two
    /// in turn only by float rounding.
    pub fn fold_affine(&mut self, gamma: &[f32], beta: &[f32]) -> Result<(), NnError> {
        let f = self.spec.out_channels;
        if gamma.len() != f || beta.len() != f {
            return Err(NnError::shape(
                "Conv2d::fold_affine",
                format!(
                    "{} gammas and {} betas for {f} filters",
                    gamma.len(),
                    beta.len()
                ),
            ));
        }
        let taps = self.spec.taps();
        match &mut self.filters {
            Filters::Rows(w) => {
                for (filter, g) in w.chunks_exact_mut(taps).zip(gamma) {
                    filter.iter_mut().for_each(|v| *v *= g);
                }
            }
            Filters::Columns(w) => {
                for tap in w.chunks_exact_mut(f) {
                    tap.iter_mut().zip(gamma).for_each(|(v, g)| *v *= g);
                }
            }
            Filters::Direct(d) => d.scale(gamma),
        }
        for ((b, g), beta) in self.bias.iter_mut().zip(gamma).zip(beta) {
            *b = g * *b + beta;
        }
        Ok(())
    }

    /// Convolves `input` into `output` (reshaped to fit, same layout as the input), then adds
    /// the bias and applies `activation`. Uses the current rayon pool's threads.
    pub fn forward(
        &self,
        input: &Tensor,
        output: &mut Tensor,
        activation: Activation,
        scratch: &mut ConvScratch,
    ) -> Result<(), NnError> {
        self.forward_with(input, output, activation, scratch, Strategy::Auto)
    }

    fn forward_with(
        &self,
        input: &Tensor,
        output: &mut Tensor,
        activation: Activation,
        scratch: &mut ConvScratch,
        strategy: Strategy,
    ) -> Result<(), NnError> {
        let out_shape = self.spec.output_shape(input.shape())?;
        output.reset(out_shape, input.layout());
        if out_shape.is_empty() {
            return Ok(());
        }
        let ohw = out_shape.plane_len();
        let plan = Plan {
            spec: self.spec,
            input: input.shape(),
            output: out_shape,
            layout: input.layout(),
            ohw,
            cols: out_shape.n * ohw,
            dst_rs: match input.layout() {
                Layout::Cnhw => out_shape.n * ohw,
                Layout::Nchw => ohw,
            },
        };
        let macs = plan.cols * self.spec.out_channels * self.spec.taps();
        let threads = if macs < PARALLEL_MIN_MACS {
            1
        } else {
            rayon::current_num_threads().max(1)
        };
        if scratch.workers.len() < threads {
            scratch.workers.resize_with(threads, Worker::default);
        }
        if let Filters::Direct(filters) = &self.filters {
            direct::forward(
                &self.spec,
                filters,
                &self.bias,
                input,
                output,
                activation,
                &mut scratch.grid,
                threads,
            );
            return Ok(());
        }
        let dst = SyncPtr(output.data_mut().as_mut_ptr());
        let src = input.data();

        let grid = Grid::new(&plan);
        let use_grid = match strategy {
            Strategy::Grid => true,
            Strategy::Classic => false,
            Strategy::Auto => {
                !self.spec.is_pointwise() && grid.cols as f64 <= MAX_GRID_WASTE * plan.cols as f64
            }
        };
        if use_grid {
            self.grid_forward(&plan, &grid, input, dst, threads, scratch, activation);
        } else if threads == 1 {
            let worker = &mut scratch.workers[0];
            self.columns(&plan, src, dst, 0, plan.cols, worker, activation);
        } else if plan.cols >= threads * MIN_COLS_PER_THREAD {
            // Each thread takes an equal share of the columns, in 16-column steps so that the
            // GEMM's vector tiles stay full.
            let share = plan.cols.div_ceil(threads).next_multiple_of(16);
            scratch.workers[..threads]
                .par_iter_mut()
                .enumerate()
                .for_each(|(t, w)| {
                    let start = (t * share).min(plan.cols);
                    let end = ((t + 1) * share).min(plan.cols);
                    if start < end {
                        self.columns(&plan, src, dst, start, end, w, activation);
                    }
                });
        } else {
            self.filters_split(&plan, src, dst, threads, scratch, activation);
        }
        Ok(())
    }

    /// The grid path: builds the grid, then shares its columns out between threads.
    #[allow(clippy::too_many_arguments)]
    fn grid_forward(
        &self,
        plan: &Plan,
        grid: &Grid,
        input: &Tensor,
        dst: SyncPtr,
        threads: usize,
        scratch: &mut ConvScratch,
        activation: Activation,
    ) {
        let (sy, sx) = self.spec.stride;
        let planes = self.spec.in_channels * sy * sx * plan.input.n;
        let buf = ensure_len(&mut scratch.grid, planes * grid.gp);
        build_grid(plan, grid, input, buf, threads > 1);
        let grid_data: &[f32] = buf;

        if threads > 1 && grid.cols < threads * MIN_COLS_PER_THREAD {
            return self.grid_filters_split(
                plan,
                grid,
                grid_data,
                dst,
                threads,
                &mut scratch.workers,
                activation,
            );
        }
        let share = grid.cols.div_ceil(threads).next_multiple_of(16);
        let work = |t: usize, w: &mut Worker| {
            let start = (t * share).min(grid.cols);
            let end = ((t + 1) * share).min(grid.cols);
            self.grid_columns(plan, grid, grid_data, dst, start, end, w, activation);
        };
        if threads == 1 {
            work(0, &mut scratch.workers[0]);
        } else {
            scratch.workers[..threads]
                .par_iter_mut()
                .enumerate()
                .for_each(|(t, w)| work(t, w));
        }
    }

    /// Grid columns `start..end`, block by block: contiguous im2col copies, the GEMM into a
    /// block buffer, then the real output pixels of the block out of it.
    #[allow(clippy::too_many_arguments)]
    fn grid_columns(
        &self,
        plan: &Plan,
        grid: &Grid,
        data: &[f32],
        dst: SyncPtr,
        start: usize,
        end: usize,
        worker: &mut Worker,
        activation: Activation,
    ) {
        let k = self.spec.taps();
        let f = self.spec.out_channels;
        let block = block_cols(k, end - start);
        let mut j0 = start;
        while j0 < end {
            let j1 = end.min(j0 + block);
            let len = j1 - j0;
            let col = ensure_len(&mut worker.col, k * len);
            self.grid_im2col(grid, data, j0, j1, col);
            let block = ensure_len(&mut worker.out, f * len);
            let pixel_major = self.pixel_major(len);
            let out = if pixel_major {
                Out::Pixels(block.as_mut_ptr())
            } else {
                Out::Rows(block.as_mut_ptr(), len)
            };
            // SAFETY: the block holds f x len values, col k rows of len; each grid column maps
            // to at most one output pixel, so blocks write disjoint parts of the output.
            unsafe {
                self.product(0, f, col.as_ptr(), len, len, out);
                self.scatter_block(
                    plan,
                    grid,
                    block,
                    pixel_major,
                    0..f,
                    dst,
                    j0,
                    j1,
                    activation,
                );
            }
            j0 = j1;
        }
    }

    /// The grid path for layers with few pixels: the col matrix of all grid columns is built
    /// once, then threads take equal shares of the filters.
    #[allow(clippy::too_many_arguments)]
    fn grid_filters_split(
        &self,
        plan: &Plan,
        grid: &Grid,
        data: &[f32],
        dst: SyncPtr,
        threads: usize,
        workers: &mut [Worker],
        activation: Activation,
    ) {
        let (k, f, cols) = (self.spec.taps(), self.spec.out_channels, grid.cols);
        // Taken out of the first worker, so that every worker's block buffer can be lent out
        // beside it.
        let mut col = std::mem::take(&mut workers[0].col);
        self.grid_im2col(grid, data, 0, cols, ensure_len(&mut col, k * cols));
        let col_data: &[f32] = &col;
        let share = f.div_ceil(threads).next_multiple_of(16);
        workers[..threads]
            .par_iter_mut()
            .enumerate()
            .for_each(|(t, worker)| {
                let (m0, m1) = ((t * share).min(f), ((t + 1) * share).min(f));
                if m0 == m1 {
                    return;
                }
                let block = ensure_len(&mut worker.out, (m1 - m0) * cols);
                let pixel_major = self.pixel_major(cols);
                let out = if pixel_major {
                    Out::Pixels(block.as_mut_ptr())
                } else {
                    Out::Rows(block.as_mut_ptr(), cols)
                };
                // SAFETY: the block holds (m1 - m0) x cols values and col k rows of cols; the
                // output values of filters m0..m1 belong to this task alone.
                unsafe {
                    self.product(m0, m1, col_data.as_ptr(), cols, cols, out);
                    self.scatter_block(
                        plan,
                        grid,
                        block,
                        pixel_major,
                        m0..m1,
                        dst,
                        0,
                        cols,
                        activation,
                    );
                }
            });
        workers[0].col = col;
    }

    /// Fills `col` (taps rows of `j1 - j0` values) for grid columns `j0..j1`: one contiguous
    /// copy per tap.
    fn grid_im2col(&self, grid: &Grid, data: &[f32], j0: usize, j1: usize, col: &mut [f32]) {
        let len = j1 - j0;
        let ConvSpec {
            in_channels,
            kernel: (kh, kw),
            stride: (sy, sx),
            ..
        } = self.spec;
        let mut rows = col.chunks_exact_mut(len);
        for c in 0..in_channels {
            for ky in 0..kh {
                for kx in 0..kw {
                    let phase = (c * sy + ky % sy) * sx + kx % sx;
                    let from = phase * grid.row + (ky / sy) * grid.gw + kx / sx + j0;
                    if let Some(row) = rows.next() {
                        row.copy_from_slice(&data[from..from + len]);
                    }
                }
            }
        }
    }

    /// Copies filters `filters` of the output pixels among grid columns `j0..j1` from the block
    /// buffer (a row of `j1 - j0` values per filter, or when `pixel_major` a row of the filters
    /// per column) into the output, adding the bias and applying the activation.
    ///
    /// # Safety
    /// `dst` must point to the output tensor of `plan`, and no other thread may write these
    /// output values.
    #[allow(clippy::too_many_arguments)]
    unsafe fn scatter_block(
        &self,
        plan: &Plan,
        grid: &Grid,
        block: &[f32],
        pixel_major: bool,
        filters: std::ops::Range<usize>,
        dst: SyncPtr,
        j0: usize,
        j1: usize,
        activation: Activation,
    ) {
        let len = j1 - j0;
        let width = filters.len();
        let (oh, ow) = (plan.output.h, plan.output.w);
        let mut n = j0 / grid.gp;
        while n < plan.output.n && n * grid.gp < j1 {
            let plane_start = n * grid.gp;
            let first_row = j0.saturating_sub(plane_start) / grid.gw;
            for oy in first_row..oh {
                let g = plane_start + oy * grid.gw;
                if g >= j1 {
                    break;
                }
                let (a, b) = (g.max(j0), (g + ow).min(j1));
                if a >= b {
                    continue;
                }
                for fi in filters.clone() {
                    let bias = self.bias[fi];
                    let at = plane_offset(plan.output, plan.layout, n, fi) + oy * ow + (a - g);
                    let out = std::slice::from_raw_parts_mut(dst.get().add(at), b - a);
                    let row = fi - filters.start;
                    if pixel_major {
                        let values = block[(a - j0) * width + row..].iter().step_by(width);
                        for (o, v) in out.iter_mut().zip(values) {
                            *o = activation.apply(v + bias);
                        }
                    } else {
                        let src = &block[row * len + (a - j0)..row * len + (b - j0)];
                        match activation {
                            Activation::Identity => {
                                out.iter_mut().zip(src).for_each(|(o, v)| *o = v + bias)
                            }
                            Activation::Relu => out
                                .iter_mut()
                                .zip(src)
                                .for_each(|(o, v)| *o = (v + bias).max(0.0)),
                        }
                    }
                }
            }
            n += 1;
        }
    }

    /// Computes output columns `start..end` for all filters, block by block.
    #[allow(clippy::too_many_arguments)]
    fn columns(
        &self,
        plan: &Plan,
        src: &[f32],
        dst: SyncPtr,
        start: usize,
        end: usize,
        worker: &mut Worker,
        activation: Activation,
    ) {
        let k = self.spec.taps();
        let f = self.spec.out_channels;
        let block = block_cols(k, end - start);
        let mut j = start;
        while j < end {
            let j1 = plan.segment_end(j, end.min(j + block));
            let len = j1 - j;
            let (rhs, rhs_rs) = if self.spec.is_pointwise() {
                let (offset, rs) = plan.direct_rhs(j);
                (src[offset..].as_ptr(), rs)
            } else {
                let col = ensure_len(&mut worker.col, k * len);
                im2col(plan, src, j, j1, col);
                (col.as_ptr(), len)
            };
            // SAFETY: rhs holds k rows of `len` values `rhs_rs` apart (im2col block, or the
            // input planes for a pointwise conv); the output columns j..j1 belong to this task.
            unsafe {
                if self.pixel_major(len) {
                    let out = ensure_len(&mut worker.out, f * len);
                    self.product(0, f, rhs, rhs_rs, len, Out::Pixels(out.as_mut_ptr()));
                    self.finish_pixels(plan, 0, f, out, dst, j, len, activation);
                } else {
                    let rows = dst.get().add(plan.dst_base(j));
                    self.product(0, f, rhs, rhs_rs, len, Out::Rows(rows, plan.dst_rs));
                    self.finish_rows(plan, 0, f, dst, j, len, activation);
                }
            }
            j = j1;
        }
    }

    /// For narrow layers (few output pixels): builds the whole col matrix once, then threads
    /// take equal shares of the filters.
    fn filters_split(
        &self,
        plan: &Plan,
        src: &[f32],
        dst: SyncPtr,
        threads: usize,
        scratch: &mut ConvScratch,
        activation: Activation,
    ) {
        let k = self.spec.taps();
        let cols = plan.cols;
        let pointwise = self.spec.is_pointwise();
        // Taken out of the first worker, so that every worker's block buffer can be lent out
        // beside it.
        let mut col = std::mem::take(&mut scratch.workers[0].col);
        if !pointwise {
            im2col(plan, src, 0, cols, ensure_len(&mut col, k * cols));
        }
        let col_data: &[f32] = &col;
        let f = self.spec.out_channels;
        // Multiples of 16 filters keep the GEMM's register tiles full.
        let share = f.div_ceil(threads).next_multiple_of(16);
        scratch.workers[..threads]
            .par_iter_mut()
            .enumerate()
            .for_each(|(t, worker)| {
                let m0 = (t * share).min(f);
                let m1 = ((t + 1) * share).min(f);
                let mut j = 0;
                while m0 < m1 && j < cols {
                    let j1 = plan.segment_end(j, cols);
                    let len = j1 - j;
                    let (rhs, rhs_rs) = if pointwise {
                        let (offset, rs) = plan.direct_rhs(j);
                        (src[offset..].as_ptr(), rs)
                    } else {
                        (col_data[j..].as_ptr(), cols)
                    };
                    // SAFETY: filters m0..m1 of columns j..j1 belong to this task alone; the
                    // col matrix (k rows of `cols`) is only read.
                    unsafe {
                        if self.pixel_major(len) {
                            let out = ensure_len(&mut worker.out, (m1 - m0) * len);
                            self.product(m0, m1, rhs, rhs_rs, len, Out::Pixels(out.as_mut_ptr()));
                            self.finish_pixels(plan, m0, m1, out, dst, j, len, activation);
                        } else {
                            let rows = dst.get().add(plan.dst_base(j) + m0 * plan.dst_rs);
                            self.product(m0, m1, rhs, rhs_rs, len, Out::Rows(rows, plan.dst_rs));
                            self.finish_rows(plan, m0, m1, dst, j, len, activation);
                        }
                    }
                    j = j1;
                }
            });
        scratch.workers[0].col = col;
    }

    /// The same convolution with its filters stored as [`Filters::Columns`], whatever their size.
    #[cfg(test)]
    fn into_columns(self) -> Self {
        let (k, f) = (self.spec.taps(), self.spec.out_channels);
        let mut t = vec![0f32; k * f];
        for fi in 0..f {
            for ti in 0..k {
                t[ti * f + fi] = self.weight(fi, ti);
            }
        }
        Self {
            filters: Filters::Columns(t),
            ..self
        }
    }

    /// The same convolution with its filters stored as [`Filters::Rows`], whatever their size.
    #[cfg(test)]
    fn into_rows(self) -> Self {
        let (k, f) = (self.spec.taps(), self.spec.out_channels);
        let w = (0..f * k).map(|i| self.weight(i / k, i % k)).collect();
        Self {
            filters: Filters::Rows(w),
            ..self
        }
    }

    /// Whether a GEMM over `len` columns writes a pixel-major block (see [`Filters::Columns`]).
    fn pixel_major(&self, len: usize) -> bool {
        matches!(self.filters, Filters::Columns(_)) && len < PIXEL_MAJOR_MAX_COLS
    }

    /// `out = filters[m0..m1] x rhs`, for `len` columns of `rhs` (k rows `rhs_rs` apart).
    ///
    /// # Safety
    /// `rhs` must be valid for `taps` rows of `len` values `rhs_rs` apart, and `out` for the
    /// region it describes, which no other thread may access meanwhile.
    unsafe fn product(
        &self,
        m0: usize,
        m1: usize,
        rhs: *const f32,
        rhs_rs: usize,
        len: usize,
        out: Out,
    ) {
        let k = self.spec.taps();
        let f = self.spec.out_channels;
        let (lhs, lhs_cs, lhs_rs) = match &self.filters {
            Filters::Rows(w) => (w.as_ptr().add(m0 * k), 1, k),
            Filters::Columns(w) => (w.as_ptr().add(m0), f, 1),
            Filters::Direct(_) => unreachable!("direct filters never reach a GEMM"),
        };
        let (dst, dst_cs, dst_rs) = match out {
            Out::Rows(p, rs) => (p, 1, rs),
            Out::Pixels(p) => (p, m1 - m0, 1),
        };
        gemm::gemm(
            m1 - m0,
            len,
            k,
            dst,
            dst_cs as isize,
            dst_rs as isize,
            false,
            lhs,
            lhs_cs as isize,
            lhs_rs as isize,
            rhs,
            1,
            rhs_rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }

    /// Adds the bias and applies the activation, in place, to filters m0..m1 of output columns
    /// j..j+len.
    ///
    /// # Safety
    /// Those output values must be inside the output and not accessed by another thread.
    #[allow(clippy::too_many_arguments)]
    unsafe fn finish_rows(
        &self,
        plan: &Plan,
        m0: usize,
        m1: usize,
        dst: SyncPtr,
        j: usize,
        len: usize,
        activation: Activation,
    ) {
        let base = plan.dst_base(j);
        for f in m0..m1 {
            let row = std::slice::from_raw_parts_mut(dst.get().add(base + f * plan.dst_rs), len);
            let b = self.bias[f];
            match activation {
                Activation::Identity => row.iter_mut().for_each(|v| *v += b),
                Activation::Relu => row.iter_mut().for_each(|v| *v = (*v + b).max(0.0)),
            }
        }
    }

    /// Writes filters m0..m1 of output columns j..j+len from a pixel-major block (`len` rows of
    /// `m1 - m0`), adding the bias and applying the activation.
    ///
    /// # Safety
    /// As for [`Conv2d::finish_rows`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn finish_pixels(
        &self,
        plan: &Plan,
        m0: usize,
        m1: usize,
        block: &[f32],
        dst: SyncPtr,
        j: usize,
        len: usize,
        activation: Activation,
    ) {
        let base = plan.dst_base(j);
        let width = m1 - m0;
        for f in m0..m1 {
            let row = std::slice::from_raw_parts_mut(dst.get().add(base + f * plan.dst_rs), len);
            let b = self.bias[f];
            for (o, v) in row.iter_mut().zip(block[f - m0..].iter().step_by(width)) {
                *o = activation.apply(v + b);
            }
        }
    }
}

/// Fills the grid (see [`Grid`]) from the input: zero padding, stride phases split apart.
fn build_grid(plan: &Plan, grid: &Grid, input: &Tensor, buf: &mut [f32], parallel: bool) {
    let (sy, sx) = plan.spec.stride;
    let (py, px) = plan.spec.padding;
    let n = plan.input.n;
    let (h, w) = (plan.input.h, plan.input.w);
    let src = input.data();
    // Grid plane p is (channel, phase row, phase column, sample), in that order.
    let fill = |(p, plane): (usize, &mut [f32])| {
        let i = p % n;
        let phase = p / n;
        let rx = phase % sx;
        let ry = (phase / sx) % sy;
        let c = phase / (sx * sy);
        let in_plane = plane_offset(plan.input, plan.layout, i, c);
        for (qy, row) in plane.chunks_exact_mut(grid.gw).enumerate() {
            let iy = (qy * sy + ry) as isize - py as isize;
            if iy < 0 || iy >= h as isize {
                row.fill(0.0);
            } else {
                let start = in_plane + iy as usize * w;
                gather_row(row, &src[start..start + w], rx as isize - px as isize, sx);
            }
        }
    };
    if parallel {
        buf.par_chunks_exact_mut(grid.gp).enumerate().for_each(fill);
    } else {
        buf.chunks_exact_mut(grid.gp).enumerate().for_each(fill);
    }
}

/// Fills `col` (taps rows of `j1 - j0` values) with the input values each output column
/// `j0..j1` sees through each filter tap, zeros where the tap falls in the padding.
fn im2col(plan: &Plan, src: &[f32], j0: usize, j1: usize, col: &mut [f32]) {
    if plan.output.w < SHORT_ROW {
        return im2col_short_rows(plan, src, j0, j1, col);
    }
    let len = j1 - j0;
    let ConvSpec {
        in_channels,
        kernel: (kh, kw),
        stride: (sy, sx),
        padding: (py, px),
        ..
    } = plan.spec;
    let (h, w) = (plan.input.h, plan.input.w);
    let ow = plan.output.w;
    // The columns split into runs along output rows, the same for every tap: worked out once
    // (divisions are slow) as (sample plane offset at channel 0, output row, first output
    // column, length, offset in the block).
    let mut runs = Vec::new();
    let mut j = j0;
    while j < j1 {
        let (n, p) = (j / plan.ohw, j % plan.ohw);
        let (oy, ox0) = (p / ow, p % ow);
        let run = (ow - ox0).min(j1 - j);
        runs.push((
            plane_offset(plan.input, plan.layout, n, 0),
            oy,
            ox0,
            run,
            j - j0,
        ));
        j += run;
    }
    let channel_stride = plane_offset(plan.input, plan.layout, 0, 1);
    let mut rows = col.chunks_exact_mut(len);
    for c in 0..in_channels {
        for ky in 0..kh {
            for kx in 0..kw {
                let Some(dst_row) = rows.next() else { return };
                for &(plane, oy, ox0, run, at) in &runs {
                    let dst = &mut dst_row[at..at + run];
                    let iy = (oy * sy + ky) as isize - py as isize;
                    if iy < 0 || iy >= h as isize {
                        dst.fill(0.0);
                    } else {
                        let start = plane + c * channel_stride + iy as usize * w;
                        let base = (ox0 * sx + kx) as isize - px as isize;
                        gather_row(dst, &src[start..start + w], base, sx);
                    }
                }
            }
        }
    }
}

/// Output rows narrower than this are gathered through an index table (see
/// [`im2col_short_rows`]) rather than run by run.
const SHORT_ROW: usize = 16;

/// [`im2col`] for small output planes (deep layers), where runs along output rows are only a few
/// values long and per-run bookkeeping would cost more than the copying: a table gives, for each
/// tap and output pixel, the input pixel it reads (or none, in the padding).
fn im2col_short_rows(plan: &Plan, src: &[f32], j0: usize, j1: usize, col: &mut [f32]) {
    const PAD: u32 = u32::MAX;
    let len = j1 - j0;
    let ConvSpec {
        in_channels,
        kernel: (kh, kw),
        stride: (sy, sx),
        padding: (py, px),
        ..
    } = plan.spec;
    let (h, w) = (plan.input.h, plan.input.w);
    let (oh, ow, ohw) = (plan.output.h, plan.output.w, plan.ohw);
    let mut table = vec![PAD; kh * kw * ohw];
    for (tap, entries) in table.chunks_exact_mut(ohw).enumerate() {
        let (ky, kx) = (tap / kw, tap % kw);
        for oy in 0..oh {
            let iy = (oy * sy + ky).wrapping_sub(py);
            for ox in 0..ow {
                let ix = (ox * sx + kx).wrapping_sub(px);
                if iy < h && ix < w {
                    entries[oy * ow + ox] = (iy * w + ix) as u32;
                }
            }
        }
    }
    // The samples the columns cover, each with its pixel range and place in the block.
    let mut pieces = Vec::new();
    let mut j = j0;
    while j < j1 {
        let (n, p0) = (j / ohw, j % ohw);
        let p1 = ohw.min(p0 + (j1 - j));
        pieces.push((plane_offset(plan.input, plan.layout, n, 0), p0, p1, j - j0));
        j += p1 - p0;
    }
    let channel_stride = plane_offset(plan.input, plan.layout, 0, 1);
    let mut rows = col.chunks_exact_mut(len);
    for c in 0..in_channels {
        for entries in table.chunks_exact(ohw) {
            let Some(dst_row) = rows.next() else { return };
            for &(plane, p0, p1, at) in &pieces {
                let plane = &src[plane + c * channel_stride..][..h * w];
                let dst = &mut dst_row[at..at + (p1 - p0)];
                for (d, &e) in dst.iter_mut().zip(&entries[p0..p1]) {
                    *d = if e == PAD { 0.0 } else { plane[e as usize] };
                }
            }
        }
    }
}

/// `dst[i] = row[base + i * step]`, or 0 where that index is outside the row.
#[inline(always)]
fn gather_row(dst: &mut [f32], row: &[f32], base: isize, step: usize) {
    let run = dst.len() as isize;
    let w = row.len() as isize;
    // lo: first i with base + i*step >= 0; hi: first i with base + i*step >= w. Stride 1, by
    // far the most common, needs no division.
    let (lo, hi) = if step == 1 {
        let lo = (-base).clamp(0, run);
        (lo, (w - base).clamp(lo, run))
    } else {
        let s = step as isize;
        let lo = if base >= 0 { 0 } else { (-base + s - 1) / s }.min(run);
        let hi = if base >= w { 0 } else { (w - base + s - 1) / s };
        (lo, hi.clamp(lo, run))
    };
    let (lo, hi) = (lo as usize, hi as usize);
    dst[..lo].fill(0.0);
    dst[hi..].fill(0.0);
    let first = (base + lo as isize * step as isize) as usize;
    let out = &mut dst[lo..hi];
    if step == 1 {
        out.copy_from_slice(&row[first..first + out.len()]);
    } else {
        for (i, v) in out.iter_mut().enumerate() {
            *v = row[first + i * step];
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small deterministic generator, so tests need no extra dependency.
    pub(crate) struct Lcg(pub u64);
    impl Lcg {
        pub(crate) fn next(&mut self) -> f32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        }
        pub(crate) fn vec(&mut self, n: usize) -> Vec<f32> {
            (0..n).map(|_| self.next()).collect()
        }
    }

    /// The definition, one output value at a time, accumulated in f64.
    fn reference(conv: &Conv2d, input: &Tensor, act: Activation) -> Tensor {
        let spec = conv.spec();
        let out_shape = spec.output_shape(input.shape()).unwrap();
        let s = input.shape();
        let mut out = Tensor::zeros(out_shape, Layout::Nchw);
        let (kh, kw) = spec.kernel;
        let mut data = Vec::with_capacity(out_shape.len());
        for n in 0..s.n {
            for f in 0..spec.out_channels {
                for oy in 0..out_shape.h {
                    for ox in 0..out_shape.w {
                        let mut acc = conv.bias()[f] as f64;
                        for c in 0..s.c {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy = (oy * spec.stride.0 + ky) as isize
                                        - spec.padding.0 as isize;
                                    let ix = (ox * spec.stride.1 + kx) as isize
                                        - spec.padding.1 as isize;
                                    if iy < 0 || ix < 0 || iy >= s.h as isize || ix >= s.w as isize
                                    {
                                        continue;
                                    }
                                    let wgt = conv.weight(f, (c * kh + ky) * kw + kx);
                                    acc += wgt as f64
                                        * input.at(n, c, iy as usize, ix as usize) as f64;
                                }
                            }
                        }
                        data.push(act.apply(acc as f32));
                    }
                }
            }
        }
        out.data_mut().copy_from_slice(&data);
        out
    }

    fn check(spec: ConvSpec, shape: Shape, layout: Layout, act: Activation, seed: u64) {
        let mut rng = Lcg(seed);
        let conv = Conv2d::new(
            spec,
            rng.vec(spec.out_channels * spec.taps()),
            rng.vec(spec.out_channels),
        )
        .unwrap();
        let input = Tensor::from_vec(shape, Layout::Nchw, rng.vec(shape.len()))
            .unwrap()
            .to_layout(layout);
        let expect = reference(&conv, &input, act);
        let mut out = Tensor::default();
        let mut scratch = ConvScratch::default();
        let columns = conv.clone().into_columns();
        let rows = conv.clone().into_rows();
        let gemm_paths = [Strategy::Auto, Strategy::Classic, Strategy::Grid];
        for (storage, conv, strategies) in [
            ("rows", &rows, &gemm_paths[..]),
            ("columns", &columns, &gemm_paths[..]),
            // The direct kernel where this machine runs it, else a repeat of the above.
            ("as built", &conv, &[Strategy::Auto][..]),
        ] {
            for &strategy in strategies {
                // Dirty the output so that a value left unwritten shows.
                out.reset(expect.shape(), layout);
                out.data_mut().fill(f32::NAN);
                conv.forward_with(&input, &mut out, act, &mut scratch, strategy)
                    .unwrap();
                let got = out.to_layout(Layout::Nchw);
                assert_eq!(got.shape(), expect.shape());
                let worst = got
                    .data()
                    .iter()
                    .zip(expect.data())
                    .map(|(a, b)| (a - b).abs())
                    .fold(
                        0f32,
                        |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
                    );
                let tol = 1e-5 * (spec.taps() as f32).sqrt().max(1.0);
                assert!(
                    worst <= tol,
                    "{spec:?} {shape} {layout:?} {strategy:?} {storage}: worst diff {worst}"
                );
            }
        }
    }

    fn spec(f: usize, c: usize, k: usize, s: usize, p: usize) -> ConvSpec {
        ConvSpec {
            out_channels: f,
            in_channels: c,
            kernel: (k, k),
            stride: (s, s),
            padding: (p, p),
        }
    }

    #[test]
    fn matches_direct_loops_across_geometries_and_layouts() {
        let cases = [
            (spec(4, 3, 3, 1, 1), Shape::new(2, 3, 7, 6)),
            (spec(5, 2, 3, 2, 0), Shape::new(3, 2, 9, 8)),
            (spec(8, 3, 7, 2, 0), Shape::new(2, 3, 20, 19)),
            (spec(6, 4, 1, 1, 0), Shape::new(2, 4, 5, 5)),
            (spec(3, 2, 1, 2, 0), Shape::new(1, 2, 6, 7)),
            (spec(7, 3, 3, 1, 1), Shape::new(2, 3, 1, 1)),
            (spec(4, 2, 3, 2, 0), Shape::new(2, 2, 4, 4)),
            (spec(3, 2, 5, 1, 2), Shape::new(1, 2, 3, 4)),
            // Blocks of 32 filters: the direct kernel, with tiles of 1 to 8 pixels.
            (spec(32, 3, 7, 2, 0), Shape::new(2, 3, 21, 20)),
            (spec(64, 5, 3, 1, 1), Shape::new(3, 5, 3, 3)),
            (spec(32, 4, 3, 2, 0), Shape::new(1, 4, 9, 7)),
            (spec(64, 6, 1, 1, 0), Shape::new(2, 6, 5, 5)),
            (spec(32, 3, 3, 1, 1), Shape::new(2, 3, 1, 1)),
            (
                ConvSpec {
                    out_channels: 3,
                    in_channels: 2,
                    kernel: (3, 2),
                    stride: (1, 3),
                    padding: (2, 1),
                },
                Shape::new(2, 2, 5, 8),
            ),
        ];
        for (i, (spec, shape)) in cases.into_iter().enumerate() {
            for layout in [Layout::Nchw, Layout::Cnhw] {
                for act in [Activation::Identity, Activation::Relu] {
                    check(spec, shape, layout, act, i as u64 + 1);
                }
            }
        }
    }

    #[test]
    fn large_layers_take_every_parallel_path() {
        // Many columns: column split with several blocks per thread.
        check(
            spec(32, 16, 3, 1, 1),
            Shape::new(3, 16, 35, 35),
            Layout::Cnhw,
            Activation::Relu,
            7,
        );
        check(
            spec(32, 16, 3, 1, 1),
            Shape::new(3, 16, 35, 35),
            Layout::Nchw,
            Activation::Relu,
            8,
        );
        // Few columns, many filters: filter split.
        check(
            spec(200, 64, 3, 1, 1),
            Shape::new(2, 64, 3, 3),
            Layout::Cnhw,
            Activation::Identity,
            9,
        );
        check(
            spec(200, 64, 3, 1, 1),
            Shape::new(2, 64, 3, 3),
            Layout::Nchw,
            Activation::Identity,
            10,
        );
        check(
            spec(200, 256, 1, 1, 0),
            Shape::new(3, 256, 2, 2),
            Layout::Nchw,
            Activation::Relu,
            11,
        );
        check(
            spec(200, 256, 1, 1, 0),
            Shape::new(3, 256, 2, 2),
            Layout::Cnhw,
            Activation::Relu,
            12,
        );
        // Strided, 3 input channels, the face ResNet's first layer on a small image.
        check(
            spec(32, 3, 7, 2, 0),
            Shape::new(2, 3, 60, 60),
            Layout::Cnhw,
            Activation::Relu,
            13,
        );
    }

    #[test]
    fn folding_an_affine_matches_applying_it_after() {
        let mut rng = Lcg(3);
        let sp = spec(4, 2, 3, 1, 1);
        let mut conv = Conv2d::new(sp, rng.vec(4 * 18), rng.vec(4)).unwrap();
        let input = Tensor::from_vec(Shape::new(1, 2, 5, 5), Layout::Nchw, rng.vec(50)).unwrap();
        let (gamma, beta) = (rng.vec(4), rng.vec(4));
        let mut plain = Tensor::default();
        let mut scratch = ConvScratch::default();
        conv.forward(&input, &mut plain, Activation::Identity, &mut scratch)
            .unwrap();
        let mut columns = conv.clone().into_columns();
        conv.fold_affine(&gamma, &beta).unwrap();
        columns.fold_affine(&gamma, &beta).unwrap();
        for conv in [&conv, &columns] {
            let mut folded = Tensor::default();
            conv.forward(&input, &mut folded, Activation::Identity, &mut scratch)
                .unwrap();
            for (i, (a, b)) in plain.data().iter().zip(folded.data()).enumerate() {
                let c = i / 25;
                assert!((gamma[c] * a + beta[c] - b).abs() < 1e-5);
            }
        }
        assert!(conv.fold_affine(&gamma[..3], &beta).is_err());
    }

    #[test]
    fn bad_shapes_are_errors() {
        let sp = spec(2, 3, 3, 1, 0);
        assert!(Conv2d::new(sp, vec![0.0; 53], vec![0.0; 2]).is_err());
        assert!(Conv2d::new(sp, vec![0.0; 54], vec![0.0; 3]).is_err());
        let conv = Conv2d::new(sp, vec![0.0; 54], vec![0.0; 2]).unwrap();
        let mut out = Tensor::default();
        let mut scratch = ConvScratch::default();
        let wrong_c = Tensor::zeros(Shape::new(1, 2, 5, 5), Layout::Nchw);
        assert!(conv
            .forward(&wrong_c, &mut out, Activation::Identity, &mut scratch)
            .is_err());
        let too_small = Tensor::zeros(Shape::new(1, 3, 2, 5), Layout::Nchw);
        assert!(conv
            .forward(&too_small, &mut out, Activation::Identity, &mut scratch)
            .is_err());
    }
}

#[cfg(test)]
mod bench {
    use super::tests::Lcg;
    use super::*;
    use std::time::Instant;

    /// The fastest of `reps` runs, in ms (the machine may be shared).
    fn min_time(reps: usize, mut f: impl FnMut()) -> f64 {
        f();
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .fold(f64::INFINITY, f64::min)
    }

    /// Each face ResNet layer shape, with the filters stored either way, on one thread and on
    /// two: `cargo test --release -p visage-nn -- --ignored --nocapture conv_layers`.
    #[test]
    #[ignore]
    fn conv_layers() {
        let pools = [1, 2].map(|n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
        });
        let layers = [
            (3, 32, 7, 2, 0, 150),
            (32, 32, 3, 1, 1, 35),
            (32, 64, 3, 2, 0, 35),
            (64, 64, 3, 1, 1, 17),
            (128, 128, 3, 1, 1, 8),
            (128, 256, 3, 2, 0, 8),
            (256, 256, 3, 1, 1, 4),
        ];
        for batch in [1usize, 16] {
            for &(c, f, k, s, p, hw) in &layers {
                let spec = ConvSpec {
                    out_channels: f,
                    in_channels: c,
                    kernel: (k, k),
                    stride: (s, s),
                    padding: (p, p),
                };
                let mut rng = Lcg(1);
                let conv = Conv2d::new(spec, rng.vec(f * spec.taps()), rng.vec(f)).unwrap();
                let columns = conv.clone().into_columns();
                let rows = conv.clone().into_rows();
                let shape = Shape::new(batch, c, hw, hw);
                let input = Tensor::from_vec(shape, Layout::Cnhw, rng.vec(shape.len())).unwrap();
                let out_shape = spec.output_shape(shape).unwrap();
                let gflop =
                    2.0 * (f * spec.taps() * out_shape.n * out_shape.plane_len()) as f64 / 1e9;
                let reps = ((0.05 / gflop) as usize).clamp(5, 2000);
                let mut out = Tensor::default();
                let mut scratch = ConvScratch::default();
                let mut line = format!("batch {batch:2} {c:3}->{f:3} {k}x{k}/{s} on {hw:3}:");
                for (name, conv) in [("[F][K]", &rows), ("[K][F]", &columns), ("default", &conv)] {
                    let [one, two] = [&pools[0], &pools[1]].map(|pool| {
                        pool.install(|| {
                            min_time(reps, || {
                                conv.forward(&input, &mut out, Activation::Relu, &mut scratch)
                                    .unwrap()
                            })
                        })
                    });
                    line += &format!(" {name} {one:6.3}/{two:6.3} ms");
                }
                println!("{line} (1/2 threads)");
            }
        }
    }
}
