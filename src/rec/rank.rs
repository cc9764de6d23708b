//! Turning scores into recommendations: top-k on the CPU (burn's top-k is not usable on
//! WebGPU, and k is small), each with the history items that explain it.

use burn::prelude::*;

use crate::contracts::EventKind;
use crate::contracts::SceneContext;
use crate::rec::calibrate::{CALIBRATION_POOL, Calibration};
use crate::rec::model::last_states;
use crate::rec::readback::ReadBack;
use crate::rec::{ItemVectors, Recommender, SequenceBatch};

/// One recommended item.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Recommendation {
    /// Row of the item in the catalog the scores were computed over.
    pub item: usize,
    /// cos(user, item) / τ.
    pub score: f32,
    /// History items (rows) most similar to this one, most similar first.
    pub because: Vec<usize>,
}

/// Indices of the `k` largest `scores` (ties: lower index first), skipping `exclude`.
pub fn top_k(scores: &[f32], k: usize, exclude: &[usize]) -> Vec<usize> {
    // A mask, not `exclude.contains`: a long history times a large catalog would be quadratic.
    let mut excluded = vec![false; scores.len()];
    for &i in exclude {
        if let Some(e) = excluded.get_mut(i) {
            *e = true;
        }
    }
    let mut order: Vec<usize> = (0..scores.len())
        .filter(|&i| !excluded[i] && scores[i].is_finite())
        .collect();
    let k = k.min(order.len());
    if k == 0 {
        return Vec::new();
    }
    let by_score = |a: &usize, b: &usize| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b));
    order.select_nth_unstable_by(k - 1, by_score);
    order.truncate(k);
    order.sort_by(by_score);
    order
}

/// How hard "not interested" pushes down the items whose texts are near the avoided one's
/// (a fraction of a cosine-over-temperature score; 0.5 moves an item at cosine 0.8 about 3.6
/// score points below one at cosine 0.3 at τ = 0.07).
pub const AVOID_WEIGHT: f64 = 0.5;

/// Score offsets `[1, items]` for items marked "not interested" (`avoid`, rows of `text`, the
/// unit text vectors `[items, dim]`): every item loses
/// `AVOID_WEIGHT · max over avoided d of cos(text d, item text) / τ`. A dislike then pushes its
/// neighbours down at once, whatever the sequence model learnt.
pub fn avoid_boost(text: &Tensor<2>, avoid: &[usize], temperature: f64) -> Tensor<2> {
    let rows: Vec<i64> = avoid.iter().map(|&a| a as i64).collect();
    let d = rows.len();
    let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [d]), &text.device());
    text.clone()
        .select(0, rows)
        .matmul(text.clone().transpose())
        .max_dim(0)
        .mul_scalar(-AVOID_WEIGHT / temperature)
}

/// A visitor's history as the recommender reads it.
#[derive(Debug, Clone, Copy)]
pub struct History<'a> {
    /// Every event's item row, oldest first: what `exclude_seen` leaves out, and (its length)
    /// the visitor's activity level for CLSD.
    pub items: &'a [usize],
    /// The events the sequence encoder reads, oldest first (e.g. [`select_history`]'s choice
    /// out of a long history; the newest `max_len` of `items` by default).
    ///
    /// [`select_history`]: crate::rec::select_history
    pub reads: &'a [usize],
    /// The behaviour type of each read event (shorter: the rest are clicks).
    pub kinds: &'a [EventKind],
    /// The scene of this request (hour, page, device; unknown parts are fine).
    pub context: SceneContext,
}

impl<'a> History<'a> {
    /// The newest `max_len` events of `items`, all clicks.
    pub fn clicks(items: &'a [usize], max_len: usize) -> Self {
        Self {
            items,
            reads: &items[items.len().saturating_sub(max_len)..],
            kinds: &[],
            context: SceneContext::default(),
        }
    }
}

