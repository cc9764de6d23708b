//! Turning scores into recommendations: top-k on the CPU (burn's top-k is not usable on
//! WebGPU, and k is small), each with the history items that explain it.

use burn::prelude::*;

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
    /// Scores `[1, catalog.items]` after `recent`, plus `boost` (`[1, catalog.items]`) if any.
    fn pending(
        &self,
        catalog: &ItemVectors,
        recent: &[usize],
        boost: Option<Tensor<2>>,
    ) -> Pending {
        let batch = SequenceBatch::new(&[(recent, &[][..])]);
        let states = self.encode_with(&batch, catalog);
        let items = catalog.unit.clone();
        let [_, l, h] = states.dims();
        let user = states
            .reshape([l, h])
            .slice([recent.len() - 1..recent.len(), 0..h]);
        let scores = user
            .matmul(items.clone().transpose())
            .div_scalar(self.temperature)
            .slice([0..1, 0..catalog.items]);
        let scores = match boost {
            Some(b) => scores + b,
            None => scores,
        };
        let mut distinct: Vec<usize> = Vec::new();
        for &i in recent.iter().rev() {
            if !distinct.contains(&i) {
                distinct.push(i);
            }
        }
        Pending {
            scores,
            items,
            distinct,
        }
    }

    /// The `k` best items after `history` (item rows, oldest first; the most recent
    /// `max_len` are used), over the catalog whose item vectors are `catalog` (see `item_vectors`); items in the
    /// history are left out when `exclude_seen`. Each comes with up to `because` history items
    /// whose item vectors are closest to it.
    ///
    /// `reads`: the events the sequence encoder reads (e.g. [`select_history`]'s choice out of
    /// a long history); by default the newest `max_len`.
    ///
    /// [`select_history`]: crate::rec::select_history
    #[allow(clippy::too_many_arguments)]
    pub fn recommend(
        &self,
        catalog: &ItemVectors,
        history: &[usize],
        reads: Option<&[usize]>,
        max_len: usize,
        k: usize,
        exclude_seen: bool,
        because: usize,
    ) -> Vec<Recommendation> {
        if history.is_empty() {
            return Vec::new();
        }
        let recent = reads.unwrap_or(&history[history.len().saturating_sub(max_len)..]);
        let p = self.pending(catalog, recent, None);
        let scores: Vec<f32> = p
            .scores
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 scores");
        let rankable = &scores[..catalog.items];
        let best = top_k(rankable, k, if exclude_seen { history } else { &[] });
        let sims: Vec<f32> = similarities(&p.items, &best, &p.distinct)
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 similarities");
        assemble(&scores, best, &sims, &p.distinct, because)
    }

    /// [`Recommender::recommend`] with asynchronous readbacks (required on WebGPU), and
    /// optional per-item score offsets `boost` `[1, catalog.items]` (e.g. the relevance of the
    /// visitor's recent search queries).
    #[allow(clippy::too_many_arguments)]
    pub async fn recommend_async(
        &self,
        catalog: &ItemVectors,
        history: &[usize],
        reads: Option<&[usize]>,
        max_len: usize,
        k: usize,
        exclude_seen: bool,
        because: usize,
        boost: Option<Tensor<2>>,
    ) -> crate::Result<Vec<Recommendation>> {
        if history.is_empty() {
            return Ok(Vec::new());
        }
        fn backend(e: impl std::fmt::Debug) -> crate::Error {
            crate::Error::Backend(format!("{e:?}"))
        }
        let recent = reads.unwrap_or(&history[history.len().saturating_sub(max_len)..]);
        let p = self.pending(catalog, recent, boost);
        let scores: Vec<f32> = p
            .scores
            .into_data_async()
            .await
            .map_err(backend)?
            .try_to_vec::<f32>()
            .map_err(backend)?;
        let rankable = &scores[..catalog.items];
        let best = top_k(rankable, k, if exclude_seen { history } else { &[] });
        let sims: Vec<f32> = similarities(&p.items, &best, &p.distinct)
            .into_data_async()
            .await
            .map_err(backend)?
            .try_to_vec::<f32>()
            .map_err(backend)?;
        Ok(assemble(&scores, best, &sims, &p.distinct, because))
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
