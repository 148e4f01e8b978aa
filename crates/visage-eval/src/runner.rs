//! Encoding many images through an [`ImageEncoder`], with the on-disk cache in front of it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::cache::{EncodingCache, ImageEncoding};
use crate::EvalError;

/// Something that turns image files into encodings (the face pipeline, or a stand-in in tests).
pub trait ImageEncoder: Sync {
    /// Identifies the models and the face-choice policy; part of the cache key, so it must
    /// change whenever the encodings would.
    fn cache_key(&self) -> String;

    /// Encodes a batch of images; one result per path, in order. An `Err` is a file that could
    /// not be read or decoded (its message names the file).
    fn encode(&self, paths: &[&Path]) -> Vec<Result<ImageEncoding, String>>;
}

/// Images per call to [`ImageEncoder::encode`]: enough to fill the network's batches and the
/// cores, and the unit of progress and of cache commits (an interrupted run keeps its batches).
pub const BATCH: usize = 16;

/// What encoding a set of images took.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EncodeStats {
    /// Distinct images asked for.
    pub images: usize,
    /// Images answered from the cache.
    pub from_cache: usize,
    /// Images run through the pipeline.
    pub encoded: usize,
    /// Images where the detector found no face.
    pub without_face: usize,
    /// Images that could not be read or encoded, with the reason.
    pub failed: Vec<(PathBuf, String)>,
    /// Wall-clock time spent in the pipeline, in seconds.
    pub pipeline_seconds: f64,
}

impl EncodeStats {
    /// Wall-clock seconds per image run through the pipeline (decode, detect, landmarks, chip,
    /// encode; all cores); `None` when everything came from the cache.
    pub fn seconds_per_image(&self) -> Option<f64> {
        (self.encoded > 0).then(|| self.pipeline_seconds / self.encoded as f64)
    }
}

/// Encodes every distinct path, using and filling `cache`. `progress` is told how many images
/// were just finished.
pub fn encode_all(
    encoder: &dyn ImageEncoder,
    paths: &[PathBuf],
    mut cache: Option<&mut EncodingCache>,
    progress: &dyn Fn(usize),
) -> Result<(HashMap<PathBuf, ImageEncoding>, EncodeStats), EvalError> {
    let key = encoder.cache_key();
    let mut unique: Vec<&PathBuf> = paths.iter().collect();
    unique.sort();
    unique.dedup();
    let mut stats = EncodeStats {
        images: unique.len(),
        ..EncodeStats::default()
    };
    let mut out = HashMap::with_capacity(unique.len());
    let mut todo: Vec<&Path> = Vec::new();
    for p in &unique {
        match cache.as_ref().and_then(|c| c.get(p, &key)) {
            Some(hit) => {
                stats.from_cache += 1;
                out.insert((*p).clone(), hit);
            }
            None => todo.push(p.as_path()),
        }
    }
    progress(stats.from_cache);
    let start = Instant::now();
    for batch in todo.chunks(BATCH) {
        let results = encoder.encode(batch);
        let mut fresh = Vec::with_capacity(batch.len());
        for (p, r) in batch.iter().zip(results) {
            match r {
                Ok(e) => {
                    stats.encoded += 1;
                    fresh.push((*p, e));
                    out.insert(p.to_path_buf(), e);
                }
                Err(msg) => stats.failed.push((p.to_path_buf(), msg)),
            }
        }
        if let Some(c) = cache.as_deref_mut() {
            c.put_many(&fresh, &key)?;
        }
        progress(batch.len());
    }
    stats.pipeline_seconds = start.elapsed().as_secs_f64();
    stats.without_face = out.values().filter(|e| !e.face_found).count();
    Ok((out, stats))
}
