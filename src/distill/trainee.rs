//! The student while it learns: its encoder with one width mapping per layer, the vocabulary
//! re-indexing, and its vectors under the current masks.

use std::collections::HashMap;

use burn::module::Param;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use crate::distill::student::{Masks, masked_embeddings, masked_layers};
use crate::distill::vocab::prune_embeddings;
use crate::error::{Error, Result};
use crate::text::config::BertConfig;
use crate::text::encoder::BertEncoder;
use crate::text::pooling::{l2_normalize, masked_mean};
use crate::text::tokenizer::TextTokenizer;

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

/// Student ids from teacher ids (the pruned vocabulary's re-indexing).
pub struct IdMap(pub Option<HashMap<i64, i64>>, pub i64);

impl IdMap {
    pub fn map(&self, ids: &[i64]) -> Vec<i64> {
        match &self.0 {
            None => ids.to_vec(),
            Some(m) => ids.iter().map(|i| *m.get(i).unwrap_or(&self.1)).collect(),
        }
    }
}

/// Rows of a `[rows, dim]` tensor.
pub(crate) fn rows(t: Tensor<2>) -> Result<Vec<Vec<f32>>> {
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

/// The student's unit vectors of `texts` (masked forward, inference).
pub fn student_vectors(
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
