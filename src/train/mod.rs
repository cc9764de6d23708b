//! Training the recommender: next-item cross-entropy over every position of causal windows,
//! AdamW, early stopping on validation NDCG@10.
//!
//! A plain loop over burn's autodiff and `ModuleOptimizer` rather than burn-train's `Learner`:
//! the epoch's validation is a full ranking of the catalog for every user (not a per-batch
//! metric), and an exact `--resume` needs the shuffling state and a per-epoch reseed of the
//! device generator (dropout, gate noise) saved with the checkpoint — see `checkpoint.rs`.

pub mod checkpoint;
pub mod text_tuning;

use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;

use crate::error::Result;
use checkpoint::{Checkpointer, TrainState, shape_fingerprint};

use crate::data::EventKind;
use crate::data::dataset::{Example, Split};
use crate::eval::metrics::{Metrics, rank_of};
use crate::fixtures::SplitMix;
use crate::rec::SceneContext;
use crate::rec::signals::ClsdStats;
use crate::rec::{Recommender, SequenceBatch};

/// Training settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    /// Most epochs. Default 200.
    pub epochs: usize,
    /// Windows per batch. Default 64.
    pub batch_size: usize,
    /// AdamW learning rate. Default 1e-3.
    pub lr: f64,
    /// AdamW weight decay. Default 0.
    pub weight_decay: f32,
    /// Stop after this many epochs without a better validation NDCG@10. Default 10.
    pub patience: usize,
    /// Window length (the history cap). Default 50.
    pub max_len: usize,
    /// Shuffling and initialisation seed. Default 2020.
    pub seed: u64,
    /// Pre-training epochs (UniSRec's sequence–item + λ·sequence–sequence contrastive losses)
    /// before fine-tuning with full-softmax cross-entropy. Default 0.
    #[serde(default)]
    pub pretrain_epochs: usize,
    /// λ, the weight of the sequence–sequence loss in pre-training. UniSRec: 1e-3.
    #[serde(default = "default_lambda")]
    pub lambda: f64,
    /// Probability of dropping each item of the augmented copy in pre-training. Default 0.2.
    #[serde(default = "default_item_drop")]
    pub item_drop: f32,
    /// Parameter-efficient fine-tuning: the sequence encoder stays frozen while fine-tuning
    /// (only the item tower — MoE adaptor, ID embedding — learns). Default false.
    #[serde(default)]
    pub freeze_encoder: bool,
    /// CLSD: weight each training click (as a target and as a history event) by its confidence
    /// under the previous epoch's model, standardised within this many user activity groups;
    /// 0 turns CLSD off. Default 0.
    #[serde(default)]
    pub clsd_groups: usize,
    /// CLSD confidence spread: weights lie in (1 − s, 1 + s). Default 0.5.
    #[serde(default = "default_clsd_strength")]
    pub clsd_strength: f32,
    /// Weight of the two-view (title vs description) contrastive term added to the fine-tuning
    /// loss ([`TwoViews`]); 0 turns it off. Default 0.
    #[serde(default)]
    pub two_view: f64,
}

fn default_clsd_strength() -> f32 {
    0.5
}

fn default_lambda() -> f64 {
    1e-3
}
fn default_item_drop() -> f32 {
    0.2
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 200,
            batch_size: 64,
            lr: 1e-3,
            weight_decay: 0.0,
            patience: 10,
            max_len: 50,
            seed: 2020,
            pretrain_epochs: 0,
            lambda: default_lambda(),
            item_drop: default_item_drop(),
            freeze_encoder: false,
            clsd_groups: 0,
            clsd_strength: default_clsd_strength(),
            two_view: 0.0,
        }
    }
}

/// The two views of the items that have both a title and a description, for the two-view
/// term: text vectors of each view (`[m, text_dim]`, on the training device) and each catalog
/// row's index among them.
#[derive(Debug, Clone)]
pub struct TwoViews {
    pub titles: Tensor<2>,
    pub descriptions: Tensor<2>,
    /// Catalog row → row of `titles`/`descriptions` (`None`: the item has one view only).
    pub row_of: Vec<Option<usize>>,
}

impl TwoViews {
    /// The view rows of a batch's distinct target items that have both views.
    fn rows_for(&self, chunk: &[TrainWindow]) -> Vec<i64> {
        let mut rows: Vec<i64> = chunk
            .iter()
            .flat_map(|w| w.targets.iter())
            .filter_map(|&t| self.row_of.get(t).copied().flatten())
            .map(|r| r as i64)
            .collect();
        rows.sort_unstable();
        rows.dedup();
        rows
    }

    /// The two-view loss over a batch's target items (`None` when fewer than two have views).
    /// (`device`: the model's, e.g. a data-parallel replica's.)
    fn loss(
        &self,
        model: &Recommender,
        chunk: &[TrainWindow],
        device: &Device,
    ) -> Option<Tensor<1>> {
        let rows = self.rows_for(chunk);
        let n = rows.len();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(rows, [n]), &self.titles.device());
        model.two_view_loss(
            self.titles.clone().select(0, idx.clone()).to_device(device),
            self.descriptions.clone().select(0, idx).to_device(device),
        )
    }
}

/// Where each causal training window lies: (user, start, end) in `split.train[user]`. Each
/// training sequence is cut from its end into pieces of `max_len + 1` events overlapping by
/// one, so every next-item pair is supervised once.
pub fn window_spans(split: &Split, max_len: usize) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    for (user, seq) in split.train.iter().enumerate() {
        let mut end = seq.len();
        while end >= 2 {
            let start = end.saturating_sub(max_len + 1);
            out.push((user, start, end));
            if start == 0 {
                break;
            }
            end = start + 1;
        }
    }
    out
}

/// Causal training windows as (inputs, next-item targets); see [`window_spans`].
pub fn windows(split: &Split, max_len: usize) -> Vec<(Vec<usize>, Vec<usize>)> {
    window_spans(split, max_len)
        .into_iter()
        .map(|(u, s, e)| {
            let w = &split.train[u][s..e];
            (w[..w.len() - 1].to_vec(), w[1..].to_vec())
        })
        .collect()
}

