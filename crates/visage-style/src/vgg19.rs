//! VGG19 (Simonyan & Zisserman 2015) convolutional part in torchvision's layout: `features.N`
//! for N in 0..=36, 16 3x3 convolutions (each followed by ReLU) and 5 2x2 max pools. Weights
//! load from torchvision's state dict (`vgg19-dcbb9e9d.pth`) or a safetensors file with the same
//! `features.N.weight` / `features.N.bias` keys; the classifier is ignored.

use std::path::Path;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::store::{KeyRemapper, ModuleSnapshot, PytorchStore, SafetensorsStore};
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor};

use crate::StyleError;

/// One entry of `features`: what torchvision has at that index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VggStep {
    /// A 3x3 convolution (stride 1, padding 1) to this many channels.
    Conv(usize),
    /// ReLU.
    Relu,
    /// 2x2 max pooling, stride 2.
    Pool,
}

/// torchvision's `cfgs["E"]`: channels per convolution, `0` for a max pool.
const CONFIG: [usize; 21] = [
    64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0,
];

/// The 37 steps of `features`, in order.
pub fn steps() -> Vec<VggStep> {
    let mut s = Vec::new();
    for c in CONFIG {
        if c == 0 {
            s.push(VggStep::Pool);
        } else {
            s.push(VggStep::Conv(c));
            s.push(VggStep::Relu);
        }
    }
    s
}

/// The usual names of the steps (`conv1_1`, `relu1_1`, …, `pool5`), index for index.
pub fn step_names() -> Vec<String> {
    let (mut block, mut within) = (1, 0);
    steps()
        .into_iter()
        .map(|s| match s {
            VggStep::Conv(_) => {
                within += 1;
                format!("conv{block}_{within}")
            }
            VggStep::Relu => format!("relu{block}_{within}"),
            VggStep::Pool => {
                let name = format!("pool{block}");
                block += 1;
                within = 0;
                name
            }
        })
        .collect()
}

/// VGG19's convolutions; pooling and ReLU have no parameters.
#[derive(Module, Debug)]
pub struct Vgg19 {
    /// The 16 convolutions, in order (`features.0`, `features.2`, `features.5`, …).
    pub convs: Vec<Conv2d>,
}

