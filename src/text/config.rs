//! The Hugging Face BERT `config.json`, as the encoder reads it.
//!
//! Teacher (all-MiniLM-L6-v2) and distilled students are the same code with different configs,
//! and a student's `config.json` stays loadable by Python `transformers` as a `BertModel`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A BERT-family encoder's shape and numerics, deserialised from HF `config.json`.
///
/// Unknown fields (`architectures`, `transformers_version`, …) are ignored on read and are not
/// written back; every field here keeps its HF name so the file round-trips through
/// `transformers.BertConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    /// Word-piece vocabulary size (rows of the word-embedding matrix). MiniLM: 30 522.
    pub vocab_size: usize,
    /// Width of every hidden state. MiniLM-L6: 384.
    pub hidden_size: usize,
    /// Number of Transformer layers. MiniLM-L6: 6.
    pub num_hidden_layers: usize,
    /// Attention heads per layer; must divide `hidden_size` unless `attention_head_size` says
    /// otherwise. MiniLM-L6: 12.
    pub num_attention_heads: usize,
    /// Width of the feed-forward inner layer. MiniLM-L6: 1 536.
    pub intermediate_size: usize,
    /// Learned absolute positions. Default 512.
    #[serde(default = "default_max_position_embeddings")]
    pub max_position_embeddings: usize,
    /// Token-type (segment) vocabulary size. Default 2.
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon. Default 1e-12 (BERT's; not burn's 1e-5: the difference is visible in
    /// parity tests).
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    /// Feed-forward activation. Only `"gelu"` (the exact, erf-based GELU) is supported.
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    /// Id of the padding token. Default 0.
    #[serde(default)]
    pub pad_token_id: usize,
    /// Dropout on embeddings and residual branches while training. Default 0.1.
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities while training. Default 0.1.
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    /// Only `"absolute"` is supported. Default `"absolute"`.
    #[serde(default = "default_position_embedding_type")]
    pub position_embedding_type: String,
    /// Always `"bert"`. Default `"bert"`.
    #[serde(default = "default_model_type")]
    pub model_type: String,
    /// Per-head width when heads were pruned so that `heads × head size ≠ hidden_size`
    /// (a HomoDistil student). `None` (default): `hidden_size / num_attention_heads`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_head_size: Option<usize>,
    /// Heads removed from each layer (`{"0": [1, 5], …}`), as HF `BertConfig.pruned_heads`:
    /// `transformers` prunes them at construction, so a pruned student's tensors load as a
    /// `BertModel`. Head width stays `hidden_size / num_attention_heads`. Default: none.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub pruned_heads: std::collections::BTreeMap<String, Vec<usize>>,
}

