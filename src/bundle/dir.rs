//! Model folders on disk (native only): reading any encoder folder, writing a bundle.

use crate::bundle::files::EncoderFiles;
use crate::bundle::manifest::{MANIFEST_FILE, Manifest, RecommenderEntry};
use crate::error::{Error, Result};
use crate::text::tokenizer::DEFAULT_MAX_SEQ_LEN;

/// Reads a model folder from disk: a ranklet bundle (with `manifest.json`, every file verified)
/// or a plain HF / sentence-transformers folder (`config.json`, `tokenizer.json`,
/// `model.safetensors`, optionally `sentence_bert_config.json` and `1_Pooling/config.json`).
pub fn read_model_dir(dir: &std::path::Path) -> Result<EncoderFiles> {
    let shown = dir.display().to_string();
    if !dir.is_dir() {
        return Err(Error::MissingModelFile {
            file: shown,
            hint: Some(
                "no such model folder; ./build.sh fetches the teacher into models/teacher".into(),
            ),
        });
    }
    let path_of = |name: &str| format!("{}/{}", shown.trim_end_matches('/'), name);
    let read = |name: &str| -> Result<Vec<u8>> {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::MissingModelFile {
                file: path_of(name),
                hint: None,
            },
            _ => Error::io(path.display(), e),
        })
    };
    // Errors from the manifest check name the file without its folder; put the folder back.
    let in_dir = |e: Error| match e {
        Error::BadModelFile { file, reason } if !file.contains('/') => Error::BadModelFile {
            file: path_of(&file),
            reason,
        },
        e => e,
    };

    if dir.join(MANIFEST_FILE).exists() {
        let manifest = Manifest::from_json(&read(MANIFEST_FILE)?, &path_of(MANIFEST_FILE))?;
        let mut files = EncoderFiles::from_manifest(&manifest, read).map_err(in_dir)?;
        for slot in [&mut files.config, &mut files.tokenizer, &mut files.weights] {
            slot.0 = path_of(&slot.0);
        }
        return Ok(files);
    }

    let weights_name = ["model.safetensors", "encoder.safetensors"]
        .into_iter()
        .find(|n| dir.join(n).exists())
        .unwrap_or("model.safetensors");
    let mut max_seq_length = DEFAULT_MAX_SEQ_LEN;
    if let Ok(bytes) = std::fs::read(dir.join("sentence_bert_config.json")) {
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            Error::bad_file(
                path_of("sentence_bert_config.json"),
                format!("not JSON: {e}"),
            )
        })?;
        if let Some(n) = v.get("max_seq_length").and_then(|n| n.as_u64()) {
            max_seq_length = n as usize;
        }
    }
    if let Ok(bytes) = std::fs::read(dir.join("1_Pooling/config.json")) {
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            Error::bad_file(path_of("1_Pooling/config.json"), format!("not JSON: {e}"))
        })?;
        if v.get("pooling_mode_mean_tokens").and_then(|b| b.as_bool()) != Some(true) {
            return Err(Error::bad_file(
                path_of("1_Pooling/config.json"),
                "only mean pooling (pooling_mode_mean_tokens) is supported",
            ));
        }
    }
    Ok(EncoderFiles {
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| shown.clone()),
        config: (path_of("config.json"), read("config.json")?),
        tokenizer: (path_of("tokenizer.json"), read("tokenizer.json")?),
        weights: (path_of(weights_name), read(weights_name)?),
        max_seq_length,
        normalize: true,
    })
}

/// Writes an encoder as a ranklet bundle folder: its three files plus a `manifest.json` that
/// records each file's size and sha256. Every file is written atomically, the manifest last.
pub fn write_encoder_dir(dir: &std::path::Path, files: &EncoderFiles) -> Result<Manifest> {
    write_bundle(dir, files, None, serde_json::Value::Null)
}

