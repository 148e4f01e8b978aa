//! Receptive-field arithmetic: which input samples (pixels, signal samples, voxels) one output
//! position of a layer can see, derived from the chain of kernel sizes, strides and paddings.
//!
//! Per axis a layer's field is three numbers: `size` (how many input samples it spans), `jump`
//! (how far apart, in input samples, neighbouring output positions' fields start) and `offset`
//! (where output position 0's field starts; negative when padding reaches past the border). The
//! field of output index `i` is `[offset + i * jump, offset + i * jump + size)`.

use serde::Serialize;

/// One axis of a receptive field, in input samples (pixels for images).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AxisField {
    /// Samples spanned by one output position.
    pub size: usize,
    /// Distance between the fields of neighbouring output positions.
    pub jump: usize,
    /// First sample of output position 0's field (negative: in the padding).
    pub offset: isize,
}

impl AxisField {
    /// The input itself: each sample sees only itself.
    pub const IDENTITY: AxisField = AxisField {
        size: 1,
        jump: 1,
        offset: 0,
    };

    /// The field after a sliding window of `kernel` samples, moving by `stride`, with `padding`
    /// zeros before the first sample (all in the window's input samples).
    pub fn then(self, kernel: usize, stride: usize, padding: usize) -> AxisField {
        AxisField {
            size: self.size + kernel.saturating_sub(1) * self.jump,
            jump: self.jump * stride.max(1),
            offset: self.offset - (padding * self.jump) as isize,
        }
    }

    /// The smallest field covering both (where two branches of a residual block are added).
    /// Both branches share one grid, so the jumps agree; the larger is kept if not.
    pub fn union(self, other: AxisField) -> AxisField {
        let start = self.offset.min(other.offset);
        let end = (self.offset + self.size as isize).max(other.offset + other.size as isize);
        AxisField {
            size: (end - start) as usize,
            jump: self.jump.max(other.jump),
            offset: start,
        }
    }

    /// The half-open input interval `[start, end)` that output index `i` sees (unclipped).
    pub fn span(&self, i: usize) -> (isize, isize) {
        let start = self.offset + (i * self.jump) as isize;
        (start, start + self.size as isize)
    }
}

/// A receptive field over 1, 2 or 3 axes (signal: `[t]`; image: `[y, x]`; volume: `[z, y, x]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceptiveField {
    /// One entry per spatial axis, outermost first.
    pub axes: Vec<AxisField>,
}

impl ReceptiveField {
    /// The input's own field over `dims` axes.
    pub fn identity(dims: usize) -> Self {
        Self {
            axes: vec![AxisField::IDENTITY; dims],
        }
    }

    /// Applies a window with per-axis kernel, stride and padding (each as long as the axes).
    pub fn then(&self, kernel: &[usize], stride: &[usize], padding: &[usize]) -> Self {
        Self {
            axes: self
                .axes
                .iter()
                .enumerate()
                .map(|(a, f)| f.then(kernel[a], stride[a], padding[a]))
                .collect(),
        }
    }

    /// Applies the same square (cubic) window on every axis.
    pub fn then_square(&self, kernel: usize, stride: usize, padding: usize) -> Self {
        let n = self.axes.len();
        self.then(&vec![kernel; n], &vec![stride; n], &vec![padding; n])
    }

    /// Per-axis union, as [`AxisField::union`].
    pub fn union(&self, other: &ReceptiveField) -> Self {
        Self {
            axes: self
                .axes
                .iter()
                .zip(&other.axes)
                .map(|(a, b)| a.union(*b))
                .collect(),
        }
    }

    /// The half-open interval per axis that the output at `position` sees (unclipped).
    pub fn span(&self, position: &[usize]) -> Vec<(isize, isize)> {
        self.axes
            .iter()
            .zip(position)
            .map(|(f, &i)| f.span(i))
            .collect()
    }

    /// Short text for labels, for example `"27x27 px, jump 8"`.
    pub fn describe(&self) -> String {
        let sizes: Vec<String> = self.axes.iter().map(|a| a.size.to_string()).collect();
        let jump = self.axes.first().map_or(1, |a| a.jump);
        format!("{}, jump {jump}", sizes.join("x"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_chain() {
        // conv 3x3/1 p1, conv 3x3/2 p1, pool 2x2/2: sizes 3, 5, 7; jumps 1, 2, 4.
        let f = AxisField::IDENTITY.then(3, 1, 1);
        assert_eq!(
            f,
            AxisField {
                size: 3,
                jump: 1,
                offset: -1
            }
        );
        let f = f.then(3, 2, 1);
        assert_eq!(
            f,
            AxisField {
                size: 5,
                jump: 2,
                offset: -2
            }
        );
        let f = f.then(2, 2, 0);
        assert_eq!(
            f,
            AxisField {
                size: 7,
                jump: 4,
                offset: -2
            }
        );
        assert_eq!(f.span(3), (10, 17));
    }

    #[test]
    fn union_covers_both_branches() {
        let main = AxisField::IDENTITY.then(3, 2, 1).then(3, 1, 1);
        let skip = AxisField::IDENTITY.then(2, 2, 0);
        let u = main.union(skip);
        assert_eq!(u.offset, -3);
        assert_eq!(u.size, 7);
        assert_eq!(u.jump, 2);
    }

    #[test]
    fn multi_axis() {
        let f = ReceptiveField::identity(3).then_square(3, 2, 0);
        assert_eq!(f.span(&[0, 1, 2]), vec![(0, 3), (2, 5), (4, 7)]);
    }
}
