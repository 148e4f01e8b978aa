//! Optimizers: [`Adam`] for stochastic training and [`Lbfgs`] for deterministic problems (such
//! as an image being optimised for style transfer).

mod adam;
mod lbfgs;

pub use adam::Adam;
pub use lbfgs::{Lbfgs, LbfgsReport};

#[cfg(test)]
pub(crate) fn rosenbrock(x: &[f64], g: &mut [f64]) -> f64 {
    let (a, b) = (x[0], x[1]);
    g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
    g[1] = 200.0 * (b - a * a);
    (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
}
