//! Pooling over each plane: max, average, and the global average.
//!
//! Windows follow dlib: window (oy, ox) covers input rows `oy * stride_y - pad_y ..` and columns
//! `ox * stride_x - pad_x ..`, clipped to the input, so padding never contributes a value (an
//! average divides by the number of pixels inside the input).

use rayon::prelude::*;

use crate::tensor::{Shape, Tensor};
use crate::NnError;

/// Planes with at least this many output values in total are pooled on several threads.
const PARALLEL_MIN_OUTPUTS: usize = 1 << 15;

/// A pooling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSpec {
    /// Window size as (rows, columns), in pixels.
    pub window: (usize, usize),
    /// Step between windows as (y, x), in input pixels.
    pub stride: (usize, usize),
    /// Padding as (rows above and below, columns left and right), in pixels; must be smaller
    /// than the window so that every window overlaps the input.
    pub padding: (usize, usize),
}

impl PoolSpec {
    /// The output shape for an input shape, or why the input does not fit.
    pub fn output_shape(&self, input: Shape) -> Result<Shape, NnError> {
        let (kh, kw) = self.window;
        let (sy, sx) = self.stride;
        let (py, px) = self.padding;
        if kh == 0 || kw == 0 || sy == 0 || sx == 0 || py >= kh || px >= kw {
            return Err(NnError::shape("pool", format!("invalid window {self:?}")));
        }
        if input.h + 2 * py < kh || input.w + 2 * px < kw {
            return Err(NnError::shape(
                "pool",
                format!(
                    "a {kh}x{kw} window does not fit a {}x{} input",
                    input.h, input.w
                ),
            ));
        }
        Ok(Shape::new(
            input.n,
            input.c,
            1 + (input.h + 2 * py - kh) / sy,
            1 + (input.w + 2 * px - kw) / sx,
        ))
    }
}

/// The kind of reduction over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reduce {
    Max,
    Mean,
}

/// The maximum over each window. `output` is reshaped, and keeps the input's layout.
pub fn max_pool2d(input: &Tensor, output: &mut Tensor, spec: PoolSpec) -> Result<(), NnError> {
    pool2d(input, output, spec, Reduce::Max)
}

/// The mean over the part of each window inside the input. `output` is reshaped, and keeps the
/// input's layout.
pub fn avg_pool2d(input: &Tensor, output: &mut Tensor, spec: PoolSpec) -> Result<(), NnError> {
    pool2d(input, output, spec, Reduce::Mean)
}

/// The mean of each plane: an `n x c x 1 x 1` output in the input's layout.
pub fn global_avg_pool(input: &Tensor, output: &mut Tensor) {
    let s = input.shape();
    output.reset(Shape::new(s.n, s.c, 1, 1), input.layout());
    let plane = s.plane_len();
    if plane == 0 {
        output.data_mut().fill(0.0);
        return;
    }
    let scale = plane as f32;
    // Planes are in the same memory order in input and output, whatever the layout.
    for (o, p) in output
        .data_mut()
        .iter_mut()
        .zip(input.data().chunks_exact(plane))
    {
        *o = p.iter().sum::<f32>() / scale;
    }
}

fn pool2d(
    input: &Tensor,
    output: &mut Tensor,
    spec: PoolSpec,
    reduce: Reduce,
) -> Result<(), NnError> {
    let in_shape = input.shape();
    let out_shape = spec.output_shape(in_shape)?;
    output.reset(out_shape, input.layout());
    if out_shape.is_empty() {
        return Ok(());
    }
    let (in_plane, out_plane) = (in_shape.plane_len(), out_shape.plane_len());
    let work = |columns: &mut Vec<f32>, (src, dst): (&[f32], &mut [f32])| {
        pool_plane(src, dst, columns, in_shape, out_shape, spec, reduce)
    };
    // Planes are in the same memory order in input and output, whatever the layout.
    let pairs = input
        .data()
        .par_chunks_exact(in_plane)
        .zip(output.data_mut().par_chunks_exact_mut(out_plane));
    if out_shape.len() >= PARALLEL_MIN_OUTPUTS {
        pairs.for_each_init(Vec::new, work);
    } else {
        let mut columns = Vec::new();
        input
            .data()
            .chunks_exact(in_plane)
            .zip(output.data_mut().chunks_exact_mut(out_plane))
            .for_each(|pair| work(&mut columns, pair));
    }
    Ok(())
}

