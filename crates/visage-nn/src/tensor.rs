//! A batch of feature maps: `n` samples of `c` channels of `h x w` planes, in f32.
//!
//! Every plane (one sample, one channel) is stored contiguously, row-major. Two plane orders are
//! supported: [`Layout::Nchw`], the usual one, and [`Layout::Cnhw`], channel-major across the batch,
//! in which a convolution over the whole batch is a single matrix product whose output needs no
//! reordering. Operations keep the layout of their input.

use crate::NnError;

/// The dimensions of a batch of feature maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    /// Number of samples in the batch.
    pub n: usize,
    /// Number of channels.
    pub c: usize,
    /// Plane height, in pixels.
    pub h: usize,
    /// Plane width, in pixels.
    pub w: usize,
}

impl Shape {
    /// A shape from its four dimensions.
    pub const fn new(n: usize, c: usize, h: usize, w: usize) -> Self {
        Self { n, c, h, w }
    }

    /// Number of values in one plane (`h * w`).
    pub const fn plane_len(&self) -> usize {
        self.h * self.w
    }

    /// Number of planes (`n * c`).
    pub const fn planes(&self) -> usize {
        self.n * self.c
    }

    /// Number of values in the batch, or `None` if that overflows.
    pub fn checked_len(&self) -> Option<usize> {
        self.n
            .checked_mul(self.c)?
            .checked_mul(self.h)?
            .checked_mul(self.w)
    }

    /// Number of values in the batch. Only for shapes already known to fit in memory.
    pub const fn len(&self) -> usize {
        self.n * self.c * self.h * self.w
    }

    /// True when the batch holds no values.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}x{}", self.n, self.c, self.h, self.w)
    }
}

/// The order of the planes in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Sample-major: plane (n, c) starts at `(n * C + c) * H * W`.
    Nchw,
    /// Channel-major: plane (n, c) starts at `(c * N + n) * H * W`. A channel's planes for the
    /// whole batch form one contiguous row, which is what a batched convolution produces.
    Cnhw,
}

/// An owned batch of feature maps.
///
/// The backing buffer may be longer than the shape needs: tensors reused across layers keep
/// their largest allocation, so that reshaping never reallocates or zero-fills again.
#[derive(Debug, Clone)]
pub struct Tensor {
    shape: Shape,
    layout: Layout,
    data: Vec<f32>,
}

impl Default for Tensor {
    fn default() -> Self {
        Self {
            shape: Shape::new(0, 0, 0, 0),
            layout: Layout::Nchw,
            data: Vec::new(),
        }
    }
}

impl PartialEq for Tensor {
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape && self.layout == other.layout && self.data() == other.data()
    }
}

impl Tensor {
    /// A tensor of zeros.
    pub fn zeros(shape: Shape, layout: Layout) -> Self {
        Self {
            shape,
            layout,
            data: vec![0.0; shape.len()],
        }
    }

    /// Wraps `data`, which must hold exactly `shape.len()` values in `layout` order.
    pub fn from_vec(shape: Shape, layout: Layout, data: Vec<f32>) -> Result<Self, NnError> {
        if shape.checked_len() != Some(data.len()) {
            return Err(NnError::shape(
                "Tensor::from_vec",
                format!("{} values for shape {shape}", data.len()),
            ));
        }
        Ok(Self {
            shape,
            layout,
            data,
        })
    }

    /// The dimensions.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The plane order.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The values, `shape().len()` of them, in layout order.
    pub fn data(&self) -> &[f32] {
        &self.data[..self.shape.len()]
    }

