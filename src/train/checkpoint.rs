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
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(self.dir.display(), e))?;
        let e = state.epoch;
        let write = |name: String, bytes: std::result::Result<Bytes, _>| -> Result<String> {
            let path = self.dir.join(&name);
            let bytes = bytes.map_err(|err| bad(&path, format!("cannot serialise: {err}")))?;
            write_atomic(&path, &bytes)?;
            Ok(name)
        };
        state.model_file = write(format!("model-{e:04}.bpk"), model.into_bytes())?;
        state.optim_file = write(format!("optim-{e:04}.bpk"), optim.into_bytes())?;
        if let Some(best) = best {
            state.best_file = write(format!("best-{e:04}.bpk"), best.into_bytes())?;
        }
        state.version = STATE_VERSION;
        let json = serde_json::to_vec_pretty(&state).expect("state serialises");
        write_atomic(&self.dir.join(STATE_FILE), &json)?;
        // Only now may the previous epoch's records go.
        let keep = [&state.model_file, &state.optim_file, &state.best_file];
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(".bpk") && !keep.iter().any(|k| **k == name) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(state)
    }

    /// Reads the committed checkpoint.
    pub fn load(&self) -> Result<Loaded> {
        let path = self.dir.join(STATE_FILE);
        let text = std::fs::read(&path).map_err(|e| Error::io(path.display(), e))?;
        let state: TrainState = serde_json::from_slice(&text)
            .map_err(|e| bad(&path, format!("not a training state: {e}")))?;
        if state.version != STATE_VERSION {
            return Err(bad(
                &path,
                format!(
                    "state version {} is not supported (this build reads {STATE_VERSION})",
                    state.version
                ),
            ));
        }
        let read = |name: &str| -> Result<Bytes> {
            let p = self.dir.join(name);
            let bytes = std::fs::read(&p).map_err(|e| Error::io(p.display(), e))?;
            Ok(Bytes::from_bytes_vec(bytes))
        };
        let module = |name: &str| -> Result<ModuleRecord> {
            ModuleRecord::from_bytes(read(name)?)
                .map_err(|e| bad(&self.dir.join(name), format!("unreadable record: {e}")))
        };
        let model = module(&state.model_file)?;
        let best = module(&state.best_file)?;
        let optim = OptimizerRecord::from_bytes(read(&state.optim_file)?).map_err(|e| {
            bad(
                &self.dir.join(&state.optim_file),
                format!("unreadable optimizer state: {e}"),
            )
        })?;
        Ok(Loaded {
            state,
            model,
            optim,
            best,
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
