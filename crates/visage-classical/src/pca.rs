//! Principal component analysis (eigenfaces).
//!
//! With fewer samples than pixels (ORL: 200 images of 10,304 pixels) the `dim x dim`
//! covariance is never formed: the eigenvectors of the small `n x n` Gram matrix AᵀA, mapped
//! through A, are those of AAᵀ with the same non-zero eigenvalues (the "snapshot" trick of
//! Turk and Pentland), which turns a 10,304² problem into a 200² one.

use nalgebra::DMatrix;

use crate::linalg::{centred, mean_column, sym_eigen_desc};
use crate::projection::Projection;
use crate::ClassicalError;

/// Eigenvalues below this fraction of the largest are rank deficiency, not signal.
const RANK_TOLERANCE: f64 = 1e-10;

/// A trained PCA: orthonormal components in decreasing order of variance.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    /// Mean and components (`dim x k`, orthonormal columns).
    pub projection: Projection,
    /// Variance along each component (input units squared), descending.
    pub variances: Vec<f64>,
}

impl Pca {
    /// Fits PCA to the columns of `x` (`dim x n`), keeping at most `max_components` (all
    /// non-degenerate ones when `None`; at most n − 1 since the data are centred).
    pub fn fit(x: &DMatrix<f64>, max_components: Option<usize>) -> Result<Self, ClassicalError> {
        Self::fit_path(x, max_components, x.ncols() < x.nrows())
    }

    fn fit_path(
        x: &DMatrix<f64>,
        max_components: Option<usize>,
        gram: bool,
    ) -> Result<Self, ClassicalError> {
        let (_, n) = x.shape();
        if n < 2 {
            return Err(ClassicalError::TooFewSamples {
                what: "PCA",
                message: format!("{n} sample(s); at least 2 are needed"),
            });
        }
        if max_components == Some(0) {
            return Err(ClassicalError::Parameter {
                message: "PCA needs at least one component".into(),
            });
        }
        let mean = mean_column(x);
        let a = centred(x, &mean);
        let scale = 1.0 / (n as f64 - 1.0);
        let (values, basis) = if gram {
            let (values, v) = sym_eigen_desc(a.tr_mul(&a));
            let u = &a * v;
            (values, u)
        } else {
            sym_eigen_desc(&a * a.transpose())
        };
        let top = values.first().copied().unwrap_or(0.0).max(0.0);
        let rank = values
            .iter()
            .take_while(|&&l| l > top * RANK_TOLERANCE && l > 0.0)
            .count();
        let k = max_components.map_or(rank, |m| m.min(rank)).min(n - 1);
        if k == 0 {
            return Err(ClassicalError::TooFewSamples {
                what: "PCA",
                message: "all samples are identical; there is no variance to model".into(),
            });
        }
        let mut basis = basis.columns(0, k).into_owned();
        // The snapshot trick gives A·v with norm √λ; renormalising each column is also a cheap
        // guard against the eigensolver's last-bit drift in the covariance path.
        for mut col in basis.column_iter_mut() {
            let norm = col.norm();
            if norm > 0.0 {
                col /= norm;
            }
        }
        Ok(Self {
            projection: Projection { mean, basis },
            variances: values[..k].iter().map(|l| l * scale).collect(),
        })
    }

    /// Number of components kept.
    pub fn components(&self) -> usize {
        self.projection.components()
    }

    /// Fraction of the total kept variance explained by the first `k` components.
    pub fn explained(&self, k: usize) -> f64 {
        let total: f64 = self.variances.iter().sum();
        self.variances.iter().take(k).sum::<f64>() / total.max(f64::MIN_POSITIVE)
    }

    /// Reconstructs the columns of `x` from their first `k` components.
    pub fn reconstruct_with(&self, x: &DMatrix<f64>, k: usize) -> DMatrix<f64> {
        let p = self.projection.truncated(k);
        p.reconstruct(&p.project(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use visage_rng::SplitMix64;

    /// Data on a few strong directions plus noise, as faces roughly are.
    pub(crate) fn toy(d: usize, n: usize, seed: u64) -> DMatrix<f64> {
        let mut rng = SplitMix64::new(seed);
        let mut u = || rng.uniform() - 0.5;
        let dirs = DMatrix::from_fn(d, 4, |_, _| u());
        let coefs = DMatrix::from_fn(4, n, |r, _| u() * (8.0 / (r + 1) as f64));
        let noise = DMatrix::from_fn(d, n, |_, _| u() * 0.05);
        dirs * coefs + noise
    }

    fn error(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
        (a - b).norm() / a.norm()
    }

    #[test]
    fn reconstruction_error_falls_and_vanishes_with_all_components() {
        // Both paths: fewer samples than pixels (Gram trick) and more.
        for (d, n) in [(300, 40), (20, 60)] {
            let x = toy(d, n, 3);
            let pca = Pca::fit(&x, None).unwrap();
            assert_eq!(pca.components(), (n - 1).min(d));
            let mut last = f64::INFINITY;
            for k in [1, 2, 4, 8, pca.components()] {
                let e = error(&x, &pca.reconstruct_with(&x, k));
                assert!(e < last, "d={d} n={n} k={k}: {e} !< {last}");
                last = e;
            }
            assert!(last < 1e-9, "d={d} n={n}: error with all components {last}");
        }
    }

    #[test]
    fn gram_and_covariance_paths_agree() {
        let x = toy(30, 25, 5);
        let gram = Pca::fit_path(&x, Some(5), true).unwrap();
        let cov = Pca::fit_path(&x, Some(5), false).unwrap();
        for (a, b) in gram.variances.iter().zip(&cov.variances) {
            assert!((a - b).abs() < 1e-9 * a.abs().max(1.0), "{a} vs {b}");
        }
        // Eigenvectors are defined up to sign.
        for k in 0..5 {
            let dot = gram
                .projection
                .basis
                .column(k)
                .dot(&cov.projection.basis.column(k));
            assert!((dot.abs() - 1.0).abs() < 1e-6, "component {k}: {dot}");
        }
    }

    #[test]
    fn components_are_orthonormal() {
        let pca = Pca::fit(&toy(200, 30, 9), Some(10)).unwrap();
        let b = &pca.projection.basis;
        let gram = b.tr_mul(b);
        assert!((gram - DMatrix::identity(10, 10)).norm() < 1e-9);
        assert!(pca.variances.windows(2).all(|w| w[0] >= w[1]));
    }

    #[test]
    fn too_few_samples_refused() {
        assert!(matches!(
            Pca::fit(&DMatrix::zeros(10, 1), None),
            Err(ClassicalError::TooFewSamples { .. })
        ));
        assert!(Pca::fit(&DMatrix::zeros(10, 5), None).is_err());
    }
}
