//! Choosing the compute device natively: burn's pure-Rust `flex` CPU backend, or its WGPU
//! backend (Vulkan, Metal or DX12) with the adapter it found.

use burn::prelude::Device;
use burn::tensor::wgpu::wgpu;

use crate::error::{Error, Result};

/// A WGPU device and what it runs on.
#[derive(Debug, Clone)]
pub struct GpuDevice {
    pub device: Device,
    /// Adapter name and graphics API, e.g. `NVIDIA H100 (Vulkan)`.
    pub adapter: String,
    /// A CPU-emulated adapter (llvmpipe/lavapipe, SwiftShader, WARP): correct but slow, so
    /// full-size models are not run on it in tests.
    pub software: bool,
}

/// Initialises burn's WGPU runtime on the default (high-performance) adapter. Call once per
/// process: the runtime cannot be initialised twice.
pub fn init_gpu() -> Result<GpuDevice> {
    let (device, setup) = Device::wgpu_options()
        .init_with_setup()
        .map_err(|e| Error::Backend(format!("no usable WGPU adapter ({e})")))?;
    let info = setup.adapter.get_info();
    Ok(GpuDevice {
        device,
        adapter: format!("{} ({:?})", info.name, info.backend),
        software: info.device_type == wgpu::DeviceType::Cpu,
    })
}
