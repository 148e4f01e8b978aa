//! End-to-end tests of `visage classical` on the real ORL faces and on bad input (pixel methods
//! only: they need no face models and take about a second).

mod common;

use common::{json, shared, visage};

fn orl() -> String {
    shared().join("data/orl").to_string_lossy().into_owned()
}

#[test]
fn eigenfaces_on_orl_train_save_load_eval() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("orl.vcm");
    let pictures = dir.path().join("pics");
    let model_s = model.to_str().unwrap();
    let trained = json(&visage(&[
        "classical",
        "train",
        "--method",
        "eigenfaces",
        "--dataset",
        &orl(),
        "--out",
        model_s,
        "--pictures",
        pictures.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(trained["train_images"], 200);
    for name in ["eigenfaces.png", "fisherfaces.png", "reconstruction.png"] {
        assert!(pictures.join(name).is_file(), "{name} not written");
    }
    let fresh = json(&visage(&[
        "classical",
        "eval",
        "--method",
        "eigenfaces",
        "--dataset",
        &orl(),
        "--json",
    ]));
    let loaded = json(&visage(&[
        "classical",
        "eval",
        "--model",
        model_s,
        "--dataset",
        &orl(),
        "--json",
    ]));
    let accuracy = fresh["accuracy"].as_f64().unwrap();
    assert!(accuracy >= 0.9, "eigenfaces accuracy {accuracy}");
    assert_eq!(loaded["accuracy"], fresh["accuracy"]);
    assert_eq!(loaded["test_images"], 200);
}

#[test]
fn one_person_refused_for_fisherfaces() {
    let dir = tempfile::tempdir().unwrap();
    let person = dir.path().join("s1");
    std::fs::create_dir(&person).unwrap();
    for i in 1..=10 {
        let src = shared().join(format!("data/orl/s1/{i}.pgm"));
        std::fs::copy(src, person.join(i.to_string())).unwrap();
    }
    let out = visage(&[
        "classical",
        "eval",
        "--method",
        "fisherfaces",
        "--dataset",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs at least two people"), "{err}");
}

#[test]
fn mixed_sizes_resized_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (person, source) in [("a", "data/orl/s1"), ("b", "data/orl/s2")] {
        std::fs::create_dir(dir.path().join(person)).unwrap();
        for i in 1..=3 {
            let src = shared().join(format!("{source}/{i}.pgm"));
            std::fs::copy(src, dir.path().join(person).join(i.to_string())).unwrap();
        }
    }
    // One image of another size: Yale's 320x243.
    std::fs::copy(
        shared().join("data/yale/subject01.normal"),
        dir.path().join("b/4"),
    )
    .unwrap();
    let set = dir.path().to_str().unwrap();
    let base = [
        "classical",
        "eval",
        "--method",
        "eigenfaces",
        "--train-per-person",
        "2",
    ];
    let resized = json(&visage(
        &[&base[..], &["--dataset", set, "--json"]].concat(),
    ));
    assert_eq!(resized["resized_images"], 1);
    assert_eq!(resized["image_size"], serde_json::json!([92, 112]));
    let out = visage(&[&base[..], &["--dataset", set, "--refuse-mixed-sizes"]].concat());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("320x243") && err.contains("92x112"), "{err}");
}
