//! Support vector machines trained by SMO, with the second-order working-set selection of
//! Fan, Chen and Lin (2005) that LIBSVM uses, and one-vs-rest for several classes.
//!
//! The whole kernel matrix is computed up front with one matrix product: the sets here
//! (hundreds to a few thousand samples) fit in memory, and a product is far faster than
//! kernel rows computed one at a time.

use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

use crate::linalg::column_sq_norms;
use crate::ClassicalError;

/// Largest training set accepted: the kernel matrix takes n² × 8 bytes (20,000: 3.2 GB).
pub const MAX_SAMPLES: usize = 20_000;
/// Stands in for a non-positive curvature, as LIBSVM's TAU does.
const TAU: f64 = 1e-12;

/// The kernel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Kernel {
    /// k(a, b) = a·b.
    Linear,
    /// k(a, b) = exp(−γ |a − b|²), γ in inverse input units squared.
    Rbf {
        /// γ.
        gamma: f64,
    },
}

/// Training parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SvmParams {
    /// The kernel.
    pub kernel: Kernel,
    /// Box constraint C (penalty on margin violations); larger fits the training set harder.
    pub c: f64,
    /// Stopping tolerance on the KKT violation (LIBSVM's default 1e-3).
    pub tolerance: f64,
    /// Largest number of SMO steps, per binary problem.
    pub max_iterations: usize,
}

impl Default for SvmParams {
    fn default() -> Self {
        Self {
            kernel: Kernel::Linear,
            c: 1.0,
            tolerance: 1e-3,
            max_iterations: 1_000_000,
        }
    }
}

/// γ = 1 / (dim · variance of all values), scikit-learn's "scale" default: it makes the
/// typical γ|a − b|² of order one whatever the units of the input.
pub fn gamma_scale(x: &DMatrix<f64>) -> f64 {
    let n = x.len().max(1) as f64;
    let mean = x.sum() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    1.0 / (x.nrows() as f64 * var.max(f64::MIN_POSITIVE))
}

/// The kernel between every column of `a` (`dim x m`) and every column of `b` (`dim x n`).
pub fn kernel_matrix(kernel: Kernel, a: &DMatrix<f64>, b: &DMatrix<f64>) -> DMatrix<f64> {
    let mut k = a.tr_mul(b);
    if let Kernel::Rbf { gamma } = kernel {
        let na = column_sq_norms(a);
        let nb = column_sq_norms(b);
        for j in 0..k.ncols() {
            for i in 0..k.nrows() {
                let d2 = (na[i] + nb[j] - 2.0 * k[(i, j)]).max(0.0);
                k[(i, j)] = (-gamma * d2).exp();
            }
        }
    }
    k
}

/// A trained two-class SVM: decision(x) = Σ coef_i k(sv_i, x) + bias; positive means class +1.
#[derive(Debug, Clone, PartialEq)]
pub struct BinarySvm {
    /// The kernel.
    pub kernel: Kernel,
    /// Support vectors, one per column.
    pub support: DMatrix<f64>,
    /// α_i·y_i per support vector.
    pub coef: Vec<f64>,
    /// The bias (−ρ in LIBSVM's terms).
    pub bias: f64,
    /// SMO steps taken.
    pub iterations: usize,
}

impl BinarySvm {
    /// Trains on the columns of `x` (`dim x n`) with labels `y` (true: class +1).
    pub fn train(x: &DMatrix<f64>, y: &[bool], params: &SvmParams) -> Result<Self, ClassicalError> {
        let k = kernel_matrix(params.kernel, x, x);
        Self::train_on_kernel(x, &k, y, params)
    }

