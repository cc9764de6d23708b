//! `ranklet index`: every catalogue item's text through the bundle's encoder and the
//! recommender's item tower, quantised to int8 and written as an index folder.
//!
//! Resumable: the items to embed are cut into chunks, and each chunk's rows are committed to
//! `OUT/.partial/` atomically as they are done; a killed run started again takes the chunks
//! whose items are unchanged and embeds the rest. The index's own files are written last
//! (the manifest after the files it names), then the partial folder is removed. With
//! `--update`, items whose id and text are already in the index at `OUT` keep their rows
//! (built with the same model, or refused), new and changed items are embedded, and items no
//! longer in the catalogue are dropped.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use burn::prelude::*;

use crate::bundle::manifest::MANIFEST_FILE;
use crate::bundle::{Manifest, read_model_dir, read_recommender_dir};
use crate::contracts::sha256_hex;
use crate::data::{Dataset, ItemText, read_catalog_objects};
use crate::error::{Error, Result};
use crate::fsio::write_atomic;
use crate::index::format::{
    IDS_FILE, INDEX_FORMAT, INDEX_FORMAT_VERSION, INDEX_MANIFEST, IndexManifest, ItemIndex,
    ModelRef, PARTITIONED_FORMAT_VERSION, Rows, VECTORS_FILE, text_hash,
};
use crate::index::partition::{PartitionConfig, partition, unit_rows};
use crate::index::quantise::{dequantise_rows, quantise_rows};
use crate::index::shard::{
    CENTROIDS_FILE, Partitions, SHARD_DIR, Shard, ShardRef, centroids_to_bytes,
};
use crate::rec::{ItemMode, Recommender};
use crate::text::TextEmbedder;

/// Items per committed chunk of a run (what a kill can lose at most).
pub const CHUNK_ITEMS: usize = 1024;
const PARTIAL_DIR: &str = ".partial";

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

/// How a partitioned index is cut and probed.
#[derive(Debug, Clone, PartialEq)]
pub struct CellLayout {
    pub partition: PartitionConfig,
    /// Cells ranked per recommendation.
    pub nprobe: usize,
    /// Other cells fetched with them (fixed count; never ranked).
    pub decoys: usize,
    /// Items in the popular shard.
    pub popular: usize,
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

/// The item tower's output for `texts`, quantised: encoder in batches of `batch`, then the
/// tower, on `device`.
fn embed_rows(
    embedder: &TextEmbedder,
    model: &Recommender,
    texts: &[&str],
    batch: usize,
    device: &Device,
) -> Result<(Vec<i8>, Vec<f32>)> {
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
    let t = Tensor::<2>::from_data(TensorData::new(text, [texts.len(), embedder.dim()]), device);
    let raw = model.item_vectors(t).raw;
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

/// The bundle at `model` as an index names it: its name and its `manifest.json`'s sha256.
pub fn bundle_ref(model: &Path) -> Result<ModelRef> {
    let path = model.join(MANIFEST_FILE);
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::MissingModelFile {
            file: path.display().to_string(),
            hint: Some("not a ranklet bundle; `ranklet train --out DIR` writes one".into()),
        },
        _ => Error::io(path.display(), e),
    })?;
    let manifest = Manifest::from_json(&bytes, &path.display().to_string())?;
    Ok(ModelRef {
        name: manifest.name,
        manifest_sha256: sha256_hex(&bytes),
    })
}

