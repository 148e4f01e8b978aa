//! A small layer framework for training small networks on the [`grad`](crate::grad) ops: a
//! [`Sequential`] stack of [`Layer`]s, each with an explicit forward and backward pass.
//!
//! `forward` keeps what `backward` needs (inputs, pooling winners); `backward` takes the loss
//! gradient with respect to the layer's output, adds the parameter gradients into the layer's
//! gradient buffers and returns the gradient with respect to its input. Optimizers
//! ([`crate::optim`]) read and update parameters through [`Param`]s.

use crate::grad::{self, Array, ConvNd, PoolNd};
use crate::{Float, NnError};
use visage_rng::SplitMix64;

/// One parameter tensor of a layer, flattened, with its accumulated gradient.
#[derive(Debug)]
pub struct Param<'a, T> {
    /// The values.
    pub value: &'a mut [T],
    /// The loss gradient with respect to the values, accumulated by `backward`.
    pub grad: &'a mut [T],
}

/// A network layer with an explicit backward pass.
pub trait Layer<T: Float>: Send {
    /// Computes the output, keeping what the backward pass needs.
    fn forward(&mut self, input: &Array<T>) -> Result<Array<T>, NnError>;
    /// From the gradient with respect to the last forward's output, accumulates parameter
    /// gradients and returns the gradient with respect to its input.
    fn backward(&mut self, grad_out: &Array<T>) -> Result<Array<T>, NnError>;
    /// The layer's parameters (none by default).
    fn params(&mut self) -> Vec<Param<'_, T>> {
        Vec::new()
    }
    /// A short name for summaries.
    fn name(&self) -> String;
}

fn missing(what: &str) -> NnError {
    NnError::Input(format!("{what}: backward called before forward"))
}

/// A convolution layer (1, 2 or 3-D) with bias.
#[derive(Debug, Clone)]
pub struct Conv<T> {
    geometry: ConvNd,
    weights: Vec<T>,
    bias: Vec<T>,
    grad_weights: Vec<T>,
    grad_bias: Vec<T>,
    input: Option<Array<T>>,
}

impl<T: Float> Conv<T> {
    /// A convolution with He-initialised weights (normal, variance `2 / taps`) and zero bias.
    pub fn new(geometry: ConvNd, rng: &mut SplitMix64) -> Self {
        let taps = geometry.taps().max(1);
        let std = (2.0 / taps as f64).sqrt();
        let weights: Vec<T> = (0..geometry.out_channels * taps)
            .map(|_| T::from_f64(rng.normal() * std))
            .collect();
        Self::from_params(geometry, weights, vec![T::ZERO; geometry.out_channels])
    }

    /// A convolution with given weights (`[F, C / groups, k...]`) and bias.
    pub fn from_params(geometry: ConvNd, weights: Vec<T>, bias: Vec<T>) -> Self {
        let (nw, nb) = (weights.len(), bias.len());
        Self {
            geometry,
            weights,
            bias,
            grad_weights: vec![T::ZERO; nw],
            grad_bias: vec![T::ZERO; nb],
            input: None,
        }
    }

    /// The geometry.
    pub fn geometry(&self) -> &ConvNd {
        &self.geometry
    }

    /// The filters, `[F, C / groups, k...]` flattened.
    pub fn weights(&self) -> &[T] {
        &self.weights
    }
}

impl<T: Float> Layer<T> for Conv<T> {
    fn forward(&mut self, input: &Array<T>) -> Result<Array<T>, NnError> {
        let out = grad::conv_forward(&self.geometry, input, &self.weights, Some(&self.bias))?;
        self.input = Some(input.clone());
        Ok(out)
    }

    fn backward(&mut self, grad_out: &Array<T>) -> Result<Array<T>, NnError> {
        let input = self.input.as_ref().ok_or_else(|| missing("conv"))?;
        let g = grad::conv_backward(&self.geometry, input, &self.weights, grad_out)?;
        self.grad_weights
            .iter_mut()
            .zip(&g.weights)
            .for_each(|(a, &b)| *a += b);
        self.grad_bias
            .iter_mut()
            .zip(&g.bias)
            .for_each(|(a, &b)| *a += b);
        Ok(g.input)
    }

