//! Distillation's data-parallel shards: a batch's rows cut for the jobs' shared step
//! (`jobs::parallel`), computed on a local replica or whole on a `ranklet worker`
//! ([`WORKER_STEP`]).

use std::ops::Range;

use burn::module::Module;
use burn::nn::LinearConfig;
use burn::optim::GradientsParams;
use burn::prelude::*;

use crate::distill::config::DistillConfig;
use crate::distill::objective::{BatchShare, shard_objective};
use crate::distill::student::Masks;
use crate::distill::teacher::TeacherTargets;
use crate::distill::trainee::Student;
use crate::jobs::worker_step::{
    ParamFill, StepAnswer, StepInputs, WorkerStep, param_grads, run_on_worker, trained_params,
};
use crate::text::BertEncoder;
use crate::text::config::BertConfig;

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
            settings.config,
            self.share,
        )
    }
}

/// The student's shard step, run whole by a `ranklet worker` (see `jobs::worker_step`).
pub const WORKER_STEP: WorkerStep = WorkerStep {
    id: "ranklet/distill-shard/1",
    run: shard_on_worker,
};

/// What a worker needs for a shard besides the tensors sent with it: the student's shape, the
/// pruning masks, the settings and the shard's place in the batch.
#[derive(serde::Serialize, serde::Deserialize)]
struct ShardRequest {
    /// The student encoder's shape (the teacher's, with its layers and vocabulary).
    bert: BertConfig,
    /// Each width mapping's `[in, out]`.
    maps: Vec<[usize; 2]>,
    /// Per float parameter (visiting order): trained, or frozen.
    trained: Vec<bool>,
    masks: Masks,
    eps: f64,
    config: DistillConfig,
    stage2: bool,
    share: BatchShare,
    rows: usize,
    seq: usize,
    /// How many layer and word-piece targets follow the mask and ids; whether relations do.
    layers: usize,
    pieces: usize,
    relations: bool,
    /// The worker's generator seed for this step (dropout).
    seed: u64,
}

/// How every shard of a step is computed: the pruning masks (and the layer norms' epsilon),
/// the stage, the settings.
#[derive(Clone, Copy)]
pub struct ShardSettings<'a> {
    pub masks: &'a Masks,
    pub eps: f64,
    pub stage2: bool,
    pub config: &'a DistillConfig,
}

/// What [`worker_shard`] needs of the step besides the shard itself.
pub struct WorkerContext<'a> {
    /// The student encoder's shape.
    pub bert: &'a BertConfig,
    pub settings: ShardSettings<'a>,
    /// The worker's generator seed for this step (dropout).
    pub seed: u64,
}

/// A worker replica's share of a step: the shard, its targets (the batch's, cut here on the
/// leader) and the student's parameters sent in one custom operation; the loss and gradients
/// back on `main`.
pub fn worker_shard(
    student: &Student,
    device: &Device,
    main: &Device,
    shard: &DistillShard,
    targets: &TeacherTargets,
    context: &WorkerContext,
) -> Result<(f64, GradientsParams), String> {
    let (request, tensors) = shard_inputs(student, &main.clone().inner(), shard, targets, context)?;
    run_on_worker(&WORKER_STEP, student, device, main, &[], &tensors, &request)
}

/// The request and the step's tensors of a worker's shard (the targets cut on `device`).
fn shard_inputs(
    student: &Student,
    device: &Device,
    shard: &DistillShard,
    targets: &TeacherTargets,
    context: &WorkerContext,
) -> Result<(Vec<u8>, Vec<TensorData>), String> {
    let targets = targets.shard(shard.rows.clone(), device);
    let shape = [shard.rows.len(), shard.seq];
    // Word-piece ids are below 2^24: exact as f32.
    let ids: Vec<f32> = shard.ids.iter().map(|&i| i as f32).collect();
    let mut tensors = vec![
        TensorData::new(shard.mask.clone(), shape),
        TensorData::new(ids, shape),
    ];
    tensors.extend(targets.layers.iter().map(|t| t.clone().into_data()));
    tensors.extend(targets.pieces.iter().map(|t| t.clone().into_data()));
    if let Some((att, val)) = &targets.relations {
        tensors.extend([att.clone().into_data(), val.clone().into_data()]);
    }
    tensors.push(targets.out.clone().into_data());
    let request = ShardRequest {
        bert: context.bert.clone(),
        maps: student.maps.iter().map(|m| m.weight.val().dims()).collect(),
        trained: trained_params(student),
        masks: context.settings.masks.clone(),
        eps: context.settings.eps,
        config: context.settings.config.clone(),
        stage2: context.settings.stage2,
        share: shard.share,
        rows: shard.rows.len(),
        seq: shard.seq,
        layers: targets.layers.len(),
        pieces: targets.pieces.len(),
        relations: targets.relations.is_some(),
        seed: context.seed,
    };
    let request = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
    Ok((request, tensors))
}

