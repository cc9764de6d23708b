//! Loading an encoder from HF `model.safetensors` bytes. The mapping between HF `BertModel`
//! tensor names and the fields of [`BertEncoder`] lives here and nowhere else.
//!
//! HF stores `nn.Linear` weights as `[out, in]`; burn's [`Linear`] holds `[in, out]`, so linear
//! weights are transposed once while loading. Tensors may be stored as f32, f16 or bf16 and are
//! computed in f32. A `bert.` prefix (checkpoints saved from `BertFor…` heads) is accepted.

use burn::module::Param;
use burn::nn::{DropoutConfig, Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::prelude::*;
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::text::config::BertConfig;
use crate::text::encoder::{BertAttention, BertEmbeddings, BertEncoder, BertLayer};

/// Names of the tensors of one layer, relative to `encoder.layer.{i}.`.
pub mod names {
    pub const WORD: &str = "embeddings.word_embeddings.weight";
    pub const POSITION: &str = "embeddings.position_embeddings.weight";
    pub const TOKEN_TYPE: &str = "embeddings.token_type_embeddings.weight";
    pub const EMB_NORM: &str = "embeddings.LayerNorm";
    pub const QUERY: &str = "attention.self.query";
    pub const KEY: &str = "attention.self.key";
    pub const VALUE: &str = "attention.self.value";
    pub const ATT_OUT: &str = "attention.output.dense";
    pub const ATT_NORM: &str = "attention.output.LayerNorm";
    pub const INTERMEDIATE: &str = "intermediate.dense";
    pub const OUTPUT: &str = "output.dense";
    pub const OUT_NORM: &str = "output.LayerNorm";

    /// Prefix of layer `i`'s tensors.
    pub fn layer(i: usize) -> String {
        format!("encoder.layer.{i}.")
    }
}

/// Reads tensors by HF name out of a safetensors buffer, checking shapes, converting to f32.
struct TensorSource<'a> {
    file: SafeTensors<'a>,
    prefix: &'static str,
    origin: &'a str,
    device: &'a Device,
    /// Full names of the tensors read so far (an int8 tensor's scale included).
    used: std::cell::RefCell<std::collections::HashSet<String>>,
}

/// Why a safetensors file that does not parse is cut short, if it is: its header, or the tensor
/// data its header describes, runs past the end of the file (an interrupted download or copy).
fn truncation(bytes: &[u8]) -> Option<String> {
    let len = bytes.len() as u64;
    let header = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    if 8 + header > len {
        return Some(format!(
            "truncated: the file has {len} bytes, its header alone claims {header}"
        ));
    }
    let meta: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header as usize]).ok()?;
    let end = meta
        .as_object()?
        .values()
        .filter_map(|t| t.get("data_offsets")?.get(1)?.as_u64())
        .max()?;
    (8 + header + end > len).then(|| {
        format!(
            "truncated: its tensors need {} bytes, the file has {len}",
            8 + header + end
        )
    })
}

/// Tensors of HF BERT checkpoints that the sentence encoder does not compute with: the
/// pooler (mean pooling is used instead), the position-id buffer, and task heads.
fn unused_by_design(name: &str) -> bool {
    let name = name.strip_prefix("bert.").unwrap_or(name);
    name.starts_with("pooler.")
        || name == "embeddings.position_ids"
        || name.starts_with("cls.")
        || name.starts_with("classifier.")
        || name.starts_with("qa_outputs.")
}

impl<'a> TensorSource<'a> {
    fn new(bytes: &'a [u8], origin: &'a str, device: &'a Device) -> Result<Self> {
        let file = SafeTensors::deserialize(bytes).map_err(|e| {
            Error::bad_file(
                origin,
                truncation(bytes).unwrap_or_else(|| format!("not a safetensors file: {e}")),
            )
        })?;
        let prefix = if file
            .names()
            .iter()
            .any(|n| n.starts_with("bert.embeddings."))
        {
            "bert."
        } else {
            ""
        };
        Ok(Self {
            file,
            prefix,
            origin,
            device,
            used: Default::default(),
        })
    }

