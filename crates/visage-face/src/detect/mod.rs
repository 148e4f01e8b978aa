//! dlib's HOG frontal face detector (`get_frontal_face_detector`), reproduced so that it
//! returns the same boxes, scores and sub-detector indices as dlib.
//!
//! The steps (DLIB_FORMATS.md (d)): the image is enlarged `upsample` times with
//! `pyramid_up`; a `pyramid_down<6>` pyramid is built (each level 5/6 of the previous);
//! each level gets 31-plane FHOG features; each sub-detector's filters, split into
//! separable parts, are correlated with the planes; windows scoring at least the threshold
//! become candidates, mapped back to the image; overlapping candidates are suppressed.
//!
//! Levels are processed in parallel as soon as they are built, and within a level the
//! sub-detectors run in parallel. The arithmetic stays dlib's (f32, same operation order),
//! so the parallel schedule never changes a result.

mod fhog;
mod nms;
mod pyramid;
mod scan;
mod svd;

use std::borrow::Cow;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use rayon::prelude::*;
use serde::Serialize;
use visage_formats::dlib::hog_detector::HogDetectorModel;
use visage_image::resize::{pyramid_down_5_6_size, pyramid_up2_size, resize_bilinear_rows};
use visage_image::RgbImage;

use crate::{FaceError, Rect};
use nms::OverlapTest;
use scan::SubDetector;

/// How to run the detector.
#[derive(Clone, Copy, Debug)]
pub struct DetectOptions {
    /// How many times the image is enlarged (about 2x per step, with dlib's `pyramid_up`)
    /// before scanning. 1 (the default, as face_recognition uses) finds faces down to about
    /// 40x40 pixels; 0 only those of about 80x80 and more. Each step multiplies time and
    /// memory by about 4.
    pub upsample: u32,
    /// Added to every sub-detector's threshold. Negative values report weaker (less
    /// certain) faces; the default is 0.
    pub adjust_threshold: f64,
}

impl Default for DetectOptions {
    fn default() -> Self {
        Self {
            upsample: 1,
            adjust_threshold: 0.0,
        }
    }
}

/// One detected face.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Detection {
    /// The box, in pixels of the image passed to [`HogDetector::detect`]. It can extend
    /// past the image's edges (dlib does not clip it).
    pub rect: Rect,
    /// Confidence: the window's filter response minus the sub-detector's threshold
    /// (unitless). At least `adjust_threshold`.
    pub score: f64,
    /// Which sub-detector fired (dlib's `weight_index`): for the frontal model 0 = front,
    /// 1 = left profile, 2 = right profile, 3 and 4 = front rotated left and right.
    pub sub_detector: usize,
}

/// The HOG face detector, ready to run (its filters are prepared once, at load).
#[derive(Debug, Clone)]
pub struct HogDetector {
    cell_size: usize,
    /// Filter size, FHOG cells (rows, columns).
    filter_rows: usize,
    filter_cols: usize,
    /// Size of the detection box, FHOG cells (the filter less the padding).
    box_rows: usize,
    box_cols: usize,
    max_levels: u32,
    min_level_width: u32,
    min_level_height: u32,
    overlap: OverlapTest,
    detectors: Vec<SubDetector>,
}

/// A candidate window before suppression.
struct Candidate {
    rect: Rect,
    confidence: f64,
    sub_detector: usize,
}

impl HogDetector {
    /// Loads the detector from a dlib `.svm` file such as `frontal_face_detector.svm`.
    pub fn load(path: &Path) -> Result<Self, FaceError> {
        Ok(Self::from_model(HogDetectorModel::from_file(path)?))
    }

