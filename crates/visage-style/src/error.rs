//! Why a style transfer could not run.

/// Errors of this crate: bad options, bad inputs, unreadable weights.
#[derive(Debug, thiserror::Error)]
pub enum StyleError {
    /// A weights file does not exist.
    #[error("{network} weights not found: {path} ({hint})")]
    MissingWeights {
        /// Which network.
        network: &'static str,
        /// The path looked at.
        path: String,
        /// How to point at the right file.
        hint: &'static str,
    },
    /// A weights file exists but could not be loaded.
    #[error("{network} weights in {path}: {message}")]
    Weights {
        /// Which network.
        network: &'static str,
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A layer name the network does not have.
    #[error("{network} has no layer {name:?} ({known})")]
    Layer {
        /// Which network.
        network: &'static str,
        /// The name given.
        name: String,
        /// The names it does have.
        known: String,
    },
    /// Options that cannot produce an image (all weights zero, no style, bad sizes).
    #[error("{0}")]
    Options(String),
    /// An image that cannot be used (too small for the network, empty).
    #[error("{0}")]
    Input(String),
    /// A tensor shape or data error from the network code.
    #[error("network: {0}")]
    Network(String),
}