    fn params(&mut self) -> Vec<Param<'_, T>> {
        vec![
            Param {
                value: &mut self.weights,
                grad: &mut self.grad_weights,
            },
            Param {
                value: &mut self.bias,
                grad: &mut self.grad_bias,
            },
        ]
    }

    fn name(&self) -> String {
        let k = &self.geometry.kernel[3 - self.geometry.dims..];
        format!(
            "conv{}d {}->{} k{k:?}",
            self.geometry.dims, self.geometry.in_channels, self.geometry.out_channels
        )
    }
}

/// `max(x, 0)`, element-wise.
#[derive(Debug, Clone, Default)]
pub struct Relu<T> {
    input: Option<Array<T>>,
}

impl<T: Float> Relu<T> {
    /// A ReLU layer.
    pub fn new() -> Self {
        Self { input: None }
    }
}

impl<T: Float> Layer<T> for Relu<T> {
    fn forward(&mut self, input: &Array<T>) -> Result<Array<T>, NnError> {
        let mut out = input.clone();
        out.data_mut().iter_mut().for_each(|v| *v = v.max(T::ZERO));
        self.input = Some(input.clone());
        Ok(out)
    }

    fn backward(&mut self, grad_out: &Array<T>) -> Result<Array<T>, NnError> {
        let input = self.input.as_ref().ok_or_else(|| missing("relu"))?;
        let mut g = grad_out.clone();
        g.data_mut()
            .iter_mut()
            .zip(input.data())
            .for_each(|(g, &x)| {
                if x <= T::ZERO {
                    *g = T::ZERO
                }
            });
        Ok(g)
    }

    fn name(&self) -> String {
        "relu".into()
    }
}

/// Max pooling (1, 2 or 3-D).
#[derive(Debug, Clone)]
pub struct MaxPool {
    pool: PoolNd,
    input_dims: Vec<usize>,
    argmax: Vec<usize>,
}

impl MaxPool {
    /// A max-pooling layer.
    pub fn new(pool: PoolNd) -> Self {
        Self {
            pool,
            input_dims: Vec::new(),
            argmax: Vec::new(),
        }
    }
}

impl<T: Float> Layer<T> for MaxPool {
    fn forward(&mut self, input: &Array<T>) -> Result<Array<T>, NnError> {
        let (out, arg) = grad::max_pool(&self.pool, input)?;
        self.input_dims = input.dims().to_vec();
        self.argmax = arg;
        Ok(out)
    }

    fn backward(&mut self, grad_out: &Array<T>) -> Result<Array<T>, NnError> {
        grad::max_pool_backward(&self.input_dims, &self.argmax, grad_out)
    }

    fn name(&self) -> String {
        format!("maxpool{}d", self.pool.dims)
    }
}

/// Average pooling (1, 2 or 3-D).
#[derive(Debug, Clone)]
pub struct AvgPool {
    pool: PoolNd,
    input_dims: Vec<usize>,
}

impl AvgPool {
    /// An average-pooling layer.
    pub fn new(pool: PoolNd) -> Self {
        Self {
            pool,
            input_dims: Vec::new(),
        }
    }
}

impl<T: Float> Layer<T> for AvgPool {
    fn forward(&mut self, input: &Array<T>) -> Result<Array<T>, NnError> {
        self.input_dims = input.dims().to_vec();
        grad::avg_pool(&self.pool, input)
    }

    fn backward(&mut self, grad_out: &Array<T>) -> Result<Array<T>, NnError> {
        grad::avg_pool_backward(&self.pool, &self.input_dims, grad_out)
    }

    fn name(&self) -> String {
        format!("avgpool{}d", self.pool.dims)
    }
}

/// Flattens `[N, ...]` to `[N, features]`.
#[derive(Debug, Clone, Default)]
pub struct Flatten {
    input_dims: Vec<usize>,
}

impl Flatten {
    /// A flattening layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<T: Float> Layer<T> for Flatten {
    fn forward(&mut self, input: &Array<T>) -> Result<Array<T>, NnError> {
        self.input_dims = input.dims().to_vec();
        let n = input.dims().first().copied().unwrap_or(0);
        let rest = input.len().checked_div(n).unwrap_or(0);
        input.clone().reshape(&[n, rest])
    }

    fn backward(&mut self, grad_out: &Array<T>) -> Result<Array<T>, NnError> {
        grad_out.clone().reshape(&self.input_dims)
    }

    fn name(&self) -> String {
        "flatten".into()
    }
}

