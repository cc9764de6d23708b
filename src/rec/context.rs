//! Scene context (LARR): the hour of day, the page type and the device class of a request are
//! encoded separately (one embedding each) and combined with the user state by a small
//! aggregation layer — attention of the state over the three encodings, projected back and
//! added. The projection starts at zero (the encodings small and random, so it can learn), so
//! an untrained or absent context leaves the user state unchanged; row 0 of each encoder is
//! "unknown" and gets no attention.

use burn::nn::{Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::contracts::scene::{DEVICE_CLASSES, HOUR_ROWS, PAGE_TYPES};

/// The context encoders and their aggregation layer.
#[derive(Module, Debug)]
pub struct ContextAggregator {
    pub hour: Embedding,
    pub page: Embedding,
    /// (Not `device`: the name would clash with the module derive's own.)
    pub device_class: Embedding,
    /// Query projection of the user state for the attention over the context encodings.
    pub query: Linear,
    /// Projection of the attended context back into the state (zero at start).
    pub out: Linear,
}

impl ContextAggregator {
    pub fn init(hidden: usize, device: &Device) -> Self {
        let small = |rows: usize| {
            EmbeddingConfig::new(rows, hidden)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                })
                .init(device)
        };
        Self {
            hour: small(HOUR_ROWS),
            page: small(PAGE_TYPES.len()),
            device_class: small(DEVICE_CLASSES.len()),
            query: LinearConfig::new(hidden, hidden).init(device),
            // No bias: a request with no known context must leave the state as it is.
            out: LinearConfig::new(hidden, hidden)
                .with_bias(false)
                .with_initializer(Initializer::Zeros)
                .init(device),
        }
    }

    /// `states` `[b, l, h]` and the context rows of each position `[b·l]` ×3 (hour, page,
    /// device) → states with the aggregated context added. Row 0 (unknown) of every encoder is
    /// masked out of the attention; a position with no known part is left unchanged.
    pub fn forward(&self, states: Tensor<3>, rows: &[[i64; 3]]) -> Tensor<3> {
        let [b, l, h] = states.dims();
        let device = states.device();
        let column = |k: usize| -> Tensor<2, Int> {
            let v: Vec<i64> = rows.iter().map(|r| r[k]).collect();
            Tensor::from_data(TensorData::new(v, [b, l]), &device)
        };
        let encodings = Tensor::cat(
            vec![
                self.hour.forward(column(0)).reshape([b, l, 1, h]),
                self.page.forward(column(1)).reshape([b, l, 1, h]),
                self.device_class.forward(column(2)).reshape([b, l, 1, h]),
            ],
            2,
        ); // [b, l, 3, h]
        let known: Vec<f32> = rows
            .iter()
            .flat_map(|r| r.iter().map(|&x| if x > 0 { 1.0 } else { 0.0 }))
            .collect();
        let known = Tensor::<3>::from_data(TensorData::new(known, [b, l, 3]), &device);
        let q = self.query.forward(states.clone()).reshape([b, l, 1, h]);
        let logits = (encodings.clone() * q)
            .sum_dim(3)
            .reshape([b, l, 3])
            .div_scalar((h as f64).sqrt());
        // Unknown parts get no weight; all-unknown positions get none at all.
        let weights = softmax(logits + (known.clone() - 1.0) * 1e4, 2) * known.clone();
        let attended = (encodings * weights.reshape([b, l, 3, 1]))
            .sum_dim(2)
            .reshape([b, l, h]);
        states + self.out.forward(attended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_context_leaves_states_unchanged_and_known_context_moves_them() {
        let (_seeded, device) = crate::fixtures::seeded_cpu(5);
        let (b, l, h) = (2, 3, 8);
        let mut agg = ContextAggregator::init(h, &device);
        // A trained projection (non-zero), so that a known context has an effect.
        agg.out = LinearConfig::new(h, h).with_bias(false).init(&device);
        let states = Tensor::<3>::random([b, l, h], burn::tensor::Distribution::Default, &device);
        let unknown = vec![[0i64, 0, 0]; b * l];
        let same = agg.forward(states.clone(), &unknown);
        let d = (same - states.clone()).abs().max().into_scalar::<f32>();
        assert!(d < 1e-6, "{d}");
        let mut rows = unknown.clone();
        rows[4] = [10, 2, 0];
        let moved = agg.forward(states.clone(), &rows);
        let diff: Vec<f32> = (moved - states)
            .abs()
            .sum_dim(2)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for (k, v) in diff.iter().enumerate() {
            assert_eq!(*v > 1e-6, k == 4, "position {k}: {v}");
        }
    }
}
