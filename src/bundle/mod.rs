//! The model bundle: the folder of files the browser downloads and the CLI reads.

#[cfg(not(target_arch = "wasm32"))]
pub mod dir;
pub mod files;
pub mod manifest;

#[cfg(not(target_arch = "wasm32"))]
pub use dir::{read_model_dir, write_encoder_dir};
pub use files::EncoderFiles;
pub use manifest::{FileEntry, Manifest, sha256_hex};
