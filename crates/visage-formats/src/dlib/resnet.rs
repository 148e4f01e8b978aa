//! dlib's face recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`), read into plain
//! data: the input normalisation and the layers in bottom-to-top order, with their parameters.
//!
//! The file is dlib's `serialize(net)` of a `loss_metric<fc_no_bias<...>>` network. It nests: each
//! wrapper writes its version int before its sub-network and its layer body after it, so the file
//! holds the loss layer, then one version int per wrapper from the top down, then the input layer,
//! then the layer bodies from the bottom up (`shared/docs/DLIB_FORMATS.md`, section (b)). The
//! reader walks that structure as the file states it; nothing is found at a fixed offset.

use std::path::Path;

use super::reader::{parse_bytes, parse_file, DlibReader, ReadError, ReadResult};
use crate::FormatError;

/// The name used in error messages.
const FORMAT: &str = "dlib face ResNet";

/// Refuses networks with more wrappers than any sensible model, before they cost memory.
const MAX_WRAPPERS: usize = 100_000;

/// Largest input plane accepted, in pixels per side.
const MAX_INPUT_SIDE: usize = 1 << 16;

/// A convolution (`con_`): cross-correlation with zero padding, plus a per-filter bias.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv {
    /// Number of filters (output channels).
    pub filters: usize,
    /// Number of input channels each filter spans.
    pub channels: usize,
    /// Filter height, in pixels.
    pub kernel_rows: usize,
    /// Filter width, in pixels.
    pub kernel_cols: usize,
    /// Vertical step between output pixels, in input pixels.
    pub stride_y: usize,
    /// Horizontal step between output pixels, in input pixels.
    pub stride_x: usize,
    /// Zero rows added above and below the input.
    pub pad_y: usize,
    /// Zero columns added left and right of the input.
    pub pad_x: usize,
    /// Filter taps, `filters * channels * kernel_rows * kernel_cols` values in (F, C, kh, kw)
    /// row-major order.
    pub weights: Vec<f32>,
    /// One bias per filter (zeros when the file's layer has its bias disabled).
    pub bias: Vec<f32>,
}

/// A pooling window (`max_pool_`, `avg_pool_`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    /// Window height in pixels; 0 means the whole input plane (a global pool).
    pub rows: usize,
    /// Window width in pixels; 0 means the whole input plane (a global pool).
    pub cols: usize,
    /// Vertical step between windows, in input pixels.
    pub stride_y: usize,
    /// Horizontal step between windows, in input pixels.
    pub stride_x: usize,
    /// Rows of padding above and below; padded pixels are not part of any window.
    pub pad_y: usize,
    /// Columns of padding left and right; padded pixels are not part of any window.
    pub pad_x: usize,
}

impl Pool {
    /// True when the window covers the whole input plane (`avg_pool_everything`).
    pub fn is_global(&self) -> bool {
        self.rows == 0 && self.cols == 0
    }
}

/// How an affine layer's gamma and beta are indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AffineMode {
    /// One gamma and beta per channel (dlib's `CONV_MODE`).
    PerChannel,
    /// One gamma and beta per (channel, row, column) element (dlib's `FC_MODE`).
    PerElement,
}

/// One layer of the network, in the order data flows through it.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    /// A 2-D convolution.
    Conv(Conv),
    /// `y = gamma * x + beta`. Batch-norm layers in the file (`bn_con2`, `bn_fc2`) arrive here
    /// already converted with their running statistics.
    Affine {
        /// How gamma and beta are indexed.
        mode: AffineMode,
        /// Scales.
        gamma: Vec<f32>,
        /// Offsets.
        beta: Vec<f32>,
    },
    /// `max(x, 0)`.
    Relu,
    /// Maximum over each window.
    MaxPool(Pool),
    /// Mean over each window (the part inside the input).
    AvgPool(Pool),
    /// Records the current output under `id` (dlib's `tagN`).
    Tag {
        /// The tag number N.
        id: u32,
    },
    /// Replaces the current output with the one recorded by the nearest `Tag` below with
    /// this id (dlib's `skipN`).
    Skip {
        /// The tag number N.
        tag: u32,
    },
    /// Adds the output recorded by the nearest `Tag` below with this id to the current output
    /// (dlib's `add_prevN`). Operands of different shapes are zero-padded to the larger size
    /// in every dimension.
    AddPrev {
        /// The tag number N.
        tag: u32,
    },
    /// A fully connected layer over the flattened (channel, row, column) input:
    /// `out[o] = sum_i in[i] * weights[i * outputs + o] (+ bias[o])`.
    Fc {
        /// Input length.
        inputs: usize,
        /// Output length.
        outputs: usize,
        /// `inputs * outputs` values, row-major (input-major).
        weights: Vec<f32>,
        /// One bias per output, if the layer has them (`fc_no_bias` has none).
        bias: Option<Vec<f32>>,
    },
}

