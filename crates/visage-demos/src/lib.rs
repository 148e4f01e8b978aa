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
