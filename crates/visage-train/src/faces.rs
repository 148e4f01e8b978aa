//! Settings and data for training an embedding on small grey face chips (aligned by the face
//! pipeline, which lives outside this crate): people as classes, horizontal flips and mild
//! affine distortions, no rotations as new classes (a face upside down is the same person).

use crate::augment::Augment;
use crate::data::{Class, Dataset, Framing};
use crate::mining::Miner;
use crate::train::{Method, TrainConfig};

/// The distortions of face chips: mirrored half the time (a face's mirror image is the same
/// person), ±5° rotation, ±5% scale, ±0.03 shear, ±4% shift (the chips are already aligned).
pub const FACE_AUGMENT: Augment = Augment {
    rotate_deg: 5.0,
    scale: 0.05,
    shear: 0.03,
    translate: 0.04,
    flip: true,
    elastic: 0.0,
    elastic_smoothing: 0.0,
};

/// Default optimizer steps for faces: a few minutes on two cores at 32x32.
pub const FACE_STEPS: usize = 600;

/// The triplet method as trained on faces by default: semi-hard mining, margin 0.2 on squared
/// distances between unit-length embeddings (FaceNet's settings).
pub const FACE_TRIPLET: Method = Method::Triplet {
    margin: 0.2,
    miner: Miner::SemiHard,
    normalize: true,
};

/// The defaults for `method` on `side x side` face chips: Conv-4 with 64 channels, P×K batches
/// of 48 people × 2 chips (most LFW people have only two or three images), [`FACE_AUGMENT`],
/// no rotated or mirrored copies as new classes (a mirrored face is the same person: mirrors
/// are one of the distortions instead), [`FACE_STEPS`] steps.
pub fn face_config(method: Method, side: usize) -> TrainConfig {
    let mut c = TrainConfig::omniglot(method);
    c.net.input_size = side;
    c.steps = FACE_STEPS;
    c.rotations = false;
    c.mirrors = false;
    c.augment = FACE_AUGMENT;
    c.within_alphabet = false;
    c.framing = Framing::AsDrawn;
    c.net.last_channels = None;
    match method {
        Method::Proto { .. } => {
            // Episodes need shots plus at least one query per person.
            c.classes_per_batch = 30;
            c.images_per_class = 3;
        }
        _ => {
            c.classes_per_batch = 48;
            c.images_per_class = 2;
        }
    }
    c
}

/// A data set of people, keeping those with at least `min_images` chips (a person with one
/// chip gives no positive pair); each chip `side x side` values in `[0, 1]`.
pub fn people_dataset(
    side: usize,
    people: impl IntoIterator<Item = (String, Vec<Vec<f32>>)>,
    min_images: usize,
) -> Dataset {
    let classes = people
        .into_iter()
        .filter(|(_, images)| images.len() >= min_images.max(1))
        .map(|(name, images)| Class { name, images })
        .collect();
    Dataset {
        side,
        framing: Framing::AsDrawn,
        classes,
    }
}

pub use crate::model::squared_distance;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_with_one_chip_are_left_out_and_faces_flip() {
        let people = vec![
            ("Ada".to_string(), vec![vec![0.0; 4], vec![1.0; 4]]),
            ("Bob".to_string(), vec![vec![0.5; 4]]),
        ];
        let data = people_dataset(2, people, 2);
        assert_eq!(data.classes.len(), 1);
        assert_eq!(data.classes[0].name, "Ada");
        let c = face_config(FACE_TRIPLET, 32);
        assert!(c.augment.flip && !c.rotations && !c.mirrors && c.normalizes());
        // Omniglot's proto settings (mirrored classes, centred drawings, a 256-channel last
        // block) are not the faces'.
        let proto = face_config(Method::Proto { shots: 1 }, 32);
        assert!(!proto.mirrors && proto.framing == Framing::AsDrawn);
        assert_eq!(proto.net.last_channels, None);
        assert_eq!(c.net.input_size, 32);
        assert_eq!(squared_distance(&[1.0, 0.0], &[0.0, 1.0]), 2.0);
    }
}
