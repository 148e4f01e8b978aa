//! dlib's HOG face detector file (`frontal_face_detector.svm`): an
//! `object_detector<scan_fhog_pyramid<pyramid_down<6>>>` as `serialize()` writes it.
//!
//! Layout (DLIB_FORMATS.md (d)): object_detector version, then the scanner (version, an empty
//! feature cache, cell size, padding, window size, pyramid limits, nuclear norm strength,
//! number of dimensions), then the box-overlap tester (two doubles), then the weight vectors,
//! one per sub-detector: `31 · rows · cols` filter weights (plane-major, then row, then
//! column) followed by the detection threshold.

use std::path::Path;

use super::reader::{parse_bytes, parse_file, DlibReader, ReadResult};
use crate::FormatError;

/// Name of the format in error messages.
const FORMAT: &str = "dlib HOG detector";

/// Number of feature planes of dlib's FHOG (18 signed + 9 unsigned orientations + 4 texture).
pub const FHOG_PLANES: usize = 31;

/// Largest cell size, window side and padding accepted, in pixels (or cells for the padding).
/// Real models use 8 and 80; the bound keeps later arithmetic far from overflow.
const MAX_GEOMETRY: u64 = 4096;

/// Largest number of sub-detectors accepted (the frontal model has 5).
const MAX_DETECTORS: usize = 1024;

/// One sub-detector: a linear filter over the FHOG planes and its threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct HogSubDetector {
    /// One filter per FHOG plane ([`FHOG_PLANES`] of them), each `filter_rows · filter_cols`
    /// weights in row-major order (rows and columns counted in FHOG cells).
    pub filters: Vec<Vec<f64>>,
    /// Detection threshold `b`: a window fires when its filter response is at least `b`
    /// (plus any adjustment), and its confidence is the response minus `b`.
    pub threshold: f64,
}

/// The parsed HOG detector: scanner geometry, overlap test and sub-detectors.
#[derive(Debug, Clone, PartialEq)]
pub struct HogDetectorModel {
    /// Side of one HOG cell, pixels.
    pub cell_size: u32,
    /// Extra cells the scanner adds around the detection window, cells.
    pub padding: u32,
    /// Width of the detection window at pyramid level 0, pixels.
    pub window_width: u32,
    /// Height of the detection window at pyramid level 0, pixels.
    pub window_height: u32,
    /// Most pyramid levels the scanner builds.
    pub max_pyramid_levels: u32,
    /// A pyramid level is only used while its width is at least this, pixels.
    pub min_pyramid_layer_width: u32,
    /// A pyramid level is only used while its height is at least this, pixels.
    pub min_pyramid_layer_height: u32,
    /// Training-time regularisation stored with the scanner (unused at detection).
    pub nuclear_norm_regularization_strength: f64,
    /// Rows of each filter, FHOG cells (derived from the window size, cell size and padding).
    pub filter_rows: usize,
    /// Columns of each filter, FHOG cells.
    pub filter_cols: usize,
    /// Non-maximum suppression: two boxes overlap when the intersection over their bounding
    /// box exceeds this.
    pub iou_thresh: f64,
    /// Non-maximum suppression: two boxes overlap when the intersection covers more than
    /// this fraction of either box.
    pub percent_covered_thresh: f64,
    /// The sub-detectors, in file order (their index is dlib's `weight_index`).
    pub detectors: Vec<HogSubDetector>,
}

impl HogDetectorModel {
    /// Reads and parses the detector file at `path`.
    pub fn from_file(path: &Path) -> Result<Self, FormatError> {
        parse_file(path, FORMAT, parse)
    }

    /// Parses a detector from its bytes; `path` names the source in error messages.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, FormatError> {
        parse_bytes(bytes, path, FORMAT, parse)
    }
}

/// An unsigned scanner field that must lie in `1..=max`.
fn bounded(r: &mut DlibReader<'_>, min: u64, max: u64, what: &str) -> ReadResult<u32> {
    let start = r.position();
    let v = r.u64()?;
    if v < min || v > max {
        return Err(r.error_at(start, format!("{what} of {v} is outside {min}..={max}")));
    }
    // `max` never exceeds u32::MAX at the call sites.
    Ok(v.min(u64::from(u32::MAX)) as u32)
}

