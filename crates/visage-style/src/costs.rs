//! The costs of neural style transfer, exactly as the lecture writes them, on burn tensors so
//! that autodiff takes their gradients with respect to the generated image.
//!
//! Activations `a[l]` are `[N, n_C, n_H, n_W]` tensors (burn's layout); the sums run over all
//! positions `i, j` and channels `k` of each sample and then over the batch.

use burn::tensor::Tensor;

/// The Gram matrix of a layer: `G_kk' = Σ_i Σ_j a_ijk a_ijk'`, unnormalised. Returns
/// `[N, n_C, n_C]`.
pub fn gram(activations: Tensor<4>) -> Tensor<3> {
    let [n, c, h, w] = activations.dims();
    let positions = h * w;
    let f = activations.reshape([n, c, positions]);
    if positions <= GPU_GRAM_CHUNK || visage_nn::device::is_cpu(&f.device()) {
        return f.clone().matmul(f.swap_dims(1, 2));
    }
    // On a GPU, one product over a large image's positions is an inner product so long that
    // the kernel burn's autotuner picks for it cannot be launched (too many workgroups); summing
    // products over slices of positions keeps each launch in bounds.
    gram_in_slices(f, GPU_GRAM_CHUNK)
}

/// `f fᵀ` for `f` of `[N, C, P]`, summed over slices of at most `slice` positions.
fn gram_in_slices(f: Tensor<3>, slice: usize) -> Tensor<3> {
    let [n, c, positions] = f.dims();
    (0..positions)
        .step_by(slice.max(1))
        .map(|start| {
            let part = f.clone().narrow(2, start, slice.min(positions - start));
            part.clone().matmul(part.swap_dims(1, 2))
        })
        .reduce(|a, b| a + b)
        .unwrap_or_else(|| Tensor::zeros([n, c, c], &f.device()))
}

/// Positions per slice of the Gram matrix's product on a GPU (see [`gram`]).
const GPU_GRAM_CHUNK: usize = 32_768;

/// `J_content = ½ ||a(C) − a(G)||²`, summed over every activation of the layer. A one-element
/// tensor.
pub fn content_cost(content: Tensor<4>, generated: Tensor<4>) -> Tensor<1> {
    let d = content - generated;
    (d.clone() * d).sum().mul_scalar(0.5)
}

/// `J_style[l] = 1/(2 n_H n_W n_C)² Σ_k Σ_k' (G(S)_kk' − G(G)_kk')²` for the layer whose
/// generated-image activations have `n_C` channels and `n_H x n_W` positions (`shape` is
/// `[n_C, n_H, n_W]`). A one-element tensor.
pub fn style_layer_cost(
    style_gram: Tensor<3>,
    generated_gram: Tensor<3>,
    shape: [usize; 3],
) -> Tensor<1> {
    let [c, h, w] = shape;
    let norm = 2.0 * (h * w * c) as f64;
    let d = style_gram - generated_gram;
    (d.clone() * d).sum().div_scalar(norm * norm)
}

