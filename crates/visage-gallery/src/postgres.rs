//! The gallery on a PostgreSQL server: the same tables, rules and errors as the SQLite store
//! ([`crate::store`]), so several service instances can share one gallery.
//!
//! Schema (version [`SCHEMA_VERSION`]): `meta(key, value)`, `people(id, name UNIQUE,
//! created_at)`, `templates(id BIGSERIAL, person_id → people ON DELETE CASCADE, encoding BYTEA of
//! 128 little-endian f32, image_sha256, box_left/top/right/bottom, source, created_at)` and
//! `api_keys` as in [`crate::keys`]. Every write is one transaction that also counts one more
//! `meta.generation`, which readers poll to keep their in-memory search index in step. The HNSW
//! graph is built in memory (not cached in the database).

use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use postgres::config::Host;
use postgres::error::SqlState;
use postgres::{Client, Config, IsolationLevel, NoTls, Transaction};

use crate::error::GalleryError;
use crate::hnsw::{Hnsw, HnswParams};
use crate::keys::{check_new_key, hash_secret, new_secret, parse_scopes, ApiKey, IssuedKey, Scope};
use crate::search::{TemplateMatrix, DIM};
use crate::store::{
    blob_to_encoding, check_enrollment, check_name, encoding_to_blob, now, EnrollMode, Enrolled,
    IndexKind, NewTemplate, Person, Searcher, Template, APPLICATION_ID, DEFAULT_THRESHOLD,
    SCHEMA_VERSION,
};

type Result<T> = std::result::Result<T, GalleryError>;

/// How long connecting to the server may take before the gallery gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `location` names a PostgreSQL database (`postgres://` or `postgresql://`) rather than
/// an SQLite file.
pub fn is_postgres_url(location: &str) -> bool {
    let l = location.trim_start().to_ascii_lowercase();
    l.starts_with("postgres://") || l.starts_with("postgresql://")
}

/// A gallery in a PostgreSQL database.
pub struct PgGallery {
    /// Always `Some` but while being dropped.
    client: Mutex<Option<Client>>,
    config: Config,
    location: String,
    manifest_id: String,
}

/// `postgres://user@host:port/db`, without the password, for messages.
fn redacted(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

fn schema_sql() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS people (
             id BIGSERIAL PRIMARY KEY,
             name TEXT NOT NULL UNIQUE,
             created_at BIGINT NOT NULL);
         CREATE TABLE IF NOT EXISTS templates (
             id BIGSERIAL PRIMARY KEY,
             person_id BIGINT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
             encoding BYTEA NOT NULL CHECK (octet_length(encoding) = {bytes}),
             image_sha256 TEXT NOT NULL,
             box_left BIGINT NOT NULL, box_top BIGINT NOT NULL,
             box_right BIGINT NOT NULL, box_bottom BIGINT NOT NULL,
             source TEXT,
             created_at BIGINT NOT NULL);
         CREATE INDEX IF NOT EXISTS templates_person ON templates(person_id);
         CREATE TABLE IF NOT EXISTS api_keys (
             id BIGSERIAL PRIMARY KEY,
             name TEXT NOT NULL,
             key_sha256 TEXT NOT NULL UNIQUE,
             scopes TEXT NOT NULL,
             created_at BIGINT NOT NULL,
             revoked_at BIGINT);",
        bytes = DIM * 4
    )
}

/// The locked connection, present by construction.
struct ClientGuard<'a>(MutexGuard<'a, Option<Client>>);

impl Deref for ClientGuard<'_> {
    type Target = Client;

    fn deref(&self) -> &Client {
        self.0.as_ref().expect("connected by PgGallery::client")
    }
}

impl DerefMut for ClientGuard<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.0.as_mut().expect("connected by PgGallery::client")
    }
}

impl Drop for PgGallery {
    fn drop(&mut self) {
        // The synchronous client closes its connection by blocking on a runtime of its own,
        // which panics on a thread that drives an async runtime (a service shutting down), so
        // it is closed on a plain thread.
        let client = self
            .client
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(client) = client {
            let _ = std::thread::spawn(move || drop(client)).join();
        }
    }
}

fn bump_generation(tx: &mut Transaction<'_>) -> std::result::Result<u64, postgres::Error> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('generation', '1')
         ON CONFLICT (key) DO UPDATE SET value = (meta.value::BIGINT + 1)::TEXT",
        &[],
    )
}

fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

impl PgGallery {
    /// Connects to the gallery at `url` for the models `manifest_id`, creating its tables when
    /// the database has none. A gallery of other models is refused with
    /// [`GalleryError::ManifestMismatch`].
    pub fn open(url: &str, manifest_id: &str) -> Result<Self> {
        let gallery = Self::connect(url, Some(manifest_id))?;
        gallery.check_manifest(manifest_id)?;
        Ok(gallery)
    }

