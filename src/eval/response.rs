//! How the shelf answers what the visitor just did (issue 23), measured on item facets (genres,
//! categories):
//! - [`facet_response`]: after a history of three items of one facet, the share of the top-k that
//!   carries that facet, per facet and averaged over facets;
//! - [`miscalibration`]: Steck's C_KL ("Calibrated Recommendations", RecSys 2018) between the
//!   facet mix of a history and the facet mix of the list recommended after it.
//!
//! Both take the ranking as a closure (history rows, k → top-k rows, history excluded), so the
//! model, a re-ranking of it and the popularity baseline are measured the same way.

use std::collections::BTreeMap;

use crate::error::Result;
pub use crate::rec::calibrate::facet_mix;
use crate::rng::SplitMix;

/// Moves `take` entries of `pool`, drawn uniformly without replacement, to its front (a partial
/// Fisher–Yates shuffle).
fn draw_prefix(rng: &mut SplitMix, pool: &mut [usize], take: usize) {
    for i in 0..take.min(pool.len()) {
        let left = pool.len() - i;
        let j = i + (rng.next_f32() * left as f32) as usize % left;
        pool.swap(i, j);
    }
}

/// The facet response of one ranking.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FacetResponse {
    /// Per facet: the mean share of the top-k carrying it, over the draws.
    pub per_facet: BTreeMap<String, f64>,
    /// The mean of `per_facet` (each facet weighs the same).
    pub mean: f64,
    /// Histories drawn per facet, items per history, shelf size.
    pub draws: usize,
    pub history: usize,
    pub k: usize,
    /// Facets with at least this many items are measured.
    pub min_items: usize,
}

/// For every facet with at least `min_items` items: `draws` histories of `history` distinct items
/// drawn (seeded) from that facet's items, each ranked by `rank(history, k)`; the share of the
/// top-k whose facets include it.
pub fn facet_response(
    rank: impl Fn(&[usize], usize) -> Result<Vec<usize>>,
    facets: &[Vec<String>],
    min_items: usize,
    draws: usize,
    history: usize,
    k: usize,
    seed: u64,
) -> Result<FacetResponse> {
    let mut members: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (item, fs) in facets.iter().enumerate() {
        for f in fs {
            members.entry(f.as_str()).or_default().push(item);
        }
    }
    let mut rng = SplitMix(seed);
    let mut per_facet = BTreeMap::new();
    for (facet, items) in members
        .iter()
        .filter(|(_, items)| items.len() >= min_items.max(history))
    {
        let mut share = 0.0;
        for _ in 0..draws {
            // `history` distinct items of the facet.
            let mut pool = items.clone();
            draw_prefix(&mut rng, &mut pool, history);
            let shelf = rank(&pool[..history], k)?;
            let hits = shelf
                .iter()
                .filter(|&&r| facets[r].iter().any(|f| f == facet))
                .count();
            share += hits as f64 / k as f64;
        }
        per_facet.insert(facet.to_string(), share / draws.max(1) as f64);
    }
    // No facet with enough items: no figure (NaN, null in JSON), rather than a zero.
    let mean = if per_facet.is_empty() {
        f64::NAN
    } else {
        per_facet.values().sum::<f64>() / per_facet.len() as f64
    };
    Ok(FacetResponse {
        per_facet,
        mean,
        draws,
        history,
        k,
        min_items,
    })
}

