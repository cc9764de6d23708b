//! Distillation's data-parallel shards: a batch's rows cut for the jobs' shared step
//! (`jobs::parallel`), each replica's loss on its rows.

use std::ops::Range;
use std::sync::Arc;

use burn::prelude::*;

use crate::distill::config::DistillConfig;
use crate::distill::objective::{BatchShare, shard_objective};
use crate::distill::student::Masks;
use crate::distill::teacher::TeacherTargets;
use crate::distill::trainee::Student;
use crate::jobs::parallel::{ParallelStep, ReplicaFailed, data_parallel_step, single_device_step};

/// One replica's rows of a distillation batch: which, their share of the batch, and their
/// attention mask and (student) word-piece ids, `[rows, seq]` row-major.
#[derive(Debug, Clone)]
pub struct DistillShard {
    pub rows: Range<usize>,
    pub share: BatchShare,
    pub mask: Vec<f32>,
    pub ids: Vec<i64>,
    pub seq: usize,
}

impl DistillShard {
    /// Rows `rows` of a batch whose mask and ids (`[batch, seq]`) are `mask` and `ids`; `None`
    /// when `rows` is empty.
    pub fn cut(rows: Range<usize>, seq: usize, mask: &[f32], ids: &[i64]) -> Option<Self> {
        if rows.is_empty() {
            return None;
        }
        let batch = mask.len() / seq.max(1);
        let all_pieces: f64 = mask.iter().map(|&m| f64::from(m)).sum();
        let span = rows.start * seq..rows.end * seq;
        let pieces = &mask[span.clone()];
        Some(DistillShard {
            share: BatchShare {
                first: rows.start,
                rows: rows.len() as f64 / batch as f64,
                pieces: pieces.iter().map(|&m| f64::from(m)).sum::<f64>() / all_pieces.max(1.0),
            },
            mask: pieces.to_vec(),
            ids: ids[span].to_vec(),
            seq,
            rows,
        })
    }

    /// The shard's loss for `student` on `device` (its replica's), against `targets` already
    /// cut for it ([`TeacherTargets::shard`]).
    pub fn loss(
        &self,
        student: &Student,
        device: &Device,
        targets: &TeacherTargets,
        settings: &ShardSettings,
    ) -> Tensor<1> {
        let shape = [self.rows.len(), self.seq];
        let mask = Tensor::<2>::from_data(TensorData::new(self.mask.clone(), shape), device);
        let ids = Tensor::<2, Int>::from_data(TensorData::new(self.ids.clone(), shape), device);
        let masks = settings.masks.tensors(device, settings.eps);
        shard_objective(
            student,
            ids,
            mask,
            &masks,
            targets,
            settings.stage2,
            &settings.config,
            self.share,
        )
    }
}

/// How every shard of a step is computed: the pruning masks (and the layer norms' epsilon),
/// the stage, the settings.
#[derive(Debug, Clone)]
pub struct ShardSettings {
    pub masks: Masks,
    pub eps: f64,
    pub stage2: bool,
    pub config: DistillConfig,
}

/// The replicas a step's shards go to.
pub struct Replicas<'a> {
    /// Autodiff devices, at least one, the first the student's; one: no data parallelism.
    pub devices: &'a [Device],
    /// How long to wait for a replica (`--replica-timeout`).
    pub timeout: Option<std::time::Duration>,
}

/// The batch's loss and gradients (on the student's device): `shards[k]` (rows, share, mask,
/// ids; from a `ShardPlan`) on replica `k`, each against its cut of `targets` (the teacher's,
/// for the whole batch), through the jobs' shared step. A replica on a `ranklet worker` is
/// driven operation by operation from here (burn's remote backend): a worker-side step, as
/// training's, sends the student's parameters and gradients whole every step, and for the
/// student (15.8 M parameters while it trains) that measured slower on loopback (2.15 × one
/// process, against 1.7 ×; `reports/parallel.md`). On one device, the whole batch.
pub fn batch_gradients(
    student: &Student,
    shards: Vec<Option<DistillShard>>,
    targets: TeacherTargets,
    settings: ShardSettings,
    replicas: &Replicas,
) -> Result<ParallelStep, ReplicaFailed> {
    let main = replicas.devices[0].clone();
    if replicas.devices.len() <= 1 {
        let whole = shards
            .first()
            .cloned()
            .flatten()
            .expect("a batch of at least two texts");
        let loss = whole.loss(student, &main, &targets, &settings);
        return single_device_step(student, loss);
    }
    // What each replica's thread needs, shared (tensors are shared handles).
    let (shards, targets, settings) = (Arc::new(shards), Arc::new(targets), Arc::new(settings));
    let devices = replicas.devices.to_vec();
    data_parallel_step(
        student,
        replicas.devices,
        replicas.timeout,
        move |student: &Student, k: usize| {
            let shard = shards.get(k)?.as_ref()?;
            let here = &devices[k];
            let targets = targets.shard(shard.rows.clone(), here);
            Some(shard.loss(student, here, &targets, &settings))
        },
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shard's share is its rows' and its real word-pieces' fraction of the batch's, and its
    /// mask and ids are its rows'; an empty cut is no shard.
    #[test]
    fn a_shard_carries_its_rows_and_their_share() {
        // Three rows of four positions: 2, 4 and 1 real word-pieces.
        let mask = [1., 1., 0., 0., 1., 1., 1., 1., 1., 0., 0., 0.];
        let ids: Vec<i64> = (0..12).collect();
        let shard = DistillShard::cut(1..3, 4, &mask, &ids).unwrap();
        assert_eq!(shard.share.first, 1);
        assert!((shard.share.rows - 2.0 / 3.0).abs() < 1e-12);
        assert!((shard.share.pieces - 5.0 / 7.0).abs() < 1e-12);
        assert_eq!(shard.mask, mask[4..].to_vec());
        assert_eq!(shard.ids, (4..12).collect::<Vec<i64>>());
        assert!(DistillShard::cut(2..2, 4, &mask, &ids).is_none());
    }
}
