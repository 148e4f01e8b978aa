//! Shared helpers for the tests that compare Visage with the peer's golden outputs.
//! The data comes from the shared directory: `VISAGE_SHARED`, or `../shared` beside the workspace.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;
use visage_image::{decode_file, DecodeOptions, RgbImage};

/// The shared directory (models, data, golden outputs).
pub use visage_testdata::shared as shared_dir;

/// The dlib models directory.
pub fn models_dir() -> PathBuf {
    shared_dir().join("models")
}

/// The golden directory of the peer's outputs.
pub fn golden_dir() -> PathBuf {
    shared_dir().join("golden/dlib")
}

/// One golden record: its name (file stem) and its JSON.
pub struct Golden {
    pub name: String,
    pub json: Value,
}

impl Golden {
    /// The decoded RGB image the peer saw (lossless PNG).
    /// Records of byte-identical copies (`duplicate_of`) have no PNG of their own: the
    /// original's is used.
    pub fn decoded(&self) -> RgbImage {
        let rel = match self.json["decoded_png"].as_str() {
            Some(rel) => rel.to_string(),
            None => {
                let original = self.json["duplicate_of"]
                    .as_str()
                    .expect("decoded_png or duplicate_of");
                let stem = original.rsplit_once('.').map_or(original, |(stem, _)| stem);
                let path = golden_dir().join(format!("image_{stem}.json"));
                let json: Value =
                    serde_json::from_slice(&std::fs::read(&path).expect("original record"))
                        .expect("json");
                json["decoded_png"]
                    .as_str()
                    .expect("original's decoded_png")
                    .to_string()
            }
        };
        decode_file(&golden_dir().join(rel), &DecodeOptions::default()).expect("decoded png")
    }

    /// The original file (JPEG or PNG) the peer was given.
    pub fn original_path(&self) -> PathBuf {
        golden_dir()
            .join("images")
            .join(self.json["file"].as_str().expect("file"))
    }
}

/// Every `image_*.json` record, sorted by name. Panics with a clear message when the shared
/// directory is missing, since every golden test depends on it.
pub fn goldens() -> Vec<Golden> {
    let dir = golden_dir();
    let mut out: Vec<Golden> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "golden directory {} not readable ({e}); set VISAGE_SHARED",
                dir.display()
            )
        })
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with("image_") && n.ends_with(".json")
        })
        .map(|p| Golden {
            name: p.file_stem().unwrap().to_string_lossy().into_owned(),
            json: serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        out.len() >= 20,
        "expected the 23 golden records in {}",
        dir.display()
    );
    out
}
