//! `ranklet index`: every catalogue item's text through the bundle's encoder and the
//! recommender's item tower, quantised to int8 and written as an index folder.
//!
//! Resumable: the items to embed are cut into chunks, and each chunk's rows are committed to
//! `OUT/.partial/` atomically as they are done; a killed run started again takes the chunks
//! whose items are unchanged and embeds the rest. The index's own files are written last
//! (the manifest after the files it names), then the partial folder is removed. With
//! `--update`, items whose id and text are already in the index at `OUT` keep their rows
//! (built with the same model, or refused), new and changed items are embedded, and items no
//! longer in the catalogue are dropped. Items the model never trained on are placed among the
//! trained ones as the recommend path places them ([`crate::index::new_items`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;

use crate::bundle::{read_model_dir, read_recommender_dir};
use crate::contracts::sha256_hex;
use crate::data::{Dataset, ItemText, read_catalog_objects};
use crate::error::{Error, Result};
use crate::fsio::write_atomic;
use crate::index::folder::{CellLayout, IndexContent, bundle_ref, read_index_dir, write_index};
use crate::index::format::{INDEX_MANIFEST, Rows, text_hash};
use crate::index::new_items::NewItemPlacement;
use crate::index::quantise::quantise_rows;
use crate::rec::{ItemMode, Recommender};
use crate::text::TextEmbedder;

/// Items per committed chunk of a run (what a kill can lose at most).
pub const CHUNK_ITEMS: usize = 1024;
pub(crate) const PARTIAL_DIR: &str = ".partial";

/// Where the catalogue comes from.
#[derive(Debug, Clone)]
pub enum CatalogSource {
    /// A catalogue file (JSON array or JSONL).
    File(PathBuf),
    /// A dataset folder (its items).
    Data(PathBuf),
}

/// One `ranklet index` run.
#[derive(Debug, Clone)]
pub struct IndexJob {
    /// The trained bundle (encoder + recommender).
    pub model: PathBuf,
    pub catalog: CatalogSource,
    pub out: PathBuf,
    /// Keep the rows of unchanged items of the index at `out`.
    pub update: bool,
    /// Texts per encoder batch.
    pub batch: usize,
    /// Cut the index into shards (`None`: one file the browser fetches whole).
    pub cells: Option<CellLayout>,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexProgress {
    /// Items embedded (or taken from a killed run's chunks) out of those to embed.
    Embedding { done: usize, total: usize },
    /// Clustering the rows into cells (a partitioned index).
    Partitioning { items: usize },
}

/// A catalogue as the index reads it: the items' texts, and (for the shards of a partitioned
/// index) what the shelf shows of each and a popularity to pick the popular shard by.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub origin: String,
    pub items: Vec<ItemText>,
    /// Each item's catalogue object without its description.
    pub display: Vec<serde_json::Value>,
    /// Higher: more popular.
    pub popularity: Vec<f64>,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexOutcome {
    pub items: usize,
    /// Items embedded by this run.
    pub embedded: usize,
    /// Items whose rows came from the earlier index (`--update`).
    pub reused: usize,
    /// Items whose rows came from a killed run's committed chunks.
    pub resumed: usize,
    /// Items of the earlier index no longer in the catalogue.
    pub dropped: usize,
    /// Items the model never trained on whose rows were mixed with their trained neighbours'.
    pub placed_new: usize,
    /// Bytes of the index's files.
    pub bytes: u64,
}

/// The catalogue's items (id, encoder text, shelf data, popularity), bad rows refused naming
/// their line. Popularity: a catalogue's numeric `popularity` field where items have one, else
/// its order (list best sellers first); a dataset's interactions, each user's last two (the
/// validation and test events) left out.
pub fn read_items(source: &CatalogSource) -> Result<Catalogue> {
    match source {
        CatalogSource::File(path) => {
            let origin = path.display().to_string();
            let bytes = std::fs::read(path).map_err(|e| Error::io(&origin, e))?;
            let rows = read_catalog_objects(&bytes, &origin)?;
            let n = rows.len();
            let mut items = Vec::with_capacity(n);
            let mut display = Vec::with_capacity(n);
            let mut popularity = Vec::with_capacity(n);
            for (r, (item, mut object)) in rows.into_iter().enumerate() {
                let pop = object.get("popularity").and_then(serde_json::Value::as_f64);
                popularity.push(pop.map_or(-(r as f64) - 1e12, |p| p));
                object.remove("text");
                display.push(serde_json::Value::Object(object));
                items.push(ItemText::from(item));
            }
            Ok(Catalogue {
                origin,
                items,
                display,
                popularity,
            })
        }
        CatalogSource::Data(dir) => {
            let data = Dataset::read_dir(dir)?;
            let mut popularity = vec![0f64; data.items.len()];
            for seq in &data.sequences {
                for &i in &seq[..seq.len().saturating_sub(2)] {
                    popularity[i] += 1.0;
                }
            }
            let display = data
                .items
                .iter()
                .map(|i| serde_json::json!({"id": i.id, "title": i.text, "genres": i.facets}))
                .collect();
            Ok(Catalogue {
                origin: dir.display().to_string(),
                items: data.items,
                display,
                popularity,
            })
        }
    }
}

fn chunk_path(dir: &Path, key: &str) -> PathBuf {
    dir.join(PARTIAL_DIR)
        .join(format!("chunk-{key}.safetensors"))
}

/// The chunk file of a killed run, if it holds exactly these items' rows of this width.
fn read_chunk(path: &Path, hashes: &[u64], dim: usize) -> Option<Rows> {
    let bytes = std::fs::read(path).ok()?;
    let rows = Rows::from_bytes(&bytes, hashes.len(), dim, "chunk").ok()?;
    (rows.hashes == hashes).then_some(rows)
}

fn write_chunk(path: &Path, rows: &Rows, dim: usize) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent.display(), e))?;
    }
    write_atomic(path, &rows.to_bytes(dim))
}