    /// Prepares a parsed model: each sub-detector's filters are split into separable parts
    /// by an SVD, as dlib does when it loads a detector.
    pub fn from_model(model: HogDetectorModel) -> Self {
        let (rows, cols) = (model.filter_rows, model.filter_cols);
        let detectors = model
            .detectors
            .iter()
            .map(|d| SubDetector::new(d, rows, cols))
            .collect();
        let pad = model.padding as usize;
        Self {
            cell_size: model.cell_size as usize,
            filter_rows: rows,
            filter_cols: cols,
            box_rows: rows.saturating_sub(2 * pad),
            box_cols: cols.saturating_sub(2 * pad),
            max_levels: model.max_pyramid_levels,
            min_level_width: model.min_pyramid_layer_width,
            min_level_height: model.min_pyramid_layer_height,
            overlap: OverlapTest {
                iou_thresh: model.iou_thresh,
                covered_thresh: model.percent_covered_thresh,
            },
            detectors,
        }
    }

    /// Finds the faces in `image`, best first. Boxes are in pixels of `image`.
    pub fn detect(&self, image: &RgbImage, options: &DetectOptions) -> Vec<Detection> {
        if image.width() == 0 || image.height() == 0 || self.detectors.is_empty() {
            return Vec::new();
        }
        let mut base: Cow<'_, RgbImage> = Cow::Borrowed(image);
        for _ in 0..options.upsample {
            let (w, h) = pyramid_up2_size(base.width(), base.height());
            base = Cow::Owned(par_resize(&base, w, h));
        }

        let candidates = self.scan_pyramid(&base, options.adjust_threshold);
        let items = candidates
            .into_iter()
            .map(|c| (c.rect, c.confidence, c.sub_detector))
            .collect();
        nms::suppress(items, &self.overlap)
            .into_iter()
            .map(|(rect, score, sub_detector)| Detection {
                rect: pyramid::down2::rect_down(&rect, options.upsample),
                score,
                sub_detector,
            })
            .collect()
    }

    /// All windows at or above threshold, over every pyramid level and sub-detector, in
    /// dlib's accumulation order (sub-detector by sub-detector, each by decreasing score).
    fn scan_pyramid(&self, base: &RgbImage, adjust_threshold: f64) -> Vec<Candidate> {
        let levels = pyramid::level_count(
            base.width(),
            base.height(),
            self.min_level_width,
            self.min_level_height,
            self.max_levels,
        );
        // Level images are built one after the other (each from the previous); every level
        // is scanned as soon as it exists, while the next one is being built.
        let images: Vec<OnceLock<RgbImage>> = (1..levels).map(|_| OnceLock::new()).collect();
        let found: Mutex<Vec<(usize, usize, Vec<Candidate>)>> = Mutex::new(Vec::new());
        rayon::scope(|s| {
            let found = &found;
            s.spawn(move |_| self.scan_level(base, 0, adjust_threshold, found));
            let mut prev = base;
            for (i, slot) in images.iter().enumerate() {
                let img = slot.get_or_init(|| {
                    let (w, h) = pyramid_down_5_6_size(prev.width(), prev.height());
                    par_resize(prev, w, h)
                });
                s.spawn(move |_| self.scan_level(img, i + 1, adjust_threshold, found));
                prev = img;
            }
        });

        let mut found = found.into_inner().unwrap_or_else(|e| e.into_inner());
        // Per sub-detector: levels in order, windows in raster order, then a sort by
        // decreasing score (stable, so ties keep that order).
        found.sort_by_key(|(level, det, _)| (*det, *level));
        let mut out = Vec::new();
        let mut start = 0;
        while start < found.len() {
            let det = found[start].1;
            let mut group: Vec<Candidate> = Vec::new();
            while start < found.len() && found[start].1 == det {
                group.append(&mut found[start].2);
                start += 1;
            }
            group.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
            out.append(&mut group);
        }
        out
    }

    /// FHOG of one level, then every sub-detector over it.
    fn scan_level(
        &self,
        img: &RgbImage,
        level: usize,
        adjust_threshold: f64,
        found: &Mutex<Vec<(usize, usize, Vec<Candidate>)>>,
    ) {
        let features = fhog::extract(img, self.cell_size, self.filter_rows, self.filter_cols);
        if features.is_empty() {
            return;
        }
        let results: Vec<(usize, Vec<Candidate>)> = self
            .detectors
            .par_iter()
            .enumerate()
            .map(|(d, det)| {
                let hits = scan::scan(
                    &features,
                    det,
                    self.filter_rows,
                    self.filter_cols,
                    det.threshold + adjust_threshold,
                );
                let cands = hits
                    .into_iter()
                    .map(|h| Candidate {
                        rect: self.window_rect(h.row, h.col, level),
                        confidence: f64::from(h.saliency) - det.threshold,
                        sub_detector: d,
                    })
                    .collect();
                (d, cands)
            })
            .collect();
        let mut found = found.lock().unwrap_or_else(|e| e.into_inner());
        for (d, cands) in results {
            found.push((level, d, cands));
        }
    }

