//! Face sets on disk: folder-per-person (ORL: `s1/1.pgm`) or flat `person.condition` files
//! (Yale: `subject01.happy`), read as gray images of one size, and seeded train/test splits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageBuffer, Luma};
use nalgebra::DMatrix;
use visage_image::{decode_file, DecodeOptions};
use visage_rng::SplitMix64;

use crate::ClassicalError;

/// A gray image with intensities in [0, 1].
pub type GrayF32 = ImageBuffer<Luma<f32>, Vec<f32>>;

/// What to do when the images of a set differ in size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SizePolicy {
    /// Resize every image to the first image's size (after any crop).
    #[default]
    ResizeToFirst,
    /// Refuse the set with [`ClassicalError::MixedSizes`].
    Refuse,
    /// Resize every image to this size, in pixels (width, height).
    Fixed(u32, u32),
}

/// A rectangle cut out of each image before resizing, in pixels of the decoded image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    /// Left edge, in pixels.
    pub left: u32,
    /// Top edge, in pixels.
    pub top: u32,
    /// Width, in pixels.
    pub width: u32,
    /// Height, in pixels.
    pub height: u32,
}

impl Crop {
    /// The centred `width` x `height` rectangle of an image of `image_width` x `image_height`
    /// pixels (clamped to the image).
    pub fn centred(image_width: u32, image_height: u32, width: u32, height: u32) -> Self {
        let width = width.min(image_width);
        let height = height.min(image_height);
        Self {
            left: (image_width - width) / 2,
            top: (image_height - height) / 2,
            width,
            height,
        }
    }
}

/// How images are read into a set.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Size policy.
    pub size: SizePolicy,
    /// Optional crop applied before resizing; a crop that does not fit an image is clamped.
    pub crop: Option<Crop>,
    /// Decoder limits.
    pub decode: DecodeOptions,
}

/// One image of a set.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Where it came from.
    pub path: PathBuf,
    /// Index into [`Dataset::people`].
    pub label: usize,
    /// Gray intensities in [0, 1], row-major, `width * height` values.
    pub pixels: Vec<f32>,
}

/// A set of gray face images, all of one size, labelled by person.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Image width, in pixels.
    pub width: u32,
    /// Image height, in pixels.
    pub height: u32,
    /// Person names, indexed by label.
    pub people: Vec<String>,
    /// The images, grouped by person in name order, files in natural order.
    pub samples: Vec<Sample>,
    /// Images whose size differed from the set's and were resized.
    pub resized: usize,
}

/// A train/test split: indices into [`Dataset::samples`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Training samples.
    pub train: Vec<usize>,
    /// Test samples.
    pub test: Vec<usize>,
}

/// A sort key of alternating text and number runs.
type NaturalKey = Vec<(u8, u64, String)>;

/// Orders names so that `s2` comes before `s10` and `2.pgm` before `10.pgm`.
fn natural_key(s: &str) -> NaturalKey {
    let mut key = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_ascii_digit() {
            let mut n = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                n.push(d);
                chars.next();
            }
            key.push((0, n.parse().unwrap_or(u64::MAX), String::new()));
        } else {
            let mut t = String::new();
            while let Some(&d) = chars.peek().filter(|d| !d.is_ascii_digit()) {
                t.push(d);
                chars.next();
            }
            key.push((1, 0, t));
        }
    }
    key
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, ClassicalError> {
    let io = |source| ClassicalError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'));
        if !hidden {
            out.push(path);
        }
    }
    out.sort_by_cached_key(|p| {
        natural_key(
            &p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        )
    });
    Ok(out)
}

/// Lists a set's people and their image files without decoding anything.
///
/// A folder holding sub-folders is read as one sub-folder per person (files directly in it,
/// such as ORL's README, are ignored). A folder of files only is read as `person.condition`
/// names grouped by the part before the first dot (Yale); files without a dot are ignored.
pub fn list_people(dir: &Path) -> Result<Vec<(String, Vec<PathBuf>)>, ClassicalError> {
    let entries = read_dir_sorted(dir)?;
    let subdirs: Vec<&PathBuf> = entries.iter().filter(|p| p.is_dir()).collect();
    let mut people = Vec::new();
    if subdirs.is_empty() {
        let mut groups: BTreeMap<NaturalKey, (String, Vec<PathBuf>)> = BTreeMap::new();
        for path in entries.iter().filter(|p| p.is_file()) {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some((person, _)) = name.split_once('.') {
                groups
                    .entry(natural_key(person))
                    .or_insert_with(|| (person.to_string(), Vec::new()))
                    .1
                    .push(path.clone());
            }
        }
        people.extend(groups.into_values());
    } else {
        for sub in subdirs {
            let files: Vec<PathBuf> = read_dir_sorted(sub)?
                .into_iter()
                .filter(|p| p.is_file())
                .collect();
            if !files.is_empty() {
                let name = sub
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                people.push((name, files));
            }
        }
    }
    if people.is_empty() {
        return Err(ClassicalError::EmptyDataset {
            path: dir.to_path_buf(),
        });
    }
    Ok(people)
}

