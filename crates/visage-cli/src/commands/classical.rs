//! `visage classical train|eval`: eigenfaces, Fisherfaces, SVM and nearest-neighbour baselines
//! on face sets (identification) and LFW pairs (verification).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use rayon::prelude::*;
use serde_json::{json, Value};
use visage_classical::dataset::{centre_crop, conform, list_people, load_gray, split_labels};
use visage_classical::nalgebra::DMatrix;
use visage_classical::verify::{verify_pairs, PairMethod, PairRef};
use visage_classical::{
    pictures, ClassicalModel, ClassifierSpec, Dataset, FeatureSpec, Input, Lda, LoadOptions,
    Metric, Pca, SizePolicy,
};
use visage_eval::cache::ImageEncoding;
use visage_eval::faces::{FaceChoice, PipelineEncoder};
use visage_eval::lfw::{distinct_images, parse_pairs};
use visage_eval::runner::{encode_all, EncodeStats, ImageEncoder};

use super::gallery_db::{open_cache, progress_bar};
use super::{decode_options, detect_options, load_models};
use crate::args::{
    CacheArgs, ClassicalAction, ClassicalArgs, ClassicalDataArgs, ClassicalEvalArgs,
    ClassicalFeatures, ClassicalKernel, ClassicalMethod, ClassicalMethodArgs, ClassicalMetric,
    ClassicalTrainArgs, DetectArgs, ModelsDir,
};

/// Reconstructions drawn by `train --pictures`, in principal components.
const RECONSTRUCTION_COMPONENTS: [usize; 4] = [5, 20, 50, 100];
/// Eigenfaces and Fisherfaces drawn by `train --pictures`.
const PICTURE_COMPONENTS: usize = 15;
/// LFW images are resized to this after the central crop unless --size says otherwise.
const LFW_DEFAULT_SIZE: (u32, u32) = (32, 32);

pub fn run(args: ClassicalArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        ClassicalAction::Train(a) => train(a),
        ClassicalAction::Eval(a) => eval(a),
    }
}

/// The method as a features + classifier pair, and a readable name.
fn spec(m: &ClassicalMethodArgs) -> anyhow::Result<(FeatureSpec, ClassifierSpec, String)> {
    let k = m.components;
    let metric = match m.metric {
        ClassicalMetric::Euclidean => Metric::Euclidean,
        ClassicalMetric::Cosine => Metric::Cosine,
    };
    let features = |f: ClassicalFeatures| match f {
        ClassicalFeatures::Pixels | ClassicalFeatures::Dlib => FeatureSpec::Raw,
        ClassicalFeatures::Pca => FeatureSpec::Pca(k),
        ClassicalFeatures::Lda => FeatureSpec::Lda(k),
    };
    let feature_name = match m.features {
        ClassicalFeatures::Pixels => "pixels",
        ClassicalFeatures::Pca => "PCA",
        ClassicalFeatures::Lda => "LDA",
        ClassicalFeatures::Dlib => "dlib encodings",
    };
    let method = m
        .method
        .ok_or_else(|| anyhow!("--method is needed (eigenfaces, fisherfaces, svm or nn)"))?;
    Ok(match method {
        ClassicalMethod::Eigenfaces | ClassicalMethod::Fisherfaces
            if m.features != ClassicalFeatures::Pixels =>
        {
            bail!(
                "eigenfaces and fisherfaces work on pixels; use --method svm or nn with --features"
            )
        }
        ClassicalMethod::Eigenfaces => (
            FeatureSpec::Pca(k),
            ClassifierSpec::Nearest(metric),
            "eigenfaces".into(),
        ),
        ClassicalMethod::Fisherfaces => (
            FeatureSpec::Lda(k),
            ClassifierSpec::Nearest(metric),
            "fisherfaces".into(),
        ),
        ClassicalMethod::Svm => {
            if m.svm_c.is_nan() || m.svm_c <= 0.0 {
                bail!("--svm-c must be positive");
            }
            let rbf = m.kernel == ClassicalKernel::Rbf;
            let name = format!(
                "svm-{} on {feature_name}",
                if rbf { "rbf" } else { "linear" }
            );
            (
                features(m.features),
                ClassifierSpec::Svm {
                    rbf,
                    gamma: m.gamma,
                    c: m.svm_c,
                },
                name,
            )
        }
        ClassicalMethod::Nn => (
            features(m.features),
            ClassifierSpec::Nearest(metric),
            format!("nn on {feature_name}"),
        ),
    })
}

