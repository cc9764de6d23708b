//! Model folders on disk (native only): reading any encoder folder, writing a bundle.

use crate::bundle::files::RecommenderFiles;
use crate::bundle::manifest::{MANIFEST_FILE, Manifest};
use crate::error::{Error, Result};
use crate::text::EncoderFiles;
use crate::text::tokenizer::DEFAULT_MAX_SEQ_LEN;

/// `dir/name` for messages.
fn path_in(dir: &std::path::Path, name: &str) -> String {
    format!(
        "{}/{}",
        dir.display().to_string().trim_end_matches('/'),
        name
    )
}

/// Errors from the manifest checks name the file without its folder; puts the folder back.
fn in_dir(dir: &std::path::Path, e: Error) -> Error {
    match e {
        Error::BadModelFile { file, reason } if !file.contains('/') => Error::BadModelFile {
            file: path_in(dir, &file),
            reason,
        },
        e => e,
    }
}

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
    let path_of = |name: &str| path_in(dir, name);
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

    if dir.join(MANIFEST_FILE).exists() {
        let manifest = Manifest::from_json(&read(MANIFEST_FILE)?, &path_of(MANIFEST_FILE))?;
        let mut files = EncoderFiles::from_manifest(&manifest, read).map_err(|e| in_dir(dir, e))?;
        for slot in [&mut files.config, &mut files.tokenizer, &mut files.weights] {
            slot.0 = path_of(&slot.0);
        }
        return Ok(files);
    }

    let weights_name = ["model.safetensors", "encoder.safetensors"]
        .into_iter()
        .find(|n| dir.join(n).exists())
        .unwrap_or("model.safetensors");
    let config = read("config.json")?;
    // Without sentence_bert_config.json, the model's own position table bounds the length, as
    // sentence-transformers does (a small BERT has fewer than the default's positions).
    let mut max_seq_length = serde_json::from_slice::<serde_json::Value>(&config)
        .ok()
        .and_then(|v| v.get("max_position_embeddings")?.as_u64())
        .map_or(DEFAULT_MAX_SEQ_LEN, |p| DEFAULT_MAX_SEQ_LEN.min(p as usize));
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
        config: (path_of("config.json"), config),
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

/// Reads the recommender of a bundle folder (every file verified against the manifest; errors
/// name the file with its folder).
pub fn read_recommender_dir(dir: &std::path::Path) -> Result<RecommenderFiles> {
    let read = |name: &str| -> Result<Vec<u8>> {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::MissingModelFile {
                file: path_in(dir, name),
                hint: (name == MANIFEST_FILE)
                    .then(|| "not a ranklet bundle; `ranklet train --out DIR` writes one".into()),
            },
            _ => Error::io(path.display(), e),
        })
    };
    let manifest = Manifest::from_json(&read(MANIFEST_FILE)?, &path_in(dir, MANIFEST_FILE))?;
    RecommenderFiles::from_manifest(&manifest, read).map_err(|e| in_dir(dir, e))
}

/// Adds files to a written bundle folder (e.g. a second encoder file for other readers): each
/// written atomically, then the manifest rewritten with their sizes and checksums.
pub fn add_bundle_files(dir: &std::path::Path, extra: &[(&str, &[u8])]) -> Result<Manifest> {
    use crate::fsio::write_atomic;
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read(&path).map_err(|e| Error::io(path.display(), e))?;
    let mut manifest = Manifest::from_json(&text, &path.display().to_string())?;
    for (name, bytes) in extra {
        write_atomic(&dir.join(name), bytes)?;
        manifest
            .files
            .insert((*name).to_string(), Manifest::entry_for(bytes));
    }
    let text = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    write_atomic(&path, &text)?;
    Ok(manifest)
}

/// The `manifest.json` of a bundle folder.
pub fn read_manifest(dir: &std::path::Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(path.display(), e))?;
    Manifest::from_json(&bytes, &path.display().to_string())
}

/// Makes `dir` ready for a new bundle: the files an earlier bundle's manifest lists are removed
/// (so none is left stale); a folder that holds anything else is refused, never emptied.
pub fn clear_bundle(dir: &std::path::Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let listed: Vec<String> = match read_manifest(dir) {
        Ok(m) => m
            .files
            .keys()
            .cloned()
            .chain([MANIFEST_FILE.to_string()])
            .collect(),
        Err(_) => Vec::new(),
    };
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir.display(), e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !listed.contains(&name) && !name.starts_with('.') {
            return Err(Error::bad_input(
                dir.display().to_string(),
                format!(
                    "--out holds {name}, which is not part of a ranklet bundle; choose an empty or new folder"
                ),
            ));
        }
    }
    for name in listed {
        let _ = std::fs::remove_file(dir.join(name));
    }
    Ok(())
}
