//! The losses on burn tensors (differentiable through burn's autodiff): the triplet loss over
//! mined triplets, binary cross-entropy for the pair head, the prototypical-network loss and the
//! softmax cross-entropy of the classifier.

use burn::tensor::activation::{log_softmax, relu, softplus};
use burn::tensor::{Int, Tensor, TensorData};

use crate::mining::Triplet;

fn index(values: Vec<i64>, like: &Tensor<2>) -> Tensor<1, Int> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), &like.device())
}

/// `L = mean over triplets of max(||f(A)-f(P)||² - ||f(A)-f(N)||² + margin, 0)` for embeddings
/// `[batch, dim]`; a one-element tensor (zero when there are no triplets).
pub fn triplet_loss(embeddings: Tensor<2>, triplets: &[Triplet], margin: f32) -> Tensor<1> {
    if triplets.is_empty() {
        return embeddings.sum().mul_scalar(0.0);
    }
    let pick = |f: fn(&Triplet) -> usize| {
        let idx = index(triplets.iter().map(|t| f(t) as i64).collect(), &embeddings);
        embeddings.clone().select(0, idx)
    };
    let (a, p, n) = (
        pick(|t| t.anchor),
        pick(|t| t.positive),
        pick(|t| t.negative),
    );
    let d_ap = (a.clone() - p).powi_scalar(2).sum_dim(1);
    let d_an = (a - n).powi_scalar(2).sum_dim(1);
    relu(d_ap - d_an + margin).mean()
}

/// Binary cross-entropy of `logits` (`[n, 1]`) against 0/1 `targets`, computed stably as
/// `softplus(z) - y z`; a one-element tensor.
pub fn bce_with_logits(logits: Tensor<2>, targets: &[f32]) -> Tensor<1> {
    let n = targets.len();
    let y = Tensor::<2>::from_data(TensorData::new(targets.to_vec(), [n, 1]), &logits.device());
    (softplus(logits.clone(), 1.0) - logits * y).mean()
}

/// Squared Euclidean distances `[q, c]` between the rows of `queries` `[q, dim]` and `centres`
/// `[c, dim]`.
pub fn squared_distance_matrix(queries: Tensor<2>, centres: Tensor<2>) -> Tensor<2> {
    let qq = queries.clone().powi_scalar(2).sum_dim(1);
    let cc = centres.clone().powi_scalar(2).sum_dim(1).transpose();
    (qq + cc - queries.matmul(centres.transpose()).mul_scalar(2.0)).clamp_min(0.0)
}

/// The prototypical-network loss: cross-entropy of `softmax(-d²(query, prototype))` for each
/// query against its class, with prototypes `[ways, dim]` and `query_labels` in `0..ways`.
/// Returns the loss and the fraction of queries whose nearest prototype is their own.
pub fn prototypical_loss(
    prototypes: Tensor<2>,
    queries: Tensor<2>,
    query_labels: &[usize],
) -> (Tensor<1>, f32) {
    softmax_cross_entropy(
        squared_distance_matrix(queries, prototypes).neg(),
        query_labels,
    )
}

/// Mean cross-entropy of `softmax(logits)` (`[n, classes]`) against `labels` (`n` values in
/// `0..classes`), and the fraction of rows whose largest logit is their label's.
pub fn softmax_cross_entropy(logits: Tensor<2>, labels: &[usize]) -> (Tensor<1>, f32) {
    let predicted = logits.clone().argmax(1).into_data();
    let predicted: Vec<i64> = predicted
        .convert::<i64>()
        .try_into_vec::<i64>()
        .unwrap_or_default();
    let correct = predicted
        .iter()
        .zip(labels)
        .filter(|(p, l)| **p as usize == **l)
        .count();
    let targets = index(labels.iter().map(|&l| l as i64).collect(), &logits).unsqueeze_dim::<2>(1);
    let logp = log_softmax(logits, 1).gather(1, targets);
    (
        logp.mean().neg(),
        correct as f32 / labels.len().max(1) as f32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mining::{mine, squared_distances, triplet_loss_reference, Miner};
    use burn::tensor::Device;

    fn scalar(t: Tensor<1>) -> f32 {
        t.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap()[0]
    }

    #[test]
    fn tensor_triplet_loss_matches_the_reference_for_every_miner() {
        let device = Device::flex();
        let rows = vec![0.0f32, 0.5, 1.0, 0.0, 1.5, 1.0, 5.0, -1.0, 10.0, 2.0];
        let labels = vec![0, 0, 1, 1, 2];
        let emb = Tensor::<2>::from_data(TensorData::new(rows.clone(), [5, 2]), &device);
        let d = squared_distances(&rows, 2);
        for miner in Miner::ALL {
            let t = mine(&d, &labels, miner);
            let got = scalar(triplet_loss(emb.clone(), &t, 0.3));
            let want = triplet_loss_reference(&d, 5, &t, 0.3);
            assert!((got - want).abs() < 1e-4, "{miner:?}: {got} vs {want}");
        }
    }

    #[test]
    fn bce_is_log2_at_zero_logit_and_small_when_confident_and_right() {
        let device = Device::flex();
        let z = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 8.0, -8.0], [3, 1]), &device);
        let l0 = scalar(bce_with_logits(z.clone().slice([0..1, 0..1]), &[1.0]));
        assert!((l0 - std::f32::consts::LN_2).abs() < 1e-5);
        let l = scalar(bce_with_logits(z.slice([1..3, 0..1]), &[1.0, 0.0]));
        assert!(l < 1e-3);
    }

    #[test]
    fn prototypical_loss_prefers_queries_near_their_own_prototype() {
        let device = Device::flex();
        let protos = Tensor::<2>::from_data(
            TensorData::new(vec![0.0f32, 0.0, 4.0, 4.0], [2, 2]),
            &device,
        );
        let q = Tensor::<2>::from_data(
            TensorData::new(vec![0.1f32, 0.0, 3.9, 4.2], [2, 2]),
            &device,
        );
        let (good, acc) = prototypical_loss(protos.clone(), q.clone(), &[0, 1]);
        let (bad, acc_bad) = prototypical_loss(protos, q, &[1, 0]);
        assert_eq!((acc, acc_bad), (1.0, 0.0));
        assert!(scalar(good) < 0.01 && scalar(bad) > 10.0);
    }

    #[test]
    fn cross_entropy_is_log_classes_for_equal_logits_and_counts_argmax_hits() {
        let device = Device::flex();
        let flat = Tensor::<2>::from_data(TensorData::new(vec![0.0f32; 8], [2, 4]), &device);
        let (loss, _) = softmax_cross_entropy(flat, &[0, 3]);
        assert!((scalar(loss) - 4f32.ln()).abs() < 1e-5);
        let z = Tensor::<2>::from_data(
            TensorData::new(vec![5.0f32, 0.0, 0.0, 0.0, 5.0, 0.0], [2, 3]),
            &device,
        );
        let (loss, acc) = softmax_cross_entropy(z, &[0, 2]);
        assert_eq!(acc, 0.5);
        // Row 1 is right and confident (≈ 0.013), row 2 wrong by 5 (≈ 5.007).
        assert!((scalar(loss) - (0.0134 + 5.0134) / 2.0).abs() < 1e-3);
    }
}