/// A fully connected layer: `[N, in] -> [N, out]`, `y = x Wᵀ + b` with `W` `[out, in]`.
#[derive(Debug, Clone)]
pub struct Dense<T> {
    inputs: usize,
    outputs: usize,
    weights: Vec<T>,
    bias: Vec<T>,
    grad_weights: Vec<T>,
    grad_bias: Vec<T>,
    input: Option<Array<T>>,
}

impl<T: Float> Dense<T> {
    /// A dense layer with He-initialised weights and zero bias.
    pub fn new(inputs: usize, outputs: usize, rng: &mut SplitMix64) -> Self {
        let std = (2.0 / inputs.max(1) as f64).sqrt();
        let weights = (0..inputs * outputs)
            .map(|_| T::from_f64(rng.normal() * std))
            .collect();
        Self {
            inputs,
            outputs,
            weights,
            bias: vec![T::ZERO; outputs],
            grad_weights: vec![T::ZERO; inputs * outputs],
            grad_bias: vec![T::ZERO; outputs],
            input: None,
        }
    }
}

impl<T: Float> Layer<T> for Dense<T> {
    fn forward(&mut self, input: &Array<T>) -> Result<Array<T>, NnError> {
        let d = input.dims();
        if d.len() != 2 || d[1] != self.inputs {
            return Err(NnError::shape(
                "dense",
                format!("input {d:?}, expected [N, {}]", self.inputs),
            ));
        }
        let n = d[0];
        let mut out = Array::zeros(&[n, self.outputs]);
        for (o, x) in out
            .data_mut()
            .chunks_mut(self.outputs)
            .zip(input.data().chunks(self.inputs))
        {
            for ((v, w), &b) in o
                .iter_mut()
                .zip(self.weights.chunks(self.inputs))
                .zip(&self.bias)
            {
                *v = b + w.iter().zip(x).map(|(&a, &b)| a * b).sum::<T>();
            }
        }
        self.input = Some(input.clone());
        Ok(out)
    }

    fn backward(&mut self, grad_out: &Array<T>) -> Result<Array<T>, NnError> {
        let input = self.input.as_ref().ok_or_else(|| missing("dense"))?;
        if grad_out.dims() != [input.dims()[0], self.outputs] {
            return Err(NnError::shape(
                "dense backward",
                format!("gradient {:?}", grad_out.dims()),
            ));
        }
        let mut dx = Array::zeros(input.dims());
        for ((g, x), d) in grad_out
            .data()
            .chunks(self.outputs)
            .zip(input.data().chunks(self.inputs))
            .zip(dx.data_mut().chunks_mut(self.inputs))
        {
            for (o, &go) in g.iter().enumerate() {
                self.grad_bias[o] += go;
                let w = &self.weights[o * self.inputs..(o + 1) * self.inputs];
                let gw = &mut self.grad_weights[o * self.inputs..(o + 1) * self.inputs];
                for i in 0..self.inputs {
                    gw[i] += go * x[i];
                    d[i] += go * w[i];
                }
            }
        }
        Ok(dx)
    }

    fn params(&mut self) -> Vec<Param<'_, T>> {
        vec![
            Param {
                value: &mut self.weights,
                grad: &mut self.grad_weights,
            },
            Param {
                value: &mut self.bias,
                grad: &mut self.grad_bias,
            },
        ]
    }

    fn name(&self) -> String {
        format!("dense {}->{}", self.inputs, self.outputs)
    }
}

/// Layers run one after the other.
#[derive(Default)]
pub struct Sequential<T> {
    layers: Vec<Box<dyn Layer<T>>>,
}

impl<T: Float> Sequential<T> {
    /// An empty stack.
    pub fn new() -> Self {
        Self { layers: Vec::new() }
    }

