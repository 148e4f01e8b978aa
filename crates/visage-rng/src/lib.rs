//! One small seeded random generator for every crate of the workspace.
//!
//! Splits, initial weights, batches, distortions and initial images must come out the same on
//! every machine and with every version of every dependency, which a library's "standard" generator
//! does not promise; SplitMix64 is a dozen lines whose output is fixed by its definition.

/// SplitMix64 (Steele, Lea and Flood): fast, seedable, and good enough for sampling, shuffling
/// and initialisation; not for cryptography.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator whose state is `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The raw state, to save and later resume with [`SplitMix64::new`].
    pub fn state(&self) -> u64 {
        self.0
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`, on the grid of multiples of 2⁻⁵³.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in `0..n` (`n > 0`) as 64 random bits modulo `n` (a bias below
    /// `n / 2^64`): the draw behind the classical splits and the identification pairs, kept
    /// so that they come out as they always have.
    pub fn below_by_modulo(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in `0..n` (`n > 0`; 0 for `n = 0`), scaled from [`SplitMix64::uniform`].
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }

    /// Standard normal (Box–Muller, one value from two uniforms).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// `n` values uniform in `[-1, 1)`.
    pub fn vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.range(-1.0, 1.0)).collect()
    }

    /// `k` distinct indices from `0..n` (at most `n` of them), in random order.
    pub fn choose(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (0..n).collect();
        for i in 0..k.min(n) {
            let j = i + self.below(n - i);
            all.swap(i, j);
        }
        all.truncate(k.min(n));
        all
    }
}

/// A well-mixed 64-bit hash of `x`: the first output of [`SplitMix64::new`]`(x)`, for values
/// derived from an index where no generator is carried along.
pub fn hash(x: u64) -> u64 {
    SplitMix64::new(x).next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_outputs_match_the_reference_sequence() {
        // SplitMix64 from state 0 (the reference implementation's published first outputs).
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(rng.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn hash_is_the_first_output_of_the_state() {
        assert_eq!(hash(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(hash(12345), SplitMix64::new(12345).next_u64());
    }

    #[test]
    fn a_saved_state_resumes_the_same_stream() {
        let mut a = SplitMix64::new(42);
        a.next_u64();
        let mut b = SplitMix64::new(a.state());
        assert_eq!(a.vec(5), b.vec(5));
    }

    #[test]
    fn draws_stay_in_their_ranges() {
        let mut rng = SplitMix64::new(7);
        for _ in 0..10_000 {
            let u = rng.uniform();
            assert!((0.0..1.0).contains(&u));
            assert!(rng.below(3) < 3);
            assert!((-2.0..5.0).contains(&rng.range(-2.0, 5.0)));
        }
        assert_eq!(rng.below(0), 0);
        for _ in 0..1_000 {
            assert!(rng.below_by_modulo(7) < 7);
        }
    }

    #[test]
    fn choose_gives_distinct_indices() {
        let mut rng = SplitMix64::new(1);
        let mut picked = rng.choose(10, 7);
        assert_eq!(picked.len(), 7);
        picked.sort_unstable();
        picked.dedup();
        assert_eq!(picked.len(), 7);
        assert!(picked.iter().all(|&i| i < 10));
        assert_eq!(rng.choose(3, 5).len(), 3);
    }

    #[test]
    fn normal_has_unit_moments() {
        let mut rng = SplitMix64::new(3);
        let xs: Vec<f64> = (0..20_000).map(|_| rng.normal()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.04, "variance {var}");
    }
}
