//! Evaluation: the protocol's full-ranking metrics and reference baselines.

pub mod cold_start;
pub mod metrics;
pub mod model;
pub mod new_item_choice;
pub mod new_items;
pub mod popularity;
pub mod response;

pub use cold_start::{
    ColdStart, NewItemPolicies, PolicyFigures, measure_cold_start, measure_new_item_policies,
};
pub use metrics::{Metrics, evaluate, rank_of};
pub use model::{
    CellProbe, evaluate_model, evaluate_over, evaluate_probed, rank_among, target_ranks_among,
};
pub use new_item_choice::{
    ArrivalsSweep, MixSweep, PriorSweep, choose_neighbour_mix, choose_new_arrivals,
    choose_new_item_prior, evaluate_new_arrivals, evaluate_new_item_priors, mixed_item_vectors,
    targeting,
};
pub use new_items::{
    NEIGHBOUR_COUNTS, NEIGHBOUR_OWN_SHARES, NEW_ARRIVAL_SLOTS, NEW_ITEM_OFFSETS,
    NEW_ITEM_TOLERANCE, NewArrivals, NewItemPrior, rank_with_arrivals,
};
pub use response::{DeletionTest, FacetResponse, deletion_test, facet_response, miscalibration};