    /// The values, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        let len = self.shape.len();
        &mut self.data[..len]
    }

    /// The values as an owned vector of exactly `shape().len()` values.
    pub fn into_vec(mut self) -> Vec<f32> {
        self.data.truncate(self.shape.len());
        self.data
    }

    /// Offset of plane (n, c) in [`Tensor::data`].
    pub fn plane_offset(&self, n: usize, c: usize) -> usize {
        plane_offset(self.shape, self.layout, n, c)
    }

    /// Plane (n, c), `h * w` values row-major.
    pub fn plane(&self, n: usize, c: usize) -> &[f32] {
        let start = self.plane_offset(n, c);
        &self.data[start..start + self.shape.plane_len()]
    }

    /// The value at (n, c, y, x).
    pub fn at(&self, n: usize, c: usize, y: usize, x: usize) -> f32 {
        self.data[self.plane_offset(n, c) + y * self.shape.w + x]
    }

    /// The channel of the `i`-th plane in memory order.
    pub fn channel_of_plane(&self, i: usize) -> usize {
        channel_of_plane(self.shape, self.layout, i)
    }

    /// Gives the tensor a new shape and layout, reusing the buffer. The values are unspecified
    /// (whatever the buffer held); the caller overwrites all of them.
    pub fn reset(&mut self, shape: Shape, layout: Layout) {
        let len = shape.len();
        if self.data.len() < len {
            self.data.resize(len, 0.0);
        }
        self.shape = shape;
        self.layout = layout;
    }

    /// Makes this tensor a copy of `other`, reusing the buffer.
    pub fn copy_from(&mut self, other: &Tensor) {
        self.reset(other.shape, other.layout);
        self.data_mut().copy_from_slice(other.data());
    }

    /// The same values in another plane order.
    pub fn to_layout(&self, layout: Layout) -> Tensor {
        let mut out = Tensor::zeros(self.shape, layout);
        let plane = self.shape.plane_len();
        for n in 0..self.shape.n {
            for c in 0..self.shape.c {
                let dst = out.plane_offset(n, c);
                out.data[dst..dst + plane].copy_from_slice(self.plane(n, c));
            }
        }
        out
    }
}

/// Offset of plane (n, c) for a shape and layout.
pub(crate) fn plane_offset(shape: Shape, layout: Layout, n: usize, c: usize) -> usize {
    let plane = shape.plane_len();
    match layout {
        Layout::Nchw => (n * shape.c + c) * plane,
        Layout::Cnhw => (c * shape.n + n) * plane,
    }
}

/// The channel of the `i`-th plane in memory order.
pub(crate) fn channel_of_plane(shape: Shape, layout: Layout, i: usize) -> usize {
    match layout {
        Layout::Nchw => i % shape.c.max(1),
        Layout::Cnhw => i / shape.n.max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_place_planes_as_documented() {
        let shape = Shape::new(2, 3, 2, 2);
        let data: Vec<f32> = (0..shape.len()).map(|v| v as f32).collect();
        let nchw = Tensor::from_vec(shape, Layout::Nchw, data).unwrap();
        let cnhw = nchw.to_layout(Layout::Cnhw);
        assert_eq!(cnhw.plane_offset(1, 0), 4);
        assert_eq!(nchw.plane_offset(1, 0), 12);
        for n in 0..2 {
            for c in 0..3 {
                assert_eq!(nchw.plane(n, c), cnhw.plane(n, c));
            }
        }
        assert_eq!(cnhw.to_layout(Layout::Nchw), nchw);
        assert_eq!(cnhw.channel_of_plane(3), 1);
        assert_eq!(nchw.channel_of_plane(3), 0);
    }

    #[test]
    fn reset_keeps_the_largest_buffer() {
        let mut t = Tensor::zeros(Shape::new(1, 1, 4, 4), Layout::Nchw);
        t.reset(Shape::new(1, 1, 2, 2), Layout::Cnhw);
        assert_eq!(t.data().len(), 4);
        t.reset(Shape::new(1, 2, 2, 2), Layout::Cnhw);
        assert_eq!(t.data().len(), 8);
        assert!(Tensor::from_vec(Shape::new(1, 1, 2, 2), Layout::Nchw, vec![0.0; 3]).is_err());
    }
}
