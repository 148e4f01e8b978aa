//! End-to-end tests of `visage demo`: the EKG demo on the shared recording (a few seconds), a
//! shortened volume demo, and bad input.

mod common;

use common::{json, shared, visage};

/// The bar: F1 ≥ 0.98 on the held-out minute, a plausible heart rate, a plot.
#[test]
fn ekg_finds_the_held_out_beats() {
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("ekg.png");
    let csv = shared().join("data/ekg/mitbih_208_360hz_mv.csv");
    let v = json(&visage(&[
        "demo",
        "ekg",
        "--json",
        "--csv",
        csv.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]));
    assert!(v["f1"].as_f64().unwrap() >= 0.98, "{v}");
    let bpm = v["heart_rate_bpm"].as_f64().unwrap();
    assert!((40.0..160.0).contains(&bpm), "{v}");
    assert!(v["reference_beats"].as_u64().unwrap() > 50, "{v}");
    assert!(image::open(&plot).is_ok());
}

#[test]
fn volume_runs_and_draws() {
    let dir = tempfile::tempdir().unwrap();
    let picture = dir.path().join("v.png");
    let args = [
        "demo",
        "volume",
        "--json",
        "--train",
        "32",
        "--test",
        "8",
        "--epochs",
        "1",
        "--picture",
    ];
    let mut a = args.to_vec();
    a.push(picture.to_str().unwrap());
    let first = json(&visage(&a));
    let acc = first["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc));
    assert!(image::open(&picture).is_ok());
    // Same seed and threads, same result.
    let again = json(&visage(&a));
    assert_eq!(first["loss_last_epoch"], again["loss_last_epoch"]);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "0.1\nnot a number\n").unwrap();
    let out = visage(&["demo", "ekg", "--csv", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a number"));
    let out = visage(&["demo", "volume", "--threads", "0"]);
    assert!(!out.status.success());
}
