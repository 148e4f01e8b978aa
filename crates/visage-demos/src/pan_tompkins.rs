//! The Pan–Tompkins QRS detector (Pan & Tompkins, IEEE TBME 1985), offline and zero-phase.
//!
//! Band-pass 5–15 Hz (where QRS energy lies, away from baseline wander, T waves and mains hum),
//! derivative (QRS slopes are steep), squaring (all positive, large slopes emphasised), moving
//! window integration over 150 ms (one lump per QRS), then adaptive signal/noise thresholds with
//! a 200 ms refractory period, T-wave rejection and search-back for missed beats. Filters run
//! forwards and backwards, so nothing is delayed and R peaks need no delay correction.

/// A second-order IIR section (`b0 b1 b2 / 1 a1 a2`).
#[derive(Debug, Clone, Copy)]
struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
}

impl Biquad {
    /// Butterworth (Q = 1/√2) low- or high-pass at `cutoff` Hz, by the bilinear transform.
    fn butterworth(cutoff: f64, rate: f64, high: bool) -> Self {
        let w = 2.0 * std::f64::consts::PI * cutoff / rate;
        let (sin, cos) = w.sin_cos();
        let alpha = sin / std::f64::consts::SQRT_2;
        let a0 = 1.0 + alpha;
        let b = if high {
            [(1.0 + cos) / 2.0, -(1.0 + cos), (1.0 + cos) / 2.0]
        } else {
            [(1.0 - cos) / 2.0, 1.0 - cos, (1.0 - cos) / 2.0]
        };
        Self {
            b: [b[0] / a0, b[1] / a0, b[2] / a0],
            a: [-2.0 * cos / a0, (1.0 - alpha) / a0],
        }
    }

    fn run(&self, x: &[f64]) -> Vec<f64> {
        let (mut x1, mut x2, mut y1, mut y2) = (0.0, 0.0, 0.0, 0.0);
        let mut out = Vec::with_capacity(x.len());
        for &v in x {
            let y =
                self.b[0] * v + self.b[1] * x1 + self.b[2] * x2 - self.a[0] * y1 - self.a[1] * y2;
            (x2, x1, y2, y1) = (x1, v, y1, y);
            out.push(y);
        }
        out
    }

    /// Forward then backward: zero phase, squared magnitude response. The signal is extended
    /// at both ends by its odd reflection, so the filters' start-up transients fall outside it.
    fn filtfilt(&self, x: &[f64]) -> Vec<f64> {
        let n = x.len();
        if n < 2 {
            return x.to_vec();
        }
        let pad = (n - 1).min(1024);
        let mut ext = Vec::with_capacity(n + 2 * pad);
        ext.extend((1..=pad).rev().map(|i| 2.0 * x[0] - x[i]));
        ext.extend_from_slice(x);
        ext.extend((1..=pad).map(|i| 2.0 * x[n - 1] - x[n - 1 - i]));
        let mut y = self.run(&ext);
        y.reverse();
        let mut y = self.run(&y);
        y.reverse();
        y[pad..pad + n].to_vec()
    }
}

/// The 5–15 Hz band-pass the detector starts with (zero phase), at `rate` Hz.
pub fn bandpass(signal: &[f64], rate: f64) -> Vec<f64> {
    let hp = Biquad::butterworth(5.0, rate, true).filtfilt(signal);
    Biquad::butterworth(15.0, rate, false).filtfilt(&hp)
}

/// The moving-window-integrated energy the thresholds work on (for plots and tests).
pub fn integrated_energy(signal: &[f64], rate: f64) -> Vec<f64> {
    let bp = bandpass(signal, rate);
    let n = bp.len();
    // Five-point derivative, centred.
    let at = |i: isize| bp[i.clamp(0, n as isize - 1) as usize];
    let sq: Vec<f64> = (0..n as isize)
        .map(|i| {
            let d = (2.0 * at(i + 2) + at(i + 1) - at(i - 1) - 2.0 * at(i - 2)) / 8.0;
            d * d
        })
        .collect();
    let half = ((0.150 * rate) as usize) / 2;
    let mut prefix = vec![0.0; n + 1];
    for i in 0..n {
        prefix[i + 1] = prefix[i] + sq[i];
    }
    (0..n)
        .map(|i| {
            let (a, b) = (i.saturating_sub(half), (i + half + 1).min(n));
            (prefix[b] - prefix[a]) / (b - a) as f64
        })
        .collect()
}

