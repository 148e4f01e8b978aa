//! A trained classifier (features + classifier) and its file format.
//!
//! # File format (`.vcm`, version 1)
//!
//! | bytes | content |
//! |---|---|
//! | 0..8 | magic `VISAGECM` |
//! | 8..16 | header length H, u64 little-endian |
//! | 16..16+H | header: UTF-8 JSON (method, input, people, classifier settings, tensor table) |
//! | 16+H.. | tensor data: f32 little-endian |
//!
//! Every matrix is stored column-major (one sample or one direction per column) at the
//! element offset, with the row and column counts the header's `tensors` table gives.

use std::collections::BTreeMap;
use std::path::Path;

use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

use crate::knn::{Metric, NearestNeighbour};
use crate::lda::Lda;
use crate::pca::Pca;
use crate::projection::Projection;
use crate::svm::{gamma_scale, BinarySvm, Kernel, MultiSvm, SvmParams};
use crate::ClassicalError;

const MAGIC: &[u8; 8] = b"VISAGECM";
const FORMAT: u32 = 1;

/// What the model takes as input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Input {
    /// Gray images of this size, intensities in [0, 1], row-major.
    Gray {
        /// Width, in pixels.
        width: u32,
        /// Height, in pixels.
        height: u32,
    },
    /// Feature vectors computed elsewhere (e.g. `"dlib"`: 128-d face encodings).
    Vector {
        /// Length of each vector.
        dim: usize,
        /// What produces them.
        kind: String,
    },
}

impl Input {
    /// Values per sample.
    pub fn dim(&self) -> usize {
        match self {
            Input::Gray { width, height } => (*width as usize) * (*height as usize),
            Input::Vector { dim, .. } => *dim,
        }
    }
}

/// Which features the classifier sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureSpec {
    /// The input itself.
    Raw,
    /// PCA projection with at most this many components (all when None).
    Pca(Option<usize>),
    /// Fisherfaces projection with at most this many directions (C − 1 when None).
    Lda(Option<usize>),
}

/// Which classifier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClassifierSpec {
    /// 1-nearest neighbour.
    Nearest(Metric),
    /// One-vs-rest SVM.
    Svm {
        /// RBF kernel when true, linear otherwise.
        rbf: bool,
        /// RBF γ (inverse feature units squared); None: [`gamma_scale`] of the features.
        gamma: Option<f64>,
        /// Box constraint C.
        c: f64,
    },
}

/// The trained classifier.
#[derive(Debug, Clone, PartialEq)]
pub enum Classifier {
    /// 1-nearest neighbour over the training features.
    Nearest(NearestNeighbour),
    /// One-vs-rest SVMs.
    Svm(MultiSvm),
}

/// A trained model: optional projection, then a classifier over `people`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassicalModel {
    /// The method's name as the user gave it (e.g. "eigenfaces").
    pub method: String,
    /// What the model takes.
    pub input: Input,
    /// Person names, indexed by class label.
    pub people: Vec<String>,
    /// PCA or LDA projection applied before the classifier.
    pub projection: Option<Projection>,
    /// The classifier.
    pub classifier: Classifier,
}

/// What training produced besides the model, for pictures and reports.
#[derive(Debug, Clone, Default)]
pub struct TrainExtras {
    /// The PCA, when the features were PCA.
    pub pca: Option<Pca>,
    /// The LDA, when the features were LDA.
    pub lda: Option<Lda>,
}