    /// Trains with a precomputed kernel matrix `k` of the columns of `x`.
    pub fn train_on_kernel(
        x: &DMatrix<f64>,
        k: &DMatrix<f64>,
        y: &[bool],
        params: &SvmParams,
    ) -> Result<Self, ClassicalError> {
        let n = x.ncols();
        if y.len() != n || k.shape() != (n, n) {
            return Err(ClassicalError::Dimension {
                message: format!(
                    "{} labels and a {:?} kernel for {n} samples",
                    y.len(),
                    k.shape()
                ),
            });
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(params.c) || !positive(params.tolerance) {
            return Err(ClassicalError::Parameter {
                message: format!(
                    "SVM C ({}) and tolerance ({}) must be positive",
                    params.c, params.tolerance
                ),
            });
        }
        if y.iter().all(|&v| v) || y.iter().all(|&v| !v) {
            return Err(ClassicalError::TooFewSamples {
                what: "SVM",
                message: "both classes need at least one sample".into(),
            });
        }
        let ys: Vec<f64> = y.iter().map(|&v| if v { 1.0 } else { -1.0 }).collect();
        let c = params.c;
        let mut alpha = vec![0.0f64; n];
        // Gradient of ½αᵀQα − eᵀα with Q_ij = y_i y_j K_ij, at α = 0.
        let mut grad = vec![-1.0f64; n];
        let upper = |a: f64| a >= c;
        let lower = |a: f64| a <= 0.0;
        let mut iterations = 0;
        while iterations < params.max_iterations {
            // i: the most violating index among those that may move "up".
            let mut gmax = f64::NEG_INFINITY;
            let mut i_sel = None;
            for t in 0..n {
                let movable = if ys[t] > 0.0 {
                    !upper(alpha[t])
                } else {
                    !lower(alpha[t])
                };
                if movable && -ys[t] * grad[t] >= gmax {
                    gmax = -ys[t] * grad[t];
                    i_sel = Some(t);
                }
            }
            let Some(i) = i_sel else { break };
            // j: the partner giving the largest second-order decrease of the objective.
            let mut gmax2 = f64::NEG_INFINITY;
            let mut best = f64::INFINITY;
            let mut j_sel = None;
            for t in 0..n {
                let movable = if ys[t] > 0.0 {
                    !lower(alpha[t])
                } else {
                    !upper(alpha[t])
                };
                if !movable {
                    continue;
                }
                let yg = ys[t] * grad[t];
                gmax2 = gmax2.max(yg);
                let diff = gmax + yg;
                if diff > 0.0 {
                    let quad = k[(i, i)] + k[(t, t)] - 2.0 * k[(i, t)];
                    let obj = -(diff * diff) / if quad > 0.0 { quad } else { TAU };
                    if obj <= best {
                        best = obj;
                        j_sel = Some(t);
                    }
                }
            }
            let Some(j) = j_sel else { break };
            if gmax + gmax2 < params.tolerance {
                break;
            }
            iterations += 1;

            let (old_i, old_j) = (alpha[i], alpha[j]);
            let qij = ys[i] * ys[j] * k[(i, j)];
            if ys[i] != ys[j] {
                let quad = k[(i, i)] + k[(j, j)] + 2.0 * qij;
                let delta = (-grad[i] - grad[j]) / if quad > 0.0 { quad } else { TAU };
                let diff = alpha[i] - alpha[j];
                alpha[i] += delta;
                alpha[j] += delta;
                if diff > 0.0 {
                    if alpha[j] < 0.0 {
                        alpha[j] = 0.0;
                        alpha[i] = diff;
                    }
                } else if alpha[i] < 0.0 {
                    alpha[i] = 0.0;
                    alpha[j] = -diff;
                }
                if diff > 0.0 {
                    if alpha[i] > c {
                        alpha[i] = c;
                        alpha[j] = c - diff;
                    }
                } else if alpha[j] > c {
                    alpha[j] = c;
                    alpha[i] = c + diff;
                }
            } else {
                let quad = k[(i, i)] + k[(j, j)] - 2.0 * qij;
                let delta = (grad[i] - grad[j]) / if quad > 0.0 { quad } else { TAU };
                let sum = alpha[i] + alpha[j];
                alpha[i] -= delta;
                alpha[j] += delta;
                if sum > c {
                    if alpha[i] > c {
                        alpha[i] = c;
                        alpha[j] = sum - c;
                    }
                } else if alpha[j] < 0.0 {
                    alpha[j] = 0.0;
                    alpha[i] = sum;
                }
                if sum > c {
                    if alpha[j] > c {
                        alpha[j] = c;
                        alpha[i] = sum - c;
                    }
                } else if alpha[i] < 0.0 {
                    alpha[i] = 0.0;
                    alpha[j] = sum;
                }
            }
            let (di, dj) = (alpha[i] - old_i, alpha[j] - old_j);
            for t in 0..n {
                grad[t] += ys[t] * (ys[i] * k[(i, t)] * di + ys[j] * k[(j, t)] * dj);
            }
        }

        // ρ from the free vectors (0 < α < C), else the middle of the feasible interval.
        let (mut free, mut sum_free) = (0usize, 0.0f64);
        let (mut ub, mut lb) = (f64::INFINITY, f64::NEG_INFINITY);
        for t in 0..n {
            let yg = ys[t] * grad[t];
            if upper(alpha[t]) {
                if ys[t] < 0.0 {
                    ub = ub.min(yg);
                } else {
                    lb = lb.max(yg);
                }
            } else if lower(alpha[t]) {
                if ys[t] > 0.0 {
                    ub = ub.min(yg);
                } else {
                    lb = lb.max(yg);
                }
            } else {
                free += 1;
                sum_free += yg;
            }
        }
        let rho = if free > 0 {
            sum_free / free as f64
        } else {
            (ub + lb) / 2.0
        };

        let sv: Vec<usize> = (0..n).filter(|&t| alpha[t] > 0.0).collect();
        Ok(Self {
            kernel: params.kernel,
            support: x.select_columns(sv.iter()),
            coef: sv.iter().map(|&t| alpha[t] * ys[t]).collect(),
            bias: -rho,
            iterations,
        })
    }

    /// Decision values of the columns of `x`; positive means class +1.
    pub fn decision(&self, x: &DMatrix<f64>) -> Vec<f64> {
        if self.support.ncols() == 0 {
            return vec![self.bias; x.ncols()];
        }
        let k = kernel_matrix(self.kernel, &self.support, x);
        let coef = DVector::from_column_slice(&self.coef);
        k.tr_mul(&coef).iter().map(|v| v + self.bias).collect()
    }
}

/// One-vs-rest SVMs over several classes: the class whose SVM gives the largest decision
/// value wins.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiSvm {
    /// One SVM per class label `0..classes`, that class against all others.
    pub machines: Vec<BinarySvm>,
}

