//! The SQLite store: schema, opening checks, enrolment and the people/template queries.
//!
//! Schema (version [`SCHEMA_VERSION`]):
//! - `meta(key, value)`: `schema_version`, `manifest_id` (the face models' manifest id; encodings
//!   of other models are refused), `threshold` (τ, a Euclidean distance), `created_at`.
//! - `people(id, name UNIQUE, created_at)`.
//! - `templates(id AUTOINCREMENT, person_id → people ON DELETE CASCADE, encoding BLOB of 128
//!   little-endian f32, image_sha256 hex, box_left/top/right/bottom in pixels, source, created_at)`.
//!   Template ids are never reused, which lets a cached HNSW graph tell which rows it covers.
//! - `hnsw_cache(id = 1, template_count, max_template_id, data)`: the serialised graph.
//!
//! Times are Unix seconds (UTC). The journal is WAL, so readers never wait for an enrolment, and
//! every write is one transaction: a killed process leaves whole people or none.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

use crate::error::GalleryError;
use crate::hnsw::{Hnsw, HnswParams, DEFAULT_EF_SEARCH};
use crate::search::{Encoding, TemplateMatrix, DIM};

/// Version of the schema this build reads and writes.
pub const SCHEMA_VERSION: i64 = 1;

/// SQLite `application_id` of gallery files ("VSG1"), so another program's database is told
/// apart from a damaged gallery.
pub const APPLICATION_ID: i32 = 0x5653_4731;

/// τ of a new gallery: face_recognition's default tolerance, a **Euclidean** distance.
pub const DEFAULT_THRESHOLD: f32 = 0.6;

/// Galleries with at least this many templates are searched through the HNSW graph by
/// [`IndexKind::Auto`]; below it an exact scan takes under a few milliseconds.
pub const HNSW_MIN_TEMPLATES: usize = 50_000;

/// How long a writer waits for another writer's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

type Result<T> = std::result::Result<T, GalleryError>;

/// A template to store: one face's encoding and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTemplate {
    /// The 128-d encoding (unitless).
    pub encoding: Encoding,
    /// Lower-case hex SHA-256 of the source image file's bytes.
    pub image_sha256: String,
    /// The face box `[left, top, right, bottom]`, in pixels of the upright source image.
    pub rect: [i64; 4],
    /// Where the image came from (a file path, in words); informational only.
    pub source: Option<String>,
}

/// A stored template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    /// Template id (never reused).
    pub id: i64,
    /// The 128-d encoding (unitless).
    #[serde(with = "encoding_serde")]
    pub encoding: Encoding,
    /// Lower-case hex SHA-256 of the source image file.
    pub image_sha256: String,
    /// The face box `[left, top, right, bottom]`, in pixels of the source image.
    pub rect: [i64; 4],
    /// Where the image came from, if recorded.
    pub source: Option<String>,
    /// When it was enrolled, Unix seconds (UTC).
    pub created_at: i64,
}

/// One enrolled person, with the number of templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    /// Person id.
    pub id: i64,
    /// The name given at enrolment (unique in the gallery).
    pub name: String,
    /// When the person was first enrolled, Unix seconds (UTC).
    pub created_at: i64,
    /// Number of stored templates.
    pub templates: usize,
}

/// Whether enrolling an existing name is an error or adds templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollMode {
    /// The name must be new ([`GalleryError::PersonExists`] otherwise).
    New,
    /// Add the templates to the person, creating them if needed.
    Append,
}

/// What an enrolment did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enrolled {
    /// The person's id.
    pub person_id: i64,
    /// Whether the person was created by this enrolment.
    pub created: bool,
    /// Templates stored.
    pub templates_added: usize,
}

/// A whole gallery as portable JSON (`visage gallery export` / `import`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GalleryExport {
    /// Always `"visage-gallery"`.
    pub format: String,
    /// Schema version of the export ([`SCHEMA_VERSION`]).
    pub version: i64,
    /// Manifest id of the models that made the encodings.
    pub manifest_id: String,
    /// τ, a Euclidean distance.
    pub threshold: f32,
    /// Everyone, with their templates.
    pub people: Vec<ExportPerson>,
}

/// One person in a [`GalleryExport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportPerson {
    /// Name.
    pub name: String,
    /// When first enrolled, Unix seconds (UTC).
    pub created_at: i64,
    /// Templates (their ids are reassigned on import).
    pub templates: Vec<Template>,
}

