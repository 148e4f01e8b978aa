//! The face pipeline, one step per module, in the order data flows:
//! [`detect`] (HOG boxes) → [`landmarks`] (5 points) → [`align`] (150x150 chip) →
//! [`encode`] (128-d vector), with [`FaceModels`] tying them together behind a small API.

pub mod align;
pub mod detect;
pub mod encode;
mod error;
mod geometry;
pub mod landmarks;
mod pipeline;
mod similarity;

pub use detect::{DetectOptions, Detection};
pub use encode::{distance, squared_distance, Encoding};
pub use error::FaceError;
pub use geometry::{Point, Rect};
pub use pipeline::{largest_face, Face, FaceModels, Stage, PIPELINE_MODELS};
