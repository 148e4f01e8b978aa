//! Losses, each returning its value and its gradient with respect to the prediction(s).
//!
//! All losses average over the batch (the first dimension) so that learning rates do not depend
//! on the batch size.

use super::array::Array;
use crate::{Float, NnError};

fn same_dims<T: Float>(what: &str, a: &Array<T>, b: &Array<T>) -> Result<(), NnError> {
    if a.dims() != b.dims() {
        return Err(NnError::shape(
            what,
            format!("{:?} vs {:?}", a.dims(), b.dims()),
        ));
    }
    Ok(())
}

/// Mean squared error over all values: `mean((pred - target)²)`.
pub fn mse<T: Float>(pred: &Array<T>, target: &Array<T>) -> Result<(T, Array<T>), NnError> {
    same_dims("mse", pred, target)?;
    let n = T::from_usize(pred.len().max(1));
    let mut grad = Array::zeros(pred.dims());
    let mut total = T::ZERO;
    for ((g, &p), &t) in grad
        .data_mut()
        .iter_mut()
        .zip(pred.data())
        .zip(target.data())
    {
        let d = p - t;
        total += d * d;
        *g = T::from_f64(2.0) * d / n;
    }
    Ok((total / n, grad))
}

/// Binary cross-entropy on logits (sigmoid folded in, numerically stable), averaged over all
/// values; `targets` in [0, 1]. `pos_weight` scales the loss of positive targets (rare events).
pub fn bce_with_logits<T: Float>(
    logits: &Array<T>,
    targets: &Array<T>,
    pos_weight: T,
) -> Result<(T, Array<T>), NnError> {
    same_dims("binary cross-entropy", logits, targets)?;
    let n = T::from_usize(logits.len().max(1));
    let mut grad = Array::zeros(logits.dims());
    let mut total = T::ZERO;
    for ((g, &z), &y) in grad
        .data_mut()
        .iter_mut()
        .zip(logits.data())
        .zip(targets.data())
    {
        // log(1 + e^-|z|) never overflows; the rest is exact algebra.
        let softplus_neg = (T::ONE + (-z.abs()).exp()).ln();
        let log_p = -(softplus_neg + (-z).max(T::ZERO)); // log σ(z)
        let log_1mp = -(softplus_neg + z.max(T::ZERO)); // log(1 - σ(z))
        let w = T::ONE + (pos_weight - T::ONE) * y;
        total -= pos_weight * y * log_p + (T::ONE - y) * log_1mp;
        let p = log_p.exp();
        // d/dz of -(a y log σ + (1-y) log(1-σ)) = (1-y) σ - a y (1-σ) = w σ - a y, with
        // w = 1 + (a - 1) y.
        *g = (w * p - pos_weight * y) / n;
    }
    Ok((total / n, grad))
}

/// Softmax cross-entropy of `[N, K]` logits against class indices, averaged over the batch.
pub fn softmax_cross_entropy<T: Float>(
    logits: &Array<T>,
    labels: &[usize],
) -> Result<(T, Array<T>), NnError> {
    let d = logits.dims();
    if d.len() != 2 || d[0] != labels.len() {
        return Err(NnError::shape(
            "softmax cross-entropy",
            format!("logits {d:?} for {} labels", labels.len()),
        ));
    }
    let (n, k) = (d[0], d[1]);
    let mut grad = Array::zeros(d);
    let mut total = T::ZERO;
    let nn = T::from_usize(n.max(1));
    for ((z, g), &label) in logits
        .data()
        .chunks(k)
        .zip(grad.data_mut().chunks_mut(k))
        .zip(labels)
    {
        if label >= k {
            return Err(NnError::Input(format!("label {label} for {k} classes")));
        }
        let m = z.iter().copied().fold(T::MIN, T::max);
        let sum: T = z.iter().map(|&v| (v - m).exp()).sum();
        let log_sum = sum.ln() + m;
        total += log_sum - z[label];
        for (gi, &zi) in g.iter_mut().zip(z) {
            *gi = (zi - log_sum).exp() / nn;
        }
        g[label] -= T::ONE / nn;
    }
    Ok((total / nn, grad))
}

/// Gradients of [`triplet`] with respect to its three inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct TripletGrads<T> {
    /// With respect to the anchors.
    pub anchor: Array<T>,
    /// With respect to the positives.
    pub positive: Array<T>,
    /// With respect to the negatives.
    pub negative: Array<T>,
}