impl Layer {
    /// Number of stored parameters (weights, biases, gammas, betas) this layer holds.
    pub fn param_count(&self) -> usize {
        match self {
            Layer::Conv(c) => c.weights.len() + c.bias.len(),
            Layer::Affine { gamma, beta, .. } => gamma.len() + beta.len(),
            Layer::Fc { weights, bias, .. } => weights.len() + bias.as_ref().map_or(0, Vec::len),
            _ => 0,
        }
    }
}

/// The training-only loss settings stored with the model (`loss_metric_2`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossMetric {
    /// Margin around the distance threshold used in training.
    pub margin: f32,
    /// Distance below which two descriptors count as the same person (0.6 for this model).
    pub distance_threshold: f32,
}

/// The parsed face ResNet: everything needed to run it, nothing about training state.
#[derive(Debug, Clone, PartialEq)]
pub struct ResnetModel {
    /// Per-channel means (R, G, B), in 8-bit pixel units, subtracted before dividing by 256.
    pub input_mean: [f32; 3],
    /// Input size as (rows, columns), in pixels.
    pub input_size: (usize, usize),
    /// The layers from the input up to (and including) the final fully connected layer.
    pub layers: Vec<Layer>,
    /// The loss layer's settings (not used at inference).
    pub loss: LossMetric,
}

impl ResnetModel {
    /// Reads and parses the model file at `path`.
    pub fn from_file(path: &Path) -> Result<Self, FormatError> {
        parse_file(path, FORMAT, parse)
    }

    /// Parses a model from its bytes; `path` only names the source in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, FormatError> {
        parse_bytes(bytes, path, FORMAT, parse)
    }

    /// Total number of stored parameters over all layers.
    pub fn param_count(&self) -> usize {
        self.layers.iter().map(Layer::param_count).sum()
    }

    /// Number of convolution layers.
    pub fn conv_count(&self) -> usize {
        self.layers
            .iter()
            .filter(|l| matches!(l, Layer::Conv(_)))
            .count()
    }

    /// Number of affine layers.
    pub fn affine_count(&self) -> usize {
        self.layers
            .iter()
            .filter(|l| matches!(l, Layer::Affine { .. }))
            .count()
    }

    /// Number of fully connected layers.
    pub fn fc_count(&self) -> usize {
        self.layers
            .iter()
            .filter(|l| matches!(l, Layer::Fc { .. }))
            .count()
    }
}

/// What one wrapper in the descending prefix announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wrapper {
    /// `add_layer` (version 2): a layer body follows later, then a `params_grad` tensor.
    Layer,
    /// `add_tag_layer` or `add_skip_layer` (version 1): writes nothing else.
    Marker,
    /// The `add_layer` directly above the input layer (version 3): its body is followed by
    /// `grad_final` and the sample expansion factor.
    Bottom,
}

/// A layer as the file describes it, before tags and skips are told apart.
enum Parsed {
    Layer(Layer),
    /// A layer that computes nothing at inference (a disabled relu or affine).
    Identity,
    /// A tag or skip wrapper, at this offset.
    Marker(usize),
    /// `add_prev_`, at this offset.
    AddPrev(usize),
}

/// Prefixes a step's errors with what was being read, so messages locate the problem.
fn context<T>(result: ReadResult<T>, what: impl FnOnce() -> String) -> ReadResult<T> {
    result.map_err(|e| ReadError {
        offset: e.offset,
        message: format!("{}: {}", what(), e.message),
    })
}

fn parse(r: &mut DlibReader<'_>) -> ReadResult<ResnetModel> {
    let start = r.position();
    let version = context(r.i32(), || "expected the add_loss_layer version".into())?;
    if version != 1 {
        return Err(r.error_at(
            start,
            format!("expected add_loss_layer version 1, found {version} (not a dlib DNN file?)"),
        ));
    }
    let loss = parse_loss(r)?;

    let wrappers = parse_prefix(r)?;
    let (input_mean, input_size) = parse_input_layer(r)?;

    // The bodies come bottom-up, the reverse of the prefix.
    let mut parsed = Vec::with_capacity(wrappers.len());
    for (index, &(wrapper, offset)) in wrappers.iter().rev().enumerate() {
        let item = match wrapper {
            Wrapper::Marker => Parsed::Marker(offset),
            Wrapper::Layer | Wrapper::Bottom => context(parse_layer(r, wrapper), || {
                format!("layer {index} from the bottom")
            })?,
        };
        parsed.push(item);
    }
    r.expect_end()?;

    let layers = resolve_markers(r, parsed)?;
    if !matches!(layers.last(), Some(Layer::Fc { .. })) {
        return Err(r.error("expected the network to end with an fc layer under the loss layer"));
    }
    Ok(ResnetModel {
        input_mean,
        input_size,
        layers,
        loss,
    })
}

