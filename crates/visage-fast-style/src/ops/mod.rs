//! The operations the style networks need beyond visage-nn's convolution, one per module, each
//! on [`Tensor`](visage_nn::Tensor)s in NCHW order.

pub mod instance_norm;
pub mod reflect_pad;
pub mod upsample;

pub use instance_norm::instance_norm;
pub use reflect_pad::reflect_pad;
pub use upsample::upsample_nearest2x;
