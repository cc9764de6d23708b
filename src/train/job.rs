//! `ranklet train` as a library call: read the dataset and the text vectors, build or load the
//! recommender, train it (and optionally the text encoder's top layers), evaluate it with the
//! protocol, and write the bundle. The CLI only parses arguments into a [`TrainJob`] and prints
//! the [`TrainOutcome`].

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use serde_json::json;

use crate::bundle::{
    RecommenderEntry, RecommenderFiles, read_model_dir, read_recommender_dir, write_bundle,
};
use crate::contracts::ContextVocabulary;
use crate::data::{Dataset, HeldOut, Split};
use crate::device::NamedDevice;
use crate::error::{Error, Result};
use crate::eval::{Metrics, evaluate_model, measure_cold_start, measure_new_item_policies};
use crate::jobs::parallel::DataParallel;
use crate::jobs::{CheckpointPlan, JobObserver};
use crate::rec::persona::MAX_FACETS;
use crate::rec::popularity::popularity_logits;
use crate::rec::{
    ItemMode, ItemTowerConfig, PersonaVocabulary, RecDtype, Recommender, RecommenderConfig,
    SequenceEncoderConfig, SignalsConfig,
};
use crate::rec::{NeighbourMix, NewItemPopularity, NewItems};
use crate::text::TextEmbedder;
use crate::text::weights::{StoredDtype, save_encoder};
use crate::train::text_inputs::{text_vectors, two_views};
use crate::train::text_tuning::{TextTuneConfig, split_encoder, tune_text, with_top};
use crate::train::{CheckpointOptions, EpochLog, TrainConfig, Trained, train_with_views};

/// The recommender's shape (the sequence encoder and the item tower).
#[derive(Debug, Clone, PartialEq)]
pub struct RecommenderShape {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub inner: usize,
    pub dropout: f64,
    /// Dropout on the text vectors entering the item tower's adaptor (UniSRec: 0.2).
    pub text_dropout: f64,
    /// Transductive: the probability of leaving an item's ID embedding out of a training step
    /// (DropoutNet), so that the text path alone ranks items as it must rank new ones.
    pub id_dropout: f64,
    pub experts: usize,
    pub temperature: f64,
}

/// The optional history signals a model reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SignalFlags {
    pub event_types: bool,
    pub memory_slots: usize,
    pub scene_context: bool,
    pub persona: bool,
}

/// Fine-tuning the text encoder's top layers after the recommender.
#[derive(Debug, Clone, PartialEq)]
pub struct TextTuning {
    pub layers: usize,
    pub epochs: usize,
    pub lr: f64,
}

/// Everything one training run needs.
#[derive(Debug, Clone)]
pub struct TrainJob {
    /// With several devices: equal shards rather than shards sized by measured speed.
    pub even_shards: bool,
    /// With several devices: how long a step waits for a replica before the run stops.
    pub replica_timeout: Option<std::time::Duration>,
    /// Dataset folder (RecBole atomic files or catalog + events).
    pub data: PathBuf,
    /// Text-encoder folder for the item texts.
    pub text_model: PathBuf,
    /// Where cached item text vectors live.
    pub cache: PathBuf,
    pub mode: ItemMode,
    pub shape: RecommenderShape,
    pub signals: SignalFlags,
    pub train: TrainConfig,
    /// Cold start: this fraction of the items is held out of training entirely.
    pub holdout_items: f64,
    /// Cold start: this fraction more is held out of training, its validation examples kept:
    /// the new items on which the new-item prior is chosen (0: no prior).
    pub holdout_valid_items: f64,
    /// Logit adjustment: each item's ln(1 + training count) added to its logit in training and
    /// ranking ([`crate::rec::Recommender::popularity`]); measured for cold start only, a
    /// bundle does not carry it.
    pub popularity_logits: bool,
    /// Robustness protocol: this fraction of random noise clicks added to each user.
    pub noise_clicks: f64,
    pub noise_seed: u64,
    /// Start from this bundle's recommender (same shape).
    pub init: Option<PathBuf>,
    pub text_tuning: Option<TextTuning>,
    pub checkpoint: CheckpointPlan,
    /// Write the bundle here.
    pub out: Option<PathBuf>,
    pub rec_dtype: RecDtype,
    /// The model's name in the report and the bundle.
    pub name: Option<String>,
}

