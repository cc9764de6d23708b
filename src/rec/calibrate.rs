//! Calibrated re-ranking (Steck, "Calibrated Recommendations", RecSys 2018): the shown list's
//! facet mix (genres, categories) made to follow the visitor's history, traded against the
//! model's relevance with a weight λ. Native `eval`/`recommend` and the browser use this one
//! implementation.

use std::collections::BTreeMap;

/// How many of the model's best items calibration chooses from.
pub const CALIBRATION_POOL: usize = 100;

/// How many of the model's first items calibration keeps in place by default (chosen with λ on
/// ml-100k's validation users, reports/quality.md): the head of the list carries most of a
/// ranking metric's weight and the visitor's eye, and the rest of the list still follows the
/// history's mix.
pub const CALIBRATION_HEAD: usize = 5;

/// How much each older history event counts in the mix calibration follows, per later event
/// (1: every event alike, Steck's p(g|u)).
pub const CALIBRATION_DECAY: f64 = 1.0;

/// Calibrated re-ranking as the one recommend path applies it: the catalogue's facets and the
/// weight λ (0: the model's order).
#[derive(Debug, Clone, Copy)]
pub struct Calibration<'a> {
    /// Each catalogue row's facets (genres, categories).
    pub facets: &'a [Vec<String>],
    pub lambda: f64,
    /// The model's first `head` items stay in place ([`CALIBRATION_HEAD`]).
    pub head: usize,
    /// Each older event's weight in the history's mix, per later event ([`CALIBRATION_DECAY`]):
    /// below 1 the list follows what the visitor did last more than what they did long ago.
    pub decay: f64,
}

impl<'a> Calibration<'a> {
    /// Weight `lambda` over `facets`, the default head.
    pub fn new(facets: &'a [Vec<String>], lambda: f64) -> Self {
        Self {
            facets,
            lambda,
            head: CALIBRATION_HEAD,
            decay: CALIBRATION_DECAY,
        }
    }
}

impl Calibration<'_> {
    /// Whether it changes anything.
    pub fn active(&self) -> bool {
        self.lambda > 0.0 && !self.facets.is_empty()
    }

    /// `best` (rows, the model's order, ideally [`CALIBRATION_POOL`] of them; `scores` by row)
    /// re-ranked by [`calibrated`] towards the facet mix of `history` (catalogue rows; rows
    /// past the catalogue, search queries, have no facets): the first `k`.
    pub fn rerank(
        &self,
        best: &[usize],
        scores: &[f32],
        history: &[usize],
        k: usize,
    ) -> Vec<usize> {
        if !self.active() {
            return best.iter().copied().take(k).collect();
        }
        let rows: Vec<usize> = history
            .iter()
            .copied()
            .filter(|&h| h < self.facets.len())
            .collect();
        let target = facet_mix_decayed(&rows, self.facets, self.decay);
        let scored: Vec<(usize, f32)> = best.iter().map(|&r| (r, scores[r])).collect();
        calibrated(&scored, self.facets, &target, self.lambda, self.head, k)
    }
}

/// The facet distribution of `items` (Steck's p(g|u)): each item's weight split evenly over its
/// facets; items without facets are left out.
pub fn facet_mix(items: &[usize], facets: &[Vec<String>]) -> BTreeMap<String, f64> {
    facet_mix_decayed(items, facets, 1.0)
}

/// [`facet_mix`] of `items` (oldest first) with each item weighted `decay^(later items)`.
pub fn facet_mix_decayed(
    items: &[usize],
    facets: &[Vec<String>],
    decay: f64,
) -> BTreeMap<String, f64> {
    let mut mix = BTreeMap::new();
    let mut total = 0.0;
    let mut weight = 1.0;
    for &i in items.iter().rev() {
        let fs = &facets[i];
        for f in fs {
            *mix.entry(f.clone()).or_insert(0.0) += weight / fs.len() as f64;
        }
        if !fs.is_empty() {
            total += weight;
        }
        weight *= decay;
    }
    if total > 0.0 {
        mix.values_mut().for_each(|v| *v /= total);
    }
    mix
}

