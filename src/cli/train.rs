//! `ranklet train`: parses the arguments into a [`TrainJob`] and prints its outcome; the work
//! is `ranklet::train::job`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use ranklet::Result;
use ranklet::rec::{ItemMode, RecDtype};
use ranklet::train::TrainConfig;
use ranklet::train::job::{RecommenderShape, SignalFlags, TextTuning, TrainJob, run_train_job};
use serde_json::json;

use super::progress::{CheckpointArgs, Progress};
use super::{DeviceArg, DevicesArg};
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
    #[arg(long, default_value_t = 64, value_parser = super::at_least_one)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 1e-3, value_parser = super::positive)]
    pub lr: f64,
    #[arg(long, default_value_t = 0.0, value_parser = super::non_negative_f32)]
    pub weight_decay: f32,
    /// Epochs without a better validation NDCG@10 before stopping.
    #[arg(long, default_value_t = 10)]
    pub patience: usize,
    #[arg(long, default_value_t = 300, value_parser = super::at_least_one)]
    pub hidden: usize,
    #[arg(long, default_value_t = 2, value_parser = super::at_least_one)]
    pub layers: usize,
    #[arg(long, default_value_t = 2, value_parser = super::at_least_one)]
    pub heads: usize,
    #[arg(long, default_value_t = 256, value_parser = super::at_least_one)]
    pub inner: usize,
    #[arg(long, default_value_t = 0.5, value_parser = super::probability)]
    pub dropout: f64,
    /// Dropout on the text vectors entering the item tower (UniSRec's 0.2). Higher makes the
    /// adaptor lean less on any one text dimension, which is what items never trained on need.
    #[arg(long, default_value_t = 0.2, value_parser = super::probability)]
    pub text_dropout: f64,
    /// Transductive mode: the probability that an item's ID embedding is left out of its vector
    /// in a training step (DropoutNet), so that the text path alone learns to rank it, as it
    /// must rank items never trained on (their ID rows are zero). 0 (the default): off.
    #[arg(long, default_value_t = 0.0, value_parser = super::probability)]
    pub id_dropout: f64,
    /// Whitening experts of the MoE adaptor.
    #[arg(long, default_value_t = 8, value_parser = super::at_least_one)]
    pub experts: usize,
    #[arg(long, default_value_t = 0.07, value_parser = super::positive)]
    pub temperature: f64,
    /// History cap.
    #[arg(long, default_value_t = 50, value_parser = super::at_least_one)]
    pub max_len: usize,
    #[arg(long, default_value_t = 2020)]
    pub seed: u64,
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// Train data-parallel: a count of --device's kind (GPUs 0..N), or a comma-separated list
    /// of devices — cpu, gpu:N, cuda:N, or `ranklet worker` addresses ws://host:port — the
    /// first holding the model. Each batch is split across them (in shards sized to each
    /// device's measured speed) and their gradients summed.
    /// Figures match one device's up to float rounding when fine-tuning; pre-training's in-batch
    /// negatives become each shard's.
    #[arg(long, default_value = "1")]
    pub devices: DevicesArg,
    #[command(flatten)]
    pub shards: super::ShardArgs,
    /// Where cached item text vectors live.
    #[arg(long, default_value = ".cache/vectors")]
    pub cache: PathBuf,
    /// Write the trained recommender as a bundle folder here (text encoder + rec.safetensors +
    /// items.json + manifest.json with the figures).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
    /// Pre-training epochs with UniSRec's contrastive losses (sequence–item + λ·sequence–
    /// sequence) before fine-tuning.
    #[arg(long, default_value_t = 0)]
    pub pretrain_epochs: usize,
    /// λ, the weight of the sequence–sequence loss in pre-training.
    #[arg(long, default_value_t = 1e-3, value_parser = super::non_negative)]
    pub lambda: f64,
    /// Item-drop probability of the augmented sequence in pre-training.
    #[arg(long, default_value_t = 0.2, value_parser = super::share_f32)]
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
    #[arg(long, default_value_t = 5, value_parser = super::at_least_one)]
    pub text_epochs: usize,
    /// AdamW learning rate of the tuned text layers (the recommender uses --lr / 10 meanwhile).
    #[arg(long, default_value_t = 5e-5, value_parser = super::positive)]
    pub text_lr: f64,
    /// Cold start: hold out this fraction of the items from training entirely (seeded) and
    /// report the test users whose target is one of them, against popularity.
    #[arg(long, default_value_t = 0.0, value_parser = super::probability)]
    pub holdout_items: f64,
    /// Cold start: hold out this fraction more of the items from training, keeping their
    /// validation examples, and choose on validation the score offset new items get (the
    /// new-item prior, reported beside the plain figures).
    #[arg(long, default_value_t = 0.0, value_parser = super::probability)]
    pub holdout_valid_items: f64,
    /// The model's name in the report and in the bundle's manifest [default: ranklet-<mode> in
    /// the report, the text encoder's name in the bundle].
    #[arg(long)]
    pub name: Option<String>,
    /// How the bundle stores the recommender's weights: f32 (exact) or f16 (half the download;
    /// computed in f32 after loading).
    #[arg(long, default_value_t = RecDtype::F32,
          value_parser = clap::builder::TypedValueParser::try_map(clap::builder::PossibleValuesParser::new(RecDtype::NAMES),
              |s| s.parse::<RecDtype>()))]
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
    #[arg(long, default_value_t = 0.0, value_parser = super::non_negative)]
    pub two_view: f64,
    /// Logit adjustment (Menon et al. 2021): each item's ln(1 + training count) is added to its
    /// logit in training and ranking, so that the item vectors learn what a visitor prefers
    /// beyond how often an item is chosen; an item never trained on gets the mean logit of its
    /// 10 nearest trained items by text.
    /// A cold-start measurement (reports/coldstart.md): a bundle does not carry it yet, so
    /// --out is refused.
    #[arg(long)]
    pub popularity_logits: bool,
    /// CLSD: weight training clicks (targets and history events) by their confidence under
    /// the previous epoch's model, standardised within this many user activity groups; the
    /// bundle carries the statistics so that history events are weighted on device too. 0: off.
    #[arg(long, default_value_t = 0)]
    pub clsd_groups: usize,
    /// CLSD confidence spread s: weights lie in (1 − s, 1 + s), s in [0, 1].
    #[arg(long, default_value_t = 0.5, value_parser = super::share_f32)]
    pub clsd_strength: f32,
    /// Robustness protocol: add this fraction of random noise clicks to every user's training
    /// events (validation and test targets stay clean), seeded by --noise-seed.
    #[arg(long, default_value_t = 0.0, value_parser = super::probability)]
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

