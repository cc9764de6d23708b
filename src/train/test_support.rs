//! Shared by the training tests: topic text vectors and a small recommender config.

use burn::prelude::*;

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

pub(crate) use crate::fixtures::small_config;
