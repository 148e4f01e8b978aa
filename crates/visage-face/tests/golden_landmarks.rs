//! The 5-point landmarks, chip details and aligned chips against the peer's golden outputs, for
//! every face of every golden record: landmarks exactly, chip details to 1e-6, chips to within
//! one grey level on at most 1% of their values.

mod common;

use std::time::{Duration, Instant};

use common::{golden_dir, goldens, models_dir};
use serde_json::Value;
use visage_face::align::{chip_details, extract_chip, CHIP_SIZE};
use visage_face::landmarks::ShapePredictor;
use visage_face::{Point, Rect};
use visage_image::{decode_file, DecodeOptions, RgbImage};

fn rect_of(v: &Value) -> Rect {
    let i = |k: &str| v[k].as_i64().unwrap_or_else(|| panic!("rect.{k}"));
    Rect::new(i("left"), i("top"), i("right"), i("bottom"))
}

fn points_of(v: &Value) -> Vec<Point> {
    v.as_array()
        .expect("landmarks5")
        .iter()
        .map(|p| Point::new(p[0].as_i64().expect("x"), p[1].as_i64().expect("y")))
        .collect()
}

/// (largest difference, number of channel values that differ), over all channel values.
fn chip_diff(a: &RgbImage, b: &RgbImage) -> (u8, usize) {
    assert_eq!(a.dimensions(), b.dimensions());
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y))
        .fold((0, 0), |(max, n), d| (max.max(d), n + usize::from(d != 0)))
}

#[test]
fn landmarks_chip_details_and_chips_match_the_peer() {
    let model = models_dir().join("dlib/shape_predictor_5_face_landmarks.dat");
    let predictor = ShapePredictor::load(&model).expect("shape predictor");
    let values_per_chip = (CHIP_SIZE * CHIP_SIZE * 3) as usize;

    let (mut faces, mut exact_landmarks, mut exact_chips) = (0u32, 0u32, 0u32);
    let mut worst_detail_error = 0.0f64;
    let mut worst_chip = (0u8, 0usize);
    let mut failures = Vec::new();
    let (mut predict_time, mut align_time) = (Duration::ZERO, Duration::ZERO);
    let records = goldens();
    for g in &records {
        // Byte-identical copies store no decoded image of their own; use the original's.
        let image = match g.json["duplicate_of"].as_str() {
            Some(original) if g.json["decoded_png"].is_null() => records
                .iter()
                .find(|o| o.json["file"].as_str() == Some(original))
                .unwrap_or_else(|| panic!("{}: duplicate of {original}, not found", g.name))
                .decoded(),
            _ => g.decoded(),
        };
        for (i, face) in g.json["faces"]
            .as_array()
            .expect("faces")
            .iter()
            .enumerate()
        {
            faces += 1;
            let name = format!("{} face {i}", g.name);

            let rect = rect_of(&face["rect"]);
            let want = points_of(&face["landmarks5"]);
            let started = Instant::now();
            let got = predictor.predict(&image, &rect);
            predict_time += started.elapsed();
            if got == want {
                exact_landmarks += 1;
            } else {
                failures.push(format!("{name}: landmarks {got:?}, peer {want:?}"));
            }

            // Align from the peer's landmarks so a landmark miss does not hide an alignment
            // result (they are the same points whenever the check above passes).
            let started = Instant::now();
            let details = chip_details(&want).expect("chip details");
            let chip = extract_chip(&image, &details);
            align_time += started.elapsed();
            let gd = &face["chip_details"];
            let golden_rect: Vec<f64> = gd["rect"]
                .as_array()
                .expect("rect")
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let mut err = (details.angle - gd["angle"].as_f64().expect("angle")).abs();
            for (a, b) in details.rect.iter().zip(&golden_rect) {
                err = err.max((a - b).abs());
            }
            assert_eq!(
                u64::from(details.rows),
                gd["rows"].as_u64().expect("rows"),
                "{name}"
            );
            assert_eq!(
                u64::from(details.cols),
                gd["cols"].as_u64().expect("cols"),
                "{name}"
            );
            worst_detail_error = worst_detail_error.max(err);
            if err > 1e-6 {
                failures.push(format!(
                    "{name}: chip details {details:?} differ by {err:e}"
                ));
            }

            let peer_chip = decode_file(
                &golden_dir().join(face["chip_png"].as_str().expect("chip_png")),
                &DecodeOptions::default(),
            )
            .expect("golden chip");
            let (max, count) = chip_diff(&chip, &peer_chip);
            eprintln!("{name}: chip max diff {max}, {count} of {values_per_chip} values differ; details error {err:.1e}");
            if count == 0 {
                exact_chips += 1;
            }
            worst_chip = (worst_chip.0.max(max), worst_chip.1.max(count));
            if max > 1 || count * 100 > values_per_chip {
                failures.push(format!(
                    "{name}: chip differs by up to {max} on {count} values"
                ));
            }
        }
    }
    eprintln!(
        "{faces} faces: landmarks exact on {exact_landmarks}, chips identical on {exact_chips}, \
         worst chip diff {} on {} values, worst chip-details error {worst_detail_error:.1e}; \
         mean time per face: landmarks {:?}, alignment {:?}",
        worst_chip.0,
        worst_chip.1,
        predict_time / faces.max(1),
        align_time / faces.max(1)
    );
    assert!(faces >= 25, "expected the golden faces, found {faces}");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
