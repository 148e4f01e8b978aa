//! Face landmarks with dlib's `shape_predictor` (an ensemble of regression trees): starting from
//! the mean shape placed in the face box, each cascade level reads pixel intensities at points
//! tied to the current shape and adds the leaf vectors its trees select.
//!
//! The arithmetic is dlib's, so the integer landmarks are the peer's exactly: the similarity
//! from the mean shape to the current shape in f64 with its 2x2 part cast to f32 (translation
//! dropped), feature points in f32, the box map `x = left + qx·(right − left)` in f64, pixel
//! lookup at `floor(v + 0.5)`, intensity `(R + G + B) / 3` in integers (0 outside the image),
//! leaf vectors added in f32 in tree order, and output points rounded half up.

use std::path::{Path, PathBuf};

use visage_formats::dlib::shape_predictor::ShapePredictorModel;
use visage_image::RgbImage;

use crate::similarity::find_similarity;
use crate::{FaceError, Point, Rect};

/// One split node, flattened for the tree walk.
#[derive(Debug, Clone, Copy)]
struct Split {
    idx1: u32,
    idx2: u32,
    thresh: f32,
}

/// Where one tree's nodes and leaves sit in its cascade's flat arrays.
#[derive(Debug, Clone, Copy)]
struct TreeSpan {
    split_start: u32,
    num_splits: u32,
    leaf_start: u32,
}

/// One cascade level in a layout made for prediction: all trees' splits and leaf values
/// back to back, so a prediction touches a few contiguous arrays instead of many small ones.
#[derive(Debug, Clone)]
struct FlatCascade {
    trees: Vec<TreeSpan>,
    splits: Vec<Split>,
    /// Leaf vectors, each `2 × num_points` long, one after another.
    leaves: Vec<f32>,
    anchor_idx: Vec<u32>,
    deltas: Vec<[f32; 2]>,
}

/// A loaded landmark predictor (dlib's 5-point face model, or any model of the same format).
#[derive(Debug, Clone)]
pub struct ShapePredictor {
    initial_shape: Vec<f32>,
    /// The initial shape as points, in f64, for the per-level similarity fit.
    initial_points: Vec<[f64; 2]>,
    cascades: Vec<FlatCascade>,
    max_features: usize,
}

impl ShapePredictor {
    /// Loads and checks a dlib shape predictor file (e.g.
    /// `dlib/shape_predictor_5_face_landmarks.dat`).
    pub fn load(path: &Path) -> Result<Self, FaceError> {
        let model = ShapePredictorModel::from_file(path)?;
        Self::build(&model, path)
    }

    /// Builds a predictor from an already parsed model. The model is validated again (its
    /// fields are public, so it may have been changed since parsing); a bad one gives
    /// [`FaceError::Unsupported`].
    pub fn from_model(model: &ShapePredictorModel) -> Result<Self, FaceError> {
        Self::build(model, Path::new("<in-memory shape predictor>"))
    }

    fn build(model: &ShapePredictorModel, path: &Path) -> Result<Self, FaceError> {
        let unsupported = |message: String| FaceError::Unsupported {
            path: PathBuf::from(path),
            message,
        };
        model.validate().map_err(unsupported)?;
        let too_big = || unsupported("model too large for 32-bit indices".into());
        let idx = |v: usize| u32::try_from(v).map_err(|_| too_big());

        let mut cascades = Vec::with_capacity(model.cascades.len());
        let mut max_features = 0;
        for c in &model.cascades {
            let mut flat = FlatCascade {
                trees: Vec::with_capacity(c.trees.len()),
                splits: Vec::new(),
                leaves: Vec::new(),
                anchor_idx: c
                    .anchor_idx
                    .iter()
                    .map(|&a| idx(a))
                    .collect::<Result<_, _>>()?,
                deltas: c.deltas.clone(),
            };
            for t in &c.trees {
                flat.trees.push(TreeSpan {
                    split_start: idx(flat.splits.len())?,
                    num_splits: idx(t.splits.len())?,
                    leaf_start: idx(flat.leaves.len())?,
                });
                for s in &t.splits {
                    flat.splits.push(Split {
                        idx1: idx(s.idx1)?,
                        idx2: idx(s.idx2)?,
                        thresh: s.thresh,
                    });
                }
                for leaf in &t.leaf_values {
                    flat.leaves.extend_from_slice(leaf);
                }
            }
            idx(flat.leaves.len())?;
            max_features = max_features.max(flat.deltas.len());
            cascades.push(flat);
        }
        let initial_points = model
            .initial_shape
            .chunks_exact(2)
            .map(|p| [f64::from(p[0]), f64::from(p[1])])
            .collect();
        Ok(Self {
            initial_shape: model.initial_shape.clone(),
            initial_points,
            cascades,
            max_features,
        })
    }

    /// Number of landmarks each prediction returns (5 for the face model).
    pub fn num_points(&self) -> usize {
        self.initial_shape.len() / 2
    }

