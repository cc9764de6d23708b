//! Small, deterministic models for tests (native, CI and browser): a tiny random BERT with a
//! tiny word-piece vocabulary, produced as real files and loaded through the real loaders.
//! The weights come from a seeded PRNG in plain Rust, so every backend gets identical bytes.

use std::collections::BTreeMap;

use safetensors::Dtype;
use safetensors::tensor::TensorView;
use serde_json::json;

use crate::rng::SplitMix;
use crate::text::EncoderFiles;
use crate::text::config::BertConfig;
use crate::text::weights::names;

/// Words of the tiny vocabulary (after the five special tokens and the letters).
const WORDS: &[&str] = &[
    "red", "blue", "green", "shoe", "shoes", "shirt", "coffee", "tea", "mug", "lamp", "desk",
    "chair", "usb", "charger", "cable", "phone", "case", "black", "white", "wireless",
];
const SUFFIXES: &[&str] = &["##s", "##ing", "##er", "##ed", "##y"];

/// The config of the tiny test BERT: 2 layers, width 16, 2 heads, FFN 32.
pub fn tiny_config() -> BertConfig {
    let mut config = BertConfig::new(tiny_vocab().len(), 16, 2, 2, 32);
    config.max_position_embeddings = 64;
    config
}

/// The tiny vocabulary in id order: `[PAD] [UNK] [CLS] [SEP] [MASK]`, a–z, ##a–##z, words,
/// suffixes.
pub fn tiny_vocab() -> Vec<String> {
    let mut vocab: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    vocab.extend(('a'..='z').map(|c| c.to_string()));
    vocab.extend(('a'..='z').map(|c| format!("##{c}")));
    vocab.extend(WORDS.iter().map(|s| s.to_string()));
    vocab.extend(SUFFIXES.iter().map(|s| s.to_string()));
    vocab
}

/// A BERT `tokenizer.json` (lowercasing normaliser, BERT pre-tokeniser, WordPiece,
/// [CLS] … [SEP] template) for `vocab`, which must start with the five special tokens.
pub fn bert_tokenizer_json(vocab: &[String]) -> String {
    let ids: BTreeMap<&str, usize> = vocab
        .iter()
        .enumerate()
        .map(|(i, w)| (w.as_str(), i))
        .collect();
    let special = |name: &str| {
        json!({"id": ids[name], "content": name, "single_word": false, "lstrip": false,
               "rstrip": false, "normalized": false, "special": true})
    };
    let added: Vec<_> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .map(special)
        .into();
    let cls = ids["[CLS]"];
    let sep = ids["[SEP]"];
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [cls], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [sep], "tokens": ["[SEP]"]}
            }
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": ids}
    })
    .to_string()
}

/// HF-named tensors `(name, shape, values)` of a random BERT of `config`'s shape.
pub fn random_bert_tensors(config: &BertConfig, seed: u64) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut rng = SplitMix(seed);
    let h = config.hidden_size;
    let a = config.all_heads_size();
    let f = config.intermediate_size;
    let mut out = Vec::new();
    let mut push = |name: String, shape: Vec<usize>, center: f32, spread: f32| {
        let n = shape.iter().product();
        out.push((name, shape, rng.uniform(n, center, spread)));
    };
    push(names::WORD.into(), vec![config.vocab_size, h], 0.0, 0.5);
    push(
        names::POSITION.into(),
        vec![config.max_position_embeddings, h],
        0.0,
        0.2,
    );
    push(
        names::TOKEN_TYPE.into(),
        vec![config.type_vocab_size, h],
        0.0,
        0.2,
    );
    push(format!("{}.weight", names::EMB_NORM), vec![h], 1.0, 0.1);
    push(format!("{}.bias", names::EMB_NORM), vec![h], 0.0, 0.1);
    for i in 0..config.num_hidden_layers {
        let p = names::layer(i);
        for (name, d_in, d_out) in [
            (names::QUERY, h, a),
            (names::KEY, h, a),
            (names::VALUE, h, a),
            (names::ATT_OUT, a, h),
            (names::INTERMEDIATE, h, f),
            (names::OUTPUT, f, h),
        ] {
            let spread = 1.0 / (d_in as f32).sqrt();
            push(format!("{p}{name}.weight"), vec![d_out, d_in], 0.0, spread);
            push(format!("{p}{name}.bias"), vec![d_out], 0.0, 0.05);
        }
        for name in [names::ATT_NORM, names::OUT_NORM] {
            push(format!("{p}{name}.weight"), vec![h], 1.0, 0.1);
            push(format!("{p}{name}.bias"), vec![h], 0.0, 0.1);
        }
    }
    out
}

/// Serialises f32 tensors to safetensors bytes.
pub fn to_safetensors(tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), data)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), data).expect("consistent shape");
            (name.clone(), view)
        })
        .collect::<Vec<_>>();
    safetensors::serialize(views, None).expect("serialisable tensors")
}

/// The files of the tiny random BERT for `seed`, as a bundle would hold them.
pub fn tiny_bert_files(seed: u64) -> EncoderFiles {
    let config = tiny_config();
    EncoderFiles {
        name: format!("tiny-random-bert-{seed}"),
        config: (
            "config.json".into(),
            serde_json::to_vec(&config).expect("config serialises"),
        ),
        tokenizer: (
            "tokenizer.json".into(),
            bert_tokenizer_json(&tiny_vocab()).into_bytes(),
        ),
        weights: (
            "model.safetensors".into(),
            to_safetensors(&random_bert_tensors(&config, seed)),
        ),
        max_seq_length: 32,
        normalize: true,
    }
}

/// Tests that seed the shared CPU device and compare what it draws hold this lock, so no other
/// test draws in between.
#[cfg(feature = "native")]
pub static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The shared CPU device seeded with `seed`, for a test that draws from its generator: the guard
/// holds the lock that seeded comparisons take ([`SEEDED`]), so no other test draws
/// in between. Keep it alive for the whole test.
pub fn seeded_cpu(
    seed: u64,
) -> (
    Option<std::sync::MutexGuard<'static, ()>>,
    burn::prelude::Device,
) {
    #[cfg(feature = "native")]
    let guard = Some(SEEDED.lock().unwrap_or_else(|e| e.into_inner()));
    #[cfg(not(feature = "native"))]
    let guard = None;
    let device = burn::prelude::Device::flex();
    device.seed(seed);
    (guard, device)
}

/// A small recommender config over 12-wide text vectors (1 layer, 2 heads, 2 experts,
/// τ 0.1), for the tests of training, ranking and indexing.
pub fn small_config(
    mode: crate::rec::ItemMode,
    num_items: usize,
    hidden: usize,
    inner: usize,
    dropout: (f64, f64),
    max_len: usize,
) -> crate::rec::RecommenderConfig {
    crate::rec::RecommenderConfig {
        items: crate::rec::ItemTowerConfig {
            text_dim: 12,
            hidden,
            experts: 2,
            dropout: dropout.0,
            mode,
            num_items,
            id_dropout: 0.0,
        },
        sequence: crate::rec::SequenceEncoderConfig {
            hidden,
            layers: 1,
            heads: 2,
            inner,
            dropout: dropout.1,
            max_len,
        },
        temperature: 0.1,
        signals: Default::default(),
        new_items: Default::default(),
    }
}