/// Steck's calibrated re-ranking (RecSys 2018, greedy form): from `candidates` (rows with the
/// model's scores, best first), the `k` rows that maximise `(1 − λ)·Σ relevance − λ·C_KL(target
/// ‖ mix(list))`, chosen one at a time. Relevance is the model's probability of the item among
/// the candidates (softmax of the scores); `target` is the facet mix the list should follow (the
/// history's, [`facet_mix`]). The first `head` places keep the model's order (they count in the
/// list's mix); λ = 0 keeps it everywhere.
pub fn calibrated(
    candidates: &[(usize, f32)],
    facets: &[Vec<String>],
    target: &BTreeMap<String, f64>,
    lambda: f64,
    head: usize,
    k: usize,
) -> Vec<usize> {
    let hi = candidates
        .iter()
        .fold(f32::NEG_INFINITY, |hi, &(_, s)| hi.max(s));
    // The model's probability of each candidate among them (a softmax of its scores, which are
    // logits: cos/τ), as Steck's relevance is a predicted probability. (Scores scaled to [0, 1]
    // instead gave a worse trade-off on ml-100k's validation users: reports/quality.md.)
    let z: f64 = candidates
        .iter()
        .map(|&(_, s)| f64::from(s - hi).exp())
        .sum();
    let relevance = |s: f32| f64::from(s - hi).exp() / z;
    const ALPHA: f64 = 0.01;
    // C_KL of the list so far (`mix`: facet weights, each item's split over its facets; `n`
    // items with facets) with one more item of facets `fs`, without copying `mix`.
    let ckl_with = |mix: &BTreeMap<String, f64>, n: f64, fs: &[String]| -> f64 {
        let share = 1.0 / fs.len().max(1) as f64;
        let n = n + if fs.is_empty() { 0.0 } else { 1.0 };
        target
            .iter()
            .filter(|(_, p)| **p > 0.0)
            .map(|(g, p)| {
                let added = fs.iter().filter(|f| *f == g).count() as f64 * share;
                let q = (mix.get(g).copied().unwrap_or(0.0) + added) / n.max(1.0);
                p * (p / ((1.0 - ALPHA) * q + ALPHA * p)).ln()
            })
            .sum()
    };
    let mut chosen: Vec<usize> = Vec::with_capacity(k);
    let mut taken = vec![false; candidates.len()];
    let mut mix: BTreeMap<String, f64> = BTreeMap::new();
    let mut counted = 0.0;
    let mut gain = 0.0;
    for _ in 0..k.min(candidates.len()) {
        let mut best: Option<(usize, f64)> = None;
        let lambda = if chosen.len() < head { 0.0 } else { lambda };
        for (c, &(row, score)) in candidates.iter().enumerate() {
            if taken[c] {
                continue;
            }
            let objective = (1.0 - lambda) * (gain + relevance(score))
                - lambda * ckl_with(&mix, counted, &facets[row]);
            if best.is_none_or(|(_, b)| objective > b) {
                best = Some((c, objective));
            }
        }
        let Some((c, _)) = best else { break };
        taken[c] = true;
        let (row, score) = candidates[c];
        let fs = &facets[row];
        for f in fs {
            *mix.entry(f.clone()).or_insert(0.0) += 1.0 / fs.len() as f64;
        }
        if !fs.is_empty() {
            counted += 1.0;
        }
        gain += relevance(score);
        chosen.push(row);
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rerank_keeps_the_model_order_at_zero_and_ignores_query_rows() {
        let facets: Vec<Vec<String>> = (0..6)
            .map(|i| vec![if i < 3 { "a" } else { "b" }.to_string()])
            .collect();
        let best = [3, 4, 5, 0, 1];
        let scores = [2.0, 1.0, 0.0, 5.0, 4.0, 3.0];
        let off = Calibration {
            facets: &facets,
            lambda: 0.0,
            head: 0,
            decay: 1.0,
        };
        assert_eq!(off.rerank(&best, &scores, &[2], 2), [3, 4]);
        // A history of "a" (and a query row past the catalogue, ignored): "a" items come up.
        let on = Calibration {
            facets: &facets,
            lambda: 0.9,
            head: 0,
            decay: 1.0,
        };
        let list = on.rerank(&best, &scores, &[2, 99], 2);
        assert!(list.iter().all(|&r| r < 3), "{list:?}");
        // With a head of 1, the model's first stays first; the rest follows the mix.
        let headed = Calibration { head: 1, ..on }.rerank(&best, &scores, &[2, 99], 3);
        assert_eq!(headed[0], 3);
        assert!(headed[1..].iter().all(|&r| r < 3), "{headed:?}");
    }

    #[test]
    fn calibration_follows_the_target_mix_as_lambda_grows() {
        // Rows 0–5 "a", 6–11 "b"; the model prefers every "b" row.
        let facets: Vec<Vec<String>> = (0..12)
            .map(|i| vec![if i < 6 { "a" } else { "b" }.to_string()])
            .collect();
        let candidates: Vec<(usize, f32)> = (6..12)
            .chain(0..6)
            .enumerate()
            .map(|(rank, row)| (row, 10.0 - rank as f32))
            .collect();
        let target = facet_mix(&[0, 1, 6, 7], &facets); // half "a", half "b"
        let plain = calibrated(&candidates, &facets, &target, 0.0, 0, 4);
        assert_eq!(plain, vec![6, 7, 8, 9], "λ = 0 keeps the model's order");
        let even = calibrated(&candidates, &facets, &target, 0.9, 0, 4);
        let a = even.iter().filter(|&&r| r < 6).count();
        assert_eq!(a, 2, "{even:?}");
        // The best "b" and the best "a" lead.
        assert_eq!(even[0], 6);
        assert!(even.contains(&0));
    }

    #[test]
    fn a_decay_below_one_weights_the_latest_events_most() {
        let facets: Vec<Vec<String>> = vec![vec!["a".into()], vec!["b".into()]];
        // Three "a" events, then one "b" (oldest first).
        let history = [0, 0, 0, 1];
        let even = facet_mix_decayed(&history, &facets, 1.0);
        assert_eq!(even, facet_mix(&history, &facets));
        assert!((even["b"] - 0.25).abs() < 1e-12);
        // Weights 1 (the "b"), 0.5, 0.25, 0.125: "b" leads.
        let recent = facet_mix_decayed(&history, &facets, 0.5);
        assert!((recent["b"] - 1.0 / 1.875).abs() < 1e-12, "{recent:?}");
        assert!((recent.values().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    /// Bad input is a plain answer: a history without facets (or empty, or only rows past the
    /// catalogue) has no mix to follow, so the model's order stands; items without facets and
    /// facet names the history never had are ranked, not refused.
    #[test]
    fn no_mix_to_follow_keeps_the_model_order() {
        let facets: Vec<Vec<String>> = vec![
            vec![],
            vec!["a".into()],
            vec!["never-seen".into()],
            vec![],
            vec!["a".into(), "b".into()],
        ];
        let best = [2, 0, 4, 1, 3];
        let scores = [4.0, 1.0, 5.0, 0.5, 3.0];
        let c = Calibration {
            head: 0,
            ..Calibration::new(&facets, 0.9)
        };
        for history in [&[][..], &[0, 3][..], &[99][..]] {
            assert_eq!(
                c.rerank(&best, &scores, history, 4),
                [2, 0, 4, 1],
                "{history:?}"
            );
        }
        // A history of "a": the unseen facet and facet-less items still rank, below "a" ones.
        let list = c.rerank(&best, &scores, &[1], 5);
        assert_eq!(list.len(), 5);
        assert!(list.contains(&2) && list.contains(&0));
    }
}
