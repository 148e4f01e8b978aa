//! Worked examples of the differentiable ops in `visage-nn`, each a library function that the
//! `visage demo` command calls and prints:
//!
//! * [`ekg`]: a classical Pan–Tompkins QRS detector ([`pan_tompkins`]) labels the first minutes
//!   of an EKG recording; a small 1-D CNN trained on those labels finds the beats of a held-out
//!   minute.
//! * [`volume`]: a small 3-D CNN tells apart synthetic CT-like volumes holding round or
//!   elongated "lesions".
//!
//! Both are deterministic for a seed and a thread count (run them in a rayon pool of fixed
//! size to pin the latter).

pub mod ekg;
pub mod pan_tompkins;
pub mod plot;
pub mod volume;

use std::path::PathBuf;

use visage_nn::grad::{ConvNd, PoolNd};
use visage_nn::layers::Sequential;

/// What one layer of a demo network does to the spatial grid, as plain visage-nn geometry, so
/// that tools such as `visage inspect` can work out receptive fields without this crate knowing
/// about them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerGeometry {
    /// A convolution (its kernel, stride, padding and dilation).
    Conv(ConvNd),
    /// A pooling window.
    Pool(PoolNd),
    /// Per-sample (ReLU).
    Pointwise,
    /// Flattening and what follows it: every output sees the whole input.
    Global,
}

/// A demo's trained network with the held-out inputs it was evaluated on, for looking inside
/// it (`visage inspect units --model ekg|volume`).
pub struct Trained {
    /// The trained network.
    pub net: Sequential<f32>,
    /// One entry per layer of `net`, in order.
    pub layers: Vec<LayerGeometry>,
    /// Spatial extent of every input, outermost first: `[samples]` for the EKG,
    /// `[z, y, x]` for volumes.
    pub input_dims: Vec<usize>,
    /// Held-out inputs, normalised exactly as the network sees them (one channel each,
    /// row-major over `input_dims`).
    pub inputs: Vec<Vec<f32>>,
    /// A short name per input (where in the recording, or which volume and class).
    pub input_names: Vec<String>,
}

// `Sequential` holds boxed layers and is not `Debug`; its layer names stand in for it.
impl std::fmt::Debug for Trained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trained")
            .field("net", &self.net.summary())
            .field("layers", &self.layers)
            .field("input_dims", &self.input_dims)
            .field("inputs", &self.inputs.len())
            .finish_non_exhaustive()
    }
}

/// Why a demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The data is not what the demo expects.
    #[error("bad data: {0}")]
    Data(String),
    /// A network operation failed.
    #[error(transparent)]
    Nn(#[from] visage_nn::NnError),
    /// A picture could not be saved.
    #[error("cannot save {path}: {source}")]
    Image {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: image::ImageError,
    },
}
