//! Least-squares similarity transforms (rotation, uniform scale, translation) between two point
//! sets, by Umeyama's method in f64, as dlib's `find_similarity_transform` computes them. Both
//! the shape predictor (between its mean shape and the current shape, in normalised box units)
//! and the face alignment (from the chip template to the image, in pixels) use it.

/// A 2x2 matrix, row-major: `m[row][col]`.
pub(crate) type Mat2 = [[f64; 2]; 2];

/// An affine map `p ↦ m·p + t` (here always a similarity: `m` = scale × rotation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Similarity {
    /// The linear part.
    pub m: Mat2,
    /// The translation, in the units of the target points.
    pub t: [f64; 2],
}

impl Similarity {
    /// Maps a point: the matrix product first, then the translation, in dlib's order of
    /// operations so results agree to the last bit where dlib's own inputs do.
    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        [
            (self.m[0][0] * p[0] + self.m[0][1] * p[1]) + self.t[0],
            (self.m[1][0] * p[0] + self.m[1][1] * p[1]) + self.t[1],
        ]
    }
}

fn mul(a: &Mat2, b: &Mat2) -> Mat2 {
    let mut out = [[0.0; 2]; 2];
    for (r, row) in out.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = a[r][0] * b[0][c] + a[r][1] * b[1][c];
        }
    }
    out
}

fn transpose(a: &Mat2) -> Mat2 {
    [[a[0][0], a[1][0]], [a[0][1], a[1][1]]]
}

fn det(a: &Mat2) -> f64 {
    a[0][0] * a[1][1] - a[0][1] * a[1][0]
}

/// Singular value decomposition of a 2x2 matrix: `a = u · diag(d) · vᵀ` with `u`, `v`
/// orthogonal and `d[0] ≥ d[1] ≥ 0`.
///
/// Closed form: any 2x2 matrix is `rot(φ) · diag(sx, sy) · rot(θ)`, where the angles and
/// signed singular values come from its symmetric and antisymmetric parts. A negative `sy` is
/// made positive by flipping `u`'s second column, so `det(u)·det(v)` carries the sign of
/// `det(a)` exactly as an iterative SVD would report it.
pub(crate) fn svd2(a: &Mat2) -> (Mat2, [f64; 2], Mat2) {
    let e = (a[0][0] + a[1][1]) / 2.0;
    let f = (a[0][0] - a[1][1]) / 2.0;
    let g = (a[1][0] + a[0][1]) / 2.0;
    let h = (a[1][0] - a[0][1]) / 2.0;
    let q = e.hypot(h);
    let r = f.hypot(g);
    let (sx, sy) = (q + r, q - r);
    let a1 = g.atan2(f);
    let a2 = h.atan2(e);
    let theta = (a2 - a1) / 2.0;
    let phi = (a2 + a1) / 2.0;
    let (sp, cp) = phi.sin_cos();
    let (st, ct) = theta.sin_cos();
    // a = rot(φ)·diag(sx, sy)·rot(θ), so v = rot(θ)ᵀ.
    let flip = if sy < 0.0 { -1.0 } else { 1.0 };
    let u = [[cp, -sp * flip], [sp, cp * flip]];
    let v = [[ct, st], [-st, ct]];
    (u, [sx, sy.abs()], v)
}

