//! End-to-end checks on real Omniglot images (from `$VISAGE_SHARED`, default `../shared`):
//! tiny runs of every method, collapse reporting, checkpoints, and few-shot evaluation on a
//! tiny run layout. Networks are shrunk (12-pixel inputs, 2 blocks of 8 channels) so that each
//! test takes seconds.

use std::path::PathBuf;

use visage_testdata::shared;
use visage_train::augment::Augment;
use visage_train::checkpoint::{self, InspectableNet};
use visage_train::data::{
    character_dirs, character_images, load_image, load_omniglot, Class, Dataset, Framing,
    InkMoments,
};
use visage_train::fewshot::{
    build_runs, evaluate, fit_whitening, read_runs, Crowding, Member, RunSpec,
    TestTimeAugmentation, WHITENING_DRAWERS,
};
use visage_train::mining::Miner;
use visage_train::model::{NetConfig, PairFeatures};
use visage_train::train::{embed, train, Method, TrainConfig};

fn omniglot(set: &str) -> PathBuf {
    shared().join("data/omniglot").join(set)
}

/// The first `n` characters of small1, 12x12.
fn tiny_data(n: usize) -> Dataset {
    let mut d = load_omniglot(&omniglot("images_background_small1"), 12, Framing::AsDrawn).unwrap();
    d.classes.truncate(n);
    d
}

fn tiny_config(method: Method, steps: usize) -> TrainConfig {
    let mut c = TrainConfig::omniglot(method);
    c.net = NetConfig {
        input_size: 12,
        blocks: 2,
        channels: 8,
        last_channels: None,
        ..NetConfig::default()
    };
    c.steps = steps;
    c.classes_per_batch = 8;
    c.images_per_class = 4;
    c.augment = Augment::NONE;
    c.learning_rate = 3e-3;
    c.checkpoint_every = 0;
    c.collapse_window = 10;
    // The tiny data sets are loaded as drawn.
    c.framing = Framing::AsDrawn;
    c
}

fn early_late(curve: &[visage_train::train::CurvePoint]) -> (f32, f32) {
    let k = curve.len() / 4;
    let mean = |s: &[visage_train::train::CurvePoint]| {
        s.iter().map(|p| p.loss).sum::<f32>() / s.len() as f32
    };
    (mean(&curve[..k]), mean(&curve[curve.len() - k..]))
}

#[test]
fn tiny_runs_of_every_method_lower_the_loss() {
    let data = tiny_data(24);
    let methods = [
        // Every triplet: a fixed objective, so its value is comparable across steps (a miner
        // picks harder triplets as the embedding improves, which keeps its loss up).
        Method::Triplet {
            margin: 0.2,
            miner: Miner::All,
            normalize: true,
        },
        Method::Pair {
            features: PairFeatures::AbsDiff,
        },
        Method::Proto { shots: 1 },
        // The class count is taken from the data.
        Method::Classify {
            classes: 0,
            scale: 10.0,
        },
    ];
    for method in methods {
        let dir = tempfile::tempdir().unwrap();
        let cfg = tiny_config(method, 80);
        let summary = train(&cfg, &data, dir.path(), None, &mut |_| {}).unwrap();
        let meta = checkpoint::read_meta(&summary.checkpoint).unwrap();
        let (early, late) = early_late(&meta.curve);
        // Mean loss of the last quarter of the steps against the first quarter.
        assert!(
            late < 0.93 * early,
            "{}: loss {early} -> {late}",
            method.name()
        );
        assert!(summary.collapse.is_none(), "{:?}", summary.collapse);
        assert!(dir.path().join("summary.json").is_file());
        assert!(dir.path().join("curve.png").is_file());
    }
}

