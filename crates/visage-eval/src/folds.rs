//! k-fold threshold selection for verification ("same or not?") scores, as LFW's View 2 protocol
//! asks: for each fold, the threshold with the best accuracy on the other folds (ties: the
//! smallest), then the accuracy on the fold itself; mean and population standard deviation of
//! the fold accuracies.
//!
//! Scores are in the caller's units (a Euclidean distance, a similarity, an SVM decision value);
//! [`Direction`] says which side means "same" and [`Candidates`] which thresholds are tried.

use serde::Serialize;

/// Which way a score points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Distances: a pair is "same" when its score is ≤ the threshold.
    LowerIsSame,
    /// Similarities and decision values: "same" when the score is > the threshold.
    HigherIsSame,
}

/// The thresholds tried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Candidates {
    /// `0, step, 2·step, …, max`, each rounded to the nearest `f32` (a grid meant for `f32`
    /// scores: comparing an `f32` score with these as `f64` decides as comparing in `f32`).
    Grid {
        /// Distance between thresholds, score units.
        step: f64,
        /// Largest threshold, score units.
        max: f64,
    },
    /// Midway between every two neighbouring training scores, and one beyond each end: the
    /// threshold generalises symmetrically and every distinct split is tried.
    Midpoints,
}

/// The outcome on one fold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FoldOutcome {
    /// Threshold chosen on the other folds (score units).
    pub threshold: f64,
    /// Accuracy on the other folds at that threshold (fraction).
    pub train_accuracy: f64,
    /// Accuracy on this fold (fraction).
    pub accuracy: f64,
}

/// The k-fold outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KFold {
    /// Per fold, in order.
    pub folds: Vec<FoldOutcome>,
    /// Mean fold accuracy (fraction).
    pub mean_accuracy: f64,
    /// Population standard deviation of the fold accuracies (fraction).
    pub std_accuracy: f64,
}

/// Fraction of `scores` (score, same) decided right at threshold `t`.
pub fn accuracy_at(scores: &[(f64, bool)], direction: Direction, t: f64) -> f64 {
    let right = scores
        .iter()
        .filter(|&&(s, same)| says_same(direction, s, t) == same)
        .count();
    right as f64 / scores.len().max(1) as f64
}

fn says_same(direction: Direction, score: f64, t: f64) -> bool {
    match direction {
        Direction::LowerIsSame => score <= t,
        Direction::HigherIsSame => score > t,
    }
}

/// The threshold with the best accuracy on `scores` (ties: the smallest), and that accuracy.
pub fn best_threshold(
    scores: &[(f64, bool)],
    direction: Direction,
    candidates: Candidates,
) -> (f64, f64) {
    let thresholds: Vec<f64> = match candidates {
        Candidates::Grid { step, max } => {
            let steps = (max / step).round() as usize;
            (0..=steps)
                .map(|i| (i as f64 * step) as f32 as f64)
                .collect()
        }
        Candidates::Midpoints => {
            let mut sorted: Vec<f64> = scores
                .iter()
                .map(|s| s.0)
                .filter(|s| s.is_finite())
                .collect();
            sorted.sort_by(f64::total_cmp);
            sorted.dedup();
            match (sorted.first(), sorted.last()) {
                (Some(&lo), Some(&hi)) => std::iter::once(lo - 1.0)
                    .chain(sorted.windows(2).map(|w| 0.5 * (w[0] + w[1])))
                    .chain(std::iter::once(hi + 1.0))
                    .collect(),
                _ => vec![0.0],
            }
        }
    };
    // One sweep over the sorted scores instead of re-counting at every threshold.
    let mut items: Vec<(f64, bool)> = scores.to_vec();
    items.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total_same = items.iter().filter(|i| i.1).count();
    let total_diff = items.len() - total_same;
    let n = items.len().max(1) as f64;
    let (mut below_same, mut below_diff, mut idx) = (0usize, 0usize, 0usize);
    let mut best = (thresholds[0], f64::NEG_INFINITY);
    for &t in &thresholds {
        while idx < items.len() && items[idx].0 <= t {
            if items[idx].1 {
                below_same += 1;
            } else {
                below_diff += 1;
            }
            idx += 1;
        }
        let right = match direction {
            Direction::LowerIsSame => below_same + (total_diff - below_diff),
            Direction::HigherIsSame => (total_same - below_same) + below_diff,
        };
        let acc = right as f64 / n;
        if acc > best.1 {
            best = (t, acc);
        }
    }
    best
}

