//! The student while it is pruned: the teacher's architecture (a subset of its layers) with
//! masks over attention heads, feed-forward neurons and hidden-width columns, and the physical
//! slicing that turns a masked student into a smaller BERT with the same outputs.
//!
//! Masks act where slicing would remove: a pruned head's context is zeroed before the output
//! projection, a pruned neuron's activation is zeroed before the second feed-forward matrix,
//! and every LayerNorm normalises over the kept hidden columns only and zeroes the others — so
//! whatever reads the residual stream sees zeros in pruned columns, exactly as if they were gone.

use burn::module::Param;
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::prelude::*;
use burn::tensor::activation::{gelu, log_softmax, softmax};

use crate::text::config::BertConfig;
use crate::text::encoder::{BertAttention, BertEncoder, BertLayer, score_bias};

/// Which structures are alive (true) — the state HomoDistil prunes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Masks {
    /// Hidden-width columns `[hidden]`.
    pub hidden: Vec<bool>,
    /// Per layer, its heads.
    pub heads: Vec<Vec<bool>>,
    /// Per layer, its feed-forward neurons.
    pub ffn: Vec<Vec<bool>>,
}

/// Mask tensors (1 kept, 0 pruned) on one device, for a forward pass.
#[derive(Debug, Clone)]
pub struct MaskTensors {
    pub hidden: Tensor<1>,
    pub heads: Vec<Tensor<1>>,
    pub ffn: Vec<Tensor<1>>,
    /// All hidden columns kept: LayerNorm runs unmasked (bit-identical to the plain encoder).
    pub full_width: bool,
    /// LayerNorm epsilon (the config's).
    pub eps: f64,
}

fn ones(v: &[bool], device: &Device) -> Tensor<1> {
    Tensor::from_data(
        TensorData::new(
            v.iter()
                .map(|&k| if k { 1.0f32 } else { 0.0 })
                .collect::<Vec<_>>(),
            [v.len()],
        ),
        device,
    )
}

impl Masks {
    /// Everything kept, for `encoder`'s shape.
    pub fn full(encoder: &BertEncoder) -> Self {
        let [_, hidden] = encoder.embeddings.word_embeddings.weight.dims();
        Self {
            hidden: vec![true; hidden],
            heads: encoder
                .layers
                .iter()
                .map(|l| vec![true; l.attention.num_heads])
                .collect(),
            ffn: encoder
                .layers
                .iter()
                .map(|l| vec![true; l.intermediate.weight.dims()[1]])
                .collect(),
        }
    }

    /// The masks as tensors on `device`; `eps` is the config's LayerNorm epsilon.
    pub fn tensors(&self, device: &Device, eps: f64) -> MaskTensors {
        MaskTensors {
            hidden: ones(&self.hidden, device),
            heads: self.heads.iter().map(|h| ones(h, device)).collect(),
            ffn: self.ffn.iter().map(|f| ones(f, device)).collect(),
            full_width: self.hidden.iter().all(|&k| k),
            eps,
        }
    }

    /// Kept counts: (hidden, heads per layer, neurons per layer).
    pub fn counts(&self) -> (usize, Vec<usize>, Vec<usize>) {
        let count = |v: &[bool]| v.iter().filter(|&&k| k).count();
        (
            count(&self.hidden),
            self.heads.iter().map(|h| count(h)).collect(),
            self.ffn.iter().map(|f| count(f)).collect(),
        )
    }
}

/// LayerNorm over the kept columns of `mask` only, zero in the others.
fn masked_layer_norm(norm: &LayerNorm, x: Tensor<3>, masks: &MaskTensors) -> Tensor<3> {
    if masks.full_width {
        return norm.forward(x);
    }
    let [_, _, h] = x.dims();
    let m = masks.hidden.clone().reshape([1, 1, h]);
    let n = masks.hidden.clone().sum().reshape([1, 1, 1]);
    let mean = (x.clone() * m.clone()).sum_dim(2) / n.clone();
    let centred = (x - mean) * m.clone();
    let var = centred.clone().powi_scalar(2).sum_dim(2) / n;
    let normed = centred / (var + masks.eps).sqrt();
    let gamma = norm.gamma.val().reshape([1, 1, h]);
    let beta = norm
        .beta
        .as_ref()
        .map(|b| b.val().reshape([1, 1, h]))
        .unwrap_or_else(|| gamma.zeros_like());
    (normed * gamma + beta) * m
}

