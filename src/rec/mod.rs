//! The recommender (UniSRec design): item tower (frozen text vectors → whitening → MoE
//! adaptor, optional ID embedding), causal sequence encoder, history signals, cosine/τ scores.

pub mod batch;
pub mod calibrate;
pub mod confidence;
pub mod context;
pub mod contrastive;
pub mod history_select;
pub mod item_tower;
pub mod model;
pub mod new_items;
pub mod persona;
pub mod popularity;
pub mod rank;
pub mod readback;
pub mod request;
pub mod sequence;
pub mod signals;
pub mod state;
pub mod store;

pub use batch::SequenceBatch;
pub use calibrate::{
    CALIBRATION_DECAY, CALIBRATION_HEAD, CALIBRATION_POOL, Calibration, calibrated, facet_mix,
};
pub use context::ContextAggregator;
pub use history_select::{
    HistorySelect, SELECTION_DIM, select_history, select_positions, selection_rows, unit_rows,
    unit_rows_of,
};
pub use item_tower::{ItemMode, ItemTower, ItemTowerConfig};
pub use model::{ItemVectors, Recommender, RecommenderConfig};
pub use new_items::{NeighbourMix, NewItemPopularity, NewItems};
pub use persona::{FacetTable, PersonaEncoder, PersonaVocabulary};
pub use rank::{
    AVOID_WEIGHT, History, Offsets, RankOptions, Reasons, Recommendation, avoid_boost, top_k,
};
pub use request::RecommendRequest;
pub use sequence::{SequenceEncoder, SequenceEncoderConfig};
pub use signals::{ClsdStats, SignalsConfig, UserMemory};
pub use state::RankingState;
pub use store::RecDtype;