/// The encoder's vectors of `texts` (row-major), in batches of `batch`.
fn embed_texts(embedder: &TextEmbedder, texts: &[&str], batch: usize) -> Result<Vec<f32>> {
    let mut text = Vec::with_capacity(texts.len() * embedder.dim());
    for part in texts.chunks(batch.max(1)) {
        for v in embedder.embed(part)? {
            if v.iter().any(|x| !x.is_finite()) {
                return Err(Error::Backend(
                    "the encoder produced non-finite values".into(),
                ));
            }
            text.extend(v);
        }
    }
    Ok(text)
}

/// The item tower's output for catalogue rows `rows` (their texts `texts`), new items placed
/// by `placement`, quantised: encoder in batches of `batch`, then the tower, on `device`.
fn embed_rows(
    embedder: &TextEmbedder,
    model: &Recommender,
    placement: Option<&NewItemPlacement>,
    (rows, texts): (&[usize], &[&str]),
    batch: usize,
    device: &Device,
) -> Result<(Vec<i8>, Vec<f32>)> {
    let text = embed_texts(embedder, texts, batch)?;
    let t = Tensor::<2>::from_data(
        TensorData::new(text.clone(), [texts.len(), embedder.dim()]),
        device,
    );
    let mut raw = model.item_vectors(t).raw;
    if let Some(placement) = placement {
        raw = placement.place(raw, rows, &text)?;
    }
    let dim = raw.dims()[1];
    let flat: Vec<f32> = raw
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| Error::Backend(format!("item vectors: {e:?}")))?;
    if flat.iter().any(|x| !x.is_finite()) {
        return Err(Error::Backend(
            "the item tower produced non-finite values".into(),
        ));
    }
    Ok(quantise_rows(&flat, dim))
}

