//! Command-line interface: argument definitions and dispatch.

mod bench;
mod distill;
mod embed;
mod eval;
#[cfg(feature = "fixtures")]
mod fixture;
mod index;
mod progress;
mod recommend;
mod serve;
mod train;
mod vectors;
mod worker;

use burn::prelude::Device;
use clap::{Parser, Subcommand, ValueEnum};
use ranklet::device::{DeviceSpec, NamedDevice};
use ranklet::rec::HistorySelect;
use ranklet::{Error, Result};

/// `println!` that returns an error instead of panicking when stdout is gone (a closed pipe,
/// `ranklet recommend … | head -1`); `main` ends such a run quietly with success.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*).map_err(|e| ranklet::Error::io("stdout", e))
    }};
}
pub(crate) use out;

/// Whether `err` is stdout closed by its reader (the rest of the output is not wanted).
pub fn is_closed_stdout(err: &Error) -> bool {
    matches!(err, Error::Io { path, source } if path == "stdout" && source.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Exit status for input the user can fix (bad flags, texts, catalog or model files).
/// clap's own usage errors exit with 2 too.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit status for failures of the program or the machine (I/O, compute backend).
pub const EXIT_INTERNAL: u8 = 1;

/// ranklet: an on-device recommender — native tools.
#[derive(Debug, Parser)]
#[command(name = "ranklet", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Embed texts or catalog items with a text encoder; JSONL {"id","embedding"} out.
    Embed(embed::EmbedArgs),
    /// Benchmarks that print figures (and write JSON with --json).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Evaluate on a dataset with the full-ranking leave-one-out protocol.
    Eval(eval::EvalArgs),
    /// Precompute a catalogue's item vectors as an index folder served next to the bundle (the
    /// browser then ranks without embedding the catalogue).
    Index(index::IndexArgs),
    /// Recommend from a trained bundle after a history of item ids.
    Recommend(recommend::RecommendArgs),
    /// Train the recommender on a dataset and report the protocol's figures.
    Train(Box<train::TrainArgs>),
    /// Distil the teacher into the browser student (HomoDistil pruning + LRC-BERT).
    Distill(Box<distill::DistillArgs>),
    /// Write the deterministic test fixtures (tiny encoder bundle, synthetic shop); only in a
    /// build with `--features fixtures` (the test build).
    #[cfg(feature = "fixtures")]
    #[command(hide = true)]
    Fixture(fixture::FixtureArgs),
    /// Serve a folder over HTTP on 127.0.0.1 (the demo and the browser tests use it).
    Serve(serve::ServeArgs),
    /// Lend this process's device to a data-parallel `train` or `distill` run on another
    /// process or host (its leader names it in `--devices ws://host:port`).
    Worker(worker::WorkerArgs),
}

/// A count that must be at least 1 (a width, a number of layers, heads or experts): 0 is
/// refused when the arguments are parsed, not deep inside the model.
pub fn at_least_one(s: &str) -> std::result::Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("not a whole number: {e}")),
    }
}

/// A probability in [0, 1) (a dropout rate).
pub fn probability(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(p) if (0.0..1.0).contains(&p) => Ok(p),
        Ok(p) => Err(format!("{p} is not in [0, 1)")),
        Err(e) => Err(format!("not a number: {e}")),
    }
}

fn finite(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(v) => Err(format!("{v} is not a finite number")),
        Err(e) => Err(format!("not a number: {e}")),
    }
}

/// A rate or scale that must be finite and above 0 (a learning rate, a temperature).
pub fn positive(s: &str) -> std::result::Result<f64, String> {
    finite(s).and_then(|v| {
        if v > 0.0 {
            Ok(v)
        } else {
            Err(format!("{v} is not above 0"))
        }
    })
}

/// A finite weight that may be 0 (a loss weight, a decay, a step size; 0 turns it off).
pub fn non_negative(s: &str) -> std::result::Result<f64, String> {
    finite(s).and_then(|v| {
        if v >= 0.0 {
            Ok(v)
        } else {
            Err(format!("{v} is below 0"))
        }
    })
}

/// A share in [0, 1] (a fraction of words, steps or strength).
pub fn share(s: &str) -> std::result::Result<f64, String> {
    finite(s).and_then(|v| {
        if (0.0..=1.0).contains(&v) {
            Ok(v)
        } else {
            Err(format!("{v} is not in [0, 1]"))
        }
    })
}

/// [`share`] as f32, for the flags stored as f32.
pub fn share_f32(s: &str) -> std::result::Result<f32, String> {
    share(s).map(|v| v as f32)
}

/// [`non_negative`] as f32.
pub fn non_negative_f32(s: &str) -> std::result::Result<f32, String> {
    non_negative(s).map(|v| v as f32)
}

