//! Central finite differences, to check analytic gradients (in `f64`).

/// The largest relative difference between `analytic` and the central-difference gradient of
/// `f` at `x` (step `eps`), each difference scaled by `max(1, |numeric|, |analytic|)`.
pub fn max_gradient_error(
    mut f: impl FnMut(&[f64]) -> f64,
    x: &[f64],
    analytic: &[f64],
    eps: f64,
) -> f64 {
    assert_eq!(
        x.len(),
        analytic.len(),
        "one analytic derivative per variable"
    );
    let mut probe = x.to_vec();
    let mut worst = 0.0f64;
    for i in 0..x.len() {
        probe[i] = x[i] + eps;
        let up = f(&probe);
        probe[i] = x[i] - eps;
        let down = f(&probe);
        probe[i] = x[i];
        let numeric = (up - down) / (2.0 * eps);
        let scale = 1f64.max(numeric.abs()).max(analytic[i].abs());
        worst = worst.max((numeric - analytic[i]).abs() / scale);
    }
    worst
}
