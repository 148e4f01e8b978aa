//! `visage demo ekg`: a 1-D CNN learns to find heartbeats from a classical detector's labels.
//!
//! The Pan–Tompkins detector labels the R peaks of the first minutes of the recording. The
//! signal is halved to 180 Hz (QRS complexes keep their shape; training costs half), its
//! baseline removed and its scale normalised. A fully convolutional 1-D CNN with dilated filters
//! (receptive field 0.67 s, enough to tell a QRS from a T wave) learns, per sample, "an R peak
//! is within 22 ms". On the held-out last minute its peaks (local maxima of the probability above
//! 0.5, 200 ms apart) are matched to the detector's within 150 ms, the usual tolerance of beat
//! detection benchmarks.

use std::path::{Path, PathBuf};
use std::time::Instant;

use image::RgbImage;
use visage_nn::grad::{bce_with_logits, Array, ConvNd};
use visage_nn::layers::{Conv, Relu, Sequential};
use visage_nn::optim::Adam;
use visage_rng::SplitMix64;

use crate::{pan_tompkins, plot, DemoError, LayerGeometry, Trained};

/// Sampling rate of the recording, in Hz.
pub const RATE_HZ: f64 = 360.0;
/// Decimation factor before the CNN (360 Hz → 180 Hz).
const DECIMATE: usize = 2;
/// Samples (at 180 Hz) either side of an R peak labelled positive: 4 = 22 ms.
const LABEL_HALF_WIDTH: usize = 4;
/// Length of the held-out windows that [`train`] hands out for inspection, in seconds: long
/// enough for two or three beats, several times the network's 0.67 s receptive field.
pub const INSPECT_WINDOW_S: f64 = 2.0;
/// Match tolerance between detections and labels, in seconds.
pub const MATCH_TOLERANCE_S: f64 = 0.150;

/// What the EKG demo does.
#[derive(Debug, Clone)]
pub struct EkgOptions {
    /// The recording: one value (millivolts) per line, `#` comments allowed.
    pub csv: PathBuf,
    /// Seed for weights and training crops.
    pub seed: u64,
    /// Training steps (mini-batches).
    pub steps: usize,
    /// Training length, in seconds from the start; the rest (up to 60 s) is held out.
    pub train_seconds: f64,
    /// Where to save the plot of the held-out minute (PNG), if anywhere.
    pub plot: Option<PathBuf>,
}

impl EkgOptions {
    /// The demo as specified: 4 minutes of training, the last minute held out.
    pub fn new(csv: PathBuf) -> Self {
        Self {
            csv,
            seed: 1,
            steps: 300,
            train_seconds: 240.0,
            plot: None,
        }
    }
}

/// What the EKG demo found.
#[derive(Debug, Clone, PartialEq)]
pub struct EkgReport {
    /// Pan–Tompkins beats in the training part.
    pub train_beats: usize,
    /// Pan–Tompkins beats in the held-out part (the reference).
    pub reference_beats: usize,
    /// CNN detections in the held-out part.
    pub detected_beats: usize,
    /// Detections matched to a reference beat.
    pub true_positives: usize,
    /// Matched / detected.
    pub precision: f64,
    /// Matched / reference.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Mean heart rate from the CNN's held-out detections, in beats per minute.
    pub heart_rate_bpm: f64,
    /// The same from the Pan–Tompkins beats.
    pub reference_heart_rate_bpm: f64,
    /// Training loss (binary cross-entropy) of the first and the last 20 steps, averaged.
    pub loss_start: f64,
    /// See `loss_start`.
    pub loss_end: f64,
    /// Wall time of training, in seconds.
    pub train_time_s: f64,
    /// The held-out detections, as sample indices at 360 Hz in the whole recording.
    pub detections: Vec<usize>,
}

/// Reads the recording: one number per line, skipping blank and `#` lines.
pub fn read_csv(path: &Path) -> Result<Vec<f64>, DemoError> {
    let text = std::fs::read_to_string(path).map_err(|source| DemoError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let v: f64 = line
            .split(',')
            .next()
            .unwrap_or("")
            .trim()
            .parse()
            .map_err(|_| {
                DemoError::Data(format!(
                    "{}:{}: not a number: {line:?}",
                    path.display(),
                    i + 1
                ))
            })?;
        out.push(v);
    }
    Ok(out)
}