/// What a training run produced.
pub struct TrainOutcome {
    /// The mode's name (`inductive`, `transductive`, `id`).
    pub mode: String,
    /// The dataset's name.
    pub dataset: String,
    /// The protocol's figures, one row per (label, metrics), for printing.
    pub rows: Vec<(String, Metrics)>,
    /// The report's entry for this model.
    pub entry: serde_json::Value,
    /// Epochs read back from the checkpoint.
    pub resumed_epochs: usize,
}

impl TrainJob {
    /// Refuses settings that cannot train, naming the flag.
    pub fn check(&self) -> Result<()> {
        let s = &self.shape;
        if s.heads == 0 || !s.hidden.is_multiple_of(s.heads) {
            return Err(Error::bad_input(
                "--hidden/--heads",
                "hidden must be a positive multiple of heads",
            ));
        }
        if self.train.max_len == 0 || self.train.batch_size == 0 || s.experts == 0 {
            return Err(Error::bad_input(
                "ranklet train",
                "--max-len, --batch-size and --experts must be at least 1",
            ));
        }
        if !(0.0..0.9).contains(&self.holdout_items) {
            return Err(Error::bad_input(
                "--holdout-items",
                "a fraction of the items in [0, 0.9)",
            ));
        }
        if !(0.0..0.5).contains(&self.holdout_valid_items)
            || self.holdout_items + self.holdout_valid_items >= 0.9
        {
            return Err(Error::bad_input(
                "--holdout-valid-items",
                "a fraction of the items in [0, 0.5), with --holdout-items below 0.9 in all",
            ));
        }
        if !(0.0..=1.0).contains(&self.train.clsd_strength) {
            return Err(Error::bad_input("--clsd-strength", "a spread in [0, 1]"));
        }
        if !(0.0..=4.0).contains(&self.noise_clicks) {
            return Err(Error::bad_input(
                "--noise-clicks",
                "a fraction of each user's training events in [0, 4]",
            ));
        }
        if self.text_tuning.is_some() && self.mode != ItemMode::Inductive {
            return Err(Error::bad_input(
                "--tune-text-layers",
                "tuning the text encoder needs --mode inductive (text-only items)",
            ));
        }
        if self.shape.id_dropout > 0.0 && self.mode != ItemMode::Transductive {
            return Err(Error::bad_input(
                "--id-dropout",
                "ID dropout leaves items' ID embeddings out so that their text carries them: \
                 only --mode transductive has both",
            ));
        }
        if self.popularity_logits && (self.out.is_some() || self.text_tuning.is_some()) {
            return Err(Error::bad_input(
                "--popularity-logits",
                "a measurement for now: a bundle does not carry the popularity logits, so it \
                 cannot be written (--out) or text-tuned (--tune-text-layers) from such a model",
            ));
        }
        if self.train.two_view > 0.0 && self.mode == ItemMode::Id {
            return Err(Error::bad_input(
                "--two-view",
                "the two-view term trains the text adaptor; --mode id has none",
            ));
        }
        Ok(())
    }

    fn recommender_config(&self, text_dim: usize, ds: &Dataset) -> Result<RecommenderConfig> {
        let s = &self.shape;
        let facets: Vec<Vec<String>> = ds.items.iter().map(|i| i.facets.clone()).collect();
        let config = RecommenderConfig {
            items: ItemTowerConfig {
                text_dim,
                hidden: s.hidden,
                experts: s.experts,
                dropout: s.text_dropout,
                mode: self.mode,
                num_items: ds.items.len(),
                id_dropout: s.id_dropout,
            },
            sequence: SequenceEncoderConfig {
                hidden: s.hidden,
                layers: s.layers,
                heads: s.heads,
                inner: s.inner,
                dropout: s.dropout,
                max_len: self.train.max_len,
            },
            new_items: Default::default(),
            temperature: s.temperature,
            signals: SignalsConfig {
                kinds: self.signals.event_types,
                memory_slots: self.signals.memory_slots,
                context: self.signals.scene_context,
                context_vocabulary: self.signals.scene_context.then(ContextVocabulary::default),
                clsd: None,
                persona: self
                    .signals
                    .persona
                    .then(|| PersonaVocabulary::from_items(&facets, MAX_FACETS)),
            },
        };
        if config
            .signals
            .persona
            .as_ref()
            .is_some_and(|v| v.facets.is_empty())
        {
            return Err(Error::bad_input(
                "--persona",
                format!(
                    "{} has no item genres or categories to build a persona from",
                    self.data.display()
                ),
            ));
        }
        Ok(config)
    }

