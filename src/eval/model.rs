//! A recommender evaluated with the protocol: full ranking of the catalogue for every example.

use burn::prelude::*;

use crate::contracts::{EventKind, SceneContext};
use crate::data::Example;
use crate::eval::metrics::{Metrics, rank_of};
use crate::eval::new_items::{
    NEIGHBOUR_COUNTS, NEIGHBOUR_OWN_SHARES, NEW_ARRIVAL_SLOTS, NEW_ITEM_OFFSETS,
    NEW_ITEM_TOLERANCE, NewArrivals, NewItemPrior,
};
use crate::rec::rank::top_k;
use crate::rec::{ItemVectors, NeighbourMix, Recommender, SequenceBatch};

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
fn chunk_scores(
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
    let scores = user
        .clone()
        .matmul(items.unit.clone().transpose())
        .div_scalar(model.temperature);
    let [_, n] = scores.dims();
    let flat = scores.into_data().try_to_vec::<f32>().expect("f32 scores");
    (user, flat, n)
}

/// The protocol's figures (unmasked, masked) under each new-item prior of `offsets`: `new`'s
/// rows (the items never seen in training) gain [`NewItemPrior::score_offsets`]. The scores
/// are computed once for all the offsets.
pub fn evaluate_new_item_priors(
    model: &Recommender,
    items: &ItemVectors,
    examples: &[Example],
    batch: usize,
    new: &[usize],
    offsets: &[f32],
) -> Vec<(NewItemPrior, Metrics, Metrics)> {
    let priors: Vec<NewItemPrior> = offsets
        .iter()
        .map(|&offset| NewItemPrior { offset })
        .collect();
    let shifts: Vec<Vec<f32>> = priors
        .iter()
        .map(|p| p.score_offsets(items.items, new, model.temperature))
        .collect();
    let mut out: Vec<(NewItemPrior, Metrics, Metrics)> = priors
        .iter()
        .map(|&p| (p, Metrics::default(), Metrics::default()))
        .collect();
    for chunk in examples.chunks(batch.max(1)) {
        let (_, flat, n) = chunk_scores(model, items, chunk);
        for (e, row) in chunk.iter().zip(flat.chunks(n)) {
            for ((_, plain, masked), shift) in out.iter_mut().zip(&shifts) {
                let shifted: Vec<f32> = row.iter().zip(shift).map(|(s, o)| s + o).collect();
                plain.add(rank_of(&shifted, e.target, None));
                masked.add(rank_of(&shifted, e.target, Some(&e.seen)));
            }
        }
    }
    out
}

/// The new-item prior of [`NEW_ITEM_OFFSETS`] with the best validation NDCG@10 (unmasked, the
/// headline figure) over every validation example — those whose target is a new item and all
/// the others, so that a prior lifting new items pays for the places it takes. Ties go to the
/// offset nearest 0. Returns the choice and each offset's validation NDCG@10.
pub fn choose_new_item_prior(
    model: &Recommender,
    items: &ItemVectors,
    valid: &[Example],
    new: &[usize],
) -> (NewItemPrior, Vec<(f32, f64)>) {
    let rows = evaluate_new_item_priors(model, items, valid, 256, new, &NEW_ITEM_OFFSETS);
    let sweep: Vec<(f32, f64)> = rows
        .iter()
        .map(|(p, plain, _)| {
            (
                p.offset,
                plain.means().get("ndcg@10").copied().unwrap_or(0.0),
            )
        })
        .collect();
    let best = sweep
        .iter()
        .copied()
        .max_by(|a, b| {
            a.1.total_cmp(&b.1)
                .then_with(|| b.0.abs().total_cmp(&a.0.abs()))
        })
        .map_or(0.0, |(o, _)| o);
    (NewItemPrior { offset: best }, sweep)
}

/// The shelf length the reserved places are measured on (the headline cutoff).
const SHELF: usize = 10;

