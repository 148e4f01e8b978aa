//! Verification ("same person or not?") on labelled pairs with k-fold threshold selection, as
//! LFW's View 2 protocol asks: for each fold, the threshold with the best accuracy on the other
//! folds, then accuracy on the fold itself. Anything trained (PCA, LDA, a pair SVM) is trained
//! on the other folds only.

use nalgebra::DMatrix;
use visage_eval::folds::{accuracy_at, best_threshold, k_fold, Candidates, Direction};
pub use visage_eval::folds::{FoldOutcome, KFold};

use crate::knn::Metric;
use crate::lda::Lda;
use crate::pca::Pca;
use crate::svm::{gamma_scale, BinarySvm, Kernel, SvmParams};
use crate::ClassicalError;

/// One labelled pair: indices of its two images and its fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairRef {
    /// Fold, 0-based.
    pub fold: usize,
    /// First image (column of the image matrix).
    pub a: usize,
    /// Second image.
    pub b: usize,
    /// Whether both show the same person.
    pub same: bool,
}

/// How pairs are scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PairMethod {
    /// Distance between the raw vectors (pixels or encodings).
    Distance(Metric),
    /// Eigenfaces: PCA with at most this many components, trained on the other folds' images,
    /// then distance between projections.
    Eigenfaces(Option<usize>, Metric),
    /// Fisherfaces: LDA trained on the other folds' images of people seen at least twice there,
    /// with their person labels (LFW's "unrestricted" setting, since identities are used), then
    /// Euclidean distance.
    Fisherfaces(Option<usize>),
    /// An SVM on the element-wise absolute difference |a − b| of the two vectors, trained on the
    /// other folds' pairs; its decision value is the score. `gamma` None: [`gamma_scale`].
    PairSvm {
        /// Kernel: true for RBF, false for linear.
        rbf: bool,
        /// RBF γ.
        gamma: Option<f64>,
        /// Box constraint C.
        c: f64,
    },
}

/// Runs the k-fold protocol with `method` on images given as columns of `images`; `people`
/// gives each image's person (only Fisherfaces uses it).
pub fn verify_pairs(
    images: &DMatrix<f64>,
    people: &[usize],
    pairs: &[PairRef],
    method: PairMethod,
) -> Result<KFold, ClassicalError> {
    if let Some(bad) = pairs
        .iter()
        .find(|p| p.a >= images.ncols() || p.b >= images.ncols())
    {
        return Err(ClassicalError::Dimension {
            message: format!(
                "pair ({}, {}) outside {} images",
                bad.a,
                bad.b,
                images.ncols()
            ),
        });
    }
    let folds = pairs.iter().map(|p| p.fold + 1).max().unwrap_or(0);
    match method {
        PairMethod::Distance(metric) => {
            let items: Vec<(usize, f64, bool)> = pairs
                .iter()
                .map(|p| (p.fold, distance(metric, images, p.a, p.b), p.same))
                .collect();
            Ok(k_fold(
                &items,
                Direction::LowerIsSame,
                Candidates::Midpoints,
            ))
        }
        _ => {
            let mut outcomes = Vec::with_capacity(folds);
            for f in 0..folds {
                outcomes.push(one_fold(images, people, pairs, f, method)?);
            }
            Ok(KFold::from_folds(outcomes))
        }
    }
}

fn distance(metric: Metric, m: &DMatrix<f64>, a: usize, b: usize) -> f64 {
    let (x, y) = (m.column(a), m.column(b));
    match metric {
        Metric::Euclidean => (x - y).norm(),
        Metric::Cosine => 1.0 - x.dot(&y) / (x.norm() * y.norm()).max(f64::MIN_POSITIVE),
    }
}

