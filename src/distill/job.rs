//! `ranklet distill` as a library call: split the texts, distil, write the student bundle, and
//! measure it against the teacher in the same run (held-out cosine per storage type, speed).
//! The CLI parses arguments into a [`DistillJob`] and prints the [`DistillOutcome`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use crate::bundle::{
    add_bundle_files, clear_bundle, read_manifest, read_model_dir, write_encoder_dir,
};
use crate::data::{Dataset, read_text_records};
use crate::device::NamedDevice;
use crate::distill::config::DistillConfig;
use crate::distill::run::{DistillEpoch, Distilled, distill};
use crate::distill::trainee::mean_cosine;
use crate::error::{Error, Result};
use crate::jobs::parallel::DataParallel;
use crate::jobs::{CheckpointPlan, JobObserver};
use crate::rng::SplitMix;
use crate::text::config::BertConfig;
use crate::text::weights::{StoredDtype, load_encoder, save_encoder};
use crate::text::{EncoderFiles, TextEmbedder, TextTokenizer};

/// The texts of a dataset folder or a text/catalog file.
pub fn read_texts(path: &Path) -> Result<Vec<String>> {
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

/// The distinct texts, shuffled with `seed`, cut into (held-out, training) with the held-out
/// share `valid_fraction` (at least one held out, at least two to train on).
pub fn split_texts(
    mut texts: Vec<String>,
    valid_fraction: f64,
    seed: u64,
    origin: &str,
) -> Result<(Vec<String>, Vec<String>)> {
    texts.sort();
    texts.dedup();
    if texts.len() < 4 {
        return Err(Error::bad_input(origin, "fewer than 4 distinct texts"));
    }
    let mut rng = SplitMix(seed ^ 0x5eed);
    for i in (1..texts.len()).rev() {
        let j = ((rng.next_f32() * (i + 1) as f32) as usize).min(i);
        texts.swap(i, j);
    }
    let n_valid =
        ((texts.len() as f64 * valid_fraction).round() as usize).clamp(1, texts.len() - 2);
    let train = texts.split_off(n_valid);
    Ok((texts, train))
}

/// `layers` teacher layers, evenly spaced and ending at the last (3 of 6 → 1, 3, 5; 2 → 2, 5).
pub fn evenly_spaced_layers(layers: usize, teacher_layers: usize) -> Result<Vec<usize>> {
    if layers == 0 || layers > teacher_layers {
        return Err(Error::bad_input(
            "--layers",
            format!("{layers}: the teacher has {teacher_layers} layers"),
        ));
    }
    Ok((1..=layers)
        .map(|i| i * teacher_layers / layers - 1)
        .collect())
}

/// The student's parameters for a shape (what `--target-params` solves for).
pub fn student_params(
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

/// The largest feed-forward width (a multiple of 32) whose student fits `target` parameters.
pub fn ffn_for_params(
    teacher: &BertConfig,
    layers: usize,
    heads: usize,
    vocab: usize,
    max_len: usize,
    target: usize,
) -> Result<usize> {
    (1..=teacher.intermediate_size / 32)
        .rev()
        .map(|k| k * 32)
        .find(|&f| student_params(teacher, layers, heads, f, vocab, max_len) <= target)
        .ok_or_else(|| {
            Error::bad_input(
                "--target-params",
                format!(
                    "{target} is below the smallest student of {layers} layers and {heads} heads"
                ),
            )
        })
}

/// Heads left in each layer of a (possibly non-uniformly) pruned encoder.
pub fn heads_per_layer(config: &BertConfig) -> Vec<usize> {
    (0..config.num_hidden_layers)
        .map(|l| config.heads_in_layer(l))
        .collect()
}

/// Everything one distillation needs.
pub struct DistillJob {
    /// With several devices: equal shards rather than shards sized by measured speed.
    pub even_shards: bool,
    /// With several devices: how long a step waits for a replica before the run stops.
    pub replica_timeout: Option<std::time::Duration>,
    /// The teacher's files.
    pub teacher: EncoderFiles,
    /// Held-out texts (the cosine to the teacher is measured on them).
    pub valid: Vec<String>,
    /// Training texts.
    pub train: Vec<String>,
    pub config: DistillConfig,
    /// The student bundle's folder.
    pub out: PathBuf,
    /// The run's name (the bundle is `ranklet-student-<name>`).
    pub name: String,
    /// How the weights the manifest names are stored (what the browser downloads).
    pub dtype: StoredDtype,
    pub checkpoint: CheckpointPlan,
}

/// A storage type's size and held-out cosine.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredFigures {
    pub encoder_bytes: usize,
    pub mean_cosine_to_teacher: f64,
}

/// What a distillation produced and measured (teacher and student timed in the same run).
pub struct DistillOutcome {
    pub distilled: Distilled,
    /// Bytes the browser downloads: the files the manifest's encoder names, and the manifest.
    pub bundle_bytes: u64,
    /// Held-out cosine of the student as read back from the bundle.
    pub stored_cosine: f64,
    /// f32 / f16 / int8 of the same student.
    pub dtypes: Vec<(String, StoredFigures)>,
    pub teacher_texts_per_s: f64,
    pub student_texts_per_s: f64,
    pub teacher_params: usize,
    pub student_params: usize,
    pub teacher_config: BertConfig,
    pub wall_seconds: f64,
}

fn dtype_name(d: StoredDtype) -> &'static str {
    match d {
        StoredDtype::F32 => "f32",
        StoredDtype::F16 => "f16",
        StoredDtype::Int8 => "int8",
    }
}