/// How `eval` and `recommend` read a history longer than the model's window.
#[derive(Debug, Clone, clap::Args)]
pub struct HistorySelectArgs {
    /// Which events of a history longer than the model's cap it reads: the newest (`last`) or
    /// the newest `--recent` plus the older ones nearest to them (`relevant`), as the browser.
    #[arg(long, default_value_t = HistorySelect::Last,
          value_parser = clap::builder::TypedValueParser::try_map(clap::builder::PossibleValuesParser::new(HistorySelect::NAMES),
              |s| s.parse::<HistorySelect>()))]
    pub history_select: HistorySelect,
    /// The recent window kept by `--history-select relevant`.
    #[arg(long, default_value_t = 20)]
    pub recent: usize,
}

/// Which compute device runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// burn's pure-Rust `flex` CPU backend.
    Cpu,
    /// burn's WGPU backend (Vulkan, Metal or DX12: any desktop GPU).
    Gpu,
    /// burn's CUDA backend (NVIDIA; builds with `--features cuda`).
    Cuda,
}

/// How `train` and `distill` cut batches across several devices, and how long they wait.
#[derive(Debug, clap::Args)]
pub struct ShardArgs {
    /// With several devices, cut every batch into equal shards instead of shards sized to
    /// each device's measured speed: slower (a worker's shard waits for the slowest device) but
    /// the same cut in every run, so figures that depend on the cut (pre-training's in-batch
    /// negatives, distillation's stage-2 similarity) are reproducible.
    #[arg(long)]
    pub even_shards: bool,
    /// With several devices: seconds a step waits for a device's gradients before the run
    /// stops with an error naming it (a worker whose host vanished without closing its
    /// connection); 0 waits for ever.
    #[arg(long, default_value_t = 300.0, value_parser = non_negative)]
    pub replica_timeout: f64,
}

impl ShardArgs {
    /// `--replica-timeout` as a limit (`None`: wait for ever).
    pub fn timeout(&self) -> Option<std::time::Duration> {
        (self.replica_timeout > 0.0)
            .then(|| std::time::Duration::from_secs_f64(self.replica_timeout))
    }
}

/// `--devices`: a count of `--device`'s kind (GPUs 0..N), or a comma-separated list of devices,
/// `cpu`, `gpu:N`, `cuda:N` or `ranklet worker` addresses `ws://host:port[/N]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicesArg {
    Count(u16),
    List(Vec<DeviceSpec>),
}

impl std::str::FromStr for DevicesArg {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if let Ok(n) = s.parse::<u16>() {
            return if n == 0 {
                Err("at least one device".into())
            } else {
                Ok(DevicesArg::Count(n))
            };
        }
        let specs: Vec<DeviceSpec> = s
            .split(',')
            .map(|d| d.trim().parse::<DeviceSpec>().map_err(|e| e.to_string()))
            .collect::<std::result::Result<_, _>>()?;
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = specs
            .iter()
            .find(|d| !matches!(d, DeviceSpec::Cpu) && !seen.insert(d.to_string()))
        {
            return Err(format!("{twice} is named twice"));
        }
        Ok(DevicesArg::List(specs))
    }
}

impl DevicesArg {
    /// Opens the devices, the first being the model's. A count of CPU devices gives that many
    /// handles on the one CPU device (the same code path, for checking it; no speed-up: for
    /// more cores, run a `ranklet worker` per core).
    pub fn open(&self, kind: DeviceArg) -> Result<Vec<NamedDevice>> {
        match self {
            DevicesArg::Count(1) => Ok(vec![NamedDevice {
                name: format!("{kind:?}").to_lowercase(),
                device: kind.init()?,
            }]),
            DevicesArg::Count(n) => (0..usize::from(*n))
                .map(|i| match kind {
                    DeviceArg::Cpu => DeviceSpec::Cpu.open().map(|d| NamedDevice {
                        name: format!("cpu (replica {i})"),
                        ..d
                    }),
                    DeviceArg::Gpu => DeviceSpec::Gpu(i).open(),
                    DeviceArg::Cuda => DeviceSpec::Cuda(i).open(),
                })
                .collect(),
            DevicesArg::List(specs) => specs
                .iter()
                .map(|spec| {
                    let opened = spec.open()?;
                    if let DeviceSpec::Worker { .. } = spec {
                        eprintln!("devices: connected to worker {spec}");
                    }
                    Ok(opened)
                })
                .collect(),
        }
    }
}

