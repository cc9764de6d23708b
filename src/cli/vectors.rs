//! Frozen item text vectors for training and evaluation, through the on-disk cache.

use std::path::Path;

use burn::prelude::*;
use ranklet::Result;
use ranklet::bundle::EncoderFiles;
use ranklet::rec::text_vectors::{TextVectorCache, model_key};
use ranklet::text::TextEmbedder;

use super::progress;

/// The vectors `[texts, dim]` of `texts` by the encoder `files`, on `device`; only texts not in
/// the cache under `cache` are embedded (on `embed_device`).
pub fn item_text_vectors(
    files: &EncoderFiles,
    texts: &[String],
    embed_device: &Device,
    device: &Device,
    cache: &Path,
    quiet: bool,
) -> Result<Tensor<2>> {
    let embedder = TextEmbedder::from_files(files, embed_device)?;
    let bar = progress(texts.len() as u64, "item texts", quiet);
    let (vectors, stats) =
        TextVectorCache::new(cache).vectors(&embedder, &model_key(files), texts, 64, |n| {
            bar.set_position(n as u64)
        })?;
    bar.finish_and_clear();
    if !quiet {
        eprintln!(
            "item texts: {} from the cache, {} embedded with {}{}",
            stats.reused,
            stats.embedded,
            files.name,
            if stats.dropped_corrupt > 0 {
                format!(
                    " ({} cached rows were not finite and were recomputed)",
                    stats.dropped_corrupt
                )
            } else {
                String::new()
            }
        );
    }
    let dim = embedder.dim();
    let flat: Vec<f32> = vectors.into_iter().flatten().collect();
    Ok(Tensor::<2>::from_data(
        TensorData::new(flat, [texts.len(), dim]),
        device,
    ))
}
