//! A small singular value decomposition for the detector's filters (10x10 in practice), by
//! one-sided Jacobi rotations in f64.
//!
//! dlib splits each filter into separable rank-one parts through an SVD; only the singular
//! values and the products `u·√σ`, `v·√σ` rounded to f32 matter. One-sided Jacobi gives
//! singular triplets with a relative accuracy near machine precision, far below the f32
//! rounding that follows, and needs no external linear-algebra crate.

/// The singular triplets of a matrix, sorted by decreasing singular value.
#[derive(Debug, Clone)]
pub(crate) struct Svd {
    /// Singular values, decreasing.
    pub sigma: Vec<f64>,
    /// Left singular vectors: `u[j]` has one entry per matrix row.
    pub u: Vec<Vec<f64>>,
    /// Right singular vectors: `v[j]` has one entry per matrix column.
    pub v: Vec<Vec<f64>>,
}

/// Decomposes the `rows × cols` row-major matrix `a` as `Σ_j σ_j u_j v_jᵀ`.
///
/// Left vectors of zero singular values are left as zero vectors: callers drop those
/// components anyway.
pub(crate) fn svd(a: &[f64], rows: usize, cols: usize) -> Svd {
    debug_assert_eq!(a.len(), rows * cols);
    // Work on columns: w[j] is column j of A·V, driven towards mutual orthogonality.
    let mut w: Vec<Vec<f64>> = (0..cols)
        .map(|j| (0..rows).map(|i| a[i * cols + j]).collect())
        .collect();
    let mut v: Vec<Vec<f64>> = (0..cols)
        .map(|j| (0..cols).map(|i| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();

    let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>();
    for _sweep in 0..60 {
        let mut rotated = false;
        for p in 0..cols {
            for q in p + 1..cols {
                let alpha = dot(&w[p], &w[p]);
                let beta = dot(&w[q], &w[q]);
                let gamma = dot(&w[p], &w[q]);
                if gamma == 0.0 || gamma.abs() <= f64::EPSILON * (alpha * beta).sqrt() {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                for m in [&mut w, &mut v] {
                    let (lo, hi) = m.split_at_mut(q);
                    for (x, y) in lo[p].iter_mut().zip(hi[0].iter_mut()) {
                        let (xp, xq) = (*x, *y);
                        *x = c * xp - s * xq;
                        *y = s * xp + c * xq;
                    }
                }
            }
        }
        if !rotated {
            break;
        }
    }

    let mut order: Vec<usize> = (0..cols).collect();
    let norms: Vec<f64> = w.iter().map(|col| dot(col, col).sqrt()).collect();
    order.sort_by(|&i, &j| norms[j].total_cmp(&norms[i]));
    let mut out = Svd {
        sigma: Vec::with_capacity(cols),
        u: Vec::with_capacity(cols),
        v: Vec::with_capacity(cols),
    };
    for j in order {
        let sigma = norms[j];
        let u = if sigma > 0.0 {
            w[j].iter().map(|x| x / sigma).collect()
        } else {
            vec![0.0; rows]
        };
        out.sigma.push(sigma);
        out.u.push(u);
        out.v.push(v[j].clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reconstruct(s: &Svd, rows: usize, cols: usize) -> Vec<f64> {
        let mut a = vec![0.0; rows * cols];
        for j in 0..s.sigma.len() {
            for r in 0..rows {
                for c in 0..cols {
                    a[r * cols + c] += s.sigma[j] * s.u[j][r] * s.v[j][c];
                }
            }
        }
        a
    }

    #[test]
    fn reconstructs_and_orders() {
        // A deterministic pseudo-random 10x10 matrix.
        let mut x = 12345u64;
        let a: Vec<f64> = (0..100)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 11) as f64 / (1u64 << 53) as f64) - 0.5
            })
            .collect();
        let s = svd(&a, 10, 10);
        assert!(s.sigma.windows(2).all(|w| w[0] >= w[1]));
        let back = reconstruct(&s, 10, 10);
        for (p, q) in a.iter().zip(&back) {
            assert!((p - q).abs() < 1e-13, "{p} vs {q}");
        }
        for i in 0..10 {
            for j in 0..10 {
                let du: f64 = s.u[i].iter().zip(&s.u[j]).map(|(a, b)| a * b).sum();
                let dv: f64 = s.v[i].iter().zip(&s.v[j]).map(|(a, b)| a * b).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((du - want).abs() < 1e-13 && (dv - want).abs() < 1e-13);
            }
        }
    }

    #[test]
    fn rank_one_matrix() {
        let u = [1.0, 2.0, -1.0];
        let v = [0.5, -3.0];
        let a: Vec<f64> = (0..3)
            .flat_map(|r| (0..2).map(move |c| u[r] * v[c]))
            .collect();
        let s = svd(&a, 3, 2);
        assert!((s.sigma[0] - (6.0f64).sqrt() * (9.25f64).sqrt()).abs() < 1e-12);
        assert!(s.sigma[1].abs() < 1e-12);
    }
}
