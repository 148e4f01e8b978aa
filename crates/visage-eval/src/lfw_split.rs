//! Training on LFW's View 2 folds without seeing the test fold: the people of the other folds'
//! pairs become training identities, the test fold's pairs are held out, and the threshold is
//! chosen on the training folds' pairs (with [`folds::best_threshold`]) before it is applied to
//! the test fold.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::folds::{self, Candidates, Direction, FoldOutcome};
use crate::lfw::Pair;
use crate::EvalError;

/// The person an LFW image shows: the name of its folder (`Name/Name_0001.jpg`).
pub fn person_of(image: &Path) -> Option<String> {
    image
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
}

/// LFW's pairs split for training on all folds but one.
#[derive(Debug, Clone)]
pub struct FoldSplit {
    /// The held-out fold, 0-based.
    pub test_fold: usize,
    /// Folds in the pairs file.
    pub folds: usize,
    /// Every person of the other folds' pairs who appears in no test-fold pair, with all their
    /// images named in the pairs file (sorted, distinct), sorted by name.
    pub train_people: Vec<(String, Vec<PathBuf>)>,
    /// People of the other folds dropped because they also appear in the test fold (LFW's
    /// View 2 folds are disjoint in people, so none there).
    pub dropped_people: usize,
    /// The other folds' pairs (for choosing the threshold).
    pub train_pairs: Vec<Pair>,
    /// The test fold's pairs.
    pub test_pairs: Vec<Pair>,
}

/// Splits `pairs` for training on every fold but `test_fold` (0-based).
pub fn split_by_fold(pairs: &[Pair], test_fold: usize) -> Result<FoldSplit, EvalError> {
    let folds = pairs.iter().map(|p| p.fold + 1).max().unwrap_or(0);
    if test_fold >= folds {
        return Err(EvalError::Data(format!(
            "fold {} does not exist: the pairs file has {folds} folds (1 to {folds})",
            test_fold + 1
        )));
    }
    let (test_pairs, train_pairs): (Vec<Pair>, Vec<Pair>) =
        pairs.iter().cloned().partition(|p| p.fold == test_fold);
    let people_of = |ps: &[Pair]| -> Result<BTreeMap<String, BTreeSet<PathBuf>>, EvalError> {
        let mut out: BTreeMap<String, BTreeSet<PathBuf>> = BTreeMap::new();
        for image in ps.iter().flat_map(|p| [&p.a, &p.b]) {
            let person = person_of(image).ok_or_else(|| {
                EvalError::Pairs(format!("{}: no person folder", image.display()))
            })?;
            out.entry(person).or_default().insert(image.clone());
        }
        Ok(out)
    };
    let test_people = people_of(&test_pairs)?;
    let mut dropped_people = 0;
    let train_people = people_of(&train_pairs)?
        .into_iter()
        .filter(|(person, _)| {
            let shared = test_people.contains_key(person);
            dropped_people += usize::from(shared);
            !shared
        })
        .map(|(person, images)| (person, images.into_iter().collect()))
        .collect();
    Ok(FoldSplit {
        test_fold,
        folds,
        train_people,
        dropped_people,
        train_pairs,
        test_pairs,
    })
}

/// The threshold on distances (lower = same) with the best accuracy on `train` (midway between
/// neighbouring scores, ties: the smallest), and the accuracy it gives on `test`; `(score,
/// same)` in any distance unit (squared distances included).
pub fn held_out_accuracy(train: &[(f64, bool)], test: &[(f64, bool)]) -> FoldOutcome {
    let (threshold, train_accuracy) =
        folds::best_threshold(train, Direction::LowerIsSame, Candidates::Midpoints);
    FoldOutcome {
        threshold,
        train_accuracy,
        accuracy: folds::accuracy_at(test, Direction::LowerIsSame, threshold),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lfw::parse_pairs;

    fn real_pairs() -> Vec<Pair> {
        let shared = visage_testdata::shared();
        let lfw = shared.join("data/lfw");
        let text = std::fs::read_to_string(lfw.join("pairs.txt")).expect("../shared LFW pairs");
        parse_pairs(&text, &lfw.join("images")).unwrap()
    }

    #[test]
    fn no_test_fold_person_or_image_is_trained_on() {
        let pairs = real_pairs();
        for test_fold in [0, 4, 9] {
            let split = split_by_fold(&pairs, test_fold).unwrap();
            assert_eq!(split.folds, 10);
            assert_eq!(
                (split.test_pairs.len(), split.train_pairs.len()),
                (600, 5400)
            );
            assert_eq!(split.dropped_people, 0, "View 2 folds share no one");
            let test_images: BTreeSet<&PathBuf> =
                split.test_pairs.iter().flat_map(|p| [&p.a, &p.b]).collect();
            let test_people: BTreeSet<String> =
                test_images.iter().filter_map(|p| person_of(p)).collect();
            assert!(split.train_people.len() > 3000);
            for (person, images) in &split.train_people {
                assert!(!test_people.contains(person), "{person}");
                assert!(!images.is_empty());
                for image in images {
                    assert_eq!(person_of(image).as_deref(), Some(person.as_str()));
                    assert!(!test_images.contains(image));
                }
            }
        }
    }

    #[test]
    fn a_person_in_both_folds_is_dropped_and_a_bad_fold_is_refused() {
        let pair = |fold, a: &str, b: &str, same| Pair {
            fold,
            a: PathBuf::from(a),
            b: PathBuf::from(b),
            same,
        };
        let pairs = vec![
            pair(0, "i/Ada/Ada_0001.jpg", "i/Ada/Ada_0002.jpg", true),
            pair(0, "i/Bob/Bob_0001.jpg", "i/Cy/Cy_0001.jpg", false),
            pair(1, "i/Cy/Cy_0002.jpg", "i/Cy/Cy_0003.jpg", true),
            pair(1, "i/Dee/Dee_0001.jpg", "i/Eve/Eve_0001.jpg", false),
        ];
        let split = split_by_fold(&pairs, 1).unwrap();
        let names: Vec<&str> = split.train_people.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["Ada", "Bob"]);
        assert_eq!(split.dropped_people, 1);
        assert_eq!(split.train_people[0].1.len(), 2);
        let err = split_by_fold(&pairs, 2).unwrap_err().to_string();
        assert!(err.contains("fold 3 does not exist"), "{err}");
    }

    #[test]
    fn the_threshold_comes_from_the_training_pairs() {
        let train = [(0.1, true), (0.2, true), (0.5, false), (0.9, false)];
        let test = [(0.3, true), (0.4, false)];
        let outcome = held_out_accuracy(&train, &test);
        assert!((outcome.threshold - 0.35).abs() < 1e-12);
        assert_eq!(outcome.train_accuracy, 1.0);
        assert_eq!(outcome.accuracy, 1.0);
        let shifted = held_out_accuracy(&train, &[(0.45, true)]);
        assert_eq!(shifted.accuracy, 0.0);
    }
}
