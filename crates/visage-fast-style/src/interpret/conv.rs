//! ONNX `Conv` on NCHW arrays: ordinary convolutions go to visage-nn's im2col + GEMM kernel;
//! grouped ones (the depthwise layers of MobileNet) run a direct loop per group. Padding may be
//! asymmetric (TensorFlow's "SAME" with stride 2 pads only the bottom and right).

use rayon::prelude::*;
use visage_nn::ops::{Activation, Conv2d, ConvScratch, ConvSpec};
use visage_nn::{Layout, Shape, Tensor};

use super::array::NdArray;
use crate::StyleError;

/// The geometry of one ONNX convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Zero padding: top, left, bottom, right, pixels.
    pub pads: [usize; 4],
    /// Vertical and horizontal stride.
    pub strides: [usize; 2],
    /// Number of channel groups (1: ordinary; channels: depthwise).
    pub group: usize,
}

fn fail(message: String) -> StyleError {
    StyleError::Model(message)
}

fn zero_pad(x: &NdArray, pads: [usize; 4]) -> NdArray {
    let [n, c, h, w] = [x.dims[0], x.dims[1], x.dims[2], x.dims[3]];
    let [top, left, bottom, right] = pads;
    let (ph, pw) = (h + top + bottom, w + left + right);
    let mut data = vec![0f32; n * c * ph * pw];
    for (plane_in, plane_out) in x
        .data
        .chunks_exact(h * w)
        .zip(data.chunks_exact_mut(ph * pw))
    {
        for y in 0..h {
            let o = (y + top) * pw + left;
            plane_out[o..o + w].copy_from_slice(&plane_in[y * w..(y + 1) * w]);
        }
    }
    NdArray {
        dims: vec![n, c, ph, pw],
        data,
    }
}

