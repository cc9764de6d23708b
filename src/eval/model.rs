//! A recommender evaluated with the protocol: full ranking of the catalogue for every example.

use burn::prelude::*;

use crate::contracts::{EventKind, SceneContext};
use crate::data::Example;
use crate::eval::metrics::{Metrics, rank_of};
use crate::rec::rank::top_k;
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
    evaluate_probed(model, items, None, examples, batch)
}

/// The cells of a partitioned index as the evaluation probes them (rows are the catalogue's).
#[derive(Debug, Clone)]
pub struct CellProbe {
    /// Unit centroids, `dim` per cell.
    pub centroids: Vec<f32>,
    pub dim: usize,
    /// The cell of each catalogue row.
    pub cell_of: Vec<usize>,
    /// Catalogue rows of the popular shard (candidates in every ranking).
    pub popular: Vec<usize>,
    pub nprobe: usize,
}

/// Recall cutoffs of the partitioned ranking against the exact one.
const ANN_CUTOFFS: [usize; 2] = [10, 100];

/// [`evaluate_over`] where, with `cells`, each example ranks only what the browser would: the
/// items of the `nprobe` cells nearest to its state, the popular shard and its history. The
/// metrics then also hold `ann_recall@10` and `ann_recall@100`: the share of the exact top
/// items (seen ones left out, as the shelf does) that the partitioned ranking finds.
pub fn evaluate_probed(
    model: &Recommender,
    items: &ItemVectors,
    cells: Option<&CellProbe>,
    examples: &[Example],
    batch: usize,
) -> (Metrics, Metrics) {
    let mut plain = Metrics::default();
    let mut masked = Metrics::default();
    for chunk in examples.chunks(batch.max(1)) {
        let (user, flat, n) = chunk_scores(model, items, chunk);
        let users = match cells {
            Some(_) => user.into_data().try_to_vec::<f32>().expect("f32 states"),
            None => Vec::new(),
        };
        for (r, (e, row)) in chunk.iter().zip(flat.chunks(n)).enumerate() {
            let Some(cells) = cells else {
                plain.add(rank_of(row, e.target, None));
                masked.add(rank_of(row, e.target, Some(&e.seen)));
                continue;
            };
            let dim = cells.dim;
            let state = &users[r * dim..(r + 1) * dim];
            let near: Vec<f32> = cells
                .centroids
                .chunks_exact(dim)
                .map(|c| c.iter().zip(state).map(|(a, b)| a * b).sum())
                .collect();
            let probed = top_k(&near, cells.nprobe, &[]);
            let mut candidate = vec![false; n];
            for (i, &c) in cells.cell_of.iter().enumerate() {
                candidate[i] = probed.contains(&c);
            }
            for &i in cells.popular.iter().chain(&e.seen) {
                candidate[i] = true;
            }
            let probed_row: Vec<f32> = row
                .iter()
                .zip(&candidate)
                .map(|(&s, &c)| if c { s } else { f32::NEG_INFINITY })
                .collect();
            plain.add(rank_of(&probed_row, e.target, None));
            masked.add(rank_of(&probed_row, e.target, Some(&e.seen)));
            for k in ANN_CUTOFFS {
                let exact = top_k(row, k, &e.seen);
                let found = top_k(&probed_row, k, &e.seen);
                let hit = exact.iter().filter(|i| found.contains(i)).count();
                let recall = hit as f64 / exact.len().max(1) as f64;
                plain.add_extra(&format!("ann_recall@{k}"), recall);
                masked.add_extra(&format!("ann_recall@{k}"), recall);
            }
        }
    }
    (plain, masked)
}

/// The unit user states `[chunk, hidden]` of `chunk`'s examples and their scores over every
/// item (row-major, `n` per example).
pub(super) fn chunk_scores(
    model: &Recommender,
    items: &ItemVectors,
    chunk: &[Example],
) -> (Tensor<2>, Vec<f32>, usize) {
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
    let user = model.user_states_over(&batch, items, &activity);
    let scores = model.scores_of(user.clone(), items.unit.clone());
    let [_, n] = scores.dims();
    let flat = scores.into_data().try_to_vec::<f32>().expect("f32 scores");
    (user, flat, n)
}

/// Each example's 0-based rank of its target among the `subset` items only (e.g. the items
/// never seen in training: a "new arrivals" shelf), by the model's scores.
pub fn target_ranks_among(
    model: &Recommender,
    items: &ItemVectors,
    examples: &[Example],
    subset: &[usize],
    batch: usize,
) -> Vec<usize> {
    let mut ranks = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(batch.max(1)) {
        let (_, flat, n) = chunk_scores(model, items, chunk);
        for (e, row) in chunk.iter().zip(flat.chunks(n)) {
            ranks.push(rank_among(row, e.target, subset));
        }
    }
    ranks
}

/// The 0-based rank of `target` among `subset` by `scores` (ties: lower row first).
pub fn rank_among(scores: &[f32], target: usize, subset: &[usize]) -> usize {
    let mut only = vec![f32::NEG_INFINITY; scores.len()];
    for &i in subset {
        only[i] = scores[i];
    }
    only[target] = scores[target];
    rank_of(&only, target, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_among_counts_only_the_subset() {
        let scores = [5.0, 1.0, 3.0, 2.0, 4.0];
        // Among rows 1, 2 and 3, row 2 scores best; rows 0 and 4 do not count.
        assert_eq!(rank_among(&scores, 2, &[1, 3]), 0);
        assert_eq!(rank_among(&scores, 1, &[1, 2, 3]), 2);
        assert_eq!(rank_among(&scores, 3, &[2]), 1);
    }
}
