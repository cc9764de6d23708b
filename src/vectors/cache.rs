//! Frozen item text vectors, computed once per (model, text) and cached on disk.
//!
//! One cache file per model, `DIR/<model key>.safetensors`: a `vectors` tensor `[n, dim]` and,
//! in the metadata, the model key and the sha256 of each row's text. Any catalog embedded with
//! the same model reuses the rows whose text it shares; a changed text is a new key, so only it
//! is embedded again. Writes are atomic; rows that come back non-finite (a damaged file) are
//! dropped and embedded again, and counted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::contracts::sha256_hex;
use crate::error::{Error, Result};
use crate::text::EncoderFiles;
use crate::text::TextEmbedder;

/// Identifies a model's outputs: its three files' hashes and how it pools.
pub fn model_key(files: &EncoderFiles) -> String {
    let parts = format!(
        "{} {} {} {} {}",
        sha256_hex(&files.config.1),
        sha256_hex(&files.tokenizer.1),
        sha256_hex(&files.weights.1),
        files.max_seq_length,
        files.normalize
    );
    sha256_hex(parts.as_bytes())
}

/// What a call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Rows taken from the cache.
    pub reused: usize,
    /// Rows computed now.
    pub embedded: usize,
    /// Cached rows that held NaN/inf and were recomputed.
    pub dropped_corrupt: usize,
}

impl CacheStats {
    /// What a call did, for a progress line: rows reused, embedded, and repaired.
    pub fn summary(&self) -> String {
        let repaired = if self.dropped_corrupt > 0 {
            format!(
                " ({} cached rows were not finite and were recomputed)",
                self.dropped_corrupt
            )
        } else {
            String::new()
        };
        format!(
            "{} from the cache, {} embedded{repaired}",
            self.reused, self.embedded
        )
    }
}

/// A folder of per-model vector caches.
#[derive(Debug, Clone)]
pub struct TextVectorCache {
    dir: PathBuf,
}

impl TextVectorCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, model_key: &str) -> PathBuf {
        self.dir.join(format!(
            "{}.safetensors",
            &model_key[..32.min(model_key.len())]
        ))
    }

    /// Vectors of `texts` in order, embedding only those not cached for `model_key`, in
    /// batches of `batch`; `progress` is told how many texts were embedded so far.
    pub fn vectors(
        &self,
        embedder: &TextEmbedder,
        model_key: &str,
        texts: &[String],
        batch: usize,
        mut progress: impl FnMut(usize),
    ) -> Result<(Vec<Vec<f32>>, CacheStats)> {
        let path = self.path(model_key);
        let (mut known, dropped_corrupt) = read_cache(&path, model_key, embedder.dim());
        let mut stats = CacheStats {
            dropped_corrupt,
            ..CacheStats::default()
        };
        let keys: Vec<String> = texts.iter().map(|t| sha256_hex(t.as_bytes())).collect();
        let mut missing: Vec<usize> = Vec::new();
        let mut queued = std::collections::HashSet::new();
        for (i, k) in keys.iter().enumerate() {
            if !known.contains_key(k) && queued.insert(k.clone()) {
                missing.push(i);
            }
        }
        for chunk in missing.chunks(batch.max(1)) {
            let batch_texts: Vec<&str> = chunk.iter().map(|&i| texts[i].as_str()).collect();
            let vectors = embedder.embed(&batch_texts)?;
            for (&i, v) in chunk.iter().zip(vectors) {
                if v.iter().any(|x| !x.is_finite()) {
                    return Err(Error::Backend(format!(
                        "the encoder produced non-finite values for text {:?}",
                        texts[i].chars().take(60).collect::<String>()
                    )));
                }
                known.insert(keys[i].clone(), v);
            }
            stats.embedded += chunk.len();
            progress(stats.embedded);
        }
        stats.reused = texts.len() - stats.embedded.min(texts.len());
        if stats.embedded > 0 || stats.dropped_corrupt > 0 {
            write_cache(&path, model_key, embedder.dim(), &known)?;
        }
        let out = keys.iter().map(|k| known[k].clone()).collect();
        Ok((out, stats))
    }
}

