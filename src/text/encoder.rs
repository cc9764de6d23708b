//! The BERT-family encoder: embeddings and a post-LayerNorm Transformer, as HF `BertModel`
//! computes them. No I/O here: [`crate::text::weights`] builds it from tensors.

use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{gelu, softmax};

use crate::text::config::BertConfig;

/// Added to attention scores at padded keys. Large enough that `exp` underflows to exactly 0
/// in f32, small enough to stay finite in f16 (WebGPU may compute in half precision).
const MASKED_SCORE: f32 = -1.0e4;

/// Word + position + token-type embeddings, then LayerNorm (HF `BertEmbeddings`).
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    pub word_embeddings: Embedding,
    pub position_embeddings: Embedding,
    pub token_type_embeddings: Embedding,
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
}

impl BertEmbeddings {
    /// Random initialisation (tests, and the shape a loader fills).
    pub fn init(config: &BertConfig, device: &Device) -> Self {
        let h = config.hidden_size;
        Self {
            word_embeddings: EmbeddingConfig::new(config.vocab_size, h).init(device),
            position_embeddings: EmbeddingConfig::new(config.max_position_embeddings, h)
                .init(device),
            token_type_embeddings: EmbeddingConfig::new(config.type_vocab_size, h).init(device),
            layer_norm: layer_norm(config, h, device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
        }
    }

    /// `ids`: `[batch, seq]` → `[batch, seq, hidden]`. Token types are all 0 (single segment).
    pub fn forward(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [_, seq] = ids.dims();
        let device = ids.device();
        let positions = Tensor::<1, Int>::arange(0..seq as i64, &device).reshape([1, seq]);
        let word = self.word_embeddings.forward(ids);
        let position = self.position_embeddings.forward(positions);
        let [_, hidden] = self.token_type_embeddings.weight.dims();
        let token_type = self
            .token_type_embeddings
            .weight
            .val()
            .slice([0..1, 0..hidden])
            .reshape([1, 1, hidden]);
        let x = word + position + token_type;
        self.dropout.forward(self.layer_norm.forward(x))
    }
}

/// Multi-head self-attention with its output projection and residual LayerNorm
/// (HF `BertAttention` = `BertSelfAttention` + `BertSelfOutput`).
#[derive(Module, Debug)]
pub struct BertAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub output: Linear,
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
    pub num_heads: usize,
    pub head_size: usize,
}

impl BertAttention {
    /// Layer `layer`'s attention (its head count after `pruned_heads`).
    pub fn init(config: &BertConfig, layer: usize, device: &Device) -> Self {
        let h = config.hidden_size;
        let heads = config.heads_in_layer(layer);
        let a = heads * config.head_size();
        Self {
            query: LinearConfig::new(h, a).init(device),
            key: LinearConfig::new(h, a).init(device),
            value: LinearConfig::new(h, a).init(device),
            output: LinearConfig::new(a, h).init(device),
            layer_norm: layer_norm(config, h, device),
            dropout: DropoutConfig::new(config.attention_probs_dropout_prob).init(),
            num_heads: heads,
            head_size: config.head_size(),
        }
    }

    /// `x`: `[batch, seq, hidden]`; `score_bias`: `[batch, 1, 1, seq]`, 0 at real keys and
    /// [`MASKED_SCORE`] at padding.
    pub fn forward(&self, x: Tensor<3>, score_bias: Tensor<4>) -> Tensor<3> {
        let [batch, seq, _] = x.dims();
        let split = |t: Tensor<3>| {
            t.reshape([batch, seq, self.num_heads, self.head_size])
                .swap_dims(1, 2)
        };
        let q = split(self.query.forward(x.clone()));
        let k = split(self.key.forward(x.clone()));
        let v = split(self.value.forward(x.clone()));
        let scale = 1.0 / (self.head_size as f64).sqrt();
        let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale) + score_bias;
        let probs = self.dropout.forward(softmax(scores, 3));
        let context =
            probs
                .matmul(v)
                .swap_dims(1, 2)
                .reshape([batch, seq, self.num_heads * self.head_size]);
        let out = self.dropout.forward(self.output.forward(context));
        self.layer_norm.forward(out + x)
    }
}