/// Which search structure [`Gallery::searcher`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndexKind {
    /// Exact below [`HNSW_MIN_TEMPLATES`] templates, HNSW from there on.
    #[default]
    Auto,
    /// Always scan every template.
    Exact,
    /// Always use the HNSW graph.
    Hnsw,
}

impl IndexKind {
    /// Whether a gallery of `templates` rows is searched through the HNSW graph.
    pub(crate) fn wants_hnsw(self, templates: usize) -> bool {
        match self {
            IndexKind::Exact => false,
            IndexKind::Hnsw => true,
            IndexKind::Auto => templates >= HNSW_MIN_TEMPLATES,
        }
    }
}

/// An open gallery file.
pub struct Gallery {
    pub(crate) conn: Connection,
    path: PathBuf,
    manifest_id: String,
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub(crate) fn encoding_to_blob(e: &Encoding) -> Vec<u8> {
    e.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub(crate) fn blob_to_encoding(b: &[u8]) -> Option<Encoding> {
    if b.len() != DIM * 4 {
        return None;
    }
    let mut e = [0.0f32; DIM];
    for (v, c) in e.iter_mut().zip(b.chunks_exact(4)) {
        *v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    Some(e)
}

pub(crate) fn check_name(name: &str) -> Result<&str> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 200 || trimmed.chars().any(char::is_control)
    {
        return Err(GalleryError::InvalidName(name.to_string()));
    }
    Ok(trimmed)
}

/// `name` trimmed and checked as [`check_name`] does, and every encoding of `templates` found
/// finite: what each backend checks before it enrolls anything.
pub(crate) fn check_enrollment<'a>(name: &'a str, templates: &[NewTemplate]) -> Result<&'a str> {
    let name = check_name(name)?;
    if templates
        .iter()
        .any(|t| t.encoding.iter().any(|v| !v.is_finite()))
    {
        return Err(GalleryError::InvalidEncoding);
    }
    Ok(name)
}

