//! The model bundle: the folder of files the browser downloads and the CLI reads.

pub mod files;
pub mod manifest;

pub use files::EncoderFiles;
#[cfg(not(target_arch = "wasm32"))]
pub use files::{read_model_dir, write_encoder_dir};
pub use manifest::{FileEntry, Manifest, sha256_hex};
