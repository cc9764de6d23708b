//! The cold-start protocol on a split with items held out of training: the model against
//! popularity on the test users whose target is a held-out item, and every new-item policy
//! chosen on the validation-held items and read off the test ([`measure_new_item_policies`];
//! reports/coldstart.md).

use burn::prelude::*;

use crate::data::{Example, Split};
use crate::eval::metrics::{Metrics, evaluate};
use crate::eval::model::{evaluate_model, evaluate_over, rank_among, target_ranks_among};
use crate::eval::new_item_choice::{
    ArrivalsSweep, MixSweep, PopularitySweep, PriorSweep, choose_neighbour_mix,
    choose_new_arrivals, choose_new_item_popularity, choose_new_item_prior, evaluate_new_arrivals,
    evaluate_new_item_popularity, evaluate_new_item_priors, mixed_item_vectors,
    popularity_lift_grid, target_ranks_among_lifted, targeting,
};
use crate::eval::new_items::{NewArrivals, NewItemPrior};
use crate::eval::popularity::evaluate_popularity;
use crate::rec::{NeighbourMix, NewItemPopularity, Recommender};

/// A policy's figures on the test: every test user (unmasked), and the users whose target is a
/// test-held item (none without a test holdout).
#[derive(Debug, Clone)]
pub struct PolicyFigures {
    pub test: Metrics,
    pub cold: Option<Metrics>,
}

/// Every new-item policy of one trained model: its sweep on validation, its choice, and the
/// choice's figures on the test.
#[derive(Debug, Clone)]
pub struct NewItemPolicies {
    /// Validation examples whose target is a validation-held item.
    pub valid_new_targets: usize,
    pub prior: NewItemPrior,
    /// Each offset tried, with its validation figures.
    pub prior_sweep: Vec<PriorSweep>,
    pub prior_test: PolicyFigures,
    /// The prior's figures over every test user with the seen items masked.
    pub prior_test_masked: Metrics,
    pub arrivals: NewArrivals,
    pub arrivals_sweep: Vec<ArrivalsSweep>,
    pub arrivals_test: PolicyFigures,
    pub mix: NeighbourMix,
    pub mix_sweep: Vec<MixSweep>,
    /// Every mix of the sweep on the test too, the chosen one among them: not used by any
    /// choice here, recorded so that a choice made on several runs' validation
    /// (scripts/coldstart_report.py) can be read off the test without training again.
    pub mix_grid: Vec<MixOnTest>,
    /// The popularity lift over the product's default mix, chosen on validation with the
    /// catalogue's figures of validation time ([`crate::data::Split::catalogue_counts`]).
    pub popularity: NewItemPopularity,
    pub popularity_sweep: Vec<PopularitySweep>,
    /// Every lift of the sweep on the test too (with the test's figures), the chosen one
    /// among them: recorded so that a choice over several runs' validation can be read off.
    pub popularity_grid: Vec<LiftOnTest>,
}

/// One popularity lift's test figures.
#[derive(Debug, Clone)]
pub struct LiftOnTest {
    pub lift: NewItemPopularity,
    pub figures: PolicyFigures,
    /// With a test holdout: each cold-start user's target rank among the test-held items.
    pub ranks_among_new: Option<Vec<usize>>,
}

/// One neighbour mix's test figures.
#[derive(Debug, Clone)]
pub struct MixOnTest {
    pub mix: NeighbourMix,
    pub figures: PolicyFigures,
    /// With a test holdout: each cold-start user's target rank among the test-held items by
    /// this mix's vectors — the order of a "new arrivals" shelf in the product, which places
    /// new items by its mix (`<ranklet-shelf only="new">`).
    pub ranks_among_new: Option<Vec<usize>>,
}

