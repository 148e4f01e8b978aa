//! The web page in headless Chromium (Debian's chromium, driven by playwright-core from
//! `browser/`): enroll from one photo, identify a second photo of the same person and see the
//! name on the page, see a stranger "not recognized", enroll from the (fake) webcam, remove.
//!
//! `.ci/run` installs Chromium and the node package and sets `VISAGE_TEST_CHROMIUM`; when it is
//! set the test must run and pass. Unset, it runs when Chromium and `browser/node_modules` are
//! there, and is skipped with a note otherwise.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{photo, Backend, Server};
use visage_gallery::Scope;
use visage_server::ServerConfig;

fn chromium() -> Option<PathBuf> {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    match std::env::var_os("VISAGE_TEST_CHROMIUM") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            let default = PathBuf::from("/usr/bin/chromium");
            if default.exists() && browser_dir.join("node_modules/playwright-core").exists() {
                Some(default)
            } else {
                eprintln!(
                    "note: VISAGE_TEST_CHROMIUM is not set and chromium or browser/node_modules \
                     is missing; skipping the browser test (npm ci in crates/visage-server/browser)"
                );
                None
            }
        }
    }
}

#[test]
fn the_page_enrolls_identifies_and_says_not_recognized() {
    let Some(chromium) = chromium() else { return };
    let backend = Backend::sqlite();
    let key = backend.key("browser", &[Scope::Identify, Scope::Manage]);
    let server = Server::start(&backend, ServerConfig::default());
    // Chromium's fake webcam plays an MJPEG file; one JPEG frame is enough.
    let camera = tempfile::tempdir().unwrap();
    let frame = camera.path().join("camera.mjpeg");
    std::fs::copy(photo("examples__biden.jpg"), &frame).unwrap();
    let output = Command::new("node")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("browser"))
        .env("VISAGE_TEST_CHROMIUM", &chromium)
        .arg("test.mjs")
        .arg(&server.base)
        .arg(&key)
        .arg(photo("examples__obama.jpg"))
        .arg(photo("tests__test_images__obama2.jpg"))
        .arg(photo(
            "examples__knn_examples__train__kit_harington__john1.jpeg",
        ))
        .arg(&frame)
        .arg(photo("tests__test_images__biden.jpg"))
        .output()
        .expect("node runs (install Node.js)");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{log}");
    assert!(output.status.success(), "browser test failed:\n{log}");
    assert!(log.contains("seen: Person One"), "{log}");
    assert!(log.contains("seen: not recognized"), "{log}");
    assert!(log.contains("seen: Person Two"), "{log}");
    // What the page did went through the API: the person removed on the page is gone.
    let people = backend.open().people().unwrap();
    assert_eq!(
        people.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["Person Two"]
    );
}
