//! `ranklet recommend`: the top-k items of a trained bundle after a history, each with the
//! history items that explain it — what the browser's `recommend()` returns, natively.

use std::path::PathBuf;

use clap::Args;
use ranklet::bundle::{read_model_dir, read_recommender_dir};
use ranklet::data::{Dataset, ItemText, read_catalog};
use ranklet::rec::{ItemMode, Recommender};
use ranklet::{Error, Result};
use serde_json::json;

use super::DeviceArg;
use super::vectors::item_text_vectors;

#[derive(Debug, Args)]
pub struct RecommendArgs {
    /// A trained recommender bundle (`ranklet train --out`).
    #[arg(long)]
    pub model: PathBuf,
    /// The catalog to rank (JSON array or JSONL of catalog items).
    #[arg(long, conflicts_with = "data", required_unless_present = "data")]
    pub catalog: Option<PathBuf>,
    /// Or a dataset folder whose items are the catalog (e.g. data/ml-100k).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The history: item ids, oldest first, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub history: Vec<String>,
    /// How many items.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Keep items of the history among the recommendations.
    #[arg(long)]
    pub keep_seen: bool,
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// Where cached item text vectors live.
    #[arg(long, default_value = ".cache/vectors")]
    pub cache: PathBuf,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: RecommendArgs) -> Result<()> {
    let rec = read_recommender_dir(&args.model)?;
    let files = read_model_dir(&args.model)?;
    let config = rec.entry.config.clone();
    let mut items: Vec<ItemText> = if let Some(path) = &args.catalog {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path.display(), e))?;
        read_catalog(&bytes, &path.display().to_string())?
            .into_iter()
            .map(|c| ItemText {
                text: c.encoder_text(),
                id: c.id,
            })
            .collect()
    } else {
        Dataset::read_dir(
            args.data
                .as_ref()
                .expect("clap requires --catalog or --data"),
        )?
        .items
    };
    if config.items.mode != ItemMode::Inductive {
        // ID rows: the catalog must be the model's, in its row order.
        let by_id: std::collections::HashMap<&str, &ItemText> =
            items.iter().map(|i| (i.id.as_str(), i)).collect();
        if items.len() != rec.items.len()
            || rec.items.iter().any(|id| !by_id.contains_key(id.as_str()))
        {
            return Err(Error::bad_input(
                "--catalog/--data",
                format!(
                    "this {:?} model ranks the {} items it was trained on; the catalog given has {} items and not all of them (the inductive mode ranks any catalog)",
                    config.items.mode,
                    rec.items.len(),
                    items.len()
                ),
            ));
        }
        items = rec
            .items
            .iter()
            .map(|id| by_id[id.as_str()].clone())
            .collect();
    }
    let row: std::collections::HashMap<&str, usize> = items
        .iter()
        .enumerate()
        .map(|(r, i)| (i.id.as_str(), r))
        .collect();
    let history: Vec<usize> = args
        .history
        .iter()
        .map(|id| {
            row.get(id.as_str()).copied().ok_or_else(|| {
                Error::bad_input("--history", format!("item {id:?} is not in the catalog"))
            })
        })
        .collect::<Result<_>>()?;
    let device = args.device.init()?;
    let texts: Vec<String> = items.iter().map(|i| i.text.clone()).collect();
    let text = if config.items.mode == ItemMode::Id {
        burn::Tensor::<2>::zeros([items.len(), 1], &device)
    } else {
        item_text_vectors(&files, &texts, &device, &device, &args.cache, true)?
    };
    if text.dims()[1] != config.items.text_dim {
        return Err(Error::bad_file(
            args.model.join("manifest.json").display().to_string(),
            format!(
                "the recommender expects {}-wide text vectors, its encoder gives {}",
                config.items.text_dim,
                text.dims()[1]
            ),
        ));
    }
    let origin = args.model.join(&rec.entry.weights).display().to_string();
    let model = Recommender::from_safetensors(&config, rec.weights, &device, &origin)?;
    let recs = model.recommend(
        text,
        &history,
        config.sequence.max_len,
        args.k,
        !args.keep_seen,
        2,
    );
    for (rank, r) in recs.iter().enumerate() {
        let because: Vec<&str> = r.because.iter().map(|&b| items[b].id.as_str()).collect();
        if args.json {
            println!(
                "{}",
                json!({"id": items[r.item].id, "score": r.score, "because": because})
            );
        } else {
            let because_text: Vec<&str> =
                r.because.iter().map(|&b| items[b].text.as_str()).collect();
            println!(
                "{:>3}. {:>8.4}  {}  (because: {})",
                rank + 1,
                r.score,
                items[r.item].text,
                because_text.join(" | ")
            );
        }
    }
    Ok(())
}
