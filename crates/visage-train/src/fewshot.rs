//! N-way one-shot evaluation in the standard Omniglot layout (Lake et al.): `DIR/runNN/`
//! holds `training/classMM.png` (one image per class), `test/itemKK.png`, and
//! `class_labels.txt` whose lines are `runNN/test/itemKK.png runNN/training/classMM.png`
//! (paths relative to `DIR`). Each test item is given the class whose training image it is most
//! similar to, optionally under test-time augmentation ([`TestTimeAugmentation`]).

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;
use serde::Serialize;

use crate::data::{character_dirs, character_images, load_image, symmetry};
use crate::model::SimilarityModel;
use crate::rng::Rng;
use crate::train::{embed, TrainConfig};
use crate::TrainError;

/// One run: its training images (one per class) and its test items with their true class.
#[derive(Debug, Clone)]
pub struct Run {
    /// The run's directory name (`run01`, ...).
    pub name: String,
    /// Training images, one per class, in file-name order.
    pub training: Vec<PathBuf>,
    /// Test items and the index of their class in `training`.
    pub tests: Vec<(PathBuf, usize)>,
}

/// Reads every `runNN/class_labels.txt` under `dir`, sorted by run name.
pub fn read_runs(dir: &Path) -> Result<Vec<Run>, TrainError> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| TrainError::io(dir, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("class_labels.txt").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(TrainError::Layout(format!(
            "{}: no run directories with a class_labels.txt",
            dir.display()
        )));
    }
    names
        .into_iter()
        .map(|name| {
            let labels = dir.join(&name).join("class_labels.txt");
            let text = std::fs::read_to_string(&labels).map_err(|e| TrainError::io(&labels, e))?;
            let mut training: Vec<PathBuf> = Vec::new();
            let mut tests = Vec::new();
            for (i, line) in text.lines().enumerate() {
                let parts: Vec<&str> = line.split_whitespace().collect();
                if parts.is_empty() {
                    continue;
                }
                let [test, class] = parts[..] else {
                    return Err(TrainError::Layout(format!(
                        "{}:{}: expected `test/itemKK.png training/classMM.png`",
                        labels.display(),
                        i + 1
                    )));
                };
                let class = dir.join(class);
                let k = match training.iter().position(|t| *t == class) {
                    Some(k) => k,
                    None => {
                        training.push(class);
                        training.len() - 1
                    }
                };
                tests.push((dir.join(test), k));
            }
            if training.len() < 2 {
                return Err(TrainError::Layout(format!(
                    "{}: fewer than two classes",
                    labels.display()
                )));
            }
            Ok(Run {
                name,
                training,
                tests,
            })
        })
        .collect()
}

/// The result of [`evaluate`].
#[derive(Debug, Clone, Serialize)]
pub struct FewShotResult {
    /// Runs evaluated.
    pub runs: usize,
    /// Classes per run (N of N-way).
    pub ways: usize,
    /// Test items in all.
    pub items: usize,
    /// Items given their true class.
    pub correct: usize,
    /// `correct / items`.
    pub accuracy: f64,
    /// Accuracy of each run, in run order.
    pub per_run: Vec<f64>,
    /// Models that voted (1 unless an ensemble was evaluated).
    pub models: usize,
    /// How items were compared: `distance` (nearest embedding) or `pair-head`, or the
    /// members' ways joined by `+`.
    pub scorer: String,
    /// The test-time augmentation used.
    pub augmentation: TestTimeAugmentation,
}

/// Test-time augmentation, applied alike to the training images and the test items: the
/// one-shot image then stands for a small neighbourhood of the drawing rather than one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TestTimeAugmentation {
    /// Largest shift each way, pixels: every image is embedded as the mean embedding of its
    /// `(2 shifts + 1)²` copies moved by every offset in `-shifts..=shifts` on both axes
    /// (scaled back to unit length when the model compares unit vectors). At most
    /// [`TestTimeAugmentation::MAX_SHIFTS`].
    pub shifts: usize,
    /// Symmetries of the square the pair is compared under, scores summed: 1 (as drawn), 4
    /// (the quarter turns too) or 8 (and their mirrors). Both images of a pair are turned
    /// together, so a pair still compares a drawing with a drawing; each view sees the
    /// characters the way training saw its rotated and mirrored classes.
    pub symmetries: usize,
}

impl TestTimeAugmentation {
    /// None: each image once, as drawn.
    pub const NONE: Self = Self {
        shifts: 0,
        symmetries: 1,
    };