impl Gallery {
    /// Opens the gallery at `path` for the models with manifest id `manifest_id`, creating it
    /// (and its directory) when absent. A gallery made by other models is refused with
    /// [`GalleryError::ManifestMismatch`].
    pub fn open(path: &Path, manifest_id: &str) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| GalleryError::Damaged {
                path: path.to_path_buf(),
                detail: format!("cannot create its directory: {e}"),
            })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|e| GalleryError::sqlite(path, e))?;
        let gallery = Self::configure(conn, path, Some(manifest_id))?;
        gallery.check_manifest(manifest_id)?;
        Ok(gallery)
    }

    /// Opens an existing gallery whatever its models (for listing, renaming, exporting).
    pub fn open_existing(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(GalleryError::NotFound {
                path: path.to_path_buf(),
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|e| GalleryError::sqlite(path, e))?;
        Self::configure(conn, path, None)
    }

    /// Sets the connection up and reads (or, with `create_for`, writes) the schema and meta.
    fn configure(conn: Connection, path: &Path, create_for: Option<&str>) -> Result<Self> {
        let err = |e| GalleryError::sqlite(path, e);
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        // Reading the application id is the first access to the file's header: a file that is
        // not SQLite fails here with NOTADB.
        let app_id: i32 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(err)?;
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .map_err(err)?;
        if app_id != APPLICATION_ID && (tables > 0 || create_for.is_none()) {
            return Err(GalleryError::Damaged {
                path: path.to_path_buf(),
                detail: "not a Visage gallery (another SQLite database)".into(),
            });
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Some file systems cannot hold the WAL's shared memory; the rollback journal is
            // still transactional, so carry on.
        }
        // NORMAL in WAL mode loses nothing when the process dies; only a power cut may drop the
        // last commits, never corrupt the file.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(err)?;
        if let Some(manifest_id) = create_for {
            if tables == 0 {
                Self::create_schema(&conn, manifest_id).map_err(err)?;
            }
        }
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        let version =
            version
                .and_then(|v| v.parse::<i64>().ok())
                .ok_or_else(|| GalleryError::Damaged {
                    path: path.to_path_buf(),
                    detail: "its schema version is missing".into(),
                })?;
        if version != SCHEMA_VERSION {
            return Err(GalleryError::UnsupportedSchema {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        let manifest_id: String = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'manifest_id'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?
            .ok_or_else(|| GalleryError::Damaged {
                path: path.to_path_buf(),
                detail: "its manifest id is missing".into(),
            })?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            manifest_id,
        })
    }

    fn create_schema(conn: &Connection, manifest_id: &str) -> rusqlite::Result<()> {
        // IMMEDIATE takes the write lock first, so two processes creating the same new file
        // cannot both write a schema; the loser sees the tables and inserts nothing.
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let result = (|| {
            conn.execute_batch(&format!(
                "PRAGMA application_id = {APPLICATION_ID};
                 CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 CREATE TABLE IF NOT EXISTS people (
                     id INTEGER PRIMARY KEY,
                     name TEXT NOT NULL UNIQUE,
                     created_at INTEGER NOT NULL);
                 CREATE TABLE IF NOT EXISTS templates (
                     id INTEGER PRIMARY KEY AUTOINCREMENT,
                     person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
                     encoding BLOB NOT NULL CHECK (length(encoding) = {bytes}),
                     image_sha256 TEXT NOT NULL,
                     box_left INTEGER NOT NULL, box_top INTEGER NOT NULL,
                     box_right INTEGER NOT NULL, box_bottom INTEGER NOT NULL,
                     source TEXT,
                     created_at INTEGER NOT NULL);
                 CREATE INDEX IF NOT EXISTS templates_person ON templates(person_id);
                 CREATE TABLE IF NOT EXISTS hnsw_cache (
                     id INTEGER PRIMARY KEY CHECK (id = 1),
                     template_count INTEGER NOT NULL,
                     max_template_id INTEGER NOT NULL,
                     data BLOB NOT NULL);",
                bytes = DIM * 4
            ))?;
            let insert = "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)";
            conn.execute(
                insert,
                params!["schema_version", SCHEMA_VERSION.to_string()],
            )?;
            conn.execute(insert, params!["manifest_id", manifest_id])?;
            conn.execute(insert, params!["threshold", DEFAULT_THRESHOLD.to_string()])?;
            conn.execute(insert, params!["created_at", now().to_string()])?;
            Ok(())
        })();
        match result {
            Ok(()) => conn.execute_batch("COMMIT"),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> GalleryError + '_ {
        move |e| GalleryError::sqlite(&self.path, e)
    }

    /// A transaction that takes the write lock when it starts, so that two writers queue
    /// (within the busy timeout) instead of one failing at its first write, and the file's
    /// path for its errors.
    fn write_transaction(&mut self) -> Result<(rusqlite::Transaction<'_>, PathBuf)> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| GalleryError::sqlite(&path, e))?;
        Ok((tx, path))
    }

    /// The gallery file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Manifest id of the models that made the gallery's encodings.
    pub fn manifest_id(&self) -> &str {
        &self.manifest_id
    }

    /// Refuses the gallery when its encodings come from models other than `manifest_id`.
    pub fn check_manifest(&self, manifest_id: &str) -> Result<()> {
        GalleryError::check_manifest(&self.path, &self.manifest_id, manifest_id)
    }

    /// τ: the largest **Euclidean** distance between encodings still called the same person.
    pub fn threshold(&self) -> Result<f32> {
        let value: String = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'threshold'", [], |r| {
                r.get(0)
            })
            .map_err(self.err())?;
        value
            .parse::<f32>()
            .ok()
            .filter(|t| t.is_finite() && *t > 0.0)
            .ok_or_else(|| GalleryError::Damaged {
                path: self.path.clone(),
                detail: format!("its threshold {value:?} is not a distance"),
            })
    }

    /// Stores τ (a **Euclidean** distance, e.g. from `visage calibrate --save`).
    pub fn set_threshold(&mut self, threshold: f32) -> Result<()> {
        if !(threshold.is_finite() && threshold > 0.0) {
            return Err(GalleryError::InvalidThreshold(threshold));
        }
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES ('threshold', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [threshold.to_string()],
            )
            .map_err(self.err())?;
        bump_generation(&self.conn).map_err(self.err())?;
        Ok(())
    }

    /// A number that grows with every change to people, templates or τ (by any process), so a
    /// long-running reader knows when its search index is stale. 0 for a gallery never changed
    /// since it was created.
    pub fn generation(&self) -> Result<i64> {
        let value: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'generation'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.err())?;
        Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// Stores `templates` for `name` in one transaction: all of them or, on any error, none.
    pub fn enroll(
        &mut self,
        name: &str,
        templates: &[NewTemplate],
        mode: EnrollMode,
    ) -> Result<Enrolled> {
        let name = check_enrollment(name, templates)?;
        let (tx, path) = self.write_transaction()?;
        let err = |e| GalleryError::sqlite(&path, e);
        let existing: Option<i64> = tx
            .query_row("SELECT id FROM people WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(err)?;
        let (person_id, created) = match (existing, mode) {
            (Some(_), EnrollMode::New) => return Err(GalleryError::PersonExists(name.to_string())),
            (Some(id), EnrollMode::Append) => (id, false),
            (None, _) => {
                tx.execute(
                    "INSERT INTO people (name, created_at) VALUES (?1, ?2)",
                    params![name, now()],
                )
                .map_err(err)?;
                (tx.last_insert_rowid(), true)
            }
        };
        insert_templates(
            &tx,
            person_id,
            templates.iter().map(|t| {
                (
                    &t.encoding,
                    t.image_sha256.as_str(),
                    t.rect,
                    t.source.as_deref(),
                    now(),
                )
            }),
        )
        .map_err(err)?;
        bump_generation(&tx).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(Enrolled {
            person_id,
            created,
            templates_added: templates.len(),
        })
    }

    /// Everyone, by name.
    pub fn people(&self) -> Result<Vec<Person>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT p.id, p.name, p.created_at, count(t.id) FROM people p
                 LEFT JOIN templates t ON t.person_id = p.id GROUP BY p.id ORDER BY p.name",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Person {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    created_at: r.get(2)?,
                    templates: r.get::<_, i64>(3)? as usize,
                })
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// Whether `name` is enrolled.
    pub fn contains(&self, name: &str) -> Result<bool> {
        Ok(self.person_id(name)?.is_some())
    }

    fn person_id(&self, name: &str) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT id FROM people WHERE name = ?1",
                [name.trim()],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())
    }

    /// One person and their templates, oldest first.
    pub fn person(&self, name: &str) -> Result<(Person, Vec<Template>)> {
        let id = self
            .person_id(name)?
            .ok_or_else(|| GalleryError::UnknownPerson(name.to_string()))?;
        let (pname, created_at): (String, i64) = self
            .conn
            .query_row(
                "SELECT name, created_at FROM people WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(self.err())?;
        let templates = self.templates_of(id)?;
        Ok((
            Person {
                id,
                name: pname,
                created_at,
                templates: templates.len(),
            },
            templates,
        ))
    }

    fn templates_of(&self, person_id: i64) -> Result<Vec<Template>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, encoding, image_sha256, box_left, box_top, box_right, box_bottom, source, created_at
                 FROM templates WHERE person_id = ?1 ORDER BY id",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([person_id], |r| {
                let blob: Vec<u8> = r.get(1)?;
                Ok((
                    blob,
                    Template {
                        id: r.get(0)?,
                        encoding: [0.0; DIM],
                        image_sha256: r.get(2)?,
                        rect: [r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?],
                        source: r.get(7)?,
                        created_at: r.get(8)?,
                    },
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (blob, mut t) = row.map_err(self.err())?;
            t.encoding = blob_to_encoding(&blob).ok_or_else(|| self.bad_blob())?;
            out.push(t);
        }
        Ok(out)
    }

    fn bad_blob(&self) -> GalleryError {
        GalleryError::Damaged {
            path: self.path.clone(),
            detail: "a template's encoding has the wrong size".into(),
        }
    }

    /// Renames a person; the new name must be free.
    pub fn rename(&mut self, old: &str, new: &str) -> Result<()> {
        let new = check_name(new)?;
        let (tx, path) = self.write_transaction()?;
        let err = |e| GalleryError::sqlite(&path, e);
        let taken: Option<i64> = tx
            .query_row("SELECT id FROM people WHERE name = ?1", [new], |r| r.get(0))
            .optional()
            .map_err(err)?;
        if taken.is_some() {
            return Err(GalleryError::PersonExists(new.to_string()));
        }
        let changed = tx
            .execute(
                "UPDATE people SET name = ?1 WHERE name = ?2",
                [new, old.trim()],
            )
            .map_err(err)?;
        if changed == 0 {
            return Err(GalleryError::UnknownPerson(old.to_string()));
        }
        bump_generation(&tx).map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Removes a person and their templates; returns how many templates went.
    pub fn remove(&mut self, name: &str) -> Result<usize> {
        let (tx, path) = self.write_transaction()?;
        let err = |e| GalleryError::sqlite(&path, e);
        let id: i64 = tx
            .query_row(
                "SELECT id FROM people WHERE name = ?1",
                [name.trim()],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?
            .ok_or_else(|| GalleryError::UnknownPerson(name.to_string()))?;
        let templates = tx
            .execute("DELETE FROM templates WHERE person_id = ?1", [id])
            .map_err(err)?;
        tx.execute("DELETE FROM people WHERE id = ?1", [id])
            .map_err(err)?;
        bump_generation(&tx).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(templates)
    }

    /// Number of stored templates.
    pub fn template_count(&self) -> Result<usize> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM templates", [], |r| r.get(0))
            .map_err(self.err())?;
        Ok(n as usize)
    }

    /// Every template as one contiguous matrix, in template-id order.
    pub fn load_matrix(&self) -> Result<TemplateMatrix> {
        let mut matrix = TemplateMatrix::with_capacity(self.template_count()?);
        let mut stmt = self
            .conn
            .prepare("SELECT id, person_id, encoding FROM templates ORDER BY id")
            .map_err(self.err())?;
        let mut rows = stmt.query([]).map_err(self.err())?;
        while let Some(row) = rows.next().map_err(self.err())? {
            let id: i64 = row.get(0).map_err(self.err())?;
            let person: i64 = row.get(1).map_err(self.err())?;
            let blob = row
                .get_ref(2)
                .map_err(self.err())?
                .as_blob()
                .map_err(|_| self.bad_blob())?;
            let e = blob_to_encoding(blob).ok_or_else(|| self.bad_blob())?;
            matrix.push(&e, id, person);
        }
        Ok(matrix)
    }

    /// A search structure over the current templates. With HNSW, a graph cached in the file is
    /// reused when it still matches (and extended with templates added since); otherwise it is
    /// rebuilt and the cache rewritten, so the graph always follows the database.
    pub fn searcher(&self, kind: IndexKind) -> Result<Searcher> {
        // One read transaction, so templates and names come from the same snapshot even while
        // another process enrolls.
        self.conn
            .execute_batch("BEGIN DEFERRED")
            .map_err(self.err())?;
        let read = (|| Ok((self.load_matrix()?, self.people()?)))();
        let end = self
            .conn
            .execute_batch(if read.is_ok() { "COMMIT" } else { "ROLLBACK" });
        let (matrix, people) = read?;
        end.map_err(self.err())?;
        let hnsw = if kind.wants_hnsw(matrix.len()) {
            Some(self.hnsw_for(&matrix)?)
        } else {
            None
        };
        Ok(Searcher::assemble(matrix, people, hnsw))
    }

    fn hnsw_for(&self, matrix: &TemplateMatrix) -> Result<Hnsw> {
        let cached: Option<(i64, i64, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT template_count, max_template_id, data FROM hnsw_cache WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(self.err())?;
        if let Some((count, max_id, data)) = cached {
            let still: i64 = self
                .conn
                .query_row(
                    "SELECT count(*) FROM templates WHERE id <= ?1",
                    [max_id],
                    |r| r.get(0),
                )
                .map_err(self.err())?;
            // Ids only grow, so the cached rows are the first `count` rows of the matrix exactly
            // when none of them was removed.
            let covers_prefix = still == count
                && (count as usize) <= matrix.len()
                && (count == 0 || matrix.template_id(count as usize - 1) == max_id);
            if covers_prefix {
                if let Ok(mut graph) = Hnsw::from_bytes(&data) {
                    if graph.len() == count as usize {
                        if graph.len() < matrix.len() {
                            graph.extend(matrix);
                            self.save_hnsw(&graph, matrix);
                        }
                        return Ok(graph);
                    }
                }
            }
        }
        let graph = Hnsw::build(matrix, HnswParams::default());
        self.save_hnsw(&graph, matrix);
        Ok(graph)
    }

    /// Best effort: a read-only or busy file only costs a rebuild next time.
    fn save_hnsw(&self, graph: &Hnsw, matrix: &TemplateMatrix) {
        let max_id = if matrix.is_empty() {
            0
        } else {
            matrix.template_id(matrix.len() - 1)
        };
        let _ = self.conn.execute(
            "INSERT OR REPLACE INTO hnsw_cache (id, template_count, max_template_id, data) VALUES (1, ?1, ?2, ?3)",
            params![matrix.len() as i64, max_id, graph.to_bytes()],
        );
    }

    /// The whole gallery as a portable value.
    pub fn export(&self) -> Result<GalleryExport> {
        let mut people = Vec::new();
        for p in self.people()? {
            people.push(ExportPerson {
                templates: self.templates_of(p.id)?,
                name: p.name,
                created_at: p.created_at,
            });
        }
        Ok(GalleryExport {
            format: "visage-gallery".into(),
            version: SCHEMA_VERSION,
            manifest_id: self.manifest_id.clone(),
            threshold: self.threshold()?,
            people,
        })
    }

    /// Adds everyone in `export` in one transaction. Refused, with nothing written, when the
    /// export comes from other models or names someone already enrolled. An empty gallery also
    /// takes the export's τ. Returns the number of people added.
    pub fn import(&mut self, export: &GalleryExport) -> Result<usize> {
        if export.format != "visage-gallery" || export.version != SCHEMA_VERSION {
            return Err(GalleryError::InvalidExport(format!(
                "format {:?} version {} (expected \"visage-gallery\" version {SCHEMA_VERSION})",
                export.format, export.version
            )));
        }
        self.check_manifest(&export.manifest_id)?;
        let mut clashes = Vec::new();
        for p in &export.people {
            check_name(&p.name)?;
            if self.contains(&p.name)? {
                clashes.push(p.name.clone());
            }
            if p.templates
                .iter()
                .any(|t| t.encoding.iter().any(|v| !v.is_finite()))
            {
                return Err(GalleryError::InvalidEncoding);
            }
        }
        if !clashes.is_empty() {
            return Err(GalleryError::PersonExists(clashes.join("\", \"")));
        }
        let was_empty = self.people()?.is_empty();
        if was_empty && !(export.threshold.is_finite() && export.threshold > 0.0) {
            return Err(GalleryError::InvalidThreshold(export.threshold));
        }
        let (tx, path) = self.write_transaction()?;
        let err = |e| GalleryError::sqlite(&path, e);
        for p in &export.people {
            tx.execute(
                "INSERT INTO people (name, created_at) VALUES (?1, ?2)",
                params![p.name.trim(), p.created_at],
            )
            .map_err(|e| match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::ConstraintViolation) => {
                    GalleryError::PersonExists(p.name.clone())
                }
                _ => GalleryError::sqlite(&path, e),
            })?;
            let id = tx.last_insert_rowid();
            insert_templates(
                &tx,
                id,
                p.templates.iter().map(|t| {
                    (
                        &t.encoding,
                        t.image_sha256.as_str(),
                        t.rect,
                        t.source.as_deref(),
                        t.created_at,
                    )
                }),
            )
            .map_err(err)?;
        }
        if was_empty {
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'threshold'",
                [export.threshold.to_string()],
            )
            .map_err(err)?;
        }
        bump_generation(&tx).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(export.people.len())
    }
}

