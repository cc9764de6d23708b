//! The recommender: item tower + sequence encoder, scores = cos(user, item) / τ.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use burn::nn::Embedding;

use crate::rec::batch::SequenceBatch;
use crate::rec::context::ContextAggregator;
use crate::rec::item_tower::{ItemTower, ItemTowerConfig};
use crate::rec::persona::{FacetTable, PersonaEncoder, PersonaVocabulary, persona_vectors};
use crate::rec::sequence::{SequenceEncoder, SequenceEncoderConfig};
use crate::rec::signals::{ClsdStats, SignalsConfig, UserMemory, feedback_masks, kind_embedding};

/// Everything that shapes a recommender.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecommenderConfig {
    pub items: ItemTowerConfig,
    pub sequence: SequenceEncoderConfig,
    /// Temperature of the cosine scores. UniSRec: 0.07.
    pub temperature: f64,
    /// History signals: behaviour types, DUMN, CLSD statistics. Default: none.
    #[serde(default)]
    pub signals: SignalsConfig,
    /// How the items training never saw are placed among the trained ones. Default: the
    /// neighbour mix chosen on ml-100k's validation, no untrained ids.
    #[serde(default)]
    pub new_items: crate::rec::NewItems,
}

#[derive(Module, Debug)]
pub struct Recommender {
    pub tower: ItemTower,
    pub encoder: SequenceEncoder,
    pub temperature: f64,
    /// Behaviour-type embedding added to each event's item vector.
    pub kinds: Option<Embedding>,
    /// DUMN purification + long-term memory + gate.
    pub memory: Option<UserMemory>,
    /// LARR scene-context encoders and aggregation.
    pub context: Option<ContextAggregator>,
    /// CLSD statistics: with them, history events are weighted by their confidence.
    #[module(skip)]
    pub clsd: Option<ClsdStats>,
    /// PerCoNet persona input (facet vector → state offset).
    pub persona: Option<PersonaEncoder>,
    /// The facets of the catalogue being ranked (rows as in its text vectors), for the
    /// persona; none: the persona input is empty. Set with [`Recommender::set_item_facets`].
    #[module(skip)]
    pub facets: Option<FacetTable>,
    /// The persona's vocabulary and decay (the config's), which `facets` are indices into.
    #[module(skip)]
    pub persona_vocabulary: Option<PersonaVocabulary>,
    /// Logit adjustment (Menon et al. 2021): a per-row logit added to every score, the log of
    /// the item's training count (see [`crate::rec::popularity::popularity_logits`]), so that the cosines learn what a
    /// visitor prefers beyond how often an item is chosen. None: off. Training-only for now: a
    /// bundle does not carry it, so `train` refuses to write one from such a model.
    #[module(skip)]
    pub popularity: Option<Vec<f32>>,
    /// What the model was built from: a data-parallel worker rebuilds its shape from it.
    #[module(skip)]
    pub config: RecommenderConfig,
}

/// A catalog through the item tower: the sequence encoder's inputs and the unit vectors that
/// users are scored against.
#[derive(Debug, Clone)]
pub struct ItemVectors {
    /// Tower output `[rows, hidden]`.
    pub raw: Tensor<2>,
    /// The same rows scaled to unit length.
    pub unit: Tensor<2>,
    /// The leading rows that are catalog items (recommendable); rows after them are texts
    /// that only occur in histories, such as search queries ([`Recommender::with_queries`]).
    pub items: usize,
}

/// Rows scaled to unit length (the scores are cosines).
pub fn l2_rows<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let norm = x.clone().square().sum_dim(D - 1).sqrt().clamp_min(1e-12);
    x / norm
}

