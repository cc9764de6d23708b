//! The index folder on disk (native): reading one back checked against its bundle, and writing
//! one — a single `vectors.safetensors`, or the shards, popular shard and centroids of a
//! partitioned index — every file atomically, the manifest last, then the files of an earlier
//! layout removed.

use std::collections::BTreeMap;
use std::path::Path;

use crate::bundle::Manifest;
use crate::bundle::manifest::MANIFEST_FILE;
use crate::contracts::sha256_hex;
use crate::error::{Error, Result};
use crate::fsio::write_atomic;
use crate::index::format::{
    IDS_FILE, INDEX_FORMAT, INDEX_FORMAT_VERSION, INDEX_MANIFEST, IndexManifest, ItemIndex,
    ModelRef, NewItemRows, PARTITIONED_FORMAT_VERSION, Rows, VECTORS_FILE,
};
use crate::index::partition::{PartitionConfig, partition, unit_rows};
use crate::index::quantise::dequantise_rows;
use crate::index::shard::{
    CENTROIDS_FILE, Partitions, SHARD_DIR, Shard, ShardRef, centroids_to_bytes,
};

/// How a partitioned index is cut and probed.
#[derive(Debug, Clone, PartialEq)]
pub struct CellLayout {
    pub partition: PartitionConfig,
    /// Cells ranked per recommendation.
    pub nprobe: usize,
    /// Other cells fetched with them (fixed count; never ranked).
    pub decoys: usize,
    /// Items in the popular shard.
    pub popular: usize,
}

/// The bundle at `model` as an index names it: its name and its `manifest.json`'s sha256.
pub fn bundle_ref(model: &Path) -> Result<ModelRef> {
    let path = model.join(MANIFEST_FILE);
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::MissingModelFile {
            file: path.display().to_string(),
            hint: Some("not a ranklet bundle; `ranklet train --out DIR` writes one".into()),
        },
        _ => Error::io(path.display(), e),
    })?;
    let manifest = Manifest::from_json(&bytes, &path.display().to_string())?;
    Ok(ModelRef {
        name: manifest.name,
        manifest_sha256: sha256_hex(&bytes),
    })
}

/// The index folder `index`, checked file by file and refused, by name, unless it was built
/// with the bundle at `model`.
pub fn read_index_of(model: &Path, index: &Path) -> Result<ItemIndex> {
    let items = read_index_dir(index)?;
    items.check_model(
        &bundle_ref(model)?.manifest_sha256,
        &model.display().to_string(),
    )?;
    Ok(items)
}

/// What an index folder holds: the model it was built with, and per item its id, quantised
/// row, shelf data and popularity.
#[derive(Debug, Clone)]
pub struct IndexContent<'a> {
    pub model: ModelRef,
    pub ids: &'a [&'a str],
    pub rows: &'a Rows,
    pub dim: usize,
    /// Each item's catalogue object (shards carry it); unused without cells.
    pub display: &'a [serde_json::Value],
    /// Higher: more popular (the popular shard); unused without cells.
    pub popularity: &'a [f64],
    /// How the rows of new items were placed, if any was mixed.
    pub new_items: Option<NewItemRows>,
}

/// Writes an index folder at `out` (cut into `cells` when given): every file atomically, the
/// manifest last, then the files of an earlier layout removed. Returns the bytes written.
pub fn write_index(out: &Path, content: IndexContent, cells: Option<&CellLayout>) -> Result<u64> {
    let IndexContent {
        model,
        ids,
        rows,
        dim,
        display,
        popularity,
        new_items,
    } = content;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out.display(), e))?;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let partitions = match cells {
        None => {
            let ids_bytes = serde_json::to_vec(&ids).expect("ids serialise");
            files.push((IDS_FILE.into(), ids_bytes));
            files.push((VECTORS_FILE.into(), rows.to_bytes(dim)));
            None
        }
        Some(layout) => Some(partitioned_files(
            ids, rows, display, popularity, dim, layout, &mut files,
        )),
    };
    let mut entries = BTreeMap::new();
    let mut bytes = 0u64;
    for (name, data) in &files {
        let path = out.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent.display(), e))?;
        }
        write_atomic(&path, data)?;
        entries.insert(name.clone(), Manifest::entry_for(data));
        bytes += data.len() as u64;
    }
    let manifest = IndexManifest {
        format: INDEX_FORMAT.into(),
        format_version: if partitions.is_some() {
            PARTITIONED_FORMAT_VERSION
        } else {
            INDEX_FORMAT_VERSION
        },
        model,
        items: ids.len(),
        dim,
        dtype: "int8".into(),
        files: entries,
        partitions,
        new_items,
    };
    let manifest_json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    write_atomic(&out.join(INDEX_MANIFEST), &manifest_json)?;
    remove_unlisted(out, &manifest);
    Ok(bytes + manifest_json.len() as u64)
}

