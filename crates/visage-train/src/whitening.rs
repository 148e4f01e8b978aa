//! Within-class whitening of embeddings, fitted on the training set's characters: the
//! directions in which one character's drawers differ most count least in a distance (the
//! within-class scatter of LDA, used as a metric). A one-shot run cannot estimate these
//! directions from its single image per class; the background set's many drawers can.

use nalgebra::{DMatrix, SymmetricEigen};

use crate::TrainError;

/// A symmetric `dim x dim` map `W = S^(-1/2)`, where `S` is the within-class scatter shrunk
/// toward a multiple of the identity; distances are then taken between `W x`.
#[derive(Debug, Clone)]
pub struct Whitening {
    dim: usize,
    /// Row-major `dim x dim`.
    matrix: Vec<f32>,
    /// Groups (classes) the scatter was taken over.
    pub groups: usize,
    /// Embeddings in those groups.
    pub samples: usize,
}

impl Whitening {
    /// The shrinkage chosen on two draws of 100 runs (docs/TRAINING.md).
    pub const DEFAULT_SHRINKAGE: f64 = 0.7;

    /// Fits the map on `groups`, each the embeddings of one class (groups of one embedding
    /// add nothing). `shrinkage` in `(0, 1]` blends the scatter with `trace / dim` times the
    /// identity: 1 makes `W` a multiple of the identity (plain distances), small values trust
    /// the scatter's every direction.
    pub fn fit(groups: &[Vec<Vec<f32>>], shrinkage: f64) -> Result<Self, TrainError> {
        Self::validate_shrinkage(shrinkage)?;
        let dim = groups
            .iter()
            .flatten()
            .map(Vec::len)
            .next()
            .ok_or_else(|| TrainError::Config("whitening: no embeddings to fit on".into()))?;
        let mut scatter = DMatrix::<f64>::zeros(dim, dim);
        let (mut samples, mut used, mut freedom) = (0, 0, 0);
        for group in groups.iter().filter(|g| g.len() >= 2) {
            if group.iter().any(|v| v.len() != dim) {
                return Err(TrainError::Config(
                    "whitening: embeddings of different sizes".into(),
                ));
            }
            let mut mean = vec![0.0f64; dim];
            for v in group {
                for (m, x) in mean.iter_mut().zip(v) {
                    *m += *x as f64 / group.len() as f64;
                }
            }
            for v in group {
                let d = nalgebra::DVector::from_iterator(
                    dim,
                    v.iter().zip(&mean).map(|(x, m)| *x as f64 - m),
                );
                scatter.ger(1.0, &d, &d, 1.0);
            }
            samples += group.len();
            used += 1;
            freedom += group.len() - 1;
        }
        if freedom == 0 {
            return Err(TrainError::Config(
                "whitening: no class with two or more embeddings".into(),
            ));
        }
        scatter /= freedom as f64;
        let scale = scatter.trace() / dim as f64;
        if !(scale > 0.0 && scale.is_finite()) {
            return Err(TrainError::Config(
                "whitening: the classes' embeddings do not vary".into(),
            ));
        }
        let shrunk =
            scatter * (1.0 - shrinkage) + DMatrix::identity(dim, dim) * (shrinkage * scale);
        let eig = SymmetricEigen::new(shrunk);
        let inv_sqrt = eig.eigenvalues.map(|l| 1.0 / l.max(1e-12 * scale).sqrt());
        let w =
            &eig.eigenvectors * DMatrix::from_diagonal(&inv_sqrt) * eig.eigenvectors.transpose();
        Ok(Self {
            dim,
            matrix: w.transpose().iter().map(|&x| x as f32).collect(),
            groups: used,
            samples,
        })
    }

    /// Checks that `shrinkage` lies in `(0, 1]`.
    pub fn validate_shrinkage(shrinkage: f64) -> Result<(), TrainError> {
        if shrinkage > 0.0 && shrinkage <= 1.0 {
            Ok(())
        } else {
            Err(TrainError::Config(format!(
                "whitening shrinkage {shrinkage}: from above 0 to 1"
            )))
        }
    }

    /// Embedding size the map takes.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// `W x`.
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        self.matrix
            .chunks(self.dim)
            .map(|row| row.iter().zip(x).map(|(a, b)| a * b).sum())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sq(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
    }

    /// Classes whose members differ a lot along x and little along y.
    fn stretched_classes() -> Vec<Vec<Vec<f32>>> {
        (0..10)
            .map(|c| {
                let (cx, cy) = (c as f32, (c * 7 % 10) as f32);
                vec![
                    vec![cx - 2.0, cy],
                    vec![cx + 2.0, cy],
                    vec![cx, cy - 0.1],
                    vec![cx, cy + 0.1],
                ]
            })
            .collect()
    }

    #[test]
    fn whitening_discounts_the_directions_drawers_vary_in() {
        let w = Whitening::fit(&stretched_classes(), 0.1).unwrap();
        assert_eq!((w.dim(), w.groups, w.samples), (2, 10, 40));
        // Plainly, b (off along y) is nearer a than c (off along x); whitened, c is.
        let (a, b, c) = ([0.0, 0.0], [0.0, 1.0], [1.5, 0.0]);
        assert!(sq(&a, &b) < sq(&a, &c));
        let (wa, wb, wc) = (w.apply(&a), w.apply(&b), w.apply(&c));
        assert!(sq(&wa, &wc) < sq(&wa, &wb), "{wa:?} {wb:?} {wc:?}");
        // The map is S^(-1/2): applied twice to the scatter's direction x, it divides by the
        // shrunk variance along x. Scatter (4 per class, 3 degrees of freedom): x 8/3, y
        // 0.02/3, shrunk by 0.1 toward their mean.
        let (sx, sy) = (8.0 / 3.0, 0.02 / 3.0);
        let var_x = 0.9 * sx + 0.1 * (sx + sy) / 2.0;
        let twice = w.apply(&w.apply(&[1.0, 0.0]));
        assert!((twice[0] - 1.0 / var_x).abs() < 1e-4, "{twice:?}");
        assert!(twice[1].abs() < 1e-5, "{twice:?}");
    }

    #[test]
    fn full_shrinkage_keeps_distances_in_proportion_and_bad_input_is_refused() {
        let w = Whitening::fit(&stretched_classes(), 1.0).unwrap();
        let (a, b, c) = ([0.3, -1.0], [2.0, 0.5], [-1.0, 4.0]);
        let ratio = sq(&w.apply(&a), &w.apply(&b)) / sq(&a, &b);
        let other = sq(&w.apply(&a), &w.apply(&c)) / sq(&a, &c);
        assert!((ratio - other).abs() < 1e-4 * ratio, "{ratio} {other}");
        assert!(Whitening::fit(&stretched_classes(), 0.0).is_err());
        assert!(Whitening::fit(&stretched_classes(), 1.5).is_err());
        assert!(Whitening::fit(&[vec![vec![1.0, 2.0]]], 0.5).is_err());
        assert!(Whitening::fit(&[vec![vec![1.0, 2.0], vec![1.0, 2.0]]], 0.5).is_err());
        assert!(Whitening::fit(&[], 0.5).is_err());
    }
}
