//! Every golden photo decodes to exactly the pixels the peer (PIL) decoded.

use std::path::PathBuf;

use visage_image::{decode_file, DecodeOptions};

fn golden_dir() -> PathBuf {
    visage_testdata::shared().join("golden/dlib")
}

#[test]
fn originals_decode_to_the_peers_pixels() {
    let dir = golden_dir();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("golden directory") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if !(name.starts_with("image_") && name.ends_with(".json")) {
            continue;
        }
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let Some(decoded) = json["decoded_png"].as_str() else {
            continue; // a byte-identical copy of another record
        };
        let options = DecodeOptions::default();
        let ours = decode_file(
            &dir.join("images").join(json["file"].as_str().unwrap()),
            &options,
        )
        .unwrap();
        let peer = decode_file(&dir.join(decoded), &options).unwrap();
        assert_eq!(ours.dimensions(), peer.dimensions(), "{name}");
        let differing = ours
            .as_raw()
            .iter()
            .zip(peer.as_raw())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            differing, 0,
            "{name}: {differing} channel values differ from the peer's decoding"
        );
        checked += 1;
    }
    assert!(
        checked >= 15,
        "only {checked} golden images found in {}",
        dir.display()
    );
}