    /// The image box of the window centred at FHOG plane position (`row`, `col`) of pyramid
    /// `level`, in pixels of level 0 (dlib's `fhog_to_image` then `rect_up`).
    fn window_rect(&self, row: usize, col: usize, level: usize) -> Rect {
        let (r, c) = (row as i64, col as i64);
        // centered_rect(point(c, r), box_cols, box_rows)
        let (w, h) = (self.box_cols as i64, self.box_rows as i64);
        let left = c - w / 2;
        let top = r - h / 2;
        let cell = self.cell_size as i64;
        let off_c = (self.filter_cols as i64 - 1) / 2;
        let off_r = (self.filter_rows as i64 - 1) / 2;
        let to_image = |p: i64, off: i64| {
            let q = (p + 1 - off) * cell + 1;
            // Move to the cell centre, away from zero.
            if q >= 0 {
                q + cell / 2
            } else {
                q - cell / 2
            }
        };
        let rect = Rect::new(
            to_image(left, off_c),
            to_image(top, off_r),
            to_image(left + w - 1, off_c),
            to_image(top + h - 1, off_r),
        );
        pyramid::down6::rect_up(&rect, level)
    }
}

/// dlib's bilinear `resize_image`, rows computed in parallel bands (identical results).
fn par_resize(src: &RgbImage, width: u32, height: u32) -> RgbImage {
    const BAND: usize = 32;
    let row_len = width as usize * 3;
    let mut out = vec![0u8; row_len * height as usize];
    if row_len > 0 {
        out.par_chunks_mut(BAND * row_len)
            .enumerate()
            .for_each(|(k, band)| {
                resize_bilinear_rows(src, width, height, (k * BAND) as u32, band)
            });
    }
    RgbImage::from_raw(width, height, out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_path() -> std::path::PathBuf {
        let shared = visage_testdata::shared();
        shared.join("models/dlib/frontal_face_detector.svm")
    }

    #[test]
    fn filter_bank_is_rank_reduced_like_dlib() {
        let det = HogDetector::load(&model_path()).unwrap();
        let parts: Vec<usize> = det.detectors.iter().map(|d| d.separable_parts()).collect();
        assert_eq!(parts, vec![61, 58, 54, 66, 66]);
    }

    #[test]
    fn window_maps_to_cell_centres() {
        let det = HogDetector::load(&model_path()).unwrap();
        // Plane position (10, 10): a window over plane cells 5..=14 (feature cells 1..=10);
        // its box runs between the centres of its first and last cells: 73 pixels.
        assert_eq!(det.window_rect(10, 10, 0), Rect::new(21, 21, 93, 93));
        // Corners left of or above the image move to the cell centre the other way.
        assert_eq!(det.window_rect(5, 5, 0), Rect::new(-27, -27, 53, 53));
        // One level up scales by 6/5 about (0.3, 0.3).
        assert_eq!(det.window_rect(10, 10, 1), Rect::new(26, 26, 112, 112));
    }

    #[test]
    fn blank_and_tiny_images_give_nothing() {
        let det = HogDetector::load(&model_path()).unwrap();
        let opts = DetectOptions::default();
        assert!(det.detect(&RgbImage::new(0, 0), &opts).is_empty());
        assert!(det.detect(&RgbImage::new(3, 2), &opts).is_empty());
        assert!(det
            .detect(
                &RgbImage::from_pixel(200, 150, [128, 128, 128].into()),
                &opts
            )
            .is_empty());
    }
}
