//! A recommender evaluated with the protocol: full ranking of the catalogue for every example.

use burn::prelude::*;

use crate::contracts::{EventKind, SceneContext};
use crate::data::Example;
use crate::eval::metrics::{Metrics, rank_of};
use crate::rec::{ItemVectors, Recommender, SequenceBatch};

/// Evaluates a model (inference copy) on examples: (unmasked, masked).
pub fn evaluate_model(
    model: &Recommender,
    text: &Tensor<2>,
    examples: &[Example],
    batch: usize,
) -> (Metrics, Metrics) {
    evaluate_over(model, &model.item_vectors(text.clone()), examples, batch)
}

/// [`evaluate_model`] over item vectors computed already: the catalogue through the tower
/// once, or the rows of a precomputed index.
pub fn evaluate_over(
    model: &Recommender,
    items: &ItemVectors,
    examples: &[Example],
    batch: usize,
) -> (Metrics, Metrics) {
    let mut plain = Metrics::default();
    let mut masked = Metrics::default();
    for chunk in examples.chunks(batch.max(1)) {
        let rows: Vec<(&[usize], &[usize])> = chunk
            .iter()
            .map(|e| (e.history.as_slice(), &[][..]))
            .collect();
        let kinds: Vec<&[EventKind]> = chunk.iter().map(|e| e.kinds.as_slice()).collect();
        let activity: Vec<usize> = chunk
            .iter()
            .map(|e| e.seen.len().max(e.history.len()))
            .collect();
        let contexts: Vec<SceneContext> = chunk.iter().map(|e| e.context).collect();
        let batch = SequenceBatch::new(&rows)
            .with_kinds(&kinds)
            .with_request_context(&contexts);
        let scores = model.scores_over(&batch, items, &activity);
        let [_, n] = scores.dims();
        let flat = scores.into_data().try_to_vec::<f32>().expect("f32 scores");
        for (e, row) in chunk.iter().zip(flat.chunks(n)) {
            plain.add(rank_of(row, e.target, None));
            masked.add(rank_of(row, e.target, Some(&e.seen)));
        }
    }
    (plain, masked)
}
