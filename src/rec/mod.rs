//! The recommender (UniSRec design): item tower (frozen text vectors → whitening → MoE
//! adaptor, optional ID embedding), causal sequence encoder, cosine/τ scores; and the cache of
//! frozen text vectors the item tower starts from.

pub mod contrastive;
pub mod history_select;
pub mod item_tower;
pub mod model;
pub mod rank;
pub mod sequence;
pub mod store;
#[cfg(not(target_arch = "wasm32"))]
pub mod text_vectors;

pub use history_select::{HistorySelect, select_history, unit_rows, unit_rows_of};
pub use item_tower::{ItemMode, ItemTower, ItemTowerConfig};
pub use model::{ItemVectors, Recommender, RecommenderConfig, SequenceBatch};
pub use rank::{Recommendation, top_k};
pub use sequence::{SequenceEncoder, SequenceEncoderConfig};
pub use store::RecDtype;
