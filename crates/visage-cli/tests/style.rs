//! End-to-end tests of `visage style` on the shared photos and paintings: tiny runs (64 px, a
//! few iterations) and bad input.

mod common;

use common::{json, models, shared, visage};

fn photo() -> String {
    shared()
        .join("data/style/photos/tubingen.jpg")
        .to_string_lossy()
        .into_owned()
}

fn painting() -> String {
    shared()
        .join("data/style/paintings/starry_night.jpg")
        .to_string_lossy()
        .into_owned()
}

fn models_arg() -> String {
    models().to_string_lossy().into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_small_run_writes_the_image_plot_snapshots_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.png");
    let plot = dir.path().join("loss.png");
    let m = models_arg();
    let summary = json(&visage(&[
        "style",
        &photo(),
        &painting(),
        "-o",
        out.to_str().unwrap(),
        "--models",
        &m,
        "--size",
        "64",
        "--iters",
        "6",
        "--snapshot-every",
        "3",
        "--loss-plot",
        plot.to_str().unwrap(),
        "--json",
        "--threads",
        "2",
    ]));
    let image = image::open(&out).unwrap().to_rgb8();
    // tubingen.jpg is 1024x768.
    assert_eq!(image.dimensions(), (64, 48));
    assert!(plot.is_file());
    assert!(dir.path().join("out-stage0-iter3.png").is_file());
    assert!(dir.path().join("out-stage0-iter6.png").is_file());
    let iterations = summary["iterations"].as_array().unwrap();
    assert_eq!(iterations.len(), 6);
    let first = iterations[0]["total"].as_f64().unwrap();
    let last = iterations[5]["total"].as_f64().unwrap();
    assert!(last < first, "{first} -> {last}");
    assert!(summary["peak_memory_bytes"].as_u64().unwrap() > 0);
    assert!(
        summary["stages"][0]["seconds_per_iteration"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[test]
fn grayscale_and_rgba_inputs_are_used_as_rgb() {
    let dir = tempfile::tempdir().unwrap();
    let grey = dir.path().join("grey.png");
    let rgba = dir.path().join("rgba.png");
    let painting = image::open(painting()).unwrap();
    painting.to_luma8().save(&grey).unwrap();
    painting.to_rgba8().save(&rgba).unwrap();
    let m = models_arg();
    for style in [&grey, &rgba] {
        let out = dir.path().join("out.png");
        let run = visage(&[
            "style",
            &photo(),
            style.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--models",
            &m,
            "--size",
            "48",
            "--iters",
            "2",
            "--threads",
            "2",
        ]);
        assert!(run.status.success(), "{}", stderr(&run));
        assert!(out.is_file());
    }
}

#[test]
fn a_style_image_smaller_than_the_receptive_field_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("tiny.png");
    image::open(painting())
        .unwrap()
        .thumbnail(40, 40)
        .to_rgb8()
        .save(&tiny)
        .unwrap();
    let m = models_arg();
    let run = visage(&[
        "style",
        &photo(),
        tiny.to_str().unwrap(),
        "-o",
        dir.path().join("o.png").to_str().unwrap(),
        "--models",
        &m,
        "--size",
        "64",
        "--iters",
        "2",
    ]);
    assert!(!run.status.success());
    let e = stderr(&run);
    assert!(
        e.contains("receptive field") && e.contains("features.13"),
        "{e}"
    );
    assert_eq!(e.trim().lines().count(), 1, "{e}");
}

#[test]
fn zero_weights_everywhere_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = models_arg();
    let run = visage(&[
        "style",
        &photo(),
        &painting(),
        "-o",
        dir.path().join("o.png").to_str().unwrap(),
        "--models",
        &m,
        "--alpha",
        "0",
        "--beta",
        "0",
        "--tv",
        "0",
    ]);
    assert!(!run.status.success());
    assert!(stderr(&run).contains("zero"), "{}", stderr(&run));
    let run = visage(&[
        "style",
        &photo(),
        &painting(),
        &painting(),
        "-o",
        dir.path().join("o.png").to_str().unwrap(),
        "--models",
        &m,
        "--style-weights",
        "0,0",
    ]);
    assert!(!run.status.success());
    assert!(stderr(&run).contains("blend weights"), "{}", stderr(&run));
}

#[test]
fn missing_weights_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("o.png");
    for network in ["mobilenet-v2", "vgg19"] {
        let run = visage(&[
            "style",
            &photo(),
            &painting(),
            "-o",
            o.to_str().unwrap(),
            "--network",
            network,
            "--weights",
            "no/such/weights.pth",
        ]);
        assert!(!run.status.success());
        let e = stderr(&run);
        assert!(
            e.contains("no/such/weights.pth") && e.contains("not found"),
            "{e}"
        );
    }
    let run = visage(&[
        "style",
        &photo(),
        &painting(),
        "-o",
        o.to_str().unwrap(),
        "--network",
        "vgg19",
    ]);
    assert!(!run.status.success());
    assert!(stderr(&run).contains("--weights"), "{}", stderr(&run));
}
