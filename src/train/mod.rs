//! Training the recommender: next-item cross-entropy over every position of causal windows,
//! AdamW, early stopping on validation NDCG@10.
//!
//! A plain loop over burn's autodiff and `ModuleOptimizer` rather than burn-train's `Learner`:
//! the epoch's validation is a full ranking of the catalog for every user (not a per-batch
//! metric), and an exact `--resume` needs the shuffling state and a per-epoch reseed of the
//! device generator (dropout, gate noise) saved with the checkpoint — see `checkpoint.rs`.
//!
//! One concern a file: [`config`] (the settings), [`epoch_log`] (an epoch's record),
//! [`windows`] (causal training windows),
//! [`objective`] (a batch's loss), [`parallel`] (data-parallel gradients), [`clsd`] (CLSD's
//! self-distillation pass), [`run`] (the loop: epochs, selection, checkpoints), and
//! [`text_tuning`] (fine-tuning the text encoder's top layers with the recommender).

pub mod checkpoint;
pub mod clsd;
pub mod config;
pub mod epoch_log;
pub mod job;
pub mod objective;
pub mod parallel;
pub mod run;
#[cfg(test)]
pub(crate) mod test_support;
pub mod text_inputs;
pub mod text_tuning;
pub mod windows;

pub use clsd::clsd_pass;
pub use config::TrainConfig;
pub use objective::{Objective, TwoViews};
pub use parallel::batch_gradients;
pub use run::{CheckpointOptions, EpochLog, Trained, train, train_with_views};
pub use windows::{TrainWindow, train_windows, window_spans, windows};