/// Measures every new-item policy for `model`: `text` is the catalogue's text vectors, `new`
/// every item never seen in training (test- and validation-held), `valid_new` the
/// validation-held ones, `cold_test` the test examples whose target is test-held (none
/// without a test holdout), `popularity` the catalogue's figures per row at validation and at
/// test time. Each policy is chosen on `valid` and measured on `test`.
#[allow(clippy::too_many_arguments)]
pub fn measure_new_item_policies(
    model: &Recommender,
    text: &Tensor<2>,
    valid: &[Example],
    test: &[Example],
    cold_test: Option<&[Example]>,
    new: &[usize],
    valid_new: &[usize],
    popularity: (&[f32], &[f32]),
) -> NewItemPolicies {
    let items = model.item_vectors(text.clone());
    let test_new: Vec<usize> = new
        .iter()
        .copied()
        .filter(|i| !valid_new.contains(i))
        .collect();
    // Validation chooses over the catalogue it could target: the test-held items are no
    // validation example's target (those examples left validation with them), so a policy
    // that lifts them would only pay for it there. At validation time they are not in the shop.
    let chooser = &absent_from(model, &test_new, items.items);
    let sets: Vec<&[Example]> = std::iter::once(test).chain(cold_test).collect();
    let figures = |per_set: Vec<Metrics>| {
        let mut per_set = per_set.into_iter();
        PolicyFigures {
            test: per_set.next().expect("the test set"),
            cold: per_set.next(),
        }
    };
    let (prior, prior_sweep) = choose_new_item_prior(chooser, &items, valid, new);
    let prior_rows: Vec<(Metrics, Metrics)> = sets
        .iter()
        .map(|examples| {
            let (_, plain, masked) =
                evaluate_new_item_priors(model, &items, examples, 256, new, &[prior.offset])
                    .remove(0);
            (plain, masked)
        })
        .collect();
    let prior_test_masked = prior_rows[0].1.clone();
    let (arrivals, arrivals_sweep) = choose_new_arrivals(chooser, &items, valid, new);
    let arrivals_test = figures(
        sets.iter()
            .map(|examples| {
                evaluate_new_arrivals(model, &items, examples, 256, new, &[arrivals.slots])
                    .remove(0)
                    .1
            })
            .collect(),
    );
    let (mix, mix_sweep) = choose_neighbour_mix(chooser, &items, text, valid, new);
    let mix_grid = mix_sweep
        .iter()
        .map(|s| {
            let m = NeighbourMix {
                own: s.own,
                neighbours: s.neighbours,
            };
            let mixed = mixed_item_vectors(&items, text, new, m);
            let per_set = sets
                .iter()
                .map(|examples| evaluate_over(model, &mixed, examples, 256).0)
                .collect();
            MixOnTest {
                mix: m,
                figures: figures(per_set),
                ranks_among_new: cold_test
                    .map(|examples| target_ranks_among(model, &mixed, examples, &test_new, 256)),
            }
        })
        .collect();
    // The lift goes over the mix the product applies by default (not over this run's own
    // choice), so that runs of several seeds measure one thing.
    let base = mixed_item_vectors(&items, text, new, NeighbourMix::default());
    let (lift, popularity_sweep) =
        choose_new_item_popularity(chooser, &base, valid, new, popularity.0);
    let grid = popularity_lift_grid();
    let per_set: Vec<Vec<Metrics>> = sets
        .iter()
        .map(|examples| {
            evaluate_new_item_popularity(model, &base, examples, 256, new, popularity.1, &grid)
        })
        .collect();
    let mut ranks = cold_test.map(|examples| {
        target_ranks_among_lifted(model, &base, examples, &test_new, new, popularity.1, &grid)
    });
    let popularity_grid = grid
        .iter()
        .enumerate()
        .map(|(g, &lift)| LiftOnTest {
            lift,
            figures: figures(per_set.iter().map(|m| m[g].clone()).collect()),
            ranks_among_new: ranks.as_mut().map(|r| std::mem::take(&mut r[g])),
        })
        .collect();
    NewItemPolicies {
        popularity: lift,
        popularity_sweep,
        popularity_grid,
        valid_new_targets: targeting(valid, valid_new).len(),
        prior,
        prior_sweep,
        prior_test: figures(prior_rows.into_iter().map(|(plain, _)| plain).collect()),
        prior_test_masked,
        arrivals,
        arrivals_sweep,
        arrivals_test,
        mix,
        mix_sweep,
        mix_grid,
    }
}

