//! The item tower (UniSRec): frozen text vectors → parametric whitening experts `W_g(x − b_g)`
//! mixed by a softmax gate (with noise while training) → item vectors; optionally plus an ID
//! embedding (transductive), or an ID embedding alone (`id` mode, the SASRec sanity check).

use burn::module::Param;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig,
};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::{softmax, softplus};

/// How items are represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemMode {
    /// Text only: new items work as soon as their text is embedded.
    Inductive,
    /// Text + a learned ID embedding.
    Transductive,
    /// A learned ID embedding only (SASRec-style).
    Id,
}

/// Shape of the item tower.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ItemTowerConfig {
    /// Width of the frozen text vectors (384 for MiniLM).
    pub text_dim: usize,
    /// Width of item vectors (the sequence encoder's width). UniSRec: 300.
    pub hidden: usize,
    /// Number of whitening experts G. Default 8.
    pub experts: usize,
    /// Dropout on the text vector before whitening. UniSRec: 0.2.
    pub dropout: f64,
    /// Representation mode.
    pub mode: ItemMode,
    /// Number of items (rows of the ID embedding).
    pub num_items: usize,
}

/// One whitening expert: `W (x − b)`.
#[derive(Module, Debug)]
pub struct WhiteningExpert {
    pub bias: Param<Tensor<1>>,
    pub linear: Linear,
}

/// G whitening experts and their gate.
#[derive(Module, Debug)]
pub struct MoeAdaptor {
    pub experts: Vec<WhiteningExpert>,
    pub gate: Linear,
    pub noise: Linear,
    pub dropout: Dropout,
}

impl MoeAdaptor {
    pub fn init(config: &ItemTowerConfig, device: &Device) -> Self {
        let d = config.text_dim;
        Self {
            experts: (0..config.experts)
                .map(|_| WhiteningExpert {
                    bias: Param::from_tensor(Tensor::zeros([d], device)),
                    linear: LinearConfig::new(d, config.hidden)
                        .with_bias(false)
                        .init(device),
                })
                .collect(),
            gate: LinearConfig::new(d, config.experts)
                .with_bias(false)
                .init(device),
            noise: LinearConfig::new(d, config.experts)
                .with_bias(false)
                .init(device),
            dropout: DropoutConfig::new(config.dropout).init(),
        }
    }

    /// `x` `[n, text_dim]` → `[n, hidden]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let [n, _] = x.dims();
        let mut logits = self.gate.forward(x.clone());
        if x.is_require_grad() || x.device().is_autodiff() {
            // Noisy gating while training (Shazeer et al.): the noise scale is learned.
            let scale = softplus(self.noise.forward(x.clone()), 1.0);
            let noise = Tensor::random(scale.dims(), Distribution::Normal(0.0, 1.0), &x.device());
            logits = logits + noise * scale;
        }
        let weights = softmax(logits, 1); // [n, G]
        let x = self.dropout.forward(x);
        let outs: Vec<Tensor<3>> = self
            .experts
            .iter()
            .map(|e| {
                let centred = x.clone() - e.bias.val().unsqueeze_dim::<2>(0);
                e.linear.forward(centred).unsqueeze_dim::<3>(1)
            })
            .collect();
        let stacked = Tensor::cat(outs, 1); // [n, G, hidden]
        let [_, g, h] = stacked.dims();
        (stacked * weights.reshape([n, g, 1]))
            .sum_dim(1)
            .reshape([n, h])
    }
}

/// Item vectors from text vectors and/or IDs.
#[derive(Module, Debug)]
pub struct ItemTower {
    pub adaptor: Option<MoeAdaptor>,
    pub ids: Option<Embedding>,
}

impl ItemTower {
    pub fn init(config: &ItemTowerConfig, device: &Device) -> Self {
        let adaptor = (config.mode != ItemMode::Id).then(|| MoeAdaptor::init(config, device));
        let ids = (config.mode != ItemMode::Inductive).then(|| {
            // N(0, 0.02) as in SASRec/UniSRec, the scale of the whitened text vectors it is
            // added to and of the position embeddings.
            EmbeddingConfig::new(config.num_items, config.hidden)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                })
                .init(device)
        });
        Self { adaptor, ids }
    }

    /// Starts every whitening expert's bias `b` at the mean text vector, so `W(x − b)` sees
    /// centred inputs from the first step. Sentence-encoder vectors share a large common
    /// component (all-MiniLM titles sit at cosine 0.3–0.6 to each other); left in, it makes all
    /// item vectors alike and the first epochs are spent unlearning it.
    pub fn centred_on(mut self, text: &Tensor<2>) -> Self {
        if let Some(adaptor) = self.adaptor.as_mut() {
            let [n, d] = text.dims();
            let mean = text
                .clone()
                .detach()
                .sum_dim(0)
                .reshape([d])
                .div_scalar(n.max(1) as f32);
            for expert in adaptor.experts.iter_mut() {
                let device = expert.bias.val().device();
                expert.bias = Param::from_tensor(mean.clone().to_device(&device));
            }
        }
        self
    }

    /// All item vectors `[num_items, hidden]` from the text vectors `[num_items, text_dim]`.
    pub fn forward(&self, text: Tensor<2>) -> Tensor<2> {
        let [n, _] = text.dims();
        let device = text.device();
        let from_text = self.adaptor.as_ref().map(|a| a.forward(text));
        let from_ids = self.ids.as_ref().map(|e| {
            let ids = Tensor::<1, Int>::arange(0..n as i64, &device).reshape([1, n]);
            let [_, h] = e.weight.dims();
            e.forward(ids).reshape([n, h])
        });
        match (from_text, from_ids) {
            (Some(t), Some(i)) => t + i,
            (Some(t), None) => t,
            (None, Some(i)) => i,
            (None, None) => unreachable!("an item tower has text, ids or both"),
        }
    }
}
