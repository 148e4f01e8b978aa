//! End-to-end tests of `visage inspect` on a few real images.

mod common;

use std::process::{Command, Output};

use common::shared;
use serde_json::Value;

fn visage(args: &[&str]) -> Output {
    let models = shared().join("models");
    Command::new(env!("CARGO_BIN_EXE_visage"))
        .args(args)
        .args(["--models", models.to_str().expect("utf-8 path")])
        .env_remove("VISAGE_MODELS")
        .output()
        .expect("visage runs")
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `units.json` written into `out`, after checking that each of `files` is there too.
fn units_report(out: &std::path::Path, files: &[&str]) -> Value {
    for f in files {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    serde_json::from_slice(&std::fs::read(out.join("units.json")).expect("json")).expect("parse")
}

#[test]
fn units_writes_grids_html_and_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("units");
    let images = shared().join("data/imagenet_sample");
    let run = visage(&[
        "inspect",
        "units",
        "--model",
        "mobilenet-v2",
        "--layers",
        "features.1,features.7",
        "--images",
        images.to_str().expect("utf-8"),
        "--limit",
        "4",
        "--units",
        "3",
        "-o",
        out.to_str().expect("utf-8"),
    ]);
    ok(&run);
    let json = units_report(
        &out,
        &["index.html", "units_features_1.png", "units_features_7.png"],
    );
    assert_eq!(json["inputs"], 4);
    let layers = json["layers"].as_array().expect("layers");
    assert_eq!(layers[0]["layer"], "features.1");
    assert_eq!(layers[0]["receptive_field"]["axes"][0]["size"], 7);
    let units = layers[0]["units"].as_array().expect("units");
    assert_eq!(units.len(), 16);
    let top = units[0]["top"].as_array().expect("top");
    assert_eq!(top.len(), 4, "one hit per image");
    assert!(top[0]["image"].as_str().expect("name").ends_with(".jpg"));
    assert!(top[0]["value"].as_f64().expect("value") >= top[1]["value"].as_f64().expect("value"));
    let grid = image::open(out.join("units_features_1.png")).expect("png");
    assert!(grid.width() > 9 * 48 / 2 && grid.height() > 3 * 48);
}

#[test]
fn gram_and_activations_pictures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = shared().join("data/imagenet_sample/n01440764_tench.jpg");
    let gram = dir.path().join("gram.png");
    ok(&visage(&[
        "inspect",
        "gram",
        "--model",
        "mobilenet-v2",
        "--image",
        img.to_str().expect("utf-8"),
        "--layer",
        "features.4",
        "-o",
        gram.to_str().expect("utf-8"),
    ]));
    assert!(image::open(&gram).expect("gram png").width() >= 32);
    let act = dir.path().join("act.png");
    ok(&visage(&[
        "inspect",
        "activations",
        "--model",
        "mobilenet-v2",
        "--image",
        img.to_str().expect("utf-8"),
        "-o",
        act.to_str().expect("utf-8"),
    ]));
    assert!(act.is_file());
    let bad = visage(&[
        "inspect",
        "gram",
        "--model",
        "mobilenet-v2",
        "--image",
        img.to_str().expect("utf-8"),
        "--layer",
        "conv9",
        "-o",
        gram.to_str().expect("utf-8"),
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown layer"));
}

/// The 1D path end to end: the EKG demo network (trained afresh, ~3 s) over its held-out
/// minute, cut into 2 s windows of 360 samples at 180 Hz.
#[test]
fn units_on_the_ekg_network() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("ekg");
    let csv = shared().join("data/ekg/mitbih_208_360hz_mv.csv");
    let run = visage(&[
        "inspect",
        "units",
        "--model",
        "ekg",
        "--csv",
        csv.to_str().expect("utf-8"),
        "--layers",
        "1,7",
        "--units",
        "4",
        "-o",
        out.to_str().expect("utf-8"),
    ]);
    ok(&run);
    let json = units_report(
        &out,
        &["index.html", "units_1_relu.png", "units_7_relu.png"],
    );
    assert_eq!(json["inputs"], 30);
    let layers = json["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[1]["layer"], "7:relu");
    // Dilations 1, 2, 4, 8 with 9-tap kernels: 9 + 8 * (2 + 4 + 8) samples.
    assert_eq!(layers[1]["receptive_field"]["axes"][0]["size"], 121);
    let window = 360;
    for layer in layers {
        let units = layer["units"].as_array().expect("units");
        assert_eq!(units.len(), if layer["layer"] == "1:relu" { 8 } else { 16 });
        for unit in units {
            let top = unit["top"].as_array().expect("top");
            assert_eq!(top.len(), 9);
            for hit in top {
                let t = hit["position"][0].as_i64().expect("position");
                assert!((0..window).contains(&t), "{hit}");
                // Interior ranking: the whole field lies inside the window.
                let (a, b) = (
                    hit["field"][0][0].as_i64().expect("start"),
                    hit["field"][0][1].as_i64().expect("end"),
                );
                assert!(0 <= a && b <= window, "{hit}");
                assert!(hit["image"].as_str().expect("name").ends_with(" s"));
            }
        }
    }
    // The image-only flags are refused rather than ignored.
    let bad = visage(&[
        "inspect",
        "units",
        "--model",
        "ekg",
        "--images",
        dir.path().to_str().expect("utf-8"),
        "--layers",
        "1",
        "-o",
        out.to_str().expect("utf-8"),
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("drop --images"));
}

#[test]
fn vgg19_needs_weights_or_says_random() {
    let refused = visage(&["inspect", "layers", "--model", "vgg19"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--weights"));
    let listed = visage(&["inspect", "layers", "--model", "vgg19", "--random-weights"]);
    ok(&listed);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(text.lines().count(), 37);
    assert!(text
        .lines()
        .last()
        .is_some_and(|l| l.contains("268x268") && l.contains("pool5")));
    let unknown = visage(&["inspect", "layers", "--model", "no-such-network"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nor a checkpoint file"));
}