    /// A new recommender centred on the text vectors, or the `--init` bundle's.
    fn initial_model(
        &self,
        config: &RecommenderConfig,
        ds: &Dataset,
        text: &Tensor<2>,
        device: &Device,
    ) -> Result<Recommender> {
        let Some(dir) = &self.init else {
            let model = Recommender::init(config, device);
            return Ok(Recommender {
                tower: model.tower.centred_on(text),
                ..model
            });
        };
        let rec = read_recommender_dir(dir)?;
        let manifest = dir.join("manifest.json").display().to_string();
        let mut theirs = rec.entry.config.clone();
        theirs.signals.clsd = None;
        // (ID dropout is a training setting, not part of the model's shape.)
        theirs.items.id_dropout = config.items.id_dropout;
        if theirs != *config {
            return Err(Error::bad_file(
                manifest,
                "--init: that recommender has another shape or mode than these arguments \
                 ask for (see its manifest's recommender.config)",
            ));
        }
        if config.items.mode != ItemMode::Inductive
            && rec.items != ds.items.iter().map(|i| i.id.clone()).collect::<Vec<_>>()
        {
            return Err(Error::bad_file(
                manifest,
                "--init: its ID rows belong to another catalog",
            ));
        }
        let origin = dir.join(&rec.entry.weights).display().to_string();
        // (An --init recommender keeps its learned whitening biases: only a new one is centred.)
        Recommender::from_safetensors(config, rec.weights, device, &origin)
    }
}