fn one_fold(
    images: &DMatrix<f64>,
    people: &[usize],
    pairs: &[PairRef],
    fold: usize,
    method: PairMethod,
) -> Result<FoldOutcome, ClassicalError> {
    let (train_pairs, test_pairs): (Vec<PairRef>, Vec<PairRef>) =
        pairs.iter().partition(|p| p.fold != fold);
    let mut train_images: Vec<usize> = train_pairs.iter().flat_map(|p| [p.a, p.b]).collect();
    train_images.sort_unstable();
    train_images.dedup();
    let train_x = images.select_columns(train_images.iter());
    let score_all =
        |projected: &DMatrix<f64>, metric: Metric, set: &[PairRef]| -> Vec<(f64, bool)> {
            set.iter()
                .map(|p| (distance(metric, projected, p.a, p.b), p.same))
                .collect()
        };
    let (train_scores, test_scores, direction) = match method {
        PairMethod::Eigenfaces(k, metric) => {
            let pca = Pca::fit(&train_x, k)?;
            let y = pca.projection.project(images);
            (
                score_all(&y, metric, &train_pairs),
                score_all(&y, metric, &test_pairs),
                Direction::LowerIsSame,
            )
        }
        PairMethod::Fisherfaces(k) => {
            if people.len() != images.ncols() {
                return Err(ClassicalError::Dimension {
                    message: format!(
                        "{} person labels for {} images",
                        people.len(),
                        images.ncols()
                    ),
                });
            }
            // People seen once add a class but no within-class variation: they only shrink the
            // N − C dimensions the PCA step may keep, so LDA learns from the others.
            let mut count: std::collections::HashMap<usize, usize> =
                std::collections::HashMap::new();
            for &i in &train_images {
                *count.entry(people[i]).or_default() += 1;
            }
            let kept: Vec<usize> = train_images
                .iter()
                .copied()
                .filter(|&i| count[&people[i]] >= 2)
                .collect();
            let labels: Vec<usize> = kept.iter().map(|&i| people[i]).collect();
            let lda = Lda::fit(&images.select_columns(kept.iter()), &labels, k)?;
            let y = lda.projection.project(images);
            (
                score_all(&y, Metric::Euclidean, &train_pairs),
                score_all(&y, Metric::Euclidean, &test_pairs),
                Direction::LowerIsSame,
            )
        }
        PairMethod::PairSvm { rbf, gamma, c } => {
            let feats = |set: &[PairRef]| {
                DMatrix::from_fn(images.nrows(), set.len(), |r, col| {
                    (images[(r, set[col].a)] - images[(r, set[col].b)]).abs()
                })
            };
            let (fx, tx) = (feats(&train_pairs), feats(&test_pairs));
            let kernel = if rbf {
                Kernel::Rbf {
                    gamma: gamma.unwrap_or_else(|| gamma_scale(&fx)),
                }
            } else {
                Kernel::Linear
            };
            let params = SvmParams {
                kernel,
                c,
                ..SvmParams::default()
            };
            let y: Vec<bool> = train_pairs.iter().map(|p| p.same).collect();
            let svm = BinarySvm::train(&fx, &y, &params)?;
            let train_scores = svm.decision(&fx).into_iter().zip(y).collect();
            let test_scores = svm
                .decision(&tx)
                .into_iter()
                .zip(test_pairs.iter().map(|p| p.same))
                .collect();
            (train_scores, test_scores, Direction::HigherIsSame)
        }
        PairMethod::Distance(_) => unreachable!("handled without training"),
    };
    let (threshold, train_accuracy) =
        best_threshold(&train_scores, direction, Candidates::Midpoints);
    Ok(FoldOutcome {
        threshold,
        train_accuracy,
        accuracy: accuracy_at(&test_scores, direction, threshold),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_methods_run_on_toy_pairs() {
        // Two well-separated people per fold; every method should verify them perfectly.
        let mut cols = Vec::new();
        let mut people = Vec::new();
        let mut pairs = Vec::new();
        for f in 0..3 {
            for p in 0..2 {
                for k in 0..3 {
                    let base = (f * 2 + p) as f64 * 3.0;
                    cols.extend([
                        base + 0.01 * k as f64,
                        -base,
                        (base * 0.7).sin() + 0.02 * k as f64,
                    ]);
                    people.push(f * 2 + p);
                }
            }
            let o = f * 6;
            pairs.extend([
                PairRef {
                    fold: f,
                    a: o,
                    b: o + 1,
                    same: true,
                },
                PairRef {
                    fold: f,
                    a: o + 3,
                    b: o + 4,
                    same: true,
                },
                PairRef {
                    fold: f,
                    a: o,
                    b: o + 3,
                    same: false,
                },
                PairRef {
                    fold: f,
                    a: o + 2,
                    b: o + 5,
                    same: false,
                },
            ]);
        }
        let images = DMatrix::from_column_slice(3, cols.len() / 3, &cols);
        for m in [
            PairMethod::Distance(Metric::Euclidean),
            PairMethod::Eigenfaces(None, Metric::Euclidean),
            PairMethod::PairSvm {
                rbf: false,
                gamma: None,
                c: 10.0,
            },
        ] {
            let r = verify_pairs(&images, &people, &pairs, m).unwrap();
            assert_eq!(r.mean_accuracy, 1.0, "{m:?}");
        }
        let r = verify_pairs(&images, &people, &pairs, PairMethod::Fisherfaces(None)).unwrap();
        assert_eq!(r.folds.len(), 3);
    }
}