/// The similarity transform `T` minimising `Σ |T(from[i]) − to[i]|²` (Umeyama 1991, eqs.
/// 34–43), computed as dlib does: means, variance of `from`, covariance, SVD, reflection
/// guard. Returns `None` when the slices differ in length or hold fewer than 2 points.
pub(crate) fn find_similarity(from: &[[f64; 2]], to: &[[f64; 2]]) -> Option<Similarity> {
    if from.len() != to.len() || from.len() < 2 {
        return None;
    }
    let n = from.len() as f64;
    let mut mean_from = [0.0; 2];
    let mut mean_to = [0.0; 2];
    for (f, t) in from.iter().zip(to) {
        mean_from = [mean_from[0] + f[0], mean_from[1] + f[1]];
        mean_to = [mean_to[0] + t[0], mean_to[1] + t[1]];
    }
    let mean_from = mean_from.map(|v| v / n);
    let mean_to = mean_to.map(|v| v / n);

    let mut sigma_from = 0.0;
    let mut cov = [[0.0; 2]; 2];
    for (f, t) in from.iter().zip(to) {
        let df = [f[0] - mean_from[0], f[1] - mean_from[1]];
        let dt = [t[0] - mean_to[0], t[1] - mean_to[1]];
        sigma_from += df[0] * df[0] + df[1] * df[1];
        for (r, row) in cov.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v += dt[r] * df[c];
            }
        }
    }
    sigma_from /= n;
    for v in cov.iter_mut().flatten() {
        *v /= n;
    }

    let (u, d, v) = svd2(&cov);
    let mut s = [[1.0, 0.0], [0.0, 1.0]];
    let det_cov = det(&cov);
    // A reflection fits better than any rotation: flip the smaller singular direction so the
    // result stays a proper rotation.
    if det_cov < 0.0 || (det_cov == 0.0 && det(&u) * det(&v) < 0.0) {
        if d[1] < d[0] {
            s[1][1] = -1.0;
        } else {
            s[0][0] = -1.0;
        }
    }
    let r = mul(&mul(&u, &s), &transpose(&v));
    let c = if sigma_from != 0.0 {
        1.0 / sigma_from * (d[0] * s[0][0] + d[1] * s[1][1])
    } else {
        1.0
    };
    let m = [[c * r[0][0], c * r[0][1]], [c * r[1][0], c * r[1][1]]];
    let t = [
        mean_to[0] - (m[0][0] * mean_from[0] + m[0][1] * mean_from[1]),
        mean_to[1] - (m[1][0] * mean_from[0] + m[1][1] * mean_from[1]),
    ];
    Some(Similarity { m, t })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn svd_reconstructs_and_orders() {
        let cases: [Mat2; 6] = [
            [[3.0, 1.0], [-2.0, 0.5]],
            [[1.0, 2.0], [3.0, 4.0]],
            [[0.0, 0.0], [0.0, 0.0]],
            [[2.0, 0.0], [0.0, -5.0]],
            [[1e-9, 7.0], [0.0, 1e-9]],
            [[-1.0, 0.0], [0.0, -1.0]],
        ];
        for a in cases {
            let (u, d, v) = svd2(&a);
            assert!(d[0] >= d[1] && d[1] >= 0.0, "{a:?}: {d:?}");
            let back = mul(&mul(&u, &[[d[0], 0.0], [0.0, d[1]]]), &transpose(&v));
            for (x, y) in back.iter().flatten().zip(a.iter().flatten()) {
                assert!(close(*x, *y), "{a:?} -> {back:?}");
            }
            for q in [u, v] {
                let i = mul(&q, &transpose(&q));
                assert!(close(i[0][0], 1.0) && close(i[1][1], 1.0) && i[0][1].abs() < 1e-12);
            }
        }
    }

    #[test]
    fn recovers_an_exact_similarity() {
        let (s, a) = (2.5f64, 0.3f64);
        let truth = Similarity {
            m: [[s * a.cos(), -s * a.sin()], [s * a.sin(), s * a.cos()]],
            t: [10.0, -4.0],
        };
        let from = [[0.0, 0.0], [1.0, 0.0], [0.3, 2.0], [-1.0, 0.7], [5.0, 5.0]];
        let to: Vec<[f64; 2]> = from.iter().map(|&p| truth.apply(p)).collect();
        let got = find_similarity(&from, &to).unwrap();
        let flat = |s: &Similarity| [s.m[0][0], s.m[0][1], s.m[1][0], s.m[1][1], s.t[0], s.t[1]];
        for (x, y) in flat(&got).into_iter().zip(flat(&truth)) {
            assert!(close(x, y), "{got:?}");
        }
    }

    #[test]
    fn mirrored_points_still_give_a_rotation() {
        let from = [[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]];
        let to = [[0.0, 0.0], [-1.0, 0.0], [0.0, 2.0]];
        let got = find_similarity(&from, &to).unwrap();
        assert!(det(&got.m) >= 0.0, "{got:?}");
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        assert!(find_similarity(&[[1.0, 1.0]], &[[2.0, 2.0]]).is_none());
        assert!(find_similarity(&[[1.0, 1.0], [2.0, 2.0]], &[[2.0, 2.0]]).is_none());
        let same = find_similarity(&[[1.0, 1.0], [1.0, 1.0]], &[[3.0, 4.0], [3.0, 4.0]]).unwrap();
        assert_eq!(same.apply([1.0, 1.0]), [3.0, 4.0]);
    }
}
