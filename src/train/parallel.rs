//! The recommender's data-parallel gradients: its batch cut into shards for the jobs' shared
//! step (`jobs::parallel`), each replica with the catalogue's text on its device.

use burn::module::Module;
use burn::prelude::*;

use crate::jobs::parallel::{ParallelStep, ReplicaFailed, data_parallel_step, single_device_step};
use crate::jobs::worker_step::{
    ParamFill, StepAnswer, WorkerStep, param_grads, run_on_worker, trained_params,
};
use crate::rec::persona::FacetTable;
use crate::rec::signals::ClsdStats;
use crate::rec::{Recommender, RecommenderConfig};
use crate::train::objective::{Objective, OwnedObjective, TwoViews, absent_mask, shard_loss};
use crate::train::windows::TrainWindow;

/// A data-parallel replica: its device, and what stays there for the whole run (the catalogue's
/// text vectors, and the two views' when the two-view term is on), so that a step sends it only
/// the model.
#[derive(Debug, Clone)]
pub struct Replica {
    pub device: Device,
    pub text: Tensor<2>,
    pub views: Option<(Tensor<2>, Tensor<2>)>,
}

impl Replica {
    /// One replica per device, each with its own copy of `text` (and of `views`' vectors).
    pub fn on(devices: &[Device], text: &Tensor<2>, views: Option<&TwoViews>) -> Vec<Replica> {
        devices
            .iter()
            .map(|device| Replica {
                device: device.clone(),
                text: text.clone().to_device(device),
                views: views.map(|v| {
                    (
                        v.titles.clone().to_device(device),
                        v.descriptions.clone().to_device(device),
                    )
                }),
            })
            .collect()
    }

    /// The tensors a worker's step reads from this replica's device.
    fn resident(&self) -> Vec<Tensor<2>> {
        let mut resident = vec![self.text.clone()];
        if let Some((titles, descriptions)) = &self.views {
            resident.extend([titles.clone(), descriptions.clone()]);
        }
        resident
    }
}

/// The recommender's shard step, run whole by a `ranklet worker` (see `jobs::worker_step`).
pub const WORKER_STEP: WorkerStep = WorkerStep {
    id: "ranklet/train-shard/1",
    run: shard_on_worker,
};

/// What a worker needs for a shard besides the tensors it keeps: the model's shape and state
/// that are not parameters, the shard's windows, its objective and its share of the batch.
#[derive(serde::Serialize, serde::Deserialize)]
struct ShardRequest {
    config: RecommenderConfig,
    clsd: Option<ClsdStats>,
    facets: Option<FacetTable>,
    /// Per float parameter (visiting order): trained, or frozen.
    trained: Vec<bool>,
    windows: Vec<TrainWindow>,
    objective: ShardObjective,
    share: f64,
    /// The worker's generator seed for this step (dropout, gate noise).
    seed: u64,
}

#[derive(serde::Serialize, serde::Deserialize)]
enum ShardObjective {
    Pretrain {
        /// The shard's rows' item-dropped copies.
        dropped: Vec<Vec<usize>>,
        lambda: f64,
    },
    Finetune {
        /// Catalogue size and the rows left out of the softmax.
        absent: Option<(usize, Vec<usize>)>,
        /// Each catalogue row's row among the two views, and the term's weight.
        two_view: Option<(Vec<Option<usize>>, f64)>,
    },
}

impl ShardObjective {
    fn of(objective: &OwnedObjective, rows: std::ops::Range<usize>) -> ShardObjective {
        match objective {
            OwnedObjective::Pretrain { dropped, lambda } => ShardObjective::Pretrain {
                dropped: dropped[rows].to_vec(),
                lambda: *lambda,
            },
            OwnedObjective::Finetune { absent, views } => ShardObjective::Finetune {
                absent: absent.as_ref().map(|mask| {
                    let data = mask.clone().into_data();
                    let n = data.shape().as_slice().iter().product();
                    let rows = data
                        .iter::<bool>()
                        .enumerate()
                        .filter_map(|(i, a)| a.then_some(i))
                        .collect();
                    (n, rows)
                }),
                two_view: views.as_ref().map(|(v, w)| (v.row_of.clone(), *w)),
            },
        }
    }
}