/// Counts one more change in `meta.generation` (inside the writer's transaction).
fn bump_generation(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('generation', '1')
         ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
        [],
    )
}

type TemplateRow<'a> = (&'a Encoding, &'a str, [i64; 4], Option<&'a str>, i64);

fn insert_templates<'a>(
    conn: &Connection,
    person_id: i64,
    rows: impl Iterator<Item = TemplateRow<'a>>,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO templates (person_id, encoding, image_sha256, box_left, box_top, box_right, box_bottom, source, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (encoding, sha, r, source, created_at) in rows {
        stmt.execute(params![
            person_id,
            encoding_to_blob(encoding),
            sha,
            r[0],
            r[1],
            r[2],
            r[3],
            source,
            created_at
        ])?;
    }
    Ok(())
}

/// One candidate identity for a query face.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// Person id.
    pub person_id: i64,
    /// Person name.
    pub name: String,
    /// **Euclidean** distance from the query to this person's nearest template (comparable
    /// with τ).
    pub distance: f32,
    /// The nearest template's id.
    pub template_id: i64,
}

/// Templates loaded for searching, with an optional HNSW graph over them.
pub struct Searcher {
    matrix: TemplateMatrix,
    hnsw: Option<Hnsw>,
    names: HashMap<i64, String>,
    max_per_person: usize,
    ef_search: usize,
}