    /// Refuses a file holding tensors the config did not read (e.g. a config with fewer layers
    /// than the weights): loading it would silently compute another model.
    fn check_all_used(&self, config: &BertConfig) -> Result<()> {
        let used = self.used.borrow();
        let mut extra: Vec<&str> = self
            .file
            .names()
            .into_iter()
            .filter(|n| !used.contains(*n) && !unused_by_design(n))
            .collect();
        if extra.is_empty() {
            return Ok(());
        }
        extra.sort_unstable();
        // A whole layer is named once ("encoder.layer.1.*").
        let mut groups: Vec<String> = extra
            .iter()
            .map(|n| match n.find("layer.").map(|i| i + "layer.".len()) {
                Some(i) => match n[i..].find('.') {
                    Some(j) => format!("{}*", &n[..i + j + 1]),
                    None => n.to_string(),
                },
                None => n.to_string(),
            })
            .collect();
        groups.dedup();
        let shown = groups
            .iter()
            .take(6)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        let more = if groups.len() > 6 {
            format!(" and {} more", groups.len() - 6)
        } else {
            String::new()
        };
        Err(Error::bad_file(
            self.origin,
            format!(
                "{} tensors are not used by config.json ({} layers, hidden {}): {shown}{more}; \
                 the config and the weights describe different models",
                extra.len(),
                config.num_hidden_layers,
                config.hidden_size
            ),
        ))
    }

    /// The tensor `name` as f32 values, after checking it has `shape`.
    fn values(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let full = format!("{}{name}", self.prefix);
        self.used.borrow_mut().insert(full.clone());
        let view = self.file.tensor(&full).map_err(|_| {
            Error::bad_file(
                self.origin,
                format!("tensor {full} is missing (is this a BERT model of this config?)"),
            )
        })?;
        if view.shape() != shape {
            return Err(Error::bad_file(
                self.origin,
                format!(
                    "tensor {full} has shape {:?}, config.json implies {:?}",
                    view.shape(),
                    shape
                ),
            ));
        }
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            // int8 with one f32 scale per row (per output channel; per token for embeddings),
            // stored beside it as `{name}_scale`.
            Dtype::I8 => {
                let rows = shape.first().copied().unwrap_or(1);
                let cols = shape.iter().skip(1).product::<usize>().max(1);
                let scale_name = format!("{full}{INT8_SCALE_SUFFIX}");
                self.used.borrow_mut().insert(scale_name.clone());
                let scale = self.file.tensor(&scale_name).map_err(|_| {
                    Error::bad_file(
                        self.origin,
                        format!("int8 tensor {full} has no {scale_name}"),
                    )
                })?;
                if scale.dtype() != Dtype::F32 || scale.shape() != [rows] {
                    return Err(Error::bad_file(
                        self.origin,
                        format!("{scale_name} must be f32 of shape [{rows}]"),
                    ));
                }
                let scales: Vec<f32> = scale
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                data.iter()
                    .enumerate()
                    .map(|(k, &q)| f32::from(q as i8) * scales[k / cols])
                    .collect()
            }
            other => {
                return Err(Error::bad_file(
                    self.origin,
                    format!(
                        "tensor {full} has dtype {other:?}; f32, f16, bf16 and int8 are supported"
                    ),
                ));
            }
        };
        if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::bad_file(
                self.origin,
                format!("tensor {full} holds a non-finite value at index {bad}"),
            ));
        }
        Ok(values)
    }

    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Param<Tensor<2>>> {
        let values = self.values(name, &[rows, cols])?;
        Ok(Param::from_tensor(Tensor::from_data(
            TensorData::new(values, [rows, cols]),
            self.device,
        )))
    }

    fn vector(&self, name: &str, len: usize) -> Result<Param<Tensor<1>>> {
        let values = self.values(name, &[len])?;
        Ok(Param::from_tensor(Tensor::from_data(
            TensorData::new(values, [len]),
            self.device,
        )))
    }

    fn embedding(&self, name: &str, rows: usize, cols: usize) -> Result<Embedding> {
        Ok(Embedding {
            weight: self.matrix(name, rows, cols)?,
        })
    }

    /// An HF `nn.Linear` named `{name}.weight` `[out, in]` and `{name}.bias` `[out]`.
    fn linear(&self, name: &str, d_in: usize, d_out: usize) -> Result<Linear> {
        let hf = self.values(&format!("{name}.weight"), &[d_out, d_in])?;
        let mut weight = vec![0.0; d_in * d_out];
        for o in 0..d_out {
            for i in 0..d_in {
                weight[i * d_out + o] = hf[o * d_in + i];
            }
        }
        Ok(Linear {
            weight: Param::from_tensor(Tensor::from_data(
                TensorData::new(weight, [d_in, d_out]),
                self.device,
            )),
            bias: Some(self.vector(&format!("{name}.bias"), d_out)?),
        })
    }

    /// An HF `nn.LayerNorm` named `{name}.weight` / `{name}.bias`.
    fn layer_norm(&self, name: &str, width: usize, eps: f64) -> Result<LayerNorm> {
        let mut norm = LayerNormConfig::new(width)
            .with_epsilon(eps)
            .init(self.device);
        norm.gamma = self.vector(&format!("{name}.weight"), width)?;
        norm.beta = Some(self.vector(&format!("{name}.bias"), width)?);
        Ok(norm)
    }
}

