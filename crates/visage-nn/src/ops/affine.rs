//! Per-channel affine transforms and the ReLU, in place.

use rayon::prelude::*;

use super::conv2d::Activation;
use crate::tensor::Tensor;
use crate::NnError;

/// Tensors with at least this many values are processed on several threads.
const PARALLEL_MIN_VALUES: usize = 1 << 16;

/// `x = activation(gamma[c] * x + beta[c])` for every value of channel `c`, in place.
pub fn affine_channels(
    tensor: &mut Tensor,
    gamma: &[f32],
    beta: &[f32],
    activation: Activation,
) -> Result<(), NnError> {
    let shape = tensor.shape();
    if gamma.len() != shape.c || beta.len() != shape.c {
        return Err(NnError::shape(
            "affine",
            format!(
                "{} gammas and {} betas for {} channels",
                gamma.len(),
                beta.len(),
                shape.c
            ),
        ));
    }
    let plane = shape.plane_len();
    if plane == 0 {
        return Ok(());
    }
    let (layout_shape, layout) = (shape, tensor.layout());
    let work = |(i, p): (usize, &mut [f32])| {
        let c = crate::tensor::channel_of_plane(layout_shape, layout, i);
        let (g, b) = (gamma[c], beta[c]);
        p.iter_mut().for_each(|v| *v = activation.apply(g * *v + b));
    };
    if shape.len() >= PARALLEL_MIN_VALUES {
        tensor
            .data_mut()
            .par_chunks_exact_mut(plane)
            .enumerate()
            .for_each(work);
    } else {
        tensor
            .data_mut()
            .chunks_exact_mut(plane)
            .enumerate()
            .for_each(work);
    }
    Ok(())
}

/// `x = max(x, 0)`, in place.
pub fn relu(tensor: &mut Tensor) {
    let data = tensor.data_mut();
    if data.len() >= PARALLEL_MIN_VALUES {
        data.par_chunks_mut(1 << 14)
            .for_each(|c| c.iter_mut().for_each(|v| *v = v.max(0.0)));
    } else {
        data.iter_mut().for_each(|v| *v = v.max(0.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::conv2d::tests::Lcg;
    use crate::tensor::{Layout, Shape};

    #[test]
    fn affine_uses_each_planes_channel_in_both_layouts() {
        let shape = Shape::new(3, 4, 5, 6);
        let mut rng = Lcg(11);
        let base = Tensor::from_vec(shape, Layout::Nchw, rng.vec(shape.len())).unwrap();
        let (gamma, beta) = (rng.vec(4), rng.vec(4));
        for layout in [Layout::Nchw, Layout::Cnhw] {
            for act in [Activation::Identity, Activation::Relu] {
                let mut t = base.to_layout(layout);
                affine_channels(&mut t, &gamma, &beta, act).unwrap();
                for n in 0..3 {
                    for c in 0..4 {
                        for y in 0..5 {
                            for x in 0..6 {
                                let v = act.apply(gamma[c] * base.at(n, c, y, x) + beta[c]);
                                assert_eq!(t.at(n, c, y, x), v);
                            }
                        }
                    }
                }
            }
        }
        let mut t = base.clone();
        assert!(affine_channels(&mut t, &gamma[..3], &beta, Activation::Identity).is_err());
    }

    #[test]
    fn relu_clamps_negatives_only() {
        let shape = Shape::new(1, 1, 300, 300);
        let mut rng = Lcg(2);
        let data = rng.vec(shape.len());
        let mut t = Tensor::from_vec(shape, Layout::Nchw, data.clone()).unwrap();
        relu(&mut t);
        for (a, b) in t.data().iter().zip(&data) {
            assert_eq!(*a, b.max(0.0));
        }
    }
}
