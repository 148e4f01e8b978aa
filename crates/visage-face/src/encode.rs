//! Face encodings: an aligned 150x150 RGB chip in, a 128-d vector out, computed by dlib's face
//! recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`) exactly as dlib runs it, one
//! clean pass per chip (no jitter).
//!
//! Two encodings of the same person are usually less than 0.6 apart in Euclidean
//! [`distance`]; that is the tolerance face_recognition's `compare_faces` uses.

use std::path::{Path, PathBuf};

use visage_formats::dlib::resnet::ResnetModel;
use visage_image::RgbImage;
use visage_nn::{Compute, DeviceFaceResnet, FaceResnet, NnError};

use crate::FaceError;

/// A face encoding: 128 raw network outputs (not normalised; their length is usually about
/// 1.3–1.4).
pub type Encoding = [f32; 128];

/// The side of the square chips the encoder takes, in pixels.
pub const CHIP_SIZE: u32 = 150;

/// dlib's face ResNet, loaded and ready to encode chips. Cheap to share between threads
/// (`&FaceEncoder` is `Sync`); concurrent calls each use their own buffers.
#[derive(Debug)]
pub struct FaceEncoder {
    net: FaceResnet,
    /// The same network on a GPU, when [`FaceEncoder::run_on`] asked for one; encodings are
    /// then computed there.
    on_device: Option<DeviceFaceResnet>,
    path: PathBuf,
}

impl FaceEncoder {
    /// Reads the model file (`dlib_face_recognition_resnet_model_v1.dat`) and prepares the
    /// network.
    pub fn load(path: &Path) -> Result<Self, FaceError> {
        let model = ResnetModel::from_file(path)?;
        Self::from_model(&model, path)
    }

    /// Prepares the network from an already parsed model; `path` names it in errors.
    pub fn from_model(model: &ResnetModel, path: &Path) -> Result<Self, FaceError> {
        let net = FaceResnet::from_model(model).map_err(|e| unsupported(path, e))?;
        let (rows, cols) = net.input_size();
        if (rows, cols) != (CHIP_SIZE as usize, CHIP_SIZE as usize) {
            return Err(FaceError::Unsupported {
                path: path.to_path_buf(),
                message: format!(
                    "the network takes {cols}x{rows} inputs, not {CHIP_SIZE}x{CHIP_SIZE} chips"
                ),
            });
        }
        Ok(Self {
            net,
            on_device: None,
            path: path.to_path_buf(),
        })
    }

    /// Encodes on `compute` from now on: [`Compute::Gpu`] copies the weights to the GPU (an
    /// error if there is none), [`Compute::Cpu`] returns to Visage's CPU kernels. Encodings on
    /// a GPU agree with the CPU's to about 1e-5.
    pub fn run_on(&mut self, compute: Compute) -> Result<(), FaceError> {
        self.on_device = match compute {
            Compute::Cpu => None,
            Compute::Gpu => {
                let device = compute.device().map_err(|e| unsupported(&self.path, e))?;
                Some(
                    self.net
                        .on_device(&device)
                        .map_err(|e| unsupported(&self.path, e))?,
                )
            }
        };
        Ok(())
    }

    /// Where encodings are computed.
    pub fn compute(&self) -> Compute {
        if self.on_device.is_some() {
            Compute::Gpu
        } else {
            Compute::Cpu
        }
    }

    /// Encodes aligned face chips (as [`crate::align`] extracts them), one encoding per chip, in
    /// order. Every chip must be exactly [`CHIP_SIZE`] x [`CHIP_SIZE`] pixels; a chip of another
    /// size is an error, and nothing is encoded.
    ///
    /// The chips are batched through the network 16 at a time on the CPU (128 on a GPU); the
    /// results do not depend on how chips are grouped into calls.
    pub fn encode(&self, chips: &[RgbImage]) -> Result<Vec<Encoding>, FaceError> {
        if let Some((i, chip)) = chips
            .iter()
            .enumerate()
            .find(|(_, c)| c.width() != CHIP_SIZE || c.height() != CHIP_SIZE)
        {
            return Err(FaceError::InvalidInput(format!(
                "chip {i} is {}x{} pixels; the encoder takes {CHIP_SIZE}x{CHIP_SIZE} chips",
                chip.width(),
                chip.height()
            )));
        }
        let raw: Vec<&[u8]> = chips.iter().map(|c| c.as_raw().as_slice()).collect();
        match &self.on_device {
            Some(net) => net.encode_batch(&raw),
            None => self.net.encode_batch(&raw),
        }
        .map_err(|e| unsupported(&self.path, e))
    }

    /// Encodes one chip; see [`FaceEncoder::encode`].
    pub fn encode_one(&self, chip: &RgbImage) -> Result<Encoding, FaceError> {
        let mut out = self.encode(std::slice::from_ref(chip))?;
        out.pop().ok_or_else(|| FaceError::Unsupported {
            path: self.path.clone(),
            message: "the network returned no encoding".into(),
        })
    }
}

fn unsupported(path: &Path, e: NnError) -> FaceError {
    FaceError::Unsupported {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The Euclidean distance between two encodings (face_recognition's `face_distance`).
pub fn distance(a: &Encoding, b: &Encoding) -> f32 {
    squared_distance(a, b).sqrt()
}

/// The squared Euclidean distance between two encodings: cheaper than [`distance`] when only
/// comparing (compare it against the squared tolerance, for example 0.36 for 0.6).
pub fn squared_distance(a: &Encoding, b: &Encoding) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_are_euclidean() {
        let mut a = [0f32; 128];
        let mut b = [0f32; 128];
        a[0] = 3.0;
        b[5] = 4.0;
        assert_eq!(squared_distance(&a, &b), 25.0);
        assert_eq!(distance(&a, &b), 5.0);
        assert_eq!(distance(&a, &a), 0.0);
    }
}
