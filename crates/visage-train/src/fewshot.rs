//! N-way one-shot evaluation in the standard Omniglot layout (Lake et al.): `DIR/runNN/`
//! holds `training/classMM.png` (one image per class), `test/itemKK.png`, and
//! `class_labels.txt` whose lines are `runNN/test/itemKK.png runNN/training/classMM.png`
//! (paths relative to `DIR`). Each test item is given the class whose training image it is most
//! similar to, optionally under test-time augmentation ([`TestTimeAugmentation`]), with each
//! class scaled by how crowded its training image is ([`Crowding`]) and the embeddings whitened
//! by the training set's within-class scatter ([`fit_whitening`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;
use serde::Serialize;

use crate::data::{character_dirs, character_images, load_image, symmetry};
use crate::model::{squared_distance, SimilarityModel};
use crate::train::{embed, TrainConfig};
use crate::whitening::Whitening;
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
    /// The crowding scaling used ([`Crowding::OFF`] when none).
    pub crowding: Crowding,
    /// Items given their true class by the same scores without crowding scaling (equal to
    /// `correct` when it is off or no member compares distances).
    pub correct_without_crowding: usize,
    /// `correct_without_crowding / items`.
    pub accuracy_without_crowding: f64,
    /// Distinct images embedded (as the first model frames them) for the runs' training
    /// images and test items: runs drawn from one set share drawings, and each is embedded
    /// once.
    pub distinct_images: usize,
    /// Every test item given another class than its own (by the scores behind `correct`), in
    /// run order, then item order.
    pub mistakes: Vec<Mistake>,
}

/// A test item given the wrong class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mistake {
    /// The run's directory name (`run01`, ...).
    pub run: String,
    /// The test item's image.
    pub item: PathBuf,
    /// The training image of the item's own class.
    pub truth: PathBuf,
    /// The training image of the class it was given.
    pub chosen: PathBuf,
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

/// Crowding scaling of a run's classes, from its training images alone: a training image with
/// several others of its run close by draws other characters' test items (it is a hub), so
/// each class's squared distances are divided by `c^power`, where `c` is the mean squared
/// distance from its training image to its `neighbours` nearest other training images, in
/// every view. Each test item is still classified alone. Applies to models compared by
/// distance; a pair head's scores are left as they are.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Crowding {
    /// Nearest other training images whose squared distances are averaged (at least 1; runs
    /// with fewer other classes use them all).
    pub neighbours: usize,
    /// Exponent of the mean squared distance (0 = no scaling).
    pub power: f32,
}

impl Crowding {
    /// No scaling: plain nearest neighbour.
    pub const OFF: Self = Self {
        neighbours: 1,
        power: 0.0,
    };

    /// The setting chosen on two draws of 100 runs and measured once on 500 held-out runs
    /// (docs/TRAINING.md).
    pub const DEFAULT: Self = Self {
        neighbours: 5,
        power: 0.5,
    };

    /// Whether the scaling changes anything.
    pub fn is_on(&self) -> bool {
        self.power != 0.0
    }

    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.neighbours == 0 || !self.power.is_finite() || !(0.0..=4.0).contains(&self.power) {
            return Err(TrainError::Config(format!(
                "crowding of {} neighbours to the power {}: at least 1 neighbour, a power \
                 from 0 (off) to 4",
                self.neighbours, self.power
            )));
        }
        Ok(())
    }

    /// The divisor of each class's squared distances, from the run's training embeddings
    /// (squared-distance units raised to `power`; 1 for every class when off).
    pub fn divisors(&self, training: &[Vec<f32>]) -> Vec<f32> {
        if !self.is_on() || training.len() < 2 {
            return vec![1.0; training.len()];
        }
        training
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mut near: Vec<f32> = training
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .map(|(_, b)| squared_distance(a, b))
                    .collect();
                near.sort_by(f32::total_cmp);
                near.truncate(self.neighbours);
                let mean = near.iter().sum::<f32>() / near.len() as f32;
                // Two identical training images would divide by zero.
                mean.max(1e-12).powf(self.power)
            })
            .collect()
    }
}

