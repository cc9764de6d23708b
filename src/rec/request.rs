//! The one recommend path: a [`RecommendRequest`] (the visitor's history, its behaviour types
//! and scene, search queries, avoided items, k, exclusions, explanations, calibration) ranked
//! over a [`RankingState`] (the catalogue through the item tower, computed once: `state.rs`). `ranklet recommend`
//! and the browser's `Ranker` are adapters over it; `ranklet eval` reads histories through the
//! same [`RankingState::read_events`].

use burn::prelude::*;

use crate::contracts::{EventKind, SceneContext};
use crate::error::{Error, Result};
use crate::rec::calibrate::Calibration;
use crate::rec::history_select::{selection_rows, unit_rows_of};
use crate::rec::model::l2_rows;
use crate::rec::rank::{History, Offsets, RankOptions, Reasons, Recommendation, avoid_boost};
use crate::rec::readback::{Async, Blocking, ReadBack, block_on_ready};
use crate::rec::state::RankingState;
use crate::rec::{ItemVectors, Recommender};

/// What one recommendation is asked for.
#[derive(Debug, Clone, Default)]
pub struct RecommendRequest<'a> {
    /// Every event, oldest first: catalogue rows, and `items + j` for search query `j`.
    pub history: &'a [usize],
    /// The behaviour type of each event (empty: all clicks).
    pub kinds: &'a [EventKind],
    /// The scene of this request (unknown parts are fine).
    pub context: SceneContext,
    /// Text vectors of the search queries, `q × text_dim` row-major (the bundle's encoder).
    pub queries: &'a [f32],
    /// Each query's weight for its relevance term (empty: none). The sequence model was not
    /// trained on queries, while the encoder's text space matches a query to the items it
    /// describes: every item gains `weight · cos(query, item text) / τ`.
    pub query_weights: &'a [f32],
    /// Catalogue rows the visitor marked "not interested": their text neighbours are pushed
    /// down at once ([`avoid_boost`]).
    pub avoid: &'a [usize],
    pub k: usize,
    /// Leave the history's items out of the answer.
    pub exclude_seen: bool,
    /// Reasons per recommended item (history events; a row ≥ `items` names a query).
    pub because: usize,
    /// How the reasons are chosen (default: the model's leave-one-out attribution).
    pub reasons: Reasons,
    /// Calibrated re-ranking of the model's best [`CALIBRATION_POOL`] (none: the model's order).
    ///
    /// [`CALIBRATION_POOL`]: crate::rec::CALIBRATION_POOL
    pub calibration: Option<Calibration<'a>>,
}

/// A request checked and made ready to rank.
struct Prepared {
    /// The catalogue with the query rows appended (`None`: no queries).
    with_queries: Option<ItemVectors>,
    /// Score offsets (query relevance, "not interested" neighbours).
    offsets: Offsets,
    /// The events the encoder reads, and their behaviour types.
    reads: Vec<usize>,
    read_kinds: Vec<EventKind>,
}

impl Prepared {
    /// The catalogue to rank: the state's, with the query rows appended when there are any.
    fn catalog<'a>(&'a self, state: &'a RankingState) -> &'a ItemVectors {
        self.with_queries.as_ref().unwrap_or(&state.catalog)
    }

    /// The history as the ranking reads it: every event, and the chosen ones with their types.
    fn history<'a>(&'a self, req: &RecommendRequest<'a>) -> History<'a> {
        History {
            items: req.history,
            reads: &self.reads,
            kinds: &self.read_kinds,
            context: req.context,
        }
    }
}