impl DeviceArg {
    pub fn init(self) -> Result<Device> {
        match self {
            DeviceArg::Cpu => Ok(Device::flex()),
            DeviceArg::Gpu => {
                let gpu = ranklet::device::init_gpu()
                    .map_err(|e| Error::Backend(format!("--device gpu: {e}; use --device cpu")))?;
                eprintln!(
                    "gpu: {}{}",
                    gpu.adapter,
                    if gpu.software {
                        " — CPU-emulated, slow"
                    } else {
                        ""
                    }
                );
                Ok(gpu.device)
            }
            #[cfg(feature = "cuda")]
            DeviceArg::Cuda => Ok(Device::cuda(0)),
            #[cfg(not(feature = "cuda"))]
            DeviceArg::Cuda => Err(Error::bad_input(
                "--device cuda",
                "this build has no CUDA backend; rebuild with `cargo build --release --features cuda` \
                 or use --device gpu (WGPU runs on NVIDIA GPUs too)",
            )),
        }
    }
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Embed(args) => embed::run(args),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Eval(args) => eval::run(args),
        #[cfg(feature = "fixtures")]
        Command::Fixture(args) => fixture::run(args),
        Command::Index(args) => index::run(args),
        Command::Recommend(args) => recommend::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Train(args) => train::run(*args),
        Command::Distill(args) => distill::run(*args),
        Command::Worker(args) => worker::run(args),
    }
}

/// A progress bar on stderr for `total` items (hidden when stderr is not a terminal or
/// `quiet`), showing items/s and ETA.
pub fn progress_bar(total: u64, unit: &str, quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    let template = format!(
        "{{prefix}} {{bar:30}} {{pos}}/{{len}} {unit} · {{per_sec}} · {{elapsed_precise}} · ETA {{eta}} {{msg}}"
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(&template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// Writes a JSON report atomically, with the command line that produced it under "command".
///
/// A report with a `"models"` list joins an existing report of the same dataset at `path`:
/// its models replace those of the same name and the others are kept, so several commands
/// (one per model) build one comparison table. Each model records its own command.
pub fn write_report(path: &std::path::Path, mut report: serde_json::Value) -> Result<()> {
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    report["command"] = command.clone().into();
    if let Some(models) = report["models"].as_array_mut() {
        for m in models.iter_mut() {
            m["command"] = command.clone().into();
        }
    }
    let earlier = match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        read => {
            let parsed: Option<serde_json::Value> =
                read.ok().and_then(|b| serde_json::from_slice(&b).ok());
            match parsed {
                Some(e) if e["dataset"] == report["dataset"] => Some(e),
                // Another dataset's report, or a file that is not one: never overwritten.
                other => {
                    let why = match &other {
                        Some(e) => format!("a report of dataset {}", e["dataset"]),
                        None => "a file that is not a readable JSON report".to_string(),
                    };
                    let kept = keep_beside(path)?;
                    eprintln!(
                        "note: {} held {why}; it is kept as {} and a new report is written",
                        path.display(),
                        kept.display()
                    );
                    None
                }
            }
        }
    };
    if let Some(earlier) = earlier
        && let Some(new_models) = report["models"].as_array().cloned()
    {
        let names: Vec<&serde_json::Value> = new_models.iter().map(|m| &m["name"]).collect();
        let mut merged: Vec<serde_json::Value> = earlier["models"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|m| !names.contains(&&m["name"]))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        merged.extend(new_models);
        report["models"] = merged.into();
        for (k, v) in earlier.as_object().into_iter().flatten() {
            if report.get(k).is_none() {
                report[k] = v.clone();
            }
        }
    }
    let text = serde_json::to_string_pretty(&report).expect("JSON values serialise");
    ranklet::fsio::write_atomic(path, text.as_bytes())
}

/// Renames `path` to the first free `path.N.bak`; returns the new name.
fn keep_beside(path: &std::path::Path) -> Result<std::path::PathBuf> {
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let kept = (1..)
        .map(|n| path.with_file_name(format!("{name}.{n}.bak")))
        .find(|p| !p.exists())
        .expect("some free name");
    std::fs::rename(path, &kept).map_err(|e| {
        Error::bad_input(
            path.display().to_string(),
            format!(
                "cannot keep the earlier report aside as {} ({e})",
                kept.display()
            ),
        )
    })?;
    Ok(kept)
}

/// Prints the protocol's metrics, one row per (label, metrics).
pub fn print_metrics(title: &str, rows: &[(&str, &ranklet::eval::Metrics)]) -> Result<()> {
    const NAMES: [&str; 5] = ["recall@10", "ndcg@10", "mrr@10", "recall@20", "ndcg@20"];
    out!("{title:<28} {}", NAMES.map(|n| format!("{n:>9}")).join(" "))?;
    for (label, m) in rows {
        let means = m.means();
        out!(
            "{label:<28} {}",
            NAMES.map(|n| format!("{:>9.4}", means[n])).join(" ")
        )?;
    }
    Ok(())
}
