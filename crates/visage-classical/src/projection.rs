//! Linear projections y = Wᵀ(x − μ): what eigenfaces and Fisherfaces reduce to once trained.

use nalgebra::{DMatrix, DVector};

use crate::linalg::centred;

/// A trained linear projection: `basis` holds one direction per column (`dim x k`).
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    /// The training mean, subtracted before projecting (`dim` values, in input units).
    pub mean: DVector<f64>,
    /// Directions, one per column (`dim x k`).
    pub basis: DMatrix<f64>,
}

impl Projection {
    /// Input dimension.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Output dimension.
    pub fn components(&self) -> usize {
        self.basis.ncols()
    }

    /// Projects each column of `x` (`dim x n`) to `k x n`.
    pub fn project(&self, x: &DMatrix<f64>) -> DMatrix<f64> {
        self.basis.tr_mul(&centred(x, &self.mean))
    }

    /// Maps coordinates (`k x n`) back to input space: μ + W y. Exact for orthonormal bases
    /// (PCA), a least-squares-free approximation otherwise.
    pub fn reconstruct(&self, y: &DMatrix<f64>) -> DMatrix<f64> {
        let mut x = &self.basis * y;
        for mut col in x.column_iter_mut() {
            col += &self.mean;
        }
        x
    }

    /// The same projection keeping only the first `k` directions.
    pub fn truncated(&self, k: usize) -> Self {
        Self {
            mean: self.mean.clone(),
            basis: self.basis.columns(0, k.min(self.components())).into_owned(),
        }
    }
}
