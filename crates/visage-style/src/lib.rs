//! Neural style transfer by optimisation (Gatys et al. 2015, as the deep-learning course teaches
//! it): generate G minimising `J(G) = α J_content(C, G) + β J_style(S, G)` by gradient descent on
//! its pixels.
//!
//! * [`costs`]: the Gram matrix, J_content, J_style[l] and total variation, exactly as written.
//! * [`network`]: the loss networks, MobileNetV2 (default; batch norm folded) and VGG19, with
//!   layer names, receptive fields and the softmax smoothing of Wang et al. (2021).
//! * [`vgg19`]: VGG19 in torchvision's layout, from `.pth` or safetensors weights.
//! * [`transfer`]: the optimisation (L-BFGS or Adam), coarse-to-fine stages, tiles under a
//!   memory budget, several styles, snapshots and the JSON report.
//! * [`color`]: colour preservation; [`pixels`]: planar images, resizing and seeded noise.

pub mod color;
pub mod costs;
mod error;
pub mod network;
pub mod pixels;
pub mod plot;
pub mod transfer;
pub mod vgg19;

pub use error::StyleError;
pub use network::{LossNetwork, NetworkKind};
pub use transfer::{
    peak_memory_bytes, stylize, timing_image, Init, IterationRecord, NetworkDefaults, Observer,
    Optimizer, Quiet, StyleImage, StyleOptions, StyleReport,
};
