//! Direct convolution with AVX-512: no im2col matrix, no GEMM packing.
//!
//! Each output tile is 32 filters by up to [`MAX_TILE`] output pixels of the batch, held in
//! 2·P vector registers (16 filters each). For every filter tap `k` = (channel, ky, kx), two
//! vectors of weights are loaded and each pixel's input value is broadcast into a
//! multiply-add with both. The input is read in place from a zero-padded copy, so every tap of
//! every pixel is one scalar load at `pixel offset + tap offset`; any stride and kernel size
//! works the same way, and small planes (3x3 deep in a network) waste nothing, where the im2col
//! + GEMM path either copies nine times the input or computes padding columns.
//!
//! Filters are repacked once, at load time, into `[F / 32][K][32]` so that the weights of a tap
//! are two adjacent vectors and a filter block's taps stream through the cache in order.

use rayon::prelude::*;

use super::{Activation, ConvSpec, SyncPtr};
use crate::tensor::{plane_offset, Layout, Shape, Tensor};

/// Filters per tile: two AVX-512 vectors.
pub(super) const BLOCK: usize = 32;
/// Most output pixels per tile: 2·8 accumulators, two weight vectors and the 8 broadcasts
/// (the compiler loads them all before the multiply-adds) fill 26 of the 32 vector registers.
/// With 12 pixels the registers spill and the kernel runs at half speed.
const MAX_TILE: usize = 8;

/// A filter bank repacked for the direct kernel.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DirectFilters {
    /// `[F / 32][K][32]`.
    packed: Vec<f32>,
}

impl DirectFilters {
    /// Repacks `out_channels` filters of `taps` weights each (`weight(f, t)`), or `None` when
    /// this machine has no AVX-512 or the filters do not come in blocks of 32.
    pub(super) fn new(spec: &ConvSpec, weight: impl Fn(usize, usize) -> f32) -> Option<Self> {
        if !available() || !spec.out_channels.is_multiple_of(BLOCK) {
            return None;
        }
        let k = spec.taps();
        let mut packed = vec![0f32; spec.out_channels * k];
        for (b, block) in packed.chunks_exact_mut(k * BLOCK).enumerate() {
            for (t, tap) in block.chunks_exact_mut(BLOCK).enumerate() {
                for (i, w) in tap.iter_mut().enumerate() {
                    *w = weight(b * BLOCK + i, t);
                }
            }
        }
        Some(Self { packed })
    }

    /// Multiplies filter `f`'s weights by `gamma[f]` (see `Conv2d::fold_affine`).
    pub(super) fn scale(&mut self, gamma: &[f32]) {
        let k = self.packed.len() / gamma.len();
        for (block, g) in self
            .packed
            .chunks_exact_mut(k * BLOCK)
            .zip(gamma.chunks_exact(BLOCK))
        {
            for tap in block.chunks_exact_mut(BLOCK) {
                tap.iter_mut().zip(g).for_each(|(w, g)| *w *= g);
            }
        }
    }

    /// Filter `f`'s tap `t`, for `taps` taps per filter.
    pub(super) fn weight(&self, f: usize, t: usize, taps: usize) -> f32 {
        self.packed[(f / BLOCK * taps + t) * BLOCK + f % BLOCK]
    }
}

