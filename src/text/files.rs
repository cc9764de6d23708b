//! The bytes of a text encoder's files, wherever they came from (a folder on disk, a bundle the
//! browser fetched, a test fixture). The encoder parses them; it never reads files itself.

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