impl TrainArgs {
    /// The job these arguments describe.
    pub fn job(&self) -> TrainJob {
        let mode = match self.mode {
            ModeArg::Inductive => ItemMode::Inductive,
            ModeArg::Transductive => ItemMode::Transductive,
            ModeArg::Id => ItemMode::Id,
        };
        let mode_name = format!("{mode:?}").to_lowercase();
        TrainJob {
            even_shards: self.shards.even_shards,
            replica_timeout: self.shards.timeout(),
            data: self.data.clone(),
            text_model: self.text_model.clone(),
            cache: self.cache.clone(),
            mode,
            shape: RecommenderShape {
                hidden: self.hidden,
                layers: self.layers,
                heads: self.heads,
                inner: self.inner,
                dropout: self.dropout,
                text_dropout: self.text_dropout,
                id_dropout: self.id_dropout,
                experts: self.experts,
                temperature: self.temperature,
            },
            signals: SignalFlags {
                event_types: self.event_types,
                memory_slots: self.memory_slots,
                scene_context: self.scene_context,
                persona: self.persona,
            },
            train: TrainConfig {
                epochs: self.epochs,
                batch_size: self.batch_size,
                lr: self.lr,
                weight_decay: self.weight_decay,
                patience: self.patience,
                max_len: self.max_len,
                seed: self.seed,
                pretrain_epochs: self.pretrain_epochs,
                lambda: self.lambda,
                item_drop: self.item_drop,
                freeze_encoder: self.freeze_encoder,
                clsd_groups: self.clsd_groups,
                clsd_strength: self.clsd_strength,
                two_view: self.two_view,
            },
            popularity_logits: self.popularity_logits,
            holdout_items: self.holdout_items,
            holdout_valid_items: self.holdout_valid_items,
            noise_clicks: self.noise_clicks,
            noise_seed: self.noise_seed,
            init: self.init.clone(),
            text_tuning: (self.tune_text_layers > 0).then_some(TextTuning {
                layers: self.tune_text_layers,
                epochs: self.text_epochs,
                lr: self.text_lr,
            }),
            checkpoint: self.checkpoint.plan(format!(
                ".cache/checkpoints/train-{mode_name}-{}",
                self.seed
            )),
            out: self.out.clone(),
            rec_dtype: self.rec_dtype,
            name: self.name.clone(),
        }
    }
}

pub fn run(args: TrainArgs) -> Result<()> {
    let job = args.job();
    job.check()?;
    let replicas = args.devices.open(args.device)?;
    let mut progress = Progress::new(args.pretrain_epochs + args.epochs, args.quiet);
    let outcome = run_train_job(&job, &replicas, &mut progress)?;
    progress.finish();
    let rows: Vec<(&str, &ranklet::eval::Metrics)> =
        outcome.rows.iter().map(|(l, m)| (l.as_str(), m)).collect();
    super::print_metrics(&outcome.mode, &rows)?;
    if let Some(path) = &args.report {
        let report = json!({
            "dataset": outcome.dataset,
            "protocol": format!("leave-one-out, stable time order, full ranking over all items, history cap {}; test_masked masks every item seen before the target", args.max_len),
            "models": [outcome.entry],
        });
        super::write_report(path, report)?;
    }
    Ok(())
}
