//! Times our convolution kernels on the shapes of `bench/conv_vs_onnxruntime.sh`: one line of
//! JSON per measurement (best of several runs, milliseconds and GFLOP/s).
//!
//! ```text
//! cargo run --release -p visage-nn --example conv_bench -- [--threads N] [--reps N] [--model dlib_face_recognition_resnet_model_v1.dat]
//! ```
//!
//! * `conv2d_fwd`: 3x3 convolution, stride 1, padding 1, batch 1, C -> C channels, with bias;
//! * `conv2d_fwd_dgrad`: that forward plus the gradient with respect to its input;
//! * `conv2d_fwd_bwd`: the training path, `grad::conv_forward` + `grad::conv_backward` on `f32`
//!   arrays (gradients for input, weights and bias; 3x the forward's FLOPs);
//! * `face_resnet_b16`: the dlib face ResNet on 16 chips (needs `--model`; `--profile` also
//!   prints the mean time of each step to stderr; `--resnet-only` skips the single layers).

use std::time::Instant;

use visage_nn::grad::conv::{fast_conv2d, fast_conv2d_input_grad};
use visage_nn::grad::{conv_backward, conv_forward, Array, ConvNd};
use visage_nn::networks::StepGeometry;
use visage_nn::ops::{Activation, ConvScratch};
use visage_nn::{FaceResnet, Layout, Shape, Tensor};

fn best_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

/// CPU time this process has used (all threads), in milliseconds, where Linux tells it: unlike
/// wall time it does not grow when other processes take the cores, so with `--threads 1` it
/// compares two kernels fairly on a busy machine.
fn cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    // Clock ticks; 100 per second on every Linux configuration in use.
    Some((utime + stime) * 10.0)
}

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

