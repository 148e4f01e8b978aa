//! `visage demo volume`: a 3-D CNN tells apart synthetic CT-like volumes.
//!
//! Each volume is a noisy block of "tissue" (a smooth intensity ramp plus Gaussian noise) holding
//! one soft-edged ellipsoid "lesion" at a jittered position: class 0 is roughly round, class 1 is
//! elongated along a random axis (a vessel-like or spiculated shape against a nodule). The two
//! classes have about the same volume, so voxel counts alone do not separate them: the network
//! has to see the shape in three dimensions.

use std::path::{Path, PathBuf};
use std::time::Instant;

use image::RgbImage;
use visage_nn::grad::{softmax_cross_entropy, Array, ConvNd, PoolNd};
use visage_nn::layers::{Conv, Dense, Flatten, MaxPool, Relu, Sequential};
use visage_nn::optim::Adam;
use visage_rng::SplitMix64;

use crate::{plot, DemoError, LayerGeometry, Trained};

/// Edge length of every volume, in voxels.
pub const SIZE: usize = 24;
/// Class names, by label.
pub const CLASSES: [&str; 2] = ["round", "elongated"];

/// What the volume demo does.
#[derive(Debug, Clone)]
pub struct VolumeOptions {
    /// Seed for the data, the weights and the training order.
    pub seed: u64,
    /// Training volumes (half of each class).
    pub train: usize,
    /// Held-out volumes.
    pub test: usize,
    /// Passes over the training volumes.
    pub epochs: usize,
    /// Noise standard deviation, in lesion-contrast units.
    pub noise: f64,
    /// Where to save slices and activations (PNG), if anywhere.
    pub picture: Option<PathBuf>,
}

impl Default for VolumeOptions {
    fn default() -> Self {
        Self {
            seed: 1,
            train: 512,
            test: 200,
            epochs: 16,
            noise: 0.3,
            picture: None,
        }
    }
}

/// What the volume demo found.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeReport {
    /// Held-out accuracy, in [0, 1].
    pub accuracy: f64,
    /// Held-out volumes.
    pub test: usize,
    /// Confusion counts `[true class][predicted class]`.
    pub confusion: [[usize; 2]; 2],
    /// Mean training loss over the first and last epochs.
    pub loss_first_epoch: f64,
    /// See `loss_first_epoch`.
    pub loss_last_epoch: f64,
    /// Parameters in the network.
    pub parameters: usize,
    /// Wall time of training, in seconds.
    pub train_time_s: f64,
}

/// One synthetic volume (`SIZE³` voxels, z-major) of class `label`.
pub fn synthesize(rng: &mut SplitMix64, label: usize, noise: f64) -> Vec<f32> {
    let c = SIZE as f64 / 2.0;
    let centre = [
        c + rng.range(-3.0, 3.0),
        c + rng.range(-3.0, 3.0),
        c + rng.range(-3.0, 3.0),
    ];
    let radii = if label == 0 {
        let r = rng.range(3.5, 5.0);
        [
            r * rng.range(0.9, 1.1),
            r * rng.range(0.9, 1.1),
            r * rng.range(0.9, 1.1),
        ]
    } else {
        // Same volume as a sphere of radius ~4: long axis 7.5–9.5, short ones ~2.7.
        let long = rng.range(7.5, 9.5);
        let short = (64.0 / long).sqrt() * rng.range(0.9, 1.1);
        let mut r = [short, short * rng.range(0.9, 1.1), short];
        r[rng.below(3)] = long;
        r
    };
    let contrast = rng.range(0.8, 1.2);
    let ramp = [
        rng.range(-0.02, 0.02),
        rng.range(-0.02, 0.02),
        rng.range(-0.02, 0.02),
    ];
    let mut v = Vec::with_capacity(SIZE * SIZE * SIZE);
    for z in 0..SIZE {
        for y in 0..SIZE {
            for x in 0..SIZE {
                let p = [z as f64, y as f64, x as f64];
                let d: f64 = (0..3)
                    .map(|a| ((p[a] - centre[a]) / radii[a]).powi(2))
                    .sum::<f64>()
                    .sqrt();
                // Soft edge (partial-volume effect), about one voxel wide.
                let lesion = contrast / (1.0 + ((d - 1.0) * 6.0).exp());
                let tissue = 0.3 + (0..3).map(|a| ramp[a] * (p[a] - c)).sum::<f64>();
                v.push((tissue + lesion + noise * rng.normal()) as f32);
            }
        }
    }
    v
}

