//! Checkpoints: the [`SimilarityModel`]'s tensors in one safetensors file, with the run's
//! settings, step, sampler state and learning curve as JSON in the file's `__metadata__`
//! (key `visage`), so that one file is enough to evaluate, inspect or resume; Adam's moments go
//! beside it (`optimizer.bpk`, burn's record format) so that a resumed run continues exactly.
//! Both files are written under a temporary name and renamed, so an interrupted save leaves the
//! previous checkpoint whole.

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::{ModuleOptimizer, OptimizerRecord};
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::model::{CosineClassifier, EmbeddingNet, LayerGeometry, PairHead, SimilarityModel};
use crate::train::{CurvePoint, Method, TrainConfig};
use crate::TrainError;

/// Metadata key holding [`CheckpointMeta`] as JSON.
const META_KEY: &str = "visage";

/// Everything a checkpoint says besides its tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// The settings of the run that wrote it.
    pub config: TrainConfig,
    /// Training steps done.
    pub step: usize,
    /// The batch sampler's random state after `step` steps.
    pub rng_state: u64,
    /// Loss (and accuracy where the method has one) so far.
    pub curve: Vec<CurvePoint>,
    /// Training time so far, seconds.
    pub train_seconds: f64,
    /// The ids of the model's parameters in visiting order: the optimizer's state is keyed by
    /// them, and a reloaded model gets them back.
    #[serde(default)]
    pub param_ids: Vec<u64>,
    /// The optimizer's state at `step`, when it was saved (without it, a resumed run restarts
    /// Adam's moments).
    #[serde(default)]
    pub optimizer: Option<OptimizerState>,
}

/// Where a checkpoint's optimizer state is and how to recognise it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptimizerState {
    /// File name, in the checkpoint's directory.
    pub file: String,
    /// SHA-256 of the file (hex): a state written by another save is refused.
    pub sha256: String,
}

fn err(path: &Path, message: impl ToString) -> TrainError {
    TrainError::Checkpoint {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// `path` with `.partial` appended: where a file is written before it replaces `path`.
fn partial(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

fn replace(from: &Path, to: &Path) -> Result<(), TrainError> {
    std::fs::rename(from, to).map_err(|e| TrainError::io(to, e))
}

/// Writes `model` and `meta` to `path` (replacing it only once the new file is complete), with
/// the model's parameter ids in `meta.param_ids`.
pub fn save(model: &SimilarityModel, meta: &CheckpointMeta, path: &Path) -> Result<(), TrainError> {
    let meta = CheckpointMeta {
        param_ids: param_ids(model),
        ..meta.clone()
    };
    let json = serde_json::to_string(&meta).map_err(|e| err(path, e))?;
    let tmp = partial(path);
    let mut store = SafetensorsStore::from_file(&tmp)
        .overwrite(true)
        .metadata(META_KEY, json);
    model.save_into(&mut store).map_err(|e| err(path, e))?;
    replace(&tmp, path)
}

/// Writes the optimizer's state as `optimizer.bpk` in `dir`, for [`CheckpointMeta::optimizer`].
pub fn save_optimizer(optim: &ModuleOptimizer, dir: &Path) -> Result<OptimizerState, TrainError> {
    let file = "optimizer.bpk";
    let path = dir.join(file);
    let tmp = partial(&path);
    optim.to_record().save(&tmp).map_err(|e| err(&path, e))?;
    let sha256 =
        visage_formats::manifest::sha256_file(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    replace(&tmp, &path)?;
    Ok(OptimizerState {
        file: file.to_string(),
        sha256,
    })
}

/// Reads the optimizer state that `checkpoint`'s metadata names, checking that it is the one
/// saved with it.
pub fn load_optimizer(
    checkpoint: &Path,
    state: &OptimizerState,
) -> Result<OptimizerRecord, TrainError> {
    let dir = checkpoint.parent().unwrap_or(Path::new("."));
    let path = dir.join(&state.file);
    let sha256 =
        visage_formats::manifest::sha256_file(&path).map_err(|e| TrainError::io(&path, e))?;
    if sha256 != state.sha256 {
        return Err(err(
            &path,
            "not the optimizer state saved with this checkpoint (a later or interrupted save?)",
        ));
    }
    OptimizerRecord::load(&path).map_err(|e| err(&path, e))
}

/// The ids of `model`'s parameters, in visiting order.
pub fn param_ids(model: &SimilarityModel) -> Vec<u64> {
    struct Ids(Vec<u64>);
    impl ModuleVisitor for Ids {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.id.val());
        }
    }
    let mut ids = Ids(Vec::new());
    model.visit(&mut ids);
    ids.0
}

/// `model` with its parameters given `ids` (in visiting order, as [`param_ids`] lists them).
fn with_param_ids(model: SimilarityModel, ids: &[u64]) -> Result<SimilarityModel, TrainError> {
    struct Renumber<'a> {
        ids: &'a [u64],
        next: usize,
    }
    impl ModuleMapper for Renumber<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, tensor, mapper) = param.consume();
            let id = self.ids.get(self.next).map_or(id, |&v| ParamId::from(v));
            self.next += 1;
            Param::from_mapped_value(id, tensor, mapper)
        }
    }
    let count = param_ids(&model).len();
    if ids.len() != count {
        return Err(TrainError::Config(format!(
            "the checkpoint lists {} parameter ids for a model of {count}",
            ids.len()
        )));
    }
    let mut renumber = Renumber { ids, next: 0 };
    Ok(model.map(&mut renumber))
}

