//! Open-set identification: enroll one image per person, probe with the others and with people
//! never enrolled, and count what a door at τ would do.
//!
//! Distances are **Euclidean**; rates are fractions.

use serde::Serialize;
use visage_gallery::{Encoding, TemplateMatrix};

/// What happened to the probes at one τ.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OpenSetPoint {
    /// τ (Euclidean distance).
    pub threshold: f32,
    /// Enrolled people's probes named correctly (nearest is them, distance ≤ τ).
    pub correct: usize,
    /// Enrolled people's probes answered "not recognized" (nearest distance > τ).
    pub false_rejects: usize,
    /// Enrolled people's probes named as someone else (a false accept of an enrolled person).
    pub misidentified: usize,
    /// Never-enrolled people's probes named as someone (the door opens for a stranger).
    pub false_accepts: usize,
    /// correct / enrolled probes: detection-and-identification rate (fraction).
    pub dir: f64,
    /// false_rejects / enrolled probes (fraction).
    pub frr: f64,
    /// misidentified / enrolled probes (fraction).
    pub misidentification_rate: f64,
    /// false_accepts / stranger probes: the open-set false accept rate (fraction).
    pub far: f64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct OpenSetReport {
    /// People enrolled (one template each).
    pub enrolled: usize,
    /// Probes of enrolled people.
    pub genuine_probes: usize,
    /// Probes of people never enrolled.
    pub stranger_probes: usize,
    /// Share of enrolled people's probes whose nearest template is theirs, whatever τ (fraction).
    pub rank1_accuracy: f64,
    /// Outcomes at each τ asked for.
    pub points: Vec<OpenSetPoint>,
}

/// Runs the protocol on `people`: each entry is a person's encodings in a fixed order. People
/// with two or more are enrolled with their first and probed with the rest; people with one are
/// strangers and probe with it. Exact search, so the figures do not depend on an index.
pub fn open_set(people: &[Vec<Encoding>], thresholds: &[f32]) -> OpenSetReport {
    let mut gallery = TemplateMatrix::default();
    for (i, encs) in people.iter().enumerate() {
        if encs.len() >= 2 {
            gallery.push(&encs[0], i as i64, i as i64);
        }
    }
    // (true person if enrolled, nearest person, distance)
    let mut outcomes: Vec<(Option<i64>, i64, f32)> = Vec::new();
    for (i, encs) in people.iter().enumerate() {
        let (who, probes) = if encs.len() >= 2 {
            (Some(i as i64), &encs[1..])
        } else {
            (None, &encs[..])
        };
        for p in probes {
            if let Some(hit) = gallery.exact_search(p, 1).first() {
                outcomes.push((
                    who,
                    gallery.person_id(hit.row as usize),
                    hit.squared_distance.max(0.0).sqrt(),
                ));
            }
        }
    }
    let genuine = outcomes.iter().filter(|o| o.0.is_some()).count();
    let strangers = outcomes.len() - genuine;
    let rank1 = outcomes.iter().filter(|o| o.0 == Some(o.1)).count();
    let frac = |n: usize, d: usize| n as f64 / d.max(1) as f64;
    let points = thresholds
        .iter()
        .map(|&t| {
            let (mut correct, mut rejects, mut misid, mut fa) = (0, 0, 0, 0);
            for &(who, nearest, d) in &outcomes {
                match (who, d <= t) {
                    (Some(_), false) => rejects += 1,
                    (Some(w), true) if w == nearest => correct += 1,
                    (Some(_), true) => misid += 1,
                    (None, true) => fa += 1,
                    (None, false) => {}
                }
            }
            OpenSetPoint {
                threshold: t,
                correct,
                false_rejects: rejects,
                misidentified: misid,
                false_accepts: fa,
                dir: frac(correct, genuine),
                frr: frac(rejects, genuine),
                misidentification_rate: frac(misid, genuine),
                far: frac(fa, strangers),
            }
        })
        .collect();
    OpenSetReport {
        enrolled: gallery.len(),
        genuine_probes: genuine,
        stranger_probes: strangers,
        rank1_accuracy: frac(rank1, genuine),
        points,
    }
}

/// One image of a folder-per-person set: (person index, image index within the person).
pub type ImageRef = (usize, usize);

/// Pairs drawn from a folder-per-person set for calibration: `(image a, image b, same person)`.
///
/// Every genuine pair of a person up to `max_genuine_per_person`, then as many impostor pairs
/// (two different people, drawn with a fixed seed so runs repeat).
pub fn draw_pairs(
    counts: &[usize],
    max_genuine_per_person: usize,
    seed: u64,
) -> Vec<(ImageRef, ImageRef, bool)> {
    let mut pairs = Vec::new();
    for (p, &n) in counts.iter().enumerate() {
        let mut taken = 0;
        'outer: for a in 0..n {
            for b in a + 1..n {
                if taken == max_genuine_per_person {
                    break 'outer;
                }
                pairs.push(((p, a), (p, b), true));
                taken += 1;
            }
        }
    }
    let people: Vec<usize> = (0..counts.len()).filter(|&p| counts[p] > 0).collect();
    if people.len() < 2 {
        return pairs;
    }
    let genuine = pairs.len().max(1);
    let mut rng = visage_rng::SplitMix64::new(seed);
    let mut next = |n: usize| rng.below_by_modulo(n);
    for _ in 0..genuine {
        let pa = people[next(people.len())];
        let mut pb = people[next(people.len() - 1)];
        if pb == pa {
            pb = people[people.len() - 1];
        }
        pairs.push(((pa, next(counts[pa])), (pb, next(counts[pb])), false));
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use visage_gallery::DIM;

    fn e(x: f32) -> Encoding {
        let mut v = [0.0; DIM];
        v[0] = x;
        v
    }

    #[test]
    fn open_set_counts() {
        // A enrolled at 0: probe 0.1 named right, probe 0.9 rejected at both τ.
        // B enrolled at 2: probe 1.55 is 0.45 from B.
        // C never enrolled, at 0.5: 0.5 from A.
        // D enrolled at 5: probe 0.4 is nearest to A (misidentified at 0.6).
        let people = vec![
            vec![e(0.0), e(0.1), e(0.9)],
            vec![e(2.0), e(1.55)],
            vec![e(0.5)],
            vec![e(5.0), e(0.4)],
        ];
        let r = open_set(&people, &[0.6, 0.3]);
        assert_eq!((r.enrolled, r.genuine_probes, r.stranger_probes), (3, 4, 1));
        assert!((r.rank1_accuracy - 0.75).abs() < 1e-9);
        let p = r.points[0];
        assert_eq!(
            (p.correct, p.false_rejects, p.misidentified, p.false_accepts),
            (2, 1, 1, 1)
        );
        assert!((p.far - 1.0).abs() < 1e-9 && (p.dir - 0.5).abs() < 1e-9);
        let p = r.points[1];
        assert_eq!(
            (p.correct, p.false_rejects, p.misidentified, p.false_accepts),
            (1, 3, 0, 0)
        );
    }

    #[test]
    fn pairs_are_balanced_and_deterministic() {
        let counts = [3, 1, 4, 0];
        let pairs = draw_pairs(&counts, 2, 7);
        let genuine = pairs.iter().filter(|p| p.2).count();
        assert_eq!(genuine, 2 + 2);
        assert_eq!(pairs.len(), 2 * genuine);
        for ((pa, ia), (pb, ib), same) in &pairs {
            assert_eq!(*same, pa == pb);
            assert!(*ia < counts[*pa] && *ib < counts[*pb]);
        }
        assert_eq!(pairs, draw_pairs(&counts, 2, 7));
    }
}
