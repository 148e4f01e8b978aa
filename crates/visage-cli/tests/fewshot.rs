//! End-to-end tests of `visage train omniglot` and `visage fewshot` on real Omniglot images, with
//! a network shrunk to 12-pixel inputs so that each run takes seconds.

mod common;

use common::{json, shared, visage};

fn omniglot(set: &str) -> String {
    shared()
        .join("data/omniglot")
        .join(set)
        .to_string_lossy()
        .into_owned()
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn train_evaluate_and_resume_a_tiny_classifier_embedding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runs = dir.path().join("runs");
    let out = visage(&[
        "fewshot",
        "build-runs",
        "--from",
        &omniglot("images_background_small2"),
        "--exclude-alphabets-of",
        &omniglot("images_background_small1"),
        "--out",
        path(&runs),
        "--runs",
        "2",
        "--ways",
        "5",
        "--across-alphabets",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("across alphabets"));

    let run = dir.path().join("run");
    let tiny = [
        "--side",
        "12",
        "--blocks",
        "2",
        "--channels",
        "8",
        "--checkpoint-every",
        "0",
        "--json",
    ];
    let small1 = omniglot("images_background_small1");
    let args = |steps: &'static str| {
        let mut a = vec![
            "train",
            "omniglot",
            "--data",
            small1.as_str(),
            "--out",
            path(&run),
            "--method",
            "classify",
            "--steps",
            steps,
        ];
        a.extend(tiny);
        a
    };
    let summary = json(&visage(&args("4")));
    assert_eq!(summary["config"]["method"]["kind"], "classify");
    // 136 characters of small1, each also rotated three ways.
    assert_eq!(summary["config"]["method"]["classes"], 544);
    assert_eq!(summary["classes"], 544);
    assert_eq!(summary["steps_done"], 4);
    assert!(run.join("optimizer.bpk").is_file());

    let model = run.join("model.safetensors");
    // `visage fewshot eval` of the model on the runs, with `extra` settings.
    let evaluate = |extra: &[&str]| {
        let mut a = vec![
            "fewshot",
            "eval",
            "--runs",
            path(&runs),
            "--model",
            path(&model),
        ];
        a.extend(extra);
        visage(&a)
    };
    let mistakes = dir.path().join("mistakes.tsv");
    let eval = json(&evaluate(&[
        "--shifts",
        "1",
        "--symmetries",
        "4",
        "--json",
        "--mistakes",
        path(&mistakes),
    ]));
    // A header, then one line per wrong item naming files of the runs.
    let listed = std::fs::read_to_string(&mistakes).expect("mistakes written");
    let mut lines = listed.lines();
    assert_eq!(lines.next(), Some("run\titem\ttruth\tchosen"));
    let wrong: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
    let (items, correct) = (eval["items"].as_u64(), eval["correct"].as_u64());
    assert_eq!(
        Some(wrong.len() as u64),
        items.zip(correct).map(|(i, c)| i - c)
    );
    for w in &wrong {
        assert_eq!(w.len(), 4, "{w:?}");
        assert!(w[1].starts_with(&format!("{}/test/", w[0])), "{w:?}");
        assert_ne!(w[2], w[3]);
        assert!(w[1..].iter().all(|p| runs.join(p).is_file()), "{w:?}");
    }
    assert_eq!(
        (eval["items"].as_u64(), eval["ways"].as_u64()),
        (Some(10), Some(5))
    );
    let acc = eval["accuracy"].as_f64().expect("accuracy");
    assert!((0.0..=1.0).contains(&acc), "{eval}");
    // Two runs of 5 classes: 20 images, at least the 10 drawings of one run distinct.
    let distinct = eval["distinct_images"].as_u64().expect("distinct_images");
    assert!((10..=20).contains(&distinct), "{eval}");
    assert_eq!(
        (&eval["shifts"], &eval["symmetries"]),
        (&1.into(), &4.into())
    );
    // Images are framed as the model was trained (the classifier: as drawn).
    assert_eq!(eval["framing"]["kind"], "as-drawn");

    let mut resume = args("6");
    resume.extend(["--resume", path(&model)]);
    let resumed = json(&visage(&resume));
    assert_eq!(resumed["steps_done"], 6);

    // Mirrored characters (and mirrored rotations) double the classes.
    let mirrored_run = dir.path().join("mirrored");
    let mut mirrored = args("1");
    mirrored[5] = path(&mirrored_run);
    mirrored.push("--mirrors");
    // ... and the framing asked for is the one recorded (the classifier's default is as drawn).
    mirrored.extend(["--framing", "centred", "--ink-radius", "0.25"]);
    let summary = json(&visage(&mirrored));
    assert_eq!(
        (&summary["classes"], &summary["config"]["mirrors"]),
        (&1088.into(), &true.into())
    );
    assert_eq!(
        summary["config"]["framing"],
        serde_json::json!({"kind": "centred", "radius": 0.25})
    );
    assert_eq!(resumed["config"]["framing"]["kind"], "as-drawn");

    // Whitened by the training set's drawers: the JSON names the set and what it was fitted on
    // (136 characters, 6 drawers each), and the text says so.
    let whitened = json(&evaluate(&["--whiten-from", &small1, "--json"]));
    assert_eq!(
        (
            &whitened["whitening"]["classes"],
            &whitened["whitening"]["embeddings"]
        ),
        (&136.into(), &816.into()),
        "{whitened}"
    );
    let text = evaluate(&["--whiten-from", &small1]);
    assert!(text.status.success());
    let said = String::from_utf8_lossy(&text.stdout);
    assert!(
        said.contains("whitened by the scatter of 136 classes"),
        "{said}"
    );

    // Two checkpoints vote together, each framing the images its own way, each described.
    let mirrored_model = mirrored_run.join("model.safetensors");
    let ensemble = json(&visage(&[
        "fewshot",
        "eval",
        "--json",
        "--runs",
        path(&runs),
        "--model",
        path(&model),
        path(&mirrored_model),
    ]));
    assert_eq!(ensemble["items"].as_u64(), Some(10));
    let members = ensemble["models"].as_array().expect("models");
    let described: Vec<_> = members
        .iter()
        .map(|m| (m["train_steps"].clone(), m["framing"]["kind"].clone()))
        .collect();
    assert_eq!(
        described,
        [(6.into(), "as-drawn".into()), (1.into(), "centred".into())],
        "{ensemble}"
    );
    // One model's fields sit at the top level only when there is one.
    assert!(ensemble.get("method").is_none(), "{ensemble}");
}