/// Scores `[tests, classes]` (larger = more similar) of test embeddings against training
/// embeddings: minus the squared distance, divided by each class's crowding divisor.
pub fn distance_scores(
    training: &[Vec<f32>],
    tests: &[Vec<f32>],
    crowding: Crowding,
) -> Vec<Vec<f32>> {
    divided(
        &plain_distance_scores(training, tests),
        &crowding.divisors(training),
    )
}

/// Minus the squared distance of every test embedding to every training embedding.
fn plain_distance_scores(training: &[Vec<f32>], tests: &[Vec<f32>]) -> Vec<Vec<f32>> {
    tests
        .iter()
        .map(|q| training.iter().map(|t| -squared_distance(q, t)).collect())
        .collect()
}

/// `scores` with each class's column divided by its divisor.
fn divided(scores: &[Vec<f32>], divisors: &[f32]) -> Vec<Vec<f32>> {
    scores
        .iter()
        .map(|row| row.iter().zip(divisors).map(|(s, d)| s / d).collect())
        .collect()
}

/// The class of the highest score in `row` (`None` when empty).
fn best_class(row: &[f32]) -> Option<usize> {
    row.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(k, _)| k)
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

/// Scores `[tests, classes]` of one view (larger = more similar) from the view's embeddings of
/// the run's training images (`t`) and test items (`q`): with `crowding`, and without it.
fn view_scores(
    member: &Member,
    t: &[Vec<f32>],
    q: &[Vec<f32>],
    crowding: Crowding,
) -> [Vec<Vec<f32>>; 2] {
    match (&member.model.head, member.config.pair_head()) {
        (Some(head), Some(features)) => {
            let device = Device::flex();
            let dim = t[0].len();
            let mut out = Vec::with_capacity(q.len());
            for qi in q {
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
            [out.clone(), out]
        }
        _ => {
            // The distances once; crowding only divides them.
            let plain = plain_distance_scores(t, q);
            [divided(&plain, &crowding.divisors(t)), plain]
        }
    }
}

/// Scores `[tests, classes]` of one run summed over the views (larger = more similar): with
/// `crowding`, and without it. `views[k][i]` is the embedding of distinct image `i` under
/// symmetry `k`; `training` and `tests` index the run's images into them.
fn run_scores(
    member: &Member,
    views: &[Vec<Vec<f32>>],
    training: &[usize],
    tests: &[usize],
    crowding: Crowding,
) -> [Vec<Vec<f32>>; 2] {
    let mut total: [Vec<Vec<f32>>; 2] =
        std::array::from_fn(|_| vec![vec![0.0; training.len()]; tests.len()]);
    for view in views {
        let pick =
            |ids: &[usize]| -> Vec<Vec<f32>> { ids.iter().map(|&i| view[i].clone()).collect() };
        let scores = view_scores(member, &pick(training), &pick(tests), crowding);
        for (sum, view) in total.iter_mut().zip(scores) {
            for (row, view_row) in sum.iter_mut().zip(view) {
                for (t, v) in row.iter_mut().zip(view_row) {
                    *t += v;
                }
            }
        }
    }
    total
}

/// Images embedded per parallel task: with shifts of 2, 10 images make 250 copies, about one
/// batch of [`embed`].
const IMAGES_PER_TASK: usize = 10;

/// Embeddings `[view][image]` of `images` under every symmetry of `augmentation` (each the mean
/// over its shifts), whitened by the member's whitening if any. Images are embedded in fixed
/// groups side by side on the worker threads, so the result does not depend on their number.
fn embed_views(
    member: &Member,
    images: &[Vec<f32>],
    augmentation: TestTimeAugmentation,
) -> Result<Vec<Vec<Vec<f32>>>, TrainError> {
    if images.is_empty() {
        return Ok(vec![Vec::new(); augmentation.symmetries]);
    }
    let (model, config) = (member.model, member.config);
    let side = config.net.input_size;
    let tasks: Vec<(usize, &[Vec<f32>])> = (0..augmentation.symmetries)
        .flat_map(|k| images.chunks(IMAGES_PER_TASK).map(move |c| (k, c)))
        .collect();
    let embedded: Vec<Vec<Vec<f32>>> = tasks
        .par_iter()
        .map(|&(k, chunk)| {
            let turned: Vec<Vec<f32>> = chunk.iter().map(|img| symmetry(img, side, k)).collect();
            let mut e = embed_images(model, config, &turned, augmentation.shifts)?;
            if let Some(w) = member.whitening {
                e.iter_mut().for_each(|v| *v = w.apply(v));
            }
            Ok(e)
        })
        .collect::<Result<_, TrainError>>()?;
    // Tasks come view by view.
    let per_view = images.len().div_ceil(IMAGES_PER_TASK);
    Ok(embedded
        .chunks(per_view)
        .map(|view| view.concat())
        .collect())
}

/// `paths` read and framed as `config` says, side by side on the worker threads.
fn load_images(paths: &[&PathBuf], config: &TrainConfig) -> Result<Vec<Vec<f32>>, TrainError> {
    paths
        .par_iter()
        .map(|p| load_image(p, config.net.input_size, config.framing))
        .collect()
}

/// Run images read and framed before the distinct ones among them are kept.
const IMAGES_LOADED_AT_ONCE: usize = 4096;

/// The distinct images of a set of runs, as one member frames them, and each run's training
/// images and test items as indices into them. Runs drawn from one set share drawings (each
/// run holds its own copy of the file), and identical pixels embed alike, so each distinct
/// image is embedded once however many runs use it.
struct DistinctImages {
    images: Vec<Vec<f32>>,
    training: Vec<Vec<usize>>,
    tests: Vec<Vec<usize>>,
}

impl DistinctImages {
    fn load(runs: &[Run], config: &TrainConfig) -> Result<Self, TrainError> {
        let paths: Vec<&PathBuf> = runs
            .iter()
            .flat_map(|r| r.training.iter().chain(r.tests.iter().map(|t| &t.0)))
            .collect();
        let mut seen: HashMap<Vec<u32>, usize> = HashMap::new();
        let mut images = Vec::new();
        let mut ids = Vec::with_capacity(paths.len());
        // Loaded side by side a slice at a time, so that only the distinct images stay in
        // memory however many runs there are.
        for slice in paths.chunks(IMAGES_LOADED_AT_ONCE) {
            for image in load_images(slice, config)? {
                let key: Vec<u32> = image.iter().map(|v| v.to_bits()).collect();
                ids.push(*seen.entry(key).or_insert_with(|| {
                    images.push(image);
                    images.len() - 1
                }));
            }
        }
        let mut rest = &ids[..];
        let mut take = |n: usize| {
            let (head, tail) = rest.split_at(n);
            rest = tail;
            head.to_vec()
        };
        let (mut training, mut tests) = (Vec::new(), Vec::new());
        for run in runs {
            training.push(take(run.training.len()));
            tests.push(take(run.tests.len()));
        }
        Ok(Self {
            images,
            training,
            tests,
        })
    }
}

/// One model of an evaluation: its network and the settings it was trained with (which fix
/// how images are framed and compared).
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    /// The trained network (and pair head, if any).
    pub model: &'a SimilarityModel,
    /// Its training settings.
    pub config: &'a TrainConfig,
    /// A within-class whitening of its embeddings ([`fit_whitening`]), applied before any
    /// distance.
    pub whitening: Option<&'a Whitening>,
}

