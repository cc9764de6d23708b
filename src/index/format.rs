//! The index folder a static host serves next to the bundle:
//!
//! - `manifest.json`: format and version, the model it was built with (the name and the sha256
//!   of that bundle's `manifest.json`: an index of another model is refused by name), the
//!   item count and width, and every file's size and sha256;
//! - `vectors.safetensors`: `vectors` (I8 `[items, dim]`, the item tower's output quantised per
//!   row), `scales` (F32 `[items]`), `text_hashes` (U64 `[items]`, the first 8 bytes of each
//!   item text's sha256: what `--update` and the browser compare to skip unchanged items);
//! - `items.json`: the item ids, in row order.

use std::collections::{BTreeMap, HashMap};

use burn::prelude::*;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::bundle::FileEntry;
use crate::contracts::sha256_hex;
use crate::error::{Error, Result};
use crate::index::quantise::dequantise_rows;
use crate::index::shard::{Partitions, Shard, centroids_from_bytes};
use crate::rec::ItemVectors;
use crate::rec::model::l2_rows;

pub const INDEX_FORMAT: &str = "ranklet-index";
/// Version 1: one `vectors.safetensors`; version 2: partitioned (`partitions` in the manifest).
pub const INDEX_FORMAT_VERSION: u32 = 1;
pub const PARTITIONED_FORMAT_VERSION: u32 = 2;
pub const INDEX_MANIFEST: &str = "manifest.json";
pub const VECTORS_FILE: &str = "vectors.safetensors";
pub const IDS_FILE: &str = "items.json";

/// The model an index was built with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    pub name: String,
    /// sha256 of the bundle's `manifest.json` (which lists every file's sha256).
    pub manifest_sha256: String,
}

/// `manifest.json` of an index folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexManifest {
    pub format: String,
    pub format_version: u32,
    pub model: ModelRef,
    pub items: usize,
    /// Width of the item vectors (the recommender's hidden size).
    pub dim: usize,
    /// How the vectors are stored (`int8`: one f32 scale per row).
    pub dtype: String,
    pub files: BTreeMap<String, FileEntry>,
    /// The shards of a partitioned index (`None`: one `vectors.safetensors`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<Partitions>,
    /// How the rows of items the model never trained on were placed among the trained ones
    /// (`None`: no row was mixed, or an index built before the mix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_items: Option<NewItemRows>,
}

/// What an index records of its new items' rows: each was mixed by `mix` with its nearest
/// trained items of the catalogue (the ids and texts `trained_sha256` names), so an update
/// whose trained items differ embeds them again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewItemRows {
    /// Rows mixed.
    pub rows: usize,
    pub mix: crate::rec::NeighbourMix,
    /// sha256 of the trained items' `id\ttext-hash\n` lines, in catalogue order.
    pub trained_sha256: String,
}

/// Each id's position in `ids`.
fn rows_by_id(ids: &[String]) -> HashMap<&str, usize> {
    ids.iter()
        .enumerate()
        .map(|(r, id)| (id.as_str(), r))
        .collect()
}

/// The first 8 bytes of a text's sha256, as the index stores it.
pub fn text_hash(text: &str) -> u64 {
    let hex = sha256_hex(text.as_bytes());
    u64::from_str_radix(&hex[..16], 16).expect("hex digits")
}

/// An index read back and checked: ids, quantised rows, scales and text hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemIndex {
    pub manifest: IndexManifest,
    pub ids: Vec<String>,
    pub vectors: Vec<i8>,
    pub scales: Vec<f32>,
    pub hashes: Vec<u64>,
    /// A partitioned index's cells (`None`: not partitioned).
    pub cells: Option<Cells>,
}

/// The cells of a partitioned index read whole (natively): rows are in shard order.
#[derive(Debug, Clone, PartialEq)]
pub struct Cells {
    /// Unit centroids, `dim` per shard.
    pub centroids: Vec<f32>,
    /// The index rows of each shard.
    pub shard_rows: Vec<std::ops::Range<usize>>,
    /// The index rows of the popular shard's items.
    pub popular: Vec<usize>,
    pub nprobe: usize,
    pub decoys: usize,
}

