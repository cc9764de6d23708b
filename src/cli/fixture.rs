//! `ranklet fixture` (hidden): writes the deterministic test fixtures — the tiny random BERT as a
//! bundle and a synthetic shop (catalog.jsonl + events.jsonl) — for the browser tests, which
//! train and compare against the native side without the teacher.

use std::path::PathBuf;

use clap::Args;
use ranklet::Result;
use ranklet::bundle::write_encoder_dir;
use ranklet::data::synthetic::{synthetic_dataset, with_typed_feedback, write_contracts};
use ranklet::fixtures::tiny_bert_files;

#[derive(Debug, Args)]
pub struct FixtureArgs {
    /// Folder to write `encoder/` and `shop/` into.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the tiny encoder's weights.
    #[arg(long, default_value_t = 3)]
    pub seed: u64,
}

pub fn run(args: FixtureArgs) -> Result<()> {
    write_encoder_dir(&args.out.join("encoder"), &tiny_bert_files(args.seed))?;
    // Typed events (likes, dislikes, clicks), so a bundle trained with --event-types and DUMN
    // has learned something for each type that the browser must reproduce.
    write_contracts(
        &with_typed_feedback(synthetic_dataset(60, 40, 5, 12, 1)),
        &args.out.join("shop"),
    )?;
    println!("{}", args.out.display());
    Ok(())
}