impl ClassicalModel {
    /// Trains on the columns of `x` (`dim x n`) with class `labels` (indices into `people`).
    pub fn train(
        method: &str,
        input: Input,
        people: Vec<String>,
        x: &DMatrix<f64>,
        labels: &[usize],
        features: FeatureSpec,
        classifier: ClassifierSpec,
    ) -> Result<(Self, TrainExtras), ClassicalError> {
        if x.nrows() != input.dim() || labels.len() != x.ncols() {
            return Err(ClassicalError::Dimension {
                message: format!(
                    "{}x{} data and {} labels for input of {} values",
                    x.nrows(),
                    x.ncols(),
                    labels.len(),
                    input.dim()
                ),
            });
        }
        if let Some(&l) = labels.iter().find(|&&l| l >= people.len()) {
            return Err(ClassicalError::Dimension {
                message: format!("label {l} but only {} people", people.len()),
            });
        }
        let mut extras = TrainExtras::default();
        let projection = match features {
            FeatureSpec::Raw => None,
            FeatureSpec::Pca(k) => {
                let pca = Pca::fit(x, k)?;
                let p = pca.projection.clone();
                extras.pca = Some(pca);
                Some(p)
            }
            FeatureSpec::Lda(k) => {
                let lda = Lda::fit(x, labels, k)?;
                let p = lda.projection.clone();
                extras.lda = Some(lda);
                Some(p)
            }
        };
        let feats = match &projection {
            Some(p) => p.project(x),
            None => x.clone(),
        };
        let classifier = match classifier {
            ClassifierSpec::Nearest(metric) => Classifier::Nearest(NearestNeighbour {
                metric,
                gallery: feats,
                labels: labels.to_vec(),
            }),
            ClassifierSpec::Svm { rbf, gamma, c } => {
                let kernel = if rbf {
                    Kernel::Rbf {
                        gamma: gamma.unwrap_or_else(|| gamma_scale(&feats)),
                    }
                } else {
                    Kernel::Linear
                };
                let params = SvmParams {
                    kernel,
                    c,
                    ..SvmParams::default()
                };
                Classifier::Svm(MultiSvm::train(&feats, labels, people.len(), &params)?)
            }
        };
        Ok((
            Self {
                method: method.to_string(),
                input,
                people,
                projection,
                classifier,
            },
            extras,
        ))
    }

    /// The features the classifier sees for the columns of `x`.
    pub fn features(&self, x: &DMatrix<f64>) -> DMatrix<f64> {
        match &self.projection {
            Some(p) => p.project(x),
            None => x.clone(),
        }
    }

    /// The predicted class label of each column of `x` (`dim x n`).
    pub fn predict(&self, x: &DMatrix<f64>) -> Result<Vec<usize>, ClassicalError> {
        if x.nrows() != self.input.dim() {
            return Err(ClassicalError::Dimension {
                message: format!(
                    "samples of {} values for a model taking {}",
                    x.nrows(),
                    self.input.dim()
                ),
            });
        }
        let f = self.features(x);
        Ok(match &self.classifier {
            Classifier::Nearest(nn) => nn.nearest(&f).into_iter().map(|(l, _)| l).collect(),
            Classifier::Svm(svm) => svm.predict(&f),
        })
    }

    /// Fraction of the columns of `x` predicted as their `labels`.
    pub fn accuracy(&self, x: &DMatrix<f64>, labels: &[usize]) -> Result<f64, ClassicalError> {
        let predicted = self.predict(x)?;
        let right = predicted.iter().zip(labels).filter(|(a, b)| a == b).count();
        Ok(right as f64 / labels.len().max(1) as f64)
    }

