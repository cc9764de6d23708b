//! Sentence embeddings from token states: attention-masked mean, then L2 normalisation
//! (sentence-transformers' Pooling(mean) → Normalize).

use burn::prelude::*;

/// Mean of `hidden` `[batch, seq, width]` over the real tokens of `mask` `[batch, seq]`.
pub fn masked_mean(hidden: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
    let [batch, seq, width] = hidden.dims();
    let mask = mask.reshape([batch, seq, 1]);
    // Every text has at least [CLS] and [SEP]; the clamp only guards an all-padding row.
    let count = mask.clone().sum_dim(1).clamp_min(1.0);
    (hidden * mask)
        .sum_dim(1)
        .div(count)
        .reshape([batch, width])
}

/// Rows scaled to unit L2 norm (rows of norm 0 stay 0).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}