/// Reads a cache file; a missing, unreadable or foreign file is an empty cache. Returns the
/// rows by text key and how many rows were dropped for holding non-finite values.
fn read_cache(path: &Path, model_key: &str, dim: usize) -> (HashMap<String, Vec<f32>>, usize) {
    let mut known = HashMap::new();
    let Ok(bytes) = std::fs::read(path) else {
        return (known, 0);
    };
    let Ok((_, meta)) = SafeTensors::read_metadata(&bytes) else {
        return (known, 0);
    };
    let Ok(file) = SafeTensors::deserialize(&bytes) else {
        return (known, 0);
    };
    let meta = meta.metadata().clone().unwrap_or_default();
    if meta.get("model").map(String::as_str) != Some(model_key) {
        return (known, 0);
    }
    let Some(keys) = meta
        .get("texts")
        .and_then(|t| serde_json::from_str::<Vec<String>>(t).ok())
    else {
        return (known, 0);
    };
    let Ok(view) = file.tensor("vectors") else {
        return (known, 0);
    };
    if view.dtype() != Dtype::F32 || view.shape() != [keys.len(), dim] {
        return (known, 0);
    }
    let values: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let mut dropped = 0;
    for (k, row) in keys.into_iter().zip(values.chunks(dim)) {
        if row.iter().all(|x| x.is_finite()) {
            known.insert(k, row.to_vec());
        } else {
            dropped += 1;
        }
    }
    (known, dropped)
}

fn write_cache(
    path: &Path,
    model_key: &str,
    dim: usize,
    known: &HashMap<String, Vec<f32>>,
) -> Result<()> {
    let mut keys: Vec<&String> = known.keys().collect();
    keys.sort();
    let data: Vec<u8> = keys
        .iter()
        .flat_map(|k| known[*k].iter().flat_map(|x| x.to_le_bytes()))
        .collect();
    let view = TensorView::new(Dtype::F32, vec![keys.len(), dim], &data)
        .map_err(|e| Error::Backend(format!("cache tensor: {e}")))?;
    let meta = HashMap::from([
        ("model".to_string(), model_key.to_string()),
        (
            "texts".to_string(),
            serde_json::to_string(&keys).expect("JSON"),
        ),
    ]);
    let bytes = safetensors::serialize([("vectors", view)], Some(meta))
        .map_err(|e| Error::Backend(format!("cache file: {e}")))?;
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
        .map_err(|e| Error::io(path.display(), e))?;
    crate::fsio::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::tiny_bert_files;
    use burn::prelude::Device;

    #[test]
    fn reuses_rows_reembeds_changed_texts_and_repairs_nan() {
        let dir = std::env::temp_dir().join(format!("ranklet-vcache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let files = tiny_bert_files(2);
        let embedder = TextEmbedder::from_files(&files, &Device::flex()).unwrap();
        let key = model_key(&files);
        let cache = TextVectorCache::new(&dir);
        let texts: Vec<String> = ["red shoe", "blue lamp", "tea mug", "red shoe"]
            .map(String::from)
            .into();

        let (first, stats) = cache.vectors(&embedder, &key, &texts, 2, |_| {}).unwrap();
        assert_eq!(
            stats,
            CacheStats {
                reused: 1,
                embedded: 3,
                dropped_corrupt: 0
            }
        );
        assert_eq!(first[0], first[3]);

        let (again, stats) = cache.vectors(&embedder, &key, &texts, 2, |_| {}).unwrap();
        assert_eq!(
            stats,
            CacheStats {
                reused: 4,
                embedded: 0,
                dropped_corrupt: 0
            }
        );
        assert_eq!(again, first);

        // A changed text is embedded alone.
        let changed: Vec<String> = ["red shoe", "green lamp", "tea mug"]
            .map(String::from)
            .into();
        let (_, stats) = cache.vectors(&embedder, &key, &changed, 2, |_| {}).unwrap();
        assert_eq!(stats.embedded, 1);

        // A NaN written into the file is noticed, dropped, and the row recomputed.
        let path = cache.path(&key);
        let bytes = std::fs::read(&path).unwrap();
        let (header_len, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let rows: Vec<String> =
            serde_json::from_str(&meta.metadata().as_ref().unwrap()["texts"]).unwrap();
        let row = rows
            .iter()
            .position(|k| *k == sha256_hex(b"red shoe"))
            .unwrap();
        let mut damaged = bytes.clone();
        let at = 8 + header_len + row * embedder.dim() * 4 + 4;
        damaged[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        std::fs::write(&path, damaged).unwrap();
        let (repaired, stats) = cache.vectors(&embedder, &key, &texts, 2, |_| {}).unwrap();
        assert_eq!(stats.dropped_corrupt, 1);
        assert_eq!(stats.embedded, 1);
        assert_eq!(repaired, first);

        // Another model never sees these rows.
        let (_, stats) = cache
            .vectors(
                &embedder,
                "other-model-key-0123456789abcdef0123",
                &texts,
                2,
                |_| {},
            )
            .unwrap();
        assert_eq!(stats.embedded, 3);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