/// One layer under masks (dropout as the layer's modules say).
fn masked_layer(
    layer: &BertLayer,
    x: Tensor<3>,
    bias: Tensor<4>,
    l: usize,
    masks: &MaskTensors,
) -> Tensor<3> {
    let att = &layer.attention;
    let [batch, seq, _] = x.dims();
    let (heads, size) = (att.num_heads, att.head_size);
    let split = |t: Tensor<3>| t.reshape([batch, seq, heads, size]).swap_dims(1, 2);
    let q = split(att.query.forward(x.clone()));
    let k = split(att.key.forward(x.clone()));
    let v = split(att.value.forward(x.clone()));
    let scores = q
        .matmul(k.swap_dims(2, 3))
        .mul_scalar(1.0 / (size as f64).sqrt())
        + bias;
    let probs = att.dropout.forward(softmax(scores, 3));
    let context = probs.matmul(v) * masks.heads[l].clone().reshape([1, heads, 1, 1]);
    let context = context.swap_dims(1, 2).reshape([batch, seq, heads * size]);
    let out = att.dropout.forward(att.output.forward(context));
    let x = masked_layer_norm(&att.layer_norm, out + x, masks);
    let f = layer.intermediate.weight.dims()[1];
    let inner =
        gelu(layer.intermediate.forward(x.clone())) * masks.ffn[l].clone().reshape([1, 1, f]);
    let out = layer.dropout.forward(layer.output.forward(inner));
    masked_layer_norm(&layer.layer_norm, out + x, masks)
}

/// MiniLM's self-attention relations of one attention block on its input `x`, as
/// log-probabilities `[batch, heads, seq, seq]`: the attention distribution (queries against
/// keys) and the value relation (values against values), each scaled by `1/√head_size` and
/// masked at padding keys by `bias` ([`score_bias`]). The same function reads the teacher's and
/// the student's blocks, so the two sides are computed alike.
pub fn attention_relations(
    att: &BertAttention,
    x: Tensor<3>,
    bias: Tensor<4>,
) -> (Tensor<4>, Tensor<4>) {
    let [batch, seq, _] = x.dims();
    let (heads, size) = (att.num_heads, att.head_size);
    let split = |t: Tensor<3>| t.reshape([batch, seq, heads, size]).swap_dims(1, 2);
    let q = split(att.query.forward(x.clone()));
    let k = split(att.key.forward(x.clone()));
    let v = split(att.value.forward(x));
    let scale = 1.0 / (size as f64).sqrt();
    let relation = |a: Tensor<4>, b: Tensor<4>| {
        log_softmax(
            a.matmul(b.swap_dims(2, 3)).mul_scalar(scale) + bias.clone(),
            3,
        )
    };
    (relation(q, k), relation(v.clone(), v))
}

/// The embedding output (before any layer) under the hidden mask.
pub fn masked_embeddings(
    encoder: &BertEncoder,
    ids: Tensor<2, Int>,
    masks: &MaskTensors,
) -> Tensor<3> {
    let e = &encoder.embeddings;
    let [_, seq] = ids.dims();
    let device = ids.device();
    let positions = Tensor::<1, Int>::arange(0..seq as i64, &device).reshape([1, seq]);
    let [_, hidden] = e.token_type_embeddings.weight.dims();
    let token_type = e
        .token_type_embeddings
        .weight
        .val()
        .slice([0..1, 0..hidden])
        .reshape([1, 1, hidden]);
    let x = e.word_embeddings.forward(ids) + e.position_embeddings.forward(positions) + token_type;
    e.dropout
        .forward(masked_layer_norm(&e.layer_norm, x, masks))
}

