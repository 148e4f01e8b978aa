//! Model file formats: dlib's binary serialization (the face ResNet, the shape predictor and the
//! HOG detector), a minimal ONNX reader (graph and weights), and the models manifest that names,
//! hashes and licenses every file.
//!
//! Readers never panic on bad input and never read past the end of the data: a truncated,
//! corrupt or wrong file gives a [`FormatError`] naming the file and what was expected.

pub mod dlib;
mod error;
pub mod manifest;
pub mod onnx;

pub use error::FormatError;
