//! Element-wise sums of two tensors, as dlib's `add_prev` layers compute them.

use super::conv2d::Activation;
use crate::tensor::{Shape, Tensor};
use crate::NnError;

/// `a = activation(a + b)` for tensors of the same shape and layout, in place.
pub fn add_assign(a: &mut Tensor, b: &Tensor, activation: Activation) -> Result<(), NnError> {
    if a.shape() != b.shape() || a.layout() != b.layout() {
        return Err(NnError::shape(
            "add",
            format!(
                "{} {:?} + {} {:?}",
                a.shape(),
                a.layout(),
                b.shape(),
                b.layout()
            ),
        ));
    }
    for (x, y) in a.data_mut().iter_mut().zip(b.data()) {
        *x = activation.apply(*x + *y);
    }
    Ok(())
}

/// `out = activation(a + b)` where the shapes may differ: the output takes the larger size in
/// every dimension (samples, channels, rows, columns) and each operand counts as 0 wherever it
/// has no value. Both operands must share a layout, which the output keeps.
pub fn add_zero_padded(
    a: &Tensor,
    b: &Tensor,
    out: &mut Tensor,
    activation: Activation,
) -> Result<(), NnError> {
    if a.layout() != b.layout() {
        return Err(NnError::shape(
            "add",
            format!("layouts differ: {:?} + {:?}", a.layout(), b.layout()),
        ));
    }
    let (sa, sb) = (a.shape(), b.shape());
    let s = Shape::new(
        sa.n.max(sb.n),
        sa.c.max(sb.c),
        sa.h.max(sb.h),
        sa.w.max(sb.w),
    );
    out.reset(s, a.layout());
    let plane = s.plane_len();
    for n in 0..s.n {
        for c in 0..s.c {
            let offset = out.plane_offset(n, c);
            let dst = &mut out.data_mut()[offset..offset + plane];
            dst.fill(0.0);
            for src in [a, b] {
                let ss = src.shape();
                if n < ss.n && c < ss.c {
                    let p = src.plane(n, c);
                    for y in 0..ss.h {
                        let row = &mut dst[y * s.w..y * s.w + ss.w];
                        for (d, v) in row.iter_mut().zip(&p[y * ss.w..(y + 1) * ss.w]) {
                            *d += *v;
                        }
                    }
                }
            }
            dst.iter_mut().for_each(|v| *v = activation.apply(*v));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::conv2d::tests::Lcg;
    use crate::tensor::Layout;

    #[test]
    fn mismatched_shapes_are_zero_padded() {
        let mut rng = Lcg(4);
        let sa = Shape::new(2, 3, 4, 4);
        let sb = Shape::new(2, 5, 3, 3);
        let a = Tensor::from_vec(sa, Layout::Nchw, rng.vec(sa.len())).unwrap();
        let b = Tensor::from_vec(sb, Layout::Nchw, rng.vec(sb.len())).unwrap();
        for layout in [Layout::Nchw, Layout::Cnhw] {
            for act in [Activation::Identity, Activation::Relu] {
                let mut out = Tensor::default();
                add_zero_padded(&a.to_layout(layout), &b.to_layout(layout), &mut out, act).unwrap();
                assert_eq!(out.shape(), Shape::new(2, 5, 4, 4));
                for n in 0..2 {
                    for c in 0..5 {
                        for y in 0..4 {
                            for x in 0..4 {
                                let va = if c < 3 { a.at(n, c, y, x) } else { 0.0 };
                                let vb = if y < 3 && x < 3 {
                                    b.at(n, c, y, x)
                                } else {
                                    0.0
                                };
                                assert_eq!(out.at(n, c, y, x), act.apply(va + vb));
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn same_shape_adds_in_place() {
        let s = Shape::new(1, 2, 2, 2);
        let mut a = Tensor::from_vec(
            s,
            Layout::Cnhw,
            vec![1.0, -2.0, 3.0, -4.0, 5.0, 6.0, 7.0, 8.0],
        )
        .unwrap();
        let b = Tensor::from_vec(s, Layout::Cnhw, vec![1.0; 8]).unwrap();
        add_assign(&mut a, &b, Activation::Relu).unwrap();
        assert_eq!(a.data(), &[2.0, 0.0, 4.0, 0.0, 6.0, 7.0, 8.0, 9.0]);
        let other = Tensor::zeros(Shape::new(1, 2, 2, 1), Layout::Cnhw);
        assert!(add_assign(&mut a, &other, Activation::Identity).is_err());
    }
}
