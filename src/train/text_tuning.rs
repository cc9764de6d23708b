//! Teacher training proper: the text encoder's top layers learn together with the recommender,
//! against in-batch negatives. The bottom layers stay frozen, so their output for every item
//! text is computed once; each batch runs only the top layers, and only for the batch's items
//! (its histories and targets) — the scores are then against the batch's targets, not the
//! whole catalog, which is what makes a step affordable.

use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;

use crate::data::Split;
use crate::error::{Error, Result};
use crate::eval::evaluate_model;
use crate::jobs::JobObserver;
use crate::rec::{Recommender, SequenceBatch};
use crate::rng::SplitMix;
use crate::text::TextEmbedder;
use crate::text::encoder::{BertEncoder, BertLayer, score_bias};
use crate::text::pooling::{l2_normalize, masked_mean};
use crate::train::{EpochLog, windows};

/// Every item text's hidden states after the frozen bottom layers, computed once.
pub struct FrozenBottom {
    /// `[items, seq, hidden]` on the training device (constants: no gradient).
    pub states: Tensor<3>,
    /// `[items, seq]`, 1 at real tokens.
    pub mask: Tensor<2>,
}

/// The trainable top layers of the text encoder and its pooling.
#[derive(Module, Debug)]
pub struct TextTop {
    pub layers: Vec<BertLayer>,
    pub normalize: bool,
}

impl TextTop {
    /// Pooled text vectors `[rows, hidden]` of bottom states `[rows, seq, hidden]`.
    pub fn forward(&self, states: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
        let bias = score_bias(mask.clone());
        let mut x = states;
        for layer in &self.layers {
            x = layer.forward(x, bias.clone());
        }
        let pooled = masked_mean(x, mask);
        if self.normalize {
            l2_normalize(pooled)
        } else {
            pooled
        }
    }

    /// Text vectors `[items, hidden]` of every item (inference; on the bottom's device).
    pub fn encode_all(&self, bottom: &FrozenBottom) -> Tensor<2> {
        let [n, _, _] = bottom.states.dims();
        let device = bottom.states.device();
        let parts: Vec<Tensor<2>> = (0..n)
            .step_by(128)
            .map(|start| {
                let idx =
                    Tensor::<1, Int>::arange(start as i64..(start + 128).min(n) as i64, &device);
                self.forward(
                    bottom.states.clone().select(0, idx.clone()),
                    bottom.mask.clone().select(0, idx),
                )
            })
            .collect();
        Tensor::cat(parts, 0)
    }
}

/// Cuts `embedder`'s encoder below its top `top_layers` layers: the bottom's states of every
/// text in `texts` (computed on the embedder's device, stored on `device`), and the top layers
/// as a trainable module on `device`.
pub fn split_encoder(
    embedder: &TextEmbedder,
    texts: &[String],
    top_layers: usize,
    device: &Device,
) -> Result<(FrozenBottom, TextTop)> {
    let layers = embedder.encoder.layers.len();
    if top_layers == 0 || top_layers > layers {
        return Err(Error::bad_input(
            "--tune-text-layers",
            format!("must be between 1 and the encoder's {layers} layers"),
        ));
    }
    let cut = layers - top_layers;
    let tokens = embedder.tokenizer.encode_batch(texts)?;
    let (n, seq) = (tokens.batch, tokens.seq_len);
    let here = embedder.device();
    let mut states = Vec::with_capacity(n * seq * embedder.dim());
    for start in (0..n).step_by(64) {
        let end = (start + 64).min(n);
        let ids = Tensor::<2, Int>::from_data(
            TensorData::new(
                tokens.ids[start * seq..end * seq].to_vec(),
                [end - start, seq],
            ),
            here,
        );
        let mask = Tensor::<2>::from_data(
            TensorData::new(
                tokens.mask[start * seq..end * seq].to_vec(),
                [end - start, seq],
            ),
            here,
        );
        let bias = score_bias(mask);
        let mut x = embedder.encoder.embeddings.forward(ids);
        for layer in &embedder.encoder.layers[..cut] {
            x = layer.forward(x, bias.clone());
        }
        states.extend(
            x.into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|e| Error::Backend(format!("reading the frozen layers' output: {e:?}")))?,
        );
    }
    let bottom = FrozenBottom {
        states: Tensor::from_data(TensorData::new(states, [n, seq, embedder.dim()]), device),
        mask: Tensor::from_data(TensorData::new(tokens.mask.clone(), [n, seq]), device),
    };
    let top = TextTop {
        layers: embedder.encoder.layers[cut..].to_vec(),
        normalize: embedder.normalize,
    }
    // Loaded weights carry no gradient tracking; these become trainable on `device`.
    .unfreeze()
    .fork(device)
    .train();
    Ok((bottom, top))
}

/// `encoder` with its top layers replaced by `top`'s (for writing the tuned encoder).
pub fn with_top(encoder: &BertEncoder, top: &TextTop) -> BertEncoder {
    let cut = encoder.layers.len() - top.layers.len();
    let device = encoder.embeddings.word_embeddings.weight.device();
    let mut tuned = encoder.clone();
    tuned.layers.truncate(cut);
    tuned
        .layers
        .extend(top.layers.iter().map(|l| l.clone().fork(&device)));
    tuned
}

