//! Each new-item policy of [`crate::eval::new_items`] (and the product's [`NeighbourMix`])
//! evaluated over its sweep and chosen on the validation examples whose target is a new item
//! of their own.

use burn::prelude::*;

use crate::data::Example;
use crate::eval::metrics::{Metrics, rank_of};
use crate::eval::model::{chunk_scores, evaluate_over};
use crate::eval::new_items::{
    NEIGHBOUR_COUNTS, NEIGHBOUR_OWN_SHARES, NEW_ARRIVAL_SLOTS, NEW_ITEM_OFFSETS,
    NEW_ITEM_TOLERANCE, NewArrivals, NewItemPrior, rank_with_arrivals,
};
use crate::rec::{ItemVectors, NeighbourMix, Recommender};

mod popularity;
pub use popularity::{
    PopularitySweep, choose_new_item_popularity, evaluate_new_item_popularity,
    popularity_lift_grid, target_ranks_among_lifted,
};

/// The examples whose target is one of `new`.
pub fn targeting(examples: &[Example], new: &[usize]) -> Vec<Example> {
    let mut sorted = new.to_vec();
    sorted.sort_unstable();
    examples
        .iter()
        .filter(|e| sorted.binary_search(&e.target).is_ok())
        .cloned()
        .collect()
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

/// One new-item prior as validation measured it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PriorSweep {
    pub offset: f32,
    /// NDCG@10 over every validation example.
    #[serde(rename = "valid_ndcg@10")]
    pub ndcg10: f64,
    /// Recall@10 over the validation examples whose target is a new item.
    #[serde(rename = "valid_new_target_recall@10")]
    pub new_recall10: f64,
}

/// The new-item prior of [`NEW_ITEM_OFFSETS`] chosen on validation by the rule the other
/// new-item policies are held to: the most validation targets that are new items found
/// (Recall@10 over those examples) while NDCG@10 over every validation example stays at least
/// [`NEW_ITEM_TOLERANCE`] × the sweep's best. The reference is the best offset's, not offset
/// 0's, because an offset can raise NDCG as well as lower it: a model whose new items come out
/// over-ranked (a text + ID model's new items have no ID) is first corrected, then may spend
/// the tolerance on new items. Returns the choice and the sweep.
pub fn choose_new_item_prior(
    model: &Recommender,
    items: &ItemVectors,
    valid: &[Example],
    new: &[usize],
) -> (NewItemPrior, Vec<PriorSweep>) {
    let to_new = targeting(valid, new);
    let all = evaluate_new_item_priors(model, items, valid, 256, new, &NEW_ITEM_OFFSETS);
    let cold = evaluate_new_item_priors(model, items, &to_new, 256, new, &NEW_ITEM_OFFSETS);
    let sweep: Vec<PriorSweep> = all
        .iter()
        .zip(&cold)
        .map(|((p, plain, _), (_, c, _))| PriorSweep {
            offset: p.offset,
            ndcg10: plain.means().get("ndcg@10").copied().unwrap_or(0.0),
            new_recall10: c.means().get("recall@10").copied().unwrap_or(0.0),
        })
        .collect();
    (
        NewItemPrior {
            offset: prior_of_sweep(&sweep),
        },
        sweep,
    )
}

/// [`choose_new_item_prior`]'s rule over a measured sweep; ties go to the better NDCG@10, then
/// the offset nearest 0.
fn prior_of_sweep(sweep: &[PriorSweep]) -> f32 {
    let best = sweep.iter().map(|s| s.ndcg10).fold(0.0, f64::max);
    most_new_targets_within(
        sweep,
        best * NEW_ITEM_TOLERANCE,
        |s| (s.ndcg10, s.new_recall10),
        |a, b| {
            a.ndcg10
                .total_cmp(&b.ndcg10)
                .then(b.offset.abs().total_cmp(&a.offset.abs()))
        },
    )
    .map_or(0.0, |s| s.offset)
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
    let is_new = rows_marked(items.items, new);
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
    let to_new = targeting(valid, new);
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
    // Ties: fewer places.
    let best = most_new_targets_within(
        &sweep,
        floor,
        |s| (s.ndcg10, s.new_recall10),
        |a, b| b.slots.cmp(&a.slots),
    )
    .map_or(0, |s| s.slots);
    (NewArrivals { slots: best }, sweep)
}

