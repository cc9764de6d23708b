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
    /// Transductive training only: the probability that an item's ID embedding is left out of
    /// its vector in a training step (DropoutNet, Volkovs et al. 2017), so that the text path
    /// alone must rank it as it ranks an item never trained on, whose ID row is zero. 0: off.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub id_dropout: f64,
}

fn is_zero(p: &f64) -> bool {
    *p == 0.0
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
    /// Leaves whole ID rows out while training ([`ItemTowerConfig::id_dropout`]).
    pub id_dropout: Dropout,
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
        let id_dropout = DropoutConfig::new(if config.mode == ItemMode::Transductive {
            config.id_dropout
        } else {
            0.0
        })
        .init();
        Self {
            adaptor,
            ids,
            id_dropout,
        }
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

    /// The tower with the ID rows of `rows` zeroed: items held out of training have no ID, as an
    /// item added after training has none, so they are ranked by their text alone (the path ID
    /// dropout trains). No row gets a gradient while it is never trained on, so it stays zero.
    pub fn without_ids_of(mut self, rows: &[usize]) -> Self {
        if let Some(ids) = self.ids.as_mut().filter(|_| !rows.is_empty()) {
            let [n, _] = ids.weight.dims();
            let mut keep = vec![1.0f32; n];
            for &r in rows {
                if let Some(k) = keep.get_mut(r) {
                    *k = 0.0;
                }
            }
            let weight = ids.weight.val().detach();
            let mask = Tensor::<2>::from_data(TensorData::new(keep, [n, 1]), &weight.device());
            // (Detached again: a parameter on the training device must be a leaf.)
            ids.weight = Param::from_tensor((weight * mask).detach());
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
            let rows = e.forward(ids).reshape([n, h]);
            if self.id_dropout.prob > 0.0 {
                // Dropout of a column of ones: each row kept (scaled by 1/(1 − p)) or zeroed
                // while training, ones otherwise; the scale is undone, so that a kept ID row
                // is the row an item always has at inference, and a dropped one is a new item's.
                let keep = self
                    .id_dropout
                    .forward(Tensor::<2>::ones([n, 1], &device))
                    .mul_scalar(1.0 - self.id_dropout.prob);
                rows * keep
            } else {
                rows
            }
        });
        match (from_text, from_ids) {
            (Some(t), Some(i)) => t + i,
            (Some(t), None) => t,
            (None, Some(i)) => i,
            (None, None) => unreachable!("an item tower has text, ids or both"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transductive tower over zero text vectors, so that its output is the ID part alone
    /// (zero text and zero whitening biases give a zero adaptor output, gate noise or not).
    fn ids_only(id_dropout: f64, n: usize, device: &Device) -> (ItemTower, Tensor<2>) {
        let config = ItemTowerConfig {
            text_dim: 4,
            hidden: 6,
            experts: 2,
            dropout: 0.0,
            mode: ItemMode::Transductive,
            num_items: n,
            id_dropout,
        };
        (
            ItemTower::init(&config, device),
            Tensor::<2>::zeros([n, 4], device),
        )
    }

    fn zero_rows(out: &Tensor<2>) -> Vec<usize> {
        let [n, h] = out.dims();
        let v = out.to_data().try_to_vec::<f32>().unwrap();
        (0..n)
            .filter(|&r| v[r * h..(r + 1) * h].iter().all(|&x| x == 0.0))
            .collect()
    }

    #[test]
    fn id_dropout_zeroes_whole_id_rows_while_training_only_and_keeps_the_rest_unscaled() {
        let (_seeded, device) = crate::fixtures::seeded_cpu(3);
        let n = 400;
        let (tower, text) = ids_only(0.5, n, &device.clone().autodiff());
        let ids = tower.ids.as_ref().unwrap().weight.val().inner().to_data();
        let out = tower.forward(text).inner();
        let dropped = zero_rows(&out);
        assert!(
            (120..280).contains(&dropped.len()),
            "{} of {n} rows dropped at p 0.5",
            dropped.len()
        );
        // The kept rows are the ID rows as inference sees them, not scaled by 1/(1 − p).
        let (out, ids) = (
            out.to_data().try_to_vec::<f32>().unwrap(),
            ids.try_to_vec::<f32>().unwrap(),
        );
        for r in (0..n).filter(|r| !dropped.contains(r)) {
            assert_eq!(out[r * 6..(r + 1) * 6], ids[r * 6..(r + 1) * 6], "row {r}");
        }
        // At inference every item has its ID.
        let (tower, text) = ids_only(0.5, n, &device);
        assert!(zero_rows(&tower.forward(text)).is_empty());
    }

    #[test]
    fn held_out_items_have_no_id_and_the_others_keep_theirs() {
        let (_seeded, device) = crate::fixtures::seeded_cpu(4);
        // On the training device, where the tower is prepared.
        let (tower, text) = ids_only(0.0, 12, &device.autodiff());
        let before = tower.forward(text.clone()).to_data();
        let tower = tower.without_ids_of(&[2, 7, 99]);
        let after = tower.forward(text);
        assert_eq!(zero_rows(&after), [2, 7]);
        let (b, a) = (
            before.try_to_vec::<f32>().unwrap(),
            after.to_data().try_to_vec::<f32>().unwrap(),
        );
        for r in [0, 1, 3, 4, 5, 6, 8, 9, 10, 11] {
            assert_eq!(a[r * 6..(r + 1) * 6], b[r * 6..(r + 1) * 6], "row {r}");
        }
    }
}