impl NewItemPolicies {
    /// The chosen mix's figures (its entry of the grid).
    pub fn mix_test(&self) -> &PolicyFigures {
        &self.chosen_mix().figures
    }

    fn chosen_lift(&self) -> &LiftOnTest {
        self.popularity_grid
            .iter()
            .find(|g| g.lift == self.popularity)
            .expect("the chosen lift is one of the sweep's")
    }

    fn chosen_mix(&self) -> &MixOnTest {
        self.mix_grid
            .iter()
            .find(|g| g.mix == self.mix)
            .expect("the chosen mix is one of the sweep's")
    }

    /// The report's entries: `new_item_prior`, `new_arrivals` and `neighbour_mix` beside the
    /// model's figures, and each choice's cold-start figures under `cold_start` (when the test
    /// held items out). `valid_new_items` is the number of validation-held items.
    pub fn write_report(&self, entry: &mut serde_json::Value, valid_new_items: usize) {
        use serde_json::json;
        if let Some(cold) = &self.prior_test.cold {
            entry["cold_start"]["new_item_offset"] = json!(self.prior.offset);
            entry["cold_start"]["model_with_prior"] = json!(cold.means());
        }
        entry["new_item_prior"] = json!({
            "offset": self.prior.offset,
            "chosen_on": "the most validation new-item targets found (Recall@10) with NDCG@10 over every validation user at least 0.98 x the best offset's",
            "valid_new_items": valid_new_items,
            "valid_users_with_a_new_target": self.valid_new_targets,
            "sweep": self.prior_sweep,
            "test": self.prior_test.test.means(),
            "test_masked": self.prior_test_masked.means(),
        });
        entry["new_arrivals"] = json!({
            "slots": self.arrivals.slots,
            "shelf": 10,
            "chosen_on": "the most validation new-item targets found (Recall@10) with NDCG@10 over every validation user at least 0.98 x the model's order",
            "sweep": self.arrivals_sweep,
            "test": self.arrivals_test.test.means(),
        });
        if let Some(cold) = &self.arrivals_test.cold {
            entry["cold_start"]["model_with_new_arrivals"] = json!(cold.means());
        }
        let mix = self.mix_test();
        entry["neighbour_mix"] = json!({
            "own": self.mix.own,
            "neighbours": self.mix.neighbours,
            "chosen_on": "the most validation new-item targets found (Recall@10) with NDCG@10 over every validation user at least 0.98 x the unmixed model's",
            "sweep": self.mix_sweep,
            "test_grid": self
                .mix_grid
                .iter()
                .map(|g| json!({"own": g.mix.own, "neighbours": g.mix.neighbours,
                                "test": g.figures.test.means(),
                                "cold_start_test": g.figures.cold.as_ref().map(Metrics::means),
                                "cold_start_ranks_among_new": g.ranks_among_new}))
                .collect::<Vec<_>>(),
            "test": mix.test.means(),
        });
        if let Some(cold) = &mix.cold {
            entry["cold_start"]["model_with_neighbour_mix"] = json!(cold.means());
        }
        let chosen = self.chosen_lift();
        entry["new_item_popularity"] = json!({
            "offset": self.popularity.offset,
            "weight": self.popularity.weight,
            "over": {"own": NeighbourMix::default().own, "neighbours": NeighbourMix::default().neighbours},
            "chosen_on": "the most validation new-item targets found (Recall@10) with NDCG@10 over every validation user at least 0.98 x the best lift's",
            "popularity": "each item's count in the histories that validation (for the choice) or the test (for the figures) reads, targets never counted",
            "sweep": self.popularity_sweep,
            "test_grid": self
                .popularity_grid
                .iter()
                .map(|g| {
                    let ranks = g.ranks_among_new.as_deref().unwrap_or(&[]);
                    json!({"offset": g.lift.offset, "weight": g.lift.weight,
                           "test_ndcg@10": g.figures.test.means().get("ndcg@10"),
                           "cold_start_test": g.figures.cold.as_ref().map(Metrics::means),
                           "cold_start_median_rank_among_new": median(ranks),
                           "cold_start_new_arrivals_hits@10": ranks.iter().filter(|&&r| r < 10).count()})
                })
                .collect::<Vec<_>>(),
            "test": chosen.figures.test.means(),
        });
        if let Some(cold) = &chosen.figures.cold {
            entry["cold_start"]["model_with_popularity_lift"] = json!(cold.means());
        }
        if let Some(ranks) = &chosen.ranks_among_new {
            entry["cold_start"]["median_rank_among_new_with_popularity_lift"] =
                json!(median(ranks));
        }
        if let Some(ranks) = &self.chosen_mix().ranks_among_new {
            entry["cold_start"]["median_rank_among_new_with_neighbour_mix"] = json!(median(ranks));
            entry["cold_start"]["ranks_among_new_with_neighbour_mix"] = json!(ranks);
        }
    }

