//! Tensor operations, one per module, each a forward pass on [`Tensor`](crate::Tensor)s in either
//! [`Layout`](crate::Layout).

pub mod add;
pub mod affine;
pub mod conv2d;
pub mod linear;
pub mod pool;

pub use add::{add_assign, add_zero_padded};
pub use affine::{affine_channels, relu};
pub use conv2d::{Activation, Conv2d, ConvScratch, ConvSpec};
pub use linear::Linear;
pub use pool::{avg_pool2d, global_avg_pool, max_pool2d, PoolSpec};