    /// The largest shift accepted, pixels.
    pub const MAX_SHIFTS: usize = 4;

    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.shifts > Self::MAX_SHIFTS {
            return Err(TrainError::Config(format!(
                "shifts of {} pixels: at most {} ((2N+1)² copies of every image)",
                self.shifts,
                Self::MAX_SHIFTS
            )));
        }
        if ![1, 4, 8].contains(&self.symmetries) {
            return Err(TrainError::Config(format!(
                "{} symmetries: 1, 4 (quarter turns) or 8 (with mirrors)",
                self.symmetries
            )));
        }
        Ok(())
    }
}

/// `image` (`side x side`, row-major) moved by `dx`, `dy` pixels, background 0 where it came
/// from outside.
fn shifted(image: &[f32], side: usize, dx: isize, dy: isize) -> Vec<f32> {
    let mut out = vec![0.0; side * side];
    for y in 0..side {
        for x in 0..side {
            let (sx, sy) = (x as isize - dx, y as isize - dy);
            if (0..side as isize).contains(&sx) && (0..side as isize).contains(&sy) {
                out[y * side + x] = image[sy as usize * side + sx as usize];
            }
        }
    }
    out
}

/// Embeddings of `images`; with `shifts` > 0, each is the mean embedding of the image moved by
/// every offset in `-shifts..=shifts` pixels on both axes (`(2 shifts + 1)²` copies), scaled
/// back to unit length when the model compares unit vectors.
fn embed_images(
    model: &SimilarityModel,
    config: &TrainConfig,
    images: &[Vec<f32>],
    shifts: usize,
) -> Result<Vec<Vec<f32>>, TrainError> {
    if shifts == 0 {
        return embed(model, config, images);
    }
    let side = config.net.input_size;
    let r = shifts as isize;
    let offsets: Vec<(isize, isize)> = (-r..=r)
        .flat_map(|dy| (-r..=r).map(move |dx| (dx, dy)))
        .collect();
    let copies: Vec<Vec<f32>> = images
        .iter()
        .flat_map(|img| offsets.iter().map(|&(dx, dy)| shifted(img, side, dx, dy)))
        .collect();
    let e = embed(model, config, &copies)?;
    Ok(e.chunks(offsets.len())
        .map(|group| {
            let mut mean = vec![0.0f32; group[0].len()];
            for v in group {
                for (m, x) in mean.iter_mut().zip(v) {
                    *m += x / group.len() as f32;
                }
            }
            if config.normalizes() {
                let norm = mean.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-10);
                mean.iter_mut().for_each(|m| *m /= norm);
            }
            mean
        })
        .collect())
}

/// Scores `[tests, classes]` of one view: larger = more similar.
fn view_scores(
    model: &SimilarityModel,
    config: &TrainConfig,
    training: &[Vec<f32>],
    tests: &[Vec<f32>],
    shifts: usize,
) -> Result<Vec<Vec<f32>>, TrainError> {
    let t = embed_images(model, config, training, shifts)?;
    let q = embed_images(model, config, tests, shifts)?;
    match (&model.head, config.pair_head()) {
        (Some(head), Some(features)) => {
            let device = Device::flex();
            let dim = t[0].len();
            let mut out = Vec::with_capacity(q.len());
            for qi in &q {
                let a: Vec<f32> = (0..t.len()).flat_map(|_| qi.iter().copied()).collect();
                let b: Vec<f32> = t.iter().flatten().copied().collect();
                let a = Tensor::<2>::from_data(TensorData::new(a, [t.len(), dim]), &device);
                let b = Tensor::<2>::from_data(TensorData::new(b, [t.len(), dim]), &device);
                let z = head.forward(features.compute(a, b));
                out.push(
                    z.into_data()
                        .convert::<f32>()
                        .try_into_vec::<f32>()
                        .unwrap_or_default(),
                );
            }
            Ok(out)
        }
        _ => Ok(q
            .iter()
            .map(|qi| {
                t.iter()
                    .map(|ti| {
                        -qi.iter()
                            .zip(ti)
                            .map(|(a, b)| (a - b) * (a - b))
                            .sum::<f32>()
                    })
                    .collect()
            })
            .collect()),
    }
}

