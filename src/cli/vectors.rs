//! A trained bundle for `eval` and `recommend`, with a progress bar over the item texts.

use std::path::Path;

use burn::prelude::*;
use ranklet::Result;
use ranklet::bundle::RecommenderFiles;
use ranklet::data::ItemText;
use ranklet::rec::Recommender;

use super::progress_bar;

/// [`ranklet::bundle::trained_model`], showing the item texts embedded and what the cache held.
pub fn trained_model(
    dir: &Path,
    rec: RecommenderFiles,
    items: &[ItemText],
    device: &Device,
    cache: &Path,
    quiet: bool,
) -> Result<(Recommender, Tensor<2>)> {
    let bar = progress_bar(items.len() as u64, "item texts", quiet);
    let (model, text, stats) =
        ranklet::bundle::trained_model(dir, rec, items, device, cache, |n, _| {
            bar.set_position(n as u64)
        })?;
    bar.finish_and_clear();
    if let (false, Some(stats)) = (quiet, stats) {
        eprintln!("item texts: {}", stats.summary());
    }
    Ok((model, text))
}
