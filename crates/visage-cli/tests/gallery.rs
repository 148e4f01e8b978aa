//! End-to-end tests of enroll, identify, gallery, calibrate and eval on real photos (LFW's small
//! 250x250 images keep them quick), including a killed enrolment and bad input.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::shared;
use serde_json::Value;
use visage_gallery::Gallery;

/// The `k`-th photo (0-based, by file name) of a person in the LFW images shipped with the
/// pairs (which hold only the images pairs.txt names).
fn lfw(name: &str, k: usize) -> PathBuf {
    let dir = shared().join("data/lfw/images").join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.swap_remove(k)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_visage"));
    c.args(args)
        .env_remove("VISAGE_MODELS")
        .env_remove("VISAGE_DB");
    // `gallery` never loads models, so it has no --models flag.
    if args.first() != Some(&"gallery") {
        c.args(["--models", s(&shared().join("models"))]);
    }
    c
}

fn visage(args: &[&str]) -> Output {
    command(args).output().expect("visage runs")
}

fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().expect("a line")).expect("JSON")
}

/// A failed run: non-zero exit, one line on stderr, mentioning every needle.
fn assert_one_line_error(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, stderr: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one-line error expected: {stderr}"
    );
    for n in needles {
        assert!(stderr.contains(n), "error should mention {n:?}: {stderr}");
    }
}

fn list(db: &Path) -> Value {
    ok_json(&visage(&["gallery", "list", "--json", "--db", s(db)]))
}

fn manifest_id() -> String {
    visage_formats::manifest::Manifest::builtin().id
}