/// Reads only the metadata of a checkpoint (the JSON header of the safetensors file).
pub fn read_meta(path: &Path) -> Result<CheckpointMeta, TrainError> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| TrainError::io(path, e))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|e| TrainError::io(path, e))?;
    let len = u64::from_le_bytes(len);
    if len > 64 << 20 {
        return Err(err(path, "not a safetensors file (header too large)"));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)
        .map_err(|e| TrainError::io(path, e))?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| err(path, format!("header: {e}")))?;
    let meta = header
        .get("__metadata__")
        .and_then(|m| m.get(META_KEY))
        .and_then(|m| m.as_str())
        .ok_or_else(|| {
            err(
                path,
                "no visage metadata: not a checkpoint of `visage train`",
            )
        })?;
    serde_json::from_str(meta).map_err(|e| err(path, format!("metadata: {e}")))
}

/// A fresh model of the shape `config` describes, on `device`, initialised from `config.seed`.
pub fn new_model(config: &TrainConfig, device: &Device) -> SimilarityModel {
    crate::model::seeded(device, config.seed, || {
        let net = EmbeddingNet::new(&config.net, device);
        let dim = config.net.embedding_dim();
        let head = config
            .pair_head()
            .map(|f| PairHead::new(dim, f.width(), device));
        let classifier = match config.method {
            Method::Classify { classes, .. } => Some(CosineClassifier::new(dim, classes, device)),
            _ => None,
        };
        SimilarityModel {
            net,
            head,
            classifier,
        }
    })
}

/// Loads a checkpoint into a model on `device` (plain for inference, autodiff to resume), its
/// parameters carrying the ids they had when saved.
pub fn load(path: &Path, device: &Device) -> Result<(SimilarityModel, CheckpointMeta), TrainError> {
    let meta = read_meta(path)?;
    let mut model = new_model(&meta.config, device);
    let mut store = SafetensorsStore::from_file(path);
    let applied = model.load_from(&mut store).map_err(|e| err(path, e))?;
    if !applied.missing.is_empty() || !applied.errors.is_empty() {
        return Err(err(
            path,
            format!(
                "{} tensors missing, {} errors (first missing: {:?})",
                applied.missing.len(),
                applied.errors.len(),
                applied.missing.first().map(|m| &m.0)
            ),
        ));
    }
    if !meta.param_ids.is_empty() {
        model = with_param_ids(model, &meta.param_ids)?;
    }
    Ok((model, meta))
}

/// A trained network ready to inspect: load it with [`InspectableNet::load`], run
/// [`InspectableNet::activations`] on images, read [`InspectableNet::geometry`].
#[derive(Debug)]
pub struct InspectableNet {
    /// The network, on the plain CPU device.
    pub net: EmbeddingNet,
    /// The checkpoint's metadata (input size in `meta.config.net.input_size`).
    pub meta: CheckpointMeta,
}

/// One conv layer's activations for a batch: `[batch, channels, height, width]`, row-major.
#[derive(Debug, Clone)]
pub struct Activations {
    /// The layer's path (`blocks.<i>.conv`, taken after batch norm and ReLU).
    pub layer: String,
    /// `[batch, channels, height, width]`.
    pub dims: [usize; 4],
    /// The values.
    pub values: Vec<f32>,
}

impl InspectableNet {
    /// Loads the embedding network of a `visage train` checkpoint.
    pub fn load(path: &Path) -> Result<Self, TrainError> {
        let device = Device::flex();
        let (model, meta) = load(path, &device)?;
        Ok(Self {
            net: model.net.valid(),
            meta,
        })
    }

    /// Input side the network expects, pixels (grey, ink = 1).
    pub fn input_size(&self) -> usize {
        self.meta.config.net.input_size
    }

    /// Each conv layer's activations for `images` (each `side x side`, ink in `[0, 1]`).
    pub fn activations(&self, images: &[Vec<f32>]) -> Result<Vec<Activations>, TrainError> {
        let x = images_tensor(images, self.input_size(), &Device::flex())?;
        Ok(self
            .net
            .conv_activations(x)
            .into_iter()
            .enumerate()
            .map(|(i, t)| Activations {
                layer: format!("blocks.{i}.conv"),
                dims: t.dims(),
                values: t
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// Kernel, stride and padding of every conv and pool layer, input first.
    pub fn geometry(&self) -> Vec<LayerGeometry> {
        self.net.layer_geometry()
    }
}

/// Stacks `side x side` images into a `[n, 1, side, side]` tensor.
pub fn images_tensor(
    images: &[Vec<f32>],
    side: usize,
    device: &Device,
) -> Result<Tensor<4>, TrainError> {
    if let Some(bad) = images.iter().find(|i| i.len() != side * side) {
        return Err(TrainError::Config(format!(
            "image has {} values, expected {side}x{side}",
            bad.len()
        )));
    }
    let flat: Vec<f32> = images.iter().flatten().copied().collect();
    Ok(Tensor::from_data(
        TensorData::new(flat, [images.len(), 1, side, side]),
        device,
    ))
}

/// The device type models are loaded on (re-exported so callers need not depend on burn).
pub type PlainDevice = Device;

/// The plain (inference) CPU device, `Device::flex()`.
pub fn plain_device() -> PlainDevice {
    Device::flex()
}
