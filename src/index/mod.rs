//! The precomputed item index: every catalogue item's final vector (the item tower's output,
//! what the ranker scores against) computed once, natively, and served as static files next to
//! the bundle, so a visitor's browser ranks a large catalogue without embedding it.
//!
//! [`format`] is the folder and its checks (usable in the browser too), [`quantise`] the int8
//! rows, [`build`] the `ranklet index` job (native).

#[cfg(not(target_arch = "wasm32"))]
pub mod build;
pub mod format;
pub mod partition;
pub mod quantise;
pub mod shard;

#[cfg(not(target_arch = "wasm32"))]
pub use build::{
    CatalogSource, Catalogue, CellLayout, IndexContent, IndexJob, IndexOutcome, IndexProgress,
    build_index, bundle_ref, read_index_dir, read_index_of, write_index,
};
pub use format::{IndexManifest, ItemIndex, text_hash};
