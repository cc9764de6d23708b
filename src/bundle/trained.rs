//! A trained bundle ready to rank a catalogue: its recommender, and the text vectors of the
//! catalogue's items by the bundle's own encoder (through the vector cache).

use std::path::Path;

use burn::prelude::*;

use crate::bundle::{RecommenderFiles, read_model_dir};
use crate::data::ItemText;
use crate::error::{Error, Result};
use crate::rec::{ItemMode, Recommender};
use crate::vectors::{CacheStats, item_text_vectors};

/// A trained bundle's recommender on `device`, with the text vectors `[items, dim]` of the
/// catalogue it will rank (zeros in `id` mode) and, for a model with a persona input, the
/// items' facets — refused, naming the manifest, when the bundle's encoder does not give the
/// width the recommender takes. `progress(done, total)` follows the item texts embedded or read
/// from the cache under `cache`.
pub fn trained_model(
    dir: &Path,
    rec: RecommenderFiles,
    items: &[ItemText],
    device: &Device,
    cache: &Path,
    mut progress: impl FnMut(usize, usize),
) -> Result<(Recommender, Tensor<2>, Option<CacheStats>)> {
    let config = &rec.entry.config;
    let texts: Vec<String> = items.iter().map(|i| i.text.clone()).collect();
    // The encoder is checked in every mode: it is part of the bundle the browser downloads.
    let files = read_model_dir(dir)?;
    let (text, stats) = if config.items.mode == ItemMode::Id {
        (Tensor::<2>::zeros([texts.len(), 1], device), None)
    } else {
        let total = texts.len();
        let (text, stats) = item_text_vectors(&files, &texts, device, device, cache, |n| {
            progress(n, total)
        })?;
        (text, Some(stats))
    };
    let dim = text.dims()[1];
    if dim != config.items.text_dim {
        return Err(Error::bad_file(
            dir.join("manifest.json").display().to_string(),
            format!(
                "the recommender expects {}-wide text vectors, its encoder gives {dim}",
                config.items.text_dim
            ),
        ));
    }
    let origin = dir.join(&rec.entry.weights).display().to_string();
    let model = Recommender::from_safetensors(config, rec.weights, device, &origin)?;
    let facets: Vec<Vec<String>> = items.iter().map(|i| i.facets.clone()).collect();
    Ok((model.with_item_facets(&facets), text, stats))
}
