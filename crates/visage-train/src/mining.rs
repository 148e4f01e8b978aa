//! Online triplet mining: which (anchor, positive, negative) triplets of a batch the loss sees,
//! chosen from the batch's squared distances (taken without gradient).

use serde::{Deserialize, Serialize};

/// How triplets are chosen from a P×K batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Miner {
    /// Every valid triplet: anchor and positive share a label, the negative does not.
    All,
    /// For each (anchor, positive), the closest negative that is still farther than the
    /// positive (`d(a,p) < d(a,n)`); when there is none, the farthest negative (FaceNet).
    SemiHard,
    /// For each anchor, its farthest positive and its closest negative (Hermans et al.).
    BatchHard,
    /// For each (anchor, positive), the closest negative, however close: the hardest triplets,
    /// which can drive an embedding to collapse.
    Hardest,
}

impl Miner {
    /// Every miner, in the order of the CLI's choices.
    pub const ALL: [Miner; 4] = [
        Miner::All,
        Miner::SemiHard,
        Miner::BatchHard,
        Miner::Hardest,
    ];

    /// The CLI name: `all`, `semi-hard`, `batch-hard` or `hardest`.
    pub fn name(&self) -> &'static str {
        match self {
            Miner::All => "all",
            Miner::SemiHard => "semi-hard",
            Miner::BatchHard => "batch-hard",
            Miner::Hardest => "hardest",
        }
    }
}

impl std::str::FromStr for Miner {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Miner::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown miner {s:?} (all, semi-hard, batch-hard, hardest)"))
    }
}

/// One triplet of batch indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Triplet {
    /// The anchor.
    pub anchor: usize,
    /// An item with the anchor's label.
    pub positive: usize,
    /// An item with another label.
    pub negative: usize,
}

/// Squared Euclidean distances between all rows of `rows` (`n x dim`, row-major), `n x n`.
pub fn squared_distances(rows: &[f32], dim: usize) -> Vec<f32> {
    let n = rows.len() / dim.max(1);
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let d: f32 = rows[i * dim..(i + 1) * dim]
                .iter()
                .zip(&rows[j * dim..(j + 1) * dim])
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            out[i * n + j] = d;
            out[j * n + i] = d;
        }
    }
    out
}

/// The triplets `miner` picks, given the batch's squared distances `dist` (`n x n`) and labels.
pub fn mine(dist: &[f32], labels: &[usize], miner: Miner) -> Vec<Triplet> {
    let n = labels.len();
    let d = |i: usize, j: usize| dist[i * n + j];
    let positives = |a: usize| (0..n).filter(move |&p| p != a && labels[p] == labels[a]);
    let negatives = |a: usize| (0..n).filter(move |&x| labels[x] != labels[a]);
    let closest = |a: usize, it: &mut dyn Iterator<Item = usize>| {
        it.min_by(|&x, &y| d(a, x).total_cmp(&d(a, y)))
    };
    let mut out = Vec::new();
    match miner {
        Miner::All => {
            for a in 0..n {
                for p in positives(a) {
                    out.extend(negatives(a).map(|negative| Triplet {
                        anchor: a,
                        positive: p,
                        negative,
                    }));
                }
            }
        }
        Miner::SemiHard => {
            for a in 0..n {
                for p in positives(a) {
                    let beyond = closest(a, &mut negatives(a).filter(|&x| d(a, x) > d(a, p)));
                    let pick = beyond
                        .or_else(|| negatives(a).max_by(|&x, &y| d(a, x).total_cmp(&d(a, y))));
                    if let Some(negative) = pick {
                        out.push(Triplet {
                            anchor: a,
                            positive: p,
                            negative,
                        });
                    }
                }
            }
        }
        Miner::BatchHard => {
            for a in 0..n {
                let p = positives(a).max_by(|&x, &y| d(a, x).total_cmp(&d(a, y)));
                let q = closest(a, &mut negatives(a));
                if let (Some(positive), Some(negative)) = (p, q) {
                    out.push(Triplet {
                        anchor: a,
                        positive,
                        negative,
                    });
                }
            }
        }
        Miner::Hardest => {
            for a in 0..n {
                if let Some(negative) = closest(a, &mut negatives(a)) {
                    out.extend(positives(a).map(|positive| Triplet {
                        anchor: a,
                        positive,
                        negative,
                    }));
                }
            }
        }
    }
    out
}

