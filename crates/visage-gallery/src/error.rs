//! The gallery's error type.

use std::path::PathBuf;

/// Everything that can go wrong with a gallery; each message names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    /// The file (or PostgreSQL gallery) is not there (opening without creating).
    #[error("no gallery at {}: enroll someone first (visage enroll NAME IMAGE...) or pass --db", path.display())]
    NotFound {
        /// The path looked at.
        path: PathBuf,
    },
    /// The file exists but is not an SQLite database, or SQLite found it corrupt.
    #[error("the gallery file {} is damaged or not a gallery ({detail}); restore it from an export or a backup, or pass another --db", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What SQLite or the checks reported.
        detail: String,
    },
    /// The database was written by a newer Visage with a schema this version does not know.
    #[error("the gallery {} has schema version {found}, this Visage reads version {supported}; upgrade Visage", path.display())]
    UnsupportedSchema {
        /// The file.
        path: PathBuf,
        /// Version stored in the file.
        found: i64,
        /// Version this build writes and reads.
        supported: i64,
    },
    /// The gallery's encodings were made by another model set: they cannot be compared.
    #[error("the gallery {} was made with models {gallery}, but the loaded models are {models}: encodings from different models cannot be compared; use a gallery made with these models (--db) or re-enroll", path.display())]
    ManifestMismatch {
        /// The file.
        path: PathBuf,
        /// Manifest id stored in the gallery.
        gallery: String,
        /// Manifest id of the models in use.
        models: String,
    },
    /// No person of that name.
    #[error("no person named {0:?} in the gallery (visage gallery list shows who is enrolled)")]
    UnknownPerson(String),
    /// A person of that name exists already.
    #[error("{0:?} is already enrolled")]
    PersonExists(String),
    /// Names must be non-empty and printable.
    #[error("invalid name {0:?}: a name must be 1 to 200 characters, without control characters")]
    InvalidName(String),
    /// A template's encoding has a non-finite value.
    #[error("an encoding holds a non-finite value")]
    InvalidEncoding,
    /// τ must be a finite, positive Euclidean distance.
    #[error("invalid threshold {0}: τ is a Euclidean distance and must be finite and > 0")]
    InvalidThreshold(f32),
    /// An export file could not be used.
    #[error("invalid gallery export: {0}")]
    InvalidExport(String),
    /// An API key could not be made.
    #[error("{0}")]
    InvalidKey(String),
    /// No API key with that id.
    #[error("no API key with id {0} (visage keys list shows them)")]
    UnknownKey(i64),
    /// The PostgreSQL server could not be reached or refused a query.
    #[error("gallery database error on {location}: {source}")]
    Postgres {
        /// The server and database, without the password.
        location: String,
        /// The client's error.
        source: postgres::Error,
    },
    /// Any other SQLite failure (locked for too long, disk full, ...).
    #[error("gallery database error on {}: {source}", path.display())]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
}

impl GalleryError {
    /// `Ok` when the gallery at `path` holds encodings of the models `models` (manifest
    /// ids), else [`GalleryError::ManifestMismatch`].
    pub(crate) fn check_manifest(
        path: &std::path::Path,
        gallery: &str,
        models: &str,
    ) -> Result<(), Self> {
        if gallery == models {
            Ok(())
        } else {
            Err(GalleryError::ManifestMismatch {
                path: path.to_path_buf(),
                gallery: gallery.to_string(),
                models: models.to_string(),
            })
        }
    }

    /// Wraps an SQLite error, classifying corruption as [`GalleryError::Damaged`].
    pub(crate) fn sqlite(path: &std::path::Path, source: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match source.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => GalleryError::Damaged {
                path: path.to_path_buf(),
                detail: source.to_string(),
            },
            _ => GalleryError::Sqlite {
                path: path.to_path_buf(),
                source,
            },
        }
    }
}