    /// The landmarks of the object in `rect` (dlib's inclusive box, in pixels; it may extend
    /// past the image), as integer pixel positions in model order. For the 5-point face
    /// model: the outer and inner corners of the eye on the image right, the same for the eye
    /// on the image left, then the base of the nose.
    pub fn predict(&self, image: &RgbImage, rect: &Rect) -> Vec<Point> {
        let left = rect.left as f64;
        let top = rect.top as f64;
        // dlib maps the unit square onto the box corners, so the scale is right − left, not the
        // inclusive width; taken in f64 so that extreme boxes cannot overflow.
        let sx = rect.right as f64 - left;
        let sy = rect.bottom as f64 - top;
        let (width, height) = (image.width() as f64, image.height() as f64);
        let stride = image.width() as usize * 3;
        let pixels = image.as_raw();

        let mut shape = self.initial_shape.clone();
        let mut current = vec![[0.0f64; 2]; self.initial_points.len()];
        let mut features = vec![0.0f32; self.max_features];
        let points = self.initial_points.len();

        for cascade in &self.cascades {
            for (p, xy) in current.iter_mut().zip(shape.chunks_exact(2)) {
                *p = [f64::from(xy[0]), f64::from(xy[1])];
            }
            // Only the linear part is used: feature offsets rotate and scale with the shape,
            // while their anchors already carry the position.
            let m = match find_similarity(&self.initial_points, &current) {
                Some(s) if points > 1 => s.m,
                _ => [[1.0, 0.0], [0.0, 1.0]],
            };
            let m = [
                [m[0][0] as f32, m[0][1] as f32],
                [m[1][0] as f32, m[1][1] as f32],
            ];

            for ((f, d), &a) in features
                .iter_mut()
                .zip(&cascade.deltas)
                .zip(&cascade.anchor_idx)
            {
                let a = a as usize;
                let qx = (m[0][0] * d[0] + m[0][1] * d[1]) + shape[2 * a];
                let qy = (m[1][0] * d[0] + m[1][1] * d[1]) + shape[2 * a + 1];
                // The pixel is floor(v + 0.5); floor(u) lies in [0, size) exactly when u does,
                // and for u >= 0 truncation is the floor. NaN fails the test and reads 0.
                let x = sx * f64::from(qx) + left + 0.5;
                let y = sy * f64::from(qy) + top + 0.5;
                *f = if x >= 0.0 && x < width && y >= 0.0 && y < height {
                    let i = y as usize * stride + x as usize * 3;
                    let sum =
                        u32::from(pixels[i]) + u32::from(pixels[i + 1]) + u32::from(pixels[i + 2]);
                    (sum / 3) as f32
                } else {
                    0.0
                };
            }

            let len = shape.len();
            for tree in &cascade.trees {
                let splits =
                    &cascade.splits[tree.split_start as usize..][..tree.num_splits as usize];
                let mut node = 0usize;
                while node < splits.len() {
                    let s = splits[node];
                    node = if features[s.idx1 as usize] - features[s.idx2 as usize] > s.thresh {
                        2 * node + 1
                    } else {
                        2 * node + 2
                    };
                }
                let leaf = tree.leaf_start as usize + (node - splits.len()) * len;
                for (v, add) in shape.iter_mut().zip(&cascade.leaves[leaf..leaf + len]) {
                    *v += add;
                }
            }
        }

        shape
            .chunks_exact(2)
            .map(|p| {
                let x = (sx * f64::from(p[0]) + left + 0.5).floor();
                let y = (sy * f64::from(p[1]) + top + 0.5).floor();
                Point::new(x as i64, y as i64)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use visage_formats::dlib::shape_predictor::{Cascade, RegressionTree, SplitFeature};

    /// One point at the box centre; one depth-1 tree comparing the pixel under the point with
    /// one a little to its right, moving the point right by 0.25 box widths when the first is
    /// brighter.
    fn toy_model() -> ShapePredictorModel {
        ShapePredictorModel {
            initial_shape: vec![0.5, 0.5],
            cascades: vec![Cascade {
                trees: vec![RegressionTree {
                    splits: vec![SplitFeature {
                        idx1: 0,
                        idx2: 1,
                        thresh: 10.0,
                    }],
                    leaf_values: vec![vec![0.25, 0.0], vec![0.0, 0.0]],
                }],
                anchor_idx: vec![0, 0],
                deltas: vec![[0.0, 0.0], [0.2, 0.0]],
            }],
        }
    }

    #[test]
    fn toy_model_follows_the_tree() {
        let p = ShapePredictor::from_model(&toy_model()).unwrap();
        let rect = Rect::new(0, 0, 20, 20);
        // Box centre (10, 10) is bright, (14, 10) is dark: go left, move right by 5 px.
        let mut img = RgbImage::new(30, 30);
        img.put_pixel(10, 10, [200, 100, 0].into());
        assert_eq!(p.predict(&img, &rect), vec![Point::new(15, 10)]);
        // Both dark: stay.
        assert_eq!(
            p.predict(&RgbImage::new(30, 30), &rect),
            vec![Point::new(10, 10)]
        );
    }

    #[test]
    fn boxes_outside_the_image_read_zeros_without_panicking() {
        let p = ShapePredictor::from_model(&toy_model()).unwrap();
        let img = RgbImage::from_pixel(5, 5, [255, 255, 255].into());
        let far = Rect::new(-1_000_000, 3_000_000, -999_980, 3_000_020);
        assert_eq!(p.predict(&img, &far), vec![Point::new(-999_990, 3_000_010)]);
        let empty = RgbImage::new(0, 0);
        assert_eq!(p.predict(&empty, &Rect::new(0, 0, 20, 20)).len(), 1);
    }

    #[test]
    fn damaged_models_are_refused() {
        let mut m = toy_model();
        m.cascades[0].anchor_idx[1] = 3;
        assert!(matches!(
            ShapePredictor::from_model(&m),
            Err(FaceError::Unsupported { .. })
        ));
    }
}
