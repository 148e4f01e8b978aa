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

/// A fresh, empty database named `{prefix}_{process id}_{n}` on the PostgreSQL server whose URL
/// is in `VISAGE_TEST_POSTGRES`, as a URL; `None`, with a note, when that variable is unset. Set
/// but unreachable is a failure (a panic), never a skip.
#[cfg(feature = "postgres")]
pub fn postgres_database(prefix: &str) -> Option<String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let Ok(url) = std::env::var("VISAGE_TEST_POSTGRES") else {
        eprintln!("note: VISAGE_TEST_POSTGRES is not set; skipping the PostgreSQL tests");
        return None;
    };
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap_or_else(|e| {
        panic!("VISAGE_TEST_POSTGRES is set but the server does not answer ({e})")
    });
    let name = format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .and_then(|()| admin.batch_execute(&format!("CREATE DATABASE {name}")))
        .expect("create a test database");
    let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
    Some(format!("{base}/{name}"))
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
