//! Neural-network building blocks on plain `f32` buffers, with fast multi-threaded CPU kernels,
//! and the networks built from them (the dlib face ResNet).
//!
//! * [`Tensor`]: a batch of feature maps in one of two plane orders ([`Layout`]).
//! * [`ops`]: one operation per module (convolution, pooling, affine/ReLU, sums, fully
//!   connected), each a forward pass checked against direct loops in its tests.
//! * [`networks`]: whole networks, such as [`FaceResnet`].
//! * [`grad`]: differentiable ops (convolution 1/2/3-D, pooling, Gram, total variation, losses)
//!   on `f32` or `f64` [`grad::Array`]s, with explicit backward passes.
//! * [`layers`]: a small `Sequential` network of those ops, for training small models.
//! * [`optim`]: Adam and L-BFGS.
//! * [`device`]: where burn tensors run, CPU or GPU ([`Compute`]).
//! * [`reuse_freed_buffers`]: the allocator policy that keeps large buffers from being mapped
//!   and zeroed afresh on every step.
//!
//! Kernels use the current rayon thread pool; run them inside `ThreadPool::install` to choose
//! the number of threads.

pub mod device;
mod error;
mod float;
pub mod grad;
pub mod layers;
mod memory;
pub mod networks;
pub mod ops;
pub mod optim;
mod tensor;

pub use device::Compute;
pub use error::NnError;
pub use float::Float;
pub use memory::reuse_freed_buffers;
pub use networks::{
    Descriptor, DeviceFaceResnet, FaceResnet, DESCRIPTOR_LEN, DEVICE_BATCH, MAX_BATCH,
};
pub use tensor::{Layout, Shape, Tensor};
