//! TinyBERT-style word replacement for augmented copies: a catalog word that is one whole
//! word-piece of the teacher's vocabulary is replaced by one of its nearest whole words in the
//! teacher's input embedding table ("story" → "tale", "saga"). Unlike random vocabulary words,
//! the copies stay close to real titles, so the teacher's function is taught around the
//! catalog's texts rather than far from them.

use std::collections::HashMap;

use burn::prelude::*;

use crate::rng::SplitMix;

/// Nearest whole words per catalog word (lower-case: the teacher's tokenizer is uncased).
#[derive(Debug, Clone, Default)]
pub struct Neighbours(pub HashMap<String, Vec<String>>);

/// A word's core (letters only, lower-cased) and the punctuation around it.
fn split_word(word: &str) -> (&str, &str, &str) {
    let start = word.find(char::is_alphabetic).unwrap_or(word.len());
    let end = word.rfind(char::is_alphabetic).map_or(start, |i| {
        i + word[i..].chars().next().map_or(1, char::len_utf8)
    });
    (&word[..start], &word[start..end], &word[end..])
}

/// A piece that stands for a whole word: letters only, more than one.
pub(crate) fn whole_word(piece: &str) -> bool {
    piece.chars().count() > 1 && piece.chars().all(char::is_alphabetic)
}

impl Neighbours {
    /// For every word of `texts` that is itself a whole-word piece of `vocab` (piece → row of
    /// `table`), its `k` nearest other whole-word pieces by cosine of `table`'s rows.
    pub fn build(
        texts: &[String],
        vocab: &HashMap<String, u32>,
        table: Tensor<2>,
        k: usize,
    ) -> Self {
        let mut candidates: Vec<(u32, &str)> = vocab
            .iter()
            .filter(|(p, _)| whole_word(p))
            .map(|(p, &id)| (id, p.as_str()))
            .collect();
        candidates.sort();
        let mut queries: Vec<(String, u32)> = texts
            .iter()
            .flat_map(|t| t.split_whitespace())
            .map(|w| split_word(w).1.to_lowercase())
            .filter(|w| whole_word(w))
            .filter_map(|w| vocab.get(&w).map(|&id| (w, id)))
            .collect();
        queries.sort();
        queries.dedup();
        if queries.is_empty() || candidates.len() < 2 {
            return Self::default();
        }
        let device = table.device();
        let unit = |ids: Vec<i64>| {
            let n = ids.len();
            let rows = table.clone().select(
                0,
                Tensor::<1, Int>::from_data(TensorData::new(ids, [n]), &device),
            );
            let norm = rows
                .clone()
                .powi_scalar(2)
                .sum_dim(1)
                .sqrt()
                .clamp_min(1e-12);
            rows / norm
        };
        let cand = unit(candidates.iter().map(|&(id, _)| i64::from(id)).collect()).transpose();
        let mut out = HashMap::new();
        for chunk in queries.chunks(256) {
            let q = unit(chunk.iter().map(|(_, id)| i64::from(*id)).collect());
            let sims: Vec<f32> = q
                .matmul(cand.clone())
                .into_data()
                .try_to_vec()
                .expect("f32 similarities");
            for ((word, id), row) in chunk.iter().zip(sims.chunks(candidates.len())) {
                let mut order: Vec<usize> =
                    (0..row.len()).filter(|&j| candidates[j].0 != *id).collect();
                let k = k.min(order.len());
                if k == 0 {
                    continue;
                }
                order.select_nth_unstable_by(k - 1, |&a, &b| row[b].total_cmp(&row[a]));
                order.truncate(k);
                order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
                out.insert(
                    word.clone(),
                    order.iter().map(|&j| candidates[j].1.to_string()).collect(),
                );
            }
        }
        Self(out)
    }

    /// `text` with each word that has neighbours replaced, with probability `p`, by one of
    /// them (its punctuation kept).
    pub fn replace(&self, text: &str, p: f32, rng: &mut SplitMix) -> String {
        text.split_whitespace()
            .map(|w| {
                let (before, core, after) = split_word(w);
                match self.0.get(&core.to_lowercase()) {
                    Some(near) if !near.is_empty() && rng.next_f32() < p => {
                        let pick =
                            ((rng.next_f32() * near.len() as f32) as usize).min(near.len() - 1);
                        format!("{before}{}{after}", near[pick])
                    }
                    _ => w.to_string(),
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Neighbours by cosine worked out on a hand-made table: "cat" is nearest "kitten", then
    /// "dog"; numbers and the word itself are never neighbours; punctuation is kept.
    #[test]
    fn neighbours_are_the_nearest_whole_words_by_cosine() {
        let d = Device::flex();
        let vocab: HashMap<String, u32> = [
            ("cat", 0),
            ("kitten", 1),
            ("dog", 2),
            ("car", 3),
            ("##s", 4),
            ("1995", 5),
        ]
        .iter()
        .map(|&(p, i)| (p.to_string(), i))
        .collect();
        // Rows: cat (1,0,0), kitten (0.9,0.1,0), dog (0.6,0.8,0), car (0,0,1), ##s near cat,
        // 1995 equal to cat.
        let table = Tensor::<2>::from_data(
            TensorData::new(
                vec![
                    1.0f32, 0.0, 0.0, 0.9, 0.1, 0.0, 0.6, 0.8, 0.0, 0.0, 0.0, 1.0, 1.0, 0.01, 0.0,
                    1.0, 0.0, 0.0,
                ],
                [6, 3],
            ),
            &d,
        );
        let texts = vec!["Cat, 1995.".to_string(), "unknownword".to_string()];
        let n = Neighbours::build(&texts, &vocab, table, 2);
        assert_eq!(n.len(), 1);
        assert_eq!(n.0["cat"], vec!["kitten".to_string(), "dog".to_string()]);
        let mut rng = SplitMix(3);
        let replaced = n.replace("Cat, 1995.", 1.0, &mut rng);
        assert!(
            replaced == "kitten, 1995." || replaced == "dog, 1995.",
            "{replaced}"
        );
        assert_eq!(n.replace("Cat, 1995.", 0.0, &mut rng), "Cat, 1995.");
    }
}