/// The 0-based rank of `target` in the ranking `scores` give once [`NewArrivals`] has reserved
/// its places on the first [`SHELF`] (`is_new` marks the new rows): its place on that shelf,
/// else the shelf's length plus its rank among the items the shelf does not show.
pub fn rank_with_arrivals(
    scores: &[f32],
    target: usize,
    is_new: &[bool],
    arrivals: NewArrivals,
) -> usize {
    let top = top_k(scores, SHELF, &[]);
    let only_new: Vec<f32> = scores
        .iter()
        .zip(is_new)
        .map(|(&s, &n)| if n { s } else { f32::NEG_INFINITY })
        .collect();
    let best_new = top_k(&only_new, arrivals.slots, &top);
    let shelf = arrivals.reserve(&top, &best_new, |i| is_new[i]);
    if let Some(p) = shelf.iter().position(|&i| i == target) {
        return p;
    }
    let t = scores[target];
    let above = |i: usize| scores[i] > t || (scores[i] == t && i < target);
    let rank = rank_of(scores, target, None);
    shelf.len() + rank - shelf.iter().filter(|&&i| above(i)).count()
}

/// The protocol's unmasked figures under each number of reserved places of `slots`, `new`'s
/// rows being the items never seen in training. The scores are computed once for all of them.
pub fn evaluate_new_arrivals(
    model: &Recommender,
    items: &ItemVectors,
    examples: &[Example],
    batch: usize,
    new: &[usize],
    slots: &[usize],
) -> Vec<(NewArrivals, Metrics)> {
    let mut is_new = vec![false; items.items];
    for &i in new {
        if let Some(n) = is_new.get_mut(i) {
            *n = true;
        }
    }
    let mut out: Vec<(NewArrivals, Metrics)> = slots
        .iter()
        .map(|&slots| (NewArrivals { slots }, Metrics::default()))
        .collect();
    for chunk in examples.chunks(batch.max(1)) {
        let (_, flat, n) = chunk_scores(model, items, chunk);
        for (e, row) in chunk.iter().zip(flat.chunks(n)) {
            for (arrivals, metrics) in out.iter_mut() {
                metrics.add(rank_with_arrivals(row, e.target, &is_new, *arrivals));
            }
        }
    }
    out
}

/// One number of reserved places as validation measured it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ArrivalsSweep {
    pub slots: usize,
    /// NDCG@10 over every validation example.
    #[serde(rename = "valid_ndcg@10")]
    pub ndcg10: f64,
    /// Recall@10 over the validation examples whose target is a new item.
    #[serde(rename = "valid_new_target_recall@10")]
    pub new_recall10: f64,
}

/// The reserved places of [`NEW_ARRIVAL_SLOTS`] chosen on validation: the one that finds the
/// most validation targets that are new items (Recall@10 over those examples) while keeping
/// NDCG@10 over every validation example at least [`NEW_ITEM_TOLERANCE`] × the model's own
/// order's; ties go to fewer places. Returns the choice and the sweep.
pub fn choose_new_arrivals(
    model: &Recommender,
    items: &ItemVectors,
    valid: &[Example],
    new: &[usize],
) -> (NewArrivals, Vec<ArrivalsSweep>) {
    let mut sorted = new.to_vec();
    sorted.sort_unstable();
    let (to_new, _): (Vec<Example>, Vec<Example>) = valid
        .iter()
        .cloned()
        .partition(|e| sorted.binary_search(&e.target).is_ok());
    let all = evaluate_new_arrivals(model, items, valid, 256, new, &NEW_ARRIVAL_SLOTS);
    let cold = evaluate_new_arrivals(model, items, &to_new, 256, new, &NEW_ARRIVAL_SLOTS);
    let sweep: Vec<ArrivalsSweep> = all
        .iter()
        .zip(&cold)
        .map(|((a, m), (_, c))| ArrivalsSweep {
            slots: a.slots,
            ndcg10: m.means().get("ndcg@10").copied().unwrap_or(0.0),
            new_recall10: c.means().get("recall@10").copied().unwrap_or(0.0),
        })
        .collect();
    let floor = sweep
        .iter()
        .find(|s| s.slots == 0)
        .map_or(0.0, |s| s.ndcg10 * NEW_ITEM_TOLERANCE);
    let best = sweep
        .iter()
        .filter(|s| s.ndcg10 >= floor)
        .max_by(|a, b| {
            a.new_recall10
                .total_cmp(&b.new_recall10)
                .then(b.slots.cmp(&a.slots))
        })
        .map_or(0, |s| s.slots);
    (NewArrivals { slots: best }, sweep)
}

