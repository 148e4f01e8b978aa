//! N-dimensional f32 arrays (row-major) and the shape-generic operations of ONNX graphs:
//! broadcasting element-wise arithmetic, reshape and transpose.

use crate::StyleError;

/// A row-major array of `f32` of any rank. Integer tensors of a graph (quantized values, shapes)
/// are held as whole-number floats, exact up to 2^24.
#[derive(Debug, Clone, PartialEq)]
pub struct NdArray {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// The values.
    pub data: Vec<f32>,
}

fn fail(message: String) -> StyleError {
    StyleError::Model(message)
}

impl NdArray {
    /// An array from dimensions and values; their counts must agree.
    pub fn new(dims: Vec<usize>, data: Vec<f32>) -> Result<Self, StyleError> {
        if dims.iter().product::<usize>() != data.len() {
            return Err(fail(format!(
                "{} values for dimensions {dims:?}",
                data.len()
            )));
        }
        Ok(Self { dims, data })
    }

    /// The same values with every one mapped by `f`.
    pub fn map(mut self, f: impl Fn(f32) -> f32) -> Self {
        self.data.iter_mut().for_each(|v| *v = f(*v));
        self
    }

    /// Element-wise `f(a, b)` with NumPy broadcasting.
    pub fn broadcast(
        a: &NdArray,
        b: &NdArray,
        f: impl Fn(f32, f32) -> f32,
    ) -> Result<NdArray, StyleError> {
        if a.dims == b.dims {
            let data = a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect();
            return Ok(NdArray {
                dims: a.dims.clone(),
                data,
            });
        }
        let rank = a.dims.len().max(b.dims.len());
        let pad = |d: &[usize]| {
            let mut v = vec![1; rank - d.len()];
            v.extend_from_slice(d);
            v
        };
        let (da, db) = (pad(&a.dims), pad(&b.dims));
        let mut dims = Vec::with_capacity(rank);
        for (&x, &y) in da.iter().zip(&db) {
            if x != y && x != 1 && y != 1 {
                return Err(fail(format!(
                    "cannot broadcast {:?} with {:?}",
                    a.dims, b.dims
                )));
            }
            dims.push(if x == 1 { y } else { x });
        }
        let strides = |d: &[usize]| {
            let mut s = vec![0usize; rank];
            let mut acc = 1;
            for i in (0..rank).rev() {
                s[i] = if d[i] == 1 { 0 } else { acc };
                acc *= d[i];
            }
            s
        };
        let (sa, sb) = (strides(&da), strides(&db));
        let total: usize = dims.iter().product();
        let mut data = Vec::with_capacity(total);
        if rank == 0 || total == 0 {
            if total == 1 {
                data.push(f(a.data[0], b.data[0]));
            }
            return Ok(NdArray { dims, data });
        }
        // Walk the outer indices with a counter; the innermost dimension is a tight loop.
        let inner = dims[rank - 1];
        let (ia, ib) = (sa[rank - 1], sb[rank - 1]);
        let mut index = vec![0usize; rank - 1];
        loop {
            let oa: usize = index.iter().zip(&sa).map(|(i, s)| i * s).sum();
            let ob: usize = index.iter().zip(&sb).map(|(i, s)| i * s).sum();
            for k in 0..inner {
                data.push(f(a.data[oa + k * ia], b.data[ob + k * ib]));
            }
            let mut d = rank - 1;
            loop {
                if d == 0 {
                    return Ok(NdArray { dims, data });
                }
                d -= 1;
                index[d] += 1;
                if index[d] < dims[d] {
                    break;
                }
                index[d] = 0;
            }
        }
    }

