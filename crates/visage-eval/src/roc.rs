//! ROC analysis of a verifier that accepts a pair when its **Euclidean** distance is ≤ τ.
//!
//! Genuine pairs are two images of one person, impostor pairs two people. FAR(τ) is the share of
//! impostor pairs accepted, FRR(τ) the share of genuine pairs rejected, TAR = 1 − FRR. Rates are
//! fractions in [0, 1], never percentages.

use serde::Serialize;

/// FAR and FRR at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RocPoint {
    /// τ, a Euclidean distance: pairs at distance ≤ τ are accepted.
    pub threshold: f32,
    /// False accept rate: impostor pairs accepted / impostor pairs (fraction).
    pub far: f64,
    /// False reject rate: genuine pairs rejected / genuine pairs (fraction).
    pub frr: f64,
}

impl RocPoint {
    /// True accept rate, 1 − FRR (fraction).
    pub fn tar(&self) -> f64 {
        1.0 - self.frr
    }
}

/// The ROC of one set of scored pairs.
#[derive(Debug, Clone, Serialize)]
pub struct Roc {
    /// Number of genuine pairs.
    pub genuine: usize,
    /// Number of impostor pairs.
    pub impostor: usize,
    /// One point per distinct observed distance, ascending τ (FAR rises, FRR falls).
    pub points: Vec<RocPoint>,
    /// Equal error rate: (FAR + FRR) / 2 where they are closest (fraction).
    pub eer: f64,
    /// τ at the equal error rate (Euclidean distance).
    pub eer_threshold: f32,
}

/// An operating point chosen for a target FAR.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OperatingPoint {
    /// The FAR asked for (fraction).
    pub target_far: f64,
    /// τ (Euclidean distance): the largest threshold whose FAR on these pairs is ≤ the target.
    pub threshold: f32,
    /// FAR measured at τ (fraction).
    pub far: f64,
    /// TAR measured at τ (fraction).
    pub tar: f64,
}

/// The largest `f32` below `x` (for positive finite `x`); `f32::next_down` needs Rust 1.86.
fn below(x: f32) -> f32 {
    if x > 0.0 && x.is_finite() {
        f32::from_bits(x.to_bits() - 1)
    } else if x == 0.0 {
        -f32::from_bits(1)
    } else {
        x
    }
}

fn sorted(v: &[f32]) -> Vec<f32> {
    let mut s: Vec<f32> = v.iter().copied().filter(|d| d.is_finite()).collect();
    s.sort_by(f32::total_cmp);
    s
}

/// How many of the ascending `s` are ≤ `t`.
fn count_le(s: &[f32], t: f32) -> usize {
    s.partition_point(|&d| d <= t)
}

/// FAR and FRR at one τ.
pub fn rates_at(genuine: &[f32], impostor: &[f32], threshold: f32) -> RocPoint {
    let g = genuine.iter().filter(|&&d| d > threshold).count();
    let i = impostor.iter().filter(|&&d| d <= threshold).count();
    RocPoint {
        threshold,
        far: i as f64 / impostor.len().max(1) as f64,
        frr: g as f64 / genuine.len().max(1) as f64,
    }
}

/// The ROC curve and EER of genuine and impostor **Euclidean** distances.
pub fn roc(genuine: &[f32], impostor: &[f32]) -> Roc {
    let (g, i) = (sorted(genuine), sorted(impostor));
    let mut thresholds: Vec<f32> = g.iter().chain(&i).copied().collect();
    thresholds.sort_by(f32::total_cmp);
    thresholds.dedup();
    let mut points = Vec::with_capacity(thresholds.len() + 1);
    if let Some(&first) = thresholds.first() {
        // Below every score: nothing accepted.
        points.push(RocPoint {
            threshold: below(first),
            far: 0.0,
            frr: 1.0,
        });
    }
    for t in thresholds {
        points.push(RocPoint {
            threshold: t,
            far: count_le(&i, t) as f64 / i.len().max(1) as f64,
            frr: (g.len() - count_le(&g, t)) as f64 / g.len().max(1) as f64,
        });
    }
    let (eer, eer_threshold) = points
        .iter()
        .min_by(|a, b| (a.far - a.frr).abs().total_cmp(&(b.far - b.frr).abs()))
        .map_or((f64::NAN, f32::NAN), |p| {
            ((p.far + p.frr) / 2.0, p.threshold)
        });
    Roc {
        genuine: g.len(),
        impostor: i.len(),
        points,
        eer,
        eer_threshold,
    }
}

/// τ for a target FAR: the largest threshold at which at most `target_far` of the impostor pairs
/// are accepted, with the TAR it gives. `None` without impostor pairs.
pub fn threshold_for_far(
    genuine: &[f32],
    impostor: &[f32],
    target_far: f64,
) -> Option<OperatingPoint> {
    let i = sorted(impostor);
    if i.is_empty() || !(0.0..=1.0).contains(&target_far) {
        return None;
    }
    // Accepting k impostors keeps FAR = k / n ≤ target; τ sits just under the (k+1)-th smallest
    // impostor distance (ties at that distance must stay rejected too).
    let k = ((target_far * i.len() as f64) + 1e-9).floor() as usize;
    let threshold = if k >= i.len() {
        i[i.len() - 1]
    } else {
        below(i[k])
    };
    let p = rates_at(genuine, &i, threshold);
    Some(OperatingPoint {
        target_far,
        threshold,
        far: p.far,
        tar: p.tar(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_scores_have_zero_eer() {
        let g = [0.1, 0.2, 0.3];
        let i = [0.7, 0.8, 0.9, 1.0];
        let r = roc(&g, &i);
        assert_eq!(r.eer, 0.0);
        assert!(r.eer_threshold >= 0.3 && r.eer_threshold < 0.7);
        assert_eq!(r.points.first().unwrap().frr, 1.0);
        assert_eq!(r.points.last().unwrap().far, 1.0);
        assert!(r
            .points
            .windows(2)
            .all(|w| w[0].far <= w[1].far && w[0].frr >= w[1].frr));
        let op = threshold_for_far(&g, &i, 0.0).unwrap();
        assert!(op.threshold < 0.7 && op.threshold > 0.69);
        assert_eq!((op.far, op.tar), (0.0, 1.0));
    }

    #[test]
    fn overlapping_scores() {
        // Genuine 0.1..=1.0, impostor 0.6..=1.5 (step 0.1): they overlap on 0.6..=1.0.
        let g: Vec<f32> = (1..=10).map(|k| k as f32 / 10.0).collect();
        let i: Vec<f32> = (6..=15).map(|k| k as f32 / 10.0).collect();
        let p = rates_at(&g, &i, 0.8);
        assert!((p.far - 0.3).abs() < 1e-9 && (p.frr - 0.2).abs() < 1e-9);
        let r = roc(&g, &i);
        assert!((r.eer - 0.25).abs() < 0.051, "{}", r.eer);
        // FAR 0.1 allows exactly one impostor: τ just under the second smallest (0.7).
        let op = threshold_for_far(&g, &i, 0.1).unwrap();
        assert!(
            op.threshold < 0.7 && op.threshold >= 0.6,
            "{}",
            op.threshold
        );
        assert!((op.far - 0.1).abs() < 1e-9);
        assert!((op.tar - 0.6).abs() < 1e-9);
        assert!(threshold_for_far(&g, &[], 0.1).is_none());
    }
}