fn parse_loss(r: &mut DlibReader<'_>) -> ReadResult<LossMetric> {
    let start = r.position();
    let name = r.string().map_err(|e| {
        r.error_at(
            start,
            format!(
                "expected the loss layer name \"loss_metric_2\" ({})",
                e.message
            ),
        )
    })?;
    if name != "loss_metric_2" {
        return Err(r.error_at(
            start,
            format!("expected the loss layer \"loss_metric_2\" of a face ResNet, found {name:?}"),
        ));
    }
    let margin = context(r.f32(), || "loss_metric_2 margin".into())?;
    let distance_threshold = context(r.f32(), || "loss_metric_2 distance threshold".into())?;
    Ok(LossMetric {
        margin,
        distance_threshold,
    })
}

/// Reads the descending version ints, one per wrapper, top-down, up to the bottom layer.
fn parse_prefix(r: &mut DlibReader<'_>) -> ReadResult<Vec<(Wrapper, usize)>> {
    let mut wrappers = Vec::new();
    loop {
        let offset = r.position();
        let version = context(r.i32(), || {
            format!(
                "expected the version of wrapper {} from the top",
                wrappers.len()
            )
        })?;
        let wrapper = match version {
            2 => Wrapper::Layer,
            1 => Wrapper::Marker,
            3 => Wrapper::Bottom,
            v => {
                return Err(r.error_at(
                    offset,
                    format!(
                        "expected a layer wrapper version (1 = tag/skip, 2 = layer, 3 = bottom layer), found {v}"
                    ),
                ))
            }
        };
        wrappers.push((wrapper, offset));
        if wrapper == Wrapper::Bottom {
            return Ok(wrappers);
        }
        if wrappers.len() > MAX_WRAPPERS {
            return Err(r.error_at(offset, format!("more than {MAX_WRAPPERS} layer wrappers")));
        }
    }
}

fn parse_input_layer(r: &mut DlibReader<'_>) -> ReadResult<([f32; 3], (usize, usize))> {
    context(r.expect_string(&["input_rgb_image_sized"]), || {
        "input layer".into()
    })?;
    let mut mean = [0f32; 3];
    for (m, channel) in mean.iter_mut().zip(["red", "green", "blue"]) {
        *m = context(r.f32(), || format!("input layer mean {channel}"))?;
        if !m.is_finite() {
            return Err(r.error(format!("input layer mean {channel} is not finite")));
        }
    }
    let rows = context(r.count(MAX_INPUT_SIDE, "input rows"), || {
        "input layer".into()
    })?;
    let cols = context(r.count(MAX_INPUT_SIDE, "input columns"), || {
        "input layer".into()
    })?;
    if rows == 0 || cols == 0 {
        return Err(r.error(format!("input layer size {rows}x{cols} is empty")));
    }
    Ok((mean, (rows, cols)))
}

/// One `add_layer` body: the layer details, then the bookkeeping dlib saves with it.
fn parse_layer(r: &mut DlibReader<'_>, wrapper: Wrapper) -> ReadResult<Parsed> {
    let start = r.position();
    let name = context(r.string(), || "expected a layer name".into())?;
    let item = match name.as_str() {
        "con_4" | "con_5" | "con_6" => parse_conv(r, &name)?,
        "affine_" | "affine_2" => parse_affine(r, &name)?,
        "bn_con2" | "bn_fc2" => parse_batch_norm(r, &name)?,
        "relu_" => Parsed::Layer(Layer::Relu),
        "relu_2" => {
            let disabled = context(r.bool(), || "relu_2 disabled flag".into())?;
            if disabled {
                Parsed::Identity
            } else {
                Parsed::Layer(Layer::Relu)
            }
        }
        "max_pool_2" => Parsed::Layer(Layer::MaxPool(parse_pool(r, &name)?)),
        "avg_pool_2" => Parsed::Layer(Layer::AvgPool(parse_pool(r, &name)?)),
        "add_prev_" => Parsed::AddPrev(start),
        "fc_2" | "fc_3" => parse_fc(r, &name)?,
        other => {
            return Err(r.error_at(
                start,
                format!("unsupported layer {other:?} (expected con_, affine_, bn_con2, relu_, max_pool_2, avg_pool_2, add_prev_ or fc_2)"),
            ))
        }
    };

    let what = || format!("{name} bookkeeping");
    for flag in [
        "setup_called",
        "gradient_input_is_stale",
        "output_and_gradient_disabled",
    ] {
        context(r.bool(), || format!("{} ({flag})", what()))?;
    }
    context(r.tensor(), || format!("{} (x_grad)", what()))?;
    context(r.tensor(), || format!("{} (cached_output)", what()))?;
    match wrapper {
        Wrapper::Bottom => {
            context(r.tensor(), || format!("{} (grad_final)", what()))?;
            context(r.u64(), || format!("{} (sample_expansion_factor)", what()))?;
        }
        _ => {
            context(r.tensor(), || format!("{} (params_grad)", what()))?;
        }
    }
    Ok(item)
}

