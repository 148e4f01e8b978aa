//! Encodings of the peer's own aligned chips must match dlib's within 1e-4 (max abs) for every
//! face of every golden record, and the distances between them must match the peer's.

mod common;

use common::{golden_dir, goldens, models_dir};
use visage_face::encode::{distance, Encoding, FaceEncoder};
use visage_image::{decode_file, DecodeOptions, RgbImage};

/// One golden face: where it comes from, the chip dlib saw and the encoding dlib returned.
struct Face {
    id: String,
    chip: RgbImage,
    expected: Vec<f32>,
}

fn golden_faces() -> Vec<Face> {
    let mut faces = Vec::new();
    for golden in goldens() {
        let file = golden.json["file"].as_str().expect("file").to_string();
        let list = golden.json["faces"].as_array().expect("faces");
        for (i, face) in list.iter().enumerate() {
            let rel = face["chip_png"].as_str().expect("chip_png");
            let chip = decode_file(&golden_dir().join(rel), &DecodeOptions::default())
                .unwrap_or_else(|e| panic!("{}: {e}", golden.name));
            let expected: Vec<f32> = face["encoding"]
                .as_array()
                .expect("encoding")
                .iter()
                .map(|v| v.as_f64().expect("number") as f32)
                .collect();
            assert_eq!(expected.len(), 128, "{} face {i}", golden.name);
            faces.push(Face {
                id: format!("{file}#{i}"),
                chip,
                expected,
            });
        }
    }
    assert!(
        faces.len() >= 20,
        "expected the golden faces, found {}",
        faces.len()
    );
    faces
}

fn max_abs_diff(a: &Encoding, b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn encoder() -> FaceEncoder {
    let path = models_dir().join("dlib/dlib_face_recognition_resnet_model_v1.dat");
    FaceEncoder::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_golden_chip_encodes_like_dlib() {
    let faces = golden_faces();
    let encoder = encoder();
    let chips: Vec<RgbImage> = faces.iter().map(|f| f.chip.clone()).collect();
    // All at once: more than one batch of 16, so batching is exercised too.
    let encodings = encoder.encode(&chips).expect("encode");
    assert_eq!(encodings.len(), faces.len());

    let mut worst = (0f32, String::new());
    let mut failures = Vec::new();
    for (face, enc) in faces.iter().zip(&encodings) {
        let diff = max_abs_diff(enc, &face.expected);
        if diff > worst.0 {
            worst = (diff, face.id.clone());
        }
        if diff > 1e-4 {
            failures.push(format!("{}: max abs diff {diff:e}", face.id));
        }
    }
    println!(
        "{} golden faces; worst max abs diff {:e} ({})",
        faces.len(),
        worst.0,
        worst.1
    );
    assert!(
        failures.is_empty(),
        "encodings off by more than 1e-4:\n{}",
        failures.join("\n")
    );

    // One chip per call gives the same encodings as the batched call.
    for (face, batched) in faces.iter().zip(&encodings).take(4) {
        let single = encoder.encode_one(&face.chip).expect("encode one");
        let diff = max_abs_diff(&single, batched);
        assert!(
            diff <= 1e-5,
            "{}: batch 1 vs batched differ by {diff:e}",
            face.id
        );
    }
}

#[test]
fn distances_match_the_peers_pairwise_table() {
    let faces = golden_faces();
    let encoder = encoder();
    let chips: Vec<RgbImage> = faces.iter().map(|f| f.chip.clone()).collect();
    let encodings = encoder.encode(&chips).expect("encode");

    let path = golden_dir().join("pairwise.json");
    let table: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("pairwise.json")).expect("json");
    let ids: Vec<&str> = table["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().expect("id"))
        .collect();
    let index = |id: &str| {
        faces
            .iter()
            .position(|f| f.id == id)
            .unwrap_or_else(|| panic!("no golden face {id}"))
    };
    let mut worst = 0f64;
    for (i, a) in ids.iter().enumerate() {
        for (j, b) in ids.iter().enumerate() {
            let expected = table["distance"][i][j].as_f64().expect("distance");
            let same = table["compare_faces_tol_0.6"][i][j]
                .as_bool()
                .expect("bool");
            let d = distance(&encodings[index(a)], &encodings[index(b)]) as f64;
            worst = worst.max((d - expected).abs());
            assert!((d - expected).abs() < 2e-4, "{a} vs {b}: {d} vs {expected}");
            assert_eq!(d <= 0.6, same, "{a} vs {b}: {d}");
        }
    }
    println!(
        "{} pairs; worst distance diff {worst:e}",
        ids.len() * ids.len()
    );
}

#[test]
fn wrong_chip_sizes_are_refused() {
    let encoder = encoder();
    let chips = vec![RgbImage::new(150, 150), RgbImage::new(150, 149)];
    let msg = encoder.encode(&chips).unwrap_err().to_string();
    assert!(msg.contains("chip 1 is 150x149"), "{msg}");
}
