//! The data-parallel step both long jobs use: a batch cut into one shard per device, each
//! replica's loss and gradients computed at once on its own thread, the gradients summed on the
//! model's device.
//!
//! A device may be a `ranklet worker` in another process or on another host (burn's remote
//! backend): the leader drives it the same way, and burn moves the tensors. The sum is a
//! reduction to the model's device followed by a broadcast of the updated model (`fork` at the
//! next step): burn 0.22's `all_reduce` exists only for CUDA devices and for devices of one
//! remote server, not for the CPU backend or across workers (docs/training.md), so the
//! reduction moves each replica's gradients with burn's own device transfer.

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;

use crate::device::NamedDevice;

/// The devices a job runs data-parallel on, and what the user called them.
#[derive(Debug, Clone, Default)]
pub struct DataParallel {
    /// Autodiff devices, the first holding the model; empty or one: no replicas.
    pub devices: Vec<Device>,
    /// What the user called each of `devices` (e.g. a worker's address), for errors; empty:
    /// "replica N".
    pub names: Vec<String>,
    /// Cut batches evenly instead of by measured speed (see [`ShardPlan`]).
    pub even_shards: bool,
    /// How long a step may wait for a replica before the run stops naming it (`None`: for
    /// ever).
    pub timeout: Option<std::time::Duration>,
}

impl DataParallel {
    /// Data parallelism over `replicas` as the user named them (their autodiff devices; none
    /// when there is only one).
    pub fn over(
        replicas: &[NamedDevice],
        even_shards: bool,
        timeout: Option<std::time::Duration>,
    ) -> DataParallel {
        DataParallel {
            devices: if replicas.len() > 1 {
                replicas
                    .iter()
                    .map(|r| r.device.clone().autodiff())
                    .collect()
            } else {
                Vec::new()
            },
            names: replicas.iter().map(|r| r.name.clone()).collect(),
            even_shards,
            timeout,
        }
    }

    /// Reseeds every replica's generator (dropout) for an epoch, each from its own offset of
    /// `seed`; the model's device (the first) is the caller's to seed.
    pub fn seed_replicas(&self, seed: u64) {
        for (k, device) in self.devices.iter().enumerate().skip(1) {
            device.seed(seed.wrapping_add(k as u64 * 7919));
        }
    }
}

/// A step's loss value (the sum of the shards' weighted losses) and summed gradients (on the
/// model's device).
pub struct ParallelStep {
    pub loss: f64,
    pub grads: GradientsParams,
    /// Seconds the model's device spent after its own shard, waiting for the other replicas
    /// and summing their gradients (0 on one device): the data-parallel overhead of the step.
    pub exchange_seconds: f64,
    /// Each replica's seconds from the step's start until its gradients were on the model's
    /// device (empty on one device).
    pub replica_seconds: Vec<f64>,
}

/// Adds `more` into `total` element by element (`total` grows to `more`'s length).
pub fn add_into(total: &mut Vec<f64>, more: &[f64]) {
    if total.len() < more.len() {
        total.resize(more.len(), 0.0);
    }
    for (t, m) in total.iter_mut().zip(more) {
        *t += m;
    }
}

/// A replica that could not finish its shard: its device failed, or its worker died or became
/// unreachable (burn's remote client fails every call on a closed connection).
#[derive(Debug, Clone)]
pub struct ReplicaFailed {
    /// Its position among the replicas.
    pub replica: usize,
    pub reason: String,
}

/// A job's step for a replica whose device is a `ranklet worker`, run whole there
/// (`jobs::worker_step`): `(model, k)` → replica `k`'s weighted loss and its gradients on the
/// model's device; `None` when its shard is empty; `Err` names why the worker failed.
pub type WorkerShard<M> = std::sync::Arc<
    dyn Fn(&M, usize) -> Option<Result<(f64, GradientsParams), String>> + Send + Sync,
>;

