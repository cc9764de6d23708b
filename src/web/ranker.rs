//! The recommender in the browser: a bundle's `rec.safetensors` over item text vectors that the
//! page embedded (with the bundle's encoder), scored on WebGPU or the CPU, top-k on the CPU
//! after an asynchronous readback.

use burn::prelude::*;
use js_sys::{Array, Float32Array, Object, Reflect, Uint8Array, Uint32Array};
use wasm_bindgen::prelude::*;

use super::device::init_device;
use super::{file_reader, js_error};
use crate::bundle::{Manifest, RecommenderFiles};
use crate::contracts::EventKind;
use crate::contracts::{DEVICE_CLASSES, PAGE_TYPES, SceneContext};
use crate::index::ItemIndex;
use crate::rec::readback::Async;
use crate::rec::{
    Calibration, HistorySelect, ItemMode, RankingState, RecommendRequest, Recommender,
    RecommenderConfig,
};

/// A trained recommender running in this page or worker: an adapter over the one recommend
/// path ([`RankingState`], [`RecommendRequest`]).
#[wasm_bindgen]
pub struct Ranker {
    pub(super) model: Recommender,
    pub(super) config: RecommenderConfig,
    pub(super) items: Vec<String>,
    /// The catalog through the item tower, computed once per `setTextVectors`.
    pub(super) state: Option<RankingState>,
    /// The bundle's precomputed item index (`ranklet index`), checked against the bundle.
    pub(super) index: Option<ItemIndex>,
    /// The catalog's persona facets by row (names), kept to rebuild the model's facet table
    /// when the visitor mutes an entry.
    pub(super) facets: Vec<Vec<String>>,
    pub(super) muted: Vec<String>,
    /// Which events of a history longer than the cap the encoder reads.
    pub(super) history_select: HistorySelect,
    pub(super) recent: usize,
    pub(super) device: Device,
    backend: String,
    backend_reason: String,
    /// A partitioned index's manifest and centroids (`loadPartitions`).
    pub(super) cells: Option<super::cells::WebCells>,
    /// The persona facets of the catalogue last read by `indexCatalog`, applied by the
    /// `setItemRows` that installs its rows (they never cross to JavaScript).
    pub(super) catalog_facets: Option<Vec<Vec<String>>>,
}

impl Ranker {
    /// The catalogue as item vectors (`raw`: rows of the item tower's output, `hidden` wide):
    /// the ranking state, no tower to run; facets come with `setItemFacets`.
    pub(super) fn install_item_rows(&mut self, raw: Vec<f32>, hidden: usize) {
        self.facets.clear();
        self.model.facets = None;
        let mut state = RankingState::from_item_rows(
            &self.model,
            raw,
            hidden,
            self.config.items.text_dim,
            &self.device,
        );
        state.history_select = self.history_select;
        state.recent = self.recent;
        self.state = Some(state);
    }

    /// Rebuilds the model's facet table from the catalog's facets and the muted ones.
    pub(super) fn apply_facets(&mut self) {
        self.model.set_item_facets(&self.facets, &self.muted);
    }

    /// Lifts the installed rows the model never trained on by their popularity figures (one
    /// per row of `ids`), against `p_max` where the rows are candidates of a larger catalogue;
    /// `missing` is the error when no rows are installed.
    pub(super) fn lift_by_popularity(
        &mut self,
        popularity: &[f32],
        ids: &[String],
        p_max: Option<f32>,
        missing: &str,
    ) -> Result<(), JsError> {
        let is_new = self.config.new_item_rows(ids, &self.items);
        let lift = self.config.new_items.popularity;
        let Some(state) = &mut self.state else {
            return Err(JsError::new(missing));
        };
        state
            .lift_new_items(lift, &is_new, popularity, p_max)
            .map_err(js_error)
    }

    pub(super) fn state(&self, what: &str) -> Result<&RankingState, JsError> {
        self.state
            .as_ref()
            .ok_or_else(|| JsError::new(&format!("call setTextVectors before {what}")))
    }
}

