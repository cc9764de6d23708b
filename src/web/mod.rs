//! The browser API (`--features web`, wasm32): load a text encoder from byte buffers the page
//! fetched from its own origin, embed texts on WebGPU or the CPU (`flex`) backend.
//! The JS side (`www/ranklet.js`, `www/worker.js`) runs this inside a Web Worker.

use std::cell::RefCell;

use burn::prelude::Device;
use js_sys::{Float32Array, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::bundle::{EncoderFiles, Manifest};
use crate::error::Error;
use crate::fixtures::{product_titles, tiny_bert_files};
use crate::text::TextEmbedder;

thread_local! {
    /// burn's WGPU runtime can be initialised once per page; later loads reuse the device.
    static WEBGPU: RefCell<Option<Device>> = const { RefCell::new(None) };
}

fn js_error(e: Error) -> JsError {
    JsError::new(&e.to_string())
}

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// Picks the compute device. `"cpu"` is the `flex` backend; `"webgpu"` and `"auto"` try
/// WebGPU and fall back to the CPU, saying why.
async fn init_device(preference: &str) -> Result<(Device, String, String), JsError> {
    match preference {
        "cpu" => Ok((
            Device::flex(),
            "cpu".into(),
            "asked for the CPU backend".into(),
        )),
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

/// A sentence encoder running in this page or worker.
#[wasm_bindgen]
pub struct Encoder {
    embedder: TextEmbedder,
    backend: String,
    backend_reason: String,
    name: String,
}

#[wasm_bindgen]
impl Encoder {
    /// Loads an encoder from a bundle: `manifest` is `manifest.json`'s bytes, `files` an object
    /// mapping each file name the manifest's encoder names to its bytes (`Uint8Array`). Every
    /// file's size and sha256 is checked against the manifest first.
    pub async fn load(
        manifest: Uint8Array,
        files: Object,
        backend: String,
    ) -> Result<Encoder, JsError> {
        let manifest =
            Manifest::from_json(&manifest.to_vec(), "manifest.json").map_err(js_error)?;
        let encoder_files = EncoderFiles::from_manifest(&manifest, |name| {
            let value =
                Reflect::get(&files, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED);
            if value.is_undefined() {
                return Err(Error::MissingModelFile {
                    file: name.into(),
                    hint: None,
                });
            }
            value
                .dyn_into::<Uint8Array>()
                .map(|a| a.to_vec())
                .map_err(|_| Error::bad_file(name, "expected a Uint8Array of the file's bytes"))
        })
        .map_err(js_error)?;
        Self::from_files(&encoder_files, &backend).await
    }

    /// The tiny random test BERT for `seed` (identical bytes on every target), for tests.
    #[wasm_bindgen(js_name = tinyTestModel)]
    pub async fn tiny_test_model(seed: u32, backend: String) -> Result<Encoder, JsError> {
        Self::from_files(&tiny_bert_files(u64::from(seed)), &backend).await
    }

    async fn from_files(files: &EncoderFiles, backend: &str) -> Result<Encoder, JsError> {
        let (device, backend, backend_reason) = init_device(backend).await?;
        let embedder = TextEmbedder::from_files(files, &device).map_err(js_error)?;
        Ok(Encoder {
            embedder,
            backend,
            backend_reason,
            name: files.name.clone(),
        })
    }

    /// `"webgpu"` or `"cpu"`: the backend that runs.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    /// Why that backend runs (e.g. why WebGPU was not used).
    #[wasm_bindgen(getter, js_name = backendReason)]
    pub fn backend_reason(&self) -> String {
        self.backend_reason.clone()
    }

    /// The model's name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// Width of the vectors.
    #[wasm_bindgen(getter)]
    pub fn dim(&self) -> usize {
        self.embedder.dim()
    }

    /// Word-piece ids of one text ([CLS] … [SEP], truncated as the model is).
    pub fn tokenize(&self, text: &str) -> Result<Vec<i32>, JsError> {
        let ids = self.embedder.tokenizer.encode(text).map_err(js_error)?;
        Ok(ids.into_iter().map(|i| i as i32).collect())
    }

    /// Embeds a batch of texts; returns `texts.length × dim` floats, row-major.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Float32Array, JsError> {
        let rows = self.embedder.embed_async(&texts).await.map_err(js_error)?;
        let flat: Vec<f32> = rows.into_iter().flatten().collect();
        Ok(Float32Array::from(flat.as_slice()))
    }
}

/// The synthetic product titles of the benchmarks (same as `ranklet bench embed`).
#[wasm_bindgen(js_name = productTitles)]
pub fn product_titles_js(n: usize, seed: u32) -> Vec<String> {
    product_titles(n, u64::from(seed))
}
