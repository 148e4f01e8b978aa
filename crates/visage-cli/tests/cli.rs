//! End-to-end tests of the `visage` binary on real photos and on bad input.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{models, shared, visage};
use serde_json::Value;

fn photo(name: &str) -> PathBuf {
    shared().join("golden/dlib/images").join(name)
}

fn golden(name: &str) -> Value {
    let path = shared()
        .join("golden/dlib")
        .join(format!("image_{name}.json"));
    serde_json::from_slice(&std::fs::read(&path).expect("golden json")).expect("json")
}

fn visage_with_models(args: &[&str], models_dir: &Path) -> Output {
    let mut all = args.to_vec();
    all.extend(["--models", models_dir.to_str().expect("utf-8 path")]);
    visage(&all)
}

fn stdout_json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each stdout line is JSON"))
        .collect()
}

/// A failed run: non-zero exit and exactly one line on stderr that mentions `needle`.
fn assert_one_line_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, stderr: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one-line error expected, got: {stderr}"
    );
    assert!(
        stderr.contains(needle),
        "error should mention {needle:?}: {stderr}"
    );
}

fn euclidean(a: &[Value], b: &[Value]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x.as_f64().unwrap() - y.as_f64().unwrap()).powi(2))
        .sum::<f64>()
        .sqrt()
}

#[test]
fn encode_json_from_original_jpegs_matches_the_peer() {
    let names = [
        "examples__obama",
        "examples__biden",
        "examples__knn_examples__test__obama_and_biden",
    ];
    let files: Vec<String> = names
        .iter()
        .map(|n| {
            photo(golden(n)["file"].as_str().unwrap())
                .display()
                .to_string()
        })
        .collect();
    let mut args = vec!["encode", "--json"];
    args.extend(files.iter().map(String::as_str));
    let out = visage_with_models(&args, &models());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = stdout_json_lines(&out);
    assert_eq!(lines.len(), names.len(), "one line per image");
    for (name, line) in names.iter().zip(&lines) {
        let want = golden(name);
        assert_eq!(line["width"], want["width"]);
        assert_eq!(line["height"], want["height"]);
        let faces = line["faces"].as_array().unwrap();
        let want_faces = want["faces"].as_array().unwrap();
        assert_eq!(
            faces.len(),
            want_faces.len(),
            "{name}: every face is reported"
        );
        for (face, want_face) in faces.iter().zip(want_faces) {
            let r = &want_face["rect"];
            let want_box: Vec<Value> = ["left", "top", "right", "bottom"]
                .iter()
                .map(|k| r[*k].clone())
                .collect();
            assert_eq!(face["box"].as_array().unwrap(), &want_box, "{name}: box");
            assert_eq!(face["landmarks"].as_array().unwrap().len(), 5);
            let d = euclidean(
                face["encoding"].as_array().unwrap(),
                want_face["encoding"].as_array().unwrap(),
            );
            assert!(d < 0.02, "{name}: encoding {d} from the peer's");
        }
    }
}

#[test]
fn detect_and_landmarks_print_the_earlier_fields_only() {
    let img = photo("examples__obama.jpg");
    let img = img.to_str().unwrap();
    let out = visage_with_models(&["detect", "--json", img], &models());
    assert!(out.status.success());
    let face = &stdout_json_lines(&out)[0]["faces"][0];
    assert!(face["box"].is_array() && face["score"].is_number());
    assert!(face.get("landmarks").is_none() && face.get("encoding").is_none());
    let out = visage_with_models(&["landmarks", "--json", img], &models());
    let face = &stdout_json_lines(&out)[0]["faces"][0];
    assert_eq!(face["landmarks"].as_array().unwrap().len(), 5);
    assert!(face.get("encoding").is_none());
}

#[test]
fn verify_tells_same_and_different_people_apart() {
    let run = |a: &str, b: &str| {
        let (a, b) = (photo(a), photo(b));
        let out = visage_with_models(
            &["verify", "--json", a.to_str().unwrap(), b.to_str().unwrap()],
            &models(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout_json_lines(&out).remove(0)
    };
    let obama = "examples__knn_examples__train__obama__obama.jpg";
    let same = run(obama, "examples__obama2.jpg");
    assert_eq!(same["same_person"], true, "{same}");
    let different = run(obama, "examples__biden.jpg");
    assert_eq!(different["same_person"], false, "{different}");
    let want = golden_pair_distance(obama, "examples__biden.jpg");
    let got = different["distance"].as_f64().unwrap();
    assert!(
        (got - want).abs() < 0.02,
        "distance {got} vs the peer's {want}"
    );
}

/// The peer's distance between face 0 of two golden images (pairwise.json: ids and a matrix).
fn golden_pair_distance(a: &str, b: &str) -> f64 {
    let pairs: Value =
        serde_json::from_slice(&std::fs::read(shared().join("golden/dlib/pairwise.json")).unwrap())
            .unwrap();
    let ids = pairs["ids"].as_array().unwrap();
    let index = |name: &str| {
        ids.iter()
            .position(|id| id == &Value::from(format!("{name}#0")))
            .unwrap()
    };
    pairs["distance"][index(a)][index(b)].as_f64().unwrap()
}

#[test]
fn no_face_is_an_empty_list_and_success() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.png");
    image::RgbImage::from_pixel(320, 240, image::Rgb([90, 120, 160]))
        .save(&path)
        .unwrap();
    let out = visage_with_models(&["encode", "--json", path.to_str().unwrap()], &models());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout_json_lines(&out)[0]["faces"], Value::Array(vec![]));
}

