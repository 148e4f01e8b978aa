//! The HOG detector against the peer's golden outputs, for every golden record: the boxes
//! and sub-detectors exactly and the scores to 1e-3, at adjust_threshold 0 (`hog_raw`) and
//! -0.5 (`hog_raw_adjust_-0.5`, more candidates, so thresholding and suppression are
//! exercised), on the peer's decoded pixels; and the same boxes from the original files
//! decoded by Visage.

mod common;

use std::time::Instant;

use common::{goldens, models_dir};
use serde_json::Value;
use visage_face::detect::{DetectOptions, Detection, HogDetector};
use visage_face::Rect;
use visage_image::{decode_file, DecodeOptions};

/// One expected detection.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Want {
    rect: Rect,
    score: f64,
    weight_index: usize,
}

fn wants(v: &Value) -> Vec<Want> {
    v.as_array()
        .expect("detections")
        .iter()
        .map(|d| {
            let i = |k: &str| d[k].as_i64().unwrap_or_else(|| panic!("{k}"));
            Want {
                rect: Rect::new(i("left"), i("top"), i("right"), i("bottom")),
                score: d["score"].as_f64().expect("score"),
                weight_index: d["weight_index"].as_u64().expect("weight_index") as usize,
            }
        })
        .collect()
}

/// Compares detections with the peer's; returns the largest score difference, or a
/// description of the mismatch. Order is compared as a set: equal scores may come out in
/// either order.
fn compare(got: &[Detection], want: &[Want], check_scores: bool) -> Result<f64, String> {
    let describe = || {
        let g: Vec<_> = got
            .iter()
            .map(|d| (d.rect, d.sub_detector, d.score))
            .collect();
        let w: Vec<_> = want
            .iter()
            .map(|d| (d.rect, d.weight_index, d.score))
            .collect();
        format!("got {g:?}\n      peer {w:?}")
    };
    if got.len() != want.len() {
        return Err(format!(
            "{} boxes, peer {}: {}",
            got.len(),
            want.len(),
            describe()
        ));
    }
    let mut worst = 0.0f64;
    let mut used = vec![false; got.len()];
    for w in want {
        let found = got
            .iter()
            .enumerate()
            .find(|(i, d)| !used[*i] && d.rect == w.rect && d.sub_detector == w.weight_index);
        let Some((i, d)) = found else {
            return Err(format!(
                "peer box {:?} (sub-detector {}) missing: {}",
                w.rect,
                w.weight_index,
                describe()
            ));
        };
        used[i] = true;
        if check_scores {
            let diff = (d.score - w.score).abs();
            if diff > 1e-3 {
                return Err(format!(
                    "score {} vs peer {} for {:?}",
                    d.score, w.score, w.rect
                ));
            }
            worst = worst.max(diff);
        }
    }
    Ok(worst)
}

#[test]
fn detections_match_the_peer() {
    let detector =
        HogDetector::load(&models_dir().join("dlib/frontal_face_detector.svm")).expect("detector");
    let cases = [("hog_raw", 0.0), ("hog_raw_adjust_-0.5", -0.5)];

    let mut failures = Vec::new();
    let (mut checked, mut exact, mut worst_score) = (0, 0, 0.0f64);
    let mut seconds = 0.0;
    for g in goldens() {
        let image = g.decoded();
        for (key, adjust) in cases {
            let options = DetectOptions {
                upsample: 1,
                adjust_threshold: adjust,
            };
            let start = Instant::now();
            let got = detector.detect(&image, &options);
            seconds += start.elapsed().as_secs_f64();
            checked += 1;
            match compare(&got, &wants(&g.json[key]), true) {
                Ok(w) => {
                    exact += 1;
                    worst_score = worst_score.max(w);
                }
                Err(e) => failures.push(format!("{} {key}: {e}", g.name)),
            }
        }
    }
    println!(
        "HOG detector: {exact}/{checked} golden detection sets match; largest score difference {worst_score:.3e}; {:.3} s for {checked} runs",
        seconds
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn original_files_give_the_same_boxes() {
    let detector =
        HogDetector::load(&models_dir().join("dlib/frontal_face_detector.svm")).expect("detector");
    let mut failures = Vec::new();
    let mut checked = 0;
    for g in goldens() {
        let image =
            decode_file(&g.original_path(), &DecodeOptions::default()).expect("original image");
        assert_eq!(
            (u64::from(image.width()), u64::from(image.height())),
            (
                g.json["width"].as_u64().expect("width"),
                g.json["height"].as_u64().expect("height")
            ),
            "{}",
            g.name
        );
        let got = detector.detect(&image, &DetectOptions::default());
        checked += 1;
        if let Err(e) = compare(&got, &wants(&g.json["hog_raw"]), false) {
            failures.push(format!("{}: {e}", g.name));
        }
    }
    println!(
        "HOG detector on the original files: {}/{checked} match the peer's boxes",
        checked - failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The parallel schedule must not change anything: one thread gives the same detections,
/// scores included, as the default pool.
#[test]
fn results_do_not_depend_on_the_thread_count() {
    let detector =
        HogDetector::load(&models_dir().join("dlib/frontal_face_detector.svm")).expect("detector");
    let g = goldens()
        .into_iter()
        .find(|g| g.name.ends_with("obama_and_biden"))
        .expect("obama_and_biden record");
    let image = g.decoded();
    let options = DetectOptions {
        upsample: 1,
        adjust_threshold: -0.5,
    };
    let parallel = detector.detect(&image, &options);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("one-thread pool");
    let single = pool.install(|| detector.detect(&image, &options));
    assert_eq!(parallel, single);
    assert!(!parallel.is_empty());
}

/// Without upsampling (80x80-pixel windows at full size) a large face is still found, in
/// about the same place; two upsampling steps find it too.
#[test]
fn other_upsampling_amounts_find_large_faces() {
    let detector =
        HogDetector::load(&models_dir().join("dlib/frontal_face_detector.svm")).expect("detector");
    let g = goldens()
        .into_iter()
        .find(|g| g.name.ends_with("examples__obama"))
        .expect("obama record");
    let image = g.decoded();
    let want = wants(&g.json["hog_raw"])[0].rect;
    for upsample in [0, 2] {
        let options = DetectOptions {
            upsample,
            adjust_threshold: 0.0,
        };
        let got = detector.detect(&image, &options);
        let best = got.first().expect("a face");
        let inter = best.rect.intersect(&want).area() as f64;
        let union = (best.rect.area() + want.area()) as f64 - inter;
        assert!(
            inter / union > 0.5,
            "upsample {upsample}: {:?} vs {want:?}",
            best.rect
        );
    }
}
