//! dlib's `shape_predictor` file (the ensemble-of-regression-trees landmark model of Kazemi and
//! Sullivan), as `shape_predictor_5_face_landmarks.dat` stores it:
//!
//! ```text
//! int version = 1
//! matrix<float,0,1> initial_shape                  x0,y0,x1,y1,... normalised to the face box
//! vector<vector<regression_tree>> forests          one forest per cascade level
//!     regression_tree = vector<split_feature> splits, vector<matrix<float,0,1>> leaf_values
//!     split_feature   = unsigned idx1, unsigned idx2, float thresh
//! vector<vector<unsigned long>> anchor_idx         per cascade, per feature pixel
//! vector<vector<vector<float,2>>> deltas           per cascade, per feature pixel
//! ```
//!
//! Everything the predictor later indexes with is checked here (split indices against the
//! cascade's feature pixels, anchors against the shape points, leaf lengths against the shape,
//! complete trees), so a model that parses can be run without bounds surprises.

use std::path::Path;

use super::reader::{parse_bytes, parse_file, DlibReader, ReadResult};
use crate::FormatError;

/// Format name used in error messages.
const FORMAT: &str = "dlib shape predictor";

/// The only serialization version dlib writes for `shape_predictor`.
const VERSION: i32 = 1;

/// One split node of a regression tree: compare two feature pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplitFeature {
    /// First feature pixel (index into the cascade's feature pixels).
    pub idx1: usize,
    /// Second feature pixel (index into the cascade's feature pixels).
    pub idx2: usize,
    /// Go to the left child when `f[idx1] - f[idx2] > thresh` (grey levels, 0..255 scale).
    pub thresh: f32,
}

/// A complete binary regression tree stored as arrays: node `i` has children `2i+1` (left) and
/// `2i+2` (right); reaching node `n >= splits.len()` selects leaf `n - splits.len()`.
#[derive(Debug, Clone, PartialEq)]
pub struct RegressionTree {
    /// The split nodes, breadth first.
    pub splits: Vec<SplitFeature>,
    /// One shape update per leaf, each `2 × num_points` long (x0, y0, x1, y1, …), in units of
    /// the face box (normalised coordinates).
    pub leaf_values: Vec<Vec<f32>>,
}

/// One level of the cascade: its trees and the feature pixels they read.
#[derive(Debug, Clone, PartialEq)]
pub struct Cascade {
    /// The trees, applied in order; their leaf values are added to the current shape.
    pub trees: Vec<RegressionTree>,
    /// For each feature pixel, the shape point it is anchored to.
    pub anchor_idx: Vec<usize>,
    /// For each feature pixel, its offset (dx, dy) from the anchor point in the initial shape,
    /// in normalised face-box units.
    pub deltas: Vec<[f32; 2]>,
}

/// The parsed shape predictor: the mean shape and the cascade of regression forests.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapePredictorModel {
    /// The starting shape, `2 × num_points` values (x0, y0, x1, y1, …) in normalised face-box
    /// units: (0, 0) is the box's top-left corner and (1, 1) its bottom-right one.
    pub initial_shape: Vec<f32>,
    /// The cascade levels, applied in order.
    pub cascades: Vec<Cascade>,
}

impl ShapePredictorModel {
    /// Reads and parses the model file at `path`.
    pub fn from_file(path: &Path) -> Result<Self, FormatError> {
        parse_file(path, FORMAT, parse)
    }

    /// Parses a model held in memory; `path` names it in error messages.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, FormatError> {
        parse_bytes(bytes, path, FORMAT, parse)
    }

    /// Number of landmarks the model predicts.
    pub fn num_points(&self) -> usize {
        self.initial_shape.len() / 2
    }

    /// Checks the invariants the parser guarantees, for a model built or changed in memory:
    /// a non-empty even-length shape, complete trees, leaves of the shape's length, split indices
    /// below the cascade's feature count, anchors below the point count, one delta per anchor and
    /// finite numbers throughout. Returns what is wrong, in words.
    pub fn validate(&self) -> Result<(), String> {
        let values = self.initial_shape.len();
        if values == 0 || values % 2 == 1 {
            return Err(format!(
                "initial shape has {values} values; expected a positive even count"
            ));
        }
        if self.initial_shape.iter().any(|v| !v.is_finite()) {
            return Err("initial shape holds a non-finite value".into());
        }
        let points = values / 2;
        for (c, cascade) in self.cascades.iter().enumerate() {
            let features = cascade.anchor_idx.len();
            if cascade.deltas.len() != features {
                return Err(format!(
                    "cascade {c} has {features} anchors but {} deltas",
                    cascade.deltas.len()
                ));
            }
            if let Some(a) = cascade.anchor_idx.iter().find(|&&a| a >= points) {
                return Err(format!(
                    "cascade {c}: anchor {a} is not below the {points} shape points"
                ));
            }
            if cascade.deltas.iter().flatten().any(|v| !v.is_finite()) {
                return Err(format!("cascade {c}: a feature delta is not finite"));
            }
            for (t, tree) in cascade.trees.iter().enumerate() {
                check_tree_shape(tree.splits.len(), tree.leaf_values.len())
                    .map_err(|m| format!("cascade {c} tree {t}: {m}"))?;
                if let Some(s) = tree
                    .splits
                    .iter()
                    .find(|s| s.idx1 >= features || s.idx2 >= features)
                {
                    return Err(format!(
                        "cascade {c} tree {t}: split on features ({}, {}) but the cascade has {features}",
                        s.idx1, s.idx2
                    ));
                }
                if let Some(leaf) = tree.leaf_values.iter().find(|l| l.len() != values) {
                    return Err(format!(
                        "cascade {c} tree {t}: leaf of {} values where the shape has {values}",
                        leaf.len()
                    ));
                }
                if tree.leaf_values.iter().flatten().any(|v| !v.is_finite()) {
                    return Err(format!("cascade {c} tree {t}: a leaf value is not finite"));
                }
            }
        }
        Ok(())
    }
}