fn dataset(rng: &mut SplitMix64, n: usize, noise: f64) -> (Vec<Vec<f32>>, Vec<usize>) {
    let labels: Vec<usize> = (0..n).map(|i| i % 2).collect();
    let vols = labels.iter().map(|&l| synthesize(rng, l, noise)).collect();
    (vols, labels)
}

/// The network: three 3x3x3 convolutions with ReLU, the first two followed by 2x2x2 max pooling,
/// then a global max over positions (a lesion may lie anywhere) and a dense layer; with each
/// layer's geometry, built side by side so the two cannot drift apart.
fn network(rng: &mut SplitMix64) -> (Sequential<f32>, Vec<LayerGeometry>) {
    let s = SIZE / 4;
    let conv1 = ConvNd::new(1, C1, [3, 3, 3]).with_padding([1, 1, 1]);
    let conv2 = ConvNd::new(C1, C2, [3, 3, 3]).with_padding([1, 1, 1]);
    let conv3 = ConvNd::new(C2, C2, [3, 3, 3]).with_padding([1, 1, 1]);
    let (pool, global) = (PoolNd::new([2, 2, 2]), PoolNd::new([s, s, s]));
    let net = Sequential::new()
        .push(Conv::new(conv1, rng))
        .push(Relu::new())
        .push(MaxPool::new(pool))
        .push(Conv::new(conv2, rng))
        .push(Relu::new())
        .push(MaxPool::new(pool))
        .push(Conv::new(conv3, rng))
        .push(Relu::new())
        .push(MaxPool::new(global))
        .push(Flatten::new())
        .push(Dense::new(C2, 2, rng));
    use LayerGeometry::{Conv as C, Global, Pointwise as P, Pool};
    let layers = vec![
        C(conv1),
        P,
        Pool(pool),
        C(conv2),
        P,
        Pool(pool),
        C(conv3),
        P,
        Pool(global),
        Global,
        Global,
    ];
    (net, layers)
}

/// Feature maps of the first and second convolutions.
const C1: usize = 8;
const C2: usize = 16;

/// The volume seen with its axes permuted (`perm`) and flipped (`flip`, bit per axis): the
/// classes do not change under these, so training on them multiplies the data by 48.
fn reoriented(v: &[f32], perm: [usize; 3], flip: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(v.len());
    let mut p = [0usize; 3];
    for a in 0..SIZE {
        for b in 0..SIZE {
            for c in 0..SIZE {
                for (axis, &i) in [a, b, c].iter().enumerate() {
                    p[perm[axis]] = if flip >> axis & 1 == 1 {
                        SIZE - 1 - i
                    } else {
                        i
                    };
                }
                out.push(v[(p[0] * SIZE + p[1]) * SIZE + p[2]]);
            }
        }
    }
    out
}

const PERMUTATIONS: [[usize; 3]; 6] = [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
];

/// Centred on the tissue level and scaled to about unit spread, as CT windows are.
fn normalised(v: &[f32]) -> impl Iterator<Item = f32> + '_ {
    v.iter().map(|&v| (v - 0.3) / 0.4)
}

fn batch(
    vols: &[Vec<f32>],
    idx: &[usize],
    augment: Option<&mut SplitMix64>,
) -> Result<Array<f32>, DemoError> {
    let mut data = Vec::with_capacity(idx.len() * SIZE * SIZE * SIZE);
    let mut augment = augment;
    for &i in idx {
        let v = match augment.as_deref_mut() {
            Some(rng) => reoriented(&vols[i], PERMUTATIONS[rng.below(6)], rng.below(8)),
            None => vols[i].clone(),
        };
        data.extend(normalised(&v));
    }
    Ok(Array::from_vec(&[idx.len(), 1, SIZE, SIZE, SIZE], data)?)
}

