//! The catalogue-popularity lift for new items ([`NewItemPopularity`]): its grid evaluated on
//! the protocol, the new targets' ranks among the new items under it, and the choice on the
//! validation examples whose target is a new item of their own.

use crate::data::Example;
use crate::eval::metrics::{Metrics, rank_of};
use crate::eval::model::chunk_scores;
use crate::eval::new_items::{
    NEW_ITEM_LIFT_OFFSETS, NEW_ITEM_POPULARITY_WEIGHTS, NEW_ITEM_TOLERANCE,
};
use crate::rec::{ItemVectors, NewItemPopularity, Recommender};

use super::{most_new_targets_within, rows_marked, targeting};

/// The protocol's unmasked figures under each lift of `grid` ([`NewItemPopularity`]), `new`'s
/// rows being the items never seen in training and `popularity` the catalogue's figure per
/// row as the examples' time knows it. The scores are computed once for the whole grid.
pub fn evaluate_new_item_popularity(
    model: &Recommender,
    items: &ItemVectors,
    examples: &[Example],
    batch: usize,
    new: &[usize],
    popularity: &[f32],
    grid: &[NewItemPopularity],
) -> Vec<Metrics> {
    let is_new = rows_marked(items.items, new);
    let lifts: Vec<Vec<f32>> = grid
        .iter()
        .map(|g| g.score_lifts(popularity, &is_new, model.temperature, None))
        .collect();
    let mut out = vec![Metrics::default(); grid.len()];
    for chunk in examples.chunks(batch.max(1)) {
        let (_, flat, n) = chunk_scores(model, items, chunk);
        for (e, row) in chunk.iter().zip(flat.chunks(n)) {
            for (metrics, lift) in out.iter_mut().zip(&lifts) {
                let lifted: Vec<f32> = row.iter().zip(lift).map(|(s, o)| s + o).collect();
                metrics.add(rank_of(&lifted, e.target, None));
            }
        }
    }
    out
}

/// Each example's target rank among `subset` under each lift of `grid` on `new`'s rows (one
/// list of ranks per lift).
pub fn target_ranks_among_lifted(
    model: &Recommender,
    items: &ItemVectors,
    examples: &[Example],
    subset: &[usize],
    new: &[usize],
    popularity: &[f32],
    grid: &[NewItemPopularity],
) -> Vec<Vec<usize>> {
    let is_new = rows_marked(items.items, new);
    let lifts: Vec<Vec<f32>> = grid
        .iter()
        .map(|g| g.score_lifts(popularity, &is_new, model.temperature, None))
        .collect();
    let mut ranks = vec![Vec::with_capacity(examples.len()); grid.len()];
    for chunk in examples.chunks(256) {
        let (_, flat, n) = chunk_scores(model, items, chunk);
        for (e, row) in chunk.iter().zip(flat.chunks(n)) {
            for (out, lift) in ranks.iter_mut().zip(&lifts) {
                let lifted: Vec<f32> = row.iter().zip(lift).map(|(s, o)| s + o).collect();
                out.push(crate::eval::model::rank_among(&lifted, e.target, subset));
            }
        }
    }
    ranks
}

/// Every lift tried: [`NEW_ITEM_LIFT_OFFSETS`] × [`NEW_ITEM_POPULARITY_WEIGHTS`], weight-major.
pub fn popularity_lift_grid() -> Vec<NewItemPopularity> {
    NEW_ITEM_POPULARITY_WEIGHTS
        .iter()
        .flat_map(|&weight| {
            NEW_ITEM_LIFT_OFFSETS
                .iter()
                .map(move |&offset| NewItemPopularity { offset, weight })
        })
        .collect()
}

/// One popularity lift as validation measured it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PopularitySweep {
    pub offset: f32,
    pub weight: f32,
    /// NDCG@10 over every validation example.
    #[serde(rename = "valid_ndcg@10")]
    pub ndcg10: f64,
    /// Recall@10 over the validation examples whose target is a new item.
    #[serde(rename = "valid_new_target_recall@10")]
    pub new_recall10: f64,
}