/// The step of a model on one device: `loss`'s value and gradients.
pub fn single_device_step<M: Module>(
    model: &M,
    loss: Tensor<1>,
) -> Result<ParallelStep, ReplicaFailed> {
    let value = read_loss(&loss, 0)?;
    Ok(ParallelStep {
        loss: value,
        grads: GradientsParams::from_grads(loss.backward(), model),
        exchange_seconds: 0.0,
        replica_seconds: Vec::new(),
    })
}

/// One data-parallel step of `model` over `devices` (at least two; the first is the model's).
/// `shard_loss(copy, k)` is replica `k`'s loss on its shard, computed with `copy` (the model
/// forked to `devices[k]`) and already weighted so that the shards' losses sum to the batch's;
/// `None` when the shard is empty. With `on_worker`, a replica on a `ranklet worker` runs its
/// shard there instead ([`WorkerShard`]); without it, the leader drives the worker's operations
/// one by one through burn's remote backend.
///
/// Each replica runs on a thread of its own. A replica that has not handed back its gradients
/// within `timeout` of the step's start fails the step by name: a worker whose host vanished
/// without closing its connection (power lost, cable pulled, process stopped) would otherwise
/// keep the leader waiting on the operating system's TCP timeout. Its thread stays blocked and
/// is left behind (the run stops with the error).
pub fn data_parallel_step<M, F>(
    model: &M,
    devices: &[Device],
    timeout: Option<std::time::Duration>,
    shard_loss: F,
    on_worker: Option<WorkerShard<M>>,
) -> Result<ParallelStep, ReplicaFailed>
where
    M: Module + Sync + 'static,
    F: Fn(&M, usize) -> Option<Tensor<1>> + Send + Sync + 'static,
{
    type Shard = Result<Option<(f64, GradientsParams, std::time::Instant)>, ReplicaFailed>;
    let main = devices[0].clone();
    let start = std::time::Instant::now();
    let shard_loss = std::sync::Arc::new(shard_loss);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<(usize, Shard)>();
    for (k, device) in devices.iter().enumerate() {
        let (model, device, main) = (model.clone(), device.clone(), main.clone());
        let (shard_loss, done_tx) = (shard_loss.clone(), done_tx.clone());
        let on_worker = on_worker
            .clone()
            .filter(|_| crate::jobs::worker_step::is_worker(&device));
        std::thread::spawn(move || {
            let run = || -> Shard {
                if let Some(on_worker) = on_worker {
                    return match on_worker(&model, k) {
                        None => Ok(None),
                        Some(Ok((value, grads))) => {
                            Ok(Some((value, grads, std::time::Instant::now())))
                        }
                        Some(Err(reason)) => Err(ReplicaFailed { replica: k, reason }),
                    };
                }
                let copy = model.fork(&device);
                let Some(loss) = shard_loss(&copy, k) else {
                    return Ok(None);
                };
                // The backward pass is queued before the first read, so that a remote device
                // receives it while it still runs the forward pass; the read is where a dead
                // worker shows, as an error rather than a panic.
                let grads = GradientsParams::from_grads(loss.clone().backward(), &copy);
                let value = read_loss(&loss, k)?;
                // Moved here, on the replica's thread: a worker that dies now panics this
                // thread, caught below.
                let grads = grads.to_device(&main, &copy);
                Ok(Some((value, grads, std::time::Instant::now())))
            };
            let shard = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(
                |panic| {
                    Err(ReplicaFailed {
                        replica: k,
                        reason: panic_text(&*panic),
                    })
                },
            );
            // The leader may have stopped waiting (a timed-out step): nobody to tell then.
            let _ = done_tx.send((k, shard));
        });
    }
    drop(done_tx);
    let mut shards: Vec<Option<Shard>> = (0..devices.len()).map(|_| None).collect();
    while shards.iter().any(Option::is_none) {
        let received = match timeout {
            Some(limit) => done_rx.recv_timeout(limit.saturating_sub(start.elapsed())),
            None => done_rx
                .recv()
                .map_err(|_| std::sync::mpsc::RecvTimeoutError::Disconnected),
        };
        match received {
            Ok((k, shard)) => shards[k] = Some(shard),
            Err(_) => {
                let waiting = shards.iter().position(Option::is_none).unwrap_or(0);
                return Err(ReplicaFailed {
                    replica: waiting,
                    reason: format!(
                        "no answer {:.0} s after the step started (--replica-timeout): its host \
                         may be gone, stopped or unreachable",
                        start.elapsed().as_secs_f64()
                    ),
                });
            }
        }
    }
    let mut value = 0.0;
    let mut sum = GradientsAccumulator::new();
    let mut own_done = None;
    let mut replica_seconds = vec![0.0; devices.len()];
    for (k, shard) in shards.into_iter().enumerate() {
        let Some((v, grads, done)) = shard.expect("every replica answered")? else {
            continue;
        };
        if k == 0 {
            own_done = Some(done);
        }
        replica_seconds[k] = done.duration_since(start).as_secs_f64();
        value += v;
        sum.accumulate(model, grads);
    }
    Ok(ParallelStep {
        loss: value,
        grads: sum.grads(),
        exchange_seconds: own_done.map_or(0.0, |t| t.elapsed().as_secs_f64()),
        replica_seconds,
    })
}

