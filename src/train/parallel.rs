//! Data-parallel gradients: a batch cut into one shard per device, each replica's gradients
//! summed on the model's device.

use burn::optim::GradientsParams;
use burn::prelude::*;

use crate::rec::Recommender;
use crate::train::objective::{Objective, shard_loss};
use crate::train::windows::TrainWindow;

/// The batch's loss value and gradients (on the model's device). With several `devices`, the
/// batch is cut into one contiguous shard per device; each replica computes its shard's loss
/// weighted by its share of the batch (supervised positions when fine-tuning, rows when
/// pre-training), all replicas run at once on their own threads, and the gradients are summed
/// on the model's device — for fine-tuning exactly the full batch's gradient (the loss is a
/// mean over positions); pre-training's in-batch negatives are then those of each shard, as in
/// data-parallel training without an all-gather.
pub fn batch_gradients(
    model: &Recommender,
    chunk: &[TrainWindow],
    text: &Tensor<2>,
    objective: &Objective,
    devices: &[Device],
) -> (f64, GradientsParams) {
    if devices.len() <= 1 || chunk.len() < 2 {
        let loss = shard_loss(model, chunk, 0, text.clone(), objective);
        let value = f64::from(loss.clone().into_scalar::<f32>());
        return (value, GradientsParams::from_grads(loss.backward(), model));
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
