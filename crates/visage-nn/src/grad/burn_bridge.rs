//! Moving [`Array`]s to and from burn tensors, so that these ops and burn's (autodiff, modules,
//! optimizers) can be mixed in one model: run a burn network, take its output here with
//! [`from_burn`], apply an op and its explicit backward pass, and hand the gradient back with
//! [`to_burn`] (for example as the seed of a `backward` through the burn part).
//!
//! The tests check our convolution, forward and all three gradients, against burn's `conv2d`
//! and its autodiff on the flex CPU backend.

use burn::tensor::{Device, Tensor, TensorData};

use super::array::Array;
use crate::NnError;

/// A burn tensor of rank `D` holding a copy of `array` (which must have `D` dimensions).
pub fn to_burn<const D: usize>(array: &Array<f32>, device: &Device) -> Result<Tensor<D>, NnError> {
    let shape: [usize; D] = array.dims().try_into().map_err(|_| {
        NnError::shape(
            "to burn",
            format!("array {:?} does not have {D} dimensions", array.dims()),
        )
    })?;
    Ok(Tensor::from_data(
        TensorData::new(array.data().to_vec(), shape),
        device,
    ))
}

/// The values of a burn tensor as an `f32` array of the same dimensions.
pub fn from_burn<const D: usize>(tensor: Tensor<D>) -> Result<Array<f32>, NnError> {
    let dims = tensor.dims();
    let values = tensor
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| NnError::Unsupported(format!("burn tensor data: {e:?}")))?;
    Array::from_vec(&dims, values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grad::{conv_backward, conv_forward, ConvNd};
    use burn::tensor::ops::ConvOptions;
    use visage_rng::SplitMix64;

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-3 * (1.0 + y.abs()), "{what}: {x} vs {y}");
        }
    }

    #[test]
    fn conv2d_and_its_gradients_match_burn_autodiff() {
        let mut rng = SplitMix64::new(12);
        let g = ConvNd::new(4, 6, [3, 3])
            .with_stride([2, 1])
            .with_padding([1, 2])
            .with_dilation([1, 2])
            .with_groups(2);
        let dims = [2, 4, 9, 8];
        let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<_>>();
        let x = Array::from_vec(&dims, f32s(rng.vec(dims.iter().product()))).unwrap();
        let w = f32s(rng.vec(6 * g.taps()));
        let b = f32s(rng.vec(6));
        let ours = conv_forward(&g, &x, &w, Some(&b)).unwrap();
        let r = Array::from_vec(ours.dims(), f32s(rng.vec(ours.len()))).unwrap();
        let grads = conv_backward(&g, &x, &w, &r).unwrap();

        let device = Device::flex().autodiff();
        let bx = to_burn::<4>(&x, &device).unwrap().require_grad();
        let wa = Array::from_vec(&g.weight_dims(), w.clone()).unwrap();
        let bw = to_burn::<4>(&wa, &device).unwrap().require_grad();
        let bb = to_burn::<1>(&Array::from_vec(&[6], b.clone()).unwrap(), &device)
            .unwrap()
            .require_grad();
        let options = ConvOptions::new([2, 1], [1, 2], [1, 2], 2);
        let y = burn::tensor::module::conv2d(bx.clone(), bw.clone(), Some(bb.clone()), options);
        let theirs = from_burn(y.clone()).unwrap();
        close(ours.data(), theirs.data(), "forward");
        assert_eq!(ours.dims(), theirs.dims());
        // L = Σ r ⊙ y, so dL/dy = r, as given to conv_backward.
        let loss = (y * to_burn::<4>(&r, &device).unwrap()).sum();
        let bgrads = loss.backward();
        let dx = from_burn(bx.grad(&bgrads).unwrap()).unwrap();
        let dw = from_burn(bw.grad(&bgrads).unwrap()).unwrap();
        let db = from_burn(bb.grad(&bgrads).unwrap()).unwrap();
        close(grads.input.data(), dx.data(), "input gradient");
        close(&grads.weights, dw.data(), "weight gradient");
        close(&grads.bias, db.data(), "bias gradient");
    }
}
