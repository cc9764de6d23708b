//! Training checkpoints: written atomically at the end of every epoch, read back by `--resume`.
//!
//! A checkpoint folder holds `state.json` (the commit point) and the burnpack records it names:
//! the training model, the optimizer state and the best model so far, each tagged with the
//! epoch that wrote it. Records are written first, `state.json` last (atomically), then files
//! that no state names are removed — so a run killed at any moment leaves the previous epoch's
//! checkpoint intact and readable.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::OptimizerRecord;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsio::write_atomic;
use crate::train::{EpochLog, TrainConfig};

/// Version of `state.json` this build reads and writes.
pub const STATE_VERSION: u32 = 1;
const STATE_FILE: &str = "state.json";

/// Everything but the tensors, as of the end of `epoch`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    pub version: u32,
    /// Epochs completed.
    pub epoch: usize,
    /// The shuffling generator's state after that epoch.
    pub rng: u64,
    /// Epochs since the best validation NDCG@10.
    pub since_best: usize,
    /// Best validation NDCG@10 so far.
    pub best_ndcg10: f64,
    /// The settings of the run: a resume with other settings is refused.
    pub config: TrainConfig,
    /// A fingerprint of the model's shape and the data, also checked on resume.
    pub fingerprint: String,
    pub log: Vec<EpochLog>,
    pub model_file: String,
    pub optim_file: String,
    pub best_file: String,
}

/// A checkpoint read back from disk.
pub struct Loaded {
    pub state: TrainState,
    pub model: ModuleRecord,
    pub optim: OptimizerRecord,
    pub best: ModuleRecord,
}

/// A checkpoint folder.
#[derive(Debug, Clone)]
pub struct Checkpointer {
    dir: PathBuf,
}

fn bad(path: &Path, why: impl std::fmt::Display) -> Error {
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

    /// Writes the records of this epoch, then commits `state` (whose file names it fills in).
    /// `best` is `None` when the best model did not change since the state's `best_file`.
    pub fn save(
        &self,
        mut state: TrainState,
        model: ModuleRecord,
        optim: OptimizerRecord,
        best: Option<ModuleRecord>,
    ) -> Result<TrainState> {
        let e = state.epoch;
        let mut records = vec![
            (format!("model-{e:04}.bpk"), model.into_bytes()),
            (format!("optim-{e:04}.bpk"), optim.into_bytes()),
        ];
        if let Some(best) = best {
            records.push((format!("best-{e:04}.bpk"), best.into_bytes()));
        }
        let written = self.write_records(records)?;
        state.model_file = written[0].clone();
        state.optim_file = written[1].clone();
        if let Some(b) = written.get(2) {
            state.best_file = b.clone();
        }
        state.version = STATE_VERSION;
        let keep = [
            state.model_file.clone(),
            state.optim_file.clone(),
            state.best_file.clone(),
        ];
        self.commit(&state, &keep)?;
        Ok(state)
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

    /// Reads the committed checkpoint.
    pub fn load(&self) -> Result<Loaded> {
        let state: TrainState = self.load_state()?;
        if state.version != STATE_VERSION {
            return Err(bad(
                &self.dir.join(STATE_FILE),
                format!(
                    "state version {} is not supported (this build reads {STATE_VERSION})",
                    state.version
                ),
            ));
        }
        Ok(Loaded {
            model: self.module_record(&state.model_file)?,
            best: self.module_record(&state.best_file)?,
            optim: self.optim_record(&state.optim_file)?,
            state,
        })
    }
}

/// A fingerprint of a module's parameter shapes, so a checkpoint is not applied to a model of
/// another shape.
pub fn shape_fingerprint<M: Module>(module: &M, extra: &str) -> String {
    let mut shapes = Vec::new();
    module.visit(&mut ShapeVisitor(&mut shapes));
    crate::bundle::sha256_hex(format!("{shapes:?} {extra}").as_bytes())
}

struct ShapeVisitor<'a>(&'a mut Vec<Vec<usize>>);

impl burn::module::ModuleVisitor for ShapeVisitor<'_> {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<burn::Tensor<D>>) {
        self.0.push(param.val().dims().to_vec());
    }
}
