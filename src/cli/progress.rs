//! The one progress type of the long commands: a bar over each epoch's batches (batches/s,
//! running loss, ETA), one line per epoch, a bar for other work (embedding item texts), and the
//! job's notes — all on stderr, none with `--quiet`.

use std::path::PathBuf;

use clap::Args;
use ranklet::distill::DistillEpoch;
use ranklet::jobs::{CheckpointPlan, JobObserver};
use ranklet::train::EpochLog;

use super::progress_bar;

/// The checkpoint arguments of `train` and `distill`.
#[derive(Debug, Clone, Args)]
pub struct CheckpointArgs {
    /// Checkpoint folder, written atomically after every epoch
    /// [default: .cache/checkpoints/<command>-…].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Continue the run saved in the checkpoint folder (same arguments; a training run may
    /// change --epochs and --patience). Figures match a run that was never interrupted.
    #[arg(long, conflicts_with = "restart")]
    pub resume: bool,
    /// Discard an existing checkpoint and start over.
    #[arg(long)]
    pub restart: bool,
}

impl CheckpointArgs {
    /// The plan, with `default` as the folder when none is given.
    pub fn plan(&self, default: impl Into<PathBuf>) -> CheckpointPlan {
        CheckpointPlan {
            dir: self.checkpoint.clone().unwrap_or_else(|| default.into()),
            resume: self.resume,
            restart: self.restart,
        }
    }
}

/// How an epoch's record reads as one line.
pub trait EpochLine {
    fn line(&self) -> String;
}

impl EpochLine for EpochLog {
    fn line(&self) -> String {
        let exchange = if self.exchange_seconds > 0.0 {
            let busy: Vec<String> = self
                .replica_seconds
                .iter()
                .map(|s| format!("{s:.1}"))
                .collect();
            format!(
                " (replicas {} s to their gradients; {:.1} s waiting for replicas and summing)",
                busy.join(" / "),
                self.exchange_seconds
            )
        } else {
            String::new()
        };
        format!(
            "epoch {:>3} ({}): loss {:.4}, valid NDCG@10 {:.4}, {:.1} s{exchange}",
            self.epoch, self.phase, self.loss, self.valid_ndcg10, self.seconds
        )
    }
}

impl EpochLine for DistillEpoch {
    fn line(&self) -> String {
        format!(
            "epoch {:>2} (stage {}): loss {:.4}, held-out cosine {:.4} (training texts {:.4}), {} heads × {} neurons, {:.2} M params, {:.0} s",
            self.epoch,
            self.stage,
            self.loss,
            self.valid_cosine,
            self.train_cosine,
            self.kept.heads,
            self.kept.ffn,
            self.params as f64 / 1e6,
            self.seconds
        )
    }
}

pub struct Progress {
    bar: indicatif::ProgressBar,
    /// The bar of the work outside epochs, and what it counts.
    task: Option<(String, indicatif::ProgressBar)>,
    epochs: usize,
    quiet: bool,
    loss: f64,
    seen: usize,
}

impl Progress {
    /// A job of `epochs` epochs (for the bar's "epoch k/n").
    pub fn new(epochs: usize, quiet: bool) -> Self {
        Self {
            bar: indicatif::ProgressBar::hidden(),
            task: None,
            epochs,
            quiet,
            loss: 0.0,
            seen: 0,
        }
    }

    /// Clears the bars (at the end of the job, or before printing a result).
    pub fn finish(&mut self) {
        self.bar.finish_and_clear();
        if let Some((_, bar)) = self.task.take() {
            bar.finish_and_clear();
        }
    }
}

impl<E: EpochLine> JobObserver<E> for Progress {
    fn epoch_start(&mut self, epoch: usize, batches: usize) {
        self.finish();
        self.bar = progress_bar(batches as u64, "batches", self.quiet);
        self.bar
            .set_prefix(format!("epoch {epoch}/{}", self.epochs));
        self.loss = 0.0;
        self.seen = 0;
    }

    fn batch(&mut self, loss: f64) {
        self.loss += loss;
        self.seen += 1;
        self.bar.inc(1);
        if self.seen.is_multiple_of(10) || self.seen == 1 {
            self.bar
                .set_message(format!("loss {:.4}", self.loss / self.seen as f64));
        }
    }

    fn epoch_end(&mut self, e: &E) {
        self.bar.finish_and_clear();
        if !self.quiet {
            eprintln!("{}", e.line());
        }
    }

    fn progress(&mut self, what: &str, done: usize, total: usize) {
        let same = self
            .task
            .as_ref()
            .is_some_and(|(w, bar)| w == what && bar.length() == Some(total as u64));
        if !same {
            self.finish();
            self.task = Some((
                what.to_string(),
                progress_bar(total as u64, what, self.quiet),
            ));
        }
        if let Some((_, bar)) = &self.task {
            bar.set_position(done as u64);
            if done >= total {
                bar.finish_and_clear();
            }
        }
    }

    fn note(&mut self, line: &str) {
        self.finish();
        if !self.quiet {
            eprintln!("{line}");
        }
    }
}
