//! The Gram matrix of feature maps (style representation in neural style transfer).

use super::array::Array;
use super::gemm::{matmul, View};
use crate::{Float, NnError};

/// Gram matrices of `[N, C, spatial...]` features: `G[n] = F Fᵀ / (C * P)` with `F` the `[C, P]`
/// feature matrix of sample `n` (`P` positions). Returns `[N, C, C]`.
///
/// Dividing by `C * P` keeps style losses comparable between layers of different sizes.
pub fn gram<T: Float>(features: &Array<T>) -> Result<Array<T>, NnError> {
    let (n, c, p) = split(features.dims())?;
    let mut out = Array::zeros(&[n, c, c]);
    let scale = T::ONE / T::from_usize((c * p).max(1));
    for (g, f) in out
        .data_mut()
        .chunks_mut(c * c)
        .zip(features.data().chunks(c * p))
    {
        let fv = View::new(f, c, p);
        matmul(g, fv, fv.t(), false, true);
        g.iter_mut().for_each(|v| *v *= scale);
    }
    Ok(out)
}

/// Gradient of [`gram`] with respect to the features: `dF = (dG + dGᵀ) F / (C * P)`.
pub fn gram_backward<T: Float>(
    features: &Array<T>,
    grad_gram: &Array<T>,
) -> Result<Array<T>, NnError> {
    let (n, c, p) = split(features.dims())?;
    if grad_gram.dims() != [n, c, c] {
        return Err(NnError::shape(
            "gram backward",
            format!("gradient {:?}, expected [{n}, {c}, {c}]", grad_gram.dims()),
        ));
    }
    let mut dx = Array::zeros(features.dims());
    let scale = T::ONE / T::from_usize((c * p).max(1));
    let mut sym = vec![T::ZERO; c * c];
    for ((d, f), g) in dx
        .data_mut()
        .chunks_mut(c * p)
        .zip(features.data().chunks(c * p))
        .zip(grad_gram.data().chunks(c * c))
    {
        for i in 0..c {
            for j in 0..c {
                sym[i * c + j] = (g[i * c + j] + g[j * c + i]) * scale;
            }
        }
        matmul(d, View::new(&sym, c, c), View::new(f, c, p), false, true);
    }
    Ok(dx)
}

fn split(dims: &[usize]) -> Result<(usize, usize, usize), NnError> {
    if dims.len() < 3 {
        return Err(NnError::shape(
            "gram",
            format!("features {dims:?} are not [N, C, spatial...]"),
        ));
    }
    Ok((dims[0], dims[1], dims[2..].iter().product()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grad::check::max_gradient_error;
    use visage_rng::SplitMix64;

    #[test]
    fn matches_direct_sums() {
        let dims = [2, 3, 4, 5];
        let x = Array::from_vec(&dims, SplitMix64::new(1).vec(120)).unwrap();
        let g = gram(&x).unwrap();
        for n in 0..2 {
            for i in 0..3 {
                for j in 0..3 {
                    let s: f64 = (0..20)
                        .map(|k| x.data()[(n * 3 + i) * 20 + k] * x.data()[(n * 3 + j) * 20 + k])
                        .sum();
                    assert!((g.data()[(n * 3 + i) * 3 + j] - s / 60.0).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let dims = [2, 3, 4, 5];
        let x = Array::from_vec(&dims, SplitMix64::new(1).vec(120)).unwrap();
        let r = Array::from_vec(&[2, 3, 3], SplitMix64::new(2).vec(18)).unwrap();
        let d = gram_backward(&x, &r).unwrap();
        let e = max_gradient_error(
            |v| {
                let g = gram(&Array::from_vec(&dims, v.to_vec()).unwrap()).unwrap();
                g.data().iter().zip(r.data()).map(|(a, b)| a * b).sum()
            },
            x.data(),
            d.data(),
            1e-5,
        );
        assert!(e < 1e-8, "{e}");
    }
}