fn default_max_position_embeddings() -> usize {
    512
}
fn default_type_vocab_size() -> usize {
    2
}
fn default_layer_norm_eps() -> f64 {
    1e-12
}
fn default_hidden_act() -> String {
    "gelu".into()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_position_embedding_type() -> String {
    "absolute".into()
}
fn default_model_type() -> String {
    "bert".into()
}

impl BertConfig {
    /// A config with BERT's defaults for everything but the shape.
    pub fn new(
        vocab_size: usize,
        hidden_size: usize,
        num_hidden_layers: usize,
        num_attention_heads: usize,
        intermediate_size: usize,
    ) -> Self {
        Self {
            vocab_size,
            hidden_size,
            num_hidden_layers,
            num_attention_heads,
            intermediate_size,
            max_position_embeddings: default_max_position_embeddings(),
            type_vocab_size: default_type_vocab_size(),
            layer_norm_eps: default_layer_norm_eps(),
            hidden_act: default_hidden_act(),
            pad_token_id: 0,
            hidden_dropout_prob: default_dropout(),
            attention_probs_dropout_prob: default_dropout(),
            position_embedding_type: default_position_embedding_type(),
            model_type: default_model_type(),
            attention_head_size: None,
            pruned_heads: Default::default(),
        }
    }

    /// Parses `config.json` text; `origin` names the file in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Self> {
        let config: Self = serde_json::from_str(text).map_err(|e| Error::BadModelFile {
            file: origin.into(),
            reason: format!("not a BERT config.json: {e}"),
        })?;
        config.validate().map_err(|reason| Error::BadModelFile {
            file: origin.into(),
            reason,
        })?;
        Ok(config)
    }

    /// Width of one attention head.
    pub fn head_size(&self) -> usize {
        self.attention_head_size
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Total width of all heads (the attention projections' output width) before pruning.
    pub fn all_heads_size(&self) -> usize {
        self.head_size() * self.num_attention_heads
    }

    /// Heads left in layer `layer` after `pruned_heads`.
    pub fn heads_in_layer(&self, layer: usize) -> usize {
        let pruned = self
            .pruned_heads
            .get(&layer.to_string())
            .map_or(0, Vec::len);
        self.num_attention_heads - pruned
    }

    /// Checks what the encoder relies on; returns a sentence saying what is wrong.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.model_type != "bert" {
            return Err(format!(
                "model_type is {:?}, only \"bert\" is supported",
                self.model_type
            ));
        }
        if self.hidden_act != "gelu" {
            return Err(format!(
                "hidden_act is {:?}, only \"gelu\" is supported",
                self.hidden_act
            ));
        }
        if self.position_embedding_type != "absolute" {
            return Err(format!(
                "position_embedding_type is {:?}, only \"absolute\" is supported",
                self.position_embedding_type
            ));
        }
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            if v == 0 {
                return Err(format!("{name} is 0"));
            }
        }
        if self.attention_head_size.is_none()
            && !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        for (layer, heads) in &self.pruned_heads {
            let mut seen = std::collections::BTreeSet::new();
            if layer.parse::<usize>().is_err() {
                return Err(format!("pruned_heads has a non-numeric layer {layer:?}"));
            }
            for &h in heads {
                if h >= self.num_attention_heads || !seen.insert(h) {
                    return Err(format!(
                        "pruned_heads[{layer}] lists head {h} twice or out of range"
                    ));
                }
            }
            if seen.len() >= self.num_attention_heads {
                return Err(format!("pruned_heads[{layer}] removes every head"));
            }
        }
        if self.layer_norm_eps.is_nan() || self.layer_norm_eps <= 0.0 {
            return Err(format!(
                "layer_norm_eps is {}, must be > 0",
                self.layer_norm_eps
            ));
        }
        Ok(())
    }

    /// Number of parameters of the encoder these dimensions describe (no pooler).
    pub fn num_params(&self) -> usize {
        let h = self.hidden_size;
        let f = self.intermediate_size;
        let embeddings =
            (self.vocab_size + self.max_position_embeddings + self.type_vocab_size) * h + 2 * h;
        let layer =
            |a: usize| 3 * (h * a + a) + (a * h + h) + 2 * h + (h * f + f) + (f * h + h) + 2 * h;
        embeddings
            + (0..self.num_hidden_layers)
                .map(|l| layer(self.heads_in_layer(l) * self.head_size()))
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINILM: &str = r#"{"_name_or_path":"nreimers/MiniLM-L6-H384-uncased","architectures":["BertModel"],
      "attention_probs_dropout_prob":0.1,"gradient_checkpointing":false,"hidden_act":"gelu",
      "hidden_dropout_prob":0.1,"hidden_size":384,"initializer_range":0.02,"intermediate_size":1536,
      "layer_norm_eps":1e-12,"max_position_embeddings":512,"model_type":"bert","num_attention_heads":12,
      "num_hidden_layers":6,"pad_token_id":0,"position_embedding_type":"absolute",
      "transformers_version":"4.8.2","type_vocab_size":2,"use_cache":true,"vocab_size":30522}"#;

    #[test]
    fn reads_minilm_config() {
        let c = BertConfig::from_json(MINILM, "config.json").unwrap();
        assert_eq!(c.hidden_size, 384);
        assert_eq!(c.head_size(), 32);
        assert_eq!(c.layer_norm_eps, 1e-12);
        // all-MiniLM-L6-v2: 22 713 216 parameters with the (unused) pooler's 147 840.
        assert_eq!(c.num_params(), 22_713_216 - 147_840);
    }

    #[test]
    fn rejects_unsupported_activation_and_names_the_file() {
        let text = MINILM.replace(r#""hidden_act":"gelu""#, r#""hidden_act":"relu""#);
        let err = BertConfig::from_json(&text, "models/x/config.json").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("models/x/config.json") && msg.contains("relu"),
            "{msg}"
        );
    }

    #[test]
    fn rejects_malformed_json() {
        let err = BertConfig::from_json("{\"hidden_size\": 3", "config.json").unwrap_err();
        assert!(err.to_string().contains("config.json"));
    }
}
