//! Encodings cached on disk, so that re-running an evaluation skips the face pipeline.
//!
//! One SQLite table keyed by the image's canonical path, its size and modification time, and the
//! encoder's key (models' manifest id, face-choice policy and the build of the running code): any
//! change to the file, the models, the way the face is chosen or the code misses the cache instead
//! of returning a stale encoding.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use rusqlite::{params, Connection, OptionalExtension};
use visage_gallery::{Encoding, DIM};

use crate::EvalError;

/// What the pipeline produced for one image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageEncoding {
    /// The chosen face's 128-d encoding; `None` when no face could be encoded.
    pub encoding: Option<Encoding>,
    /// Whether the detector found a face (false: none, or the protocol's fallback box was used).
    pub face_found: bool,
}

/// The cache file.
pub struct EncodingCache {
    conn: Connection,
    path: PathBuf,
}

/// The parts of an image's identity that the cache keys on.
fn file_key(image: &Path) -> Option<(String, i64, i64)> {
    let canonical = image.canonicalize().ok()?;
    let meta = std::fs::metadata(&canonical).ok()?;
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_nanos() as i64;
    Some((
        canonical.to_string_lossy().into_owned(),
        meta.len() as i64,
        mtime,
    ))
}

impl EncodingCache {
    /// Opens (or creates, with its directory) the cache at `path`.
    pub fn open(path: &Path) -> Result<Self, EvalError> {
        let err = |source| EvalError::Cache {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| EvalError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(err)?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            .map_err(err)?;
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS encodings (
                 path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
                 key TEXT NOT NULL, face_found INTEGER NOT NULL,
                 encoding BLOB CHECK (encoding IS NULL OR length(encoding) = {}),
                 PRIMARY KEY (path, key));",
            DIM * 4
        ))
        .map_err(err)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The cached result for `image` under `key` (manifest id and policy), if still valid.
    pub fn get(&self, image: &Path, key: &str) -> Option<ImageEncoding> {
        let (path, size, mtime) = file_key(image)?;
        let row: Option<(i64, i64, bool, Option<Vec<u8>>)> = self
            .conn
            .query_row(
                "SELECT size, mtime_ns, face_found, encoding FROM encodings WHERE path = ?1 AND key = ?2",
                params![path, key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .ok()
            .flatten();
        let (s, m, face_found, blob) = row?;
        if s != size || m != mtime {
            return None;
        }
        let encoding = match blob {
            None => None,
            Some(b) if b.len() == DIM * 4 => {
                let mut e = [0.0f32; DIM];
                for (v, c) in e.iter_mut().zip(b.chunks_exact(4)) {
                    *v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
                Some(e)
            }
            Some(_) => return None,
        };
        Some(ImageEncoding {
            encoding,
            face_found,
        })
    }

    /// Stores results in one transaction (images that vanished meanwhile are skipped).
    pub fn put_many(
        &mut self,
        entries: &[(&Path, ImageEncoding)],
        key: &str,
    ) -> Result<(), EvalError> {
        let path = self.path.clone();
        let err = |source| EvalError::Cache {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO encodings (path, size, mtime_ns, key, face_found, encoding)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(err)?;
            for (image, value) in entries {
                let Some((p, size, mtime)) = file_key(image) else {
                    continue;
                };
                let blob: Option<Vec<u8>> = value
                    .encoding
                    .map(|e| e.iter().flat_map(|v| v.to_le_bytes()).collect());
                stmt.execute(params![p, size, mtime, key, value.face_found, blob])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_invalidation() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("a.jpg");
        std::fs::write(&img, b"abc").unwrap();
        let mut cache = EncodingCache::open(&dir.path().join("c/cache.sqlite")).unwrap();
        let value = ImageEncoding {
            encoding: Some([0.25; DIM]),
            face_found: true,
        };
        let none = ImageEncoding {
            encoding: None,
            face_found: false,
        };
        let other = dir.path().join("b.jpg");
        std::fs::write(&other, b"x").unwrap();
        cache
            .put_many(&[(&img, value), (&other, none)], "m1/p")
            .unwrap();
        assert_eq!(cache.get(&img, "m1/p"), Some(value));
        assert_eq!(cache.get(&other, "m1/p"), Some(none));
        assert_eq!(cache.get(&img, "m2/p"), None, "other models miss");
        std::fs::write(&img, b"abcd").unwrap();
        assert_eq!(cache.get(&img, "m1/p"), None, "a changed file misses");
        assert_eq!(cache.get(&dir.path().join("missing.jpg"), "m1/p"), None);
    }
}