/// How each recommendation's `because` is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reasons {
    /// The model's own attribution: of the read events (clicks, likes, searches…), the ones
    /// whose removal lowers the item's score the most, by leave-one-out — the history without
    /// each candidate event's item, all rows in one batched encoder pass (a search also takes
    /// its relevance term with it). Only events whose removal lowers the score are named. Each
    /// row is an encoder pass, so with more distinct events than `candidates`, the candidates
    /// are every search, the newest [`NEWEST_CANDIDATES`] events and, in turn, each shown
    /// item's nearest events (by item vectors) until `candidates` are chosen.
    LeaveOneOut { candidates: usize },
    /// The read events whose item vectors are nearest the item (the reasons before
    /// leave-one-out; kept to be measured against it).
    Nearest,
}

/// Leave-one-out candidates by default: each costs one sequence-encoder row (about 2 ms in the
/// browser's CPU module for a 50-event history, reports/quality.md).
pub const LOO_CANDIDATES: usize = 8;

/// How finely leave-one-out score drops are compared (scores are cos/τ, so about 0 to 15): a
/// reason lowers its item's score by at least half of this.
pub const REASON_STEP: f32 = 0.01;

/// The newest events always among the leave-one-out candidates.
pub const NEWEST_CANDIDATES: usize = 3;

impl Default for Reasons {
    fn default() -> Self {
        Reasons::LeaveOneOut {
            candidates: LOO_CANDIDATES,
        }
    }
}

/// What [`Recommender::rank`] is asked for, besides the history.
#[derive(Debug, Clone, Copy, Default)]
pub struct RankOptions<'a> {
    pub k: usize,
    /// Leave the history's items out of the answer.
    pub exclude_seen: bool,
    /// Reasons per recommended item.
    pub because: usize,
    pub reasons: Reasons,
    /// Re-rank the model's best [`CALIBRATION_POOL`] towards the history's facet mix before
    /// the reasons are found (they are the shown items').
    pub calibration: Option<Calibration<'a>>,
}

/// Score offsets added to the model's scores.
#[derive(Default)]
pub struct Offsets {
    /// `[1, catalog items]`: every offset summed (query relevance, "not interested").
    pub total: Option<Tensor<2>>,
    /// `[queries, catalog items]`: each search query's own relevance term (a part of
    /// `total`), so that leaving a query out also leaves out what it added.
    pub per_query: Option<Tensor<2>>,
}

/// What a recommendation needs computed on the device, before readback.
struct Pending {
    /// `[1, catalog items]` scores.
    scores: Tensor<2>,
    /// The unit user state `[1, hidden]` the scores come from (before offsets).
    user: Tensor<2>,
    /// Distinct history items, most recent first.
    distinct: Vec<usize>,
}

impl Recommender {
    /// The read events as a one-row batch (typed).
    fn history_batch(history: &History) -> SequenceBatch {
        SequenceBatch::new(&[(history.reads, &[][..])])
            .with_kinds(&[history.kinds])
            .with_request_context(&[history.context])
    }

    /// The history as the encoder reads it, weighted by CLSD confidence when the model has it.
    async fn read_batch<R: ReadBack>(
        &self,
        catalog: &ItemVectors,
        history: &History<'_>,
        read: &R,
    ) -> crate::Result<SequenceBatch> {
        self.with_confidence_read(
            Self::history_batch(history),
            catalog,
            &[history.items.len()],
            read,
        )
        .await
    }

    /// The unit user state `[1, hidden]` after `batch` (one row): the encoder's state at its
    /// last event.
    fn user_row(&self, catalog: &ItemVectors, batch: &SequenceBatch) -> Tensor<2> {
        last_states(self.encode_with(batch, catalog), &batch.lens)
    }

