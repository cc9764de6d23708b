//! What the long jobs — training and distillation — share: how they report progress
//! ([`JobObserver`]), where they checkpoint ([`CheckpointPlan`], [`checkpoint`]), and their
//! data-parallel step across devices, processes and hosts ([`parallel`]).

pub mod checkpoint;
pub mod parallel;
pub mod worker_step;

use std::path::PathBuf;

use crate::error::{Error, Result};

/// What a long job reports as it goes (a progress bar, a log, a test that stops the run).
/// `Epoch` is the job's per-epoch record (`train::EpochLog`, `distill::DistillEpoch`).
pub trait JobObserver<Epoch> {
    /// An epoch of `batches` batches starts.
    fn epoch_start(&mut self, _epoch: usize, _batches: usize) {}
    /// A batch finished with this loss.
    fn batch(&mut self, _loss: f64) {}
    /// An epoch finished (its evaluation included).
    fn epoch_end(&mut self, _epoch: &Epoch) {}
    /// Work outside the epochs (embedding item texts, measuring): `done` of `total` `what`.
    fn progress(&mut self, _what: &str, _done: usize, _total: usize) {}
    /// A line worth telling the user (what was reused, what was resumed).
    fn note(&mut self, _line: &str) {}
}

/// For serde's `skip_serializing_if`: a figure that is 0 where it does not apply (the
/// data-parallel times of a run on one device) is left out of the epoch records.
pub fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// Observes nothing.
pub struct Silent;

impl<Epoch> JobObserver<Epoch> for Silent {}

/// Where a job checkpoints, and what to do with a checkpoint already there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointPlan {
    pub dir: PathBuf,
    /// Continue the run saved there (an error when there is none).
    pub resume: bool,
    /// Discard a checkpoint there and start over.
    pub restart: bool,
}

impl CheckpointPlan {
    /// Makes the folder ready for a run: an earlier `what`'s checkpoint there is refused unless
    /// the run resumes it or `restart` discards it.
    pub fn prepare(&self, what: &str) -> Result<()> {
        let dir = &self.dir;
        if dir.join(checkpoint::STATE_FILE).exists() && !self.resume {
            if !self.restart {
                return Err(Error::bad_input(
                    dir.display().to_string(),
                    format!(
                        "holds the checkpoint of an earlier {what}: pass --resume to continue \
                         it, or --restart to discard it and start over"
                    ),
                ));
            }
            std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
        }
        Ok(())
    }
}
