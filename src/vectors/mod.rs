//! Item text vectors: the text encoder's output for every item text, computed once per (model,
//! text) and cached on disk, so training, evaluation and indexing embed a catalogue only where
//! its texts changed.

pub mod cache;

pub use cache::{CacheStats, TextVectorCache, model_key};

use std::path::Path;

use burn::prelude::*;

use crate::Result;
use crate::text::{EncoderFiles, TextEmbedder};

/// The vectors `[texts, dim]` of `texts` by the encoder `files`, on `device`; only texts not in
/// the cache under `cache` are embedded (on `embed_device`). `progress(done)` follows the texts
/// read or embedded so far.
pub fn item_text_vectors(
    files: &EncoderFiles,
    texts: &[String],
    embed_device: &Device,
    device: &Device,
    cache: &Path,
    progress: impl FnMut(usize),
) -> Result<(Tensor<2>, CacheStats)> {
    let embedder = TextEmbedder::from_files(files, embed_device)?;
    let (vectors, stats) =
        TextVectorCache::new(cache).vectors(&embedder, &model_key(files), texts, 64, progress)?;
    let dim = embedder.dim();
    let flat: Vec<f32> = vectors.into_iter().flatten().collect();
    Ok((
        Tensor::<2>::from_data(TensorData::new(flat, [texts.len(), dim]), device),
        stats,
    ))
}
