//! LFW View 2: reading `pairs.txt` and the 10-fold protocol on pair distances.
//!
//! The protocol, as `shared/README.md` states it for the peer figure: for each fold, the
//! threshold with the best accuracy on the other nine folds, searched from 0 to 2 in steps of
//! 0.005 (ties: the smallest), then accuracy on the fold itself; mean and standard deviation
//! (population, as numpy's default) over the 10 folds. A pair is called "same" when its
//! **Euclidean** distance is ≤ the threshold.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::EvalError;

/// Step of the threshold search (Euclidean distance).
pub const THRESHOLD_STEP: f32 = 0.005;
/// Largest threshold tried (Euclidean distance); dlib encodings are never 2 apart.
pub const THRESHOLD_MAX: f32 = 2.0;

/// One labelled pair of images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// Fold number, 0-based.
    pub fold: usize,
    /// First image.
    pub a: PathBuf,
    /// Second image.
    pub b: PathBuf,
    /// Whether both images show the same person.
    pub same: bool,
}

/// The image path LFW uses for a person's `n`-th image (1-based): `Name/Name_000n.jpg`.
pub fn image_path(images: &Path, name: &str, n: u32) -> PathBuf {
    images.join(name).join(format!("{name}_{n:04}.jpg"))
}

/// Parses `pairs.txt`: a header "folds pairs_per_class", then per fold that many same pairs
/// (`name i j`) and that many different pairs (`name1 i name2 j`). Paths are joined to `images`.
pub fn parse_pairs(text: &str, images: &Path) -> Result<Vec<Pair>, EvalError> {
    let bad = |line: usize, what: &str| EvalError::Pairs(format!("line {line}: {what}"));
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| bad(1, "empty file"))?;
    let head: Vec<usize> = header
        .split_whitespace()
        .map(|t| t.parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad(1, "header must be two numbers: folds and pairs per class"))?;
    let [folds, per_class] = head[..] else {
        return Err(bad(
            1,
            "header must be two numbers: folds and pairs per class",
        ));
    };
    if folds == 0 || per_class == 0 {
        return Err(bad(1, "header has zero folds or pairs"));
    }
    let mut pairs = Vec::with_capacity(folds * per_class * 2);
    for (index, (lineno, line)) in lines.enumerate() {
        let lineno = lineno + 1;
        let fold = index / (2 * per_class);
        let same_expected = index % (2 * per_class) < per_class;
        let f: Vec<&str> = line.split_whitespace().collect();
        let num = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| bad(lineno, "image numbers must be positive integers"))
        };
        let pair =
            match (f.len(), same_expected) {
                (3, true) => Pair {
                    fold,
                    a: image_path(images, f[0], num(f[1])?),
                    b: image_path(images, f[0], num(f[2])?),
                    same: true,
                },
                (4, false) => Pair {
                    fold,
                    a: image_path(images, f[0], num(f[1])?),
                    b: image_path(images, f[2], num(f[3])?),
                    same: false,
                },
                (3, false) | (4, true) => return Err(bad(
                    lineno,
                    "pair out of order: each fold lists its same pairs, then its different pairs",
                )),
                _ => return Err(bad(lineno, "expected `name i j` or `name1 i name2 j`")),
            };
        if fold >= folds {
            return Err(bad(lineno, "more pairs than the header announces"));
        }
        pairs.push(pair);
    }
    if pairs.len() != folds * per_class * 2 {
        return Err(EvalError::Pairs(format!(
            "{} pairs, but the header announces {folds} folds of 2 x {per_class}",
            pairs.len()
        )));
    }
    Ok(pairs)
}

/// The result on one fold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FoldResult {
    /// Threshold chosen on the other folds (Euclidean distance).
    pub threshold: f32,
    /// Accuracy on those other folds at that threshold (fraction).
    pub train_accuracy: f64,
    /// Accuracy on this fold (fraction).
    pub accuracy: f64,
}

