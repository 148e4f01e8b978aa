//! Fully connected layers over each sample's flattened (channel, row, column) values.

use crate::tensor::{Layout, Tensor};
use crate::NnError;

/// `out[o] = sum_i in[i] * weights[i * outputs + o] + bias[o]` for each sample, where `in` is the
/// sample's values in (channel, row, column) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    inputs: usize,
    outputs: usize,
    weights: Vec<f32>,
    bias: Option<Vec<f32>>,
}

impl Linear {
    /// A layer from `inputs * outputs` weights (input-major) and optional per-output biases.
    pub fn new(
        inputs: usize,
        outputs: usize,
        weights: Vec<f32>,
        bias: Option<Vec<f32>>,
    ) -> Result<Self, NnError> {
        if inputs == 0 || outputs == 0 || inputs.checked_mul(outputs) != Some(weights.len()) {
            return Err(NnError::shape(
                "Linear::new",
                format!(
                    "{} weights for {inputs} inputs x {outputs} outputs",
                    weights.len()
                ),
            ));
        }
        if bias.as_ref().is_some_and(|b| b.len() != outputs) {
            return Err(NnError::shape(
                "Linear::new",
                format!("bias length is not {outputs}"),
            ));
        }
        Ok(Self {
            inputs,
            outputs,
            weights,
            bias,
        })
    }

    /// Input length per sample.
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// The weights, `inputs * outputs` values, input-major (`weights[i * outputs + o]`).
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// The per-output biases, if the layer has them.
    pub fn bias(&self) -> Option<&[f32]> {
        self.bias.as_deref()
    }

    /// Output length per sample.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// Applies the layer to every sample of `input`; returns `n * outputs` values, sample-major.
    /// `flat` is scratch space for the flattened inputs.
    pub fn forward(&self, input: &Tensor, flat: &mut Vec<f32>) -> Result<Vec<f32>, NnError> {
        let s = input.shape();
        if s.c * s.h * s.w != self.inputs {
            return Err(NnError::shape(
                "linear",
                format!(
                    "input {s} has {} values per sample, expected {}",
                    s.c * s.h * s.w,
                    self.inputs
                ),
            ));
        }
        let n = s.n;
        let rows: &[f32] = if input.layout() == Layout::Nchw {
            input.data()
        } else {
            flat.clear();
            for i in 0..n {
                for c in 0..s.c {
                    flat.extend_from_slice(input.plane(i, c));
                }
            }
            flat
        };
        let mut out = vec![0f32; n * self.outputs];
        if n == 0 {
            return Ok(out);
        }
        // SAFETY: out is n x outputs, rows is n x inputs and weights is inputs x outputs, all
        // row-major and fully allocated.
        unsafe {
            gemm::gemm(
                n,
                self.outputs,
                self.inputs,
                out.as_mut_ptr(),
                1,
                self.outputs as isize,
                false,
                rows.as_ptr(),
                1,
                self.inputs as isize,
                self.weights.as_ptr(),
                1,
                self.outputs as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
        if let Some(bias) = &self.bias {
            for row in out.chunks_exact_mut(self.outputs) {
                row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::conv2d::tests::Lcg;
    use crate::tensor::Shape;

    #[test]
    fn matches_direct_loops() {
        let mut rng = Lcg(9);
        let s = Shape::new(3, 4, 2, 3);
        let (inputs, outputs) = (24, 5);
        let base = Tensor::from_vec(s, Layout::Nchw, rng.vec(s.len())).unwrap();
        let weights = rng.vec(inputs * outputs);
        for bias in [None, Some(rng.vec(outputs))] {
            let fc = Linear::new(inputs, outputs, weights.clone(), bias.clone()).unwrap();
            for layout in [Layout::Nchw, Layout::Cnhw] {
                let got = fc
                    .forward(&base.to_layout(layout), &mut Vec::new())
                    .unwrap();
                for n in 0..3 {
                    for o in 0..outputs {
                        let mut acc = bias.as_ref().map_or(0.0, |b| b[o] as f64);
                        for i in 0..inputs {
                            acc += base.data()[n * inputs + i] as f64
                                * weights[i * outputs + o] as f64;
                        }
                        assert!((got[n * outputs + o] as f64 - acc).abs() < 1e-5);
                    }
                }
            }
        }
        let fc = Linear::new(inputs, outputs, weights, None).unwrap();
        assert!(fc
            .forward(
                &Tensor::zeros(Shape::new(1, 1, 1, 23), Layout::Nchw),
                &mut Vec::new()
            )
            .is_err());
        assert!(Linear::new(2, 2, vec![0.0; 3], None).is_err());
    }
}