/// The popularity lift of [`NEW_ITEM_LIFT_OFFSETS`] × [`NEW_ITEM_POPULARITY_WEIGHTS`] chosen on
/// validation by the prior's rule: the most validation targets that are new items found while
/// NDCG@10 over every validation example stays at least [`NEW_ITEM_TOLERANCE`] × the sweep's
/// best; ties go to the better NDCG@10, then the smaller lift. `popularity` is the catalogue's
/// figure per row at validation time. Returns the choice and the sweep.
pub fn choose_new_item_popularity(
    model: &Recommender,
    items: &ItemVectors,
    valid: &[Example],
    new: &[usize],
    popularity: &[f32],
) -> (NewItemPopularity, Vec<PopularitySweep>) {
    let grid = popularity_lift_grid();
    let to_new = targeting(valid, new);
    let all = evaluate_new_item_popularity(model, items, valid, 256, new, popularity, &grid);
    let cold = evaluate_new_item_popularity(model, items, &to_new, 256, new, popularity, &grid);
    let sweep: Vec<PopularitySweep> = grid
        .iter()
        .zip(all.iter().zip(&cold))
        .map(|(g, (a, c))| PopularitySweep {
            offset: g.offset,
            weight: g.weight,
            ndcg10: a.means().get("ndcg@10").copied().unwrap_or(0.0),
            new_recall10: c.means().get("recall@10").copied().unwrap_or(0.0),
        })
        .collect();
    let best = sweep.iter().map(|s| s.ndcg10).fold(0.0, f64::max);
    let size = |s: &PopularitySweep| s.offset.abs() + s.weight;
    let choice = most_new_targets_within(
        &sweep,
        best * NEW_ITEM_TOLERANCE,
        |s| (s.ndcg10, s.new_recall10),
        |a, b| {
            a.ndcg10
                .total_cmp(&b.ndcg10)
                .then(size(b).total_cmp(&size(a)))
        },
    )
    .map_or(NewItemPopularity::NONE, |s| NewItemPopularity {
        offset: s.offset,
        weight: s.weight,
    });
    (choice, sweep)
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::SceneContext;
    use crate::eval::model::evaluate_over;
    use crate::eval::new_item_choice::tests::tiny_model;

    /// A lift with no weight is the prior; a weight lifts only the new items the catalogue
    /// counts, so a target that is new but never chosen stays where the model put it; the
    /// choice over validation whose targets are the counted new items takes a weight.
    #[test]
    fn popularity_lifts_only_the_counted_new_items() {
        let n = 40;
        let (_seeded, model, text) = tiny_model(5, n, 9);
        let items = model.item_vectors(text);
        let new = [4usize, 17, 30];
        let mut popularity = vec![3.0f32; n];
        popularity[4] = 0.0;
        let examples = |targets: &[usize]| -> Vec<Example> {
            (0..12)
                .map(|u| Example {
                    user: u,
                    history: vec![(u * 3 + 1) % n, (u * 7 + 2) % n],
                    kinds: Vec::new(),
                    target: targets[u % targets.len()],
                    context: SceneContext::default(),
                    seen: Vec::new(),
                })
                .collect()
        };
        let counted = examples(&[17, 30]);
        let never = examples(&[4]);
        let grid = [
            NewItemPopularity::NONE,
            NewItemPopularity {
                offset: 0.0,
                weight: 50.0,
            },
        ];
        let (plain, _) = evaluate_over(&model, &items, &counted, 5);
        let rows =
            evaluate_new_item_popularity(&model, &items, &counted, 5, &new, &popularity, &grid);
        assert_eq!(rows[0].means(), plain.means());
        assert_eq!(rows[1].means()["recall@10"], 1.0);
        // Item 4 has no count: the two counted new items pass it, nothing else moves.
        let ranks =
            target_ranks_among_lifted(&model, &items, &never, &new, &new, &popularity, &grid);
        let (before, lifted) = (&ranks[0], &ranks[1]);
        assert!(lifted.iter().all(|&r| r == 2), "{lifted:?}");
        assert!(before.iter().all(|&r| r <= 2), "{before:?}");
        let (lift, sweep) = choose_new_item_popularity(&model, &items, &counted, &new, &popularity);
        assert_eq!(sweep.len(), popularity_lift_grid().len());
        let chosen = sweep
            .iter()
            .find(|s| s.offset == lift.offset && s.weight == lift.weight)
            .unwrap();
        let most = sweep.iter().map(|s| s.new_recall10).fold(0.0, f64::max);
        assert_eq!(chosen.new_recall10, most, "{lift:?}");
        assert!(!lift.is_none(), "{lift:?}");
    }
}
