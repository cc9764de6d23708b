//! Persona (PerCoNet): the facets — genres, categories — that dominate a visitor's history, as
//! an explicit, editable input of the user representation.
//!
//! At each position the persona is a vector over the bundle's facet vocabulary: every event so
//! far adds its weight to its item's facets (split evenly among them), older events decayed by
//! [`PERSONA_DECAY`] per later event. An event's weight is its behaviour type's
//! ([`persona_weight`]: a purchase says more than a view, a dislike counts against) times its
//! CLSD confidence where the model has one. The vector is scaled to unit L1 norm and mapped
//! into the state space by a linear layer that starts at zero, so a fresh model equals the one
//! without persona and an item without facets adds nothing. The page shows the same persona
//! (`www/ranklet-shelf.js` `personaOf`, same weights and decay) as the "your taste" panel;
//! removing an entry there removes that facet from this input.

use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;

use crate::contracts::{EventKind, PERSONA_DECAY, persona_weight};
use crate::rec::SequenceBatch;

/// Most facets a vocabulary keeps (the most frequent ones).
pub const MAX_FACETS: usize = 64;

/// The facet vocabulary of a model (in the bundle's recommender config, so a page maps its
/// catalogue's facets the same way).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PersonaVocabulary {
    /// Facet names in input order (compared case-insensitively).
    pub facets: Vec<String>,
    /// Per-event decay. Default [`PERSONA_DECAY`].
    #[serde(default = "default_decay")]
    pub decay: f32,
}

fn default_decay() -> f32 {
    PERSONA_DECAY
}

impl PersonaVocabulary {
    /// The (at most `max`) most frequent facets of a catalogue's items, ties by name.
    pub fn from_items(facets: &[Vec<String>], max: usize) -> Self {
        let mut count: std::collections::BTreeMap<String, (usize, String)> = Default::default();
        for f in facets.iter().flatten() {
            let name = f.trim();
            if name.is_empty() {
                continue;
            }
            count
                .entry(name.to_lowercase())
                .or_insert((0, name.to_string()))
                .0 += 1;
        }
        let mut ranked: Vec<(usize, String)> = count.into_values().collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        Self {
            facets: ranked.into_iter().take(max).map(|(_, n)| n).collect(),
            decay: PERSONA_DECAY,
        }
    }

    /// Each item's facet indices (names not in the vocabulary, and those in `muted`, are left
    /// out).
    pub fn table(&self, items: &[Vec<String>], muted: &[String]) -> FacetTable {
        let index: std::collections::HashMap<String, u16> = self
            .facets
            .iter()
            .enumerate()
            .filter(|(_, n)| !muted.iter().any(|m| m.trim().eq_ignore_ascii_case(n)))
            .map(|(i, n)| (n.to_lowercase(), i as u16))
            .collect();
        FacetTable {
            rows: items
                .iter()
                .map(|fs| {
                    let mut row: Vec<u16> = fs
                        .iter()
                        .filter_map(|f| index.get(&f.trim().to_lowercase()).copied())
                        .collect();
                    row.sort_unstable();
                    row.dedup();
                    row
                })
                .collect(),
        }
    }
}

/// The facets of a catalogue's items (row → facet indices); rows past it (search queries) have
/// none.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FacetTable {
    pub rows: Vec<Vec<u16>>,
}

impl FacetTable {
    fn of(&self, row: i64) -> &[u16] {
        usize::try_from(row)
            .ok()
            .and_then(|r| self.rows.get(r))
            .map_or(&[], Vec::as_slice)
    }
}

/// The persona at every position of `batch`, `[batch·len·facets]` row-major: after events
/// 0..=t, each event's [`persona_weight`] × confidence spread over its item's facets, decayed
/// by `decay` per later event, scaled to unit L1 norm (zero where no event has a facet).
pub fn persona_vectors(
    batch: &SequenceBatch,
    table: &FacetTable,
    facets: usize,
    decay: f32,
) -> Vec<f32> {
    let (b, l) = (batch.batch, batch.len);
    let mut out = vec![0f32; b * l * facets];
    let mut acc = vec![0f32; facets];
    for r in 0..b {
        acc.iter_mut().for_each(|a| *a = 0.0);
        for t in 0..batch.lens[r].min(l) {
            let k = r * l + t;
            acc.iter_mut().for_each(|a| *a *= decay);
            let fs = table.of(batch.items[k]);
            if !fs.is_empty() {
                let kind = usize::try_from(batch.kinds[k])
                    .ok()
                    .and_then(|i| EventKind::ALL.get(i).copied())
                    .unwrap_or_default();
                let w = persona_weight(kind) * batch.confidence[k] / fs.len() as f32;
                for &f in fs {
                    if let Some(a) = acc.get_mut(usize::from(f)) {
                        *a += w;
                    }
                }
            }
            let norm: f32 = acc.iter().map(|a| a.abs()).sum();
            if norm > 1e-12 {
                for (o, a) in out[k * facets..(k + 1) * facets].iter_mut().zip(&acc) {
                    *o = a / norm;
                }
            }
        }
    }
    out
}

