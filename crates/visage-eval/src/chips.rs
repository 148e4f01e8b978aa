//! Small grey face chips for training an embedding: the aligned chip of the face an evaluation
//! would encode ([`PipelineEncoder::chip`]), turned grey and shrunk to a few dozen pixels, with a
//! cache on disk so that detection and alignment run once per image.
//!
//! The cache is one append-only file per setting (models, face choice, detection options,
//! side): a header naming the setting, then one record per image keyed by its canonical path,
//! size and modification time, like the encoding cache. A torn last record (an interrupted run)
//! is dropped when the file is read.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;
use visage_face::{DetectOptions, FaceModels};
use visage_image::{DecodeOptions, RgbImage};

use crate::faces::{FaceChoice, PipelineEncoder};
use crate::EvalError;

/// Version of the chip recipe (grey conversion, filter) and of the cache layout; part of the
/// cache key, so a change re-extracts instead of trusting old chips.
pub const CHIP_FORMAT: u32 = 1;

/// Side of the aligned chip the pipeline cuts, pixels; the largest side a grey chip may have.
pub const ALIGNED_SIDE: usize = 150;

/// Images per parallel batch: the unit of progress and of cache appends.
const BATCH: usize = 64;

const MAGIC: &[u8; 8] = b"VCHIPS1\n";

/// One grey chip: `side x side` grey levels (0 = black), row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GreyChip {
    /// Grey levels, row-major.
    pub pixels: Vec<u8>,
    /// Whether the detector found the face (`false`: cut from the face choice's fallback box).
    pub face_found: bool,
}

impl GreyChip {
    /// The pixels as values in `[0, 1]` (1 = white), as the embedding networks take them.
    pub fn values(&self) -> Vec<f32> {
        self.pixels.iter().map(|&p| f32::from(p) / 255.0).collect()
    }
}

/// An aligned RGB chip as grey levels at `side x side` pixels (triangle filter, which averages
/// over the source pixels when shrinking).
pub fn grey_chip(chip: &RgbImage, side: usize) -> Vec<u8> {
    let grey = image::DynamicImage::ImageRgb8(chip.clone()).to_luma8();
    let grey = if grey.width() as usize == side && grey.height() as usize == side {
        grey
    } else {
        image::imageops::resize(
            &grey,
            side as u32,
            side as u32,
            image::imageops::FilterType::Triangle,
        )
    };
    grey.into_raw()
}

/// Cuts grey chips of one face per image with the face pipeline.
pub struct ChipExtractor<'a> {
    encoder: PipelineEncoder<'a>,
    side: usize,
    key: String,
}

impl<'a> ChipExtractor<'a> {
    /// An extractor of `side x side` chips (1 to [`ALIGNED_SIDE`] pixels) of the face `choice`
    /// picks, detected with `detect` in images decoded with `decode`.
    pub fn new(
        models: &'a FaceModels,
        detect: DetectOptions,
        decode: DecodeOptions,
        choice: FaceChoice,
        side: usize,
    ) -> Result<Self, EvalError> {
        if side == 0 || side > ALIGNED_SIDE {
            return Err(EvalError::Data(format!(
                "chip side {side} is not between 1 and {ALIGNED_SIDE} pixels"
            )));
        }
        let key = format!(
            "chips-v{CHIP_FORMAT}|{}|visage-{}|{choice:?}|upsample={}|adjust={}|max_pixels={}|side={side}",
            models.manifest_id(),
            env!("CARGO_PKG_VERSION"),
            detect.upsample,
            detect.adjust_threshold,
            decode.max_pixels,
        );
        Ok(Self {
            encoder: PipelineEncoder::new(models, detect, decode, choice),
            side,
            key,
        })
    }

    /// Chip side, pixels.
    pub fn side(&self) -> usize {
        self.side
    }

    /// Everything that fixes the chips but the image: models, face choice, options, side.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The grey chip of the chosen face of one image; `Ok(None)` when the face choice found
    /// nothing and has no fallback; `Err` names a file that cannot be read or decoded.
    pub fn extract(&self, path: &Path) -> Result<Option<GreyChip>, String> {
        Ok(self.encoder.chip(path)?.map(|(chip, face_found)| GreyChip {
            pixels: grey_chip(&chip, self.side),
            face_found,
        }))
    }
}