impl Searcher {
    /// A searcher over `matrix`, naming rows from `people`.
    pub(crate) fn assemble(
        matrix: TemplateMatrix,
        people: Vec<Person>,
        hnsw: Option<Hnsw>,
    ) -> Self {
        let names: HashMap<i64, String> = people.into_iter().map(|p| (p.id, p.name)).collect();
        let mut per_person: HashMap<i64, usize> = HashMap::new();
        for i in 0..matrix.len() {
            *per_person.entry(matrix.person_id(i)).or_default() += 1;
        }
        let max_per_person = per_person.values().copied().max().unwrap_or(1);
        Searcher {
            matrix,
            hnsw,
            names,
            max_per_person,
            ef_search: DEFAULT_EF_SEARCH,
        }
    }

    /// Number of templates searched.
    pub fn len(&self) -> usize {
        self.matrix.len()
    }

    /// Whether there is nothing to search.
    pub fn is_empty(&self) -> bool {
        self.matrix.is_empty()
    }

    /// Whether queries go through the HNSW graph (approximate) rather than an exact scan.
    pub fn uses_hnsw(&self) -> bool {
        self.hnsw.is_some()
    }

    /// Sets the HNSW candidate list length (ignored by exact search).
    pub fn set_ef_search(&mut self, ef: usize) {
        self.ef_search = ef.max(1);
    }

