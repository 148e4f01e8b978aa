//! Non-maximum suppression as dlib's `object_detector` does it: candidates from all
//! sub-detectors by decreasing confidence, each kept unless it overlaps a box already kept
//! (from any sub-detector).

use crate::Rect;

/// dlib's `test_box_overlap`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OverlapTest {
    /// Overlap when intersection / bounding-box area exceeds this.
    pub iou_thresh: f64,
    /// Overlap when the intersection covers more than this fraction of either box.
    pub covered_thresh: f64,
}

impl OverlapTest {
    /// True when `a` and `b` overlap. The "union" is the smallest rectangle holding both
    /// boxes, not the union of their pixels; areas count pixels inclusively.
    pub(crate) fn overlaps(&self, a: &Rect, b: &Rect) -> bool {
        let inner = a.intersect(b).area() as f64;
        if inner == 0.0 {
            return false;
        }
        let outer = a.bounding_union(b).area() as f64;
        inner / outer > self.iou_thresh
            || inner / a.area() as f64 > self.covered_thresh
            || inner / b.area() as f64 > self.covered_thresh
    }
}

/// Keeps the non-overlapping candidates. `items` yields (box, confidence, payload); the
/// result is in decreasing confidence order. Equal confidences keep their input order.
pub(crate) fn suppress<T>(
    mut items: Vec<(Rect, f64, T)>,
    test: &OverlapTest,
) -> Vec<(Rect, f64, T)> {
    items.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut kept: Vec<(Rect, f64, T)> = Vec::new();
    for item in items {
        if kept.iter().any(|k| test.overlaps(&k.0, &item.0)) {
            continue;
        }
        kept.push(item);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST: OverlapTest = OverlapTest {
        iou_thresh: 0.33008212188056446,
        covered_thresh: 0.7885714285714286,
    };

    #[test]
    fn union_is_the_bounding_box() {
        // Two 10x10 boxes offset diagonally by 4: intersection 36, true union 164
        // (IoU 0.22), bounding box 196 (0.18). Neither passes 0.33.
        let a = Rect::new(0, 0, 9, 9);
        let b = Rect::new(4, 4, 13, 13);
        assert!(!TEST.overlaps(&a, &b));
        // Offset by 2 horizontally: intersection 80, bounding box 120 (0.67).
        assert!(TEST.overlaps(&a, &Rect::new(2, 0, 11, 9)));
        // A box inside a larger one overlaps by coverage.
        assert!(TEST.overlaps(&Rect::new(0, 0, 99, 99), &Rect::new(10, 10, 29, 29)));
        // Side-by-side boxes share no pixel.
        assert!(!TEST.overlaps(&a, &Rect::new(10, 0, 19, 9)));
    }

    #[test]
    fn keeps_the_best_of_overlapping_boxes() {
        let items = vec![
            (Rect::new(0, 0, 9, 9), 0.5, 0usize),
            (Rect::new(1, 0, 10, 9), 0.9, 1),
            (Rect::new(50, 50, 59, 59), 0.1, 2),
        ];
        let kept = suppress(items, &TEST);
        assert_eq!(kept.iter().map(|k| k.2).collect::<Vec<_>>(), vec![1, 2]);
    }
}