impl Recommender {
    pub fn init(config: &RecommenderConfig, device: &Device) -> Self {
        let hidden = config.sequence.hidden;
        Self {
            tower: ItemTower::init(&config.items, device),
            encoder: SequenceEncoder::init(&config.sequence, device),
            temperature: config.temperature,
            kinds: config.signals.kinds.then(|| kind_embedding(hidden, device)),
            memory: (config.signals.memory_slots > 0)
                .then(|| UserMemory::init(config.signals.memory_slots, hidden, device)),
            context: config
                .signals
                .context
                .then(|| ContextAggregator::init(hidden, device)),
            clsd: config.signals.clsd.clone(),
            persona: config
                .signals
                .persona
                .as_ref()
                .map(|v| PersonaEncoder::init(v.facets.len(), hidden, device)),
            facets: None,
            persona_vocabulary: config.signals.persona.clone(),
            popularity: None,
            config: config.clone(),
        }
    }

    /// Sets the facets (names, per catalogue row) of the catalogue the model ranks, mapped
    /// through its persona vocabulary; facets in `muted` are left out. A model without persona
    /// input ignores them.
    pub fn set_item_facets(&mut self, facets: &[Vec<String>], muted: &[String]) {
        if let Some(v) = &self.persona_vocabulary {
            self.facets = Some(v.table(facets, muted));
        }
    }

    /// [`Recommender::set_item_facets`] of every row's facets, none muted.
    pub fn with_item_facets(mut self, facets: &[Vec<String>]) -> Self {
        self.set_item_facets(facets, &[]);
        self
    }

    /// The persona input's per-position vectors for `batch` (`[batch·len·facets]`), if the model
    /// has a persona input.
    pub fn persona_of(&self, batch: &SequenceBatch) -> Option<Vec<f32>> {
        let persona = self.persona.as_ref()?;
        let empty = FacetTable::default();
        let table = self.facets.as_ref().unwrap_or(&empty);
        let decay = self
            .persona_vocabulary
            .as_ref()
            .map_or(crate::contracts::PERSONA_DECAY, |v| v.decay);
        Some(persona_vectors(batch, table, persona.facets(), decay))
    }

    /// Sequence states `[batch, len, hidden]` and item vectors `[items, hidden]`, both unit-norm.
    pub fn encode(&self, batch: &SequenceBatch, text: Tensor<2>) -> (Tensor<3>, Tensor<2>) {
        let items = self.item_vectors(text);
        (self.encode_with(batch, &items), items.unit)
    }

    /// The item tower over a catalog's text vectors. Ranking reuses it for every request:
    /// recomputing the tower per request would cost more than the rest of the ranking.
    pub fn item_vectors(&self, text: Tensor<2>) -> ItemVectors {
        let raw = self.tower.forward(text);
        ItemVectors {
            unit: l2_rows(raw.clone()),
            items: raw.dims()[0],
            raw,
        }
    }

    /// `catalog` with rows appended for search queries (their text vectors from the same
    /// encoder, through the same tower): a history can then hold a query as an event at row
    /// `catalog.items + j`, while only the catalog's items are ranked. The query's text lies in
    /// the items' text space, so a search moves the ranking before any click.
    pub fn with_queries(&self, catalog: &ItemVectors, queries: Tensor<2>) -> ItemVectors {
        let q = self.item_vectors(queries);
        ItemVectors {
            raw: Tensor::cat(vec![catalog.raw.clone(), q.raw], 0),
            unit: Tensor::cat(vec![catalog.unit.clone(), q.unit], 0),
            items: catalog.items,
        }
    }

