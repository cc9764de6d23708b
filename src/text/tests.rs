//! The encoder against an independent plain-Rust BERT (HF semantics, no burn), on the tiny
//! random model: layers, masking, pooling, loader transposes, LayerNorm epsilon, exact GELU.

use std::collections::HashMap;

use burn::prelude::*;

use crate::error::Error;
use crate::fixtures::{random_bert_tensors, tiny_bert_files, tiny_config, to_safetensors};
use crate::text::TextEmbedder;
use crate::text::pooling::masked_mean;

fn device() -> Device {
    Device::flex()
}

/// erf by Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7), enough for a 1e-4 comparison.
fn erf(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs() as f64);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let y = 1.0 - poly * (-(x as f64) * (x as f64)).exp();
    (y as f32).copysign(x)
}

struct Naive {
    t: HashMap<String, (Vec<usize>, Vec<f32>)>,
    eps: f32,
    heads: usize,
    layers: usize,
}

impl Naive {
    fn get(&self, name: &str) -> &[f32] {
        &self.t[name].1
    }
    /// HF Linear: `y = x W^T + b`, W `[out, in]`.
    fn linear(&self, name: &str, x: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let (shape, w) = &self.t[&format!("{name}.weight")];
        let b = self.get(&format!("{name}.bias"));
        let (d_out, d_in) = (shape[0], shape[1]);
        x.iter()
            .map(|row| {
                (0..d_out)
                    .map(|o| b[o] + (0..d_in).map(|i| row[i] * w[o * d_in + i]).sum::<f32>())
                    .collect()
            })
            .collect()
    }
    fn norm(&self, name: &str, x: Vec<Vec<f32>>) -> Vec<Vec<f32>> {
        let g = self.get(&format!("{name}.weight"));
        let b = self.get(&format!("{name}.bias"));
        x.into_iter()
            .map(|row| {
                let n = row.len() as f32;
                let mean = row.iter().sum::<f32>() / n;
                let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n;
                let inv = 1.0 / (var + self.eps).sqrt();
                row.iter()
                    .enumerate()
                    .map(|(i, v)| (v - mean) * inv * g[i] + b[i])
                    .collect()
            })
            .collect()
    }
    /// Sentence embedding of one unpadded text.
    fn embed(&self, ids: &[i64]) -> Vec<f32> {
        let h = self.t["embeddings.word_embeddings.weight"].0[1];
        let row = |name: &str, r: usize| self.get(name)[r * h..(r + 1) * h].to_vec();
        let mut x: Vec<Vec<f32>> = ids
            .iter()
            .enumerate()
            .map(|(p, &id)| {
                let w = row("embeddings.word_embeddings.weight", id as usize);
                let pe = row("embeddings.position_embeddings.weight", p);
                let te = row("embeddings.token_type_embeddings.weight", 0);
                (0..h).map(|i| w[i] + pe[i] + te[i]).collect()
            })
            .collect();
        x = self.norm("embeddings.LayerNorm", x);
        let n = ids.len();
        for l in 0..self.layers {
            let p = format!("encoder.layer.{l}.");
            let q = self.linear(&format!("{p}attention.self.query"), &x);
            let k = self.linear(&format!("{p}attention.self.key"), &x);
            let v = self.linear(&format!("{p}attention.self.value"), &x);
            let hs = q[0].len() / self.heads;
            let mut ctx = vec![vec![0.0; q[0].len()]; n];
            for head in 0..self.heads {
                let r = head * hs..(head + 1) * hs;
                for i in 0..n {
                    let scores: Vec<f32> = (0..n)
                        .map(|j| {
                            r.clone().map(|d| q[i][d] * k[j][d]).sum::<f32>() / (hs as f32).sqrt()
                        })
                        .collect();
                    let max = scores.iter().cloned().fold(f32::MIN, f32::max);
                    let e: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
                    let z: f32 = e.iter().sum();
                    for d in r.clone() {
                        ctx[i][d] = (0..n).map(|j| e[j] / z * v[j][d]).sum();
                    }
                }
            }
            let att = self.linear(&format!("{p}attention.output.dense"), &ctx);
            let sum: Vec<Vec<f32>> = att
                .iter()
                .zip(&x)
                .map(|(a, b)| a.iter().zip(b).map(|(a, b)| a + b).collect())
                .collect();
            x = self.norm(&format!("{p}attention.output.LayerNorm"), sum);
            let inner: Vec<Vec<f32>> = self
                .linear(&format!("{p}intermediate.dense"), &x)
                .into_iter()
                .map(|r| {
                    r.into_iter()
                        .map(|v| 0.5 * v * (1.0 + erf(v / std::f32::consts::SQRT_2)))
                        .collect()
                })
                .collect();
            let out = self.linear(&format!("{p}output.dense"), &inner);
            let sum: Vec<Vec<f32>> = out
                .iter()
                .zip(&x)
                .map(|(a, b)| a.iter().zip(b).map(|(a, b)| a + b).collect())
                .collect();
            x = self.norm(&format!("{p}output.LayerNorm"), sum);
        }
        let mean: Vec<f32> = (0..h)
            .map(|d| x.iter().map(|r| r[d]).sum::<f32>() / n as f32)
            .collect();
        let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt();
        mean.iter().map(|v| v / norm).collect()
    }
}

