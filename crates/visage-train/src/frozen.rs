//! The pair head on a frozen encoder: logistic regression on [`PairFeatures`] of two fixed
//! encodings (for example dlib's 128-d face encodings), trained with binary cross-entropy.

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};

use crate::loss::bce_with_logits;
use crate::model::{PairFeatures, PairHead};

/// A labelled pair of fixed encodings.
#[derive(Debug, Clone)]
pub struct EncodedPair {
    /// First encoding.
    pub a: Vec<f32>,
    /// Second encoding (same length).
    pub b: Vec<f32>,
    /// Whether both show the same identity.
    pub same: bool,
}

/// A pair head fitted on frozen encodings, with the feature scaling it learned.
#[derive(Debug)]
pub struct FrozenPairHead {
    features: PairFeatures,
    head: PairHead,
    mean: Vec<f32>,
    scale: Vec<f32>,
}

fn feature_rows(pairs: &[EncodedPair], features: PairFeatures) -> (Vec<f32>, usize) {
    let dim = pairs.first().map_or(0, |p| p.a.len());
    let device = Device::flex();
    let a: Vec<f32> = pairs.iter().flat_map(|p| p.a.iter().copied()).collect();
    let b: Vec<f32> = pairs.iter().flat_map(|p| p.b.iter().copied()).collect();
    let a = Tensor::<2>::from_data(TensorData::new(a, [pairs.len(), dim]), &device);
    let b = Tensor::<2>::from_data(TensorData::new(b, [pairs.len(), dim]), &device);
    let f = features.compute(a, b);
    let width = f.dims()[1];
    (
        f.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap_or_default(),
        width,
    )
}

impl FrozenPairHead {
    /// Fits the head on `pairs` (full batch, Adam, `epochs` steps); features are standardised
    /// with the training pairs' mean and deviation first, which makes one learning rate fit
    /// every encoder.
    pub fn fit(pairs: &[EncodedPair], features: PairFeatures, epochs: usize, seed: u64) -> Self {
        let (rows, width) = feature_rows(pairs, features);
        let n = pairs.len().max(1);
        let mut mean = vec![0.0f32; width];
        let mut scale = vec![0.0f32; width];
        for r in rows.chunks(width) {
            r.iter()
                .zip(&mut mean)
                .for_each(|(v, m)| *m += v / n as f32);
        }
        for r in rows.chunks(width) {
            r.iter()
                .zip(&mean)
                .zip(&mut scale)
                .for_each(|((v, m), s)| *s += (v - m) * (v - m) / n as f32);
        }
        scale.iter_mut().for_each(|s| *s = 1.0 / s.sqrt().max(1e-6));
        let device = Device::flex().autodiff();
        let x = standardise(rows, &mean, &scale, width);
        let x = Tensor::<2>::from_data(TensorData::new(x, [pairs.len(), width]), &device);
        let targets: Vec<f32> = pairs.iter().map(|p| p.same as u8 as f32).collect();
        let mut head = crate::model::seeded(&device, seed, || {
            PairHead::new(width / features.width(), features.width(), &device)
        });
        let mut optim = AdamConfig::new().init();
        for _ in 0..epochs {
            let loss = bce_with_logits(head.forward(x.clone()), &targets);
            let grads = GradientsParams::from_grads(loss.backward(), &head);
            head = optim.step(0.05, head, grads);
        }
        Self {
            features,
            head: head.valid(),
            mean,
            scale,
        }
    }

    /// The probability that each pair shows the same identity.
    pub fn predict(&self, pairs: &[EncodedPair]) -> Vec<f32> {
        if pairs.is_empty() {
            return Vec::new();
        }
        let (rows, width) = feature_rows(pairs, self.features);
        let x = standardise(rows, &self.mean, &self.scale, width);
        let x = Tensor::<2>::from_data(TensorData::new(x, [pairs.len(), width]), &Device::flex());
        let z = burn::tensor::activation::sigmoid(self.head.forward(x));
        z.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap_or_default()
    }
}

fn standardise(mut rows: Vec<f32>, mean: &[f32], scale: &[f32], width: usize) -> Vec<f32> {
    for r in rows.chunks_mut(width) {
        for ((v, m), s) in r.iter_mut().zip(mean).zip(scale) {
            *v = (*v - m) * s;
        }
    }
    rows
}

/// Accuracy of the head over folds: for each fold, fit on the others, classify the fold at
/// probability 0.5. `folds[i]` is pair `i`'s fold. Returns one accuracy per fold.
pub fn cross_validate(
    pairs: &[EncodedPair],
    folds: &[usize],
    features: PairFeatures,
    epochs: usize,
) -> Vec<f64> {
    let count = folds.iter().copied().max().map_or(0, |m| m + 1);
    (0..count)
        .map(|f| {
            let split = |want: bool| -> Vec<EncodedPair> {
                pairs
                    .iter()
                    .zip(folds)
                    .filter(|(_, &g)| (g == f) == want)
                    .map(|(p, _)| p.clone())
                    .collect()
            };
            let (train, test) = (split(false), split(true));
            let head = FrozenPairHead::fit(&train, features, epochs, f as u64);
            let p = head.predict(&test);
            let ok = p
                .iter()
                .zip(&test)
                .filter(|(p, t)| (**p >= 0.5) == t.same)
                .count();
            ok as f64 / test.len().max(1) as f64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn a_head_on_separable_encodings_beats_chance_by_far() {
        // Identities are random points; same-identity encodings differ by small noise.
        let mut rng = crate::rng::from_seed(5);
        let point = |rng: &mut Rng| {
            (0..8)
                .map(|_| rng.range(-1.0, 1.0) as f32)
                .collect::<Vec<_>>()
        };
        let mut pairs = Vec::new();
        let mut folds = Vec::new();
        for i in 0..200 {
            let a = point(&mut rng);
            let same = i % 2 == 0;
            let b = if same {
                a.iter().map(|v| v + rng.range(-0.1, 0.1) as f32).collect()
            } else {
                point(&mut rng)
            };
            pairs.push(EncodedPair { a, b, same });
            folds.push(i % 4);
        }
        for features in [
            PairFeatures::AbsDiff,
            PairFeatures::ChiSquare,
            PairFeatures::Both,
        ] {
            let acc = cross_validate(&pairs, &folds, features, 200);
            let mean = acc.iter().sum::<f64>() / acc.len() as f64;
            assert!(mean > 0.9, "{features:?}: {acc:?}");
        }
    }
}
