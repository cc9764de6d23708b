//! `ranklet eval`: the evaluation protocol (docs/design.md, Evaluation protocol) on a dataset folder, printed as a
//! table and written as JSON — for a trained recommender bundle (`--model`) or the popularity
//! baseline.

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use clap::{Args, ValueEnum};
use ranklet::Result;
use ranklet::bundle::read_recommender_dir;
use ranklet::data::{Dataset, Split};
use ranklet::eval::evaluate_probed;
use ranklet::eval::popularity::evaluate_popularity;
use ranklet::eval::{Metrics, deletion_test, facet_response, miscalibration};
use ranklet::rec::Calibration;
use ranklet::rec::{HistorySelect, ItemMode, RankingState, Reasons, RecommendRequest};
use serde_json::json;

use super::vectors::trained_model;
use super::{DeviceArg, HistorySelectArgs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Baseline {
    /// Items ranked by their training interaction count.
    Popularity,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Dataset folder: RecBole atomic files (.inter + .item) or catalog.json(l) + events.jsonl.
    #[arg(long)]
    pub data: PathBuf,
    /// A trained recommender bundle (`ranklet train --out`); without it, the baseline runs.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Score against this precomputed index of the model (`ranklet index`: int8 item vectors)
    /// instead of running the item tower over the catalogue's text vectors.
    #[arg(long, requires = "model")]
    pub index: Option<PathBuf>,
    /// The baseline to evaluate when no --model is given.
    #[arg(long, value_enum, default_value_t = Baseline::Popularity)]
    pub baseline: Baseline,
    /// History length cap (most recent items); a model's own cap wins.
    #[arg(long, default_value_t = 50, value_parser = super::at_least_one)]
    pub max_len: usize,
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// Where cached item text vectors live.
    #[arg(long, default_value = ".cache/vectors")]
    pub cache: PathBuf,
    /// Write the JSON report here (atomically); an existing report of the same dataset keeps
    /// its other models.
    #[arg(long)]
    pub report: Option<PathBuf>,
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub selection: HistorySelectArgs,
    /// Evaluate only users with at least this many events before the target (e.g. 51: the
    /// users whose history is longer than the cap).
    #[arg(long, default_value_t = 0)]
    pub min_history: usize,
    /// Also measure how the shelf answers a history: the share of a genre on the top-8 after
    /// three items of it (10 seeded draws per genre with at least --shelf-min-items items,
    /// averaged over genres), and Steck's miscalibration C_KL of the test users' top-10 against their history.
    #[arg(long)]
    pub shelf_response: bool,
    /// With --shelf-response and a model: re-rank its top 100 so that the list's genre mix
    /// follows the history's (Steck's calibration; 0 = the model's order, up to 1).
    #[arg(long, default_value_t = 0.0, value_parser = super::share)]
    pub calibrate: f64,
    /// With --calibrate: the model's first N items stay in place.
    #[arg(long, default_value_t = ranklet::rec::CALIBRATION_HEAD)]
    pub calibrate_head: usize,
    /// With --calibrate: each older history event's weight in the mix followed, per later event
    /// (1: all alike).
    #[arg(long, default_value_t = ranklet::rec::CALIBRATION_DECAY, value_parser = super::share)]
    pub calibrate_decay: f64,
    /// Genres with at least this many items are measured by --shelf-response.
    #[arg(long, default_value_t = 20, value_parser = super::at_least_one)]
    pub shelf_min_items: usize,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let ds = Dataset::read_dir(&args.data)?;
    let mut shelf = None;
    let (name, mode, params, (valid, test, test_masked), eval_seconds, max_len) = if let Some(dir) =
        &args.model
    {
        let rec = read_recommender_dir(dir)?;
        let config = rec.entry.config.clone();
        let mode = config.items.mode;
        // Models with ID rows rank the catalog they were trained on, in their row order.
        let ds = if mode == ItemMode::Inductive {
            ds.clone()
        } else {
            ds.in_item_order(&rec.items, &dir.display().to_string())?
        };
        let max_len = config.sequence.max_len;
        let mut split = Split::leave_one_out(&ds, max_len);
        describe(&ds, &split)?;
        let device = args.device.init()?;
        // Items the model never trained on are placed by the bundle's neighbour mix, as the
        // recommend path places them.
        let ids: Vec<&str> = ds.items.iter().map(|i| i.id.as_str()).collect();
        let is_new = config.new_item_rows(&ids, &rec.items);
        let (model, text) = trained_model(dir, rec, &ds.items, &device, &args.cache, args.quiet)?;
        restrict(&mut split, args.min_history)?;
        if args.shelf_response && args.index.is_none() {
            let state =
                RankingState::new_with_new(&model, text.clone(), mode != ItemMode::Id, &is_new)?;
            let facets: Vec<Vec<String>> = ds.items.iter().map(|i| i.facets.clone()).collect();
            let calibration = Calibration {
                head: args.calibrate_head,
                decay: args.calibrate_decay,
                ..Calibration::new(&facets, args.calibrate)
            };
            let rank = |history: &[usize], k: usize| -> Result<Vec<usize>> {
                let req = RecommendRequest {
                    history,
                    k,
                    exclude_seen: true,
                    calibration: Some(calibration),
                    ..RecommendRequest::default()
                };
                let recs = state.recommend(&model, &req)?;
                Ok(recs.into_iter().map(|r| r.item).collect())
            };
            let mut figures = shelf_figures(rank, &ds, &split, args.shelf_min_items)?;
            // The deletion test of the reasons: the model's leave-one-out attribution (what
            // `recommend` and the browser name) and the nearest read events (the reasons before
            // it), on the same histories and draws.
            let explain = |reasons: Reasons| {
                let (state, model) = (&state, &model);
                move |history: &[usize]| -> Result<Option<(usize, Vec<usize>)>> {
                    let req = RecommendRequest {
                        history,
                        k: 1,
                        exclude_seen: true,
                        because: 2,
                        reasons,
                        ..RecommendRequest::default()
                    };
                    Ok(state
                        .recommend(model, &req)?
                        .pop()
                        .map(|r| (r.item, r.because)))
                }
            };
            let rank_of = |history: &[usize], seen: &[usize], item: usize| -> Result<usize> {
                let req = RecommendRequest {
                    history,
                    k: ds.items.len(),
                    ..RecommendRequest::default()
                };
                let ranked: Vec<usize> = state
                    .recommend(&model, &req)?
                    .into_iter()
                    .map(|r| r.item)
                    .filter(|i| !seen.contains(i))
                    .collect();
                Ok(ranked
                    .iter()
                    .position(|&i| i == item)
                    .unwrap_or(ranked.len()))
            };
            // (Of the model's own ranking: measured once, not per calibration weight.)
            if args.calibrate == 0.0 {
                let histories: Vec<Vec<usize>> =
                    split.test.iter().map(|ex| ex.seen.clone()).collect();
                for (reasons, key, what) in [
                    (Reasons::default(), "because_deletion_test", "leave-one-out"),
                    (
                        Reasons::LeaveOneOut {
                            candidates: usize::MAX,
                        },
                        "every_event_deletion_test",
                        "leave-one-out over every read event",
                    ),
                    (
                        Reasons::Nearest,
                        "nearest_deletion_test",
                        "nearest read events",
                    ),
                ] {
                    let started = Instant::now();
                    let deletion =
                        deletion_test(explain(reasons), rank_of, &histories, max_len, 3, 2023)?;
                    super::out!(
                        "because ({what}), deletion test: the first item falls to rank {:.1} without its reasons, {:.1} without as many random read events ({:.2}x; {:.1} s)",
                        deletion.rank_without_because,
                        deletion.rank_without_random,
                        deletion.ratio,
                        started.elapsed().as_secs_f64()
                    )?;
                    figures[key] = json!(deletion);
                }
            }
            shelf = Some(figures);
        }
        // The catalogue through the tower, once (the ranking state below computes it too).
        let mut towered = None;
        if args.selection.history_select != HistorySelect::Last {
            // The events each history reads, chosen as `recommend` and the browser choose them.
            let mut state =
                RankingState::new_with_new(&model, text.clone(), mode != ItemMode::Id, &is_new)?;
            state.history_select = args.selection.history_select;
            state.recent = args.selection.recent;
            for ex in split.valid.iter_mut().chain(split.test.iter_mut()) {
                // `seen` is the start of the user's sequence: its types are the dataset's.
                let kinds = ds.kinds[ex.user].get(..ex.seen.len()).unwrap_or(&[]);
                (ex.history, ex.kinds) = state.read_events(&ex.seen, kinds, &[]);
                if ex.kinds.is_empty() {
                    ex.kinds = vec![Default::default(); ex.history.len()];
                }
            }
            towered = Some(state.catalog);
        }
        let mut cells = None;
        let items = match &args.index {
            None => match towered {
                Some(towered) => towered,
                None if is_new.contains(&true) => {
                    RankingState::new_with_new(&model, text, mode != ItemMode::Id, &is_new)?.catalog
                }
                None => model.item_vectors(text),
            },
            Some(index_dir) => {
                let index = ranklet::index::read_index_of(dir, index_dir)?;
                let ids: Vec<String> = ds.items.iter().map(|i| i.id.clone()).collect();
                let order = index.rows_for(&ids)?;
                cells = index.cell_probe(&order);
                index.item_vectors(&order, &device)
            }
        };
        let start = Instant::now();
        let (valid, _) = evaluate_probed(&model, &items, cells.as_ref(), &split.valid, 256);
        let (test, masked) = evaluate_probed(&model, &items, cells.as_ref(), &split.test, 256);
        let mode_name = format!("{mode:?}").to_lowercase();
        (
            match &args.index {
                Some(i) => format!("{} (index {})", dir.display(), i.display()),
                None if args.shelf_response && args.calibrate > 0.0 => {
                    let decay = if args.calibrate_decay < 1.0 {
                        format!(", decay {}", args.calibrate_decay)
                    } else {
                        String::new()
                    };
                    format!(
                        "{} (calibrated, λ {}, head {}{decay})",
                        dir.display(),
                        args.calibrate,
                        args.calibrate_head
                    )
                }
                None => dir.display().to_string(),
            },
            mode_name,
            model.num_params(),
            (valid, test, masked),
            start.elapsed().as_secs_f64(),
            max_len,
        )
    } else {
        let mut split = Split::leave_one_out(&ds, args.max_len);
        describe(&ds, &split)?;
        restrict(&mut split, args.min_history)?;
        if args.shelf_response {
            // Training counts, the history left out.
            let counts = split.train_counts(ds.items.len());
            let mut order: Vec<usize> = (0..ds.items.len()).collect();
            order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
            let rank = |history: &[usize], k: usize| -> Result<Vec<usize>> {
                Ok(order
                    .iter()
                    .copied()
                    .filter(|i| !history.contains(i))
                    .take(k)
                    .collect())
            };
            shelf = Some(shelf_figures(rank, &ds, &split, args.shelf_min_items)?);
        }
        let start = Instant::now();
        let (valid, _) = evaluate_popularity(&split, ds.items.len(), &split.valid);
        let (test, masked) = evaluate_popularity(&split, ds.items.len(), &split.test);
        (
            "popularity".to_string(),
            "baseline".to_string(),
            0,
            (valid, test, masked),
            start.elapsed().as_secs_f64(),
            args.max_len,
        )
    };
    let rows: [(&str, &Metrics); 3] = [
        ("valid", &valid),
        ("test", &test),
        ("test (seen items masked)", &test_masked),
    ];
    super::print_metrics(&name, &rows)?;
    if let Some(path) = &args.report {
        let report = json!({
            "dataset": ds.name,
            "protocol": format!("leave-one-out, stable time order, full ranking over all items, history cap {max_len}; headline unmasked, test_masked masks every item seen before the target"),
            "history_select": args.selection.history_select.name(),
            "recent": args.selection.recent,
            "min_history": args.min_history,
            "test_users": test.users(),
            "models": [{
                "name": name,
                "mode": mode,
                "params": params,
                "eval_seconds": eval_seconds,
                "valid": valid.means(),
                "test": test.means(),
                "test_masked": test_masked.means(),
                "shelf": shelf,
            }],
        });
        super::write_report(path, report)?;
    }
    Ok(())
}

/// The shelf-response figures of a ranking (`rank(history, k)`: top-k rows, history excluded):
/// the genre response and the test users' mean miscalibration at 10, printed and returned for
/// the report.
fn shelf_figures(
    rank: impl Fn(&[usize], usize) -> Result<Vec<usize>>,
    ds: &Dataset,
    split: &Split,
    min_items: usize,
) -> Result<serde_json::Value> {
    let facets: Vec<Vec<String>> = ds.items.iter().map(|i| i.facets.clone()).collect();
    let response = facet_response(&rank, &facets, min_items, 10, 3, 8, 2023)?;
    // Per user set: the mean C_KL@10 of the lists and the lists' NDCG@10 (the target among the
    // ten shown, history excluded: what a re-ranking changes).
    // Each user's target position in the list too (None: not shown), for paired comparisons
    // of two rankings over the same users.
    let lists = |examples: &[ranklet::data::Example]| -> Result<(f64, f64, Vec<Option<usize>>)> {
        let (mut ckl, mut ndcg) = (0.0, 0.0);
        let mut positions = Vec::with_capacity(examples.len());
        for ex in examples {
            let shown = rank(&ex.seen, 10)?;
            ckl += miscalibration(&ex.seen, &shown, &facets);
            let at = shown.iter().position(|&i| i == ex.target);
            if let Some(p) = at {
                ndcg += 1.0 / (p as f64 + 2.0).log2();
            }
            positions.push(at);
        }
        let n = examples.len().max(1) as f64;
        Ok((ckl / n, ndcg / n, positions))
    };
    let (valid_ckl, valid_ndcg, _) = lists(&split.valid)?;
    let (ckl, test_ndcg, test_positions) = lists(&split.test)?;
    super::out!(
        "shelf response: {:.3} share of the genre on the top-{} after {} items of it ({} genres, {} draws each); miscalibration C_KL@10 {ckl:.4} over {} test users",
        response.mean,
        response.k,
        response.history,
        response.per_facet.len(),
        response.draws,
        split.test.len()
    )?;
    Ok(json!({
        "facet_response": response,
        "miscalibration_ckl@10": ckl,
        "list_ndcg@10": test_ndcg,
        "test_target_positions": test_positions,
        "valid": {"miscalibration_ckl@10": valid_ckl, "list_ndcg@10": valid_ndcg},
        "test_users": split.test.len(),
    }))
}

/// Keeps only the validation/test examples with at least `min` events before the target.
fn restrict(split: &mut Split, min: usize) -> Result<()> {
    if min > 0 {
        split.valid.retain(|ex| ex.seen.len() >= min);
        split.test.retain(|ex| ex.seen.len() >= min);
        super::out!("{} test users with at least {min} events", split.test.len())?;
    }
    Ok(())
}

fn describe(ds: &Dataset, split: &Split) -> Result<()> {
    super::out!(
        "{}: {} users, {} items, {} interactions, {} training rows, {} users with < 3 events (train only)",
        ds.name,
        ds.users.len(),
        ds.items.len(),
        ds.num_interactions(),
        split.train_prefixes().count(),
        split.short_users
    )
}
