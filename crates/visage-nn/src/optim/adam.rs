//! Adam (Kingma & Ba, 2015).

use crate::layers::Param;
use crate::Float;

/// Adam with bias-corrected first and second moment estimates.
#[derive(Debug, Clone)]
pub struct Adam {
    /// Step size.
    pub learning_rate: f64,
    /// Decay of the gradient's running mean.
    pub beta1: f64,
    /// Decay of the squared gradient's running mean.
    pub beta2: f64,
    /// Added to the denominator, so that flat directions do not blow up.
    pub epsilon: f64,
    step: i32,
    m: Vec<f64>,
    v: Vec<f64>,
}

impl Adam {
    /// Adam with the usual defaults (β₁ 0.9, β₂ 0.999, ε 1e-8).
    pub fn new(learning_rate: f64) -> Self {
        Self {
            learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            step: 0,
            m: Vec::new(),
            v: Vec::new(),
        }
    }

    /// One step on a flat parameter vector and its gradient.
    pub fn step_flat<T: Float>(&mut self, params: &mut [T], grads: &[T]) {
        self.begin(params.len());
        self.update(0, params, grads);
    }

    /// One step on a network's parameters (from `Sequential::params`), in the same order on
    /// every call.
    pub fn step(&mut self, params: Vec<Param<'_, impl Float>>) {
        self.begin(params.iter().map(|p| p.value.len()).sum());
        let mut at = 0;
        for p in params {
            at = self.update(at, p.value, p.grad);
        }
    }

    fn begin(&mut self, len: usize) {
        if self.m.len() != len {
            self.m = vec![0.0; len];
            self.v = vec![0.0; len];
            self.step = 0;
        }
        self.step += 1;
    }

    fn update<T: Float>(&mut self, at: usize, params: &mut [T], grads: &[T]) -> usize {
        let c1 = 1.0 - self.beta1.powi(self.step);
        let c2 = 1.0 - self.beta2.powi(self.step);
        for (i, (p, &g)) in params.iter_mut().zip(grads).enumerate() {
            let g = g.to_f64();
            let (m, v) = (&mut self.m[at + i], &mut self.v[at + i]);
            *m = self.beta1 * *m + (1.0 - self.beta1) * g;
            *v = self.beta2 * *v + (1.0 - self.beta2) * g * g;
            let update = self.learning_rate * (*m / c1) / ((*v / c2).sqrt() + self.epsilon);
            *p = T::from_f64(p.to_f64() - update);
        }
        at + params.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grad::{softmax_cross_entropy, Array, ConvNd, PoolNd};
    use crate::layers::{Conv, Dense, Flatten, MaxPool, Relu, Sequential};
    use visage_rng::SplitMix64;

    #[test]
    fn rosenbrock_converges() {
        let mut x = [-1.2f64, 1.0];
        let mut g = [0.0; 2];
        let mut adam = Adam::new(0.02);
        for _ in 0..20_000 {
            super::super::rosenbrock(&x, &mut g);
            adam.step_flat(&mut x, &g);
        }
        assert!(
            (x[0] - 1.0).abs() < 1e-3 && (x[1] - 1.0).abs() < 2e-3,
            "{x:?}"
        );
    }

    #[test]
    fn small_network_loss_falls() {
        let mut rng = SplitMix64::new(3);
        let mut net: Sequential<f32> = Sequential::new()
            .push(Conv::new(
                ConvNd::new(1, 4, [3]).with_padding([1]),
                &mut rng,
            ))
            .push(Relu::new())
            .push(MaxPool::new(PoolNd::new([2])))
            .push(Flatten::new())
            .push(Dense::new(4 * 8, 2, &mut rng));
        // Class 1: a bump in the first half; class 0: in the second half.
        let (n, len) = (16, 16);
        let labels: Vec<usize> = (0..n).map(|i| i % 2).collect();
        let x = Array::from_fn(&[n, 1, len], |i| {
            let (s, t) = (i / len, i % len);
            let centre = if labels[s] == 1 { 4 } else { 11 };
            if t.abs_diff(centre) <= 1 {
                1.0
            } else {
                0.1 * rng.normal() as f32
            }
        });
        let mut adam = Adam::new(0.01);
        let mut first = None;
        let mut last = 0.0;
        for _ in 0..60 {
            net.zero_grad();
            let y = net.forward(&x).unwrap();
            let (l, g) = softmax_cross_entropy(&y, &labels).unwrap();
            first.get_or_insert(l);
            last = l;
            net.backward(&g).unwrap();
            adam.step(net.params());
        }
        let first = first.unwrap();
        assert!(last < 0.2 * first, "{first} -> {last}");
    }
}
