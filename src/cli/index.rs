//! `ranklet index`: parses the arguments into an [`IndexJob`] and prints what it did; the work
//! is `ranklet::index::build`.

use std::path::PathBuf;

use clap::Args;
use ranklet::Result;
use ranklet::index::partition::PartitionConfig;
use ranklet::index::shard::{DEFAULT_DECOYS, DEFAULT_NPROBE, DEFAULT_POPULAR};
use ranklet::index::{CatalogSource, CellLayout, IndexJob, IndexProgress, build_index};

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
    /// Cut the index into shards that a visitor fetches a few at a time (large catalogues):
    /// a number of cells (before cells under --min-shard are merged away), or `auto` (√items).
    #[arg(long, value_parser = parse_partitions)]
    pub partitions: Option<Partitions>,
    /// No shard holds fewer items.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub min_shard: u32,
    /// Shards ranked per recommendation (those nearest to the visitor's state).
    #[arg(long, default_value_t = DEFAULT_NPROBE as u32, value_parser = clap::value_parser!(u32).range(1..))]
    pub nprobe: u32,
    /// Shards fetched with them, at random, so that every recommendation fetches the same
    /// number (nprobe + decoys) whatever the visitor's history.
    #[arg(long, default_value_t = DEFAULT_DECOYS as u32)]
    pub decoys: u32,
    /// Items in the popular shard (the shelf before any click).
    #[arg(long, default_value_t = DEFAULT_POPULAR as u32, value_parser = clap::value_parser!(u32).range(1..))]
    pub popular: u32,
    /// Seed of the clustering.
    #[arg(long, default_value_t = 17)]
    pub seed: u64,
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    #[arg(long)]
    pub quiet: bool,
}

/// `--partitions`: a count, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partitions {
    Auto,
    Count(usize),
}

fn parse_partitions(s: &str) -> std::result::Result<Partitions, String> {
    match s {
        "auto" => Ok(Partitions::Auto),
        n => match n.parse::<usize>() {
            Ok(k) if k >= 1 => Ok(Partitions::Count(k)),
            _ => Err(format!(
                "{n:?} is neither `auto` nor a whole number of at least 1"
            )),
        },
    }
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
        cells: args.partitions.map(|p| CellLayout {
            partition: PartitionConfig {
                partitions: match p {
                    Partitions::Auto => None,
                    Partitions::Count(k) => Some(k),
                },
                min_shard: args.min_shard as usize,
                seed: args.seed,
                ..PartitionConfig::default()
            },
            nprobe: args.nprobe as usize,
            decoys: args.decoys as usize,
            popular: args.popular as usize,
        }),
    };
    let device = args.device.init()?;
    let start = std::time::Instant::now();
    let mut bar: Option<indicatif::ProgressBar> = None;
    let outcome = build_index(&job, &device, |p| match p {
        IndexProgress::Embedding { done, total } => {
            let bar = bar.get_or_insert_with(|| progress_bar(total as u64, "items", args.quiet));
            bar.set_position(done as u64);
        }
        IndexProgress::Partitioning { items } => {
            if let Some(bar) = bar.take() {
                bar.finish_and_clear();
            }
            if !args.quiet {
                eprintln!("clustering {items} item vectors into shards…");
            }
        }
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let seconds = start.elapsed().as_secs_f64();
    super::out!(
        "index of {} items in {}: {} embedded, {} unchanged from the earlier index, {} from an interrupted run, {} dropped; {} new to the model placed by their trained neighbours; {} bytes; {seconds:.1} s ({:.0} items/s embedded)",
        outcome.items,
        args.out.display(),
        outcome.embedded,
        outcome.reused,
        outcome.resumed,
        outcome.dropped,
        outcome.placed_new,
        outcome.bytes,
        outcome.embedded as f64 / seconds.max(1e-9)
    )?;
    Ok(())
}