#[wasm_bindgen]
impl Ranker {
    /// Loads the recommender of a bundle: `manifest` is `manifest.json`'s bytes, `files` maps
    /// the recommender's file names (weights, items) to their bytes. Sizes and sha256 are
    /// checked against the manifest, tensor shapes against its config.
    pub async fn load(
        manifest: Uint8Array,
        files: Object,
        backend: String,
    ) -> Result<Ranker, JsError> {
        let manifest =
            Manifest::from_json(&manifest.to_vec(), "manifest.json").map_err(js_error)?;
        let RecommenderFiles {
            entry,
            weights,
            items,
        } = RecommenderFiles::from_manifest(&manifest, file_reader(&files)).map_err(js_error)?;
        let (device, backend, backend_reason) = init_device(&backend).await?;
        let model = Recommender::from_safetensors(&entry.config, weights, &device, &entry.weights)
            .map_err(js_error)?;
        // ID mode ignores texts: its catalog is the model's own rows, ready at once.
        let state = (entry.config.items.mode == ItemMode::Id).then(|| {
            RankingState::without_text(&model, items.len(), entry.config.items.text_dim, &device)
        });
        Ok(Ranker {
            model,
            config: entry.config,
            items,
            state,
            index: None,
            cells: None,
            catalog_facets: None,
            facets: Vec::new(),
            muted: Vec::new(),
            history_select: HistorySelect::Last,
            recent: 20,
            device,
            backend,
            backend_reason,
        })
    }

    /// The item ids of the model's rows (the order `setTextVectors` expects).
    #[wasm_bindgen(getter)]
    pub fn items(&self) -> Vec<String> {
        self.items.clone()
    }

    /// Which of a catalogue's `ids` this model never trained on (ids outside its items, or held
    /// out of its training), in their order: what a "new arrivals" shelf ranks. None for a
    /// model with ID rows, which ranks only its own items.
    #[wasm_bindgen(js_name = newItemsOf)]
    pub fn new_items_of(&self, ids: Vec<String>) -> Vec<String> {
        self.config.new_item_ids(&ids, &self.items)
    }

    /// The installed catalogue's popularity figures, one per row in the order of `ids` (its
    /// items; NaN where an item has none): the items this model never trained on are lifted
    /// by them as the bundle's `new_items.popularity` says. Call after the catalogue is
    /// installed; installing another clears the lift.
    #[wasm_bindgen(js_name = setItemPopularity)]
    pub fn set_item_popularity(
        &mut self,
        popularity: Float32Array,
        ids: Vec<String>,
    ) -> Result<(), JsError> {
        self.lift_by_popularity(
            &popularity.to_vec(),
            &ids,
            None,
            "setItemPopularity: no catalogue installed",
        )
    }

    /// `"inductive"`, `"transductive"` or `"id"`.
    #[wasm_bindgen(getter)]
    pub fn mode(&self) -> String {
        format!("{:?}", self.config.items.mode).to_lowercase()
    }

    /// Width of the text vectors the model takes (the encoder's width).
    #[wasm_bindgen(getter, js_name = textDim)]
    pub fn text_dim(&self) -> usize {
        self.config.items.text_dim
    }

    /// Whether the model reads behaviour types (event-type embedding or DUMN): then
    /// `recommend` takes them, and dislikes belong in the history.
    #[wasm_bindgen(getter, js_name = readsEventTypes)]
    pub fn reads_event_types(&self) -> bool {
        self.config.signals.kinds || self.config.signals.memory_slots > 0
    }

    /// Whether the model reads the request's scene (hour, page type, device class).
    #[wasm_bindgen(getter, js_name = readsContext)]
    pub fn reads_context(&self) -> bool {
        self.config.signals.context
    }

    /// The facet vocabulary of the model's persona input (empty: the model has none).
    #[wasm_bindgen(getter, js_name = personaFacets)]
    pub fn persona_facets(&self) -> Vec<String> {
        self.config
            .signals
            .persona
            .as_ref()
            .map_or_else(Vec::new, |v| v.facets.clone())
    }

    /// The persona facets of the catalog's items, row by row as in `setTextVectors` (an array
    /// of arrays of names, from `catalogTexts`); names outside the model's vocabulary are
    /// ignored. Without them (e.g. `indexVectors`), the persona input stays empty.
    #[wasm_bindgen(js_name = setItemFacets)]
    pub fn set_item_facets(&mut self, facets: js_sys::Array) -> Result<(), JsError> {
        let rows: Vec<Vec<String>> = facets
            .iter()
            .map(|row| {
                js_sys::Array::from(&row)
                    .iter()
                    .map(|f| f.as_string().unwrap_or_default())
                    .collect()
            })
            .collect();
        self.facets = rows;
        self.apply_facets();
        Ok(())
    }

    /// Persona facets the visitor removed ("your taste" panel): they leave the persona input.
    #[wasm_bindgen(js_name = setMutedFacets)]
    pub fn set_muted_facets(&mut self, muted: Vec<String>) {
        if muted != self.muted {
            self.muted = muted;
            self.apply_facets();
        }
    }

