//! Where tests, examples and benchmarks find the shared directory: the models, the data sets and
//! the peer's golden outputs, which are never part of the repository.

use std::path::{Path, PathBuf};

/// The shared directory: `VISAGE_SHARED` when set, else `shared` beside the workspace's folder.
pub fn shared() -> PathBuf {
    match std::env::var_os("VISAGE_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_directory_holds_its_readme() {
        let dir = shared();
        assert!(
            dir.join("README.md").is_file(),
            "no README.md in {} (set VISAGE_SHARED)",
            dir.display()
        );
    }
}