/// Texts per second of an embedder over `texts` in batches of 32 (after a warm-up batch).
pub fn texts_per_s(embedder: &TextEmbedder, texts: &[String]) -> Result<f64> {
    Ok(texts.len() as f64 / embedder.seconds_to_embed(texts, 32)?.max(1e-9))
}

/// The teacher's config of `files`.
pub fn teacher_config(files: &EncoderFiles) -> Result<BertConfig> {
    BertConfig::from_json(
        std::str::from_utf8(&files.config.1)
            .map_err(|_| Error::bad_file(&files.config.0, "not UTF-8"))?,
        &files.config.0,
    )
}

/// Writes the student bundle: the weights the manifest names (int8 → `encoder.int8.safetensors`,
/// else `encoder.safetensors`) and, with int8, the f16 HF file for other readers. An earlier
/// bundle's files are replaced; a folder holding anything else is refused.
fn write_student(job: &DistillJob, out: &Distilled) -> Result<crate::bundle::Manifest> {
    let weights_name = if job.dtype == StoredDtype::Int8 {
        "encoder.int8.safetensors"
    } else {
        "encoder.safetensors"
    };
    let config_json = serde_json::to_vec_pretty(&out.config).expect("config serialises");
    let student_files = EncoderFiles {
        name: format!("ranklet-student-{}", job.name),
        config: ("config.json".into(), config_json),
        tokenizer: ("tokenizer.json".into(), out.tokenizer_json.clone()),
        weights: (weights_name.into(), save_encoder(&out.encoder, job.dtype)?),
        max_seq_length: job.config.max_len,
        normalize: job.teacher.normalize,
    };
    clear_bundle(&job.out)?;
    write_encoder_dir(&job.out, &student_files)?;
    if job.dtype == StoredDtype::Int8 {
        let f16 = save_encoder(&out.encoder, StoredDtype::F16)?;
        add_bundle_files(&job.out, &[("encoder.safetensors", &f16)])
    } else {
        read_manifest(&job.out)
    }
}

