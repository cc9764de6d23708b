//! Turning scores into recommendations: top-k on the CPU (burn's top-k is not usable on
//! WebGPU, and k is small), each with the history items that explain it.

use burn::prelude::*;

use crate::contracts::EventKind;
use crate::contracts::SceneContext;
use crate::rec::readback::{Async, Blocking, ReadBack, block_on_ready};
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

/// What a recommendation needs computed on the device, before readback.
struct Pending {
    /// `[1, catalog items]` scores.
    scores: Tensor<2>,
    /// Unit item vectors `[items, hidden]`.
    items: Tensor<2>,
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
        let states = self.encode_with(batch, catalog);
        let [_, l, h] = states.dims();
        let n = batch.lens[0];
        states.reshape([l, h]).slice([n - 1..n, 0..h])
    }

    /// Scores `[1, catalog.items]` after `batch` (one row), plus `boost` (`[1, catalog.items]`).
    fn pending(
        &self,
        catalog: &ItemVectors,
        batch: &SequenceBatch,
        boost: Option<Tensor<2>>,
    ) -> Pending {
        let recent = &batch.items[..batch.lens[0]];
        let items = catalog.unit.clone();
        let scores = self
            .user_row(catalog, batch)
            .matmul(items.clone().transpose())
            .div_scalar(self.temperature)
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
            items,
            distinct,
        }
    }

    /// The `k` best items after `history` over the catalog whose item vectors are `catalog`
    /// (see `item_vectors`); items in the history are left out when `exclude_seen`. Each comes
    /// with up to `because` read history events whose item vectors are closest to it. With
    /// CLSD statistics, the read events are weighted by their confidence first. `boost`
    /// (`[1, catalog.items]`, e.g. [`avoid_boost`]) is added to the scores. Tensors come back
    /// to the CPU through `read`: the one implementation behind [`Recommender::recommend`] and
    /// [`Recommender::recommend_async`].
    #[allow(clippy::too_many_arguments)]
    pub async fn rank<R: ReadBack>(
        &self,
        catalog: &ItemVectors,
        history: &History<'_>,
        k: usize,
        exclude_seen: bool,
        because: usize,
        boost: Option<Tensor<2>>,
        read: &R,
    ) -> crate::Result<Vec<Recommendation>> {
        if history.reads.is_empty() {
            return Ok(Vec::new());
        }
        let batch = self.read_batch(catalog, history, read).await?;
        let p = self.pending(catalog, &batch, boost);
        let scores = read.read(p.scores).await?;
        let rankable = &scores[..catalog.items];
        let best = top_k(rankable, k, if exclude_seen { history.items } else { &[] });
        let sims: Vec<f32> = if p.distinct.is_empty() || best.is_empty() {
            Vec::new()
        } else {
            read.read(similarities(&p.items, &best, &p.distinct))
                .await?
        };
        Ok(assemble(&scores, best, &sims, &p.distinct, because))
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

    /// [`Recommender::rank`] with the tensors read back at once (native backends).
    pub fn recommend(
        &self,
        catalog: &ItemVectors,
        history: &History,
        k: usize,
        exclude_seen: bool,
        because: usize,
        boost: Option<Tensor<2>>,
    ) -> crate::Result<Vec<Recommendation>> {
        block_on_ready(self.rank(catalog, history, k, exclude_seen, because, boost, &Blocking))
    }

    /// [`Recommender::rank`] with asynchronous read-backs (required on WebGPU).
    pub async fn recommend_async(
        &self,
        catalog: &ItemVectors,
        history: &History<'_>,
        k: usize,
        exclude_seen: bool,
        because: usize,
        boost: Option<Tensor<2>>,
    ) -> crate::Result<Vec<Recommendation>> {
        self.rank(catalog, history, k, exclude_seen, because, boost, &Async)
            .await
    }
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

fn assemble(
    scores: &[f32],
    best: Vec<usize>,
    sims: &[f32],
    distinct: &[usize],
    because: usize,
) -> Vec<Recommendation> {
    best.iter()
        .enumerate()
        .map(|(r, &item)| {
            let row = &sims[r * distinct.len()..(r + 1) * distinct.len()];
            Recommendation {
                item,
                score: scores[item],
                because: top_k(row, because, &[])
                    .into_iter()
                    .map(|j| distinct[j])
                    .collect(),
            }
        })
        .collect()
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
}
