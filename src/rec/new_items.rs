//! What an item never seen in training is owed: a prior added to its score.
//!
//! A new item is ranked from its text alone (the item tower), but the scores of the items the
//! model trained on carry what training taught it about them — above all how often they are
//! chosen — while a new item's cannot. Its cosine to the visitor's state then orders it well
//! among the other new items and badly against the trained ones (ml-100k: the target's median
//! rank among the new items is a third of random's, yet over the whole catalogue it is found no
//! more often than at random). The prior is one number, a cosine added to every new item's
//! score, chosen on validation users whose target is a new item of their own
//! ([`crate::data::Split::hold_out_items`]); 0 leaves the model's ranking unchanged.

use serde::{Deserialize, Serialize};

/// The offsets tried when the prior is chosen on validation, in cosine units (a score is
/// `cosine / τ`, so an offset `β` adds `β / τ`). Negative ones too: validation may say that
/// new items are over-ranked.
pub const NEW_ITEM_OFFSETS: [f32; 12] = [
    -0.1, -0.05, 0.0, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
