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

/// The devices a job runs data-parallel on, and what the user called them.
#[derive(Debug, Clone, Default)]
pub struct DataParallel {
    /// Autodiff devices, the first holding the model; empty or one: no replicas.
    pub devices: Vec<Device>,
    /// What the user called each of `devices` (e.g. a worker's address), for errors; empty:
    /// "replica N".
    pub names: Vec<String>,
}

impl DataParallel {
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
}

/// A replica that could not finish its shard: its device failed, or its worker died or became
/// unreachable (burn's remote client fails every call on a closed connection).
#[derive(Debug, Clone)]
pub struct ReplicaFailed {
    /// Its position among the replicas.
    pub replica: usize,
    pub reason: String,
}

/// One data-parallel step of `model` over `devices` (the first is the model's; empty or one:
/// no replicas). `shard_loss(copy, k)` is replica `k`'s loss on its shard, computed with `copy`
/// (the model forked to `devices[k]`) and already weighted so that the shards' losses sum to
/// the batch's; `None` when the shard is empty. With one device, shard 0 is the whole batch and
/// the model itself is used, on the calling thread.
pub fn data_parallel_step<M, F>(
    model: &M,
    devices: &[Device],
    shard_loss: F,
) -> Result<ParallelStep, ReplicaFailed>
where
    M: Module + Sync,
    F: Fn(&M, usize) -> Option<Tensor<1>> + Sync,
{
    if devices.len() <= 1 {
        let loss = shard_loss(model, 0).ok_or_else(|| ReplicaFailed {
            replica: 0,
            reason: "an empty batch".into(),
        })?;
        let value = read_loss(&loss, 0)?;
        return Ok(ParallelStep {
            loss: value,
            grads: GradientsParams::from_grads(loss.backward(), model),
            exchange_seconds: 0.0,
        });
    }
    let main = &devices[0];
    type Shard = Result<Option<(f64, GradientsParams, std::time::Instant)>, ReplicaFailed>;
    let shard_loss = &shard_loss;
    let shards: Vec<Shard> = std::thread::scope(|scope| {
        let handles: Vec<_> = devices
            .iter()
            .enumerate()
            .map(|(k, device)| {
                let handle = scope.spawn(move || {
                    let copy = model.clone().fork(device);
                    let Some(loss) = shard_loss(&copy, k) else {
                        return Ok(None);
                    };
                    // The first read: where a dead worker shows, as an error rather than a panic.
                    let value = read_loss(&loss, k)?;
                    let grads = GradientsParams::from_grads(loss.backward(), &copy);
                    // Moved here, on the replica's thread: a worker that dies now panics this
                    // thread, caught below.
                    let grads = grads.to_device(main, &copy);
                    Ok(Some((value, grads, std::time::Instant::now())))
                });
                (k, handle)
            })
            .collect();
        handles
            .into_iter()
            .map(|(k, h)| {
                h.join().unwrap_or_else(|panic| {
                    Err(ReplicaFailed {
                        replica: k,
                        reason: panic_text(&*panic),
                    })
                })
            })
            .collect()
    });
    let mut value = 0.0;
    let mut sum = GradientsAccumulator::new();
    let mut own_done = None;
    for (k, shard) in shards.into_iter().enumerate() {
        let Some((v, grads, done)) = shard? else {
            continue;
        };
        if k == 0 {
            own_done = Some(done);
        }
        value += v;
        sum.accumulate(model, grads);
    }
    Ok(ParallelStep {
        loss: value,
        grads: sum.grads(),
        exchange_seconds: own_done.map_or(0.0, |t| t.elapsed().as_secs_f64()),
    })
}

/// `[start, end)` of shard `k` when `n` rows are cut into contiguous shards for `replicas`
/// replicas (the last shards may be empty when `n` is small).
pub fn shard_range(n: usize, replicas: usize, k: usize) -> std::ops::Range<usize> {
    let per = n.div_ceil(replicas.clamp(1, n.max(1)));
    (k * per).min(n)..((k + 1) * per).min(n)
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
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "it stopped without a message".into())
}

#[cfg(test)]
mod tests {
    use super::shard_range;

    #[test]
    fn shards_cover_the_rows_once_in_order() {
        for n in 0..12 {
            for replicas in 1..5 {
                let rows: Vec<usize> = (0..replicas)
                    .flat_map(|k| shard_range(n, replicas, k))
                    .collect();
                assert_eq!(
                    rows,
                    (0..n).collect::<Vec<_>>(),
                    "n {n}, {replicas} replicas"
                );
            }
        }
        assert_eq!(shard_range(7, 2, 0), 0..4);
        assert_eq!(shard_range(7, 2, 1), 4..7);
        assert_eq!(shard_range(1, 3, 2), 1..1);
    }
}
