//! A partitioned index in the browser (`ranklet index --partitions`): the manifest and
//! centroids are loaded once; the visitor's state (computed here, never sent) chooses the cells
//! to rank; the worker fetches their shards (`www/shards.js`, a fixed count per
//! recommendation) and hands each one here to be checked and read.

use js_sys::{Array, Float32Array, Object, Reflect, Uint8Array, Uint32Array};
use wasm_bindgen::prelude::*;

use super::js_error;
use super::ranker::{Ranker, event_kinds, scene_context};
use crate::contracts::sha256_hex;
use crate::index::IndexManifest;
use crate::index::partition::probe;
use crate::index::quantise::dequantise_rows;
use crate::index::shard::{Shard, centroids_from_bytes};
use crate::rec::RecommendRequest;
use crate::rec::readback::Async;

/// A partitioned index's manifest (checked against the bundle) and its centroids.
pub struct WebCells {
    manifest: IndexManifest,
    centroids: Vec<f32>,
}

fn set(o: &Object, key: &str, value: JsValue) -> Result<(), JsError> {
    Reflect::set(o, &key.into(), &value)
        .map(|_| ())
        .map_err(|_| JsError::new("reflect"))
}

impl Ranker {
    fn loaded_cells(&self) -> Result<&WebCells, JsError> {
        self.cells
            .as_ref()
            .ok_or_else(|| JsError::new("no partitioned index loaded"))
    }
}

#[wasm_bindgen]
impl Ranker {
    /// Loads a partitioned index: `bundleManifest` (the index must have been built with exactly
    /// this bundle), the index's `manifest.json` and its centroid file, checked against the
    /// manifest. Returns `{items, shards: [file names, in cell order], sizes, popular, nprobe,
    /// decoys}`.
    #[wasm_bindgen(js_name = loadPartitions)]
    pub fn load_partitions(
        &mut self,
        bundle_manifest: Uint8Array,
        manifest: Uint8Array,
        centroids: Uint8Array,
    ) -> Result<Object, JsError> {
        let manifest = IndexManifest::from_json(&manifest.to_vec(), "index manifest.json")
            .map_err(js_error)?;
        let Some(p) = manifest.partitions.clone() else {
            return Err(JsError::new("index manifest.json: not a partitioned index"));
        };
        let bundle_sha = sha256_hex(&bundle_manifest.to_vec());
        if manifest.model.manifest_sha256 != bundle_sha {
            return Err(JsError::new(&format!(
                "index manifest.json: the index was built with model {:?}, not with this bundle; \
                 rebuild it with `ranklet index --model BUNDLE --partitions auto`",
                manifest.model.name
            )));
        }
        if manifest.dim != self.config.sequence.hidden {
            return Err(JsError::new(&format!(
                "index: {}-wide item vectors, but the recommender's are {}",
                manifest.dim, self.config.sequence.hidden
            )));
        }
        let bytes = centroids.to_vec();
        manifest.verify(&p.centroids, &bytes).map_err(js_error)?;
        let centroids = centroids_from_bytes(&bytes, p.shards.len(), manifest.dim, &p.centroids)
            .map_err(js_error)?;
        let out = Object::new();
        set(&out, "items", manifest.items.into())?;
        let files: Array = p.shards.iter().map(|s| JsValue::from(&s.file)).collect();
        set(&out, "shards", files.into())?;
        let sizes: Array = p.shards.iter().map(|s| JsValue::from(s.items)).collect();
        set(&out, "sizes", sizes.into())?;
        set(&out, "popular", JsValue::from(&p.popular.file))?;
        set(&out, "nprobe", p.nprobe.into())?;
        set(&out, "decoys", p.decoys.into())?;
        self.cells = Some(WebCells {
            manifest,
            centroids,
        });
        Ok(out)
    }