/// Scores `[tests, classes]` summed over the symmetries of `augmentation`: larger = more
/// similar.
fn scores(
    model: &SimilarityModel,
    config: &TrainConfig,
    training: &[Vec<f32>],
    tests: &[Vec<f32>],
    augmentation: TestTimeAugmentation,
) -> Result<Vec<Vec<f32>>, TrainError> {
    let side = config.net.input_size;
    let mut total: Vec<Vec<f32>> = vec![vec![0.0; training.len()]; tests.len()];
    for k in 0..augmentation.symmetries {
        let turn = |images: &[Vec<f32>]| -> Vec<Vec<f32>> {
            images.iter().map(|img| symmetry(img, side, k)).collect()
        };
        let view = view_scores(
            model,
            config,
            &turn(training),
            &turn(tests),
            augmentation.shifts,
        )?;
        for (row, view_row) in total.iter_mut().zip(view) {
            for (t, v) in row.iter_mut().zip(view_row) {
                *t += v;
            }
        }
    }
    Ok(total)
}

/// One model of an evaluation: its network and the settings it was trained with (which fix
/// how images are framed and compared).
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    /// The trained network (and pair head, if any).
    pub model: &'a SimilarityModel,
    /// Its training settings.
    pub config: &'a TrainConfig,
}

/// `row` (scores, larger = more similar) as log-probabilities over the classes: the softmax
/// that prototypical training fits, which puts models whose distances have different scales
/// on one footing.
fn log_softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_sum = row.iter().map(|s| (s - max).exp()).sum::<f32>().ln() + max;
    row.iter().map(|s| s - log_sum).collect()
}

/// N-way one-shot accuracy over `runs` of one model or of several together, every pair
/// compared under `augmentation`. Several models vote as a product of experts: each one's
/// scores (averaged over the views) become log-probabilities over the run's classes, and
/// those are summed; one model decides by its own scores.
pub fn evaluate(
    members: &[Member],
    runs: &[Run],
    augmentation: TestTimeAugmentation,
) -> Result<FewShotResult, TrainError> {
    augmentation.validate()?;
    if members.is_empty() {
        return Err(TrainError::Config("no model to evaluate".into()));
    }
    for m in members {
        m.config.framing.validate()?;
    }
    let member_scores = |m: &Member, run: &Run| -> Result<Vec<Vec<f32>>, TrainError> {
        let side = m.config.net.input_size;
        let load = |paths: &mut dyn Iterator<Item = &PathBuf>| {
            paths
                .map(|p| load_image(p, side, m.config.framing))
                .collect::<Result<Vec<_>, _>>()
        };
        let training = load(&mut run.training.iter())?;
        let tests = load(&mut run.tests.iter().map(|t| &t.0))?;
        scores(m.model, m.config, &training, &tests, augmentation)
    };
    // Runs are independent: score them side by side on the worker threads (the same result
    // whatever their number).
    let correct_per_run: Vec<usize> = runs
        .par_iter()
        .map(|run| {
            // One model decides by its own scores; several add their log-probabilities.
            let total = match members {
                [only] => member_scores(only, run)?,
                _ => {
                    let mut total = vec![vec![0.0f32; run.training.len()]; run.tests.len()];
                    for m in members {
                        for (t, row) in total.iter_mut().zip(member_scores(m, run)?) {
                            let mean: Vec<f32> = row
                                .iter()
                                .map(|v| v / augmentation.symmetries as f32)
                                .collect();
                            t.iter_mut()
                                .zip(log_softmax(&mean))
                                .for_each(|(a, b)| *a += b);
                        }
                    }
                    total
                }
            };
            Ok(total
                .iter()
                .zip(&run.tests)
                .filter(|(row, (_, truth))| {
                    let best = row
                        .iter()
                        .enumerate()
                        .max_by(|a, b| a.1.total_cmp(b.1))
                        .map(|(k, _)| k);
                    best == Some(*truth)
                })
                .count())
        })
        .collect::<Result<_, TrainError>>()?;
    let per_run = runs
        .iter()
        .zip(&correct_per_run)
        .map(|(run, &ok)| ok as f64 / run.tests.len().max(1) as f64)
        .collect();
    let items = runs.iter().map(|r| r.tests.len()).sum();
    let correct = correct_per_run.iter().sum();
    let mut scorers: Vec<&str> = members
        .iter()
        .map(|m| {
            if m.model.head.is_some() {
                "pair-head"
            } else {
                "distance"
            }
        })
        .collect();
    scorers.dedup();
    Ok(FewShotResult {
        runs: runs.len(),
        ways: runs.iter().map(|r| r.training.len()).max().unwrap_or(0),
        items,
        correct,
        accuracy: correct as f64 / items.max(1) as f64,
        per_run,
        models: members.len(),
        scorer: scorers.join("+"),
        augmentation,
    })
}

