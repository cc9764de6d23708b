//! The sentence encoder in the browser: a bundle's encoder loaded from byte buffers, texts
//! embedded on WebGPU or the CPU.

use js_sys::{Float32Array, Object, Uint8Array};
use wasm_bindgen::prelude::*;

use super::device::init_device;
use super::{file_reader, js_error};
use crate::bundle::{EncoderFiles, Manifest};
use crate::text::TextEmbedder;

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
        let encoder_files =
            EncoderFiles::from_manifest(&manifest, file_reader(&files)).map_err(js_error)?;
        Self::from_files(&encoder_files, &backend).await
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
