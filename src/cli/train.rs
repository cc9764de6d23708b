//! `ranklet train`: trains the recommender on a dataset folder with any text-encoder folder and
//! reports the protocol's figures (valid for selection, test unmasked and masked).

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use clap::{Args, ValueEnum};
use ranklet::bundle::read_model_dir;
use ranklet::data::{Dataset, Split};
use ranklet::rec::text_vectors::{TextVectorCache, model_key};
use ranklet::rec::{
    ItemMode, ItemTowerConfig, Recommender, RecommenderConfig, SequenceEncoderConfig,
};
use ranklet::text::TextEmbedder;
use ranklet::train::{TrainConfig, evaluate_model, train};
use ranklet::{Error, Result};
use serde_json::json;

use super::{DeviceArg, progress};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Inductive,
    Transductive,
    Id,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Dataset folder (RecBole atomic files or catalog + events).
    #[arg(long)]
    pub data: PathBuf,
    /// Text-encoder folder for the item texts (not used in `id` mode).
    #[arg(long, default_value = "models/teacher")]
    pub text_model: PathBuf,
    /// Item representation.
    #[arg(long, value_enum, default_value_t = ModeArg::Inductive)]
    pub mode: ModeArg,
    #[arg(long, default_value_t = 200)]
    pub epochs: usize,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    /// Epochs without a better validation NDCG@10 before stopping.
    #[arg(long, default_value_t = 10)]
    pub patience: usize,
    #[arg(long, default_value_t = 300)]
    pub hidden: usize,
    #[arg(long, default_value_t = 2)]
    pub layers: usize,
    #[arg(long, default_value_t = 2)]
    pub heads: usize,
    #[arg(long, default_value_t = 256)]
    pub inner: usize,
    #[arg(long, default_value_t = 0.5)]
    pub dropout: f64,
    /// Whitening experts of the MoE adaptor.
    #[arg(long, default_value_t = 8)]
    pub experts: usize,
    #[arg(long, default_value_t = 0.07)]
    pub temperature: f64,
    /// History cap.
    #[arg(long, default_value_t = 50)]
    pub max_len: usize,
    #[arg(long, default_value_t = 2020)]
    pub seed: u64,
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// Where cached item text vectors live.
    #[arg(long, default_value = ".cache/vectors")]
    pub cache: PathBuf,
    /// Write the JSON report here (atomically).
    #[arg(long)]
    pub report: Option<PathBuf>,
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: TrainArgs) -> Result<()> {
    if args.heads == 0 || !args.hidden.is_multiple_of(args.heads) {
        return Err(Error::bad_input(
            "--hidden/--heads",
            "hidden must be a positive multiple of heads",
        ));
    }
    if args.max_len == 0 || args.batch_size == 0 || args.experts == 0 {
        return Err(Error::bad_input(
            "ranklet train",
            "--max-len, --batch-size and --experts must be at least 1",
        ));
    }
    let ds = Dataset::read_dir(&args.data)?;
    let split = Split::leave_one_out(&ds, args.max_len);
    let base = args.device.init()?;
    base.seed(args.seed);
    let device = base.clone().autodiff();
    let mode = match args.mode {
        ModeArg::Inductive => ItemMode::Inductive,
        ModeArg::Transductive => ItemMode::Transductive,
        ModeArg::Id => ItemMode::Id,
    };

    // Frozen text vectors (cached per model and text).
    let (text_dim, text) = if mode == ItemMode::Id {
        (1, Tensor::<2>::zeros([ds.items.len(), 1], &device))
    } else {
        let files = read_model_dir(&args.text_model)?;
        let embedder = TextEmbedder::from_files(&files, &base)?;
        let texts: Vec<String> = ds.items.iter().map(|i| i.text.clone()).collect();
        let bar = progress(texts.len() as u64, "item texts", args.quiet);
        let (vectors, stats) = TextVectorCache::new(&args.cache).vectors(
            &embedder,
            &model_key(&files),
            &texts,
            64,
            |n| bar.set_position(n as u64),
        )?;
        bar.finish_and_clear();
        eprintln!(
            "item texts: {} from the cache, {} embedded with {}",
            stats.reused, stats.embedded, files.name
        );
        let dim = embedder.dim();
        let flat: Vec<f32> = vectors.into_iter().flatten().collect();
        (
            dim,
            Tensor::<2>::from_data(TensorData::new(flat, [ds.items.len(), dim]), &device),
        )
    };

    let config = RecommenderConfig {
        items: ItemTowerConfig {
            text_dim,
            hidden: args.hidden,
            experts: args.experts,
            dropout: 0.2,
            mode,
            num_items: ds.items.len(),
        },
        sequence: SequenceEncoderConfig {
            hidden: args.hidden,
            layers: args.layers,
            heads: args.heads,
            inner: args.inner,
            dropout: args.dropout,
            max_len: args.max_len,
        },
        temperature: args.temperature,
    };
    let train_config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        weight_decay: args.weight_decay,
        patience: args.patience,
        max_len: args.max_len,
        seed: args.seed,
    };
    let model = Recommender::init(&config, &device);
    let bar = progress(args.epochs as u64, "epochs", args.quiet);
    let (best, log) = train(model, &text, &split, &train_config, |e| {
        bar.set_position(e.epoch as u64);
        bar.set_message(format!(
            "loss {:.4} valid NDCG@10 {:.4}",
            e.loss, e.valid_ndcg10
        ));
        if args.quiet {
            return;
        }
        let line = format!(
            "epoch {:>3}: loss {:.4}, valid NDCG@10 {:.4}, {:.1} s",
            e.epoch, e.loss, e.valid_ndcg10, e.seconds
        );
        // indicatif drops println on a hidden bar (stderr not a terminal): print plainly then.
        if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
    });
    bar.finish_and_clear();
    let plain_text = text.inner();
    let start = Instant::now();
    let (valid, _) = evaluate_model(&best, &plain_text, &split.valid, 256);
    let (test, test_masked) = evaluate_model(&best, &plain_text, &split.test, 256);
    let eval_seconds = start.elapsed().as_secs_f64();
    super::print_metrics(
        &format!("{mode:?}").to_lowercase(),
        &[
            ("valid", &valid),
            ("test", &test),
            ("test (seen items masked)", &test_masked),
        ],
    );
    if let Some(path) = &args.report {
        let best_epoch = log
            .iter()
            .max_by(|a, b| a.valid_ndcg10.total_cmp(&b.valid_ndcg10))
            .map(|e| e.epoch);
        let report = json!({
            "dataset": ds.name,
            "protocol": format!("leave-one-out, stable time order, full ranking over all items, history cap {}; test_masked masks every item seen before the target", args.max_len),
            "models": [{
                "name": format!("ranklet-{}", format!("{mode:?}").to_lowercase()),
                "mode": format!("{mode:?}").to_lowercase(),
                "params": best.num_params(),
                "epochs": log.len(),
                "best_epoch": best_epoch,
                "epoch_seconds": log.iter().map(|e| e.seconds).sum::<f64>() / log.len().max(1) as f64,
                "eval_seconds": eval_seconds,
                "config": config,
                "train": train_config,
                "log": log,
                "valid": valid.means(),
                "test": test.means(),
                "test_masked": test_masked.means(),
            }],
        });
        super::write_report(path, report)?;
    }
    Ok(())
}