/// How to draw runs from an Omniglot set.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Number of runs.
    pub runs: usize,
    /// Classes per run.
    pub ways: usize,
    /// Alphabets to leave out (those trained on).
    pub exclude_alphabets: Vec<String>,
    /// Draw each run's characters from all the alphabets together instead of from one
    /// alphabet (Vinyals et al.'s easier task; Lake et al.'s runs are within one alphabet).
    pub across_alphabets: bool,
    /// Seed of the draw.
    pub seed: u64,
}

/// Draws runs in the standard layout into `out_dir` from `source` (`<alphabet>/<character>/`):
/// each run takes `ways` characters of one alphabet (alphabets with at least `ways`
/// characters, in turn), or of all of them pooled with [`RunSpec::across_alphabets`], one
/// drawer's image of each as the training image and another drawer's as the test item, as in
/// the original one-shot task. Returns the alphabets used.
pub fn build_runs(
    source: &Path,
    out_dir: &Path,
    spec: &RunSpec,
) -> Result<Vec<String>, TrainError> {
    let all = character_dirs(source, &[])?;
    let mut by_alphabet: Vec<(String, Vec<PathBuf>)> = Vec::new();
    for (name, dir) in all {
        let alphabet = name.split('/').next().unwrap_or_default().to_string();
        if spec.exclude_alphabets.contains(&alphabet) {
            continue;
        }
        match by_alphabet.iter_mut().find(|(a, _)| *a == alphabet) {
            Some((_, dirs)) => dirs.push(dir),
            None => by_alphabet.push((alphabet, vec![dir])),
        }
    }
    if spec.across_alphabets {
        let names: Vec<String> = by_alphabet.iter().map(|(a, _)| a.clone()).collect();
        let dirs: Vec<PathBuf> = by_alphabet.into_iter().flat_map(|(_, d)| d).collect();
        by_alphabet = vec![(names.join("+"), dirs)];
    }
    by_alphabet.retain(|(_, dirs)| dirs.len() >= spec.ways);
    if by_alphabet.is_empty() {
        return Err(TrainError::Layout(format!(
            "{}: no alphabet outside the excluded ones has {} characters",
            source.display(),
            spec.ways
        )));
    }
    let mut rng = Rng::new(spec.seed);
    for r in 0..spec.runs {
        let (_, dirs) = &by_alphabet[r % by_alphabet.len()];
        let name = format!("run{:02}", r + 1);
        let run_dir = out_dir.join(&name);
        for sub in ["training", "test"] {
            let d = run_dir.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| TrainError::io(&d, e))?;
        }
        let chars = rng.choose(dirs.len(), spec.ways);
        let mut lines = Vec::new();
        let order = rng.choose(spec.ways, spec.ways);
        let mut test_of_class = vec![0; spec.ways];
        for (item, &class) in order.iter().enumerate() {
            test_of_class[class] = item;
        }
        for (class, &c) in chars.iter().enumerate() {
            let images = character_images(&dirs[c])?;
            if images.len() < 2 {
                return Err(TrainError::Layout(format!(
                    "{}: fewer than two drawers",
                    dirs[c].display()
                )));
            }
            let drawers = rng.choose(images.len(), 2);
            let train_rel = format!("{name}/training/class{:02}.png", class + 1);
            let test_rel = format!("{name}/test/item{:02}.png", test_of_class[class] + 1);
            for (src, rel) in [
                (&images[drawers[0]], &train_rel),
                (&images[drawers[1]], &test_rel),
            ] {
                let dst = out_dir.join(rel);
                std::fs::copy(src, &dst).map_err(|e| TrainError::io(&dst, e))?;
            }
            lines.push((test_of_class[class], format!("{test_rel} {train_rel}")));
        }
        lines.sort();
        let text: String = lines.into_iter().map(|(_, l)| l + "\n").collect();
        let path = run_dir.join("class_labels.txt");
        std::fs::write(&path, text).map_err(|e| TrainError::io(&path, e))?;
    }
    Ok(by_alphabet
        .into_iter()
        .flat_map(|(a, _)| a.split('+').map(str::to_string).collect::<Vec<_>>())
        .collect())
}