/// Steck's C_KL: KL(p ‖ q̃) between the facet mix `p` of `history` and that of `shown`, with q̃ =
/// (1 − α)·q + α·p and α = 0.01 so that a facet missing from the list stays finite.
pub fn miscalibration(history: &[usize], shown: &[usize], facets: &[Vec<String>]) -> f64 {
    const ALPHA: f64 = 0.01;
    let p = facet_mix(history, facets);
    let q = facet_mix(shown, facets);
    p.iter()
        .filter(|(_, pg)| **pg > 0.0)
        .map(|(g, pg)| {
            let qg = (1.0 - ALPHA) * q.get(g).copied().unwrap_or(0.0) + ALPHA * pg;
            pg * (pg / qg).ln()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facets() -> Vec<Vec<String>> {
        // Items 0–5 "a", 6–11 "b", 12 both.
        let mut f: Vec<Vec<String>> = (0..12)
            .map(|i| vec![if i < 6 { "a" } else { "b" }.to_string()])
            .collect();
        f.push(vec!["a".into(), "b".into()]);
        f
    }

    #[test]
    fn a_ranking_that_follows_the_history_responds_fully_one_that_ignores_it_does_not() {
        let f = facets();
        // Follows: the unseen items of the facet every history item shares.
        let follow = |h: &[usize], k: usize| -> Result<Vec<usize>> {
            let g = f[h[0]]
                .iter()
                .find(|g| h.iter().all(|&i| f[i].contains(g)))
                .unwrap();
            Ok((0..f.len())
                .filter(|i| !h.contains(i) && f[*i].contains(g))
                .take(k)
                .collect())
        };
        let r = facet_response(follow, &f, 5, 4, 3, 3, 1).unwrap();
        assert_eq!(r.per_facet.len(), 2);
        assert!(r.mean > 0.99, "{r:?}");
        // Ignores: always items 6, 7, 8 ("b").
        let fixed = |_: &[usize], _: usize| -> Result<Vec<usize>> { Ok(vec![6, 7, 8]) };
        let r = facet_response(fixed, &f, 5, 4, 3, 3, 1).unwrap();
        assert_eq!(r.per_facet["a"], 0.0);
        assert_eq!(r.per_facet["b"], 1.0);
        assert!((r.mean - 0.5).abs() < 1e-12);
    }

    #[test]
    fn the_deletion_test_tells_a_faithful_reason_from_a_random_one() {
        // A ranking that follows only the newest history item: item h+100 first, then the rest.
        let rank_of = |h: &[usize], _seen: &[usize], item: usize| -> Result<usize> {
            Ok(if h.last().map(|&l| l + 100) == Some(item) {
                0
            } else {
                50
            })
        };
        let histories: Vec<Vec<usize>> = (0..20).map(|u| (u..u + 10).collect()).collect();
        let faithful = |h: &[usize]| -> Result<Option<(usize, Vec<usize>)>> {
            Ok(Some((h[h.len() - 1] + 100, vec![h[h.len() - 1]])))
        };
        let unfaithful = |h: &[usize]| -> Result<Option<(usize, Vec<usize>)>> {
            Ok(Some((h[h.len() - 1] + 100, vec![h[0]])))
        };
        let good = deletion_test(faithful, rank_of, &histories, 10, 5, 3).unwrap();
        let bad = deletion_test(unfaithful, rank_of, &histories, 10, 5, 3).unwrap();
        assert_eq!(good.rank_without_because, 50.0);
        assert!(good.ratio > 5.0, "{good:?}");
        assert_eq!(bad.rank_without_because, 0.0);
        assert!(bad.ratio < 1.0, "{bad:?}");
    }

    #[test]
    fn miscalibration_is_zero_for_the_same_mix_and_grows_as_the_list_drifts() {
        let f = facets();
        let history = [0, 1, 6, 7];
        assert!(miscalibration(&history, &[2, 3, 8, 9], &f).abs() < 1e-9);
        let some = miscalibration(&history, &[2, 8, 9, 10], &f);
        let all_b = miscalibration(&history, &[8, 9, 10, 11], &f);
        assert!(0.0 < some && some < all_b, "{some} {all_b}");
        // An item of two facets counts half to each.
        let mix = facet_mix(&[12], &f);
        assert_eq!(mix["a"], 0.5);
    }
}

/// The deletion test of explanations (issue 23): for each history, the ranking's first item
/// and the history rows `explain` gives as its reason; the rank that item falls to when every
/// event of those rows is removed, against removing as many events drawn (seeded) from the
/// newest `window` events (the ones the model reads). A faithful reason moves its item further.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeletionTest {
    /// Mean 0-based rank of the first item after its reasons' events are removed.
    pub rank_without_because: f64,
    /// The same after removing as many random read events (mean over the draws).
    pub rank_without_random: f64,
    /// `rank_without_because / rank_without_random` (the issue asks for ≥ 2).
    pub ratio: f64,
    pub histories: usize,
    pub draws: usize,
}

/// See [`DeletionTest`]. `explain(history)` → the first item and its reason rows (or `None`);
/// `rank_of(history, excluded, item)` → the item's 0-based rank after `history` among the items
/// not in `excluded` (always the whole original history: removed events' items stay seen, so a
/// reason item does not simply take its item's place).
pub fn deletion_test(
    explain: impl Fn(&[usize]) -> Result<Option<(usize, Vec<usize>)>>,
    rank_of: impl Fn(&[usize], &[usize], usize) -> Result<usize>,
    histories: &[Vec<usize>],
    window: usize,
    draws: usize,
    seed: u64,
) -> Result<DeletionTest> {
    let mut rng = SplitMix(seed);
    let (mut because_sum, mut random_sum, mut n) = (0.0, 0.0, 0usize);
    for history in histories {
        let Some((item, reasons)) = explain(history)? else {
            continue;
        };
        let without: Vec<usize> = history
            .iter()
            .copied()
            .filter(|h| !reasons.contains(h))
            .collect();
        let removed = history.len() - without.len();
        if removed == 0 || without.is_empty() {
            continue;
        }
        because_sum += rank_of(&without, history, item)? as f64;
        let read = history.len().saturating_sub(window)..history.len();
        let mut random = 0.0;
        for _ in 0..draws {
            // `removed` distinct positions of the read window, none holding the item itself.
            let mut positions: Vec<usize> = read.clone().collect();
            let take = removed.min(positions.len());
            draw_prefix(&mut rng, &mut positions, take);
            let drop = &positions[..take];
            let kept: Vec<usize> = (0..history.len())
                .filter(|p| !drop.contains(p))
                .map(|p| history[p])
                .collect();
            random += rank_of(&kept, history, item)? as f64;
        }
        random_sum += random / draws.max(1) as f64;
        n += 1;
    }
    let (b, r) = (because_sum / n.max(1) as f64, random_sum / n.max(1) as f64);
    Ok(DeletionTest {
        rank_without_because: b,
        rank_without_random: r,
        ratio: if r > 0.0 { b / r } else { f64::NAN },
        histories: n,
        draws,
    })
}