    /// Checks a shard's bytes against the index's manifest (size and sha256; a damaged or
    /// truncated shard is refused by name) and reads it: `{ids, items (a JSON array of the
    /// catalogue objects), rows (Float32Array, the item vectors, ids.length × dim)}`.
    #[wasm_bindgen(js_name = openShard)]
    pub fn open_shard(&self, name: String, bytes: Uint8Array) -> Result<Object, JsError> {
        let cells = self.loaded_cells()?;
        let p = cells.manifest.partitions.as_ref().expect("checked at load");
        let items = p
            .shards
            .iter()
            .chain(std::iter::once(&p.popular))
            .find(|s| s.file == name)
            .ok_or_else(|| JsError::new(&format!("{name}: not a shard of this index")))?
            .items;
        let bytes = bytes.to_vec();
        cells.manifest.verify(&name, &bytes).map_err(js_error)?;
        let dim = cells.manifest.dim;
        let shard = Shard::from_bytes(&bytes, items, dim, &name).map_err(js_error)?;
        let rows = dequantise_rows(&shard.rows.vectors, &shard.rows.scales, dim);
        let out = Object::new();
        let ids: Array = shard
            .ids
            .iter()
            .map(|i| JsValue::from(i.as_str()))
            .collect();
        set(&out, "ids", ids.into())?;
        let display = serde_json::to_string(&shard.items).expect("JSON values serialise");
        set(&out, "items", display.into())?;
        set(&out, "rows", Float32Array::from(&rows[..]).into())?;
        Ok(out)
    }

    /// The `nprobe` cells whose centroids are nearest to the visitor's `state` (from
    /// `userState`), nearest first.
    #[wasm_bindgen(js_name = probeCells)]
    pub fn probe_cells(&self, state: Float32Array, nprobe: usize) -> Result<Uint32Array, JsError> {
        let cells = self.loaded_cells()?;
        let state = state.to_vec();
        if state.len() != cells.manifest.dim {
            return Err(JsError::new(&format!(
                "state: {} values, the index's vectors are {} wide",
                state.len(),
                cells.manifest.dim
            )));
        }
        let cells: Vec<u32> = probe(&cells.centroids, cells.manifest.dim, &state, nprobe)
            .into_iter()
            .map(|c| c as u32)
            .collect();
        Ok(Uint32Array::from(&cells[..]))
    }

    /// The candidates to rank as item vectors (`rows`: the item tower's output, `n × hidden`,
    /// e.g. from `openShard`), replacing the catalogue.
    #[wasm_bindgen(js_name = setCandidateRows)]
    pub fn set_candidate_rows(&mut self, rows: Float32Array) -> Result<(), JsError> {
        let hidden = self.config.sequence.hidden;
        let raw = rows.to_vec();
        if raw.is_empty() || !raw.len().is_multiple_of(hidden) || raw.iter().any(|v| !v.is_finite())
        {
            return Err(JsError::new(&format!(
                "candidate rows: {} floats is not a whole, non-empty number of finite {hidden}-wide rows",
                raw.len()
            )));
        }
        self.install_item_rows(raw, hidden);
        Ok(())
    }

    /// The candidates' popularity figures, one per row in the order of `ids` (NaN where an
    /// item has none; e.g. each shard item's `popularity`): the candidates this model never
    /// trained on are lifted by them against the catalogue's largest figure, which the index's
    /// manifest records, as the whole catalogue's ranking lifts them. After `setCandidateRows`.
    #[wasm_bindgen(js_name = setCandidatePopularity)]
    pub fn set_candidate_popularity(
        &mut self,
        popularity: Float32Array,
        ids: Vec<String>,
    ) -> Result<(), JsError> {
        let p_max = self
            .loaded_cells()?
            .manifest
            .partitions
            .as_ref()
            .and_then(|p| p.max_popularity);
        self.lift_by_popularity(
            &popularity.to_vec(),
            &ids,
            p_max,
            "setCandidatePopularity: no candidates installed",
        )
    }

    /// The visitor's unit state after `history` (rows of the candidates, oldest first; `kinds`
    /// and `context` as in `recommend`): what `probeCells` compares with the centroids. Empty
    /// when no event is read.
    #[wasm_bindgen(js_name = userState)]
    pub async fn user_state(
        &self,
        history: Vec<u32>,
        kinds: Option<Uint8Array>,
        context: Option<Uint8Array>,
    ) -> Result<Float32Array, JsError> {
        let state = self.state("userState")?;
        let history: Vec<usize> = history.into_iter().map(|h| h as usize).collect();
        let kinds = event_kinds(kinds, history.len())?;
        let user = state
            .user_state_with(
                &self.model,
                &RecommendRequest {
                    history: &history,
                    kinds: &kinds,
                    context: scene_context(context.map(|c| c.to_vec()))?,
                    ..RecommendRequest::default()
                },
                &Async,
            )
            .await
            .map_err(js_error)?;
        Ok(Float32Array::from(&user[..]))
    }
}