/// Everything training leaves behind that evaluation, drawing and inspection need.
struct Fitted {
    net: Sequential<f32>,
    layers: Vec<LayerGeometry>,
    parameters: usize,
    train_time_s: f64,
    epoch_loss: Vec<f64>,
    test_v: Vec<Vec<f32>>,
    test_l: Vec<usize>,
}

/// Synthesises the volumes and trains the network (the part shared by [`run`] and [`train`]).
fn fit(opts: &VolumeOptions) -> Result<Fitted, DemoError> {
    if opts.train < 2 || opts.test < 2 {
        return Err(DemoError::Data(
            "need at least 2 training and 2 test volumes".into(),
        ));
    }
    let mut rng = SplitMix64::new(opts.seed);
    let (train_v, train_l) = dataset(&mut rng, opts.train, opts.noise);
    let (test_v, test_l) = dataset(&mut rng, opts.test, opts.noise);
    let (mut net, layers) = network(&mut rng);
    let parameters = net.param_count();
    let mut adam = Adam::new(1e-3);
    let bs = 16;
    let start = Instant::now();
    let mut epoch_loss = Vec::new();
    let mut order: Vec<usize> = (0..opts.train).collect();
    for epoch in 0..opts.epochs {
        if epoch == opts.epochs * 2 / 3 {
            adam.learning_rate *= 0.3;
        }
        // Fisher–Yates with the demo's generator: a new order each epoch, same for a seed.
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let mut total = 0.0;
        let mut count = 0;
        for idx in order.chunks(bs) {
            let x = batch(&train_v, idx, Some(&mut rng))?;
            let labels: Vec<usize> = idx.iter().map(|&i| train_l[i]).collect();
            net.zero_grad();
            let y = net.forward(&x)?;
            let (loss, g) = softmax_cross_entropy(&y, &labels)?;
            net.backward(&g)?;
            adam.step(net.params());
            total += loss as f64 * idx.len() as f64;
            count += idx.len();
        }
        epoch_loss.push(total / count as f64);
    }
    let train_time_s = start.elapsed().as_secs_f64();

    Ok(Fitted {
        net,
        layers,
        parameters,
        train_time_s,
        epoch_loss,
        test_v,
        test_l,
    })
}

/// Trains the demo's network (as [`run`] does) and returns it with the held-out volumes,
/// normalised as the network sees them (centred on the tissue level, unit spread).
pub fn train(opts: &VolumeOptions) -> Result<Trained, DemoError> {
    let f = fit(opts)?;
    let input_names = f
        .test_l
        .iter()
        .enumerate()
        .map(|(i, &l)| format!("test {i} ({})", CLASSES[l]))
        .collect();
    let inputs = f.test_v.iter().map(|v| normalised(v).collect()).collect();
    Ok(Trained {
        net: f.net,
        layers: f.layers,
        input_dims: vec![SIZE; 3],
        inputs,
        input_names,
    })
}

/// Runs the demo: synthesise, train, evaluate on held-out volumes, and draw.
pub fn run(opts: &VolumeOptions) -> Result<VolumeReport, DemoError> {
    let Fitted {
        mut net,
        parameters,
        train_time_s,
        epoch_loss,
        test_v,
        test_l,
        ..
    } = fit(opts)?;
    let mut confusion = [[0usize; 2]; 2];
    let all: Vec<usize> = (0..opts.test).collect();
    for idx in all.chunks(32) {
        let y = net.forward(&batch(&test_v, idx, None)?)?;
        for (row, &i) in y.data().chunks(2).zip(idx) {
            let pred = usize::from(row[1] > row[0]);
            confusion[test_l[i]][pred] += 1;
        }
    }
    let correct = confusion[0][0] + confusion[1][1];
    if let Some(path) = &opts.picture {
        save_picture(path, &mut net, &test_v[..4.min(opts.test)])?;
    }
    Ok(VolumeReport {
        accuracy: correct as f64 / opts.test as f64,
        test: opts.test,
        confusion,
        loss_first_epoch: epoch_loss.first().copied().unwrap_or(0.0),
        loss_last_epoch: epoch_loss.last().copied().unwrap_or(0.0),
        parameters,
        train_time_s,
    })
}