/// Whether the direct kernel can run on this machine.
pub(super) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Convolves `input` into `output` (already shaped `out_shape`, same layout), adding `bias` and
/// applying `activation`. `padded` is scratch for the zero-padded input.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward(
    spec: &ConvSpec,
    filters: &DirectFilters,
    bias: &[f32],
    input: &Tensor,
    output: &mut Tensor,
    activation: Activation,
    padded: &mut Vec<f32>,
    threads: usize,
) {
    let inp = input.shape();
    let out = output.shape();
    let layout = input.layout();
    let (py, px) = spec.padding;
    let (hp, wp) = (inp.h + 2 * py, inp.w + 2 * px);
    let sample_len = inp.c * hp * wp;
    let (kh, kw) = spec.kernel;
    let (sy, sx) = spec.stride;

    // The padded input, sample-major: `[N][C][hp][wp]`. Only the borders need zeroing, but
    // writing whole planes keeps this a single streaming pass.
    padded.clear();
    padded.resize(inp.n * sample_len, 0.0);
    let src = input.data();
    let pad_sample = |(n, dst): (usize, &mut [f32])| {
        for c in 0..inp.c {
            let plane = &src[plane_offset(inp, layout, n, c)..][..inp.h * inp.w];
            let dst_plane = &mut dst[c * hp * wp..][..hp * wp];
            for (y, row) in plane.chunks_exact(inp.w).enumerate() {
                dst_plane[(y + py) * wp + px..][..inp.w].copy_from_slice(row);
            }
        }
    };
    if threads > 1 {
        padded
            .par_chunks_exact_mut(sample_len)
            .enumerate()
            .for_each(pad_sample);
    } else {
        padded
            .chunks_exact_mut(sample_len)
            .enumerate()
            .for_each(pad_sample);
    }

    // Where tap k = (c, ky, kx) reads, relative to its output pixel's window origin.
    let tap_offsets: Vec<usize> = (0..inp.c)
        .flat_map(|c| (0..kh).flat_map(move |ky| (0..kw).map(move |kx| (c, ky, kx))))
        .map(|(c, ky, kx)| c * hp * wp + ky * wp + kx)
        .collect();

    // Tiles: the batch's output pixels, sample after sample, cut into runs of MAX_TILE (a tile
    // may span two samples, so that small planes still fill whole tiles).
    let geometry = Geometry {
        out,
        layout,
        sample_len,
        wp,
        stride: (sy, sx),
    };
    let total = out.n * out.h * out.w;
    let tiles = total.div_ceil(MAX_TILE);
    let blocks = spec.out_channels / BLOCK;
    // Work items (filter block, run of tiles), block-major so that a thread's consecutive items
    // share a block of filters in its cache; enough runs that the threads stay busy.
    let runs = (4 * threads).div_ceil(blocks).clamp(1, tiles);
    let run_tiles = tiles.div_ceil(runs);
    let runs = tiles.div_ceil(run_tiles);
    let dst = SyncPtr(output.data_mut().as_mut_ptr());
    let padded: &[f32] = padded;
    let k = spec.taps();
    let work = |item: usize| {
        let (b, run) = (item / runs, item % runs);
        let weights = &filters.packed[b * k * BLOCK..][..k * BLOCK];
        let bias = &bias[b * BLOCK..][..BLOCK];
        let last = ((run + 1) * run_tiles * MAX_TILE).min(total);
        let mut start = run * run_tiles * MAX_TILE;
        while start < last {
            let len = MAX_TILE.min(last - start);
            geometry.tile(
                weights,
                &tap_offsets,
                padded,
                (bias, activation),
                (b * BLOCK, start, len),
                dst,
            );
            start += len;
        }
    };
    if threads > 1 {
        (0..blocks * runs).into_par_iter().for_each(work);
    } else {
        (0..blocks * runs).for_each(work);
    }
}

/// Where output pixels read their input and write their output.
struct Geometry {
    out: Shape,
    layout: Layout,
    /// Values per padded input sample.
    sample_len: usize,
    /// Padded input row length, values.
    wp: usize,
    stride: (usize, usize),
}