    /// The rows a training run prints for the three choices: every test user, then the
    /// cold-start users, per policy.
    pub fn rows(&self) -> Vec<(String, Metrics)> {
        let mix = self.mix_test();
        let named = [
            (
                format!("new-item prior {}", self.prior.offset),
                &self.prior_test,
            ),
            (
                format!("{} new-arrival places", self.arrivals.slots),
                &self.arrivals_test,
            ),
            (
                format!("neighbour mix {} of {}", self.mix.own, self.mix.neighbours),
                mix,
            ),
            (
                format!(
                    "default mix + popularity lift {} + {}·q",
                    self.popularity.offset, self.popularity.weight
                ),
                &self.chosen_lift().figures,
            ),
        ];
        let mut rows = Vec::new();
        for (name, f) in named {
            rows.push((format!("test, {name}"), f.test.clone()));
            if let Some(cold) = &f.cold {
                rows.push((format!("cold-start items, {name}"), cold.clone()));
            }
        }
        rows
    }
}

/// `model` with the rows `absent` out of every ranking (their scores −∞, which the metrics
/// pass over), on top of its popularity logits if it has any; `items` rows in all.
pub(crate) fn absent_from(model: &Recommender, absent: &[usize], items: usize) -> Recommender {
    let mut logits = model.popularity.clone().unwrap_or_else(|| vec![0.0; items]);
    logits.resize(items, 0.0);
    for &i in absent {
        if let Some(l) = logits.get_mut(i) {
            *l = f32::NEG_INFINITY;
        }
    }
    model.clone().with_popularity(logits)
}

/// The middle of `ranks` (the upper one of an even count); none when empty.
fn median(ranks: &[usize]) -> Option<usize> {
    let mut r = ranks.to_vec();
    r.sort_unstable();
    r.get(r.len() / 2).copied()
}

/// The model against popularity on the test users whose target is an item held out of
/// training, over the whole catalogue and among the held-out items only (a "new arrivals"
/// shelf).
#[derive(Debug, Clone)]
pub struct ColdStart {
    pub test_users: usize,
    pub model: Metrics,
    pub popularity: Metrics,
    /// Popularity by the catalogue's figures at test time ([`Split::catalogue_counts`]: new
    /// items counted too, no target): the cold-start users, and every test user.
    pub catalogue_popularity: Metrics,
    pub catalogue_popularity_all: Metrics,
    /// Each cold-start user's target rank among the held-out items by those figures.
    pub catalogue_popularity_ranks_among_new: Vec<usize>,
    /// Each user's target rank among the held-out items: by the model, and by training
    /// popularity (every held-out item has none: the catalogue's order decides).
    pub ranks_among_new: Vec<usize>,
    pub popularity_ranks_among_new: Vec<usize>,
}