fn parse_size(text: &str) -> anyhow::Result<(u32, u32)> {
    let bad = || anyhow!("--size must be WIDTHxHEIGHT in pixels, e.g. 46x56, not {text:?}");
    let (w, h) = text.split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (u32, u32) = (
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    );
    if w == 0 || h == 0 || u64::from(w) * u64::from(h) > 4_000_000 {
        return Err(bad());
    }
    Ok((w, h))
}

/// A labelled set as a matrix, whatever the features.
struct Labelled {
    dir: PathBuf,
    people: Vec<String>,
    labels: Vec<usize>,
    /// One column per image.
    x: DMatrix<f64>,
    input: Input,
    /// The pixel set, when the features are pixels (pictures need it).
    pixels: Option<Dataset>,
    /// Images where the detector found no face and the whole image was used.
    without_face: Option<usize>,
}

fn load_labelled(
    data: &ClassicalDataArgs,
    features: ClassicalFeatures,
    fixed: Option<(u32, u32)>,
    models: &ModelsDir,
    detect: &DetectArgs,
    cache: Option<&CacheArgs>,
) -> anyhow::Result<Labelled> {
    let dir = data
        .dataset
        .clone()
        .ok_or_else(|| anyhow!("--dataset DIR is needed (or --pairs and --images for LFW)"))?;
    if features == ClassicalFeatures::Dlib {
        let people = list_people(&dir)?;
        let mut names = Vec::new();
        let mut labels = Vec::new();
        let mut paths = Vec::new();
        for (label, (name, files)) in people.into_iter().enumerate() {
            names.push(name);
            labels.extend(std::iter::repeat_n(label, files.len()));
            paths.extend(files);
        }
        let (x, stats) = dlib_whole_image_fallback(&paths, models, detect, cache)?;
        return Ok(Labelled {
            dir,
            people: names,
            labels,
            x,
            input: Input::Vector {
                dim: 128,
                kind: "dlib".into(),
            },
            pixels: None,
            without_face: Some(stats.without_face),
        });
    }
    let size = match (fixed, &data.size) {
        (Some((w, h)), _) => SizePolicy::Fixed(w, h),
        (None, Some(s)) => {
            let (w, h) = parse_size(s)?;
            SizePolicy::Fixed(w, h)
        }
        (None, None) if data.refuse_mixed_sizes => SizePolicy::Refuse,
        (None, None) => SizePolicy::ResizeToFirst,
    };
    let options = LoadOptions {
        size,
        crop: None,
        decode: decode_options(detect),
    };
    let set = Dataset::load(&dir, &options)
        .with_context(|| format!("cannot load the face set {}", dir.display()))?;
    let all: Vec<usize> = (0..set.samples.len()).collect();
    Ok(Labelled {
        dir,
        people: set.people.clone(),
        labels: set.labels(&all),
        x: set.matrix(&all),
        input: Input::Gray {
            width: set.width,
            height: set.height,
        },
        pixels: Some(set),
        without_face: None,
    })
}

fn encodings_matrix(
    paths: &[PathBuf],
    encodings: &HashMap<PathBuf, ImageEncoding>,
) -> anyhow::Result<DMatrix<f64>> {
    let mut x = DMatrix::zeros(128, paths.len());
    for (c, p) in paths.iter().enumerate() {
        let e = encodings
            .get(p)
            .and_then(|e| e.encoding)
            .ok_or_else(|| anyhow!("no encoding for {}", p.display()))?;
        for (r, v) in e.iter().enumerate() {
            x[(r, c)] = f64::from(*v);
        }
    }
    Ok(x)
}

fn failures(stats: &EncodeStats) -> anyhow::Result<()> {
    if let Some((path, why)) = stats.failed.first() {
        bail!(
            "{} images could not be encoded, first {}: {why}",
            stats.failed.len(),
            path.display()
        );
    }
    Ok(())
}