    /// The persona the model reads after `history` (catalog rows, oldest first; `kinds` as in
    /// `recommend`): the weight of each facet of `personaFacets` at the newest read event —
    /// each event's type weight × its CLSD confidence, decayed per later event, unit L1 norm
    /// (negative: counted against, e.g. by dislikes). Empty for a model without persona input.
    pub async fn persona(
        &self,
        history: Vec<u32>,
        kinds: Option<Uint8Array>,
    ) -> Result<Float32Array, JsError> {
        let state = self.state("persona")?;
        let history: Vec<usize> = history.into_iter().map(|h| h as usize).collect();
        let kinds = event_kinds(kinds, history.len())?;
        let p = state
            .persona_with(&self.model, &history, &kinds, &Async)
            .await
            .map_err(js_error)?;
        Ok(Float32Array::from(&p[..]))
    }

    /// Whether history events are weighted by CLSD confidence.
    #[wasm_bindgen(getter, js_name = usesClsd)]
    pub fn uses_clsd(&self) -> bool {
        self.config.signals.clsd.is_some()
    }

    /// The longest history the model looks at.
    #[wasm_bindgen(getter, js_name = maxLen)]
    pub fn max_len(&self) -> usize {
        self.config.sequence.max_len
    }

    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    #[wasm_bindgen(getter, js_name = backendReason)]
    pub fn backend_reason(&self) -> String {
        self.backend_reason.clone()
    }

    /// The catalog's text vectors, row-major `items × textDim`, in the order of `items` (an
    /// inductive model takes any catalog: then the rows are that catalog's items, and `ids`
    /// names them, so that the items the model never trained on are placed among the trained
    /// ones by the bundle's neighbour mix).
    #[wasm_bindgen(js_name = setTextVectors)]
    pub fn set_text_vectors(
        &mut self,
        vectors: Float32Array,
        ids: Option<Vec<String>>,
    ) -> Result<(), JsError> {
        let dim = self.config.items.text_dim;
        let flat = vectors.to_vec();
        if flat.is_empty() || !flat.len().is_multiple_of(dim) {
            return Err(JsError::new(&format!(
                "text vectors: {} floats is not a whole number of {dim}-wide rows",
                flat.len()
            )));
        }
        let n = flat.len() / dim;
        if self.config.items.mode != ItemMode::Inductive && n != self.items.len() {
            return Err(JsError::new(&format!(
                "text vectors: {n} rows, but this {} model ranks its {} items",
                self.mode(),
                self.items.len()
            )));
        }
        if flat.iter().any(|v| !v.is_finite()) {
            return Err(JsError::new("text vectors: NaN or infinite values"));
        }
        // A new catalog: its facets come with `setItemFacets`.
        self.facets.clear();
        self.model.facets = None;
        let is_new = match ids {
            Some(ids) if ids.len() != n => {
                return Err(JsError::new(&format!(
                    "text vectors: {n} rows for {} ids",
                    ids.len()
                )));
            }
            Some(ids) => self.config.new_item_rows(&ids, &self.items),
            None => Vec::new(),
        };
        let mut state =
            RankingState::from_rows_with_new(&self.model, flat, dim, &self.device, &is_new);
        state.history_select = self.history_select;
        state.recent = self.recent;
        self.state = Some(state);
        Ok(())
    }

    /// Which events of a history longer than the model's cap the encoder reads: `"last"` (the
    /// newest; the default) or `"relevant"` (the newest `recent` plus the older events whose
    /// texts are nearest to them; `ranklet eval --history-select relevant` measures it).
    #[wasm_bindgen(js_name = setHistorySelect)]
    pub fn set_history_select(&mut self, how: &str, recent: usize) -> Result<(), JsError> {
        self.history_select = how.parse().map_err(|e: String| JsError::new(&e))?;
        self.recent = recent;
        if let Some(state) = &mut self.state {
            state.history_select = self.history_select;
            state.recent = recent;
        }
        Ok(())
    }