/// Runs `job` on `replicas` (at least one): the teacher on the first, the student trained on
/// its autodiff device, data-parallel across all of them when there are several.
pub fn run_distill_job(
    job: &DistillJob,
    replicas: &[NamedDevice],
    observer: &mut dyn JobObserver<DistillEpoch>,
) -> Result<DistillOutcome> {
    let base = &replicas
        .first()
        .map(|r| r.device.clone())
        .ok_or_else(|| Error::bad_input("--devices", "at least one device"))?;
    job.checkpoint.prepare("distillation")?;
    let teacher_config = teacher_config(&job.teacher)?;
    base.seed(job.config.seed);
    let device = base.clone().autodiff();
    let parallel = DataParallel::over(replicas, job.even_shards, job.replica_timeout);
    let start = Instant::now();
    let distilled = distill(
        &job.teacher,
        base,
        &device,
        &job.train,
        &job.valid,
        &job.config,
        Some((job.checkpoint.dir.clone(), job.checkpoint.resume)),
        &parallel,
        observer,
    )?;
    let wall_seconds = start.elapsed().as_secs_f64();
    let manifest = write_student(job, &distilled)?;
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
        std::fs::metadata(job.out.join(n))
            .map(|m| m.len())
            .unwrap_or(0)
    })
    .sum();
    // The teacher's held-out vectors, once: every cosine below is against them.
    let teacher = TextEmbedder::from_files(&job.teacher, base)?;
    let teacher_valid = teacher.embed_batched(&job.valid, 64)?;
    let cosine_of = |embedder: &TextEmbedder| -> Result<f64> {
        Ok(mean_cosine(
            &embedder.embed_batched(&job.valid, 64)?,
            &teacher_valid,
        ))
    };
    let mut dtypes = Vec::new();
    for (k, d) in [StoredDtype::F32, StoredDtype::F16, StoredDtype::Int8]
        .into_iter()
        .enumerate()
    {
        observer.progress("storage types measured", k, 3);
        let bytes = save_encoder(&distilled.encoder, d)?;
        let encoder = load_encoder(&bytes, &distilled.config, base, "student")?;
        let embedder = TextEmbedder::new(
            distilled.config.clone(),
            TextTokenizer::from_bytes(
                &distilled.tokenizer_json,
                job.config.max_len,
                "tokenizer.json",
            )?,
            encoder,
            job.teacher.normalize,
            base.clone(),
        );
        dtypes.push((
            dtype_name(d).to_string(),
            StoredFigures {
                encoder_bytes: bytes.len(),
                mean_cosine_to_teacher: cosine_of(&embedder)?,
            },
        ));
    }
    observer.progress("storage types measured", 3, 3);
    // The same run measures both encoders' speed and the student's cosine as read back from
    // the bundle folder.
    let student = TextEmbedder::from_files(&read_model_dir(&job.out)?, base)?;
    let stored_cosine = cosine_of(&student)?;
    let speed_texts: Vec<String> = job
        .valid
        .iter()
        .chain(&job.train)
        .take(256)
        .cloned()
        .collect();
    let teacher_texts_per_s = texts_per_s(&teacher, &speed_texts)?;
    let student_texts_per_s = texts_per_s(&student, &speed_texts)?;
    Ok(DistillOutcome {
        student_params: distilled.config.num_params(),
        teacher_params: teacher_config.num_params(),
        teacher_config,
        distilled,
        bundle_bytes,
        stored_cosine,
        dtypes,
        teacher_texts_per_s,
        student_texts_per_s,
        wall_seconds,
    })
}

