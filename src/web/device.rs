//! Choosing the compute device in the browser: WebGPU when asked for and available, the CPU
//! (`flex`) backend otherwise, with the reason.

#[cfg(feature = "webgpu")]
use std::cell::RefCell;

use burn::prelude::Device;
#[cfg(feature = "webgpu")]
use js_sys::Reflect;
use wasm_bindgen::prelude::*;

#[cfg(feature = "webgpu")]
thread_local! {
    /// burn's WGPU runtime can be initialised once per page; later loads reuse the device.
    static WEBGPU: RefCell<Option<Device>> = const { RefCell::new(None) };
}

/// Whether this module has the WebGPU backend (`www/pkg-webgpu/`) or is the CPU-only one
/// (`www/pkg/`).
#[wasm_bindgen(js_name = hasWebGpu)]
pub fn has_webgpu() -> bool {
    cfg!(feature = "webgpu")
}

/// Picks the compute device. `"cpu"` is the `flex` backend; `"webgpu"` and `"auto"` try
/// WebGPU and fall back to the CPU, saying why.
pub(crate) async fn init_device(preference: &str) -> Result<(Device, String, String), JsError> {
    match preference {
        "cpu" => Ok((
            Device::flex(),
            "cpu".into(),
            "asked for the CPU backend".into(),
        )),
        #[cfg(not(feature = "webgpu"))]
        "webgpu" | "auto" => Ok((
            Device::flex(),
            "cpu".into(),
            "this is the CPU-only module (the WebGPU one is www/pkg-webgpu/)".into(),
        )),
        #[cfg(feature = "webgpu")]
        "webgpu" | "auto" => {
            if let Some(device) = WEBGPU.with(|d| d.borrow().clone()) {
                return Ok((device, "webgpu".into(), "WebGPU adapter (reused)".into()));
            }
            let has_gpu = web_sys::window()
                .map(|w| Reflect::has(&w.navigator(), &"gpu".into()).unwrap_or(false))
                .or_else(|| {
                    js_sys::global()
                        .dyn_into::<web_sys::WorkerGlobalScope>()
                        .ok()
                        .map(|w| Reflect::has(&w.navigator(), &"gpu".into()).unwrap_or(false))
                })
                .unwrap_or(false);
            if !has_gpu {
                return Ok((
                    Device::flex(),
                    "cpu".into(),
                    "navigator.gpu is absent (no WebGPU in this browser or context)".into(),
                ));
            }
            match Device::wgpu_options().init_async().await {
                Ok(device) => {
                    WEBGPU.with(|d| *d.borrow_mut() = Some(device.clone()));
                    Ok((device, "webgpu".into(), "WebGPU adapter initialised".into()))
                }
                Err(e) => Ok((
                    Device::flex(),
                    "cpu".into(),
                    format!("WebGPU initialisation failed ({e}); using the CPU backend"),
                )),
            }
        }
        other => Err(JsError::new(&format!(
            "backend {other:?} is not one of \"auto\", \"webgpu\", \"cpu\""
        ))),
    }
}
