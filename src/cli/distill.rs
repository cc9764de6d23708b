//! `ranklet distill`: parses the arguments into a [`DistillJob`] and prints its outcome; the
//! work is `ranklet::distill::job` (HomoDistil pruning + LRC-BERT contrastive layer distillation
//! + vocabulary pruning, written as a bundle folder).

use std::path::PathBuf;

use clap::Args;
use ranklet::bundle::read_model_dir;
use ranklet::distill::DistillConfig;
use ranklet::distill::job::{
    DistillJob, evenly_spaced_layers, ffn_for_params, heads_per_layer, read_texts, run_distill_job,
    split_texts, teacher_config,
};
use ranklet::distill::pruning::Shape;
use ranklet::text::config::BertConfig;
use ranklet::text::weights::StoredDtype;
use ranklet::{Error, Result};

use super::progress::{CheckpointArgs, Progress};
use super::{DeviceArg, DevicesArg};

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
    #[arg(long, default_value_t = 0.1, value_parser = super::probability)]
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
    #[arg(long, default_value_t = 64, value_parser = super::at_least_one)]
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
    #[arg(long, default_value_t = 48, value_parser = super::at_least_one)]
    pub epochs: usize,
    /// Epochs of stage 1 (COS-NCE alone); 0 runs stage 2 throughout.
    #[arg(long, default_value_t = 2)]
    pub stage1_epochs: usize,
    #[arg(long, default_value_t = 32, value_parser = super::at_least_one)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 5e-4, value_parser = super::positive)]
    pub lr: f64,
    /// FGM step on the embedding output in stage 2 (0: off).
    #[arg(long, default_value_t = 0.05, value_parser = super::non_negative)]
    pub fgm_epsilon: f64,
    /// Probability of replacing a training text, for one step, by an altered copy that the
    /// teacher labels afresh (words dropped, or swapped as the options below say).
    #[arg(long, default_value_t = 0.8, value_parser = super::share_f32)]
    pub augment: f32,
    /// Weight of the output-level losses (cosine to the teacher's vector, in-batch similarity
    /// KL) in stage 2.
    #[arg(long, default_value_t = 4.0, value_parser = super::non_negative)]
    pub output_weight: f64,
    /// Share of an augmented copy's words replaced by words of other training texts (a second
    /// kind of copy besides dropping words; the kinds in use are drawn evenly; 0: off).
    #[arg(long, default_value_t = 0.0, value_parser = super::share_f32)]
    pub replace_words: f32,
    /// Weight of the word-piece-level loss (every piece's state of each mapped layer towards
    /// the teacher's, 1 − cos), in both stages (0: off).
    #[arg(long, default_value_t = 0.0, value_parser = super::non_negative)]
    pub token_weight: f64,
    /// Share of an augmented copy's words replaced by random whole words of the teacher's
    /// vocabulary (a third kind of copy; the student trains with the whole embedding table,
    /// pruned to the catalog's pieces at the end; 0: off).
    #[arg(long, default_value_t = 0.5, value_parser = super::share_f32)]
    pub vocab_words: f32,
    /// Share the heads' budget (--heads × layers) out over the layers by importance instead of
    /// --heads in each (at least one per layer).
    #[arg(long)]
    pub global_heads: bool,
    /// Dropout of the student while it learns (the teacher's config.json says 0.1; without it
    /// the student kept more of the teacher, reports/distill.json).
    #[arg(long, default_value_t = 0.0, value_parser = super::probability)]
    pub dropout: f64,
    /// Keep the word-piece embeddings at the teacher's values while the student learns.
    #[arg(long)]
    pub freeze_words: bool,
    /// Share of the training steps over which pruning reaches the target shape (the rest
    /// trains the pruned shape, with the learning-rate decay).
    #[arg(long, default_value_t = 0.6, value_parser = super::share)]
    pub prune_until: f64,
    /// Polyak averaging factor per step once pruning is done: the student evaluated and
    /// written is the moving average of the weights (0: the last weights).
    #[arg(long, default_value_t = 0.0, value_parser = super::probability)]
    pub average: f64,
    /// Share of an augmented copy's words replaced by one of their nearest whole words in the
    /// teacher's embedding table (a fourth kind of copy; 0: off).
    #[arg(long, default_value_t = 0.3, value_parser = super::share_f32)]
    pub neighbour_words: f32,
    /// Weight of MiniLM's self-attention relation loss on the last layer (0: off).
    #[arg(long, default_value_t = 0.0, value_parser = super::non_negative)]
    pub relation_weight: f64,
    /// After pruning ends, the learning rate falls on a half cosine to lr × this (1: constant).
    #[arg(long, default_value_t = 0.05, value_parser = super::share)]
    pub lr_floor: f64,
    /// Leave out LRC-BERT's COS-NCE layer loss (only the output-level losses; an ablation).
    #[arg(long)]
    pub no_cos_nce: bool,
    /// Word-pieces per text.
    #[arg(long, default_value_t = 128, value_parser = super::at_least_one)]
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
    /// Distil data-parallel: a count of --device's kind (GPUs 0..N), or a comma-separated list
    /// of devices — cpu, gpu:N, cuda:N, or `ranklet worker` addresses ws://host:port — the
    /// first holding the student and the teacher. Each batch is split across them (in shards
    /// sized to each device's measured speed) and their gradients summed; every loss but
    /// stage 2's in-batch similarity KL is then the whole batch's, so figures match one
    /// device's up to float rounding in stage 1.
    #[arg(long, default_value = "1")]
    pub devices: DevicesArg,
    #[command(flatten)]
    pub shards: super::ShardArgs,
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
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

