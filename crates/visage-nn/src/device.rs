//! Where burn tensors live and their kernels run: the CPU (burn's `flex` backend, always there)
//! or a GPU through burn's Vulkan backend (the `gpu` cargo feature).
//!
//! Every heavy command takes a [`Compute`] and asks it for a [`Device`]; nothing else in Visage
//! names a backend. A GPU is looked for once, when it is asked for, and a machine without one
//! (or a build without the feature) gets an error that says which, instead of burn's panic at
//! the first tensor.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

use crate::NnError;

/// A compute device as users name it (`--device cpu|gpu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compute {
    /// burn's `flex` CPU backend, with Visage's own kernels where they are faster.
    #[default]
    Cpu,
    /// The first high-power GPU that Vulkan reports (burn's wgpu/cubecl backend, SPIR-V).
    Gpu,
}

impl Compute {
    /// The name users type: `cpu` or `gpu`.
    pub fn name(self) -> &'static str {
        match self {
            Compute::Cpu => "cpu",
            Compute::Gpu => "gpu",
        }
    }

    /// Whether this build can run on a GPU at all (the `gpu` feature).
    pub fn gpu_built() -> bool {
        cfg!(feature = "gpu")
    }

    /// The burn device (without autodiff; call `.autodiff()` on it to train or optimise).
    ///
    /// For [`Compute::Gpu`] this opens the GPU and runs one tiny transfer on it, so that a
    /// machine without a usable Vulkan driver is told so here, with the reason.
    pub fn device(self) -> Result<Device, NnError> {
        match self {
            Compute::Cpu => Ok(Device::flex()),
            Compute::Gpu => gpu_device(),
        }
    }

    /// The device's own name (for example `NVIDIA H200`), `CPU (flex)` for the CPU; opens the
    /// device.
    pub fn describe(self) -> Result<String, NnError> {
        match self {
            Compute::Cpu => Ok("CPU (burn flex)".into()),
            Compute::Gpu => gpu_name(),
        }
    }
}

impl fmt::Display for Compute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compute {
    type Err = NnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(Compute::Cpu),
            "gpu" | "vulkan" => Ok(Compute::Gpu),
            other => Err(NnError::Device(format!(
                "unknown device `{other}`: expected cpu or gpu"
            ))),
        }
    }
}

/// Whether `device` is burn's CPU backend, where Visage's own CPU kernels may stand in for
/// burn's.
pub fn is_cpu(device: &Device) -> bool {
    device.clone().without_autodiff() == Device::flex()
}

#[cfg(not(feature = "gpu"))]
fn gpu_device() -> Result<Device, NnError> {
    Err(NnError::Device(
        "this build has no GPU support: rebuild with `cargo build --release --features gpu` \
         (burn's Vulkan backend)"
            .into(),
    ))
}

#[cfg(not(feature = "gpu"))]
fn gpu_name() -> Result<String, NnError> {
    gpu_device().map(|_| String::new())
}

#[cfg(feature = "gpu")]
fn vulkan() -> Device {
    Device::vulkan(burn::tensor::DeviceKind::DefaultDevice)
}

/// Runs `f`, turning a panic inside burn or wgpu (their way of saying that no adapter or driver
/// was found) into an error carrying the first panic's message: the root cause, as the panic
/// that reaches `f` is often a worker thread's disconnection.
#[cfg(feature = "gpu")]
fn without_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, NnError> {
    use std::sync::{Arc, Mutex};
    let messages = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&messages);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown failure".into());
        if let Ok(mut m) = seen.lock() {
            m.push(text);
        }
    }));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(previous);
    result.map_err(|_| {
        let first = messages
            .lock()
            .ok()
            .and_then(|m| m.first().cloned())
            .unwrap_or_else(|| "unknown failure".into());
        NnError::Device(format!(
            "{what}: {first} (is a Vulkan loader, libvulkan.so.1, and a GPU driver installed?)"
        ))
    })
}

#[cfg(feature = "gpu")]
fn gpu_device() -> Result<Device, NnError> {
    use burn::tensor::{Tensor, TensorData};
    let device = vulkan();
    let probe = without_panic("no GPU could be opened through Vulkan", || {
        Tensor::<1>::from_data(TensorData::new(vec![1.5f32, -2.0], [2]), &device)
            .mul_scalar(2.0)
            .into_data()
            .try_to_vec::<f32>()
    })?;
    match probe {
        Ok(v) if v == [3.0, -4.0] => Ok(device),
        Ok(v) => Err(NnError::Device(format!(
            "the GPU computed 2 x [1.5, -2] as {v:?}: its driver is not usable"
        ))),
        Err(e) => Err(NnError::Device(format!(
            "reading back from the GPU failed: {e:?}"
        ))),
    }
}

#[cfg(feature = "gpu")]
fn gpu_name() -> Result<String, NnError> {
    let device = gpu_device()?;
    let identity = without_panic("the GPU did not say what it is", || device.identity())?;
    Ok(match identity {
        // No card behind it: a software rasterizer such as Mesa's llvmpipe, which runs
        // everything on the CPU, far slower than `--device cpu`.
        Some(i) if i.physical.is_none() => format!("{} (software Vulkan, not a GPU)", i.name),
        Some(i) => i.name,
        None => "a Vulkan device".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_both_ways_and_unknown_ones_are_refused() {
        for c in [Compute::Cpu, Compute::Gpu] {
            assert_eq!(c.name().parse::<Compute>().unwrap(), c);
            assert_eq!(c.to_string(), c.name());
        }
        assert_eq!(" GPU ".parse::<Compute>().unwrap(), Compute::Gpu);
        let e = "tpu".parse::<Compute>().unwrap_err().to_string();
        assert!(e.contains("tpu") && e.contains("cpu or gpu"), "{e}");
        assert_eq!(Compute::default(), Compute::Cpu);
    }

    #[test]
    fn the_cpu_is_burn_flex_with_or_without_autodiff() {
        let device = Compute::Cpu.device().unwrap();
        assert!(is_cpu(&device));
        assert!(is_cpu(&device.autodiff()));
        assert!(Compute::Cpu.describe().unwrap().contains("CPU"));
    }

    #[cfg(not(feature = "gpu"))]
    #[test]
    fn a_build_without_the_gpu_feature_says_how_to_get_one() {
        assert!(!Compute::gpu_built());
        let e = Compute::Gpu.device().unwrap_err().to_string();
        assert!(e.contains("--features gpu"), "{e}");
        assert!(Compute::Gpu.describe().is_err());
    }
}
