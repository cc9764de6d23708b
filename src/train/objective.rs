//! What a training batch's loss is: UniSRec's pre-training losses or full-softmax fine-tuning
//! (with the optional two-view term).

use burn::prelude::*;

use crate::contracts::{EventKind, SceneContext};
use crate::rec::{Recommender, SequenceBatch};
use crate::train::windows::TrainWindow;

/// The fine-tuning softmax's `absent` mask `[1, n]`: true on `rows`, the items held out of
/// training (cold start), which are not even negatives.
pub(crate) fn absent_mask(
    n: usize,
    rows: impl IntoIterator<Item = usize>,
    device: &Device,
) -> Tensor<2, Bool> {
    let mut mask = vec![false; n];
    for r in rows {
        mask[r] = true;
    }
    Tensor::<2, Bool>::from_data(TensorData::new(mask, [1, n]), device)
}

/// The two views of the items that have both a title and a description, for the two-view
/// term: text vectors of each view (`[m, text_dim]`, on the training device) and each catalog
/// row's index among them.
#[derive(Debug, Clone)]
pub struct TwoViews {
    pub titles: Tensor<2>,
    pub descriptions: Tensor<2>,
    /// Catalog row → row of `titles`/`descriptions` (`None`: the item has one view only).
    pub row_of: Vec<Option<usize>>,
}

impl TwoViews {
    /// The view rows of a batch's distinct target items that have both views.
    fn rows_for(&self, chunk: &[TrainWindow]) -> Vec<i64> {
        let mut rows: Vec<i64> = chunk
            .iter()
            .flat_map(|w| w.targets.iter())
            .filter_map(|&t| self.row_of.get(t).copied().flatten())
            .map(|r| r as i64)
            .collect();
        rows.sort_unstable();
        rows.dedup();
        rows
    }

    /// The two-view loss over a batch's target items (`None` when fewer than two have views).
    /// (`device`: the model's, e.g. a data-parallel replica's.)
    pub(crate) fn loss(
        &self,
        model: &Recommender,
        chunk: &[TrainWindow],
        device: &Device,
    ) -> Option<Tensor<1>> {
        let rows = self.rows_for(chunk);
        let n = rows.len();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(rows, [n]), &self.titles.device());
        model.two_view_loss(
            self.titles.clone().select(0, idx.clone()).to_device(device),
            self.descriptions.clone().select(0, idx).to_device(device),
        )
    }
}

/// What a batch's loss is.
pub enum Objective<'a> {
    /// Pre-training: sequence–item + λ·sequence–sequence against each row's item-dropped copy.
    Pretrain {
        dropped: &'a [Vec<usize>],
        lambda: f64,
    },
    /// Fine-tuning: full-softmax cross-entropy, `absent` items left out of the softmax; with
    /// `views`, plus `weight` × the two-view term over the batch's target items.
    Finetune {
        absent: Option<&'a Tensor<2, Bool>>,
        views: Option<(&'a TwoViews, f64)>,
    },
}

/// An [`Objective`] owning what it refers to, for a data-parallel replica's thread.
// One per step, moved into the replicas' closure: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum OwnedObjective {
    Pretrain {
        dropped: Vec<Vec<usize>>,
        lambda: f64,
    },
    Finetune {
        absent: Option<Tensor<2, Bool>>,
        views: Option<(TwoViews, f64)>,
    },
}

impl Objective<'_> {
    pub fn to_owned(&self) -> OwnedObjective {
        match self {
            Objective::Pretrain { dropped, lambda } => OwnedObjective::Pretrain {
                dropped: dropped.to_vec(),
                lambda: *lambda,
            },
            Objective::Finetune { absent, views } => OwnedObjective::Finetune {
                absent: absent.cloned(),
                views: views.map(|(v, w)| (v.clone(), w)),
            },
        }
    }
}

impl OwnedObjective {
    pub fn as_objective(&self) -> Objective<'_> {
        match self {
            OwnedObjective::Pretrain { dropped, lambda } => Objective::Pretrain {
                dropped,
                lambda: *lambda,
            },
            OwnedObjective::Finetune { absent, views } => Objective::Finetune {
                absent: absent.as_ref(),
                views: views.as_ref().map(|(v, w)| (v, *w)),
            },
        }
    }
}

/// The loss of `chunk` (rows `offset..` of the batch for the item-dropped copies) for `model`.
pub(crate) fn shard_loss(
    model: &Recommender,
    chunk: &[TrainWindow],
    offset: usize,
    text: Tensor<2>,
    objective: &Objective,
) -> Tensor<1> {
    let rows: Vec<(&[usize], &[usize])> = chunk
        .iter()
        .map(|w| (w.inputs.as_slice(), w.targets.as_slice()))
        .collect();
    let kinds: Vec<&[EventKind]> = chunk.iter().map(|w| w.kinds.as_slice()).collect();
    let inputs: Vec<&[f32]> = chunk.iter().map(|w| w.input_weights.as_slice()).collect();
    let targets: Vec<&[f32]> = chunk.iter().map(|w| w.target_weights.as_slice()).collect();
    let contexts: Vec<&[SceneContext]> = chunk.iter().map(|w| w.contexts.as_slice()).collect();
    let batch = SequenceBatch::new(&rows)
        .with_kinds(&kinds)
        .with_contexts(&contexts)
        .with_confidence(&inputs)
        .weight_targets(&targets);
    match objective {
        Objective::Pretrain { dropped, lambda } => {
            let aug: Vec<(&[usize], &[usize])> = dropped[offset..offset + chunk.len()]
                .iter()
                .map(|d| (d.as_slice(), &[][..]))
                .collect();
            model.pretrain_loss(&batch, &SequenceBatch::new(&aug), text, *lambda)
        }
        Objective::Finetune { absent, views } => {
            let device = text.device();
            let absent = absent.map(|a| a.clone().to_device(&device));
            let loss = model.loss(&batch, text, absent);
            match views.and_then(|(v, w)| Some((v.loss(model, chunk, &device)?, w))) {
                Some((two_view, w)) => loss + two_view.mul_scalar(w),
                None => loss,
            }
        }
    }
}