impl DistillOutcome {
    /// This run's entry in the report.
    pub fn report_entry(&self, job: &DistillJob, command: &str, device: &str) -> serde_json::Value {
        let dtypes: serde_json::Map<String, serde_json::Value> = self
            .dtypes
            .iter()
            .map(|(n, f)| (n.clone(), json!(f)))
            .collect();
        json!({
            "name": job.name,
            "command": command,
            "config": job.config,
            "params": self.student_params,
            "bundle_bytes": self.bundle_bytes,
            "dtype": dtype_name(job.dtype),
            "mean_cosine_to_teacher": self.stored_cosine,
            "texts_per_s_cpu": self.student_texts_per_s,
            "teacher_texts_per_s_cpu": self.teacher_texts_per_s,
            "speedup": self.student_texts_per_s / self.teacher_texts_per_s,
            "sliced_vs_masked_max_diff": self.distilled.sliced_vs_masked,
            "dtypes": dtypes,
            "wall_seconds": self.wall_seconds,
            "device": device,
            "log": self.distilled.log,
        })
    }

    /// Merges this run into the report at `path` (atomically): its entry replaces the entry of
    /// the same name among the ablations; the run named "student" also fills the top-level
    /// figures (keeping the recommender figures a later command adds).
    pub fn write_report(
        &self,
        path: &Path,
        job: &DistillJob,
        command: &str,
        device: &str,
    ) -> Result<()> {
        let mut report: serde_json::Value = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| json!({}));
        let mut ablations: Vec<serde_json::Value> = report["ablations"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["name"] != job.name)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        ablations.push(self.report_entry(job, command, device));
        report["ablations"] = json!(ablations);
        if job.name == "student" {
            let (t, s) = (&self.teacher_config, &self.distilled.config);
            report["command"] = json!(command);
            report["teacher"] = json!({
                "name": job.teacher.name,
                "params": self.teacher_params,
                "params_with_pooler": self.teacher_params + t.hidden_size * (t.hidden_size + 1),
                "texts_per_s_cpu": self.teacher_texts_per_s,
            });
            let keep = |k: &str| {
                report["student"]
                    .get(k)
                    .cloned()
                    .unwrap_or(serde_json::Value::Null)
            };
            let (nt, ns) = (keep("ndcg@10_teacher"), keep("ndcg@10_student"));
            report["student"] = json!({
                "params": self.student_params,
                "params_fraction_of_teacher": self.student_params as f64 / self.teacher_params as f64,
                "bundle_bytes": self.bundle_bytes,
                "texts_per_s_cpu": self.student_texts_per_s,
                "speedup_vs_teacher": self.student_texts_per_s / self.teacher_texts_per_s,
                "mean_cosine_to_teacher": self.stored_cosine,
                "ndcg@10_teacher": nt,
                "ndcg@10_student": ns,
                "layers": s.num_hidden_layers,
                "heads": s.heads_in_layer(0),
                "heads_per_layer": heads_per_layer(s),
                "ffn": s.intermediate_size,
                "vocab": s.vocab_size,
            });
        }
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
        }
        crate::fsio::write_atomic(path, &serde_json::to_vec_pretty(&report).expect("JSON"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_split_into_distinct_held_out_and_training_parts() {
        let texts: Vec<String> = (0..20).map(|i| format!("text {}", i % 10)).collect();
        let (valid, train) = split_texts(texts.clone(), 0.2, 1, "t").unwrap();
        assert_eq!(valid.len(), 2);
        assert_eq!(train.len(), 8);
        assert!(valid.iter().all(|v| !train.contains(v)));
        assert_eq!(split_texts(texts, 0.2, 1, "t").unwrap().0, valid);
        let err = split_texts(vec!["a".into(); 9], 0.1, 1, "few.jsonl").unwrap_err();
        assert!(err.to_string().contains("few.jsonl"), "{err}");
    }

    #[test]
    fn evenly_spaced_layers_end_at_the_last() {
        assert_eq!(evenly_spaced_layers(3, 6).unwrap(), [1, 3, 5]);
        assert_eq!(evenly_spaced_layers(2, 6).unwrap(), [2, 5]);
        assert_eq!(evenly_spaced_layers(6, 6).unwrap(), [0, 1, 2, 3, 4, 5]);
        assert!(evenly_spaced_layers(7, 6).is_err());
        assert!(evenly_spaced_layers(0, 6).is_err());
    }
}