/// Text-tuning settings.
#[derive(burn::config::Config, Debug, PartialEq)]
pub struct TextTuneConfig {
    /// Most epochs.
    #[config(default = 5)]
    pub epochs: usize,
    /// Stop after this many epochs without a better validation NDCG@10.
    #[config(default = 2)]
    pub patience: usize,
    /// AdamW learning rate of the text layers (BERT fine-tuning's usual scale).
    #[config(default = 5e-5)]
    pub text_lr: f64,
    /// AdamW learning rate of the recommender.
    #[config(default = 1e-4)]
    pub rec_lr: f64,
    /// Windows per batch.
    #[config(default = 64)]
    pub batch_size: usize,
    /// Window length.
    #[config(default = 50)]
    pub max_len: usize,
    /// Shuffling seed.
    #[config(default = 2020)]
    pub seed: u64,
}

impl Default for TextTuneConfig {
    /// Every setting at its documented default ([`TextTuneConfig::new`]).
    fn default() -> Self {
        Self::new()
    }
}

/// The outcome of [`tune_text`].
pub struct TextTuned {
    /// The best recommender and text layers by validation NDCG@10 (inference copies); epoch 0,
    /// the starting point, competes too, so tuning never returns a worse model than it got.
    pub model: Recommender,
    pub top: TextTop,
    /// Every item's text vectors by the best text layers `[items, hidden]` (inference device).
    pub text: Tensor<2>,
    /// Epoch 0 (the start, not trained) and one entry per epoch run.
    pub log: Vec<EpochLog>,
}

