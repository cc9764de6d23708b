//! The recommender: item tower + sequence encoder, scores = cos(user, item) / τ.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use crate::rec::item_tower::{ItemTower, ItemTowerConfig};
use crate::rec::sequence::{SequenceEncoder, SequenceEncoderConfig};

/// Everything that shapes a recommender.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecommenderConfig {
    pub items: ItemTowerConfig,
    pub sequence: SequenceEncoderConfig,
    /// Temperature of the cosine scores. UniSRec: 0.07.
    pub temperature: f64,
}

#[derive(Module, Debug)]
pub struct Recommender {
    pub tower: ItemTower,
    pub encoder: SequenceEncoder,
    pub temperature: f64,
}

/// A catalog through the item tower: the sequence encoder's inputs and the unit vectors that
/// users are scored against.
#[derive(Debug, Clone)]
pub struct ItemVectors {
    /// Tower output `[rows, hidden]`.
    pub raw: Tensor<2>,
    /// The same rows scaled to unit length.
    pub unit: Tensor<2>,
    /// The leading rows that are catalog items (recommendable); rows after them are texts
    /// that only occur in histories, such as search queries ([`Recommender::with_queries`]).
    pub items: usize,
}

/// A right-padded batch of item sequences.
#[derive(Debug, Clone)]
pub struct SequenceBatch {
    /// Item indices `[batch, len]` (padding holds 0).
    pub items: Vec<i64>,
    /// Next-item targets at each position (0 where there is none).
    pub targets: Vec<i64>,
    /// 1.0 where a target exists.
    pub weights: Vec<f32>,
    /// Real length of each row.
    pub lens: Vec<usize>,
    pub batch: usize,
    pub len: usize,
}

impl SequenceBatch {
    /// Rows of (input items, next-item targets); targets may be shorter than inputs (an
    /// evaluation row has none).
    pub fn new(rows: &[(&[usize], &[usize])]) -> Self {
        let len = rows.iter().map(|(i, _)| i.len()).max().unwrap_or(1).max(1);
        let batch = rows.len();
        let mut s = Self {
            items: vec![0; batch * len],
            targets: vec![0; batch * len],
            weights: vec![0.0; batch * len],
            lens: Vec::with_capacity(batch),
            batch,
            len,
        };
        for (b, (inputs, targets)) in rows.iter().enumerate() {
            for (t, &i) in inputs.iter().enumerate() {
                s.items[b * len + t] = i as i64;
            }
            for (t, &i) in targets.iter().enumerate() {
                s.targets[b * len + t] = i as i64;
                s.weights[b * len + t] = 1.0;
            }
            s.lens.push(inputs.len());
        }
        s
    }
}

/// Rows scaled to unit length (the scores are cosines).
pub fn l2_rows<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let norm = x.clone().square().sum_dim(D - 1).sqrt().clamp_min(1e-12);
    x / norm
}

impl Recommender {
    pub fn init(config: &RecommenderConfig, device: &Device) -> Self {
        Self {
            tower: ItemTower::init(&config.items, device),
            encoder: SequenceEncoder::init(&config.sequence, device),
            temperature: config.temperature,
        }
    }

    /// Sequence states `[batch, len, hidden]` and item vectors `[items, hidden]`, both unit-norm.
    pub fn encode(&self, batch: &SequenceBatch, text: Tensor<2>) -> (Tensor<3>, Tensor<2>) {
        let items = self.item_vectors(text);
        (self.encode_with(batch, &items), items.unit)
    }

    /// The item tower over a catalog's text vectors. Ranking reuses it for every request:
    /// recomputing the tower per request would cost more than the rest of the ranking.
    pub fn item_vectors(&self, text: Tensor<2>) -> ItemVectors {
        let raw = self.tower.forward(text);
        ItemVectors {
            unit: l2_rows(raw.clone()),
            items: raw.dims()[0],
            raw,
        }
    }

    /// `catalog` with rows appended for search queries (their text vectors from the same
    /// encoder, through the same tower): a history can then hold a query as an event at row
    /// `catalog.items + j`, while only the catalog's items are ranked. The query's text lies in
    /// the items' text space, so a search moves the ranking before any click.
    pub fn with_queries(&self, catalog: &ItemVectors, queries: Tensor<2>) -> ItemVectors {
        let q = self.item_vectors(queries);
        ItemVectors {
            raw: Tensor::cat(vec![catalog.raw.clone(), q.raw], 0),
            unit: Tensor::cat(vec![catalog.unit.clone(), q.unit], 0),
            items: catalog.items,
        }
    }