/// Sample indices of the R peaks found in `signal` (millivolts) sampled at `rate` Hz.
pub fn detect(signal: &[f64], rate: f64) -> Vec<usize> {
    let n = signal.len();
    if n < (2.0 * rate) as usize {
        return Vec::new();
    }
    let bp = bandpass(signal, rate);
    let mwi = integrated_energy(signal, rate);
    let refractory = (0.200 * rate) as usize;
    // Candidate peaks: local maxima of the integrated energy over ±refractory.
    let mut candidates = Vec::new();
    for i in 1..n - 1 {
        if mwi[i] > mwi[i - 1] && mwi[i] >= mwi[i + 1] {
            let (a, b) = (i.saturating_sub(refractory), (i + refractory).min(n - 1));
            if mwi[a..=b].iter().all(|&v| v <= mwi[i]) {
                candidates.push(i);
            }
        }
    }
    // Learning phase: thresholds from the first two seconds.
    let learn = (2.0 * rate) as usize;
    let peak = mwi[..learn].iter().cloned().fold(0.0, f64::max);
    let mean = mwi[..learn].iter().sum::<f64>() / learn as f64;
    let (mut spki, mut npki) = (peak / 3.0, mean / 2.0);
    let slope_at = |i: usize| {
        let w = (0.075 * rate) as usize;
        let (a, b) = (i.saturating_sub(w), (i + w).min(n - 1));
        (a..b)
            .map(|j| (bp[j + 1] - bp[j]).abs())
            .fold(0.0, f64::max)
    };
    let mut beats: Vec<usize> = Vec::new();
    let mut rr: Vec<usize> = Vec::new();
    let mut last_slope = 0.0;
    let mut k = 0;
    while k < candidates.len() {
        let i = candidates[k];
        let threshold = npki + 0.25 * (spki - npki);
        // Search-back: no beat for 1.66 mean RR intervals; take the largest candidate in the
        // gap above half the threshold.
        if let (Some(&last), true) = (beats.last(), rr.len() >= 2) {
            let mean_rr = rr.iter().rev().take(8).sum::<usize>() / rr.len().min(8);
            let limit = last + (1.66 * mean_rr as f64) as usize;
            if i > limit {
                let missed = candidates[..k]
                    .iter()
                    .copied()
                    .filter(|&c| c > last + refractory && mwi[c] > 0.5 * threshold)
                    .max_by(|&a, &b| mwi[a].total_cmp(&mwi[b]));
                if let Some(m) = missed {
                    spki = 0.25 * mwi[m] + 0.75 * spki;
                    rr.push(m - last);
                    beats.push(m);
                    last_slope = slope_at(m);
                    continue; // re-examine candidate k against the new last beat
                }
            }
        }
        if mwi[i] > threshold {
            let since = beats.last().map(|&b| i - b);
            if since.is_some_and(|s| s < refractory) {
                k += 1;
                continue;
            }
            let slope = slope_at(i);
            // T-wave check: soon after a beat and with less than half its slope.
            if since.is_some_and(|s| (s as f64) < 0.36 * rate) && slope < 0.5 * last_slope {
                npki = 0.125 * mwi[i] + 0.875 * npki;
                k += 1;
                continue;
            }
            spki = 0.125 * mwi[i] + 0.875 * spki;
            if let Some(s) = since {
                rr.push(s);
            }
            beats.push(i);
            last_slope = slope;
        } else {
            npki = 0.125 * mwi[i] + 0.875 * npki;
        }
        k += 1;
    }
    // The R peak: the largest deflection of the band-passed signal near the energy peak (R
    // waves of ectopic beats in record 208 can point down, hence the absolute value).
    let w = (0.100 * rate) as usize;
    let mut peaks: Vec<usize> = beats
        .into_iter()
        .map(|b| {
            let (a, c) = (b.saturating_sub(w), (b + w).min(n - 1));
            (a..=c)
                .max_by(|&x, &y| bp[x].abs().total_cmp(&bp[y].abs()))
                .unwrap_or(b)
        })
        .collect();
    peaks.dedup();
    peaks
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic EKG: narrow Gaussian R waves at known places, broad T waves, baseline wander.
    #[test]
    fn finds_synthetic_beats() {
        let rate = 360.0;
        let n = 20 * 360;
        let beats: Vec<usize> = (0..)
            .map(|k| 200 + k * 290 + (k % 3) * 20)
            .take_while(|&b| b < n - 100)
            .collect();
        let mut x: Vec<f64> = (0..n)
            .map(|i| 0.3 * (i as f64 / rate * 0.3 * std::f64::consts::TAU).sin())
            .collect();
        for &b in &beats {
            for (i, v) in x.iter_mut().enumerate() {
                let t = (i as f64 - b as f64) / rate;
                *v +=
                    1.2 * (-(t / 0.012).powi(2)).exp() + 0.3 * (-((t - 0.25) / 0.06).powi(2)).exp();
            }
        }
        let found = detect(&x, rate);
        assert_eq!(found.len(), beats.len(), "{found:?}");
        for (f, b) in found.iter().zip(&beats) {
            assert!(f.abs_diff(*b) <= 4, "{f} vs {b}");
        }
    }
}
