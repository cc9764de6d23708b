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

    /// Commits `state` as `state.json` (atomically: the commit point), then removes the records
    /// that are not in `keep` — only now may the previous epoch's records go.
    pub fn commit<S: Serialize>(&self, state: &S, keep: &[String]) -> Result<()> {
        let json = serde_json::to_vec_pretty(state).expect("state serialises");
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

    /// A module record of the folder.
    pub fn module_record(&self, name: &str) -> Result<ModuleRecord> {
        let p = self.dir.join(name);
        let bytes = std::fs::read(&p).map_err(|e| Error::io(p.display(), e))?;
        ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
            .map_err(|e| bad(&p, format!("unreadable record: {e}")))
    }

    /// An optimizer record of the folder.
    pub fn optim_record(&self, name: &str) -> Result<OptimizerRecord> {
        let p = self.dir.join(name);
        let bytes = std::fs::read(&p).map_err(|e| Error::io(p.display(), e))?;
        OptimizerRecord::from_bytes(Bytes::from_bytes_vec(bytes))
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
