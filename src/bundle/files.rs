//! The bytes of a text encoder's files, wherever they came from (a folder on disk, or buffers
//! that the browser fetched), checked against the manifest before anything is parsed.

use crate::bundle::manifest::Manifest;
use crate::error::Result;

/// Raw files of a text encoder plus the settings that say how to run it.
#[derive(Debug, Clone)]
pub struct EncoderFiles {
    /// Model name (from the manifest, or the folder name).
    pub name: String,
    /// HF BERT `config.json`, and its file name for messages.
    pub config: (String, Vec<u8>),
    /// HF `tokenizer.json`.
    pub tokenizer: (String, Vec<u8>),
    /// HF `BertModel` safetensors.
    pub weights: (String, Vec<u8>),
    /// Word-pieces per text including [CLS]/[SEP].
    pub max_seq_length: usize,
    /// Whether pooled vectors are L2-normalised.
    pub normalize: bool,
}

impl EncoderFiles {
    /// Collects the encoder files a manifest names through `read`, verifying each file's size
    /// and sha256 before returning it.
    pub fn from_manifest(
        manifest: &Manifest,
        mut read: impl FnMut(&str) -> Result<Vec<u8>>,
    ) -> Result<Self> {
        let mut take = |name: &str| -> Result<(String, Vec<u8>)> {
            let bytes = read(name)?;
            manifest.verify(name, &bytes)?;
            Ok((name.to_string(), bytes))
        };
        Ok(Self {
            name: manifest.name.clone(),
            config: take(&manifest.encoder.config)?,
            tokenizer: take(&manifest.encoder.tokenizer)?,
            weights: take(&manifest.encoder.weights)?,
            max_seq_length: manifest.encoder.max_seq_length,
            normalize: manifest.encoder.normalize,
        })
    }
}
