//! Logit adjustment (Menon et al. 2021) for the recommender: each item's log training count
//! added to its score, so that the item vectors learn what a visitor prefers beyond how often
//! an item is chosen. A cold-start measurement (reports/coldstart.md, `train
//! --popularity-logits`); a bundle does not carry the logits.

use burn::prelude::*;

use crate::rec::{NeighbourMix, Recommender};

/// How many trained items, nearest by text, a new item's popularity logit is the mean of
/// ([`popularity_logits`]): set before any measurement, not tuned.
pub const POPULARITY_NEIGHBOURS: usize = 10;

/// Each catalogue row's popularity logit: `ln(1 + count)` of its training count; an
/// `untrained` row (never in training: its count says nothing) gets the mean logit of its
/// [`POPULARITY_NEIGHBOURS`] nearest trained rows by `text` (unit rows, `dim` wide), the
/// popularity its text suggests, or the trained rows' mean without text.
pub fn popularity_logits(
    counts: &[u32],
    untrained: &[usize],
    text: &[f32],
    dim: usize,
) -> Vec<f32> {
    let mut logits: Vec<f32> = counts.iter().map(|&c| (1.0 + c as f32).ln()).collect();
    let mut is_untrained = vec![false; counts.len()];
    for &i in untrained {
        if let Some(u) = is_untrained.get_mut(i) {
            *u = true;
        }
    }
    let trained: Vec<f32> = logits
        .iter()
        .zip(&is_untrained)
        .filter(|(_, u)| !**u)
        .map(|(l, _)| *l)
        .collect();
    let mean = trained.iter().sum::<f32>() / trained.len().max(1) as f32;
    for (l, u) in logits.iter_mut().zip(&is_untrained) {
        if *u {
            *l = mean;
        }
    }
    let nearest = NeighbourMix {
        own: 0.0,
        neighbours: POPULARITY_NEIGHBOURS,
    }
    .neighbours_of(text, dim, &is_untrained);
    for (row, near) in nearest {
        logits[row] = near.iter().map(|&j| logits[j]).sum::<f32>() / near.len().max(1) as f32;
    }
    logits
}

impl Recommender {
    /// The model with popularity logits ([`Recommender::popularity`]).
    pub fn with_popularity(mut self, logits: Vec<f32>) -> Self {
        self.popularity = Some(logits);
        self
    }

    /// `scores` (`[rows, n]`, the first `n` catalogue rows) plus the popularity logits, if any.
    pub fn add_popularity(&self, scores: Tensor<2>) -> Tensor<2> {
        let Some(p) = &self.popularity else {
            return scores;
        };
        let [rows, n] = scores.dims();
        let row: Vec<f32> = (0..n).map(|i| p.get(i).copied().unwrap_or(0.0)).collect();
        let row = Tensor::<2>::from_data(TensorData::new(row, [1, n]), &scores.device());
        scores + row.expand([rows, n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An untrained row gets the popularity its text suggests: its nearest trained rows' mean
    /// logit, or every trained row's mean without text.
    #[test]
    fn a_new_rows_logit_is_its_text_neighbours_mean() {
        // Without text a new row gets the trained rows' mean.
        let logits = popularity_logits(&[0, 3, 7, 1], &[3, 9], &[], 0);
        let mean = (1f32.ln() + 4f32.ln() + 8f32.ln()) / 3.0;
        assert_eq!(&logits[..3], &[1f32.ln(), 4f32.ln(), 8f32.ln()]);
        assert!((logits[3] - mean).abs() < 1e-6, "{logits:?}");
        // With text, the mean of its nearest trained rows (all 3 here, fewer than
        // POPULARITY_NEIGHBOURS): the same; with 12 trained rows, the 10 nearest.
        let text = [1.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0];
        let with_text = popularity_logits(&[0, 3, 7, 1], &[3], &text, 2);
        assert!((with_text[3] - mean).abs() < 1e-6, "{with_text:?}");
        let mut counts = vec![0u32; 12];
        counts.push(5);
        let mut text = [1.0f32, 0.0].repeat(10);
        text.extend([0.0f32, 1.0].repeat(2)); // rows 10 and 11 point elsewhere
        counts[10] = 1000;
        counts[11] = 1000;
        text.extend([1.0f32, 0.0]); // row 12, new, reads like rows 0..10
        let near = popularity_logits(&counts, &[12], &text, 2);
        assert!(
            near[12].abs() < 1e-6,
            "the 10 nearest have count 0: {near:?}"
        );
    }
}