/// Squared total variation of `[N, 3, H, W]` images: the sum of squared differences between
/// vertically and horizontally neighbouring pixels (the smoothness prior of Mahendran & Vedaldi,
/// as neural-style uses it). A one-element tensor.
pub fn total_variation(images: Tensor<4>) -> Tensor<1> {
    let [n, c, h, w] = images.dims();
    let mut total = Tensor::<1>::zeros([1], &images.device());
    if h > 1 {
        let d = images.clone().slice([0..n, 0..c, 1..h, 0..w])
            - images.clone().slice([0..n, 0..c, 0..h - 1, 0..w]);
        total = total + (d.clone() * d).sum();
    }
    if w > 1 {
        let d = images.clone().slice([0..n, 0..c, 0..h, 1..w])
            - images.slice([0..n, 0..c, 0..h, 0..w - 1]);
        total = total + (d.clone() * d).sum();
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn tensor4(values: Vec<f32>, shape: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(values, shape), &Device::flex())
    }

    fn scalar(t: Tensor<1>) -> f64 {
        t.into_data().try_to_vec::<f32>().expect("f32")[0] as f64
    }

    // One sample, 2 channels, 1x2 positions: channel 0 = (1, 2), channel 1 = (3, 4).
    fn small() -> Tensor<4> {
        tensor4(vec![1.0, 2.0, 3.0, 4.0], [1, 2, 1, 2])
    }

    #[test]
    fn gram_is_the_sum_over_positions_of_channel_products() {
        let g = gram(small()).into_data().try_to_vec::<f32>().expect("f32");
        // G00 = 1+4, G01 = 1*3+2*4 = 11, G11 = 9+16.
        assert_eq!(g, vec![5.0, 11.0, 11.0, 25.0]);
    }

    /// The GPU's sliced Gram (run here on the CPU) equals one product, value and gradient.
    #[test]
    fn the_gram_in_slices_equals_the_gram_in_one_product() {
        let device = Device::flex().autodiff();
        let values: Vec<f32> = (0..2 * 3 * 7)
            .map(|i| ((i * 37) % 11) as f32 - 5.0)
            .collect();
        let x = || {
            Tensor::<3>::from_data(TensorData::new(values.clone(), [2, 3, 7]), &device)
                .require_grad()
        };
        let (a, b) = (x(), x());
        let whole = a.clone().matmul(a.clone().swap_dims(1, 2));
        let sliced = gram_in_slices(b.clone(), 3);
        let read = |t: Tensor<3>| t.into_data().try_to_vec::<f32>().expect("f32");
        assert_eq!(read(whole.clone()), read(sliced.clone()));
        let ga = a.grad(&whole.sum().backward()).expect("gradient");
        let gb = b.grad(&sliced.sum().backward()).expect("gradient");
        assert_eq!(read(ga), read(gb));
    }

    #[test]
    fn content_cost_is_half_the_squared_distance() {
        let other = tensor4(vec![0.0, 2.0, 5.0, 1.0], [1, 2, 1, 2]);
        // Differences 1, 0, -2, 3: squares 1 + 0 + 4 + 9 = 14, half is 7.
        assert_eq!(scalar(content_cost(small(), other)), 7.0);
    }

    #[test]
    fn style_cost_uses_the_lecture_normalisation() {
        let other = tensor4(vec![0.0, 2.0, 5.0, 1.0], [1, 2, 1, 2]);
        // G(other): G00 = 4, G01 = 0*5 + 2*1 = 2, G11 = 26. Differences from G(small) =
        // (5, 11, 11, 25): 1, 9, 9, -1, so Σ = 1 + 81 + 81 + 1 = 164. n_C = 2, n_H = 1, n_W = 2:
        // (2 * 1 * 2 * 2)² = 64.
        let j = scalar(style_layer_cost(gram(small()), gram(other), [2, 1, 2]));
        assert!((j - 164.0 / 64.0).abs() < 1e-9, "{j}");
    }

    #[test]
    fn total_variation_sums_squared_neighbour_differences() {
        // One channel 2x2: [[0, 1], [3, 3]]: horizontal 1, 0; vertical 9, 4.
        let x = tensor4(vec![0.0, 1.0, 3.0, 3.0], [1, 1, 2, 2]);
        assert_eq!(scalar(total_variation(x)), 14.0);
    }

    #[test]
    fn style_cost_gradient_matches_the_closed_form() {
        // dJ/da_g = -4/(2 n_H n_W n_C)² Σ_k' (G(S) - G(G))_kk' a_k' (G symmetric).
        let device = Device::flex().autodiff();
        let s = Tensor::<4>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [1, 2, 1, 2]),
            &device,
        );
        let gv = vec![0.0f32, 2.0, 5.0, 1.0];
        let g = Tensor::<4>::from_data(TensorData::new(gv.clone(), [1, 2, 1, 2]), &device)
            .require_grad();
        let j = style_layer_cost(gram(s), gram(g.clone()), [2, 1, 2]);
        let grads = j.backward();
        let dg = g
            .grad(&grads)
            .expect("gradient")
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        let diff = [[1.0f32, 9.0], [9.0, -1.0]];
        for k in 0..2 {
            for p in 0..2 {
                let expected: f32 = (0..2)
                    .map(|k2| -4.0 / 64.0 * diff[k][k2] * gv[k2 * 2 + p])
                    .sum();
                assert!(
                    (dg[k * 2 + p] - expected).abs() < 1e-5,
                    "{k} {p}: {} vs {expected}",
                    dg[k * 2 + p]
                );
            }
        }
    }
}