/// `max(d(a,p) - d(a,n) + margin, 0)` averaged over `triplets`, on squared distances (the
/// reference the tensor loss is tested against).
pub fn triplet_loss_reference(dist: &[f32], n: usize, triplets: &[Triplet], margin: f32) -> f32 {
    if triplets.is_empty() {
        return 0.0;
    }
    triplets
        .iter()
        .map(|t| {
            (dist[t.anchor * n + t.positive] - dist[t.anchor * n + t.negative] + margin).max(0.0)
        })
        .sum::<f32>()
        / triplets.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points on a line: class 0 at 0 and 1, class 1 at 1.5 and 5, class 2 at 10.
    fn batch() -> (Vec<f32>, Vec<usize>) {
        let xs = [0.0f32, 1.0, 1.5, 5.0, 10.0];
        (squared_distances(&xs, 1), vec![0, 0, 1, 1, 2])
    }

    #[test]
    fn all_takes_every_valid_triplet() {
        let (d, l) = batch();
        let t = mine(&d, &l, Miner::All);
        // Anchors 0,1 (class 0): 1 positive x 3 negatives each; 2,3: 1 x 3; 4: none.
        assert_eq!(t.len(), 12);
        assert!(t
            .iter()
            .all(|t| l[t.anchor] == l[t.positive] && l[t.anchor] != l[t.negative]));
    }

    #[test]
    fn batch_hard_takes_the_farthest_positive_and_the_closest_negative() {
        let (d, l) = batch();
        let t = mine(&d, &l, Miner::BatchHard);
        assert_eq!(t.len(), 4);
        // Anchor 1 (at 1.0): positive 0, closest negative 2 (at 1.5).
        assert!(t.contains(&Triplet {
            anchor: 1,
            positive: 0,
            negative: 2
        }));
        // Anchor 3 (at 5): positive 2, closest negative 1 (at 1.0: distance 16 < 25 to 10).
        assert!(t.contains(&Triplet {
            anchor: 3,
            positive: 2,
            negative: 1
        }));
    }

    #[test]
    fn semi_hard_skips_negatives_closer_than_the_positive() {
        let (d, l) = batch();
        let t = mine(&d, &l, Miner::SemiHard);
        // Anchor 2 (1.5), positive 3 (5.0, d = 12.25): negatives 0 (d 2.25), 1 (0.25) are closer
        // than the positive, so the closest farther one is 4 (d 72.25).
        assert!(t.contains(&Triplet {
            anchor: 2,
            positive: 3,
            negative: 4
        }));
        // Anchor 0, positive 1 (d 1): negative 2 (d 2.25) is already farther: semi-hard.
        assert!(t.contains(&Triplet {
            anchor: 0,
            positive: 1,
            negative: 2
        }));
        // Hardest takes the negative at 1.0 for anchor 2, which semi-hard refused.
        let h = mine(&d, &l, Miner::Hardest);
        assert!(h.contains(&Triplet {
            anchor: 2,
            positive: 3,
            negative: 1
        }));
    }

    #[test]
    fn reference_loss_is_the_hinge_on_squared_distances() {
        let (d, _) = batch();
        let t = [Triplet {
            anchor: 2,
            positive: 3,
            negative: 1,
        }];
        // 12.25 - 0.25 + 0.2
        assert!((triplet_loss_reference(&d, 5, &t, 0.2) - 12.2).abs() < 1e-5);
        let t = [Triplet {
            anchor: 0,
            positive: 1,
            negative: 4,
        }];
        assert_eq!(triplet_loss_reference(&d, 5, &t, 0.2), 0.0);
    }
}
