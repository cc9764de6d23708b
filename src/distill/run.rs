//! The distillation loop: a student that starts as a copy of (some layers of) the teacher,
//! trained with COS-NCE on mapped layers (stage 1), then also the output-level losses with FGM
//! perturbation (stage 2), while HomoDistil prunes it on a cubic schedule; checkpointed
//! atomically after every epoch, resumable exactly, and finally sliced to its kept structures.

use std::collections::HashMap;
use std::path::PathBuf;

use burn::module::Param;
use burn::nn::{Embedding, Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;

use crate::bundle::EncoderFiles;
use crate::distill::average::blend;
use crate::distill::loss::{
    cos_nce, output_cosine, perturb, relation_kl, similarity_kl, token_cosine,
};
use crate::distill::neighbours::{Neighbours, whole_word};
use crate::distill::pruning::{Importance, PruneSchedule, Shape, select_masks};
use crate::distill::student::{
    Masks, attention_relations, masked_embeddings, masked_layers, slice,
};
use crate::distill::vocab::{prune_embeddings, prune_vocab};
use crate::error::{Error, Result};
use crate::fixtures::SplitMix;
use crate::text::TextEmbedder;
use crate::text::config::BertConfig;
use crate::text::encoder::{BertEncoder, score_bias};
use crate::text::pooling::{l2_normalize, masked_mean};
use crate::text::tokenizer::{TextTokenizer, TokenBatch};
use crate::train::checkpoint::{Checkpointer, shape_fingerprint};

/// Distillation settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DistillConfig {
    /// Epochs over the training texts. Default 12.
    pub epochs: usize,
    /// Epochs of stage 1 (COS-NCE alone); the rest are stage 2. Default 4.
    pub stage1_epochs: usize,
    /// Texts per batch (also COS-NCE's negatives). Default 32.
    pub batch_size: usize,
    /// AdamW learning rate. Default 2e-4.
    pub lr: f64,
    /// COS-NCE temperature. Default 0.1.
    pub tau: f64,
    /// Temperature of the in-batch similarity distributions (stage 2 KL). Default 0.05.
    pub kl_tau: f64,
    /// FGM step on the embedding output in stage 2; 0 turns the perturbation off. Default 0.05.
    pub fgm_epsilon: f64,
    /// Teacher layers (0-based) the student keeps, in order; student layer `i` is distilled
    /// towards teacher layer `layer_map[i]`. Default: every layer.
    pub layer_map: Vec<usize>,
    /// HomoDistil's pruning; false keeps every head and neuron. Default true.
    pub prune: bool,
    /// Heads and neurons per layer to prune down to (hidden width is kept: the output stays in
    /// the teacher's space).
    pub target: Shape,
    /// Pruning ends at this fraction of the steps (the rest trains the final shape). Default 0.6.
    pub prune_until: f64,
    /// Masks are re-selected every this many steps while pruning. Default 4.
    pub prune_every: usize,
    /// Importance smoothing β. Default 0.85.
    pub importance_beta: f32,
    /// Vocabulary pruning to the catalog's word-pieces. Default true.
    pub prune_vocab: bool,
    /// Word-pieces per text (and rows of the student's position table). Default 128.
    pub max_len: usize,
    /// Shuffling and dropout seed. Default 2020.
    pub seed: u64,
    /// Probability that a training text is replaced, for one step, by a copy with words dropped
    /// (each with probability 0.2): the teacher labels any text, so variants widen what the
    /// student is taught beyond the catalog's exact strings. Default 0.5; 0 turns it off.
    #[serde(default)]
    pub augment: f32,
    /// Weight of the output-level losses in stage 2. Default 1.
    #[serde(default = "one")]
    pub output_weight: f64,
    /// Weight of COS-NCE on the layers; 0 leaves only the output-level losses (HomoDistil's
    /// pruning without LRC-BERT's layer loss — then every epoch is stage 2). Default 1.
    #[serde(default = "one")]
    pub layer_weight: f64,
    /// Share of an augmented copy's words replaced by a word of another training text (a second
    /// kind of copy besides dropping words; the kinds in use are drawn evenly). Recombined titles teach the
    /// student the teacher's function on texts the catalog does not hold. Default 0: only
    /// dropping.
    #[serde(default)]
    pub replace_words: f32,
    /// The learning rate falls on a half cosine from `lr` to `lr × lr_floor` over the steps
    /// after pruning ends (over all steps without pruning): the pruned shape is trained at full
    /// rate, then settles. Default 1: constant.
    #[serde(default = "one")]
    pub lr_floor: f64,
    /// Weight of the word-piece-level loss: each mapped student layer's state of every piece is
    /// pulled towards the teacher layer's (`1 − cos`), in both stages. Default 0: off.
    #[serde(default)]
    pub token_weight: f64,
    /// Share of an augmented copy's words replaced by random whole words of the teacher's
    /// vocabulary (a third kind of copy besides dropping and catalog words). A catalog's own
    /// texts use a few thousand word-pieces; the teacher's function on the rest of its
    /// vocabulary is what lets the student read pieces the training texts never used (the
    /// held-out texts' rare names). The student then trains with the teacher's whole
    /// embedding table, pruned to the catalog's pieces at the end. Default 0: off.
    #[serde(default)]
    pub vocab_words: f32,
    /// Share the heads' budget (`target.heads` × layers) out over the layers by importance
    /// instead of the same count in each (at least one per layer; HF's `pruned_heads` holds
    /// any per-layer count, and the compute is the same). Default false.
    #[serde(default)]
    pub global_heads: bool,
    /// Dropout of the student while it learns (every dropout of the encoder: embeddings,
    /// attention probabilities and outputs, feed-forward outputs). Default `None`: the
    /// teacher's `config.json` (0.1 for MiniLM).
    #[serde(default)]
    pub dropout: Option<f64>,
    /// Keep the word-piece embedding table at the teacher's values. Pieces no training text uses
    /// get no gradient; when the trained rows drift, the untrained ones no longer match what the
    /// student's layers expect, and texts with unseen words lose most. Default false.
    #[serde(default)]
    pub freeze_words: bool,
    /// Weight of MiniLM's self-attention relation loss on the last layer: KL between the
    /// teacher's last mapped layer's attention distributions and value relations and the
    /// student's last layer's, head by head, in both stages. A pooled vector is one target per
    /// text; the relations are one distribution per word-piece and head. Default 0: off.
    #[serde(default)]
    pub relation_weight: f64,
    /// Polyak averaging: once the shape is final (pruning done), the student that is evaluated
    /// and sliced is the exponential moving average of the weights, updated every step with
    /// this factor (0.998 averages over the last ~500 steps). Default 0: the last weights.
    #[serde(default)]
    pub average: f64,
    /// Share of an augmented copy's words replaced by one of their nearest whole words in the
    /// teacher's input embedding table (TinyBERT's augmentation; a fourth kind of copy).
    /// Default 0: off.
    #[serde(default)]
    pub neighbour_words: f32,
}