/// Drawers of each background character whose images [`fit_whitening`] embeds.
pub const WHITENING_DRAWERS: usize = 6;

/// Fits [`Whitening`] for `member` on the characters under `background` (an Omniglot set in
/// its `alphabet/character/*.png` layout, normally the model's training set): the first
/// [`WHITENING_DRAWERS`] drawings of every character, embedded under `augmentation` as the
/// evaluation embeds them, each character under each symmetry a class of its own.
pub fn fit_whitening(
    member: &Member,
    background: &Path,
    augmentation: TestTimeAugmentation,
    shrinkage: f64,
) -> Result<Whitening, TrainError> {
    augmentation.validate()?;
    Whitening::validate_shrinkage(shrinkage)?;
    if member.model.head.is_some() {
        return Err(TrainError::Config(
            "whitening applies to models compared by distance, not to a pair head".into(),
        ));
    }
    let characters = character_dirs(background, &[])?
        .into_iter()
        .map(|(_, dir)| {
            let paths = character_images(&dir)?;
            Ok(paths
                .into_iter()
                .take(WHITENING_DRAWERS)
                .collect::<Vec<_>>())
        })
        .collect::<Result<Vec<_>, TrainError>>()?;
    let paths: Vec<&PathBuf> = characters.iter().flatten().collect();
    let images = load_images(&paths, member.config)?;
    // Fitted on the embeddings as they come, whatever whitening `member` carries.
    let plain = Member {
        whitening: None,
        ..*member
    };
    let views = embed_views(&plain, &images, augmentation)?;
    // Each character under each symmetry is a class of its own.
    let mut groups = Vec::with_capacity(characters.len() * views.len());
    let mut first = 0;
    for paths in &characters {
        for view in &views {
            groups.push(view[first..first + paths.len()].to_vec());
        }
        first += paths.len();
    }
    Whitening::fit(&groups, shrinkage)
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
/// compared under `augmentation` and each class's distances scaled by `crowding`. Several
/// models vote as a product of experts: each one's scores (averaged over the views) become
/// log-probabilities over the run's classes, and those are summed; one model decides by its
/// own scores. The result also counts what the same scores give without crowding scaling.
pub fn evaluate(
    members: &[Member],
    runs: &[Run],
    augmentation: TestTimeAugmentation,
    crowding: Crowding,
) -> Result<FewShotResult, TrainError> {
    augmentation.validate()?;
    crowding.validate()?;
    if members.is_empty() {
        return Err(TrainError::Config("no model to evaluate".into()));
    }
    for m in members {
        m.config.framing.validate()?;
    }
    // Every member embeds each distinct image of the runs once, under every view.
    let embedded: Vec<(DistinctImages, Vec<Vec<Vec<f32>>>)> = members
        .iter()
        .map(|m| {
            let distinct = DistinctImages::load(runs, m.config)?;
            let views = embed_views(m, &distinct.images, augmentation)?;
            Ok((distinct, views))
        })
        .collect::<Result<_, TrainError>>()?;
    let member_scores = |m: usize, r: usize| -> [Vec<Vec<f32>>; 2] {
        let (distinct, views) = &embedded[m];
        run_scores(
            &members[m],
            views,
            &distinct.training[r],
            &distinct.tests[r],
            crowding,
        )
    };
    // The test items of `run` whose best class in `total` is not their own: (item, class given).
    let misses = |total: &[Vec<f32>], run: &Run| -> Vec<(usize, usize)> {
        total
            .iter()
            .zip(&run.tests)
            .enumerate()
            .filter_map(|(i, (row, (_, truth)))| Some((i, best_class(row).filter(|k| k != truth)?)))
            .collect()
    };
    // Runs are independent: score them side by side on the worker threads (the same result
    // whatever their number). Each run gives its misses with crowding and without.
    let misses_per_run: Vec<[Vec<(usize, usize)>; 2]> = runs
        .par_iter()
        .enumerate()
        .map(|(r, run)| {
            // One model decides by its own scores; several add their log-probabilities.
            let totals = match members {
                [_] => member_scores(0, r),
                _ => {
                    let mut totals: [Vec<Vec<f32>>; 2] = std::array::from_fn(|_| {
                        vec![vec![0.0f32; run.training.len()]; run.tests.len()]
                    });
                    for m in 0..members.len() {
                        for (total, rows) in totals.iter_mut().zip(member_scores(m, r)) {
                            for (t, row) in total.iter_mut().zip(rows) {
                                let mean: Vec<f32> = row
                                    .iter()
                                    .map(|v| v / augmentation.symmetries as f32)
                                    .collect();
                                t.iter_mut()
                                    .zip(log_softmax(&mean))
                                    .for_each(|(a, b)| *a += b);
                            }
                        }
                    }
                    totals
                }
            };
            [misses(&totals[0], run), misses(&totals[1], run)]
        })
        .collect();
    let per_run = runs
        .iter()
        .zip(&misses_per_run)
        .map(|(run, m)| (run.tests.len() - m[0].len()) as f64 / run.tests.len().max(1) as f64)
        .collect();
    let items: usize = runs.iter().map(|r| r.tests.len()).sum();
    let correct = items - misses_per_run.iter().map(|m| m[0].len()).sum::<usize>();
    let correct_without_crowding = items - misses_per_run.iter().map(|m| m[1].len()).sum::<usize>();
    let mistakes = runs
        .iter()
        .zip(&misses_per_run)
        .flat_map(|(run, [with_crowding, _])| {
            with_crowding.iter().map(move |&(i, chosen)| {
                let (item, truth) = &run.tests[i];
                Mistake {
                    run: run.name.clone(),
                    item: item.clone(),
                    truth: run.training[*truth].clone(),
                    chosen: run.training[chosen].clone(),
                }
            })
        })
        .collect();
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
        crowding,
        correct_without_crowding,
        accuracy_without_crowding: correct_without_crowding as f64 / items.max(1) as f64,
        distinct_images: embedded
            .first()
            .map_or(0, |(distinct, _)| distinct.images.len()),
        mistakes,
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
    let mut rng = crate::rng::from_seed(spec.seed);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn best(row: &[f32]) -> usize {
        best_class(row).unwrap()
    }

    /// Three training images crowd together at the origin; a fourth stands alone.
    fn crowded_run() -> Vec<Vec<f32>> {
        vec![
            vec![0.0, 0.0],
            vec![0.0, 0.2],
            vec![0.0, -0.2],
            vec![1.0, 0.0],
        ]
    }

    #[test]
    fn crowding_hands_a_midway_item_to_the_lone_class() {
        let training = crowded_run();
        // Slightly nearer the crowded class 0 than the lone class 3.
        let tests = vec![vec![0.47, 0.0]];
        let plain = distance_scores(&training, &tests, Crowding::OFF);
        assert_eq!(best(&plain[0]), 0);
        assert!((plain[0][3] + 0.53 * 0.53).abs() < 1e-6, "{plain:?}");
        let crowding = Crowding {
            neighbours: 2,
            power: 0.5,
        };
        // Class 0: its 2 nearest at squared distances 0.04 and 0.04, divisor 0.2; class 3:
        // 1.0 and 1.04, divisor sqrt(1.02).
        let divisors = crowding.divisors(&training);
        assert!((divisors[0] - 0.2).abs() < 1e-6, "{divisors:?}");
        assert!((divisors[3] - 1.02f32.sqrt()).abs() < 1e-6, "{divisors:?}");
        let scaled = distance_scores(&training, &tests, crowding);
        assert_eq!(best(&scaled[0]), 3);
        // An item right on a crowded training image stays with it.
        let on_class = distance_scores(&training, &[vec![0.0, 0.2]], crowding);
        assert_eq!(best(&on_class[0]), 1);
    }

    #[test]
    fn crowding_decisions_ignore_the_embedding_scale() {
        let training = crowded_run();
        let tests = vec![vec![0.47, 0.0], vec![0.1, 0.15], vec![0.7, 0.3]];
        let grown = |v: &[Vec<f32>]| -> Vec<Vec<f32>> {
            v.iter()
                .map(|x| x.iter().map(|a| a * 7.0).collect())
                .collect()
        };
        let a = distance_scores(&training, &tests, Crowding::DEFAULT);
        let b = distance_scores(&grown(&training), &grown(&tests), Crowding::DEFAULT);
        for (ra, rb) in a.iter().zip(&b) {
            assert_eq!(best(ra), best(rb));
        }
    }

    #[test]
    fn crowding_off_or_alone_divides_by_one_and_bad_settings_are_refused() {
        assert_eq!(Crowding::OFF.divisors(&crowded_run()), vec![1.0; 4]);
        assert_eq!(Crowding::DEFAULT.divisors(&[vec![1.0, 2.0]]), vec![1.0]);
        // More neighbours than other classes: all of them.
        let all = Crowding {
            neighbours: 10,
            power: 1.0,
        }
        .divisors(&crowded_run());
        assert!((all[3] - (1.0 + 1.04 + 1.04) / 3.0).abs() < 1e-6, "{all:?}");
        assert!(Crowding::DEFAULT.validate().is_ok());
        for bad in [
            Crowding {
                neighbours: 0,
                power: 0.5,
            },
            Crowding {
                neighbours: 5,
                power: -1.0,
            },
            Crowding {
                neighbours: 5,
                power: f32::NAN,
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
