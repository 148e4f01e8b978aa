use std::path::PathBuf;

/// Why a face-pipeline step failed.
#[derive(Debug, thiserror::Error)]
pub enum FaceError {
    /// A model file could not be read or is not what it should be.
    #[error(transparent)]
    Format(#[from] visage_formats::FormatError),
    /// The models directory is missing files or holds altered ones.
    #[error(transparent)]
    Models(#[from] visage_formats::manifest::ManifestError),
    /// An image could not be decoded or was refused.
    #[error(transparent)]
    Image(#[from] visage_image::ImageError),
    /// Input to a pipeline step that it cannot work with (for example landmarks that are not the
    /// 5 of the 5-point model, or a chip of the wrong size).
    #[error("{0}")]
    InvalidInput(String),
    /// A model file parsed but describes something this pipeline cannot run.
    #[error("{path}: unsupported model: {message}")]
    Unsupported {
        /// The model file.
        path: PathBuf,
        /// What is not supported.
        message: String,
    },
}
