//! Classical face recognition, as baselines for Visage's deep pipeline: eigenfaces (PCA),
//! Fisherfaces (LDA), support vector machines and nearest neighbour, on gray images or on any
//! feature vectors (such as dlib's 128-d encodings).
//!
//! Data are `nalgebra` matrices with **one sample per column** (`dim x n`); images are gray
//! intensities in [0, 1], row-major. Everything is computed in f64 and saved in f32.
//!
//! - [`dataset`]: folder-per-person and `person.condition` sets, one image size, seeded splits.
//! - [`pca`], [`lda`]: eigenfaces and Fisherfaces as [`projection::Projection`]s.
//! - [`svm`], [`knn`]: the classifiers.
//! - [`model`]: projection + classifier, trained, used, saved and loaded.
//! - [`verify`]: pair verification with the k-fold protocol of LFW.
//! - [`pictures`]: mean face, eigenfaces, Fisherfaces and reconstructions as PNG grids.

pub mod dataset;
mod error;
pub mod knn;
pub mod lda;
mod linalg;
pub mod model;
pub mod pca;
pub mod pictures;
pub mod projection;
pub mod svm;
pub mod verify;

pub use dataset::{Crop, Dataset, LoadOptions, SizePolicy, Split};
pub use error::ClassicalError;
pub use knn::{Metric, NearestNeighbour};
pub use lda::Lda;
pub use model::{ClassicalModel, ClassifierSpec, FeatureSpec, Input};
/// The linear-algebra crate of the public API (matrices are `nalgebra::DMatrix<f64>`).
pub use nalgebra;
pub use pca::Pca;
pub use projection::Projection;
pub use svm::{BinarySvm, Kernel, MultiSvm, SvmParams};
pub use verify::{KFold, PairMethod, PairRef};