#[test]
fn a_run_on_blank_images_reports_a_collapsed_embedding() {
    // Blank images give every item the same embedding: the triplet loss sits at the margin.
    let blank = Dataset {
        side: 12,
        framing: Framing::AsDrawn,
        classes: (0..10)
            .map(|c| Class {
                name: format!("blank{c}"),
                images: vec![vec![0.0; 144]; 5],
            })
            .collect(),
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny_config(
        Method::Triplet {
            margin: 0.2,
            miner: Miner::All,
            normalize: true,
        },
        40,
    );
    cfg.stop_on_collapse = true;
    let summary = train(&cfg, &blank, dir.path(), None, &mut |_| {}).unwrap();
    let collapse = summary.collapse.expect("collapse reported");
    assert!(collapse.reason.contains("stuck"), "{}", collapse.reason);
    assert!(summary.steps_done < 40, "stopped at {}", summary.steps_done);
}

#[test]
fn same_seed_same_run_and_a_checkpoint_resumes_and_reloads() {
    let data = tiny_data(16);
    let cfg = tiny_config(Method::Proto { shots: 1 }, 6);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sa = train(&cfg, &data, a.path(), None, &mut |_| {}).unwrap();
    let sb = train(&cfg, &data, b.path(), None, &mut |_| {}).unwrap();
    let ca = checkpoint::read_meta(&sa.checkpoint).unwrap().curve;
    let cb = checkpoint::read_meta(&sb.checkpoint).unwrap().curve;
    assert_eq!(ca, cb);

    // Resume to 10 steps: the curve continues from step 7.
    let mut more = cfg.clone();
    more.steps = 10;
    let sr = train(&more, &data, a.path(), Some(&sa.checkpoint), &mut |_| {}).unwrap();
    let meta = checkpoint::read_meta(&sr.checkpoint).unwrap();
    assert_eq!(meta.step, 10);
    assert_eq!(meta.curve.len(), 10);
    assert_eq!(&meta.curve[..6], &ca[..]);

    // Reloaded, the model embeds like itself, and exposes its layers for inspection.
    let device = checkpoint::plain_device();
    let (m1, meta1) = checkpoint::load(&sr.checkpoint, &device).unwrap();
    let (m2, _) = checkpoint::load(&sr.checkpoint, &device).unwrap();
    let imgs = data.classes[0].images[..3].to_vec();
    assert_eq!(
        embed(&m1, &meta1.config, &imgs).unwrap(),
        embed(&m2, &meta1.config, &imgs).unwrap()
    );
    let net = InspectableNet::load(&sr.checkpoint).unwrap();
    let acts = net.activations(&imgs).unwrap();
    assert_eq!(acts.len(), 2);
    assert_eq!(acts[0].dims, [3, 8, 12, 12]);
    assert_eq!(acts[1].dims, [3, 8, 6, 6]);
    let g = net.geometry();
    assert_eq!((g[0].kernel, g[0].stride, g[0].padding), (3, 1, 1));
    assert_eq!((g[1].kernel, g[1].stride, g[1].padding), (2, 2, 0));
}

#[test]
fn a_run_resumed_from_a_middle_checkpoint_continues_exactly() {
    let data = tiny_data(16);
    let mut cfg = tiny_config(Method::Proto { shots: 1 }, 10);
    cfg.checkpoint_every = 6;
    let (straight, middle) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // At step 7 the files saved at step 6 are still there: keep a copy.
    let mut copy = |p: visage_train::train::Progress| {
        if p.step == 7 {
            for f in ["model.safetensors", "optimizer.bpk"] {
                std::fs::copy(straight.path().join(f), middle.path().join(f)).unwrap();
            }
        }
    };
    let whole = train(&cfg, &data, straight.path(), None, &mut copy).unwrap();
    let ckpt = middle.path().join("model.safetensors");
    assert_eq!(checkpoint::read_meta(&ckpt).unwrap().step, 6);
    let resumed = train(&cfg, &data, middle.path(), Some(&ckpt), &mut |_| {}).unwrap();
    let a = checkpoint::read_meta(&whole.checkpoint).unwrap().curve;
    let b = checkpoint::read_meta(&resumed.checkpoint).unwrap().curve;
    // Same batches, weights and Adam moments: the last four losses are the same numbers.
    assert_eq!(a, b);

    // An optimizer state that is not the one saved with the checkpoint is refused.
    std::fs::write(middle.path().join("optimizer.bpk"), b"another state").unwrap();
    let mut more = cfg.clone();
    more.steps = 12;
    let e = train(
        &more,
        &data,
        middle.path(),
        Some(&resumed.checkpoint),
        &mut |_| {},
    )
    .expect_err("a mismatched optimizer state");
    assert!(e.to_string().contains("optimizer state"), "{e}");
}

#[test]
fn fewshot_eval_reads_a_tiny_run_layout_and_beats_chance() {
    let runs_dir = tempfile::tempdir().unwrap();
    let used = build_runs(
        &omniglot("images_background_small2"),
        runs_dir.path(),
        &RunSpec {
            runs: 4,
            ways: 5,
            exclude_alphabets: vec!["Greek".into(), "Latin".into()],
            across_alphabets: false,
            seed: 3,
        },
    )
    .unwrap();
    assert!(!used.contains(&"Greek".to_string()) && !used.contains(&"Latin".to_string()));
    // Tagalog has 17 characters: too few for a 20-way run within it, enough across alphabets.
    let twenty = |across_alphabets| {
        let dir = tempfile::tempdir().unwrap();
        let spec = RunSpec {
            runs: 1,
            ways: 20,
            exclude_alphabets: vec!["Greek".into(), "Latin".into()],
            across_alphabets,
            seed: 3,
        };
        build_runs(&omniglot("images_background_small2"), dir.path(), &spec).unwrap()
    };
    assert!(!twenty(false).contains(&"Tagalog".to_string()));
    assert!(twenty(true).contains(&"Tagalog".to_string()));
    let runs = read_runs(runs_dir.path()).unwrap();
    assert_eq!(runs.len(), 4);
    assert!(runs
        .iter()
        .all(|r| r.training.len() == 5 && r.tests.len() == 5));
    let labels = std::fs::read_to_string(runs_dir.path().join("run01/class_labels.txt")).unwrap();
    assert!(labels
        .lines()
        .next()
        .unwrap()
        .starts_with("run01/test/item01.png run01/training/class"));

    let data = tiny_data(40);
    let model_dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(Method::Proto { shots: 1 }, 60);
    let s = train(&cfg, &data, model_dir.path(), None, &mut |_| {}).unwrap();
    let (model, meta) = checkpoint::load(&s.checkpoint, &checkpoint::plain_device()).unwrap();
    let member = Member {
        model: &model,
        config: &meta.config,
        whitening: None,
    };
    let plain = TestTimeAugmentation::NONE;
    let result = evaluate(&[member], &runs, plain, Crowding::OFF).unwrap();
    assert_eq!((result.items, result.ways), (20, 5));
    // Chance is 20%.
    assert!(result.accuracy >= 0.4, "{result:?}");
    assert_eq!(result.correct_without_crowding, result.correct);
    // Every wrong item is listed once, with its own class's training image and another one
    // of its run.
    assert_eq!(result.mistakes.len(), result.items - result.correct);
    for m in &result.mistakes {
        let run = runs
            .iter()
            .find(|r| r.name == m.run)
            .expect("the mistake's run");
        let (_, truth) = run
            .tests
            .iter()
            .find(|(item, _)| *item == m.item)
            .expect("its item");
        assert_eq!(run.training[*truth], m.truth);
        assert!(
            m.chosen != m.truth && run.training.contains(&m.chosen),
            "{m:?}"
        );
    }
    // Runs drawn from one set share drawings, each embedded once: a copy of a run adds its
    // items but no image to embed, and its items are decided as the original's.
    let copy = tempfile::tempdir().unwrap();
    for name in ["run01", "run02", "run03", "run04", "run05"] {
        let from = runs_dir
            .path()
            .join(if name == "run05" { "run01" } else { name });
        for sub in ["training", "test"] {
            std::fs::create_dir_all(copy.path().join(name).join(sub)).unwrap();
            for entry in std::fs::read_dir(from.join(sub)).unwrap() {
                let entry = entry.unwrap();
                let to = copy.path().join(name).join(sub).join(entry.file_name());
                std::fs::copy(entry.path(), to).unwrap();
            }
        }
        let labels = std::fs::read_to_string(from.join("class_labels.txt")).unwrap();
        let labels = labels.replace("run01/", &format!("{name}/"));
        std::fs::write(copy.path().join(name).join("class_labels.txt"), labels).unwrap();
    }
    let with_copy = evaluate(
        &[member],
        &read_runs(copy.path()).unwrap(),
        plain,
        Crowding::OFF,
    )
    .unwrap();
    assert_eq!(with_copy.distinct_images, result.distinct_images);
    assert!((10..=40).contains(&result.distinct_images), "{result:?}");
    assert_eq!(with_copy.items, 25);
    assert_eq!(with_copy.per_run[..4], result.per_run[..]);
    assert_eq!(with_copy.per_run[4], result.per_run[0]);
    let items_of = |r: &visage_train::fewshot::FewShotResult, run: &str| -> Vec<String> {
        let name = |p: &std::path::Path| p.file_name().unwrap().to_string_lossy().into_owned();
        r.mistakes
            .iter()
            .filter(|m| m.run == run)
            .map(|m| format!("{} {} {}", name(&m.item), name(&m.truth), name(&m.chosen)))
            .collect()
    };
    assert_eq!(items_of(&with_copy, "run05"), items_of(&result, "run01"));
    // With crowding scaling, the count without it is the plain evaluation's.
    let crowded = evaluate(&[member], &runs, plain, Crowding::DEFAULT).unwrap();
    assert_eq!(crowded.correct_without_crowding, result.correct);
    assert!(crowded.accuracy >= 0.4, "{crowded:?}");
    // A model voting with itself decides as it does alone.
    let twice = evaluate(&[member, member], &runs, plain, Crowding::DEFAULT).unwrap();
    assert_eq!(
        (twice.models, twice.correct, twice.correct_without_crowding),
        (2, crowded.correct, result.correct)
    );
    assert!(evaluate(&[], &runs, plain, Crowding::OFF).is_err());
    // Whitened by the within-class scatter of the training set's characters: one class per
    // character (no symmetries), still well above chance.
    let background = omniglot("images_background_small1");
    let whitening = fit_whitening(&member, &background, plain, 0.7).unwrap();
    assert_eq!(whitening.groups, 136);
    assert_eq!(whitening.samples, 136 * WHITENING_DRAWERS);
    let whitened = Member {
        whitening: Some(&whitening),
        ..member
    };
    let result_whitened = evaluate(&[whitened], &runs, plain, Crowding::DEFAULT).unwrap();
    assert!(result_whitened.accuracy >= 0.4, "{result_whitened:?}");
    assert!(fit_whitening(&member, &background, plain, 0.0).is_err());
    let no_neighbours = Crowding {
        neighbours: 0,
        power: 0.5,
    };
    assert!(evaluate(&[member], &runs, plain, no_neighbours).is_err());

    // Under all eight symmetries with shifts the items are the same, and still well above chance.
    let views = TestTimeAugmentation {
        shifts: 1,
        symmetries: 8,
    };
    let viewed = evaluate(&[member], &runs, views, Crowding::DEFAULT).unwrap();
    assert_eq!((viewed.items, viewed.augmentation), (20, views));
    assert!(viewed.accuracy >= 0.4, "{viewed:?}");
    for bad in [
        TestTimeAugmentation {
            shifts: 0,
            symmetries: 3,
        },
        TestTimeAugmentation {
            shifts: 5,
            symmetries: 1,
        },
    ] {
        assert!(
            evaluate(&[member], &runs, bad, Crowding::OFF).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn drawers_copies_of_a_character_framed_centred_sit_alike() {
    let set = omniglot("images_background_small1");
    let (_, dir) = character_dirs(&set, &[]).unwrap()[7].clone();
    let files = character_images(&dir).unwrap();
    let side = 28;
    let Framing::Centred { radius } = Framing::OMNIGLOT else {
        panic!("Omniglot's framing is centred");
    };
    let (mut as_drawn, mut centred) = (Vec::new(), Vec::new());
    for file in &files[..8] {
        let image = load_image(file, side, Framing::AsDrawn).unwrap();
        as_drawn.push(
            InkMoments::of(&image, side)
                .unwrap()
                .offset_from_centre(side),
        );
        let image = load_image(file, side, Framing::OMNIGLOT).unwrap();
        let m = InkMoments::of(&image, side).unwrap();
        // Within a pixel: shrinking and ink pushed past the frame's edge move it a little.
        assert!(m.offset_from_centre(side) < 1.0, "{file:?}: {m:?}");
        centred.push(m.offset_from_centre(side));
        // Shrinking blurs strokes a little, which widens the ink's spread.
        assert!(
            (m.gyration / (radius * side as f64) - 1.0).abs() < 0.1,
            "{file:?}: {m:?}"
        );
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    // As drawn, the drawers' copies sit farther from the centre.
    assert!(
        mean(&as_drawn) > 4.0 * mean(&centred),
        "{as_drawn:?} {centred:?}"
    );
}

#[test]
fn a_run_refuses_data_framed_otherwise_than_its_settings() {
    let data = tiny_data(8);
    let mut cfg = tiny_config(Method::Proto { shots: 1 }, 1);
    cfg.framing = Framing::OMNIGLOT;
    let dir = tempfile::tempdir().unwrap();
    let err = train(&cfg, &data, dir.path(), None, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("framed"), "{err}");
    assert!(!dir.path().join("model.safetensors").exists());
}
