//! Time per iteration of the style-transfer optimisation at a given size: forward, backward
//! through the loss network and the optimiser step, on random-looking inputs.
//!
//! ```sh
//! cargo run --release -p visage-style --example style_bench -- [mobilenet|vgg19] [SIZE] [ITERS] [adam|lbfgs]
//! ```
//!
//! MobileNetV2 reads `$VISAGE_MODELS/mobilenet_v2/mobilenet_v2-b0353104.pth` (default
//! `../shared/models`); VGG19 uses random weights (its timing does not depend on them). Set
//! `RAYON_NUM_THREADS` to choose the threads.

use std::path::PathBuf;

use burn::tensor::Device;
use visage_nn::reuse_freed_buffers;
use visage_style::{
    stylize, timing_image, LossNetwork, Optimizer, Quiet, StyleImage, StyleOptions,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    reuse_freed_buffers();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let network = args.first().map(String::as_str).unwrap_or("mobilenet");
    let size: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(512);
    let iters: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(5);
    let optimizer = match args.get(3).map(String::as_str) {
        Some("lbfgs") => Optimizer::Lbfgs,
        _ => Optimizer::Adam,
    };
    let device = Device::flex().autodiff();
    let net = if network == "vgg19" {
        LossNetwork::vgg19_random(&device)
    } else {
        let models = std::env::var_os("VISAGE_MODELS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("../shared/models"));
        LossNetwork::mobilenet_v2(
            &models.join("mobilenet_v2/mobilenet_v2-b0353104.pth"),
            &device,
        )?
    };
    let image = timing_image(size, 0);
    let options = StyleOptions {
        optimizer,
        ..StyleOptions::for_timing(net.kind(), size, iters)
    };
    let styles = [StyleImage {
        image: image.clone(),
        weight: 1.0,
    }];
    let (_, report) = stylize(&net, &image, &styles, &options, &mut Quiet)?;
    let times: Vec<f64> = report.iterations.iter().map(|r| r.seconds).collect();
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "{network} {size}x{size} {optimizer:?}: {} evaluations, median {:.3} s, min {:.3} s per iteration; peak memory {} MB",
        times.len(),
        sorted[sorted.len() / 2],
        sorted[0],
        report.peak_memory_bytes.unwrap_or(0) >> 20
    );
    Ok(())
}
