//! Linear discriminant analysis (Fisherfaces, Belhumeur, Hespanha and Kriegman 1997).
//!
//! With N images of C people the within-class scatter S_w of raw pixels has rank at most
//! N − C, far below the pixel count, so it cannot be inverted. PCA to N − C dimensions first
//! makes it (generically) full rank; there the generalised problem S_b w = λ S_w w is solved by
//! whitening S_w and diagonalising the whitened S_b. S_b has rank at most C − 1, so at most
//! C − 1 directions carry any between-class information.

use nalgebra::{DMatrix, DVector};

use crate::linalg::sym_eigen_desc;
use crate::pca::Pca;
use crate::projection::Projection;
use crate::ClassicalError;

/// Within-class eigenvalues below this fraction of the largest are dropped rather than
/// inverted: their directions are noise that whitening would blow up.
const WHITEN_TOLERANCE: f64 = 1e-10;

/// A trained Fisherfaces model.
#[derive(Debug, Clone, PartialEq)]
pub struct Lda {
    /// Pixel mean and the combined PCA·LDA directions (`dim x k`, k ≤ C − 1, unit length,
    /// not mutually orthogonal).
    pub projection: Projection,
    /// Ratio of between- to within-class scatter along each direction, descending.
    pub eigenvalues: Vec<f64>,
    /// Dimensions of the PCA step (N − C, or fewer when the data have lower rank).
    pub pca_components: usize,
}

impl Lda {
    /// Fits Fisherfaces to the columns of `x` (`dim x n`) with person `labels` (one per
    /// column, any integers), keeping at most `max_components` directions (at most C − 1).
    pub fn fit(
        x: &DMatrix<f64>,
        labels: &[usize],
        max_components: Option<usize>,
    ) -> Result<Self, ClassicalError> {
        let n = x.ncols();
        if labels.len() != n {
            return Err(ClassicalError::Dimension {
                message: format!("{} labels for {n} samples", labels.len()),
            });
        }
        let mut classes: Vec<usize> = labels.to_vec();
        classes.sort_unstable();
        classes.dedup();
        let c = classes.len();
        if c < 2 {
            return Err(ClassicalError::TooFewClasses { people: c });
        }
        if n <= c {
            return Err(ClassicalError::TooFewSamples {
                what: "LDA (Fisherfaces)",
                message: format!("{n} images of {c} people; at least one person needs two images to measure within-person variation"),
            });
        }
        let index: Vec<usize> = labels
            .iter()
            .map(|l| classes.binary_search(l).unwrap_or_default())
            .collect();

        let pca = Pca::fit(x, Some(n - c))?;
        let y = pca.projection.project(x);
        let m = y.nrows();

        let mut means = DMatrix::<f64>::zeros(m, c);
        let mut counts = vec![0usize; c];
        for (col, &k) in y.column_iter().zip(&index) {
            let mut mean = means.column_mut(k);
            mean += col;
            counts[k] += 1;
        }
        for (k, &count) in counts.iter().enumerate() {
            let mut mean = means.column_mut(k);
            mean /= count as f64;
        }
        // PCA centred the data, so the overall mean in this space is zero.
        let mut sw = DMatrix::<f64>::zeros(m, m);
        let mut diff = DVector::<f64>::zeros(m);
        for (col, &k) in y.column_iter().zip(&index) {
            diff.copy_from(&col);
            diff -= means.column(k);
            sw.ger(1.0, &diff, &diff, 1.0);
        }
        let mut sb = DMatrix::<f64>::zeros(m, m);
        for (k, &count) in counts.iter().enumerate() {
            let mu = means.column(k).into_owned();
            sb.ger(count as f64, &mu, &mu, 1.0);
        }

        let (w_values, w_vectors) = sym_eigen_desc(sw);
        let top = w_values.first().copied().unwrap_or(0.0);
        let keep = w_values
            .iter()
            .take_while(|&&v| v > top * WHITEN_TOLERANCE && v > 0.0)
            .count();
        if keep == 0 {
            return Err(ClassicalError::TooFewSamples {
                what: "LDA (Fisherfaces)",
                message: "no within-person variation in the training set".into(),
            });
        }
        let mut whiten = w_vectors.columns(0, keep).into_owned();
        for (mut col, v) in whiten.column_iter_mut().zip(&w_values) {
            col /= v.sqrt();
        }
        let sb_white = whiten.tr_mul(&sb) * &whiten;
        let (b_values, b_vectors) = sym_eigen_desc(sb_white);
        let limit = (c - 1).min(keep);
        let k = max_components.map_or(limit, |mc| mc.min(limit)).max(1);
        let mut lda = whiten * b_vectors.columns(0, k);
        // Unit-length directions, as OpenCV's Fisherfaces: the whitened scaling makes NN
        // distance Mahalanobis-like but lets the overfit directions (huge S_b/S_w ratios with
        // 5 images a person) dominate; measured on ORL 5/5 seed 1, 0.59 whitened vs 0.945 unit.
        for mut col in lda.column_iter_mut() {
            let norm = col.norm();
            if norm > 0.0 {
                col /= norm;
            }
        }
        let basis = &pca.projection.basis * lda;
        Ok(Self {
            projection: Projection {
                mean: pca.projection.mean,
                basis,
            },
            eigenvalues: b_values[..k].to_vec(),
            pca_components: m,
        })
    }

