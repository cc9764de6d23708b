//! `ranklet distill`: the browser student from the teacher (HomoDistil pruning + LRC-BERT
//! contrastive layer distillation + vocabulary pruning), written as a bundle folder.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use ranklet::bundle::{
    EncoderFiles, Manifest, add_bundle_files, read_model_dir, write_encoder_dir,
};
use ranklet::data::{Dataset, read_text_records};
use ranklet::distill::pruning::Shape;
use ranklet::distill::run::{DistillConfig, DistillEpoch, DistillObserver, distill, mean_cosine};
use ranklet::fixtures::SplitMix;
use ranklet::text::TextEmbedder;
use ranklet::text::TextTokenizer;
use ranklet::text::config::BertConfig;
use ranklet::text::weights::{StoredDtype, load_encoder, save_encoder};
use ranklet::{Error, Result};
use serde_json::json;

use super::{DeviceArg, progress};

#[derive(Debug, Args)]
pub struct DistillArgs {
    /// The teacher's model folder.
    #[arg(long, default_value = "models/teacher")]
    pub teacher: PathBuf,
    /// The catalog texts: a dataset folder (RecBole atomic files or catalog.jsonl + events) or a
    /// catalog / {"id","text"} JSONL file.
    #[arg(long)]
    pub texts: PathBuf,
    /// Where the student bundle goes.
    #[arg(long, default_value = "models/student")]
    pub out: PathBuf,
    /// Fraction of the texts held out to measure the student's cosine to the teacher.
    #[arg(long, default_value_t = 0.1)]
    pub valid_fraction: f64,
    /// Student layers, taken evenly from the teacher's (e.g. 3 of 6 → teacher layers 1, 3, 5;
    /// 2 of 6 → 2, 5). Default 2: at a fixed compute budget, wide layers keep more of the teacher
    /// than more narrow ones (reports/distill.json, the shape ablations).
    #[arg(long, conflicts_with = "layer_map")]
    pub layers: Option<usize>,
    /// Teacher layers (0-based, comma-separated) the student keeps, in order.
    #[arg(long, value_delimiter = ',')]
    pub layer_map: Option<Vec<usize>>,
    /// Attention heads per layer to prune down to. Default: all of the teacher's (heads carry
    /// most of what the student keeps; feed-forward neurons are what is pruned).
    #[arg(long)]
    pub heads: Option<usize>,
    /// Feed-forward neurons per layer to prune down to (unless --target-params sets it).
    #[arg(long, default_value_t = 64)]
    pub ffn: usize,
    /// Target parameter count of the student encoder: sets --ffn (multiples of 32) so the
    /// student, with its layers, heads and pruned vocabulary, fits.
    #[arg(long)]
    pub target_params: Option<usize>,
    /// Keep every head and neuron (LRC-BERT alone: only layers are dropped).
    #[arg(long)]
    pub no_prune: bool,
    /// Keep the teacher's whole vocabulary.
    #[arg(long)]
    pub no_vocab_prune: bool,
    /// Epochs over the training texts (pruning takes the first --prune-until of them).
    #[arg(long, default_value_t = 48)]
    pub epochs: usize,
    /// Epochs of stage 1 (COS-NCE alone); 0 runs stage 2 throughout.
    #[arg(long, default_value_t = 2)]
    pub stage1_epochs: usize,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 5e-4)]
    pub lr: f64,
    /// FGM step on the embedding output in stage 2 (0: off).
    #[arg(long, default_value_t = 0.05)]
    pub fgm_epsilon: f64,
    /// Probability of replacing a training text, for one step, by an altered copy that the
    /// teacher labels afresh (words dropped, or swapped as the options below say).
    #[arg(long, default_value_t = 0.8)]
    pub augment: f32,
    /// Weight of the output-level losses (cosine to the teacher's vector, in-batch similarity
    /// KL) in stage 2.
    #[arg(long, default_value_t = 4.0)]
    pub output_weight: f64,
    /// Share of an augmented copy's words replaced by words of other training texts (a second
    /// kind of copy besides dropping words; the kinds in use are drawn evenly; 0: off).
    #[arg(long, default_value_t = 0.0)]
    pub replace_words: f32,
    /// Weight of the word-piece-level loss (every piece's state of each mapped layer towards
    /// the teacher's, 1 − cos), in both stages (0: off).
    #[arg(long, default_value_t = 0.0)]
    pub token_weight: f64,
    /// Share of an augmented copy's words replaced by random whole words of the teacher's
    /// vocabulary (a third kind of copy; the student trains with the whole embedding table,
    /// pruned to the catalog's pieces at the end; 0: off).
    #[arg(long, default_value_t = 0.5)]
    pub vocab_words: f32,
    /// Share the heads' budget (--heads × layers) out over the layers by importance instead of
    /// --heads in each (at least one per layer).
    #[arg(long)]
    pub global_heads: bool,
    /// Dropout of the student while it learns (the teacher's config.json says 0.1; without it
    /// the student kept more of the teacher, reports/distill.json).
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f64,
    /// Keep the word-piece embeddings at the teacher's values while the student learns.
    #[arg(long)]
    pub freeze_words: bool,
    /// Share of the training steps over which pruning reaches the target shape (the rest
    /// trains the pruned shape, with the learning-rate decay).
    #[arg(long, default_value_t = 0.6)]
    pub prune_until: f64,
    /// Polyak averaging factor per step once pruning is done: the student evaluated and
    /// written is the moving average of the weights (0: the last weights).
    #[arg(long, default_value_t = 0.0)]
    pub average: f64,
    /// Share of an augmented copy's words replaced by one of their nearest whole words in the
    /// teacher's embedding table (a fourth kind of copy; 0: off).
    #[arg(long, default_value_t = 0.3)]
    pub neighbour_words: f32,
    /// Weight of MiniLM's self-attention relation loss on the last layer (0: off).
    #[arg(long, default_value_t = 0.0)]
    pub relation_weight: f64,
    /// After pruning ends, the learning rate falls on a half cosine to lr × this (1: constant).
    #[arg(long, default_value_t = 0.05)]
    pub lr_floor: f64,
    /// Leave out LRC-BERT's COS-NCE layer loss (only the output-level losses; an ablation).
    #[arg(long)]
    pub no_cos_nce: bool,
    /// Word-pieces per text.
    #[arg(long, default_value_t = 128)]
    pub max_len: usize,
    #[arg(long, default_value_t = 2020)]
    pub seed: u64,
    /// Element type of the weights the bundle's manifest names (what the browser downloads):
    /// int8 → encoder.int8.safetensors, f16/f32 → encoder.safetensors. encoder.safetensors in
    /// f16 (HF names, loadable by `transformers`) is always written.
    #[arg(long, value_enum, default_value_t = DtypeArg::Int8)]
    pub dtype: DtypeArg,
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// Checkpoint folder [default: .cache/checkpoints/distill-<seed>].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Continue the distillation saved in the checkpoint folder (same arguments).
    #[arg(long, conflicts_with = "restart")]
    pub resume: bool,
    /// Discard an earlier checkpoint in the folder.
    #[arg(long)]
    pub restart: bool,
    /// JSON report (entries of one report merge by --name).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Name of this run in the report; the run named "student" fills its top-level figures.
    #[arg(long, default_value = "student")]
    pub name: String,
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DtypeArg {
    F32,
    F16,
    Int8,
}

fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join("manifest.json");
    let bytes = std::fs::read(&path).map_err(|e| Error::io(path.display(), e))?;
    Manifest::from_json(&bytes, &path.display().to_string())
}

/// Makes `dir` ready for a new bundle: the files an earlier bundle's manifest lists are removed
/// (so none is left stale); a folder that holds anything else is refused, never emptied.
fn clear_bundle(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let listed: Vec<String> = match read_manifest(dir) {
        Ok(m) => m
            .files
            .keys()
            .cloned()
            .chain(["manifest.json".to_string()])
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

/// The texts of a dataset folder or a text/catalog file.
fn read_texts(path: &Path) -> Result<Vec<String>> {
    if path.is_dir() {
        let ds = Dataset::read_dir(path)?;
        return Ok(ds.items.into_iter().map(|i| i.text).collect());
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path.display(), e))?;
    Ok(read_text_records(&bytes, &path.display().to_string())?
        .into_iter()
        .map(|r| r.text)
        .collect())
}

/// The student's parameters for a shape (what --target-params solves for).
fn student_params(
    teacher: &BertConfig,
    layers: usize,
    heads: usize,
    ffn: usize,
    vocab: usize,
    max_len: usize,
) -> usize {
    let mut c = teacher.clone();
    c.num_hidden_layers = layers;
    c.intermediate_size = ffn;
    c.vocab_size = vocab;
    c.max_position_embeddings = max_len.min(teacher.max_position_embeddings);
    let pruned: Vec<usize> = (heads..teacher.num_attention_heads).collect();
    c.pruned_heads = (0..layers)
        .map(|l| (l.to_string(), pruned.clone()))
        .collect();
    c.num_params()
}

/// Heads left in each layer of a (possibly non-uniformly) pruned encoder.
fn heads_per_layer(config: &BertConfig) -> Vec<usize> {
    (0..config.num_hidden_layers)
        .map(|l| config.heads_in_layer(l))
        .collect()
}

/// Texts per second of an embedder over `texts` in batches of 32.
fn texts_per_s(embedder: &TextEmbedder, texts: &[String]) -> Result<f64> {
    Ok(texts.len() as f64 / super::bench::time_embedding(embedder, texts, 32)?)
}

struct Progress {
    bar: indicatif::ProgressBar,
    epochs: usize,
    quiet: bool,
}

impl DistillObserver for Progress {
    fn epoch_start(&mut self, epoch: usize, batches: usize) {
        self.bar.finish_and_clear();
        self.bar = progress(batches as u64, "batches", self.quiet);
        self.bar
            .set_prefix(format!("epoch {epoch}/{}", self.epochs));
    }
    fn batch(&mut self, loss: f64) {
        self.bar.inc(1);
        self.bar.set_message(format!("loss {loss:.4}"));
    }
    fn epoch_end(&mut self, e: &DistillEpoch) {
        self.bar.finish_and_clear();
        if !self.quiet {
            eprintln!(
                "epoch {:>2} (stage {}): loss {:.4}, held-out cosine {:.4} (training texts {:.4}), {} heads × {} neurons, {:.2} M params, {:.0} s",
                e.epoch,
                e.stage,
                e.loss,
                e.valid_cosine,
                e.train_cosine,
                e.kept.heads,
                e.kept.ffn,
                e.params as f64 / 1e6,
                e.seconds
            );
        }
    }
}

pub fn run(args: DistillArgs) -> Result<()> {
    let files = read_model_dir(&args.teacher)?;
    let teacher_config = BertConfig::from_json(
        std::str::from_utf8(&files.config.1)
            .map_err(|_| Error::bad_file(&files.config.0, "not UTF-8"))?,
        &files.config.0,
    )?;
    let mut texts = read_texts(&args.texts)?;
    texts.sort();
    texts.dedup();
    if texts.len() < 4 {
        return Err(Error::bad_input(
            args.texts.display().to_string(),
            "fewer than 4 distinct texts",
        ));
    }
    // A seeded shuffle, then the held-out share.
    let mut rng = SplitMix(args.seed ^ 0x5eed);
    for i in (1..texts.len()).rev() {
        let j = ((rng.next_f32() * (i + 1) as f32) as usize).min(i);
        texts.swap(i, j);
    }
    let n_valid =
        ((texts.len() as f64 * args.valid_fraction).round() as usize).clamp(1, texts.len() - 2);
    let (valid, train) = texts.split_at(n_valid);

    let teacher_layers = teacher_config.num_hidden_layers;
    // Default 2 layers (or the teacher's, if it has fewer).
    let layers = args.layers.unwrap_or(2.min(teacher_layers));
    let layer_map = match &args.layer_map {
        Some(map) => map.clone(),
        None if layers >= 1 && layers <= teacher_layers => {
            // Evenly spaced, ending at the last layer (3 of 6 → 1, 3, 5).
            (1..=layers)
                .map(|i| i * teacher_layers / layers - 1)
                .collect()
        }
        None => {
            return Err(Error::bad_input(
                "--layers",
                format!("{layers}: the teacher has {teacher_layers} layers"),
            ));
        }
    };
    let heads = args.heads.unwrap_or(teacher_config.num_attention_heads);
    let mut ffn = args.ffn;
    if let Some(target) = args.target_params {
        // The vocabulary the catalog keeps is known only after pruning; estimate it from the
        // teacher's tokenizer the way pruning will count it.
        let vocab = if args.no_vocab_prune {
            teacher_config.vocab_size
        } else {
            ranklet::distill::prune_vocab(&files.tokenizer.1, &texts, &files.tokenizer.0)?
                .kept
                .len()
        };
        ffn = (1..=teacher_config.intermediate_size / 32)
            .rev()
            .map(|k| k * 32)
            .find(|&f| {
                student_params(
                    &teacher_config,
                    layer_map.len(),
                    heads,
                    f,
                    vocab,
                    args.max_len,
                ) <= target
            })
            .ok_or_else(|| {
                Error::bad_input(
                    "--target-params",
                    format!(
                        "{target} is below the smallest student of {} layers and {} heads",
                        layer_map.len(),
                        heads
                    ),
                )
            })?;
        eprintln!(
            "--target-params {target}: {} layers, {} heads, {ffn} neurons, vocabulary {vocab}",
            layer_map.len(),
            heads
        );
    }
    if !(0.0..1.0).contains(&args.dropout) {
        return Err(Error::bad_input(
            "--dropout",
            format!(
                "{}: a dropout probability is at least 0 and below 1",
                args.dropout
            ),
        ));
    }
    if !(0.0..1.0).contains(&args.average) {
        return Err(Error::bad_input(
            "--average",
            format!(
                "{}: an averaging factor is at least 0 and below 1",
                args.average
            ),
        ));
    }
    if !(args.prune_until > 0.0 && args.prune_until <= 1.0) {
        return Err(Error::bad_input(
            "--prune-until",
            format!(
                "{}: the share of steps that prune is above 0 and at most 1",
                args.prune_until
            ),
        ));
    }
    let config = DistillConfig {
        epochs: args.epochs,
        stage1_epochs: args.stage1_epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        fgm_epsilon: args.fgm_epsilon,
        layer_map,
        prune: !args.no_prune,
        target: Shape {
            hidden: teacher_config.hidden_size,
            heads,
            ffn,
        },
        prune_vocab: !args.no_vocab_prune,
        max_len: args.max_len,
        seed: args.seed,
        augment: args.augment,
        output_weight: args.output_weight,
        layer_weight: if args.no_cos_nce { 0.0 } else { 1.0 },
        replace_words: args.replace_words,
        lr_floor: args.lr_floor,
        token_weight: args.token_weight,
        vocab_words: args.vocab_words,
        global_heads: args.global_heads,
        dropout: Some(args.dropout),
        freeze_words: args.freeze_words,
        prune_until: args.prune_until,
        average: args.average,
        neighbour_words: args.neighbour_words,
        relation_weight: args.relation_weight,
        ..DistillConfig::for_teacher(&teacher_config)
    };
    let checkpoint = args
        .checkpoint
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!(".cache/checkpoints/distill-{}", args.seed)));
    super::prepare_checkpoint(&checkpoint, args.resume, args.restart, "distillation")?;
    let base = args.device.init()?;
    base.seed(args.seed);
    let device = base.clone().autodiff();
    if !args.quiet {
        eprintln!(
            "distilling {} ({} train / {} held-out texts): layers {:?}, {} heads, {} neurons, vocabulary pruning {}",
            files.name,
            train.len(),
            valid.len(),
            config.layer_map,
            config.target.heads,
            config.target.ffn,
            if config.prune_vocab { "on" } else { "off" }
        );
    }
    let start = Instant::now();
    let mut observer = Progress {
        bar: indicatif::ProgressBar::hidden(),
        epochs: config.epochs,
        quiet: args.quiet,
    };
    let out = distill(
        &files,
        &base,
        &device,
        train,
        valid,
        &config,
        Some((checkpoint.clone(), args.resume)),
        &mut observer,
    )?;
    observer.bar.finish_and_clear();
    let wall = start.elapsed().as_secs_f64();

    // The bundle: the weights the manifest names, plus the f16 HF file for other readers.
    let stored = |d: DtypeArg| match d {
        DtypeArg::F32 => StoredDtype::F32,
        DtypeArg::F16 => StoredDtype::F16,
        DtypeArg::Int8 => StoredDtype::Int8,
    };
    let weights_name = if args.dtype == DtypeArg::Int8 {
        "encoder.int8.safetensors"
    } else {
        "encoder.safetensors"
    };
    let config_json = serde_json::to_vec_pretty(&out.config).expect("config serialises");
    let student_files = EncoderFiles {
        name: format!("ranklet-student-{}", args.name),
        config: ("config.json".into(), config_json),
        tokenizer: ("tokenizer.json".into(), out.tokenizer_json.clone()),
        weights: (
            weights_name.into(),
            save_encoder(&out.encoder, stored(args.dtype))?,
        ),
        max_seq_length: args.max_len,
        normalize: files.normalize,
    };
    clear_bundle(&args.out)?;
    write_encoder_dir(&args.out, &student_files)?;
    let manifest = if args.dtype == DtypeArg::Int8 {
        let f16 = save_encoder(&out.encoder, StoredDtype::F16)?;
        add_bundle_files(&args.out, &[("encoder.safetensors", &f16)])?
    } else {
        read_manifest(&args.out)?
    };
    // What the browser downloads: the files the manifest's encoder names.
    let e = &manifest.encoder;
    let bundle_bytes: u64 = [
        &e.config,
        &e.tokenizer,
        &e.weights,
        &"manifest.json".to_string(),
    ]
    .iter()
    .map(|n| {
        std::fs::metadata(args.out.join(n))
            .map(|m| m.len())
            .unwrap_or(0)
    })
    .sum();
    // The teacher's held-out vectors, once: every cosine below is against them.
    let teacher = TextEmbedder::from_files(&files, &base)?;
    let teacher_valid = teacher.embed_batched(valid, 64)?;
    let cosine_of = |embedder: &TextEmbedder| -> Result<f64> {
        Ok(mean_cosine(
            &embedder.embed_batched(valid, 64)?,
            &teacher_valid,
        ))
    };
    // f32 vs f16 vs int8: size and held-out cosine of each storage type of the same student.
    let mut dtypes = serde_json::Map::new();
    for d in [DtypeArg::F32, DtypeArg::F16, DtypeArg::Int8] {
        let bytes = save_encoder(&out.encoder, stored(d))?;
        let encoder = load_encoder(&bytes, &out.config, &base, "student")?;
        let embedder = TextEmbedder::new(
            out.config.clone(),
            TextTokenizer::from_bytes(&out.tokenizer_json, args.max_len, "tokenizer.json")?,
            encoder,
            files.normalize,
            base.clone(),
        );
        dtypes.insert(
            format!("{d:?}").to_lowercase(),
            json!({"encoder_bytes": bytes.len(), "mean_cosine_to_teacher": cosine_of(&embedder)?}),
        );
    }

    // The same run measures both encoders' speed and the student's cosine as read back from
    // the bundle folder.
    let student = TextEmbedder::from_files(&read_model_dir(&args.out)?, &base)?;
    let stored_cosine = cosine_of(&student)?;
    let speed_texts: Vec<String> = valid.iter().chain(train).take(256).cloned().collect();
    let teacher_speed = texts_per_s(&teacher, &speed_texts)?;
    let student_speed = texts_per_s(&student, &speed_texts)?;
    let student_params = out.config.num_params();
    let teacher_params = teacher_config.num_params();
    println!(
        "student: {} layers, heads {}, {} neurons, vocabulary {} — {:.2} M parameters ({:.1} % of the teacher's {:.2} M)",
        out.config.num_hidden_layers,
        heads_per_layer(&out.config)
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("/"),
        out.config.intermediate_size,
        out.config.vocab_size,
        student_params as f64 / 1e6,
        100.0 * student_params as f64 / teacher_params as f64,
        teacher_params as f64 / 1e6
    );
    println!(
        "held-out cosine to the teacher {stored_cosine:.4} (as stored, {:?}); sliced vs masked max diff {:.1e}",
        args.dtype, out.sliced_vs_masked
    );
    println!(
        "speed (CPU, batch 32, same run): teacher {teacher_speed:.1} texts/s, student {student_speed:.1} texts/s — {:.2}×",
        student_speed / teacher_speed
    );
    println!(
        "bundle {} bytes in {}; distillation {wall:.0} s",
        bundle_bytes,
        args.out.display()
    );

    if let Some(path) = &args.report {
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        let entry = json!({
            "name": args.name,
            "command": command,
            "config": config,
            "params": student_params,
            "bundle_bytes": bundle_bytes,
            "dtype": format!("{:?}", args.dtype).to_lowercase(),
            "mean_cosine_to_teacher": stored_cosine,
            "texts_per_s_cpu": student_speed,
            "teacher_texts_per_s_cpu": teacher_speed,
            "speedup": student_speed / teacher_speed,
            "sliced_vs_masked_max_diff": out.sliced_vs_masked,
            "dtypes": dtypes,
            "wall_seconds": wall,
            "device": format!("{:?}", args.device).to_lowercase(),
            "log": out.log,
        });
        let mut report: serde_json::Value = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| json!({}));
        let mut ablations: Vec<serde_json::Value> = report["ablations"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["name"] != args.name)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        ablations.push(entry);
        report["ablations"] = json!(ablations);
        if args.name == "student" {
            report["command"] = json!(command);
            report["teacher"] = json!({
                "name": files.name,
                "params": teacher_params,
                "params_with_pooler": teacher_params + teacher_config.hidden_size * (teacher_config.hidden_size + 1),
                "texts_per_s_cpu": teacher_speed,
            });
            let keep = |k: &str| {
                report["student"]
                    .get(k)
                    .cloned()
                    .unwrap_or(serde_json::Value::Null)
            };
            let (nt, ns) = (keep("ndcg@10_teacher"), keep("ndcg@10_student"));
            report["student"] = json!({
                "params": student_params,
                "params_fraction_of_teacher": student_params as f64 / teacher_params as f64,
                "bundle_bytes": bundle_bytes,
                "texts_per_s_cpu": student_speed,
                "speedup_vs_teacher": student_speed / teacher_speed,
                "mean_cosine_to_teacher": stored_cosine,
                "ndcg@10_teacher": nt,
                "ndcg@10_student": ns,
                "layers": out.config.num_hidden_layers,
                "heads": out.config.heads_in_layer(0),
                "heads_per_layer": heads_per_layer(&out.config),
                "ffn": out.config.intermediate_size,
                "vocab": out.config.vocab_size,
            });
        }
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
        }
        ranklet::fsio::write_atomic(path, &serde_json::to_vec_pretty(&report).expect("JSON"))?;
    }
    Ok(())
}