/// A signed long that must be a positive size no larger than `max`.
fn positive(r: &mut DlibReader<'_>, what: &str, max: usize) -> ReadResult<usize> {
    let start = r.position();
    let v = context(r.i64(), || what.to_string())?;
    if v <= 0 || v as u64 > max as u64 {
        return Err(r.error_at(start, format!("{what} is {v}, expected 1..={max}")));
    }
    Ok(v as usize)
}

/// A signed int that must be in `min..=max`.
fn int_in(r: &mut DlibReader<'_>, what: &str, min: i32, max: i32) -> ReadResult<usize> {
    let start = r.position();
    let v = context(r.i32(), || what.to_string())?;
    if v < min || v > max {
        return Err(r.error_at(start, format!("{what} is {v}, expected {min}..={max}")));
    }
    Ok(v as usize)
}

fn check_finite(r: &DlibReader<'_>, offset: usize, values: &[f32], what: &str) -> ReadResult<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(r.error_at(offset, format!("{what}: parameter {i} is not finite"))),
    }
}

fn parse_conv(r: &mut DlibReader<'_>, name: &str) -> ReadResult<Parsed> {
    let params_at = r.position();
    let (_, params) = context(r.tensor(), || format!("{name} params"))?;
    let filters = positive(r, "con_ num_filters", 1 << 20)?;
    let kernel_rows = positive(r, "con_ filter rows", 1 << 12)?;
    let kernel_cols = positive(r, "con_ filter columns", 1 << 12)?;
    let stride_y = int_in(r, "con_ stride_y", 1, 1 << 12)?;
    let stride_x = int_in(r, "con_ stride_x", 1, 1 << 12)?;
    let pad_y = int_in(r, "con_ padding_y", 0, kernel_rows as i32 - 1)?;
    let pad_x = int_in(r, "con_ padding_x", 0, kernel_cols as i32 - 1)?;
    let filters_at = r.position();
    let filter_dims = context(r.alias_tensor(), || format!("{name} filters alias"))?;
    if filter_dims[0] != filters || filter_dims[2] != kernel_rows || filter_dims[3] != kernel_cols {
        return Err(r.error_at(
            filters_at,
            format!(
                "con_ filters alias has shape {filter_dims:?}, expected [{filters}, C, {kernel_rows}, {kernel_cols}]"
            ),
        ));
    }
    let channels = filter_dims[1];
    if channels == 0 {
        return Err(r.error_at(filters_at, "con_ filters span 0 input channels"));
    }
    let bias_at = r.position();
    let bias_dims = context(r.alias_tensor(), || format!("{name} biases alias"))?;
    for m in [
        "learning rate",
        "weight decay",
        "bias learning rate",
        "bias weight decay",
    ] {
        context(r.f64(), || format!("{name} {m} multiplier"))?;
    }
    let use_bias = if name == "con_5" || name == "con_6" {
        context(r.bool(), || format!("{name} use_bias"))?
    } else {
        true
    };
    let use_relu = if name == "con_6" {
        context(r.bool(), || format!("{name} use_relu"))?
    } else {
        false
    };
    if use_relu {
        // A fused relu would need a second layer; no dlib face model uses it.
        return Err(r.error_at(params_at, format!("{name} with use_relu is not supported")));
    }

    let n_weights = filters * channels * kernel_rows * kernel_cols;
    let n_bias = if use_bias { filters } else { 0 };
    if params.len() != n_weights + n_bias {
        return Err(r.error_at(
            params_at,
            format!(
                "con_ params hold {} values, expected {n_weights} filter taps + {n_bias} biases",
                params.len()
            ),
        ));
    }
    if use_bias && bias_dims.iter().product::<usize>() != filters {
        return Err(r.error_at(
            bias_at,
            format!("con_ biases alias has shape {bias_dims:?}, expected {filters} values"),
        ));
    }
    check_finite(r, params_at, &params, name)?;
    let mut weights = params;
    let bias = if use_bias {
        weights.split_off(n_weights)
    } else {
        vec![0.0; filters]
    };
    Ok(Parsed::Layer(Layer::Conv(Conv {
        filters,
        channels,
        kernel_rows,
        kernel_cols,
        stride_y,
        stride_x,
        pad_y,
        pad_x,
        weights,
        bias,
    })))
}