/// Triplet loss on `[N, D]` embeddings with squared Euclidean distances:
/// `mean(max(0, |a - p|² - |a - n|² + margin))`.
pub fn triplet<T: Float>(
    anchor: &Array<T>,
    positive: &Array<T>,
    negative: &Array<T>,
    margin: T,
) -> Result<(T, TripletGrads<T>), NnError> {
    same_dims("triplet", anchor, positive)?;
    same_dims("triplet", anchor, negative)?;
    let d = anchor.dims();
    if d.len() != 2 {
        return Err(NnError::shape(
            "triplet",
            format!("embeddings {d:?} are not [N, D]"),
        ));
    }
    let (n, dim) = (d[0], d[1]);
    let nn = T::from_usize(n.max(1));
    let mut ga = Array::zeros(d);
    let mut gp = Array::zeros(d);
    let mut gn = Array::zeros(d);
    let mut total = T::ZERO;
    let two = T::from_f64(2.0);
    for i in 0..n {
        let r = i * dim..(i + 1) * dim;
        let (a, p, q) = (
            &anchor.data()[r.clone()],
            &positive.data()[r.clone()],
            &negative.data()[r.clone()],
        );
        let dp: T = a.iter().zip(p).map(|(&x, &y)| (x - y) * (x - y)).sum();
        let dn: T = a.iter().zip(q).map(|(&x, &y)| (x - y) * (x - y)).sum();
        let l = dp - dn + margin;
        if l > T::ZERO {
            total += l;
            for j in 0..dim {
                let (x, y, z) = (a[j], p[j], q[j]);
                ga.data_mut()[i * dim + j] = two * (z - y) / nn;
                gp.data_mut()[i * dim + j] = two * (y - x) / nn;
                gn.data_mut()[i * dim + j] = two * (x - z) / nn;
            }
        }
    }
    Ok((
        total / nn,
        TripletGrads {
            anchor: ga,
            positive: gp,
            negative: gn,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grad::check::max_gradient_error;
    use visage_rng::SplitMix64;

    fn arr(dims: &[usize], seed: u64) -> Array<f64> {
        Array::from_vec(dims, SplitMix64::new(seed).vec(dims.iter().product())).unwrap()
    }

    #[test]
    fn mse_value_and_gradient() {
        let (p, t) = (arr(&[3, 4], 1), arr(&[3, 4], 2));
        let (v, g) = mse(&p, &t).unwrap();
        let want: f64 = p
            .data()
            .iter()
            .zip(t.data())
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            / 12.0;
        assert!((v - want).abs() < 1e-12);
        let e = max_gradient_error(
            |x| {
                mse(&Array::from_vec(&[3, 4], x.to_vec()).unwrap(), &t)
                    .unwrap()
                    .0
            },
            p.data(),
            g.data(),
            1e-6,
        );
        assert!(e < 1e-8, "{e}");
    }

    #[test]
    fn bce_value_and_gradient() {
        let z = arr(&[2, 5], 3);
        let y = Array::from_fn(&[2, 5], |i| if i % 3 == 0 { 1.0 } else { 0.0 });
        for w in [1.0, 4.0] {
            let (v, g) = bce_with_logits(&z, &y, w).unwrap();
            let want: f64 = z
                .data()
                .iter()
                .zip(y.data())
                .map(|(&z, &y)| {
                    let p = 1.0 / (1.0 + (-z).exp());
                    -(w * y * p.ln() + (1.0 - y) * (1.0 - p).ln())
                })
                .sum::<f64>()
                / 10.0;
            assert!((v - want).abs() < 1e-12);
            let e = max_gradient_error(
                |x| {
                    bce_with_logits(&Array::from_vec(&[2, 5], x.to_vec()).unwrap(), &y, w)
                        .unwrap()
                        .0
                },
                z.data(),
                g.data(),
                1e-6,
            );
            assert!(e < 1e-8, "{e}");
        }
        // Huge logits stay finite.
        let big = Array::from_vec(&[1, 2], vec![1e4f32, -1e4]).unwrap();
        let t = Array::from_vec(&[1, 2], vec![0.0f32, 1.0]).unwrap();
        assert!(bce_with_logits(&big, &t, 1.0).unwrap().0.is_finite());
    }

    #[test]
    fn softmax_cross_entropy_value_and_gradient() {
        let z = arr(&[3, 4], 5);
        let labels = [0, 3, 2];
        let (v, g) = softmax_cross_entropy(&z, &labels).unwrap();
        let mut want = 0.0;
        for (row, &l) in z.data().chunks(4).zip(&labels) {
            let s: f64 = row.iter().map(|v| v.exp()).sum();
            want -= (row[l].exp() / s).ln();
        }
        assert!((v - want / 3.0).abs() < 1e-12);
        let e = max_gradient_error(
            |x| {
                softmax_cross_entropy(&Array::from_vec(&[3, 4], x.to_vec()).unwrap(), &labels)
                    .unwrap()
                    .0
            },
            z.data(),
            g.data(),
            1e-6,
        );
        assert!(e < 1e-8, "{e}");
        assert!(softmax_cross_entropy(&z, &[0, 4, 1]).is_err());
    }

    #[test]
    fn triplet_value_and_gradients() {
        let (a, p, n) = (arr(&[4, 3], 6), arr(&[4, 3], 7), arr(&[4, 3], 8));
        let margin = 0.5;
        let (v, g) = triplet(&a, &p, &n, margin).unwrap();
        let mut want = 0.0;
        for i in 0..4 {
            let r = i * 3..i * 3 + 3;
            let dp: f64 = a.data()[r.clone()]
                .iter()
                .zip(&p.data()[r.clone()])
                .map(|(x, y)| (x - y).powi(2))
                .sum();
            let dn: f64 = a.data()[r.clone()]
                .iter()
                .zip(&n.data()[r])
                .map(|(x, y)| (x - y).powi(2))
                .sum();
            want += (dp - dn + margin).max(0.0);
        }
        assert!((v - want / 4.0).abs() < 1e-12);
        let f = |a: &[f64], p: &[f64], n: &[f64]| {
            let m = |v: &[f64]| Array::from_vec(&[4, 3], v.to_vec()).unwrap();
            triplet(&m(a), &m(p), &m(n), margin).unwrap().0
        };
        let e1 = max_gradient_error(
            |x| f(x, p.data(), n.data()),
            a.data(),
            g.anchor.data(),
            1e-6,
        );
        let e2 = max_gradient_error(
            |x| f(a.data(), x, n.data()),
            p.data(),
            g.positive.data(),
            1e-6,
        );
        let e3 = max_gradient_error(
            |x| f(a.data(), p.data(), x),
            n.data(),
            g.negative.data(),
            1e-6,
        );
        assert!(e1 < 1e-7 && e2 < 1e-7 && e3 < 1e-7, "{e1} {e2} {e3}");
    }
}