impl RankingState {
    /// The request checked against the catalogue, with what the ranking needs: the catalogue
    /// with the query rows appended, the score offsets, and the events the encoder reads.
    fn prepare(&self, model: &Recommender, req: &RecommendRequest) -> Result<Prepared> {
        let dim = self.text_dim;
        if !req.queries.len().is_multiple_of(dim) || req.queries.iter().any(|v| !v.is_finite()) {
            return Err(Error::bad_input(
                "query vectors",
                format!(
                    "{} floats is not a whole number of finite {dim}-wide rows",
                    req.queries.len()
                ),
            ));
        }
        let q = req.queries.len() / dim;
        if !req.query_weights.is_empty() && req.query_weights.len() != q {
            return Err(Error::bad_input(
                "query weights",
                format!("{} for {q} queries", req.query_weights.len()),
            ));
        }
        let device = self.catalog.unit.device();
        let mut offsets = Offsets::default();
        let with_queries = (q > 0).then(|| {
            let text =
                Tensor::<2>::from_data(TensorData::new(req.queries.to_vec(), [q, dim]), &device);
            let with = model.with_queries(&self.catalog, text.clone());
            if let (false, Some(items)) = (req.query_weights.is_empty(), &self.text) {
                let w = Tensor::<2>::from_data(
                    TensorData::new(req.query_weights.to_vec(), [q, 1]),
                    &device,
                );
                // The queries in the space the catalogue's nearness is measured in.
                let queries = if self.item_space {
                    let [rows, h] = with.unit.dims();
                    with.unit.clone().slice([rows - q..rows, 0..h])
                } else {
                    l2_rows(text)
                };
                // Each query's own term `[q, items]`, kept apart for the reasons.
                let per_query =
                    (queries.matmul(items.clone().transpose()) * w).div_scalar(self.temperature);
                offsets.total = Some(per_query.clone().sum_dim(0));
                offsets.per_query = Some(per_query);
            }
            with
        });
        let n = self.items();
        if let (false, Some(items)) = (req.avoid.is_empty(), &self.text) {
            if let Some(bad) = req.avoid.iter().find(|&&a| a >= n) {
                return Err(Error::bad_input(
                    "avoided items",
                    format!("row {bad} is outside the catalogue of {n} items"),
                ));
            }
            let nearness = avoid_boost(items, req.avoid, self.temperature);
            offsets.total = Some(match offsets.total.take() {
                Some(b) => b + nearness,
                None => nearness,
            });
        }
        if let Some(lift) = &self.new_item_lift {
            offsets.total = Some(match offsets.total.take() {
                Some(b) => b + lift.clone(),
                None => lift.clone(),
            });
        }
        if let Some(bad) = req.history.iter().find(|&&h| h >= n + q) {
            return Err(Error::bad_input(
                "history",
                format!("row {bad} is outside the catalogue of {n} items and {q} queries"),
            ));
        }
        if !req.kinds.is_empty() && req.kinds.len() != req.history.len() {
            return Err(Error::bad_input(
                "event types",
                format!(
                    "{} event types for {} history events",
                    req.kinds.len(),
                    req.history.len()
                ),
            ));
        }
        // Query rows (after the catalogue's) are compared by their own text vectors; in the
        // item space they have none on the CPU (zero rows: never chosen as "relevant").
        let query_rows = if self.item_space {
            vec![vec![0.0; self.width]; q]
        } else {
            selection_rows(&unit_rows_of(req.queries, dim))
        };
        let (reads, read_kinds) = self.read_events(req.history, req.kinds, &query_rows);
        Ok(Prepared {
            with_queries,
            offsets,
            reads,
            read_kinds,
        })
    }

    /// The ranking of `req`, tensors read back through `read`.
    pub async fn recommend_with<R: ReadBack>(
        &self,
        model: &Recommender,
        req: &RecommendRequest<'_>,
        read: &R,
    ) -> Result<Vec<Recommendation>> {
        let mut p = self.prepare(model, req)?;
        let offsets = std::mem::take(&mut p.offsets);
        let options = RankOptions {
            k: req.k,
            exclude_seen: req.exclude_seen,
            because: req.because,
            reasons: req.reasons,
            calibration: req.calibration,
        };
        model
            .rank(p.catalog(self), &p.history(req), options, offsets, read)
            .await
    }

    /// The visitor's unit state after `req`'s history (its `k`, exclusions and explanations
    /// play no part), read back through `read`: what a partitioned index probes its cells with.
    pub async fn user_state_with<R: ReadBack>(
        &self,
        model: &Recommender,
        req: &RecommendRequest<'_>,
        read: &R,
    ) -> Result<Vec<f32>> {
        let p = self.prepare(model, req)?;
        model
            .user_state(p.catalog(self), &p.history(req), read)
            .await
    }

