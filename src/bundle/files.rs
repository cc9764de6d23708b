//! The bytes of a bundle's files — its text encoder and its recommender — wherever they came
//! from (a folder on disk, or buffers that the browser fetched), checked against the manifest
//! before anything is parsed.

use crate::bundle::manifest::{Manifest, RecommenderEntry};
use crate::error::{Error, Result};
use crate::text::EncoderFiles;

/// Reading an encoder through a bundle's manifest (the struct is the text layer's).
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

/// A trained recommender's part of a bundle.
#[derive(Debug, Clone)]
pub struct RecommenderFiles {
    pub entry: RecommenderEntry,
    /// The bytes of `entry.weights`.
    pub weights: Vec<u8>,
    /// The item ids, in the model's row order (written as `entry.items`).
    pub items: Vec<String>,
}

impl RecommenderFiles {
    /// Collects the recommender files a manifest names through `read`, verifying each file's
    /// size and sha256, and checks that `items.json` lists one id per ID row.
    pub fn from_manifest(
        manifest: &Manifest,
        mut read: impl FnMut(&str) -> Result<Vec<u8>>,
    ) -> Result<Self> {
        let entry = manifest.recommender.clone().ok_or_else(|| {
            Error::bad_file(
                crate::bundle::manifest::MANIFEST_FILE,
                "this bundle has no recommender (a text encoder only); train one with `ranklet train --out`",
            )
        })?;
        let mut take = |name: &str| -> Result<Vec<u8>> {
            let bytes = read(name)?;
            manifest.verify(name, &bytes)?;
            Ok(bytes)
        };
        let weights = take(&entry.weights)?;
        let items: Vec<String> = serde_json::from_slice(&take(&entry.items)?).map_err(|e| {
            Error::bad_file(&entry.items, format!("not a JSON array of item ids: {e}"))
        })?;
        if items.len() != entry.config.items.num_items {
            return Err(Error::bad_file(
                &entry.items,
                format!(
                    "{} item ids, but the recommender was built for {}",
                    items.len(),
                    entry.config.items.num_items
                ),
            ));
        }
        Ok(Self {
            entry,
            weights,
            items,
        })
    }
}