    /// Scores `[1, catalog.items]` after `batch` (one row), plus `boost` (`[1, catalog.items]`).
    fn pending(
        &self,
        catalog: &ItemVectors,
        batch: &SequenceBatch,
        boost: Option<Tensor<2>>,
    ) -> Pending {
        let recent = &batch.items[..batch.lens[0]];
        let user = self.user_row(catalog, batch);
        let scores = self
            .scores_of(user.clone(), catalog.unit.clone())
            .slice([0..1, 0..catalog.items]);
        let scores = match boost {
            Some(b) => scores + b,
            None => scores,
        };
        // A disliked item explains nothing the visitor is shown.
        let mut distinct: Vec<usize> = Vec::new();
        for (&i, &kind) in recent.iter().zip(&batch.kinds).rev() {
            let i = i as usize;
            if kind != EventKind::Dislike as i64 && !distinct.contains(&i) {
                distinct.push(i);
            }
        }
        Pending {
            scores,
            user,
            distinct,
        }
    }

    /// How much each of `distinct`'s items (rows of `catalog`, queries included) adds to the
    /// score of each of `best`: `[distinct, best]`, the score after the whole read history
    /// minus the score after the same history without that item's events (the others keep
    /// their place, type and CLSD weight; the request's scene moves to the new last event),
    /// plus, for a search query, its own relevance term (`per_query`). `None` when leaving
    /// an item out leaves nothing to read: it is then the whole reason.
    fn leave_one_out(
        &self,
        catalog: &ItemVectors,
        batch: &SequenceBatch,
        p: &Pending,
        candidates: &[usize],
        best: &[usize],
        per_query: Option<&Tensor<2>>,
    ) -> Option<Tensor<2>> {
        let n = batch.lens[0];
        let events = &batch.items[..n];
        let kept: Vec<Vec<usize>> = candidates
            .iter()
            .map(|&d| (0..n).filter(|&t| events[t] as usize != d).collect())
            .collect();
        if kept.iter().any(Vec::is_empty) {
            return None;
        }
        let rows: Vec<Vec<usize>> = kept
            .iter()
            .map(|ts| ts.iter().map(|&t| events[t] as usize).collect())
            .collect();
        let pairs: Vec<(&[usize], &[usize])> =
            rows.iter().map(|r| (r.as_slice(), &[][..])).collect();
        let mut without = SequenceBatch::new(&pairs);
        for (b, ts) in kept.iter().enumerate() {
            for (j, &t) in ts.iter().enumerate() {
                without.kinds[b * without.len + j] = batch.kinds[t];
                without.confidence[b * without.len + j] = batch.confidence[t];
            }
            // The request's scene moves to the row's new last event.
            without.context[b * without.len + ts.len() - 1] = batch.context[n - 1];
        }
        let device = catalog.unit.device();
        let best_idx = Tensor::<1, Int>::from_data(
            TensorData::new(best.iter().map(|&b| b as i64).collect(), [best.len()]),
            &device,
        );
        let best_units = catalog.unit.clone().select(0, best_idx.clone()).transpose();
        let users = last_states(self.encode_with(&without, catalog), &without.lens);
        let full = p
            .user
            .clone()
            .matmul(best_units.clone())
            .repeat_dim(0, kept.len());
        let drops = (full - users.matmul(best_units)).div_scalar(self.temperature);
        let queries: Vec<(usize, usize)> = candidates
            .iter()
            .enumerate()
            .filter(|&(_, &d)| d >= catalog.items)
            .map(|(r, &d)| (r, d - catalog.items))
            .collect();
        match (per_query, queries.is_empty()) {
            (Some(terms), false) => {
                let [q, _] = terms.dims();
                let mut pick = vec![0.0f32; kept.len() * q];
                for &(r, j) in &queries {
                    pick[r * q + j] = 1.0;
                }
                let pick = Tensor::<2>::from_data(TensorData::new(pick, [kept.len(), q]), &device);
                Some(drops + pick.matmul(terms.clone().select(1, best_idx)))
            }
            _ => Some(drops),
        }
    }

