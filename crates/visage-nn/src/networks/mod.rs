//! Networks assembled from the [`ops`](crate::ops).

pub mod dlib_resnet;
pub mod mobilenet_v2;

pub use dlib_resnet::{
    Descriptor, DeviceFaceResnet, FaceResnet, StepGeometry, StepInfo, StepTimes, DESCRIPTOR_LEN,
    DEVICE_BATCH, MAX_BATCH,
};
