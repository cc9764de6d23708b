//! `ranklet eval`: the evaluation protocol (DESIGN.md §5) on a dataset folder, printed as a
//! table and written as JSON. Trained recommenders join as the training issue lands; today the
//! reference baseline is popularity.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};
use ranklet::Result;
use ranklet::data::{Dataset, Split};
use ranklet::eval::popularity::evaluate_popularity;
use serde_json::json;

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
    /// What to evaluate.
    #[arg(long, value_enum, default_value_t = Baseline::Popularity)]
    pub baseline: Baseline,
    /// History length cap (most recent items).
    #[arg(long, default_value_t = 50)]
    pub max_len: usize,
    /// Write the JSON report here (atomically).
    #[arg(long)]
    pub report: Option<PathBuf>,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let ds = Dataset::read_dir(&args.data)?;
    let split = Split::leave_one_out(&ds, args.max_len);
    println!(
        "{}: {} users, {} items, {} interactions, {} training rows, {} users with < 3 events (train only)",
        ds.name,
        ds.users.len(),
        ds.items.len(),
        ds.num_interactions(),
        split.train_prefixes().count(),
        split.short_users
    );
    let start = Instant::now();
    let (valid, _) = evaluate_popularity(&split, ds.items.len(), &split.valid);
    let (test, test_masked) = evaluate_popularity(&split, ds.items.len(), &split.test);
    let eval_seconds = start.elapsed().as_secs_f64();
    super::print_metrics(
        "popularity",
        &[
            ("valid", &valid),
            ("test", &test),
            ("test (seen items masked)", &test_masked),
        ],
    );
    if let Some(path) = &args.report {
        let report = json!({
            "dataset": ds.name,
            "protocol": format!("leave-one-out, stable time order, full ranking over all items, history cap {}; headline unmasked, test_masked masks every item seen before the target", args.max_len),
            "models": [{
                "name": "popularity",
                "mode": "baseline",
                "params": 0,
                "eval_seconds": eval_seconds,
                "valid": valid.means(),
                "test": test.means(),
                "test_masked": test_masked.means(),
            }],
        });
        super::write_report(path, report)?;
    }
    Ok(())
}
