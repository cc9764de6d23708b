//! The student's loss on a batch (or on one data-parallel shard of it): COS-NCE on the mapped
//! layers (stage 1), plus the word-piece, relation and output-level losses where they are on.

use burn::prelude::*;

use crate::distill::config::DistillConfig;
use crate::distill::loss::perturb;
use crate::distill::loss::{cos_nce_rows, output_cosine, relation_kl, similarity_kl, token_cosine};
use crate::distill::student::{MaskTensors, attention_relations, masked_embeddings, masked_layers};
use crate::distill::teacher::TeacherTargets;
use crate::distill::trainee::Student;
use crate::text::encoder::score_bias;
use crate::text::pooling::masked_mean;

/// Which rows of the batch a loss sees, and its share of the batch: each term is a mean over the
/// shard's rows (or real word-pieces) scaled by the shard's share of them, so that the shards'
/// losses sum to the whole batch's. Every term but the in-batch similarity KL is then exactly
/// the batch's; that one compares a shard's outputs with each other, as data-parallel training
/// without an all-gather does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchShare {
    /// The shard's first row in the batch (COS-NCE's positive for row `i` is the batch's `i`).
    pub first: usize,
    /// The shard's rows ÷ the batch's.
    pub rows: f64,
    /// The shard's real word-pieces ÷ the batch's.
    pub pieces: f64,
}

impl BatchShare {
    /// The whole batch.
    pub const WHOLE: BatchShare = BatchShare {
        first: 0,
        rows: 1.0,
        pieces: 1.0,
    };
}

/// The student's loss on an embedding output: `embedded` and `mask` hold the shard's rows,
/// `targets` the teacher's (its layer targets for the whole batch, the rest for the shard).
#[allow(clippy::too_many_arguments)]
pub fn student_loss(
    student: &Student,
    embedded: Tensor<3>,
    mask: Tensor<2>,
    masks: &MaskTensors,
    targets: &TeacherTargets,
    stage2: bool,
    config: &DistillConfig,
    share: BatchShare,
) -> Tensor<1> {
    let states = masked_layers(&student.encoder, embedded.clone(), mask.clone(), masks);
    let n = states.len() as f64;
    let mut loss = states
        .iter()
        .zip(&student.maps)
        .zip(&targets.layers)
        .map(|((s, map), t)| {
            cos_nce_rows(
                map.forward(masked_mean(s.clone(), mask.clone())),
                t.clone(),
                config.tau,
                share.first,
            )
        })
        .reduce(|a, b| a + b)
        .expect("at least one layer")
        .mul_scalar(config.layer_weight * share.rows / n);
    if !targets.pieces.is_empty() {
        let pieces = states
            .iter()
            .zip(&student.maps)
            .zip(&targets.pieces)
            .map(|((s, map), t)| token_cosine(map.forward(s.clone()), t.clone(), mask.clone()))
            .reduce(|a, b| a + b)
            .expect("at least one layer");
        loss = loss + pieces.mul_scalar(config.token_weight * share.pieces / n);
    }
    if let Some((att, val)) = &targets.relations {
        // The last layer's relations are computed from its input: the state before it.
        let last = states.len() - 1;
        let input = if last == 0 {
            embedded
        } else {
            states[last - 1].clone()
        };
        let (s_att, s_val) = attention_relations(
            &student.encoder.layers[last].attention,
            input,
            score_bias(mask.clone()),
        );
        let heads = masks.heads[last].clone();
        loss = loss
            + (relation_kl(s_att, att.clone(), mask.clone(), heads.clone())
                + relation_kl(s_val, val.clone(), mask.clone(), heads))
            .mul_scalar(config.relation_weight * share.pieces);
    }
    if stage2 {
        let out = masked_mean(states.last().expect("layers").clone(), mask);
        loss = loss
            + (output_cosine(out.clone(), targets.out.clone())
                + similarity_kl(out, targets.out.clone(), config.kl_tau))
            .mul_scalar(config.output_weight * share.rows);
    }
    loss
}

/// A shard's whole loss from its word-piece ids `sid` and `mask` (`[rows, seq]`): the student's
/// loss at its embedding output, and in stage 2 with FGM also at the perturbed one (the gradient
/// at the embedding output, a detached leaf, then the loss at the clean and the perturbed
/// embedding together). What every replica computes, the leader's own and a worker's.
#[allow(clippy::too_many_arguments)]
pub fn shard_objective(
    student: &Student,
    sid: Tensor<2, Int>,
    mask: Tensor<2>,
    masks: &MaskTensors,
    targets: &TeacherTargets,
    stage2: bool,
    config: &DistillConfig,
    share: BatchShare,
) -> Tensor<1> {
    let embedded = masked_embeddings(&student.encoder, sid, masks);
    let loss_at = |embedded: Tensor<3>, stage2: bool| {
        student_loss(
            student,
            embedded,
            mask.clone(),
            masks,
            targets,
            stage2,
            config,
            share,
        )
    };
    if stage2 && config.fgm_epsilon > 0.0 {
        let leaf = embedded.clone().detach().require_grad();
        let grad = leaf
            .grad(&loss_at(leaf.clone(), true).backward())
            .expect("the embedding output is a leaf that requires its gradient");
        let grad = Tensor::<3>::from_inner(grad);
        let adversarial = perturb(embedded.clone(), grad, config.fgm_epsilon);
        loss_at(embedded, true) + loss_at(adversarial, true)
    } else {
        loss_at(embedded, stage2)
    }
}
