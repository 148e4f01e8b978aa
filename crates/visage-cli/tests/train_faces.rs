//! End-to-end tests of `visage train faces` on a few real LFW people (a tiny network, a few
//! steps: seconds) and on bad input.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{json, models, shared, visage};

fn lfw() -> PathBuf {
    shared().join("data/lfw")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn assert_one_line_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
}

/// The first `n` people of the image folder with at least two images: (name, image numbers).
fn people(n: usize) -> Vec<(String, Vec<u32>)> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(lfw().join("images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .filter_map(|d| {
            let name = d.file_name()?.to_string_lossy().into_owned();
            let mut numbers: Vec<u32> = std::fs::read_dir(&d)
                .ok()?
                .filter_map(|e| {
                    let f = e.ok()?.file_name().to_string_lossy().into_owned();
                    f.strip_suffix(".jpg")?.rsplit('_').next()?.parse().ok()
                })
                .collect();
            numbers.sort();
            (numbers.len() >= 2).then_some((name, numbers))
        })
        .take(n)
        .collect()
}

/// A pairs file of 2 folds with 3 same and 3 different pairs each, over 6 real people.
fn tiny_pairs(dir: &Path) -> PathBuf {
    let p = people(6);
    let mut text = String::from("2\t3\n");
    for fold in 0..2 {
        let group = &p[fold * 3..fold * 3 + 3];
        for (name, n) in group {
            text += &format!("{name}\t{}\t{}\n", n[0], n[1]);
        }
        for i in 0..3 {
            let (a, b) = (&group[i], &group[(i + 1) % 3]);
            text += &format!("{}\t{}\t{}\t{}\n", a.0, a.1[0], b.0, b.1[1]);
        }
    }
    let path = dir.join("pairs.txt");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_tiny_run_trains_on_one_fold_and_tests_on_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = tiny_pairs(dir.path());
    let out = dir.path().join("run");
    let (images, chips) = (lfw().join("images"), dir.path().join("chips"));
    let (encodings, models_dir) = (dir.path().join("enc.sqlite"), models());
    let args = [
        "train",
        "faces",
        "--pairs",
        s(&pairs),
        "--images",
        s(&images),
        "--out",
        s(&out),
        "--test-fold",
        "2",
        "--side",
        "16",
        "--blocks",
        "2",
        "--channels",
        "8",
        "--classes-per-batch",
        "3",
        "--steps",
        "5",
        "--threads",
        "1",
        "--chips",
        s(&chips),
        "--cache",
        s(&encodings),
        "--models",
        s(&models_dir),
        "--json",
    ];
    let first = json(&visage(&args));
    assert_eq!(first["chips"]["images"], 12);
    assert_eq!(first["chips"]["from_cache"], 0);
    let fold = &first["folds"][0];
    assert_eq!(fold["fold"], 2);
    assert_eq!(fold["test_pairs"], 6);
    assert_eq!(fold["train_people"], 3);
    assert!(fold["dlib_accuracy"].is_null());
    let accuracy = fold["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["lfw"]["accuracy"], fold["accuracy"]);
    // The second run takes every chip from the cache and, with the same seed, trains the same.
    let again = json(&visage(&args));
    assert_eq!(again["chips"]["from_cache"], 12);
    assert_eq!(again["folds"][0]["accuracy"], fold["accuracy"]);
}

#[test]
fn bad_input_gives_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let images = lfw().join("images");
    let models_dir = models();
    let run = |pairs: &Path, extra: &[&str]| {
        let mut args = vec![
            "train",
            "faces",
            "--pairs",
            s(pairs),
            "--images",
            s(&images),
            "--out",
            s(dir.path()),
            "--chips",
            s(dir.path()),
            "--no-cache",
            "--models",
            s(&models_dir),
        ];
        args.extend(extra);
        visage(&args)
    };
    assert_one_line_error(
        &run(&dir.path().join("missing.txt"), &[]),
        "cannot read the pairs file",
    );
    let real = lfw().join("pairs.txt");
    assert_one_line_error(&run(&real, &["--test-fold", "11"]), "folds 1 to 10");
    assert_one_line_error(&run(&real, &["--test-fold", "0"]), "does not exist");
    // Images that are not there.
    let ghost = dir.path().join("ghost.txt");
    std::fs::write(
        &ghost,
        "1\t1\nNobody_Here\t1\t2\nNobody_Here\t1\tNo_One\t1\n",
    )
    .unwrap();
    assert_one_line_error(&run(&ghost, &["--test-fold", "1"]), "could not be read");
    // Too few people to fill a batch of 48.
    let tiny = tiny_pairs(dir.path());
    assert_one_line_error(
        &run(&tiny, &["--test-fold", "1", "--steps", "1"]),
        "only 3 training people",
    );
}