/// Reads the mode int (0 = per channel, 1 = per element) of an affine layer.
fn affine_mode(r: &mut DlibReader<'_>) -> ReadResult<AffineMode> {
    let start = r.position();
    match context(r.i32(), || "affine_ mode".into())? {
        0 => Ok(AffineMode::PerChannel),
        1 => Ok(AffineMode::PerElement),
        m => Err(r.error_at(
            start,
            format!("affine_ mode is {m}, expected 0 (conv) or 1 (fc)"),
        )),
    }
}

/// Reads a params tensor holding gamma then beta, and the two alias tensors that describe them.
fn gamma_beta(r: &mut DlibReader<'_>, name: &str) -> ReadResult<(Vec<f32>, Vec<f32>)> {
    let params_at = r.position();
    let (_, params) = context(r.tensor(), || format!("{name} params"))?;
    let gamma_dims = context(r.alias_tensor(), || format!("{name} gamma alias"))?;
    let beta_dims = context(r.alias_tensor(), || format!("{name} beta alias"))?;
    let k: usize = gamma_dims.iter().product();
    if k == 0 || beta_dims.iter().product::<usize>() != k || params.len() != 2 * k {
        return Err(r.error_at(
            params_at,
            format!(
                "{name} params hold {} values with gamma {gamma_dims:?} and beta {beta_dims:?}, expected gamma and beta of equal non-zero size",
                params.len()
            ),
        ));
    }
    check_finite(r, params_at, &params, name)?;
    let mut gamma = params;
    let beta = gamma.split_off(k);
    Ok((gamma, beta))
}

fn parse_affine(r: &mut DlibReader<'_>, name: &str) -> ReadResult<Parsed> {
    let (gamma, beta) = gamma_beta(r, name)?;
    let mode = affine_mode(r)?;
    let disabled = if name == "affine_2" {
        context(r.bool(), || "affine_2 disabled flag".into())?
    } else {
        false
    };
    Ok(if disabled {
        Parsed::Identity
    } else {
        Parsed::Layer(Layer::Affine { mode, gamma, beta })
    })
}

/// A training-time batch norm stored where an affine layer is expected: dlib converts it on load
/// with its running statistics, `g = gamma / sqrt(var + eps)`, `b = beta - g * mean`.
fn parse_batch_norm(r: &mut DlibReader<'_>, name: &str) -> ReadResult<Parsed> {
    let (gamma, beta) = gamma_beta(r, name)?;
    let k = gamma.len();
    for what in ["means", "invstds"] {
        context(r.tensor(), || format!("{name} {what}"))?;
    }
    let stats_at = r.position();
    let (_, running_means) = context(r.tensor(), || format!("{name} running_means"))?;
    let (_, running_vars) = context(r.tensor(), || format!("{name} running_variances"))?;
    if running_means.len() != k || running_vars.len() != k {
        return Err(r.error_at(
            stats_at,
            format!(
                "{name} running statistics hold {} means and {} variances, expected {k} each",
                running_means.len(),
                running_vars.len()
            ),
        ));
    }
    context(r.u64(), || format!("{name} num_updates"))?;
    context(r.u64(), || format!("{name} running_stats_window_size"))?;
    for m in [
        "learning rate",
        "weight decay",
        "bias learning rate",
        "bias weight decay",
    ] {
        context(r.f64(), || format!("{name} {m} multiplier"))?;
    }
    let eps_at = r.position();
    let eps = context(r.f64(), || format!("{name} eps"))? as f32;
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(r.error_at(
            eps_at,
            format!("{name} eps is {eps}, expected a finite value >= 0"),
        ));
    }
    let mut g = Vec::with_capacity(k);
    let mut b = Vec::with_capacity(k);
    for i in 0..k {
        let scale = gamma[i] / (running_vars[i] + eps).sqrt();
        g.push(scale);
        b.push(beta[i] - scale * running_means[i]);
    }
    check_finite(r, stats_at, &g, name)?;
    check_finite(r, stats_at, &b, name)?;
    let mode = if name == "bn_con2" {
        AffineMode::PerChannel
    } else {
        AffineMode::PerElement
    };
    Ok(Parsed::Layer(Layer::Affine {
        mode,
        gamma: g,
        beta: b,
    }))
}