/// The worker's side of [`WORKER_STEP`]: the leader's model rebuilt on `device` with autodiff,
/// the shard's weighted loss and its gradients.
fn shard_on_worker(
    request: &[u8],
    resident: Vec<Tensor<2>>,
    params: Vec<f32>,
    device: &Device,
) -> Result<StepAnswer, String> {
    let request: ShardRequest =
        serde_json::from_slice(request).map_err(|e| format!("an unreadable request: {e}"))?;
    let device = device.clone().autodiff();
    device.seed(request.seed);
    let mut fill = ParamFill::new(&params, &request.trained, &device);
    let mut model = Recommender::init(&request.config, &device).map(&mut fill);
    if let Some(why) = fill.mismatch() {
        return Err(why);
    }
    model.clsd = request.clsd;
    model.facets = request.facets;
    let mut resident = resident.into_iter();
    let mut next = |what: &str| {
        resident
            .next()
            .map(Tensor::from_inner)
            .ok_or_else(|| format!("the leader sent no {what}"))
    };
    let text = next("text vectors")?;
    let loss = match request.objective {
        ShardObjective::Pretrain { dropped, lambda } => shard_loss(
            &model,
            &request.windows,
            0,
            text,
            &Objective::Pretrain {
                dropped: &dropped,
                lambda,
            },
        ),
        ShardObjective::Finetune { absent, two_view } => {
            let absent = absent.map(|(n, rows)| absent_mask(n, rows, &device));
            let views = match two_view {
                Some((row_of, weight)) => Some((
                    TwoViews {
                        titles: next("title vectors")?,
                        descriptions: next("description vectors")?,
                        row_of,
                    },
                    weight,
                )),
                None => None,
            };
            shard_loss(
                &model,
                &request.windows,
                0,
                text,
                &Objective::Finetune {
                    absent: absent.as_ref(),
                    views: views.as_ref().map(|(v, w)| (v, *w)),
                },
            )
        }
    }
    .mul_scalar(request.share);
    let grads = loss.backward();
    let value = loss
        .try_into_data()
        .map_err(|e| format!("{e:?}"))?
        .iter::<f64>()
        .next()
        .ok_or("an empty loss")?;
    Ok(StepAnswer {
        loss: value,
        grads: param_grads(&model, &grads),
    })
}

/// The request for a worker's shard: rows `rows` of `chunk`, weighted by `share`.
fn shard_request(
    model: &Recommender,
    chunk: &[TrainWindow],
    rows: std::ops::Range<usize>,
    share: f64,
    objective: &OwnedObjective,
    seed: u64,
) -> ShardRequest {
    let mut config = model.config.clone();
    config.signals.clsd = None;
    ShardRequest {
        config,
        clsd: model.clsd.clone(),
        facets: model.facets.clone(),
        trained: trained_params(model),
        windows: chunk[rows.clone()].to_vec(),
        objective: ShardObjective::of(objective, rows),
        share,
        seed,
    }
}

/// A worker replica's share of a step: `request`, sent with the model's parameters and the
/// replica's resident tensors; its loss and gradients on `main`.
fn worker_shard(
    model: &Recommender,
    replica: &Replica,
    main: &Device,
    request: &ShardRequest,
) -> Result<(f64, burn::optim::GradientsParams), String> {
    let request = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    run_on_worker(
        &WORKER_STEP,
        model,
        &replica.device,
        main,
        &replica.resident(),
        &request,
    )
}

/// How a step's batch is spread over the replicas.
pub struct Sharding<'a> {
    /// The replicas; none or one: the whole batch on the model's device.
    pub replicas: &'a [Replica],
    /// Each replica's rows (from a `jobs::parallel::ShardPlan`).
    pub ranges: &'a [std::ops::Range<usize>],
    /// How long to wait for a replica (`--replica-timeout`).
    pub timeout: Option<std::time::Duration>,
    /// The step's seed for the workers' generators (dropout, gate noise).
    pub seed: u64,
}