impl Geometry {
    /// Computes batch pixels `start..start + len` (sample-major) for filters `f0..f0 + 32`, adds
    /// the bias, applies the activation and writes them.
    fn tile(
        &self,
        weights: &[f32],
        tap_offsets: &[usize],
        padded: &[f32],
        (bias, activation): (&[f32], Activation),
        (f0, start, len): (usize, usize, usize),
        dst: SyncPtr,
    ) {
        let plane = self.out.h * self.out.w;
        let mut origins = [0usize; MAX_TILE];
        let mut outputs = [0usize; MAX_TILE];
        // One division for the tile, then step pixel by pixel.
        let (mut n, mut p) = (start / plane, start % plane);
        let (mut oy, mut ox) = (p / self.out.w, p % self.out.w);
        for (origin, output) in origins.iter_mut().zip(&mut outputs).take(len) {
            *origin = n * self.sample_len + oy * self.stride.0 * self.wp + ox * self.stride.1;
            *output = plane_offset(self.out, self.layout, n, f0) + p;
            p += 1;
            ox += 1;
            if ox == self.out.w {
                (ox, oy) = (0, oy + 1);
                if oy == self.out.h {
                    (oy, p, n) = (0, 0, n + 1);
                }
            }
        }
        // The furthest read, the last tap of the tile's last pixel, is inside the padded input;
        // the kernel relies on it.
        let furthest = origins[len - 1] + tap_offsets.last().copied().unwrap_or(0);
        assert!(furthest < padded.len() && weights.len() == tap_offsets.len() * BLOCK);
        let relu = activation == Activation::Relu;
        let mut acc = [0f32; MAX_TILE * BLOCK];
        // SAFETY: `available()` was checked when the filters were packed; every read is inside
        // `padded` and `weights` (checked above), and `acc` holds MAX_TILE rows of BLOCK.
        unsafe {
            macro_rules! dispatch {
                ($($p:literal)*) => {
                    match len {
                        $($p => kernel::<$p>(weights, tap_offsets, padded, &origins, (bias, relu), &mut acc),)*
                        _ => unreachable!("tiles hold 1 to {MAX_TILE} pixels"),
                    }
                };
            }
            dispatch!(1 2 3 4 5 6 7 8);
        }
        // Filter f of a pixel lies `f * filter_stride` past its filter f0.
        let filter_stride = plane_offset(self.out, self.layout, 0, 1);
        for f in 0..BLOCK {
            for (i, &o) in outputs[..len].iter().enumerate() {
                // SAFETY: output (sample, filter f0 + f, pixel) is inside the output tensor, and
                // this tile alone writes it.
                unsafe { *dst.get().add(o + f * filter_stride) = acc[i * BLOCK + f] };
            }
        }
    }
}

/// The tile kernel for `P` pixels:
/// `acc[p][f] = act(bias[f] + Σ_k weights[k][f] · sample[origins[p] + taps[k]])`, where `act` is
/// a ReLU when `relu` is set.
///
/// # Safety
/// AVX-512F must be available; `origins[p] + taps[k]` must be inside `sample` for every p < P and
/// every k; `weights` must hold `taps.len() * 32` values and `bias` 32.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel<const P: usize>(
    weights: &[f32],
    taps: &[usize],
    sample: &[f32],
    origins: &[usize; MAX_TILE],
    (bias, relu): (&[f32], bool),
    acc: &mut [f32; MAX_TILE * BLOCK],
) {
    use std::arch::x86_64::*;
    let mut lo = [_mm512_setzero_ps(); P];
    let mut hi = [_mm512_setzero_ps(); P];
    let mut bases = [sample.as_ptr(); P];
    for (b, o) in bases.iter_mut().zip(origins) {
        *b = b.add(*o);
    }
    let mut w = weights.as_ptr();
    for &t in taps {
        let w_lo = _mm512_loadu_ps(w);
        let w_hi = _mm512_loadu_ps(w.add(16));
        w = w.add(BLOCK);
        for p in 0..P {
            let x = _mm512_set1_ps(*bases[p].add(t));
            lo[p] = _mm512_fmadd_ps(x, w_lo, lo[p]);
            hi[p] = _mm512_fmadd_ps(x, w_hi, hi[p]);
        }
    }
    let b_lo = _mm512_loadu_ps(bias.as_ptr());
    let b_hi = _mm512_loadu_ps(bias.as_ptr().add(16));
    let floor = _mm512_set1_ps(if relu { 0.0 } else { f32::NEG_INFINITY });
    for p in 0..P {
        let lo = _mm512_max_ps(_mm512_add_ps(lo[p], b_lo), floor);
        let hi = _mm512_max_ps(_mm512_add_ps(hi[p], b_hi), floor);
        _mm512_storeu_ps(acc.as_mut_ptr().add(p * BLOCK), lo);
        _mm512_storeu_ps(acc.as_mut_ptr().add(p * BLOCK + 16), hi);
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn kernel<const P: usize>(
    _: &[f32],
    _: &[usize],
    _: &[f32],
    _: &[usize; MAX_TILE],
    _: (&[f32], bool),
    _: &mut [f32; MAX_TILE * BLOCK],
) {
    unreachable!("the direct kernel is only chosen where AVX-512 exists")
}