/// Pools one plane, with AVX2 where the CPU has it (the crate is built for baseline x86-64,
/// whose 4-wide SSE2 leaves these loops twice as slow).
fn pool_plane(
    src: &[f32],
    dst: &mut [f32],
    columns: &mut Vec<f32>,
    input: Shape,
    output: Shape,
    spec: PoolSpec,
    reduce: Reduce,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { pool_plane_avx2(src, dst, columns, input, output, spec, reduce) };
    }
    pool_plane_generic(src, dst, columns, input, output, spec, reduce)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn pool_plane_avx2(
    src: &[f32],
    dst: &mut [f32],
    columns: &mut Vec<f32>,
    input: Shape,
    output: Shape,
    spec: PoolSpec,
    reduce: Reduce,
) {
    pool_plane_generic(src, dst, columns, input, output, spec, reduce)
}

/// Pools one plane separably: each output row first reduces its window's input rows column by
/// column (a loop the compiler vectorises), then each window's span of that row.
#[inline(always)]
fn pool_plane_generic(
    src: &[f32],
    dst: &mut [f32],
    columns: &mut Vec<f32>,
    input: Shape,
    output: Shape,
    spec: PoolSpec,
    reduce: Reduce,
) {
    let (kh, kw) = spec.window;
    let (sy, sx) = spec.stride;
    let (py, px) = spec.padding;
    let w = input.w;
    columns.resize(w, 0.0);
    for (oy, out_row) in dst.chunks_exact_mut(output.w).enumerate() {
        let y0 = (oy * sy).saturating_sub(py);
        let y1 = (oy * sy + kh - py).min(input.h);
        columns.copy_from_slice(&src[y0 * w..(y0 + 1) * w]);
        for y in y0 + 1..y1 {
            let row = &src[y * w..(y + 1) * w];
            match reduce {
                Reduce::Max => columns
                    .iter_mut()
                    .zip(row)
                    .for_each(|(c, v)| *c = larger(*c, *v)),
                Reduce::Mean => columns.iter_mut().zip(row).for_each(|(c, v)| *c += v),
            }
        }
        // Windows wholly inside the row (all of them without padding) take a fast path with no
        // clipping: one pass over the outputs per window column.
        let inner_lo = px.div_ceil(sx).min(output.w);
        let inner_hi = if w + px >= kw {
            ((w + px - kw) / sx + 1).clamp(inner_lo, output.w)
        } else {
            inner_lo
        };
        let inner = &mut out_row[inner_lo..inner_hi];
        let first = inner_lo * sx - px;
        for (i, o) in inner.iter_mut().enumerate() {
            *o = columns[first + i * sx];
        }
        for kx in 1..kw {
            let shifted = &columns[first + kx..];
            match reduce {
                Reduce::Max => inner
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, o)| *o = larger(*o, shifted[i * sx])),
                Reduce::Mean => inner
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, o)| *o += shifted[i * sx]),
            }
        }
        if reduce == Reduce::Mean {
            // A division, not a multiplication by the reciprocal, to round as dlib's mean does.
            let count = ((y1 - y0) * kw) as f32;
            inner.iter_mut().for_each(|o| *o /= count);
        }
        let edges = (0..inner_lo).chain(inner_hi..output.w);
        for ox in edges {
            let x0 = (ox * sx).saturating_sub(px);
            let x1 = (ox * sx + kw - px).min(w);
            let span = &columns[x0..x1];
            out_row[ox] = match reduce {
                Reduce::Max => span[1..].iter().fold(span[0], |m, v| larger(m, *v)),
                Reduce::Mean => span.iter().sum::<f32>() / ((y1 - y0) * (x1 - x0)) as f32,
            };
        }
    }
}

