//! The model bundle: the folder of files the browser downloads and the CLI reads.

#[cfg(not(target_arch = "wasm32"))]
pub mod dir;
pub mod files;
pub mod manifest;
#[cfg(not(target_arch = "wasm32"))]
pub mod trained;

pub use crate::text::EncoderFiles;
#[cfg(not(target_arch = "wasm32"))]
pub use dir::{
    add_bundle_files, clear_bundle, read_manifest, read_model_dir, read_recommender_dir,
    write_bundle, write_encoder_dir,
};
pub use files::RecommenderFiles;
pub use manifest::{FileEntry, Manifest, RecommenderEntry, sha256_hex};
#[cfg(not(target_arch = "wasm32"))]
pub use trained::trained_model;
