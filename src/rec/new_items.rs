//! Items the model never trained on, placed among the trained ones: [`NeighbourMix`] mixes a
//! new item's vector with those of its nearest trained items by text, and [`NewItems`] is what
//! a bundle records of them (the mix, the ids it held out). The recommend path applies the mix
//! when it installs a catalogue from its texts ([`crate::rec::RankingState::from_rows_with_new`]);
//! `eval::new_items` holds the other policies that were measured and the grids validation
//! chooses from (reports/coldstart.md).

use std::collections::HashSet;

use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;
use serde::{Deserialize, Serialize};

use crate::rec::ItemVectors;
use crate::rec::model::l2_rows;

/// A new item placed among the trained ones: its item vector mixed with those of the trained
/// items whose texts are nearest to its text. The trained items' vectors are where training
/// put what it learnt of them; a new item's own vector is the tower's guess from its text
/// alone, which the softmax never placed against the trained ones. The mix is a cold-start
/// item's vector as the mean of its warm content neighbours' (a common answer in the
/// cold-start literature), with a share of its own kept.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NeighbourMix {
    /// The share of the item's own (unit) vector; the rest is its neighbours' mean. 1: as is.
    pub own: f32,
    /// How many nearest trained items (by text cosine) are averaged.
    pub neighbours: usize,
}

impl NeighbourMix {
    /// No mix: new items keep the tower's vectors.
    pub const NONE: Self = Self {
        own: 1.0,
        neighbours: 0,
    };
}

impl Default for NeighbourMix {
    /// Own share 0.5 of 3 neighbours: chosen on ml-100k's validation users over five holdout
    /// seeds (`./build.sh report-coldstart`, reports/coldstart.md).
    fn default() -> Self {
        Self {
            own: 0.5,
            neighbours: 3,
        }
    }
}

impl NeighbourMix {
    /// Whether the mix changes any vector.
    pub fn is_none(&self) -> bool {
        self.own >= 1.0 || self.neighbours == 0
    }