fn naive(seed: u64) -> Naive {
    let config = tiny_config();
    Naive {
        t: random_bert_tensors(&config, seed)
            .into_iter()
            .map(|(n, s, v)| (n, (s, v)))
            .collect(),
        eps: config.layer_norm_eps as f32,
        heads: config.num_attention_heads,
        layers: config.num_hidden_layers,
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

const TEXTS: &[&str] = &[
    "Red shoes",
    "USB charger cable, black and white wireless",
    "x",
    "blue coffee mugs for tea lovers",
];

#[test]
fn encoder_matches_plain_rust_bert() {
    let embedder = TextEmbedder::from_files(&tiny_bert_files(7), &device()).unwrap();
    let reference = naive(7);
    let got = embedder.embed(TEXTS).unwrap();
    for (text, v) in TEXTS.iter().zip(&got) {
        let ids = embedder.tokenizer.encode(text).unwrap();
        let want = reference.embed(&ids);
        let diff = max_abs_diff(v, &want);
        assert!(diff < 1e-4, "{text:?}: max abs diff {diff}");
    }
}

#[test]
fn padding_does_not_change_embeddings() {
    let embedder = TextEmbedder::from_files(&tiny_bert_files(3), &device()).unwrap();
    let batched = embedder.embed(TEXTS).unwrap();
    for (text, b) in TEXTS.iter().zip(&batched) {
        let single = embedder.embed(&[text]).unwrap();
        let diff = max_abs_diff(&single[0], b);
        assert!(diff < 1e-5, "{text:?}: padded vs alone differ by {diff}");
        let norm: f32 = b.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
    // Different seeds give different models (the comparison above is not vacuous).
    let other = TextEmbedder::from_files(&tiny_bert_files(4), &device()).unwrap();
    let o = other.embed(&TEXTS[..1]).unwrap();
    assert!(max_abs_diff(&o[0], &batched[0]) > 1e-2);
}

#[test]
fn tokenizer_lowercases_splits_and_truncates() {
    let embedder = TextEmbedder::from_files(&tiny_bert_files(1), &device()).unwrap();
    let tok = &embedder.tokenizer;
    let vocab = crate::fixtures::tiny_vocab();
    let id = |w: &str| vocab.iter().position(|v| v == w).unwrap() as i64;
    assert_eq!(
        tok.encode("RED Shoes!").unwrap(),
        vec![
            id("[CLS]"),
            id("red"),
            id("shoes"),
            id("[UNK]"),
            id("[SEP]")
        ]
    );
    assert_eq!(tok.encode("").unwrap(), vec![id("[CLS]"), id("[SEP]")]);
    let long = "red ".repeat(100);
    let ids = tok.encode(&long).unwrap();
    assert_eq!(ids.len(), 32);
    assert_eq!(*ids.last().unwrap(), id("[SEP]"));
    let batch = tok.encode_batch(&["red", "blue green lamp"]).unwrap();
    assert_eq!(
        (batch.batch, batch.seq_len, batch.lens.clone()),
        (2, 5, vec![3, 5])
    );
    assert_eq!(&batch.mask[..5], &[1.0, 1.0, 1.0, 0.0, 0.0]);
    assert_eq!(batch.ids_of(0), &[id("[CLS]"), id("red"), id("[SEP]")]);
}

#[test]
fn masked_mean_ignores_padding() {
    let d = device();
    let hidden = Tensor::<3>::from_floats(
        [
            [[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]],
            [[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]],
        ],
        &d,
    );
    let mask = Tensor::<2>::from_floats([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]], &d);
    let got = masked_mean(hidden, mask)
        .into_data()
        .try_into_vec::<f32>()
        .unwrap();
    assert_eq!(got, vec![2.0, 3.0, 7.0, 8.0]);
}

#[test]
fn refuses_mismatched_files_naming_them() {
    let d = device();
    // Tokenizer larger than the embedding matrix.
    let mut files = tiny_bert_files(1);
    let mut config = crate::fixtures::tiny_config();
    config.vocab_size = 10;
    files.config.1 = serde_json::to_vec(&config).unwrap();
    let err = TextEmbedder::from_files(&files, &d).unwrap_err();
    assert!(
        matches!(err, Error::BadModelFile { ref file, .. } if file == "tokenizer.json"),
        "{err}"
    );

    // A tensor of the wrong shape.
    let mut files = tiny_bert_files(1);
    let mut tensors = random_bert_tensors(&tiny_config(), 1);
    tensors.retain(|(n, _, _)| n != "encoder.layer.1.intermediate.dense.weight");
    tensors.push((
        "encoder.layer.1.intermediate.dense.weight".into(),
        vec![31, 16],
        vec![0.0; 31 * 16],
    ));
    files.weights.1 = to_safetensors(&tensors);
    let err = TextEmbedder::from_files(&files, &d)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("encoder.layer.1.intermediate.dense.weight") && err.contains("[31, 16]"),
        "{err}"
    );

    // A missing tensor.
    tensors.retain(|(n, _, _)| n != "encoder.layer.1.intermediate.dense.weight");
    files.weights.1 = to_safetensors(&tensors);
    let err = TextEmbedder::from_files(&files, &d)
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing"), "{err}");

    // A config with fewer layers than the weights (manifest or not): refused, naming the
    // unused tensors, instead of embedding with the first layers only. Zero layers too.
    for layers in [1, 0] {
        let mut files = tiny_bert_files(1);
        let mut config = crate::fixtures::tiny_config();
        config.num_hidden_layers = layers;
        files.config.1 = serde_json::to_vec(&config).unwrap();
        let err = TextEmbedder::from_files(&files, &d)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model.safetensors")
                && err.contains("not used by config.json")
                && err.contains("encoder.layer.1."),
            "{layers} layers: {err}"
        );
    }
    // The pooler (unused by mean pooling) is no reason to refuse.
    let mut files = tiny_bert_files(1);
    let mut tensors = random_bert_tensors(&tiny_config(), 1);
    tensors.push(("pooler.dense.bias".into(), vec![16], vec![0.0; 16]));
    files.weights.1 = to_safetensors(&tensors);
    TextEmbedder::from_files(&files, &d).unwrap();

    // A weights file cut short (an interrupted download) says so.
    let mut files = tiny_bert_files(1);
    let half = files.weights.1.len() / 2;
    files.weights.1.truncate(half);
    let err = TextEmbedder::from_files(&files, &d)
        .unwrap_err()
        .to_string();
    assert!(err.contains("truncated"), "{err}");

    // Bytes that are not safetensors, and a tokenizer that is not JSON.
    let mut files = tiny_bert_files(1);
    files.weights.1.truncate(100);
    let err = TextEmbedder::from_files(&files, &d)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("safetensors"),
        "{err}"
    );
    let mut files = tiny_bert_files(1);
    files.tokenizer.1 = b"{ not json".to_vec();
    let err = TextEmbedder::from_files(&files, &d)
        .unwrap_err()
        .to_string();
    assert!(err.contains("tokenizer.json"), "{err}");
}