    /// The `k` best rows after `history` (rows, oldest first) as
    /// `[{item, score, because: [rows]}]`; history rows are left out when `excludeSeen`.
    /// `queries` (optional, `q × textDim` text vectors of search queries from the bundle's
    /// encoder) are history events too: row `items + j` is query `j`; they are never
    /// recommended, and a `because` row ≥ `items` names a query. Each query also adds
    /// `queryWeights[j] · cos(query, item text) / τ` to every item's score: the sequence model
    /// was not trained on queries, while the encoder's text space matches a query to the items
    /// it describes (“space” → Lost in Space, 2001: A Space Odyssey…). `avoid` (optional
    /// catalog rows the visitor marked "not interested") pushes their neighbours down at once:
    /// every item loses `rank::AVOID_WEIGHT · max over avoided d of cos(text d, item text) / τ`.
    /// `because` (default 2): reasons per item, the events whose removal lowers its score the
    /// most (the model's leave-one-out attribution, one batched encoder pass); 0 skips them.
    #[allow(clippy::too_many_arguments)]
    pub async fn recommend(
        &self,
        history: Vec<u32>,
        k: usize,
        exclude_seen: bool,
        queries: Option<Float32Array>,
        query_weights: Option<Float32Array>,
        avoid: Option<Uint32Array>,
        kinds: Option<Uint8Array>,
        context: Option<Uint8Array>,
        calibrate: Option<f64>,
        because: Option<u32>,
    ) -> Result<Array, JsError> {
        let state = self.state("recommend")?;
        let queries = queries.map(|q| q.to_vec()).unwrap_or_default();
        let query_weights = query_weights.map(|w| w.to_vec()).unwrap_or_default();
        let avoid: Vec<usize> = avoid
            .map(|a| a.to_vec())
            .unwrap_or_default()
            .into_iter()
            .map(|a| a as usize)
            .collect();
        let history: Vec<usize> = history.into_iter().map(|h| h as usize).collect();
        let kinds = event_kinds(kinds, history.len())?;
        let recs = state
            .recommend_async(
                &self.model,
                &RecommendRequest {
                    history: &history,
                    kinds: &kinds,
                    context: scene_context(context.map(|c| c.to_vec()))?,
                    queries: &queries,
                    query_weights: &query_weights,
                    avoid: &avoid,
                    k,
                    exclude_seen,
                    because: because.map_or(2, |b| b as usize),
                    // The catalogue's facets (from `setItemFacets`/`indexCatalog`), as
                    // `ranklet recommend --calibrate` calibrates.
                    calibration: calibrate.map(|lambda| Calibration::new(&self.facets, lambda)),
                    ..RecommendRequest::default()
                },
            )
            .await
            .map_err(js_error)?;
        let out = Array::new();
        for r in recs {
            let o = Object::new();
            let set = |k: &str, v: JsValue| Reflect::set(&o, &k.into(), &v).map(|_| ());
            set("item", (r.item as u32).into()).map_err(|_| JsError::new("reflect"))?;
            set("score", r.score.into()).map_err(|_| JsError::new("reflect"))?;
            let because: Array = r.because.iter().map(|&b| JsValue::from(b as u32)).collect();
            set("because", because.into()).map_err(|_| JsError::new("reflect"))?;
            out.push(&o);
        }
        Ok(out)
    }
}

/// Behaviour types (`EventKind` numbers: 0 click, 1 view, 2 cart, 3 purchase, 4 like, 5 dislike,
/// 6 search), one per history event; none: all clicks.
pub(super) fn event_kinds(
    kinds: Option<Uint8Array>,
    events: usize,
) -> Result<Vec<EventKind>, JsError> {
    let Some(k) = kinds.map(|k| k.to_vec()).filter(|k| !k.is_empty()) else {
        return Ok(Vec::new());
    };
    if k.len() != events {
        return Err(JsError::new(&format!(
            "{} event types for {events} history events",
            k.len()
        )));
    }
    k.iter()
        .map(|&v| {
            EventKind::ALL
                .get(usize::from(v))
                .copied()
                .ok_or_else(|| JsError::new(&format!("event type {v} is not one of 0..=6")))
        })
        .collect()
}

/// The request's scene from `[hour, page, device]` (255: unknown; indexes into
/// `PAGE_TYPES` / `DEVICE_CLASSES`).
pub(super) fn scene_context(raw: Option<Vec<u8>>) -> Result<SceneContext, JsError> {
    let Some(raw) = raw else {
        return Ok(SceneContext::default());
    };
    if raw.len() != 3 {
        return Err(JsError::new(&format!(
            "context: {} values, expected [hour, page, device]",
            raw.len()
        )));
    }
    let part = |v: u8, n: usize, what: &str| -> Result<Option<u8>, JsError> {
        match v {
            255 => Ok(None),
            v if usize::from(v) < n => Ok(Some(v)),
            v => Err(JsError::new(&format!(
                "context: {what} {v} is out of range"
            ))),
        }
    };
    Ok(SceneContext {
        hour: part(raw[0], 24, "hour")?,
        page: part(raw[1], PAGE_TYPES.len(), "page type")?,
        device: part(raw[2], DEVICE_CLASSES.len(), "device class")?,
    })
}