    /// Each row that `is_new` marks, with its `neighbours` nearest rows that are not new by
    /// `text` (unit rows, `dim` wide, row-major; ties: the lower row). Empty when the mix is
    /// none or no row is trained.
    pub fn neighbours_of(
        &self,
        text: &[f32],
        dim: usize,
        is_new: &[bool],
    ) -> Vec<(usize, Vec<usize>)> {
        let warm: Vec<usize> = (0..is_new.len()).filter(|&i| !is_new[i]).collect();
        if self.is_none() || warm.is_empty() || dim == 0 || text.len() < is_new.len() * dim {
            return Vec::new();
        }
        let row = |i: usize| &text[i * dim..(i + 1) * dim];
        (0..is_new.len())
            .filter(|&i| is_new[i])
            .map(|i| {
                let t = row(i);
                let mut near: Vec<(f32, usize)> = warm
                    .iter()
                    .map(|&j| (t.iter().zip(row(j)).map(|(a, b)| a * b).sum::<f32>(), j))
                    .collect();
                let k = self.neighbours.min(near.len());
                let nearest_first =
                    |a: &(f32, usize), b: &(f32, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
                near.select_nth_unstable_by(k - 1, nearest_first);
                near.truncate(k);
                near.sort_by(nearest_first);
                (i, near.into_iter().map(|(_, j)| j).collect())
            })
            .collect()
    }

    /// `items` with each new row (`is_new`) replaced by its mix: `own ·` its unit vector `+
    /// (1 − own) ·` the mean unit vector of its nearest trained rows by `text` (unit rows,
    /// `dim` wide), scaled back to the row's own length. On the items' device, no readback:
    /// the neighbours are found on the CPU from the text rows, the rows gathered and replaced
    /// there.
    pub fn apply(
        &self,
        items: ItemVectors,
        text: &[f32],
        dim: usize,
        is_new: &[bool],
    ) -> ItemVectors {
        let plan = self.neighbours_of(text, dim, is_new);
        if plan.is_empty() {
            return items;
        }
        let device = items.raw.device();
        let index = |rows: Vec<i64>| {
            let n = rows.len();
            Tensor::<1, Int>::from_data(TensorData::new(rows, [n]), &device)
        };
        let new = index(plan.iter().map(|(i, _)| *i as i64).collect());
        let own_raw = items.raw.clone().select(0, new.clone());
        let own_unit = items.unit.clone().select(0, new.clone());
        let k = plan[0].1.len();
        let mut mean = own_unit.zeros_like();
        for slot in 0..k {
            let rows = index(plan.iter().map(|(_, n)| n[slot] as i64).collect());
            mean = mean + items.unit.clone().select(0, rows);
        }
        let mean = mean.div_scalar(k as f32);
        let length = own_raw.clone().square().sum_dim(1).sqrt();
        let mixed =
            l2_rows(own_unit.mul_scalar(self.own) + mean.mul_scalar(1.0 - self.own)) * length;
        let raw = items
            .raw
            .select_assign(0, new, mixed - own_raw, IndexingUpdateOp::Add);
        ItemVectors {
            unit: l2_rows(raw.clone()),
            raw,
            items: items.items,
        }
    }
}

/// A new item's score lifted by how popular it is by the catalogue's own `popularity` figures
/// (the shop's counts, which keep coming after training): a new item's score comes from its
/// text alone, which cannot say how often it is chosen, while the trained items' scores carry
/// what training counted. The lift is `offset + weight · q` cosines, `q` the item's log
/// popularity as a share of the catalogue's most popular item's, `ln(1 + p) / ln(1 + p_max)`
/// (0 for none, 1 for the most popular): a logit linear in the log count, as a softmax over
/// items learns popularity, and free of the unit the shop counts in. Measured, chosen on
/// validation, in reports/coldstart.md.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NewItemPopularity {
    /// Cosine added to every new item.
    pub offset: f32,
    /// Cosine added per unit of log popularity share.
    pub weight: f32,
}

impl Default for NewItemPopularity {
    /// Offset −0.15, weight 0.2: chosen on ml-100k's validation users over five holdout seeds,
    /// over the default mix (`./build.sh report-coldstart`, reports/coldstart.md). A new item as
    /// popular as the catalogue's most popular gains 0.05 cosine, one at q = 0.75 (about 100
    /// against 500) none, and one without a figure loses 0.15.
    fn default() -> Self {
        Self {
            offset: -0.15,
            weight: 0.2,
        }
    }
}

impl NewItemPopularity {
    /// No lift.
    pub const NONE: Self = Self {
        offset: 0.0,
        weight: 0.0,
    };

    /// Whether the lift changes any score.
    pub fn is_none(&self) -> bool {
        self.offset == 0.0 && self.weight == 0.0
    }

    /// Each of the catalogue's rows' score lift (`(offset + weight · q) / temperature` on the
    /// rows `is_new` marks, else 0); `popularity` is the catalogue's figure per row (missing,
    /// negative or not finite: none). `p_max`: the whole catalogue's largest figure when
    /// `popularity` holds only some of its items (a partitioned index's candidates); `None`:
    /// the largest of `popularity`.
    pub fn score_lifts(
        &self,
        popularity: &[f32],
        is_new: &[bool],
        temperature: f64,
        p_max: Option<f32>,
    ) -> Vec<f32> {
        let shares = log_popularity_shares(popularity, is_new.len(), p_max);
        is_new
            .iter()
            .zip(shares)
            .map(|(&new, q)| {
                if new {
                    ((f64::from(self.offset) + f64::from(self.weight) * f64::from(q)) / temperature)
                        as f32
                } else {
                    0.0
                }
            })
            .collect()
    }
}