/// Decodes one image into gray [0, 1] intensities and applies `crop`.
pub fn load_gray(
    path: &Path,
    crop: Option<Crop>,
    decode: &DecodeOptions,
) -> Result<GrayF32, ClassicalError> {
    let rgb = decode_file(path, decode)?;
    let gray = DynamicImage::ImageRgb8(rgb).to_luma32f();
    Ok(match crop {
        Some(c) => {
            let c = Crop {
                left: c.left.min(gray.width().saturating_sub(1)),
                top: c.top.min(gray.height().saturating_sub(1)),
                ..c
            };
            imageops::crop_imm(&gray, c.left, c.top, c.width, c.height).to_image()
        }
        None => gray,
    })
}

/// Resizes with a triangle filter, which widens with the scale factor and so averages (rather
/// than aliases) when shrinking a lot, as LFW's 250x250 to 32x32 does.
pub fn resize_gray(image: &GrayF32, width: u32, height: u32) -> GrayF32 {
    if image.width() == width && image.height() == height {
        return image.clone();
    }
    imageops::resize(image, width, height, FilterType::Triangle)
}

/// Brings `image` to the set's size under `policy`; `size` is the set's size once known.
/// Returns the pixels and whether the image was resized.
pub fn conform(
    image: GrayF32,
    path: &Path,
    policy: SizePolicy,
    size: &mut Option<(u32, u32)>,
) -> Result<(Vec<f32>, bool), ClassicalError> {
    let target = match (policy, *size) {
        (SizePolicy::Fixed(w, h), _) => (w, h),
        (_, Some(s)) => s,
        (_, None) => (image.width(), image.height()),
    };
    *size = Some(target);
    if (image.width(), image.height()) == target {
        return Ok((image.into_raw(), false));
    }
    if policy == SizePolicy::Refuse {
        return Err(ClassicalError::MixedSizes {
            path: path.to_path_buf(),
            width: image.width(),
            height: image.height(),
            expected_width: target.0,
            expected_height: target.1,
        });
    }
    Ok((resize_gray(&image, target.0, target.1).into_raw(), true))
}

impl Dataset {
    /// Reads a set from `dir` (see [`list_people`] for the layouts).
    pub fn load(dir: &Path, options: &LoadOptions) -> Result<Self, ClassicalError> {
        let people = list_people(dir)?;
        let mut size = None;
        let mut samples = Vec::new();
        let mut names = Vec::with_capacity(people.len());
        let mut resized = 0;
        for (label, (name, files)) in people.into_iter().enumerate() {
            names.push(name);
            for path in files {
                let gray = load_gray(&path, options.crop, &options.decode)?;
                let (pixels, was_resized) = conform(gray, &path, options.size, &mut size)?;
                resized += usize::from(was_resized);
                samples.push(Sample {
                    path,
                    label,
                    pixels,
                });
            }
        }
        let (width, height) = size.ok_or_else(|| ClassicalError::EmptyDataset {
            path: dir.to_path_buf(),
        })?;
        Ok(Self {
            width,
            height,
            people: names,
            samples,
            resized,
        })
    }

    /// Builds a set from samples already in memory (all must be `width * height` long).
    pub fn from_samples(
        width: u32,
        height: u32,
        people: Vec<String>,
        samples: Vec<Sample>,
    ) -> Result<Self, ClassicalError> {
        let d = (width * height) as usize;
        if let Some(bad) = samples
            .iter()
            .find(|s| s.pixels.len() != d || s.label >= people.len())
        {
            return Err(ClassicalError::Dimension {
                message: format!(
                    "{}: {} values (label {}) for a {width}x{height} set of {} people",
                    bad.path.display(),
                    bad.pixels.len(),
                    bad.label,
                    people.len()
                ),
            });
        }
        Ok(Self {
            width,
            height,
            people,
            samples,
            resized: 0,
        })
    }

    /// Pixels per image.
    pub fn dim(&self) -> usize {
        (self.width * self.height) as usize
    }

    /// Splits each person's images at random (seeded): `train_per_person` for training, the
    /// rest for testing. Every person must have more than `train_per_person` images.
    pub fn split(&self, train_per_person: usize, seed: u64) -> Result<Split, ClassicalError> {
        let labels: Vec<usize> = self.samples.iter().map(|s| s.label).collect();
        split_labels(&labels, &self.people, train_per_person, seed)
    }

    /// The chosen samples as a `dim x n` matrix (one column per image).
    pub fn matrix(&self, indices: &[usize]) -> DMatrix<f64> {
        let d = self.dim();
        DMatrix::from_fn(d, indices.len(), |r, c| {
            f64::from(self.samples[indices[c]].pixels[r])
        })
    }

    /// The labels of the chosen samples.
    pub fn labels(&self, indices: &[usize]) -> Vec<usize> {
        indices.iter().map(|&i| self.samples[i].label).collect()
    }
}

