//! Word-piece tokenisation from a HF `tokenizer.json`, identical on native and wasm32.

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{Error, Result};

/// sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2: 256 word-pieces, [CLS] and
/// [SEP] included. (`tokenizer.json` itself says 128 and `tokenizer_config.json` 512; both are
/// overridden.)
pub const DEFAULT_MAX_SEQ_LEN: usize = 256;

/// Texts longer than this many bytes are refused rather than tokenised: only the first few
/// hundred word-pieces are used anyway, and tokenising megabytes would stall the page.
pub const MAX_TEXT_BYTES: usize = 1 << 20;

/// A right-padded batch of token ids with its attention mask, row-major `[batch, seq_len]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBatch {
    /// Word-piece ids, padded with the pad id.
    pub ids: Vec<i64>,
    /// 1 for a real token, 0 for padding.
    pub mask: Vec<f32>,
    /// Number of texts.
    pub batch: usize,
    /// Length of the longest text (padding target).
    pub seq_len: usize,
    /// Real length of each text.
    pub lens: Vec<usize>,
}

impl TokenBatch {
    /// The unpadded ids of text `i`.
    pub fn ids_of(&self, i: usize) -> &[i64] {
        &self.ids[i * self.seq_len..i * self.seq_len + self.lens[i]]
    }
}

/// A `tokenizers` tokenizer set up as the encoder needs it: the file's own normaliser
/// (lowercasing, accent stripping as it says), truncation to `max_len` including special tokens,
/// and no padding (batches pad to their own longest text).
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    max_len: usize,
    pad_id: i64,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("max_len", &self.max_len)
            .finish()
    }
}

/// `Tokenizer::from_bytes`, with the panics some malformed files raise inside the tokenizers
/// crate (e.g. a decoder object without the fields its type needs: an `unwrap` in its
/// deserialiser, found by tests/parsers_fuzz.rs) turned into errors. The panic hook is silenced
/// meanwhile so that a bad file prints one clear error, not a panic message; loading happens
/// before any other work starts.
fn parse_tokenizer(bytes: &[u8]) -> std::result::Result<Tokenizer, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let parsed = std::panic::catch_unwind(|| Tokenizer::from_bytes(bytes));
    std::panic::set_hook(hook);
    match parsed {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("a part of it is malformed (the tokenizers crate could not read it)".into()),
    }
}

impl TextTokenizer {
    /// Loads `tokenizer.json` bytes; `origin` names the file in errors.
    pub fn from_bytes(bytes: &[u8], max_len: usize, origin: &str) -> Result<Self> {
        if max_len < 2 {
            return Err(Error::bad_file(
                origin,
                format!("max_seq_length {max_len} is below 2"),
            ));
        }
        let mut inner = parse_tokenizer(bytes)
            .map_err(|e| Error::bad_file(origin, format!("not a tokenizer.json: {e}")))?;
        inner
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| Error::bad_file(origin, e.to_string()))?;
        inner.with_padding(None);
        let pad_id = inner
            .token_to_id("[PAD]")
            .map(i64::from)
            .unwrap_or_default();
        Ok(Self {
            inner,
            max_len,
            pad_id,
        })
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The largest number of word-pieces per text, special tokens included.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The underlying `tokenizers` tokenizer (vocabulary pruning rewrites it).
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Whether `text` has more word-pieces than `max_len` (its end is cut before embedding).
    pub fn truncates(&self, text: &str) -> bool {
        self.inner
            .encode(text, true)
            .is_ok_and(|e| !e.get_overflowing().is_empty())
    }

    /// Ids of one text, with [CLS]/[SEP], truncated.
    pub fn encode(&self, text: &str) -> Result<Vec<i64>> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(Error::bad_input(
                "text",
                format!(
                    "text of {} bytes is longer than the {} bytes ranklet accepts",
                    text.len(),
                    MAX_TEXT_BYTES
                ),
            ));
        }
        let enc = self
            .inner
            .encode(text, true)
            .map_err(|e| Error::bad_input("text", format!("cannot tokenise: {e}")))?;
        Ok(enc.get_ids().iter().map(|&i| i64::from(i)).collect())
    }

    /// Tokenises and right-pads a batch to its longest text.
    pub fn encode_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<TokenBatch> {
        let rows = texts
            .iter()
            .map(|t| self.encode(t.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        Ok(self.pad(rows))
    }

    /// Pads already-tokenised rows into a batch.
    pub fn pad(&self, rows: Vec<Vec<i64>>) -> TokenBatch {
        let seq_len = rows.iter().map(Vec::len).max().unwrap_or(0);
        let batch = rows.len();
        let mut ids = vec![self.pad_id; batch * seq_len];
        let mut mask = vec![0.0; batch * seq_len];
        let mut lens = Vec::with_capacity(batch);
        for (i, row) in rows.iter().enumerate() {
            ids[i * seq_len..i * seq_len + row.len()].copy_from_slice(row);
            mask[i * seq_len..i * seq_len + row.len()].fill(1.0);
            lens.push(row.len());
        }
        TokenBatch {
            ids,
            mask,
            batch,
            seq_len,
            lens,
        }
    }
}
