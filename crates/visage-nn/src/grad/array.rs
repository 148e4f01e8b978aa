//! A dense, row-major n-dimensional array: the value and gradient type of the differentiable ops.

use crate::{Float, NnError};

/// A dense row-major array of `T` with its dimensions (for example `[N, C, H, W]`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Array<T> {
    dims: Vec<usize>,
    data: Vec<T>,
}

impl<T: Float> Array<T> {
    /// An array of zeros.
    pub fn zeros(dims: &[usize]) -> Self {
        Self {
            dims: dims.to_vec(),
            data: vec![T::ZERO; dims.iter().product()],
        }
    }

    /// An array over `data`, which must hold exactly the product of `dims` values.
    pub fn from_vec(dims: &[usize], data: Vec<T>) -> Result<Self, NnError> {
        let len: usize = dims.iter().product();
        if len != data.len() {
            return Err(NnError::shape(
                "array",
                format!("dims {dims:?} need {len} values, got {}", data.len()),
            ));
        }
        Ok(Self {
            dims: dims.to_vec(),
            data,
        })
    }

    /// An array of values from `f(flat index)`.
    pub fn from_fn(dims: &[usize], f: impl FnMut(usize) -> T) -> Self {
        let len: usize = dims.iter().product();
        Self {
            dims: dims.to_vec(),
            data: (0..len).map(f).collect(),
        }
    }

    /// The dimensions, outermost first.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The values, row-major.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// The values, row-major, for writing.
    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the array holds no values.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Takes the values out.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// The same values under other dimensions with the same product.
    pub fn reshape(mut self, dims: &[usize]) -> Result<Self, NnError> {
        let len: usize = dims.iter().product();
        if len != self.data.len() {
            return Err(NnError::shape(
                "reshape",
                format!("{:?} cannot become {dims:?}", self.dims),
            ));
        }
        self.dims = dims.to_vec();
        Ok(self)
    }

    /// Converts every value to another scalar type.
    pub fn cast<U: Float>(&self) -> Array<U> {
        Array {
            dims: self.dims.clone(),
            data: self.data.iter().map(|v| U::from_f64(v.to_f64())).collect(),
        }
    }
}
