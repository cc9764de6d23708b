//! Checkpoint folders shared by every long job: records written atomically, then `state.json`
//! committed (the commit point), then the records it no longer names removed. Each job keeps its
//! own state type (training's in `train::checkpoint`, distillation's in `distill::run`).

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::OptimizerRecord;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::fsio::write_atomic;

/// The commit point of a checkpoint folder.
pub const STATE_FILE: &str = "state.json";
/// The key of `state.json` that holds each kept record's sha256.
const CHECKSUMS: &str = "checksums";

/// A checkpoint folder.
#[derive(Debug, Clone)]
pub struct Checkpointer {
    dir: PathBuf,
}

pub(crate) fn bad(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::bad_file(path.display().to_string(), why.to_string())
}

impl Checkpointer {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the folder holds a committed checkpoint.
    pub fn exists(&self) -> bool {
        self.dir.join(STATE_FILE).is_file()
    }

    /// Writes serialised records (each atomically) into the folder; returns their names.
    pub fn write_records<E: std::fmt::Display>(
        &self,
        records: Vec<(String, std::result::Result<Bytes, E>)>,
    ) -> Result<Vec<String>> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(self.dir.display(), e))?;
        records
            .into_iter()
            .map(|(name, bytes)| {
                let path = self.dir.join(&name);
                let bytes = bytes.map_err(|err| bad(&path, format!("cannot serialise: {err}")))?;
                write_atomic(&path, &bytes)?;
                Ok(name)
            })
            .collect()
    }

    /// Commits `state` as `state.json` (atomically: the commit point), with the sha256 of each
    /// record it keeps (under `"checksums"`), then removes the records that are not in `keep` —
    /// only now may the previous epoch's records go.
    pub fn commit<S: Serialize>(&self, state: &S, keep: &[String]) -> Result<()> {
        let mut value = serde_json::to_value(state).expect("state serialises");
        let mut checksums = serde_json::Map::new();
        for name in keep.iter().filter(|n| !n.is_empty()) {
            let path = self.dir.join(name);
            let bytes = std::fs::read(&path).map_err(|e| Error::io(path.display(), e))?;
            checksums.insert(name.clone(), crate::contracts::sha256_hex(&bytes).into());
        }
        if let Some(map) = value.as_object_mut() {
            map.insert(CHECKSUMS.into(), checksums.into());
        }
        let json = serde_json::to_vec_pretty(&value).expect("state serialises");
        write_atomic(&self.dir.join(STATE_FILE), &json)?;
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(".bpk") && !keep.contains(&name) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(())
    }

    /// The committed `state.json`.
    pub fn load_state<S: serde::de::DeserializeOwned>(&self) -> Result<S> {
        let path = self.dir.join(STATE_FILE);
        let text = std::fs::read(&path).map_err(|e| Error::io(path.display(), e))?;
        serde_json::from_slice(&text)
            .map_err(|e| bad(&path, format!("not a checkpoint state: {e}")))
    }

    /// The bytes of the record `name`, checked against the sha256 that `state.json` records for
    /// it (checkpoints written before checksums were recorded are read unchecked). A missing or
    /// damaged record is refused naming it.
    fn record_bytes(&self, name: &str) -> Result<Vec<u8>> {
        let p = self.dir.join(name);
        let bytes = std::fs::read(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                bad(&p, "missing: the checkpoint's state.json names it")
            }
            _ => Error::io(p.display(), e),
        })?;
        let state: serde_json::Value = self.load_state()?;
        if let Some(want) = state[CHECKSUMS][name].as_str() {
            let actual = crate::contracts::sha256_hex(&bytes);
            if actual != want {
                return Err(bad(
                    &p,
                    format!(
                        "sha256 {actual} does not match the checkpoint's state.json ({want}): a damaged record; \
                         resume from another checkpoint or start over with --restart"
                    ),
                ));
            }
        }
        Ok(bytes)
    }

    /// A module record of the folder.
    pub fn module_record(&self, name: &str) -> Result<ModuleRecord> {
        let p = self.dir.join(name);
        ModuleRecord::from_bytes(Bytes::from_bytes_vec(self.record_bytes(name)?))
            .map_err(|e| bad(&p, format!("unreadable record: {e}")))
    }

    /// An optimizer record of the folder.
    pub fn optim_record(&self, name: &str) -> Result<OptimizerRecord> {
        let p = self.dir.join(name);
        OptimizerRecord::from_bytes(Bytes::from_bytes_vec(self.record_bytes(name)?))
            .map_err(|e| bad(&p, format!("unreadable optimizer state: {e}")))
    }
}

/// A fingerprint of a module's parameter shapes, so a checkpoint is not applied to a model of
/// another shape.
pub fn shape_fingerprint<M: Module>(module: &M, extra: &str) -> String {
    let mut shapes = Vec::new();
    module.visit(&mut ShapeVisitor(&mut shapes));
    crate::contracts::sha256_hex(format!("{shapes:?} {extra}").as_bytes())
}

struct ShapeVisitor<'a>(&'a mut Vec<Vec<usize>>);

impl burn::module::ModuleVisitor for ShapeVisitor<'_> {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<burn::Tensor<D>>) {
        self.0.push(param.val().dims().to_vec());
    }
}
