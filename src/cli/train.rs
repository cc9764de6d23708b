//! `ranklet train`: trains the recommender on a dataset folder with any text-encoder folder and
//! reports the protocol's figures (valid for selection, test unmasked and masked).

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use clap::{Args, ValueEnum};
use ranklet::bundle::read_model_dir;
use ranklet::bundle::{RecommenderEntry, RecommenderFiles, read_recommender_dir, write_bundle};
use ranklet::data::{Dataset, Split};
use ranklet::eval::popularity::evaluate_popularity;
use ranklet::rec::{
    ItemMode, ItemTowerConfig, PersonaVocabulary, RecDtype, Recommender, RecommenderConfig,
    SequenceEncoderConfig, SignalsConfig, persona::MAX_FACETS,
};
use ranklet::text::TextEmbedder;
use ranklet::text::weights::{StoredDtype, save_encoder};
use ranklet::train::text_tuning::{TextTuneConfig, split_encoder, tune_text, with_top};
use ranklet::train::{
    CheckpointOptions, EpochLog, TrainConfig, TrainObserver, Trained, TwoViews, evaluate_model,
    train_with_views,
};
use ranklet::{Error, Result};
use serde_json::json;

use super::vectors::item_text_vectors;
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
    /// Train data-parallel on this many devices of --device's kind (GPUs 0..N): each batch is
    /// split across them and their gradients summed. Figures match one device's up to float
    /// rounding when fine-tuning; pre-training's in-batch negatives become each shard's.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub devices: u16,
    /// Where cached item text vectors live.
    #[arg(long, default_value = ".cache/vectors")]
    pub cache: PathBuf,
    /// Write the trained recommender as a bundle folder here (text encoder + rec.safetensors +
    /// items.json + manifest.json with the figures).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Checkpoint folder, written atomically after every epoch
    /// [default: .cache/checkpoints/train-<mode>-<seed>].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Continue the run saved in the checkpoint folder (same arguments; --epochs and
    /// --patience may change). Figures match a run that was never interrupted.
    #[arg(long, conflicts_with = "restart")]
    pub resume: bool,
    /// Discard an existing checkpoint and start over.
    #[arg(long)]
    pub restart: bool,
    /// Pre-training epochs with UniSRec's contrastive losses (sequence–item + λ·sequence–
    /// sequence) before fine-tuning.
    #[arg(long, default_value_t = 0)]
    pub pretrain_epochs: usize,
    /// λ, the weight of the sequence–sequence loss in pre-training.
    #[arg(long, default_value_t = 1e-3)]
    pub lambda: f64,
    /// Item-drop probability of the augmented sequence in pre-training.
    #[arg(long, default_value_t = 0.2)]
    pub item_drop: f32,
    /// Parameter-efficient fine-tuning: keep the sequence encoder frozen, train the item tower
    /// (MoE adaptor, ID embedding) only. Usually with --init.
    #[arg(long)]
    pub freeze_encoder: bool,
    /// Start from the recommender of this bundle (same shape), e.g. a pre-trained one. With
    /// --epochs 0 the recommender is not trained further (e.g. to tune the text layers only).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Teacher training proper: after the recommender's training, fine-tune the top K layers of
    /// the text encoder together with it (in-batch negatives; inductive mode). The bundle then
    /// carries the tuned encoder. 0 keeps the encoder frozen. GPU recommended.
    #[arg(long, default_value_t = 0)]
    pub tune_text_layers: usize,
    /// Epochs of text tuning (early stopping on validation NDCG@10, patience 2).
    #[arg(long, default_value_t = 5)]
    pub text_epochs: usize,
    /// AdamW learning rate of the tuned text layers (the recommender uses --lr / 10 meanwhile).
    #[arg(long, default_value_t = 5e-5)]
    pub text_lr: f64,
    /// Cold start: hold out this fraction of the items from training entirely (seeded) and
    /// report the test users whose target is one of them, against popularity.
    #[arg(long, default_value_t = 0.0)]
    pub holdout_items: f64,
    /// The model's name in the report and in the bundle's manifest [default: ranklet-<mode> in
    /// the report, the text encoder's name in the bundle].
    #[arg(long)]
    pub name: Option<String>,
    /// How the bundle stores the recommender's weights: f32 (exact) or f16 (half the download;
    /// computed in f32 after loading).
    #[arg(long, value_enum, default_value_t = RecDtype::F32)]
    pub rec_dtype: RecDtype,
    /// Behaviour types: an embedding per event type (click, like, dislike, cart, …) is added to
    /// each history event. ml-100k's ratings are types: ≥ 4 like, ≤ 2 dislike, 3 click.
    #[arg(long)]
    pub event_types: bool,
    /// DUMN: explicit feedback purifies the click state (orthogonal projection away from the
    /// dislikes), a long-term memory of this many slots is read, and a gate fuses the two.
    /// 0: off.
    #[arg(long, default_value_t = 0)]
    pub memory_slots: usize,
    /// LARR scene context: the hour of day (from the event's timestamp, UTC), page type and
    /// device class of each request are encoded and aggregated into the user state (unknown
    /// parts are fine: ml-100k has only the hour).
    #[arg(long)]
    pub scene_context: bool,
    /// PerCoNet persona input: the facets (genres, categories) dominating the history so far —
    /// each event weighted by its type and CLSD confidence, decayed per later event — mapped
    /// into the user state. The vocabulary is the catalog's most frequent facets (at most 64).
    #[arg(long)]
    pub persona: bool,
    /// Weight of the two-view contrastive term (PerCoNet): items with both a title and a
    /// description (the catalog's `text`) have each view embedded separately, and the item
    /// tower's text adaptor learns to map the two views of an item together, apart from the
    /// other items' (in-batch over each batch's target items). 0 (the default) turns it off.
    #[arg(long, default_value_t = 0.0)]
    pub two_view: f64,
    /// CLSD: weight training clicks (targets and history events) by their confidence under
    /// the previous epoch's model, standardised within this many user activity groups; the
    /// bundle carries the statistics so that history events are weighted on device too. 0: off.
    #[arg(long, default_value_t = 0)]
    pub clsd_groups: usize,
    /// CLSD confidence spread s: weights lie in (1 − s, 1 + s), s in [0, 1].
    #[arg(long, default_value_t = 0.5)]
    pub clsd_strength: f32,
    /// Robustness protocol: add this fraction of random noise clicks to every user's training
    /// events (validation and test targets stay clean), seeded by --noise-seed.
    #[arg(long, default_value_t = 0.0)]
    pub noise_clicks: f64,
    #[arg(long, default_value_t = 7)]
    pub noise_seed: u64,
    /// Write the JSON report here (atomically); an existing report of the same dataset keeps
    /// its other models.
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
    if !(0.0..0.9).contains(&args.holdout_items) {
        return Err(Error::bad_input(
            "--holdout-items",
            "a fraction of the items in [0, 0.9)",
        ));
    }
    if !(0.0..=1.0).contains(&args.clsd_strength) {
        return Err(Error::bad_input("--clsd-strength", "a spread in [0, 1]"));
    }
    if !(0.0..=4.0).contains(&args.noise_clicks) {
        return Err(Error::bad_input(
            "--noise-clicks",
            "a fraction of each user's training events in [0, 4]",
        ));
    }
    let ds = Dataset::read_dir(&args.data)?;
    let ds = if args.noise_clicks > 0.0 {
        ds.with_noise_clicks(args.noise_clicks, args.noise_seed)
    } else {
        ds
    };
    let mut split = Split::leave_one_out(&ds, args.max_len);
    let held = if args.holdout_items > 0.0 {
        split.hold_out_items(ds.items.len(), args.holdout_items, args.seed)
    } else {
        Vec::new()
    };
    let replicas = args.device.init_replicas(usize::from(args.devices))?;
    let base = replicas[0].clone();
    base.seed(args.seed);
    let device = base.clone().autodiff();
    let mode = match args.mode {
        ModeArg::Inductive => ItemMode::Inductive,
        ModeArg::Transductive => ItemMode::Transductive,
        ModeArg::Id => ItemMode::Id,
    };
    let mode_name = format!("{mode:?}").to_lowercase();
    let checkpoint = args.checkpoint.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            ".cache/checkpoints/train-{mode_name}-{}",
            args.seed
        ))
    });
    super::prepare_checkpoint(&checkpoint, args.resume, args.restart, "run")?;

    // Frozen text vectors (cached per model and text). `id` mode reads the encoder only to ship
    // it in a bundle: the browser embeds the catalog with it.
    let files = if mode != ItemMode::Id || args.out.is_some() {
        Some(read_model_dir(&args.text_model)?)
    } else {
        None
    };
    let (text_dim, text) = if mode == ItemMode::Id {
        (1, Tensor::<2>::zeros([ds.items.len(), 1], &device))
    } else {
        let texts: Vec<String> = ds.items.iter().map(|i| i.text.clone()).collect();
        let files = files.as_ref().expect("read above in text modes");
        let text = item_text_vectors(files, &texts, &base, &device, &args.cache, args.quiet)?;
        (text.dims()[1], text)
    };
    // The two views (title, description) of the items that have both, for --two-view.
    let views = if args.two_view > 0.0 {
        if mode == ItemMode::Id {
            return Err(Error::bad_input(
                "--two-view",
                "the two-view term trains the text adaptor; --mode id has none",
            ));
        }
        let with_views: Vec<(usize, &[String; 2])> = ds
            .items
            .iter()
            .enumerate()
            .filter_map(|(r, i)| i.views.as_ref().map(|v| (r, v)))
            .collect();
        if with_views.len() < 2 {
            return Err(Error::bad_input(
                "--two-view",
                format!(
                    "{} has {} items with both a title and a description (the two views); at \
                     least 2 are needed",
                    args.data.display(),
                    with_views.len()
                ),
            ));
        }
        let files = files.as_ref().expect("read above in text modes");
        let view = |k: usize| -> Result<Tensor<2>> {
            let texts: Vec<String> = with_views.iter().map(|(_, v)| v[k].clone()).collect();
            item_text_vectors(files, &texts, &base, &device, &args.cache, args.quiet)
        };
        let mut row_of = vec![None; ds.items.len()];
        for (j, (r, _)) in with_views.iter().enumerate() {
            row_of[*r] = Some(j);
        }
        Some(TwoViews {
            titles: view(0)?,
            descriptions: view(1)?,
            row_of,
        })
    } else {
        None
    };

    // Each item's persona facets (genres, else categories).
    let facets: Vec<Vec<String>> = ds.items.iter().map(|i| i.facets.clone()).collect();
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
        signals: SignalsConfig {
            kinds: args.event_types,
            memory_slots: args.memory_slots,
            context: args.scene_context,
            context_vocabulary: args
                .scene_context
                .then(ranklet::rec::context::ContextVocabulary::default),
            clsd: None,
            persona: args
                .persona
                .then(|| PersonaVocabulary::from_items(&facets, MAX_FACETS)),
        },
    };
    if config
        .signals
        .persona
        .as_ref()
        .is_some_and(|v| v.facets.is_empty())
    {
        return Err(Error::bad_input(
            "--persona",
            format!(
                "{} has no item genres or categories to build a persona from",
                args.data.display()
            ),
        ));
    }
    let train_config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        weight_decay: args.weight_decay,
        patience: args.patience,
        max_len: args.max_len,
        seed: args.seed,
        pretrain_epochs: args.pretrain_epochs,
        lambda: args.lambda,
        item_drop: args.item_drop,
        freeze_encoder: args.freeze_encoder,
        clsd_groups: args.clsd_groups,
        clsd_strength: args.clsd_strength,
        two_view: args.two_view,
    };
    let model = match &args.init {
        None => {
            let model = Recommender::init(&config, &device);
            Recommender {
                tower: model.tower.centred_on(&text),
                ..model
            }
        }
        Some(dir) => {
            let rec = read_recommender_dir(dir)?;
            let manifest = dir.join("manifest.json").display().to_string();
            let mut theirs = rec.entry.config.clone();
            theirs.signals.clsd = None;
            if theirs != config {
                return Err(Error::bad_file(
                    manifest,
                    "--init: that recommender has another shape or mode than these arguments \
                     ask for (see its manifest's recommender.config)",
                ));
            }
            if config.items.mode != ItemMode::Inductive
                && rec.items != ds.items.iter().map(|i| i.id.clone()).collect::<Vec<_>>()
            {
                return Err(Error::bad_file(
                    manifest,
                    "--init: its ID rows belong to another catalog",
                ));
            }
            let origin = dir.join(&rec.entry.weights).display().to_string();
            Recommender::from_safetensors(&config, rec.weights, &device, &origin)?
        }
    };
    // The persona reads the training catalog's facets.
    let model = model.with_item_facets(&facets);
    // (An --init recommender keeps its learned whitening biases: only a new one is centred.)
    if args.tune_text_layers > 0 && mode != ItemMode::Inductive {
        return Err(Error::bad_input(
            "--tune-text-layers",
            "tuning the text encoder needs --mode inductive (text-only items)",
        ));
    }
    let mut observer = Progress::new(args.pretrain_epochs + args.epochs, args.quiet);
    let Trained {
        best,
        mut log,
        resumed_epochs,
    } = if args.epochs == 0 && args.pretrain_epochs == 0 && args.init.is_some() {
        // Nothing to train: the --init recommender as it is (then, typically, text tuning).
        Trained {
            best: model.valid(),
            log: Vec::new(),
            resumed_epochs: 0,
        }
    } else {
        train_with_views(
            model,
            &text,
            views.as_ref(),
            &split,
            &train_config,
            &CheckpointOptions {
                dir: Some(checkpoint.clone()),
                resume: args.resume,
                devices: replicas.iter().map(|d| d.clone().autodiff()).collect(),
            },
            &mut observer,
        )?
    };
    observer.finish();
    if resumed_epochs > 0 {
        eprintln!(
            "resumed after epoch {resumed_epochs} from {}",
            checkpoint.display()
        );
    }
    // Teacher training proper: the text encoder's top layers learn with the recommender.
    let (best, text, files, text_tuning) = if args.tune_text_layers > 0 {
        let files = files.expect("read above in inductive mode");
        let texts: Vec<String> = ds.items.iter().map(|i| i.text.clone()).collect();
        let embedder = TextEmbedder::from_files(&files, &base)?;
        let (bottom, top) = split_encoder(&embedder, &texts, args.tune_text_layers, &device)?;
        let tune = TextTuneConfig {
            epochs: args.text_epochs,
            text_lr: args.text_lr,
            rec_lr: args.lr / 10.0,
            batch_size: args.batch_size,
            max_len: args.max_len,
            seed: args.seed,
            ..TextTuneConfig::default()
        };
        let mut observer = Progress::new(args.text_epochs, args.quiet);
        let tuned = tune_text(
            best.train().fork(&device),
            top,
            &bottom,
            &split,
            &tune,
            &mut observer,
        )?;
        observer.finish();
        let encoder = with_top(&embedder.encoder, &tuned.top);
        let mut files = files;
        files.weights.1 = save_encoder(&encoder, StoredDtype::F32)?;
        files.name = format!("{}-tuned-top{}", files.name, args.tune_text_layers);
        let summary = json!({
            "layers": args.tune_text_layers,
            "config": tune,
            "valid_ndcg10_start": tuned.log[0].valid_ndcg10,
            "valid_ndcg10_best": tuned.log.iter().map(|e| e.valid_ndcg10).fold(f64::MIN, f64::max),
            "log": tuned.log,
        });
        log.extend(tuned.log.iter().skip(1).cloned());
        let text = Tensor::<2>::from_data(tuned.text.into_data(), &device);
        (tuned.model, text, Some(files), Some(summary))
    } else {
        (best, text, files, None)
    };
    let plain_text = text.inner();
    let start = Instant::now();
    let (valid, _) = evaluate_model(&best, &plain_text, &split.valid, 256);
    let (test, test_masked) = evaluate_model(&best, &plain_text, &split.test, 256);
    let eval_seconds = start.elapsed().as_secs_f64();
    let mut rows = vec![
        ("valid", &valid),
        ("test", &test),
        ("test (seen items masked)", &test_masked),
    ];
    let cold = (!held.is_empty()).then(|| {
        let examples = split.cold_test(&held);
        let (ours, _) = evaluate_model(&best, &plain_text, &examples, 256);
        let (pop, _) = evaluate_popularity(&split, ds.items.len(), &examples);
        (examples.len(), ours, pop)
    });
    if let Some((_, ours, pop)) = &cold {
        rows.push(("cold-start items", ours));
        rows.push(("cold-start items: popularity", pop));
    }
    super::print_metrics(&mode_name, &rows);
    let best_epoch = log
        .iter()
        .max_by(|a, b| a.valid_ndcg10.total_cmp(&b.valid_ndcg10))
        .map(|e| e.epoch);
    let mut entry = json!({
        "name": args.name.clone().unwrap_or_else(|| format!("ranklet-{mode_name}")),
        "mode": mode_name,
        "params": best.num_params(),
        "epochs": log.len(),
        "best_epoch": best_epoch,
        "epoch_seconds": log.iter().map(|e| e.seconds).sum::<f64>() / log.len().max(1) as f64,
        "eval_seconds": eval_seconds,
        "text_model": files.as_ref().map(|f| f.name.clone()),
        "config": config,
        "train": train_config,
        "noise_clicks": args.noise_clicks,
        "log": log,
        "valid": valid.means(),
        "test": test.means(),
        "test_masked": test_masked.means(),
    });
    if let Some(t) = text_tuning {
        entry["text_tuning"] = t;
    }
    if let Some((n, ours, pop)) = &cold {
        entry["cold_start"] = json!({
            "held_out_items": held.len(),
            "fraction": args.holdout_items,
            "test_users": n,
            "model": ours.means(),
            "popularity": pop.means(),
        });
    }
    if let Some(out) = &args.out {
        let rec = RecommenderFiles {
            entry: RecommenderEntry {
                weights: "rec.safetensors".into(),
                items: "items.json".into(),
                config: RecommenderConfig {
                    signals: SignalsConfig {
                        clsd: best.clsd.clone(),
                        ..config.signals.clone()
                    },
                    ..config.clone()
                },
            },
            weights: best.to_safetensors_as(args.rec_dtype)?,
            items: ds.items.iter().map(|i| i.id.clone()).collect(),
        };
        let metrics = json!({
            "dataset": ds.name,
            "valid": entry["valid"],
            "test": entry["test"],
            "test_masked": entry["test_masked"],
        });
        let mut files = files.clone().expect("read above when --out is given");
        // The bundle is this model: it takes the run's name when one is given (else the encoder's).
        if let Some(name) = &args.name {
            files.name.clone_from(name);
        }
        write_bundle(out, &files, Some(&rec), metrics)?;
        eprintln!("bundle written to {}", out.display());
    }
    if let Some(path) = &args.report {
        let report = json!({
            "dataset": ds.name,
            "protocol": format!("leave-one-out, stable time order, full ranking over all items, history cap {}; test_masked masks every item seen before the target", args.max_len),
            "models": [entry],
        });
        super::write_report(path, report)?;
    }
    Ok(())
}

