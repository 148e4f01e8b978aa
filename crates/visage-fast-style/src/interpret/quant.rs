//! ONNX `QuantizeLinear` and `DequantizeLinear`: the quantize-dequantize pairs through which an
//! int8 model (here, the TensorFlow Lite arbitrary-style networks) rounds every activation to
//! one of 256 levels. Running them on floats reproduces the int8 model's rounding, so outputs
//! track an int8 runtime's instead of drifting away from it.

use super::array::NdArray;
use crate::StyleError;

/// The integer range quantized values are saturated to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantRange {
    /// 0..=255.
    U8,
    /// -128..=127.
    I8,
    /// Any 32-bit integer (biases).
    I32,
}

impl QuantRange {
    fn bounds(self) -> (f32, f32) {
        match self {
            QuantRange::U8 => (0.0, 255.0),
            QuantRange::I8 => (-128.0, 127.0),
            QuantRange::I32 => (i32::MIN as f32, i32::MAX as f32),
        }
    }
}

/// How many (scale, zero point) pairs, how many consecutive values share one, the scales and
/// the zero points.
type AxisParams<'a> = (usize, usize, &'a [f32], Vec<f32>);

/// The per-element (scale, zero point) of `x`: one pair for all, or one per index along `axis`.
fn params<'a>(
    x: &NdArray,
    scale: &'a NdArray,
    zero: Option<&'a NdArray>,
    axis: i64,
) -> Result<AxisParams<'a>, StyleError> {
    let n = scale.data.len();
    let zeros = match zero {
        Some(z) if z.data.len() == n => z.data.clone(),
        Some(z) => {
            return Err(StyleError::Model(format!(
                "{} zero points for {n} scales",
                z.data.len()
            )))
        }
        None => vec![0.0; n],
    };
    if n == 1 {
        return Ok((1, x.data.len().max(1), &scale.data, zeros));
    }
    let rank = x.dims.len() as i64;
    let axis = if axis < 0 { axis + rank } else { axis };
    if axis < 0 || axis >= rank || x.dims[axis as usize] != n {
        return Err(StyleError::Model(format!(
            "{n} scales along axis {axis} of {:?}",
            x.dims
        )));
    }
    let inner: usize = x.dims[axis as usize + 1..].iter().product();
    Ok((n, inner, &scale.data, zeros))
}

/// `saturate(round_half_even(x / scale) + zero_point)`, per tensor or per `axis`.
pub fn quantize(
    x: &NdArray,
    scale: &NdArray,
    zero: Option<&NdArray>,
    range: QuantRange,
    axis: i64,
) -> Result<NdArray, StyleError> {
    let (n, inner, scales, zeros) = params(x, scale, zero, axis)?;
    let (lo, hi) = range.bounds();
    let mut out = x.clone();
    for (i, v) in out.data.iter_mut().enumerate() {
        let k = (i / inner) % n;
        *v = ((*v / scales[k]).round_ties_even() + zeros[k]).clamp(lo, hi);
    }
    Ok(out)
}

/// `(x - zero_point) * scale`, per tensor or per `axis`.
pub fn dequantize(
    x: &NdArray,
    scale: &NdArray,
    zero: Option<&NdArray>,
    axis: i64,
) -> Result<NdArray, StyleError> {
    let (n, inner, scales, zeros) = params(x, scale, zero, axis)?;
    let mut out = x.clone();
    for (i, v) in out.data.iter_mut().enumerate() {
        let k = (i / inner) % n;
        *v = (*v - zeros[k]) * scales[k];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arr(dims: &[usize], data: &[f32]) -> NdArray {
        NdArray::new(dims.to_vec(), data.to_vec()).unwrap()
    }

    #[test]
    fn quantize_rounds_half_to_even_and_saturates() {
        let x = arr(&[5], &[0.25, 0.75, -10.0, 10.0, 0.0]);
        let q = quantize(
            &x,
            &arr(&[], &[0.5]),
            Some(&arr(&[], &[128.0])),
            QuantRange::U8,
            1,
        )
        .unwrap();
        // 0.5 rounds to 0 and 1.5 to 2 (half to even); -20 and 20 saturate.
        assert_eq!(q.data, [128.0, 130.0, 108.0, 148.0, 128.0]);
        let big = quantize(
            &arr(&[2], &[1e6, -1e6]),
            &arr(&[], &[1.0]),
            None,
            QuantRange::I8,
            1,
        )
        .unwrap();
        assert_eq!(big.data, [127.0, -128.0]);
        let d = dequantize(&q, &arr(&[], &[0.5]), Some(&arr(&[], &[128.0])), 1).unwrap();
        assert_eq!(d.data, [0.0, 1.0, -10.0, 10.0, 0.0]);
    }

    #[test]
    fn per_axis_parameters() {
        // Two output channels of two values each, scales 1 and 10 along axis 0.
        let x = arr(&[2, 2], &[1.0, 2.0, 1.0, 2.0]);
        let d = dequantize(
            &x,
            &arr(&[2], &[1.0, 10.0]),
            Some(&arr(&[2], &[0.0, 1.0])),
            0,
        )
        .unwrap();
        assert_eq!(d.data, [1.0, 2.0, 0.0, 10.0]);
        assert!(dequantize(&x, &arr(&[3], &[1.0; 3]), None, 0).is_err());
    }
}