    /// [`RankingState::recommend_with`], read back at once (native backends).
    pub fn recommend(
        &self,
        model: &Recommender,
        req: &RecommendRequest<'_>,
    ) -> Result<Vec<Recommendation>> {
        block_on_ready(self.recommend_with(model, req, &Blocking))
    }

    /// [`RankingState::recommend_with`], read back asynchronously (WebGPU).
    pub async fn recommend_async(
        &self,
        model: &Recommender,
        req: &RecommendRequest<'_>,
    ) -> Result<Vec<Recommendation>> {
        self.recommend_with(model, req, &Async).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{seeded_cpu, small_config};
    use crate::rec::ItemMode;
    use crate::rec::rank::REASON_STEP;
    use crate::rng::SplitMix;

    fn model(device: &Device) -> Recommender {
        Recommender::init(
            &small_config(ItemMode::Inductive, 1, 8, 16, (0.0, 0.0), 6),
            device,
        )
    }

    /// Rows the model never trained on are mixed with their trained text neighbours by the
    /// model's neighbour mix; the trained rows' vectors, and so their scores, stay as they were,
    /// and a model whose mix is none ranks the catalogue unchanged.
    #[test]
    fn new_rows_move_towards_their_trained_text_neighbours_only() {
        let (_seeded, device) = seeded_cpu(8);
        let model = model(&device);
        let n = 30;
        let text = SplitMix(5).uniform(n * 12, 0.0, 1.0);
        let mut is_new = vec![false; n];
        is_new[4] = true;
        is_new[21] = true;
        let rows = |st: &RankingState| -> Vec<f32> {
            st.catalog.unit.clone().into_data().try_to_vec().unwrap()
        };
        let plain = rows(&RankingState::from_rows(&model, text.clone(), 12, &device));
        let mixed = rows(&RankingState::from_rows_with_new(
            &model,
            text.clone(),
            12,
            &device,
            &is_new,
        ));
        let h = plain.len() / n;
        let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        let unit_text = crate::rec::history_select::unit_rows_flat(&text, 12);
        let mix = model.config.new_items.mix;
        assert!(!mix.is_none(), "the default mix changes new rows");
        for (i, near) in mix.neighbours_of(&unit_text, 12, &is_new) {
            let row = |v: &[f32], r: usize| v[r * h..(r + 1) * h].to_vec();
            // Nearer to its nearest trained neighbour than the tower alone put it.
            assert!(
                cos(&row(&mixed, i), &row(&plain, near[0]))
                    > cos(&row(&plain, i), &row(&plain, near[0])),
                "row {i}"
            );
        }
        for r in (0..n).filter(|&r| !is_new[r]) {
            assert_eq!(
                plain[r * h..(r + 1) * h],
                mixed[r * h..(r + 1) * h],
                "row {r}"
            );
        }
        let mut unmixed = model.clone();
        unmixed.config.new_items.mix = crate::rec::NeighbourMix::NONE;
        let same = rows(&RankingState::from_rows_with_new(
            &unmixed, text, 12, &device, &is_new,
        ));
        assert_eq!(same, plain);
    }

    /// The popularity lift raises exactly the new rows the catalogue counts, by the lift's
    /// score; trained rows keep their scores; a catalogue without figures, or lengths that do
    /// not match it, leave the ranking as it was (the latter refused, naming what is wrong).
    #[test]
    fn catalogue_popularity_lifts_only_the_counted_new_rows() {
        let (_seeded, device) = seeded_cpu(8);
        let model = model(&device);
        let n = 30;
        let text = SplitMix(5).uniform(n * 12, 0.0, 1.0);
        let mut is_new = vec![false; n];
        for r in [4, 9, 21] {
            is_new[r] = true;
        }
        let mut popularity = vec![f32::NAN; n];
        popularity[0] = 100.0;
        popularity[4] = 100.0;
        popularity[9] = 0.0;
        let history = [3usize, 7, 11];
        let req = RecommendRequest {
            history: &history,
            k: n,
            exclude_seen: true,
            ..Default::default()
        };
        // History rows are left out of the answer: they keep the sentinel.
        let score_of = |recs: &[Recommendation]| -> Vec<f32> {
            let mut s = vec![f32::MIN; n];
            for r in recs {
                s[r.item] = r.score;
            }
            s
        };
        let mut state = RankingState::from_rows_with_new(&model, text, 12, &device, &is_new);
        let before = score_of(&state.recommend(&model, &req).unwrap());
        let lift = crate::rec::NewItemPopularity {
            offset: -0.5,
            weight: 2.0,
        };
        state
            .lift_new_items(lift, &is_new, &popularity, None)
            .unwrap();
        let after = score_of(&state.recommend(&model, &req).unwrap());
        let t = model.temperature as f32;
        for r in (0..n).filter(|r| !history.contains(r)) {
            let want = match r {
                4 => (-0.5 + 2.0) / t,
                9 | 21 => -0.5 / t,
                _ => 0.0,
            };
            assert!(
                (after[r] - before[r] - want).abs() < 1e-3,
                "row {r}: {} -> {}",
                before[r],
                after[r]
            );
        }
        let top = state.recommend(
            &model,
            &RecommendRequest {
                k: 1,
                ..req.clone()
            },
        );
        assert_eq!(top.unwrap()[0].item, 4, "the counted new row comes first");
        // No figures: the lift goes.
        state.lift_new_items(lift, &is_new, &[], None).unwrap();
        assert_eq!(score_of(&state.recommend(&model, &req).unwrap()), before);
        let err = state
            .lift_new_items(lift, &is_new, &popularity[..5], None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("5 popularity figures for a catalogue of 30"),
            "{err}"
        );
    }

    /// A catalogue given as precomputed item vectors (an index) ranks exactly as the same
    /// catalogue given as text vectors through the tower; in the item space, "not interested"
    /// pushes down the avoided item's nearest item.
    #[test]
    fn item_rows_rank_as_the_tower_over_text_and_avoid_works_in_item_space() {
        let (_seeded, device) = seeded_cpu(8);
        let model = model(&device);
        let n = 30;
        let text = SplitMix(3).uniform(n * 12, 0.0, 1.0);
        let by_text = RankingState::from_rows(&model, text.clone(), 12, &device);
        let raw: Vec<f32> = by_text
            .catalog
            .raw
            .clone()
            .into_data()
            .try_to_vec()
            .unwrap();
        let by_rows = RankingState::from_item_rows(&model, raw.clone(), 8, 12, &device);
        let history = [3usize, 7, 11, 2, 19, 4, 8, 25];
        let req = RecommendRequest {
            history: &history,
            k: 10,
            exclude_seen: true,
            because: 2,
            ..Default::default()
        };
        let a = by_text.recommend(&model, &req).unwrap();
        let b = by_rows.recommend(&model, &req).unwrap();
        assert_eq!(a.len(), 10);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((x.item, &x.because), (y.item, &y.because));
            assert!(
                (x.score - y.score).abs() < 1e-4,
                "{} vs {}",
                x.score,
                y.score
            );
        }
        // The avoided item's nearest neighbour in the item space scores lower when avoided.
        let unit = unit_rows_of(&raw, 8);
        let avoided = 5;
        let nearest = (0..n)
            .filter(|&i| i != avoided && !history.contains(&i))
            .max_by(|&i, &j| {
                let d = |k: usize| {
                    unit[k]
                        .iter()
                        .zip(&unit[avoided])
                        .map(|(p, q)| p * q)
                        .sum::<f32>()
                };
                d(i).total_cmp(&d(j))
            })
            .unwrap();
        let score_of = |avoid: &[usize]| {
            let recs = by_rows
                .recommend(
                    &model,
                    &RecommendRequest {
                        avoid,
                        k: n,
                        ..req.clone()
                    },
                )
                .unwrap();
            recs.iter().find(|r| r.item == nearest).unwrap().score
        };
        assert!(score_of(&[avoided]) < score_of(&[]) - 1.0);
        // Bad rows are refused naming what is wrong, not a panic.
        let bad = RecommendRequest {
            history: &[99],
            ..req.clone()
        };
        let err = by_rows.recommend(&model, &bad).unwrap_err().to_string();
        assert!(err.contains("row 99"), "{err}");
    }

