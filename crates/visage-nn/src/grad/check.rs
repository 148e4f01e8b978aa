//! Central finite differences, to check analytic gradients (in `f64`).

/// The largest relative difference between `analytic` and the central-difference gradient of
/// `f` at `x` (step `eps`), each difference scaled by `max(1, |numeric|, |analytic|)`.
pub fn max_gradient_error(
    mut f: impl FnMut(&[f64]) -> f64,
    x: &[f64],
    analytic: &[f64],
    eps: f64,
) -> f64 {
    assert_eq!(
        x.len(),
        analytic.len(),
        "one analytic derivative per variable"
    );
    let mut probe = x.to_vec();
    let mut worst = 0.0f64;
    for i in 0..x.len() {
        probe[i] = x[i] + eps;
        let up = f(&probe);
        probe[i] = x[i] - eps;
        let down = f(&probe);
        probe[i] = x[i];
        let numeric = (up - down) / (2.0 * eps);
        let scale = 1f64.max(numeric.abs()).max(analytic[i].abs());
        worst = worst.max((numeric - analytic[i]).abs() / scale);
    }
    worst
}

/// A small deterministic generator (SplitMix64) for test data and demos: same seed, same values.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// `n` values uniform in [-1, 1).
    pub fn vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.range(-1.0, 1.0)).collect()
    }
}
