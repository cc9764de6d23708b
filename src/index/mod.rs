//! The precomputed item index: every catalogue item's final vector (the item tower's output,
//! what the ranker scores against) computed once, natively, and served as static files next to
//! the bundle, so a visitor's browser ranks a large catalogue without embedding it.
//!
//! [`format`] is the folder's content and its checks (usable in the browser too), [`quantise`]
//! the int8 rows, [`partition`] the cells of a partitioned index and [`shard`] their files;
//! natively, [`build`] is the `ranklet index` job, [`new_items`] places the rows of items the
//! model never trained on, and [`folder`] reads and writes the folder.

#[cfg(not(target_arch = "wasm32"))]
pub mod build;
#[cfg(not(target_arch = "wasm32"))]
pub mod folder;
pub mod format;
#[cfg(not(target_arch = "wasm32"))]
pub mod new_items;
pub mod partition;
pub mod quantise;
pub mod shard;

#[cfg(not(target_arch = "wasm32"))]
pub use build::{CatalogSource, Catalogue, IndexJob, IndexOutcome, IndexProgress, build_index};
#[cfg(not(target_arch = "wasm32"))]
pub use folder::{
    CellLayout, IndexContent, bundle_ref, read_index_dir, read_index_of, write_index,
};
pub use format::{IndexManifest, ItemIndex, NewItemRows, text_hash};

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