/// Hidden states after each layer (`layers` tensors) from an embedding output, under masks.
pub fn masked_layers(
    encoder: &BertEncoder,
    embedded: Tensor<3>,
    mask: Tensor<2>,
    masks: &MaskTensors,
) -> Vec<Tensor<3>> {
    let bias = score_bias(mask);
    let mut x = embedded;
    let mut states = Vec::with_capacity(encoder.layers.len());
    for (l, layer) in encoder.layers.iter().enumerate() {
        x = masked_layer(layer, x, bias.clone(), l, masks);
        states.push(x.clone());
    }
    states
}

fn keep_index(keep: &[usize], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(
        TensorData::new(
            keep.iter().map(|&i| i as i64).collect::<Vec<_>>(),
            [keep.len()],
        ),
        device,
    )
}

fn kept(v: &[bool]) -> Vec<usize> {
    v.iter()
        .enumerate()
        .filter(|(_, k)| **k)
        .map(|(i, _)| i)
        .collect()
}

/// `linear` with only the `rows` inputs and `cols` outputs kept (`None`: all).
fn slice_linear(
    linear: &Linear,
    rows: Option<&Tensor<1, Int>>,
    cols: Option<&Tensor<1, Int>>,
) -> Linear {
    let mut w = linear.weight.val();
    if let Some(r) = rows {
        w = w.select(0, r.clone());
    }
    let mut b = linear.bias.as_ref().map(|b| b.val());
    if let Some(c) = cols {
        w = w.select(1, c.clone());
        b = b.map(|b| b.select(0, c.clone()));
    }
    Linear {
        weight: Param::from_tensor(w),
        bias: b.map(Param::from_tensor),
    }
}

fn slice_norm(norm: &LayerNorm, cols: &Tensor<1, Int>) -> LayerNorm {
    let mut out = norm.clone();
    out.gamma = Param::from_tensor(norm.gamma.val().select(0, cols.clone()));
    out.beta = norm
        .beta
        .as_ref()
        .map(|b| Param::from_tensor(b.val().select(0, cols.clone())));
    out
}