/// Each of `rows` rows' `ln(1 + p) / ln(1 + p_max)` over the catalogue's figures `popularity`
/// (missing, negative or not finite: 0), `p_max` the largest of them unless given (a share
/// is at most 1); all 0 when no row has any popularity.
pub fn log_popularity_shares(popularity: &[f32], rows: usize, p_max: Option<f32>) -> Vec<f32> {
    let figure = |i: usize| {
        popularity
            .get(i)
            .copied()
            .filter(|p| p.is_finite())
            .unwrap_or(0.0)
            .max(0.0)
    };
    let largest = (0..rows).map(figure).fold(0.0f32, f32::max);
    let top = p_max
        .filter(|p| p.is_finite())
        .map_or(largest, |p| p.max(largest))
        .ln_1p();
    (0..rows)
        .map(|i| {
            if top > 0.0 {
                figure(i).ln_1p() / top
            } else {
                0.0
            }
        })
        .collect()
}

/// What a bundle knows of the items its recommender never trained on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewItems {
    /// How a new item's vector is mixed with its trained neighbours' (default: the mix chosen
    /// on ml-100k's validation).
    #[serde(default)]
    pub mix: NeighbourMix,
    /// How a new item is lifted by the catalogue's `popularity` figures (default: the lift
    /// chosen on ml-100k's validation).
    #[serde(default)]
    pub popularity: NewItemPopularity,
    /// Ids of `items.json` that training never saw (held out): new like any id outside it.
    #[serde(default)]
    pub untrained: Vec<String>,
}

impl NewItems {
    /// Which of a catalogue's `ids` are new: outside `trained` (the bundle's `items.json`), or
    /// among the untrained ones.
    pub fn rows_of<S: AsRef<str>>(&self, ids: &[S], trained: &[String]) -> Vec<bool> {
        let untrained: HashSet<&str> = self.untrained.iter().map(String::as_str).collect();
        let trained: HashSet<&str> = trained
            .iter()
            .map(String::as_str)
            .filter(|id| !untrained.contains(id))
            .collect();
        ids.iter()
            .map(|id| !trained.contains(id.as_ref()))
            .collect()
    }
}

impl crate::rec::RecommenderConfig {
    /// Which of a catalogue's `ids` this recommender never trained on ([`NewItems::rows_of`]
    /// against `trained`, its bundle's `items.json`); none for a model with ID rows, which
    /// ranks only its own items.
    pub fn new_item_rows<S: AsRef<str>>(&self, ids: &[S], trained: &[String]) -> Vec<bool> {
        if self.items.mode == crate::rec::ItemMode::Inductive {
            self.new_items.rows_of(ids, trained)
        } else {
            Vec::new()
        }
    }