    /// The `k` best items after `history` over the catalog whose item vectors are `catalog`
    /// (see `item_vectors`); items in the history are left out when `exclude_seen`. Each comes
    /// with up to `because` read history events that explain it (see [`Reasons`]). With CLSD
    /// statistics, the read events are weighted by their confidence first. `offsets` are added
    /// to the scores. Tensors come back to the CPU through `read`: `Blocking` natively, `Async`
    /// on WebGPU.
    pub async fn rank<R: ReadBack>(
        &self,
        catalog: &ItemVectors,
        history: &History<'_>,
        options: RankOptions<'_>,
        offsets: Offsets,
        read: &R,
    ) -> crate::Result<Vec<Recommendation>> {
        if history.reads.is_empty() {
            return Ok(Vec::new());
        }
        let batch = self.read_batch(catalog, history, read).await?;
        let p = self.pending(catalog, &batch, offsets.total);
        let scores = read.read(p.scores.clone()).await?;
        let rankable = &scores[..catalog.items];
        let exclude = if options.exclude_seen {
            history.items
        } else {
            &[]
        };
        let best = match options.calibration.filter(Calibration::active) {
            Some(c) => {
                let pool = top_k(rankable, options.k.max(CALIBRATION_POOL), exclude);
                c.rerank(&pool, &scores, history.items, options.k)
            }
            None => top_k(rankable, options.k, exclude),
        };
        let (k, d) = (best.len(), p.distinct.len());
        if d == 0 || k == 0 || options.because == 0 {
            return Ok(assemble(&scores, best, vec![Vec::new(); k]));
        }
        // Leave-one-out over every distinct event, or, past the cap, over chosen candidates (at
        // least one); those and the nearest reasons both read the nearness of items and events.
        let cap = match options.reasons {
            Reasons::LeaveOneOut { candidates } if d > candidates => Some(candidates.max(1)),
            _ => None,
        };
        let nearest = options.reasons == Reasons::Nearest;
        // `[best, distinct]`.
        let near = if nearest || cap.is_some() {
            read.read(similarities(&catalog.unit, &best, &p.distinct))
                .await?
        } else {
            Vec::new()
        };
        if nearest {
            let because = strongest(
                &near,
                k,
                |r, j| r * d + j,
                &p.distinct,
                options.because,
                f32::NEG_INFINITY,
            );
            return Ok(assemble(&scores, best, because));
        }
        let candidates: Vec<usize> = match cap {
            None => (0..d).collect(),
            Some(cap) => loo_candidates(&p.distinct, catalog.items, &near, k, cap),
        };
        let chosen: Vec<usize> = candidates.iter().map(|&j| p.distinct[j]).collect();
        let c = chosen.len();
        let drops: Vec<f32> = match self.leave_one_out(
            catalog,
            &batch,
            &p,
            &chosen,
            &best,
            offsets.per_query.as_ref(),
        ) {
            // In steps of REASON_STEP: backends that differ in the last float bits name the
            // same reasons, and near-ties go to the more recent event.
            Some(t) => read
                .read(t)
                .await?
                .iter()
                .map(|d| (d / REASON_STEP).round())
                .collect(),
            // The only event read: all of the score is its.
            None => vec![1.0; c * k],
        };
        // `drops` is `[chosen, best]`; a reason must lower the score by at least half a step.
        let because = strongest(&drops, k, |r, j| j * k + r, &chosen, options.because, 0.0);
        Ok(assemble(&scores, best, because))
    }

    /// The unit user state `[hidden]` after `history` over `catalog` (what [`Recommender::rank`]
    /// scores every item against; a partitioned index compares it with its centroids to choose
    /// the cells to fetch). Empty when no event is read.
    pub async fn user_state<R: ReadBack>(
        &self,
        catalog: &ItemVectors,
        history: &History<'_>,
        read: &R,
    ) -> crate::Result<Vec<f32>> {
        if history.reads.is_empty() {
            return Ok(Vec::new());
        }
        let batch = self.read_batch(catalog, history, read).await?;
        read.read(self.user_row(catalog, &batch)).await
    }
}

