//! Total variation: a smoothness penalty on images being optimised (style transfer, unit
//! visualisation).

use super::array::Array;
use crate::{Float, NnError};

/// Squared total variation of `[N, C, H, W]` images: the sum over all neighbouring pixel pairs,
/// vertical and horizontal, of their squared difference. Returns the value and its gradient
/// with respect to the images.
pub fn total_variation<T: Float>(images: &Array<T>) -> Result<(T, Array<T>), NnError> {
    let d = images.dims();
    if d.len() != 4 {
        return Err(NnError::shape(
            "total variation",
            format!("images {d:?} are not [N, C, H, W]"),
        ));
    }
    let (h, w) = (d[2], d[3]);
    let mut grad = Array::zeros(d);
    let mut total = T::ZERO;
    let two = T::from_f64(2.0);
    if h * w == 0 {
        return Ok((total, grad));
    }
    for (x, g) in images
        .data()
        .chunks(h * w)
        .zip(grad.data_mut().chunks_mut(h * w))
    {
        for y in 0..h {
            for i in 0..w {
                let at = y * w + i;
                if i + 1 < w {
                    let diff = x[at + 1] - x[at];
                    total += diff * diff;
                    g[at + 1] += two * diff;
                    g[at] -= two * diff;
                }
                if y + 1 < h {
                    let diff = x[at + w] - x[at];
                    total += diff * diff;
                    g[at + w] += two * diff;
                    g[at] -= two * diff;
                }
            }
        }
    }
    Ok((total, grad))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grad::check::max_gradient_error;
    use visage_rng::SplitMix64;

    #[test]
    fn value_and_gradient() {
        let x = Array::from_vec(&[1, 1, 2, 2], vec![0.0, 1.0, 3.0, 3.0]).unwrap();
        // Pairs: (0,1) 1, (3,3) 0, (0,3) 9, (1,3) 4.
        assert_eq!(total_variation(&x).unwrap().0, 14.0);
        let dims = [2, 2, 4, 5];
        let x = Array::from_vec(&dims, SplitMix64::new(4).vec(80)).unwrap();
        let (_, g) = total_variation(&x).unwrap();
        let e = max_gradient_error(
            |v| {
                total_variation(&Array::from_vec(&dims, v.to_vec()).unwrap())
                    .unwrap()
                    .0
            },
            x.data(),
            g.data(),
            1e-5,
        );
        assert!(e < 1e-8, "{e}");
    }
}
