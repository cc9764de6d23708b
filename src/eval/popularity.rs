//! The popularity baseline: every user gets the items ranked by training interaction count.

use crate::data::{Example, Split};
use crate::eval::metrics::{Metrics, evaluate};

/// Evaluates popularity (true training counts) on `examples`: (unmasked, masked).
pub fn evaluate_popularity(
    split: &Split,
    num_items: usize,
    examples: &[Example],
) -> (Metrics, Metrics) {
    let scores: Vec<f32> = split
        .train_counts(num_items)
        .into_iter()
        .map(|c| c as f32)
        .collect();
    evaluate(examples, |_| scores.clone())
}