/// One Transformer layer: attention, then GELU feed-forward with residual LayerNorm
/// (HF `BertLayer` = attention + `BertIntermediate` + `BertOutput`).
#[derive(Module, Debug)]
pub struct BertLayer {
    pub attention: BertAttention,
    pub intermediate: Linear,
    pub output: Linear,
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
}

impl BertLayer {
    pub fn init(config: &BertConfig, layer: usize, device: &Device) -> Self {
        let h = config.hidden_size;
        let f = config.intermediate_size;
        Self {
            attention: BertAttention::init(config, layer, device),
            intermediate: LinearConfig::new(h, f).init(device),
            output: LinearConfig::new(f, h).init(device),
            layer_norm: layer_norm(config, h, device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
        }
    }

    pub fn forward(&self, x: Tensor<3>, score_bias: Tensor<4>) -> Tensor<3> {
        let x = self.attention.forward(x, score_bias);
        let inner = gelu(self.intermediate.forward(x.clone()));
        let out = self.dropout.forward(self.output.forward(inner));
        self.layer_norm.forward(out + x)
    }
}

/// The whole encoder (HF `BertModel` without the pooler).
#[derive(Module, Debug)]
pub struct BertEncoder {
    pub embeddings: BertEmbeddings,
    pub layers: Vec<BertLayer>,
}

impl BertEncoder {
    /// Sets every dropout of the encoder to `prob` (a student may train with another rate
    /// than its teacher's config says).
    pub fn set_dropout(&mut self, prob: f64) {
        self.embeddings.dropout.prob = prob;
        for layer in &mut self.layers {
            layer.attention.dropout.prob = prob;
            layer.dropout.prob = prob;
        }
    }

    /// A randomly initialised encoder of the config's shape.
    pub fn init(config: &BertConfig, device: &Device) -> Self {
        Self {
            embeddings: BertEmbeddings::init(config, device),
            layers: (0..config.num_hidden_layers)
                .map(|l| BertLayer::init(config, l, device))
                .collect(),
        }
    }

    /// Last hidden state `[batch, seq, hidden]` for `ids` `[batch, seq]` and an attention mask
    /// `[batch, seq]` (1 real, 0 padding).
    pub fn forward(&self, ids: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<3> {
        self.forward_all(ids, mask)
            .pop()
            .expect("embeddings output")
    }

    /// Hidden states after the embeddings and after every layer (`num_layers + 1` tensors), for
    /// layer-wise distillation.
    pub fn forward_all(&self, ids: Tensor<2, Int>, mask: Tensor<2>) -> Vec<Tensor<3>> {
        let score_bias = score_bias(mask);
        let mut states = Vec::with_capacity(self.layers.len() + 1);
        let mut x = self.embeddings.forward(ids);
        for layer in &self.layers {
            states.push(x.clone());
            x = layer.forward(x, score_bias.clone());
        }
        states.push(x);
        states
    }
}

/// The additive attention bias `[batch, 1, 1, seq]` of a mask `[batch, seq]` (1 real, 0 padding):
/// 0 at real keys, [`MASKED_SCORE`] at padding.
pub fn score_bias(mask: Tensor<2>) -> Tensor<4> {
    let [batch, seq] = mask.dims();
    (mask - 1.0)
        .mul_scalar(-MASKED_SCORE)
        .reshape([batch, 1, 1, seq])
}

fn layer_norm(config: &BertConfig, width: usize, device: &Device) -> LayerNorm {
    LayerNormConfig::new(width)
        .with_epsilon(config.layer_norm_eps)
        .init(device)
}
