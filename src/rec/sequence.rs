//! The sequence encoder: learned positions + post-LN Transformer over item vectors, causal, so
//! one pass trains every position of a sequence (position t predicts item t + 1).

use burn::nn::attention::generate_autoregressive_mask;
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig,
};
use burn::prelude::*;

/// Shape of the sequence encoder (UniSRec's defaults).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SequenceEncoderConfig {
    /// Width. Default 300.
    pub hidden: usize,
    /// Transformer layers. Default 2.
    pub layers: usize,
    /// Attention heads. Default 2.
    pub heads: usize,
    /// Feed-forward width. Default 256.
    pub inner: usize,
    /// Dropout. Default 0.5.
    pub dropout: f64,
    /// Longest history (positions). Default 50.
    pub max_len: usize,
}

impl Default for SequenceEncoderConfig {
    fn default() -> Self {
        Self {
            hidden: 300,
            layers: 2,
            heads: 2,
            inner: 256,
            dropout: 0.5,
            max_len: 50,
        }
    }
}

#[derive(Module, Debug)]
pub struct SequenceEncoder {
    pub positions: Embedding,
    pub norm: LayerNorm,
    pub dropout: Dropout,
    pub transformer: TransformerEncoder,
}

impl SequenceEncoder {
    pub fn init(config: &SequenceEncoderConfig, device: &Device) -> Self {
        Self {
            // N(0, 0.02) as in SASRec/UniSRec: at burn's default N(0, 1) the positions drown
            // the item vectors (whose entries are ~0.02 out of the whitening layer) and text
            // modes learn several times more slowly.
            positions: EmbeddingConfig::new(config.max_len, config.hidden)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                })
                .init(device),
            norm: LayerNormConfig::new(config.hidden)
                .with_epsilon(1e-12)
                .init(device),
            dropout: DropoutConfig::new(config.dropout).init(),
            transformer: TransformerEncoderConfig::new(
                config.hidden,
                config.inner,
                config.heads,
                config.layers,
            )
            .with_dropout(config.dropout)
            .with_norm_first(false)
            .with_layer_norm_eps(1e-12)
            .init(device),
        }
    }

    /// `items` `[batch, len, hidden]` (right-padded), `pad` `[batch, len]` true at padding →
    /// states `[batch, len, hidden]`; the state at t has seen items 0..=t only.
    pub fn forward(&self, items: Tensor<3>, pad: Tensor<2, Bool>) -> Tensor<3> {
        let [batch, len, _] = items.dims();
        let device = items.device();
        let positions = Tensor::<1, Int>::arange(0..len as i64, &device).reshape([1, len]);
        let x = self
            .dropout
            .forward(self.norm.forward(items + self.positions.forward(positions)));
        let causal = generate_autoregressive_mask(batch, len, &device);
        self.transformer.forward(
            TransformerEncoderInput::new(x)
                .mask_pad(pad)
                .mask_attn(causal),
        )
    }
}
