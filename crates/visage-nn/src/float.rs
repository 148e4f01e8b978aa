//! The scalar types the differentiable ops run on: `f32` for speed, `f64` for gradient checks.

use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A floating-point scalar (`f32` or `f64`) usable by the differentiable ops and the GEMM.
///
/// Kept deliberately small: only what the ops need, so that the gradient checks can run the very
/// same kernels in `f64` that training runs in `f32`.
pub trait Float:
    Copy
    + Debug
    + Default
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
{
    /// Additive identity.
    const ZERO: Self;
    /// Multiplicative identity.
    const ONE: Self;
    /// The most negative finite value (the identity of `max`).
    const MIN: Self;
    /// Converts from `f64`, rounding if needed.
    fn from_f64(v: f64) -> Self;
    /// Converts to `f64` exactly.
    fn to_f64(self) -> f64;
    /// `e^self`.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// The larger of two values.
    fn max(self, other: Self) -> Self;
    /// The smaller of two values.
    fn min(self, other: Self) -> Self;
    /// Converts from a count.
    fn from_usize(v: usize) -> Self {
        Self::from_f64(v as f64)
    }
    /// The values as `f32`, when `Self` is `f32`: lets generic ops hand `f32` work to the tuned
    /// single-precision kernels.
    fn as_f32(values: &[Self]) -> Option<&[f32]>;
    /// Takes `f32` values back as `Self`, when `Self` is `f32`.
    fn from_f32_vec(values: Vec<f32>) -> Option<Vec<Self>>;
}

macro_rules! impl_float {
    ($t:ty, $as_f32:expr, $from_f32:expr) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const MIN: Self = <$t>::MIN;
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            #[inline(always)]
            fn min(self, other: Self) -> Self {
                <$t>::min(self, other)
            }
            fn as_f32(values: &[Self]) -> Option<&[f32]> {
                ($as_f32)(values)
            }
            fn from_f32_vec(values: Vec<f32>) -> Option<Vec<Self>> {
                ($from_f32)(values)
            }
        }
    };
}

impl_float!(f32, Some, Some);
impl_float!(f64, |_| None, |_| None);