impl MultiSvm {
    /// Trains on the columns of `x` with class `labels` in `0..classes`.
    pub fn train(
        x: &DMatrix<f64>,
        labels: &[usize],
        classes: usize,
        params: &SvmParams,
    ) -> Result<Self, ClassicalError> {
        if x.ncols() > MAX_SAMPLES {
            return Err(ClassicalError::Parameter {
                message: format!(
                    "{} training samples; the SVM takes at most {MAX_SAMPLES}",
                    x.ncols()
                ),
            });
        }
        if classes < 2 {
            return Err(ClassicalError::TooFewClasses { people: classes });
        }
        let k = kernel_matrix(params.kernel, x, x);
        let machines = (0..classes)
            .map(|class| {
                let y: Vec<bool> = labels.iter().map(|&l| l == class).collect();
                BinarySvm::train_on_kernel(x, &k, &y, params)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { machines })
    }

    /// The predicted class of each column of `x`.
    pub fn predict(&self, x: &DMatrix<f64>) -> Vec<usize> {
        let scores: Vec<Vec<f64>> = self.machines.iter().map(|m| m.decision(x)).collect();
        (0..x.ncols())
            .map(|i| {
                (0..scores.len())
                    .max_by(|&a, &b| scores[a][i].total_cmp(&scores[b][i]))
                    .unwrap_or(0)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use visage_rng::SplitMix64;

    /// Points on both sides of the line x + 2y = 1, none closer to it than `margin`.
    fn separable(n: usize, margin: f64, seed: u64) -> (DMatrix<f64>, Vec<bool>) {
        let mut rng = SplitMix64::new(seed);
        let mut cols = Vec::new();
        let mut y = Vec::new();
        while y.len() < n {
            let (a, b) = (rng.uniform() * 4.0 - 2.0, rng.uniform() * 4.0 - 2.0);
            let s = (a + 2.0 * b - 1.0) / 5f64.sqrt();
            if s.abs() >= margin {
                cols.extend([a, b]);
                y.push(s > 0.0);
            }
        }
        (DMatrix::from_column_slice(2, n, &cols), y)
    }

    #[test]
    fn linear_svm_separates_separable_set_exactly() {
        let (x, y) = separable(200, 0.05, 1);
        let params = SvmParams {
            c: 1e4,
            ..SvmParams::default()
        };
        let svm = BinarySvm::train(&x, &y, &params).unwrap();
        let d = svm.decision(&x);
        for (i, (&di, &yi)) in d.iter().zip(&y).enumerate() {
            assert_eq!(di > 0.0, yi, "sample {i}: decision {di}");
        }
        // The separating direction found is close to the true normal (1, 2).
        let w = &svm.support * DVector::from_column_slice(&svm.coef);
        let cos = (w[0] + 2.0 * w[1]) / (w.norm() * 5f64.sqrt());
        assert!(cos > 0.99, "cos {cos}");
        assert!(
            svm.support.ncols() < 20,
            "{} support vectors",
            svm.support.ncols()
        );
    }

    #[test]
    fn rbf_svm_separates_a_ring() {
        let mut rng = SplitMix64::new(4);
        let mut cols = Vec::new();
        let mut y = Vec::new();
        for i in 0..120 {
            let r = if i % 2 == 0 { 0.5 } else { 2.0 } + 0.2 * rng.uniform();
            let t = rng.uniform() * std::f64::consts::TAU;
            cols.extend([r * t.cos(), r * t.sin()]);
            y.push(i % 2 == 0);
        }
        let x = DMatrix::from_column_slice(2, 120, &cols);
        let params = SvmParams {
            kernel: Kernel::Rbf { gamma: 1.0 },
            c: 100.0,
            ..SvmParams::default()
        };
        let svm = BinarySvm::train(&x, &y, &params).unwrap();
        let d = svm.decision(&x);
        assert!(d.iter().zip(&y).all(|(&di, &yi)| (di > 0.0) == yi));
    }

    #[test]
    fn one_vs_rest_on_three_clusters() {
        let centres = [(0.0, 0.0), (5.0, 0.0), (0.0, 5.0)];
        let mut rng = SplitMix64::new(2);
        let mut cols = Vec::new();
        let mut labels = Vec::new();
        for i in 0..60 {
            let (cx, cy) = centres[i % 3];
            cols.extend([cx + rng.uniform(), cy + rng.uniform()]);
            labels.push(i % 3);
        }
        let x = DMatrix::from_column_slice(2, 60, &cols);
        let svm = MultiSvm::train(&x, &labels, 3, &SvmParams::default()).unwrap();
        assert_eq!(svm.predict(&x), labels);
    }

    #[test]
    fn one_class_refused() {
        let x = DMatrix::from_element(2, 4, 1.0);
        assert!(BinarySvm::train(&x, &[true; 4], &SvmParams::default()).is_err());
        assert!(MultiSvm::train(&x, &[0; 4], 1, &SvmParams::default()).is_err());
    }
}
