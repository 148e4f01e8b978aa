//! The nearest-neighbour classifier: a test sample takes the label of the closest training
//! sample (what eigenfaces and Fisherfaces do once the faces are projected).

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use crate::linalg::column_sq_norms;

/// How closeness is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Euclidean distance (input units).
    #[default]
    Euclidean,
    /// One minus the cosine of the angle between the vectors (0: same direction, 2: opposite).
    Cosine,
}

/// Distances between every column of `a` (`dim x m`) and of `b` (`dim x n`), as `m x n`.
pub fn distances(metric: Metric, a: &DMatrix<f64>, b: &DMatrix<f64>) -> DMatrix<f64> {
    let mut dot = a.tr_mul(b);
    let na = column_sq_norms(a);
    let nb = column_sq_norms(b);
    for j in 0..dot.ncols() {
        for i in 0..dot.nrows() {
            let d = dot[(i, j)];
            dot[(i, j)] = match metric {
                Metric::Euclidean => (na[i] + nb[j] - 2.0 * d).max(0.0).sqrt(),
                Metric::Cosine => 1.0 - d / (na[i].sqrt() * nb[j].sqrt()).max(f64::MIN_POSITIVE),
            };
        }
    }
    dot
}

/// A 1-nearest-neighbour classifier over stored training samples.
#[derive(Debug, Clone, PartialEq)]
pub struct NearestNeighbour {
    /// The metric.
    pub metric: Metric,
    /// Training samples, one per column.
    pub gallery: DMatrix<f64>,
    /// Their labels.
    pub labels: Vec<usize>,
}

impl NearestNeighbour {
    /// Label and distance of the nearest training sample to each column of `x`.
    pub fn nearest(&self, x: &DMatrix<f64>) -> Vec<(usize, f64)> {
        let d = distances(self.metric, &self.gallery, x);
        d.column_iter()
            .map(|col| {
                let (i, dist) = col
                    .iter()
                    .enumerate()
                    .min_by(|a, b| a.1.total_cmp(b.1))
                    .map(|(i, &v)| (i, v))
                    .unwrap_or((0, f64::INFINITY));
                (self.labels.get(i).copied().unwrap_or(0), dist)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_nearest_label() {
        let gallery = DMatrix::from_column_slice(2, 3, &[0.0, 0.0, 10.0, 0.0, 0.0, 10.0]);
        let nn = NearestNeighbour {
            metric: Metric::Euclidean,
            gallery,
            labels: vec![7, 8, 9],
        };
        let q = DMatrix::from_column_slice(2, 2, &[9.0, 1.0, 1.0, 1.0]);
        let got = nn.nearest(&q);
        assert_eq!(got[0].0, 8);
        assert_eq!(got[1].0, 7);
        assert!((got[1].1 - 2f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn cosine_ignores_length() {
        let a = DMatrix::from_column_slice(2, 1, &[1.0, 1.0]);
        let b = DMatrix::from_column_slice(2, 2, &[5.0, 5.0, -1.0, -1.0]);
        let d = distances(Metric::Cosine, &a, &b);
        assert!(d[(0, 0)].abs() < 1e-12 && (d[(0, 1)] - 2.0).abs() < 1e-12);
    }
}