    /// Unit user states `[batch, len, hidden]` for `batch` over precomputed item vectors.
    pub fn encode_with(&self, batch: &SequenceBatch, items: &ItemVectors) -> Tensor<3> {
        let device = items.raw.device();
        let [_, hidden] = items.raw.dims();
        let ids = Tensor::<1, Int>::from_data(
            TensorData::new(batch.items.clone(), [batch.batch * batch.len]),
            &device,
        );
        let (b, l) = (batch.batch, batch.len);
        let mut seq_items = items.raw.clone().select(0, ids).reshape([b, l, hidden]);
        if batch.confidence.iter().any(|&c| c != 1.0) {
            let c = Tensor::<3>::from_data(
                TensorData::new(batch.confidence.clone(), [b, l, 1]),
                &device,
            );
            seq_items = seq_items * c;
        }
        let pad: Vec<bool> = (0..b * l).map(|k| k % l >= batch.lens[k / l]).collect();
        let valid: Vec<f32> = pad.iter().map(|&p| if p { 0.0 } else { 1.0 }).collect();
        let pad = Tensor::<2, Bool>::from_data(TensorData::new(pad, [b, l]), &device);
        let inputs = match &self.kinds {
            Some(embedding) => {
                let kinds = Tensor::<2, Int>::from_data(
                    TensorData::new(batch.kinds.clone(), [b, l]),
                    &device,
                );
                seq_items.clone() + embedding.forward(kinds)
            }
            None => seq_items.clone(),
        };
        let states = self.encoder.forward(inputs, pad);
        let states = match &self.memory {
            Some(memory) => {
                let (positive, negative) = feedback_masks(&batch.kinds, b, l, &device);
                let valid = Tensor::<2>::from_data(TensorData::new(valid, [b, l]), &device);
                memory.forward(states, seq_items, positive, negative, valid)
            }
            None => states,
        };
        let states = match &self.context {
            Some(context) => context.forward(states, &batch.context),
            None => states,
        };
        let states = match (&self.persona, self.persona_of(batch)) {
            (Some(persona), Some(p)) => persona.forward(states, p),
            _ => states,
        };
        l2_rows(states)
    }

    /// Mean full-softmax cross-entropy of the next item over every position with a target;
    /// items where `absent` `[1, items]` is true are left out of the softmax.
    pub fn loss(
        &self,
        batch: &SequenceBatch,
        text: Tensor<2>,
        absent: Option<Tensor<2, Bool>>,
    ) -> Tensor<1> {
        let device = text.device();
        let (states, items) = self.encode(batch, text);
        let [b, l, h] = states.dims();
        let logits = self.scores_of(states.reshape([b * l, h]), items);
        let logits = match absent {
            Some(mask) => {
                let n = mask.dims()[1];
                logits.mask_fill(mask.expand([b * l, n]), -1e9)
            }
            None => logits,
        };
        let logp = log_softmax(logits, 1);
        let targets = Tensor::<2, Int>::from_data(
            TensorData::new(batch.targets.clone(), [b * l, 1]),
            &device,
        );
        let weights =
            Tensor::<2>::from_data(TensorData::new(batch.weights.clone(), [b * l, 1]), &device);
        let count = batch.weights.iter().sum::<f32>().max(1.0);
        (logp.gather(1, targets) * weights)
            .sum()
            .neg()
            .div_scalar(count)
    }

    /// The scores of unit user states `[rows, hidden]` against unit item rows `[items, hidden]`:
    /// cosine / τ, plus the popularity logits where the model has them. Training's logits,
    /// the evaluation's and the recommend path's scores are all this.
    pub fn scores_of(&self, user: Tensor<2>, unit: Tensor<2>) -> Tensor<2> {
        self.add_popularity(user.matmul(unit.transpose()).div_scalar(self.temperature))
    }

    /// Scores `[batch, items]` of every item after each row's last item (with CLSD, each row's
    /// user is grouped by the row's length).
    pub fn scores(&self, batch: &SequenceBatch, text: Tensor<2>) -> Tensor<2> {
        let activity = batch.lens.clone();
        self.scores_for(batch, text, &activity)
    }

    /// [`Recommender::scores`] with each row's user activity (number of events, CLSD's group).
    pub fn scores_for(
        &self,
        batch: &SequenceBatch,
        text: Tensor<2>,
        activity: &[usize],
    ) -> Tensor<2> {
        self.scores_over(batch, &self.item_vectors(text), activity)
    }

