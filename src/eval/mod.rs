//! Evaluation: the protocol's full-ranking metrics and reference baselines.

pub mod metrics;
pub mod model;
pub mod new_items;
pub mod popularity;
pub mod response;

pub use metrics::{Metrics, evaluate, rank_of};
pub use model::{
    ArrivalsSweep, CellProbe, MixSweep, choose_neighbour_mix, choose_new_arrivals,
    choose_new_item_prior, evaluate_model, evaluate_new_arrivals, evaluate_new_item_priors,
    evaluate_over, evaluate_probed, mixed_item_vectors, rank_among, rank_with_arrivals,
    target_ranks_among,
};
pub use new_items::{
    NEIGHBOUR_COUNTS, NEIGHBOUR_OWN_SHARES, NEW_ARRIVAL_SLOTS, NEW_ITEM_OFFSETS,
    NEW_ITEM_TOLERANCE, NewArrivals, NewItemPrior,
};
pub use response::{DeletionTest, FacetResponse, deletion_test, facet_response, miscalibration};