/// [`ColdStart`] of `model` over the catalogue whose text vectors are `text`: `examples` are
/// the test examples whose target is one of `held` (held out of `split`'s training).
pub fn measure_cold_start(
    model: &Recommender,
    text: &Tensor<2>,
    split: &Split,
    held: &[usize],
    examples: &[Example],
) -> ColdStart {
    let items = text.dims()[0];
    let (ours, _) = evaluate_model(model, text, examples, 256);
    let (pop, _) = evaluate_popularity(split, items, examples);
    let vectors = model.item_vectors(text.clone());
    let ranks = target_ranks_among(model, &vectors, examples, held, 256);
    let counts: Vec<f32> = split
        .train_counts(items)
        .into_iter()
        .map(|c| c as f32)
        .collect();
    let popular = examples
        .iter()
        .map(|e| rank_among(&counts, e.target, held))
        .collect();
    let figures = split.catalogue_counts(items, 0);
    let (catalogue_popularity, _) = evaluate(examples, |_| figures.clone());
    let (catalogue_popularity_all, _) = evaluate(&split.test, |_| figures.clone());
    ColdStart {
        test_users: examples.len(),
        model: ours,
        popularity: pop,
        catalogue_popularity,
        catalogue_popularity_all,
        catalogue_popularity_ranks_among_new: examples
            .iter()
            .map(|e| rank_among(&figures, e.target, held))
            .collect(),
        ranks_among_new: ranks,
        popularity_ranks_among_new: popular,
    }
}

impl ColdStart {
    /// The report's `cold_start` entry: `held` items of a catalogue of `items`, held out as
    /// `fraction` of it with `seed`.
    pub fn report(&self, held: usize, items: usize, fraction: f64, seed: u64) -> serde_json::Value {
        serde_json::json!({
            "held_out_items": held,
            "fraction": fraction,
            "seed": seed,
            "test_users": self.test_users,
            "model": self.model.means(),
            "popularity": self.popularity.means(),
            // A random ranking of the whole catalogue finds the target in the top 10 with
            // probability 10 / items.
            "random_recall@10": 10.0_f64.min(items as f64) / items as f64,
            "median_rank_among_new": median(&self.ranks_among_new),
            "popularity_median_rank_among_new": median(&self.popularity_ranks_among_new),
            // The catalogue's figures at test time rank new items too: a baseline for the lift.
            "catalogue_popularity": self.catalogue_popularity.means(),
            "catalogue_popularity_every_test_user": self.catalogue_popularity_all.means(),
            "catalogue_popularity_median_rank_among_new": median(&self.catalogue_popularity_ranks_among_new),
            "random_median_rank_among_new": (held as f64 - 1.0) / 2.0,
            "ranks_among_new": self.ranks_among_new,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::SceneContext;
    use crate::eval::model::evaluate_over;

    /// Validation's model passes over the absent rows: with every row but the targets absent,
    /// each target is first; the model's own scores are untouched.
    #[test]
    fn absent_rows_leave_every_ranking() {
        let n = 30;
        let (_seeded, device) = crate::fixtures::seeded_cpu(3);
        let config =
            crate::fixtures::small_config(crate::rec::ItemMode::Inductive, 1, 8, 16, (0.0, 0.0), 6);
        let model = Recommender::init(&config, &device);
        let text = crate::rng::SplitMix(4).uniform(n * 12, 0.0, 1.0);
        let text = Tensor::<2>::from_data(TensorData::new(text, [n, 12]), &device);
        let items = model.item_vectors(text);
        let examples: Vec<Example> = (0..10)
            .map(|u| Example {
                user: u,
                history: vec![(u * 7 + 1) % n],
                kinds: Vec::new(),
                target: 20 + u % 5,
                context: SceneContext::default(),
                seen: Vec::new(),
            })
            .collect();
        let absent: Vec<usize> = (0..n).filter(|i| !(20..25).contains(i)).collect();
        let (plain, _) = evaluate_over(&model, &items, &examples, 4);
        let chooser = absent_from(&model, &absent, n);
        let (masked, _) = evaluate_over(&chooser, &items, &examples, 4);
        assert_eq!(masked.means()["recall@10"], 1.0);
        assert!(masked.means()["ndcg@10"] >= plain.means()["ndcg@10"]);
        let (again, _) = evaluate_over(&model, &items, &examples, 4);
        assert_eq!(again.means(), plain.means());
    }
}