#[test]
fn refuses_huge_texts() {
    let embedder = TextEmbedder::from_files(&tiny_bert_files(1), &device()).unwrap();
    let huge = "a".repeat(crate::text::tokenizer::MAX_TEXT_BYTES + 1);
    let err = embedder.embed(&[huge]).unwrap_err();
    assert!(
        err.is_user_error() && err.to_string().contains("bytes"),
        "{err}"
    );
}

/// `save_encoder` writes the tensors `load_encoder` reads, by their HF names: f32 reproduces
/// the encoder exactly, f16 within half precision.
#[test]
fn saved_encoders_load_back_to_the_same_outputs() {
    use crate::text::weights::{StoredDtype, load_encoder, save_encoder};
    let files = tiny_bert_files(5);
    let embedder = TextEmbedder::from_files(&files, &device()).unwrap();
    let want = embedder.embed(TEXTS).unwrap();
    for (dtype, tolerance) in [
        (StoredDtype::F32, 0.0),
        (StoredDtype::F16, 5e-3),
        (StoredDtype::Int8, 1e-2),
    ] {
        let bytes = save_encoder(&embedder.encoder, dtype).unwrap();
        let names: Vec<String> = safetensors::SafeTensors::deserialize(&bytes)
            .unwrap()
            .names()
            .into_iter()
            .map(String::from)
            .collect();
        assert!(names.contains(&"encoder.layer.1.attention.self.query.weight".to_string()));
        let encoder = load_encoder(&bytes, &embedder.config, &device(), "saved").unwrap();
        let reloaded = TextEmbedder::new(
            embedder.config.clone(),
            embedder.tokenizer.clone(),
            encoder,
            true,
            device(),
        );
        let got = reloaded.embed(TEXTS).unwrap();
        for (a, b) in want.iter().zip(&got) {
            let diff = max_abs_diff(a, b);
            assert!(diff <= tolerance, "{dtype:?}: differs by {diff}");
        }
    }
}

