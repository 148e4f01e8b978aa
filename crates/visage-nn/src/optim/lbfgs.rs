//! L-BFGS (Nocedal & Wright, algorithm 7.4–7.5) with a backtracking line search.

use std::collections::VecDeque;

use crate::Float;

/// Limited-memory BFGS on a flat parameter vector.
///
/// The search direction comes from the two-loop recursion over the last `history` steps; the
/// step length from backtracking until the Armijo (sufficient decrease) condition holds, starting
/// at 1 (the quasi-Newton step is already scaled). Pairs with non-positive curvature `sᵀy` are
/// skipped so that the implied Hessian stays positive definite.
#[derive(Debug, Clone)]
pub struct Lbfgs {
    /// Number of (step, gradient change) pairs remembered.
    pub history: usize,
    /// Most iterations (line searches).
    pub max_iterations: usize,
    /// Stop when the gradient's largest component is below this.
    pub gradient_tolerance: f64,
    /// Armijo constant: the step must decrease the value by this fraction of the predicted
    /// decrease.
    pub armijo: f64,
}

/// How a minimisation ended.
#[derive(Debug, Clone, PartialEq)]
pub struct LbfgsReport {
    /// The final value.
    pub value: f64,
    /// Iterations run.
    pub iterations: usize,
    /// Function (and gradient) evaluations.
    pub evaluations: usize,
    /// True when the gradient tolerance was met.
    pub converged: bool,
}

