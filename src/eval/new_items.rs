//! What an item never seen in training is owed, as measured: the policies validation chooses
//! among (reports/coldstart.md), and the grids it chooses from.
//!
//! A new item is ranked from its text alone (the item tower), but the scores of the items the
//! model trained on carry what training taught it about them — above all how often they are
//! chosen — while a new item's cannot. Its cosine to the visitor's state then orders it well
//! among the other new items and badly against the trained ones. Three answers are measured,
//! each chosen on validation users whose target is a new item of their own
//! ([`crate::data::Split::hold_out_items`]):
//! - [`NewItemPrior`]: one cosine added to every new item's score;
//! - [`NewArrivals`]: `slots` places at the end of a shelf kept for the new items the model
//!   ranks best (as shops reserve places for new arrivals);
//! - [`crate::rec::NeighbourMix`] (the product's, in `rec`): a new item's vector mixed with its
//!   nearest trained items', over the grid [`NEIGHBOUR_OWN_SHARES`] × [`NEIGHBOUR_COUNTS`].
//!
//! On ml-100k validation chose the mix; the prior and the places are not applied.

use serde::{Deserialize, Serialize};

use crate::eval::metrics::rank_of;
use crate::rec::rank::top_k;

/// How much of the model's validation NDCG@10 (every validation user) a new-item policy may
/// cost at most: the same 0.98 × the calibrated re-ranking is held to.
pub const NEW_ITEM_TOLERANCE: f64 = 0.98;

/// The offsets tried when the prior is chosen on validation, in cosine units (a score is
/// `cosine / τ`, so an offset `β` adds `β / τ`). Negative ones too: validation may say that
/// new items are over-ranked.
pub const NEW_ITEM_OFFSETS: [f32; 16] = [
    -0.2, -0.15, -0.1, -0.075, -0.05, -0.025, 0.0, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4,
    0.6,
];

/// The score offset of items never seen in training.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct NewItemPrior {
    /// Added to a new item's cosine before the temperature divides it. Default 0 (no prior).
    pub offset: f32,
}

impl NewItemPrior {
    /// Each of `items` rows' score offset (`offset / temperature` on `new`'s rows, else 0).
    /// Rows of `new` outside the catalogue are ignored.
    pub fn score_offsets(&self, items: usize, new: &[usize], temperature: f64) -> Vec<f32> {
        let mut offsets = vec![0.0; items];
        let shift = (f64::from(self.offset) / temperature) as f32;
        for &i in new {
            if let Some(o) = offsets.get_mut(i) {
                *o = shift;
            }
        }
        offsets
    }

    /// Whether the prior changes any score.
    pub fn is_none(&self) -> bool {
        self.offset == 0.0
    }
}

/// The weights tried when [`crate::rec::NewItemPopularity`] is chosen on validation (cosine
/// per unit of log popularity share), each with every offset of [`NEW_ITEM_LIFT_OFFSETS`].
pub const NEW_ITEM_POPULARITY_WEIGHTS: [f32; 11] =
    [0.0, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 0.8];

/// The offsets tried with each weight of [`NEW_ITEM_POPULARITY_WEIGHTS`]: the prior's, and
/// further down, where a large weight needs them.
pub const NEW_ITEM_LIFT_OFFSETS: [f32; 20] = [
    -0.6, -0.4, -0.3, -0.2, -0.15, -0.1, -0.075, -0.05, -0.025, 0.0, 0.025, 0.05, 0.075, 0.1, 0.15,
    0.2, 0.3, 0.4, 0.6, 0.8,
];

/// The numbers of reserved places tried when [`NewArrivals`] is chosen on validation.
pub const NEW_ARRIVAL_SLOTS: [usize; 4] = [0, 1, 2, 3];

/// Places kept at the end of a shelf for the items never seen in training.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewArrivals {
    /// How many of a shelf's places show new items at least. Default 0 (the model's order).
    pub slots: usize,
}

impl NewArrivals {
    /// The shelf `top` (the model's best, best first) with its last places given to new items:
    /// when `top` holds fewer than `slots` new items, its last items that are not new give way
    /// to the first of `best_new` (new items, best first) that `top` lacks, which take the end
    /// of the shelf in their order. The shelf keeps its length; the places before stay in order.
    pub fn reserve(
        &self,
        top: &[usize],
        best_new: &[usize],
        is_new: impl Fn(usize) -> bool,
    ) -> Vec<usize> {
        let shown_new = top.iter().filter(|&&i| is_new(i)).count();
        let wanted = self.slots.min(top.len()).saturating_sub(shown_new);
        let extra: Vec<usize> = best_new
            .iter()
            .copied()
            .filter(|i| !top.contains(i))
            .take(wanted)
            .collect();
        // Drop the last `extra.len()` items that are not new, keep the rest in order.
        let mut drop = extra.len();
        let mut kept: Vec<usize> = Vec::with_capacity(top.len());
        for &i in top.iter().rev() {
            if drop > 0 && !is_new(i) {
                drop -= 1;
            } else {
                kept.push(i);
            }
        }
        kept.reverse();
        kept.extend(extra);
        kept
    }
}