/// Builds a [`BertEncoder`] of `config`'s shape from HF `BertModel` safetensors bytes.
/// `origin` names the file in errors (which tensor is missing, has the wrong shape or dtype).
pub fn load_encoder(
    bytes: &[u8],
    config: &BertConfig,
    device: &Device,
    origin: &str,
) -> Result<BertEncoder> {
    let src = TensorSource::new(bytes, origin, device)?;
    let h = config.hidden_size;
    let f = config.intermediate_size;
    let eps = config.layer_norm_eps;
    let embeddings = BertEmbeddings {
        word_embeddings: src.embedding(names::WORD, config.vocab_size, h)?,
        position_embeddings: src.embedding(names::POSITION, config.max_position_embeddings, h)?,
        token_type_embeddings: src.embedding(names::TOKEN_TYPE, config.type_vocab_size, h)?,
        layer_norm: src.layer_norm(names::EMB_NORM, h, eps)?,
        dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
    };
    let layers = (0..config.num_hidden_layers)
        .map(|i| {
            let p = names::layer(i);
            let a = config.heads_in_layer(i) * config.head_size();
            Ok(BertLayer {
                attention: BertAttention {
                    query: src.linear(&format!("{p}{}", names::QUERY), h, a)?,
                    key: src.linear(&format!("{p}{}", names::KEY), h, a)?,
                    value: src.linear(&format!("{p}{}", names::VALUE), h, a)?,
                    output: src.linear(&format!("{p}{}", names::ATT_OUT), a, h)?,
                    layer_norm: src.layer_norm(&format!("{p}{}", names::ATT_NORM), h, eps)?,
                    dropout: DropoutConfig::new(config.attention_probs_dropout_prob).init(),
                    num_heads: config.heads_in_layer(i),
                    head_size: config.head_size(),
                },
                intermediate: src.linear(&format!("{p}{}", names::INTERMEDIATE), h, f)?,
                output: src.linear(&format!("{p}{}", names::OUTPUT), f, h)?,
                layer_norm: src.layer_norm(&format!("{p}{}", names::OUT_NORM), h, eps)?,
                dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    src.check_all_used(config)?;
    Ok(BertEncoder { embeddings, layers })
}

/// Suffix of the per-row scale tensor of an int8 tensor.
pub const INT8_SCALE_SUFFIX: &str = "_scale";

/// Element type of a written encoder file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoredDtype {
    F32,
    F16,
    /// Matrices as int8 with an f32 scale per row (symmetric, absmax / 127); vectors (biases,
    /// LayerNorm) as f32. Computed in f32 after loading.
    Int8,
}

/// Collects an encoder's tensors under their HF names (linear weights back to `[out, in]`).
struct TensorSink {
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl TensorSink {
    fn values<const D: usize>(t: &Tensor<D>) -> Vec<f32> {
        t.to_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32 after convert")
    }

    fn push<const D: usize>(&mut self, name: String, t: &Tensor<D>) {
        self.tensors
            .push((name, t.dims().to_vec(), Self::values(t)));
    }

    fn linear(&mut self, name: &str, l: &Linear) {
        let [d_in, d_out] = l.weight.dims();
        let w = Self::values(&l.weight.val());
        let mut hf = vec![0.0; d_in * d_out];
        for i in 0..d_in {
            for o in 0..d_out {
                hf[o * d_in + i] = w[i * d_out + o];
            }
        }
        self.tensors
            .push((format!("{name}.weight"), vec![d_out, d_in], hf));
        if let Some(b) = &l.bias {
            self.push(format!("{name}.bias"), &b.val());
        }
    }

    fn layer_norm(&mut self, name: &str, n: &LayerNorm) {
        self.push(format!("{name}.weight"), &n.gamma.val());
        if let Some(b) = &n.beta {
            self.push(format!("{name}.bias"), &b.val());
        }
    }
}

/// Serialises `encoder` as HF `BertModel` safetensors (the names [`load_encoder`] reads, the
/// layout Python `transformers` loads), in `dtype`.
pub fn save_encoder(encoder: &BertEncoder, dtype: StoredDtype) -> Result<Vec<u8>> {
    let mut sink = TensorSink {
        tensors: Vec::new(),
    };
    let e = &encoder.embeddings;
    sink.push(names::WORD.into(), &e.word_embeddings.weight.val());
    sink.push(names::POSITION.into(), &e.position_embeddings.weight.val());
    sink.push(
        names::TOKEN_TYPE.into(),
        &e.token_type_embeddings.weight.val(),
    );
    sink.layer_norm(names::EMB_NORM, &e.layer_norm);
    for (i, layer) in encoder.layers.iter().enumerate() {
        let p = names::layer(i);
        let a = &layer.attention;
        sink.linear(&format!("{p}{}", names::QUERY), &a.query);
        sink.linear(&format!("{p}{}", names::KEY), &a.key);
        sink.linear(&format!("{p}{}", names::VALUE), &a.value);
        sink.linear(&format!("{p}{}", names::ATT_OUT), &a.output);
        sink.layer_norm(&format!("{p}{}", names::ATT_NORM), &a.layer_norm);
        sink.linear(&format!("{p}{}", names::INTERMEDIATE), &layer.intermediate);
        sink.linear(&format!("{p}{}", names::OUTPUT), &layer.output);
        sink.layer_norm(&format!("{p}{}", names::OUT_NORM), &layer.layer_norm);
    }
    let mut bytes: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, shape, v) in sink.tensors {
        match dtype {
            StoredDtype::F32 => {
                bytes.push((
                    name,
                    Dtype::F32,
                    shape,
                    v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                ));
            }
            StoredDtype::F16 => {
                let raw = v
                    .iter()
                    .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                    .collect();
                bytes.push((name, Dtype::F16, shape, raw));
            }
            StoredDtype::Int8 if shape.len() == 2 => {
                let cols = shape[1];
                let scales: Vec<f32> = v
                    .chunks(cols)
                    .map(|row| row.iter().fold(0f32, |m, x| m.max(x.abs())) / 127.0)
                    .collect();
                let q: Vec<u8> = v
                    .iter()
                    .enumerate()
                    .map(|(k, x)| {
                        let s = scales[k / cols];
                        let q = if s > 0.0 {
                            (x / s).round().clamp(-127.0, 127.0)
                        } else {
                            0.0
                        };
                        (q as i8) as u8
                    })
                    .collect();
                let scale_bytes = scales.iter().flat_map(|x| x.to_le_bytes()).collect();
                bytes.push((
                    format!("{name}{INT8_SCALE_SUFFIX}"),
                    Dtype::F32,
                    vec![shape[0]],
                    scale_bytes,
                ));
                bytes.push((name, Dtype::I8, shape, q));
            }
            StoredDtype::Int8 => {
                bytes.push((
                    name,
                    Dtype::F32,
                    shape,
                    v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                ));
            }
        }
    }
    let views = bytes
        .iter()
        .map(|(name, dt, shape, raw)| {
            safetensors::tensor::TensorView::new(*dt, shape.clone(), raw)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::Backend(format!("tensor {name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut metadata = std::collections::HashMap::new();
    metadata.insert("format".to_string(), "pt".to_string());
    safetensors::tensor::serialize(views, Some(metadata))
        .map_err(|e| Error::Backend(format!("writing safetensors: {e}")))
}