/// The persona's projection into the user state.
#[derive(Module, Debug)]
pub struct PersonaEncoder {
    /// Facet vector → state offset; zero at start and without bias (an empty persona adds
    /// nothing).
    pub out: Linear,
}

impl PersonaEncoder {
    pub fn init(facets: usize, hidden: usize, device: &Device) -> Self {
        Self {
            out: LinearConfig::new(facets.max(1), hidden)
                .with_bias(false)
                .with_initializer(Initializer::Zeros)
                .init(device),
        }
    }

    /// Number of facets it reads.
    pub fn facets(&self) -> usize {
        self.out.weight.dims()[0]
    }

    /// `states` `[b, l, h]` plus the projection of each position's persona (`persona_vectors`
    /// of the same batch).
    pub fn forward(&self, states: Tensor<3>, persona: Vec<f32>) -> Tensor<3> {
        let [b, l, _] = states.dims();
        let p = Tensor::<3>::from_data(
            TensorData::new(persona, [b, l, self.facets()]),
            &states.device(),
        );
        states + self.out.forward(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn vocabulary_ranks_by_frequency_and_maps_case_insensitively() {
        let items = vec![
            names(&["Drama", "War"]),
            names(&["drama"]),
            names(&["Comedy", " "]),
            names(&["Sci-Fi", "Drama"]),
        ];
        let v = PersonaVocabulary::from_items(&items, 3);
        assert_eq!(v.facets, names(&["Drama", "Comedy", "Sci-Fi"]));
        let t = v.table(&items, &[]);
        assert_eq!(t.rows, vec![vec![0], vec![0], vec![1], vec![0, 2]]);
        // A muted facet is gone from every item.
        let muted = v.table(&items, &names(&["DRAMA"]));
        assert_eq!(muted.rows, vec![vec![], vec![], vec![1], vec![2]]);
    }

    #[test]
    fn persona_weighs_types_confidence_and_recency() {
        // Items: 0 → facet 0, 1 → facets 0 and 1, 2 → none, 3 → facet 1.
        let table = FacetTable {
            rows: vec![vec![0], vec![0, 1], vec![], vec![1]],
        };
        let batch = SequenceBatch::new(&[(&[0, 1, 2, 3][..], &[][..]), (&[3][..], &[][..])])
            .with_kinds(&[&[
                EventKind::Click,
                EventKind::Purchase,
                EventKind::Click,
                EventKind::Dislike,
            ]])
            .with_confidence(&[&[1.0, 0.5, 1.0, 1.0]]);
        let p = persona_vectors(&batch, &table, 2, 0.5);
        let at = |r: usize, t: usize| &p[(r * 4 + t) * 2..(r * 4 + t + 1) * 2];
        assert_eq!(at(0, 0), [1.0, 0.0]);
        // t1: 0.5·[1, 0] + 3·0.5/2·[1, 1] = [1.25, 0.75] → /2.
        assert_eq!(at(0, 1), [0.625, 0.375]);
        // t2 (no facets): decayed, same direction.
        assert_eq!(at(0, 2), [0.625, 0.375]);
        // t3: [0.3125, 0.1875] + dislike −2 on facet 1 → [0.3125, −1.8125] / 2.125.
        let e = [0.3125 / 2.125, -1.8125 / 2.125];
        assert!(at(0, 3).iter().zip(e).all(|(a, b)| (a - b).abs() < 1e-6));
        // The second row, and padding, which stays zero.
        assert_eq!(at(1, 0), [0.0, 1.0]);
        assert_eq!(at(1, 1), [0.0, 0.0]);
    }
}
