//! A precomputed item index in the browser (`ranklet index`): checked against the bundle, read
//! against the page's catalogue in one pass, and installed as the ranking state's item rows
//! (items the index lacks go through the tower here).

use burn::prelude::*;
use js_sys::{Array, Float32Array, Object, Reflect, Uint8Array, Uint32Array};
use wasm_bindgen::prelude::*;

use super::ranker::Ranker;
use super::{file_reader, js_error, popularity_figures};
use crate::contracts::sha256_hex;
use crate::index::ItemIndex;
use crate::index::format::text_hash;
use crate::rec::ItemMode;
use crate::rec::readback::Async;

#[wasm_bindgen]
impl Ranker {
    /// Loads the precomputed item index served with this bundle: `bundleManifest` is the
    /// bundle's `manifest.json` bytes (the index must have been built with exactly this
    /// bundle), `manifest` the index's `manifest.json`, `files` its files by name. Every file
    /// is checked against the index's manifest first. Returns the number of indexed items.
    #[wasm_bindgen(js_name = loadIndex)]
    pub fn load_index(
        &mut self,
        bundle_manifest: Uint8Array,
        manifest: Uint8Array,
        files: Object,
    ) -> Result<usize, JsError> {
        let index = ItemIndex::from_files(
            &manifest.to_vec(),
            "index manifest.json",
            file_reader(&files),
        )
        .map_err(js_error)?;
        index
            .check_model(&sha256_hex(&bundle_manifest.to_vec()), "this bundle")
            .map_err(js_error)?;
        if index.manifest.dim != self.config.sequence.hidden {
            return Err(JsError::new(&format!(
                "index: {}-wide item vectors, but the recommender's are {}",
                index.manifest.dim, self.config.sequence.hidden
            )));
        }
        let n = index.ids.len();
        self.index = Some(index);
        Ok(n)
    }

    /// Reads a catalogue (JSON array or JSONL text) against the loaded index in one pass:
    /// `{ids, rows, missingTexts, popularity}` — each item's id, its row in the index
    /// (`0xFFFFFFFF` where the index lacks the id or holds another text for it), in order, the
    /// encoder texts of those missing items (to embed on the device), and each item's
    /// popularity figure (NaN where it has none; for `setItemPopularity`). Only the missing texts cross to
    /// JavaScript; the items' persona facets stay here for the next `setItemRows`. This is
    /// `catalogTexts` + `indexRowsOf` + `setItemFacets` without sending every text and facet
    /// list across twice (a later visit to a 20 000-item shop spent a third of `index()` there).
    #[wasm_bindgen(js_name = indexCatalog)]
    pub fn index_catalog(&mut self, catalog: &str) -> Result<Object, JsError> {
        let Some(index) = &self.index else {
            return Err(JsError::new("no index loaded"));
        };
        let items = crate::data::read_catalog(catalog.as_bytes(), "catalog").map_err(js_error)?;
        let row = index.row_of();
        let missing = Array::new();
        let rows: Vec<u32> = items
            .iter()
            .map(|item| {
                let text = item.encoder_text();
                let r = index_row(index, &row, &item.id, &text);
                if r == u32::MAX {
                    missing.push(&JsValue::from_str(&text));
                }
                r
            })
            .collect();
        let ids: Array = items.iter().map(|i| JsValue::from_str(&i.id)).collect();
        self.catalog_facets = Some(items.iter().map(|i| i.facets()).collect());
        let out = Object::new();
        let set = |k: &str, v: JsValue| {
            Reflect::set(&out, &k.into(), &v)
                .map(|_| ())
                .map_err(|_| JsError::new("reflect"))
        };
        set("ids", ids.into())?;
        set("rows", Uint32Array::from(&rows[..]).into())?;
        set("missingTexts", missing.into())?;
        set("popularity", popularity_figures(&items).into())?;
        Ok(out)
    }