/// The network: dilated 1-D convolutions, 1 → 8 → 16 → 16 → 16 → 1 channels, same length out,
/// with each layer's geometry (built side by side so the two cannot drift apart).
fn network(rng: &mut SplitMix64) -> (Sequential<f32>, Vec<LayerGeometry>) {
    let first = ConvNd::new(1, 8, [9]).with_padding([4]);
    let mut net = Sequential::new()
        .push(Conv::new(first, rng))
        .push(Relu::new());
    let mut layers = vec![LayerGeometry::Conv(first), LayerGeometry::Pointwise];
    let mut ch = 8;
    for dilation in [2, 4, 8] {
        let g = ConvNd::new(ch, 16, [9])
            .with_padding([4 * dilation])
            .with_dilation([dilation]);
        net = net.push(Conv::new(g, rng)).push(Relu::new());
        layers.extend([LayerGeometry::Conv(g), LayerGeometry::Pointwise]);
        ch = 16;
    }
    let last = ConvNd::new(16, 1, [1]);
    layers.push(LayerGeometry::Conv(last));
    (net.push(Conv::new(last, rng)), layers)
}

/// Halves the rate (mean of pairs), removes the baseline (1 s moving mean) and divides by `scale`.
fn prepare(signal: &[f64], scale: Option<f64>) -> (Vec<f32>, f64) {
    let half: Vec<f64> = signal
        .chunks(DECIMATE)
        .map(|c| c.iter().sum::<f64>() / c.len() as f64)
        .collect();
    let n = half.len();
    let w = (RATE_HZ / DECIMATE as f64 / 2.0) as usize;
    let mut prefix = vec![0.0; n + 1];
    for i in 0..n {
        prefix[i + 1] = prefix[i] + half[i];
    }
    let centred: Vec<f64> = (0..n)
        .map(|i| {
            let (a, b) = (i.saturating_sub(w), (i + w + 1).min(n));
            half[i] - (prefix[b] - prefix[a]) / (b - a) as f64
        })
        .collect();
    let scale = scale.unwrap_or_else(|| {
        let var = centred.iter().map(|v| v * v).sum::<f64>() / n.max(1) as f64;
        var.sqrt().max(1e-9)
    });
    (centred.iter().map(|v| (v / scale) as f32).collect(), scale)
}

/// Local maxima of `prob` above 0.5, at least `gap` samples apart (the larger wins).
fn pick_peaks(prob: &[f32], gap: usize) -> Vec<usize> {
    let mut peaks: Vec<usize> = Vec::new();
    for i in 0..prob.len() {
        let left = i == 0 || prob[i] > prob[i - 1];
        let right = i + 1 == prob.len() || prob[i] >= prob[i + 1];
        if prob[i] > 0.5 && left && right {
            match peaks.last() {
                Some(&p) if i - p < gap => {
                    if prob[i] > prob[p] {
                        *peaks.last_mut().expect("non-empty") = i;
                    }
                }
                _ => peaks.push(i),
            }
        }
    }
    peaks
}

/// Greedy one-to-one matching of sorted detections to sorted references within `tol` samples;
/// returns the number matched.
pub fn match_beats(detected: &[usize], reference: &[usize], tol: usize) -> usize {
    let (mut i, mut j, mut hits) = (0, 0, 0);
    while i < detected.len() && j < reference.len() {
        if detected[i].abs_diff(reference[j]) <= tol {
            hits += 1;
            i += 1;
            j += 1;
        } else if detected[i] < reference[j] {
            i += 1;
        } else {
            j += 1;
        }
    }
    hits
}

fn heart_rate(beats: &[usize]) -> f64 {
    match (beats.first(), beats.last()) {
        (Some(&a), Some(&b)) if b > a => {
            60.0 * (beats.len() - 1) as f64 / ((b - a) as f64 / RATE_HZ)
        }
        _ => 0.0,
    }
}

/// Everything training leaves behind that evaluation, plotting and inspection need.
struct Fitted {
    net: Sequential<f32>,
    layers: Vec<LayerGeometry>,
    signal: Vec<f64>,
    split: usize,
    end: usize,
    train_labels: Vec<usize>,
    reference: Vec<usize>,
    losses: Vec<f64>,
    train_time_s: f64,
    /// First sample (360 Hz) of `test_x`: one second of context before the held-out part.
    from: usize,
    context: usize,
    /// The held-out part with its context, at 180 Hz, normalised like the training part.
    test_x: Vec<f32>,
}

