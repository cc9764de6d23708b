//! Readers for the data contracts (catalogs, events, RecBole atomic files), the leave-one-out
//! split, and synthetic data for tests.

pub mod atomic;
pub mod catalog;
pub mod dataset;
pub mod synthetic;

pub use catalog::{CatalogItem, TextRecord, read_catalog, read_text_records};
pub use dataset::{Dataset, Example, ItemText, Split};