    /// The ids of [`Self::new_item_rows`], in the catalogue's order: what a "new arrivals"
    /// shelf ranks (`<ranklet-shelf only="new">`).
    pub fn new_item_ids<S: AsRef<str>>(&self, ids: &[S], trained: &[String]) -> Vec<String> {
        ids.iter()
            .zip(self.new_item_rows(ids, trained))
            .filter(|(_, new)| *new)
            .map(|(id, _)| id.as_ref().to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mixed_new_row_moves_towards_its_text_neighbours_only() {
        let device = Device::default();
        // Rows 0 and 1 trained, row 2 new; row 2's text is row 1's.
        let raw = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f32, 0.0, 0.0, 2.0, 3.0, 3.0], [3, 2]),
            &device,
        );
        let items = ItemVectors {
            unit: l2_rows(raw.clone()),
            raw,
            items: 3,
        };
        let text = [1.0, 0.0, 0.0, 1.0, 0.0, 1.0];
        let is_new = [false, false, true];
        let rows = |v: &ItemVectors| v.raw.clone().into_data().try_to_vec::<f32>().unwrap();
        let before = rows(&items);
        let all = NeighbourMix {
            own: 0.0,
            neighbours: 1,
        };
        assert_eq!(all.neighbours_of(&text, 2, &is_new), vec![(2, vec![1])]);
        let out = rows(&all.apply(items.clone(), &text, 2, &is_new));
        assert_eq!(&out[..4], &before[..4], "trained rows unchanged");
        // All neighbour: row 1's direction at row 2's own length (3·√2).
        assert!(
            out[4].abs() < 1e-5 && (out[5] - 18f32.sqrt()).abs() < 1e-4,
            "{out:?}"
        );
        // Half and half: between its own direction and row 1's.
        let half = rows(&NeighbourMix { own: 0.5, ..all }.apply(items.clone(), &text, 2, &is_new));
        assert!(half[5] > half[4] && half[4] > 0.0, "{half:?}");
        // A catalogue with no trained item (another shop's) has no neighbours: unmixed.
        assert_eq!(
            rows(&all.apply(items.clone(), &text, 2, &[true; 3])),
            before
        );
        assert_eq!(
            rows(&NeighbourMix::NONE.apply(items, &text, 2, &is_new)),
            before
        );
    }

    /// The share is the log count over the catalogue's largest; the lift touches only new
    /// rows, and a catalogue without figures lifts every new row by the offset alone.
    #[test]
    fn popularity_lifts_new_rows_by_their_log_share() {
        let popularity = [99.0, 9.0, 0.0, f32::NAN, -3.0];
        let q = log_popularity_shares(&popularity, 6, None);
        let want = [1.0, 0.5, 0.0, 0.0, 0.0, 0.0];
        for (got, want) in q.iter().zip(want) {
            assert!((got - want).abs() < 1e-6, "{q:?}");
        }
        let is_new = [false, true, true, true, false, true];
        let lift = NewItemPopularity {
            offset: -0.1,
            weight: 0.4,
        };
        let got = lift.score_lifts(&popularity, &is_new, 0.5, None);
        let want = [0.0, 0.2, -0.2, -0.2, 0.0, -0.2];
        for (got, want) in got.iter().zip(want) {
            assert!((got - want).abs() < 1e-6, "{got:?}");
        }
        // Candidates of a larger catalogue: the catalogue's largest figure sets the scale.
        let part = log_popularity_shares(&popularity[1..2], 1, Some(99.0));
        assert!((part[0] - 0.5).abs() < 1e-6, "{part:?}");
        let blind = lift.score_lifts(&[], &is_new, 1.0, None);
        assert_eq!(blind, vec![0.0, -0.1, -0.1, -0.1, 0.0, -0.1]);
        assert!(NewItemPopularity::NONE.is_none());
    }

    #[test]
    fn new_rows_are_ids_outside_the_trained_ones_or_untrained() {
        let trained = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let new = NewItems {
            untrained: vec!["c".into()],
            ..NewItems::default()
        };
        assert_eq!(
            new.rows_of(&["a", "c", "z", "b"], &trained),
            vec![false, true, true, false]
        );
    }

    /// A "new arrivals" shelf ranks the ids an inductive model never trained on; a model with
    /// ID rows ranks only its own items, so none is new to it.
    #[test]
    fn new_item_ids_are_the_new_rows_ids_in_catalogue_order() {
        use crate::fixtures::small_config;
        use crate::rec::ItemMode;
        let trained = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let mut config = small_config(ItemMode::Inductive, 3, 8, 16, (0.0, 0.0), 8);
        config.new_items.untrained = vec!["c".into()];
        assert_eq!(
            config.new_item_ids(&["z", "a", "c", "y", "b"], &trained),
            ["z", "c", "y"]
        );
        assert!(config.new_item_ids(&["a", "b"], &trained).is_empty());
        let id_model = small_config(ItemMode::Transductive, 3, 8, 16, (0.0, 0.0), 8);
        assert!(id_model.new_item_ids(&["z", "a"], &trained).is_empty());
    }
}
