//! Max and average pooling in 1, 2 and 3 dimensions, with their gradients.
//!
//! Layouts as for convolution: `[N, C, L]`, `[N, C, H, W]`, `[N, C, D, H, W]`. Padding never wins
//! a max, and averages divide by the number of real (unpadded) inputs in each window.

use rayon::prelude::*;

use super::array::Array;
use crate::{Float, NnError};

/// The geometry of a pooling window; spatial values are `[depth, height, width]` with the unused
/// leading axes at 1 (kernel and stride) and 0 (padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolNd {
    /// Number of spatial dimensions (1, 2 or 3).
    pub dims: usize,
    /// Window size per axis, in samples.
    pub kernel: [usize; 3],
    /// Step between windows per axis, in samples.
    pub stride: [usize; 3],
    /// Padding before and after per axis, in samples.
    pub padding: [usize; 3],
}

fn lift<const D: usize>(v: [usize; D], fill: usize) -> [usize; 3] {
    let mut out = [fill; 3];
    out[3 - D..].copy_from_slice(&v);
    out
}

impl PoolNd {
    /// A window of `kernel` with stride equal to the kernel (non-overlapping) and no padding.
    pub fn new<const D: usize>(kernel: [usize; D]) -> Self {
        assert!((1..=3).contains(&D), "1, 2 or 3 spatial dimensions");
        Self {
            dims: D,
            kernel: lift(kernel, 1),
            stride: lift(kernel, 1),
            padding: [0; 3],
        }
    }

    /// Sets the stride per spatial axis.
    pub fn with_stride<const D: usize>(mut self, stride: [usize; D]) -> Self {
        self.stride = lift(stride, 1);
        self
    }

    /// Sets the padding per spatial axis.
    pub fn with_padding<const D: usize>(mut self, padding: [usize; D]) -> Self {
        self.padding = lift(padding, 0);
        self
    }

    /// The output dimensions for input dimensions `[N, C, spatial...]`.
    pub fn output_dims(&self, input: &[usize]) -> Result<Vec<usize>, NnError> {
        if input.len() != self.dims + 2 {
            return Err(NnError::shape(
                "pool",
                format!("input {input:?} is not [N, C, {}-D]", self.dims),
            ));
        }
        let mut out = input[..2].to_vec();
        for (a, &len) in input[2..].iter().enumerate() {
            let ax = a + 3 - self.dims;
            let (k, s, p) = (self.kernel[ax], self.stride[ax], self.padding[ax]);
            if k == 0 || s == 0 || p >= k || len + 2 * p < k {
                return Err(NnError::shape(
                    "pool",
                    format!("axis of {len} with window {k}, stride {s}, padding {p}"),
                ));
            }
            out.push((len + 2 * p - k) / s + 1);
        }
        Ok(out)
    }

    fn spatial(&self, dims: &[usize]) -> [usize; 3] {
        let mut s = [1; 3];
        s[3 - self.dims..].copy_from_slice(&dims[2..]);
        s
    }

    /// Calls `f(output index, input indices of its window)` for one plane.
    fn windows(&self, is: [usize; 3], os: [usize; 3], mut f: impl FnMut(usize, &[usize])) {
        let mut idx = Vec::with_capacity(self.kernel.iter().product());
        let mut o = 0;
        let range = |ax: usize, out: usize, len: usize| {
            let start = (out * self.stride[ax]) as isize - self.padding[ax] as isize;
            let end = (start + self.kernel[ax] as isize).min(len as isize);
            start.max(0) as usize..end.max(0) as usize
        };
        for z in 0..os[0] {
            for y in 0..os[1] {
                for x in 0..os[2] {
                    idx.clear();
                    for zi in range(0, z, is[0]) {
                        for yi in range(1, y, is[1]) {
                            for xi in range(2, x, is[2]) {
                                idx.push((zi * is[1] + yi) * is[2] + xi);
                            }
                        }
                    }
                    f(o, &idx);
                    o += 1;
                }
            }
        }
    }
}