/// Labels the recording and trains the network (the part of the demo shared by [`run`] and
/// [`train`]).
fn fit(opts: &EkgOptions) -> Result<Fitted, DemoError> {
    let signal = read_csv(&opts.csv)?;
    let split = (opts.train_seconds * RATE_HZ) as usize;
    if split < (10.0 * RATE_HZ) as usize || signal.len() < split + (10.0 * RATE_HZ) as usize {
        return Err(DemoError::Data(format!(
            "{} samples: too short for {} s of training and 10 s held out",
            signal.len(),
            opts.train_seconds
        )));
    }
    let end = signal.len().min(split + (60.0 * RATE_HZ) as usize);
    let labels = pan_tompkins::detect(&signal[..end], RATE_HZ);
    let train_labels: Vec<usize> = labels.iter().copied().filter(|&b| b < split).collect();
    let reference: Vec<usize> = labels
        .iter()
        .copied()
        .filter(|&b| b >= split && b < end)
        .collect();

    let (train_x, scale) = prepare(&signal[..split], None);
    let mut target = vec![0.0f32; train_x.len()];
    for &b in &train_labels {
        let c = b / DECIMATE;
        for t in c.saturating_sub(LABEL_HALF_WIDTH)..=(c + LABEL_HALF_WIDTH).min(target.len() - 1) {
            target[t] = 1.0;
        }
    }

    let mut rng = SplitMix64::new(opts.seed);
    let (mut net, layers) = network(&mut rng);
    let mut adam = Adam::new(3e-3);
    let (crop, batch) = (720, 16);
    let mut losses = Vec::with_capacity(opts.steps);
    let start = Instant::now();
    for step in 0..opts.steps {
        if step == opts.steps * 2 / 3 {
            adam.learning_rate *= 0.3;
        }
        let mut x = Vec::with_capacity(batch * crop);
        let mut y = Vec::with_capacity(batch * crop);
        for _ in 0..batch {
            let at = rng.below(train_x.len() - crop);
            x.extend_from_slice(&train_x[at..at + crop]);
            y.extend_from_slice(&target[at..at + crop]);
        }
        let x = Array::from_vec(&[batch, 1, crop], x)?;
        let y = Array::from_vec(&[batch, 1, crop], y)?;
        net.zero_grad();
        let logits = net.forward(&x)?;
        // Positives are ~5% of samples: weighting them keeps the network from predicting "no".
        let (loss, grad) = bce_with_logits(&logits, &y, 4.0)?;
        net.backward(&grad)?;
        adam.step(net.params());
        losses.push(loss as f64);
    }
    let train_time_s = start.elapsed().as_secs_f64();

    // Held-out part with one second of context before it, normalised like the training part.
    let context = RATE_HZ as usize;
    let from = split - context;
    let (test_x, _) = prepare(&signal[from..end], Some(scale));
    Ok(Fitted {
        net,
        layers,
        signal,
        split,
        end,
        train_labels,
        reference,
        losses,
        train_time_s,
        from,
        context,
        test_x,
    })
}

/// Trains the demo's network (as [`run`] does) and returns it with the held-out part cut into
/// consecutive windows of [`INSPECT_WINDOW_S`] at 180 Hz (the rate the network sees),
/// normalised like the training part. The one second of context before the held-out part is
/// left out, so every window is data the network never trained on.
pub fn train(opts: &EkgOptions) -> Result<Trained, DemoError> {
    let f = fit(opts)?;
    let half_rate = RATE_HZ / DECIMATE as f64;
    let len = (INSPECT_WINDOW_S * half_rate) as usize;
    let held_out = &f.test_x[f.context / DECIMATE..];
    let (inputs, input_names) = held_out
        .chunks_exact(len)
        .enumerate()
        .map(|(i, w)| {
            let t0 = f.split as f64 / RATE_HZ + i as f64 * INSPECT_WINDOW_S;
            (
                w.to_vec(),
                format!("{t0:.0}-{:.0} s", t0 + INSPECT_WINDOW_S),
            )
        })
        .unzip();
    Ok(Trained {
        net: f.net,
        layers: f.layers,
        input_dims: vec![len],
        inputs,
        input_names,
    })
}

