//! Learning the similarity function on a CPU, with burn's autodiff on its flex backend:
//!
//! * a Siamese embedding ([`model::EmbeddingNet`]) trained with the triplet loss
//!   ([`loss::triplet_loss`]) on P×K batches with online mining ([`mining`]), guarded against
//!   collapse ([`collapse`]);
//! * the pair head ([`model::PairHead`], `|Δ|` and χ² features, logistic, binary
//!   cross-entropy), end to end with the twin network or on frozen encodings ([`frozen`]);
//! * prototypical networks on N-way K-shot episodes, within one alphabet or across;
//! * a cosine classifier over all training classes ([`model::CosineClassifier`]) whose
//!   embedding is then compared like the others;
//! * batches split into parts trained side by side on the worker threads ([`train`]);
//! * Omniglot loading with rotated and mirrored characters as new classes ([`data`]) and small
//!   affine distortions ([`augment`]); checkpoints with resume ([`checkpoint`]), learning
//!   curves ([`plot`]);
//! * face chips as classes of people, with flips ([`faces`]);
//! * N-way one-shot evaluation in the standard Omniglot run layout, with test-time shifts and
//!   symmetries ([`fewshot`]), crowding scaling and within-class whitening ([`whitening`]).
//!
//! To inspect a trained network's units, load it with [`checkpoint::InspectableNet::load`]:
//! it gives each conv layer's activations and every layer's kernel, stride and padding.

pub mod augment;
pub mod checkpoint;
pub mod collapse;
pub mod data;
mod error;
pub mod faces;
pub mod fewshot;
pub mod frozen;
pub mod loss;
pub mod mining;
pub mod model;
pub mod plot;
pub mod rng;
pub mod train;
pub mod whitening;

pub use error::TrainError;