fn run_encoder(
    encoder: &dyn ImageEncoder,
    paths: &[PathBuf],
    cache: Option<&CacheArgs>,
) -> anyhow::Result<(DMatrix<f64>, EncodeStats)> {
    let mut cache = match cache {
        Some(c) => open_cache(c)?,
        None => None,
    };
    let bar = progress_bar(paths.len(), "images");
    let (encodings, stats) = encode_all(encoder, paths, cache.as_mut(), &|n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    failures(&stats)?;
    Ok((encodings_matrix(paths, &encodings)?, stats))
}

fn dlib_whole_image_fallback(
    paths: &[PathBuf],
    models: &ModelsDir,
    detect: &DetectArgs,
    cache: Option<&CacheArgs>,
) -> anyhow::Result<(DMatrix<f64>, EncodeStats)> {
    let models = load_models(models)?;
    let encoder = PipelineEncoder::new(
        &models,
        detect_options(detect),
        decode_options(detect),
        FaceChoice::LargestOrWholeImage,
    );
    run_encoder(&encoder, paths, cache)
}

fn write_pictures(
    dir: &Path,
    set: &Dataset,
    train: &[usize],
    test: &[usize],
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (w, h) = (set.width, set.height);
    let x = set.matrix(train);
    let labels = set.labels(train);
    let mut written = Vec::new();
    let pca = Pca::fit(&x, None)?;
    let path = dir.join("eigenfaces.png");
    pictures::save_png(
        &pictures::eigenfaces(&pca, w, h, PICTURE_COMPONENTS, 8),
        &path,
    )?;
    written.push(path);
    // A training face (which all components reconstruct exactly) above an unseen test face.
    let faces: Vec<Vec<f64>> = train
        .first()
        .into_iter()
        .chain(test.first())
        .map(|&i| {
            set.samples[i]
                .pixels
                .iter()
                .map(|&v| f64::from(v))
                .collect()
        })
        .collect();
    let ks: Vec<usize> = RECONSTRUCTION_COMPONENTS
        .iter()
        .map(|&k| k.min(pca.components()))
        .collect();
    let path = dir.join("reconstruction.png");
    pictures::save_png(&pictures::reconstructions(&pca, &faces, w, h, &ks), &path)?;
    written.push(path);
    if set.people.len() >= 2 {
        let lda = Lda::fit(&x, &labels, None)?;
        let path = dir.join("fisherfaces.png");
        pictures::save_png(
            &pictures::fisherfaces(&lda, w, h, PICTURE_COMPONENTS + 1, 8),
            &path,
        )?;
        written.push(path);
    }
    Ok(written)
}

fn train(args: ClassicalTrainArgs) -> anyhow::Result<ExitCode> {
    let (features, classifier, name) = spec(&args.method)?;
    let set = load_labelled(
        &args.data,
        args.method.features,
        None,
        &args.models,
        &args.detect,
        None,
    )?;
    let split = split_labels(
        &set.labels,
        &set.people,
        args.data.train_per_person,
        args.data.seed,
    )?;
    let start = Instant::now();
    let x = set.x.select_columns(split.train.iter());
    let labels: Vec<usize> = split.train.iter().map(|&i| set.labels[i]).collect();
    let (model, _) = ClassicalModel::train(
        &name,
        set.input.clone(),
        set.people.clone(),
        &x,
        &labels,
        features,
        classifier,
    )?;
    let seconds = start.elapsed().as_secs_f64();
    if let Some(out) = &args.out {
        model.save(out)?;
    }
    let mut pictures_written = Vec::new();
    if let Some(dir) = &args.pictures {
        let pixels = set
            .pixels
            .as_ref()
            .ok_or_else(|| anyhow!("--pictures needs pixel features (not --features dlib)"))?;
        pictures_written = write_pictures(dir, pixels, &split.train, &split.test)?;
    }
    let components = model.projection.as_ref().map(|p| p.components());
    if args.json {
        let report = json!({
            "method": name,
            "dataset": set.dir,
            "people": set.people.len(),
            "train_images": split.train.len(),
            "components": components,
            "seconds": seconds,
            "model": args.out,
            "pictures": pictures_written,
        });
        println!("{report}");
    } else {
        println!(
            "{name}: trained on {} images of {} people from {} in {seconds:.2} s{}",
            split.train.len(),
            set.people.len(),
            set.dir.display(),
            components
                .map(|k| format!(", {k} components"))
                .unwrap_or_default()
        );
        if let Some(out) = &args.out {
            println!("model saved to {}", out.display());
        }
        for p in pictures_written {
            println!("picture: {}", p.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn emit(
    report: &Value,
    json_out: bool,
    out: Option<&Path>,
    text: String,
) -> anyhow::Result<ExitCode> {
    if let Some(path) = out {
        let body = serde_json::to_string_pretty(report)?;
        std::fs::write(path, body).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if json_out {
        println!("{report}");
    } else {
        println!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

fn eval(args: ClassicalEvalArgs) -> anyhow::Result<ExitCode> {
    if args.pairs.is_some() {
        return eval_pairs(&args);
    }
    let start = Instant::now();
    let (model, set) = match &args.model {
        Some(path) => {
            let model = ClassicalModel::load(path)?;
            let (features, fixed) = match &model.input {
                Input::Gray { width, height } => {
                    (ClassicalFeatures::Pixels, Some((*width, *height)))
                }
                Input::Vector { kind, .. } if kind == "dlib" => (ClassicalFeatures::Dlib, None),
                Input::Vector { kind, .. } => bail!(
                    "{}: takes {kind} vectors, which this command cannot compute",
                    path.display()
                ),
            };
            let set = load_labelled(
                &args.data,
                features,
                fixed,
                &args.models,
                &args.detect,
                Some(&args.cache),
            )?;
            if set.people != model.people {
                bail!(
                    "{} was trained on other people than those in {} ({} vs {} people)",
                    path.display(),
                    set.dir.display(),
                    model.people.len(),
                    set.people.len()
                );
            }
            (Some(model), set)
        }
        None => (
            None,
            load_labelled(
                &args.data,
                args.method.features,
                None,
                &args.models,
                &args.detect,
                Some(&args.cache),
            )?,
        ),
    };
    let split = split_labels(
        &set.labels,
        &set.people,
        args.data.train_per_person,
        args.data.seed,
    )?;
    let model = match model {
        Some(m) => m,
        None => {
            let (features, classifier, name) = spec(&args.method)?;
            let x = set.x.select_columns(split.train.iter());
            let labels: Vec<usize> = split.train.iter().map(|&i| set.labels[i]).collect();
            ClassicalModel::train(
                &name,
                set.input.clone(),
                set.people.clone(),
                &x,
                &labels,
                features,
                classifier,
            )?
            .0
        }
    };
    let test_x = set.x.select_columns(split.test.iter());
    let test_labels: Vec<usize> = split.test.iter().map(|&i| set.labels[i]).collect();
    let predicted = model.predict(&test_x)?;
    let correct = predicted
        .iter()
        .zip(&test_labels)
        .filter(|(a, b)| a == b)
        .count();
    let accuracy = correct as f64 / test_labels.len().max(1) as f64;
    let seconds = start.elapsed().as_secs_f64();
    let components = model.projection.as_ref().map(|p| p.components());
    let resized = set.pixels.as_ref().map(|p| p.resized);
    let size = set.pixels.as_ref().map(|p| [p.width, p.height]);
    let report = json!({
        "mode": "identification",
        "method": model.method,
        "dataset": set.dir,
        "people": set.people.len(),
        "train_per_person": args.data.train_per_person,
        "seed": args.data.seed,
        "train_images": split.train.len(),
        "test_images": split.test.len(),
        "correct": correct,
        "accuracy": accuracy,
        "components": components,
        "image_size": size,
        "resized_images": resized,
        "images_without_detected_face": set.without_face,
        "seconds": seconds,
    });
    let mut text = format!(
        "{} on {}: {} people, {} train / {} test images (seed {}): accuracy {:.2}% ({correct}/{})",
        model.method,
        set.dir.display(),
        set.people.len(),
        split.train.len(),
        split.test.len(),
        args.data.seed,
        accuracy * 100.0,
        test_labels.len()
    );
    if let Some(n) = set.without_face {
        text.push_str(&format!(
            "\n{n} images without a detected face: the whole image was the face box"
        ));
    }
    if let Some(n) = resized.filter(|&n| n > 0) {
        text.push_str(&format!("\n{n} images resized to the set's size"));
    }
    emit(&report, args.json, args.out.as_deref(), text)
}

fn eval_pairs(args: &ClassicalEvalArgs) -> anyhow::Result<ExitCode> {
    let (Some(pairs_path), Some(images)) = (&args.pairs, &args.images) else {
        bail!("--pairs needs --images");
    };
    let m = &args.method;
    let (_, _, name) = spec(m)?;
    let metric = match m.metric {
        ClassicalMetric::Euclidean => Metric::Euclidean,
        ClassicalMetric::Cosine => Metric::Cosine,
    };
    let method = match (m.method, m.features) {
        (None, _) => bail!("--method is needed"),
        (Some(ClassicalMethod::Eigenfaces), _) => PairMethod::Eigenfaces(m.components, metric),
        (Some(ClassicalMethod::Fisherfaces), _) => PairMethod::Fisherfaces(m.components),
        (Some(ClassicalMethod::Svm), ClassicalFeatures::Pixels | ClassicalFeatures::Dlib) => PairMethod::PairSvm {
            rbf: m.kernel == ClassicalKernel::Rbf,
            gamma: m.gamma,
            c: m.svm_c,
        },
        (Some(ClassicalMethod::Nn), ClassicalFeatures::Pixels | ClassicalFeatures::Dlib) => PairMethod::Distance(metric),
        _ => bail!("on LFW pairs, svm and nn take --features pixels or dlib (use --method eigenfaces or fisherfaces for projections)"),
    };
    let text = std::fs::read_to_string(pairs_path)
        .with_context(|| format!("cannot read {}", pairs_path.display()))?;
    let pairs = parse_pairs(&text, images)?;
    let paths = distinct_images(&pairs);
    let index: HashMap<&PathBuf, usize> = paths.iter().enumerate().map(|(i, p)| (p, i)).collect();
    let refs: Vec<PairRef> = pairs
        .iter()
        .map(|p| PairRef {
            fold: p.fold,
            a: index[&p.a],
            b: index[&p.b],
            same: p.same,
        })
        .collect();
    // Person of each image from its folder name; only Fisherfaces uses it.
    let mut names: HashMap<String, usize> = HashMap::new();
    let people: Vec<usize> = paths
        .iter()
        .map(|p| {
            let person = p
                .parent()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let next = names.len();
            *names.entry(person).or_insert(next)
        })
        .collect();

    let start = Instant::now();
    let mut without_face = None;
    let mut size_used = None;
    let x = if m.features == ClassicalFeatures::Dlib {
        let models = load_models(&args.models)?;
        // The same face choice (and so the same cache entries) as `visage eval lfw`.
        let encoder = PipelineEncoder::new(
            &models,
            detect_options(&args.detect),
            decode_options(&args.detect),
            FaceChoice::LfwCentreOrBox,
        );
        let (x, stats) = run_encoder(&encoder, &paths, Some(&args.cache))?;
        without_face = Some(stats.without_face);
        x
    } else {
        let (w, h) = match &args.data.size {
            Some(s) => parse_size(s)?,
            None => LFW_DEFAULT_SIZE,
        };
        size_used = Some([w, h]);
        let decode = decode_options(&args.detect);
        let crop = args.crop;
        let columns: Vec<Vec<f32>> = paths
            .par_iter()
            .map(|p| -> anyhow::Result<Vec<f32>> {
                let gray = centre_crop(&load_gray(p, None, &decode)?, crop, crop);
                Ok(conform(gray, p, SizePolicy::Fixed(w, h), &mut None)?.0)
            })
            .collect::<anyhow::Result<_>>()?;
        let d = (w * h) as usize;
        DMatrix::from_fn(d, columns.len(), |r, c| f64::from(columns[c][r]))
    };
    let features_seconds = start.elapsed().as_secs_f64();
    let result = verify_pairs(&x, &people, &refs, method)?;
    let seconds = start.elapsed().as_secs_f64();
    let report = json!({
        "mode": "verification",
        "method": name,
        "pairs": refs.len(),
        "images": paths.len(),
        "crop": (m.features != ClassicalFeatures::Dlib).then_some(args.crop),
        "image_size": size_used,
        "images_without_detected_face": without_face,
        "mean_accuracy": result.mean_accuracy,
        "std_accuracy": result.std_accuracy,
        "folds": result.folds,
        "feature_seconds": features_seconds,
        "seconds": seconds,
    });
    let text = format!(
        "{name} on {} ({} pairs, {} folds): accuracy {:.2}% ± {:.2} (mean ± std over folds)",
        pairs_path.display(),
        refs.len(),
        result.folds.len(),
        result.mean_accuracy * 100.0,
        result.std_accuracy * 100.0
    );
    emit(&report, args.json, args.out.as_deref(), text)
}