    /// For each catalogue item (its id and encoder text, in catalogue order), its row in the
    /// loaded index, or `0xFFFFFFFF` where the index lacks the id or holds another text for it
    /// (those items are embedded on the device).
    #[wasm_bindgen(js_name = indexRowsOf)]
    pub fn index_rows_of(
        &self,
        ids: Vec<String>,
        texts: Vec<String>,
    ) -> Result<Uint32Array, JsError> {
        let Some(index) = &self.index else {
            return Err(JsError::new("no index loaded"));
        };
        if ids.len() != texts.len() {
            return Err(JsError::new(&format!(
                "{} ids for {} texts",
                ids.len(),
                texts.len()
            )));
        }
        let row = index.row_of();
        let rows: Vec<u32> = ids
            .iter()
            .zip(&texts)
            .map(|(id, text)| index_row(index, &row, id, text))
            .collect();
        Ok(Uint32Array::from(&rows[..]))
    }

    /// The item tower's output for text vectors (`n × textDim`, row-major), read back
    /// asynchronously: the item vectors of catalogue items the index does not hold.
    #[wasm_bindgen(js_name = towerRows)]
    pub async fn tower_rows(&self, vectors: Float32Array) -> Result<Float32Array, JsError> {
        let dim = self.config.items.text_dim;
        let flat = vectors.to_vec();
        if !flat.len().is_multiple_of(dim) || flat.iter().any(|v| !v.is_finite()) {
            return Err(JsError::new(&format!(
                "text vectors: {} floats is not a whole number of finite {dim}-wide rows",
                flat.len()
            )));
        }
        if flat.is_empty() {
            return Ok(Float32Array::new_with_length(0));
        }
        let n = flat.len() / dim;
        let text = Tensor::<2>::from_data(TensorData::new(flat, [n, dim]), &self.device);
        let raw = self.model.item_vectors(text).raw;
        let rows = crate::rec::readback::ReadBack::read(&Async, raw)
            .await
            .map_err(js_error)?;
        Ok(Float32Array::from(&rows[..]))
    }

    /// The catalogue as item vectors, no tower to run: `indexRows` (from `indexRowsOf`) gives
    /// each item's row of the loaded index, and the items marked `0xFFFFFFFF` take the rows of
    /// `towered` (from `towerRows`) in order.
    #[wasm_bindgen(js_name = setItemRows)]
    pub fn set_item_rows(
        &mut self,
        index_rows: Uint32Array,
        towered: Float32Array,
    ) -> Result<(), JsError> {
        let Some(index) = &self.index else {
            return Err(JsError::new("no index loaded"));
        };
        let hidden = index.manifest.dim;
        let rows = index_rows.to_vec();
        let towered = towered.to_vec();
        let from_index = index.rows();
        let mut raw = Vec::with_capacity(rows.len() * hidden);
        let mut next = towered.chunks_exact(hidden);
        for &r in &rows {
            let row = if r == u32::MAX {
                next.next().ok_or_else(|| {
                    JsError::new("fewer towered rows than items missing from the index")
                })?
            } else {
                let r = r as usize;
                from_index
                    .get(r * hidden..(r + 1) * hidden)
                    .ok_or_else(|| JsError::new(&format!("index row {r} is outside the index")))?
            };
            raw.extend_from_slice(row);
        }
        if rows.is_empty() || raw.iter().any(|v| !v.is_finite()) {
            return Err(JsError::new("item rows: none, or not finite"));
        }
        if self.config.items.mode != ItemMode::Inductive && rows.len() != self.items.len() {
            return Err(JsError::new(&format!(
                "item rows: {} rows, but this {} model ranks its {} items",
                rows.len(),
                self.mode(),
                self.items.len()
            )));
        }
        let facets = self.catalog_facets.take();
        self.install_item_rows(raw, hidden);
        // The rows of a catalogue read by `indexCatalog`: its facets, in the same order.
        if let Some(facets) = facets.filter(|f| f.len() == rows.len()) {
            self.facets = facets;
            self.apply_facets();
        }
        Ok(())
    }
}

/// An item's row in the loaded index (`row`: its id → row map), or `u32::MAX` where the index
/// lacks the id or holds another text for it (the item is embedded on the device).
fn index_row(
    index: &ItemIndex,
    row: &std::collections::HashMap<&str, usize>,
    id: &str,
    text: &str,
) -> u32 {
    match row.get(id) {
        Some(&r) if index.hashes[r] == text_hash(text) => r as u32,
        _ => u32::MAX,
    }
}
