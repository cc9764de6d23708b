//! Shared by the training tests: topic text vectors and a small recommender config.

use burn::prelude::*;

use crate::rec::{ItemMode, ItemTowerConfig, RecommenderConfig, SequenceEncoderConfig};
use crate::rng::SplitMix;

/// Text vectors that carry the synthetic topic (plus noise), as a real encoder's would.
pub(crate) fn topic_text(num_items: usize, device: &Device) -> Tensor<2> {
    let mut rng = SplitMix(9);
    let dim = 12;
    let mut v = vec![0.0f32; num_items * dim];
    for i in 0..num_items {
        for d in 0..dim {
            v[i * dim + d] = 0.3 * (rng.next_f32() - 0.5) + if d == i % 6 { 1.0 } else { 0.0 };
        }
    }
    Tensor::from_data(TensorData::new(v, [num_items, dim]), device)
}

/// A small recommender over topic text vectors (12 wide) for these tests.
pub(crate) fn small_config(
    mode: ItemMode,
    num_items: usize,
    hidden: usize,
    inner: usize,
    dropout: (f64, f64),
    max_len: usize,
) -> RecommenderConfig {
    RecommenderConfig {
        items: ItemTowerConfig {
            text_dim: 12,
            hidden,
            experts: 2,
            dropout: dropout.0,
            mode,
            num_items,
        },
        sequence: SequenceEncoderConfig {
            hidden,
            layers: 1,
            heads: 2,
            inner,
            dropout: dropout.1,
            max_len,
        },
        temperature: 0.1,
        signals: Default::default(),
    }
}