    /// The reasons are the model's own attribution: for every recommended item, the named
    /// events are the ones whose removal (ranked again through the same path, from scratch)
    /// lowers its score the most, in that order, and only events that lower it; a search is an
    /// event like the others, its relevance term going with it.
    #[test]
    fn reasons_are_the_events_whose_removal_lowers_the_score_most() {
        let (_seeded, device) = seeded_cpu(8);
        let model = model(&device);
        let n = 30;
        let text = SplitMix(5).uniform(n * 12, -1.0, 1.0);
        let state = RankingState::from_rows(&model, text.clone(), 12, &device);
        // Four item events, a repeat and a search (row n), within the model's window of 6;
        // the query is item 17's text, so its relevance term alone puts 17 first.
        let history = [7usize, 11, n, 2, 7, 19];
        let query = text[17 * 12..18 * 12].to_vec();
        let weights = [1.0f32];
        let req = RecommendRequest {
            history: &history,
            queries: &query,
            query_weights: &weights,
            k: 6,
            exclude_seen: true,
            because: 6,
            ..Default::default()
        };
        let recs = state.recommend(&model, &req).unwrap();
        assert_eq!(recs[0].item, 17);
        assert_eq!(
            recs[0].because[0], n,
            "the search drove item 17: {:?}",
            recs[0].because
        );
        let distinct = [19usize, 7, 2, n, 11];
        let score_without = |left_out: usize, item: usize| -> f32 {
            let kept: Vec<usize> = history.iter().copied().filter(|&h| h != left_out).collect();
            let no_query = left_out == n;
            let req = RecommendRequest {
                history: &kept,
                queries: if no_query { &[] } else { &query },
                query_weights: if no_query { &[] } else { &weights },
                k: n,
                ..Default::default()
            };
            let all = state.recommend(&model, &req).unwrap();
            all.iter().find(|r| r.item == item).unwrap().score
        };
        for r in &recs {
            let mut drops: Vec<(usize, f32)> = distinct
                .iter()
                .map(|&d| (d, r.score - score_without(d, r.item)))
                .collect();
            drops.sort_by(|a, b| b.1.total_cmp(&a.1));
            let expected: Vec<usize> = drops
                .iter()
                .filter(|(_, drop)| *drop > 0.6 * REASON_STEP)
                .map(|(d, _)| *d)
                .collect();
            // Drops are compared in steps of REASON_STEP: compare the sets of clear reasons,
            // and the order where the drops differ by more than a step.
            let named: Vec<usize> = r.because.clone();
            assert!(
                expected.iter().all(|d| named.contains(d)),
                "item {}: named {named:?}, removal lowers it for {drops:?}",
                r.item
            );
            for w in named.windows(2) {
                let drop = |d: usize| drops.iter().find(|x| x.0 == d).unwrap().1;
                assert!(
                    drop(w[0]) >= drop(w[1]) - REASON_STEP,
                    "item {}: {drops:?}",
                    r.item
                );
                assert!(
                    drop(w[1]) > 0.4 * REASON_STEP,
                    "a reason must lower the score: {drops:?}"
                );
            }
        }
        // The reasons before leave-one-out (nearest read events) are still there to compare.
        let nearest = state
            .recommend(
                &model,
                &RecommendRequest {
                    because: 2,
                    reasons: Reasons::Nearest,
                    ..req.clone()
                },
            )
            .unwrap();
        assert!(nearest.iter().all(|r| r.because.len() == 2));
        // One event: it is the whole reason; a history of dislikes explains nothing.
        let one = RecommendRequest {
            history: &[4],
            k: 3,
            exclude_seen: true,
            because: 2,
            ..Default::default()
        };
        for r in state.recommend(&model, &one).unwrap() {
            assert_eq!(r.because, [4]);
        }
        let kinds = [EventKind::Dislike; 2];
        let disliked = RecommendRequest {
            history: &[4, 9],
            kinds: &kinds,
            ..one.clone()
        };
        let recs = state.recommend(&model, &disliked).unwrap();
        assert_eq!(recs.len(), 3);
        assert!(
            recs.iter()
                .all(|r| r.because.is_empty() && r.score.is_finite())
        );
    }
}