    /// Appends a layer.
    pub fn push(mut self, layer: impl Layer<T> + 'static) -> Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// The layers' names, in order.
    pub fn summary(&self) -> Vec<String> {
        self.layers.iter().map(|l| l.name()).collect()
    }

    /// Runs every layer.
    pub fn forward(&mut self, input: &Array<T>) -> Result<Array<T>, NnError> {
        let mut x = input.clone();
        for layer in &mut self.layers {
            x = layer.forward(&x)?;
        }
        Ok(x)
    }

    /// Runs every layer and returns every layer's output, in order (for pictures of
    /// activations).
    pub fn forward_all(&mut self, input: &Array<T>) -> Result<Vec<Array<T>>, NnError> {
        let mut outs: Vec<Array<T>> = Vec::with_capacity(self.layers.len());
        for layer in &mut self.layers {
            let x = layer.forward(outs.last().unwrap_or(input))?;
            outs.push(x);
        }
        Ok(outs)
    }

    /// Back-propagates the loss gradient with respect to the last output through every layer,
    /// accumulating parameter gradients; returns the gradient with respect to the input.
    pub fn backward(&mut self, grad_out: &Array<T>) -> Result<Array<T>, NnError> {
        let mut g = grad_out.clone();
        for layer in self.layers.iter_mut().rev() {
            g = layer.backward(&g)?;
        }
        Ok(g)
    }

    /// Every parameter tensor with its gradient, layer by layer.
    pub fn params(&mut self) -> Vec<Param<'_, T>> {
        self.layers.iter_mut().flat_map(|l| l.params()).collect()
    }

    /// Sets every parameter gradient to zero.
    pub fn zero_grad(&mut self) {
        for p in self.params() {
            p.grad.fill(T::ZERO);
        }
    }

    /// Number of parameters.
    pub fn param_count(&mut self) -> usize {
        self.params().iter().map(|p| p.value.len()).sum()
    }

    /// All parameters concatenated (the flat vector L-BFGS works on).
    pub fn flat_params(&mut self) -> Vec<T> {
        self.params()
            .iter()
            .flat_map(|p| p.value.iter().copied())
            .collect()
    }

    /// All parameter gradients concatenated, in the order of [`Self::flat_params`].
    pub fn flat_grads(&mut self) -> Vec<T> {
        self.params()
            .iter()
            .flat_map(|p| p.grad.iter().copied())
            .collect()
    }

    /// Sets all parameters from a flat vector in the order of [`Self::flat_params`].
    pub fn set_flat_params(&mut self, values: &[T]) -> Result<(), NnError> {
        let mut params = self.params();
        let total: usize = params.iter().map(|p| p.value.len()).sum();
        if total != values.len() {
            return Err(NnError::shape(
                "parameters",
                format!("{} values for {total} parameters", values.len()),
            ));
        }
        let mut at = 0;
        for p in &mut params {
            let n = p.value.len();
            p.value.copy_from_slice(&values[at..at + n]);
            at += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grad::check::max_gradient_error;

    fn net(rng: &mut SplitMix64) -> Sequential<f64> {
        Sequential::new()
            .push(Conv::new(
                ConvNd::new(1, 3, [3, 3]).with_padding([1, 1]),
                rng,
            ))
            .push(Relu::new())
            .push(MaxPool::new(PoolNd::new([2, 2])))
            .push(Conv::new(ConvNd::new(3, 2, [3]).with_padding([1]), rng).reshaped_for_test())
            .push(Flatten::new())
            .push(Dense::new(2 * 3 * 3, 2, rng))
    }

    /// A test helper: turns the 1-D conv into a 2-D 1x3 one (the network above is 2-D).
    trait Reshaped {
        fn reshaped_for_test(self) -> Self;
    }
    impl Reshaped for Conv<f64> {
        fn reshaped_for_test(mut self) -> Self {
            self.geometry = ConvNd::new(3, 2, [1, 3]).with_padding([0, 1]);
            self
        }
    }

    #[test]
    fn whole_network_gradient_matches_finite_differences() {
        let mut rng = SplitMix64::new(1);
        let mut model = net(&mut rng);
        let x = Array::from_vec(&[2, 1, 6, 6], rng.vec(72)).unwrap();
        let labels = [0, 1];
        let loss = |m: &mut Sequential<f64>| {
            let y = m.forward(&x).unwrap();
            grad::softmax_cross_entropy(&y, &labels).unwrap()
        };
        model.zero_grad();
        let (_, g) = loss(&mut model);
        model.backward(&g).unwrap();
        let analytic = model.flat_grads();
        let p0 = model.flat_params();
        let e = max_gradient_error(
            |p| {
                model.set_flat_params(p).unwrap();
                loss(&mut model).0
            },
            &p0,
            &analytic,
            1e-6,
        );
        assert!(e < 1e-6, "{e}");
        assert_eq!(model.summary().len(), 6);
    }
}