/// Trains `model` (an inductive recommender) and the text layers `top` together: each batch's
/// items are encoded by `top` from the frozen bottom states, and every position's state is
/// scored against the batch's targets (in-batch negatives, same-target masking).
pub fn tune_text(
    mut model: Recommender,
    mut top: TextTop,
    bottom: &FrozenBottom,
    split: &Split,
    config: &TextTuneConfig,
    observer: &mut dyn JobObserver<EpochLog>,
) -> Result<TextTuned> {
    if model.tower.ids.is_some() {
        return Err(Error::bad_input(
            "--tune-text-layers",
            "tuning the text encoder needs an inductive (text-only) recommender",
        ));
    }
    let device = bottom.states.device();
    let mut rec_optim = AdamWConfig::new().init();
    let mut text_optim = AdamWConfig::new().init();
    let base = windows(split, config.max_len);
    let mut rng = SplitMix(config.seed);
    let validate = |model: &Recommender, top: &TextTop| {
        let text = top.valid().encode_all(&FrozenBottom {
            states: bottom.states.clone().inner(),
            mask: bottom.mask.clone().inner(),
        });
        let (valid, _) = evaluate_model(model, &text, &split.valid, 256);
        (valid.means()["ndcg@10"], text)
    };
    let start = std::time::Instant::now();
    let (ndcg0, text0) = validate(&model.valid(), &top);
    let mut log = vec![EpochLog {
        epoch: 0,
        phase: "text (start)".into(),
        loss: f64::NAN,
        valid_ndcg10: ndcg0,
        seconds: start.elapsed().as_secs_f64(),
        ..EpochLog::default()
    }];
    observer.epoch_end(&log[0]);
    let mut best = (ndcg0, model.valid(), top.valid(), text0);
    let mut since_best = 0;
    for epoch in 1..=config.epochs {
        let start = std::time::Instant::now();
        device.seed(
            config
                .seed
                .wrapping_mul(7_000_003)
                .wrapping_add(epoch as u64),
        );
        let mut data = base.clone();
        for i in (1..data.len()).rev() {
            let j = ((rng.next_f32() * (i + 1) as f32) as usize).min(i);
            data.swap(i, j);
        }
        observer.epoch_start(epoch, data.len().div_ceil(config.batch_size));
        let (mut loss_sum, mut batches) = (0.0, 0);
        for chunk in data.chunks(config.batch_size) {
            // The batch's items, and the batch re-indexed into them.
            let mut items: Vec<usize> = chunk
                .iter()
                .flat_map(|(i, t)| i.iter().chain(t))
                .copied()
                .collect();
            items.sort_unstable();
            items.dedup();
            let local = |v: &[usize]| -> Vec<usize> {
                v.iter()
                    .map(|x| items.binary_search(x).expect("collected above"))
                    .collect()
            };
            let remapped: Vec<(Vec<usize>, Vec<usize>)> =
                chunk.iter().map(|(i, t)| (local(i), local(t))).collect();
            let rows: Vec<(&[usize], &[usize])> = remapped
                .iter()
                .map(|(i, t)| (i.as_slice(), t.as_slice()))
                .collect();
            let batch = SequenceBatch::new(&rows);
            let idx = Tensor::<1, Int>::from_data(
                TensorData::new(
                    items.iter().map(|&i| i as i64).collect::<Vec<_>>(),
                    [items.len()],
                ),
                &device,
            );
            let text = top.forward(
                bottom.states.clone().select(0, idx.clone()),
                bottom.mask.clone().select(0, idx),
            );
            let loss = model.pretrain_loss(&batch, &batch, text, 0.0);
            let value = f64::from(loss.clone().into_scalar::<f32>());
            let mut grads = loss.backward();
            let rec_grads = GradientsParams::from_module(&mut grads, &model);
            let text_grads = GradientsParams::from_module(&mut grads, &top);
            model = rec_optim.step(config.rec_lr, model, rec_grads);
            top = text_optim.step(config.text_lr, top, text_grads);
            loss_sum += value;
            batches += 1;
            observer.batch(value);
        }
        let (ndcg, text) = validate(&model.valid(), &top);
        let entry = EpochLog {
            epoch,
            phase: "text".into(),
            loss: loss_sum / batches.max(1) as f64,
            valid_ndcg10: ndcg,
            seconds: start.elapsed().as_secs_f64(),
            ..EpochLog::default()
        };
        observer.epoch_end(&entry);
        log.push(entry);
        if ndcg > best.0 {
            best = (ndcg, model.valid(), top.valid(), text);
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= config.patience {
                break;
            }
        }
    }
    let (_, model, top, text) = best;
    Ok(TextTuned {
        model,
        top,
        text,
        log,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::synthetic_dataset;
    use crate::fixtures::tiny_bert_files;
    use crate::jobs::Silent;
    use crate::rec::{ItemMode, ItemTowerConfig, RecommenderConfig, SequenceEncoderConfig};

    /// Tuning moves the top text layer (not the frozen ones), logs the start and every epoch,
    /// and the vectors it returns are exactly what the whole encoder with the tuned layer
    /// computes — so the written bundle embeds the catalog as the tuned model saw it.
    #[test]
    fn tuned_top_layers_equal_the_rebuilt_encoder() {
        let _seeded = crate::fixtures::SEEDED
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let ds = synthetic_dataset(60, 24, 6, 10, 4);
        let split = Split::leave_one_out(&ds, 8);
        let texts: Vec<String> = ds.items.iter().map(|i| i.text.clone()).collect();
        let base = Device::flex();
        let device = base.clone().autodiff();
        let embedder = TextEmbedder::from_files(&tiny_bert_files(2), &base).unwrap();
        let (bottom, top) = split_encoder(&embedder, &texts, 1, &device).unwrap();
        assert!(split_encoder(&embedder, &texts, 3, &device).is_err());
        let config = RecommenderConfig {
            items: ItemTowerConfig {
                text_dim: 16,
                hidden: 16,
                experts: 2,
                dropout: 0.0,
                mode: ItemMode::Inductive,
                num_items: ds.items.len(),
                id_dropout: 0.0,
            },
            sequence: SequenceEncoderConfig {
                hidden: 16,
                layers: 1,
                heads: 2,
                inner: 16,
                dropout: 0.1,
                max_len: 8,
            },
            temperature: 0.1,
            signals: Default::default(),
            new_items: Default::default(),
        };
        let model = Recommender::init(&config, &device);
        let before = top.valid().encode_all(&FrozenBottom {
            states: bottom.states.clone().inner(),
            mask: bottom.mask.clone().inner(),
        });
        let tuned = tune_text(
            model,
            top,
            &bottom,
            &split,
            &TextTuneConfig {
                epochs: 2,
                patience: 5,
                text_lr: 1e-2,
                rec_lr: 1e-3,
                batch_size: 16,
                max_len: 8,
                seed: 1,
            },
            &mut Silent,
        )
        .unwrap();
        assert_eq!(tuned.log.len(), 3);
        assert!(tuned.log[1..].iter().all(|e| e.loss.is_finite()));

        let rebuilt = TextEmbedder::new(
            embedder.config.clone(),
            embedder.tokenizer.clone(),
            with_top(&embedder.encoder, &tuned.top),
            embedder.normalize,
            base.clone(),
        );
        let want = rebuilt.embed(&texts).unwrap();
        let got = tuned.text.into_data().try_to_vec::<f32>().unwrap();
        let diff = want
            .iter()
            .flatten()
            .zip(&got)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            diff < 1e-4,
            "tuned vectors differ from the rebuilt encoder's by {diff}"
        );
        if tuned
            .log
            .iter()
            .skip(1)
            .any(|e| e.valid_ndcg10 > tuned.log[0].valid_ndcg10)
        {
            let old = before.into_data().try_to_vec::<f32>().unwrap();
            let moved = old
                .iter()
                .zip(&got)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                moved > 1e-4,
                "a better epoch was kept, so the text layer moved"
            );
        }
        // The frozen layers are the original ones.
        let original = embedder.embed(&texts[..1]).unwrap();
        let untouched = TextEmbedder::new(
            embedder.config.clone(),
            embedder.tokenizer.clone(),
            with_top(
                &embedder.encoder,
                &TextTop {
                    layers: embedder.encoder.layers[1..].to_vec(),
                    normalize: true,
                },
            ),
            true,
            base,
        )
        .embed(&texts[..1])
        .unwrap();
        assert_eq!(original, untouched);
    }
}