/// Builds (or updates) the index of `job` on `device`; `progress(done, total)` follows the items
/// embedded by this run.
pub fn build_index(
    job: &IndexJob,
    device: &Device,
    mut progress: impl FnMut(IndexProgress),
) -> Result<IndexOutcome> {
    let bundle = job.model.display().to_string();
    let model_ref = bundle_ref(&job.model)?;
    let rec = read_recommender_dir(&job.model)?;
    let config = rec.entry.config.clone();
    let Catalogue {
        origin,
        mut items,
        display,
        popularity,
    } = read_items(&job.catalog)?;
    if job.cells.is_some() && config.items.mode != ItemMode::Inductive {
        return Err(Error::bad_input(
            &bundle,
            "--partitions needs an inductive model (one that ranks any catalogue by its texts); \
             this one ranks its own items",
        ));
    }
    if config.items.mode != ItemMode::Inductive {
        // ID rows: the catalogue must be the model's own, in its row order.
        items = Dataset::catalogue_in_item_order(&origin, items, &rec.items, &bundle)?;
    }
    let files = read_model_dir(&job.model)?;
    let origin_weights = job.model.join(&rec.entry.weights).display().to_string();
    let model = Recommender::from_safetensors(&config, rec.weights, device, &origin_weights)?;
    let embedder = TextEmbedder::from_files(&files, device)?;
    let dim = config.sequence.hidden;
    let hashes: Vec<u64> = items.iter().map(|i| text_hash(&i.text)).collect();
    // Items the model never trained on are placed among the catalogue's trained ones, as the
    // recommend path places them (the trained rows' texts are embedded once for it).
    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    let mut placement = NewItemPlacement::plan(
        &model,
        &items,
        &hashes,
        config.new_item_rows(&ids, &rec.items),
    );
    let new_items = placement.as_ref().map(|p| p.record.clone());
    let new_items_count = new_items.as_ref().map_or(0, |n| n.rows);
    let is_new = |r: usize| placement.as_ref().is_some_and(|p| p.is_new[r]);

    // Rows an earlier index of the same model holds for unchanged items (--update).
    let mut earlier: HashMap<(String, u64), (Vec<i8>, f32)> = HashMap::new();
    let mut dropped = 0;
    // Whether the earlier index's rows of new items were placed as this run places them.
    let mut new_rows_current = true;
    if job.update && job.out.join(INDEX_MANIFEST).exists() {
        let index = read_index_dir(&job.out)?;
        index.check_model(&model_ref.manifest_sha256, &bundle)?;
        new_rows_current = index.manifest.new_items == new_items;
        let kept: std::collections::HashSet<&str> = items.iter().map(|i| i.id.as_str()).collect();
        dropped = index
            .ids
            .iter()
            .filter(|id| !kept.contains(id.as_str()))
            .count();
        for (r, id) in index.ids.into_iter().enumerate() {
            let row = index.vectors[r * dim..(r + 1) * dim].to_vec();
            earlier.insert((id, index.hashes[r]), (row, index.scales[r]));
        }
    }
    let mut vectors = vec![0i8; items.len() * dim];
    let mut scales = vec![0f32; items.len()];
    let mut todo: Vec<usize> = Vec::new();
    for (r, item) in items.iter().enumerate() {
        match earlier
            .get(&(item.id.clone(), hashes[r]))
            .filter(|_| new_rows_current || !is_new(r))
        {
            Some((row, scale)) => {
                vectors[r * dim..(r + 1) * dim].copy_from_slice(row);
                scales[r] = *scale;
            }
            None => todo.push(r),
        }
    }
    let reused = items.len() - todo.len();
    // The trained rows' texts are embedded (once) only when a new item's row is.
    if let Some(p) = placement.as_mut()
        && todo.iter().any(|&r| p.is_new[r])
    {
        p.embed_trained(
            &model,
            |rows| {
                let texts: Vec<&str> = rows.iter().map(|&r| items[r].text.as_str()).collect();
                embed_texts(&embedder, &texts, job.batch)
            },
            device,
        )?;
    }
    // The rest in committed chunks, each named by the model and its items' texts.
    let (mut embedded, mut resumed) = (0, 0);
    let total = todo.len();
    progress(IndexProgress::Embedding { done: 0, total });
    let mut committed = Vec::new();
    for chunk in todo.chunks(CHUNK_ITEMS) {
        let chunk_hashes: Vec<u64> = chunk.iter().map(|&r| hashes[r]).collect();
        let placed = new_items.as_ref().map_or("", |n| n.trained_sha256.as_str());
        let key_src = format!(
            "{} {dim} {placed} {chunk_hashes:?}",
            model_ref.manifest_sha256
        );
        let key = sha256_hex(key_src.as_bytes())[..24].to_string();
        let path = chunk_path(&job.out, &key);
        let rows = match read_chunk(&path, &chunk_hashes, dim) {
            Some(done) => {
                resumed += chunk.len();
                done
            }
            None => {
                let texts: Vec<&str> = chunk.iter().map(|&r| items[r].text.as_str()).collect();
                let (q, s) = embed_rows(
                    &embedder,
                    &model,
                    placement.as_ref(),
                    (chunk, &texts),
                    job.batch,
                    device,
                )?;
                let done = Rows {
                    hashes: chunk_hashes,
                    vectors: q,
                    scales: s,
                };
                write_chunk(&path, &done, dim)?;
                embedded += chunk.len();
                done
            }
        };
        for (k, &r) in chunk.iter().enumerate() {
            vectors[r * dim..(r + 1) * dim].copy_from_slice(&rows.vectors[k * dim..(k + 1) * dim]);
            scales[r] = rows.scales[k];
        }
        committed.push(path);
        progress(IndexProgress::Embedding {
            done: embedded + resumed,
            total,
        });
    }

    let rows = Rows {
        vectors,
        scales,
        hashes,
    };
    if job.cells.is_some() {
        progress(IndexProgress::Partitioning { items: ids.len() });
    }
    let written = write_index(
        &job.out,
        IndexContent {
            model: model_ref,
            ids: &ids,
            rows: &rows,
            dim,
            display: &display,
            popularity: &popularity,
            new_items,
        },
        job.cells.as_ref(),
    )?;
    let _ = std::fs::remove_dir_all(job.out.join(PARTIAL_DIR));
    Ok(IndexOutcome {
        items: items.len(),
        embedded,
        reused,
        resumed,
        dropped,
        placed_new: new_items_count,
        bytes: written,
    })
}
