/// Why a network could not be built or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NnError {
    /// Tensor or parameter shapes do not fit together.
    #[error("shape mismatch in {what}: {message}")]
    Shape {
        /// The operation or layer where the mismatch was found.
        what: String,
        /// What was expected and what was found.
        message: String,
    },
    /// The model describes something these kernels do not implement.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// An input given to a network is not what it expects (for example a chip of the wrong size).
    #[error("invalid input: {0}")]
    Input(String),
    /// The asked compute device cannot be used: this build has no GPU support, or no GPU was
    /// found.
    #[error("{0}")]
    Device(String),
}

impl NnError {
    pub(crate) fn shape(what: impl Into<String>, message: impl Into<String>) -> Self {
        NnError::Shape {
            what: what.into(),
            message: message.into(),
        }
    }
}
