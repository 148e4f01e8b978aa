//! Instance normalisation with a per-channel scale and shift, in place: each plane is brought to
//! zero mean and unit variance (over its own pixels), then scaled by `gamma` and shifted by
//! `beta`. With `gamma`/`beta` mixed from several styles' rows this is the *conditional*
//! instance norm of Dumoulin et al. (2017), which is what makes one network paint many styles.

use rayon::prelude::*;
use visage_nn::{Layout, NnError, Tensor};

/// Normalises every plane of `x` (NCHW) in place: `(x - mean) / sqrt(var + eps) * gamma[c] +
/// beta[c]`, with the biased variance (divided by the pixel count, as the networks were trained
/// and exported), then `max(0, .)` when `relu` is set. Sums are taken in f64, so large planes
/// lose no precision.
pub fn instance_norm(
    x: &mut Tensor,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    relu: bool,
) -> Result<(), NnError> {
    let s = x.shape();
    if x.layout() != Layout::Nchw {
        return Err(NnError::Unsupported("instance_norm needs NCHW".into()));
    }
    if gamma.len() != s.c || beta.len() != s.c {
        return Err(NnError::Shape {
            what: "instance_norm".into(),
            message: format!(
                "{} gammas and {} betas for {} channels",
                gamma.len(),
                beta.len(),
                s.c
            ),
        });
    }
    let len = s.plane_len();
    if len == 0 {
        return Ok(());
    }
    x.data_mut()
        .par_chunks_exact_mut(len)
        .enumerate()
        .for_each(|(i, plane)| {
            let c = i % s.c;
            let mean = plane.iter().map(|&v| v as f64).sum::<f64>() / len as f64;
            let var = plane
                .iter()
                .map(|&v| {
                    let d = v as f64 - mean;
                    d * d
                })
                .sum::<f64>()
                / len as f64;
            let scale = gamma[c] / (var as f32 + eps).sqrt();
            let shift = beta[c] - mean as f32 * scale;
            if relu {
                plane
                    .iter_mut()
                    .for_each(|v| *v = (*v * scale + shift).max(0.0));
            } else {
                plane.iter_mut().for_each(|v| *v = *v * scale + shift);
            }
        });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use visage_nn::Shape;

    #[test]
    fn normalises_each_plane_then_scales_and_shifts() {
        // Plane 0: [1, 3] has mean 2 and variance 1; plane 1 is constant.
        let mut t =
            Tensor::from_vec(Shape::new(1, 2, 1, 2), Layout::Nchw, vec![1., 3., 5., 5.]).unwrap();
        instance_norm(&mut t, &[2.0, 1.0], &[10.0, -1.0], 0.0, false).unwrap();
        assert_eq!(t.plane(0, 0), [8.0, 12.0]);
        // A constant plane has zero variance: with eps the result is just beta.
        let mut t = Tensor::from_vec(Shape::new(1, 1, 1, 2), Layout::Nchw, vec![5., 5.]).unwrap();
        instance_norm(&mut t, &[3.0], &[-1.0], 1e-5, true).unwrap();
        assert_eq!(t.plane(0, 0), [0.0, 0.0]);
    }

    #[test]
    fn eps_and_relu_follow_the_definition() {
        let data = vec![0., 1., 2., 3., 4., 5., 6., 7.];
        let mut t = Tensor::from_vec(Shape::new(1, 1, 2, 4), Layout::Nchw, data.clone()).unwrap();
        instance_norm(&mut t, &[1.5], &[0.25], 1e-5, true).unwrap();
        let mean = 3.5f32;
        let var = data.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 8.0;
        for (got, v) in t.data().iter().zip(&data) {
            let want = ((v - mean) / (var + 1e-5).sqrt() * 1.5 + 0.25).max(0.0);
            assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        }
    }

    #[test]
    fn wrong_parameter_count_is_an_error() {
        let mut t = Tensor::zeros(Shape::new(1, 3, 2, 2), Layout::Nchw);
        assert!(instance_norm(&mut t, &[1.0; 2], &[0.0; 3], 1e-5, false).is_err());
    }
}
