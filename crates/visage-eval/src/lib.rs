//! Measuring Visage's decisions: ROC curves, EER, TAR at a FAR and τ for a target FAR
//! ([`roc`]), k-fold threshold selection ([`folds`]), the LFW View 2 protocol ([`lfw`]), open-set identification ([`identify`]), ROC
//! plots ([`plot`]) and a cache of encodings on disk ([`cache`]) in front of the face pipeline
//! ([`runner`], [`faces`]); small grey face chips for training embeddings ([`chips`]) and LFW's
//! folds split into training people and held-out pairs ([`lfw_split`]).
//!
//! Every distance is a **Euclidean** distance between 128-d encodings (τ = 0.6 is
//! face_recognition's default); every rate is a fraction in [0, 1].

pub mod cache;
pub mod chips;
mod error;
pub mod faces;
pub mod folds;
pub mod identify;
pub mod lfw;
pub mod lfw_split;
pub mod plot;
pub mod roc;
pub mod runner;

pub use error::EvalError;
