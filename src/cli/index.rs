//! `ranklet index`: parses the arguments into an [`IndexJob`] and prints what it did; the work
//! is `ranklet::index::build`.

use std::path::PathBuf;

use clap::Args;
use ranklet::Result;
use ranklet::index::{CatalogSource, IndexJob, build_index};

use super::{DeviceArg, progress_bar};

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// A trained recommender bundle (`ranklet train --out`).
    #[arg(long)]
    pub model: PathBuf,
    /// The catalogue to index (JSON array or JSONL of catalogue items).
    #[arg(long, conflicts_with = "data", required_unless_present = "data")]
    pub catalog: Option<PathBuf>,
    /// Or a dataset folder whose items are the catalogue.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The index folder to write (served next to the bundle).
    #[arg(long)]
    pub out: PathBuf,
    /// Keep the rows of items already in the index at --out whose text did not change (built
    /// with the same model); embed new and changed items; drop removed ones.
    #[arg(long)]
    pub update: bool,
    /// Texts per encoder batch.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_size: u32,
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: IndexArgs) -> Result<()> {
    let catalog = match (&args.catalog, &args.data) {
        (Some(file), _) => CatalogSource::File(file.clone()),
        (None, Some(dir)) => CatalogSource::Data(dir.clone()),
        (None, None) => unreachable!("clap requires --catalog or --data"),
    };
    let job = IndexJob {
        model: args.model.clone(),
        catalog,
        out: args.out.clone(),
        update: args.update,
        batch: args.batch_size as usize,
    };
    let device = args.device.init()?;
    let start = std::time::Instant::now();
    let mut bar: Option<indicatif::ProgressBar> = None;
    let outcome = build_index(&job, &device, |done, total| {
        let bar = bar.get_or_insert_with(|| progress_bar(total as u64, "items", args.quiet));
        bar.set_position(done as u64);
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let seconds = start.elapsed().as_secs_f64();
    super::out!(
        "index of {} items in {}: {} embedded, {} unchanged from the earlier index, {} from an interrupted run, {} dropped; {} bytes; {seconds:.1} s ({:.0} items/s embedded)",
        outcome.items,
        args.out.display(),
        outcome.embedded,
        outcome.reused,
        outcome.resumed,
        outcome.dropped,
        outcome.bytes,
        outcome.embedded as f64 / seconds.max(1e-9)
    )?;
    Ok(())
}
