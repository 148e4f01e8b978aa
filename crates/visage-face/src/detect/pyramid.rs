//! Coordinate maps between pyramid levels, as dlib's `pyramid_down<N>` classes define them,
//! and the level count of the scanner. Rectangles are mapped corner by corner in f64 and
//! rounded once at the end (`floor(v + 0.5)`), which is what converting dlib's `drectangle`
//! back to a `rectangle` does.

use crate::Rect;

/// A rectangle with real corners, pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DRect {
    pub left: f64,
    pub top: f64,
    pub right: f64,
    pub bottom: f64,
}

impl DRect {
    fn from_rect(r: &Rect) -> Self {
        Self {
            left: r.left as f64,
            top: r.top as f64,
            right: r.right as f64,
            bottom: r.bottom as f64,
        }
    }

    fn round(&self) -> Rect {
        let round = |v: f64| (v + 0.5).floor() as i64;
        Rect::new(
            round(self.left),
            round(self.top),
            round(self.right),
            round(self.bottom),
        )
    }

    fn map(&self, fx: impl Fn(f64) -> f64, fy: impl Fn(f64) -> f64) -> Self {
        Self {
            left: fx(self.left),
            top: fy(self.top),
            right: fx(self.right),
            bottom: fy(self.bottom),
        }
    }
}

/// `pyramid_down<6>`: each level is 5/6 the size of the one before.
pub(crate) mod down6 {
    use super::*;

    fn point_down(p: f64) -> f64 {
        (p - 0.3) * (5.0 / 6.0)
    }

    fn point_up(p: f64) -> f64 {
        p * (6.0 / 5.0) + 0.3
    }

    /// One level down, rounded.
    pub(crate) fn rect_down(r: &Rect) -> Rect {
        DRect::from_rect(r).map(point_down, point_down).round()
    }

    /// `levels` levels up (towards level 0), rounded once at the end.
    pub(crate) fn rect_up(r: &Rect, levels: usize) -> Rect {
        let mut d = DRect::from_rect(r);
        for _ in 0..levels {
            d = d.map(point_up, point_up);
        }
        d.round()
    }
}

/// `pyramid_down<2>`, whose inverse `pyramid_up` the detector's upsampling uses.
pub(crate) mod down2 {
    use super::*;

    fn point_down_x(p: f64) -> f64 {
        p / 2.0 - 1.25
    }

    fn point_down_y(p: f64) -> f64 {
        p / 2.0 - 0.75
    }

    /// `levels` levels down (from the upsampled image to the original), rounded once.
    pub(crate) fn rect_down(r: &Rect, levels: u32) -> Rect {
        let mut d = DRect::from_rect(r);
        for _ in 0..levels {
            d = d.map(point_down_x, point_down_y);
        }
        d.round()
    }
}

/// How many pyramid levels the scanner uses for an image of `width × height` pixels: level 0
/// always, then one more for each `pyramid_down<6>` step whose mapped image rectangle is at
/// least `min_width × min_height`, up to `max_levels`.
pub(crate) fn level_count(
    width: u32,
    height: u32,
    min_width: u32,
    min_height: u32,
    max_levels: u32,
) -> usize {
    let mut rect = Rect::new(0, 0, i64::from(width) - 1, i64::from(height) - 1);
    let mut levels = 0u32;
    loop {
        rect = down6::rect_down(&rect);
        levels += 1;
        let keep_going = rect.width() >= i64::from(min_width)
            && rect.height() >= i64::from(min_height)
            && levels < max_levels;
        if !keep_going {
            break;
        }
    }
    levels as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down6_round_trip_is_close() {
        let r = Rect::new(100, 50, 179, 129);
        let d = down6::rect_down(&r);
        assert_eq!(d, Rect::new(83, 41, 149, 107));
        let back = down6::rect_up(&d, 1);
        assert!((back.left - r.left).abs() <= 1 && (back.right - r.right).abs() <= 1);
    }

    #[test]
    fn down2_maps_upsampled_boxes_back() {
        // (p/2 - (1.25, 0.75)), rounded half up.
        assert_eq!(
            down2::rect_down(&Rect::new(100, 100, 200, 200), 1),
            Rect::new(49, 49, 99, 99)
        );
        assert_eq!(
            down2::rect_down(&Rect::new(101, 101, 201, 201), 1),
            Rect::new(49, 50, 99, 100)
        );
    }

    #[test]
    fn level_counts() {
        // A 64x64 image: level 0 only (the first step down is already smaller than 64).
        assert_eq!(level_count(64, 64, 64, 64, 1000), 1);
        assert_eq!(level_count(10, 10, 64, 64, 1000), 1);
        assert_eq!(level_count(1000, 1000, 64, 64, 3), 3);
        let n = level_count(1000, 1000, 64, 64, 1000);
        // 1000·(5/6)^k ≥ 64 up to k = 15.
        assert_eq!(n, 16);
    }
}
