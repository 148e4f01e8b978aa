//! The whole pipeline behind one small API, in the spirit of face_recognition: load the models
//! once from a directory, then detect, find landmarks, align and encode.

use std::path::Path;

use rayon::prelude::*;
use visage_formats::manifest::Manifest;
use visage_image::RgbImage;

use crate::align::{chip_details, extract_chip};
use crate::detect::{DetectOptions, Detection, HogDetector};
use crate::encode::{Encoding, FaceEncoder};
use crate::landmarks::ShapePredictor;
use crate::{FaceError, Point, Rect};

/// Manifest names of the three models the pipeline loads.
pub const PIPELINE_MODELS: [&str; 3] = ["hog-detector", "landmarks-5", "face-encoder"];

/// How far the pipeline goes for each face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Boxes and scores only.
    Detect,
    /// Boxes and the 5 landmarks.
    Landmarks,
    /// Boxes, landmarks and the 128-d encoding.
    Encode,
}

/// One face found in an image.
#[derive(Debug, Clone)]
pub struct Face {
    /// dlib's raw detector rectangle, in pixels of the upright image (may extend past its edges).
    pub rect: Rect,
    /// Detector confidence: SVM score minus the sub-detector's threshold (unitless, ≥ the
    /// adjust threshold).
    pub score: f64,
    /// Which of the detector's 5 sub-detectors fired (0 = front, 1 = left, 2 = right, 3 and 4 =
    /// front rotated).
    pub sub_detector: usize,
    /// The 5 landmarks in model order (eye corners, then the base of the nose), in pixels; empty
    /// at [`Stage::Detect`].
    pub landmarks: Vec<Point>,
    /// The 128-d encoding (not normalised; compare with [`crate::encode::distance`]); `None`
    /// before [`Stage::Encode`].
    pub encoding: Option<Encoding>,
}

/// The loaded face models. Loading checks every file against the built-in manifest, so an
/// altered or truncated model is refused before it is parsed.
pub struct FaceModels {
    detector: HogDetector,
    predictor: ShapePredictor,
    encoder: FaceEncoder,
    manifest_id: String,
}

impl FaceModels {
    /// Loads the three face models from `models_dir` (the directory holding `dlib/...`).
    pub fn load(models_dir: &Path) -> Result<Self, FaceError> {
        let manifest = Manifest::builtin();
        let paths = manifest.require(models_dir, &PIPELINE_MODELS)?;
        let (detector, (predictor, encoder)) = rayon::join(
            || HogDetector::load(&paths[0]),
            || {
                rayon::join(
                    || ShapePredictor::load(&paths[1]),
                    || FaceEncoder::load(&paths[2]),
                )
            },
        );
        Ok(Self {
            detector: detector?,
            predictor: predictor?,
            encoder: encoder?,
            manifest_id: manifest.id,
        })
    }

    /// Identifier of the model set (the manifest id); encodings from different ids never mix.
    pub fn manifest_id(&self) -> &str {
        &self.manifest_id
    }

    /// Face boxes, best score first.
    pub fn detect(&self, image: &RgbImage, options: &DetectOptions) -> Vec<Detection> {
        self.detector.detect(image, options)
    }

    /// The 5 landmarks of the face in `rect`, in pixels.
    pub fn landmarks(&self, image: &RgbImage, rect: &Rect) -> Vec<Point> {
        self.predictor.predict(image, rect)
    }

    /// The aligned 150x150 chip for a face's 5 landmarks.
    pub fn chip(&self, image: &RgbImage, landmarks: &[Point]) -> Result<RgbImage, FaceError> {
        let details = chip_details(landmarks)?;
        Ok(extract_chip(image, &details))
    }

    /// Encodings of aligned 150x150 chips, batched through the network.
    pub fn encode(&self, chips: &[RgbImage]) -> Result<Vec<Encoding>, FaceError> {
        self.encoder.encode(chips)
    }

    /// Runs the encoder on `compute` from now on (see [`FaceEncoder::run_on`]).
    pub fn encode_on(&mut self, compute: visage_nn::Compute) -> Result<(), FaceError> {
        self.encoder.run_on(compute)
    }

    /// Runs the pipeline up to `stage` on one image.
    pub fn analyze(
        &self,
        image: &RgbImage,
        options: &DetectOptions,
        stage: Stage,
    ) -> Result<Vec<Face>, FaceError> {
        let mut faces = self.analyze_many(&[image], options, stage)?;
        Ok(faces.pop().unwrap_or_default())
    }

    /// Runs the pipeline up to `stage` on several images: detection and alignment in parallel
    /// over the images, then every chip encoded in shared batches.
    pub fn analyze_many(
        &self,
        images: &[&RgbImage],
        options: &DetectOptions,
        stage: Stage,
    ) -> Result<Vec<Vec<Face>>, FaceError> {
        let per_image: Vec<(Vec<Face>, Vec<RgbImage>)> = images
            .par_iter()
            .map(|image| self.locate(image, options, stage))
            .collect::<Result<_, _>>()?;
        let (mut faces, chips): (Vec<Vec<Face>>, Vec<Vec<RgbImage>>) =
            per_image.into_iter().unzip();
        if stage == Stage::Encode {
            let all_chips: Vec<RgbImage> = chips.into_iter().flatten().collect();
            let mut encodings = self.encode(&all_chips)?.into_iter();
            for face in faces.iter_mut().flatten() {
                face.encoding = encodings.next();
            }
        }
        Ok(faces)
    }

    /// Detection, landmarks and chips for one image (everything but the network).
    fn locate(
        &self,
        image: &RgbImage,
        options: &DetectOptions,
        stage: Stage,
    ) -> Result<(Vec<Face>, Vec<RgbImage>), FaceError> {
        let mut faces = Vec::new();
        let mut chips = Vec::new();
        for detection in self.detect(image, options) {
            let landmarks = if stage >= Stage::Landmarks {
                self.landmarks(image, &detection.rect)
            } else {
                Vec::new()
            };
            if stage == Stage::Encode {
                chips.push(self.chip(image, &landmarks)?);
            }
            faces.push(Face {
                rect: detection.rect,
                score: detection.score,
                sub_detector: detection.sub_detector,
                landmarks,
                encoding: None,
            });
        }
        Ok((faces, chips))
    }
}

/// The face with the largest box, as `verify` compares (ties: the first, which scored best).
pub fn largest_face(faces: &[Face]) -> Option<&Face> {
    faces.iter().reduce(|best, f| {
        if f.rect.area() > best.rect.area() {
            f
        } else {
            best
        }
    })
}