/// Convolves `x` (NCHW) with `weight` (F x C/group x kh x kw) plus `bias` (F values, optional).
pub fn conv(
    x: &NdArray,
    weight: &NdArray,
    bias: Option<&NdArray>,
    g: ConvGeometry,
    scratch: &mut ConvScratch,
) -> Result<NdArray, StyleError> {
    if x.dims.len() != 4 || weight.dims.len() != 4 {
        return Err(fail(format!(
            "Conv needs 4-D input and weights, got {:?} and {:?}",
            x.dims, weight.dims
        )));
    }
    let [f, cg, kh, kw] = [
        weight.dims[0],
        weight.dims[1],
        weight.dims[2],
        weight.dims[3],
    ];
    let c = x.dims[1];
    if g.group == 0 || c != cg * g.group || f % g.group != 0 {
        return Err(fail(format!(
            "Conv: {c} input channels, weights {:?}, {} groups",
            weight.dims, g.group
        )));
    }
    let bias = match bias {
        Some(b) if b.data.len() == f => b.data.clone(),
        Some(b) => {
            return Err(fail(format!(
                "Conv: {} biases for {f} filters",
                b.data.len()
            )))
        }
        None => vec![0.0; f],
    };
    let padded = if g.pads == [0; 4] {
        None
    } else {
        Some(zero_pad(x, g.pads))
    };
    let x = padded.as_ref().unwrap_or(x);
    let [n, _, h, w] = [x.dims[0], x.dims[1], x.dims[2], x.dims[3]];
    let [sy, sx] = g.strides;
    if h < kh || w < kw || sy == 0 || sx == 0 {
        return Err(fail(format!("Conv: {kh}x{kw} kernel on {h}x{w} input")));
    }
    let (oh, ow) = ((h - kh) / sy + 1, (w - kw) / sx + 1);
    if g.group == 1 {
        let spec = ConvSpec {
            out_channels: f,
            in_channels: c,
            kernel: (kh, kw),
            stride: (sy, sx),
            padding: (0, 0),
        };
        let layer = Conv2d::new(spec, weight.data.clone(), bias)?;
        let input = Tensor::from_vec(Shape::new(n, c, h, w), Layout::Nchw, x.data.clone())?;
        let mut out = Tensor::zeros(Shape::new(0, 0, 0, 0), Layout::Nchw);
        layer.forward(&input, &mut out, Activation::Identity, scratch)?;
        return NdArray::new(vec![n, f, oh, ow], out.into_vec());
    }
    // Grouped: each output channel reads `cg` input channels of its group.
    let per_group = f / g.group;
    let mut data = vec![0f32; n * f * oh * ow];
    data.par_chunks_exact_mut(oh * ow)
        .enumerate()
        .for_each(|(plane, out)| {
            let (b, o) = (plane / f, plane % f);
            let first = (o / per_group) * cg;
            out.iter_mut().for_each(|v| *v = bias[o]);
            for ci in 0..cg {
                let input = &x.data[((b * c) + first + ci) * h * w..][..h * w];
                let k = &weight.data[(o * cg + ci) * kh * kw..][..kh * kw];
                for ky in 0..kh {
                    for kx in 0..kw {
                        let wv = k[ky * kw + kx];
                        for oy in 0..oh {
                            let row = &input[(oy * sy + ky) * w + kx..];
                            let dst = &mut out[oy * ow..(oy + 1) * ow];
                            for (ox, d) in dst.iter_mut().enumerate() {
                                *d += wv * row[ox * sx];
                            }
                        }
                    }
                }
            }
        });
    NdArray::new(vec![n, f, oh, ow], data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct definition, for any geometry.
    fn reference(x: &NdArray, w: &NdArray, b: &[f32], g: ConvGeometry) -> NdArray {
        let x = zero_pad(x, g.pads);
        let [n, c, h, wd] = [x.dims[0], x.dims[1], x.dims[2], x.dims[3]];
        let [f, cg, kh, kw] = [w.dims[0], w.dims[1], w.dims[2], w.dims[3]];
        let (oh, ow) = ((h - kh) / g.strides[0] + 1, (wd - kw) / g.strides[1] + 1);
        let per = f / g.group;
        let mut out = vec![0f32; n * f * oh * ow];
        for bi in 0..n {
            for o in 0..f {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut s = b[o];
                        for ci in 0..cg {
                            let ch = (o / per) * cg + ci;
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy = oy * g.strides[0] + ky;
                                    let ix = ox * g.strides[1] + kx;
                                    s += x.data[((bi * c + ch) * h + iy) * wd + ix]
                                        * w.data[((o * cg + ci) * kh + ky) * kw + kx];
                                }
                            }
                        }
                        out[((bi * f + o) * oh + oy) * ow + ox] = s;
                    }
                }
            }
        }
        NdArray::new(vec![n, f, oh, ow], out).unwrap()
    }

    fn seq(dims: &[usize], k: f32) -> NdArray {
        let len = dims.iter().product::<usize>();
        NdArray::new(
            dims.to_vec(),
            (0..len).map(|i| (i as f32 * k).sin()).collect(),
        )
        .unwrap()
    }

    #[test]
    fn ordinary_and_depthwise_match_the_definition() {
        let x = seq(&[1, 4, 7, 6], 0.37);
        for (weights, group, pads, strides) in [
            (seq(&[3, 4, 3, 3], 0.11), 1, [1, 1, 1, 1], [1, 1]),
            (seq(&[5, 4, 3, 3], 0.13), 1, [0, 0, 1, 1], [2, 2]),
            (seq(&[4, 1, 3, 3], 0.17), 4, [1, 1, 1, 1], [1, 1]),
            (seq(&[4, 1, 3, 3], 0.19), 4, [0, 0, 1, 1], [2, 2]),
            (seq(&[4, 2, 1, 1], 0.23), 2, [0, 0, 0, 0], [1, 1]),
        ] {
            let f = weights.dims[0];
            let bias: Vec<f32> = (0..f).map(|i| i as f32 * 0.1).collect();
            let g = ConvGeometry {
                pads,
                strides,
                group,
            };
            let b = NdArray::new(vec![f], bias.clone()).unwrap();
            let got = conv(&x, &weights, Some(&b), g, &mut ConvScratch::default()).unwrap();
            let want = reference(&x, &weights, &bias, g);
            assert_eq!(got.dims, want.dims, "{g:?}");
            for (a, b) in got.data.iter().zip(&want.data) {
                assert!((a - b).abs() < 1e-4, "{g:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn mismatched_channels_are_an_error() {
        let x = seq(&[1, 3, 5, 5], 0.1);
        let g = ConvGeometry {
            pads: [0; 4],
            strides: [1, 1],
            group: 2,
        };
        assert!(conv(
            &x,
            &seq(&[2, 1, 3, 3], 0.1),
            None,
            g,
            &mut ConvScratch::default()
        )
        .is_err());
    }
}
