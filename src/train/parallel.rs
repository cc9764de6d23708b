//! Data-parallel gradients: a batch cut into one shard per device, each replica's gradients
//! summed on the model's device.

use burn::optim::GradientsParams;
use burn::prelude::*;

use crate::rec::Recommender;
use crate::train::objective::{Objective, shard_loss};
use crate::train::windows::TrainWindow;

/// A data-parallel replica: its device, and what stays there for the whole run (the catalogue's
/// text vectors), so that a step sends it only the model. A device may be a `ranklet worker`
/// in another process or on another host (burn's remote backend): the leader drives it the
/// same way, and burn moves the tensors.
#[derive(Debug, Clone)]
pub struct Replica {
    pub device: Device,
    pub text: Tensor<2>,
}

impl Replica {
    /// One replica per device, each with its own copy of `text`.
    pub fn on(devices: &[Device], text: &Tensor<2>) -> Vec<Replica> {
        devices
            .iter()
            .map(|device| Replica {
                device: device.clone(),
                text: text.clone().to_device(device),
            })
            .collect()
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

/// A batch's loss value and summed gradients (on the model's device).
pub struct BatchGradients {
    pub loss: f64,
    pub grads: GradientsParams,
    /// Seconds the model's device spent after its own shard, waiting for the other replicas
    /// and summing their gradients (0 on one device): the data-parallel overhead of the step.
    pub exchange_seconds: f64,
}

/// The batch's loss value and gradients (on the model's device). With several `replicas`, the
/// batch is cut into one contiguous shard per replica; each replica computes its shard's loss
/// weighted by its share of the batch (supervised positions when fine-tuning, rows when
/// pre-training), all replicas run at once on their own threads, and the gradients are summed
/// on the model's device — for fine-tuning exactly the full batch's gradient (the loss is a
/// mean over positions); pre-training's in-batch negatives are then those of each shard, as in
/// data-parallel training without an all-gather.
///
/// The sum is a reduction to the first device followed by a broadcast of the updated model
/// (`fork` at the next step): burn 0.22's `all_reduce` exists only for CUDA devices and for
/// devices of one remote server, not for the CPU backend or across workers, so the reduction
/// moves each replica's gradients with burn's own device transfer.
pub fn batch_gradients(
    model: &Recommender,
    chunk: &[TrainWindow],
    text: &Tensor<2>,
    objective: &Objective,
    replicas: &[Replica],
) -> Result<BatchGradients, ReplicaFailed> {
    if replicas.len() <= 1 || chunk.len() < 2 {
        let loss = shard_loss(model, chunk, 0, text.clone(), objective);
        let value = f64::from(loss.clone().into_scalar::<f32>());
        return Ok(BatchGradients {
            loss: value,
            grads: GradientsParams::from_grads(loss.backward(), model),
            exchange_seconds: 0.0,
        });
    }
    let weight = |c: &[TrainWindow]| -> f64 {
        match objective {
            Objective::Pretrain { .. } => c.len() as f64,
            Objective::Finetune { .. } => c
                .iter()
                .map(|w| w.target_weights.iter().map(|&x| f64::from(x)).sum::<f64>())
                .sum::<f64>(),
        }
    };
    let total = weight(chunk).max(1.0);
    let per = chunk.len().div_ceil(replicas.len().min(chunk.len()));
    let main = &text.device();
    type Shard = Result<(f64, GradientsParams, std::time::Instant), ReplicaFailed>;
    let shards: Vec<Shard> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunk
            .chunks(per)
            .zip(replicas)
            .enumerate()
            .map(|(k, (shard, replica))| {
                let handle = scope.spawn(move || {
                    let copy = model.clone().fork(&replica.device);
                    let share = weight(shard) / total;
                    let loss = shard_loss(&copy, shard, k * per, replica.text.clone(), objective)
                        .mul_scalar(share);
                    // The first read: where a dead worker shows, as an error rather than a panic.
                    let value =
                        loss.clone()
                            .try_into_scalar::<f32>()
                            .map_err(|e| ReplicaFailed {
                                replica: k,
                                reason: format!("reading its loss failed: {e:?}"),
                            })?;
                    let grads = GradientsParams::from_grads(loss.backward(), &copy);
                    // Moved here, on the replica's thread: a worker that dies now panics this
                    // thread, caught below.
                    let grads = grads.to_device(main, &copy);
                    Ok((f64::from(value), grads, std::time::Instant::now()))
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
    let mut sum = burn::optim::GradientsAccumulator::new();
    let mut own_done = None;
    for shard in shards {
        let (v, grads, done) = shard?;
        own_done.get_or_insert(done);
        value += v;
        sum.accumulate(model, grads);
    }
    let grads = sum.grads();
    Ok(BatchGradients {
        loss: value,
        grads,
        exchange_seconds: own_done.map_or(0.0, |t| t.elapsed().as_secs_f64()),
    })
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
    use super::*;
    use crate::data::Split;
    use crate::data::synthetic::synthetic_dataset;
    use crate::fixtures::SEEDED;
    use crate::rec::ItemMode;
    use crate::train::test_support::{small_config, topic_text};
    use crate::train::windows::train_windows;

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
        let chunk: Vec<TrainWindow> = train_windows(&split, 8, None).into_iter().take(7).collect();
        let objective = Objective::Finetune {
            absent: None,
            views: None,
        };
        let one = batch_gradients(&model, &chunk, &text, &objective, &[]).unwrap();
        let replicas = Replica::on(&[device.clone(), device.clone()], &text);
        let two = batch_gradients(&model, &chunk, &text, &objective, &replicas).unwrap();
        let (whole, mut g1, sharded, mut g2) = (one.loss, one.grads, two.loss, two.grads);
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
