//! Vocabulary pruning: a catalog-specific student keeps only the word-pieces its catalog's
//! texts use (plus the special tokens and a fallback set), which removes most of MiniLM's
//! 11.7 M embedding parameters.
//!
//! WordPiece matches greedily longest-first, so on a sub-vocabulary that contains every piece a
//! text used, the text tokenises to the same pieces: the pruned model gives the catalog's texts
//! exactly the vectors the unpruned one gives. Words outside the catalog fall back to single
//! characters (the fallback set), not to `[UNK]`.

use std::collections::BTreeSet;

use burn::module::Param;
use burn::nn::Embedding;
use burn::prelude::*;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::text::encoder::BertEncoder;
use crate::text::tokenizer::TextTokenizer;

/// A pruned vocabulary.
#[derive(Debug, Clone)]
pub struct PrunedVocab {
    /// The kept pieces' old ids, in new-id order (new id `i` was old id `kept[i]`).
    pub kept: Vec<u32>,
    /// The rewritten `tokenizer.json`.
    pub tokenizer_json: Vec<u8>,
}

/// Whether a piece is in the fallback set: one printable ASCII character, or its `##` form.
fn is_fallback(piece: &str) -> bool {
    let bare = piece.strip_prefix("##").unwrap_or(piece);
    let mut chars = bare.chars();
    matches!((chars.next(), chars.next()), (Some(c), None) if c.is_ascii_graphic())
}

/// Keeps the pieces that `texts` tokenise to, the special tokens and the fallback set, and
/// rewrites `tokenizer_json` (WordPiece vocabulary, added tokens, the post-processor's special
/// token ids, the padding id) for the new ids.
pub fn prune_vocab(tokenizer_json: &[u8], texts: &[String], origin: &str) -> Result<PrunedVocab> {
    let tokenizer = TextTokenizer::from_bytes(tokenizer_json, 512, origin)?;
    let mut doc: Value = serde_json::from_slice(tokenizer_json)
        .map_err(|e| Error::bad_file(origin, format!("not JSON: {e}")))?;
    let vocab = doc["model"]["vocab"]
        .as_object()
        .filter(|_| doc["model"]["type"] == "WordPiece")
        .ok_or_else(|| {
            Error::bad_file(
                origin,
                "vocabulary pruning needs a WordPiece tokenizer.json",
            )
        })?
        .clone();
    let mut keep = BTreeSet::new();
    for text in texts {
        for id in tokenizer.encode(text)? {
            keep.insert(id as u32);
        }
    }
    if let Some(added) = doc["added_tokens"].as_array() {
        keep.extend(
            added
                .iter()
                .filter_map(|t| t["id"].as_u64())
                .map(|i| i as u32),
        );
    }
    for (piece, id) in &vocab {
        if is_fallback(piece) {
            keep.insert(id.as_u64().unwrap_or_default() as u32);
        }
    }
    let kept: Vec<u32> = keep.into_iter().collect();
    let new_id =
        |old: u64| -> Option<u64> { kept.binary_search(&(old as u32)).ok().map(|i| i as u64) };
    let pruned: serde_json::Map<String, Value> = vocab
        .iter()
        .filter_map(|(piece, id)| new_id(id.as_u64()?).map(|n| (piece.clone(), Value::from(n))))
        .collect();
    doc["model"]["vocab"] = Value::Object(pruned);
    if let Some(added) = doc["added_tokens"].as_array_mut() {
        for t in added {
            let old = t["id"].as_u64().unwrap_or_default();
            t["id"] = Value::from(new_id(old).expect("special tokens are kept"));
        }
    }
    if let Some(specials) = doc["post_processor"]["special_tokens"].as_object_mut() {
        for s in specials.values_mut() {
            if let Some(ids) = s["ids"].as_array_mut() {
                for id in ids {
                    let old = id.as_u64().unwrap_or_default();
                    *id = Value::from(new_id(old).ok_or_else(|| {
                        Error::bad_file(
                            origin,
                            format!("special token id {old} is not in the vocabulary"),
                        )
                    })?);
                }
            }
        }
    }
    if let Some(pad) = doc["padding"]["pad_id"].as_u64() {
        doc["padding"]["pad_id"] = Value::from(new_id(pad).unwrap_or(0));
    }
    let tokenizer_json = serde_json::to_vec(&doc).expect("a JSON value serialises");
    // The contract: every text tokenises to the same pieces under the new ids.
    let check = TextTokenizer::from_bytes(&tokenizer_json, 512, "pruned tokenizer.json")?;
    for text in texts {
        let want: Vec<i64> = tokenizer
            .encode(text)?
            .into_iter()
            .map(|id| new_id(id as u64).expect("kept above") as i64)
            .collect();
        if check.encode(text)? != want {
            return Err(Error::Backend(format!(
                "vocabulary pruning changed the tokens of {text:?} (a bug)"
            )));
        }
    }
    Ok(PrunedVocab {
        kept,
        tokenizer_json,
    })
}

/// The encoder with its word-embedding rows re-indexed to the pruned vocabulary.
pub fn prune_embeddings(mut encoder: BertEncoder, kept: &[u32]) -> BertEncoder {
    let weight = encoder.embeddings.word_embeddings.weight.val();
    let device = weight.device();
    let idx = Tensor::<1, Int>::from_data(
        TensorData::new(
            kept.iter().map(|&i| i64::from(i)).collect::<Vec<_>>(),
            [kept.len()],
        ),
        &device,
    );
    encoder.embeddings.word_embeddings = Embedding {
        weight: Param::from_tensor(weight.select(0, idx)),
    };
    encoder
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::tiny_bert_files;
    use crate::text::TextEmbedder;

    /// The catalog's texts get exactly the unpruned model's vectors from a smaller vocabulary;
    /// an unseen word still tokenises (to fallback characters, not [UNK]).
    #[test]
    fn pruned_vocabulary_keeps_catalog_vectors_exactly() {
        let device = Device::flex();
        let files = tiny_bert_files(6);
        let full = TextEmbedder::from_files(&files, &device).unwrap();
        let texts: Vec<String> = ["Red shoes", "blue coffee mugs", "wireless charger"]
            .map(String::from)
            .into();
        let pruned = prune_vocab(&files.tokenizer.1, &texts, "tokenizer.json").unwrap();
        assert!(
            pruned.kept.len() < full.tokenizer.vocab_size(),
            "{}",
            pruned.kept.len()
        );
        let mut config = full.config.clone();
        config.vocab_size = pruned.kept.len();
        let small = TextEmbedder::new(
            config,
            TextTokenizer::from_bytes(&pruned.tokenizer_json, 64, "pruned").unwrap(),
            prune_embeddings(full.encoder.clone(), &pruned.kept),
            true,
            device.clone(),
        );
        assert_eq!(small.embed(&texts).unwrap(), full.embed(&texts).unwrap());
        let unseen = small.tokenizer.encode("zebra").unwrap();
        let unk = small.tokenizer.inner().token_to_id("[UNK]").unwrap() as i64;
        assert!(unseen.len() > 3 && !unseen.contains(&unk), "{unseen:?}");
        assert!(prune_vocab(b"{}", &texts, "bad.json").is_err());
    }
}
