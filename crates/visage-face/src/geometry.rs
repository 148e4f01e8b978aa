use serde::{Deserialize, Serialize};

/// An integer rectangle as dlib stores it: inclusive corners, in pixels of the image it was
/// found in. Width is `right - left + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rect {
    /// Left column, pixels.
    pub left: i64,
    /// Top row, pixels.
    pub top: i64,
    /// Right column (inclusive), pixels.
    pub right: i64,
    /// Bottom row (inclusive), pixels.
    pub bottom: i64,
}

impl Rect {
    /// A rectangle from its inclusive corners, in pixels.
    pub fn new(left: i64, top: i64, right: i64, bottom: i64) -> Self {
        Self {
            left,
            top,
            right,
            bottom,
        }
    }

    /// Width in pixels (inclusive corners); 0 for an empty rectangle.
    pub fn width(&self) -> i64 {
        (self.right - self.left + 1).max(0)
    }

    /// Height in pixels (inclusive corners); 0 for an empty rectangle.
    pub fn height(&self) -> i64 {
        (self.bottom - self.top + 1).max(0)
    }

    /// Area in pixels, counted inclusively as dlib does.
    pub fn area(&self) -> i64 {
        self.width() * self.height()
    }

    /// True when the rectangle holds no pixel.
    pub fn is_empty(&self) -> bool {
        self.width() == 0 || self.height() == 0
    }

    /// The overlap of two rectangles (possibly empty).
    pub fn intersect(&self, other: &Rect) -> Rect {
        Rect::new(
            self.left.max(other.left),
            self.top.max(other.top),
            self.right.min(other.right),
            self.bottom.min(other.bottom),
        )
    }

    /// The smallest rectangle holding both.
    pub fn bounding_union(&self, other: &Rect) -> Rect {
        Rect::new(
            self.left.min(other.left),
            self.top.min(other.top),
            self.right.max(other.right),
            self.bottom.max(other.bottom),
        )
    }

    /// Centre, in pixels.
    pub fn center(&self) -> (f64, f64) {
        (
            (self.left + self.right) as f64 / 2.0,
            (self.top + self.bottom) as f64 / 2.0,
        )
    }
}

/// An integer image point, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Point {
    /// Column, pixels.
    pub x: i64,
    /// Row, pixels.
    pub y: i64,
}

impl Point {
    /// A point from its column and row, in pixels.
    pub fn new(x: i64, y: i64) -> Self {
        Self { x, y }
    }
}