    /// The same values under new dimensions (ONNX `Reshape`: 0 keeps a dimension, -1 is inferred).
    pub fn reshape(self, shape: &[i64]) -> Result<NdArray, StyleError> {
        let mut dims = Vec::with_capacity(shape.len());
        let mut infer = None;
        for (i, &s) in shape.iter().enumerate() {
            match s {
                0 => dims.push(
                    *self
                        .dims
                        .get(i)
                        .ok_or_else(|| fail("reshape: 0 past the rank".into()))?,
                ),
                -1 if infer.is_none() => {
                    infer = Some(i);
                    dims.push(1);
                }
                s if s > 0 => dims.push(s as usize),
                _ => return Err(fail(format!("reshape: bad shape {shape:?}"))),
            }
        }
        let known: usize = dims.iter().product();
        if let Some(i) = infer {
            if known == 0 || !self.data.len().is_multiple_of(known) {
                return Err(fail(format!("reshape {:?} to {shape:?}", self.dims)));
            }
            dims[i] = self.data.len() / known;
        }
        NdArray::new(dims, self.data)
    }

    /// Permutes the dimensions (ONNX `Transpose`): output dimension `i` is input dimension
    /// `perm[i]`.
    pub fn transpose(&self, perm: &[usize]) -> Result<NdArray, StyleError> {
        let rank = self.dims.len();
        let mut seen = vec![false; rank];
        if perm.len() != rank
            || perm
                .iter()
                .any(|&p| p >= rank || std::mem::replace(&mut seen[p], true))
        {
            return Err(fail(format!(
                "transpose: bad permutation {perm:?} of rank {rank}"
            )));
        }
        let mut in_strides = vec![1usize; rank];
        for i in (0..rank.saturating_sub(1)).rev() {
            in_strides[i] = in_strides[i + 1] * self.dims[i + 1];
        }
        let dims: Vec<usize> = perm.iter().map(|&p| self.dims[p]).collect();
        let strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
        let total = self.data.len();
        let mut data = Vec::with_capacity(total);
        let mut index = vec![0usize; rank];
        for _ in 0..total {
            let offset: usize = index.iter().zip(&strides).map(|(i, s)| i * s).sum();
            data.push(self.data[offset]);
            for d in (0..rank).rev() {
                index[d] += 1;
                if index[d] < dims[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        NdArray::new(dims, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arr(dims: &[usize], data: &[f32]) -> NdArray {
        NdArray::new(dims.to_vec(), data.to_vec()).unwrap()
    }

    #[test]
    fn broadcasts_like_numpy() {
        let a = arr(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let col = arr(&[2, 1], &[10., 20.]);
        let row = arr(&[3], &[100., 200., 300.]);
        assert_eq!(
            NdArray::broadcast(&a, &col, |x, y| x + y).unwrap().data,
            [11., 12., 13., 24., 25., 26.]
        );
        assert_eq!(
            NdArray::broadcast(&row, &a, |x, y| x - y).unwrap(),
            arr(&[2, 3], &[99., 198., 297., 96., 195., 294.])
        );
        let scalar = arr(&[], &[2.]);
        assert_eq!(
            NdArray::broadcast(&a, &scalar, |x, y| x * y).unwrap().data[5],
            12.
        );
        assert!(NdArray::broadcast(&a, &arr(&[2], &[1., 2.]), |x, _| x).is_err());
    }

    #[test]
    fn reshape_and_transpose() {
        let a = arr(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let t = a.transpose(&[1, 0]).unwrap();
        assert_eq!(t, arr(&[3, 2], &[1., 4., 2., 5., 3., 6.]));
        let r = t.reshape(&[0, -1, 1]).unwrap();
        assert_eq!(r.dims, [3, 2, 1]);
        assert!(r.clone().reshape(&[4, -1]).is_err());
        // NHWC to NCHW on a 1x1x2x3 array.
        let nhwc = arr(&[1, 1, 2, 3], &[1., 2., 3., 4., 5., 6.]);
        assert_eq!(
            nhwc.transpose(&[0, 3, 1, 2]).unwrap().data,
            [1., 4., 2., 5., 3., 6.]
        );
    }
}