/// A file's identity for the cache: canonical path, size in bytes, modification time in ns.
fn stamp(path: &Path) -> Option<(PathBuf, u64, u64)> {
    let canonical = std::fs::canonicalize(path).ok()?;
    let meta = std::fs::metadata(&canonical).ok()?;
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos() as u64;
    Some((canonical, meta.len(), mtime))
}

/// Grey chips on disk, one file per extractor key (see the module documentation).
pub struct ChipCache {
    path: PathBuf,
    side: usize,
    entries: HashMap<PathBuf, (u64, u64, Option<GreyChip>)>,
}

/// FNV-1a, 64 bits: a stable file name for a key (collisions are caught by the header).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn header(key: &str, side: usize) -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    h.extend((key.len() as u32).to_le_bytes());
    h.extend(key.as_bytes());
    h.extend((side as u32).to_le_bytes());
    h
}

impl ChipCache {
    /// Opens (creating `dir` and the file if needed) the cache of `extractor`'s chips in `dir`.
    /// A file written for another key, or unreadable, is started afresh.
    pub fn open(dir: &Path, extractor: &ChipExtractor) -> Result<Self, EvalError> {
        let io = |source| EvalError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let (key, side) = (extractor.key(), extractor.side());
        let path = dir.join(format!("chips-{:016x}.bin", fnv1a(key)));
        let mut cache = Self {
            path,
            side,
            entries: HashMap::new(),
        };
        let head = header(key, side);
        let bytes = std::fs::read(&cache.path).unwrap_or_default();
        let good = if bytes.starts_with(&head) {
            head.len() + cache.read_records(&bytes[head.len()..])
        } else {
            0
        };
        if good < head.len() {
            std::fs::write(&cache.path, &head).map_err(|source| EvalError::Io {
                path: cache.path.clone(),
                source,
            })?;
        } else if good < bytes.len() {
            // Drop a torn last record so that appends start on a record boundary.
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&cache.path)
                .and_then(|f| f.set_len(good as u64));
            file.map_err(|source| EvalError::Io {
                path: cache.path.clone(),
                source,
            })?;
        }
        Ok(cache)
    }

    /// Reads whole records from `bytes`; returns how many bytes they took.
    fn read_records(&mut self, mut bytes: &[u8]) -> usize {
        let total = bytes.len();
        let mut used = 0;
        let pixels = self.side * self.side;
        loop {
            let mut len = [0u8; 4];
            if bytes.read_exact(&mut len).is_err() {
                break;
            }
            let len = u32::from_le_bytes(len) as usize;
            let record = len + 8 + 8 + 1;
            if bytes.len() < record {
                break;
            }
            let path = PathBuf::from(String::from_utf8_lossy(&bytes[..len]).into_owned());
            let size = u64::from_le_bytes(bytes[len..len + 8].try_into().unwrap_or_default());
            let mtime = u64::from_le_bytes(bytes[len + 8..len + 16].try_into().unwrap_or_default());
            let flags = bytes[len + 16];
            bytes = &bytes[record..];
            let chip = if flags & 2 != 0 {
                if bytes.len() < pixels {
                    break;
                }
                let chip = GreyChip {
                    pixels: bytes[..pixels].to_vec(),
                    face_found: flags & 1 != 0,
                };
                bytes = &bytes[pixels..];
                Some(chip)
            } else {
                None
            };
            self.entries.insert(path, (size, mtime, chip));
            used = total - bytes.len();
        }
        used
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Images held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache holds no image.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The cached outcome for `image` (`Some(None)`: no face), if the file is unchanged.
    pub fn get(&self, image: &Path) -> Option<Option<GreyChip>> {
        let (canonical, size, mtime) = stamp(image)?;
        match self.entries.get(&canonical) {
            Some((s, m, chip)) if *s == size && *m == mtime => Some(chip.clone()),
            _ => None,
        }
    }

    /// Appends outcomes of images to the file (images that vanished are skipped).
    pub fn put_many(&mut self, items: &[(PathBuf, Option<GreyChip>)]) -> Result<(), EvalError> {
        let mut out = Vec::new();
        for (image, chip) in items {
            let Some((canonical, size, mtime)) = stamp(image) else {
                continue;
            };
            if chip
                .as_ref()
                .is_some_and(|c| c.pixels.len() != self.side * self.side)
            {
                return Err(EvalError::Data(format!(
                    "a chip of {} is not {}x{}",
                    image.display(),
                    self.side,
                    self.side
                )));
            }
            let name = canonical.to_string_lossy();
            out.extend((name.len() as u32).to_le_bytes());
            out.extend(name.as_bytes());
            out.extend(size.to_le_bytes());
            out.extend(mtime.to_le_bytes());
            let flags = match chip {
                Some(c) => 2 | u8::from(c.face_found),
                None => 0,
            };
            out.push(flags);
            if let Some(c) = chip {
                out.extend(&c.pixels);
            }
            self.entries.insert(canonical, (size, mtime, chip.clone()));
        }
        let io = |source| EvalError::Io {
            path: self.path.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        file.write_all(&out).map_err(io)
    }
}

/// What extracting a set of chips took.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChipStats {
    /// Distinct images asked for.
    pub images: usize,
    /// Images answered from the cache.
    pub from_cache: usize,
    /// Images run through the pipeline.
    pub extracted: usize,
    /// Images whose chip comes from the face choice's fallback box (no detection).
    pub without_face: usize,
    /// Images without any chip (no detection and no fallback).
    pub without_chip: usize,
    /// Images that could not be read, with the reason.
    pub failed: Vec<(PathBuf, String)>,
    /// Wall-clock time spent in the pipeline, seconds.
    pub pipeline_seconds: f64,
}

