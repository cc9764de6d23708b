//! ranklet: an on-device recommender. See DESIGN.md for the parts and their contracts.

pub mod bundle;
pub mod data;
#[cfg(feature = "native")]
pub mod device;
#[cfg(feature = "native")]
pub mod distill;
pub mod error;
pub mod eval;
pub mod fixtures;
#[cfg(not(target_arch = "wasm32"))]
pub mod fsio;
pub mod rec;
pub mod text;
#[cfg(feature = "native")]
pub mod train;
#[cfg(all(feature = "web", target_arch = "wasm32"))]
pub mod web;

pub use error::{Error, Result};
