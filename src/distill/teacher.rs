//! What the teacher gives the student: per-layer targets for each batch, and its vectors of
//! the held-out texts (computed once: the teacher does not change).

use burn::prelude::*;

use crate::distill::config::DistillConfig;
use crate::distill::student::attention_relations;
use crate::distill::trainee::rows;
use crate::error::Result;
use crate::text::TextEmbedder;
use crate::text::encoder::score_bias;
use crate::text::pooling::{l2_normalize, masked_mean};
use crate::text::tokenizer::{TextTokenizer, TokenBatch};

/// The teacher's targets for a batch, per student layer: the pooled hidden state of its
/// teacher layer and (when the word-piece loss is on) that layer's state of every piece; and
/// the teacher's sentence vector.
#[derive(Clone)]
pub struct TeacherTargets {
    pub layers: Vec<Tensor<2>>,
    pub pieces: Vec<Tensor<3>>,
    /// The last mapped layer's attention and value relations (with the relation loss).
    pub relations: Option<(Tensor<4>, Tensor<4>)>,
    pub out: Tensor<2>,
}

pub fn teacher_targets(
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

/// The teacher's unit vectors of `texts` (tokenised as the student sees them), computed once
/// per distillation: the teacher does not change.
pub fn teacher_vectors(
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

impl TeacherTargets {
    /// The targets one data-parallel shard needs, on its `device`: the layer targets of the
    /// whole batch (COS-NCE's negatives are every other input of the batch) and the rest for the
    /// shard's `rows` only.
    pub fn shard(&self, rows: std::ops::Range<usize>, device: &Device) -> TeacherTargets {
        let shard_rows = |t: &Tensor<2>| t.clone().narrow(0, rows.start, rows.len());
        TeacherTargets {
            layers: self
                .layers
                .iter()
                .map(|t| t.clone().to_device(device))
                .collect(),
            pieces: self
                .pieces
                .iter()
                .map(|t| {
                    t.clone()
                        .narrow(0, rows.start, rows.len())
                        .to_device(device)
                })
                .collect(),
            relations: self.relations.as_ref().map(|(att, val)| {
                (
                    att.clone()
                        .narrow(0, rows.start, rows.len())
                        .to_device(device),
                    val.clone()
                        .narrow(0, rows.start, rows.len())
                        .to_device(device),
                )
            }),
            out: shard_rows(&self.out).to_device(device),
        }
    }
}