    /// The `k` nearest **people** to `query`, nearest first, each at the Euclidean distance of
    /// their closest template.
    pub fn identify(&self, query: &Encoding, k: usize) -> Vec<Candidate> {
        if k == 0 || self.matrix.is_empty() {
            return Vec::new();
        }
        // Enough rows that k distinct people are among them even if every nearer row belongs
        // to someone already listed.
        let rows = (k * self.max_per_person).min(self.matrix.len());
        let hits = match &self.hnsw {
            Some(g) => g.search(&self.matrix, query, rows, self.ef_search.max(rows)),
            None => self.matrix.exact_search(query, rows),
        };
        let mut out: Vec<Candidate> = Vec::with_capacity(k);
        for h in hits {
            let person_id = self.matrix.person_id(h.row as usize);
            if out.iter().any(|c| c.person_id == person_id) {
                continue;
            }
            out.push(Candidate {
                person_id,
                name: self.names.get(&person_id).cloned().unwrap_or_default(),
                distance: h.squared_distance.max(0.0).sqrt(),
                template_id: self.matrix.template_id(h.row as usize),
            });
            if out.len() == k {
                break;
            }
        }
        out
    }
}

/// Serialises encodings as plain JSON arrays of 128 numbers.
mod encoding_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::search::{Encoding, DIM};

    pub fn serialize<S: Serializer>(e: &Encoding, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(e.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Encoding, D::Error> {
        let v = Vec::<f32>::deserialize(d)?;
        v.try_into().map_err(|v: Vec<f32>| {
            serde::de::Error::custom(format!(
                "an encoding has {} values, expected {DIM}",
                v.len()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(seed: f32) -> NewTemplate {
        let mut encoding = [0.0; DIM];
        for (i, v) in encoding.iter_mut().enumerate() {
            *v = ((i as f32 * 0.37 + seed).sin()) * 0.1;
        }
        NewTemplate {
            encoding,
            image_sha256: format!("{:064x}", seed as u64),
            rect: [1, 2, 3, 4],
            source: Some(format!("img{seed}.jpg")),
        }
    }

    #[test]
    fn enroll_list_show_rename_remove() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/g.sqlite");
        let mut g = Gallery::open(&path, "m1").unwrap();
        assert_eq!(g.threshold().unwrap(), DEFAULT_THRESHOLD);
        let e = g
            .enroll("Ada", &[template(1.0), template(2.0)], EnrollMode::New)
            .unwrap();
        assert!(e.created);
        assert!(matches!(
            g.enroll("Ada", &[template(3.0)], EnrollMode::New),
            Err(GalleryError::PersonExists(_))
        ));
        g.enroll("Ada", &[template(3.0)], EnrollMode::Append)
            .unwrap();
        g.enroll("Bob", &[template(10.0)], EnrollMode::New).unwrap();
        let people = g.people().unwrap();
        assert_eq!(
            people
                .iter()
                .map(|p| (p.name.as_str(), p.templates))
                .collect::<Vec<_>>(),
            [("Ada", 3), ("Bob", 1)]
        );
        let (p, t) = g.person("Ada").unwrap();
        assert_eq!(p.templates, 3);
        assert_eq!(t[0].encoding, template(1.0).encoding);
        assert_eq!(t[0].rect, [1, 2, 3, 4]);
        g.rename("Ada", "Ada L").unwrap();
        assert!(matches!(
            g.rename("Nobody", "X"),
            Err(GalleryError::UnknownPerson(_))
        ));
        assert!(matches!(
            g.rename("Bob", "Ada L"),
            Err(GalleryError::PersonExists(_))
        ));
        assert_eq!(g.remove("Ada L").unwrap(), 3);
        assert!(matches!(
            g.remove("Ada L"),
            Err(GalleryError::UnknownPerson(_))
        ));
        assert_eq!(g.template_count().unwrap(), 1);
        assert!(matches!(
            g.enroll("  ", &[template(1.0)], EnrollMode::New),
            Err(GalleryError::InvalidName(_))
        ));
    }

    #[test]
    fn other_manifest_is_refused_and_threshold_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.sqlite");
        let mut g = Gallery::open(&path, "m1").unwrap();
        g.set_threshold(0.55).unwrap();
        assert!(g.set_threshold(f32::NAN).is_err());
        drop(g);
        let err = Gallery::open(&path, "m2").err().expect("refused");
        assert!(matches!(err, GalleryError::ManifestMismatch { .. }));
        assert!(err.to_string().contains("m1") && err.to_string().contains("m2"));
        let g = Gallery::open_existing(&path).unwrap();
        assert_eq!(g.threshold().unwrap(), 0.55);
        assert_eq!(g.manifest_id(), "m1");
    }

    #[test]
    fn damaged_and_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.sqlite");
        std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
        let err = Gallery::open(&garbage, "m1").err().expect("refused");
        assert!(matches!(err, GalleryError::Damaged { .. }), "{err}");
        assert_eq!(
            std::fs::read(&garbage).unwrap(),
            vec![0x5a; 8192],
            "nothing written"
        );

        let foreign = dir.path().join("foreign.sqlite");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE t (x INTEGER)")
            .unwrap();
        assert!(matches!(
            Gallery::open(&foreign, "m1"),
            Err(GalleryError::Damaged { .. })
        ));
        assert!(matches!(
            Gallery::open_existing(&dir.path().join("missing.sqlite")),
            Err(GalleryError::NotFound { .. })
        ));
    }

    #[test]
    fn export_import_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Gallery::open(&dir.path().join("a.sqlite"), "m1").unwrap();
        a.set_threshold(0.5).unwrap();
        a.enroll("Ada", &[template(1.0), template(2.0)], EnrollMode::New)
            .unwrap();
        a.enroll("Bob", &[template(3.0)], EnrollMode::New).unwrap();
        let export = a.export().unwrap();
        let json = serde_json::to_string(&export).unwrap();
        let back: GalleryExport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, export);
        let mut b = Gallery::open(&dir.path().join("b.sqlite"), "m1").unwrap();
        assert_eq!(b.import(&back).unwrap(), 2);
        assert_eq!(b.threshold().unwrap(), 0.5);
        assert_eq!(
            b.person("Ada").unwrap().1[1].encoding,
            template(2.0).encoding
        );
        // A second import clashes on both names and writes nothing.
        assert!(matches!(
            b.import(&back),
            Err(GalleryError::PersonExists(_))
        ));
        assert_eq!(b.template_count().unwrap(), 3);
        let mut c = Gallery::open(&dir.path().join("c.sqlite"), "m2").unwrap();
        assert!(matches!(
            c.import(&back),
            Err(GalleryError::ManifestMismatch { .. })
        ));
    }

    #[test]
    fn searcher_identifies_people_exact_and_hnsw_and_cache_follows_writes() {
        let dir = tempfile::tempdir().unwrap();
        let mut g = Gallery::open(&dir.path().join("g.sqlite"), "m1").unwrap();
        for p in 0..40 {
            let ts: Vec<NewTemplate> = (0..3)
                .map(|t| template(p as f32 * 10.0 + t as f32 * 0.01))
                .collect();
            g.enroll(&format!("p{p}"), &ts, EnrollMode::New).unwrap();
        }
        let query = template(70.0).encoding;
        for kind in [IndexKind::Exact, IndexKind::Hnsw] {
            let s = g.searcher(kind).unwrap();
            assert_eq!(s.uses_hnsw(), kind == IndexKind::Hnsw);
            let c = s.identify(&query, 3);
            assert_eq!(c.len(), 3);
            assert_eq!(c[0].name, "p7");
            assert!(c[0].distance < 1e-3);
            assert_ne!(c[1].person_id, c[0].person_id);
            assert!(c[1].distance >= c[0].distance);
        }
        // Added and removed people are seen by the cached graph.
        g.enroll("late", &[template(500.0)], EnrollMode::New)
            .unwrap();
        let s = g.searcher(IndexKind::Hnsw).unwrap();
        assert_eq!(s.len(), 121);
        assert_eq!(s.identify(&template(500.0).encoding, 1)[0].name, "late");
        g.remove("p7").unwrap();
        let s = g.searcher(IndexKind::Hnsw).unwrap();
        assert_eq!(s.len(), 118);
        assert_ne!(s.identify(&query, 1)[0].name, "p7");
        let empty = Gallery::open(&dir.path().join("e.sqlite"), "m1").unwrap();
        assert!(empty
            .searcher(IndexKind::Auto)
            .unwrap()
            .identify(&query, 1)
            .is_empty());
    }
}
