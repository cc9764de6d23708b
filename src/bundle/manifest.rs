//! `manifest.json`: what a model folder holds and how to check it (docs/design.md, Contracts).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The value of `format` in every manifest.
pub const FORMAT: &str = "ranklet-bundle";
/// The manifest version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// The manifest's file name inside a model folder.
pub const MANIFEST_FILE: &str = "manifest.json";

/// A model folder's table of contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`FORMAT_VERSION`] for folders this build can read.
    pub format_version: u32,
    /// Human name of the model, e.g. `all-MiniLM-L6-v2`.
    pub name: String,
    /// The text encoder's files and how its outputs are pooled.
    pub encoder: EncoderEntry,
    /// Every file of the folder (but the manifest) with its byte size and sha256.
    pub files: BTreeMap<String, FileEntry>,
    /// The trained recommender, when the bundle carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommender: Option<RecommenderEntry>,
    /// Evaluation figures the bundle was shipped with (free-form).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub metrics: serde_json::Value,
}

/// Which files make up the text encoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderEntry {
    /// HF BERT `config.json`.
    pub config: String,
    /// HF `BertModel` tensors (safetensors).
    pub weights: String,
    /// HF `tokenizer.json`.
    pub tokenizer: String,
    /// Word-pieces per text, [CLS]/[SEP] included. Default 256.
    #[serde(default = "default_max_seq_length")]
    pub max_seq_length: usize,
    /// Token pooling; only `"mean"` (attention-masked). Default `"mean"`.
    #[serde(default = "default_pooling")]
    pub pooling: String,
    /// L2-normalise pooled vectors. Default true.
    #[serde(default = "default_true")]
    pub normalize: bool,
}

fn default_max_seq_length() -> usize {
    crate::text::tokenizer::DEFAULT_MAX_SEQ_LEN
}
fn default_pooling() -> String {
    "mean".into()
}
fn default_true() -> bool {
    true
}

/// The recommender's files and shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecommenderEntry {
    /// Item tower + sequence encoder tensors (safetensors, burn module paths as names).
    pub weights: String,
    /// JSON array of the item ids the model was trained on, in the order of its ID rows.
    pub items: String,
    /// The shape of the model.
    pub config: crate::rec::RecommenderConfig,
}

/// Size and checksum of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Exact size in bytes.
    pub bytes: u64,
    /// Lower-case hex sha256 of the content.
    pub sha256: String,
}

pub use crate::contracts::sha256_hex;

impl FileEntry {
    /// Checks `bytes` (the file `name`) against this entry of the manifest `listed_in`: a size
    /// or checksum that does not match is refused, naming the file.
    pub fn check(&self, name: &str, bytes: &[u8], listed_in: &str) -> Result<()> {
        if bytes.len() as u64 != self.bytes {
            return Err(Error::bad_file(
                name,
                format!(
                    "{} bytes, {listed_in} says {} (truncated or replaced file)",
                    bytes.len(),
                    self.bytes
                ),
            ));
        }
        let actual = sha256_hex(bytes);
        if !actual.eq_ignore_ascii_case(&self.sha256) {
            return Err(Error::bad_file(
                name,
                format!(
                    "sha256 {actual} does not match {listed_in}'s {} (corrupt or replaced file)",
                    self.sha256
                ),
            ));
        }
        Ok(())
    }
}

impl Manifest {
    /// Parses and checks a manifest; `origin` names it in errors.
    pub fn from_json(text: &[u8], origin: &str) -> Result<Self> {
        let manifest: Self = serde_json::from_slice(text)
            .map_err(|e| Error::bad_file(origin, format!("not a ranklet manifest: {e}")))?;
        if manifest.format != FORMAT {
            return Err(Error::bad_file(
                origin,
                format!("format is {:?}, expected {FORMAT:?}", manifest.format),
            ));
        }
        if manifest.format_version != FORMAT_VERSION {
            return Err(Error::bad_file(
                origin,
                format!(
                    "format_version {} is not supported by this build (it reads {FORMAT_VERSION})",
                    manifest.format_version
                ),
            ));
        }
        if manifest.encoder.pooling != "mean" {
            return Err(Error::bad_file(
                origin,
                format!(
                    "pooling {:?} is not supported (only \"mean\")",
                    manifest.encoder.pooling
                ),
            ));
        }
        for name in [
            &manifest.encoder.config,
            &manifest.encoder.weights,
            &manifest.encoder.tokenizer,
        ]
        .into_iter()
        .chain(
            manifest
                .recommender
                .iter()
                .flat_map(|r| [&r.weights, &r.items]),
        ) {
            if !manifest.files.contains_key(name) {
                return Err(Error::bad_file(
                    origin,
                    format!("file {name} is not listed under \"files\""),
                ));
            }
        }
        for name in manifest.files.keys() {
            if name.is_empty() || name.starts_with('/') || name.split('/').any(|p| p == "..") {
                return Err(Error::bad_file(
                    origin,
                    format!("file name {name:?} leaves the folder"),
                ));
            }
        }
        Ok(manifest)
    }

    /// Checks `bytes` against the size and sha256 the manifest records for `name`.
    pub fn verify(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let entry = self
            .files
            .get(name)
            .ok_or_else(|| Error::bad_file(name, "not listed in manifest.json"))?;
        entry.check(name, bytes, "manifest.json")
    }

    /// A manifest entry for `bytes`.
    pub fn entry_for(bytes: &[u8]) -> FileEntry {
        FileEntry {
            bytes: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        let mut files = BTreeMap::new();
        for (name, content) in [
            ("config.json", &b"{}"[..]),
            ("w.safetensors", b"abc"),
            ("tokenizer.json", b"t"),
        ] {
            files.insert(name.to_string(), Manifest::entry_for(content));
        }
        Manifest {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            name: "test".into(),
            encoder: EncoderEntry {
                config: "config.json".into(),
                weights: "w.safetensors".into(),
                tokenizer: "tokenizer.json".into(),
                max_seq_length: 256,
                pooling: "mean".into(),
                normalize: true,
            },
            files,
            recommender: None,
            metrics: serde_json::Value::Null,
        }
    }

    #[test]
    fn sha256_of_known_text() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn verify_accepts_the_file_and_names_a_corrupt_one() {
        let m = manifest();
        m.verify("w.safetensors", b"abc").unwrap();
        let err = m.verify("w.safetensors", b"abd").unwrap_err().to_string();
        assert!(
            err.contains("w.safetensors") && err.contains("sha256"),
            "{err}"
        );
        let err = m.verify("w.safetensors", b"ab").unwrap_err().to_string();
        assert!(err.contains("2 bytes"), "{err}");
    }

    #[test]
    fn round_trips_and_rejects_bad_manifests() {
        let m = manifest();
        let text = serde_json::to_vec(&m).unwrap();
        assert_eq!(Manifest::from_json(&text, "manifest.json").unwrap(), m);

        let mut bad = m.clone();
        bad.format_version = 99;
        let err =
            Manifest::from_json(&serde_json::to_vec(&bad).unwrap(), "manifest.json").unwrap_err();
        assert!(err.to_string().contains("format_version 99"));

        let mut bad = m.clone();
        bad.files.remove("tokenizer.json");
        let err =
            Manifest::from_json(&serde_json::to_vec(&bad).unwrap(), "manifest.json").unwrap_err();
        assert!(err.to_string().contains("tokenizer.json"));

        let mut bad = m;
        bad.files
            .insert("../etc/passwd".into(), Manifest::entry_for(b""));
        assert!(Manifest::from_json(&serde_json::to_vec(&bad).unwrap(), "manifest.json").is_err());
    }
}
