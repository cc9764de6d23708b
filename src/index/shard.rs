//! The files of a partitioned index (`ranklet index --partitions`), listed in its manifest's
//! `partitions` entry:
//!
//! - `centroids.safetensors`: `centroids` (F32 `[cells, dim]`, unit rows), one per shard, in
//!   shard order — what a visitor's state is compared with to choose the shards to fetch;
//! - `shards/NNNNN-<sha>.safetensors`, one per cell: its items' int8 rows, scales and text
//!   hashes (as `vectors.safetensors`), and in the header's metadata `ids` and `items` (JSON
//!   arrays: the item ids, and each item's catalogue object without its description — what the
//!   shelf shows, so a visitor never downloads the catalogue); the name carries the content's
//!   sha256, so a host can serve shards as immutable;
//! - `shards/popular-<sha>.safetensors`: the same for the most popular items (the shelf before
//!   any click, and candidates in every ranking).

use std::collections::HashMap;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::index::format::Rows;

pub const CENTROIDS_FILE: &str = "centroids.safetensors";
pub const SHARD_DIR: &str = "shards";

/// Probed cells per recommendation by default: chosen on validation queries (see
/// `docs/catalogs.md`); the benchmark reports recall at this setting.
pub const DEFAULT_NPROBE: usize = 8;
/// Decoy cells per recommendation by default: as many as probed ones, so a server that sees a
/// recommendation's shard requests cannot tell the wanted half from the other.
pub const DEFAULT_DECOYS: usize = 8;
/// Items in the popular shard by default.
pub const DEFAULT_POPULAR: usize = 256;

/// One shard file and its item count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRef {
    pub file: String,
    pub items: usize,
}

/// The `partitions` entry of a partitioned index's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partitions {
    /// The centroid file (one unit row per shard, in shard order).
    pub centroids: String,
    /// One file per cell, in centroid order.
    pub shards: Vec<ShardRef>,
    /// The popular-items shard.
    pub popular: ShardRef,
    /// Cells whose centroids are nearest to the visitor's state, ranked per recommendation.
    pub nprobe: usize,
    /// Other cells fetched with them, drawn at random, never ranked: every recommendation asks
    /// for `nprobe + decoys` shards, whatever the history.
    pub decoys: usize,
    /// No cell holds fewer items (the last one standing excepted).
    pub min_shard: usize,
    /// The catalogue's largest `popularity` figure (none without figures): a candidate item
    /// the model never trained on is lifted by its figure against this, as in the whole
    /// catalogue ([`crate::rec::NewItemPopularity`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_popularity: Option<f32>,
}

/// One shard: ids, the shelf's data and the quantised rows of its items.
#[derive(Debug, Clone, PartialEq)]
pub struct Shard {
    pub ids: Vec<String>,
    /// Each item's catalogue object (no `text`): title, price, image, url, categories, …
    pub items: Vec<Value>,
    pub rows: Rows,
}

fn bad(origin: &str, why: impl Into<String>) -> Error {
    Error::bad_file(origin, why)
}

impl Shard {
    pub fn to_bytes(&self, dim: usize) -> Vec<u8> {
        let meta = HashMap::from([
            (
                "ids".to_string(),
                serde_json::to_string(&self.ids).expect("ids serialise"),
            ),
            (
                "items".to_string(),
                serde_json::to_string(&self.items).expect("items serialise"),
            ),
        ]);
        self.rows.to_bytes_with(dim, Some(meta))
    }

    /// Reads a shard of `items` rows of `dim` (checked against the manifest before: this checks
    /// the content's shape), naming `origin` in errors.
    pub fn from_bytes(bytes: &[u8], items: usize, dim: usize, origin: &str) -> Result<Self> {
        let rows = Rows::from_bytes(bytes, items, dim, origin)?;
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(origin, format!("not a safetensors file: {e}")))?;
        let meta = header
            .metadata()
            .as_ref()
            .ok_or_else(|| bad(origin, "no metadata (ids, items)"))?;
        let field = |name: &str| -> Result<Vec<Value>> {
            let text = meta
                .get(name)
                .ok_or_else(|| bad(origin, format!("no {name:?} in the metadata")))?;
            let list: Vec<Value> = serde_json::from_str(text)
                .map_err(|e| bad(origin, format!("{name}: not a JSON array: {e}")))?;
            if list.len() != items {
                return Err(bad(
                    origin,
                    format!("{} {name} for {items} rows", list.len()),
                ));
            }
            Ok(list)
        };
        let ids = field("ids")?
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(bad(origin, format!("id {other} is not a string"))),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            ids,
            items: field("items")?,
            rows,
        })
    }
}

/// The centroid file's bytes.
pub fn centroids_to_bytes(centroids: &[f32], dim: usize) -> Vec<u8> {
    let cells = centroids.len() / dim.max(1);
    let data: Vec<u8> = centroids.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = TensorView::new(Dtype::F32, vec![cells, dim], &data).expect("shape matches");
    safetensors::serialize([("centroids", view)], None).expect("serialises")
}

/// Reads `cells` centroids of `dim` back (finite values, or an error naming `origin`).
pub fn centroids_from_bytes(
    bytes: &[u8],
    cells: usize,
    dim: usize,
    origin: &str,
) -> Result<Vec<f32>> {
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| bad(origin, format!("not a safetensors file: {e}")))?;
    let t = file
        .tensor("centroids")
        .map_err(|_| bad(origin, "no tensor \"centroids\""))?;
    if t.dtype() != Dtype::F32 || t.shape() != [cells, dim] {
        return Err(bad(
            origin,
            format!(
                "centroids: {:?} {:?}, expected F32 [{cells}, {dim}]",
                t.dtype(),
                t.shape()
            ),
        ));
    }
    let values: Vec<f32> = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if values.iter().any(|v| !v.is_finite()) {
        return Err(bad(origin, "a centroid is not finite"));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_reads_back_and_a_wrong_count_is_refused_by_name() {
        let shard = Shard {
            ids: vec!["a".into(), "b".into()],
            items: vec![
                serde_json::json!({"id": "a", "title": "Tea", "price": 3.5}),
                serde_json::json!({"id": "b", "title": "Mug"}),
            ],
            rows: Rows {
                vectors: vec![1, -2, 3, 127, 0, -127],
                scales: vec![0.5, 0.25],
                hashes: vec![7, 9],
            },
        };
        let bytes = shard.to_bytes(3);
        assert_eq!(Shard::from_bytes(&bytes, 2, 3, "s").unwrap(), shard);
        let err = Shard::from_bytes(&bytes, 3, 3, "shards/x.safetensors")
            .unwrap_err()
            .to_string();
        assert!(err.contains("shards/x.safetensors"), "{err}");
        let c = centroids_to_bytes(&[1.0, 0.0, 0.0, 1.0], 2);
        assert_eq!(
            centroids_from_bytes(&c, 2, 2, "c").unwrap(),
            vec![1.0, 0.0, 0.0, 1.0]
        );
        assert!(centroids_from_bytes(&c, 3, 2, "c").is_err());
    }
}
