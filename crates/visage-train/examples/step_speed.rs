//! Times training steps of the Conv-4 embedding net on burn's flex backend, with the allocator
//! policy of the `visage` binary (`visage_nn::reuse_freed_buffers`); pass `--default-allocator`
//! after the batch size to see the difference.
use std::time::Instant;

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use visage_train::model::{EmbeddingNet, NetConfig};

fn main() {
    if std::env::args().nth(2).as_deref() != Some("--default-allocator") {
        visage_nn::reuse_freed_buffers();
    }
    let device = Device::flex().autodiff();
    let batch: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let cfg = NetConfig::default();
    let mut net = EmbeddingNet::new(&cfg, &device);
    let mut opt = AdamConfig::new().init();
    for step in 0..6 {
        let t = Instant::now();
        let x = Tensor::<4>::random([batch, 1, 28, 28], Distribution::Default, &device);
        let e = net.forward(x);
        let loss = e.powf_scalar(2.0).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = opt.step(1e-3, net, grads);
        println!("step {step}: {:.3} s", t.elapsed().as_secs_f64());
    }
}
