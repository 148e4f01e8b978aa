//! What a CNN learned, layer by layer: the receptive field of each layer from its kernel, stride
//! and padding chain; for every hidden unit the inputs and places that excite it most (a
//! streaming top-9 per unit, as Zeiler & Fergus drew them); crops of those receptive fields; PNG
//! grids, an HTML page and JSON; and the feature-map and Gram-matrix pictures of the
//! style-transfer lecture.
//!
//! Networks plug in through [`Network`]; inputs may be images (2D), signals (1D) or volumes
//! (3D), and receptive fields carry one [`AxisField`] per axis, so the same scan and crops serve
//! all three.

#![warn(missing_docs)]

pub mod field;
/// The bitmap font of labels, shared with visage-image's contact sheets.
pub use visage_image::font;
pub mod input;
pub mod networks;
pub mod report;
pub mod sequential;
pub mod units;

pub use field::{AxisField, ReceptiveField};
pub use input::{FeatureMap, Input, Patch, PAD_COLOUR};
pub use networks::{
    center_square, grey_square, CheckpointInspector, FaceResnetInspector, MobileNetInspector,
    Vgg19Inspector,
};
pub use report::{collect_patches, pick_units, write_report, LayerPatches};
pub use sequential::{LayerWindow, SequentialInspector};
pub use units::{scan, Hit, LayerUnits, Network, ScanOptions, ScanResult, TopK, TOP_K};

/// Why an inspection failed.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// A layer name the network does not have.
    #[error("unknown layer {name:?}; known layers: {known}")]
    Layer {
        /// The name asked for.
        name: String,
        /// The network's layers.
        known: String,
    },
    /// The network failed (bad weights, wrong input size, ...).
    #[error("network: {0}")]
    Network(String),
    /// An input of the wrong dimensionality for the network or field.
    #[error("expected an input with {expected} spatial axes, got {got}")]
    Axes {
        /// Axes expected.
        expected: usize,
        /// Axes given.
        got: usize,
    },
    /// An input read during the scan could not be read again for cropping.
    #[error("input #{image} could not be reloaded: {why}")]
    Reload {
        /// Its index.
        image: usize,
        /// Why.
        why: String,
    },
    /// Writing output failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}