#[test]
fn enroll_identify_and_manage_the_gallery() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.sqlite");
    let out = visage(&[
        "enroll",
        "Tony Blair",
        s(&lfw("Tony_Blair", 0)),
        s(&lfw("Tony_Blair", 1)),
        "--db",
        s(&db),
        "--json",
    ]);
    assert_eq!(ok_json(&out)["templates_added"], 2);
    ok_json(&visage(&[
        "enroll",
        "Hans Blix",
        s(&lfw("Hans_Blix", 0)),
        "--db",
        s(&db),
        "--json",
    ]));

    // A new photo of an enrolled person is named; a stranger is not.
    let out = visage(&[
        "identify",
        s(&lfw("Tony_Blair", 2)),
        s(&lfw("Amber_Tamblyn", 0)),
        "--top",
        "2",
        "--json",
        "--db",
        s(&db),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["faces"][0]["name"], "Tony Blair");
    assert_eq!(
        lines[0]["faces"][0]["candidates"].as_array().unwrap().len(),
        2
    );
    assert!(
        lines[0]["faces"][0]["candidates"][0]["distance"]
            .as_f64()
            .unwrap()
            < 0.6
    );
    assert_eq!(lines[1]["faces"][0]["recognized"], false);
    assert!(lines[1]["faces"][0]["name"].is_null());

    // The HNSW index (built, then cached in the file) answers like the exact scan.
    for _ in 0..2 {
        let out = visage(&[
            "identify",
            s(&lfw("Tony_Blair", 2)),
            "--index",
            "hnsw",
            "--json",
            "--db",
            s(&db),
        ]);
        assert_eq!(ok_json(&out)["faces"][0]["name"], "Tony Blair");
    }

    let l = list(&db);
    assert_eq!(l["people"].as_array().unwrap().len(), 2);
    assert_eq!(l["manifest_id"], manifest_id());
    assert_eq!(l["threshold"], 0.6);
    let show = ok_json(&visage(&[
        "gallery",
        "show",
        "Tony Blair",
        "--json",
        "--db",
        s(&db),
    ]));
    let t = &show["templates"][0];
    assert_eq!(t["image_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(t["box"].as_array().unwrap().len(), 4);

    // Appending needs --append; rename and remove change only what they name.
    let out = visage(&[
        "enroll",
        "Hans Blix",
        s(&lfw("Hans_Blix", 1)),
        "--db",
        s(&db),
    ]);
    assert_one_line_error(&out, &["already enrolled", "--append"]);
    ok_json(&visage(&[
        "enroll",
        "Hans Blix",
        s(&lfw("Hans_Blix", 1)),
        "--append",
        "--db",
        s(&db),
        "--json",
    ]));
    assert!(
        visage(&["gallery", "rename", "Hans Blix", "Hans", "--db", s(&db)])
            .status
            .success()
    );
    let export = dir.path().join("export.json");
    assert!(visage(&["gallery", "export", s(&export), "--db", s(&db)])
        .status
        .success());
    assert!(visage(&["gallery", "remove", "Tony Blair", "--db", s(&db)])
        .status
        .success());
    let l = list(&db);
    assert_eq!(l["people"][0]["name"], "Hans");
    assert_eq!(l["people"][0]["templates"], 2);
    assert_eq!(l["people"].as_array().unwrap().len(), 1);

    // Import into a new file restores both people; into the old one it clashes on "Hans".
    let copy = dir.path().join("copy.sqlite");
    assert!(visage(&["gallery", "import", s(&export), "--db", s(&copy)])
        .status
        .success());
    assert_eq!(list(&copy)["people"].as_array().unwrap().len(), 2);
    let out = visage(&["gallery", "import", s(&export), "--db", s(&db)]);
    assert_one_line_error(&out, &["Hans", "already enrolled"]);
    assert_eq!(
        list(&db)["people"].as_array().unwrap().len(),
        1,
        "nothing imported"
    );
}

#[test]
fn bad_input_gives_one_line_errors_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.sqlite");
    ok_json(&visage(&[
        "enroll",
        "Tony Blair",
        s(&lfw("Tony_Blair", 0)),
        "--db",
        s(&db),
        "--json",
    ]));
    let before = list(&db);

    // Zero faces and several faces: the error lists each file, nothing is stored.
    let blank = dir.path().join("blank.png");
    image::RgbImage::from_pixel(200, 200, image::Rgb([128, 128, 128]))
        .save(&blank)
        .unwrap();
    let group =
        shared().join("golden/dlib/images/examples__knn_examples__test__obama_and_biden.jpg");
    let out = visage(&[
        "enroll",
        "Someone",
        s(&lfw("Hans_Blix", 0)),
        s(&blank),
        s(&group),
        "--db",
        s(&db),
    ]);
    assert_one_line_error(
        &out,
        &[
            "nothing enrolled",
            "blank.png: no face",
            "obama_and_biden.jpg: 3 faces",
            "--largest",
        ],
    );
    assert_eq!(list(&db), before);
    // A missing file is named too.
    let out = visage(&[
        "enroll",
        "Someone",
        s(&dir.path().join("nope.jpg")),
        "--db",
        s(&db),
    ]);
    assert_one_line_error(&out, &["nope.jpg"]);
    assert_eq!(list(&db), before);

    // Unknown names.
    for args in [
        vec!["gallery", "show", "Nobody"],
        vec!["gallery", "rename", "Nobody", "X"],
        vec!["gallery", "remove", "Nobody"],
    ] {
        let mut a = args.clone();
        a.extend(["--db", s(&db)]);
        assert_one_line_error(&visage(&a), &["no person named \"Nobody\""]);
    }
    assert_eq!(list(&db), before);

    // A damaged file is refused and left as it was.
    let damaged = dir.path().join("damaged.sqlite");
    let garbage: Vec<u8> = (0..16384u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&damaged, &garbage).unwrap();
    for args in [
        vec!["enroll", "X", s(&lfw("Hans_Blix", 0))],
        vec!["identify", s(&lfw("Hans_Blix", 0))],
        vec!["gallery", "list"],
    ] {
        let mut a = args.clone();
        a.extend(["--db", s(&damaged)]);
        assert_one_line_error(&visage(&a), &["damaged"]);
    }
    assert_eq!(std::fs::read(&damaged).unwrap(), garbage);

    // A gallery of other models is refused, never mixed.
    let other = dir.path().join("other.sqlite");
    drop(Gallery::open(&other, "some-other-models").unwrap());
    let out = visage(&["identify", s(&lfw("Hans_Blix", 0)), "--db", s(&other)]);
    assert_one_line_error(&out, &["some-other-models", &manifest_id()]);
    let out = visage(&["enroll", "X", s(&lfw("Hans_Blix", 0)), "--db", s(&other)]);
    assert_one_line_error(&out, &["some-other-models"]);
    assert_eq!(
        Gallery::open_existing(&other)
            .unwrap()
            .template_count()
            .unwrap(),
        0
    );

    // An empty gallery, and no gallery at all.
    let empty = dir.path().join("empty.sqlite");
    drop(Gallery::open(&empty, &manifest_id()).unwrap());
    assert_one_line_error(
        &visage(&["identify", s(&lfw("Hans_Blix", 0)), "--db", s(&empty)]),
        &["empty"],
    );
    let missing = dir.path().join("missing.sqlite");
    assert_one_line_error(
        &visage(&["identify", s(&lfw("Hans_Blix", 0)), "--db", s(&missing)]),
        &["no gallery"],
    );
    assert!(!missing.exists());
    let out = visage(&["enroll", "X", s(&blank), "--db", s(&missing)]);
    assert_one_line_error(&out, &["no face"]);
    assert!(
        !missing.exists(),
        "a failed first enrolment creates no gallery"
    );
}

/// A folder per person, each holding one LFW photo (symlinked), for `enroll --from-dir`.
fn people_folder(root: &Path, count: usize) -> Vec<String> {
    let images = shared().join("data/lfw/images");
    let mut names: Vec<String> = std::fs::read_dir(&images)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names.truncate(count);
    for n in &names {
        let d = root.join(n);
        std::fs::create_dir_all(&d).unwrap();
        std::os::unix::fs::symlink(lfw(n, 0), d.join("1.jpg")).unwrap();
    }
    names
}

#[test]
fn killed_enrolment_keeps_exactly_the_committed_people_and_readers_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.sqlite");
    let folder = dir.path().join("people");
    people_folder(&folder, 120);
    let mut child = command(&["enroll", "--from-dir", s(&folder), "--db", s(&db)])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed: Vec<String> = Vec::new();
    let start = Instant::now();
    let mut reads = 0;
    while printed.len() < 12 {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(rest) = line.strip_prefix("enrolled ") {
            printed.push(rest.rsplit_once(" (").unwrap().0.to_string());
        }
        // Readers during the enrolment: the CLI and the library both see whole people.
        if printed.len() % 4 == 1 {
            let l = list(&db);
            assert!(l["people"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["templates"] == 1));
            let g = Gallery::open_existing(&db).unwrap();
            assert!(g.people().unwrap().len() >= printed.len());
            reads += 1;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "enrolment too slow"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
    for line in lines.map_while(Result::ok) {
        if let Some(rest) = line.strip_prefix("enrolled ") {
            printed.push(rest.rsplit_once(" (").unwrap().0.to_string());
        }
    }
    assert!(reads > 0);
    let g = Gallery::open_existing(&db).expect("the gallery opens after the kill");
    let stored: Vec<String> = g.people().unwrap().into_iter().map(|p| p.name).collect();
    assert!(
        printed.iter().all(|p| stored.contains(p)),
        "every reported person is stored"
    );
    // The kill may land between a commit and its line, never inside a transaction.
    assert!(
        stored.len() <= printed.len() + 1,
        "{} stored, {} printed",
        stored.len(),
        printed.len()
    );
    assert!(stored.len() < 120, "the kill came mid-batch");
    assert_eq!(
        g.template_count().unwrap(),
        stored.len(),
        "one template per person, none partial"
    );
    drop(g);

    // Running the same command again resumes after the committed people.
    let out = visage(&["enroll", "--from-dir", s(&folder), "--db", s(&db), "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{} already enrolled", stored.len())),
        "{stderr}"
    );
    let after = list(&db)["people"].as_array().unwrap().len();
    let new_lines = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(after, stored.len() + new_lines);
    assert!(after > 100, "most LFW photos have a detectable face");
}

fn lfw_subset(dir: &Path) -> PathBuf {
    // Two folds of 3 same and 3 different pairs from the real file.
    let text = std::fs::read_to_string(shared().join("data/lfw/pairs.txt")).unwrap();
    let lines: Vec<&str> = text.lines().skip(1).collect();
    let mut out = vec!["2\t3".to_string()];
    for f in 0..2 {
        let block = &lines[f * 600..(f + 1) * 600];
        out.extend(block[..3].iter().map(|s| s.to_string()));
        out.extend(block[300..303].iter().map(|s| s.to_string()));
    }
    let path = dir.join("pairs.txt");
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
    path
}

#[test]
fn eval_lfw_on_a_subset_then_again_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = lfw_subset(dir.path());
    let images = shared().join("data/lfw/images");
    let cache = dir.path().join("cache.sqlite");
    let plot = dir.path().join("roc.png");
    let args = [
        "eval",
        "lfw",
        "--pairs",
        s(&pairs),
        "--images",
        s(&images),
        "--json",
        "--cache",
        s(&cache),
        "--plot",
        s(&plot),
    ];
    let first = ok_json(&visage(&args));
    assert_eq!(first["pairs"], 12);
    assert_eq!(first["folds"].as_array().unwrap().len(), 2);
    assert!(first["mean_accuracy"].as_f64().unwrap() >= 0.8, "{first}");
    assert!(first["seconds_per_image"].as_f64().unwrap() > 0.0);
    assert_eq!(first["images_from_cache"], 0);
    assert!(std::fs::read(&plot).unwrap().starts_with(b"\x89PNG"));
    let second = ok_json(&visage(&args));
    assert_eq!(second["images_from_cache"], second["images"]);
    assert!(second["seconds_per_image"].is_null());
    assert_eq!(second["mean_accuracy"], first["mean_accuracy"]);

    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "10 300\nAda 1\n").unwrap();
    let out = visage(&[
        "eval",
        "lfw",
        "--pairs",
        s(&bad),
        "--images",
        s(&images),
        "--no-cache",
    ]);
    assert_one_line_error(&out, &["invalid pairs file", "line 2"]);
}

