//! Full-ranking metrics over all items (docs/design.md, Evaluation protocol): Recall@K, NDCG@K, MRR@K, with or without
//! masking the items already in the history.

use std::collections::BTreeMap;

use crate::data::Example;

/// The cut-offs reported: @10 and @20 (MRR at 10 only).
pub const CUTOFFS: [usize; 2] = [10, 20];

/// 0-based rank of `target` among all items by descending score. Ties are broken by item index
/// (the lower index ranks first), so the figure does not depend on a sort's whims. With
/// `masked`, history items other than the target are left out of the ranking. A target whose
/// score is not finite (a diverged model) is unranked (`usize::MAX`, past every cut-off
/// whatever the catalogue's size), and other items' non-finite scores never beat a finite
/// target: NaN is never read as a perfect rank.
pub fn rank_of(scores: &[f32], target: usize, masked: Option<&[usize]>) -> usize {
    let t = scores[target];
    if !t.is_finite() {
        return usize::MAX;
    }
    let mut rank = scores
        .iter()
        .enumerate()
        .filter(|&(i, &s)| s.is_finite() && (s > t || (s == t && i < target)))
        .count();
    if let Some(history) = masked {
        let mut seen: Vec<usize> = history.iter().copied().filter(|&i| i != target).collect();
        seen.sort_unstable();
        seen.dedup();
        rank -= seen
            .iter()
            .filter(|&&i| {
                let s = scores[i];
                s.is_finite() && (s > t || (s == t && i < target))
            })
            .count();
    }
    rank
}

/// Averages of the metrics over evaluated users.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    sums: BTreeMap<String, f64>,
    users: usize,
}

impl Metrics {
    /// Adds one user's target rank.
    /// Adds `value` to the sum of `key` (an extra mean over the same users; call after
    /// [`Metrics::add`]).
    pub fn add_extra(&mut self, key: &str, value: f64) {
        *self.sums.entry(key.to_string()).or_default() += value;
    }

    pub fn add(&mut self, rank: usize) {
        self.users += 1;
        for k in CUTOFFS {
            let hit = rank < k;
            *self.sums.entry(format!("recall@{k}")).or_default() += f64::from(u8::from(hit));
            *self.sums.entry(format!("ndcg@{k}")).or_default() += if hit {
                1.0 / ((rank + 2) as f64).log2()
            } else {
                0.0
            };
        }
        *self.sums.entry("mrr@10".into()).or_default() += if rank < 10 {
            1.0 / (rank + 1) as f64
        } else {
            0.0
        };
    }

    /// Number of users added.
    pub fn users(&self) -> usize {
        self.users
    }

    /// Metric name → mean over users.
    /// Every metric's mean over the users added (all of them 0 when none was).
    pub fn means(&self) -> BTreeMap<String, f64> {
        let names = CUTOFFS
            .iter()
            .flat_map(|k| [format!("recall@{k}"), format!("ndcg@{k}")])
            .chain(["mrr@10".to_string()])
            .chain(
                self.sums
                    .keys()
                    .filter(|k| k.starts_with("ann_"))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
        names
            .map(|k| {
                let sum = self.sums.get(&k).copied().unwrap_or(0.0);
                (k, sum / self.users.max(1) as f64)
            })
            .collect()
    }
}

/// Evaluates `score` (all-item scores for an example) on `examples`: unmasked, and with every
/// item the user had before the target masked.
pub fn evaluate(
    examples: &[Example],
    mut score: impl FnMut(&Example) -> Vec<f32>,
) -> (Metrics, Metrics) {
    let mut plain = Metrics::default();
    let mut masked = Metrics::default();
    for ex in examples {
        let scores = score(ex);
        plain.add(rank_of(&scores, ex.target, None));
        masked.add(rank_of(&scores, ex.target, Some(&ex.seen)));
    }
    (plain, masked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_ties_and_masking() {
        let scores = [0.5, 0.9, 0.5, 0.1, 0.7];
        assert_eq!(rank_of(&scores, 1, None), 0);
        assert_eq!(rank_of(&scores, 4, None), 1);
        assert_eq!(rank_of(&scores, 0, None), 2);
        assert_eq!(rank_of(&scores, 2, None), 3); // tie with item 0, which has the lower index
        assert_eq!(rank_of(&scores, 2, Some(&[1, 0, 2, 1])), 1);
        assert_eq!(rank_of(&scores, 3, Some(&[3])), 4);
    }

    /// No user: every metric is there, at 0 (no lookup of a missing name can panic).
    #[test]
    fn no_users_give_zeros_for_every_metric() {
        let v = Metrics::default().means();
        assert_eq!(v.len(), 5);
        assert!(v.values().all(|x| *x == 0.0));
        assert_eq!(v["ndcg@10"], 0.0);
    }

    /// A diverged model's NaN scores never read as a perfect rank: a NaN (or infinite) target
    /// ranks past every cut-off, masked or not, and NaN rivals do not beat a finite target.
    #[test]
    fn non_finite_scores_rank_last() {
        let nan = [f32::NAN; 5];
        assert_eq!(rank_of(&nan, 0, None), usize::MAX);
        assert_eq!(rank_of(&nan, 2, Some(&[0, 1])), usize::MAX);
        assert_eq!(rank_of(&[0.1, f32::INFINITY, 0.3], 1, None), usize::MAX);
        assert_eq!(rank_of(&[f32::NAN, 0.2, f32::NAN, 0.1], 3, None), 1);
        let mut m = Metrics::default();
        m.add(rank_of(&nan, 0, None));
        assert_eq!(m.means()["ndcg@10"], 0.0);
        assert_eq!(m.means()["recall@20"], 0.0);
    }

    #[test]
    fn metric_values() {
        let mut m = Metrics::default();
        m.add(0);
        m.add(2);
        m.add(15);
        m.add(40);
        let v = m.means();
        assert!((v["recall@10"] - 0.5).abs() < 1e-12);
        assert!((v["recall@20"] - 0.75).abs() < 1e-12);
        assert!((v["ndcg@10"] - (1.0 + 0.5) / 4.0).abs() < 1e-12);
        assert!((v["ndcg@20"] - (1.0 + 0.5 + 1.0 / 17f64.log2()) / 4.0).abs() < 1e-12);
        assert!((v["mrr@10"] - (1.0 + 1.0 / 3.0) / 4.0).abs() < 1e-12);
    }
}