fn bad(file: &str, why: impl Into<String>) -> Error {
    Error::bad_file(file, why)
}

impl IndexManifest {
    /// Parses and checks a manifest (`origin` names it in errors).
    pub fn from_json(bytes: &[u8], origin: &str) -> Result<Self> {
        let m: IndexManifest = serde_json::from_slice(bytes)
            .map_err(|e| bad(origin, format!("not an index manifest: {e}")))?;
        let version = if m.partitions.is_some() {
            PARTITIONED_FORMAT_VERSION
        } else {
            INDEX_FORMAT_VERSION
        };
        if m.format != INDEX_FORMAT || m.format_version != version {
            return Err(bad(
                origin,
                format!(
                    "format {} v{} is not {INDEX_FORMAT} v{INDEX_FORMAT_VERSION} (one file) or \
                     v{PARTITIONED_FORMAT_VERSION} (partitioned), or its partitions do not match",
                    m.format, m.format_version
                ),
            ));
        }
        if let Some(p) = &m.partitions {
            let total: usize = p.shards.iter().map(|s| s.items).sum();
            if total != m.items || p.shards.is_empty() {
                return Err(bad(
                    origin,
                    format!(
                        "{} shards hold {total} items, not {}",
                        p.shards.len(),
                        m.items
                    ),
                ));
            }
        }
        if m.dtype != "int8" {
            return Err(bad(origin, format!("dtype {:?} is not int8", m.dtype)));
        }
        Ok(m)
    }

    /// Checks `bytes` against the size and sha256 recorded for `name`.
    pub fn verify(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.files
            .get(name)
            .ok_or_else(|| bad(name, "not listed in the index's manifest.json"))?
            .check(name, bytes, "the index's manifest.json")
    }
}

impl ItemIndex {
    /// Reads an index from its manifest's bytes and a reader of its files (a folder, or buffers
    /// the browser fetched); every file is checked against the manifest before it is parsed.
    pub fn from_files(
        manifest: &[u8],
        origin: &str,
        mut read: impl FnMut(&str) -> Result<Vec<u8>>,
    ) -> Result<Self> {
        let manifest = IndexManifest::from_json(manifest, origin)?;
        let mut take = |name: &str| -> Result<Vec<u8>> {
            let bytes = read(name)?;
            manifest.verify(name, &bytes)?;
            Ok(bytes)
        };
        let (n, dim) = (manifest.items, manifest.dim);
        if let Some(p) = manifest.partitions.clone() {
            let centroids =
                centroids_from_bytes(&take(&p.centroids)?, p.shards.len(), dim, &p.centroids)?;
            let (mut ids, mut rows, mut shard_rows) = (Vec::new(), Vec::new(), Vec::new());
            for s in &p.shards {
                let shard = Shard::from_bytes(&take(&s.file)?, s.items, dim, &s.file)?;
                shard_rows.push(ids.len()..ids.len() + s.items);
                ids.extend(shard.ids);
                rows.push(shard.rows);
            }
            let popular = Shard::from_bytes(
                &take(&p.popular.file)?,
                p.popular.items,
                dim,
                &p.popular.file,
            )?;
            let at = rows_by_id(&ids);
            let popular = popular
                .ids
                .iter()
                .map(|id| {
                    at.get(id.as_str())
                        .copied()
                        .ok_or_else(|| bad(&p.popular.file, format!("item {id:?} is in no shard")))
                })
                .collect::<Result<Vec<_>>>()?;
            return Ok(Self {
                ids,
                vectors: rows
                    .iter()
                    .flat_map(|r| r.vectors.iter().copied())
                    .collect(),
                scales: rows.iter().flat_map(|r| r.scales.iter().copied()).collect(),
                hashes: rows.iter().flat_map(|r| r.hashes.iter().copied()).collect(),
                cells: Some(Cells {
                    centroids,
                    shard_rows,
                    popular,
                    nprobe: p.nprobe,
                    decoys: p.decoys,
                }),
                manifest,
            });
        }
        let ids_bytes = take(IDS_FILE)?;
        let ids: Vec<String> = serde_json::from_slice(&ids_bytes)
            .map_err(|e| bad(IDS_FILE, format!("not a JSON array of item ids: {e}")))?;
        let Rows {
            vectors,
            scales,
            hashes,
        } = Rows::from_bytes(&take(VECTORS_FILE)?, n, dim, VECTORS_FILE)?;
        if ids.len() != n {
            return Err(bad(
                IDS_FILE,
                format!("{} ids for {n} indexed items", ids.len()),
            ));
        }
        Ok(Self {
            manifest,
            ids,
            vectors,
            scales,
            hashes,
            cells: None,
        })
    }

