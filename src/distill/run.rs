//! The distillation loop: a student that starts as a copy of (some layers of) the teacher,
//! trained with COS-NCE on mapped layers (stage 1), then also the output-level losses with FGM
//! perturbation (stage 2), while HomoDistil prunes it on a cubic schedule; checkpointed
//! atomically after every epoch, resumable exactly, and finally sliced to its kept structures.

use std::collections::HashMap;
use std::path::PathBuf;

use burn::module::Param;
use burn::nn::Embedding;
use burn::optim::AdamWConfig;
use burn::prelude::*;

use crate::distill::augment::Augmenter;
use crate::distill::average::blend;
pub use crate::distill::config::{DistillConfig, decayed_lr};
use crate::distill::parallel::{DistillShard, Replicas, ShardSettings, batch_gradients};
use crate::distill::pruning::{Importance, PruneSchedule, Shape, select_masks};
use crate::distill::student::{Masks, slice};
use crate::distill::teacher::{teacher_targets, teacher_vectors};
pub use crate::distill::trainee::mean_cosine;
use crate::distill::trainee::{IdMap, Student, student_vectors};
use crate::distill::vocab::{prune_embeddings, prune_vocab};
use crate::error::{Error, Result};
use crate::jobs::JobObserver;
use crate::jobs::checkpoint::{Checkpointer, shape_fingerprint};
use crate::jobs::parallel::{DataParallel, ShardPlan, replica_error};
use crate::rng::SplitMix;
use crate::text::config::BertConfig;
use crate::text::tokenizer::TextTokenizer;
use crate::text::{BertEncoder, EncoderFiles, TextEmbedder};

/// One epoch's figures.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DistillEpoch {
    pub epoch: usize,
    /// 1 (COS-NCE) or 2 (+ output losses, FGM).
    pub stage: usize,
    pub loss: f64,
    /// Mean cosine between the student's and the teacher's vectors of the held-out texts.
    pub valid_cosine: f64,
    /// The same on (up to 256 of) the training texts: its gap to `valid_cosine` is what the
    /// student memorised rather than learned.
    #[serde(default)]
    pub train_cosine: f64,
    /// Kept heads / neurons per layer after the epoch.
    pub kept: Shape,
    /// Parameters of the student as it would be sliced now.
    pub params: usize,
    pub seconds: f64,
    /// Seconds the model's device spent waiting for the other replicas' gradients and summing
    /// them (data-parallel runs only).
    #[serde(default, skip_serializing_if = "crate::jobs::is_zero")]
    pub exchange_seconds: f64,
}

/// The checkpoint's state (`state.json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct DistillState {
    version: u32,
    epoch: usize,
    step: usize,
    rng: u64,
    masks: Masks,
    importance: Importance,
    log: Vec<DistillEpoch>,
    config: DistillConfig,
    fingerprint: String,
    model_file: String,
    optim_file: String,
    /// The averaged weights' record, once averaging has started.
    #[serde(default)]
    average_file: Option<String>,
}

const DISTILL_STATE_VERSION: u32 = 1;

/// The distilled student, sliced.
pub struct Distilled {
    pub encoder: BertEncoder,
    pub config: BertConfig,
    pub tokenizer_json: Vec<u8>,
    pub log: Vec<DistillEpoch>,
    /// Mean cosine of the sliced student to the teacher on the held-out texts.
    pub valid_cosine: f64,
    /// Largest difference between the sliced and the masked student's vectors (held-out texts).
    pub sliced_vs_masked: f32,
    pub epochs_resumed: usize,
}

