//! The face pipeline as an [`ImageEncoder`]: which face of an image an evaluation encodes.

use std::path::Path;

use rayon::prelude::*;
use visage_face::{DetectOptions, FaceModels, Rect};
use visage_image::{decode_file, DecodeOptions, RgbImage};

use crate::cache::ImageEncoding;
use crate::runner::ImageEncoder;

/// The LFW protocol's box when the detector finds nothing: (left, top, right, bottom) in pixels
/// of the 250x250 deep-funneled image, which centres the face.
pub const LFW_FALLBACK_BOX: [i64; 4] = [75, 75, 175, 175];

/// How the one face of an image is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceChoice {
    /// LFW View 2 as the peer ran it: boxes clipped to the image (as face_recognition's
    /// `face_locations` returns them), the one whose centre is nearest the image centre; no box:
    /// landmarks, chip and encoding from [`LFW_FALLBACK_BOX`].
    LfwCentreOrBox,
    /// Boxes clipped to the image, the one nearest the image centre; no box: no encoding.
    Centre,
    /// The largest box, as `visage verify` takes; no box: no encoding.
    Largest,
    /// The largest box; no box: the whole image as the face box. For face sets of small,
    /// tightly framed images (ORL, Yale) that often defeat the detector.
    LargestOrWholeImage,
}

/// Index of the box whose centre is nearest the centre of a `width` x `height` image (ties:
/// the first, which the detector scored best).
pub fn nearest_centre(rects: &[Rect], width: u32, height: u32) -> Option<usize> {
    let (cx, cy) = (width as f64 / 2.0, height as f64 / 2.0);
    let d = |r: &Rect| {
        let (x, y) = r.center();
        (x - cx).powi(2) + (y - cy).powi(2)
    };
    (0..rects.len()).reduce(|best, i| {
        if d(&rects[i]) < d(&rects[best]) {
            i
        } else {
            best
        }
    })
}

/// Index of the largest box (ties: the first).
pub fn largest(rects: &[Rect]) -> Option<usize> {
    (0..rects.len()).reduce(|best, i| {
        if rects[i].area() > rects[best].area() {
            i
        } else {
            best
        }
    })
}

/// Encodes images with the loaded face models, one chosen face per image.
pub struct PipelineEncoder<'a> {
    models: &'a FaceModels,
    detect: DetectOptions,
    decode: DecodeOptions,
    choice: FaceChoice,
}

impl<'a> PipelineEncoder<'a> {
    /// An encoder using `models`, detection `detect` (LFW: upsample 1) and face choice `choice`.
    pub fn new(
        models: &'a FaceModels,
        detect: DetectOptions,
        decode: DecodeOptions,
        choice: FaceChoice,
    ) -> Self {
        Self {
            models,
            detect,
            decode,
            choice,
        }
    }

    /// The aligned 150x150 RGB chip of the face this encoder would encode in the image at `path`,
    /// and whether the detector found it (`false`: the choice's fallback box); `Ok(None)` when
    /// the choice has no fallback and nothing was detected; `Err` names an unreadable file.
    pub fn chip(&self, path: &Path) -> Result<Option<(RgbImage, bool)>, String> {
        self.locate(path)
    }

    /// Decode, detect, choose, landmarks and chip for one image (everything but the network).
    fn locate(&self, path: &Path) -> Result<Option<(RgbImage, bool)>, String> {
        let image = decode_file(path, &self.decode).map_err(|e| e.to_string())?;
        let detections = self.models.detect(&image, &self.detect);
        let (w, h) = (image.width() as i64, image.height() as i64);
        let rects: Vec<Rect> = detections
            .iter()
            .map(|d| match self.choice {
                // face_recognition trims boxes to [0, width] x [0, height] before landmarks; the
                // shape predictor starts from the box, so the trim changes border faces' encodings.
                FaceChoice::LfwCentreOrBox | FaceChoice::Centre => {
                    let r = d.rect;
                    Rect::new(r.left.max(0), r.top.max(0), r.right.min(w), r.bottom.min(h))
                }
                FaceChoice::Largest | FaceChoice::LargestOrWholeImage => d.rect,
            })
            .collect();
        let picked = match self.choice {
            FaceChoice::LfwCentreOrBox | FaceChoice::Centre => {
                nearest_centre(&rects, image.width(), image.height())
            }
            FaceChoice::Largest | FaceChoice::LargestOrWholeImage => largest(&rects),
        };
        let (rect, found) = match (picked, self.choice) {
            (Some(i), _) => (rects[i], true),
            (None, FaceChoice::LfwCentreOrBox) => {
                let [l, t, r, b] = LFW_FALLBACK_BOX;
                (Rect::new(l, t, r, b), false)
            }
            (None, FaceChoice::LargestOrWholeImage) => (Rect::new(0, 0, w - 1, h - 1), false),
            (None, _) => return Ok(None),
        };
        let landmarks = self.models.landmarks(&image, &rect);
        let chip = self
            .models
            .chip(&image, &landmarks)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Some((chip, found)))
    }
}

impl ImageEncoder for PipelineEncoder<'_> {
    fn cache_key(&self) -> String {
        // The running executable's size and time stand for the pipeline code: any rebuild (a
        // new decoder, a fixed kernel) re-encodes instead of trusting encodings of older code.
        let build = std::env::current_exe()
            .and_then(std::fs::metadata)
            .ok()
            .and_then(|m| {
                let t = m
                    .modified()
                    .ok()?
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?;
                Some(format!("{}-{}", m.len(), t.as_nanos()))
            })
            .unwrap_or_default();
        format!(
            "{}|visage-{}|build={build}|{:?}|clip=face_recognition|upsample={}|adjust={}",
            self.models.manifest_id(),
            env!("CARGO_PKG_VERSION"),
            self.choice,
            self.detect.upsample,
            self.detect.adjust_threshold
        )
    }

    fn encode(&self, paths: &[&Path]) -> Vec<Result<ImageEncoding, String>> {
        let located: Vec<Result<Option<(RgbImage, bool)>, String>> =
            paths.par_iter().map(|p| self.locate(p)).collect();
        let mut chips = Vec::new();
        let mut shape: Vec<Result<Option<bool>, String>> = Vec::with_capacity(located.len());
        for l in located {
            shape.push(l.map(|o| {
                o.map(|(chip, found)| {
                    chips.push(chip);
                    found
                })
            }));
        }
        let encodings = match self.models.encode(&chips) {
            Ok(e) => e,
            Err(e) => {
                return paths
                    .iter()
                    .map(|p| Err(format!("{}: {e}", p.display())))
                    .collect()
            }
        };
        let mut next = encodings.into_iter();
        shape
            .into_iter()
            .map(|s| {
                s.map(|o| match o {
                    Some(found) => ImageEncoding {
                        encoding: next.next(),
                        face_found: found,
                    },
                    None => ImageEncoding {
                        encoding: None,
                        face_found: false,
                    },
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices() {
        let rects = [
            Rect::new(0, 0, 100, 100),
            Rect::new(90, 90, 160, 160),
            Rect::new(200, 0, 249, 40),
        ];
        assert_eq!(nearest_centre(&rects, 250, 250), Some(1));
        assert_eq!(largest(&rects), Some(0));
        assert_eq!(nearest_centre(&[], 250, 250), None);
        assert_eq!(largest(&[]), None);
    }
}
