//! Training checkpoints: written atomically at the end of every epoch, read back by `--resume`.
//!
//! A checkpoint folder holds `state.json` (the commit point) and the burnpack records it names:
//! the training model, the optimizer state and the best model so far, each tagged with the
//! epoch that wrote it. Records are written first, `state.json` last (atomically), then files
//! that no state names are removed — so a run killed at any moment leaves the previous epoch's
//! checkpoint intact and readable.

use burn::optim::OptimizerRecord;
use burn::store::ModuleRecord;
use serde::{Deserialize, Serialize};

use crate::error::Result;
pub use crate::jobs::checkpoint::{Checkpointer, shape_fingerprint};
use crate::jobs::checkpoint::{STATE_FILE, bad};
use crate::rec::Recommender;
use crate::train::{EpochLog, TrainConfig};

/// Version of `state.json` this build reads and writes.
pub const STATE_VERSION: u32 = 1;

/// Everything but the tensors, as of the end of `epoch`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    pub version: u32,
    /// Epochs completed.
    pub epoch: usize,
    /// The shuffling generator's state after that epoch.
    pub rng: u64,
    /// Epochs since the best validation NDCG@10.
    pub since_best: usize,
    /// Best validation NDCG@10 so far.
    pub best_ndcg10: f64,
    /// The settings of the run: a resume with other settings is refused.
    pub config: TrainConfig,
    /// A fingerprint of the model's shape and the data, also checked on resume.
    pub fingerprint: String,
    /// The model's dropout probabilities (sequence encoder, text vectors entering the item
    /// tower, whole ID rows), which its shape does not show; checked on resume (absent in older
    /// checkpoints, and the ID rows' absent in those written before ID dropout: 0 then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropouts: Option<Vec<f64>>,
    pub log: Vec<EpochLog>,
    pub model_file: String,
    pub optim_file: String,
    pub best_file: String,
}

impl TrainState {
    /// Refuses (naming the checkpoint folder `dir`) to resume this checkpoint in a run of
    /// `config` over a model of shape `fingerprint` and `dropouts`: every setting but the epoch
    /// budget and the patience must match. A checkpoint written before dropouts were recorded
    /// is not checked for them.
    pub fn check_resumable(
        &self,
        config: &TrainConfig,
        fingerprint: &str,
        dropouts: &[f64],
        dir: &std::path::Path,
    ) -> Result<()> {
        let mut theirs = self.config.clone();
        theirs.epochs = config.epochs;
        theirs.patience = config.patience;
        let other_dropouts = self
            .dropouts
            .as_ref()
            .is_some_and(|d| !same_dropouts(d, dropouts));
        if theirs != *config || self.fingerprint != fingerprint || other_dropouts {
            return Err(crate::Error::bad_file(
                dir.display().to_string(),
                "the checkpoint was written by a run with other settings, model shape or data; \
                 resume with the same arguments (only --epochs and --patience may change)",
            ));
        }
        Ok(())
    }
}

/// What a checkpoint must match to be resumed, beyond the training settings: the fingerprint
/// of `model`'s shape and the data (`windows` training windows over `items` items), and its
/// dropouts (sequence encoder, text vectors entering the item tower, whole ID rows), which its
/// shape does not show.
pub fn run_identity(model: &Recommender, windows: usize, items: usize) -> (String, Vec<f64>) {
    // Logit adjustment changes what the weights mean: its checkpoints resume only with it
    // (and runs without it keep the fingerprint they always had).
    let adjusted = if model.popularity.is_some() {
        " popularity logits"
    } else {
        ""
    };
    let fingerprint =
        shape_fingerprint(model, &format!("{windows} windows {items} items{adjusted}"));
    let dropouts = vec![
        model.config.sequence.dropout,
        model.config.items.dropout,
        model.config.items.id_dropout,
    ];
    (fingerprint, dropouts)
}

/// Whether the dropouts a checkpoint recorded are `now`'s: one it does not list (written before
/// that dropout existed) was 0.
fn same_dropouts(recorded: &[f64], now: &[f64]) -> bool {
    (0..recorded.len().max(now.len()))
        .all(|i| recorded.get(i).unwrap_or(&0.0) == now.get(i).unwrap_or(&0.0))
}

/// A checkpoint read back from disk.
pub struct Loaded {
    pub state: TrainState,
    pub model: ModuleRecord,
    pub optim: OptimizerRecord,
    pub best: ModuleRecord,
}