/// One row per volume: its middle slice along each axis (z, y, x), then the middle z slice of
/// every first-layer feature map and of the first eight second-layer ones (after ReLU).
fn save_picture(
    path: &Path,
    net: &mut Sequential<f32>,
    vols: &[Vec<f32>],
) -> Result<(), DemoError> {
    let scale = 4u32;
    let tile = SIZE as u32 * scale + 6;
    let (c1, c2) = (C1 as u32, 8u32);
    let w = tile * (3 + c1 + c2);
    let mut img = RgbImage::from_pixel(w, tile * vols.len() as u32, image::Rgb([40, 40, 60]));
    let m = SIZE / 2;
    for (r, v) in vols.iter().enumerate() {
        let top = r as u32 * tile + 3;
        let at = |z: usize, y: usize, x: usize| v[(z * SIZE + y) * SIZE + x];
        let slices: [Vec<f32>; 3] = [
            (0..SIZE * SIZE)
                .map(|i| at(m, i / SIZE, i % SIZE))
                .collect(),
            (0..SIZE * SIZE)
                .map(|i| at(i / SIZE, m, i % SIZE))
                .collect(),
            (0..SIZE * SIZE)
                .map(|i| at(i / SIZE, i % SIZE, m))
                .collect(),
        ];
        for (k, s) in slices.iter().enumerate() {
            plot::heatmap(&mut img, s, SIZE, SIZE, k as u32 * tile + 3, top, scale);
        }
        let outs = net.forward_all(&batch(std::slice::from_ref(v), &[0], None)?)?;
        for (layer, (first, count, size)) in
            [(1usize, (3u32, c1, SIZE)), (4, (3 + c1, c2, SIZE / 2))]
        {
            let a = outs[layer].data();
            let plane = size * size;
            for ch in 0..count as usize {
                let vol = &a[ch * size * plane..(ch + 1) * size * plane];
                let s = &vol[size / 2 * plane..(size / 2 + 1) * plane];
                let sc = scale * (SIZE / size) as u32;
                plot::heatmap(
                    &mut img,
                    s,
                    size,
                    size,
                    (first + ch as u32) * tile + 3,
                    top,
                    sc,
                );
            }
        }
    }
    img.save(path).map_err(|source| DemoError::Image {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthesis_is_deterministic_and_classes_have_similar_volume() {
        let a = synthesize(&mut SplitMix64::new(5), 1, 0.0);
        let b = synthesize(&mut SplitMix64::new(5), 1, 0.0);
        assert_eq!(a, b);
        let mass = |label: usize| -> f64 {
            let mut rng = SplitMix64::new(9);
            (0..20)
                .map(|_| {
                    synthesize(&mut rng, label, 0.0)
                        .iter()
                        .map(|&v| (v as f64 - 0.3).max(0.0))
                        .sum::<f64>()
                })
                .sum::<f64>()
                / 20.0
        };
        let (m0, m1) = (mass(0), mass(1));
        assert!((m0 / m1 - 1.0).abs() < 0.35, "{m0} vs {m1}");
    }

    /// The inspection hand-off on a tiny configuration: one geometry per layer (the receptive
    /// field arithmetic depends on it), and the held-out volumes as the network sees them.
    #[test]
    fn train_hands_out_the_network_and_held_out_volumes() {
        let opts = VolumeOptions {
            train: 4,
            test: 3,
            epochs: 1,
            ..VolumeOptions::default()
        };
        let t = train(&opts).expect("train");
        assert_eq!(t.layers.len(), t.net.summary().len());
        assert_eq!(t.input_dims, vec![SIZE; 3]);
        assert_eq!(t.inputs.len(), 3);
        assert!(t.inputs.iter().all(|v| v.len() == SIZE * SIZE * SIZE));
        assert_eq!(t.input_names[1], "test 1 (elongated)");
        let mut net = t.net;
        let x = Array::from_vec(&[1, 1, SIZE, SIZE, SIZE], t.inputs[0].clone()).expect("array");
        assert_eq!(net.forward(&x).expect("forward").dims(), &[1, 2]);
    }
}