/// A tree must be complete: `splits + 1` leaves, a power of two.
fn check_tree_shape(splits: usize, leaves: usize) -> Result<(), String> {
    if leaves != splits + 1 || !leaves.is_power_of_two() {
        return Err(format!(
            "{splits} splits and {leaves} leaves; a complete tree has 2^d - 1 splits and 2^d leaves"
        ));
    }
    Ok(())
}

/// A split index that must be checked once the cascade's feature count is known.
struct PendingSplit {
    offset: usize,
    max_idx: usize,
}

fn parse(r: &mut DlibReader<'_>) -> ReadResult<ShapePredictorModel> {
    r.expect_i32(VERSION, "shape_predictor version")?;

    let start = r.position();
    let initial_shape = r.column_f32()?;
    if initial_shape.is_empty() || initial_shape.len() % 2 == 1 {
        return Err(r.error_at(
            start,
            format!(
                "initial shape has {} values; expected a positive even count (x, y per point)",
                initial_shape.len()
            ),
        ));
    }
    if initial_shape.iter().any(|v| !v.is_finite()) {
        return Err(r.error_at(start, "initial shape holds a non-finite value"));
    }
    let shape_len = initial_shape.len();
    let points = shape_len / 2;

    // Every element of every vector takes at least one byte, so the bytes left bound any count
    // a valid file can hold; this refuses absurd counts before allocating for them.
    let num_cascades = r.count(r.remaining(), "number of cascades")?;
    let mut forests = Vec::with_capacity(num_cascades);
    let mut pending = Vec::with_capacity(num_cascades);
    for c in 0..num_cascades {
        let num_trees = r.count(r.remaining(), "number of trees")?;
        let mut trees = Vec::with_capacity(num_trees);
        let mut max_split = None::<PendingSplit>;
        for t in 0..num_trees {
            let (tree, tree_max) = parse_tree(r, shape_len, c, t)?;
            if let Some(m) = tree_max {
                if max_split.as_ref().is_none_or(|p| m.max_idx > p.max_idx) {
                    max_split = Some(m);
                }
            }
            trees.push(tree);
        }
        forests.push(trees);
        pending.push(max_split);
    }

    let start = r.position();
    let num_anchor_sets = r.count(r.remaining(), "number of anchor sets")?;
    if num_anchor_sets != num_cascades {
        return Err(r.error_at(
            start,
            format!("{num_anchor_sets} anchor sets for {num_cascades} cascades; expected one per cascade"),
        ));
    }
    let mut anchors = Vec::with_capacity(num_cascades);
    for (c, max_split) in pending.iter().enumerate() {
        let count = r.count(r.remaining(), "number of feature pixels")?;
        let mut idx = Vec::with_capacity(count);
        for _ in 0..count {
            let at = r.position();
            let a = r.u64()?;
            if a >= points as u64 {
                return Err(r.error_at(
                    at,
                    format!("cascade {c}: anchor point {a} is not below the {points} shape points"),
                ));
            }
            idx.push(a as usize);
        }
        if let Some(s) = max_split {
            if s.max_idx >= count {
                return Err(r.error_at(
                    s.offset,
                    format!(
                        "cascade {c}: split on feature pixel {} but the cascade has {count} feature pixels",
                        s.max_idx
                    ),
                ));
            }
        }
        anchors.push(idx);
    }

    let start = r.position();
    let num_delta_sets = r.count(r.remaining(), "number of delta sets")?;
    if num_delta_sets != num_cascades {
        return Err(r.error_at(
            start,
            format!(
                "{num_delta_sets} delta sets for {num_cascades} cascades; expected one per cascade"
            ),
        ));
    }
    let mut cascades = Vec::with_capacity(num_cascades);
    for (c, (trees, anchor_idx)) in forests.into_iter().zip(anchors).enumerate() {
        let start = r.position();
        let count = r.count(r.remaining() / 4, "number of deltas")?;
        if count != anchor_idx.len() {
            return Err(r.error_at(
                start,
                format!(
                    "cascade {c}: {count} deltas for {} anchors; expected one per feature pixel",
                    anchor_idx.len()
                ),
            ));
        }
        let mut deltas = Vec::with_capacity(count);
        for _ in 0..count {
            let at = r.position();
            let d = [r.f32()?, r.f32()?];
            if !d[0].is_finite() || !d[1].is_finite() {
                return Err(r.error_at(
                    at,
                    format!("cascade {c}: feature delta {d:?} is not finite"),
                ));
            }
            deltas.push(d);
        }
        cascades.push(Cascade {
            trees,
            anchor_idx,
            deltas,
        });
    }

    r.expect_end()?;
    Ok(ShapePredictorModel {
        initial_shape,
        cascades,
    })
}