/// A training window with its events' types and CLSD weights.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainWindow {
    pub inputs: Vec<usize>,
    pub targets: Vec<usize>,
    /// Behaviour type of each input event.
    pub kinds: Vec<EventKind>,
    /// Confidence of each input event (1 without CLSD).
    pub input_weights: Vec<f32>,
    /// Confidence of each target (1 without CLSD).
    pub target_weights: Vec<f32>,
    /// The scene of each position's request (its target's hour of day).
    pub contexts: Vec<SceneContext>,
}

/// The training windows of `split`, weighted by `confidence` (per user and event) if given.
pub fn train_windows(
    split: &Split,
    max_len: usize,
    confidence: Option<&[Vec<f32>]>,
) -> Vec<TrainWindow> {
    window_spans(split, max_len)
        .into_iter()
        .map(|(u, s, e)| {
            let w = &split.train[u][s..e];
            let kinds = split
                .train_kinds
                .get(u)
                .filter(|k| k.len() == split.train[u].len())
                .map(|k| k[s..e - 1].to_vec())
                .unwrap_or_else(|| vec![EventKind::Click; e - s - 1]);
            let conf = |range: std::ops::Range<usize>| -> Vec<f32> {
                match confidence {
                    Some(c) => c[u][range].to_vec(),
                    None => vec![1.0; range.len()],
                }
            };
            TrainWindow {
                inputs: w[..w.len() - 1].to_vec(),
                targets: w[1..].to_vec(),
                kinds,
                input_weights: conf(s..e - 1),
                target_weights: conf(s + 1..e),
                contexts: split
                    .train_contexts
                    .get(u)
                    .filter(|c| c.len() == split.train[u].len())
                    .map(|c| c[s + 1..e].to_vec())
                    .unwrap_or_else(|| vec![SceneContext::default(); e - s - 1]),
            }
        })
        .collect()
}

/// CLSD's self-distillation pass: `model` (the previous epoch's, in inference mode) scores
/// every training click in its context; the scores are standardised within `groups` activity
/// groups. Returns the statistics and each training event's confidence (the first event of a
/// sequence, which has no context, weighs 1).
pub fn clsd_pass(
    model: &Recommender,
    text: &Tensor<2>,
    split: &Split,
    max_len: usize,
    groups: usize,
    strength: f32,
) -> (ClsdStats, Vec<Vec<f32>>) {
    let items = model.item_vectors(text.clone());
    let spans = window_spans(split, max_len);
    let mut scores: Vec<Vec<f32>> = split
        .train
        .iter()
        .map(|s| vec![f32::NAN; s.len()])
        .collect();
    for chunk in spans.chunks(256) {
        let rows: Vec<(&[usize], &[usize])> = chunk
            .iter()
            .map(|&(u, s, e)| (&split.train[u][s..e - 1], &split.train[u][s + 1..e]))
            .collect();
        let kinds: Vec<&[EventKind]> = chunk
            .iter()
            .map(|&(u, s, e)| split.train_kinds.get(u).map_or(&[][..], |k| &k[s..e - 1]))
            .collect();
        let batch = SequenceBatch::new(&rows).with_kinds(&kinds);
        for (&(u, s, _), row) in chunk.iter().zip(model.target_log_probs(&batch, &items)) {
            for (t, v) in row.into_iter().enumerate() {
                scores[u][s + t + 1] = v;
            }
        }
    }
    let lengths: Vec<usize> = split.train.iter().map(Vec::len).collect();
    let finite: Vec<Vec<f32>> = scores
        .iter()
        .map(|r| r.iter().copied().filter(|x| x.is_finite()).collect())
        .collect();
    let stats = ClsdStats::fit(&lengths, &finite, groups, strength);
    let confidence = scores
        .iter()
        .zip(&lengths)
        .map(|(r, &n)| r.iter().map(|&v| stats.confidence(v, n)).collect())
        .collect();
    (stats, confidence)
}

/// One epoch's figures.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    /// `pretrain` (contrastive) or `finetune` (cross-entropy).
    #[serde(default)]
    pub phase: String,
    pub loss: f64,
    pub valid_ndcg10: f64,
    pub seconds: f64,
}

/// Evaluates a model (inference copy) on examples: (unmasked, masked).
pub fn evaluate_model(
    model: &Recommender,
    text: &Tensor<2>,
    examples: &[Example],
    batch: usize,
) -> (Metrics, Metrics) {
    let mut plain = Metrics::default();
    let mut masked = Metrics::default();
    for chunk in examples.chunks(batch.max(1)) {
        let rows: Vec<(&[usize], &[usize])> = chunk
            .iter()
            .map(|e| (e.history.as_slice(), &[][..]))
            .collect();
        let kinds: Vec<&[EventKind]> = chunk.iter().map(|e| e.kinds.as_slice()).collect();
        let activity: Vec<usize> = chunk
            .iter()
            .map(|e| e.seen.len().max(e.history.len()))
            .collect();
        let contexts: Vec<SceneContext> = chunk.iter().map(|e| e.context).collect();
        let batch = SequenceBatch::new(&rows)
            .with_kinds(&kinds)
            .with_request_context(&contexts);
        let scores = model.scores_for(&batch, text.clone(), &activity);
        let [_, n] = scores.dims();
        let flat = scores.into_data().try_to_vec::<f32>().expect("f32 scores");
        for (e, row) in chunk.iter().zip(flat.chunks(n)) {
            plain.add(rank_of(row, e.target, None));
            masked.add(rank_of(row, e.target, Some(&e.seen)));
        }
    }
    (plain, masked)
}