/// Cuts the centred `width` x `height` rectangle out of `image` (clamped to the image).
pub fn centre_crop(image: &GrayF32, width: u32, height: u32) -> GrayF32 {
    let c = Crop::centred(image.width(), image.height(), width, height);
    imageops::crop_imm(image, c.left, c.top, c.width, c.height).to_image()
}

/// [`Dataset::split`] for samples given by their labels (indices into `people`), e.g. when the
/// features are face encodings rather than pixels.
pub fn split_labels(
    labels: &[usize],
    people: &[String],
    train_per_person: usize,
    seed: u64,
) -> Result<Split, ClassicalError> {
    if train_per_person == 0 {
        return Err(ClassicalError::Parameter {
            message: "at least one training image per person is needed".into(),
        });
    }
    let mut rng = SplitMix64::new(seed);
    let mut split = Split {
        train: Vec::new(),
        test: Vec::new(),
    };
    for (label, name) in people.iter().enumerate() {
        let mut mine: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == label).collect();
        if mine.len() <= train_per_person {
            return Err(ClassicalError::TooFewSamples {
                    what: "train/test split",
                    message: format!(
                        "{name} has {} images; more than {train_per_person} are needed to keep some for testing",
                        mine.len()
                    ),
                });
        }
        shuffle(&mut rng, &mut mine);
        let (train, test) = mine.split_at(train_per_person);
        split.train.extend_from_slice(train);
        split.test.extend_from_slice(test);
    }
    split.train.sort_unstable();
    split.test.sort_unstable();
    Ok(split)
}

/// Fisher–Yates shuffle of `items`, each index drawn by [`SplitMix64::below_by_modulo`] as
/// every published split was.
fn shuffle<T>(rng: &mut SplitMix64, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = rng.below_by_modulo(i + 1);
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma};

    fn write(dir: &Path, rel: &str, w: u32, h: u32, v: u8) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // PNG bytes in a file without extension, as ORL/Yale files are: the decoder sniffs.
        let img = GrayImage::from_pixel(w, h, Luma([v]));
        let mut bytes = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn folder_per_person_in_natural_order() {
        let dir = tempfile::tempdir().unwrap();
        for p in ["s1", "s2", "s10"] {
            for i in [1, 2, 10] {
                write(dir.path(), &format!("{p}/{i}"), 4, 5, 10);
            }
        }
        std::fs::write(dir.path().join("README"), "not an image").unwrap();
        let set = Dataset::load(dir.path(), &LoadOptions::default()).unwrap();
        assert_eq!(set.people, ["s1", "s2", "s10"]);
        assert_eq!(set.samples.len(), 9);
        assert!(set.samples[2].path.ends_with("s1/10"));
        assert_eq!((set.width, set.height), (4, 5));
    }

    #[test]
    fn flat_names_group_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        for p in ["subject01", "subject02"] {
            for c in ["happy", "sad", "normal"] {
                write(dir.path(), &format!("{p}.{c}"), 3, 3, 100);
            }
        }
        let set = Dataset::load(dir.path(), &LoadOptions::default()).unwrap();
        assert_eq!(set.people, ["subject01", "subject02"]);
        assert_eq!(set.samples.iter().filter(|s| s.label == 1).count(), 3);
    }

    #[test]
    fn mixed_sizes_resized_or_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a/1", 8, 10, 50);
        write(dir.path(), "a/2", 16, 20, 50);
        write(dir.path(), "b/1", 8, 10, 50);
        let set = Dataset::load(dir.path(), &LoadOptions::default()).unwrap();
        assert_eq!((set.width, set.height, set.resized), (8, 10, 1));
        assert!(set.samples.iter().all(|s| s.pixels.len() == 80));

        let refuse = LoadOptions {
            size: SizePolicy::Refuse,
            ..LoadOptions::default()
        };
        let err = Dataset::load(dir.path(), &refuse).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                ClassicalError::MixedSizes {
                    width: 16,
                    height: 20,
                    ..
                }
            ),
            "{msg}"
        );
        assert!(
            msg.contains("16x20") && msg.contains("8x10") && msg.contains("a/2"),
            "{msg}"
        );
    }

    #[test]
    fn seeded_split_is_repeatable_and_disjoint() {
        let people = vec!["a".to_string(), "b".to_string()];
        let samples = (0..20)
            .map(|i| Sample {
                path: PathBuf::from(i.to_string()),
                label: i % 2,
                pixels: vec![0.0; 4],
            })
            .collect();
        let set = Dataset::from_samples(2, 2, people, samples).unwrap();
        let a = set.split(5, 7).unwrap();
        assert_eq!(a, set.split(5, 7).unwrap());
        assert_ne!(a, set.split(5, 8).unwrap());
        assert_eq!((a.train.len(), a.test.len()), (10, 10));
        assert!(a.train.iter().all(|i| !a.test.contains(i)));
        assert!(set.split(10, 1).is_err());
    }
}