/// The worker's side of [`WORKER_STEP`]: the leader's student rebuilt on `device` with
/// autodiff, the shard's weighted loss and its gradients.
fn shard_on_worker(inputs: StepInputs, device: &Device) -> Result<StepAnswer, String> {
    let StepInputs {
        request,
        tensors,
        params,
        ..
    } = inputs;
    let request: ShardRequest =
        serde_json::from_slice(&request).map_err(|e| format!("an unreadable request: {e}"))?;
    let device = device.clone().autodiff();
    device.seed(request.seed);
    let mut encoder = BertEncoder::init(&request.bert, &device);
    if let Some(p) = request.config.dropout {
        encoder.set_dropout(p);
    }
    let maps = request
        .maps
        .iter()
        .map(|&[d_in, d_out]| LinearConfig::new(d_in, d_out).init(&device))
        .collect();
    let mut fill = ParamFill::new(&params, &request.trained, &device);
    let student = Student { encoder, maps }.map(&mut fill);
    if let Some(why) = fill.mismatch() {
        return Err(why);
    }
    let expected = 2 + request.layers + request.pieces + 2 * usize::from(request.relations) + 1;
    if tensors.len() != expected {
        return Err(format!(
            "the leader sent {} tensors, the request names {expected}",
            tensors.len()
        ));
    }
    let mut tensors = tensors.into_iter();
    let mut next = || tensors.next().expect("counted above");
    let mask = next();
    let ids: Vec<i64> = ids_of(next())?;
    let mut take = |n: usize| -> Vec<TensorData> { (0..n).map(|_| next()).collect() };
    let layers = take(request.layers);
    let pieces = take(request.pieces);
    let relations = take(2 * usize::from(request.relations));
    let out = take(1).remove(0);
    let targets = TeacherTargets {
        layers: layers
            .into_iter()
            .map(|t| Tensor::from_data(t, &device))
            .collect(),
        pieces: pieces
            .into_iter()
            .map(|t| Tensor::from_data(t, &device))
            .collect(),
        relations: match relations.as_slice() {
            [att, val] => Some((
                Tensor::from_data(att.clone(), &device),
                Tensor::from_data(val.clone(), &device),
            )),
            _ => None,
        },
        out: Tensor::from_data(out, &device),
    };
    let shard = DistillShard {
        rows: request.share.first..request.share.first + request.rows,
        share: request.share,
        mask: mask
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| format!("{e:?}"))?,
        ids,
        seq: request.seq,
    };
    let settings = ShardSettings {
        masks: &request.masks,
        eps: request.eps,
        stage2: request.stage2,
        config: &request.config,
    };
    let loss = shard.loss(&student, &device, &targets, &settings);
    let grads = loss.backward();
    let value = loss
        .try_into_data()
        .map_err(|e| format!("{e:?}"))?
        .iter::<f64>()
        .next()
        .ok_or("an empty loss")?;
    Ok(StepAnswer {
        loss: value,
        grads: param_grads(&student, &grads),
    })
}