/// The index folder `index`, checked file by file and refused, by name, unless it was built
/// with the bundle at `model`.
pub fn read_index_of(model: &Path, index: &Path) -> Result<ItemIndex> {
    let items = read_index_dir(index)?;
    items.check_model(
        &bundle_ref(model)?.manifest_sha256,
        &model.display().to_string(),
    )?;
    Ok(items)
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

    // Rows an earlier index of the same model holds for unchanged items (--update).
    let mut earlier: HashMap<(String, u64), (Vec<i8>, f32)> = HashMap::new();
    let mut dropped = 0;
    if job.update && job.out.join(INDEX_MANIFEST).exists() {
        let index = read_index_dir(&job.out)?;
        index.check_model(&model_ref.manifest_sha256, &bundle)?;
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
        match earlier.get(&(item.id.clone(), hashes[r])) {
            Some((row, scale)) => {
                vectors[r * dim..(r + 1) * dim].copy_from_slice(row);
                scales[r] = *scale;
            }
            None => todo.push(r),
        }
    }
    let reused = items.len() - todo.len();
    // The rest in committed chunks, each named by the model and its items' texts.
    let (mut embedded, mut resumed) = (0, 0);
    let total = todo.len();
    progress(IndexProgress::Embedding { done: 0, total });
    let mut committed = Vec::new();
    for chunk in todo.chunks(CHUNK_ITEMS) {
        let chunk_hashes: Vec<u64> = chunk.iter().map(|&r| hashes[r]).collect();
        let key_src = format!("{} {dim} {chunk_hashes:?}", model_ref.manifest_sha256);
        let key = sha256_hex(key_src.as_bytes())[..24].to_string();
        let path = chunk_path(&job.out, &key);
        let rows = match read_chunk(&path, &chunk_hashes, dim) {
            Some(done) => {
                resumed += chunk.len();
                done
            }
            None => {
                let texts: Vec<&str> = chunk.iter().map(|&r| items[r].text.as_str()).collect();
                let (q, s) = embed_rows(&embedder, &model, &texts, job.batch, device)?;
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

    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    let rows = Rows {
        vectors,
        scales,
        hashes,
    };
    let written = write_index(
        &job.out,
        IndexContent {
            model: model_ref,
            ids: &ids,
            rows: &rows,
            dim,
            display: &display,
            popularity: &popularity,
        },
        job.cells.as_ref(),
        &mut progress,
    )?;
    let _ = std::fs::remove_dir_all(job.out.join(PARTIAL_DIR));
    Ok(IndexOutcome {
        items: items.len(),
        embedded,
        reused,
        resumed,
        dropped,
        bytes: written,
    })
}

/// What an index folder holds: the model it was built with, and per item its id, quantised
/// row, shelf data and popularity.
#[derive(Debug, Clone)]
pub struct IndexContent<'a> {
    pub model: ModelRef,
    pub ids: &'a [&'a str],
    pub rows: &'a Rows,
    pub dim: usize,
    /// Each item's catalogue object (shards carry it); unused without cells.
    pub display: &'a [serde_json::Value],
    /// Higher: more popular (the popular shard); unused without cells.
    pub popularity: &'a [f64],
}

/// Writes an index folder at `out` (cut into `cells` when given): every file atomically, the
/// manifest last, then the files of an earlier layout removed. Returns the bytes written.
pub fn write_index(
    out: &Path,
    content: IndexContent,
    cells: Option<&CellLayout>,
    progress: &mut impl FnMut(IndexProgress),
) -> Result<u64> {
    let IndexContent {
        model,
        ids,
        rows,
        dim,
        display,
        popularity,
    } = content;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out.display(), e))?;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let partitions = match cells {
        None => {
            let ids_bytes = serde_json::to_vec(&ids).expect("ids serialise");
            files.push((IDS_FILE.into(), ids_bytes));
            files.push((VECTORS_FILE.into(), rows.to_bytes(dim)));
            None
        }
        Some(layout) => {
            progress(IndexProgress::Partitioning { items: ids.len() });
            Some(partitioned_files(
                ids, rows, display, popularity, dim, layout, &mut files,
            ))
        }
    };
    let mut entries = BTreeMap::new();
    let mut bytes = 0u64;
    for (name, data) in &files {
        let path = out.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent.display(), e))?;
        }
        write_atomic(&path, data)?;
        entries.insert(name.clone(), Manifest::entry_for(data));
        bytes += data.len() as u64;
    }
    let manifest = IndexManifest {
        format: INDEX_FORMAT.into(),
        format_version: if partitions.is_some() {
            PARTITIONED_FORMAT_VERSION
        } else {
            INDEX_FORMAT_VERSION
        },
        model,
        items: ids.len(),
        dim,
        dtype: "int8".into(),
        files: entries,
        partitions,
    };
    let manifest_json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    write_atomic(&out.join(INDEX_MANIFEST), &manifest_json)?;
    remove_unlisted(out, &manifest);
    Ok(bytes + manifest_json.len() as u64)
}