/// One `regression_tree`; also returns the largest split index it uses and where, to be
/// checked once the cascade's feature pixels have been read.
fn parse_tree(
    r: &mut DlibReader<'_>,
    shape_len: usize,
    cascade: usize,
    tree: usize,
) -> ReadResult<(RegressionTree, Option<PendingSplit>)> {
    // A split takes at least 4 bytes (two 2-byte integers, then a float of at least 2 bytes).
    let num_splits = r.count(r.remaining() / 4, "number of splits")?;
    let mut splits = Vec::with_capacity(num_splits);
    let mut max_split: Option<PendingSplit> = None;
    for _ in 0..num_splits {
        let offset = r.position();
        let idx1 = r.u64()?;
        let idx2 = r.u64()?;
        let thresh = r.f32()?;
        // Indices past usize (32-bit targets) are out of range anyway; saturate and let the
        // feature-count check reject them.
        let idx1 = usize::try_from(idx1).unwrap_or(usize::MAX);
        let idx2 = usize::try_from(idx2).unwrap_or(usize::MAX);
        let m = idx1.max(idx2);
        if max_split.as_ref().is_none_or(|p| m > p.max_idx) {
            max_split = Some(PendingSplit { offset, max_idx: m });
        }
        splits.push(SplitFeature { idx1, idx2, thresh });
    }

    let start = r.position();
    let num_leaves = r.count(r.remaining() / 4, "number of leaves")?;
    check_tree_shape(num_splits, num_leaves)
        .map_err(|m| r.error_at(start, format!("cascade {cascade} tree {tree}: {m}")))?;
    let mut leaf_values = Vec::with_capacity(num_leaves);
    for _ in 0..num_leaves {
        let at = r.position();
        let leaf = r.column_f32()?;
        if leaf.len() != shape_len {
            return Err(r.error_at(
                at,
                format!(
                    "cascade {cascade} tree {tree}: leaf of {} values; expected {shape_len} (2 per shape point)",
                    leaf.len()
                ),
            ));
        }
        if leaf.iter().any(|v| !v.is_finite()) {
            return Err(r.error_at(
                at,
                format!("cascade {cascade} tree {tree}: leaf holds a non-finite value"),
            ));
        }
        leaf_values.push(leaf);
    }
    Ok((
        RegressionTree {
            splits,
            leaf_values,
        },
        max_split,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn model_path() -> PathBuf {
        let shared = visage_testdata::shared();
        shared.join("models/dlib/shape_predictor_5_face_landmarks.dat")
    }

    fn model_bytes() -> Vec<u8> {
        let path = model_path();
        std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{} not readable ({e}); set VISAGE_SHARED", path.display()))
    }

    #[test]
    fn parses_the_real_5_point_model() {
        let bytes = model_bytes();
        let m = ShapePredictorModel::from_bytes(&bytes, Path::new("sp5.dat")).unwrap();
        assert_eq!(m.num_points(), 5);
        assert_eq!(m.cascades.len(), 15);
        let mut floats = m.initial_shape.len();
        for c in &m.cascades {
            assert_eq!(c.trees.len(), 500);
            assert_eq!(c.anchor_idx.len(), 800);
            assert_eq!(c.deltas.len(), 800);
            for t in &c.trees {
                assert_eq!(t.splits.len(), 15, "depth 4");
                assert_eq!(t.leaf_values.len(), 16);
                floats += t.splits.len() + t.leaf_values.iter().map(Vec::len).sum::<usize>();
            }
            floats += 2 * c.deltas.len();
        }
        assert_eq!(floats, 1_336_510, "float count of DLIB_FORMATS.md");
        let expected = [
            0.77625, 0.34554, 0.61862, 0.35377, 0.22653, 0.34553, 0.38415, 0.35377, 0.50138,
            0.65761,
        ];
        for (got, want) in m.initial_shape.iter().zip(expected) {
            assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        }
        m.validate().unwrap();
    }

    #[test]
    fn truncated_copies_fail_cleanly() {
        let bytes = model_bytes();
        let n = bytes.len();
        let mut cuts: Vec<usize> = (0..64).collect();
        cuts.extend((1..120).map(|i| i * n / 120));
        cuts.extend([n - 3, n - 2, n - 1]);
        for cut in cuts {
            let err =
                ShapePredictorModel::from_bytes(&bytes[..cut], Path::new("cut.dat")).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains("cut.dat") && msg.contains("shape predictor"),
                "cut {cut}: {msg}"
            );
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = model_bytes();
        bytes.push(0);
        let err = ShapePredictorModel::from_bytes(&bytes, Path::new("long.dat")).unwrap_err();
        assert!(err.to_string().contains("unexpected bytes"), "{err}");
    }

    /// A tiny hand-written model: 1 point, 1 cascade, one depth-1 tree, 2 feature pixels.
    fn tiny(anchor: u8, split_idx: u8, leaf_len: u8) -> Vec<u8> {
        let mut b = vec![0x01, 0x01]; // version 1
                                      // initial_shape: dims -2 x -1, values 1 and 1 (mantissa 1, exponent 0)
        b.extend([
            0x81, 0x02, 0x81, 0x01, 0x01, 0x01, 0x01, 0x00, 0x01, 0x01, 0x01, 0x00,
        ]);
        b.extend([0x01, 0x01]); // 1 cascade
        b.extend([0x01, 0x01]); // 1 tree
        b.extend([0x01, 0x01]); // 1 split
        b.extend([0x01, split_idx, 0x01, 0x00, 0x01, 0x01, 0x01, 0x00]); // idx1, idx2 = 0, thresh = 1.0
        b.extend([0x01, 0x02]); // 2 leaves
        for _ in 0..2 {
            b.extend([0x81, leaf_len, 0x81, 0x01]);
            for _ in 0..leaf_len {
                b.extend([0x01, 0x01, 0x01, 0x00]);
            }
        }
        b.extend([0x01, 0x01, 0x01, 0x02, 0x01, anchor, 0x01, 0x00]); // anchors: 1 set of [anchor, 0]
        b.extend([0x01, 0x01, 0x01, 0x02]); // deltas: 1 set of 2
        b.extend([0x01, 0x01, 0x01, 0x00, 0x01, 0x01, 0x01, 0x00]);
        b.extend([0x01, 0x01, 0x01, 0x00, 0x01, 0x01, 0x01, 0x00]);
        b
    }

    #[test]
    fn tiny_model_parses_and_bad_indices_are_named() {
        let ok = ShapePredictorModel::from_bytes(&tiny(0, 1, 2), Path::new("t.dat")).unwrap();
        assert_eq!(ok.num_points(), 1);
        assert_eq!(ok.cascades[0].trees[0].splits[0].idx1, 1);
        ok.validate().unwrap();

        let err = ShapePredictorModel::from_bytes(&tiny(1, 1, 2), Path::new("t.dat")).unwrap_err();
        assert!(err.to_string().contains("anchor point 1"), "{err}");
        let err = ShapePredictorModel::from_bytes(&tiny(0, 2, 2), Path::new("t.dat")).unwrap_err();
        assert!(err.to_string().contains("feature pixel 2"), "{err}");
        let err = ShapePredictorModel::from_bytes(&tiny(0, 1, 4), Path::new("t.dat")).unwrap_err();
        assert!(err.to_string().contains("leaf of 4 values"), "{err}");
    }

    #[test]
    fn validate_catches_in_memory_damage() {
        let mut m = ShapePredictorModel::from_bytes(&tiny(0, 1, 2), Path::new("t.dat")).unwrap();
        m.cascades[0].trees[0].splits[0].idx2 = 7;
        assert!(m.validate().unwrap_err().contains("split on features"));
        let mut m = ShapePredictorModel::from_bytes(&tiny(0, 1, 2), Path::new("t.dat")).unwrap();
        m.cascades[0].trees[0].leaf_values.pop();
        assert!(m.validate().unwrap_err().contains("complete tree"));
        let mut m = ShapePredictorModel::from_bytes(&tiny(0, 1, 2), Path::new("t.dat")).unwrap();
        m.cascades[0].deltas.pop();
        assert!(m.validate().unwrap_err().contains("deltas"));
    }
}