/// Training's checkpoints: the model, the optimizer, the best model and [`TrainState`].
impl Checkpointer {
    /// Writes the records of this epoch, then commits `state` (whose file names it fills in).
    /// `best` is `None` when the best model did not change since the state's `best_file`.
    pub fn save(
        &self,
        mut state: TrainState,
        model: ModuleRecord,
        optim: OptimizerRecord,
        best: Option<ModuleRecord>,
    ) -> Result<TrainState> {
        let e = state.epoch;
        let mut records = vec![
            (format!("model-{e:04}.bpk"), model.into_bytes()),
            (format!("optim-{e:04}.bpk"), optim.into_bytes()),
        ];
        if let Some(best) = best {
            records.push((format!("best-{e:04}.bpk"), best.into_bytes()));
        }
        let written = self.write_records(records)?;
        state.model_file = written[0].clone();
        state.optim_file = written[1].clone();
        if let Some(b) = written.get(2) {
            state.best_file = b.clone();
        }
        state.version = STATE_VERSION;
        let keep = [
            state.model_file.clone(),
            state.optim_file.clone(),
            state.best_file.clone(),
        ];
        self.commit(&state, &keep)?;
        Ok(state)
    }

    /// Reads the committed checkpoint.
    pub fn load(&self) -> Result<Loaded> {
        let state: TrainState = self.load_state()?;
        if state.version != STATE_VERSION {
            return Err(bad(
                &self.dir().join(STATE_FILE),
                format!(
                    "state version {} is not supported (this build reads {STATE_VERSION})",
                    state.version
                ),
            ));
        }
        Ok(Loaded {
            model: self.module_record(&state.model_file)?,
            best: self.module_record(&state.best_file)?,
            optim: self.optim_record(&state.optim_file)?,
            state,
        })
    }
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;

    use crate::data::Split;
    use crate::data::synthetic::synthetic_dataset;
    use crate::eval::evaluate_model;
    use crate::fixtures::SEEDED;
    use crate::jobs::{JobObserver, Silent};
    use crate::rec::{ItemMode, Recommender, RecommenderConfig};
    use crate::train::checkpoint::same_dropouts;
    use crate::train::test_support::{small_config, topic_text};
    use crate::train::{CheckpointOptions, EpochLog, TrainConfig, train};

    /// Stops the run (as a kill would) in the middle of epoch `at`.
    struct KillAt {
        at: usize,
        epoch: usize,
        batches: usize,
    }
    impl JobObserver<EpochLog> for KillAt {
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

    /// A checkpoint from before ID dropout lists two dropouts: it resumes a run whose ID dropout
    /// is 0, and no other.
    #[test]
    fn dropouts_a_checkpoint_does_not_list_were_zero() {
        assert!(same_dropouts(&[0.5, 0.2], &[0.5, 0.2, 0.0]));
        assert!(!same_dropouts(&[0.5, 0.2], &[0.5, 0.2, 0.5]));
        assert!(!same_dropouts(&[0.5, 0.2, 0.5], &[0.5, 0.2, 0.0]));
        assert!(!same_dropouts(&[0.5, 0.3], &[0.5, 0.2, 0.0]));
        // An older checkpoint's record, as JSON, still reads.
        let d: Vec<f64> = serde_json::from_str("[0.5, 0.2]").unwrap();
        assert!(same_dropouts(&d, &[0.5, 0.2, 0.0]));
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
        let run = |resume: bool,
                   dir: Option<std::path::PathBuf>,
                   observer: &mut dyn JobObserver<EpochLog>| {
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

        // Resuming with other settings is refused, naming the folder: other training settings,
        // or another dropout or ID dropout (which the model's shape does not show).
        let device = Device::flex().autodiff();
        let text = topic_text(ds.items.len(), &device);
        let refusal = |model: &RecommenderConfig, training: &TrainConfig| {
            train(
                Recommender::init(model, &device),
                &text,
                &split,
                training,
                &CheckpointOptions {
                    dir: Some(dir.clone()),
                    resume: true,
                    ..Default::default()
                },
                &mut Silent,
            )
            .err()
            .unwrap()
            .to_string()
        };
        let other = TrainConfig {
            lr: 1e-2,
            ..train_config.clone()
        };
        let err = refusal(&config, &other);
        assert!(err.contains("other settings"), "{err}");
        let mut more_dropout = config.clone();
        more_dropout.items.dropout = 0.5;
        let err = refusal(&more_dropout, &train_config);
        assert!(err.contains("other settings"), "{err}");
        // (The run is transductive: ID dropout applies to it.)
        let mut id_dropout = config.clone();
        id_dropout.items.id_dropout = 0.5;
        let err = refusal(&id_dropout, &train_config);
        assert!(err.contains("other settings"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