/// Distils `teacher` (its files, run on `base`) into a student trained on `device` (an autodiff
/// device), on `train_texts`, validated on `valid_texts` (the vocabulary is pruned to both: the
/// whole catalog). With a checkpoint folder, every epoch is committed there; `resume`
/// continues from it exactly. With several `parallel` devices (the first being `device`), each
/// batch is cut into one shard per device and their gradients summed (`jobs::parallel`); the
/// teacher's targets are computed once per batch on `base`.
#[allow(clippy::too_many_arguments)]
pub fn distill(
    files: &EncoderFiles,
    base: &Device,
    device: &Device,
    train_texts: &[String],
    valid_texts: &[String],
    config: &DistillConfig,
    checkpoint: Option<(PathBuf, bool)>,
    parallel: &DataParallel,
    observer: &mut dyn JobObserver<DistillEpoch>,
) -> Result<Distilled> {
    let (replicas, names) = (&parallel.devices, &parallel.names);
    let checkpoint_dir = checkpoint.as_ref().map(|(dir, _)| dir.as_path());
    let teacher = TextEmbedder::from_files(files, base)?;
    let tokenizer =
        TextTokenizer::from_bytes(&files.tokenizer.1, config.max_len, &files.tokenizer.0)?;
    if config.layer_map.is_empty()
        || config
            .layer_map
            .iter()
            .any(|&l| l >= teacher.encoder.layers.len())
    {
        return Err(Error::bad_input(
            "--layer-map",
            format!(
                "{:?}: teacher layers are 0..{}",
                config.layer_map,
                teacher.encoder.layers.len()
            ),
        ));
    }
    if train_texts.len() < 2 {
        return Err(Error::bad_input(
            "--texts",
            "distillation needs at least 2 training texts",
        ));
    }
    let all: Vec<String> = train_texts.iter().chain(valid_texts).cloned().collect();
    let vocab = config
        .prune_vocab
        .then(|| prune_vocab(&files.tokenizer.1, &all, &files.tokenizer.0))
        .transpose()?;
    // With vocabulary or neighbour words in the copies the student needs every row while it
    // trains; the table is pruned to the catalog's pieces when it is sliced.
    let prune_now = vocab
        .as_ref()
        .filter(|_| config.vocab_words == 0.0 && config.neighbour_words == 0.0);
    let ids = match prune_now {
        None => IdMap(None, 0),
        Some(v) => {
            let unk = tokenizer.inner().token_to_id("[UNK]").unwrap_or(0);
            let map: HashMap<i64, i64> = v
                .kept
                .iter()
                .enumerate()
                .map(|(new, &old)| (i64::from(old), new as i64))
                .collect();
            let unk_new = *map.get(&i64::from(unk)).unwrap_or(&0);
            IdMap(Some(map), unk_new)
        }
    };
    let mut student = Student::from_teacher(
        &teacher.encoder,
        &config.layer_map,
        prune_now.map(|v| v.kept.as_slice()),
        device,
    );
    if let Some(p) = config.dropout {
        student.encoder.set_dropout(p);
    }
    let mut masks = Masks::full(&student.encoder);
    let full = Shape {
        hidden: masks.hidden.len(),
        heads: masks.heads[0].len(),
        ffn: masks.ffn[0].len(),
    };
    let target = if config.prune { config.target } else { full };
    if target.heads == 0 || target.heads > full.heads || target.ffn == 0 || target.ffn > full.ffn {
        return Err(Error::bad_input(
            "--heads/--ffn",
            format!(
                "targets must be between 1 and the teacher's {} heads and {} neurons",
                full.heads, full.ffn
            ),
        ));
    }
    let target = Shape {
        hidden: full.hidden,
        ..target
    };
    let batches = train_texts.len().div_ceil(config.batch_size);
    let total = batches * config.epochs;
    let schedule = PruneSchedule {
        full,
        target,
        start: 0,
        end: ((total as f64) * config.prune_until).round() as usize,
    };
    let mut optim = AdamWConfig::new().init();
    let mut importance = Importance::empty(&masks);
    let mut rng = SplitMix(config.seed);
    let mut log = Vec::new();
    let (mut first_epoch, mut step) = (1, 0);
    let mut average: Option<Student> = None;
    let fingerprint = shape_fingerprint(
        &student,
        &format!(
            "{} train texts {} valid texts",
            train_texts.len(),
            valid_texts.len()
        ),
    );
    let checkpointer = checkpoint
        .as_ref()
        .map(|(dir, _)| Checkpointer::new(dir.clone()));
    if let Some((dir, true)) = &checkpoint {
        let cp = checkpointer.as_ref().expect("set above");
        if !cp.exists() {
            return Err(Error::bad_input(
                dir.display().to_string(),
                "no checkpoint to resume from (state.json is missing)",
            ));
        }
        let s: DistillState = cp.load_state()?;
        // The pruning schedule spans all epochs: none of the settings may change.
        if s.version != DISTILL_STATE_VERSION || s.config != *config || s.fingerprint != fingerprint
        {
            return Err(Error::bad_file(
                dir.display().to_string(),
                "the checkpoint was written by a distillation with other settings or texts; \
                 resume with the same arguments",
            ));
        }
        student = student.load_record(cp.module_record(&s.model_file)?);
        optim = optim.load_record(cp.optim_record(&s.optim_file)?);
        if let Some(f) = &s.average_file {
            average = Some(student.valid().load_record(cp.module_record(f)?));
        }
        masks = s.masks;
        importance = s.importance;
        rng = SplitMix(s.rng);
        log = s.log;
        first_epoch = s.epoch + 1;
        step = s.step;
    }
    let epochs_resumed = first_epoch - 1;
    let teacher_valid = teacher_vectors(&teacher, &tokenizer, valid_texts)?;
    // A fixed sample of the training texts, to show memorising against learning.
    let train_sample: Vec<String> = train_texts
        .iter()
        .step_by(train_texts.len().div_ceil(256).max(1))
        .cloned()
        .collect();
    let teacher_train = teacher_vectors(&teacher, &tokenizer, &train_sample)?;
    let augmenter = Augmenter::new(config, train_texts, &tokenizer, &teacher.encoder);
    let eps = teacher.config.layer_norm_eps;
    let mut plan = ShardPlan::new(replicas.len(), parallel.even_shards);
    // The devices a step's shards go to (the student's alone without replicas).
    let step_devices = if replicas.len() > 1 {
        replicas.clone()
    } else {
        vec![device.clone()]
    };
    for epoch in first_epoch..=config.epochs {
        let start = std::time::Instant::now();
        let stage2 = epoch > config.stage1_epochs || config.layer_weight == 0.0;
        let epoch_seed = config
            .seed
            .wrapping_mul(1_000_003)
            .wrapping_add(epoch as u64);
        device.seed(epoch_seed);
        parallel.seed_replicas(epoch_seed);
        let mut order: Vec<usize> = (0..train_texts.len()).collect();
        for i in (1..order.len()).rev() {
            let j = ((rng.next_f32() * (i + 1) as f32) as usize).min(i);
            order.swap(i, j);
        }
        observer.epoch_start(epoch, batches);
        let (mut loss_sum, mut seen, mut exchange_seconds) = (0.0, 0, 0.0);
        for chunk in order.chunks(config.batch_size) {
            if chunk.len() < 2 {
                continue; // COS-NCE needs negatives
            }
            let texts: Vec<String> = chunk
                .iter()
                .map(|&i| augmenter.maybe_copy(&train_texts[i], config.augment, &mut rng))
                .collect();
            let tokens = tokenizer.encode_batch(&texts)?;
            let targets = teacher_targets(&teacher, &tokens, config, device);
            let seq = tokens.seq_len;
            let ranges = plan.ranges(tokens.batch);
            let sid = ids.map(&tokens.ids);
            let shards = ranges
                .iter()
                .map(|rows| DistillShard::cut(rows.clone(), seq, &tokens.mask, &sid))
                .collect();
            let settings = ShardSettings {
                masks: masks.clone(),
                eps,
                stage2,
                config: config.clone(),
            };
            let computed = batch_gradients(
                &student,
                shards,
                targets,
                settings,
                &Replicas {
                    devices: &step_devices,
                    timeout: parallel.timeout,
                },
            )
            .map_err(|failed| replica_error(&failed, names, checkpoint_dir, epoch))?;
            plan.observe(&ranges, &computed);
            let value = computed.loss;
            exchange_seconds += computed.exchange_seconds;
            if !value.is_finite() {
                return Err(Error::Backend(format!(
                    "the distillation loss became {value} at epoch {epoch}; lower --lr"
                )));
            }
            let mut grads = computed.grads;
            if config.prune && step <= schedule.end {
                importance.smooth(
                    &Importance::of_step(&student.encoder, &grads),
                    config.importance_beta,
                );
                if step % config.prune_every.max(1) == 0 || step == schedule.end {
                    masks =
                        select_masks(&importance, &masks, schedule.at(step), config.global_heads);
                }
            }
            if config.freeze_words {
                // After the importance, which reads the table's gradient for hidden columns.
                grads.remove::<2>(student.encoder.embeddings.word_embeddings.weight.id);
            }
            let decay_from = if config.prune { schedule.end } else { 0 };
            let lr = decayed_lr(config.lr, config.lr_floor, step, decay_from, total);
            student = optim.step(lr, student, grads);
            if config.average > 0.0 && step >= decay_from {
                let now = student.valid();
                average = Some(match average {
                    None => now,
                    Some(a) => blend(a, &now, config.average),
                });
            }
            step += 1;
            loss_sum += value;
            seen += 1;
            observer.batch(value);
        }
        if config.prune && step > schedule.end {
            masks = select_masks(&importance, &masks, schedule.at(step), config.global_heads);
        }
        let evaluated = average.clone().unwrap_or_else(|| student.valid());
        let cosine_on = |texts: &[String], reference: &[Vec<f32>]| -> Result<f64> {
            Ok(mean_cosine(
                &student_vectors(
                    &evaluated,
                    &masks,
                    &teacher.config,
                    teacher.device(),
                    &tokenizer,
                    &ids,
                    texts,
                )?,
                reference,
            ))
        };
        let valid_cosine = cosine_on(valid_texts, &teacher_valid)?;
        let train_cosine = cosine_on(&train_sample, &teacher_train)?;
        let (_, heads, ffn) = masks.counts();
        let (_, mut config_now) = slice(&evaluated.encoder, &masks, &teacher.config);
        config_now.max_position_embeddings = config.max_len.min(config_now.max_position_embeddings);
        if let Some(v) = &vocab {
            config_now.vocab_size = v.kept.len();
        }
        let entry = DistillEpoch {
            epoch,
            stage: if stage2 { 2 } else { 1 },
            loss: loss_sum / seen.max(1) as f64,
            valid_cosine,
            train_cosine,
            kept: Shape {
                hidden: full.hidden,
                heads: heads.iter().copied().max().unwrap_or(0),
                ffn: ffn.iter().copied().max().unwrap_or(0),
            },
            params: config_now.num_params(),
            seconds: start.elapsed().as_secs_f64(),
            exchange_seconds,
        };
        observer.epoch_end(&entry);
        log.push(entry);
        if let Some(cp) = &checkpointer {
            let mut records = vec![
                (
                    format!("student-{epoch:04}.bpk"),
                    student.clone().into_record().into_bytes(),
                ),
                (
                    format!("optim-{epoch:04}.bpk"),
                    optim.to_record().into_bytes(),
                ),
            ];
            if let Some(a) = &average {
                records.push((
                    format!("average-{epoch:04}.bpk"),
                    a.clone().into_record().into_bytes(),
                ));
            }
            let written = cp.write_records(records)?;
            let state = DistillState {
                version: DISTILL_STATE_VERSION,
                epoch,
                step,
                rng: rng.0,
                masks: masks.clone(),
                importance: importance.clone(),
                log: log.clone(),
                config: config.clone(),
                fingerprint: fingerprint.clone(),
                model_file: written[0].clone(),
                optim_file: written[1].clone(),
                average_file: written.get(2).cloned(),
            };
            cp.commit(&state, &written)?;
        }
    }
    // Slice to the kept structures, the vocabulary and the position table.
    let trained = average.unwrap_or_else(|| student.valid());
    let masked_vectors = student_vectors(
        &trained,
        &masks,
        &teacher.config,
        teacher.device(),
        &tokenizer,
        &ids,
        valid_texts,
    )?;
    let (mut encoder, mut bert) = slice(&trained.encoder, &masks, &teacher.config);
    if let (Some(v), None) = (&vocab, prune_now) {
        encoder = prune_embeddings(encoder, &v.kept);
    }
    let positions = encoder.embeddings.position_embeddings.weight.val();
    let [table_rows, h] = positions.dims();
    let keep_rows = config.max_len.min(table_rows);
    encoder.embeddings.position_embeddings = Embedding {
        weight: Param::from_tensor(positions.slice([0..keep_rows, 0..h])),
    };
    bert.max_position_embeddings = keep_rows;
    let tokenizer_json = match &vocab {
        Some(v) => {
            bert.vocab_size = v.kept.len();
            v.tokenizer_json.clone()
        }
        None => files.tokenizer.1.clone(),
    };
    let sliced = TextEmbedder::new(
        bert.clone(),
        TextTokenizer::from_bytes(&tokenizer_json, config.max_len, "student tokenizer.json")?,
        encoder.clone(),
        teacher.normalize,
        base.clone(),
    );
    let sliced_vectors = sliced.embed_batched(valid_texts, 64)?;
    let diff = sliced_vectors
        .iter()
        .flatten()
        .zip(masked_vectors.iter().flatten())
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    Ok(Distilled {
        encoder,
        config: bert,
        tokenizer_json,
        log,
        valid_cosine: mean_cosine(&sliced_vectors, &teacher_valid),
        sliced_vs_masked: diff,
        epochs_resumed,
    })
}
