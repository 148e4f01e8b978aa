//! ONNX `Resize` in its nearest-neighbour form with "asymmetric" coordinates and "floor"
//! rounding: output index `i` along a dimension scaled by `s` reads input index `floor(i / s)`.

use super::array::NdArray;

/// Resizes `x` by one scale per dimension; the output size is `floor(size * scale)`.
pub fn nearest(x: &NdArray, scales: &[f32]) -> Result<NdArray, String> {
    if scales.len() != x.dims.len() || scales.iter().any(|&s| s <= 0.0 || !s.is_finite()) {
        return Err(format!("bad scales {scales:?} for {:?}", x.dims));
    }
    let dims: Vec<usize> = x
        .dims
        .iter()
        .zip(scales)
        .map(|(&d, &s)| (d as f32 * s).floor() as usize)
        .collect();
    // For each dimension, the input index every output index reads.
    let maps: Vec<Vec<usize>> = dims
        .iter()
        .zip(&x.dims)
        .zip(scales)
        .map(|((&o, &i), &s)| {
            (0..o)
                .map(|k| ((k as f32 / s).floor() as usize).min(i.saturating_sub(1)))
                .collect()
        })
        .collect();
    let rank = dims.len();
    let mut in_strides = vec![1usize; rank];
    for d in (0..rank.saturating_sub(1)).rev() {
        in_strides[d] = in_strides[d + 1] * x.dims[d + 1];
    }
    let total: usize = dims.iter().product();
    let mut data = Vec::with_capacity(total);
    let mut index = vec![0usize; rank];
    for _ in 0..total {
        let offset: usize = (0..rank).map(|d| maps[d][index[d]] * in_strides[d]).sum();
        data.push(x.data[offset]);
        for d in (0..rank).rev() {
            index[d] += 1;
            if index[d] < dims[d] {
                break;
            }
            index[d] = 0;
        }
    }
    NdArray::new(dims, data).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_by_repeating() {
        let x = NdArray::new(vec![1, 1, 2, 2], vec![1., 2., 3., 4.]).unwrap();
        let y = nearest(&x, &[1., 1., 2., 2.]).unwrap();
        assert_eq!(y.dims, [1, 1, 4, 4]);
        assert_eq!(&y.data[..8], [1., 1., 2., 2., 1., 1., 2., 2.]);
        assert_eq!(&y.data[8..], [3., 3., 4., 4., 3., 3., 4., 4.]);
        assert!(nearest(&x, &[1., 2.]).is_err());
    }
}
