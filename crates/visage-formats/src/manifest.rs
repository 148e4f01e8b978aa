//! The models manifest: every model file Visage uses, with its SHA-256, size, source and licence.
//! Models are never shipped inside Visage; they live in a models directory (the `--models` flag or
//! `VISAGE_MODELS`) and are checked against this manifest before use.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Environment variable that names the models directory.
pub const MODELS_ENV: &str = "VISAGE_MODELS";

/// One model file the manifest knows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelEntry {
    /// Short name used in messages and in `visage models`.
    pub name: String,
    /// Path of the file relative to the models directory.
    pub file: String,
    /// Lower-case hex SHA-256 of the file.
    pub sha256: String,
    /// Size of the file, in bytes.
    pub size: u64,
    /// Where the file comes from, in words.
    pub source: String,
    /// Where it can be downloaded from, when there is a direct address.
    pub url: Option<String>,
    /// SPDX licence identifier.
    pub license: String,
}

/// The set of models one version of Visage's face pipeline uses.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// Identifier of this model set; galleries record it so encodings from other models never mix.
    pub id: String,
    /// The command that fetches this set's files (named in the messages about missing files).
    #[serde(default = "default_fetch")]
    pub fetch: String,
    /// The files.
    pub models: Vec<ModelEntry>,
}

fn default_fetch() -> String {
    "visage models fetch".into()
}

/// What was found for one model file in a models directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ModelState {
    /// Present, with the expected size and SHA-256.
    Ok,
    /// Not there.
    Missing,
    /// Present but its size differs (truncated or another file).
    WrongSize {
        /// Size found, in bytes.
        found: u64,
    },
    /// Present with the right size but another SHA-256 (altered or corrupt).
    WrongHash {
        /// SHA-256 found, hex.
        found: String,
    },
    /// Present but unreadable.
    Unreadable {
        /// The operating system's message.
        error: String,
    },
}

/// The state of one model file.
#[derive(Debug, Clone, Serialize)]
pub struct ModelStatus {
    /// The manifest's entry.
    pub entry: ModelEntry,
    /// Full path looked at.
    pub path: PathBuf,
    /// What was found there.
    #[serde(flatten)]
    pub state: ModelState,
    /// The command that fetches the file (see [`Manifest::fetch`]).
    #[serde(skip)]
    pub fetch: String,
}

impl ModelStatus {
    /// One line for people: what is wrong and what to do.
    pub fn describe(&self) -> String {
        let p = self.path.display();
        match &self.state {
            ModelState::Ok => format!("{}: ok ({p})", self.entry.name),
            ModelState::Missing => format!(
                "{}: missing: {p} (expected {} bytes, SHA-256 {}; source: {}; run `{}`)",
                self.entry.name, self.entry.size, self.entry.sha256, self.entry.source, self.fetch
            ),
            ModelState::WrongSize { found } => format!(
                "{}: {p} has {found} bytes, expected {} (truncated or another file)",
                self.entry.name, self.entry.size
            ),
            ModelState::WrongHash { found } => format!(
                "{}: {p} has SHA-256 {found}, expected {} (altered or corrupt)",
                self.entry.name, self.entry.sha256
            ),
            ModelState::Unreadable { error } => {
                format!("{}: {p} cannot be read: {error}", self.entry.name)
            }
        }
    }
}

/// Why the models could not be used or fetched.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// No models directory was given and `VISAGE_MODELS` is not set.
    #[error("no models directory: pass --models DIR or set {MODELS_ENV}")]
    NoModelsDir,
    /// The manifest has no model of that name.
    #[error("the manifest has no model named {0:?}")]
    UnknownModel(String),
    /// Some files are missing or altered; one line each.
    #[error("models in {dir} are not usable: {}", problems.join("; "))]
    NotUsable {
        /// The models directory.
        dir: PathBuf,
        /// One line per file with a problem.
        problems: Vec<String>,
    },
    /// A fetch failed for one file.
    #[error("{file}: {message}")]
    Fetch {
        /// The file being fetched.
        file: String,
        /// What went wrong.
        message: String,
    },
}

impl Manifest {
    /// The manifest compiled into this version of Visage.
    pub fn builtin() -> Manifest {
        serde_json::from_str(include_str!("manifest.json"))
            .expect("the built-in manifest is valid JSON (checked by a unit test)")
    }

    /// The feed-forward style-transfer networks (`visage stylize`): a manifest of their own, so
    /// that face commands never require them and checking the face models never reads them.
    pub fn fast_style() -> Manifest {
        serde_json::from_str(include_str!("manifest_fast_style.json"))
            .expect("the fast-style manifest is valid JSON (checked by a unit test)")
    }