#[test]
fn bad_images_give_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.jpg");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.path().join("text.jpg");
    std::fs::write(&text, b"this is not a photo\n").unwrap();
    let truncated = dir.path().join("truncated.jpg");
    let jpeg = std::fs::read(photo("examples__obama.jpg")).unwrap();
    std::fs::write(&truncated, &jpeg[..jpeg.len() / 3]).unwrap();
    for (path, needle) in [
        (&empty, "empty file"),
        (&text, "not a supported image"),
        (&truncated, "truncated.jpg"),
    ] {
        let out = visage_with_models(&["detect", path.to_str().unwrap()], &models());
        assert_one_line_error(&out, needle);
    }
    let big = photo("examples__obama.jpg");
    let out = visage_with_models(
        &["detect", "--max-pixels", "100000", big.to_str().unwrap()],
        &models(),
    );
    assert_one_line_error(&out, "over the limit");
}

#[test]
fn one_bad_image_among_good_ones_still_reports_the_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    let good = photo("examples__obama_small.jpg");
    let out = visage_with_models(
        &[
            "detect",
            "--json",
            good.to_str().unwrap(),
            empty.to_str().unwrap(),
        ],
        &models(),
    );
    assert!(!out.status.success());
    assert_eq!(stdout_json_lines(&out).len(), 1);
}

/// A models directory in a temp dir with the dlib files linked in, so one can be altered.
fn models_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("dlib")).unwrap();
    for entry in std::fs::read_dir(models().join("dlib")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            dir.path().join("dlib").join(entry.file_name()),
        )
        .unwrap();
    }
    dir
}

#[test]
fn truncated_or_missing_model_is_named() {
    let dir = models_copy();
    let resnet = dir
        .path()
        .join("dlib/dlib_face_recognition_resnet_model_v1.dat");
    let bytes = std::fs::read(&resnet).unwrap();
    std::fs::write(&resnet, &bytes[..bytes.len() - 1000]).unwrap();
    let img = photo("examples__obama_small.jpg");
    let out = visage_with_models(&["encode", img.to_str().unwrap()], dir.path());
    assert_one_line_error(&out, "face-encoder");
    std::fs::remove_file(dir.path().join("dlib/frontal_face_detector.svm")).unwrap();
    let out = visage_with_models(&["models"], dir.path());
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("hog-detector: missing"), "{text}");
    assert!(
        text.contains("face-encoder") && text.contains("truncated"),
        "{text}"
    );
    let out = visage(&["encode", img.to_str().unwrap()]);
    assert_one_line_error(&out, "VISAGE_MODELS");
}

#[test]
fn models_fetch_from_a_directory_verifies_and_fills_the_gaps() {
    let target = tempfile::tempdir().unwrap();
    let from = models();
    let out = visage_with_models(
        &["models", "fetch", "--from", from.to_str().unwrap()],
        target.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = visage_with_models(&["models", "--json"], target.path());
    assert!(out.status.success());
    let state = &stdout_json_lines(&out)[0];
    assert!(
        state["models"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["state"] == "ok"),
        "{state}"
    );
}

#[test]
fn the_style_networks_are_a_set_of_their_own() {
    let target = tempfile::tempdir().unwrap();
    // Missing, they are named with the command that fetches them; the face set is not involved.
    let out = visage_with_models(&["models", "--set", "fast-style"], target.path());
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("fast-style-v1") && text.contains("multistyle26: missing"));
    assert!(
        text.contains("run `visage models fetch --set fast-style`"),
        "{text}"
    );
    let from = models();
    let out = visage_with_models(
        &[
            "models",
            "fetch",
            "--set",
            "fast-style",
            "--from",
            from.to_str().unwrap(),
        ],
        target.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = visage_with_models(&["models", "--set", "fast-style", "--json"], target.path());
    assert!(out.status.success());
    let state = &stdout_json_lines(&out)[0];
    assert_eq!(state["manifest"], "fast-style-v1");
    assert_eq!(state["models"].as_array().map(Vec::len), Some(3));
    // The face set in that folder is still missing: fetching one set leaves the other alone.
    assert!(!visage_with_models(&["models"], target.path())
        .status
        .success());
}

/// Serves the files below `root` over HTTP on 127.0.0.1 for `requests` requests, then stops.
fn serve_files(root: PathBuf, requests: usize) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap();
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_string();
            match std::fs::read(root.join(&path)) {
                Ok(body) => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&body);
                }
                Err(_) => {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            }
        }
    });
    (base, handle)
}

#[test]
fn models_fetch_from_a_local_server_downloads_and_verifies() {
    let target = tempfile::tempdir().unwrap();
    let (base, server) = serve_files(models(), 3);
    let out = visage_with_models(&["models", "fetch", "--from", &base], target.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.join().unwrap();
    let out = visage_with_models(&["models"], target.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn models_fetch_refuses_an_altered_download() {
    let altered = models_copy();
    let svm = altered.path().join("dlib/frontal_face_detector.svm");
    let mut bytes = std::fs::read(&svm).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&svm, &bytes).unwrap();
    let target = tempfile::tempdir().unwrap();
    let out = visage_with_models(
        &[
            "models",
            "fetch",
            "--from",
            altered.path().to_str().unwrap(),
        ],
        target.path(),
    );
    assert_one_line_error(&out, "SHA-256");
    assert!(
        !target
            .path()
            .join("dlib/frontal_face_detector.svm")
            .exists(),
        "nothing written"
    );
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    use std::process::Stdio;
    let img = photo("examples__obama_small.jpg");
    let img = img.to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_visage"))
        .args([
            "encode",
            "--models",
            models().to_str().unwrap(),
            img,
            img,
            img,
            img,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("visage runs");
    let mut first = [0u8; 8];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The read end is closed here, as `| head -c 8` would.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
