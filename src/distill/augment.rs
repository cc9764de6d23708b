//! Augmented copies of the training texts, labelled afresh by the teacher: words dropped, or
//! swapped for words of other training texts, for whole words of the teacher's vocabulary, or
//! for their nearest neighbours in the teacher's input embedding table (TinyBERT).

use crate::distill::config::DistillConfig;
use crate::distill::neighbours::{Neighbours, whole_word};
use crate::rng::SplitMix;
use crate::text::encoder::BertEncoder;
use crate::text::tokenizer::TextTokenizer;

/// Nearest whole words kept per catalog word for neighbour-word copies.
const NEIGHBOURS: usize = 8;

/// `text` with each word replaced, with probability `p`, by a word of `pool`.
pub fn replace_words(text: &str, p: f32, pool: &[&str], rng: &mut SplitMix) -> String {
    text.split_whitespace()
        .map(|w| {
            if !pool.is_empty() && rng.next_f32() < p {
                pool[((rng.next_f32() * pool.len() as f32) as usize).min(pool.len() - 1)]
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text` with each word dropped with probability `p` (at least one word kept).
pub fn drop_words(text: &str, p: f32, rng: &mut SplitMix) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let kept: Vec<&str> = words
        .iter()
        .copied()
        .filter(|_| rng.next_f32() >= p)
        .collect();
    if kept.is_empty() {
        words.first().copied().unwrap_or_default().to_string()
    } else {
        kept.join(" ")
    }
}

/// Makes the augmented copies of one distillation: the word pools and the kinds of copy in use.
pub struct Augmenter {
    /// The words of the training texts (catalog-word copies).
    word_pool: Vec<String>,
    /// Whole words of the teacher's vocabulary, in id order (vocabulary-word copies).
    vocab_pool: Vec<String>,
    neighbours: Neighbours,
    /// The kinds of copy in use, drawn evenly: 0 words dropped, 1 catalog words, 2 vocabulary
    /// words, 3 neighbour words.
    kinds: Vec<usize>,
    replace_words: f32,
    vocab_words: f32,
    neighbour_words: f32,
}

impl Augmenter {
    pub fn new(
        config: &DistillConfig,
        train_texts: &[String],
        tokenizer: &TextTokenizer,
        teacher: &BertEncoder,
    ) -> Self {
        // The words augmented copies draw replacements from: the training texts' only.
        let word_pool: Vec<String> = train_texts
            .iter()
            .flat_map(|t| t.split_whitespace())
            .map(str::to_string)
            .collect();
        // Whole words of the teacher's vocabulary (no continuation pieces, special tokens or
        // single characters), in id order.
        let mut vocab_pool: Vec<(u32, String)> = if config.vocab_words > 0.0 {
            tokenizer
                .inner()
                .get_vocab(false)
                .into_iter()
                .filter(|(piece, _)| whole_word(piece))
                .map(|(piece, id)| (id, piece))
                .collect()
        } else {
            Vec::new()
        };
        vocab_pool.sort();
        let neighbours = if config.neighbour_words > 0.0 {
            Neighbours::build(
                train_texts,
                &tokenizer.inner().get_vocab(false).into_iter().collect(),
                teacher.embeddings.word_embeddings.weight.val(),
                NEIGHBOURS,
            )
        } else {
            Neighbours::default()
        };
        let kinds = [
            true,
            config.replace_words > 0.0,
            config.vocab_words > 0.0,
            config.neighbour_words > 0.0,
        ]
        .iter()
        .enumerate()
        .filter_map(|(k, &on)| on.then_some(k))
        .collect();
        Self {
            word_pool,
            vocab_pool: vocab_pool.into_iter().map(|(_, w)| w).collect(),
            neighbours,
            kinds,
            replace_words: config.replace_words,
            vocab_words: config.vocab_words,
            neighbour_words: config.neighbour_words,
        }
    }

    /// `text` itself, or with probability `p` an altered copy of a kind drawn evenly.
    pub fn maybe_copy(&self, text: &str, p: f32, rng: &mut SplitMix) -> String {
        if p <= 0.0 || rng.next_f32() >= p {
            return text.to_string();
        }
        let n = self.kinds.len();
        fn words(pool: &[String]) -> Vec<&str> {
            pool.iter().map(String::as_str).collect()
        }
        match self.kinds[((rng.next_f32() * n as f32) as usize).min(n - 1)] {
            0 => drop_words(text, 0.2, rng),
            1 => replace_words(text, self.replace_words, &words(&self.word_pool), rng),
            2 => replace_words(text, self.vocab_words, &words(&self.vocab_pool), rng),
            _ => self.neighbours.replace(text, self.neighbour_words, rng),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaced_words_come_from_the_pool_and_keep_the_length() {
        let mut rng = SplitMix(7);
        let pool = ["alpha", "beta"];
        let out = replace_words("one two three four five six", 0.5, &pool, &mut rng);
        let words: Vec<&str> = out.split(' ').collect();
        assert_eq!(words.len(), 6);
        let replaced = words.iter().filter(|w| pool.contains(w)).count();
        assert!(replaced > 0 && replaced < 6, "{out}");
        assert_eq!(replace_words("a b", 0.0, &pool, &mut rng), "a b");
    }
}