/// How a batch is cut among the replicas: contiguous shards sized to each replica's measured
/// speed. A `ranklet worker` runs a shard slower than the leader's own device (every operation
/// crosses the connection, and the leader's core also drives it), so equal shards leave the
/// faster replica waiting; the plan gives each replica rows in proportion to the rows per
/// second it has been measured at (a moving average over steps), equal shards until every
/// replica has been measured. Fine-tuning's gradient is the batch's whatever the cut (the
/// shards' losses are weighted by their share); pre-training's in-batch negatives and
/// distillation's in-batch similarity are each shard's, so with several replicas those depend
/// on the measured speeds.
#[derive(Debug, Clone)]
pub struct ShardPlan {
    /// Per replica: the moving average of its seconds per row, once measured.
    seconds_per_row: Vec<Option<f64>>,
    even: bool,
}

impl ShardPlan {
    /// Weight of the newest step in the moving average.
    const NEWEST: f64 = 0.3;

    /// A plan for `replicas` replicas; `even`: equal shards always, never measured.
    pub fn new(replicas: usize, even: bool) -> ShardPlan {
        ShardPlan {
            seconds_per_row: vec![None; replicas.max(1)],
            even,
        }
    }

    /// The rows of each replica for a batch of `n` rows, in order: contiguous, covering
    /// `0..n` once, each replica at least one row while `n` allows (so each keeps being
    /// measured).
    pub fn ranges(&self, n: usize) -> Vec<std::ops::Range<usize>> {
        let replicas = self.seconds_per_row.len();
        let speeds: Vec<f64> = if self.seconds_per_row.iter().all(Option::is_some) {
            self.seconds_per_row
                .iter()
                .map(|s| 1.0 / s.expect("checked").max(1e-12))
                .collect()
        } else {
            vec![1.0; replicas]
        };
        let total: f64 = speeds.iter().sum();
        let floor = usize::from(n >= replicas);
        let mut ranges = Vec::with_capacity(replicas);
        let (mut start, mut cumulative) = (0, 0.0);
        for (k, speed) in speeds.iter().enumerate() {
            cumulative += speed;
            let left_for_rest = floor * (replicas - k - 1);
            let end = if k + 1 == replicas {
                n
            } else {
                ((n as f64 * cumulative / total).round() as usize)
                    .clamp(start + floor, n - left_for_rest)
            };
            ranges.push(start..end);
            start = end;
        }
        ranges
    }

