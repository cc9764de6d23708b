//! Texts in, sentence vectors out: tokenizer + encoder + pooling, batched.

use burn::prelude::*;

use crate::error::{Error, Result};
use crate::text::config::BertConfig;
use crate::text::encoder::BertEncoder;
use crate::text::files::EncoderFiles;
use crate::text::pooling::{l2_normalize, masked_mean};
use crate::text::tokenizer::{TextTokenizer, TokenBatch};
use crate::text::weights::load_encoder;

/// A ready-to-run sentence encoder on one device.
#[derive(Debug)]
pub struct TextEmbedder {
    pub config: BertConfig,
    pub tokenizer: TextTokenizer,
    pub encoder: BertEncoder,
    pub normalize: bool,
    device: Device,
}

impl TextEmbedder {
    /// Parses and cross-checks the files (tokenizer ids must fit the embedding matrix, tensors
    /// must have the config's shapes) and builds the encoder on `device`.
    pub fn from_files(files: &EncoderFiles, device: &Device) -> Result<Self> {
        let config_text = std::str::from_utf8(&files.config.1)
            .map_err(|_| Error::bad_file(&files.config.0, "not UTF-8 text"))?;
        let config = BertConfig::from_json(config_text, &files.config.0)?;
        if files.max_seq_length > config.max_position_embeddings {
            return Err(Error::bad_file(
                &files.config.0,
                format!(
                    "max_position_embeddings {} is below the bundle's max_seq_length {}",
                    config.max_position_embeddings, files.max_seq_length
                ),
            ));
        }
        let tokenizer = TextTokenizer::from_bytes(
            &files.tokenizer.1,
            files.max_seq_length,
            &files.tokenizer.0,
        )?;
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(Error::bad_file(
                &files.tokenizer.0,
                format!(
                    "{} word-pieces, but {} says vocab_size {} (tokenizer and model do not match)",
                    tokenizer.vocab_size(),
                    files.config.0,
                    config.vocab_size
                ),
            ));
        }
        let encoder = load_encoder(&files.weights.1, &config, device, &files.weights.0)?;
        Ok(Self::new(
            config,
            tokenizer,
            encoder,
            files.normalize,
            device.clone(),
        ))
    }

    /// Wraps already-built parts (tests, distillation).
    pub fn new(
        config: BertConfig,
        tokenizer: TextTokenizer,
        encoder: BertEncoder,
        normalize: bool,
        device: Device,
    ) -> Self {
        Self {
            config,
            tokenizer,
            encoder,
            normalize,
            device,
        }
    }

    /// Width of the output vectors.
    pub fn dim(&self) -> usize {
        self.config.hidden_size
    }

    /// The device the encoder runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Pooled (and, per the bundle, normalised) vectors `[batch, dim]` of a token batch, still
    /// on the device.
    pub fn forward(&self, batch: &TokenBatch) -> Tensor<2> {
        let ids = Tensor::<2, Int>::from_data(
            TensorData::new(batch.ids.clone(), [batch.batch, batch.seq_len]),
            &self.device,
        );
        let mask = Tensor::<2>::from_data(
            TensorData::new(batch.mask.clone(), [batch.batch, batch.seq_len]),
            &self.device,
        );
        let hidden = self.encoder.forward(ids, mask.clone());
        let pooled = masked_mean(hidden, mask);
        if self.normalize {
            l2_normalize(pooled)
        } else {
            pooled
        }
    }

    /// Seconds to embed `texts` in batches of `batch`, after one warm-up batch (kernels,
    /// caches): what the benchmarks time.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn seconds_to_embed(&self, texts: &[String], batch: usize) -> Result<f64> {
        self.embed(&texts[..batch.max(1).min(texts.len())])?;
        let start = std::time::Instant::now();
        for chunk in texts.chunks(batch.max(1)) {
            self.embed(chunk)?;
        }
        Ok(start.elapsed().as_secs_f64())
    }

    /// Embeds `texts` in one batch (native: blocking readback).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let batch = self.tokenizer.encode_batch(texts)?;
        let data = self.forward(&batch).into_data();
        self.rows(data)
    }

    /// Embeds any number of `texts` in batches of `batch` (native: blocking readback).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn embed_batched<S: AsRef<str>>(&self, texts: &[S], batch: usize) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(batch.max(1)) {
            out.extend(self.embed(chunk)?);
        }
        Ok(out)
    }

    /// Embeds `texts` in one batch with an asynchronous readback (required on WebGPU).
    pub async fn embed_async<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let batch = self.tokenizer.encode_batch(texts)?;
        let data = self
            .forward(&batch)
            .into_data_async()
            .await
            .map_err(|e| Error::Backend(format!("{e:?}")))?;
        self.rows(data)
    }

    fn rows(&self, data: TensorData) -> Result<Vec<Vec<f32>>> {
        let flat = data
            .try_into_vec::<f32>()
            .map_err(|e| Error::Backend(format!("{e:?}")))?;
        Ok(flat.chunks(self.dim()).map(<[f32]>::to_vec).collect())
    }
}