/// Runs the k-fold protocol on `(fold, score, same)` triples (folds numbered from 0).
pub fn k_fold(items: &[(usize, f64, bool)], direction: Direction, candidates: Candidates) -> KFold {
    let folds = items.iter().map(|i| i.0 + 1).max().unwrap_or(0);
    let outcomes: Vec<FoldOutcome> = (0..folds)
        .map(|f| {
            let (train, test): (Vec<_>, Vec<_>) = items.iter().partition(|i| i.0 != f);
            let strip = |v: Vec<&(usize, f64, bool)>| -> Vec<(f64, bool)> {
                v.into_iter().map(|i| (i.1, i.2)).collect()
            };
            let (threshold, train_accuracy) = best_threshold(&strip(train), direction, candidates);
            FoldOutcome {
                threshold,
                train_accuracy,
                accuracy: accuracy_at(&strip(test), direction, threshold),
            }
        })
        .collect();
    KFold::from_folds(outcomes)
}

impl KFold {
    /// Mean and standard deviation over per-fold outcomes found elsewhere (for example with a
    /// model trained on each fold's complement, scored with [`best_threshold`]).
    pub fn from_folds(folds: Vec<FoldOutcome>) -> Self {
        let k = folds.len().max(1) as f64;
        let mean = folds.iter().map(|f| f.accuracy).sum::<f64>() / k;
        let var = folds
            .iter()
            .map(|f| (f.accuracy - mean).powi(2))
            .sum::<f64>()
            / k;
        KFold {
            folds,
            mean_accuracy: mean,
            std_accuracy: var.sqrt(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Same pairs at 0.3, different at 0.9, in 10 folds, plus one different pair at 0.2 in fold 0.
    fn items() -> Vec<(usize, f64, bool)> {
        let mut items = Vec::new();
        for fold in 0..10 {
            for _ in 0..5 {
                items.push((fold, 0.3, true));
                items.push((fold, 0.9, false));
            }
        }
        items.push((0, 0.2, false));
        items
    }

    #[test]
    fn each_fold_takes_its_threshold_from_the_others() {
        for candidates in [
            Candidates::Grid {
                step: 0.005,
                max: 2.0,
            },
            Candidates::Midpoints,
        ] {
            let k = k_fold(&items(), Direction::LowerIsSame, candidates);
            assert_eq!(k.folds.len(), 10);
            for (f, r) in k.folds.iter().enumerate() {
                assert!(r.threshold >= 0.3 && r.threshold < 0.9, "{}", r.threshold);
                let expected = if f == 0 { 10.0 / 11.0 } else { 1.0 };
                assert!((r.accuracy - expected).abs() < 1e-12);
            }
            assert!(k.std_accuracy > 0.0 && k.mean_accuracy < 1.0);
        }
        // The smallest best grid threshold wins ties: 0.3 as an f32.
        let grid = k_fold(
            &items(),
            Direction::LowerIsSame,
            Candidates::Grid {
                step: 0.005,
                max: 2.0,
            },
        );
        assert_eq!(grid.folds[1].threshold, 0.3f32 as f64);
        // Midpoints split halfway between neighbouring scores.
        let mid = k_fold(&items(), Direction::LowerIsSame, Candidates::Midpoints);
        assert!((mid.folds[1].threshold - 0.6).abs() < 1e-12);
    }

    #[test]
    fn similarities_point_the_other_way() {
        let flipped: Vec<_> = items().into_iter().map(|(f, s, y)| (f, -s, y)).collect();
        let k = k_fold(&flipped, Direction::HigherIsSame, Candidates::Midpoints);
        assert!((k.folds[1].threshold + 0.6).abs() < 1e-12);
        assert!((k.folds[0].accuracy - 10.0 / 11.0).abs() < 1e-12);
        let (t, acc) = best_threshold(&[], Direction::LowerIsSame, Candidates::Midpoints);
        assert_eq!((t, acc), (0.0, 0.0));
    }
}
