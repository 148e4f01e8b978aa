//! API keys of the HTTP service, kept beside the people they guard so that every service
//! instance sharing a gallery shares its keys. Only the SHA-256 of a key is stored: a copy of
//! the database does not give anyone a working key.
//!
//! Table `api_keys(id, name, key_sha256 UNIQUE, scopes, created_at, revoked_at)`; `scopes` is a
//! comma-separated list of [`Scope`] names, times are Unix seconds (UTC).

use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::GalleryError;
use crate::store::{now, Gallery};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Identify faces and verify pairs (read-only use of the gallery).
    Identify,
    /// Enroll, list, show, rename and remove people.
    Manage,
}

impl Scope {
    /// Every scope, in a fixed order.
    pub const ALL: [Scope; 2] = [Scope::Identify, Scope::Manage];

    /// The scope's name as stored and as typed on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Identify => "identify",
            Scope::Manage => "manage",
        }
    }

    /// Parses a scope name (`identify` or `manage`).
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL
            .into_iter()
            .find(|s| s.as_str() == name.trim().to_ascii_lowercase())
    }
}

/// A stored key (without its secret, which is never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    /// Key id (for `visage keys revoke`).
    pub id: i64,
    /// A label saying who or what holds the key.
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// When it was made, Unix seconds (UTC).
    pub created_at: i64,
    /// When it was revoked, Unix seconds (UTC); revoked keys are refused.
    pub revoked_at: Option<i64>,
}

impl ApiKey {
    /// Whether the key is live and holds `scope`.
    pub fn allows(&self, scope: Scope) -> bool {
        self.revoked_at.is_none() && self.scopes.contains(&scope)
    }
}

/// A key just made: the secret is shown once, then only its hash remains.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedKey {
    /// The secret to hand to the client (`vsk_` and 64 hex digits: 256 random bits).
    pub secret: String,
    /// What was stored.
    pub key: ApiKey,
}

impl IssuedKey {
    /// The key just stored as row `id` (not revoked), with its secret to hand out once;
    /// `created_at` in seconds since the Unix epoch.
    pub(crate) fn stored(
        secret: String,
        id: i64,
        name: String,
        scope_text: &str,
        created_at: i64,
    ) -> Self {
        Self {
            secret,
            key: ApiKey {
                id,
                name,
                scopes: parse_scopes(scope_text),
                created_at,
                revoked_at: None,
            },
        }
    }
}

/// A new random secret: 256 bits from the operating system's generator, so a plain SHA-256
/// (no slow password hash) is enough to store it.
pub fn new_secret() -> Result<String, GalleryError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| GalleryError::InvalidKey(format!("no random numbers available: {e}")))?;
    Ok(format!("vsk_{}", hex(&bytes)))
}