/// Runs `job` on `replicas` (the first is the model's device; more train data-parallel).
pub fn run_train_job(
    job: &TrainJob,
    replicas: &[NamedDevice],
    observer: &mut dyn JobObserver<EpochLog>,
) -> Result<TrainOutcome> {
    job.check()?;
    let ds = Dataset::read_dir(&job.data)?;
    let ds = if job.noise_clicks > 0.0 {
        ds.with_noise_clicks(job.noise_clicks, job.noise_seed)
    } else {
        ds
    };
    let max_len = job.train.max_len;
    let mut split = Split::leave_one_out(&ds, max_len);
    if split.valid.is_empty() {
        return Err(Error::bad_input(
            job.data.display().to_string(),
            format!(
                "no user has 3 or more events ({} users, all shorter), so there is no validation \
                 user to choose an epoch on: leave-one-out needs a training, a validation and a \
                 test event per user",
                ds.users.len()
            ),
        ));
    }
    let held_out = if job.holdout_items > 0.0 || job.holdout_valid_items > 0.0 {
        split.hold_out_items(
            ds.items.len(),
            job.holdout_items,
            job.holdout_valid_items,
            job.train.seed,
        )
    } else {
        HeldOut::default()
    };
    let held = held_out.test.clone();
    let base = replicas
        .first()
        .map(|r| r.device.clone())
        .ok_or_else(|| Error::bad_input("--devices", "at least one device"))?;
    base.seed(job.train.seed);
    let device = base.clone().autodiff();
    let mode = format!("{:?}", job.mode).to_lowercase();
    job.checkpoint.prepare("run")?;

    // Frozen text vectors (cached per model and text). `id` mode reads the encoder only to ship
    // it in a bundle: the browser embeds the catalog with it.
    let files = if job.mode != ItemMode::Id || job.out.is_some() {
        Some(read_model_dir(&job.text_model)?)
    } else {
        None
    };
    let texts: Vec<String> = ds.items.iter().map(|i| i.text.clone()).collect();
    let (text_dim, text) = match (&files, job.mode) {
        (Some(files), ItemMode::Inductive | ItemMode::Transductive) => {
            let text = text_vectors(files, &texts, &base, &device, job, observer)?;
            (text.dims()[1], text)
        }
        _ => (1, Tensor::<2>::zeros([ds.items.len(), 1], &device)),
    };
    let views = match (&files, job.train.two_view > 0.0) {
        (Some(files), true) => Some(two_views(&ds, files, &base, &device, job, observer)?),
        _ => None,
    };
    let config = job.recommender_config(text_dim, &ds)?;
    let facets: Vec<Vec<String>> = ds.items.iter().map(|i| i.facets.clone()).collect();
    // The persona reads the training catalog's facets.
    let mut model = job
        .initial_model(&config, &ds, &text, &device)?
        .with_item_facets(&facets);
    // Held-out items stand for items added after training: no ID of their own.
    model.tower = model.tower.without_ids_of(&held_out.all());
    if job.popularity_logits {
        if replicas.len() > 1 {
            return Err(Error::bad_input(
                "--popularity-logits",
                "one device only: a data-parallel replica does not carry the popularity logits",
            ));
        }
        let counts = split.train_counts(ds.items.len());
        let dim = text.dims()[1];
        let rows = text
            .clone()
            .inner()
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| Error::bad_input("--popularity-logits", format!("text vectors: {e:?}")))?;
        let unit = crate::rec::history_select::unit_rows_flat(&rows, dim);
        model = model.with_popularity(popularity_logits(&counts, &held_out.all(), &unit, dim));
    }
    let nothing_to_train =
        job.train.epochs == 0 && job.train.pretrain_epochs == 0 && job.init.is_some();
    let Trained {
        best,
        mut log,
        resumed_epochs,
    } = if nothing_to_train {
        // The --init recommender as it is (then, typically, text tuning).
        Trained {
            best: model.valid(),
            log: Vec::new(),
            resumed_epochs: 0,
        }
    } else {
        train_with_views(
            model,
            &text,
            views.as_ref(),
            &split,
            &job.train,
            &CheckpointOptions {
                dir: Some(job.checkpoint.dir.clone()),
                resume: job.checkpoint.resume,
                parallel: DataParallel::over(replicas, job.even_shards, job.replica_timeout),
            },
            observer,
        )?
    };
    if resumed_epochs > 0 {
        observer.note(&format!(
            "resumed after epoch {resumed_epochs} from {}",
            job.checkpoint.dir.display()
        ));
    }
    // Teacher training proper: the text encoder's top layers learn with the recommender.
    let (best, text, files, text_tuning) = match (&job.text_tuning, files) {
        (Some(tuning), Some(files)) => {
            let embedder = TextEmbedder::from_files(&files, &base)?;
            let (bottom, top) = split_encoder(&embedder, &texts, tuning.layers, &device)?;
            let tune = TextTuneConfig {
                epochs: tuning.epochs,
                text_lr: tuning.lr,
                rec_lr: job.train.lr / 10.0,
                batch_size: job.train.batch_size,
                max_len,
                seed: job.train.seed,
                ..TextTuneConfig::default()
            };
            let tuned = tune_text(
                best.train().fork(&device),
                top,
                &bottom,
                &split,
                &tune,
                observer,
            )?;
            let encoder = with_top(&embedder.encoder, &tuned.top);
            let mut files = files;
            files.weights.1 = save_encoder(&encoder, StoredDtype::F32)?;
            files.name = format!("{}-tuned-top{}", files.name, tuning.layers);
            let summary = json!({
                "layers": tuning.layers,
                "config": tune,
                "valid_ndcg10_start": tuned.log[0].valid_ndcg10,
                "valid_ndcg10_best": tuned.log.iter().map(|e| e.valid_ndcg10).fold(f64::MIN, f64::max),
                "log": tuned.log,
            });
            log.extend(tuned.log.iter().skip(1).cloned());
            let text = Tensor::<2>::from_data(tuned.text.into_data(), &device);
            (tuned.model, text, Some(files), Some(summary))
        }
        (_, files) => (best, text, files, None),
    };
    let plain_text = text.inner();
    let start = Instant::now();
    let (valid, _) = evaluate_model(&best, &plain_text, &split.valid, 256);
    let (test, test_masked) = evaluate_model(&best, &plain_text, &split.test, 256);
    let eval_seconds = start.elapsed().as_secs_f64();
    // The test examples whose target is a test-held item.
    let cold_test = (!held.is_empty()).then(|| split.cold_test(&held));
    let cold = cold_test
        .as_ref()
        .map(|examples| measure_cold_start(&best, &plain_text, &split, &held, examples));
    // The new-item policies, chosen on the validation users whose target is a validation-held
    // item, then measured on the test: all users, and the cold-start ones.
    let policies = (!held_out.valid.is_empty()).then(|| {
        measure_new_item_policies(
            &best,
            &plain_text,
            &split.valid,
            &split.test,
            cold_test.as_deref(),
            &held_out.all(),
            &held_out.valid,
            (
                &split.catalogue_counts(ds.items.len(), 1),
                &split.catalogue_counts(ds.items.len(), 0),
            ),
        )
    });
    let best_epoch = log
        .iter()
        .max_by(|a, b| a.valid_ndcg10.total_cmp(&b.valid_ndcg10))
        .map(|e| e.epoch);
    let mut entry = json!({
        "name": job.name.clone().unwrap_or_else(|| format!("ranklet-{mode}")),
        "mode": mode,
        "params": best.num_params(),
        "epochs": log.len(),
        "best_epoch": best_epoch,
        "epoch_seconds": log.iter().map(|e| e.seconds).sum::<f64>() / log.len().max(1) as f64,
        "eval_seconds": eval_seconds,
        "text_model": files.as_ref().map(|f| f.name.clone()),
        "config": config,
        "train": job.train,
        "noise_clicks": job.noise_clicks,
        "log": log,
        "valid": valid.means(),
        "test": test.means(),
        "test_masked": test_masked.means(),
    });
    if let Some(t) = text_tuning {
        entry["text_tuning"] = t;
    }
    if job.popularity_logits {
        entry["popularity_logits"] = json!(true);
    }
    if let Some(cold) = &cold {
        entry["cold_start"] = cold.report(
            held.len(),
            ds.items.len(),
            job.holdout_items,
            job.train.seed,
        );
    }
    if let Some(policies) = &policies {
        policies.write_report(&mut entry, held_out.valid.len());
    }
    if let Some(out) = &job.out {
        let rec = RecommenderFiles {
            entry: RecommenderEntry {
                weights: "rec.safetensors".into(),
                items: "items.json".into(),
                config: RecommenderConfig {
                    signals: SignalsConfig {
                        clsd: best.clsd.clone(),
                        ..config.signals.clone()
                    },
                    // The items this run never trained on, and the mix its own validation
                    // chose (else the default).
                    new_items: NewItems {
                        mix: policies
                            .as_ref()
                            .map_or_else(NeighbourMix::default, |p| p.mix),
                        popularity: policies
                            .as_ref()
                            .map_or_else(NewItemPopularity::default, |p| p.popularity),
                        untrained: held_out
                            .all()
                            .iter()
                            .map(|&i| ds.items[i].id.clone())
                            .collect(),
                    },
                    ..config.clone()
                },
            },
            weights: best.to_safetensors_as(job.rec_dtype)?,
            items: ds.items.iter().map(|i| i.id.clone()).collect(),
        };
        let metrics = json!({
            "dataset": ds.name,
            "valid": entry["valid"],
            "test": entry["test"],
            "test_masked": entry["test_masked"],
        });
        let mut files = files.clone().expect("read above when --out is given");
        // The bundle is this model: it takes the run's name when one is given (else the encoder's).
        if let Some(name) = &job.name {
            files.name.clone_from(name);
        }
        write_bundle(out, &files, Some(&rec), metrics)?;
        observer.note(&format!("bundle written to {}", out.display()));
    }
    let mut rows = vec![
        ("valid".to_string(), valid),
        ("test".to_string(), test),
        ("test (seen items masked)".to_string(), test_masked),
    ];
    if let Some(policies) = &policies {
        rows.extend(policies.rows());
    }
    if let Some(cold) = cold {
        rows.push(("cold-start items".to_string(), cold.model));
        rows.push(("cold-start items: popularity".to_string(), cold.popularity));
        rows.push((
            "cold-start items: catalogue popularity".to_string(),
            cold.catalogue_popularity,
        ));
    }
    Ok(TrainOutcome {
        mode,
        dataset: ds.name.clone(),
        rows,
        entry,
        resumed_epochs,
    })
}