/// Runs the demo: label, train, evaluate on the held-out part, and plot.
pub fn run(opts: &EkgOptions) -> Result<EkgReport, DemoError> {
    let Fitted {
        mut net,
        signal,
        split,
        end,
        train_labels,
        reference,
        losses,
        train_time_s,
        from,
        context,
        test_x,
        ..
    } = fit(opts)?;
    let len = test_x.len();
    let logits = net.forward(&Array::from_vec(&[1, 1, len], test_x.clone())?)?;
    let prob: Vec<f32> = logits
        .data()
        .iter()
        .map(|&z| 1.0 / (1.0 + (-z).exp()))
        .collect();
    let gap = (0.200 * RATE_HZ) as usize / DECIMATE;
    let detections: Vec<usize> = pick_peaks(&prob, gap)
        .into_iter()
        .map(|i| from + i * DECIMATE + DECIMATE / 2)
        .filter(|&b| b >= split && b < end)
        .collect();

    let tol = (MATCH_TOLERANCE_S * RATE_HZ) as usize;
    let hits = match_beats(&detections, &reference, tol);
    let precision = hits as f64 / detections.len().max(1) as f64;
    let recall = hits as f64 / reference.len().max(1) as f64;
    let f1 = if hits == 0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    let avg = |s: &[f64]| s.iter().sum::<f64>() / s.len().max(1) as f64;
    let k = losses.len().min(20);
    let report = EkgReport {
        train_beats: train_labels.len(),
        reference_beats: reference.len(),
        detected_beats: detections.len(),
        true_positives: hits,
        precision,
        recall,
        f1,
        heart_rate_bpm: heart_rate(&detections),
        reference_heart_rate_bpm: heart_rate(&reference),
        loss_start: avg(&losses[..k]),
        loss_end: avg(&losses[losses.len() - k..]),
        train_time_s,
        detections,
    };
    if let Some(path) = &opts.plot {
        save_plot(
            path,
            &signal[split..end],
            split,
            &reference,
            &report.detections,
            &prob[context / DECIMATE..],
        )?;
    }
    Ok(report)
}

/// Plots the held-out signal in rows of 10 s: trace in black, CNN probability in light blue,
/// reference beats as green marks above the trace, CNN detections as red marks below it.
fn save_plot(
    path: &Path,
    signal: &[f64],
    offset: usize,
    reference: &[usize],
    detections: &[usize],
    prob: &[f32],
) -> Result<(), DemoError> {
    let row_len = (10.0 * RATE_HZ) as usize;
    let rows = signal.len().div_ceil(row_len).max(1);
    let (w, row_h) = (1800u32, 160u32);
    let mut img = RgbImage::from_pixel(w, rows as u32 * row_h, image::Rgb([255, 255, 255]));
    let lo = signal.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = signal.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = (hi - lo).max(1e-9);
    let xs = |i: usize| (i % row_len) as f64 / row_len as f64 * (w - 1) as f64;
    let top = |i: usize| (i / row_len) as f64 * row_h as f64;
    let ys = |i: usize, v: f64| top(i) + 20.0 + (1.0 - (v - lo) / span) * (row_h as f64 - 40.0);
    for i in 1..signal.len() {
        if i % row_len != 0 {
            let p = |j: usize| prob.get(j / DECIMATE).copied().unwrap_or(0.0) as f64;
            let yp = |j: usize| top(j) + row_h as f64 - 4.0 - p(j) * (row_h as f64 - 8.0);
            plot::line(
                &mut img,
                (xs(i - 1), yp(i - 1)),
                (xs(i), yp(i)),
                [170, 200, 255],
            );
            plot::line(
                &mut img,
                (xs(i - 1), ys(i - 1, signal[i - 1])),
                (xs(i), ys(i, signal[i])),
                [0, 0, 0],
            );
        }
    }
    for &b in reference {
        let i = b - offset;
        plot::marker(&mut img, xs(i), top(i) + 8.0, 3, [0, 160, 0]);
    }
    for &b in detections {
        let i = b - offset;
        plot::marker(
            &mut img,
            xs(i),
            top(i) + row_h as f64 - 10.0,
            3,
            [220, 0, 0],
        );
    }
    for r in 1..rows {
        plot::line(
            &mut img,
            (0.0, (r as u32 * row_h) as f64),
            ((w - 1) as f64, (r as u32 * row_h) as f64),
            [200, 200, 200],
        );
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
    fn matching_is_one_to_one() {
        assert_eq!(match_beats(&[10, 100, 105, 300], &[12, 103, 250], 5), 2);
        assert_eq!(match_beats(&[], &[1], 5), 0);
    }

    #[test]
    fn one_geometry_per_layer() {
        let (net, layers) = network(&mut SplitMix64::new(1));
        assert_eq!(layers.len(), net.summary().len());
        assert!(matches!(layers[1], LayerGeometry::Pointwise));
    }

    #[test]
    fn peaks_respect_the_gap() {
        let p = [0.1, 0.6, 0.9, 0.7, 0.8, 0.2, 0.1, 0.1, 0.1, 0.7, 0.1];
        assert_eq!(pick_peaks(&p, 4), vec![2, 9]);
    }
}
