//! ranklet: an on-device recommender. See docs/design.md for the layers and the contracts.

pub mod bundle;
pub mod contracts;
pub mod data;
#[cfg(feature = "native")]
pub mod device;
#[cfg(feature = "native")]
pub mod distill;
pub mod error;
pub mod eval;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
#[cfg(not(target_arch = "wasm32"))]
pub mod fsio;
pub mod index;
#[cfg(feature = "native")]
pub mod jobs;
pub mod rec;
pub mod rng;
pub mod text;
#[cfg(feature = "native")]
pub mod train;
#[cfg(not(target_arch = "wasm32"))]
pub mod vectors;
#[cfg(all(feature = "web", target_arch = "wasm32"))]
pub mod web;

pub use error::{Error, Result};