/// Max pooling; also returns, for each output, the flat index of the input that won (what
/// [`max_pool_backward`] needs).
pub fn max_pool<T: Float>(p: &PoolNd, input: &Array<T>) -> Result<(Array<T>, Vec<usize>), NnError> {
    let od = p.output_dims(input.dims())?;
    let (is, os) = (p.spatial(input.dims()), p.spatial(&od));
    let (il, ol) = (is.iter().product::<usize>(), os.iter().product::<usize>());
    let mut out = Array::zeros(&od);
    let mut arg = vec![0usize; out.len()];
    if out.is_empty() {
        return Ok((out, arg));
    }
    out.data_mut()
        .par_chunks_mut(ol)
        .zip(arg.par_chunks_mut(ol))
        .zip(input.data().par_chunks(il))
        .enumerate()
        .for_each(|(plane, ((o, a), x))| {
            p.windows(is, os, |i, win| {
                let mut best = win[0];
                for &j in &win[1..] {
                    if x[j] > x[best] {
                        best = j;
                    }
                }
                o[i] = x[best];
                a[i] = plane * il + best;
            });
        });
    Ok((out, arg))
}

/// Gradient of max pooling with respect to its input (`input_dims`), from the winners'
/// indices returned by [`max_pool`].
pub fn max_pool_backward<T: Float>(
    input_dims: &[usize],
    argmax: &[usize],
    grad_out: &Array<T>,
) -> Result<Array<T>, NnError> {
    if argmax.len() != grad_out.len() {
        return Err(NnError::shape(
            "max pool backward",
            "one winner per output gradient",
        ));
    }
    let mut dx = Array::zeros(input_dims);
    for (&i, &g) in argmax.iter().zip(grad_out.data()) {
        match dx.data_mut().get_mut(i) {
            Some(v) => *v += g,
            None => {
                return Err(NnError::shape(
                    "max pool backward",
                    "winner outside the input",
                ))
            }
        }
    }
    Ok(dx)
}

/// Average pooling.
pub fn avg_pool<T: Float>(p: &PoolNd, input: &Array<T>) -> Result<Array<T>, NnError> {
    let od = p.output_dims(input.dims())?;
    let (is, os) = (p.spatial(input.dims()), p.spatial(&od));
    let (il, ol) = (is.iter().product::<usize>(), os.iter().product::<usize>());
    let mut out = Array::zeros(&od);
    if out.is_empty() {
        return Ok(out);
    }
    out.data_mut()
        .par_chunks_mut(ol)
        .zip(input.data().par_chunks(il))
        .for_each(|(o, x)| {
            p.windows(is, os, |i, win| {
                o[i] = win.iter().map(|&j| x[j]).sum::<T>() / T::from_usize(win.len());
            });
        });
    Ok(out)
}

