//! `ranklet recommend`: the top-k items of a trained bundle after a history, each with the
//! history items that explain it — what the browser's `recommend()` returns, natively.

use std::path::PathBuf;

use clap::Args;
use ranklet::bundle::read_recommender_dir;
use ranklet::contracts::{EventKind, SceneContext};
use ranklet::data::{Dataset, ItemText, read_catalog};
use ranklet::rec::{Calibration, ItemMode, RankingState, RecommendRequest};
use ranklet::{Error, Result};
use serde_json::json;

use super::vectors::trained_model;
use super::{DeviceArg, HistorySelectArgs};

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
    /// Rank against this precomputed index of the model (`ranklet index`) instead of the item
    /// tower over the catalogue's texts (what the browser does with an index).
    #[arg(long)]
    pub index: Option<PathBuf>,
    /// The history: item ids, oldest first, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub history: Vec<String>,
    /// The behaviour type of each history event, comma-separated and aligned with --history
    /// (view, click, cart, purchase, like, dislike/not_interested); default: all clicks.
    #[arg(long, value_delimiter = ',')]
    pub kinds: Vec<String>,
    /// The request's hour of day (0–23), for a model trained with --scene-context.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..24))]
    pub hour: Option<u8>,
    /// The request's page type (home, product, search, category, cart).
    #[arg(long)]
    pub page: Option<String>,
    /// The request's device class (desktop, mobile, tablet).
    #[arg(long)]
    pub device_class: Option<String>,
    /// How many items (at least 1).
    #[arg(long, default_value_t = 10, value_parser = super::at_least_one)]
    pub k: usize,
    /// Re-rank the model's best 100 so that the list's genre mix follows the history's
    /// (Steck's calibration, weight 0–1; 0: the model's order; reports/quality.md chose 0.1, head 5,
    /// on ml-100k's validation users).
    #[arg(long, default_value_t = 0.0, value_parser = super::share)]
    pub calibrate: f64,
    /// With --calibrate: the model's first N items stay in place.
    #[arg(long, default_value_t = ranklet::rec::CALIBRATION_HEAD)]
    pub calibrate_head: usize,
    /// Keep items of the history among the recommendations.
    #[arg(long)]
    pub keep_seen: bool,
    #[command(flatten)]
    pub selection: HistorySelectArgs,
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
    let config = rec.entry.config.clone();
    // The catalogue's popularity figures by id (a `--data` dataset has none).
    let mut popularity_of = std::collections::HashMap::new();
    let (origin, items) = if let Some(path) = &args.catalog {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path.display(), e))?;
        let origin = path.display().to_string();
        let catalog = read_catalog(&bytes, &origin)?;
        for item in &catalog {
            if let Some(p) = item.popularity {
                popularity_of.insert(item.id.clone(), p as f32);
            }
        }
        let items: Vec<ItemText> = catalog.into_iter().map(ItemText::from).collect();
        (origin, items)
    } else {
        let dir = args
            .data
            .as_ref()
            .expect("clap requires --catalog or --data");
        (dir.display().to_string(), Dataset::read_dir(dir)?.items)
    };
    let items = if config.items.mode == ItemMode::Inductive {
        items
    } else {
        // ID rows: the catalog must be the model's, in its row order.
        Dataset::catalogue_in_item_order(
            &origin,
            items,
            &rec.items,
            &args.model.display().to_string(),
        )?
    };
    let row: std::collections::HashMap<&str, usize> = items
        .iter()
        .enumerate()
        .map(|(r, i)| (i.id.as_str(), r))
        .collect();
    let history: Vec<usize> = args
        .history
        .iter()
        .map(|id| {
            // Ids as typed in a list ("a, b"): the spaces are not part of them.
            let id = id.trim();
            row.get(id).copied().ok_or_else(|| {
                Error::bad_input("--history", format!("item {id:?} is not in the catalog"))
            })
        })
        .collect::<Result<_>>()?;
    let device = args.device.init()?;
    // Items the model never trained on are placed among its trained ones by the bundle's
    // neighbour mix (an inductive model ranks any catalogue).
    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    let is_new = config.new_item_rows(&ids, &rec.items);
    let (model, text) = trained_model(&args.model, rec, &items, &device, &args.cache, true)?;
    if !args.kinds.is_empty() && args.kinds.len() != history.len() {
        return Err(Error::bad_input(
            "--kinds",
            format!(
                "{} types for {} history events (give one per event, or none)",
                args.kinds.len(),
                history.len()
            ),
        ));
    }
    let kinds: Vec<EventKind> = args
        .kinds
        .iter()
        .enumerate()
        .map(|(i, k)| EventKind::parse(Some(k), None, &format!("--kinds entry {}", i + 1)))
        .collect::<Result<_>>()?;
    if kinds.contains(&EventKind::Search) {
        return Err(Error::bad_input(
            "--kinds",
            "a search is a text, not an item event (the browser's recommend() takes queries)",
        ));
    }
    let context = SceneContext {
        hour: args.hour,
        page: args
            .page
            .as_deref()
            .map(SceneContext::page_named)
            .transpose()?,
        device: args
            .device_class
            .as_deref()
            .map(SceneContext::device_named)
            .transpose()?,
    };
    // "Not interested" pushes the disliked items' text neighbours down, as in the browser.
    let disliked: Vec<usize> = history
        .iter()
        .zip(&kinds)
        .filter(|(_, k)| k.is_negative())
        .map(|(&i, _)| i)
        .collect();
    let mut state = match &args.index {
        None => {
            RankingState::new_with_new(&model, text, config.items.mode != ItemMode::Id, &is_new)?
        }
        Some(dir) => {
            let index = ranklet::index::read_index_of(&args.model, dir)?;
            let ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
            let raw = index.rows_in(&index.rows_for(&ids)?);
            let dim = index.manifest.dim;
            RankingState::from_item_rows(&model, raw, dim, config.items.text_dim, &device)
        }
    };
    // New items lifted by the catalogue's popularity, as the browser lifts them (an index's
    // rows are the catalogue's, in its order).
    let popularity: Vec<f32> = items
        .iter()
        .map(|i| popularity_of.get(&i.id).copied().unwrap_or(f32::NAN))
        .collect();
    state.lift_new_items(config.new_items.popularity, &is_new, &popularity, None)?;
    state.history_select = args.selection.history_select;
    state.recent = args.selection.recent;
    // Calibration: the list's genre mix towards the history's (the browser's `calibrate`).
    let facets: Vec<Vec<String>> = items.iter().map(|i| i.facets.clone()).collect();
    let recs = state.recommend(
        &model,
        &RecommendRequest {
            history: &history,
            kinds: &kinds,
            context,
            avoid: &disliked,
            k: args.k,
            exclude_seen: !args.keep_seen,
            because: 2,
            calibration: Some(Calibration {
                head: args.calibrate_head,
                ..Calibration::new(&facets, args.calibrate)
            }),
            ..RecommendRequest::default()
        },
    )?;
    if recs.is_empty() {
        eprintln!(
            "nothing to recommend: every item of the catalogue ({}) is in the history; --keep-seen ranks them anyway",
            items.len()
        );
    }
    for (rank, r) in recs.iter().enumerate() {
        let because: Vec<&str> = r.because.iter().map(|&b| items[b].id.as_str()).collect();
        if args.json {
            super::out!(
                "{}",
                json!({"id": items[r.item].id, "score": r.score, "because": because})
            )?;
        } else {
            let because_text: Vec<&str> =
                r.because.iter().map(|&b| items[b].text.as_str()).collect();
            super::out!(
                "{:>3}. {:>8.4}  {}  (because: {})",
                rank + 1,
                r.score,
                items[r.item].text,
                because_text.join(" | ")
            )?;
        }
    }
    Ok(())
}
