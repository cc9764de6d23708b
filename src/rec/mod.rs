//! The recommender: item tower (frozen text vectors → whitening → MoE adaptor), sequence
//! encoder and scoring. Today: the text-vector cache the item tower starts from.

#[cfg(not(target_arch = "wasm32"))]
pub mod text_vectors;
