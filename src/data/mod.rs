//! Readers for the data contracts (catalogs, events, RecBole atomic files), the leave-one-out
//! split, and synthetic data for tests.

pub mod atomic;
pub mod catalog;
pub mod dataset;
pub mod recbole;
pub mod split;
pub mod synthetic;

pub use catalog::{CatalogItem, TextRecord, read_catalog, read_catalog_objects, read_text_records};
pub use dataset::{Dataset, ItemText};
pub use split::{Example, HeldOut, Split};

use crate::error::{Error, Result};

/// The bytes of a text file as `&str`; invalid UTF-8 is an error naming the file, the line and
/// the byte offset.
pub fn utf8_text<'a>(bytes: &'a [u8], origin: &str) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        Error::bad_input(
            format!("{origin} line {line}"),
            format!("invalid UTF-8 (byte offset {})", e.valid_up_to()),
        )
    })
}
