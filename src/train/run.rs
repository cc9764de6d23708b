//! The training loop: epochs of shuffled windows, AdamW, validation by full ranking, early
//! stopping, and a checkpoint after every epoch that `--resume` continues exactly.

use burn::optim::AdamWConfig;
use burn::prelude::*;

use crate::data::Split;
use crate::error::Result;
use crate::eval::evaluate_model;
use crate::jobs::JobObserver;
use crate::jobs::parallel::{DataParallel, ShardPlan, add_into, replica_error};
use crate::rec::Recommender;
use crate::rng::SplitMix;
use crate::train::checkpoint::{self, Checkpointer, TrainState};
use crate::train::clsd::clsd_pass;
use crate::train::config::TrainConfig;
pub use crate::train::epoch_log::EpochLog;
use crate::train::objective::{Objective, TwoViews, absent_mask};
use crate::train::parallel::{Replica, Sharding, batch_gradients};
use crate::train::windows::{item_drop, train_windows};

/// Where and whether to checkpoint, and on which devices to train.
#[derive(Debug, Clone, Default)]
pub struct CheckpointOptions {
    /// Checkpoint folder; `None` trains without checkpoints.
    pub dir: Option<std::path::PathBuf>,
    /// Continue from the folder's checkpoint (an error when there is none).
    pub resume: bool,
    /// Data-parallel replicas: each batch is split across them and their gradients are summed
    /// on the model's device. None or one: everything on the model's device.
    pub parallel: DataParallel,
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
    observer: &mut dyn JobObserver<EpochLog>,
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
    observer: &mut dyn JobObserver<EpochLog>,
) -> Result<Trained> {
    if config.two_view > 0.0 && views.is_none() {
        return Err(crate::Error::bad_input(
            "two-view",
            "the two-view term needs items with both a title and a description",
        ));
    }
    if split.valid.is_empty() {
        return Err(crate::Error::bad_input(
            "training",
            "no validation user (every user has fewer than 3 events): nothing to choose an epoch on",
        ));
    }
    let devices = &checkpoints.parallel.devices;
    let mut optim = AdamWConfig::new()
        .with_weight_decay(config.weight_decay)
        .init();
    let mut base = train_windows(split, config.max_len, None);
    let (fingerprint, dropouts) = checkpoint::run_identity(&model, base.len(), text.dims()[0]);
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
        s.check_resumable(config, &fingerprint, &dropouts, cp.dir())?;
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
    let absent = (!split.held_out.is_empty())
        .then(|| absent_mask(text.dims()[0], split.held_out.iter().copied(), &device));
    let last_epoch = config.pretrain_epochs + config.epochs;
    let replicas = if devices.len() > 1 {
        Replica::on(devices, text, views.filter(|_| config.two_view > 0.0))
    } else {
        Vec::new()
    };
    let mut plan = ShardPlan::new(replicas.len(), checkpoints.parallel.even_shards);
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
        checkpoints.parallel.seed_replicas(epoch_seed);
        // Fisher–Yates with the seeded generator, over the windows in their base order: the
        // same seed gives the same run, and the generator's state is all a resume needs.
        let mut data = base.clone();
        for i in (1..data.len()).rev() {
            let j = ((rng.next_f32() * (i + 1) as f32) as usize).min(i);
            data.swap(i, j);
        }
        let mut loss_sum = 0.0;
        let mut batches = 0;
        let mut exchange_seconds = 0.0;
        let mut replica_seconds: Vec<f64> = Vec::new();
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
            let ranges = plan.ranges(chunk.len());
            let step = batch_gradients(
                &model,
                chunk,
                text,
                &objective,
                &Sharding {
                    replicas: &replicas,
                    ranges: &ranges,
                    timeout: checkpoints.parallel.timeout,
                    // The workers' generators for this batch, from the epoch's seed.
                    seed: epoch_seed.wrapping_add((batches as u64 + 1).wrapping_mul(1_000_033)),
                },
            )
            .map_err(|failed| {
                replica_error(
                    &failed,
                    &checkpoints.parallel.names,
                    checkpoints.dir.as_deref(),
                    epoch,
                )
            })?;
            plan.observe(&ranges, &step);
            let (value, grads) = (step.loss, step.grads);
            exchange_seconds += step.exchange_seconds;
            add_into(&mut replica_seconds, &step.replica_seconds);
            if !value.is_finite() {
                // A diverged run must stop here: its metrics and bundle would be meaningless.
                return Err(crate::Error::bad_input(
                    "training",
                    format!(
                        "the loss became {value} at epoch {epoch}, batch {}: the run diverged; \
                         lower --lr, or check --temperature and --weight-decay",
                        batches + 1
                    ),
                ));
            }
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
        let valid_start = std::time::Instant::now();
        let (valid, _) = evaluate_model(&inference, &plain_text, &split.valid, 256);
        let ndcg = valid.means()["ndcg@10"];
        let valid_seconds = valid_start.elapsed().as_secs_f64();
        let entry = EpochLog {
            epoch,
            phase: if pretraining { "pretrain" } else { "finetune" }.into(),
            loss: loss_sum / batches.max(1) as f64,
            valid_ndcg10: ndcg,
            seconds: start.elapsed().as_secs_f64(),
            exchange_seconds,
            valid_seconds,
            replica_seconds,
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
                dropouts: Some(dropouts.clone()),
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
mod tests {
    use super::*;
    use crate::data::synthetic::synthetic_dataset;
    use crate::eval::popularity::evaluate_popularity;
    use crate::fixtures::SEEDED;
    use crate::jobs::Silent;
    use crate::rec::{ItemMode, ItemTower, SequenceEncoder};
    use crate::train::test_support::{small_config, topic_text};

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

    /// A run whose loss becomes NaN (here a NaN learning rate, which the CLI refuses when it
    /// parses its flags, so only the library can be handed one) stops with an error naming the
    /// epoch, instead of reporting NaN scores as perfect ranks.
    #[test]
    fn a_diverged_run_stops_naming_the_epoch() {
        let _seeded = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
        let ds = synthetic_dataset(40, 20, 5, 10, 3);
        let split = Split::leave_one_out(&ds, 10);
        let device = Device::flex().autodiff();
        device.seed(7);
        let config = small_config(ItemMode::Inductive, ds.items.len(), 16, 32, (0.0, 0.1), 10);
        let text = topic_text(ds.items.len(), &device);
        for lr in [f64::NAN, f64::INFINITY] {
            let train_config = TrainConfig {
                epochs: 2,
                batch_size: 16,
                lr,
                max_len: 10,
                ..TrainConfig::default()
            };
            let err = train(
                Recommender::init(&config, &device),
                &text,
                &split,
                &train_config,
                &CheckpointOptions::default(),
                &mut Silent,
            )
            .map(|_| ())
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("diverged") && err.contains("epoch"),
                "lr {lr}: {err}"
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
        impl JobObserver<EpochLog> for Phases {
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
}
