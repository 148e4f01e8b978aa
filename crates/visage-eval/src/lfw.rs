//! LFW View 2: reading `pairs.txt` and the 10-fold protocol on pair distances.
//!
//! The protocol, as `shared/README.md` states it for the peer figure: for each fold, the
//! threshold with the best accuracy on the other nine folds, searched from 0 to 2 in steps of
//! 0.005 (ties: the smallest), then accuracy on the fold itself; mean and standard deviation
//! (population, as numpy's default) over the 10 folds. A pair is called "same" when its
//! **Euclidean** distance is ≤ the threshold.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::folds::{self, Candidates, Direction};
use crate::EvalError;

/// Step of the threshold search (Euclidean distance). An `f64`, so that step 120 is the `f32`
/// nearest 0.6, as a decimal grid is meant.
pub const THRESHOLD_STEP: f64 = 0.005;
/// Largest threshold tried (Euclidean distance); dlib encodings are never 2 apart.
pub const THRESHOLD_MAX: f64 = 2.0;

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

/// Every image the pairs name, once each, sorted.
pub fn distinct_images(pairs: &[Pair]) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = pairs
        .iter()
        .flat_map(|p| [p.a.clone(), p.b.clone()])
        .collect();
    paths.sort();
    paths.dedup();
    paths
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

/// Runs the 10-fold protocol on `(fold, Euclidean distance, same)` triples.
pub fn ten_fold(items: &[(usize, f32, bool)]) -> Protocol {
    let scores: Vec<(usize, f64, bool)> = items
        .iter()
        .map(|&(fold, d, same)| (fold, f64::from(d), same))
        .collect();
    let k = folds::k_fold(
        &scores,
        Direction::LowerIsSame,
        Candidates::Grid {
            step: THRESHOLD_STEP,
            max: THRESHOLD_MAX,
        },
    );
    Protocol {
        folds: k
            .folds
            .iter()
            .map(|f| FoldResult {
                // Grid thresholds are f32 values (see `Candidates::Grid`): exact.
                threshold: f.threshold as f32,
                train_accuracy: f.train_accuracy,
                accuracy: f.accuracy,
            })
            .collect(),
        mean_accuracy: k.mean_accuracy,
        std_accuracy: k.std_accuracy,
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
    fn ten_fold_searches_the_peer_grid_in_f32() {
        // A same pair at exactly the f32 nearest 0.6 and a different one a grid step above: the
        // grid's 0.6 (an f32, as the peer compares) keeps the first, so every fold is perfect.
        let items: Vec<(usize, f32, bool)> = (0..10)
            .flat_map(|fold| [(fold, 0.6f32, true), (fold, 0.605f32, false)])
            .collect();
        let p = ten_fold(&items);
        assert_eq!(p.folds.len(), 10);
        for r in &p.folds {
            assert_eq!(r.threshold, 0.6f32);
            assert_eq!((r.accuracy, r.train_accuracy), (1.0, 1.0));
        }
        assert_eq!((p.mean_accuracy, p.std_accuracy), (1.0, 0.0));
    }
}