/// A trained recommender's part of a bundle.
pub struct RecommenderFiles {
    pub entry: RecommenderEntry,
    /// The bytes of `entry.weights`.
    pub weights: Vec<u8>,
    /// The item ids, in the model's row order (written as `entry.items`).
    pub items: Vec<String>,
}

/// Writes a bundle folder: the encoder's three files, the recommender's files when given, and
/// `manifest.json` with every file's size and sha256 and the `metrics`. Every file is written
/// atomically and the manifest last, so a reader never sees a manifest without its files.
pub fn write_bundle(
    dir: &std::path::Path,
    files: &EncoderFiles,
    recommender: Option<&RecommenderFiles>,
    metrics: serde_json::Value,
) -> Result<Manifest> {
    use crate::bundle::manifest::{EncoderEntry, FORMAT, FORMAT_VERSION};
    use crate::fsio::write_atomic;

    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
    let base = |path: &str| {
        std::path::Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.to_string())
    };
    let mut entries = std::collections::BTreeMap::new();
    let mut write = |name: &str, bytes: &[u8]| -> Result<()> {
        write_atomic(&dir.join(name), bytes)?;
        entries.insert(name.to_string(), Manifest::entry_for(bytes));
        Ok(())
    };
    let mut names = Vec::new();
    for (name, bytes) in [&files.config, &files.tokenizer, &files.weights] {
        let name = base(name);
        write(&name, bytes)?;
        names.push(name);
    }
    if let Some(rec) = recommender {
        write(&rec.entry.weights, &rec.weights)?;
        let items = serde_json::to_vec(&rec.items).expect("ids serialise");
        write(&rec.entry.items, &items)?;
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        name: files.name.clone(),
        encoder: EncoderEntry {
            config: names[0].clone(),
            tokenizer: names[1].clone(),
            weights: names[2].clone(),
            max_seq_length: files.max_seq_length,
            pooling: "mean".into(),
            normalize: files.normalize,
        },
        files: entries,
        recommender: recommender.map(|r| r.entry.clone()),
        metrics,
    };
    let text = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    write_atomic(&dir.join(MANIFEST_FILE), &text)?;
    Ok(manifest)
}

/// Reads the recommender of a bundle folder (every file verified against the manifest).
pub fn read_recommender_dir(dir: &std::path::Path) -> Result<RecommenderFiles> {
    let path = dir.join(MANIFEST_FILE);
    let shown = path.display().to_string();
    let text = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::MissingModelFile {
            file: shown.clone(),
            hint: Some("not a ranklet bundle; `ranklet train --out DIR` writes one".into()),
        },
        _ => Error::io(&shown, e),
    })?;
    let manifest = Manifest::from_json(&text, &shown)?;
    let entry = manifest.recommender.clone().ok_or_else(|| {
        Error::bad_file(
            &shown,
            "this bundle has no recommender (a text encoder only); train one with `ranklet train --out`",
        )
    })?;
    let read = |name: &str| -> Result<Vec<u8>> {
        let p = dir.join(name);
        let bytes = std::fs::read(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::MissingModelFile {
                file: p.display().to_string(),
                hint: None,
            },
            _ => Error::io(p.display(), e),
        })?;
        manifest.verify(name, &bytes).map_err(|e| match e {
            Error::BadModelFile { reason, .. } => Error::BadModelFile {
                file: p.display().to_string(),
                reason,
            },
            e => e,
        })?;
        Ok(bytes)
    };
    let weights = read(&entry.weights)?;
    let items_path = dir.join(&entry.items);
    let items: Vec<String> = serde_json::from_slice(&read(&entry.items)?).map_err(|e| {
        Error::bad_file(
            items_path.display().to_string(),
            format!("not a JSON array of item ids: {e}"),
        )
    })?;
    if items.len() != entry.config.items.num_items {
        return Err(Error::bad_file(
            items_path.display().to_string(),
            format!(
                "{} item ids, but the recommender was built for {}",
                items.len(),
                entry.config.items.num_items
            ),
        ));
    }
    Ok(RecommenderFiles {
        entry,
        weights,
        items,
    })
}