/// `set_dropout` reaches the encoder's dropouts: at 0 two training-mode passes agree, at 0.5
/// they differ (and differ from the undropped pass).
#[test]
fn set_dropout_reaches_every_dropout() {
    // Dropout in training mode draws from the shared CPU generator: hold the lock that the
    // seeded comparisons (the exact-resume tests) take.
    let _seeded = crate::fixtures::SEEDED
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let embedder = TextEmbedder::from_files(&tiny_bert_files(2), &device()).unwrap();
    let ad = device().autodiff();
    let mut encoder = embedder.encoder.clone().unfreeze().fork(&ad).train();
    let ids = embedder.tokenizer.encode("red shoes").unwrap();
    let n = ids.len();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, n]), &ad);
    let mask = Tensor::<2>::ones([1, n], &ad);
    let pass = |e: &crate::text::encoder::BertEncoder| -> Vec<f32> {
        e.forward(ids.clone(), mask.clone())
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap()
    };
    encoder.set_dropout(0.0);
    let (a, b) = (pass(&encoder), pass(&encoder));
    assert_eq!(max_abs_diff(&a, &b), 0.0);
    encoder.set_dropout(0.5);
    assert!(
        encoder
            .layers
            .iter()
            .all(|l| l.dropout.prob == 0.5 && l.attention.dropout.prob == 0.5)
    );
    let (c, d) = (pass(&encoder), pass(&encoder));
    assert!(max_abs_diff(&a, &c) > 1e-3 && max_abs_diff(&c, &d) > 1e-3);
}