    /// Number of directions kept.
    pub fn components(&self) -> usize {
        self.projection.components()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use visage_rng::SplitMix64;

    /// `c` clusters of `per` points in `d` dimensions, well apart.
    fn clusters(d: usize, c: usize, per: usize, seed: u64) -> (DMatrix<f64>, Vec<usize>) {
        let mut rng = SplitMix64::new(seed);
        let mut u = || rng.uniform() - 0.5;
        let centres = DMatrix::from_fn(d, c, |_, _| u() * 10.0);
        let x = DMatrix::from_fn(d, c * per, |r, col| centres[(r, col / per)] + u());
        let labels = (0..c * per).map(|i| i / per).collect();
        (x, labels)
    }

    #[test]
    fn at_most_c_minus_one_directions() {
        for c in [2, 3, 7] {
            let (x, labels) = clusters(50, c, 4, c as u64);
            let lda = Lda::fit(&x, &labels, None).unwrap();
            assert_eq!(lda.components(), c - 1, "c={c}");
            let lda = Lda::fit(&x, &labels, Some(100)).unwrap();
            assert!(lda.components() < c);
            assert_eq!(lda.pca_components, 4 * c - c);
        }
    }

    #[test]
    fn separates_classes() {
        let (x, labels) = clusters(40, 5, 6, 11);
        let lda = Lda::fit(&x, &labels, None).unwrap();
        let y = lda.projection.project(&x);
        // Each sample's nearest other sample belongs to its own class.
        for i in 0..y.ncols() {
            let nearest = (0..y.ncols())
                .filter(|&j| j != i)
                .min_by(|&a, &b| {
                    let da = (y.column(i) - y.column(a)).norm();
                    let db = (y.column(i) - y.column(b)).norm();
                    da.total_cmp(&db)
                })
                .unwrap();
            assert_eq!(labels[nearest], labels[i]);
        }
        assert!(lda.eigenvalues.windows(2).all(|w| w[0] >= w[1]));
    }

    #[test]
    fn one_person_refused() {
        let (x, _) = clusters(10, 1, 5, 1);
        let err = Lda::fit(&x, &[0; 5], None).unwrap_err();
        assert!(matches!(err, ClassicalError::TooFewClasses { people: 1 }));
        assert!(err.to_string().contains("at least two people"), "{err}");
    }

    #[test]
    fn one_image_per_person_refused() {
        let (x, labels) = clusters(10, 3, 1, 1);
        assert!(matches!(
            Lda::fit(&x, &labels, None),
            Err(ClassicalError::TooFewSamples { .. })
        ));
    }
}