/// The neighbour mixes tried when one is chosen on validation: every `(own, neighbours)` of
/// these shares and counts; own 1 leaves the new items' vectors as the tower gave them.
pub const NEIGHBOUR_OWN_SHARES: [f32; 7] = [1.0, 0.9, 0.75, 0.6, 0.5, 0.25, 0.0];
pub const NEIGHBOUR_COUNTS: [usize; 3] = [1, 3, 10];

/// The shelf length the reserved places are measured on (the headline cutoff).
const SHELF: usize = 10;

/// The 0-based rank of `target` in the ranking `scores` give once [`NewArrivals`] has reserved
/// its places on the first [`SHELF`] (`is_new` marks the new rows): its place on that shelf,
/// else the shelf's length plus its rank among the items the shelf does not show.
pub fn rank_with_arrivals(
    scores: &[f32],
    target: usize,
    is_new: &[bool],
    arrivals: NewArrivals,
) -> usize {
    let top = top_k(scores, SHELF, &[]);
    let only_new: Vec<f32> = scores
        .iter()
        .zip(is_new)
        .map(|(&s, &n)| if n { s } else { f32::NEG_INFINITY })
        .collect();
    let best_new = top_k(&only_new, arrivals.slots, &top);
    let shelf = arrivals.reserve(&top, &best_new, |i| is_new[i]);
    if let Some(p) = shelf.iter().position(|&i| i == target) {
        return p;
    }
    let t = scores[target];
    let above = |i: usize| scores[i] > t || (scores[i] == t && i < target);
    let rank = rank_of(scores, target, None);
    shelf.len() + rank - shelf.iter().filter(|&&i| above(i)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_places_take_the_end_of_the_shelf_and_keep_its_head() {
        let new = |i: usize| i >= 100;
        let top = [1, 2, 3, 4, 5];
        let slots = NewArrivals { slots: 2 };
        assert_eq!(
            slots.reserve(&top, &[107, 103, 109], new),
            vec![1, 2, 3, 107, 103]
        );
        // A new item already on the shelf counts as one of the places.
        assert_eq!(
            slots.reserve(&[1, 101, 3, 4, 5], &[101, 107], new),
            vec![1, 101, 3, 4, 107]
        );
        // Enough new items shown already, or none to show: the shelf is the model's.
        assert_eq!(
            slots.reserve(&[100, 1, 101], &[100, 101], new),
            vec![100, 1, 101]
        );
        assert_eq!(slots.reserve(&top, &[], new), top.to_vec());
        assert_eq!(
            NewArrivals::default().reserve(&top, &[107], new),
            top.to_vec()
        );
        // More places than the shelf has: every place.
        assert_eq!(
            NewArrivals { slots: 9 }.reserve(&[1, 2], &[100, 101, 102], new),
            vec![100, 101]
        );
    }

    #[test]
    fn offsets_fall_on_new_rows_only_in_score_units() {
        let prior = NewItemPrior { offset: 0.1 };
        let o = prior.score_offsets(5, &[1, 3, 9], 0.05);
        assert_eq!(o[0], 0.0);
        assert!((o[1] - 2.0).abs() < 1e-6, "{o:?}");
        assert_eq!(o[2], 0.0);
        assert!((o[3] - 2.0).abs() < 1e-6);
        assert!(NewItemPrior::default().is_none());
        assert!(
            NewItemPrior::default()
                .score_offsets(3, &[0, 1, 2], 0.07)
                .iter()
                .all(|&x| x == 0.0)
        );
    }

    #[test]
    fn the_grid_holds_zero() {
        assert!(NEW_ITEM_OFFSETS.contains(&0.0));
    }

    #[test]
    fn reserved_places_move_the_best_new_items_onto_the_shelf() {
        // Rows 0..12 by falling score; rows 10 and 11 are new (ranks 10 and 11 by score).
        let scores: Vec<f32> = (0..12).map(|i| 12.0 - i as f32).collect();
        let mut is_new = vec![false; 12];
        is_new[10] = true;
        is_new[11] = true;
        let none = NewArrivals::default();
        let one = NewArrivals { slots: 1 };
        for t in 0..12 {
            assert_eq!(rank_with_arrivals(&scores, t, &is_new, none), t);
        }
        // One place: new row 10 takes the shelf's last place; row 9 falls to the first rank
        // after the shelf; row 11 stays where it was.
        assert_eq!(rank_with_arrivals(&scores, 10, &is_new, one), 9);
        assert_eq!(rank_with_arrivals(&scores, 9, &is_new, one), 10);
        assert_eq!(rank_with_arrivals(&scores, 11, &is_new, one), 11);
        assert_eq!(rank_with_arrivals(&scores, 3, &is_new, one), 3);
        let two = NewArrivals { slots: 2 };
        assert_eq!(rank_with_arrivals(&scores, 11, &is_new, two), 9);
        assert_eq!(rank_with_arrivals(&scores, 8, &is_new, two), 10);
        // Every rank is taken once.
        let mut ranks: Vec<usize> = (0..12)
            .map(|t| rank_with_arrivals(&scores, t, &is_new, two))
            .collect();
        ranks.sort_unstable();
        assert_eq!(ranks, (0..12).collect::<Vec<_>>());
    }
}