    /// [`Recommender::scores_for`] over item vectors computed already (a catalogue through the
    /// tower, or read from a precomputed index).
    pub fn scores_over(
        &self,
        batch: &SequenceBatch,
        vectors: &ItemVectors,
        activity: &[usize],
    ) -> Tensor<2> {
        let user = self.user_states_over(batch, vectors, activity);
        self.scores_of(user, vectors.unit.clone())
    }

    /// The unit user state `[batch, hidden]` after each row's last item: what
    /// [`Recommender::scores_over`] compares with every item (and a partitioned index with its
    /// centroids, to choose the cells to rank).
    pub fn user_states_over(
        &self,
        batch: &SequenceBatch,
        vectors: &ItemVectors,
        activity: &[usize],
    ) -> Tensor<2> {
        let batch = self.with_confidence(batch.clone(), vectors, activity);
        last_states(self.encode_with(&batch, vectors), &batch.lens)
    }
}

/// Each row's state at its last event (`lens`: the rows' lengths): `[batch, hidden]` out of the
/// encoder's `[batch, len, hidden]`.
pub fn last_states(states: Tensor<3>, lens: &[usize]) -> Tensor<2> {
    let [b, l, h] = states.dims();
    let last: Vec<i64> = lens
        .iter()
        .enumerate()
        .map(|(r, &n)| (r * l + n.max(1) - 1) as i64)
        .collect();
    let last = Tensor::<1, Int>::from_data(TensorData::new(last, [b]), &states.device());
    states.reshape([b * l, h]).select(0, last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rec::ItemMode;

    /// The persona input adds nothing until trained (zero projection), and then reads exactly
    /// the facets that are not muted: with every facet muted the model is the plain one again.
    #[test]
    fn persona_starts_silent_and_reads_only_unmuted_facets() {
        let (_seeded, device) = crate::fixtures::seeded_cpu(5);
        let vocabulary = crate::rec::PersonaVocabulary {
            facets: vec!["A".into(), "b".into()],
            decay: 0.98,
        };
        let mut config = tiny_config();
        config.signals.persona = Some(vocabulary.clone());
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let facets = vec![
            names(&["a"]),
            names(&["B"]),
            names(&["a", "b"]),
            vec![],
            names(&["b"]),
            names(&["a"]),
        ];
        let model = Recommender::init(&config, &device).with_item_facets(&facets);
        let plain = Recommender {
            persona: None,
            ..model.clone()
        };
        let text = Tensor::<2>::zeros([6, 1], &device);
        let batch = SequenceBatch::new(&[(&[0, 2, 1][..], &[][..])]);
        let scores = |m: &Recommender| -> Vec<f32> {
            m.scores(&batch, text.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
        assert!(close(&scores(&model), &scores(&plain)), "zero at start");
        // A trained projection: the persona now moves the scores.
        let mut persona = model.persona.clone().unwrap();
        persona.out.weight = burn::module::Param::from_tensor(Tensor::random(
            [2, 8],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        ));
        let trained = Recommender {
            persona: Some(persona),
            ..model.clone()
        };
        let all = scores(&trained);
        assert!(
            !close(&all, &scores(&plain)),
            "the persona changes the scores"
        );
        let muted = |m: &[&str]| {
            let mut model = trained.clone();
            model.set_item_facets(&facets, &names(m));
            model
        };
        assert!(
            !close(&scores(&muted(&["a"])), &all),
            "muting a facet changes them"
        );
        assert!(
            close(&scores(&muted(&["a", "B"])), &scores(&plain)),
            "nothing left to read"
        );
    }

    fn tiny_config() -> RecommenderConfig {
        RecommenderConfig {
            items: ItemTowerConfig {
                text_dim: 1,
                hidden: 8,
                experts: 1,
                dropout: 0.0,
                mode: ItemMode::Id,
                num_items: 6,
                id_dropout: 0.0,
            },
            sequence: SequenceEncoderConfig {
                hidden: 8,
                layers: 1,
                heads: 2,
                inner: 8,
                dropout: 0.0,
                max_len: 4,
            },
            temperature: 0.5,
            signals: Default::default(),
            new_items: Default::default(),
        }
    }

    /// The training logits `[3 positions × 6 items]` of the tiny model (temperature 0.5), by hand.
    fn plain_logits(model: &Recommender, batch: &SequenceBatch, text: Tensor<2>) -> Vec<f32> {
        let (states, items) = model.encode(batch, text);
        states
            .reshape([3, 8])
            .matmul(items.transpose())
            .div_scalar(0.5)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    }

    /// Leaving items out of the softmax equals scoring a catalog without them: the masked loss
    /// is the loss over the remaining items only.
    #[test]
    fn absent_items_are_not_in_the_softmax() {
        let (_seeded, device) = crate::fixtures::seeded_cpu(4);
        let config = tiny_config();
        let model = Recommender::init(&config, &device);
        let text = Tensor::<2>::zeros([6, 1], &device);
        let batch = SequenceBatch::new(&[(&[0, 1, 2][..], &[1, 2, 3][..])]);
        let plain = model.loss(&batch, text.clone(), None).into_scalar::<f32>();
        let absent = Tensor::<2, Bool>::from_data(
            TensorData::new(vec![false, false, false, false, true, true], [1, 6]),
            &device,
        );
        let masked = model
            .loss(&batch, text.clone(), Some(absent))
            .into_scalar::<f32>();
        assert!(masked < plain, "{masked} vs {plain}");
        // The same loss by hand from the scores over items 0..4.
        let s = plain_logits(&model, &batch, text);
        let mut expected = 0.0;
        for (t, target) in [1usize, 2, 3].into_iter().enumerate() {
            let row = &s[t * 6..t * 6 + 4];
            let lse = row.iter().map(|v| v.exp()).sum::<f32>().ln();
            expected += lse - row[target];
        }
        expected /= 3.0;
        assert!((masked - expected).abs() < 1e-4, "{masked} vs {expected}");
    }

    /// Logit adjustment: the popularity logits enter the training softmax and every score,
    /// exactly as added logits.
    #[test]
    fn popularity_logits_are_added_to_the_loss_and_the_scores() {
        let (_seeded, device) = crate::fixtures::seeded_cpu(4);
        let model = Recommender::init(&tiny_config(), &device);
        let text = Tensor::<2>::zeros([6, 1], &device);
        let batch = SequenceBatch::new(&[(&[0, 1, 2][..], &[1, 2, 3][..])]);
        let p = vec![0.5, -1.0, 2.0, 0.0, 1.5, -0.5];
        let with = model.clone().with_popularity(p.clone());
        // The loss by hand from the plain scores plus the logits.
        let s = plain_logits(&model, &batch, text.clone());
        let mut expected = 0.0;
        for (t, target) in [1usize, 2, 3].into_iter().enumerate() {
            let row: Vec<f32> = (0..6).map(|i| s[t * 6 + i] + p[i]).collect();
            let lse = row.iter().map(|v| v.exp()).sum::<f32>().ln();
            expected += lse - row[target];
        }
        expected /= 3.0;
        let loss = with.loss(&batch, text.clone(), None).into_scalar::<f32>();
        let plain = model.loss(&batch, text.clone(), None).into_scalar::<f32>();
        assert!((loss - expected).abs() < 1e-4, "{loss} vs {expected}");
        assert!((loss - plain).abs() > 1e-3, "the logits change the loss");
        // Scoring adds the same logits to every row.
        let query = SequenceBatch::new(&[(&[0, 2][..], &[][..])]);
        let scores = |m: &Recommender| -> Vec<f32> {
            m.scores(&query, text.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let (a, b) = (scores(&model), scores(&with));
        for i in 0..6 {
            assert!(
                (b[i] - a[i] - p[i]).abs() < 1e-5,
                "row {i}: {} vs {}",
                b[i],
                a[i]
            );
        }
    }
}