/// The grey chips of every distinct path (images without a chip are left out), using and
/// filling `cache`. `progress` is told how many images were just finished. Unreadable images
/// are listed in the stats, not cached, and do not stop the others.
pub fn extract_all(
    extractor: &ChipExtractor,
    paths: &[PathBuf],
    mut cache: Option<&mut ChipCache>,
    progress: &dyn Fn(usize),
) -> Result<(HashMap<PathBuf, GreyChip>, ChipStats), EvalError> {
    let mut unique = paths.to_vec();
    unique.sort();
    unique.dedup();
    let mut stats = ChipStats {
        images: unique.len(),
        ..ChipStats::default()
    };
    let mut chips = HashMap::new();
    let mut record = |path: &Path, chip: Option<GreyChip>, stats: &mut ChipStats| match chip {
        Some(c) => {
            stats.without_face += usize::from(!c.face_found);
            chips.insert(path.to_path_buf(), c);
        }
        None => stats.without_chip += 1,
    };
    let mut todo = Vec::new();
    for path in unique {
        match cache.as_ref().and_then(|c| c.get(&path)) {
            Some(chip) => {
                stats.from_cache += 1;
                record(&path, chip, &mut stats);
            }
            None => todo.push(path),
        }
    }
    progress(stats.from_cache);
    let start = Instant::now();
    for batch in todo.chunks(BATCH) {
        let outcomes: Vec<Result<Option<GreyChip>, String>> =
            batch.par_iter().map(|p| extractor.extract(p)).collect();
        let mut fresh = Vec::with_capacity(batch.len());
        for (path, outcome) in batch.iter().zip(outcomes) {
            match outcome {
                Ok(chip) => {
                    stats.extracted += 1;
                    fresh.push((path.clone(), chip.clone()));
                    record(path, chip, &mut stats);
                }
                Err(message) => stats.failed.push((path.clone(), message)),
            }
        }
        if let Some(c) = cache.as_mut() {
            c.put_many(&fresh)?;
        }
        progress(batch.len());
    }
    stats.pipeline_seconds = start.elapsed().as_secs_f64();
    Ok((chips, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use visage_testdata::shared;

    fn lfw(name: &str, n: u32) -> PathBuf {
        crate::lfw::image_path(&shared().join("data/lfw/images"), name, n)
    }

    /// An extractor with default decoding and no detection threshold change.
    fn lfw_extractor(
        models: &FaceModels,
        upsample: u32,
        choice: FaceChoice,
        side: usize,
    ) -> Result<ChipExtractor<'_>, EvalError> {
        let detect = DetectOptions {
            upsample,
            adjust_threshold: 0.0,
        };
        ChipExtractor::new(models, detect, DecodeOptions::default(), choice, side)
    }

    #[test]
    fn real_lfw_chips_are_small_grey_faces_and_come_back_from_the_cache() {
        let models = FaceModels::load(&shared().join("models")).expect("models in ../shared");
        let extractor = lfw_extractor(&models, 1, FaceChoice::LfwCentreOrBox, 32).unwrap();
        let images = [lfw("Aaron_Peirsol", 1), lfw("Aaron_Peirsol", 3)];
        let dir = tempfile::tempdir().unwrap();
        let mut cache = ChipCache::open(dir.path(), &extractor).unwrap();
        let (chips, stats) = extract_all(&extractor, &images, Some(&mut cache), &|_| {}).unwrap();
        assert_eq!((stats.images, stats.extracted, stats.from_cache), (2, 2, 0));
        assert!(stats.failed.is_empty());
        for path in &images {
            let chip = &chips[path];
            assert_eq!(chip.pixels.len(), 32 * 32);
            assert!(chip.face_found);
            let v = chip.values();
            let mean = v.iter().sum::<f32>() / v.len() as f32;
            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / v.len() as f32;
            assert!(v.iter().all(|x| (0.0..=1.0).contains(x)));
            // A face, not a flat patch.
            assert!(var.sqrt() > 0.05, "std {}", var.sqrt());
        }
        assert_ne!(chips[&images[0]], chips[&images[1]]);
        // A second run, with the cache reopened from disk, detects nothing.
        let mut reopened = ChipCache::open(dir.path(), &extractor).unwrap();
        assert_eq!(reopened.len(), 2);
        let (again, stats) =
            extract_all(&extractor, &images, Some(&mut reopened), &|_| {}).unwrap();
        assert_eq!((stats.from_cache, stats.extracted), (2, 0));
        assert_eq!(again, chips);
    }

    #[test]
    fn a_corrupt_image_is_reported_by_name_and_not_cached() {
        let models = FaceModels::load(&shared().join("models")).expect("models in ../shared");
        let extractor = lfw_extractor(&models, 0, FaceChoice::LfwCentreOrBox, 24).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("broken.jpg");
        std::fs::write(&bad, b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
        let mut cache = ChipCache::open(&dir.path().join("cache"), &extractor).unwrap();
        let (chips, stats) = extract_all(
            &extractor,
            std::slice::from_ref(&bad),
            Some(&mut cache),
            &|_| {},
        )
        .unwrap();
        assert!(chips.is_empty());
        assert_eq!(stats.failed.len(), 1);
        assert!(
            stats.failed[0].1.contains("broken.jpg"),
            "{}",
            stats.failed[0].1
        );
        assert!(cache.is_empty());
        assert!(lfw_extractor(&models, 0, FaceChoice::LfwCentreOrBox, 0).is_err());
    }

    #[test]
    fn a_torn_cache_file_keeps_its_whole_records() {
        let chip = GreyChip {
            pixels: vec![7; 4],
            face_found: true,
        };
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("a.jpg");
        std::fs::write(&image, b"x").unwrap();
        let models = FaceModels::load(&shared().join("models")).expect("models in ../shared");
        let extractor = lfw_extractor(&models, 0, FaceChoice::Centre, 2).unwrap();
        let mut cache = ChipCache::open(dir.path(), &extractor).unwrap();
        cache
            .put_many(&[(image.clone(), Some(chip.clone()))])
            .unwrap();
        let mut bytes = std::fs::read(cache.path()).unwrap();
        bytes.extend([9, 0, 0, 0, b'h']);
        std::fs::write(cache.path(), &bytes).unwrap();
        let reopened = ChipCache::open(dir.path(), &extractor).unwrap();
        assert_eq!(reopened.get(&image), Some(Some(chip)));
        assert_eq!(
            std::fs::metadata(reopened.path()).unwrap().len() as usize,
            bytes.len() - 5
        );
    }
}