fn parse_pool(r: &mut DlibReader<'_>, name: &str) -> ReadResult<Pool> {
    let mut window = [0usize; 2];
    for (w, what) in window.iter_mut().zip(["rows", "columns"]) {
        let start = r.position();
        let v = context(r.i64(), || format!("{name} window {what}"))?;
        if !(0..=1 << 16).contains(&v) {
            return Err(r.error_at(start, format!("{name} window {what} is {v}")));
        }
        *w = v as usize;
    }
    let [rows, cols] = window;
    if (rows == 0) != (cols == 0) {
        return Err(r.error(format!(
            "{name} window {rows}x{cols}: only one side is global"
        )));
    }
    let stride_y = int_in(r, "pool stride_y", 1, 1 << 16)?;
    let stride_x = int_in(r, "pool stride_x", 1, 1 << 16)?;
    let pad_y = int_in(r, "pool padding_y", 0, (rows as i32 - 1).max(0))?;
    let pad_x = int_in(r, "pool padding_x", 0, (cols as i32 - 1).max(0))?;
    Ok(Pool {
        rows,
        cols,
        stride_y,
        stride_x,
        pad_y,
        pad_x,
    })
}

fn parse_fc(r: &mut DlibReader<'_>, name: &str) -> ReadResult<Parsed> {
    let outputs = context(r.count(1 << 24, "fc_ num_outputs"), || name.into())?;
    let inputs = context(r.count(1 << 24, "fc_ num_inputs"), || name.into())?;
    let params_at = r.position();
    let (_, params) = context(r.tensor(), || format!("{name} params"))?;
    context(r.alias_tensor(), || format!("{name} weights alias"))?;
    context(r.alias_tensor(), || format!("{name} biases alias"))?;
    let mode_at = r.position();
    let bias_mode = context(r.i32(), || format!("{name} bias mode"))?;
    let mut has_bias = match bias_mode {
        0 => true,
        1 => false,
        m => {
            return Err(r.error_at(
                mode_at,
                format!("{name} bias mode is {m}, expected 0 (bias) or 1 (no bias)"),
            ))
        }
    };
    for m in [
        "learning rate",
        "weight decay",
        "bias learning rate",
        "bias weight decay",
    ] {
        context(r.f64(), || format!("{name} {m} multiplier"))?;
    }
    if name == "fc_3" {
        has_bias &= context(r.bool(), || "fc_3 use_bias".into())?;
    }
    if inputs == 0 || outputs == 0 {
        return Err(r.error_at(
            params_at,
            format!("{name} is {inputs} -> {outputs}, expected non-empty"),
        ));
    }
    let n_weights = inputs * outputs;
    let n_bias = if has_bias { outputs } else { 0 };
    if params.len() != n_weights + n_bias {
        return Err(r.error_at(
            params_at,
            format!(
                "{name} params hold {} values, expected {inputs}x{outputs} weights + {n_bias} biases",
                params.len()
            ),
        ));
    }
    check_finite(r, params_at, &params, name)?;
    let mut weights = params;
    let bias = has_bias.then(|| weights.split_off(n_weights));
    Ok(Parsed::Layer(Layer::Fc {
        inputs,
        outputs,
        weights,
        bias,
    }))
}