impl DtypeArg {
    fn stored(self) -> StoredDtype {
        match self {
            DtypeArg::F32 => StoredDtype::F32,
            DtypeArg::F16 => StoredDtype::F16,
            DtypeArg::Int8 => StoredDtype::Int8,
        }
    }
}

impl DistillArgs {
    /// The distillation settings for this teacher and these texts.
    fn config(
        &self,
        teacher: &BertConfig,
        files: &ranklet::text::EncoderFiles,
        texts: &[String],
    ) -> Result<DistillConfig> {
        let layer_map = match &self.layer_map {
            Some(map) => map.clone(),
            // Default 2 layers (or the teacher's, if it has fewer).
            None => evenly_spaced_layers(
                self.layers.unwrap_or(2.min(teacher.num_hidden_layers)),
                teacher.num_hidden_layers,
            )?,
        };
        let heads = self.heads.unwrap_or(teacher.num_attention_heads);
        let mut ffn = self.ffn;
        if let Some(target) = self.target_params {
            // The vocabulary the catalog keeps is known only after pruning; estimate it from the
            // teacher's tokenizer the way pruning will count it.
            let vocab = if self.no_vocab_prune {
                teacher.vocab_size
            } else {
                ranklet::distill::prune_vocab(&files.tokenizer.1, texts, &files.tokenizer.0)?
                    .kept
                    .len()
            };
            ffn = ffn_for_params(teacher, layer_map.len(), heads, vocab, self.max_len, target)?;
            eprintln!(
                "--target-params {target}: {} layers, {heads} heads, {ffn} neurons, vocabulary {vocab}",
                layer_map.len()
            );
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::bad_input(
                "--dropout",
                format!(
                    "{}: a dropout probability is at least 0 and below 1",
                    self.dropout
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.average) {
            return Err(Error::bad_input(
                "--average",
                format!(
                    "{}: an averaging factor is at least 0 and below 1",
                    self.average
                ),
            ));
        }
        if !(self.prune_until > 0.0 && self.prune_until <= 1.0) {
            return Err(Error::bad_input(
                "--prune-until",
                format!(
                    "{}: the share of steps that prune is above 0 and at most 1",
                    self.prune_until
                ),
            ));
        }
        Ok(DistillConfig {
            epochs: self.epochs,
            stage1_epochs: self.stage1_epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            fgm_epsilon: self.fgm_epsilon,
            layer_map,
            prune: !self.no_prune,
            target: Shape {
                hidden: teacher.hidden_size,
                heads,
                ffn,
            },
            prune_vocab: !self.no_vocab_prune,
            max_len: self.max_len,
            seed: self.seed,
            augment: self.augment,
            output_weight: self.output_weight,
            layer_weight: if self.no_cos_nce { 0.0 } else { 1.0 },
            replace_words: self.replace_words,
            lr_floor: self.lr_floor,
            token_weight: self.token_weight,
            vocab_words: self.vocab_words,
            global_heads: self.global_heads,
            dropout: Some(self.dropout),
            freeze_words: self.freeze_words,
            prune_until: self.prune_until,
            average: self.average,
            neighbour_words: self.neighbour_words,
            relation_weight: self.relation_weight,
            ..DistillConfig::for_teacher(teacher)
        })
    }
}

pub fn run(args: DistillArgs) -> Result<()> {
    let files = read_model_dir(&args.teacher)?;
    let teacher = teacher_config(&files)?;
    let texts = read_texts(&args.texts)?;
    let config = args.config(&teacher, &files, &texts)?;
    let (valid, train) = split_texts(
        texts,
        args.valid_fraction,
        args.seed,
        &args.texts.display().to_string(),
    )?;
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
    let job = DistillJob {
        even_shards: args.shards.even_shards,
        replica_timeout: args.shards.timeout(),
        teacher: files,
        valid,
        train,
        checkpoint: args
            .checkpoint
            .plan(format!(".cache/checkpoints/distill-{}", args.seed)),
        config,
        out: args.out.clone(),
        name: args.name.clone(),
        dtype: args.dtype.stored(),
    };
    let replicas = args.devices.open(args.device)?;
    let mut progress = Progress::new(job.config.epochs, args.quiet);
    let out = run_distill_job(&job, &replicas, &mut progress)?;
    progress.finish();
    let (student, teacher_params) = (&out.distilled.config, out.teacher_params);
    super::out!(
        "student: {} layers, heads {}, {} neurons, vocabulary {} — {:.2} M parameters ({:.1} % of the teacher's {:.2} M)",
        student.num_hidden_layers,
        heads_per_layer(student)
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("/"),
        student.intermediate_size,
        student.vocab_size,
        out.student_params as f64 / 1e6,
        100.0 * out.student_params as f64 / teacher_params as f64,
        teacher_params as f64 / 1e6
    )?;
    super::out!(
        "held-out cosine to the teacher {:.4} (as stored, {:?}); sliced vs masked max diff {:.1e}",
        out.stored_cosine,
        args.dtype,
        out.distilled.sliced_vs_masked
    )?;
    super::out!(
        "speed (CPU, batch 32, same run): teacher {:.1} texts/s, student {:.1} texts/s — {:.2}×",
        out.teacher_texts_per_s,
        out.student_texts_per_s,
        out.student_texts_per_s / out.teacher_texts_per_s
    )?;
    super::out!(
        "bundle {} bytes in {}; distillation {:.0} s",
        out.bundle_bytes,
        args.out.display(),
        out.wall_seconds
    )?;
    if let Some(path) = &args.report {
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        let device = replicas
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(",");
        out.write_report(path, &job, &command, &device)?;
    }
    Ok(())
}