/// Multiply-adds x 2 of every convolution in the face ResNet for one 150x150 chip, following
/// the spatial size through tags and skips.
fn resnet_flops(net: &FaceResnet) -> f64 {
    let (mut h, mut w) = net.input_size();
    let mut c = 3usize;
    let mut tags = std::collections::HashMap::new();
    let mut flops = 0.0;
    for step in net.steps() {
        match step.geometry {
            StepGeometry::Window {
                kernel,
                stride,
                padding,
                channels,
            } => {
                h = (h + 2 * padding.0 - kernel.0) / stride.0 + 1;
                w = (w + 2 * padding.1 - kernel.1) / stride.1 + 1;
                if channels > 0 {
                    flops += 2.0 * (channels * h * w * c * kernel.0 * kernel.1) as f64;
                    c = channels;
                }
            }
            StepGeometry::Tag(id) => {
                tags.insert(id, (h, w, c));
            }
            StepGeometry::Skip(id) => {
                if let Some(&(a, b, d)) = tags.get(&id) {
                    (h, w, c) = (a, b, d);
                }
            }
            _ => {}
        }
    }
    flops
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let threads: usize = flag("--threads").map_or(Ok(2), |v| v.parse())?;
    let reps: usize = flag("--reps").map_or(Ok(5), |v| v.parse())?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    pool.install(|| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let mut scratch = ConvScratch::default();
        let layers: &[(usize, usize)] = if args.iter().any(|a| a == "--resnet-only") {
            &[]
        } else {
            &[(64, 256), (128, 128), (512, 32)]
        };
        for &(c, hw) in layers {
            let g = ConvNd::new(c, c, [3, 3]).with_padding([1, 1]);
            let weights = random(c * g.taps(), 1);
            let fwd = fast_conv2d(&g, &weights, &random(c, 2))?;
            let dgrad = fast_conv2d_input_grad(&g, &weights)?;
            let x = Tensor::from_vec(Shape::new(1, c, hw, hw), Layout::Nchw, random(c * hw * hw, 3))?;
            let dy = Tensor::from_vec(Shape::new(1, c, hw, hw), Layout::Nchw, random(c * hw * hw, 4))?;
            let (mut y, mut dx) = (Tensor::default(), Tensor::default());
            let flops = 2.0 * (c * hw * hw * c * 9) as f64;
            let t_fwd = best_ms(reps, || fwd.forward(&x, &mut y, Activation::Identity, &mut scratch).expect("shapes fit"));
            let t_both = best_ms(reps, || {
                fwd.forward(&x, &mut y, Activation::Identity, &mut scratch).expect("shapes fit");
                dgrad.forward(&dy, &mut dx, Activation::Identity, &mut scratch).expect("shapes fit");
            });
            let xa = Array::from_vec(&[1, c, hw, hw], x.data().to_vec())?;
            let dya = Array::from_vec(&[1, c, hw, hw], dy.data().to_vec())?;
            let bias = random(c, 2);
            let t_train = best_ms(reps.min(3), || {
                conv_forward(&g, &xa, &weights, Some(&bias)).expect("shapes fit");
                conv_backward(&g, &xa, &weights, &dya).expect("shapes fit");
            });
            let name = format!("{c}ch@{hw}x{hw}");
            println!(
                "{{\"case\":\"conv2d_fwd_bwd\",\"shape\":\"{name}\",\"ms\":{t_train:.3},\"gflops\":{:.2}}}",
                3.0 * flops / t_train / 1e6
            );
            println!(
                "{{\"case\":\"conv2d_fwd\",\"shape\":\"{name}\",\"ms\":{t_fwd:.3},\"gflops\":{:.2}}}",
                flops / t_fwd / 1e6
            );
            println!(
                "{{\"case\":\"conv2d_fwd_dgrad\",\"shape\":\"{name}\",\"ms\":{t_both:.3},\"gflops\":{:.2}}}",
                2.0 * flops / t_both / 1e6
            );
        }
        if let Some(path) = flag("--model") {
            let model = visage_formats::dlib::resnet::ResnetModel::from_file(std::path::Path::new(&path))?;
            let net = FaceResnet::from_model(&model)?;
            let (rows, cols) = net.input_size();
            let chips: Vec<Vec<u8>> = (0..16u64)
                .map(|i| random(rows * cols * 3, 10 + i).iter().map(|v| ((v + 0.5) * 255.0) as u8).collect())
                .collect();
            let refs: Vec<&[u8]> = chips.iter().map(Vec::as_slice).collect();
            let cpu_before = cpu_ms();
            let t = best_ms(reps, || {
                net.encode_batch(&refs).expect("chips fit");
            });
            if let (Some(a), Some(b)) = (cpu_before, cpu_ms()) {
                eprintln!(
                    "face ResNet, 16 chips: {:.1} ms CPU time per batch",
                    (b - a) / (reps + 1) as f64
                );
            }
            if args.iter().any(|a| a == "--profile") {
                // Per-step wall time summed over the repetitions: where the network spends it.
                let mut total: Vec<(String, f64)> = Vec::new();
                for _ in 0..reps {
                    let (_, times) = net.encode_batch_profiled(&refs)?;
                    if total.is_empty() {
                        total = times.iter().map(|(n, _)| (n.clone(), 0.0)).collect();
                    }
                    for (slot, (_, t)) in total.iter_mut().zip(&times) {
                        slot.1 += t.as_secs_f64() * 1e3 / reps as f64;
                    }
                }
                for (i, (name, ms)) in total.iter().enumerate() {
                    eprintln!("{i:3} {ms:8.3} ms  {name}");
                }
            }
            let flops = 16.0 * resnet_flops(&net);
            println!(
                "{{\"case\":\"face_resnet_b16\",\"shape\":\"16x3x150x150\",\"ms\":{t:.3},\"gflops\":{:.2},\"gflop_per_chip\":{:.3}}}",
                flops / t / 1e6,
                flops / 16.0 / 1e9
            );
        }
        Ok(())
    })
}
