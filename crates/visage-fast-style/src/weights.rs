//! Which built-in styles to paint with, and how much of each.

use crate::multistyle::NUM_STYLES;
use crate::StyleError;

/// Non-negative weights of the built-in styles, normalised to sum to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct StyleWeights(Vec<f32>);

impl StyleWeights {
    /// One style, by index (0 to 25).
    pub fn single(index: usize) -> Result<Self, StyleError> {
        Self::from_pairs(&[(index, 1.0)])
    }

    /// A blend from (index, weight) pairs; repeated indices add up. Weights must be finite and
    /// non-negative, and not all zero.
    pub fn from_pairs(pairs: &[(usize, f32)]) -> Result<Self, StyleError> {
        let mut w = vec![0f32; NUM_STYLES];
        for &(index, weight) in pairs {
            if index >= NUM_STYLES {
                return Err(StyleError::Input(format!(
                    "style index must be 0 to {}, got {index}",
                    NUM_STYLES - 1
                )));
            }
            if !weight.is_finite() || weight < 0.0 {
                return Err(StyleError::Input(format!(
                    "style weight must be a non-negative number, got {weight}"
                )));
            }
            w[index] += weight;
        }
        let sum: f32 = w.iter().sum();
        if sum <= 0.0 || !sum.is_finite() {
            return Err(StyleError::Input(
                "style weights are all zero: give at least one style a positive weight".into(),
            ));
        }
        w.iter_mut().for_each(|v| *v /= sum);
        Ok(Self(w))
    }

    /// Parses "7" (one style) or "3:0.5,12:0.5" (a blend, weights relative).
    pub fn parse(spec: &str) -> Result<Self, StyleError> {
        let bad = || {
            StyleError::Input(format!(
                "bad style {spec:?}: use an index 0 to {} such as 7, or a blend such as 3:0.5,12:0.5",
                NUM_STYLES - 1
            ))
        };
        let mut pairs = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (index, weight) = match part.split_once(':') {
                Some((i, w)) => (i.trim(), w.trim().parse::<f32>().map_err(|_| bad())?),
                None => (part, 1.0),
            };
            pairs.push((index.parse::<usize>().map_err(|_| bad())?, weight));
        }
        if pairs.is_empty() {
            return Err(bad());
        }
        Self::from_pairs(&pairs)
    }

    /// The 26 normalised weights.
    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    /// `rows` holds one row of `width` values per style; returns their weighted sum.
    pub(crate) fn mix(&self, rows: &[f32], width: usize) -> Vec<f32> {
        let mut out = vec![0f32; width];
        for (row, &w) in rows.chunks_exact(width).zip(&self.0) {
            if w != 0.0 {
                out.iter_mut().zip(row).for_each(|(o, r)| *o += w * r);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_styles_and_blends() {
        let one = StyleWeights::parse("7").unwrap();
        assert_eq!(one.as_slice()[7], 1.0);
        let blend = StyleWeights::parse("3:1, 12:3").unwrap();
        assert_eq!(blend.as_slice()[3], 0.25);
        assert_eq!(blend.as_slice()[12], 0.75);
        assert_eq!(StyleWeights::parse("5,5").unwrap().as_slice()[5], 1.0);
    }

    #[test]
    fn refuses_bad_styles() {
        for spec in ["", "26", "-1", "x", "3:0", "3:-1,4:2", "3:nan", "1:0,2:0"] {
            assert!(StyleWeights::parse(spec).is_err(), "{spec:?} accepted");
        }
    }

    #[test]
    fn mixes_rows() {
        let w = StyleWeights::parse("0:1,1:1").unwrap();
        let mut rows = vec![0f32; NUM_STYLES * 2];
        rows[..4].copy_from_slice(&[1.0, 2.0, 3.0, 6.0]);
        assert_eq!(w.mix(&rows, 2), [2.0, 4.0]);
    }
}
