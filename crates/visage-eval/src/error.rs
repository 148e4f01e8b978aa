//! The evaluation crate's error type.

use std::path::PathBuf;

/// What can stop an evaluation; messages name the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// `pairs.txt` does not follow the LFW layout.
    #[error("invalid pairs file: {0}")]
    Pairs(String),
    /// A file or folder could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The encoding cache could not be opened or written.
    #[error("the encoding cache {} is unusable ({source}); delete it or run without the cache", path.display())]
    Cache {
        /// The cache file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The plot could not be written.
    #[error("cannot write the plot {}: {detail}", path.display())]
    Plot {
        /// The PNG path.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The data cannot support the evaluation (no pairs, no probes, ...).
    #[error("{0}")]
    Data(String),
}
