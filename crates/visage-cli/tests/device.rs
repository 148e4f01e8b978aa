//! `--device` and `visage device` on a build and a machine without a GPU (as in CI): the CPU is
//! listed, the GPU is refused with the reason, and nothing runs half-way.

mod common;

use common::{json, models, shared, visage};

fn photo() -> String {
    shared()
        .join("golden/dlib/images/examples__obama.jpg")
        .display()
        .to_string()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn device_lists_the_cpu_and_says_why_there_is_no_gpu() {
    let v = json(&visage(&["device", "--json"]));
    assert!(v["cpu"].as_str().unwrap_or("").contains("flex"), "{v}");
    if !cfg!(feature = "gpu") {
        assert!(v["gpu"].is_null(), "{v}");
        let why = v["gpu_error"].as_str().unwrap_or("");
        assert!(why.contains("--features gpu"), "{why}");
        let out = visage(&["device", "--check"]);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("--check needs a GPU"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn an_unknown_device_is_refused_by_name() {
    let out = visage(&["encode", "--device", "tpu", &photo()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unknown device `tpu`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_gpu_on_a_build_without_it_is_one_clear_error_before_any_work() {
    if cfg!(feature = "gpu") {
        return;
    }
    let m = models();
    let m = m.to_str().expect("utf-8 path");
    let out = visage(&["encode", "--device", "gpu", "--models", m, &photo()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "nothing encoded");
    assert!(stderr(&out).contains("--features gpu"), "{}", stderr(&out));
    let out = visage(&[
        "encode",
        "--device",
        "cpu",
        "--models",
        m,
        &photo(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("encoding"));
}

#[test]
fn an_unknown_check_part_is_refused_before_the_gpu_is_opened() {
    let out = visage(&["device", "--check", "--only", "encodings,stlye"]);
    assert!(!out.status.success());
    let why = stderr(&out);
    assert!(why.contains("--only stlye"), "{why}");
    assert!(why.contains("style-vgg19"), "{why}");
    assert!(!why.contains("needs a GPU"), "{why}");
}
