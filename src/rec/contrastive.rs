//! UniSRec's pre-training objective: in-batch contrastive losses between sequences and their
//! next items (sequence–item) and between a sequence and an item-dropped copy of itself
//! (sequence–sequence), at temperature τ, with same-target masking: another row of the batch
//! whose target is the same item is not a negative. And the two-view term (PerCoNet): an
//! item's title and its description, each through the item tower's text adaptor, are pulled
//! together and pushed from the other items' views.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use crate::rec::{Recommender, SequenceBatch};

/// Mean in-batch cross-entropy of `logits` `[n, n]` whose positives are on the diagonal, with
/// entries `(i, j)`, i ≠ j, where `keys[i] == keys[j]` removed from the negatives.
fn diagonal_nce(logits: Tensor<2>, keys: &[i64]) -> Tensor<1> {
    let n = keys.len();
    let device = logits.device();
    let mask: Vec<bool> = (0..n * n)
        .map(|k| {
            let (i, j) = (k / n, k % n);
            i != j && keys[i] == keys[j]
        })
        .collect();
    let mask = Tensor::<2, Bool>::from_data(TensorData::new(mask, [n, n]), &device);
    let logp = log_softmax(logits.mask_fill(mask, -1e9), 1);
    let diag = Tensor::<1, Int>::arange(0..n as i64, &device).reshape([n, 1]);
    logp.gather(1, diag).mean().neg()
}

impl Recommender {
    /// Sequence–item loss over every position of `batch` that has a target, plus `lambda` ×
    /// the sequence–sequence loss between each row's last state and that of the same row in
    /// `augmented` (the row with items dropped).
    pub fn pretrain_loss(
        &self,
        batch: &SequenceBatch,
        augmented: &SequenceBatch,
        text: Tensor<2>,
        lambda: f64,
    ) -> Tensor<1> {
        let device = text.device();
        let (states, items) = self.encode(batch, text.clone());
        let [b, l, h] = states.dims();
        let (positions, targets): (Vec<i64>, Vec<i64>) = (0..b * l)
            .filter(|&k| batch.weights[k] > 0.0)
            .map(|k| (k as i64, batch.targets[k]))
            .unzip();
        let n = positions.len();
        let select =
            |v: &[i64]| Tensor::<1, Int>::from_data(TensorData::new(v.to_vec(), [n]), &device);
        let seq = states
            .clone()
            .reshape([b * l, h])
            .select(0, select(&positions));
        let next = items.select(0, select(&targets));
        let seq_item = diagonal_nce(
            seq.matmul(next.transpose()).div_scalar(self.temperature),
            &targets,
        );
        if lambda == 0.0 {
            return seq_item;
        }
        let last = |batch: &SequenceBatch, states: Tensor<3>| {
            let [b, l, h] = states.dims();
            let idx: Vec<i64> = (0..b)
                .map(|r| (r * l + batch.lens[r].max(1) - 1) as i64)
                .collect();
            states.reshape([b * l, h]).select(
                0,
                Tensor::<1, Int>::from_data(TensorData::new(idx, [b]), &device),
            )
        };
        let (aug_states, _) = self.encode(augmented, text);
        let u = last(batch, states);
        let v = last(augmented, aug_states);
        // Rows whose last target is the same item are not each other's negatives either.
        let keys: Vec<i64> = (0..b)
            .map(|r| batch.targets[r * l + batch.lens[r].max(1) - 1])
            .collect();
        let seq_seq = diagonal_nce(u.matmul(v.transpose()).div_scalar(self.temperature), &keys);
        seq_item + seq_seq.mul_scalar(lambda)
    }
}

impl Recommender {
    /// The two-view loss of items whose title and description text vectors are the rows of
    /// `titles` and `descriptions` (`[m, text_dim]`, same order): the symmetric in-batch
    /// cross-entropy of the cosines / τ between the two views through the text adaptor (an ID
    /// embedding is the same for both views of an item, so it is left out). `None` for a
    /// model without a text adaptor, or fewer than two items.
    pub fn two_view_loss(&self, titles: Tensor<2>, descriptions: Tensor<2>) -> Option<Tensor<1>> {
        let adaptor = self.tower.adaptor.as_ref()?;
        let m = titles.dims()[0];
        if m < 2 {
            return None;
        }
        let a = crate::rec::model::l2_rows(adaptor.forward(titles));
        let b = crate::rec::model::l2_rows(adaptor.forward(descriptions));
        let logits = a.matmul(b.transpose()).div_scalar(self.temperature);
        let keys: Vec<i64> = (0..m as i64).collect();
        Some(
            (diagonal_nce(logits.clone(), &keys) + diagonal_nce(logits.transpose(), &keys))
                .div_scalar(2.0),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_target_rows_are_not_negatives() {
        let device = Device::flex();
        // Rows 0 and 1 share a key; row 0's logit for row 1 is huge. Masked, it cannot hurt.
        let logits = Tensor::<2>::from_data(
            [[1.0, 50.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            &device,
        );
        let masked = diagonal_nce(logits.clone(), &[7, 7, 8]).into_scalar::<f32>();
        let unmasked = diagonal_nce(logits, &[1, 2, 3]).into_scalar::<f32>();
        assert!(masked < 1.0, "{masked}");
        assert!(unmasked > 10.0, "{unmasked}");
        // The masked loss equals the plain CE of the rows with their negatives removed.
        let expected = [
            -(1f32.exp() / (1f32.exp() + 1.0)).ln(),
            -(1f32.exp() / (1f32.exp() + 1.0)).ln(),
            -(1f32.exp() / (1f32.exp() + 2.0)).ln(),
        ];
        let mean = expected.iter().sum::<f32>() / 3.0;
        assert!((masked - mean).abs() < 1e-5, "{masked} vs {mean}");
    }
}