impl Vgg19 {
    /// A network with freshly initialised (random) weights on `device`: right for shapes,
    /// gradients and timing, not for pictures.
    pub fn new(device: &Device) -> Self {
        let mut convs = Vec::new();
        let mut cin = 3;
        for c in CONFIG.into_iter().filter(|&c| c != 0) {
            convs.push(
                Conv2dConfig::new([cin, c], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(device),
            );
            cin = c;
        }
        Self { convs }
    }

    /// Loads torchvision weights from a `.pth` state dict or a `.safetensors` file (chosen by
    /// the extension).
    pub fn load(path: &Path, device: &Device) -> Result<Self, StyleError> {
        let shown = path.display().to_string();
        if !path.is_file() {
            return Err(StyleError::MissingWeights {
                network: "VGG19",
                path: shown,
                hint: "pass torchvision's vgg19 .pth or a safetensors file with --weights",
            });
        }
        let err = |message: String| StyleError::Weights {
            network: "VGG19",
            path: shown.clone(),
            message,
        };
        let mut model = Self::new(device);
        let remap = Self::key_remapper().map_err(err)?;
        let is_safetensors = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"));
        let result = if is_safetensors {
            let mut store = SafetensorsStore::from_file(path)
                .allow_partial(true)
                .remap(remap);
            model
                .load_from(&mut store)
                .map_err(|e| err(e.to_string()))?
        } else {
            let mut store = PytorchStore::from_file(path)
                .map_indices_contiguous(false)
                .allow_partial(true)
                .remap(remap);
            model
                .load_from(&mut store)
                .map_err(|e| err(e.to_string()))?
        };
        if let Some(e) = result.errors.first() {
            return Err(err(format!("{e:?}")));
        }
        if let Some((name, _)) = result.missing.first() {
            return Err(err(format!(
                "{} tensors missing (for example {name}); is it torchvision's VGG19?",
                result.missing.len()
            )));
        }
        Ok(model)
    }

    fn key_remapper() -> Result<KeyRemapper, String> {
        let conv_indices = steps()
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, VggStep::Conv(_)))
            .map(|(i, _)| i)
            .collect::<Vec<_>>();
        let pairs = conv_indices
            .iter()
            .enumerate()
            .map(|(k, i)| (format!(r"^features\.{i}\."), format!("convs.{k}.")))
            .collect::<Vec<_>>();
        KeyRemapper::from_patterns(pairs).map_err(|e| e.to_string())
    }

    /// The outputs of the `features.N` steps named in `layers` (`N` in 0..=36), in that order;
    /// computation stops after the deepest one.
    pub fn features(&self, x: Tensor<4>, layers: &[usize]) -> Vec<Tensor<4>> {
        let deepest = layers.iter().copied().max().unwrap_or(0);
        let mut out: Vec<Option<Tensor<4>>> = vec![None; layers.len()];
        let mut h = x;
        let mut conv = 0;
        for (i, step) in steps().into_iter().enumerate().take(deepest + 1) {
            h = match step {
                VggStep::Conv(_) => {
                    conv += 1;
                    self.convs[conv - 1].forward(h)
                }
                VggStep::Relu => crate::network::relu_masked(h),
                VggStep::Pool => max_pool2d(h, MaxPoolOptions::new([2, 2])),
            };
            for (slot, _) in layers.iter().enumerate().filter(|(_, &l)| l == i) {
                out[slot] = Some(h.clone());
            }
        }
        out.into_iter().flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_layout_follow_torchvision() {
        let names = step_names();
        assert_eq!(names.len(), 37);
        assert_eq!(names[0], "conv1_1");
        assert_eq!(names[1], "relu1_1");
        assert_eq!(names[4], "pool1");
        assert_eq!(names[22], "relu4_2");
        assert_eq!(names[29], "relu5_1");
        assert_eq!(names[36], "pool5");
    }

    #[test]
    fn feature_shapes_follow_the_pools() {
        let device = Device::flex();
        let net = Vgg19::new(&device);
        let x = Tensor::<4>::zeros([1, 3, 32, 32], &device);
        let f = net.features(x, &[1, 6, 22, 36]);
        let dims: Vec<[usize; 4]> = f.iter().map(|t| t.dims()).collect();
        assert_eq!(
            dims,
            vec![
                [1, 64, 32, 32],
                [1, 128, 16, 16],
                [1, 512, 4, 4],
                [1, 512, 1, 1]
            ]
        );
    }

    /// torchvision's key layout: a safetensors file with `features.N.weight/bias` for each
    /// convolution (written here from random weights) loads into the same network.
    #[test]
    fn torchvision_keys_load_back() {
        let device = Device::flex();
        let net = Vgg19::new(&device);
        let dir = std::env::temp_dir().join(format!("visage-vgg19-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vgg19.safetensors");
        let to_torchvision = KeyRemapper::from_patterns(
            steps()
                .iter()
                .enumerate()
                .filter(|(_, s)| matches!(s, VggStep::Conv(_)))
                .enumerate()
                .map(|(k, (i, _))| (format!(r"^convs\.{k}\."), format!("features.{i}.")))
                .collect::<Vec<_>>(),
        )
        .unwrap();
        net.save_into(&mut SafetensorsStore::from_file(&path).remap(to_torchvision))
            .unwrap();
        // The file speaks torchvision: its header names features.0 and features.34, no convs.
        let bytes = std::fs::read(&path).unwrap();
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header = String::from_utf8_lossy(&bytes[8..8 + header_len]);
        assert!(
            header.contains("\"features.0.weight\"") && header.contains("\"features.34.bias\"")
        );
        assert!(!header.contains("convs"));

        let loaded = Vgg19::load(&path, &device).unwrap();
        let x = Tensor::<4>::random(
            [1, 3, 32, 32],
            burn::tensor::Distribution::Uniform(-1.0, 1.0),
            &device,
        );
        let a = net.features(x.clone(), &[35]).remove(0);
        let b = loaded.features(x, &[35]).remove(0);
        let diff: f32 = (a - b).abs().max().into_scalar();
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(diff, 0.0);
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = Vgg19::load(Path::new("no/such/vgg19.pth"), &Device::flex()).unwrap_err();
        assert!(e.to_string().contains("no/such/vgg19.pth"), "{e}");
    }
}
