//! `visage stylize` end to end: folders, several styles, a contact sheet, and bad input.

mod common;

use std::path::Path;

use common::{models, shared, visage};

fn photo() -> String {
    shared()
        .join("data/style/photos/golden_gate.jpg")
        .display()
        .to_string()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn run(args: &[&str]) -> std::process::Output {
    let m = models().display().to_string();
    let mut all = args.to_vec();
    all.extend(["--models", m.as_str(), "--max-size", "96"]);
    visage(&all)
}

#[test]
fn folder_with_two_styles_and_a_sheet() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::copy(photo(), input.join("gate.jpg")).unwrap();
    // A grayscale PNG and an RGBA PNG: documented to become RGB (gray copied, alpha dropped).
    image::GrayImage::from_fn(40, 30, |x, _| image::Luma([(x * 6) as u8]))
        .save(input.join("gray.png"))
        .unwrap();
    image::RgbaImage::from_pixel(40, 30, image::Rgba([200, 50, 50, 0]))
        .save(input.join("rgba.png"))
        .unwrap();
    let out = dir.path().join("out");
    let sheet = dir.path().join("sheet.png");
    let o = run(&[
        "stylize",
        input.to_str().unwrap(),
        "--style",
        "4",
        "--style",
        "1:1,20:1",
        "-o",
        out.to_str().unwrap(),
        "--sheet",
        sheet.to_str().unwrap(),
        "--sheet-cell",
        "48",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    let gate = image::open(out.join("gate_style4.png")).unwrap().to_rgb8();
    assert_eq!(gate.width(), 96, "--max-size scales the photo");
    let gray = image::open(out.join("gray_style1_1_20_1.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(gray.dimensions(), (40, 30));
    // Stylised grayscale input is not gray any more.
    assert!(gray.pixels().any(|p| p.0[0] != p.0[1] || p.0[1] != p.0[2]));
    let sheet = image::open(&sheet).unwrap().to_rgb8();
    assert!(
        sheet.width() >= 3 * 48 && sheet.height() >= 3 * 36,
        "{:?}",
        sheet.dimensions()
    );
}

#[test]
fn one_file_with_a_style_image() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("wave.png");
    let style = shared().join("data/style/paintings/wave.jpg");
    let o = run(&[
        "stylize",
        &photo(),
        "--style-image",
        style.to_str().unwrap(),
        "--preserve-color",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let img = image::open(&out).unwrap().to_rgb8();
    assert_eq!(img.width(), 96);
}

fn fails_with(args: &[&str], message: &str) {
    let o = run(args);
    assert!(!o.status.success(), "{args:?} succeeded");
    let err = stderr(&o);
    assert!(err.contains(message), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_input_gives_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.png");
    let out = out.to_str().unwrap();
    let p = photo();
    fails_with(
        &["stylize", &p, "--style", "26", "-o", out],
        "style index must be 0 to 25",
    );
    fails_with(
        &["stylize", &p, "--style", "3:0,4:0", "-o", out],
        "all zero",
    );
    fails_with(&["stylize", &p, "-o", out], "give a style");
    fails_with(
        &["stylize", &p, "--style", "1", "--strength", "2", "-o", out],
        "strength",
    );
    // A corrupt image: reported, exit status 1.
    let bad = dir.path().join("bad.jpg");
    std::fs::write(&bad, b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
    fails_with(
        &["stylize", bad.to_str().unwrap(), "--style", "1", "-o", out],
        "bad.jpg",
    );
    // A style image smaller than the style network takes.
    let tiny = dir.path().join("tiny.png");
    image::RgbImage::new(16, 16).save(&tiny).unwrap();
    fails_with(
        &[
            "stylize",
            &p,
            "--style-image",
            tiny.to_str().unwrap(),
            "-o",
            out,
        ],
        "too small",
    );
    // A models directory without the fast-style files: the error names the file.
    let empty = dir.path().join("models");
    std::fs::create_dir(&empty).unwrap();
    let o = visage(&[
        "stylize",
        &p,
        "--style",
        "1",
        "-o",
        out,
        "--models",
        empty.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("fast_style/multistyle26.onnx"),
        "{}",
        stderr(&o)
    );
    assert!(!Path::new(out).exists());
}
