//! Evaluation: the protocol's full-ranking metrics and reference baselines.

pub mod metrics;
pub mod popularity;

pub use metrics::{Metrics, evaluate, rank_of};
