//! Networks assembled from the [`ops`](crate::ops).

pub mod dlib_resnet;
pub mod mobilenet_v2;

pub use dlib_resnet::{
    Descriptor, FaceResnet, StepGeometry, StepInfo, StepTimes, DESCRIPTOR_LEN, MAX_BATCH,
};
