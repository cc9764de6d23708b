//! `ranklet distill`: the browser student from the teacher — HomoDistil-style iterative
//! structured pruning of a copy of the teacher, LRC-BERT-style contrastive layer distillation,
//! and vocabulary pruning to the catalog's word-pieces.
//!
//! One concern a file: [`config`] (settings, learning-rate schedule), [`augment`] (altered
//! copies of the texts), [`teacher`] (its targets), [`trainee`] (the student while it learns),
//! [`objective`] and [`loss`] (the losses), [`pruning`] and [`student`] (masks and slicing),
//! [`vocab`] (vocabulary pruning), [`average`] (weight averaging), [`run`] (the loop).

pub mod augment;
pub mod average;
pub mod config;
pub mod job;
pub mod loss;
pub mod neighbours;
pub mod objective;
pub mod parallel;
pub mod pruning;
pub mod run;
pub mod student;
pub mod teacher;
pub mod trainee;
pub mod vocab;

#[cfg(test)]
mod tests;

pub use config::DistillConfig;
pub use run::{DistillEpoch, Distilled, distill};
pub use vocab::{PrunedVocab, prune_embeddings, prune_vocab};