/// The FHOG filter size the scanner derives from its window: the window centred on the
/// origin, mapped to FHOG cells (`image_to_fhog` with C++ truncating division), grown by
/// the padding. Returns (rows, cols).
fn filter_size(
    cell_size: u32,
    padding: u32,
    window_width: u32,
    window_height: u32,
) -> (usize, usize) {
    let cell = i64::from(cell_size);
    let side = |len: u32| -> usize {
        let len = i64::from(len);
        let lo = -(len / 2);
        let hi = lo + len - 1;
        // Rust's `/` truncates toward zero, as C++'s does.
        let to_fhog = |p: i64| (p - 1) / cell - 1;
        let cells = to_fhog(hi) - to_fhog(lo) + 1 + 2 * i64::from(padding);
        cells.max(0) as usize
    };
    (side(window_height), side(window_width))
}

fn parse(r: &mut DlibReader<'_>) -> ReadResult<HogDetectorModel> {
    let start = r.position();
    let version = r.i32()?;
    if version != 1 && version != 2 {
        return Err(r.error_at(
            start,
            format!("expected object_detector version 1 or 2, found {version}"),
        ));
    }

    r.expect_i32(1, "scan_fhog_pyramid version")?;
    // The cached feature pyramid (a dlib::array): max_size then size, always empty in a
    // saved detector.
    let start = r.position();
    let _max_size = r.u64()?;
    let cached = r.u64()?;
    if cached != 0 {
        return Err(r.error_at(
            start,
            format!("expected an empty feature cache, found {cached} entries"),
        ));
    }
    let start = r.position();
    let cell_size = r.i64()?;
    if !(1..=MAX_GEOMETRY as i64).contains(&cell_size) {
        return Err(r.error_at(
            start,
            format!("cell size of {cell_size} is outside 1..={MAX_GEOMETRY}"),
        ));
    }
    let cell_size = cell_size as u32;
    let padding = bounded(r, 0, MAX_GEOMETRY, "padding")?;
    let window_width = bounded(r, 1, MAX_GEOMETRY, "window width")?;
    let window_height = bounded(r, 1, MAX_GEOMETRY, "window height")?;
    let max_pyramid_levels = bounded(r, 1, u64::from(u32::MAX), "max pyramid levels")?;
    let min_pyramid_layer_width = bounded(r, 0, u64::from(u32::MAX), "min pyramid layer width")?;
    let min_pyramid_layer_height = bounded(r, 0, u64::from(u32::MAX), "min pyramid layer height")?;
    let nuclear_norm_regularization_strength = r.f64()?;

    let (filter_rows, filter_cols) = filter_size(cell_size, padding, window_width, window_height);
    let dims = filter_rows * filter_cols * FHOG_PLANES;
    let start = r.position();
    let stored_dims = r.i64()?;
    if stored_dims != dims as i64 {
        return Err(r.error_at(
            start,
            format!(
                "expected {dims} dimensions ({FHOG_PLANES} planes of {filter_rows}x{filter_cols} cells), found {stored_dims}"
            ),
        ));
    }

    let read_weights = |r: &mut DlibReader<'_>| -> ReadResult<HogSubDetector> {
        let start = r.position();
        let (nr, nc, values) = r.matrix_f64()?;
        if nc != 1 || nr != dims + 1 {
            return Err(r.error_at(
                start,
                format!(
                    "expected a weight vector of {} rows, found a {nr}x{nc} matrix",
                    dims + 1
                ),
            ));
        }
        let plane = filter_rows * filter_cols;
        let filters = values[..dims]
            .chunks_exact(plane)
            .map(<[f64]>::to_vec)
            .collect();
        Ok(HogSubDetector {
            filters,
            threshold: values[dims],
        })
    };

    let (iou_thresh, percent_covered_thresh, detectors) = if version == 1 {
        // Version 1 held one weight vector, written before the overlap tester.
        let detector = read_weights(r)?;
        let iou = r.f64()?;
        let covered = r.f64()?;
        (iou, covered, vec![detector])
    } else {
        let iou = r.f64()?;
        let covered = r.f64()?;
        let start = r.position();
        let count = r.count(MAX_DETECTORS, "number of sub-detectors")?;
        if count == 0 {
            return Err(r.error_at(start, "expected at least one sub-detector, found 0"));
        }
        let mut detectors = Vec::with_capacity(count);
        for _ in 0..count {
            detectors.push(read_weights(r)?);
        }
        (iou, covered, detectors)
    };
    for (what, v) in [
        ("iou threshold", iou_thresh),
        ("percent covered threshold", percent_covered_thresh),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(r.error(format!("{what} of {v} is outside 0..=1")));
        }
    }
    r.expect_end()?;

    Ok(HogDetectorModel {
        cell_size,
        padding,
        window_width,
        window_height,
        max_pyramid_levels,
        min_pyramid_layer_width,
        min_pyramid_layer_height,
        nuclear_norm_regularization_strength,
        filter_rows,
        filter_cols,
        iou_thresh,
        percent_covered_thresh,
        detectors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn model_path() -> PathBuf {
        let shared = visage_testdata::shared();
        shared.join("models/dlib/frontal_face_detector.svm")
    }

    #[test]
    fn parses_the_frontal_face_detector() {
        let m = HogDetectorModel::from_file(&model_path()).unwrap();
        assert_eq!(m.cell_size, 8);
        assert_eq!(m.padding, 0);
        assert_eq!((m.window_width, m.window_height), (80, 80));
        assert_eq!(m.max_pyramid_levels, 1000);
        assert_eq!(
            (m.min_pyramid_layer_width, m.min_pyramid_layer_height),
            (64, 64)
        );
        assert_eq!(m.nuclear_norm_regularization_strength, 9.0);
        assert_eq!((m.filter_rows, m.filter_cols), (10, 10));
        assert!((m.iou_thresh - 0.33008212188056446).abs() < 1e-15);
        assert!((m.percent_covered_thresh - 0.7885714285714286).abs() < 1e-15);
        assert_eq!(m.detectors.len(), 5);
        let expected = [3.2745, 3.9868, 3.8959, 3.5149, 3.5580];
        for (d, b) in m.detectors.iter().zip(expected) {
            assert!(
                (d.threshold - b).abs() < 1e-4,
                "threshold {} vs {b}",
                d.threshold
            );
            assert_eq!(d.filters.len(), FHOG_PLANES);
            assert!(d.filters.iter().all(|f| f.len() == 100));
            assert!(d.filters.iter().flatten().all(|w| w.is_finite()));
        }
    }

    #[test]
    fn every_truncation_is_a_clean_error() {
        let path = model_path();
        let bytes = std::fs::read(&path).unwrap();
        // Every cut in the header and the first weights, then a sampling of the rest.
        let cuts = (0..600)
            .chain((600..bytes.len()).step_by(97))
            .chain([bytes.len() - 1]);
        for cut in cuts {
            let err = HogDetectorModel::from_bytes(&bytes[..cut], &path).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("frontal_face_detector.svm"), "{msg}");
            assert!(msg.contains(FORMAT), "{msg}");
        }
    }

    #[test]
    fn trailing_bytes_and_wrong_versions_are_refused() {
        let path = model_path();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.push(0);
        let msg = HogDetectorModel::from_bytes(&bytes, &path)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("unexpected bytes"), "{msg}");
        bytes.pop();
        bytes[1] = 3;
        let msg = HogDetectorModel::from_bytes(&bytes, &path)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("version"), "{msg}");
    }

    #[test]
    fn other_files_are_refused() {
        let path = PathBuf::from("not_a_detector.bin");
        for bytes in [
            &b""[..],
            b"\x89PNG\r\n\x1a\n",
            &[0x01, 0x02, 0x01, 0x01, 0x01, 0x00, 0x01, 0x05],
        ] {
            assert!(HogDetectorModel::from_bytes(bytes, &path).is_err());
        }
    }

    #[test]
    fn filter_size_follows_image_to_fhog() {
        assert_eq!(filter_size(8, 0, 80, 80), (10, 10));
        assert_eq!(filter_size(8, 1, 80, 80), (12, 12));
        assert_eq!(filter_size(8, 1, 64, 64), (10, 10));
    }
}
