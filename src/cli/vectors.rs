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

/// A trained bundle's recommender on `device`, with the text vectors `[items, dim]` of the
/// catalog it will rank (zeros in `id` mode) and, for a model with a persona input, the
/// items' facets — refused, naming the manifest, when the bundle's encoder does not give the
/// width the recommender takes.
pub fn trained_model(
    dir: &Path,
    rec: ranklet::bundle::RecommenderFiles,
    items: &[ranklet::data::ItemText],
    device: &Device,
    cache: &Path,
    quiet: bool,
) -> Result<(ranklet::rec::Recommender, Tensor<2>)> {
    let config = &rec.entry.config;
    let texts: Vec<String> = items.iter().map(|i| i.text.clone()).collect();
    let texts = &texts[..];
    // The encoder is checked in every mode: it is part of the bundle the browser downloads.
    let files = ranklet::bundle::read_model_dir(dir)?;
    let text = if config.items.mode == ranklet::rec::ItemMode::Id {
        Tensor::<2>::zeros([texts.len(), 1], device)
    } else {
        item_text_vectors(&files, texts, device, device, cache, quiet)?
    };
    let dim = text.dims()[1];
    if dim != config.items.text_dim {
        return Err(ranklet::Error::bad_file(
            dir.join("manifest.json").display().to_string(),
            format!(
                "the recommender expects {}-wide text vectors, its encoder gives {dim}",
                config.items.text_dim
            ),
        ));
    }
    let origin = dir.join(&rec.entry.weights).display().to_string();
    let model = ranklet::rec::Recommender::from_safetensors(config, rec.weights, device, &origin)?;
    let facets: Vec<Vec<String>> = items.iter().map(|i| i.facets.clone()).collect();
    Ok((model.with_item_facets(&facets), text))
}
