//! One gallery, wherever it lives: an SQLite file or a PostgreSQL database, chosen by the
//! location string (`postgres://...` / `postgresql://...` or a path). Both behave alike; this
//! is what long-running users (the HTTP service) hold.

use std::path::Path;

use crate::error::GalleryError;
use crate::keys::{ApiKey, IssuedKey, Scope};
use crate::postgres::{is_postgres_url, PgGallery};
use crate::store::{
    EnrollMode, Enrolled, Gallery, IndexKind, NewTemplate, Person, Searcher, Template,
};

type Result<T> = std::result::Result<T, GalleryError>;

/// A gallery in SQLite or PostgreSQL.
pub enum GalleryDb {
    /// An SQLite file.
    Sqlite(Gallery),
    /// A PostgreSQL database.
    Postgres(Box<PgGallery>),
}

macro_rules! both {
    ($self:expr, $g:ident => $e:expr) => {
        match $self {
            GalleryDb::Sqlite($g) => $e,
            GalleryDb::Postgres($g) => $e,
        }
    };
}

impl GalleryDb {
    /// Opens (creating when absent) the gallery at `location` for the models `manifest_id`.
    pub fn open(location: &str, manifest_id: &str) -> Result<Self> {
        if is_postgres_url(location) {
            PgGallery::open(location, manifest_id).map(|g| Self::Postgres(Box::new(g)))
        } else {
            Gallery::open(Path::new(location), manifest_id).map(Self::Sqlite)
        }
    }

    /// Opens an existing gallery at `location` whatever its models.
    pub fn open_existing(location: &str) -> Result<Self> {
        if is_postgres_url(location) {
            PgGallery::open_existing(location).map(|g| Self::Postgres(Box::new(g)))
        } else {
            Gallery::open_existing(Path::new(location)).map(Self::Sqlite)
        }
    }

    /// Where the gallery is, for messages (a PostgreSQL URL without its password).
    pub fn location(&self) -> String {
        match self {
            GalleryDb::Sqlite(g) => g.path().display().to_string(),
            GalleryDb::Postgres(g) => g.location().to_string(),
        }
    }

    /// Manifest id of the models that made the gallery's encodings.
    pub fn manifest_id(&self) -> &str {
        both!(self, g => g.manifest_id())
    }

    /// Refuses the gallery when its encodings come from models other than `manifest_id`.
    pub fn check_manifest(&self, manifest_id: &str) -> Result<()> {
        both!(self, g => g.check_manifest(manifest_id))
    }

    /// τ, a **Euclidean** distance.
    pub fn threshold(&self) -> Result<f32> {
        both!(self, g => g.threshold())
    }

    /// Stores τ (a **Euclidean** distance).
    pub fn set_threshold(&mut self, threshold: f32) -> Result<()> {
        both!(self, g => g.set_threshold(threshold))
    }

    /// Grows with every change to people, templates or τ, by any process or instance.
    pub fn generation(&self) -> Result<i64> {
        both!(self, g => g.generation())
    }

    /// Stores `templates` for `name` in one transaction.
    pub fn enroll(
        &mut self,
        name: &str,
        templates: &[NewTemplate],
        mode: EnrollMode,
    ) -> Result<Enrolled> {
        both!(self, g => g.enroll(name, templates, mode))
    }

    /// Everyone, by name.
    pub fn people(&self) -> Result<Vec<Person>> {
        both!(self, g => g.people())
    }

    /// Whether `name` is enrolled.
    pub fn contains(&self, name: &str) -> Result<bool> {
        both!(self, g => g.contains(name))
    }

    /// One person and their templates, oldest first.
    pub fn person(&self, name: &str) -> Result<(Person, Vec<Template>)> {
        both!(self, g => g.person(name))
    }

    /// Renames a person; the new name must be free.
    pub fn rename(&mut self, old: &str, new: &str) -> Result<()> {
        both!(self, g => g.rename(old, new))
    }

    /// Removes a person and their templates; returns how many templates went.
    pub fn remove(&mut self, name: &str) -> Result<usize> {
        both!(self, g => g.remove(name))
    }

    /// Number of stored templates.
    pub fn template_count(&self) -> Result<usize> {
        both!(self, g => g.template_count())
    }

    /// A search structure over the current templates.
    pub fn searcher(&self, kind: IndexKind) -> Result<Searcher> {
        both!(self, g => g.searcher(kind))
    }

    /// Makes an API key; the returned secret is stored only as its SHA-256.
    pub fn create_key(&mut self, name: &str, scopes: &[Scope]) -> Result<IssuedKey> {
        both!(self, g => g.create_key(name, scopes))
    }

    /// Every API key, revoked ones included.
    pub fn keys(&self) -> Result<Vec<ApiKey>> {
        both!(self, g => g.keys())
    }

    /// The API key whose secret is `secret`, if any.
    pub fn key_for_secret(&self, secret: &str) -> Result<Option<ApiKey>> {
        both!(self, g => g.key_for_secret(secret))
    }

    /// Revokes API key `id`.
    pub fn revoke_key(&mut self, id: i64) -> Result<()> {
        both!(self, g => g.revoke_key(id))
    }
}