/// Word-piece ids sent as f32 values, back as integers.
fn ids_of(ids: TensorData) -> Result<Vec<i64>, String> {
    Ok(ids
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?
        .into_iter()
        .map(|x| x as i64)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distill::teacher::teacher_targets;
    use crate::fixtures::{SEEDED, tiny_bert_files};
    use crate::jobs::worker_step::param_values;
    use crate::text::TextEmbedder;
    use crate::text::tokenizer::TextTokenizer;

    /// A worker's distillation shard (run here, without the connection) gives the loss and
    /// gradients that the leader's own replica computes for the same rows: stage 1 with the
    /// word-piece and relation losses, and stage 2 with its output losses and FGM, under
    /// pruning masks and with dropout drawn from the step's seed on both sides.
    #[test]
    fn a_worker_step_equals_the_leaders_own_shard() {
        let _seeded = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
        let files = tiny_bert_files(5);
        let base = Device::flex();
        let device = base.clone().autodiff();
        let teacher = TextEmbedder::from_files(&files, &base).unwrap();
        let config = DistillConfig {
            token_weight: 0.5,
            relation_weight: 0.5,
            dropout: Some(0.1),
            max_len: 16,
            ..DistillConfig::for_teacher(&teacher.config)
        };
        let tokenizer =
            TextTokenizer::from_bytes(&files.tokenizer.1, config.max_len, &files.tokenizer.0)
                .unwrap();
        let texts: Vec<String> = [
            "red wool scarf",
            "blue cotton shirt",
            "green garden hose",
            "steel kitchen knife",
            "oak dining table",
            "silver ring",
        ]
        .map(String::from)
        .to_vec();
        let tokens = tokenizer.encode_batch(&texts).unwrap();
        let targets = teacher_targets(&teacher, &tokens, &config, &device);
        let mut student = Student::from_teacher(&teacher.encoder, &config.layer_map, None, &device);
        student.encoder.set_dropout(0.1);
        let mut masks = Masks::full(&student.encoder);
        masks.ffn[0][0] = false;
        masks.ffn[0][3] = false;
        let eps = teacher.config.layer_norm_eps;
        let bert = BertConfig {
            num_hidden_layers: student.encoder.layers.len(),
            ..teacher.config.clone()
        };
        let shard = DistillShard::cut(2..5, tokens.seq_len, &tokens.mask, &tokens.ids).unwrap();
        let seed = 42;
        for stage2 in [false, true] {
            let params = param_values(&student);
            device.seed(seed);
            let mine = targets.shard(shard.rows.clone(), &device);
            let settings = ShardSettings {
                masks: &masks,
                eps,
                stage2,
                config: &config,
            };
            let loss = shard.loss(&student, &device, &mine, &settings);
            let own = param_grads(&student, &loss.backward());
            let own_loss = f64::from(loss.into_scalar::<f32>());
            let context = WorkerContext {
                bert: &bert,
                settings,
                seed,
            };
            let (request, tensors) =
                shard_inputs(&student, &base, &shard, &targets, &context).unwrap();
            let answer = shard_on_worker(
                StepInputs {
                    request,
                    resident: Vec::new(),
                    tensors,
                    params,
                },
                &Device::flex(),
            )
            .unwrap_or_else(|e| panic!("stage 2 {stage2}: {e}"));
            assert!(
                (answer.loss - own_loss).abs() < 1e-5 * own_loss.abs().max(1.0),
                "stage 2 {stage2}: loss {} vs {own_loss}",
                answer.loss
            );
            assert_eq!(answer.grads.len(), own.len());
            let mut compared = 0;
            for (k, (theirs, mine)) in answer.grads.iter().zip(&own).enumerate() {
                assert_eq!(theirs.is_some(), mine.is_some(), "parameter {k}");
                let (Some(a), Some(b)) = (theirs, mine) else {
                    continue;
                };
                let (a, b) = (
                    a.try_to_vec::<f32>().unwrap(),
                    b.try_to_vec::<f32>().unwrap(),
                );
                let scale = b.iter().fold(1e-6f32, |m, x| m.max(x.abs()));
                let diff = a
                    .iter()
                    .zip(&b)
                    .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
                assert!(
                    diff / scale < 1e-4,
                    "stage 2 {stage2}: parameter {k} differs by {diff}"
                );
                compared += 1;
            }
            assert!(compared > 10, "only {compared} gradients compared");
        }
    }
}
