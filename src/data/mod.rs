//! Readers for the data contracts: catalogs and texts (events and datasets come later).

pub mod catalog;

pub use catalog::{CatalogItem, TextRecord, read_catalog, read_text_records};
