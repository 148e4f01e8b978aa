//! The run's random generator: one seed fixes initialisation, batches and distortions.

pub use visage_rng::SplitMix64 as Rng;

/// The generator of a run with `seed`: the seed mixed with a constant before it becomes the
/// state, as every run and checkpoint so far was drawn (a resumed run restores the saved raw
/// state with `Rng::new`).
pub fn from_seed(seed: u64) -> Rng {
    Rng::new(seed ^ 0x9E37_79B9_7F4A_7C15)
}