/// Nearest whole words kept per catalog word for neighbour-word copies.
const NEIGHBOURS: usize = 8;

/// The learning rate at `step` of `total`: `lr` until `start`, then a half cosine down to
/// `lr × floor` at the last step.
pub fn decayed_lr(lr: f64, floor: f64, step: usize, start: usize, total: usize) -> f64 {
    if floor >= 1.0 || step <= start || total <= start + 1 {
        return lr;
    }
    let p = ((step - start) as f64 / (total - 1 - start) as f64).min(1.0);
    lr * (floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()))
}

fn one() -> f64 {
    1.0
}

/// `text` with each word replaced, with probability `p`, by a word of `pool`.
fn replace_words(text: &str, p: f32, pool: &[&str], rng: &mut SplitMix) -> String {
    text.split_whitespace()
        .map(|w| {
            if !pool.is_empty() && rng.next_f32() < p {
                pool[((rng.next_f32() * pool.len() as f32) as usize).min(pool.len() - 1)]
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text` with each word dropped with probability `p` (at least one word kept).
fn drop_words(text: &str, p: f32, rng: &mut SplitMix) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let kept: Vec<&str> = words
        .iter()
        .copied()
        .filter(|_| rng.next_f32() >= p)
        .collect();
    if kept.is_empty() {
        words.first().copied().unwrap_or_default().to_string()
    } else {
        kept.join(" ")
    }
}

impl DistillConfig {
    /// The defaults for a teacher of `teacher`'s shape.
    pub fn for_teacher(teacher: &BertConfig) -> Self {
        Self {
            epochs: 12,
            stage1_epochs: 4,
            batch_size: 32,
            lr: 2e-4,
            tau: 0.1,
            kl_tau: 0.05,
            fgm_epsilon: 0.05,
            layer_map: (0..teacher.num_hidden_layers).collect(),
            prune: true,
            target: Shape {
                hidden: teacher.hidden_size,
                heads: 4,
                ffn: 384,
            },
            prune_until: 0.6,
            prune_every: 4,
            importance_beta: 0.85,
            prune_vocab: true,
            max_len: 128,
            seed: 2020,
            augment: 0.5,
            output_weight: 1.0,
            layer_weight: 1.0,
            replace_words: 0.0,
            lr_floor: 1.0,
            token_weight: 0.0,
            vocab_words: 0.0,
            global_heads: false,
            dropout: None,
            freeze_words: false,
            relation_weight: 0.0,
            average: 0.0,
            neighbour_words: 0.0,
        }
    }
}

/// The student while it learns: its encoder and one width mapping per layer onto the teacher's
/// width (COS-NCE's learned mapping; not part of the shipped model).
#[derive(Module, Debug)]
pub struct Student {
    pub encoder: BertEncoder,
    pub maps: Vec<Linear>,
}

fn identity_linear(width: usize, out: usize, device: &Device) -> Linear {
    let mut l = LinearConfig::new(width, out).init(device);
    let eye: Vec<f32> = (0..width * out)
        .map(|k| if k / out == k % out { 1.0 } else { 0.0 })
        .collect();
    l.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(eye, [width, out]),
        device,
    ));
    l.bias = Some(Param::from_tensor(Tensor::zeros([out], device)));
    l
}

impl Student {
    /// A copy of the teacher's layers `layer_map` (and re-indexed embeddings when the vocabulary
    /// is pruned), with identity width mappings.
    pub fn from_teacher(
        teacher: &BertEncoder,
        layer_map: &[usize],
        kept_vocab: Option<&[u32]>,
        device: &Device,
    ) -> Self {
        let mut encoder = teacher.clone();
        encoder.layers = layer_map
            .iter()
            .map(|&l| teacher.layers[l].clone())
            .collect();
        if let Some(kept) = kept_vocab {
            encoder = prune_embeddings(encoder, kept);
        }
        let [_, h] = encoder.embeddings.word_embeddings.weight.dims();
        let maps = layer_map
            .iter()
            .map(|_| identity_linear(h, h, device))
            .collect();
        Self {
            encoder: encoder.unfreeze().fork(device).train(),
            maps,
        }
    }
}

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
}

/// What a distillation reports as it goes.
pub trait DistillObserver {
    fn epoch_start(&mut self, _epoch: usize, _batches: usize) {}
    fn batch(&mut self, _loss: f64) {}
    fn epoch_end(&mut self, _log: &DistillEpoch) {}
}

/// Observes nothing.
pub struct Quiet;
impl DistillObserver for Quiet {}

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

/// The teacher's targets for a batch, per student layer: the pooled hidden state of its
/// teacher layer and (when the word-piece loss is on) that layer's state of every piece; and
/// the teacher's sentence vector.
struct TeacherTargets {
    layers: Vec<Tensor<2>>,
    pieces: Vec<Tensor<3>>,
    /// The last mapped layer's attention and value relations (with the relation loss).
    relations: Option<(Tensor<4>, Tensor<4>)>,
    out: Tensor<2>,
}

fn teacher_targets(
    teacher: &TextEmbedder,
    tokens: &TokenBatch,
    config: &DistillConfig,
    device: &Device,
) -> TeacherTargets {
    let here = teacher.device();
    let shape = [tokens.batch, tokens.seq_len];
    let ids = Tensor::<2, Int>::from_data(TensorData::new(tokens.ids.clone(), shape), here);
    let mask = Tensor::<2>::from_data(TensorData::new(tokens.mask.clone(), shape), here);
    let states = teacher.encoder.forward_all(ids, mask.clone());
    let layers = config
        .layer_map
        .iter()
        .map(|&l| {
            let pooled = masked_mean(states[l + 1].clone(), mask.clone());
            Tensor::<2>::from_data(pooled.into_data(), device)
        })
        .collect();
    let pieces = if config.token_weight > 0.0 {
        config
            .layer_map
            .iter()
            .map(|&l| Tensor::<3>::from_data(states[l + 1].clone().into_data(), device))
            .collect()
    } else {
        Vec::new()
    };
    let relations = (config.relation_weight > 0.0).then(|| {
        let last = *config.layer_map.last().expect("a layer map");
        let (att, val) = attention_relations(
            &teacher.encoder.layers[last].attention,
            states[last].clone(),
            score_bias(mask.clone()),
        );
        (
            Tensor::<4>::from_data(att.into_data(), device),
            Tensor::<4>::from_data(val.into_data(), device),
        )
    });
    let out = masked_mean(states.last().expect("layers").clone(), mask);
    TeacherTargets {
        layers,
        pieces,
        relations,
        out: Tensor::<2>::from_data(out.into_data(), device),
    }
}

/// The student's loss on an embedding output.
#[allow(clippy::too_many_arguments)]
fn student_loss(
    student: &Student,
    embedded: Tensor<3>,
    mask: Tensor<2>,
    masks: &crate::distill::student::MaskTensors,
    targets: &TeacherTargets,
    stage2: bool,
    config: &DistillConfig,
) -> Tensor<1> {
    let states = masked_layers(&student.encoder, embedded.clone(), mask.clone(), masks);
    let n = states.len() as f64;
    let mut loss = states
        .iter()
        .zip(&student.maps)
        .zip(&targets.layers)
        .map(|((s, map), t)| {
            cos_nce(
                map.forward(masked_mean(s.clone(), mask.clone())),
                t.clone(),
                config.tau,
            )
        })
        .reduce(|a, b| a + b)
        .expect("at least one layer")
        .mul_scalar(config.layer_weight / n);
    if !targets.pieces.is_empty() {
        let pieces = states
            .iter()
            .zip(&student.maps)
            .zip(&targets.pieces)
            .map(|((s, map), t)| token_cosine(map.forward(s.clone()), t.clone(), mask.clone()))
            .reduce(|a, b| a + b)
            .expect("at least one layer");
        loss = loss + pieces.mul_scalar(config.token_weight / n);
    }
    if let Some((att, val)) = &targets.relations {
        // The last layer's relations are computed from its input: the state before it.
        let last = states.len() - 1;
        let input = if last == 0 {
            embedded
        } else {
            states[last - 1].clone()
        };
        let (s_att, s_val) = attention_relations(
            &student.encoder.layers[last].attention,
            input,
            score_bias(mask.clone()),
        );
        let heads = masks.heads[last].clone();
        loss = loss
            + (relation_kl(s_att, att.clone(), mask.clone(), heads.clone())
                + relation_kl(s_val, val.clone(), mask.clone(), heads))
            .mul_scalar(config.relation_weight);
    }
    if stage2 {
        let out = masked_mean(states.last().expect("layers").clone(), mask);
        loss = loss
            + (output_cosine(out.clone(), targets.out.clone())
                + similarity_kl(out, targets.out.clone(), config.kl_tau))
            .mul_scalar(config.output_weight);
    }
    loss
}

/// Student ids from teacher ids (the pruned vocabulary's re-indexing).
struct IdMap(Option<HashMap<i64, i64>>, i64);

impl IdMap {
    fn map(&self, ids: &[i64]) -> Vec<i64> {
        match &self.0 {
            None => ids.to_vec(),
            Some(m) => ids.iter().map(|i| *m.get(i).unwrap_or(&self.1)).collect(),
        }
    }
}

/// Rows of a `[rows, dim]` tensor.
fn rows(t: Tensor<2>) -> Result<Vec<Vec<f32>>> {
    let [_, dim] = t.dims();
    let flat: Vec<f32> = t
        .into_data()
        .try_to_vec()
        .map_err(|e| Error::Backend(format!("{e:?}")))?;
    Ok(flat.chunks(dim.max(1)).map(<[f32]>::to_vec).collect())
}

/// Mean dot product of paired unit vectors: their mean cosine.
pub fn mean_cosine(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| x.iter().zip(y).map(|(p, q)| f64::from(p * q)).sum::<f64>())
        .sum();
    sum / a.len().max(1) as f64
}

/// The teacher's unit vectors of `texts` (tokenised as the student sees them), computed once
/// per distillation: the teacher does not change.
fn teacher_vectors(
    teacher: &TextEmbedder,
    tokenizer: &TextTokenizer,
    texts: &[String],
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(64) {
        out.extend(rows(l2_normalize(
            teacher.forward(&tokenizer.encode_batch(chunk)?),
        ))?);
    }
    Ok(out)
}

/// The student's unit vectors of `texts` (masked forward, inference).
fn student_vectors(
    student: &Student,
    masks: &Masks,
    config: &BertConfig,
    device: &Device,
    tokenizer: &TextTokenizer,
    ids: &IdMap,
    texts: &[String],
) -> Result<Vec<Vec<f32>>> {
    let enc = &student.encoder;
    let mt = masks.tensors(device, config.layer_norm_eps);
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(64) {
        let tokens = tokenizer.encode_batch(chunk)?;
        let shape = [tokens.batch, tokens.seq_len];
        let mask = Tensor::<2>::from_data(TensorData::new(tokens.mask.clone(), shape), device);
        let sid = Tensor::<2, Int>::from_data(TensorData::new(ids.map(&tokens.ids), shape), device);
        let e = masked_embeddings(enc, sid, &mt);
        let last = masked_layers(enc, e, mask.clone(), &mt)
            .pop()
            .expect("layers");
        out.extend(rows(l2_normalize(masked_mean(last, mask)))?);
    }
    Ok(out)
}

/// Distils `teacher` (its files, run on `base`) into a student trained on `device` (an autodiff
/// device), on `train_texts`, validated on `valid_texts` (the vocabulary is pruned to both: the
/// whole catalog). With a checkpoint folder, every epoch is committed there; `resume`
/// continues from it exactly.
#[allow(clippy::too_many_arguments)]
pub fn distill(
    files: &EncoderFiles,
    base: &Device,
    device: &Device,
    train_texts: &[String],
    valid_texts: &[String],
    config: &DistillConfig,
    checkpoint: Option<(PathBuf, bool)>,
    observer: &mut dyn DistillObserver,
) -> Result<Distilled> {
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
    // The words augmented copies draw replacements from: the training texts' only.
    let word_pool: Vec<&str> = train_texts
        .iter()
        .flat_map(|t| t.split_whitespace())
        .collect();
    // Whole words of the teacher's vocabulary (no continuation pieces, special tokens or
    // single characters), in id order.
    let mut vocab_pool: Vec<(u32, String)> = if config.vocab_words > 0.0 {
        tokenizer
            .inner()
            .get_vocab(false)
            .into_iter()
            .filter(|(piece, _)| whole_word(piece))
            .map(|(piece, id)| (id, piece))
            .collect()
    } else {
        Vec::new()
    };
    vocab_pool.sort();
    let vocab_pool: Vec<&str> = vocab_pool.iter().map(|(_, w)| w.as_str()).collect();
    let neighbours = if config.neighbour_words > 0.0 {
        Neighbours::build(
            train_texts,
            &tokenizer.inner().get_vocab(false).into_iter().collect(),
            teacher.encoder.embeddings.word_embeddings.weight.val(),
            NEIGHBOURS,
        )
    } else {
        Neighbours::default()
    };
    // The kinds of augmented copy in use, drawn evenly: 0 words dropped, 1 catalog words,
    // 2 vocabulary words, 3 neighbour words.
    let copy_kinds: Vec<usize> = [
        true,
        config.replace_words > 0.0,
        config.vocab_words > 0.0,
        config.neighbour_words > 0.0,
    ]
    .iter()
    .enumerate()
    .filter_map(|(k, &on)| on.then_some(k))
    .collect();
    let eps = teacher.config.layer_norm_eps;
    for epoch in first_epoch..=config.epochs {
        let start = std::time::Instant::now();
        let stage2 = epoch > config.stage1_epochs || config.layer_weight == 0.0;
        device.seed(
            config
                .seed
                .wrapping_mul(1_000_003)
                .wrapping_add(epoch as u64),
        );
        let mut order: Vec<usize> = (0..train_texts.len()).collect();
        for i in (1..order.len()).rev() {
            let j = ((rng.next_f32() * (i + 1) as f32) as usize).min(i);
            order.swap(i, j);
        }
        observer.epoch_start(epoch, batches);
        let (mut loss_sum, mut seen) = (0.0, 0);
        for chunk in order.chunks(config.batch_size) {
            if chunk.len() < 2 {
                continue; // COS-NCE needs negatives
            }
            let texts: Vec<String> = chunk
                .iter()
                .map(|&i| {
                    if config.augment > 0.0 && rng.next_f32() < config.augment {
                        let text = &train_texts[i];
                        let n = copy_kinds.len();
                        match copy_kinds[((rng.next_f32() * n as f32) as usize).min(n - 1)] {
                            0 => drop_words(text, 0.2, &mut rng),
                            1 => replace_words(text, config.replace_words, &word_pool, &mut rng),
                            2 => replace_words(text, config.vocab_words, &vocab_pool, &mut rng),
                            _ => neighbours.replace(text, config.neighbour_words, &mut rng),
                        }
                    } else {
                        train_texts[i].clone()
                    }
                })
                .collect();
            let tokens = tokenizer.encode_batch(&texts)?;
            let targets = teacher_targets(&teacher, &tokens, config, device);
            let shape = [tokens.batch, tokens.seq_len];
            let mask = Tensor::<2>::from_data(TensorData::new(tokens.mask.clone(), shape), device);
            let sid =
                Tensor::<2, Int>::from_data(TensorData::new(ids.map(&tokens.ids), shape), device);
            let mt = masks.tensors(device, eps);
            let embedded = masked_embeddings(&student.encoder, sid, &mt);
            let loss = if stage2 && config.fgm_epsilon > 0.0 {
                // FGM: the gradient at the embedding output (a detached leaf), then the loss at
                // the clean and at the perturbed embedding together.
                let leaf = embedded.clone().detach().require_grad();
                let probe = student_loss(
                    &student,
                    leaf.clone(),
                    mask.clone(),
                    &mt,
                    &targets,
                    true,
                    config,
                );
                let grad = leaf
                    .grad(&probe.backward())
                    .ok_or_else(|| Error::Backend("no gradient at the embedding output".into()))?;
                let grad = Tensor::<3>::from_inner(grad);
                let adversarial = perturb(embedded.clone(), grad, config.fgm_epsilon);
                student_loss(
                    &student,
                    embedded,
                    mask.clone(),
                    &mt,
                    &targets,
                    true,
                    config,
                ) + student_loss(&student, adversarial, mask, &mt, &targets, true, config)
            } else {
                student_loss(&student, embedded, mask, &mt, &targets, stage2, config)
            };
            let value = f64::from(loss.clone().into_scalar::<f32>());
            if !value.is_finite() {
                return Err(Error::Backend(format!(
                    "the distillation loss became {value} at epoch {epoch}; lower --lr"
                )));
            }
            let mut grads = GradientsParams::from_grads(loss.backward(), &student);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{product_titles, tiny_bert_files};

    #[test]
    fn learning_rate_holds_then_falls_on_a_half_cosine_to_the_floor() {
        let lr = |step| decayed_lr(1.0, 0.1, step, 10, 31);
        assert_eq!(lr(0), 1.0);
        assert_eq!(lr(10), 1.0);
        assert!((lr(20) - 0.55).abs() < 1e-9, "{}", lr(20));
        assert!((lr(30) - 0.1).abs() < 1e-9);
        assert!((1..31).all(|s| lr(s) <= lr(s - 1)));
        assert_eq!(decayed_lr(1.0, 1.0, 30, 10, 31), 1.0);
    }

    #[test]
    fn replaced_words_come_from_the_pool_and_keep_the_length() {
        let mut rng = SplitMix(7);
        let pool = ["alpha", "beta"];
        let out = replace_words("one two three four five six", 0.5, &pool, &mut rng);
        let words: Vec<&str> = out.split(' ').collect();
        assert_eq!(words.len(), 6);
        let replaced = words.iter().filter(|w| pool.contains(w)).count();
        assert!(replaced > 0 && replaced < 6, "{out}");
        assert_eq!(replace_words("a b", 0.0, &pool, &mut rng), "a b");
    }

    struct KillAt(usize, usize);
    impl DistillObserver for KillAt {
        fn epoch_start(&mut self, epoch: usize, _: usize) {
            self.1 = epoch;
        }
        fn batch(&mut self, _: f64) {
            if self.1 == self.0 {
                panic!("killed mid-epoch");
            }
        }
    }

    fn figures(log: &[DistillEpoch]) -> Vec<(usize, usize, String, String, Shape, usize)> {
        log.iter()
            .map(|e| {
                (
                    e.epoch,
                    e.stage,
                    format!("{:.6}", e.loss),
                    format!("{:.6}", e.valid_cosine),
                    e.kept,
                    e.params,
                )
            })
            .collect()
    }

    /// The tiny teacher's runs: small batches, a fast rate, pruned to 1 head × 12 neurons.
    fn tiny_config(teacher: &BertConfig) -> DistillConfig {
        DistillConfig {
            batch_size: 8,
            lr: 1e-3,
            target: Shape {
                hidden: 16,
                heads: 1,
                ffn: 12,
            },
            max_len: 32,
            ..DistillConfig::for_teacher(teacher)
        }
    }

    /// With vocabulary words in the copies the student trains on the teacher's whole table and
    /// is pruned to the catalog's pieces only when sliced: the bundle is as small, and the
    /// sliced model still equals the masked one on the catalog's texts.
    #[test]
    fn vocabulary_words_train_the_whole_table_and_prune_it_at_the_end() {
        let _seeded = crate::train::tests::SEEDED
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let files = tiny_bert_files(12);
        let base = Device::flex();
        let titles = product_titles(24, 5);
        let (train, valid) = titles.split_at(20);
        let teacher_config = TextEmbedder::from_files(&files, &base).unwrap().config;
        let config = DistillConfig {
            epochs: 2,
            stage1_epochs: 1,
            augment: 1.0,
            vocab_words: 0.5,
            ..tiny_config(&teacher_config)
        };
        let at_start = DistillConfig {
            vocab_words: 0.0,
            ..config.clone()
        };
        let run = |c: &DistillConfig| {
            distill(
                &files,
                &base,
                &base.clone().autodiff(),
                train,
                valid,
                c,
                None,
                &mut Quiet,
            )
            .unwrap()
        };
        let (late, early) = (run(&config), run(&at_start));
        assert_eq!(late.config.vocab_size, early.config.vocab_size);
        assert!(late.config.vocab_size < teacher_config.vocab_size);
        assert!(late.sliced_vs_masked < 1e-4, "{}", late.sliced_vs_masked);
        assert_ne!(late.valid_cosine, early.valid_cosine);
        // Neighbour-word copies also train on the whole table and prune it when sliced.
        let near = run(&DistillConfig {
            vocab_words: 0.0,
            neighbour_words: 0.5,
            ..config.clone()
        });
        assert_eq!(near.config.vocab_size, early.config.vocab_size);
        assert!(near.sliced_vs_masked < 1e-4, "{}", near.sliced_vs_masked);
        assert_ne!(near.valid_cosine, early.valid_cosine);
    }

    /// With averaging, the evaluated and sliced student is the moving average from the end of
    /// pruning on (its figures differ from the last weights'), the sliced model still equals the
    /// masked one, and a run killed after averaging began resumes to the same figures.
    #[test]
    fn averaged_weights_are_sliced_and_resume_exactly() {
        let _seeded = crate::train::tests::SEEDED
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let files = tiny_bert_files(14);
        let base = Device::flex();
        let device = base.clone().autodiff();
        let titles = product_titles(24, 5);
        let (train, valid) = titles.split_at(20);
        let teacher_config = TextEmbedder::from_files(&files, &base).unwrap().config;
        let config = DistillConfig {
            epochs: 4,
            stage1_epochs: 1,
            prune_until: 0.3,
            average: 0.9,
            ..tiny_config(&teacher_config)
        };
        let run = |c: &DistillConfig, cp: Option<(PathBuf, bool)>, o: &mut dyn DistillObserver| {
            distill(&files, &base, &device, train, valid, c, cp, o)
        };
        let whole = run(&config, None, &mut Quiet).unwrap();
        let last = run(
            &DistillConfig {
                average: 0.0,
                ..config.clone()
            },
            None,
            &mut Quiet,
        )
        .unwrap();
        assert_ne!(whole.valid_cosine, last.valid_cosine);
        // Before averaging starts (epoch 1 ends before pruning does) the two runs agree.
        assert_eq!(figures(&whole.log[..1]), figures(&last.log[..1]));
        assert!(whole.sliced_vs_masked < 1e-4, "{}", whole.sliced_vs_masked);

        let dir =
            std::env::temp_dir().join(format!("ranklet-distill-average-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run(&config, Some((dir.clone(), false)), &mut KillAt(4, 0))
        }));
        assert!(killed.is_err());
        let state = std::fs::read_to_string(dir.join("state.json")).unwrap();
        assert!(state.contains("average-0003.bpk"), "{state}");
        let resumed = run(&config, Some((dir.clone(), true)), &mut Quiet).unwrap();
        assert_eq!(resumed.epochs_resumed, 3);
        assert_eq!(figures(&resumed.log), figures(&whole.log));
        assert_eq!(resumed.valid_cosine, whole.valid_cosine);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `freeze_words` keeps the word-piece table at the teacher's values while the rest learns
    /// (here with the relation loss on, which must train too); without it the table moves.
    #[test]
    fn frozen_words_keep_the_teachers_table() {
        let _seeded = crate::train::tests::SEEDED
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let files = tiny_bert_files(13);
        let base = Device::flex();
        let teacher = TextEmbedder::from_files(&files, &base).unwrap();
        let titles = product_titles(24, 5);
        let (train, valid) = titles.split_at(20);
        let config = DistillConfig {
            epochs: 2,
            stage1_epochs: 1,
            prune: false,
            prune_vocab: false,
            freeze_words: true,
            relation_weight: 1.0,
            ..tiny_config(&teacher.config)
        };
        let run = |c: &DistillConfig| {
            distill(
                &files,
                &base,
                &base.clone().autodiff(),
                train,
                valid,
                c,
                None,
                &mut Quiet,
            )
            .unwrap()
        };
        let table = |e: &BertEncoder| -> Vec<f32> {
            e.embeddings
                .word_embeddings
                .weight
                .val()
                .into_data()
                .try_to_vec()
                .unwrap()
        };
        let positions = |e: &BertEncoder| -> Vec<f32> {
            e.embeddings
                .position_embeddings
                .weight
                .val()
                .into_data()
                .try_to_vec()
                .unwrap()
        };
        let frozen = run(&config);
        assert_eq!(table(&frozen.encoder), table(&teacher.encoder));
        assert_ne!(positions(&frozen.encoder), positions(&teacher.encoder));
        let free = run(&DistillConfig {
            freeze_words: false,
            ..config
        });
        assert_ne!(table(&free.encoder), table(&teacher.encoder));
    }

    /// A tiny random teacher distilled with every part on (pruning to the target, vocabulary
    /// pruning, two stages, FGM, the word-piece loss, replaced-word copies, the decaying rate):
    /// the student ends at the target shape, the sliced model equals the masked one, and a run
    /// killed mid-epoch resumes to the same figures.
    #[test]
    fn distils_prunes_slices_and_resumes_exactly() {
        let _seeded = crate::train::tests::SEEDED
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let files = tiny_bert_files(11);
        let base = Device::flex();
        let device = base.clone().autodiff();
        let titles = product_titles(40, 3);
        let (train, valid) = titles.split_at(32);
        let teacher_config = TextEmbedder::from_files(&files, &base).unwrap().config;
        let config = DistillConfig {
            epochs: 4,
            stage1_epochs: 2,
            prune_every: 2,
            token_weight: 0.5,
            lr_floor: 0.1,
            replace_words: 0.3,
            ..tiny_config(&teacher_config)
        };
        let whole = distill(
            &files, &base, &device, train, valid, &config, None, &mut Quiet,
        )
        .unwrap();
        let last = whole.log.last().unwrap();
        assert_eq!(
            last.kept,
            Shape {
                hidden: 16,
                heads: 1,
                ffn: 12
            }
        );
        assert_eq!(whole.config.heads_in_layer(0), 1);
        assert_eq!(whole.config.intermediate_size, 12);
        assert!(whole.config.vocab_size < teacher_config.vocab_size);
        assert_eq!(whole.config.max_position_embeddings, 32);
        assert!(whole.config.num_params() < teacher_config.num_params());
        assert!(whole.sliced_vs_masked < 1e-4, "{}", whole.sliced_vs_masked);
        assert!(whole.valid_cosine.is_finite() && whole.valid_cosine > 0.0);
        assert!(last.train_cosine.is_finite() && last.train_cosine > 0.0);
        assert_eq!(
            whole.log.iter().map(|e| e.stage).collect::<Vec<_>>(),
            vec![1, 1, 2, 2]
        );

        let dir =
            std::env::temp_dir().join(format!("ranklet-distill-resume-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            distill(
                &files,
                &base,
                &device,
                train,
                valid,
                &config,
                Some((dir.clone(), false)),
                &mut KillAt(3, 0),
            )
        }));
        assert!(killed.is_err());
        let resumed = distill(
            &files,
            &base,
            &device,
            train,
            valid,
            &config,
            Some((dir.clone(), true)),
            &mut Quiet,
        )
        .unwrap();
        assert_eq!(resumed.epochs_resumed, 2);
        assert_eq!(figures(&resumed.log), figures(&whole.log));
        let other = DistillConfig {
            lr: 5e-4,
            ..config.clone()
        };
        let err = distill(
            &files,
            &base,
            &device,
            train,
            valid,
            &other,
            Some((dir.clone(), true)),
            &mut Quiet,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("other settings"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