/// The files of a partitioned index (centroids, one shard per cell, the popular shard), pushed
/// to `files`, and the manifest's `partitions` entry naming them.
#[allow(clippy::too_many_arguments)]
fn partitioned_files(
    ids: &[&str],
    rows: &Rows,
    display: &[serde_json::Value],
    popularity: &[f64],
    dim: usize,
    layout: &CellLayout,
    files: &mut Vec<(String, Vec<u8>)>,
) -> Partitions {
    let unit = unit_rows(&dequantise_rows(&rows.vectors, &rows.scales, dim), dim);
    let cells = partition(&unit, dim, &layout.partition);
    let shard_of = |members: &[usize]| Shard {
        ids: members.iter().map(|&i| ids[i].to_string()).collect(),
        items: members.iter().map(|&i| display[i].clone()).collect(),
        rows: Rows {
            vectors: members
                .iter()
                .flat_map(|&i| rows.vectors[i * dim..(i + 1) * dim].iter().copied())
                .collect(),
            scales: members.iter().map(|&i| rows.scales[i]).collect(),
            hashes: members.iter().map(|&i| rows.hashes[i]).collect(),
        },
    };
    // Content-addressed names: a host can serve shards as immutable, and an update rewrites
    // only the shards whose content changed.
    let mut push = |stem: String, members: &[usize]| -> ShardRef {
        let bytes = shard_of(members).to_bytes(dim);
        let file = format!(
            "{SHARD_DIR}/{stem}-{}.safetensors",
            &sha256_hex(&bytes)[..16]
        );
        files.push((file.clone(), bytes));
        ShardRef {
            file,
            items: members.len(),
        }
    };
    let shards: Vec<ShardRef> = cells
        .members
        .iter()
        .enumerate()
        .map(|(c, m)| push(format!("{c:05}"), m))
        .collect();
    let mut by_popularity: Vec<usize> = (0..ids.len()).collect();
    by_popularity.sort_by(|&a, &b| popularity[b].total_cmp(&popularity[a]).then(a.cmp(&b)));
    by_popularity.truncate(layout.popular.clamp(1, ids.len()));
    let popular = push("popular".into(), &by_popularity);
    files.push((
        CENTROIDS_FILE.into(),
        centroids_to_bytes(&cells.centroids, dim),
    ));
    Partitions {
        centroids: CENTROIDS_FILE.into(),
        shards,
        popular,
        nprobe: layout.nprobe,
        decoys: layout.decoys,
        min_shard: layout.partition.min_shard,
    }
}