/// The larger of two values. Unlike `f32::max` it does not special-case NaN, which lets it
/// compile to a single instruction (activations are never NaN).
#[inline(always)]
fn larger(a: f32, b: f32) -> f32 {
    if b > a {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::conv2d::tests::Lcg;
    use crate::tensor::Layout;

    /// The definition: every window position, checked against the bounds one pixel at a time.
    fn reference(input: &Tensor, spec: PoolSpec, max: bool) -> Tensor {
        let s = input.shape();
        let o = spec.output_shape(s).unwrap();
        let mut out = Tensor::zeros(o, Layout::Nchw);
        let mut vals = Vec::new();
        for n in 0..s.n {
            for c in 0..s.c {
                for oy in 0..o.h {
                    for ox in 0..o.w {
                        let mut inside = Vec::new();
                        for ky in 0..spec.window.0 {
                            for kx in 0..spec.window.1 {
                                let y =
                                    (oy * spec.stride.0 + ky) as isize - spec.padding.0 as isize;
                                let x =
                                    (ox * spec.stride.1 + kx) as isize - spec.padding.1 as isize;
                                if y >= 0 && x >= 0 && y < s.h as isize && x < s.w as isize {
                                    inside.push(input.at(n, c, y as usize, x as usize) as f64);
                                }
                            }
                        }
                        vals.push(if max {
                            inside.iter().copied().fold(f64::NEG_INFINITY, f64::max) as f32
                        } else {
                            (inside.iter().sum::<f64>() / inside.len() as f64) as f32
                        });
                    }
                }
            }
        }
        out.data_mut().copy_from_slice(&vals);
        out
    }

    #[test]
    fn pools_match_direct_loops() {
        let specs = [
            PoolSpec {
                window: (3, 3),
                stride: (2, 2),
                padding: (0, 0),
            },
            PoolSpec {
                window: (2, 2),
                stride: (2, 2),
                padding: (0, 0),
            },
            PoolSpec {
                window: (3, 3),
                stride: (1, 1),
                padding: (1, 1),
            },
            PoolSpec {
                window: (3, 2),
                stride: (2, 1),
                padding: (2, 1),
            },
        ];
        let mut rng = Lcg(5);
        for shape in [
            Shape::new(2, 3, 9, 8),
            Shape::new(1, 2, 4, 4),
            Shape::new(4, 16, 40, 40),
        ] {
            let base = Tensor::from_vec(shape, Layout::Nchw, rng.vec(shape.len())).unwrap();
            for layout in [Layout::Nchw, Layout::Cnhw] {
                let input = base.to_layout(layout);
                for spec in specs {
                    let mut out = Tensor::default();
                    max_pool2d(&input, &mut out, spec).unwrap();
                    assert_eq!(
                        out.to_layout(Layout::Nchw),
                        reference(&base, spec, true),
                        "{spec:?}"
                    );
                    avg_pool2d(&input, &mut out, spec).unwrap();
                    let expect = reference(&base, spec, false);
                    for (a, b) in out.to_layout(Layout::Nchw).data().iter().zip(expect.data()) {
                        assert!((a - b).abs() < 1e-6, "{spec:?}: {a} vs {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn global_average_is_the_plane_mean() {
        let shape = Shape::new(2, 3, 2, 2);
        let data: Vec<f32> = (0..shape.len()).map(|v| v as f32).collect();
        let input = Tensor::from_vec(shape, Layout::Nchw, data).unwrap();
        for layout in [Layout::Nchw, Layout::Cnhw] {
            let mut out = Tensor::default();
            global_avg_pool(&input.to_layout(layout), &mut out);
            assert_eq!(out.shape(), Shape::new(2, 3, 1, 1));
            assert_eq!(
                out.to_layout(Layout::Nchw).data(),
                &[1.5, 5.5, 9.5, 13.5, 17.5, 21.5]
            );
        }
    }

    #[test]
    fn windows_that_do_not_fit_are_errors() {
        let input = Tensor::zeros(Shape::new(1, 1, 2, 2), Layout::Nchw);
        let mut out = Tensor::default();
        let spec = PoolSpec {
            window: (3, 3),
            stride: (1, 1),
            padding: (0, 0),
        };
        assert!(max_pool2d(&input, &mut out, spec).is_err());
        let bad_pad = PoolSpec {
            window: (2, 2),
            stride: (1, 1),
            padding: (2, 0),
        };
        assert!(avg_pool2d(&input, &mut out, bad_pad).is_err());
    }
}