/// A copy of `items` with each one dropped with probability `p` (at least one kept).
fn item_drop(items: &[usize], p: f32, rng: &mut SplitMix) -> Vec<usize> {
    let kept: Vec<usize> = items
        .iter()
        .copied()
        .filter(|_| rng.next_f32() >= p)
        .collect();
    if kept.is_empty() {
        items[items.len() - 1..].to_vec()
    } else {
        kept
    }
}

/// What a batch's loss is.
pub enum Objective<'a> {
    /// Pre-training: sequence–item + λ·sequence–sequence against each row's item-dropped copy.
    Pretrain {
        dropped: &'a [Vec<usize>],
        lambda: f64,
    },
    /// Fine-tuning: full-softmax cross-entropy, `absent` items left out of the softmax; with
    /// `views`, plus `weight` × the two-view term over the batch's target items.
    Finetune {
        absent: Option<&'a Tensor<2, Bool>>,
        views: Option<(&'a TwoViews, f64)>,
    },
}

type Window = TrainWindow;

/// The loss of `chunk` (rows `offset..` of the batch for the item-dropped copies) for `model`.
fn shard_loss(
    model: &Recommender,
    chunk: &[Window],
    offset: usize,
    text: Tensor<2>,
    objective: &Objective,
) -> Tensor<1> {
    let rows: Vec<(&[usize], &[usize])> = chunk
        .iter()
        .map(|w| (w.inputs.as_slice(), w.targets.as_slice()))
        .collect();
    let kinds: Vec<&[EventKind]> = chunk.iter().map(|w| w.kinds.as_slice()).collect();
    let inputs: Vec<&[f32]> = chunk.iter().map(|w| w.input_weights.as_slice()).collect();
    let targets: Vec<&[f32]> = chunk.iter().map(|w| w.target_weights.as_slice()).collect();
    let contexts: Vec<&[SceneContext]> = chunk.iter().map(|w| w.contexts.as_slice()).collect();
    let batch = SequenceBatch::new(&rows)
        .with_kinds(&kinds)
        .with_contexts(&contexts)
        .with_confidence(&inputs)
        .weight_targets(&targets);
    match objective {
        Objective::Pretrain { dropped, lambda } => {
            let aug: Vec<(&[usize], &[usize])> = dropped[offset..offset + chunk.len()]
                .iter()
                .map(|d| (d.as_slice(), &[][..]))
                .collect();
            model.pretrain_loss(&batch, &SequenceBatch::new(&aug), text, *lambda)
        }
        Objective::Finetune { absent, views } => {
            let device = text.device();
            let absent = absent.map(|a| a.clone().to_device(&device));
            let loss = model.loss(&batch, text, absent);
            match views.and_then(|(v, w)| Some((v.loss(model, chunk, &device)?, w))) {
                Some((two_view, w)) => loss + two_view.mul_scalar(w),
                None => loss,
            }
        }
    }
}

