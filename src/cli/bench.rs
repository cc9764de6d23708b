//! `ranklet bench …`: speed figures printed (and written as JSON), never asserted.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use ranklet::Result;
use ranklet::bundle::read_model_dir;
use ranklet::data::synthetic::product_titles;
use ranklet::text::TextEmbedder;
use serde_json::json;

use super::DeviceArg;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Texts per second of a text encoder on synthetic 10–20-word product titles.
    Embed(BenchEmbedArgs),
}

#[derive(Debug, Args)]
pub struct BenchEmbedArgs {
    /// Model folder.
    #[arg(long, default_value = "models/teacher")]
    pub model: PathBuf,
    /// Devices to measure (repeatable); `gpu` is skipped with a printed reason when no adapter
    /// exists.
    #[arg(long = "device", value_enum, default_values_t = [DeviceArg::Cpu])]
    pub devices: Vec<DeviceArg>,
    /// Batch sizes to measure (repeatable).
    #[arg(long = "batch", default_values_t = [1u32, 32], value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batches: Vec<u32>,
    /// Texts embedded per measurement (after one warm-up batch).
    #[arg(long, default_value_t = 256, value_parser = super::at_least_one)]
    pub texts: usize,
    /// Also write the figures as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Embed(args) => embed(args),
    }
}

fn embed(args: BenchEmbedArgs) -> Result<()> {
    let files = read_model_dir(&args.model)?;
    let titles = product_titles(args.texts, 42);
    let mut results = Vec::new();
    let mut skipped = Vec::new();
    for device_arg in &args.devices {
        let device = match device_for_bench(*device_arg) {
            Ok(d) => d,
            Err(reason) => {
                super::out!("{device_arg:?}: skipped — {reason}")?;
                skipped.push(
                    json!({"device": format!("{device_arg:?}").to_lowercase(), "reason": reason}),
                );
                continue;
            }
        };
        let embedder = TextEmbedder::from_files(&files, &device)?;
        let tokens: usize = titles
            .iter()
            .map(|t| embedder.tokenizer.encode(t).map(|ids| ids.len()))
            .sum::<Result<usize>>()?;
        for &batch in &args.batches {
            let batch = batch.max(1) as usize;
            let seconds = embedder.seconds_to_embed(&titles, batch)?;
            let per_s = titles.len() as f64 / seconds;
            super::out!(
                "{:<4} batch {:>3}: {:>8.1} texts/s ({} texts, {:.1} word-pieces/text, {:.2} s)",
                format!("{device_arg:?}").to_lowercase(),
                batch,
                per_s,
                titles.len(),
                tokens as f64 / titles.len() as f64,
                seconds
            )?;
            results.push(json!({
                "device": format!("{device_arg:?}").to_lowercase(),
                "batch": batch,
                "texts": titles.len(),
                "seconds": seconds,
                "texts_per_s": per_s,
                "mean_word_pieces": tokens as f64 / titles.len() as f64,
            }));
        }
    }
    if let Some(path) = &args.json {
        let report = json!({
            "model": files.name,
            "texts": "data::synthetic::product_titles(n, 42): synthetic 10–20-word product titles",
            "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "results": results,
            "skipped": skipped,
        });
        super::write_report(path, report)?;
    }
    Ok(())
}

/// The device to measure, or why not: a CPU-emulated GPU adapter (llvmpipe, SwiftShader) says
/// nothing about GPU speed and takes minutes, so it is skipped unless RANKLET_WGPU_SOFTWARE=1.
fn device_for_bench(arg: DeviceArg) -> std::result::Result<burn::prelude::Device, String> {
    match arg {
        DeviceArg::Cpu | DeviceArg::Cuda => arg.init().map_err(|e| e.to_string()),
        DeviceArg::Gpu => {
            let gpu = ranklet::device::init_gpu().map_err(|e| e.to_string())?;
            if gpu.software && std::env::var_os("RANKLET_WGPU_SOFTWARE").is_none() {
                return Err(format!(
                    "the only adapter, {}, is CPU-emulated (RANKLET_WGPU_SOFTWARE=1 measures it anyway)",
                    gpu.adapter
                ));
            }
            eprintln!("gpu: {}", gpu.adapter);
            Ok(gpu.device)
        }
    }
}
