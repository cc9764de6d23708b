//! The recommender's data-parallel gradients: its batch cut into shards for the jobs' shared
//! step (`jobs::parallel`), each replica with the catalogue's text on its device.

use burn::prelude::*;

use crate::jobs::parallel::{ParallelStep, ReplicaFailed, data_parallel_step, single_device_step};
use crate::rec::Recommender;
use crate::train::objective::{Objective, shard_loss};
use crate::train::windows::TrainWindow;

/// A data-parallel replica: its device, and what stays there for the whole run (the catalogue's
/// text vectors), so that a step sends it only the model.
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

/// The batch's loss value and gradients (on the model's device), through the jobs' shared
/// data-parallel step ([`data_parallel_step`]). With several `replicas`, the batch is cut into
/// the contiguous shards `ranges` (one per replica, from a `jobs::parallel::ShardPlan`); each
/// replica computes its shard's loss weighted by its
/// share of the batch (supervised positions when fine-tuning, rows when pre-training) and the
/// gradients are summed on the model's device — for fine-tuning exactly the full batch's
/// gradient (the loss is a mean over positions); pre-training's in-batch negatives are then
/// those of each shard, as in data-parallel training without an all-gather.
pub fn batch_gradients(
    model: &Recommender,
    chunk: &[TrainWindow],
    text: &Tensor<2>,
    objective: &Objective,
    replicas: &[Replica],
    ranges: &[std::ops::Range<usize>],
    timeout: Option<std::time::Duration>,
) -> Result<ParallelStep, ReplicaFailed> {
    if replicas.len() <= 1 || chunk.len() < 2 {
        return single_device_step(model, shard_loss(model, chunk, 0, text.clone(), objective));
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
    let devices: Vec<Device> = replicas.iter().map(|r| r.device.clone()).collect();
    // What each replica's thread needs, owned (cheap: tensors are shared handles).
    let shards: Vec<Option<(std::ops::Range<usize>, f64, Tensor<2>)>> = replicas
        .iter()
        .enumerate()
        .map(|(k, replica)| {
            let rows = ranges.get(k)?.clone();
            (!rows.is_empty()).then(|| {
                let share = weight(&chunk[rows.clone()]) / total;
                (rows, share, replica.text.clone())
            })
        })
        .collect();
    let chunk = chunk.to_vec();
    let objective = objective.to_owned();
    data_parallel_step(model, &devices, timeout, move |copy, k| {
        let (rows, share, text) = shards.get(k)?.clone()?;
        let shard = &chunk[rows.clone()];
        Some(shard_loss(copy, shard, rows.start, text, &objective.as_objective()).mul_scalar(share))
    })
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
        let one = batch_gradients(&model, &chunk, &text, &objective, &[], &[], None).unwrap();
        let replicas = Replica::on(&[device.clone(), device.clone()], &text);
        // Unequal shards, as a plan that measured one replica slower cuts them.
        let two = batch_gradients(
            &model,
            &chunk,
            &text,
            &objective,
            &replicas,
            &[0..5, 5..7],
            None,
        )
        .unwrap();
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
