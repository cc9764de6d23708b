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
use crate::data::{Dataset, ItemText, read_catalog};
use crate::error::{Error, Result};
use crate::fsio::write_atomic;
use crate::index::format::{
    IDS_FILE, INDEX_FORMAT, INDEX_FORMAT_VERSION, INDEX_MANIFEST, IndexManifest, ItemIndex,
    ModelRef, Rows, VECTORS_FILE, text_hash,
};
use crate::index::quantise::quantise_rows;
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

/// The catalogue's items (id, encoder text), bad rows refused naming their line.
pub fn read_items(source: &CatalogSource) -> Result<(String, Vec<ItemText>)> {
    match source {
        CatalogSource::File(path) => {
            let origin = path.display().to_string();
            let bytes = std::fs::read(path).map_err(|e| Error::io(&origin, e))?;
            let items = read_catalog(&bytes, &origin)?
                .into_iter()
                .map(ItemText::from)
                .collect();
            Ok((origin, items))
        }
        CatalogSource::Data(dir) => Ok((dir.display().to_string(), Dataset::read_dir(dir)?.items)),
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
fn bundle_ref(model: &Path) -> Result<ModelRef> {
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
    mut progress: impl FnMut(usize, usize),
) -> Result<IndexOutcome> {
    let bundle = job.model.display().to_string();
    let model_ref = bundle_ref(&job.model)?;
    let rec = read_recommender_dir(&job.model)?;
    let config = rec.entry.config.clone();
    let (origin, mut items) = read_items(&job.catalog)?;
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
    progress(0, todo.len());
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
        progress(embedded + resumed, todo.len());
    }

    // The index's files, the manifest last.
    std::fs::create_dir_all(&job.out).map_err(|e| Error::io(job.out.display(), e))?;
    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    let ids_bytes = serde_json::to_vec(&ids).expect("ids serialise");
    let vectors_bytes = Rows {
        vectors,
        scales,
        hashes,
    }
    .to_bytes(dim);
    let mut entries = BTreeMap::new();
    for (name, bytes) in [(IDS_FILE, &ids_bytes), (VECTORS_FILE, &vectors_bytes)] {
        write_atomic(&job.out.join(name), bytes)?;
        entries.insert(name.to_string(), Manifest::entry_for(bytes));
    }
    let manifest = IndexManifest {
        format: INDEX_FORMAT.into(),
        format_version: INDEX_FORMAT_VERSION,
        model: model_ref,
        items: items.len(),
        dim,
        dtype: "int8".into(),
        files: entries,
    };
    let manifest_json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    write_atomic(&job.out.join(INDEX_MANIFEST), &manifest_json)?;
    let _ = std::fs::remove_dir_all(job.out.join(PARTIAL_DIR));
    Ok(IndexOutcome {
        items: items.len(),
        embedded,
        reused,
        resumed,
        dropped,
        bytes: (ids_bytes.len() + vectors_bytes.len() + manifest_json.len()) as u64,
    })
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
        };
        let first = build_index(&job, &device, |_, _| {}).unwrap();
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
        let second = build_index(&update, &device, |_, _| {}).unwrap();
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
        };
        build_index(&job, &device, |_, _| {}).unwrap();
        let other = IndexJob {
            model: dir.join("b"),
            update: true,
            ..job.clone()
        };
        let err = build_index(&other, &device, |_, _| {})
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
        };
        let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            build_index(&job, &device, |done, _| {
                if done >= CHUNK_ITEMS {
                    panic!("killed after the first chunk");
                }
            })
        }));
        assert!(killed.is_err());
        assert!(
            !job.out.join(INDEX_MANIFEST).exists(),
            "no manifest before the end"
        );
        let resumed = build_index(&job, &device, |_, _| {}).unwrap();
        assert_eq!((resumed.resumed, resumed.embedded), (CHUNK_ITEMS, 300));
        assert!(!job.out.join(PARTIAL_DIR).exists());
        let whole = IndexJob {
            out: dir.join("whole"),
            ..job.clone()
        };
        build_index(&whole, &device, |_, _| {}).unwrap();
        for name in [INDEX_MANIFEST, VECTORS_FILE, IDS_FILE] {
            assert_eq!(
                std::fs::read(job.out.join(name)).unwrap(),
                std::fs::read(whole.out.join(name)).unwrap(),
                "{name}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