/// The training progress: a bar over each epoch's batches (batches/s, running loss, ETA) and one
/// line per epoch.
struct Progress {
    bar: indicatif::ProgressBar,
    epochs: usize,
    quiet: bool,
    loss: f64,
    seen: usize,
}

impl Progress {
    fn new(epochs: usize, quiet: bool) -> Self {
        Self {
            bar: indicatif::ProgressBar::hidden(),
            epochs,
            quiet,
            loss: 0.0,
            seen: 0,
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl TrainObserver for Progress {
    fn epoch_start(&mut self, epoch: usize, batches: usize) {
        self.bar.finish_and_clear();
        self.bar = progress(batches as u64, "batches", self.quiet);
        self.bar
            .set_prefix(format!("epoch {epoch}/{}", self.epochs));
        self.loss = 0.0;
        self.seen = 0;
    }

    fn batch(&mut self, loss: f64) {
        self.loss += loss;
        self.seen += 1;
        self.bar.inc(1);
        if self.seen.is_multiple_of(10) {
            self.bar
                .set_message(format!("loss {:.4}", self.loss / self.seen as f64));
        }
    }

    fn epoch_end(&mut self, e: &EpochLog) {
        self.bar.finish_and_clear();
        if !self.quiet {
            eprintln!(
                "epoch {:>3} ({}): loss {:.4}, valid NDCG@10 {:.4}, {:.1} s",
                e.epoch, e.phase, e.loss, e.valid_ndcg10, e.seconds
            );
        }
    }
}