/// The rule the new-item policies are chosen by: of `sweep`, the entry that finds the most
/// validation targets that are new items while NDCG@10 over every validation example stays at
/// least `floor`. `figures` gives an entry's (NDCG@10, new-target Recall@10); `tie` orders
/// entries that find as many (the greater wins).
fn most_new_targets_within<T>(
    sweep: &[T],
    floor: f64,
    figures: impl Fn(&T) -> (f64, f64),
    tie: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> Option<&T> {
    sweep
        .iter()
        .filter(|s| figures(s).0 >= floor)
        .max_by(|a, b| figures(a).1.total_cmp(&figures(b).1).then(tie(a, b)))
}

/// `rows` flags, true at each of `marked` (those past the end ignored).
fn rows_marked(rows: usize, marked: &[usize]) -> Vec<bool> {
    let mut flags = vec![false; rows];
    for &i in marked {
        if let Some(f) = flags.get_mut(i) {
            *f = true;
        }
    }
    flags
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
    let is_new = rows_marked(n, new);
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
    let to_new = targeting(valid, new);
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
    // Ties: the better NDCG@10, then the larger own share.
    let best = most_new_targets_within(
        &sweep,
        floor,
        |s| (s.ndcg10, s.new_recall10),
        |a, b| a.ndcg10.total_cmp(&b.ndcg10).then(a.own.total_cmp(&b.own)),
    )
    .map_or(NeighbourMix::NONE, |s| NeighbourMix {
        own: s.own,
        neighbours: s.neighbours,
    });
    (best, sweep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::SceneContext;

    /// A small untrained inductive model (the seeded device's lock held) and `n` random
    /// 12-wide text rows.
    pub(super) fn tiny_model(
        seed: u64,
        n: usize,
        text_seed: u64,
    ) -> (
        Option<std::sync::MutexGuard<'static, ()>>,
        Recommender,
        Tensor<2>,
    ) {
        let (seeded, device) = crate::fixtures::seeded_cpu(seed);
        let config =
            crate::fixtures::small_config(crate::rec::ItemMode::Inductive, 1, 8, 16, (0.0, 0.0), 6);
        let model = Recommender::init(&config, &device);
        let text = crate::rng::SplitMix(text_seed).uniform(n * 12, 0.0, 1.0);
        let text = Tensor::<2>::from_data(TensorData::new(text, [n, 12]), &device);
        (seeded, model, text)
    }

    /// Offset 0 is the plain evaluation; an offset past any cosine gap puts the new items
    /// first, so a target that is a new item ranks among them only; the choice over
    /// validation takes the best NDCG@10.
    #[test]
    fn new_item_priors_shift_only_the_new_items() {
        let n = 40;
        let (_seeded, model, text) = tiny_model(5, n, 9);
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
        // Every target is new: the choice lifts them as far as the grid goes, where NDCG@10
        // and the new targets found are both at their best.
        let (prior, sweep) = choose_new_item_prior(&model, &items, &examples, &new);
        assert_eq!(sweep.len(), NEW_ITEM_OFFSETS.len());
        let best = sweep.iter().map(|s| s.ndcg10).fold(f64::MIN, f64::max);
        let chosen = sweep.iter().find(|s| s.offset == prior.offset).unwrap();
        assert_eq!(chosen.ndcg10, best);
        let most = sweep
            .iter()
            .map(|s| s.new_recall10)
            .fold(f64::MIN, f64::max);
        assert_eq!(chosen.new_recall10, most, "{sweep:?}");
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

    /// The prior's rule: the most new targets within the tolerance of the sweep's best NDCG@10,
    /// which may be a negative offset's (over-ranked new items corrected first).
    #[test]
    fn the_prior_spends_the_tolerance_of_the_best_offset_on_new_targets() {
        let at = |offset, ndcg10, new_recall10| PriorSweep {
            offset,
            ndcg10,
            new_recall10,
        };
        // Over-ranked new items: 0 is far below -0.1's best; -0.05 is within 2 % of it and
        // finds more new targets than -0.1; 0 finds the most but costs too much.
        let sweep = [
            at(-0.1, 0.0650, 0.00),
            at(-0.05, 0.0640, 0.10),
            at(0.0, 0.0530, 0.20),
        ];
        assert_eq!(prior_of_sweep(&sweep), -0.05);
        // Nothing within the tolerance finds more: the best NDCG@10, then the offset nearest 0.
        let sweep = [
            at(-0.1, 0.0600, 0.0),
            at(0.0, 0.0600, 0.0),
            at(0.05, 0.05, 0.3),
        ];
        assert_eq!(prior_of_sweep(&sweep), 0.0);
        let sweep = [at(-0.05, 0.0610, 0.1), at(0.0, 0.0600, 0.1)];
        assert_eq!(prior_of_sweep(&sweep), -0.05);
    }

    /// Own share 1 is the tower's vectors; a mix moves only the new rows; the choice keeps
    /// validation NDCG@10 within the tolerance and finds at least the unmixed model's targets.
    #[test]
    fn neighbour_mixes_move_only_the_new_rows_and_the_choice_respects_the_floor() {
        let n = 30;
        let (_seeded, model, text) = tiny_model(6, n, 3);
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
