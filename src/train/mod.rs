//! Training the recommender: next-item cross-entropy over every position of causal windows,
//! AdamW, early stopping on validation NDCG@10.
//!
//! A plain loop over burn's autodiff and `ModuleOptimizer` for now; moving onto burn-train's
//! `Learner` (checkpointer, multi-device strategies) is the next step of the training issue.

use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;

use crate::data::dataset::{Example, Split};
use crate::eval::metrics::{Metrics, rank_of};
use crate::fixtures::SplitMix;
use crate::rec::{Recommender, SequenceBatch};

/// Training settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    /// Most epochs. Default 200.
    pub epochs: usize,
    /// Windows per batch. Default 64.
    pub batch_size: usize,
    /// AdamW learning rate. Default 1e-3.
    pub lr: f64,
    /// AdamW weight decay. Default 0.
    pub weight_decay: f32,
    /// Stop after this many epochs without a better validation NDCG@10. Default 10.
    pub patience: usize,
    /// Window length (the history cap). Default 50.
    pub max_len: usize,
    /// Shuffling and initialisation seed. Default 2020.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 200,
            batch_size: 64,
            lr: 1e-3,
            weight_decay: 0.0,
            patience: 10,
            max_len: 50,
            seed: 2020,
        }
    }
}

/// Causal training windows: each training sequence cut from its end into pieces of
/// `max_len + 1` items overlapping by one, so every next-item pair is supervised once.
pub fn windows(split: &Split, max_len: usize) -> Vec<(Vec<usize>, Vec<usize>)> {
    let mut out = Vec::new();
    for seq in &split.train {
        let mut end = seq.len();
        while end >= 2 {
            let start = end.saturating_sub(max_len + 1);
            let w = &seq[start..end];
            out.push((w[..w.len() - 1].to_vec(), w[1..].to_vec()));
            if start == 0 {
                break;
            }
            end = start + 1;
        }
    }
    out
}

/// One epoch's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub loss: f64,
    pub valid_ndcg10: f64,
    pub seconds: f64,
}

/// Evaluates a model (inference copy) on examples: (unmasked, masked).
pub fn evaluate_model(
    model: &Recommender,
    text: &Tensor<2>,
    examples: &[Example],
    batch: usize,
) -> (Metrics, Metrics) {
    let mut plain = Metrics::default();
    let mut masked = Metrics::default();
    for chunk in examples.chunks(batch.max(1)) {
        let rows: Vec<(&[usize], &[usize])> = chunk
            .iter()
            .map(|e| (e.history.as_slice(), &[][..]))
            .collect();
        let scores = model.scores(&SequenceBatch::new(&rows), text.clone());
        let [_, n] = scores.dims();
        let flat = scores.into_data().try_to_vec::<f32>().expect("f32 scores");
        for (e, row) in chunk.iter().zip(flat.chunks(n)) {
            plain.add(rank_of(row, e.target, None));
            masked.add(rank_of(row, e.target, Some(&e.seen)));
        }
    }
    (plain, masked)
}

