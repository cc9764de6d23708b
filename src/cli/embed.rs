//! `ranklet embed`: texts or catalog items → JSONL `{"id","embedding"}`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use ranklet::bundle::read_model_dir;
use ranklet::data::{TextRecord, read_text_records};
use ranklet::text::TextEmbedder;
use ranklet::text::tokenizer::MAX_TEXT_BYTES;
use ranklet::{Error, Result};

use super::{DeviceArg, progress_bar};

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Model folder: a ranklet bundle (manifest.json) or a HF/sentence-transformers folder.
    #[arg(long, default_value = "models/teacher")]
    pub model: PathBuf,
    /// A text to embed (repeatable); ids are "0", "1", … in order.
    #[arg(long = "text", conflicts_with = "input")]
    pub texts: Vec<String>,
    /// JSONL or JSON array of {"id","text"} records or catalog items (docs/design.md, Contracts).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Write JSONL here (atomically) instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_size: u32,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: EmbedArgs) -> Result<()> {
    // Where the output goes is checked before any work: a long embedding must not end in
    // "no such folder".
    if let Some(out) = &args.output {
        let folder = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        if !folder.is_dir() {
            return Err(Error::bad_input(
                out.display().to_string(),
                format!("--output's folder {} does not exist", folder.display()),
            ));
        }
        if out.is_dir() {
            return Err(Error::bad_input(
                out.display().to_string(),
                "--output is a folder; give a file path",
            ));
        }
    }
    let records = if let Some(path) = &args.input {
        if path.is_dir() {
            return Err(Error::bad_input(
                path.display().to_string(),
                "--input is a folder; give a JSONL or JSON file",
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::bad_input(path.display().to_string(), "no such input file")
            }
            _ => Error::Io {
                path: path.display().to_string(),
                source: e,
            },
        })?;
        read_text_records(&bytes, &path.display().to_string())?
    } else if args.texts.is_empty() {
        return Err(Error::bad_input(
            "ranklet embed",
            "nothing to embed: give --text TEXT or --input FILE",
        ));
    } else {
        args.texts
            .iter()
            .enumerate()
            .map(|(i, t)| TextRecord {
                id: i.to_string(),
                text: t.clone(),
            })
            .collect()
    };

    if let Some(r) = records.iter().find(|r| r.text.len() > MAX_TEXT_BYTES) {
        return Err(Error::bad_input(
            format!("text of id {:?}", r.id),
            format!(
                "{} bytes is longer than the {MAX_TEXT_BYTES} bytes ranklet accepts",
                r.text.len()
            ),
        ));
    }

    let device = args.device.init()?;
    let files = read_model_dir(&args.model)?;
    let embedder = TextEmbedder::from_files(&files, &device)?;
    warn_about_inputs(&records, &embedder, args.batch_size as usize);

    let bar = progress_bar(
        records.len() as u64,
        "texts",
        args.quiet || args.input.is_none(),
    );
    let mut out = Vec::with_capacity(records.len() * embedder.dim() * 12);
    for chunk in records.chunks(args.batch_size as usize) {
        let texts: Vec<&str> = chunk.iter().map(|r| r.text.as_str()).collect();
        let vectors = embedder.embed(&texts)?;
        for (record, vector) in chunk.iter().zip(vectors) {
            serde_json::to_writer(
                &mut out,
                &serde_json::json!({"id": record.id, "embedding": vector}),
            )
            .expect("JSON to memory");
            out.push(b'\n');
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();

    match &args.output {
        Some(path) => ranklet::fsio::write_atomic(path, &out)?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&out)
                .and_then(|_| stdout.flush())
                .map_err(|e| Error::io("stdout", e))?;
        }
    }
    Ok(())
}

/// Warnings, once each, about what the vectors will not reflect or what the run will cost: empty
/// texts (embedded as [CLS] [SEP]), texts longer than the model reads (their ends are cut), and
/// a batch size whose activations take gigabytes.
fn warn_about_inputs(records: &[TextRecord], embedder: &TextEmbedder, batch: usize) {
    let empty = records.iter().filter(|r| r.text.trim().is_empty()).count();
    if empty > 0 {
        let first = records
            .iter()
            .find(|r| r.text.trim().is_empty())
            .map(|r| r.id.as_str());
        eprintln!(
            "warning: {empty} empty text(s) (first: id {:?}); their vectors say nothing about the item",
            first.unwrap_or_default()
        );
    }
    let max_len = embedder.tokenizer.max_len();
    let cut = records
        .iter()
        .filter(|r| embedder.tokenizer.truncates(&r.text))
        .count();
    if cut > 0 {
        eprintln!(
            "warning: {cut} of {} texts are longer than the model's {max_len} word-pieces; only their beginnings are embedded",
            records.len()
        );
    }
    // Measured: 4096 texts per batch took 4.7 GB with the teacher at 256 word-pieces; the
    // activations grow with batch × length × width.
    let c = &embedder.config;
    let gib = 4.7
        * (batch.min(records.len()) as f64 / 4096.0)
        * (max_len as f64 / 256.0)
        * (c.hidden_size as f64 / 384.0);
    if gib > 1.0 {
        eprintln!(
            "warning: --batch-size {batch} holds about {gib:.1} GB of activations at once; 32–256 embeds as fast with far less memory"
        );
    }
}
