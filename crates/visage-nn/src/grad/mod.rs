//! Differentiable operations on [`Array`]s of `f32` or `f64` (see [`Float`](crate::Float)): each
//! a forward pass and an explicit backward pass, checked in its tests against direct loops and
//! against central finite differences in `f64`.
//!
//! * [`conv`]: convolution in 1, 2 and 3 dimensions (stride, padding, dilation, groups);
//! * [`pool`]: max and average pooling in 1, 2 and 3 dimensions;
//! * [`gram`]: Gram matrices; [`tv`]: total variation;
//! * [`loss`]: MSE, binary cross-entropy with logits, softmax cross-entropy, triplet loss.
//! * [`burn_bridge`]: copies to and from burn tensors; its tests check convolution against burn.

pub mod array;
pub mod burn_bridge;
pub mod check;
pub mod conv;
mod gemm;
pub mod gram;
pub mod loss;
pub mod pool;
pub mod tv;

pub use array::Array;
pub use conv::{conv1d, conv2d, conv3d, conv_backward, conv_forward, ConvGrads, ConvNd};
pub use gram::{gram, gram_backward};
pub use loss::{bce_with_logits, mse, softmax_cross_entropy, triplet, TripletGrads};
pub use pool::{avg_pool, avg_pool_backward, max_pool, max_pool_backward, PoolNd};
pub use tv::total_variation;