/// Names the tag and skip wrappers and the add_prev layers.
///
/// dlib stores neither which wrappers are tags and which are skips, nor their numbers: both are
/// part of the C++ network type. They follow from the two residual idioms the face ResNet is built
/// from (dlib's `dnn_face_recognition_ex.cpp`), read bottom-up:
/// * `residual`:      tag1, block..., add_prev1
/// * `residual_down`: tag1, block..., tag2, skip1, avg_pool, add_prev2
///
/// So a lone marker is `tag1`, a pair of adjacent markers is `tag2` then `skip1`, and an
/// `add_prev` adds the tag most recently recorded. Any other marker pattern is refused.
fn resolve_markers(r: &DlibReader<'_>, parsed: Vec<Parsed>) -> ReadResult<Vec<Layer>> {
    let mut layers = Vec::with_capacity(parsed.len());
    let mut defined: Vec<u32> = Vec::new();
    let mut last_tag: Option<u32> = None;
    let mut items = parsed.into_iter().peekable();
    while let Some(item) = items.next() {
        match item {
            Parsed::Layer(layer) => layers.push(layer),
            Parsed::Identity => {}
            Parsed::Marker(_) => {
                if let Some(Parsed::Marker(next)) = items.peek() {
                    let next = *next;
                    items.next();
                    if let Some(Parsed::Marker(third)) = items.peek() {
                        return Err(r.error_at(
                            *third,
                            "three tag/skip wrappers in a row: not a dlib face ResNet structure",
                        ));
                    }
                    if !defined.contains(&1) {
                        return Err(r.error_at(next, "skip1 with no tag1 below it"));
                    }
                    layers.push(Layer::Tag { id: 2 });
                    layers.push(Layer::Skip { tag: 1 });
                    defined.push(2);
                    last_tag = Some(2);
                } else {
                    layers.push(Layer::Tag { id: 1 });
                    defined.push(1);
                    last_tag = Some(1);
                }
            }
            Parsed::AddPrev(offset) => match last_tag {
                Some(tag) => layers.push(Layer::AddPrev { tag }),
                None => return Err(r.error_at(offset, "add_prev_ with no tag below it")),
            },
        }
    }
    Ok(layers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn models_dir() -> PathBuf {
        visage_testdata::shared().join("models/dlib")
    }

    fn model_path() -> PathBuf {
        models_dir().join("dlib_face_recognition_resnet_model_v1.dat")
    }

    fn model_bytes() -> Vec<u8> {
        let path = model_path();
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn real_model_parses_with_documented_shape() {
        let model = ResnetModel::from_file(&model_path()).expect("model parses");
        assert_eq!(model.conv_count(), 29);
        assert_eq!(model.affine_count(), 29);
        assert_eq!(model.fc_count(), 1);
        assert_eq!(model.param_count(), 5_614_592);
        assert_eq!(model.input_size, (150, 150));
        let [r, g, b] = model.input_mean;
        assert!((r - 122.782).abs() < 1e-3, "{r}");
        assert!((g - 117.001).abs() < 1e-3, "{g}");
        assert!((b - 104.298).abs() < 1e-3, "{b}");
        assert!((model.loss.distance_threshold - 0.6).abs() < 1e-6);

        // The bottom: con 32 7x7/2, affine, relu, max_pool 3x3/2.
        match &model.layers[0] {
            Layer::Conv(c) => {
                assert_eq!(
                    (c.filters, c.channels, c.kernel_rows, c.kernel_cols),
                    (32, 3, 7, 7)
                );
                assert_eq!((c.stride_y, c.stride_x, c.pad_y, c.pad_x), (2, 2, 0, 0));
            }
            other => panic!("expected a conv at the bottom, found {other:?}"),
        }
        assert!(matches!(
            model.layers[1],
            Layer::Affine {
                mode: AffineMode::PerChannel,
                ..
            }
        ));
        assert_eq!(model.layers[2], Layer::Relu);
        let pool = Pool {
            rows: 3,
            cols: 3,
            stride_y: 2,
            stride_x: 2,
            pad_y: 0,
            pad_x: 0,
        };
        assert_eq!(model.layers[3], Layer::MaxPool(pool));
        assert_eq!(model.layers[4], Layer::Tag { id: 1 });
        // The top: avg_pool_everything, fc_no_bias 128 over 256 inputs.
        let n = model.layers.len();
        assert!(matches!(model.layers[n - 2], Layer::AvgPool(p) if p.is_global()));
        match &model.layers[n - 1] {
            Layer::Fc {
                inputs,
                outputs,
                bias,
                ..
            } => {
                assert_eq!((*inputs, *outputs), (256, 128));
                assert!(bias.is_none());
            }
            other => panic!("expected fc at the top, found {other:?}"),
        }
        // 4 residual_down blocks, each with one tag2/skip1 pair; 10 plain residual blocks.
        let tags2 = model
            .layers
            .iter()
            .filter(|l| **l == Layer::Tag { id: 2 })
            .count();
        let skips = model
            .layers
            .iter()
            .filter(|l| matches!(l, Layer::Skip { .. }))
            .count();
        let adds1 = model
            .layers
            .iter()
            .filter(|l| **l == Layer::AddPrev { tag: 1 })
            .count();
        let adds2 = model
            .layers
            .iter()
            .filter(|l| **l == Layer::AddPrev { tag: 2 })
            .count();
        assert_eq!((tags2, skips, adds1, adds2), (4, 4, 10, 4));
    }

    #[test]
    fn truncated_files_error_cleanly() {
        let bytes = model_bytes();
        let path = Path::new("truncated.dat");
        let n = bytes.len();
        let mut cuts: Vec<usize> =
            vec![0, 1, 2, 3, 5, 10, 20, 40, 60, 100, 150, 200, 300, 500, 1000];
        cuts.extend((1..40).map(|i| n / 40 * i + i * 7));
        cuts.extend([n - 1000, n - 100, n - 20, n - 2, n - 1]);
        for cut in cuts {
            match ResnetModel::from_bytes(&bytes[..cut], path) {
                Ok(_) => panic!("a file cut at {cut} bytes parsed"),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains("truncated.dat"), "{msg}");
                    assert!(msg.contains(FORMAT), "{msg}");
                }
            }
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = model_bytes();
        bytes.push(0);
        let msg = ResnetModel::from_bytes(&bytes, Path::new("m.dat"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("unexpected bytes after the model"), "{msg}");
    }

    #[test]
    fn corrupt_wrapper_version_is_refused() {
        let bytes = model_bytes();
        // The first wrapper version follows the loss layer: find the first `01 02` after it.
        let loss_end = 2 + 1 + "loss_metric_2".len();
        let mut corrupt = bytes.clone();
        let at = (loss_end..loss_end + 40)
            .find(|&i| corrupt[i] == 0x01 && corrupt[i + 1] == 0x02 && corrupt[i + 2] == 0x01)
            .expect("a wrapper version");
        corrupt[at + 1] = 0x07;
        let msg = ResnetModel::from_bytes(&corrupt, Path::new("m.dat"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("wrapper version"), "{msg}");
    }

    #[test]
    fn other_dlib_files_are_refused_clearly() {
        for (file, expect) in [
            ("shape_predictor_5_face_landmarks.dat", "loss_metric_2"),
            ("mmod_human_face_detector.dat", "loss_metric_2"),
            ("frontal_face_detector.svm", "add_loss_layer version 1"),
        ] {
            let path = models_dir().join(file);
            let msg = ResnetModel::from_file(&path).unwrap_err().to_string();
            assert!(msg.contains(file), "{msg}");
            assert!(msg.contains(expect), "{file}: {msg}");
        }
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let err = ResnetModel::from_file(Path::new("/nonexistent/model.dat")).unwrap_err();
        assert!(matches!(err, FormatError::Io { .. }), "{err}");
    }

    /// Writers for the dlib encodings, enough to build small synthetic layer bodies.
    fn int(out: &mut Vec<u8>, v: i64) {
        let mag = v.unsigned_abs();
        let bytes = mag.to_le_bytes();
        let n = (8 - (mag.leading_zeros() / 8) as usize).max(1);
        out.push(n as u8 | if v < 0 { 0x80 } else { 0 });
        out.extend_from_slice(&bytes[..n]);
    }

    fn float(out: &mut Vec<u8>, v: f64) {
        // Exact for the small dyadic values used here.
        let e = -20i64;
        int(out, (v * 2f64.powi(20)) as i64);
        int(out, e);
    }

    fn string(out: &mut Vec<u8>, s: &str) {
        int(out, s.len() as i64);
        out.extend_from_slice(s.as_bytes());
    }

    fn tensor(out: &mut Vec<u8>, dims: [i64; 4], values: &[f32]) {
        int(out, 2);
        for d in dims {
            int(out, d);
        }
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn alias(out: &mut Vec<u8>, dims: [i64; 4]) {
        int(out, 1);
        for d in dims {
            int(out, d);
        }
    }

    #[test]
    fn batch_norm_is_converted_to_affine() {
        let mut body = Vec::new();
        string(&mut body, "bn_con2");
        tensor(&mut body, [4, 1, 1, 1], &[2.0, 0.5, 1.0, -1.0]); // gamma 2, 0.5; beta 1, -1
        alias(&mut body, [1, 2, 1, 1]);
        alias(&mut body, [1, 2, 1, 1]);
        tensor(&mut body, [0, 0, 0, 0], &[]); // means
        tensor(&mut body, [0, 0, 0, 0], &[]); // invstds
        tensor(&mut body, [1, 2, 1, 1], &[3.0, -2.0]); // running means
        tensor(&mut body, [1, 2, 1, 1], &[4.0, 0.25]); // running variances
        int(&mut body, 10);
        int(&mut body, 100);
        for m in [1.0, 1.0, 1.0, 0.0] {
            float(&mut body, m);
        }
        float(&mut body, 0.0); // eps
        let mut r = DlibReader::new(&body);
        let name = r.string().unwrap();
        let parsed = parse_batch_norm(&mut r, &name).unwrap();
        r.expect_end().unwrap();
        match parsed {
            Parsed::Layer(Layer::Affine { mode, gamma, beta }) => {
                assert_eq!(mode, AffineMode::PerChannel);
                // g = gamma / sqrt(var), b = beta - g * mean
                assert_eq!(gamma, vec![1.0, 1.0]);
                assert_eq!(beta, vec![1.0 - 3.0, -1.0 + 2.0]);
            }
            _ => panic!("expected an affine layer"),
        }
    }

    #[test]
    fn unknown_marker_patterns_are_refused() {
        let r = DlibReader::new(&[]);
        let three = vec![Parsed::Marker(0), Parsed::Marker(1), Parsed::Marker(2)];
        assert!(resolve_markers(&r, three).is_err());
        let orphan_add = vec![Parsed::Layer(Layer::Relu), Parsed::AddPrev(5)];
        assert!(resolve_markers(&r, orphan_add).is_err());
        let orphan_skip = vec![Parsed::Marker(0), Parsed::Marker(1)];
        assert!(resolve_markers(&r, orphan_skip).is_err());
    }
}