    /// Unit user states `[batch, len, hidden]` for `batch` over precomputed item vectors.
    pub fn encode_with(&self, batch: &SequenceBatch, items: &ItemVectors) -> Tensor<3> {
        let device = items.raw.device();
        let [_, hidden] = items.raw.dims();
        let ids = Tensor::<1, Int>::from_data(
            TensorData::new(batch.items.clone(), [batch.batch * batch.len]),
            &device,
        );
        let seq_items = items
            .raw
            .clone()
            .select(0, ids)
            .reshape([batch.batch, batch.len, hidden]);
        let pad: Vec<bool> = (0..batch.batch * batch.len)
            .map(|k| k % batch.len >= batch.lens[k / batch.len])
            .collect();
        let pad =
            Tensor::<2, Bool>::from_data(TensorData::new(pad, [batch.batch, batch.len]), &device);
        l2_rows(self.encoder.forward(seq_items, pad))
    }

    /// Mean full-softmax cross-entropy of the next item over every position with a target;
    /// items where `absent` `[1, items]` is true are left out of the softmax.
    pub fn loss(
        &self,
        batch: &SequenceBatch,
        text: Tensor<2>,
        absent: Option<Tensor<2, Bool>>,
    ) -> Tensor<1> {
        let device = text.device();
        let (states, items) = self.encode(batch, text);
        let [b, l, h] = states.dims();
        let logits = states
            .reshape([b * l, h])
            .matmul(items.transpose())
            .div_scalar(self.temperature);
        let logits = match absent {
            Some(mask) => {
                let n = mask.dims()[1];
                logits.mask_fill(mask.expand([b * l, n]), -1e9)
            }
            None => logits,
        };
        let logp = log_softmax(logits, 1);
        let targets = Tensor::<2, Int>::from_data(
            TensorData::new(batch.targets.clone(), [b * l, 1]),
            &device,
        );
        let weights =
            Tensor::<2>::from_data(TensorData::new(batch.weights.clone(), [b * l, 1]), &device);
        let count = batch.weights.iter().sum::<f32>().max(1.0);
        (logp.gather(1, targets) * weights)
            .sum()
            .neg()
            .div_scalar(count)
    }

    /// Scores `[batch, items]` of every item after each row's last item.
    pub fn scores(&self, batch: &SequenceBatch, text: Tensor<2>) -> Tensor<2> {
        let device = text.device();
        let (states, items) = self.encode(batch, text);
        let [b, l, h] = states.dims();
        let last: Vec<i64> = batch
            .lens
            .iter()
            .enumerate()
            .map(|(r, &n)| (r * l + n.max(1) - 1) as i64)
            .collect();
        let last = Tensor::<1, Int>::from_data(TensorData::new(last, [b]), &device);
        let user = states.reshape([b * l, h]).select(0, last);
        user.matmul(items.transpose()).div_scalar(self.temperature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rec::ItemMode;

    /// Leaving items out of the softmax equals scoring a catalog without them: the masked loss
    /// is the loss over the remaining items only.
    #[test]
    fn absent_items_are_not_in_the_softmax() {
        // Random initialisation draws from the shared CPU generator.
        #[cfg(feature = "native")]
        let _seeded = crate::train::tests::SEEDED
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let device = Device::flex();
        device.seed(4);
        let config = RecommenderConfig {
            items: ItemTowerConfig {
                text_dim: 1,
                hidden: 8,
                experts: 1,
                dropout: 0.0,
                mode: ItemMode::Id,
                num_items: 6,
            },
            sequence: SequenceEncoderConfig {
                hidden: 8,
                layers: 1,
                heads: 2,
                inner: 8,
                dropout: 0.0,
                max_len: 4,
            },
            temperature: 0.5,
        };
        let model = Recommender::init(&config, &device);
        let text = Tensor::<2>::zeros([6, 1], &device);
        let batch = SequenceBatch::new(&[(&[0, 1, 2][..], &[1, 2, 3][..])]);
        let plain = model.loss(&batch, text.clone(), None).into_scalar::<f32>();
        let absent = Tensor::<2, Bool>::from_data(
            TensorData::new(vec![false, false, false, false, true, true], [1, 6]),
            &device,
        );
        let masked = model
            .loss(&batch, text.clone(), Some(absent))
            .into_scalar::<f32>();
        assert!(masked < plain, "{masked} vs {plain}");
        // The same loss by hand from the scores over items 0..4.
        let (states, items) = model.encode(&batch, text);
        let s: Vec<f32> = states
            .reshape([3, 8])
            .matmul(items.transpose())
            .div_scalar(0.5)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let mut expected = 0.0;
        for (t, target) in [1usize, 2, 3].into_iter().enumerate() {
            let row = &s[t * 6..t * 6 + 4];
            let lse = row.iter().map(|v| v.exp()).sum::<f32>().ln();
            expected += lse - row[target];
        }
        expected /= 3.0;
        assert!((masked - expected).abs() < 1e-4, "{masked} vs {expected}");
    }
}
