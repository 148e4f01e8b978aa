use std::path::PathBuf;

/// Why a model file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The bytes do not hold what the format expects at `offset`.
    #[error("{path}: not a valid {format} file: at byte {offset}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The format that was expected (for example "dlib face ResNet").
        format: &'static str,
        /// Where in the file the problem was found, in bytes from the start.
        offset: usize,
        /// What was expected and what was found.
        message: String,
    },
}