    /// Writes the model (see the module documentation for the format).
    pub fn save(&self, path: &Path) -> Result<(), ClassicalError> {
        let mut blob = Blob::default();
        let projection = self.projection.as_ref().map(|p| ProjectionHeader {
            mean: blob.put(&DMatrix::from_column_slice(
                p.mean.len(),
                1,
                p.mean.as_slice(),
            )),
            basis: blob.put(&p.basis),
        });
        let classifier = match &self.classifier {
            Classifier::Nearest(nn) => ClassifierHeader::Nearest {
                metric: nn.metric,
                labels: nn.labels.clone(),
                gallery: blob.put(&nn.gallery),
            },
            Classifier::Svm(svm) => ClassifierHeader::Svm {
                machines: svm
                    .machines
                    .iter()
                    .map(|m| MachineHeader {
                        kernel: m.kernel,
                        bias: m.bias,
                        iterations: m.iterations,
                        support: blob.put(&m.support),
                        coef: blob.put(&DMatrix::from_column_slice(m.coef.len(), 1, &m.coef)),
                    })
                    .collect(),
            },
        };
        let header = Header {
            format: FORMAT,
            method: self.method.clone(),
            input: self.input.clone(),
            people: self.people.clone(),
            projection,
            classifier,
            meta: BTreeMap::new(),
        };
        let json = serde_json::to_vec(&header).map_err(|e| ClassicalError::BadModel {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut bytes = Vec::with_capacity(16 + json.len() + blob.data.len() * 4);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(json.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&json);
        for v in &blob.data {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        std::fs::write(path, bytes).map_err(|source| ClassicalError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a model written by [`ClassicalModel::save`].
    pub fn load(path: &Path) -> Result<Self, ClassicalError> {
        let bytes = std::fs::read(path).map_err(|source| ClassicalError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |message: String| ClassicalError::BadModel {
            path: path.to_path_buf(),
            message,
        };
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(bad("missing the VISAGECM magic".into()));
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&bytes[8..16]);
        let h = usize::try_from(u64::from_le_bytes(len))
            .map_err(|_| bad("header length too large".into()))?;
        let end = 16usize
            .checked_add(h)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| bad("truncated header".into()))?;
        let header: Header =
            serde_json::from_slice(&bytes[16..end]).map_err(|e| bad(format!("header: {e}")))?;
        if header.format != FORMAT {
            return Err(bad(format!(
                "format version {} (this build reads {FORMAT})",
                header.format
            )));
        }
        let rest = &bytes[end..];
        if rest.len() % 4 != 0 {
            return Err(bad("tensor data is not a whole number of f32 values".into()));
        }
        let data: Vec<f32> = rest
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let get = |t: &TensorInfo| -> Result<DMatrix<f64>, ClassicalError> {
            let count = t
                .rows
                .checked_mul(t.cols)
                .ok_or_else(|| bad("tensor too large".into()))?;
            let slice = t
                .offset
                .checked_add(count)
                .and_then(|e| data.get(t.offset..e))
                .ok_or_else(|| {
                    bad(format!(
                        "tensor at {} of {}x{} runs past the data",
                        t.offset, t.rows, t.cols
                    ))
                })?;
            Ok(DMatrix::from_iterator(
                t.rows,
                t.cols,
                slice.iter().map(|&v| f64::from(v)),
            ))
        };
        let dim = header.input.dim();
        let projection = match &header.projection {
            Some(p) => {
                let mean = get(&p.mean)?;
                let basis = get(&p.basis)?;
                if mean.nrows() != dim || basis.nrows() != dim {
                    return Err(bad(format!(
                        "projection of {} values for input of {dim}",
                        basis.nrows()
                    )));
                }
                Some(Projection {
                    mean: DVector::from_column_slice(mean.as_slice()),
                    basis,
                })
            }
            None => None,
        };
        let feature_dim = projection.as_ref().map_or(dim, |p| p.components());
        let classes = header.people.len();
        let classifier = match &header.classifier {
            ClassifierHeader::Nearest {
                metric,
                labels,
                gallery,
            } => {
                let gallery = get(gallery)?;
                if gallery.nrows() != feature_dim
                    || gallery.ncols() != labels.len()
                    || labels.iter().any(|&l| l >= classes)
                {
                    return Err(bad(
                        "nearest-neighbour gallery does not match its labels or features".into(),
                    ));
                }
                Classifier::Nearest(NearestNeighbour {
                    metric: *metric,
                    gallery,
                    labels: labels.clone(),
                })
            }
            ClassifierHeader::Svm { machines } => {
                if machines.len() != classes {
                    return Err(bad(format!("{} SVMs for {classes} people", machines.len())));
                }
                let machines = machines
                    .iter()
                    .map(|m| {
                        let support = get(&m.support)?;
                        let coef = get(&m.coef)?;
                        if (support.nrows() != feature_dim && support.ncols() > 0)
                            || coef.len() != support.ncols()
                        {
                            return Err(
                                bad("SVM support vectors do not match the features".into()),
                            );
                        }
                        Ok(BinarySvm {
                            kernel: m.kernel,
                            support,
                            coef: coef.as_slice().to_vec(),
                            bias: m.bias,
                            iterations: m.iterations,
                        })
                    })
                    .collect::<Result<_, ClassicalError>>()?;
                Classifier::Svm(MultiSvm { machines })
            }
        };
        Ok(Self {
            method: header.method,
            input: header.input,
            people: header.people,
            projection,
            classifier,
        })
    }
}

#[derive(Default)]
struct Blob {
    data: Vec<f32>,
}

impl Blob {
    fn put(&mut self, m: &DMatrix<f64>) -> TensorInfo {
        let offset = self.data.len();
        // f32 halves the file; the models are baselines whose accuracy does not hinge on the
        // last bits of a projection.
        self.data.extend(m.iter().map(|&v| v as f32));
        TensorInfo {
            offset,
            rows: m.nrows(),
            cols: m.ncols(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct TensorInfo {
    offset: usize,
    rows: usize,
    cols: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct ProjectionHeader {
    mean: TensorInfo,
    basis: TensorInfo,
}

#[derive(Debug, Serialize, Deserialize)]
struct MachineHeader {
    kernel: Kernel,
    bias: f64,
    iterations: usize,
    support: TensorInfo,
    coef: TensorInfo,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ClassifierHeader {
    Nearest {
        metric: Metric,
        labels: Vec<usize>,
        gallery: TensorInfo,
    },
    Svm {
        machines: Vec<MachineHeader>,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: u32,
    method: String,
    input: Input,
    people: Vec<String>,
    projection: Option<ProjectionHeader>,
    classifier: ClassifierHeader,
    #[serde(default)]
    meta: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> (DMatrix<f64>, Vec<usize>) {
        let mut rng = visage_rng::SplitMix64::new(3);
        let x = DMatrix::from_fn(6, 12, |r, c| {
            let noise = rng.uniform();
            ((c / 4) as f64) * 2.0 * ((r % 3) as f64 - 1.0) + noise * 0.3
        });
        (x, (0..12).map(|c| c / 4).collect())
    }

    #[test]
    fn save_load_round_trip_predicts_the_same() {
        let (x, labels) = data();
        let people = vec!["a".into(), "b".into(), "c".into()];
        let input = Input::Vector {
            dim: 6,
            kind: "toy".into(),
        };
        let dir = tempfile::tempdir().unwrap();
        for (features, classifier) in [
            (
                FeatureSpec::Pca(Some(3)),
                ClassifierSpec::Nearest(Metric::Euclidean),
            ),
            (
                FeatureSpec::Lda(None),
                ClassifierSpec::Nearest(Metric::Cosine),
            ),
            (
                FeatureSpec::Raw,
                ClassifierSpec::Svm {
                    rbf: true,
                    gamma: None,
                    c: 1.0,
                },
            ),
        ] {
            let (model, _) = ClassicalModel::train(
                "m",
                input.clone(),
                people.clone(),
                &x,
                &labels,
                features,
                classifier,
            )
            .unwrap();
            let path = dir.path().join("m.vcm");
            model.save(&path).unwrap();
            let back = ClassicalModel::load(&path).unwrap();
            assert_eq!(back.people, model.people);
            assert_eq!(back.predict(&x).unwrap(), model.predict(&x).unwrap());
            assert_eq!(
                model.accuracy(&x, &labels).unwrap(),
                1.0,
                "{features:?} {classifier:?}"
            );
        }
    }

    #[test]
    fn damaged_files_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.vcm");
        std::fs::write(&path, b"VISAGECM\xff\xff\xff\xff\xff\xff\xff\x7f{}").unwrap();
        assert!(matches!(
            ClassicalModel::load(&path),
            Err(ClassicalError::BadModel { .. })
        ));
        std::fs::write(&path, b"nope").unwrap();
        assert!(matches!(
            ClassicalModel::load(&path),
            Err(ClassicalError::BadModel { .. })
        ));
    }
}