    /// Takes in a step's measured times for the shards `ranges` it ran.
    pub fn observe(&mut self, ranges: &[std::ops::Range<usize>], step: &ParallelStep) {
        if self.even {
            return;
        }
        for ((average, rows), seconds) in self
            .seconds_per_row
            .iter_mut()
            .zip(ranges)
            .zip(&step.replica_seconds)
        {
            if rows.is_empty() || *seconds <= 0.0 {
                continue;
            }
            let now = seconds / rows.len() as f64;
            *average = Some(match *average {
                None => now,
                Some(a) => a + Self::NEWEST * (now - a),
            });
        }
    }
}

/// The error a failed replica ends a run with: which device (`names`, as the user gave them),
/// why, and how to go on from the last checkpoint.
pub fn replica_error(
    failed: &ReplicaFailed,
    names: &[String],
    checkpoint: Option<&std::path::Path>,
    epoch: usize,
) -> crate::Error {
    let name = names
        .get(failed.replica)
        .cloned()
        .unwrap_or_else(|| format!("replica {}", failed.replica));
    let next = match checkpoint {
        Some(dir) if dir.join("state.json").exists() => format!(
            "the last complete epoch is checkpointed in {}: continue with --resume and --devices \
             naming the devices that remain",
            dir.display()
        ),
        Some(_) => "no epoch had been completed, so the run starts again".to_string(),
        None => "no --checkpoint folder was set, so the run starts again".to_string(),
    };
    crate::Error::Backend(format!(
        "data-parallel device {name} failed during epoch {epoch} ({}); the run stopped, {next}",
        failed.reason
    ))
}

fn read_loss(loss: &Tensor<1>, replica: usize) -> Result<f64, ReplicaFailed> {
    loss.clone()
        .try_into_scalar::<f32>()
        .map(f64::from)
        .map_err(|e| ReplicaFailed {
            replica,
            reason: format!("reading its loss failed: {e:?}"),
        })
}

/// What a panicking replica thread said.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "it stopped without a message".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step_with(replica_seconds: Vec<f64>) -> ParallelStep {
        ParallelStep {
            loss: 0.0,
            grads: GradientsParams::new(),
            exchange_seconds: 0.0,
            replica_seconds,
        }
    }

    fn covers_in_order(ranges: &[std::ops::Range<usize>], n: usize) {
        let rows: Vec<usize> = ranges.iter().cloned().flatten().collect();
        assert_eq!(rows, (0..n).collect::<Vec<_>>(), "{ranges:?}");
    }

    #[test]
    fn shards_start_equal_and_follow_the_measured_speeds() {
        for replicas in 1..5 {
            let plan = ShardPlan::new(replicas, false);
            for n in 0..12 {
                let ranges = plan.ranges(n);
                assert_eq!(ranges.len(), replicas);
                covers_in_order(&ranges, n);
                let sizes: Vec<usize> = ranges.iter().map(|r| r.len()).collect();
                let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(hi - lo <= 1, "equal before measuring: {sizes:?}");
            }
        }
        // Replica 1 takes twice as long per row: it gets a third of the rows.
        let mut even = ShardPlan::new(2, true);
        even.observe(&[0..30, 30..60], &step_with(vec![3.0, 6.0]));
        assert_eq!(
            even.ranges(60),
            vec![0..30, 30..60],
            "--even-shards ignores speeds"
        );
        let mut plan = ShardPlan::new(2, false);
        let first = plan.ranges(60);
        assert_eq!(first, vec![0..30, 30..60]);
        plan.observe(&first, &step_with(vec![3.0, 6.0]));
        assert_eq!(plan.ranges(60), vec![0..40, 40..60]);
        covers_in_order(&plan.ranges(7), 7);
        // However slow, a replica keeps at least one row (and so keeps being measured).
        plan.observe(&[0..1, 1..2], &step_with(vec![0.001, 1000.0]));
        let ranges = plan.ranges(5);
        assert!(ranges.iter().all(|r| !r.is_empty()), "{ranges:?}");
        covers_in_order(&ranges, 5);
        assert_eq!(plan.ranges(1).iter().map(|r| r.len()).sum::<usize>(), 1);
    }
}
