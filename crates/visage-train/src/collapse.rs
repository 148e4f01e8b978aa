//! Detecting a collapsed embedding: when every image maps to (nearly) the same point, every
//! triplet costs exactly the margin and the distances between embeddings vanish. Training then
//! has nothing left to learn, so the run says so instead of reporting a loss that merely looks
//! stable.

use serde::{Deserialize, Serialize};

/// What the guard saw when it declared a collapse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collapse {
    /// Training step at which it was detected.
    pub step: usize,
    /// Mean loss over the window.
    pub loss: f32,
    /// Mean spread over the window: mean squared distance between embeddings of a batch.
    pub spread: f32,
    /// Which symptom fired, in words.
    pub reason: String,
}

/// Watches (loss, spread) over a sliding window of steps.
#[derive(Debug, Clone)]
pub struct CollapseGuard {
    margin: f32,
    window: usize,
    history: Vec<(f32, f32)>,
}

/// Relative distance to the margin below which the loss counts as stuck at it.
const STUCK_TOLERANCE: f32 = 0.02;
/// Spread (mean squared distance), as a fraction of the margin, below which it has vanished.
const VANISHED_SPREAD: f32 = 0.01;

impl CollapseGuard {
    /// A guard for a triplet loss with `margin`, judging the mean of the last `window` steps.
    pub fn new(margin: f32, window: usize) -> Self {
        Self {
            margin,
            window: window.max(1),
            history: Vec::new(),
        }
    }

    /// Records one step; returns the collapse once the whole window shows it.
    pub fn observe(&mut self, step: usize, loss: f32, spread: f32) -> Option<Collapse> {
        self.history.push((loss, spread));
        if self.history.len() < self.window {
            return None;
        }
        let recent = &self.history[self.history.len() - self.window..];
        let n = recent.len() as f32;
        let loss = recent.iter().map(|r| r.0).sum::<f32>() / n;
        let spread = recent.iter().map(|r| r.1).sum::<f32>() / n;
        let stuck = recent
            .iter()
            .all(|r| (r.0 - self.margin).abs() <= STUCK_TOLERANCE * self.margin);
        let vanished = spread <= VANISHED_SPREAD * self.margin;
        let reason = match (stuck, vanished) {
            (true, true) => "loss stuck at the margin and embeddings spread vanished",
            (true, false) => "loss stuck at the margin",
            (false, true) => "embeddings spread vanished",
            (false, false) => return None,
        };
        Some(Collapse {
            step,
            loss,
            spread,
            reason: format!(
                "{reason} (window of {} steps: loss {loss:.4}, margin {}, spread {spread:.2e})",
                self.window, self.margin
            ),
        })
    }
}

/// Mean squared distance between all pairs of rows (`n x dim`), the batch's spread.
pub fn spread(rows: &[f32], dim: usize) -> f32 {
    let n = rows.len() / dim.max(1);
    if n < 2 {
        return 0.0;
    }
    let d = crate::mining::squared_distances(rows, dim);
    d.iter().sum::<f32>() / (n * (n - 1)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_embedding_is_reported_and_a_spread_one_is_not() {
        let mut guard = CollapseGuard::new(0.2, 5);
        let collapsed = vec![0.3f32; 8 * 4];
        let mut seen = None;
        for step in 0..10 {
            seen = seen.or(guard.observe(step, 0.2, spread(&collapsed, 4)));
        }
        let c = seen.expect("collapse reported");
        assert_eq!(c.step, 4);
        assert!(
            c.reason.contains("stuck") && c.reason.contains("vanished"),
            "{}",
            c.reason
        );

        let mut guard = CollapseGuard::new(0.2, 5);
        let healthy: Vec<f32> = (0..32).map(|i| (i % 7) as f32 * 0.3).collect();
        assert!(spread(&healthy, 4) > 0.1);
        assert!((0..10).all(|s| guard.observe(s, 0.1, spread(&healthy, 4)).is_none()));
    }
}