/// The batch's loss value and gradients (on the model's device), through the jobs' shared
/// data-parallel step ([`data_parallel_step`]). With several replicas, the batch is cut into
/// the contiguous shards `sharding.ranges` (one per replica); each replica (a `ranklet worker`
/// running its shard whole, [`WORKER_STEP`]) computes its shard's loss weighted by its
/// share of the batch (supervised positions when fine-tuning, rows when pre-training) and the
/// gradients are summed on the model's device — for fine-tuning exactly the full batch's
/// gradient (the loss is a mean over positions); pre-training's in-batch negatives are then
/// those of each shard, as in data-parallel training without an all-gather.
pub fn batch_gradients(
    model: &Recommender,
    chunk: &[TrainWindow],
    text: &Tensor<2>,
    objective: &Objective,
    sharding: &Sharding,
) -> Result<ParallelStep, ReplicaFailed> {
    let Sharding {
        replicas,
        ranges,
        timeout,
        seed,
    } = *sharding;
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
    let chunk = std::sync::Arc::new(chunk.to_vec());
    let objective = std::sync::Arc::new(objective.to_owned());
    let shards = std::sync::Arc::new(shards);
    let on_worker = {
        let (chunk, objective, shards) = (chunk.clone(), objective.clone(), shards.clone());
        let (replicas, main) = (replicas.to_vec(), devices[0].clone());
        std::sync::Arc::new(move |model: &Recommender, k: usize| {
            let (rows, share, _) = shards.get(k)?.clone()?;
            let request = shard_request(
                model,
                &chunk,
                rows,
                share,
                &objective,
                seed.wrapping_add(k as u64 * 7919),
            );
            Some(worker_shard(model, &replicas[k], &main, &request))
        }) as crate::jobs::parallel::WorkerShard<Recommender>
    };
    data_parallel_step(
        model,
        &devices,
        timeout,
        move |copy, k| {
            let (rows, share, text) = shards.get(k)?.clone()?;
            let shard = &chunk[rows.clone()];
            Some(
                shard_loss(copy, shard, rows.start, text, &objective.as_objective())
                    .mul_scalar(share),
            )
        },
        Some(on_worker),
    )
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

    /// The largest difference between `values` and `reference`, and the scale it is judged
    /// against (the reference's largest magnitude, at least 1e-6).
    fn gap(values: &TensorData, reference: &TensorData) -> (f32, f32) {
        let (a, b) = (
            values.try_to_vec::<f32>().unwrap(),
            reference.try_to_vec::<f32>().unwrap(),
        );
        let scale = b.iter().fold(1e-6f32, |m, x| m.max(x.abs()));
        let diff = a
            .iter()
            .zip(&b)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        (diff, scale)
    }

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
        let alone = Sharding {
            replicas: &[],
            ranges: &[],
            timeout: None,
            seed: 0,
        };
        let one = batch_gradients(&model, &chunk, &text, &objective, &alone).unwrap();
        let replicas = Replica::on(&[device.clone(), device.clone()], &text, None);
        // Unequal shards, as a plan that measured one replica slower cuts them.
        let two = batch_gradients(
            &model,
            &chunk,
            &text,
            &objective,
            &Sharding {
                replicas: &replicas,
                ranges: &[0..5, 5..7],
                timeout: None,
                seed: 0,
            },
        )
        .unwrap();
        let (whole, mut g1, sharded, mut g2) = (one.loss, one.grads, two.loss, two.grads);
        assert!((whole - sharded).abs() < 1e-5, "loss {whole} vs {sharded}");
        let mut compared = 0;
        let mut visit = |id: burn::module::ParamId| {
            if let (Some(a), Some(b)) = (g1.remove::<2>(id), g2.remove::<2>(id)) {
                let (diff, scale) = gap(&b.into_data(), &a.into_data());
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

    /// A worker's shard step (run here, without the connection) gives the loss and gradients
    /// that the leader's own replica computes for the same rows: fine-tuning with held-out
    /// items and the two-view term, pre-training with its item-dropped copies, and a frozen
    /// sequence encoder (no gradient for it on either side). The request, the parameters'
    /// packing and the model's rebuild are all on this path.
    #[test]
    fn a_worker_step_equals_the_leaders_own_shard() {
        use crate::jobs::worker_step::{param_grads, param_values};
        let _seeded = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
        let ds = synthetic_dataset(40, 30, 6, 12, 3);
        let split = Split::leave_one_out(&ds, 8);
        let device = Device::flex().autodiff();
        device.seed(3);
        let n = ds.items.len();
        let config = small_config(ItemMode::Inductive, n, 8, 16, (0.1, 0.1), 8);
        let text = topic_text(n, &device);
        let chunk: Vec<TrainWindow> = train_windows(&split, 8, None).into_iter().take(7).collect();
        // Held-out items are never a training target.
        let targets: std::collections::HashSet<usize> = chunk
            .iter()
            .flat_map(|w| w.targets.iter().copied())
            .collect();
        let held_out: Vec<bool> = (0..n)
            .map(|i| i % 5 == 0 && !targets.contains(&i))
            .collect();
        assert!(held_out.iter().any(|&h| h), "no held-out item");
        let absent = Tensor::<2, Bool>::from_data(TensorData::new(held_out, [1, n]), &device);
        let views = TwoViews {
            titles: text.clone().mul_scalar(0.5),
            descriptions: text.clone().add_scalar(0.1),
            row_of: (0..n).map(|i| (i % 2 == 0).then_some(i)).collect(),
        };
        let dropped: Vec<Vec<usize>> = chunk.iter().map(|w| w.inputs[1..].to_vec()).collect();
        let finetune = Objective::Finetune {
            absent: Some(&absent),
            views: Some((&views, 0.3)),
        };
        let pretrain = Objective::Pretrain {
            dropped: &dropped,
            lambda: 0.5,
        };
        let resident = |two_view: bool| {
            let mut r = vec![text.clone().inner()];
            if two_view {
                r.extend([
                    views.titles.clone().inner(),
                    views.descriptions.clone().inner(),
                ]);
            }
            r
        };
        let (rows, share, seed) = (2..6, 0.6, 42);
        for (name, objective, frozen) in [
            ("fine-tuning", &finetune, false),
            ("pre-training", &pretrain, false),
            ("frozen encoder", &finetune, true),
        ] {
            let mut model = Recommender::init(&config, &device);
            if frozen {
                model.encoder = model.encoder.no_grad();
            }
            // The parameters are drawn first (they are lazy); then the worker seeds its device
            // with the step's seed, and so does the leader here, so that dropout and gate noise
            // draw the same values on both sides.
            let params = param_values(&model);
            device.seed(seed);
            let loss = shard_loss(
                &model,
                &chunk[rows.clone()],
                rows.start,
                text.clone(),
                objective,
            )
            .mul_scalar(share);
            let own = param_grads(&model, &loss.backward());
            let own_loss = f64::from(loss.into_scalar::<f32>());
            let request = shard_request(
                &model,
                &chunk,
                rows.clone(),
                share,
                &objective.to_owned(),
                seed,
            );
            let request = serde_json::to_vec(&request).unwrap();
            let two_view = matches!(objective, Objective::Finetune { .. });
            let answer = shard_on_worker(&request, resident(two_view), params, &Device::flex())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                (answer.loss - own_loss).abs() < 1e-5 * own_loss.abs().max(1.0),
                "{name}: loss {} vs {own_loss}",
                answer.loss
            );
            assert_eq!(answer.grads.len(), own.len(), "{name}");
            let mut compared = 0;
            for (k, (theirs, mine)) in answer.grads.iter().zip(&own).enumerate() {
                assert_eq!(theirs.size, mine.size, "{name}: parameter {k}");
                assert_eq!(
                    theirs.grad.is_some(),
                    mine.grad.is_some(),
                    "{name}: parameter {k}"
                );
                let (Some(a), Some(b)) = (&theirs.grad, &mine.grad) else {
                    continue;
                };
                let (diff, scale) = gap(a, b);
                assert!(
                    diff / scale < 1e-4,
                    "{name}: parameter {k} differs by {diff}"
                );
                compared += 1;
            }
            let frozen_count = own.iter().filter(|g| g.grad.is_none()).count();
            assert!(compared > 4, "{name}: only {compared} gradients compared");
            if frozen {
                assert!(frozen_count > 4, "{name}: the encoder still has gradients");
            }
        }
    }
}
