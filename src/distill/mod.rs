//! `ranklet distill`: the browser student from the teacher — HomoDistil-style iterative
//! structured pruning of a copy of the teacher, LRC-BERT-style contrastive layer distillation,
//! and vocabulary pruning to the catalog's word-pieces.

pub mod average;
pub mod loss;
pub mod neighbours;
pub mod pruning;
pub mod run;
pub mod student;
pub mod vocab;

pub use vocab::{PrunedVocab, prune_embeddings, prune_vocab};
