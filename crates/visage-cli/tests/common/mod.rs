//! Helpers every end-to-end test of the `visage` binary shares.
#![allow(dead_code)] // each test file uses its own subset

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

/// The shared directory (models, data, golden outputs): `VISAGE_SHARED`, or `../shared` beside
/// the workspace.
pub use visage_testdata::shared;

/// The models directory inside the shared directory.
pub fn models() -> PathBuf {
    shared().join("models")
}

/// Runs `visage` with `args` as given, with no models directory from the environment.
pub fn visage(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_visage"))
        .args(args)
        .env_remove("VISAGE_MODELS")
        .output()
        .expect("visage runs")
}

/// Asserts the run succeeded (showing its stderr otherwise) and parses stdout as one JSON object.
pub fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}