/// The physically smaller encoder and its HF config: pruned heads, neurons and hidden columns
/// removed. Every layer must keep the same number of neurons (HF has one `intermediate_size`);
/// heads may differ per layer (`pruned_heads`). Its outputs equal the masked encoder's.
pub fn slice(
    encoder: &BertEncoder,
    masks: &Masks,
    teacher: &BertConfig,
) -> (BertEncoder, BertConfig) {
    let device = encoder.embeddings.word_embeddings.weight.device();
    let hidden = kept(&masks.hidden);
    let h_idx = keep_index(&hidden, &device);
    let ffn_sizes: Vec<usize> = masks.ffn.iter().map(|f| kept(f).len()).collect();
    assert!(
        ffn_sizes.windows(2).all(|w| w[0] == w[1]),
        "layers keep different feed-forward widths: {ffn_sizes:?}"
    );
    let e = &encoder.embeddings;
    let mut out = encoder.clone();
    let select_cols = |emb: &Embedding| Embedding {
        weight: Param::from_tensor(emb.weight.val().select(1, h_idx.clone())),
    };
    out.embeddings.word_embeddings = select_cols(&e.word_embeddings);
    out.embeddings.position_embeddings = select_cols(&e.position_embeddings);
    out.embeddings.token_type_embeddings = select_cols(&e.token_type_embeddings);
    out.embeddings.layer_norm = slice_norm(&e.layer_norm, &h_idx);
    let mut config = teacher.clone();
    config.hidden_size = hidden.len();
    config.num_hidden_layers = encoder.layers.len();
    config.intermediate_size = ffn_sizes.first().copied().unwrap_or(0);
    let head_size = encoder.layers.first().map_or(0, |l| l.attention.head_size);
    // Head width is kept; HF derives it as hidden / num_attention_heads, which holds only while
    // the hidden width is whole — otherwise `attention_head_size` says it.
    if hidden.len() != teacher.hidden_size {
        config.attention_head_size = Some(head_size);
    }
    config.pruned_heads.clear();
    for (l, layer) in encoder.layers.iter().enumerate() {
        let heads = kept(&masks.heads[l]);
        let cols: Vec<usize> = heads
            .iter()
            .flat_map(|&h| h * head_size..(h + 1) * head_size)
            .collect();
        let a_idx = keep_index(&cols, &device);
        let f_idx = keep_index(&kept(&masks.ffn[l]), &device);
        let att = &layer.attention;
        let s = &mut out.layers[l];
        s.attention.query = slice_linear(&att.query, Some(&h_idx), Some(&a_idx));
        s.attention.key = slice_linear(&att.key, Some(&h_idx), Some(&a_idx));
        s.attention.value = slice_linear(&att.value, Some(&h_idx), Some(&a_idx));
        s.attention.output = slice_linear(&att.output, Some(&a_idx), Some(&h_idx));
        s.attention.layer_norm = slice_norm(&att.layer_norm, &h_idx);
        s.attention.num_heads = heads.len();
        s.intermediate = slice_linear(&layer.intermediate, Some(&h_idx), Some(&f_idx));
        s.output = slice_linear(&layer.output, Some(&f_idx), Some(&h_idx));
        s.layer_norm = slice_norm(&layer.layer_norm, &h_idx);
        let pruned: Vec<usize> = (0..att.num_heads).filter(|h| !heads.contains(h)).collect();
        if !pruned.is_empty() {
            config.pruned_heads.insert(l.to_string(), pruned);
        }
    }
    // HF counts heads before pruning: the teacher's count, from which `pruned_heads` removes.
    config.num_attention_heads = encoder
        .layers
        .first()
        .map_or(teacher.num_attention_heads, |l| l.attention.num_heads);
    (out, config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::tiny_bert_files;
    use crate::text::TextEmbedder;
    use crate::text::pooling::{l2_normalize, masked_mean};

    /// Relations are distributions over the real keys: each row sums to 1, padding gets none,
    /// and the attention relation is the probabilities the layer itself uses (its context
    /// rebuilt from them equals the layer's attention output before the projection).
    #[test]
    fn attention_relations_are_distributions_over_real_keys() {
        let device = Device::flex();
        let full = TextEmbedder::from_files(&tiny_bert_files(8), &device).unwrap();
        let batch = full
            .tokenizer
            .encode_batch(&["red shoes for running fast", "mug"])
            .unwrap();
        let shape = [batch.batch, batch.seq_len];
        let ids = Tensor::<2, Int>::from_data(TensorData::new(batch.ids.clone(), shape), &device);
        let mask = Tensor::<2>::from_data(TensorData::new(batch.mask.clone(), shape), &device);
        let mt = Masks::full(&full.encoder).tensors(&device, full.config.layer_norm_eps);
        let x = masked_embeddings(&full.encoder, ids, &mt);
        let att = &full.encoder.layers[0].attention;
        let (a, v) = attention_relations(att, x.clone(), score_bias(mask));
        let (b, s) = (batch.batch, batch.seq_len);
        let real = batch.mask[s..].iter().filter(|&&m| m > 0.0).count();
        assert!(real < s, "the short text is padded");
        for rel in [a.clone(), v] {
            let p: Vec<f32> = rel.exp().into_data().try_to_vec().unwrap();
            assert_eq!(p.len(), b * att.num_heads * s * s);
            for row in p.chunks(s) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            }
            // Text 1's rows put nothing on its padded keys.
            for row in p[att.num_heads * s * s..].chunks(s) {
                assert!(row[real..].iter().all(|&q| q < 1e-6), "{row:?}");
            }
        }
        let [_, _, h] = x.dims();
        let (heads, size) = (att.num_heads, att.head_size);
        let values = att
            .value
            .forward(x.clone())
            .reshape([b, s, heads, size])
            .swap_dims(1, 2);
        let context = a.exp().matmul(values).swap_dims(1, 2).reshape([b, s, h]);
        let rebuilt: Vec<f32> = att
            .layer_norm
            .forward(att.output.forward(context) + x.clone())
            .into_data()
            .try_to_vec()
            .unwrap();
        let bias = score_bias(Tensor::from_data(
            TensorData::new(batch.mask.clone(), [b, s]),
            &device,
        ));
        let layer: Vec<f32> = att.forward(x, bias).into_data().try_to_vec().unwrap();
        for (r, l) in rebuilt.iter().zip(&layer) {
            assert!((r - l).abs() < 1e-4, "{r} vs {l}");
        }
    }

    /// The masked student (pruned heads, neurons and hidden columns) and its sliced copy give
    /// the same sentence vectors; the sliced config describes the sliced tensors.
    #[test]
    fn sliced_encoder_equals_masked_encoder() {
        let device = Device::flex();
        let full = TextEmbedder::from_files(&tiny_bert_files(8), &device).unwrap();
        let texts = [
            "red shoes for running",
            "blue mug",
            "wireless charger cable black",
        ];
        let mut masks = Masks::full(&full.encoder);
        masks.heads[0][1] = false;
        masks.heads[1][0] = false;
        for l in 0..2 {
            for n in [0, 5, 9, 30] {
                masks.ffn[l][n] = false;
            }
        }
        for c in [2, 7, 11] {
            masks.hidden[c] = false;
        }
        let batch = full.tokenizer.encode_batch(&texts).unwrap();
        let ids = Tensor::<2, Int>::from_data(
            TensorData::new(batch.ids.clone(), [batch.batch, batch.seq_len]),
            &device,
        );
        let mask = Tensor::<2>::from_data(
            TensorData::new(batch.mask.clone(), [batch.batch, batch.seq_len]),
            &device,
        );
        let mt = masks.tensors(&device, full.config.layer_norm_eps);
        let embedded = masked_embeddings(&full.encoder, ids, &mt);
        let last = masked_layers(&full.encoder, embedded, mask.clone(), &mt)
            .pop()
            .unwrap();
        let masked: Vec<f32> = l2_normalize(masked_mean(last, mask))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();

        let (sliced, config) = slice(&full.encoder, &masks, &full.config);
        assert_eq!(config.hidden_size, 13);
        assert_eq!(config.intermediate_size, 28);
        assert_eq!(config.heads_in_layer(0), 1);
        assert_eq!(config.pruned_heads["1"], vec![0]);
        config.validate().unwrap();
        let small = TextEmbedder::new(
            config.clone(),
            full.tokenizer.clone(),
            sliced,
            true,
            device.clone(),
        );
        let got = small.embed(&texts).unwrap();
        let kept: Vec<usize> = (0..16).filter(|c| ![2, 7, 11].contains(c)).collect();
        for (row, g) in got.iter().enumerate() {
            for (j, &c) in kept.iter().enumerate() {
                let want = masked[row * 16 + c];
                assert!(
                    (g[j] - want).abs() < 1e-5,
                    "row {row} col {c}: {} vs {want}",
                    g[j]
                );
            }
            for c in [2, 7, 11] {
                assert_eq!(masked[row * 16 + c], 0.0);
            }
        }
        // The sliced tensors round-trip through HF safetensors with that config.
        let bytes = crate::text::weights::save_encoder(
            &small.encoder,
            crate::text::weights::StoredDtype::F32,
        )
        .unwrap();
        let reloaded =
            crate::text::weights::load_encoder(&bytes, &config, &device, "student").unwrap();
        let again = TextEmbedder::new(config, full.tokenizer.clone(), reloaded, true, device)
            .embed(&texts)
            .unwrap();
        assert_eq!(again, got);
        // Unmasked, the masked forward is the plain encoder.
        let plain = full.embed(&texts).unwrap();
        let all = Masks::full(&full.encoder);
        let (same, c2) = slice(&full.encoder, &all, &full.config);
        assert_eq!(c2.pruned_heads.len(), 0);
        let same = TextEmbedder::new(c2, full.tokenizer.clone(), same, true, Device::flex())
            .embed(&texts)
            .unwrap();
        assert_eq!(same, plain);
    }
}