#[test]
fn bad_training_and_evaluation_input_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-set");
    let out = visage(&[
        "train",
        "omniglot",
        "--data",
        path(&missing),
        "--out",
        path(&dir.path().join("run")),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-set"), "{err}");

    // Out-of-range test-time augmentation is refused, naming the setting.
    let model = dir.path().join("m.safetensors");
    for (flag, value, says) in [
        ("--shifts", "9", "at most 4"),
        ("--symmetries", "3", "1, 4 (quarter turns) or 8"),
    ] {
        let out = visage(&[
            "fewshot",
            "eval",
            "--runs",
            path(dir.path()),
            "--model",
            path(&model),
            flag,
            value,
        ]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{flag} {value}")) && err.contains(says),
            "{err}"
        );
    }

    // A radius of gyration beyond half the side, a radius for drawings left as drawn, a
    // distortion factor that is not a number, or a warp beyond its range.
    let run3 = dir.path().join("run3");
    for (extra, says) in [
        (&["--ink-radius", "0.9"][..], "ink radius of 0.9"),
        (
            &["--framing", "as-drawn", "--ink-radius", "0.2"][..],
            "--ink-radius needs --framing centred",
        ),
        (&["--distortion", "nan"][..], "--distortion must be"),
        (&["--elastic", "0.7"][..], "--elastic must be"),
        (
            &["--elastic-smoothing", "0"][..],
            "--elastic-smoothing must be",
        ),
    ] {
        let mut args = vec![
            "train",
            "omniglot",
            "--data",
            path(&missing),
            "--out",
            path(&run3),
        ];
        args.extend(extra);
        let out = visage(&args);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    }

    // Within-alphabet batches of 400 classes: no small1 alphabet has that many with its rotated
    // and mirrored copies (Korean, the largest, has 320), so they are refused before any
    // training (one step, so that a missed refusal fails fast rather than trains).
    let out = visage(&[
        "train",
        "omniglot",
        "--data",
        &omniglot("images_background_small1"),
        "--out",
        path(&dir.path().join("run2")),
        "--within-alphabet",
        "--classes-per-batch",
        "400",
        "--steps",
        "1",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("within-alphabet"), "{err}");
}
