//! Reflection padding, as ONNX `Pad` with mode "reflect" (and numpy's "reflect"): the border
//! value is not repeated, so padding [a, b, c] by 2 on the left gives [c, b, a, b, c].

use rayon::prelude::*;
use visage_nn::{Layout, NnError, Shape, Tensor};

/// Index of the input value that padded position `i` (which may be negative or past the end)
/// reflects, for a row of `len` values (`len >= 2` whenever `i` falls outside).
fn reflect(i: isize, len: isize) -> usize {
    let mut i = i;
    // One reflection suffices whenever pad < len, which `reflect_pad` checks.
    if i < 0 {
        i = -i;
    }
    if i >= len {
        i = 2 * (len - 1) - i;
    }
    i as usize
}

/// Pads every plane of `input` (NCHW) by `pad` pixels on each side with reflected values.
/// ONNX and numpy require `pad` smaller than each side; so does this.
pub fn reflect_pad(input: &Tensor, pad: usize) -> Result<Tensor, NnError> {
    let s = input.shape();
    if input.layout() != Layout::Nchw {
        return Err(NnError::Unsupported("reflect_pad needs NCHW".into()));
    }
    if pad >= s.h || pad >= s.w {
        return Err(NnError::Input(format!(
            "reflection padding of {pad} needs planes larger than {pad} pixels, got {}x{}",
            s.w, s.h
        )));
    }
    let (h, w) = (s.h + 2 * pad, s.w + 2 * pad);
    let out_shape = Shape::new(s.n, s.c, h, w);
    let mut out = vec![0f32; out_shape.len()];
    let columns: Vec<usize> = (0..w)
        .map(|x| reflect(x as isize - pad as isize, s.w as isize))
        .collect();
    // Planes in parallel: at full resolution this is a copy of over 100 MB.
    out.par_chunks_exact_mut(h * w)
        .zip(input.data().par_chunks_exact(s.plane_len()))
        .for_each(|(plane_out, plane_in)| {
            for (y, row_out) in plane_out.chunks_exact_mut(w).enumerate() {
                let sy = reflect(y as isize - pad as isize, s.h as isize);
                let row_in = &plane_in[sy * s.w..(sy + 1) * s.w];
                row_out[pad..pad + s.w].copy_from_slice(row_in);
                for x in (0..pad).chain(pad + s.w..w) {
                    row_out[x] = row_in[columns[x]];
                }
            }
        });
    Tensor::from_vec(out_shape, Layout::Nchw, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy_reflect() {
        // One 3x3 plane 0..9; numpy.pad(a, 2, mode="reflect") row 0 is row 2 reflected.
        let t = Tensor::from_vec(
            Shape::new(1, 1, 3, 3),
            Layout::Nchw,
            (0..9).map(|v| v as f32).collect(),
        )
        .unwrap();
        let p = reflect_pad(&t, 2).unwrap();
        assert_eq!(p.shape(), Shape::new(1, 1, 7, 7));
        let row = |y: usize| (0..7).map(|x| p.at(0, 0, y, x)).collect::<Vec<_>>();
        assert_eq!(row(0), [8., 7., 6., 7., 8., 7., 6.]);
        assert_eq!(row(2), [2., 1., 0., 1., 2., 1., 0.]);
        assert_eq!(row(3), [5., 4., 3., 4., 5., 4., 3.]);
        assert_eq!(row(6), [2., 1., 0., 1., 2., 1., 0.]);
    }

    #[test]
    fn padding_as_large_as_the_plane_is_refused() {
        let t = Tensor::zeros(Shape::new(1, 2, 4, 3), Layout::Nchw);
        assert!(reflect_pad(&t, 3).is_err());
        assert_eq!(reflect_pad(&t, 2).unwrap().shape(), Shape::new(1, 2, 8, 7));
    }
}