/// The protocol's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Protocol {
    /// Per fold, in file order.
    pub folds: Vec<FoldResult>,
    /// Mean of the fold accuracies (fraction).
    pub mean_accuracy: f64,
    /// Population standard deviation of the fold accuracies (fraction).
    pub std_accuracy: f64,
}

fn thresholds() -> impl Iterator<Item = f32> {
    let steps = (THRESHOLD_MAX / THRESHOLD_STEP).round() as usize;
    // Via f64 so that step 120 is the f32 nearest 0.6, as a decimal grid is meant.
    (0..=steps).map(|i| (i as f64 * 0.005) as f32)
}

fn accuracy(items: &[(usize, f32, bool)], keep: impl Fn(usize) -> bool, threshold: f32) -> f64 {
    let (mut right, mut total) = (0usize, 0usize);
    for &(fold, d, same) in items {
        if keep(fold) {
            total += 1;
            right += usize::from((d <= threshold) == same);
        }
    }
    right as f64 / total.max(1) as f64
}

/// Runs the 10-fold protocol on `(fold, Euclidean distance, same)` triples.
pub fn ten_fold(items: &[(usize, f32, bool)]) -> Protocol {
    let folds = items.iter().map(|i| i.0 + 1).max().unwrap_or(0);
    let mut results = Vec::with_capacity(folds);
    for f in 0..folds {
        let mut best = (f32::NAN, -1.0f64);
        for t in thresholds() {
            let acc = accuracy(items, |g| g != f, t);
            if acc > best.1 {
                best = (t, acc);
            }
        }
        results.push(FoldResult {
            threshold: best.0,
            train_accuracy: best.1,
            accuracy: accuracy(items, |g| g == f, best.0),
        });
    }
    let n = results.len().max(1) as f64;
    let mean = results.iter().map(|r| r.accuracy).sum::<f64>() / n;
    let var = results
        .iter()
        .map(|r| (r.accuracy - mean).powi(2))
        .sum::<f64>()
        / n;
    Protocol {
        folds: results,
        mean_accuracy: mean,
        std_accuracy: var.sqrt(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_and_rejects_bad_files() {
        let text = "2\t1\nAda\t1\t2\nAda\t1\tBob\t3\nCy\t2\t4\nCy\t1\tDee\t1\n";
        let pairs = parse_pairs(text, Path::new("/img")).unwrap();
        assert_eq!(pairs.len(), 4);
        assert_eq!(pairs[0].a, Path::new("/img/Ada/Ada_0001.jpg"));
        assert_eq!(pairs[1].b, Path::new("/img/Bob/Bob_0003.jpg"));
        assert_eq!((pairs[2].fold, pairs[2].same), (1, true));
        assert!(!pairs[3].same);
        assert!(parse_pairs("", Path::new("/")).is_err());
        assert!(parse_pairs("1 1\nAda 1 Bob 2\nAda 1 2\n", Path::new("/")).is_err());
        assert!(parse_pairs("1 1\nAda 1 2\n", Path::new("/")).is_err());
        assert!(parse_pairs("1 1\nAda x 2\nAda 1 Bob 2\n", Path::new("/")).is_err());
    }

    #[test]
    fn ten_fold_picks_threshold_from_other_folds() {
        // Same pairs at 0.3, different at 0.9, except one different pair at 0.2 in fold 0.
        let mut items = Vec::new();
        for fold in 0..10 {
            for _ in 0..5 {
                items.push((fold, 0.3, true));
                items.push((fold, 0.9, false));
            }
        }
        items.push((0, 0.2, false));
        let p = ten_fold(&items);
        assert_eq!(p.folds.len(), 10);
        for (f, r) in p.folds.iter().enumerate() {
            assert!(r.threshold >= 0.3 && r.threshold < 0.9, "{}", r.threshold);
            let expected = if f == 0 { 10.0 / 11.0 } else { 1.0 };
            assert!((r.accuracy - expected).abs() < 1e-12);
        }
        // The smallest best threshold wins ties.
        assert!((p.folds[1].threshold - 0.3).abs() < 1e-6);
        assert!(p.std_accuracy > 0.0 && p.mean_accuracy < 1.0);
    }
}