/// Lower-case hex SHA-256 of a secret, as stored.
pub fn hash_secret(secret: &str) -> String {
    hex(&Sha256::digest(secret.trim().as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a new key's label and scopes; returns the trimmed label and the scopes as stored.
pub(crate) fn check_new_key(
    name: &str,
    scopes: &[Scope],
) -> Result<(String, String), GalleryError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(GalleryError::InvalidKey(format!(
            "invalid key name {name:?}: 1 to 200 characters, without control characters"
        )));
    }
    if scopes.is_empty() {
        return Err(GalleryError::InvalidKey(
            "a key needs at least one scope (identify, manage)".into(),
        ));
    }
    let text: Vec<&str> = Scope::ALL
        .into_iter()
        .filter(|s| scopes.contains(s))
        .map(Scope::as_str)
        .collect();
    Ok((name.to_string(), text.join(",")))
}

/// Scopes from their stored text; unknown names (from a newer Visage) grant nothing.
pub(crate) fn parse_scopes(text: &str) -> Vec<Scope> {
    text.split(',').filter_map(Scope::parse).collect()
}

const SQLITE_KEYS_TABLE: &str = "CREATE TABLE IF NOT EXISTS api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    key_sha256 TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER)";

type KeyRow = (i64, String, String, i64, Option<i64>);

fn to_key((id, name, scopes, created_at, revoked_at): KeyRow) -> ApiKey {
    ApiKey {
        id,
        name,
        scopes: parse_scopes(&scopes),
        created_at,
        revoked_at,
    }
}

impl Gallery {
    /// Makes a key named `name` with `scopes`; the returned secret is not stored anywhere.
    pub fn create_key(&mut self, name: &str, scopes: &[Scope]) -> Result<IssuedKey, GalleryError> {
        let (name, scope_text) = check_new_key(name, scopes)?;
        let secret = new_secret()?;
        let created_at = now();
        let path = self.path().to_path_buf();
        let err = |e| GalleryError::sqlite(&path, e);
        self.conn.execute_batch(SQLITE_KEYS_TABLE).map_err(err)?;
        self.conn
            .execute(
                "INSERT INTO api_keys (name, key_sha256, scopes, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![name, hash_secret(&secret), scope_text, created_at],
            )
            .map_err(err)?;
        let id = self.conn.last_insert_rowid();
        Ok(IssuedKey::stored(secret, id, name, &scope_text, created_at))
    }

    fn has_keys_table(&self) -> Result<bool, GalleryError> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'api_keys'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| GalleryError::sqlite(self.path(), e))?;
        Ok(n > 0)
    }

    /// Every key, revoked ones included, oldest first.
    pub fn keys(&self) -> Result<Vec<ApiKey>, GalleryError> {
        if !self.has_keys_table()? {
            return Ok(Vec::new());
        }
        let err = |e| GalleryError::sqlite(self.path(), e);
        let mut stmt = self
            .conn
            .prepare("SELECT id, name, scopes, created_at, revoked_at FROM api_keys ORDER BY id")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .map_err(err)?;
        let rows: Vec<KeyRow> = rows.collect::<rusqlite::Result<_>>().map_err(err)?;
        Ok(rows.into_iter().map(to_key).collect())
    }

    /// The key whose secret is `secret`, if any (revoked keys included: check
    /// [`ApiKey::allows`]).
    pub fn key_for_secret(&self, secret: &str) -> Result<Option<ApiKey>, GalleryError> {
        if !self.has_keys_table()? {
            return Ok(None);
        }
        let row: Option<KeyRow> = self
            .conn
            .query_row(
                "SELECT id, name, scopes, created_at, revoked_at FROM api_keys WHERE key_sha256 = ?1",
                [hash_secret(secret)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()
            .map_err(|e| GalleryError::sqlite(self.path(), e))?;
        Ok(row.map(to_key))
    }

    /// Revokes key `id` (kept, marked revoked); an unknown id is an error.
    pub fn revoke_key(&mut self, id: i64) -> Result<(), GalleryError> {
        if !self.has_keys_table()? {
            return Err(GalleryError::UnknownKey(id));
        }
        let changed = self
            .conn
            .execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?1) WHERE id = ?2",
                params![now(), id],
            )
            .map_err(|e| GalleryError::sqlite(self.path(), e))?;
        if changed == 0 {
            return Err(GalleryError::UnknownKey(id));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stored_hashed_scoped_and_revocable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.sqlite");
        let mut g = Gallery::open(&path, "m1").unwrap();
        assert!(g.keys().unwrap().is_empty());
        assert!(g.key_for_secret("vsk_nothing").unwrap().is_none());
        let door = g.create_key("door 1", &[Scope::Identify]).unwrap();
        let admin = g
            .create_key("admin", &[Scope::Manage, Scope::Identify])
            .unwrap();
        assert_eq!(door.secret.len(), 4 + 64);
        assert_ne!(door.secret, admin.secret);
        assert_eq!(admin.key.scopes, [Scope::Identify, Scope::Manage]);
        let found = g.key_for_secret(&door.secret).unwrap().unwrap();
        assert!(found.allows(Scope::Identify) && !found.allows(Scope::Manage));
        // The secret itself is nowhere in the file.
        drop(g);
        let bytes = std::fs::read(&path).unwrap();
        let needle = door.secret.as_bytes();
        assert!(!bytes.windows(needle.len()).any(|w| w == needle));
        let mut g = Gallery::open(&path, "m1").unwrap();
        g.revoke_key(door.key.id).unwrap();
        assert!(!g
            .key_for_secret(&door.secret)
            .unwrap()
            .unwrap()
            .allows(Scope::Identify));
        assert!(matches!(
            g.revoke_key(999),
            Err(GalleryError::UnknownKey(999))
        ));
        assert!(g.create_key("x", &[]).is_err());
        assert_eq!(g.keys().unwrap().len(), 2);
        assert_eq!(Scope::parse(" Manage"), Some(Scope::Manage));
        assert_eq!(Scope::parse("root"), None);
    }
}