impl Default for Lbfgs {
    fn default() -> Self {
        Self {
            history: 10,
            max_iterations: 500,
            gradient_tolerance: 1e-6,
            armijo: 1e-4,
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Lbfgs {
    /// Minimises `f` from `x` (updated in place). `f(x, grad)` returns the value at `x` and
    /// writes the gradient into `grad`.
    pub fn minimize<T: Float>(
        &self,
        x: &mut [T],
        mut f: impl FnMut(&[T], &mut [T]) -> T,
    ) -> LbfgsReport {
        let n = x.len();
        let mut gbuf = vec![T::ZERO; n];
        let mut eval = |x: &[f64], g: &mut Vec<f64>, evals: &mut usize| -> f64 {
            *evals += 1;
            let xt: Vec<T> = x.iter().map(|&v| T::from_f64(v)).collect();
            let v = f(&xt, &mut gbuf).to_f64();
            g.clear();
            g.extend(gbuf.iter().map(|v| v.to_f64()));
            v
        };
        let mut evaluations = 0;
        let mut xs: Vec<f64> = x.iter().map(|v| v.to_f64()).collect();
        let mut g = Vec::with_capacity(n);
        let mut value = eval(&xs, &mut g, &mut evaluations);
        let mut pairs: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::new();
        let mut iterations = 0;
        let mut converged = false;
        let (mut x_new, mut g_new) = (vec![0.0; n], Vec::with_capacity(n));
        while iterations < self.max_iterations {
            if g.iter().all(|v| v.abs() <= self.gradient_tolerance) {
                converged = true;
                break;
            }
            iterations += 1;
            // Two-loop recursion: d = -H g.
            let mut q = g.clone();
            let mut alphas = Vec::with_capacity(pairs.len());
            for (s, y, rho) in pairs.iter().rev() {
                let a = rho * dot(s, &q);
                q.iter_mut().zip(y).for_each(|(q, y)| *q -= a * y);
                alphas.push(a);
            }
            let gamma = match pairs.back() {
                Some((s, y, _)) => dot(s, y) / dot(y, y),
                // No curvature yet: a first step of length about 1 in parameter space.
                None => 1.0 / g.iter().map(|v| v.abs()).fold(0.0, f64::max).max(1e-12),
            };
            q.iter_mut().for_each(|v| *v *= gamma);
            for ((s, y, rho), a) in pairs.iter().zip(alphas.iter().rev()) {
                let b = rho * dot(y, &q);
                q.iter_mut().zip(s).for_each(|(q, s)| *q += (a - b) * s);
            }
            let mut d: Vec<f64> = q.iter().map(|v| -v).collect();
            let mut slope = dot(&g, &d);
            if slope >= 0.0 {
                // Not a descent direction (rounding): fall back to steepest descent.
                pairs.clear();
                d = g.iter().map(|v| -v * gamma.abs().max(1e-12)).collect();
                slope = dot(&g, &d);
            }
            let mut step = 1.0;
            let mut accepted = None;
            for _ in 0..40 {
                x_new
                    .iter_mut()
                    .zip(&xs)
                    .zip(&d)
                    .for_each(|((xn, x), d)| *xn = x + step * d);
                let v = eval(&x_new, &mut g_new, &mut evaluations);
                if v.is_finite() && v <= value + self.armijo * step * slope {
                    accepted = Some(v);
                    break;
                }
                step *= 0.5;
            }
            let Some(v_new) = accepted else { break };
            let s: Vec<f64> = x_new.iter().zip(&xs).map(|(a, b)| a - b).collect();
            let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
            let sy = dot(&s, &y);
            if sy > 1e-12 * dot(&y, &y).sqrt() * dot(&s, &s).sqrt() {
                if pairs.len() == self.history {
                    pairs.pop_front();
                }
                pairs.push_back((s, y, 1.0 / sy));
            }
            std::mem::swap(&mut xs, &mut x_new);
            std::mem::swap(&mut g, &mut g_new);
            value = v_new;
        }
        for (x, &v) in x.iter_mut().zip(&xs) {
            *x = T::from_f64(v);
        }
        LbfgsReport {
            value,
            iterations,
            evaluations,
            converged,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grad::{
        conv_backward, conv_forward, gram, gram_backward, mse, total_variation, Array, ConvNd,
    };
    use visage_rng::SplitMix64;

    #[test]
    fn rosenbrock_converges() {
        let mut x = [-1.2f64, 1.0];
        let r = Lbfgs::default().minimize(&mut x, super::super::rosenbrock);
        assert!(r.converged, "{r:?}");
        assert!(
            (x[0] - 1.0).abs() < 1e-5 && (x[1] - 1.0).abs() < 1e-5,
            "{x:?}"
        );
        assert!(r.iterations < 100, "{r:?}");
    }

    /// An image optimised, as in style transfer, so that the Gram matrix of its convolution
    /// features matches a target's, with a little total variation.
    #[test]
    fn image_matches_target_style() {
        let mut rng = SplitMix64::new(9);
        let g = ConvNd::new(1, 4, [3, 3]).with_padding([1, 1]);
        let w = rng.vec(4 * 9);
        let dims = [1, 1, 8, 8];
        let target = Array::from_vec(&dims, rng.vec(64)).unwrap();
        let target_gram = gram(&conv_forward(&g, &target, &w, None).unwrap()).unwrap();
        let loss = |x: &[f64], grad: &mut [f64]| -> f64 {
            let img = Array::from_vec(&dims, x.to_vec()).unwrap();
            let feats = conv_forward(&g, &img, &w, None).unwrap();
            let gm = gram(&feats).unwrap();
            let (l, dg) = mse(&gm, &target_gram).unwrap();
            let df = gram_backward(&feats, &dg).unwrap();
            let dx = conv_backward(&g, &img, &w, &df).unwrap().input;
            let (tv, dtv) = total_variation(&img).unwrap();
            for ((o, a), b) in grad.iter_mut().zip(dx.data()).zip(dtv.data()) {
                *o = a + 1e-6 * b;
            }
            l + 1e-6 * tv
        };
        let mut x = rng.vec(64);
        let mut scratch = vec![0.0; 64];
        let start = loss(&x, &mut scratch);
        let opts = Lbfgs {
            max_iterations: 200,
            gradient_tolerance: 1e-9,
            ..Default::default()
        };
        let r = opts.minimize(&mut x, loss);
        // The small total-variation term keeps the optimum slightly above zero.
        assert!(r.value < 0.02 * start, "{start} -> {r:?}");
    }

    #[test]
    fn small_network_loss_falls() {
        use crate::grad::softmax_cross_entropy;
        use crate::layers::{Conv, Dense, Flatten, Relu, Sequential};
        let mut rng = SplitMix64::new(4);
        let mut net: Sequential<f64> = Sequential::new()
            .push(Conv::new(ConvNd::new(1, 3, [3]), &mut rng))
            .push(Relu::new())
            .push(Flatten::new())
            .push(Dense::new(3 * 6, 2, &mut rng));
        let labels: Vec<usize> = (0..8).map(|i| i % 2).collect();
        let x = Array::from_fn(&[8, 1, 8], |i| {
            if (i / 8) % 2 == 1 && i % 8 < 4 {
                1.0
            } else {
                rng.normal() * 0.1
            }
        });
        let mut p = net.flat_params();
        let mut scratch = vec![0.0; p.len()];
        let mut f = |p: &[f64], grad: &mut [f64]| -> f64 {
            net.set_flat_params(p).unwrap();
            net.zero_grad();
            let y = net.forward(&x).unwrap();
            let (l, g) = softmax_cross_entropy(&y, &labels).unwrap();
            net.backward(&g).unwrap();
            grad.copy_from_slice(&net.flat_grads());
            l
        };
        let start = f(&p.clone(), &mut scratch);
        let r = Lbfgs {
            max_iterations: 50,
            ..Default::default()
        }
        .minimize(&mut p, f);
        assert!(r.value < 0.05 * start, "{start} -> {r:?}");
    }
}