/// For each of `items` recommended items, up to `take` of `distinct` with the largest
/// `value[at(item, j)]` above `floor`, largest first (ties: the more recent event).
fn strongest(
    value: &[f32],
    items: usize,
    at: impl Fn(usize, usize) -> usize,
    distinct: &[usize],
    take: usize,
    floor: f32,
) -> Vec<Vec<usize>> {
    (0..items)
        .map(|r| {
            let row: Vec<f32> = (0..distinct.len())
                .map(|j| {
                    let v = value[at(r, j)];
                    if v > floor { v } else { f32::NEG_INFINITY }
                })
                .collect();
            top_k(&row, take, &[])
                .into_iter()
                .map(|j| distinct[j])
                .collect()
        })
        .collect()
}

/// The leave-one-out candidates (indices into `distinct`, most recent first; rows from `items`
/// on are searches) when there are more than `cap`: every search, the newest
/// [`NEWEST_CANDIDATES`], then each of the `shown` items' nearest events in turn (`near`,
/// `[shown, distinct]`) until `cap` are chosen.
fn loo_candidates(
    distinct: &[usize],
    items: usize,
    near: &[f32],
    shown: usize,
    cap: usize,
) -> Vec<usize> {
    let d = distinct.len();
    let mut chosen: Vec<usize> = (0..d).filter(|&j| distinct[j] >= items).collect();
    for j in 0..d.min(NEWEST_CANDIDATES) {
        if !chosen.contains(&j) {
            chosen.push(j);
        }
    }
    let orders: Vec<Vec<usize>> = (0..shown)
        .map(|r| top_k(&near[r * d..(r + 1) * d], d, &[]))
        .collect();
    'fill: for depth in 0..d {
        for order in &orders {
            if chosen.len() >= cap {
                break 'fill;
            }
            if let Some(&j) = order.get(depth)
                && !chosen.contains(&j)
            {
                chosen.push(j);
            }
        }
    }
    chosen
}

fn assemble(scores: &[f32], best: Vec<usize>, because: Vec<Vec<usize>>) -> Vec<Recommendation> {
    best.into_iter()
        .zip(because)
        .map(|(item, because)| Recommendation {
            item,
            score: scores[item],
            because,
        })
        .collect()
}

/// Cosine similarities `[best, distinct]` between recommended and history items.
fn similarities(items: &Tensor<2>, best: &[usize], distinct: &[usize]) -> Tensor<2> {
    let pick = |rows: &[usize]| {
        let idx: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        let n = idx.len();
        items.clone().select(
            0,
            Tensor::<1, Int>::from_data(TensorData::new(idx, [n]), &items.device()),
        )
    };
    pick(best).matmul(pick(distinct).transpose())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_breaks_ties_and_excludes() {
        let s = [0.5, 2.0, 2.0, f32::NAN, -1.0, 3.0];
        assert_eq!(top_k(&s, 3, &[]), vec![5, 1, 2]);
        assert_eq!(top_k(&s, 3, &[5]), vec![1, 2, 0]);
        assert_eq!(top_k(&s, 10, &[]), vec![5, 1, 2, 0, 4], "NaN never ranks");
        assert!(top_k(&s, 0, &[]).is_empty());
    }

    #[test]
    fn loo_candidates_are_searches_the_newest_then_each_shown_items_nearest() {
        // Most recent first; row 30 is a search (catalogue of 20).
        let distinct = [5, 9, 2, 7, 30, 1, 4, 8];
        let d = distinct.len();
        // Two shown items: the first is nearest to distinct[7] then [6]; the second to [5].
        let mut near = vec![0.0f32; 2 * d];
        near[7] = 0.9;
        near[6] = 0.8;
        near[d + 5] = 0.95;
        let chosen = loo_candidates(&distinct, 20, &near, 2, 6);
        assert_eq!(chosen, [4, 0, 1, 2, 7, 5]);
        // More room: the first item's second nearest comes next.
        assert_eq!(loo_candidates(&distinct, 20, &near, 2, 7)[6], 6);
    }
}
