//! What every request shares: the models, the gallery connection, this instance's search index
//! (rebuilt whenever the gallery's generation moves, whoever changed it), the inference pool and
//! the metrics.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use visage_face::{DetectOptions, FaceModels};
use visage_gallery::{GalleryDb, GalleryError, IndexKind, Searcher};

use crate::metrics::{Gauges, Metrics};
use crate::pool::WorkerPool;

/// How the service runs; [`ServerConfig::default`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Inference threads (default: the number of cores).
    pub workers: usize,
    /// Inference jobs that may wait for a thread before requests get 429 (default: 2 per
    /// thread).
    pub queue: usize,
    /// Largest request body, in bytes (default 10 MiB).
    pub max_body_bytes: usize,
    /// Largest image, in pixels (width × height), checked from the header before decoding
    /// (default 25 megapixels).
    pub max_pixels: u64,
    /// Longest a request may take, reading its body included (default 30 s).
    pub request_timeout: Duration,
    /// Keep enrolment photos in this folder, named by their SHA-256; `None` (the default) keeps
    /// no image anywhere.
    pub keep_images: Option<PathBuf>,
    /// Photos an enrolment may carry (default 10).
    pub max_enroll_images: usize,
    /// Detection settings (upsample 1, as the CLI).
    pub detect: DetectOptions,
    /// Search structure of the index.
    pub index: IndexKind,
    /// Default τ of verify, a Euclidean distance (0.6, as `visage verify`).
    pub verify_threshold: f32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            workers: cores,
            queue: 2 * cores,
            max_body_bytes: 10 * 1024 * 1024,
            max_pixels: 25_000_000,
            request_timeout: Duration::from_secs(30),
            keep_images: None,
            max_enroll_images: 10,
            detect: DetectOptions::default(),
            index: IndexKind::Auto,
            verify_threshold: 0.6,
        }
    }
}

/// The search index at one gallery generation.
pub struct Snapshot {
    /// The gallery generation it was built from.
    pub generation: i64,
    /// The templates, searchable.
    pub searcher: Searcher,
    /// The gallery's τ at that generation (Euclidean distance).
    pub threshold: f32,
}

/// Everything requests share.
pub struct AppState {
    pub(crate) models: Arc<FaceModels>,
    gallery: Mutex<GalleryDb>,
    index: Mutex<Option<Arc<Snapshot>>>,
    pub(crate) pool: WorkerPool,
    pub(crate) metrics: Metrics,
    pub(crate) config: ServerConfig,
    backend: &'static str,
}

impl AppState {
    /// Shares `models` and `gallery` (refused when made by other models) under `config`.
    pub fn new(
        models: Arc<FaceModels>,
        gallery: GalleryDb,
        config: ServerConfig,
    ) -> Result<Arc<Self>, GalleryError> {
        gallery.check_manifest(models.manifest_id())?;
        let backend = match gallery {
            GalleryDb::Sqlite(_) => "sqlite",
            GalleryDb::Postgres(_) => "postgres",
        };
        let state = Arc::new(Self {
            models,
            gallery: Mutex::new(gallery),
            index: Mutex::new(None),
            pool: WorkerPool::new(config.workers, config.queue),
            metrics: Metrics::default(),
            config,
            backend,
        });
        state.snapshot()?;
        Ok(state)
    }

    /// The gallery connection (one per instance; calls are short).
    pub(crate) fn gallery(&self) -> MutexGuard<'_, GalleryDb> {
        self.gallery.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The search index for the gallery as it is now: one cheap generation read per call, and
    /// a rebuild only when someone (this instance or another) changed the gallery.
    pub fn snapshot(&self) -> Result<Arc<Snapshot>, GalleryError> {
        let gallery = self.gallery();
        let generation = gallery.generation()?;
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = index.as_ref().filter(|s| s.generation == generation) {
            return Ok(Arc::clone(s));
        }
        let snapshot = Arc::new(Snapshot {
            generation,
            searcher: gallery.searcher(self.config.index)?,
            threshold: gallery.threshold()?,
        });
        *index = Some(Arc::clone(&snapshot));
        Ok(snapshot)
    }

    /// The metrics' gauges now.
    pub(crate) fn gauges(&self) -> Gauges {
        let index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        Gauges {
            pending: self.pool.pending(),
            workers: self.pool.workers(),
            queue: self.pool.queue(),
            rejected: self.pool.rejected(),
            index_templates: index.as_ref().map_or(0, |s| s.searcher.len()),
            index_generation: index.as_ref().map_or(0, |s| s.generation),
        }
    }
}
