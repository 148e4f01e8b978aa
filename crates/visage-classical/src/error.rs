//! The one error type of the crate.

use std::path::PathBuf;

/// Why a classical-method operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClassicalError {
    /// A file or folder could not be read or written (the cause is the error's source).
    #[error("cannot read or write {path}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// An image could not be decoded.
    #[error(transparent)]
    Image(#[from] visage_image::ImageError),
    /// An image could not be written.
    #[error("{path}: cannot write the picture: {message}")]
    WritePicture {
        /// The file.
        path: PathBuf,
        /// The encoder's message.
        message: String,
    },
    /// The dataset folder holds no usable images.
    #[error("{path}: no images found (expected one sub-folder per person, or files named `person.condition`)")]
    EmptyDataset {
        /// The folder.
        path: PathBuf,
    },
    /// Images of one set differ in size and resizing was refused.
    #[error(
        "{path} is {width}x{height} pixels but the set's images are {expected_width}x{expected_height}; \
         resize them all to one size first, or allow resizing (the default resizes to the first image's size)"
    )]
    MixedSizes {
        /// The offending image.
        path: PathBuf,
        /// Its width in pixels.
        width: u32,
        /// Its height in pixels.
        height: u32,
        /// The set's width in pixels.
        expected_width: u32,
        /// The set's height in pixels.
        expected_height: u32,
    },
    /// LDA needs at least two people.
    #[error("LDA (Fisherfaces) needs at least two people, but the training set has {people}")]
    TooFewClasses {
        /// People (classes) in the training set.
        people: usize,
    },
    /// Too few samples for the method.
    #[error("{what}: {message}")]
    TooFewSamples {
        /// The method.
        what: &'static str,
        /// What is missing.
        message: String,
    },
    /// Inputs whose lengths disagree (e.g. a sample of the wrong dimension).
    #[error("dimension mismatch: {message}")]
    Dimension {
        /// What disagreed.
        message: String,
    },
    /// A parameter out of its range.
    #[error("invalid parameter: {message}")]
    Parameter {
        /// Which parameter and why.
        message: String,
    },
    /// A model file that is not a valid classical model.
    #[error("{path}: not a valid classical model: {message}")]
    BadModel {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}