/// Removes the index files at `out` its manifest no longer lists (an earlier layout's, or
/// shards whose content changed). Best effort: a file left behind is never read.
fn remove_unlisted(out: &Path, manifest: &IndexManifest) {
    for name in [IDS_FILE, VECTORS_FILE, CENTROIDS_FILE] {
        if !manifest.files.contains_key(name) {
            let _ = std::fs::remove_file(out.join(name));
        }
    }
    if let Ok(entries) = std::fs::read_dir(out.join(SHARD_DIR)) {
        for entry in entries.flatten() {
            let name = format!("{SHARD_DIR}/{}", entry.file_name().to_string_lossy());
            if name.ends_with(".safetensors") && !manifest.files.contains_key(&name) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Reads an index folder, every file checked against its manifest.
pub fn read_index_dir(dir: &Path) -> Result<ItemIndex> {
    let path_of = |name: &str| dir.join(name).display().to_string();
    let read = |name: &str| -> Result<Vec<u8>> {
        std::fs::read(dir.join(name)).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::MissingModelFile {
                file: path_of(name),
                hint: (name == INDEX_MANIFEST)
                    .then(|| "not an index folder; `ranklet index --out DIR` writes one".into()),
            },
            _ => Error::io(path_of(name), e),
        })
    };
    let manifest = read(INDEX_MANIFEST)?;
    ItemIndex::from_files(&manifest, &path_of(INDEX_MANIFEST), read).map_err(|e| match e {
        Error::BadModelFile { file, reason } if !file.contains('/') => Error::BadModelFile {
            file: path_of(&file),
            reason,
        },
        e => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{RecommenderEntry, RecommenderFiles, write_bundle};
    use crate::fixtures::{seeded_cpu, small_config, tiny_bert_files};
    use crate::index::shard::Shard;
    use crate::rec::RecDtype;

    /// A bundle of the tiny encoder and an untrained inductive recommender (seeded) over it.
    fn bundle(dir: &Path, seed: u64, device: &Device) {
        let files = tiny_bert_files(3);
        // The tiny encoder's vectors are 16 wide.
        let mut config = small_config(ItemMode::Inductive, 1, 8, 16, (0.0, 0.0), 8);
        config.items.text_dim = 16;
        device.seed(seed);
        let model = Recommender::init(&config, device);
        let rec = RecommenderFiles {
            entry: RecommenderEntry {
                weights: "rec.safetensors".into(),
                items: "items.json".into(),
                config,
            },
            weights: model.to_safetensors_as(RecDtype::F32).unwrap(),
            items: vec!["unused".into()],
        };
        write_bundle(dir, &files, Some(&rec), serde_json::Value::Null).unwrap();
    }

    fn catalog(dir: &Path, items: &[(String, String)]) -> PathBuf {
        let lines: Vec<String> = items
            .iter()
            .map(|(id, title)| serde_json::json!({"id": id, "title": title}).to_string())
            .collect();
        let path = dir.join("catalog.jsonl");
        std::fs::write(&path, lines.join("\n")).unwrap();
        path
    }

    fn titles(n: usize) -> Vec<(String, String)> {
        let words = [
            "red", "blue", "green", "shoe", "lamp", "tea", "mug", "desk", "chair", "cable",
        ];
        (0..n)
            .map(|i| {
                let title = format!(
                    "{} {} {}",
                    words[i % 10],
                    words[(i / 10) % 10],
                    words[(i / 100) % 10]
                );
                (format!("sku-{i}"), title)
            })
            .collect()
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ranklet-index-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The index holds the item tower's output of each item's text (up to int8 rounding), in
    /// catalogue order, and reads back checked; an update embeds only what changed.
    #[test]
    fn index_rows_are_the_towers_output_and_updates_embed_only_changes() {
        let (_seeded, device) = seeded_cpu(1);
        let dir = temp("rows");
        bundle(&dir.join("model"), 4, &device);
        let mut items = titles(40);
        let job = IndexJob {
            model: dir.join("model"),
            catalog: CatalogSource::File(catalog(&dir, &items)),
            out: dir.join("index"),
            update: false,
            batch: 7,
            cells: None,
        };
        let first = build_index(&job, &device, |_| {}).unwrap();
        assert_eq!((first.items, first.embedded, first.reused), (40, 40, 0));
        let index = read_index_dir(&job.out).unwrap();
        assert_eq!(index.ids[3], "sku-3");
        // The same rows as the tower over the encoder's vectors, in f32.
        let files = read_model_dir(&job.model).unwrap();
        let rec = read_recommender_dir(&job.model).unwrap();
        let model =
            Recommender::from_safetensors(&rec.entry.config, rec.weights, &device, "t").unwrap();
        let embedder = TextEmbedder::from_files(&files, &device).unwrap();
        let texts: Vec<&str> = items.iter().map(|(_, t)| t.as_str()).collect();
        let text: Vec<f32> = embedder.embed(&texts).unwrap().concat();
        let exact: Vec<f32> = model
            .item_vectors(Tensor::from_data(TensorData::new(text, [40, 16]), &device))
            .raw
            .into_data()
            .try_to_vec()
            .unwrap();
        let rows = index.rows();
        for (a, b) in rows.chunks(8).zip(exact.chunks(8)) {
            let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!(dot / (norm(a) * norm(b)) > 0.999, "{a:?} vs {b:?}");
        }
        // One text changed, one item new, one removed: two rows embedded, the rest kept.
        items[5].1 = "green tea mug".into();
        items.remove(9);
        items.push(("sku-new".into(), "blue desk lamp".into()));
        let update = IndexJob {
            update: true,
            catalog: CatalogSource::File(catalog(&dir, &items)),
            ..job.clone()
        };
        let second = build_index(&update, &device, |_| {}).unwrap();
        assert_eq!(
            (second.items, second.embedded, second.reused, second.dropped),
            (40, 2, 38, 1)
        );
        let updated = read_index_dir(&job.out).unwrap();
        assert_eq!(updated.ids.last().unwrap(), "sku-new");
        let r = updated.ids.iter().position(|i| i == "sku-12").unwrap();
        assert_eq!(
            updated.vectors[r * 8..(r + 1) * 8],
            index.vectors[12 * 8..13 * 8]
        );
        // A stale index names what is missing.
        let err = index.rows_for(&["sku-new".into()]).unwrap_err().to_string();
        assert!(
            err.contains("\"sku-new\"") && err.contains("--update"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// An index of another model is refused by name; a damaged file is refused naming it.
    #[test]
    fn another_models_index_and_damaged_files_are_refused_by_name() {
        let (_seeded, device) = seeded_cpu(2);
        let dir = temp("refuse");
        bundle(&dir.join("a"), 4, &device);
        bundle(&dir.join("b"), 5, &device);
        let job = IndexJob {
            model: dir.join("a"),
            catalog: CatalogSource::File(catalog(&dir, &titles(12))),
            out: dir.join("index"),
            update: false,
            batch: 64,
            cells: None,
        };
        build_index(&job, &device, |_| {}).unwrap();
        let other = IndexJob {
            model: dir.join("b"),
            update: true,
            ..job.clone()
        };
        let err = build_index(&other, &device, |_| {})
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("manifest.json") && err.contains("built with model"),
            "{err}"
        );
        // One byte of the vectors changed, same length: only the checksum can tell.
        let path = job.out.join(VECTORS_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = read_index_dir(&job.out).unwrap_err().to_string();
        assert!(
            err.contains("vectors.safetensors") && err.contains("sha256"),
            "{err}"
        );
        std::fs::write(&path, &bytes[..100]).unwrap();
        let err = read_index_dir(&job.out).unwrap_err().to_string();
        assert!(
            err.contains("vectors.safetensors") && err.contains("truncated"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A run killed after its first chunk was committed, started again, embeds only the rest and
    /// writes the same files as a run never interrupted.
    #[test]
    fn a_killed_run_resumes_from_its_committed_chunks_to_the_same_files() {
        let (_seeded, device) = seeded_cpu(3);
        let dir = temp("resume");
        bundle(&dir.join("model"), 4, &device);
        let n = CHUNK_ITEMS + 300;
        let job = IndexJob {
            model: dir.join("model"),
            catalog: CatalogSource::File(catalog(&dir, &titles(n))),
            out: dir.join("killed"),
            update: false,
            batch: 256,
            cells: None,
        };
        let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            build_index(&job, &device, |p| {
                if matches!(p, IndexProgress::Embedding { done, .. } if done >= CHUNK_ITEMS) {
                    panic!("killed after the first chunk");
                }
            })
        }));
        assert!(killed.is_err());
        assert!(
            !job.out.join(INDEX_MANIFEST).exists(),
            "no manifest before the end"
        );
        let resumed = build_index(&job, &device, |_| {}).unwrap();
        assert_eq!((resumed.resumed, resumed.embedded), (CHUNK_ITEMS, 300));
        assert!(!job.out.join(PARTIAL_DIR).exists());
        let whole = IndexJob {
            out: dir.join("whole"),
            ..job.clone()
        };
        build_index(&whole, &device, |_| {}).unwrap();
        for name in [INDEX_MANIFEST, VECTORS_FILE, IDS_FILE] {
            assert_eq!(
                std::fs::read(job.out.join(name)).unwrap(),
                std::fs::read(whole.out.join(name)).unwrap(),
                "{name}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A partitioned index: shards of at least the minimum cover every item once, carry the
    /// catalogue's shelf data, read back whole; a damaged shard is refused naming it; the
    /// unpartitioned files of an earlier layout are removed.
    #[test]
    fn a_partitioned_index_covers_every_item_once_in_shards_of_the_minimum() {
        let (_seeded, device) = seeded_cpu(4);
        let dir = temp("cells");
        bundle(&dir.join("model"), 4, &device);
        let job = IndexJob {
            model: dir.join("model"),
            catalog: CatalogSource::File(catalog(&dir, &titles(600))),
            out: dir.join("index"),
            update: false,
            batch: 64,
            cells: None,
        };
        build_index(&job, &device, |_| {}).unwrap();
        assert!(job.out.join(VECTORS_FILE).exists());
        let cells = IndexJob {
            cells: Some(CellLayout {
                partition: PartitionConfig {
                    partitions: Some(8),
                    min_shard: 50,
                    ..PartitionConfig::default()
                },
                nprobe: 2,
                decoys: 2,
                popular: 20,
            }),
            update: true,
            ..job.clone()
        };
        let out = build_index(&cells, &device, |_| {}).unwrap();
        assert_eq!((out.embedded, out.reused), (0, 600));
        assert!(!job.out.join(VECTORS_FILE).exists() && !job.out.join(IDS_FILE).exists());
        let index = read_index_dir(&job.out).unwrap();
        let p = index.manifest.partitions.clone().unwrap();
        assert!(p.shards.iter().all(|s| s.items >= 50), "{:?}", p.shards);
        let mut ids = index.ids.clone();
        ids.sort();
        let mut want: Vec<String> = titles(600).into_iter().map(|(id, _)| id).collect();
        want.sort();
        assert_eq!(ids, want);
        // The first shard's items carry their catalogue objects; the popular shard is the
        // catalogue's first 20 items (no popularity field: catalogue order).
        let first = &p.shards[0];
        let shard = Shard::from_bytes(
            &std::fs::read(job.out.join(&first.file)).unwrap(),
            first.items,
            8,
            &first.file,
        )
        .unwrap();
        assert_eq!(shard.items[0]["id"], serde_json::json!(shard.ids[0]));
        assert!(shard.items[0]["title"].is_string());
        let popular = Shard::from_bytes(
            &std::fs::read(job.out.join(&p.popular.file)).unwrap(),
            20,
            8,
            "popular",
        )
        .unwrap();
        assert_eq!(popular.ids[..3], ["sku-0", "sku-1", "sku-2"]);
        let cells = index.cells.as_ref().unwrap();
        assert_eq!(cells.shard_rows.len(), p.shards.len());
        // A damaged shard is refused by name.
        let path = job.out.join(&p.shards[1].file);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = read_index_dir(&job.out).unwrap_err().to_string();
        assert!(
            err.contains(&p.shards[1].file) && err.contains("sha256"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