    /// Refuses an index built with another model than the bundle whose `manifest.json` hashes to
    /// `bundle_manifest_sha256`, naming both.
    pub fn check_model(&self, bundle_manifest_sha256: &str, bundle: &str) -> Result<()> {
        if self.manifest.model.manifest_sha256 != bundle_manifest_sha256 {
            return Err(bad(
                INDEX_MANIFEST,
                format!(
                    "the index was built with model {:?} (manifest sha256 {}), not with {bundle}; \
                     rebuild it with `ranklet index --model {bundle}`",
                    self.manifest.model.name,
                    &self.manifest.model.manifest_sha256
                        [..12.min(self.manifest.model.manifest_sha256.len())]
                ),
            ));
        }
        Ok(())
    }

    /// Each indexed id's row.
    pub fn row_of(&self) -> HashMap<&str, usize> {
        rows_by_id(&self.ids)
    }

    /// The index rows of `ids`, in their order; ids the index lacks are an error naming how
    /// many and the first (a stale index: rebuild it with `ranklet index --update`).
    pub fn rows_for(&self, ids: &[String]) -> Result<Vec<usize>> {
        let row = self.row_of();
        let missing: Vec<&String> = ids
            .iter()
            .filter(|id| !row.contains_key(id.as_str()))
            .collect();
        if let Some(first) = missing.first() {
            return Err(Error::bad_input(
                INDEX_MANIFEST,
                format!(
                    "{} catalogue items are not in the index (the first: {first:?}); update it                      with `ranklet index --update`",
                    missing.len()
                ),
            ));
        }
        Ok(ids.iter().map(|id| row[id.as_str()]).collect())
    }

    /// For a partitioned index, its cells as the evaluation probes them over a catalogue whose
    /// row `r` is index row `order[r]` (`None`: not partitioned).
    pub fn cell_probe(&self, order: &[usize]) -> Option<crate::eval::CellProbe> {
        let cells = self.cells.as_ref()?;
        let mut cell_of_row = vec![usize::MAX; self.ids.len()];
        for (c, rows) in cells.shard_rows.iter().enumerate() {
            for r in rows.clone() {
                cell_of_row[r] = c;
            }
        }
        let mut catalogue_row = vec![usize::MAX; self.ids.len()];
        for (r, &i) in order.iter().enumerate() {
            catalogue_row[i] = r;
        }
        Some(crate::eval::CellProbe {
            centroids: cells.centroids.clone(),
            dim: self.manifest.dim,
            cell_of: order.iter().map(|&i| cell_of_row[i]).collect(),
            popular: cells
                .popular
                .iter()
                .map(|&i| catalogue_row[i])
                .filter(|&r| r != usize::MAX)
                .collect(),
            nprobe: cells.nprobe,
        })
    }

    /// The rows as f32 (the item tower's output, up to int8 rounding).
    pub fn rows(&self) -> Vec<f32> {
        dequantise_rows(&self.vectors, &self.scales, self.manifest.dim)
    }

