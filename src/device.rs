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

/// One device of a data-parallel run, as the command line names it: `cpu`, `gpu` or `gpu:N`
/// (WGPU's discrete GPU N), `cuda` or `cuda:N`, or a `ranklet worker`'s WebSocket address
/// `ws://host:port` (with `/N` for the worker's device N; 0 by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    Gpu(usize),
    Cuda(usize),
    Worker { url: String, index: usize },
}

impl std::str::FromStr for DeviceSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::bad_input(format!("device `{s}`"), why.to_string());
        if let Some(rest) = s.strip_prefix("ws://") {
            let (host, index) = match rest.split_once('/') {
                None | Some((_, "")) => (rest.trim_end_matches('/'), 0),
                Some((host, index)) => (
                    host,
                    index
                        .parse()
                        .map_err(|_| bad("the part after the address's `/` is a device number"))?,
                ),
            };
            let (name, port) = host
                .rsplit_once(':')
                .ok_or_else(|| bad("a worker's address is ws://host:port"))?;
            if name.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(bad(
                    "a worker's address is ws://host:port, with a port 1-65535",
                ));
            }
            return Ok(DeviceSpec::Worker {
                url: format!("ws://{host}"),
                index,
            });
        }
        let (kind, ordinal) = match s.split_once(':') {
            Some((kind, n)) => (
                kind,
                n.parse::<usize>()
                    .map_err(|_| bad("the part after `:` is a device number"))?,
            ),
            None => (s, 0),
        };
        match kind {
            "cpu" if ordinal == 0 => Ok(DeviceSpec::Cpu),
            "cpu" => Err(bad(
                "there is one CPU device (`cpu`); run a worker per core instead",
            )),
            "gpu" => Ok(DeviceSpec::Gpu(ordinal)),
            "cuda" => Ok(DeviceSpec::Cuda(ordinal)),
            _ => Err(bad(
                "expected cpu, gpu[:N], cuda[:N] or a worker's address ws://host:port[/N]",
            )),
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Gpu(n) => write!(f, "gpu:{n}"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceSpec::Worker { url, index: 0 } => write!(f, "{url}"),
            DeviceSpec::Worker { url, index } => write!(f, "{url}/{index}"),
        }
    }
}

impl DeviceSpec {
    /// Opens the device: a worker's is connected now (burn's remote backend over WebSocket), so an
    /// unreachable worker is reported here, by its address, before any work starts.
    pub fn connect(&self) -> Result<Device> {
        match self {
            DeviceSpec::Cpu => Ok(Device::flex()),
            DeviceSpec::Gpu(n) => Device::wgpu_options()
                .device_kind(burn::tensor::DeviceKind::DiscreteGpu(*n))
                .init()
                .map_err(|e| Error::Backend(format!("device gpu:{n} is not usable ({e})"))),
            #[cfg(feature = "cuda")]
            DeviceSpec::Cuda(n) => Ok(Device::cuda(*n)),
            #[cfg(not(feature = "cuda"))]
            DeviceSpec::Cuda(_) => Err(Error::bad_input(
                self.to_string(),
                "this build has no CUDA backend; rebuild with `cargo build --release --features cuda`",
            )),
            DeviceSpec::Worker { url, index } => {
                let host = burn::remote::RemoteHost::websocket(url);
                Device::remote_options(&host)
                    .device_index(*index)
                    .init()
                    .map_err(|e| {
                        Error::Backend(format!(
                            "worker {self} cannot be reached ({e}); is `ranklet worker --listen` \
                             running there?"
                        ))
                    })
            }
        }
    }
}

/// A device opened for a run, with the name the user gave it: errors name it.
#[derive(Debug, Clone)]
pub struct NamedDevice {
    pub name: String,
    pub device: Device,
}

impl DeviceSpec {
    /// [`connect`](Self::connect), keeping the name.
    pub fn open(&self) -> Result<NamedDevice> {
        Ok(NamedDevice {
            name: self.to_string(),
            device: self.connect()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::DeviceSpec;

    #[test]
    fn device_specs_parse_and_print_back() {
        for (text, spec) in [
            ("cpu", DeviceSpec::Cpu),
            ("gpu", DeviceSpec::Gpu(0)),
            ("gpu:2", DeviceSpec::Gpu(2)),
            ("cuda:1", DeviceSpec::Cuda(1)),
            (
                "ws://127.0.0.1:7001",
                DeviceSpec::Worker {
                    url: "ws://127.0.0.1:7001".into(),
                    index: 0,
                },
            ),
            (
                "ws://node-2:7001/3",
                DeviceSpec::Worker {
                    url: "ws://node-2:7001".into(),
                    index: 3,
                },
            ),
        ] {
            assert_eq!(text.parse::<DeviceSpec>().unwrap(), spec, "{text}");
            let again = spec.to_string().parse::<DeviceSpec>().unwrap();
            assert_eq!(again, spec);
        }
        for bad in [
            "tpu",
            "cpu:1",
            "gpu:x",
            "ws://host",
            "ws://host:0",
            "ws://:7001",
            "ws://h:1/x",
        ] {
            let err = bad.parse::<DeviceSpec>().unwrap_err().to_string();
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }
}
