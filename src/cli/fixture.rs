//! `ranklet fixture` (hidden): writes the deterministic test fixtures — the tiny random BERT as a
//! bundle and a synthetic shop (catalog.jsonl + events.jsonl) — for the browser tests, which
//! train and compare against the native side without the teacher.

use std::path::PathBuf;

use clap::Args;
use ranklet::bundle::write_encoder_dir;
use ranklet::data::synthetic::synthetic_dataset;
use ranklet::fixtures::tiny_bert_files;
use ranklet::{Error, Result};

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
    let shop = args.out.join("shop");
    std::fs::create_dir_all(&shop).map_err(|e| Error::io(shop.display(), e))?;
    let ds = synthetic_dataset(60, 40, 5, 12, 1);
    let catalog: String = ds
        .items
        .iter()
        .map(|it| format!("{}\n", serde_json::json!({"id": it.id, "title": it.text})))
        .collect();
    let mut events = String::new();
    for (u, seq) in ds.sequences.iter().enumerate() {
        for (t, &i) in seq.iter().enumerate() {
            events.push_str(&format!(
                "{}\n",
                serde_json::json!({"user": ds.users[u], "item": ds.items[i].id, "ts": 1_700_000_000 + t, "event": "click"})
            ));
        }
    }
    ranklet::fsio::write_atomic(&shop.join("catalog.jsonl"), catalog.as_bytes())?;
    ranklet::fsio::write_atomic(&shop.join("events.jsonl"), events.as_bytes())?;
    println!("{}", args.out.display());
    Ok(())
}