    /// The f32 rows `order` (indices into the index), flat, in that order.
    pub fn rows_in(&self, order: &[usize]) -> Vec<f32> {
        let dim = self.manifest.dim;
        order
            .iter()
            .flat_map(|&r| {
                dequantise_rows(
                    &self.vectors[r * dim..(r + 1) * dim],
                    &self.scales[r..=r],
                    dim,
                )
            })
            .collect()
    }

    /// The rows `order` (indices into the index) as [`ItemVectors`] on `device`: what the
    /// ranker scores against, with no tower to run.
    pub fn item_vectors(&self, order: &[usize], device: &Device) -> ItemVectors {
        let raw = Tensor::<2>::from_data(
            TensorData::new(self.rows_in(order), [order.len(), self.manifest.dim]),
            device,
        );
        ItemVectors {
            unit: l2_rows(raw.clone()),
            items: order.len(),
            raw,
        }
    }
}

/// Quantised item rows: `vectors` (int8, `dim` per row), a scale and a text hash per row — the
/// content of `vectors.safetensors` and of `ranklet index`'s committed chunks.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    pub vectors: Vec<i8>,
    pub scales: Vec<f32>,
    pub hashes: Vec<u64>,
}

impl Rows {
    /// Serialises the rows as safetensors (`vectors` I8 `[n, dim]`, `scales` F32 `[n]`,
    /// `text_hashes` U64 `[n]`).
    pub fn to_bytes(&self, dim: usize) -> Vec<u8> {
        self.to_bytes_with(dim, None)
    }

    /// [`Rows::to_bytes`] with string metadata in the safetensors header.
    pub fn to_bytes_with(&self, dim: usize, metadata: Option<HashMap<String, String>>) -> Vec<u8> {
        let n = self.scales.len();
        let q: Vec<u8> = self.vectors.iter().map(|&v| v as u8).collect();
        let s: Vec<u8> = self.scales.iter().flat_map(|v| v.to_le_bytes()).collect();
        let h: Vec<u8> = self.hashes.iter().flat_map(|v| v.to_le_bytes()).collect();
        let views = [
            (
                "vectors",
                TensorView::new(Dtype::I8, vec![n, dim], &q).expect("shape matches"),
            ),
            (
                "scales",
                TensorView::new(Dtype::F32, vec![n], &s).expect("shape matches"),
            ),
            (
                "text_hashes",
                TensorView::new(Dtype::U64, vec![n], &h).expect("shape matches"),
            ),
        ];
        safetensors::serialize(views, metadata).expect("serialises")
    }

    /// Reads `n` rows of `dim` back; a missing tensor, a wrong shape or type, or a scale that is
    /// not a positive number is an error naming `origin`.
    pub fn from_bytes(bytes: &[u8], n: usize, dim: usize, origin: &str) -> Result<Self> {
        let file = SafeTensors::deserialize(bytes)
            .map_err(|e| bad(origin, format!("not a safetensors file: {e}")))?;
        let tensor = |name: &str, dtype: Dtype, shape: &[usize]| -> Result<Vec<u8>> {
            let t = file
                .tensor(name)
                .map_err(|_| bad(origin, format!("no tensor {name:?}")))?;
            if t.dtype() != dtype || t.shape() != shape {
                return Err(bad(
                    origin,
                    format!(
                        "{name}: {:?} {:?}, expected {dtype:?} {shape:?}",
                        t.dtype(),
                        t.shape()
                    ),
                ));
            }
            Ok(t.data().to_vec())
        };
        let vectors = tensor("vectors", Dtype::I8, &[n, dim])?
            .into_iter()
            .map(|b| b as i8)
            .collect();
        let scales: Vec<f32> = tensor("scales", Dtype::F32, &[n])?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let hashes = tensor("text_hashes", Dtype::U64, &[n])?
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect();
        if scales.iter().any(|s| !s.is_finite() || *s <= 0.0) {
            return Err(bad(origin, "a row scale is not a positive number"));
        }
        Ok(Self {
            vectors,
            scales,
            hashes,
        })
    }
}