#[test]
fn calibrate_from_folders_saves_tau_and_eval_identify_reports() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("people");
    // Four people with several photos, two with one (strangers for eval identify).
    for (name, n) in [
        ("Tony_Blair", 4),
        ("Hans_Blix", 4),
        ("Jiang_Zemin", 4),
        ("Wen_Jiabao", 4),
        ("Abel_Pacheco", 1),
        ("Amber_Tamblyn", 1),
    ] {
        let d = root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for k in 0..n {
            std::os::unix::fs::symlink(lfw(name, k), d.join(format!("{k}.jpg"))).unwrap();
        }
    }
    let db = dir.path().join("g.sqlite");
    let cache = dir.path().join("cache.sqlite");
    let out_json = dir.path().join("calibration.json");
    let c = ok_json(&visage(&[
        "calibrate",
        "--dir",
        s(&root),
        "--target-far",
        "0.05",
        "--save",
        "--json",
        "--db",
        s(&db),
        "--cache",
        s(&cache),
        "--out",
        s(&out_json),
    ]));
    let tau = c["threshold"].as_f64().unwrap();
    assert!(tau > 0.2 && tau < 1.0, "{c}");
    assert!(c["far"].as_f64().unwrap() <= 0.05);
    assert!(c["eer"].as_f64().unwrap() < 0.3);
    assert!((list(&db)["threshold"].as_f64().unwrap() - tau).abs() < 1e-6);
    let full: Value = serde_json::from_str(&std::fs::read_to_string(&out_json).unwrap()).unwrap();
    assert_eq!(full["roc"].as_array().unwrap().len(), 201);

    let r = ok_json(&visage(&[
        "eval",
        "identify",
        "--dir",
        s(&root),
        "--threshold",
        "0.6",
        "--json",
        "--cache",
        s(&cache),
    ]));
    assert_eq!(r["enrolled"], 4);
    assert_eq!(r["stranger_probes"], 2);
    assert!(r["genuine_probes"].as_u64().unwrap() >= 10);
    assert!(r["rank1_accuracy"].as_f64().unwrap() >= 0.8, "{r}");
    assert!((r["points"][0]["threshold"].as_f64().unwrap() - 0.6).abs() < 1e-6);
}
