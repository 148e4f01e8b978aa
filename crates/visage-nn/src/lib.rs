//! Neural-network building blocks on plain `f32` buffers, with fast multi-threaded CPU kernels,
//! and the networks built from them (the dlib face ResNet).
//!
//! * [`Tensor`]: a batch of feature maps in one of two plane orders ([`Layout`]).
//! * [`ops`]: one operation per module (convolution, pooling, affine/ReLU, sums, fully
//!   connected), each a forward pass checked against direct loops in its tests.
//! * [`networks`]: whole networks, such as [`FaceResnet`].
//!
//! Kernels use the current rayon thread pool; run them inside `ThreadPool::install` to choose
//! the number of threads.

mod error;
pub mod networks;
pub mod ops;
mod tensor;

pub use error::NnError;
pub use networks::{Descriptor, FaceResnet, DESCRIPTOR_LEN, MAX_BATCH};
pub use tensor::{Layout, Shape, Tensor};