/// The files of a partitioned index (centroids, one shard per cell, the popular shard), pushed
/// to `files`, and the manifest's `partitions` entry naming them.
#[allow(clippy::too_many_arguments)]
fn partitioned_files(
    ids: &[&str],
    rows: &Rows,
    display: &[serde_json::Value],
    popularity: &[f64],
    dim: usize,
    layout: &CellLayout,
    files: &mut Vec<(String, Vec<u8>)>,
) -> Partitions {
    let unit = unit_rows(&dequantise_rows(&rows.vectors, &rows.scales, dim), dim);
    let cells = partition(&unit, dim, &layout.partition);
    let shard_of = |members: &[usize]| Shard {
        ids: members.iter().map(|&i| ids[i].to_string()).collect(),
        items: members.iter().map(|&i| display[i].clone()).collect(),
        rows: Rows {
            vectors: members
                .iter()
                .flat_map(|&i| rows.vectors[i * dim..(i + 1) * dim].iter().copied())
                .collect(),
            scales: members.iter().map(|&i| rows.scales[i]).collect(),
            hashes: members.iter().map(|&i| rows.hashes[i]).collect(),
        },
    };
    // Content-addressed names: a host can serve shards as immutable, and an update rewrites
    // only the shards whose content changed.
    let mut push = |stem: String, members: &[usize]| -> ShardRef {
        let bytes = shard_of(members).to_bytes(dim);
        let file = format!(
            "{SHARD_DIR}/{stem}-{}.safetensors",
            &sha256_hex(&bytes)[..16]
        );
        files.push((file.clone(), bytes));
        ShardRef {
            file,
            items: members.len(),
        }
    };
    let shards: Vec<ShardRef> = cells
        .members
        .iter()
        .enumerate()
        .map(|(c, m)| push(format!("{c:05}"), m))
        .collect();
    let mut by_popularity: Vec<usize> = (0..ids.len()).collect();
    by_popularity.sort_by(|&a, &b| popularity[b].total_cmp(&popularity[a]).then(a.cmp(&b)));
    by_popularity.truncate(layout.popular.clamp(1, ids.len()));
    let popular = push("popular".into(), &by_popularity);
    files.push((
        CENTROIDS_FILE.into(),
        centroids_to_bytes(&cells.centroids, dim),
    ));
    Partitions {
        centroids: CENTROIDS_FILE.into(),
        shards,
        popular,
        nprobe: layout.nprobe,
        decoys: layout.decoys,
        min_shard: layout.partition.min_shard,
        max_popularity: display
            .iter()
            .filter_map(|item| item.get("popularity").and_then(serde_json::Value::as_f64))
            .map(|p| p as f32)
            .reduce(f32::max),
    }
}

/// Removes the index files at `out` its manifest no longer lists (an earlier layout's, or
/// shards whose content changed). Best effort: a file left behind is never read.
fn remove_unlisted(out: &Path, manifest: &IndexManifest) {
    for name in [IDS_FILE, VECTORS_FILE, CENTROIDS_FILE] {
        if !manifest.files.contains_key(name) {
            let _ = std::fs::remove_file(out.join(name));
        }
    }
    if let Ok(entries) = std::fs::read_dir(out.join(SHARD_DIR)) {
        for entry in entries.flatten() {
            let name = format!("{SHARD_DIR}/{}", entry.file_name().to_string_lossy());
            if name.ends_with(".safetensors") && !manifest.files.contains_key(&name) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Reads an index folder, every file checked against its manifest.
pub fn read_index_dir(dir: &Path) -> Result<ItemIndex> {
    let path_of = |name: &str| dir.join(name).display().to_string();
    let read = |name: &str| -> Result<Vec<u8>> {
        std::fs::read(dir.join(name)).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::MissingModelFile {
                file: path_of(name),
                hint: (name == INDEX_MANIFEST)
                    .then(|| "not an index folder; `ranklet index --out DIR` writes one".into()),
            },
            _ => Error::io(path_of(name), e),
        })
    };
    let manifest = read(INDEX_MANIFEST)?;
    ItemIndex::from_files(&manifest, &path_of(INDEX_MANIFEST), read).map_err(|e| match e {
        Error::BadModelFile { file, reason } if !file.contains('/') => Error::BadModelFile {
            file: path_of(&file),
            reason,
        },
        e => e,
    })
}
