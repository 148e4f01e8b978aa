//! Nearest-neighbour upsampling by 2, as ONNX `Resize` with mode "nearest", scales [1, 1, 2, 2],
//! "asymmetric" coordinates and "floor" rounding: output (y, x) takes input (y / 2, x / 2).

use rayon::prelude::*;
use visage_nn::{Layout, NnError, Shape, Tensor};

/// Doubles the height and width of every plane of `input` (NCHW), repeating each value 2x2.
pub fn upsample_nearest2x(input: &Tensor) -> Result<Tensor, NnError> {
    let s = input.shape();
    if input.layout() != Layout::Nchw {
        return Err(NnError::Unsupported("upsample_nearest2x needs NCHW".into()));
    }
    let (h, w) = (2 * s.h, 2 * s.w);
    let out_shape = Shape::new(s.n, s.c, h, w);
    let mut out = vec![0f32; out_shape.len()];
    out.par_chunks_exact_mut((h * w).max(1))
        .zip(input.data().par_chunks_exact(s.plane_len().max(1)))
        .for_each(|(plane_out, plane_in)| {
            for (row_in, rows_out) in plane_in
                .chunks_exact(s.w)
                .zip(plane_out.chunks_exact_mut(2 * w))
            {
                let (top, bottom) = rows_out.split_at_mut(w);
                for (pair, &v) in top.chunks_exact_mut(2).zip(row_in) {
                    pair[0] = v;
                    pair[1] = v;
                }
                bottom.copy_from_slice(top);
            }
        });
    Tensor::from_vec(out_shape, Layout::Nchw, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_each_value_two_by_two() {
        let t =
            Tensor::from_vec(Shape::new(1, 2, 1, 2), Layout::Nchw, vec![1., 2., 3., 4.]).unwrap();
        let u = upsample_nearest2x(&t).unwrap();
        assert_eq!(u.shape(), Shape::new(1, 2, 2, 4));
        assert_eq!(u.plane(0, 0), [1., 1., 2., 2., 1., 1., 2., 2.]);
        assert_eq!(u.plane(0, 1), [3., 3., 4., 4., 3., 3., 4., 4.]);
    }
}