/// Gradient of average pooling with respect to its input (`input_dims`).
pub fn avg_pool_backward<T: Float>(
    p: &PoolNd,
    input_dims: &[usize],
    grad_out: &Array<T>,
) -> Result<Array<T>, NnError> {
    let od = p.output_dims(input_dims)?;
    if grad_out.dims() != od.as_slice() {
        return Err(NnError::shape(
            "avg pool backward",
            format!("gradient {:?}, expected {od:?}", grad_out.dims()),
        ));
    }
    let (is, os) = (p.spatial(input_dims), p.spatial(&od));
    let (il, ol) = (is.iter().product::<usize>(), os.iter().product::<usize>());
    let mut dx = Array::zeros(input_dims);
    if dx.is_empty() {
        return Ok(dx);
    }
    dx.data_mut()
        .par_chunks_mut(il)
        .zip(grad_out.data().par_chunks(ol))
        .for_each(|(d, g)| {
            p.windows(is, os, |i, win| {
                let share = g[i] / T::from_usize(win.len());
                win.iter().for_each(|&j| d[j] += share);
            });
        });
    Ok(dx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grad::check::max_gradient_error;
    use visage_rng::SplitMix64;

    fn cases() -> Vec<(PoolNd, Vec<usize>)> {
        vec![
            (PoolNd::new([2]), vec![2, 3, 14]),
            (
                PoolNd::new([3]).with_stride([2]).with_padding([1]),
                vec![1, 2, 11],
            ),
            (PoolNd::new([2, 2]), vec![2, 2, 14, 14]),
            (
                PoolNd::new([3, 2]).with_stride([2, 1]).with_padding([1, 1]),
                vec![1, 2, 7, 6],
            ),
            (PoolNd::new([2, 2, 2]), vec![1, 2, 6, 6, 4]),
            (
                PoolNd::new([3, 3, 3])
                    .with_stride([2, 2, 2])
                    .with_padding([1, 1, 1]),
                vec![1, 1, 5, 6, 5],
            ),
        ]
    }

    /// Direct loops: the max or mean over each window's in-range inputs.
    fn reference(p: &PoolNd, x: &Array<f64>, max: bool) -> Vec<f64> {
        let od = p.output_dims(x.dims()).unwrap();
        let (is, os) = (p.spatial(x.dims()), p.spatial(&od));
        let il: usize = is.iter().product();
        let mut out = vec![];
        for plane in 0..od[0] * od[1] {
            for z in 0..os[0] {
                for y in 0..os[1] {
                    for xo in 0..os[2] {
                        let mut vals = vec![];
                        for a in 0..p.kernel[0] {
                            for b in 0..p.kernel[1] {
                                for c in 0..p.kernel[2] {
                                    let zi = (z * p.stride[0] + a) as isize - p.padding[0] as isize;
                                    let yi = (y * p.stride[1] + b) as isize - p.padding[1] as isize;
                                    let xi =
                                        (xo * p.stride[2] + c) as isize - p.padding[2] as isize;
                                    if zi >= 0
                                        && yi >= 0
                                        && xi >= 0
                                        && (zi as usize) < is[0]
                                        && (yi as usize) < is[1]
                                        && (xi as usize) < is[2]
                                    {
                                        vals.push(
                                            x.data()[plane * il
                                                + ((zi as usize * is[1]) + yi as usize) * is[2]
                                                + xi as usize],
                                        );
                                    }
                                }
                            }
                        }
                        out.push(if max {
                            vals.iter().cloned().fold(f64::MIN, f64::max)
                        } else {
                            vals.iter().sum::<f64>() / vals.len() as f64
                        });
                    }
                }
            }
        }
        out
    }

    #[test]
    fn forward_matches_reference() {
        for (p, dims) in cases() {
            let x = Array::from_vec(&dims, SplitMix64::new(1).vec(dims.iter().product())).unwrap();
            let (m, _) = max_pool(&p, &x).unwrap();
            assert_eq!(m.data(), reference(&p, &x, true).as_slice(), "{p:?}");
            let a = avg_pool(&p, &x).unwrap();
            for (g, w) in a.data().iter().zip(reference(&p, &x, false)) {
                assert!((g - w).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn lecture_pool_shapes() {
        let x = Array::<f32>::zeros(&[1, 4, 10, 10, 10]);
        assert_eq!(
            max_pool(&PoolNd::new([2, 2, 2]), &x).unwrap().0.dims(),
            &[1, 4, 5, 5, 5]
        );
        let x = Array::<f32>::zeros(&[1, 4, 10]);
        assert_eq!(avg_pool(&PoolNd::new([2]), &x).unwrap().dims(), &[1, 4, 5]);
    }

    #[test]
    fn gradients_match_finite_differences() {
        for (p, dims) in cases() {
            let x = Array::from_vec(&dims, SplitMix64::new(2).vec(dims.iter().product())).unwrap();
            let od = p.output_dims(&dims).unwrap();
            let r = Array::from_vec(&od, SplitMix64::new(3).vec(od.iter().product())).unwrap();
            let dot =
                |y: &Array<f64>| -> f64 { y.data().iter().zip(r.data()).map(|(a, b)| a * b).sum() };
            let (_, arg) = max_pool(&p, &x).unwrap();
            let dmax = max_pool_backward(&dims, &arg, &r).unwrap();
            // Random inputs have no ties, so the max is differentiable at x.
            let e = max_gradient_error(
                |v| {
                    dot(&max_pool(&p, &Array::from_vec(&dims, v.to_vec()).unwrap())
                        .unwrap()
                        .0)
                },
                x.data(),
                dmax.data(),
                1e-6,
            );
            assert!(e < 1e-7, "max {p:?}: {e}");
            let davg = avg_pool_backward(&p, &dims, &r).unwrap();
            let e = max_gradient_error(
                |v| dot(&avg_pool(&p, &Array::from_vec(&dims, v.to_vec()).unwrap()).unwrap()),
                x.data(),
                davg.data(),
                1e-6,
            );
            assert!(e < 1e-7, "avg {p:?}: {e}");
        }
    }
}
