//! An adapter for the small 1D, 2D and 3D networks built from `visage_nn::layers`
//! (`Sequential`), such as the EKG and volume examples: their inputs are signals, images or
//! volumes, and the caller states each layer's window so receptive fields can be worked out.

use std::sync::Mutex;

use visage_nn::grad::pool::PoolNd;
use visage_nn::grad::{Array, ConvNd};
use visage_nn::layers::Sequential;

use crate::field::{AxisField, ReceptiveField};
use crate::input::{FeatureMap, Input};
use crate::units::Network;
use crate::InspectError;

/// What one layer of a [`Sequential`] does to the spatial grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerWindow {
    /// A sliding window; per spatial axis (outermost first), in the layer's input samples.
    Window {
        /// Window size per axis (dilation already applied).
        kernel: Vec<usize>,
        /// Step per axis.
        stride: Vec<usize>,
        /// Padding before the first window per axis.
        padding: Vec<usize>,
    },
    /// Per-sample (ReLU and the like).
    Pointwise,
    /// Everything after flattening: every output sees the whole input.
    Global,
}

impl LayerWindow {
    /// The window of a convolution (dilation widens it to `dilation * (k - 1) + 1`).
    pub fn conv(g: &ConvNd) -> Self {
        let axes = 3 - g.dims..3;
        Self::Window {
            kernel: axes
                .clone()
                .map(|a| g.dilation[a] * g.kernel[a].saturating_sub(1) + 1)
                .collect(),
            stride: axes.clone().map(|a| g.stride[a]).collect(),
            padding: axes.map(|a| g.padding[a]).collect(),
        }
    }

    /// The window of a pooling layer.
    pub fn pool(p: &PoolNd) -> Self {
        let axes = 3 - p.dims..3;
        Self::Window {
            kernel: axes.clone().map(|a| p.kernel[a]).collect(),
            stride: axes.clone().map(|a| p.stride[a]).collect(),
            padding: axes.map(|a| p.padding[a]).collect(),
        }
    }
}

/// A [`Sequential`] network over inputs with `axes` spatial axes (1: signals, 2: RGB images
/// scaled to 0..1, 3: volumes), one channel in for signals and volumes. Layers are named
/// `"{index}:{layer name}"`. Runs are serialised (the layers cache their inputs for backward).
pub struct SequentialInspector {
    net: Mutex<Sequential<f32>>,
    names: Vec<String>,
    windows: Vec<LayerWindow>,
    axes: usize,
}

impl std::fmt::Debug for SequentialInspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequentialInspector")
            .field("names", &self.names)
            .field("axes", &self.axes)
            .finish_non_exhaustive()
    }
}

impl SequentialInspector {
    /// Wraps a network, with one [`LayerWindow`] per layer.
    pub fn new(
        net: Sequential<f32>,
        windows: Vec<LayerWindow>,
        axes: usize,
    ) -> Result<Self, InspectError> {
        let summary = net.summary();
        if summary.len() != windows.len() {
            return Err(InspectError::Network(format!(
                "{} layers but {} windows",
                summary.len(),
                windows.len()
            )));
        }
        if !(1..=3).contains(&axes) {
            return Err(InspectError::Axes {
                expected: 3,
                got: axes,
            });
        }
        let names = summary
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{i}:{n}"))
            .collect();
        Ok(Self {
            net: Mutex::new(net),
            names,
            windows,
            axes,
        })
    }

    fn array(&self, input: &Input) -> Result<Array<f32>, InspectError> {
        if input.axes() != self.axes {
            return Err(InspectError::Axes {
                expected: self.axes,
                got: input.axes(),
            });
        }
        let bad = |e: visage_nn::NnError| InspectError::Network(e.to_string());
        match input {
            Input::Signal(s) => Array::from_vec(&[1, 1, s.len()], s.clone()).map_err(bad),
            Input::Volume { dims, data } => {
                Array::from_vec(&[1, 1, dims[0], dims[1], dims[2]], data.clone()).map_err(bad)
            }
            Input::Image(img) => {
                let (w, h) = (img.width() as usize, img.height() as usize);
                let mut data = vec![0f32; 3 * w * h];
                for (i, px) in img.pixels().enumerate() {
                    for c in 0..3 {
                        data[c * w * h + i] = px.0[c] as f32 / 255.0;
                    }
                }
                Array::from_vec(&[1, 3, h, w], data).map_err(bad)
            }
        }
    }
}

impl Network for SequentialInspector {
    fn layer_names(&self) -> Vec<String> {
        self.names.clone()
    }

    fn receptive_field(&self, layer: usize) -> ReceptiveField {
        let mut f = ReceptiveField::identity(self.axes);
        for w in self.windows.iter().take(layer + 1) {
            f = match w {
                LayerWindow::Window {
                    kernel,
                    stride,
                    padding,
                } => f.then(kernel, stride, padding),
                LayerWindow::Pointwise => f,
                LayerWindow::Global => ReceptiveField {
                    axes: vec![
                        AxisField {
                            size: usize::MAX / 4,
                            jump: 1,
                            offset: 0,
                        };
                        self.axes
                    ],
                },
            };
        }
        f
    }

    fn activations(
        &self,
        input: &Input,
        layers: &[usize],
    ) -> Result<Vec<FeatureMap>, InspectError> {
        let x = self.array(input)?;
        let outs = {
            let mut net = self.net.lock().unwrap_or_else(|e| e.into_inner());
            net.forward_all(&x)
                .map_err(|e| InspectError::Network(e.to_string()))?
        };
        layers
            .iter()
            .map(|&l| {
                let a = outs.get(l).ok_or_else(|| InspectError::Layer {
                    name: l.to_string(),
                    known: self.names.join(", "),
                })?;
                let d = a.dims();
                if d.len() != 2 + self.axes {
                    return Err(InspectError::Axes {
                        expected: self.axes,
                        got: d.len().saturating_sub(2),
                    });
                }
                Ok(FeatureMap {
                    channels: d[1],
                    dims: d[2..].to_vec(),
                    data: a.data()[..a.len() / d[0].max(1)].to_vec(),
                })
            })
            .collect()
    }
}
