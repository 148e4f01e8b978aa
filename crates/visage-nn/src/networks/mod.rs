//! Networks assembled from the [`ops`](crate::ops).

pub mod dlib_resnet;

pub use dlib_resnet::{Descriptor, FaceResnet, StepTimes, DESCRIPTOR_LEN, MAX_BATCH};