/// The batch's loss value and gradients (on the model's device). With several `devices`, the
/// batch is cut into one contiguous shard per device; each replica computes its shard's loss
/// weighted by its share of the batch (supervised positions when fine-tuning, rows when
/// pre-training), all replicas run at once on their own threads, and the gradients are summed
/// on the model's device — for fine-tuning exactly the full batch's gradient (the loss is a
/// mean over positions); pre-training's in-batch negatives are then those of each shard, as in
/// data-parallel training without an all-gather.
pub fn batch_gradients(
    model: &Recommender,
    chunk: &[Window],
    text: &Tensor<2>,
    objective: &Objective,
    devices: &[Device],
) -> (f64, GradientsParams) {
    if devices.len() <= 1 || chunk.len() < 2 {
        let loss = shard_loss(model, chunk, 0, text.clone(), objective);
        let value = f64::from(loss.clone().into_scalar::<f32>());
        return (value, GradientsParams::from_grads(loss.backward(), model));
    }
    let weight = |c: &[Window]| -> f64 {
        match objective {
            Objective::Pretrain { .. } => c.len() as f64,
            Objective::Finetune { .. } => c
                .iter()
                .map(|w| w.target_weights.iter().map(|&x| f64::from(x)).sum::<f64>())
                .sum::<f64>(),
        }
    };
    let total = weight(chunk).max(1.0);
    let per = chunk.len().div_ceil(devices.len().min(chunk.len()));
    let main = text.device();
    let shards: Vec<(f64, GradientsParams)> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunk
            .chunks(per)
            .zip(devices)
            .enumerate()
            .map(|(k, (shard, device))| {
                let replica = model.clone().fork(device);
                let text = text.clone().to_device(device);
                scope.spawn(move || {
                    let share = weight(shard) / total;
                    let loss =
                        shard_loss(&replica, shard, k * per, text, objective).mul_scalar(share);
                    let value = f64::from(loss.clone().into_scalar::<f32>());
                    (
                        value,
                        GradientsParams::from_grads(loss.backward(), &replica),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a data-parallel replica panicked"))
            .collect()
    });
    let mut value = 0.0;
    let mut sum = burn::optim::GradientsAccumulator::new();
    for (v, grads) in shards {
        value += v;
        sum.accumulate(model, grads.to_device(&main, model));
    }
    (value, sum.grads())
}

/// Where and whether to checkpoint, and on which devices to train.
#[derive(Debug, Clone, Default)]
pub struct CheckpointOptions {
    /// Checkpoint folder; `None` trains without checkpoints.
    pub dir: Option<std::path::PathBuf>,
    /// Continue from the folder's checkpoint (an error when there is none).
    pub resume: bool,
    /// Data-parallel replicas (autodiff devices): each batch is split across them and their
    /// gradients are summed on the model's device. Empty or one: everything on the model's device.
    pub devices: Vec<Device>,
}

/// The outcome of [`train`].
pub struct Trained {
    /// The best model by validation NDCG@10 (an inference copy).
    pub best: Recommender,
    /// One entry per epoch run, the resumed ones included.
    pub log: Vec<EpochLog>,
    /// Epochs that were read from a checkpoint rather than run now.
    pub resumed_epochs: usize,
}

/// What a training run reports as it goes (a progress bar, a log).
pub trait TrainObserver {
    /// An epoch of `batches` batches starts.
    fn epoch_start(&mut self, _epoch: usize, _batches: usize) {}
    /// A batch finished with this loss.
    fn batch(&mut self, _loss: f64) {}
    /// An epoch finished (validation included).
    fn epoch_end(&mut self, _log: &EpochLog) {}
}

/// Observes nothing.
pub struct Silent;
impl TrainObserver for Silent {}

/// Trains `model` (on an autodiff device, like `text`) and returns the best model by validation
/// NDCG@10 with the per-epoch log. `observer` sees batches and epochs. With a checkpoint folder,
/// the state after every epoch is written there; with `resume`, training continues from it and
/// gives the same figures as a run that was never interrupted.
pub fn train(
    model: Recommender,
    text: &Tensor<2>,
    split: &Split,
    config: &TrainConfig,
    checkpoints: &CheckpointOptions,
    observer: &mut dyn TrainObserver,
) -> Result<Trained> {
    train_with_views(model, text, None, split, config, checkpoints, observer)
}

/// [`train`] with the items' two views for the two-view term (`config.two_view` its weight).
pub fn train_with_views(
    mut model: Recommender,
    text: &Tensor<2>,
    views: Option<&TwoViews>,
    split: &Split,
    config: &TrainConfig,
    checkpoints: &CheckpointOptions,
    observer: &mut dyn TrainObserver,
) -> Result<Trained> {
    if config.two_view > 0.0 && views.is_none() {
        return Err(crate::Error::bad_input(
            "two-view",
            "the two-view term needs items with both a title and a description",
        ));
    }
    let devices = &checkpoints.devices;
    let mut optim = AdamWConfig::new()
        .with_weight_decay(config.weight_decay)
        .init();
    let mut base = train_windows(split, config.max_len, None);
    let fingerprint = shape_fingerprint(
        &model,
        &format!("{} windows {} items", base.len(), text.dims()[0]),
    );
    let mut rng = SplitMix(config.seed);
    let plain_text = text.clone().inner();
    let mut best: Option<(f64, Recommender)> = None;
    let mut log = Vec::new();
    let mut since_best = 0;
    let mut first_epoch = 1;
    let checkpointer = checkpoints.dir.as_ref().map(Checkpointer::new);
    let mut state: Option<TrainState> = None;
    if checkpoints.resume {
        let cp = checkpointer.as_ref().ok_or_else(|| {
            crate::Error::bad_input("--resume", "resuming needs a checkpoint folder")
        })?;
        if !cp.exists() {
            return Err(crate::Error::bad_input(
                cp.dir().display().to_string(),
                "no checkpoint to resume from (state.json is missing)",
            ));
        }
        let loaded = cp.load()?;
        let s = loaded.state;
        let mut theirs = s.config.clone();
        theirs.epochs = config.epochs;
        theirs.patience = config.patience;
        if theirs != *config || s.fingerprint != fingerprint {
            return Err(crate::Error::bad_file(
                cp.dir().display().to_string(),
                "the checkpoint was written by a run with other settings, model shape or data; \
                 resume with the same arguments (only --epochs and --patience may change)",
            ));
        }
        model = model.load_record(loaded.model);
        optim = optim.load_record(loaded.optim);
        let mut best_model = model.valid().load_record(loaded.best);
        // CLSD's confidences are a function of the saved models: recomputed, not stored.
        if config.clsd_groups > 0 && s.epoch > config.pretrain_epochs {
            let (_, confidence) = clsd_pass(
                &model.valid(),
                &plain_text,
                split,
                config.max_len,
                config.clsd_groups,
                config.clsd_strength,
            );
            base = train_windows(split, config.max_len, Some(&confidence));
            let (stats, _) = clsd_pass(
                &best_model,
                &plain_text,
                split,
                config.max_len,
                config.clsd_groups,
                config.clsd_strength,
            );
            best_model.clsd = Some(stats);
        }
        best = Some((s.best_ndcg10, best_model));
        rng = SplitMix(s.rng);
        since_best = s.since_best;
        first_epoch = s.epoch + 1;
        log = s.log.clone();
        if s.epoch > config.pretrain_epochs && since_best >= config.patience {
            first_epoch = config.pretrain_epochs + config.epochs + 1; // it had stopped early
        }
        state = Some(s);
    }
    let resumed_epochs = first_epoch - 1;
    let device = text.device();
    // Held-out (cold-start) items are absent from the training catalog: not even negatives.
    let absent = (!split.held_out.is_empty()).then(|| {
        let n = text.dims()[0];
        let mut mask = vec![false; n];
        for &i in &split.held_out {
            mask[i] = true;
        }
        Tensor::<2, Bool>::from_data(TensorData::new(mask, [1, n]), &device)
    });
    let last_epoch = config.pretrain_epochs + config.epochs;
    for epoch in first_epoch..=last_epoch {
        let pretraining = epoch <= config.pretrain_epochs;
        if !pretraining && config.freeze_encoder {
            model.encoder = model.encoder.no_grad();
        }
        let start = std::time::Instant::now();
        // Each epoch reseeds the device generator (dropout, gate noise) from the run's seed, so an
        // epoch run after a resume draws exactly what it would have drawn uninterrupted.
        let epoch_seed = config
            .seed
            .wrapping_mul(1_000_003)
            .wrapping_add(epoch as u64);
        device.seed(epoch_seed);
        for (k, replica) in devices.iter().enumerate().skip(1) {
            replica.seed(epoch_seed.wrapping_add(k as u64 * 7919));
        }
        // Fisher–Yates with the seeded generator, over the windows in their base order: the
        // same seed gives the same run, and the generator's state is all a resume needs.
        let mut data = base.clone();
        for i in (1..data.len()).rev() {
            let j = ((rng.next_f32() * (i + 1) as f32) as usize).min(i);
            data.swap(i, j);
        }
        let mut loss_sum = 0.0;
        let mut batches = 0;
        observer.epoch_start(epoch, data.len().div_ceil(config.batch_size));
        for chunk in data.chunks(config.batch_size) {
            let dropped: Option<Vec<Vec<usize>>> = pretraining.then(|| {
                chunk
                    .iter()
                    .map(|w| item_drop(&w.inputs, config.item_drop, &mut rng))
                    .collect()
            });
            let objective = if pretraining {
                Objective::Pretrain {
                    dropped: dropped.as_deref().expect("set when pretraining"),
                    lambda: config.lambda,
                }
            } else {
                Objective::Finetune {
                    absent: absent.as_ref(),
                    views: views
                        .filter(|_| config.two_view > 0.0)
                        .map(|v| (v, config.two_view)),
                }
            };
            let (value, grads) = batch_gradients(&model, chunk, text, &objective, devices);
            loss_sum += value;
            batches += 1;
            model = optim.step(config.lr, model, grads);
            observer.batch(value);
        }
        let mut inference = model.valid();
        if config.clsd_groups > 0 && !pretraining {
            // Self-distillation: this epoch's model weighs the next epoch's clicks, and is
            // evaluated (and shipped) with the statistics of its own scores.
            let (stats, confidence) = clsd_pass(
                &inference,
                &plain_text,
                split,
                config.max_len,
                config.clsd_groups,
                config.clsd_strength,
            );
            inference.clsd = Some(stats);
            base = train_windows(split, config.max_len, Some(&confidence));
        }
        let (valid, _) = evaluate_model(&inference, &plain_text, &split.valid, 256);
        let ndcg = valid.means()["ndcg@10"];
        let entry = EpochLog {
            epoch,
            phase: if pretraining { "pretrain" } else { "finetune" }.into(),
            loss: loss_sum / batches.max(1) as f64,
            valid_ndcg10: ndcg,
            seconds: start.elapsed().as_secs_f64(),
        };
        observer.epoch_end(&entry);
        log.push(entry);
        // Model selection and early stopping belong to fine-tuning.
        // While pre-training, the latest model stands in (a checkpoint always has a best).
        let improved = if pretraining {
            true
        } else {
            best.as_ref().is_none_or(|(b, _)| ndcg > *b) || epoch == config.pretrain_epochs + 1
        };
        if improved {
            best = Some((ndcg, inference));
            since_best = 0;
        } else {
            since_best += 1;
        }
        if let Some(cp) = &checkpointer {
            let (best_ndcg10, best_model) = best.as_ref().expect("set above");
            let next = TrainState {
                version: checkpoint::STATE_VERSION,
                epoch,
                rng: rng.0,
                since_best,
                best_ndcg10: *best_ndcg10,
                config: config.clone(),
                fingerprint: fingerprint.clone(),
                log: log.clone(),
                model_file: String::new(),
                optim_file: String::new(),
                best_file: state
                    .as_ref()
                    .map(|s| s.best_file.clone())
                    .unwrap_or_default(),
            };
            state = Some(cp.save(
                next,
                model.clone().into_record(),
                optim.to_record(),
                improved.then(|| best_model.clone().into_record()),
            )?);
        }
        if !pretraining && since_best >= config.patience {
            break;
        }
    }
    let best = best
        .map(|(_, m)| m)
        .ok_or_else(|| crate::Error::bad_input("--epochs", "no epoch was run"))?;
    Ok(Trained {
        best,
        log,
        resumed_epochs,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::synthetic::synthetic_dataset;
    use crate::eval::popularity::evaluate_popularity;
    use crate::rec::{
        ItemMode, ItemTower, ItemTowerConfig, RecommenderConfig, SequenceEncoder,
        SequenceEncoderConfig,
    };

    #[test]
    fn windows_supervise_every_pair_once() {
        let split = Split {
            train: vec![(0..7).collect(), vec![1], vec![3, 4]],
            train_kinds: vec![],
            train_contexts: vec![],
            valid: vec![],
            test: vec![],
            short_users: 0,
            max_len: 3,
            held_out: Vec::new(),
        };
        let w = windows(&split, 3);
        let pairs: usize = w.iter().map(|(_, t)| t.len()).sum();
        assert_eq!(pairs, 6 + 1);
        assert_eq!(w[0], (vec![3, 4, 5], vec![4, 5, 6]));
        assert!(w.iter().all(|(i, t)| i.len() == t.len() && i.len() <= 3));
    }

    /// Text vectors that carry the synthetic topic (plus noise), as a real encoder's would.
    fn topic_text(num_items: usize, device: &Device) -> Tensor<2> {
        let mut rng = SplitMix(9);
        let dim = 12;
        let mut v = vec![0.0f32; num_items * dim];
        for i in 0..num_items {
            for d in 0..dim {
                v[i * dim + d] = 0.3 * (rng.next_f32() - 0.5) + if d == i % 6 { 1.0 } else { 0.0 };
            }
        }
        Tensor::from_data(TensorData::new(v, [num_items, dim]), device)
    }

    /// A small recommender over topic text vectors (12 wide) for these tests.
    fn small_config(
        mode: ItemMode,
        num_items: usize,
        hidden: usize,
        inner: usize,
        dropout: (f64, f64),
        max_len: usize,
    ) -> RecommenderConfig {
        RecommenderConfig {
            items: ItemTowerConfig {
                text_dim: 12,
                hidden,
                experts: 2,
                dropout: dropout.0,
                mode,
                num_items,
            },
            sequence: SequenceEncoderConfig {
                hidden,
                layers: 1,
                heads: 2,
                inner,
                dropout: dropout.1,
                max_len,
            },
            temperature: 0.1,
            signals: Default::default(),
        }
    }

    #[test]
    fn learns_synthetic_tastes_better_than_popularity() {
        let _seeded = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
        let ds = synthetic_dataset(120, 48, 8, 16, 5);
        let split = Split::leave_one_out(&ds, 10);
        let device = Device::flex().autodiff();
        device.seed(7);
        let (pop, _) = evaluate_popularity(&split, ds.items.len(), &split.test);
        for mode in [ItemMode::Inductive, ItemMode::Id] {
            let config = small_config(mode, ds.items.len(), 16, 32, (0.0, 0.1), 10);
            let text = topic_text(ds.items.len(), &device);
            let model = Recommender::init(&config, &device);
            let train_config = TrainConfig {
                epochs: 25,
                batch_size: 32,
                lr: 5e-3,
                patience: 25,
                max_len: 10,
                ..TrainConfig::default()
            };
            let Trained { best, log, .. } = train(
                model,
                &text,
                &split,
                &train_config,
                &CheckpointOptions::default(),
                &mut Silent,
            )
            .unwrap();
            assert!(
                log.last().unwrap().loss < log[0].loss,
                "{mode:?}: loss {:?}",
                log.iter().map(|l| l.loss).collect::<Vec<_>>()
            );
            let (test, _) = evaluate_model(&best, &text.clone().inner(), &split.test, 64);
            let (ours, theirs) = (test.means()["ndcg@10"], pop.means()["ndcg@10"]);
            assert!(
                ours > theirs * 1.2,
                "{mode:?}: NDCG@10 {ours:.4} vs popularity {theirs:.4}"
            );
        }
    }

    /// The two-view term: with it, the item tower maps an item's title and description views
    /// together (their in-batch loss over the whole catalogue ends lower than after the same
    /// training without it); an ID-only model has no text adaptor to train; and a run asking
    /// for the term without views is refused.
    #[test]
    fn two_view_term_pulls_an_items_views_together() {
        let _seeded = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
        let ds = synthetic_dataset(60, 30, 6, 12, 2);
        let split = Split::leave_one_out(&ds, 8);
        let device = Device::flex().autodiff();
        let n = ds.items.len();
        // Title view: an item-specific random vector; description view: the same vector with
        // its dimensions swapped in pairs, plus noise — far apart until the tower learns.
        let mut rng = SplitMix(21);
        let titles: Vec<f32> = (0..n * 12).map(|_| rng.next_f32() - 0.5).collect();
        let descriptions: Vec<f32> = (0..n * 12)
            .map(|k| titles[k ^ 1] + 0.1 * (rng.next_f32() - 0.5))
            .collect();
        let views = TwoViews {
            titles: Tensor::from_data(TensorData::new(titles, [n, 12]), &device),
            descriptions: Tensor::from_data(TensorData::new(descriptions, [n, 12]), &device),
            row_of: (0..n).map(Some).collect(),
        };
        let text = topic_text(n, &device);
        let config = small_config(ItemMode::Inductive, n, 8, 16, (0.0, 0.0), 8);
        let loss_after = |weight: f64| -> f32 {
            device.seed(3);
            let trained = train_with_views(
                Recommender::init(&config, &device),
                &text,
                Some(&views),
                &split,
                &TrainConfig {
                    epochs: 4,
                    batch_size: 16,
                    lr: 5e-3,
                    patience: 4,
                    max_len: 8,
                    two_view: weight,
                    ..TrainConfig::default()
                },
                &CheckpointOptions::default(),
                &mut Silent,
            )
            .unwrap();
            trained
                .best
                .two_view_loss(
                    views.titles.clone().inner(),
                    views.descriptions.clone().inner(),
                )
                .unwrap()
                .into_scalar::<f32>()
        };
        let (with, without) = (loss_after(1.0), loss_after(0.0));
        assert!(
            with < 0.8 * without,
            "two-view loss {with:.3} with the term vs {without:.3} without"
        );
        let id_model = Recommender::init(
            &small_config(ItemMode::Id, n, 8, 16, (0.0, 0.0), 8),
            &device,
        );
        assert!(id_model.two_view_loss(text.clone(), text.clone()).is_none());
        let refused = train(
            Recommender::init(&config, &device),
            &text,
            &split,
            &TrainConfig {
                epochs: 1,
                two_view: 0.5,
                ..TrainConfig::default()
            },
            &CheckpointOptions::default(),
            &mut Silent,
        );
        assert!(refused.is_err_and(|e| e.to_string().contains("title and a description")));
    }

    /// CLSD on noisy data: after training, the self-distilled confidences of injected noise
    /// clicks are well below those of the real clicks; the model with every signal (types, DUMN,
    /// CLSD) trains, keeps its statistics, and ranks a history made only of dislikes without
    /// NaN (and explains nothing by a disliked item).
    #[test]
    fn clsd_trusts_noise_clicks_less_and_typed_models_rank_any_history() {
        let _seeded = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
        let clean =
            crate::data::synthetic::with_typed_feedback(synthetic_dataset(120, 48, 8, 16, 5));
        let noisy = clean.with_noise_clicks(0.3, 11);
        let split = Split::leave_one_out(&noisy, 10);
        let clean_split = Split::leave_one_out(&clean, 10);
        let device = Device::flex().autodiff();
        device.seed(7);
        let mut config = small_config(
            ItemMode::Inductive,
            clean.items.len(),
            16,
            32,
            (0.0, 0.1),
            10,
        );
        config.signals = crate::rec::SignalsConfig {
            kinds: true,
            memory_slots: 2,
            context: true,
            context_vocabulary: None,
            clsd: None,
            persona: None,
        };
        let text = topic_text(clean.items.len(), &device);
        let train_config = TrainConfig {
            epochs: 12,
            batch_size: 32,
            lr: 5e-3,
            patience: 12,
            max_len: 10,
            clsd_groups: 2,
            clsd_strength: 1.0,
            ..TrainConfig::default()
        };
        let Trained { best, log, .. } = train(
            Recommender::init(&config, &device),
            &text,
            &split,
            &train_config,
            &CheckpointOptions::default(),
            &mut Silent,
        )
        .unwrap();
        assert!(log.last().unwrap().loss < log[0].loss, "{log:?}");
        assert!(
            best.clsd.is_some(),
            "the best model carries its CLSD statistics"
        );
        let plain_text = text.clone().inner();
        let (_, confidence) = clsd_pass(&best, &plain_text, &split, 10, 2, 1.0);
        // Which training events are noise: walk the noisy sequence against the clean one.
        let (mut noise, mut real) = (Vec::new(), Vec::new());
        for (u, seq) in split.train.iter().enumerate() {
            let original = &clean_split.train[u];
            let mut next = 0;
            for (t, &item) in seq.iter().enumerate() {
                let is_real = next < original.len() && original[next] == item;
                next += usize::from(is_real);
                // The first event has no context (confidence 1): not a judgement.
                if t > 0 {
                    if is_real { &mut real } else { &mut noise }.push(confidence[u][t]);
                }
            }
        }
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len().max(1) as f32;
        let (n, r) = (mean(&noise), mean(&real));
        assert!(
            noise.len() > 50 && real.len() > 200,
            "{} / {}",
            noise.len(),
            real.len()
        );
        eprintln!("mean CLSD confidence: noise clicks {n:.3}, real clicks {r:.3}");
        assert!(n < 0.8 * r, "noise clicks {n:.3} vs real clicks {r:.3}");
        assert!(
            confidence
                .iter()
                .flatten()
                .all(|c| c.is_finite() && *c >= 0.0 && *c <= 2.0)
        );

        // A history of dislikes only: finite scores, no disliked item as an explanation.
        let items = best.item_vectors(plain_text);
        let history = [3usize, 9, 14];
        let kinds = [EventKind::Dislike; 3];
        let recs = best.recommend(
            &items,
            &crate::rec::History {
                items: &history,
                reads: &history,
                kinds: &kinds,
                context: SceneContext {
                    hour: Some(9),
                    ..SceneContext::default()
                },
            },
            5,
            true,
            2,
            None,
        );
        assert_eq!(recs.len(), 5);
        assert!(
            recs.iter()
                .all(|r| r.score.is_finite() && r.because.is_empty())
        );
        assert!(recs.iter().all(|r| !history.contains(&r.item)));
    }

    /// burn's CPU generator is process-wide: tests that compare two seeded runs take this lock
    /// so that no other test draws from it in between.
    /// Tests that seed the shared CPU device's generator and compare figures hold this lock
    /// (and so must any test that draws from that generator meanwhile).
    pub(crate) static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Stops the run (as a kill would) in the middle of epoch `at`.
    struct KillAt {
        at: usize,
        epoch: usize,
        batches: usize,
    }
    impl TrainObserver for KillAt {
        fn epoch_start(&mut self, epoch: usize, _: usize) {
            self.epoch = epoch;
            self.batches = 0;
        }
        fn batch(&mut self, _: f64) {
            self.batches += 1;
            if self.epoch == self.at && self.batches == 2 {
                panic!("killed mid-epoch");
            }
        }
    }

    #[test]
    fn resume_after_a_kill_mid_epoch_matches_an_uninterrupted_run() {
        resume_matches(false);
    }

    /// The same with every history signal: CLSD's confidences are recomputed from the saved
    /// models on resume, so the resumed run weighs the same clicks.
    #[test]
    fn resume_with_clsd_dumn_and_context_matches_an_uninterrupted_run() {
        resume_matches(true);
    }

    /// The persona vocabulary of a synthetic dataset (its topics).
    fn persona_vocabulary(ds: &crate::data::Dataset) -> crate::rec::PersonaVocabulary {
        let facets: Vec<Vec<String>> = ds.items.iter().map(|i| i.facets.clone()).collect();
        crate::rec::PersonaVocabulary::from_items(&facets, 8)
    }

    fn resume_matches(signals: bool) {
        let _seeded = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
        let ds = crate::data::synthetic::with_typed_feedback(synthetic_dataset(60, 30, 6, 12, 2));
        let split = Split::leave_one_out(&ds, 8);
        let dir =
            std::env::temp_dir().join(format!("ranklet-resume-{signals}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut config = small_config(ItemMode::Transductive, ds.items.len(), 8, 16, (0.2, 0.3), 8);
        if signals {
            config.signals = crate::rec::SignalsConfig {
                kinds: true,
                memory_slots: 2,
                context: true,
                context_vocabulary: None,
                clsd: None,
                persona: Some(persona_vocabulary(&ds)),
            };
        }
        let train_config = TrainConfig {
            epochs: 5,
            batch_size: 8,
            lr: 5e-3,
            patience: 5,
            max_len: 8,
            clsd_groups: if signals { 2 } else { 0 },
            ..TrainConfig::default()
        };
        let run =
            |resume: bool, dir: Option<std::path::PathBuf>, observer: &mut dyn TrainObserver| {
                let device = Device::flex().autodiff();
                device.seed(11);
                let text = topic_text(ds.items.len(), &device);
                let facets: Vec<Vec<String>> = ds.items.iter().map(|i| i.facets.clone()).collect();
                let model = Recommender::init(&config, &device).with_item_facets(&facets);
                let out = train(
                    model,
                    &text,
                    &split,
                    &train_config,
                    &CheckpointOptions {
                        dir,
                        resume,
                        ..Default::default()
                    },
                    observer,
                );
                out.map(|t| {
                    let (test, _) = evaluate_model(&t.best, &text.inner(), &split.test, 64);
                    (t.log, test.means(), t.resumed_epochs)
                })
            };
        let (log, test, _) = run(false, None, &mut Silent).unwrap();

        let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run(
                false,
                Some(dir.clone()),
                &mut KillAt {
                    at: 3,
                    epoch: 0,
                    batches: 0,
                },
            )
        }));
        assert!(killed.is_err(), "the run was interrupted");
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap();
        assert_eq!(
            state["epoch"], 2,
            "the last committed checkpoint is epoch 2"
        );

        let (resumed_log, resumed_test, resumed_epochs) =
            run(true, Some(dir.clone()), &mut Silent).unwrap();
        assert_eq!(resumed_epochs, 2);
        let strip = |l: &[EpochLog]| -> Vec<(usize, f64, f64)> {
            l.iter()
                .map(|e| (e.epoch, e.loss, e.valid_ndcg10))
                .collect()
        };
        assert_eq!(strip(&resumed_log), strip(&log));
        assert_eq!(resumed_test, test);

        // Resuming with other settings is refused, naming the folder.
        let other = TrainConfig {
            lr: 1e-2,
            ..train_config.clone()
        };
        let device = Device::flex().autodiff();
        let text = topic_text(ds.items.len(), &device);
        let err = train(
            Recommender::init(&config, &device),
            &text,
            &split,
            &other,
            &CheckpointOptions {
                dir: Some(dir.clone()),
                resume: true,
                ..Default::default()
            },
            &mut Silent,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("other settings"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn pretraining_then_frozen_encoder_fine_tuning() {
        let _seeded = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
        let ds = synthetic_dataset(80, 30, 6, 12, 4);
        let split = Split::leave_one_out(&ds, 8);
        let device = Device::flex().autodiff();
        device.seed(5);
        let config = small_config(ItemMode::Inductive, ds.items.len(), 16, 16, (0.0, 0.1), 8);
        let text = topic_text(ds.items.len(), &device);
        let model = Recommender::init(&config, &device);
        let train_config = TrainConfig {
            epochs: 3,
            pretrain_epochs: 4,
            batch_size: 16,
            lr: 5e-3,
            patience: 3,
            max_len: 8,
            freeze_encoder: true,
            ..TrainConfig::default()
        };
        /// Records the encoder's parameters when fine-tuning starts.
        struct Phases(Vec<String>);
        impl TrainObserver for Phases {
            fn epoch_end(&mut self, log: &EpochLog) {
                self.0.push(log.phase.clone());
            }
        }
        let mut phases = Phases(Vec::new());
        let dir = std::env::temp_dir().join(format!("ranklet-pretrain-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let model_before = model.encoder.clone();
        let trained = train(
            model,
            &text,
            &split,
            &train_config,
            &CheckpointOptions {
                dir: Some(dir.clone()),
                resume: false,
                ..Default::default()
            },
            &mut phases,
        )
        .unwrap();
        assert_eq!(
            phases.0,
            [
                "pretrain", "pretrain", "pretrain", "pretrain", "finetune", "finetune", "finetune"
            ]
        );
        let pre: Vec<f64> = trained.log[..4].iter().map(|e| e.loss).collect();
        assert!(pre[3] < pre[0], "contrastive loss falls: {pre:?}");
        // Pre-training moved the encoder.
        let bytes = |m: &SequenceEncoder| m.clone().into_record().into_bytes().unwrap().to_vec();
        let pretrained = trained.best;
        assert!(
            bytes(&model_before) != bytes(&pretrained.encoder),
            "pre-training trains the encoder"
        );

        // Fine-tuning with the encoder frozen moves the item tower only.
        let tower = |m: &ItemTower| m.clone().into_record().into_bytes().unwrap().to_vec();
        let start = pretrained.clone().train().fork(&device);
        let tuned = train(
            start,
            &text,
            &split,
            &TrainConfig {
                pretrain_epochs: 0,
                ..train_config.clone()
            },
            &CheckpointOptions::default(),
            &mut Silent,
        )
        .unwrap();
        assert!(
            bytes(&tuned.best.encoder) == bytes(&pretrained.encoder),
            "the encoder moved while frozen"
        );
        assert!(
            tower(&tuned.best.tower) != tower(&pretrained.tower),
            "the item tower learns"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Two replicas (here two handles on the CPU device, the same code path as two GPUs) give
    /// the full batch's fine-tuning gradient: the sharded losses are weighted by their share of
    /// the supervised positions and the replicas' gradients summed on the model's device.
    #[test]
    fn data_parallel_gradients_equal_the_full_batch() {
        let _seeded = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
        let ds = synthetic_dataset(40, 30, 6, 12, 3);
        let split = Split::leave_one_out(&ds, 8);
        let device = Device::flex().autodiff();
        device.seed(3);
        let config = small_config(ItemMode::Id, ds.items.len(), 8, 16, (0.0, 0.0), 8);
        let model = Recommender::init(&config, &device);
        let text = topic_text(ds.items.len(), &device);
        // Windows of unequal length, so the shards' weights differ.
        let chunk: Vec<Window> = train_windows(&split, 8, None).into_iter().take(7).collect();
        let objective = Objective::Finetune {
            absent: None,
            views: None,
        };
        let (whole, mut g1) = batch_gradients(&model, &chunk, &text, &objective, &[]);
        let replicas = [device.clone(), device.clone()];
        let (sharded, mut g2) = batch_gradients(&model, &chunk, &text, &objective, &replicas);
        assert!((whole - sharded).abs() < 1e-5, "loss {whole} vs {sharded}");
        let mut compared = 0;
        let mut visit = |id: burn::module::ParamId| {
            if let (Some(a), Some(b)) = (g1.remove::<2>(id), g2.remove::<2>(id)) {
                let (a, b) = (
                    a.into_data().try_to_vec::<f32>().unwrap(),
                    b.into_data().try_to_vec::<f32>().unwrap(),
                );
                let scale = a.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
                let diff = a
                    .iter()
                    .zip(&b)
                    .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
                assert!(
                    diff / scale < 1e-4,
                    "gradient differs by {diff} (scale {scale})"
                );
                compared += 1;
            }
        };
        visit(model.tower.ids.as_ref().expect("ID mode").weight.id);
        visit(model.encoder.positions.weight.id);
        assert_eq!(compared, 2, "compared {compared} gradients");
    }
}