/// Trains `model` (on an autodiff device, like `text`) and returns the best model by validation
/// NDCG@10 (as an inference copy) with the per-epoch log. `on_epoch` sees each epoch's log.
pub fn train(
    mut model: Recommender,
    text: &Tensor<2>,
    split: &Split,
    config: &TrainConfig,
    mut on_epoch: impl FnMut(&EpochLog),
) -> (Recommender, Vec<EpochLog>) {
    let mut optim = AdamWConfig::new()
        .with_weight_decay(config.weight_decay)
        .init();
    let mut data = windows(split, config.max_len);
    let mut rng = SplitMix(config.seed);
    let plain_text = text.clone().inner();
    let mut best: Option<(f64, Recommender)> = None;
    let mut log = Vec::new();
    let mut since_best = 0;
    for epoch in 1..=config.epochs {
        let start = std::time::Instant::now();
        // Fisher–Yates with the seeded generator: the same seed gives the same run.
        for i in (1..data.len()).rev() {
            let j = ((rng.next_f32() * (i + 1) as f32) as usize).min(i);
            data.swap(i, j);
        }
        let mut loss_sum = 0.0;
        let mut batches = 0;
        for chunk in data.chunks(config.batch_size) {
            let rows: Vec<(&[usize], &[usize])> = chunk
                .iter()
                .map(|(i, t)| (i.as_slice(), t.as_slice()))
                .collect();
            let loss = model.loss(&SequenceBatch::new(&rows), text.clone());
            loss_sum += f64::from(loss.clone().into_scalar::<f32>());
            batches += 1;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(config.lr, model, grads);
        }
        let inference = model.valid();
        let (valid, _) = evaluate_model(&inference, &plain_text, &split.valid, 256);
        let ndcg = valid.means()["ndcg@10"];
        let entry = EpochLog {
            epoch,
            loss: loss_sum / batches.max(1) as f64,
            valid_ndcg10: ndcg,
            seconds: start.elapsed().as_secs_f64(),
        };
        on_epoch(&entry);
        log.push(entry);
        if best.as_ref().is_none_or(|(b, _)| ndcg > *b) {
            best = Some((ndcg, inference));
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= config.patience {
                break;
            }
        }
    }
    (best.expect("at least one epoch").1, log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::synthetic_dataset;
    use crate::eval::popularity::evaluate_popularity;
    use crate::rec::{ItemMode, ItemTowerConfig, RecommenderConfig, SequenceEncoderConfig};

    #[test]
    fn windows_supervise_every_pair_once() {
        let split = Split {
            train: vec![(0..7).collect(), vec![1], vec![3, 4]],
            valid: vec![],
            test: vec![],
            short_users: 0,
            max_len: 3,
        };
        let w = windows(&split, 3);
        let pairs: usize = w.iter().map(|(_, t)| t.len()).sum();
        assert_eq!(pairs, 6 + 1);
        assert_eq!(w[0], (vec![3, 4, 5], vec![4, 5, 6]));
        assert!(w.iter().all(|(i, t)| i.len() == t.len() && i.len() <= 3));
    }

    /// Text vectors that carry the synthetic topic (plus noise), as a real encoder's would.
    fn topic_text(num_items: usize, device: &Device) -> Tensor<2> {
        let mut rng = SplitMix(9);
        let dim = 12;
        let mut v = vec![0.0f32; num_items * dim];
        for i in 0..num_items {
            for d in 0..dim {
                v[i * dim + d] = 0.3 * (rng.next_f32() - 0.5) + if d == i % 6 { 1.0 } else { 0.0 };
            }
        }
        Tensor::from_data(TensorData::new(v, [num_items, dim]), device)
    }

    #[test]
    fn learns_synthetic_tastes_better_than_popularity() {
        let ds = synthetic_dataset(120, 48, 8, 16, 5);
        let split = Split::leave_one_out(&ds, 10);
        let device = Device::flex().autodiff();
        device.seed(7);
        let (pop, _) = evaluate_popularity(&split, ds.items.len(), &split.test);
        for mode in [ItemMode::Inductive, ItemMode::Id] {
            let config = RecommenderConfig {
                items: ItemTowerConfig {
                    text_dim: 12,
                    hidden: 16,
                    experts: 2,
                    dropout: 0.0,
                    mode,
                    num_items: ds.items.len(),
                },
                sequence: SequenceEncoderConfig {
                    hidden: 16,
                    layers: 1,
                    heads: 2,
                    inner: 32,
                    dropout: 0.1,
                    max_len: 10,
                },
                temperature: 0.1,
            };
            let text = topic_text(ds.items.len(), &device);
            let model = Recommender::init(&config, &device);
            let train_config = TrainConfig {
                epochs: 25,
                batch_size: 32,
                lr: 5e-3,
                patience: 25,
                max_len: 10,
                ..TrainConfig::default()
            };
            let (best, log) = train(model, &text, &split, &train_config, |_| {});
            assert!(
                log.last().unwrap().loss < log[0].loss,
                "{mode:?}: loss {:?}",
                log.iter().map(|l| l.loss).collect::<Vec<_>>()
            );
            let (test, _) = evaluate_model(&best, &text.clone().inner(), &split.test, 64);
            let (ours, theirs) = (test.means()["ndcg@10"], pop.means()["ndcg@10"]);
            assert!(
                ours > theirs * 1.2,
                "{mode:?}: NDCG@10 {ours:.4} vs popularity {theirs:.4}"
            );
        }
    }
}
