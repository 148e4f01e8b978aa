//! dlib's serialization: the primitive encodings ([`reader`]) and the three model files the face
//! pipeline uses. The byte layouts are those of `shared/docs/DLIB_FORMATS.md`.

pub mod hog_detector;
pub mod reader;
pub mod resnet;
pub mod shape_predictor;

pub use reader::{DlibReader, ReadError};
