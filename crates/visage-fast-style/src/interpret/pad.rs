//! ONNX `Pad` on arrays of any rank, in its "reflect" (edge not repeated, as numpy) and
//! "constant" modes, with separate amounts before and after each dimension.

use super::array::NdArray;

/// For one dimension of `len` values padded by (`before`, `after`): the input index each output
/// index reads, or `None` for a constant fill.
fn index_map(len: usize, before: usize, after: usize, reflect: bool) -> Vec<Option<usize>> {
    (0..before + len + after)
        .map(|o| {
            let i = o as isize - before as isize;
            if (0..len as isize).contains(&i) {
                Some(i as usize)
            } else if reflect {
                let r = if i < 0 {
                    -i
                } else {
                    2 * (len as isize - 1) - i
                };
                Some(r as usize)
            } else {
                None
            }
        })
        .collect()
}

fn gather(x: &NdArray, maps: &[Vec<Option<usize>>], fill: f32) -> NdArray {
    let rank = x.dims.len();
    let dims: Vec<usize> = maps.iter().map(Vec::len).collect();
    let mut strides = vec![1usize; rank];
    for d in (0..rank.saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * x.dims[d + 1];
    }
    let total: usize = dims.iter().product();
    let mut data = Vec::with_capacity(total);
    let mut index = vec![0usize; rank];
    for _ in 0..total {
        let mut offset = Some(0usize);
        for d in 0..rank {
            offset = offset.and_then(|o| maps[d][index[d]].map(|i| o + i * strides[d]));
        }
        data.push(offset.map_or(fill, |o| x.data[o]));
        for d in (0..rank).rev() {
            index[d] += 1;
            if index[d] < dims[d] {
                break;
            }
            index[d] = 0;
        }
    }
    NdArray { dims, data }
}

/// Reflection padding by (before, after) per dimension; each amount must be smaller than its
/// dimension.
pub fn reflect(x: &NdArray, pads: &[(usize, usize)]) -> Result<NdArray, String> {
    if pads.len() != x.dims.len() {
        return Err(format!(
            "{} pad pairs for rank {}",
            pads.len(),
            x.dims.len()
        ));
    }
    for (&len, &(b, a)) in x.dims.iter().zip(pads) {
        if (b > 0 || a > 0) && (b >= len || a >= len) {
            return Err(format!(
                "reflection padding of ({b}, {a}) needs more than that many values, got {len}"
            ));
        }
    }
    let maps: Vec<_> = x
        .dims
        .iter()
        .zip(pads)
        .map(|(&len, &(b, a))| index_map(len, b, a, true))
        .collect();
    Ok(gather(x, &maps, 0.0))
}

/// Padding with `value` by (before, after) per dimension.
pub fn constant(x: &NdArray, pads: &[(usize, usize)], value: f32) -> NdArray {
    let maps: Vec<_> = x
        .dims
        .iter()
        .zip(pads)
        .map(|(&len, &(b, a))| index_map(len, b, a, false))
        .collect();
    gather(x, &maps, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_and_constant_along_any_dimension() {
        // NHWC 1x1x3x1: pad the width dimension (2) by 2 before and 1 after.
        let x = NdArray::new(vec![1, 1, 3, 1], vec![0., 1., 2.]).unwrap();
        let pads = [(0, 0), (0, 0), (2, 1), (0, 0)];
        assert_eq!(reflect(&x, &pads).unwrap().data, [2., 1., 0., 1., 2., 1.]);
        assert_eq!(constant(&x, &pads, 9.).data, [9., 9., 0., 1., 2., 9.]);
        assert!(reflect(&x, &[(0, 0), (0, 0), (3, 0), (0, 0)]).is_err());
        let m = NdArray::new(vec![2, 2], vec![1., 2., 3., 4.]).unwrap();
        let r = reflect(&m, &[(1, 0), (0, 1)]).unwrap();
        assert_eq!(r.dims, [3, 3]);
        assert_eq!(r.data, [3., 4., 3., 1., 2., 1., 3., 4., 3.]);
    }
}
