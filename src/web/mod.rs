//! The browser API (`--features web`, wasm32): load a bundle from byte buffers the page fetched
//! from its own origin; embed texts ([`Encoder`]) and rank a catalog after a history
//! ([`Ranker`]) on WebGPU or the CPU (`flex`) backend. The JS side (`www/ranklet.js`,
//! `www/worker.js`) runs this inside a Web Worker.

mod cells;
mod device;
mod encoder;
mod index;
mod ranker;

pub use encoder::Encoder;
pub use ranker::Ranker;

use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::data::synthetic::product_titles;
use crate::error::Error;

fn js_error(e: Error) -> JsError {
    JsError::new(&e.to_string())
}

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// Reads a file's bytes from a JS object mapping file names to `Uint8Array`s.
fn file_reader(files: &Object) -> impl FnMut(&str) -> crate::Result<Vec<u8>> + '_ {
    move |name| {
        let value = Reflect::get(files, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED);
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
    }
}

/// The synthetic product titles of the benchmarks (same as `ranklet bench embed`).
#[wasm_bindgen(js_name = productTitles)]
pub fn product_titles_js(n: usize, seed: u32) -> Vec<String> {
    product_titles(n, u64::from(seed))
}

/// Each catalogue item's `popularity` (NaN where it has none), for `setItemPopularity`.
pub(crate) fn popularity_figures(items: &[crate::data::CatalogItem]) -> js_sys::Float32Array {
    let figures: Vec<f32> = items
        .iter()
        .map(|i| i.popularity.map_or(f32::NAN, |p| p as f32))
        .collect();
    js_sys::Float32Array::from(&figures[..])
}

/// Reads a catalog (JSON array or JSONL text) and returns `[ids, encoderTexts, facets,
/// popularity]`: the exact texts the native side embeds for these items (title. categories.
/// brand. text), each item's persona facets (its genres, else its categories), and its
/// popularity figure (NaN where it has none).
#[wasm_bindgen(js_name = catalogTexts)]
pub fn catalog_texts(catalog: &str) -> Result<js_sys::Array, JsError> {
    let items = crate::data::read_catalog(catalog.as_bytes(), "catalog").map_err(js_error)?;
    let ids: js_sys::Array = items.iter().map(|i| JsValue::from_str(&i.id)).collect();
    let texts: js_sys::Array = items
        .iter()
        .map(|i| JsValue::from_str(&i.encoder_text()))
        .collect();
    let facets: js_sys::Array = items
        .iter()
        .map(|i| {
            let f: js_sys::Array = i.facets().iter().map(|s| JsValue::from_str(s)).collect();
            JsValue::from(f)
        })
        .collect();
    Ok([
        JsValue::from(ids),
        JsValue::from(texts),
        JsValue::from(facets),
        JsValue::from(popularity_figures(&items)),
    ]
    .into_iter()
    .collect())
}