/// `items` with the rows of `new` mixed with their text neighbours ([`NeighbourMix`]); `text`
/// is the catalogue's text vectors `[items, dim]`.
pub fn mixed_item_vectors(
    items: &ItemVectors,
    text: &Tensor<2>,
    new: &[usize],
    mix: NeighbourMix,
) -> ItemVectors {
    let n = items.items;
    let dim = text.dims()[1];
    let mut is_new = vec![false; n];
    for &i in new {
        if let Some(x) = is_new.get_mut(i) {
            *x = true;
        }
    }
    let text: Vec<f32> = text
        .clone()
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 text vectors");
    let text = crate::rec::history_select::unit_rows_flat(&text, dim);
    mix.apply(items.clone(), &text, dim, &is_new)
}

/// One neighbour mix as validation measured it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MixSweep {
    pub own: f32,
    pub neighbours: usize,
    /// NDCG@10 over every validation example.
    #[serde(rename = "valid_ndcg@10")]
    pub ndcg10: f64,
    /// Recall@10 over the validation examples whose target is a new item.
    #[serde(rename = "valid_new_target_recall@10")]
    pub new_recall10: f64,
}

/// The neighbour mix chosen on validation by the rule the other re-rankings are held to: of
/// every mix of [`NEIGHBOUR_OWN_SHARES`] × [`NEIGHBOUR_COUNTS`], the one that finds the most
/// validation targets that are new items (Recall@10 over those examples) while NDCG@10 over
/// every validation example stays at least [`NEW_ITEM_TOLERANCE`] × the unmixed model's;
/// ties go to the better NDCG@10, then the larger own share. Returns the choice and the sweep.
pub fn choose_neighbour_mix(
    model: &Recommender,
    items: &ItemVectors,
    text: &Tensor<2>,
    valid: &[Example],
    new: &[usize],
) -> (NeighbourMix, Vec<MixSweep>) {
    let mut sorted = new.to_vec();
    sorted.sort_unstable();
    let to_new: Vec<Example> = valid
        .iter()
        .filter(|e| sorted.binary_search(&e.target).is_ok())
        .cloned()
        .collect();
    let measure = |mix: NeighbourMix| {
        let mixed = mixed_item_vectors(items, text, new, mix);
        let (all, _) = evaluate_over(model, &mixed, valid, 256);
        let (cold, _) = evaluate_over(model, &mixed, &to_new, 256);
        MixSweep {
            own: mix.own,
            neighbours: mix.neighbours,
            ndcg10: all.means().get("ndcg@10").copied().unwrap_or(0.0),
            new_recall10: cold.means().get("recall@10").copied().unwrap_or(0.0),
        }
    };
    let plain = measure(NeighbourMix::NONE);
    let mut sweep = vec![plain];
    for own in NEIGHBOUR_OWN_SHARES.into_iter().filter(|&o| o < 1.0) {
        for neighbours in NEIGHBOUR_COUNTS {
            sweep.push(measure(NeighbourMix { own, neighbours }));
        }
    }
    let floor = plain.ndcg10 * NEW_ITEM_TOLERANCE;
    let best = sweep
        .iter()
        .filter(|s| s.ndcg10 >= floor)
        .max_by(|a, b| {
            a.new_recall10
                .total_cmp(&b.new_recall10)
                .then(a.ndcg10.total_cmp(&b.ndcg10))
                .then(a.own.total_cmp(&b.own))
        })
        .map_or(NeighbourMix::NONE, |s| NeighbourMix {
            own: s.own,
            neighbours: s.neighbours,
        });
    (best, sweep)
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

    #[test]
    fn reserved_places_move_the_best_new_items_onto_the_shelf() {
        // Rows 0..12 by falling score; rows 10 and 11 are new (ranks 10 and 11 by score).
        let scores: Vec<f32> = (0..12).map(|i| 12.0 - i as f32).collect();
        let mut is_new = vec![false; 12];
        is_new[10] = true;
        is_new[11] = true;
        let none = NewArrivals::default();
        let one = NewArrivals { slots: 1 };
        for t in 0..12 {
            assert_eq!(rank_with_arrivals(&scores, t, &is_new, none), t);
        }
        // One place: new row 10 takes the shelf's last place; row 9 falls to the first rank
        // after the shelf; row 11 stays where it was.
        assert_eq!(rank_with_arrivals(&scores, 10, &is_new, one), 9);
        assert_eq!(rank_with_arrivals(&scores, 9, &is_new, one), 10);
        assert_eq!(rank_with_arrivals(&scores, 11, &is_new, one), 11);
        assert_eq!(rank_with_arrivals(&scores, 3, &is_new, one), 3);
        let two = NewArrivals { slots: 2 };
        assert_eq!(rank_with_arrivals(&scores, 11, &is_new, two), 9);
        assert_eq!(rank_with_arrivals(&scores, 8, &is_new, two), 10);
        // Every rank is taken once.
        let mut ranks: Vec<usize> = (0..12)
            .map(|t| rank_with_arrivals(&scores, t, &is_new, two))
            .collect();
        ranks.sort_unstable();
        assert_eq!(ranks, (0..12).collect::<Vec<_>>());
    }

    /// Offset 0 is the plain evaluation; an offset past any cosine gap puts the new items
    /// first, so a target that is a new item ranks among them only; the choice over
    /// validation takes the best NDCG@10.
    #[test]
    fn new_item_priors_shift_only_the_new_items() {
        let (_seeded, device) = crate::fixtures::seeded_cpu(5);
        let config =
            crate::fixtures::small_config(crate::rec::ItemMode::Inductive, 1, 8, 16, (0.0, 0.0), 6);
        let model = Recommender::init(&config, &device);
        let n = 40;
        let text = crate::rng::SplitMix(9).uniform(n * 12, 0.0, 1.0);
        let text = Tensor::<2>::from_data(TensorData::new(text, [n, 12]), &device);
        let items = model.item_vectors(text);
        let new = [4usize, 17, 30];
        let examples: Vec<Example> = (0..12)
            .map(|u| Example {
                user: u,
                history: vec![(u * 3) % n, (u * 7 + 1) % n, (u * 5 + 2) % n],
                kinds: Vec::new(),
                target: new[u % 3],
                context: SceneContext::default(),
                seen: Vec::new(),
            })
            .collect();
        let (plain, _) = evaluate_over(&model, &items, &examples, 5);
        let rows = evaluate_new_item_priors(&model, &items, &examples, 5, &new, &[0.0, 50.0]);
        assert_eq!(rows[0].1.means(), plain.means());
        // Cosines lie in [-1, 1]: +50 lifts every new item above every other.
        let lifted = rows[1].1.means();
        assert_eq!(lifted["recall@10"], 1.0, "{lifted:?}");
        assert!(lifted["ndcg@10"] > plain.means()["ndcg@10"]);
        // Every target is new: the choice lifts them as far as the grid goes.
        let (prior, sweep) = choose_new_item_prior(&model, &items, &examples, &new);
        assert_eq!(sweep.len(), NEW_ITEM_OFFSETS.len());
        let best = sweep.iter().map(|s| s.1).fold(f64::MIN, f64::max);
        let chosen = sweep.iter().find(|s| s.0 == prior.offset).unwrap().1;
        assert_eq!(chosen, best);
        assert!(prior.offset > 0.0, "{sweep:?}");
        // Reserved places: none is the plain evaluation; every target being new, validation
        // takes places (they cost nothing there), and the sweep holds every choice tried.
        let rows = evaluate_new_arrivals(&model, &items, &examples, 5, &new, &[0, 3]);
        assert_eq!(rows[0].1.means(), plain.means());
        assert!(rows[1].1.means()["recall@10"] >= plain.means()["recall@10"]);
        assert_eq!(
            rows[1].1.means()["recall@10"],
            1.0,
            "three places, three new items"
        );
        let (arrivals, sweep) = choose_new_arrivals(&model, &items, &examples, &new);
        assert_eq!(sweep.len(), NEW_ARRIVAL_SLOTS.len());
        assert!(arrivals.slots > 0, "{sweep:?}");
        // When no target is new, places only cost: validation keeps the model's order.
        let trained: Vec<Example> = examples
            .iter()
            .cloned()
            .map(|mut e| {
                e.target = (e.user * 11 + 1) % n;
                e
            })
            .filter(|e| !new.contains(&e.target))
            .collect();
        let (arrivals, sweep) = choose_new_arrivals(&model, &items, &trained, &new);
        assert_eq!(arrivals.slots, 0, "{sweep:?}");
    }

    /// Own share 1 is the tower's vectors; a mix moves only the new rows; the choice keeps
    /// validation NDCG@10 within the tolerance and finds at least the unmixed model's targets.
    #[test]
    fn neighbour_mixes_move_only_the_new_rows_and_the_choice_respects_the_floor() {
        let (_seeded, device) = crate::fixtures::seeded_cpu(6);
        let config =
            crate::fixtures::small_config(crate::rec::ItemMode::Inductive, 1, 8, 16, (0.0, 0.0), 6);
        let model = Recommender::init(&config, &device);
        let n = 30;
        let text = crate::rng::SplitMix(3).uniform(n * 12, 0.0, 1.0);
        let text = Tensor::<2>::from_data(TensorData::new(text, [n, 12]), &device);
        let items = model.item_vectors(text.clone());
        let new = [2usize, 11, 25];
        let rows = |v: &ItemVectors| v.unit.clone().into_data().try_to_vec::<f32>().unwrap();
        let same = mixed_item_vectors(&items, &text, &new, NeighbourMix::NONE);
        assert_eq!(rows(&same), rows(&items));
        let moved = rows(&mixed_item_vectors(
            &items,
            &text,
            &new,
            NeighbourMix {
                own: 0.0,
                neighbours: 1,
            },
        ));
        let before = rows(&items);
        let h = before.len() / n;
        for i in 0..n {
            let changed = moved[i * h..(i + 1) * h] != before[i * h..(i + 1) * h];
            assert_eq!(changed, new.contains(&i), "row {i}");
        }
        let examples: Vec<Example> = (0..15)
            .map(|u| Example {
                user: u,
                history: vec![(u * 7 + 1) % n, (u * 5 + 3) % n],
                kinds: Vec::new(),
                target: if u % 3 == 0 { new[u % 2] } else { (u * 4) % n },
                context: SceneContext::default(),
                seen: Vec::new(),
            })
            .collect();
        let (mix, sweep) = choose_neighbour_mix(&model, &items, &text, &examples, &new);
        assert_eq!(sweep.len(), 1 + 6 * 3);
        let chosen = sweep
            .iter()
            .find(|s| s.own == mix.own && (s.own == 1.0 || s.neighbours == mix.neighbours))
            .unwrap();
        assert!(
            chosen.ndcg10 >= sweep[0].ndcg10 * NEW_ITEM_TOLERANCE,
            "{sweep:?}"
        );
        assert!(chosen.new_recall10 >= sweep[0].new_recall10, "{sweep:?}");
    }
}