    /// The entry named `name`.
    pub fn entry(&self, name: &str) -> Result<&ModelEntry, ManifestError> {
        self.models
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| ManifestError::UnknownModel(name.to_string()))
    }

    /// Checks every file of the manifest in `dir` (size, then SHA-256).
    pub fn check(&self, dir: &Path) -> Vec<ModelStatus> {
        self.models
            .iter()
            .map(|e| check_entry(e, dir, &self.fetch))
            .collect()
    }

    /// Checks the named files and returns their paths, or one error listing every problem.
    pub fn require(&self, dir: &Path, names: &[&str]) -> Result<Vec<PathBuf>, ManifestError> {
        let mut paths = Vec::new();
        let mut problems = Vec::new();
        for name in names {
            let status = check_entry(self.entry(name)?, dir, &self.fetch);
            if status.state != ModelState::Ok {
                problems.push(status.describe());
            }
            paths.push(status.path);
        }
        if problems.is_empty() {
            Ok(paths)
        } else {
            Err(ManifestError::NotUsable {
                dir: dir.to_path_buf(),
                problems,
            })
        }
    }

    /// Copies (from a directory) or downloads (from an `http://` or `https://` base address) every
    /// file that is not already present and intact, verifying each before it is moved into place.
    /// Without `from`, each file's own `url` is used. Returns what was done, one line per file.
    pub fn fetch(&self, dir: &Path, from: Option<&str>) -> Result<Vec<String>, ManifestError> {
        let mut report = Vec::new();
        for entry in &self.models {
            if check_entry(entry, dir, &self.fetch).state == ModelState::Ok {
                report.push(format!("{}: already present", entry.name));
                continue;
            }
            let fail = |message: String| ManifestError::Fetch {
                file: entry.file.clone(),
                message,
            };
            let bytes = match from {
                Some(src) if is_url(src) => {
                    download(&format!("{}/{}", src.trim_end_matches('/'), entry.file))
                        .map_err(fail)?
                }
                Some(src) => {
                    let path = Path::new(src).join(&entry.file);
                    fs::read(&path)
                        .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?
                }
                None => match &entry.url {
                    Some(url) => download(url).map_err(fail)?,
                    None => {
                        return Err(fail(format!(
                            "has no download address ({}); use --from DIR_OR_URL",
                            entry.source
                        )))
                    }
                },
            };
            let found = hex_sha256(&bytes);
            if bytes.len() as u64 != entry.size || found != entry.sha256 {
                return Err(fail(format!(
                    "fetched {} bytes with SHA-256 {found}, expected {} bytes with {}; nothing written",
                    bytes.len(),
                    entry.size,
                    entry.sha256
                )));
            }
            write_atomically(&dir.join(&entry.file), &bytes).map_err(fail)?;
            report.push(format!("{}: fetched and verified", entry.name));
        }
        Ok(report)
    }
}

/// The models directory: the flag if given, else `VISAGE_MODELS`.
pub fn models_dir(flag: Option<&Path>) -> Result<PathBuf, ManifestError> {
    if let Some(dir) = flag {
        return Ok(dir.to_path_buf());
    }
    match std::env::var_os(MODELS_ENV) {
        Some(v) if !v.is_empty() => Ok(PathBuf::from(v)),
        _ => Err(ManifestError::NoModelsDir),
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

fn check_entry(entry: &ModelEntry, dir: &Path, fetch: &str) -> ModelStatus {
    let path = dir.join(&entry.file);
    let state = match fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ModelState::Missing,
        Err(e) => ModelState::Unreadable {
            error: e.to_string(),
        },
        Ok(meta) if meta.len() != entry.size => ModelState::WrongSize { found: meta.len() },
        Ok(_) => match sha256_file(&path) {
            Ok(found) if found == entry.sha256 => ModelState::Ok,
            Ok(found) => ModelState::WrongHash { found },
            Err(e) => ModelState::Unreadable {
                error: e.to_string(),
            },
        },
    };
    ModelStatus {
        entry: entry.clone(),
        path,
        state,
        fetch: fetch.to_string(),
    }
}

/// Lower-case hex SHA-256 of a file's bytes, read in 1 MiB blocks.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn hex_sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Largest model file fetch accepts over the network, in bytes.
const MAX_DOWNLOAD: u64 = 512 << 20;

fn download(url: &str) -> Result<Vec<u8>, String> {
    let response = ureq::get(url)
        .call()
        .map_err(|e| format!("download from {url} failed: {e}"))?;
    let mut body = Vec::new();
    response
        .into_body()
        .into_reader()
        .take(MAX_DOWNLOAD)
        .read_to_end(&mut body)
        .map_err(|e| format!("download from {url} broke off: {e}"))?;
    Ok(body)
}

/// Writes to a temporary file beside `path`, syncs, then renames: a reader never sees half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let parent = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let tmp = path.with_extension("partial");
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifest_parses_and_names_the_face_models() {
        let m = Manifest::builtin();
        for name in ["face-encoder", "landmarks-5", "hog-detector"] {
            let e = m.entry(name).unwrap();
            assert_eq!(e.sha256.len(), 64);
            assert!(e.size > 0);
        }
    }

    #[test]
    fn fast_style_manifest_is_separate_and_names_its_three_networks() {
        let m = Manifest::fast_style();
        assert_eq!(m.id, "fast-style-v1");
        assert_eq!(m.models.len(), 3);
        assert!(m.entry("multistyle26").is_ok());
        assert!(Manifest::builtin().entry("multistyle26").is_err());
        let err = m
            .require(Path::new("/nonexistent-models"), &["multistyle26"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("fast_style/multistyle26.onnx"), "{err}");
    }

    #[test]
    fn missing_directory_lists_every_file() {
        let m = Manifest::builtin();
        let err = m
            .require(
                Path::new("/nonexistent-models"),
                &["face-encoder", "hog-detector"],
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("face-encoder: missing"), "{err}");
        assert!(err.contains("hog-detector: missing"), "{err}");
    }
}