    /// Connects to an existing gallery whatever its models ([`GalleryError::NotFound`] when the
    /// database holds none).
    pub fn open_existing(url: &str) -> Result<Self> {
        Self::connect(url, None)
    }

    fn connect(url: &str, create_for: Option<&str>) -> Result<Self> {
        let mut config: Config = url.parse().map_err(|e| GalleryError::Postgres {
            location: "the --db URL".into(),
            source: e,
        })?;
        config.connect_timeout(CONNECT_TIMEOUT);
        let location = redacted(&config);
        let err = |e| GalleryError::Postgres {
            location: location.clone(),
            source: e,
        };
        let mut client = config.connect(NoTls).map_err(err)?;
        let mut tx = client.transaction().map_err(err)?;
        // Two instances starting on an empty database must not both create the schema.
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&i64::from(APPLICATION_ID)],
        )
        .map_err(err)?;
        let exists: bool = tx
            .query_one("SELECT to_regclass('meta') IS NOT NULL", &[])
            .map_err(err)?
            .get(0);
        let damaged = |detail: &str| GalleryError::Damaged {
            path: location.clone().into(),
            detail: detail.into(),
        };
        match (exists, create_for) {
            (false, None) => {
                return Err(GalleryError::NotFound {
                    path: location.clone().into(),
                })
            }
            (false, Some(manifest_id)) => {
                tx.batch_execute(&schema_sql()).map_err(err)?;
                let insert = "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING";
                for (k, v) in [
                    ("schema_version", SCHEMA_VERSION.to_string()),
                    ("manifest_id", manifest_id.to_string()),
                    ("threshold", DEFAULT_THRESHOLD.to_string()),
                    ("created_at", now().to_string()),
                ] {
                    tx.execute(insert, &[&k, &v]).map_err(err)?;
                }
            }
            (true, _) => {}
        }
        let meta = |tx: &mut Transaction<'_>, key: &str| -> Result<Option<String>> {
            Ok(tx
                .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
                .map_err(err)?
                .map(|r| r.get(0)))
        };
        let version = meta(&mut tx, "schema_version")?
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(|| damaged("its schema version is missing"))?;
        if version != SCHEMA_VERSION {
            return Err(GalleryError::UnsupportedSchema {
                path: location.clone().into(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        let manifest_id =
            meta(&mut tx, "manifest_id")?.ok_or_else(|| damaged("its manifest id is missing"))?;
        tx.commit().map_err(err)?;
        Ok(Self {
            client: Mutex::new(Some(client)),
            config,
            location,
            manifest_id,
        })
    }

    /// The connection, opened again if the server dropped it (a restart, an idle timeout).
    fn client(&self) -> Result<ClientGuard<'_>> {
        let mut guard = self.client.lock().unwrap_or_else(|p| p.into_inner());
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = Some(self.config.connect(NoTls).map_err(self.err())?);
        }
        Ok(ClientGuard(guard))
    }

    fn err(&self) -> impl Fn(postgres::Error) -> GalleryError + '_ {
        move |source| GalleryError::Postgres {
            location: self.location.clone(),
            source,
        }
    }

    /// The server and database, without the password.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Manifest id of the models that made the gallery's encodings.
    pub fn manifest_id(&self) -> &str {
        &self.manifest_id
    }

    /// Refuses the gallery when its encodings come from models other than `manifest_id`.
    pub fn check_manifest(&self, manifest_id: &str) -> Result<()> {
        GalleryError::check_manifest(self.location.as_ref(), &self.manifest_id, manifest_id)
    }

    /// τ: the largest **Euclidean** distance between encodings still called the same person.
    pub fn threshold(&self) -> Result<f32> {
        let value: String = self
            .client()?
            .query_one("SELECT value FROM meta WHERE key = 'threshold'", &[])
            .map_err(self.err())?
            .get(0);
        value
            .parse::<f32>()
            .ok()
            .filter(|t| t.is_finite() && *t > 0.0)
            .ok_or_else(|| GalleryError::Damaged {
                path: self.location.clone().into(),
                detail: format!("its threshold {value:?} is not a distance"),
            })
    }

    /// Stores τ (a **Euclidean** distance).
    pub fn set_threshold(&mut self, threshold: f32) -> Result<()> {
        if !(threshold.is_finite() && threshold > 0.0) {
            return Err(GalleryError::InvalidThreshold(threshold));
        }
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(self.err())?;
        tx.execute(
            "UPDATE meta SET value = $1 WHERE key = 'threshold'",
            &[&threshold.to_string()],
        )
        .map_err(self.err())?;
        bump_generation(&mut tx).map_err(self.err())?;
        tx.commit().map_err(self.err())
    }

    /// A number that grows with every change to people, templates or τ, by any instance.
    pub fn generation(&self) -> Result<i64> {
        let row = self
            .client()?
            .query_opt("SELECT value FROM meta WHERE key = 'generation'", &[])
            .map_err(self.err())?;
        Ok(row
            .and_then(|r| r.get::<_, String>(0).parse().ok())
            .unwrap_or(0))
    }

    /// Stores `templates` for `name` in one transaction: all of them or, on any error, none.
    pub fn enroll(
        &mut self,
        name: &str,
        templates: &[NewTemplate],
        mode: EnrollMode,
    ) -> Result<Enrolled> {
        let name = check_enrollment(name, templates)?;
        let err = self.err();
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(&err)?;
        // ON CONFLICT keeps two instances enrolling the same new name at once from both
        // creating it: the second sees no row returned.
        let inserted = tx
            .query_opt(
                "INSERT INTO people (name, created_at) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING RETURNING id",
                &[&name, &now()],
            )
            .map_err(&err)?;
        let (person_id, created) = match (inserted, mode) {
            (Some(row), _) => (row.get::<_, i64>(0), true),
            (None, EnrollMode::New) => return Err(GalleryError::PersonExists(name.to_string())),
            (None, EnrollMode::Append) => (
                tx.query_one("SELECT id FROM people WHERE name = $1 FOR UPDATE", &[&name])
                    .map_err(&err)?
                    .get(0),
                false,
            ),
        };
        let stmt = tx
            .prepare(
                "INSERT INTO templates (person_id, encoding, image_sha256, box_left, box_top, box_right, box_bottom, source, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .map_err(&err)?;
        for t in templates {
            let r = t.rect;
            tx.execute(
                &stmt,
                &[
                    &person_id,
                    &encoding_to_blob(&t.encoding),
                    &t.image_sha256,
                    &r[0],
                    &r[1],
                    &r[2],
                    &r[3],
                    &t.source,
                    &now(),
                ],
            )
            .map_err(&err)?;
        }
        bump_generation(&mut tx).map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(Enrolled {
            person_id,
            created,
            templates_added: templates.len(),
        })
    }

    /// Everyone, by name (byte order, as SQLite sorts).
    pub fn people(&self) -> Result<Vec<Person>> {
        Self::people_in(&mut *self.client()?).map_err(self.err())
    }

    fn people_in(
        client: &mut impl postgres::GenericClient,
    ) -> std::result::Result<Vec<Person>, postgres::Error> {
        Ok(client
            .query(
                "SELECT p.id, p.name, p.created_at, count(t.id) FROM people p
                 LEFT JOIN templates t ON t.person_id = p.id
                 GROUP BY p.id ORDER BY p.name COLLATE \"C\"",
                &[],
            )?
            .into_iter()
            .map(|r| Person {
                id: r.get(0),
                name: r.get(1),
                created_at: r.get(2),
                templates: r.get::<_, i64>(3) as usize,
            })
            .collect())
    }

    /// Whether `name` is enrolled.
    pub fn contains(&self, name: &str) -> Result<bool> {
        Ok(self
            .client()?
            .query_opt("SELECT id FROM people WHERE name = $1", &[&name.trim()])
            .map_err(self.err())?
            .is_some())
    }

    /// One person and their templates, oldest first.
    pub fn person(&self, name: &str) -> Result<(Person, Vec<Template>)> {
        let err = self.err();
        let mut client = self.client()?;
        let row = client
            .query_opt(
                "SELECT id, name, created_at FROM people WHERE name = $1",
                &[&name.trim()],
            )
            .map_err(&err)?
            .ok_or_else(|| GalleryError::UnknownPerson(name.to_string()))?;
        let id: i64 = row.get(0);
        let mut templates = Vec::new();
        for r in client
            .query(
                "SELECT id, encoding, image_sha256, box_left, box_top, box_right, box_bottom, source, created_at
                 FROM templates WHERE person_id = $1 ORDER BY id",
                &[&id],
            )
            .map_err(&err)?
        {
            templates.push(Template {
                id: r.get(0),
                encoding: blob_to_encoding(r.get(1)).ok_or_else(|| self.bad_blob())?,
                image_sha256: r.get(2),
                rect: [r.get(3), r.get(4), r.get(5), r.get(6)],
                source: r.get(7),
                created_at: r.get(8),
            });
        }
        Ok((
            Person {
                id,
                name: row.get(1),
                created_at: row.get(2),
                templates: templates.len(),
            },
            templates,
        ))
    }

    fn bad_blob(&self) -> GalleryError {
        GalleryError::Damaged {
            path: self.location.clone().into(),
            detail: "a template's encoding has the wrong size".into(),
        }
    }

    /// Renames a person; the new name must be free.
    pub fn rename(&mut self, old: &str, new: &str) -> Result<()> {
        let new = check_name(new)?;
        let err = self.err();
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(&err)?;
        let changed = tx
            .execute(
                "UPDATE people SET name = $1 WHERE name = $2",
                &[&new, &old.trim()],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    GalleryError::PersonExists(new.to_string())
                } else {
                    err(e)
                }
            })?;
        if changed == 0 {
            return Err(GalleryError::UnknownPerson(old.to_string()));
        }
        bump_generation(&mut tx).map_err(&err)?;
        tx.commit().map_err(&err)
    }

    /// Removes a person and their templates; returns how many templates went.
    pub fn remove(&mut self, name: &str) -> Result<usize> {
        let err = self.err();
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(&err)?;
        let id: i64 = tx
            .query_opt(
                "SELECT id FROM people WHERE name = $1 FOR UPDATE",
                &[&name.trim()],
            )
            .map_err(&err)?
            .ok_or_else(|| GalleryError::UnknownPerson(name.to_string()))?
            .get(0);
        let templates = tx
            .execute("DELETE FROM templates WHERE person_id = $1", &[&id])
            .map_err(&err)?;
        tx.execute("DELETE FROM people WHERE id = $1", &[&id])
            .map_err(&err)?;
        bump_generation(&mut tx).map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(templates as usize)
    }

    /// Number of stored templates.
    pub fn template_count(&self) -> Result<usize> {
        let n: i64 = self
            .client()?
            .query_one("SELECT count(*) FROM templates", &[])
            .map_err(self.err())?
            .get(0);
        Ok(n as usize)
    }

    /// A search structure over the current templates, read from one snapshot; with HNSW the
    /// graph is built in memory.
    pub fn searcher(&self, kind: IndexKind) -> Result<Searcher> {
        let err = self.err();
        let mut client = self.client()?;
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(&err)?;
        let rows = tx
            .query(
                "SELECT id, person_id, encoding FROM templates ORDER BY id",
                &[],
            )
            .map_err(&err)?;
        let mut matrix = TemplateMatrix::with_capacity(rows.len());
        for r in &rows {
            let e = blob_to_encoding(r.get(2)).ok_or_else(|| self.bad_blob())?;
            matrix.push(&e, r.get(0), r.get(1));
        }
        drop(rows);
        let people = Self::people_in(&mut tx).map_err(&err)?;
        tx.commit().map_err(&err)?;
        let hnsw = kind
            .wants_hnsw(matrix.len())
            .then(|| Hnsw::build(&matrix, HnswParams::default()));
        Ok(Searcher::assemble(matrix, people, hnsw))
    }

    /// Makes a key named `name` with `scopes`; the returned secret is not stored anywhere.
    pub fn create_key(&mut self, name: &str, scopes: &[Scope]) -> Result<IssuedKey> {
        let (name, scope_text) = check_new_key(name, scopes)?;
        let secret = new_secret()?;
        let created_at = now();
        let id: i64 = self
            .client()?
            .query_one(
                "INSERT INTO api_keys (name, key_sha256, scopes, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
                &[&name, &hash_secret(&secret), &scope_text, &created_at],
            )
            .map_err(self.err())?
            .get(0);
        Ok(IssuedKey::stored(secret, id, name, &scope_text, created_at))
    }

    fn key_from_row(r: &postgres::Row) -> ApiKey {
        ApiKey {
            id: r.get(0),
            name: r.get(1),
            scopes: parse_scopes(r.get(2)),
            created_at: r.get(3),
            revoked_at: r.get(4),
        }
    }

    /// Every key, revoked ones included, oldest first.
    pub fn keys(&self) -> Result<Vec<ApiKey>> {
        Ok(self
            .client()?
            .query(
                "SELECT id, name, scopes, created_at, revoked_at FROM api_keys ORDER BY id",
                &[],
            )
            .map_err(self.err())?
            .iter()
            .map(Self::key_from_row)
            .collect())
    }

    /// The key whose secret is `secret`, if any (check [`ApiKey::allows`]).
    pub fn key_for_secret(&self, secret: &str) -> Result<Option<ApiKey>> {
        Ok(self
            .client()?
            .query_opt(
                "SELECT id, name, scopes, created_at, revoked_at FROM api_keys WHERE key_sha256 = $1",
                &[&hash_secret(secret)],
            )
            .map_err(self.err())?
            .as_ref()
            .map(Self::key_from_row))
    }

    /// Revokes key `id`; an unknown id is an error.
    pub fn revoke_key(&mut self, id: i64) -> Result<()> {
        let changed = self
            .client()?
            .execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2",
                &[&now(), &id],
            )
            .map_err(self.err())?;
        if changed == 0 {
            return Err(GalleryError::UnknownKey(id));
        }
        Ok(())
    }
}
