//! The text encoder: HF BERT config, tokenizer, encoder, pooling, weight loading.

pub mod config;
pub mod embedder;
pub mod encoder;
pub mod files;
pub mod pooling;
pub mod tokenizer;
pub mod weights;

pub use config::BertConfig;
pub use embedder::TextEmbedder;
pub use encoder::BertEncoder;
pub use files::EncoderFiles;
pub use tokenizer::{TextTokenizer, TokenBatch};

#[cfg(test)]
mod tests;
