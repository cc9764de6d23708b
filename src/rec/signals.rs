//! History signals (docs/design.md, The research it implements): which events of a history to trust and how much.
//!
//! - **Behaviour types**: an embedding per [`EventKind`] added to each event's item vector
//!   (zero at start, so a type never seen in training leaves the model unchanged).
//! - **DUMN** ([`UserMemory`]): the explicit feedback purifies the implicit state — the state is
//!   projected orthogonally to the direction of the disliked items so far — a bounded long-term
//!   memory (K slots, each an attention-weighted running mean of the clicked items, updated per
//!   event) is read with the purified state, and a learned gate fuses the short-term state with
//!   the memory read-out, seeing the liked items' mean as well.
//! - **CLSD** ([`ClsdStats`]): a click's confidence is how plausible a copy of the recommender
//!   finds it in its context (log-probability of the item after the events before it), made
//!   comparable across users by standardising within activity groups; `1 + s·(2·sigmoid(z) − 1)`
//!   weights the event (mean ≈ 1; with strength s = 1 a click the model finds implausible weighs
//!   near 0, with the default s = 0.5 at least 0.5). The groups' statistics
//!   travel in the bundle's recommender config so a browser computes the same confidences.

use burn::nn::{Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{sigmoid, softmax};

use crate::contracts::EventKind;

/// Which history signals a recommender uses. Every field defaults to off, so bundles written
/// before these existed load unchanged.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SignalsConfig {
    /// A behaviour-type embedding per event. Default false.
    #[serde(default)]
    pub kinds: bool,
    /// DUMN long-term memory slots; 0 turns DUMN (purification, memory, gate) off. Default 0.
    #[serde(default)]
    pub memory_slots: usize,
    /// LARR scene context: hour of day, page type and device class of the request, encoded
    /// separately and aggregated into the user state ([`crate::rec::ContextAggregator`]; the
    /// vocabularies are [`crate::contracts::PAGE_TYPES`] and
    /// [`crate::contracts::DEVICE_CLASSES`], hours 0–23). Default false.
    #[serde(default)]
    pub context: bool,
    /// With `context`: what the encoders' rows mean, so that the manifest documents the
    /// inputs a page must send (written by training; informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_vocabulary: Option<crate::contracts::ContextVocabulary>,
    /// CLSD confidence statistics (set by training with CLSD); `None`: every event weighs 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clsd: Option<ClsdStats>,
    /// Persona input ([`crate::rec::persona`]): the facet vocabulary the user state reads;
    /// `None` (the default): no persona input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persona: Option<crate::rec::persona::PersonaVocabulary>,
}

/// Per activity group, the mean and standard deviation of the log-probability that the
/// recommender gives an event after the events before it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClsdStats {
    /// Upper history lengths of the groups but the last (ascending): a history of `n` events
    /// is in the first group with `n <= bounds[g]`, else in the last.
    pub bounds: Vec<usize>,
    /// Mean log-probability per group.
    pub mean: Vec<f32>,
    /// Standard deviation per group (at least 1e-3).
    pub std: Vec<f32>,
    /// How far confidences spread around 1: `1 + strength·(2σ(z) − 1)`, in
    /// `(1 − strength, 1 + strength)`. Default 1.
    #[serde(default = "one")]
    pub strength: f32,
}

fn one() -> f32 {
    1.0
}

impl ClsdStats {
    /// Groups users into `groups` activity levels of about equal size by `lengths` (their
    /// number of events) and standardises `scores` — per user, the log-probabilities of their
    /// events after the first — within each group. A group without scores takes the overall
    /// figures; with no scores at all the mean is 0 and the std 1 (confidence then only depends
    /// on the score's sign), so nothing is ever NaN.
    pub fn fit(lengths: &[usize], scores: &[Vec<f32>], groups: usize, strength: f32) -> Self {
        let groups = groups.max(1);
        let mut sorted: Vec<usize> = lengths.to_vec();
        sorted.sort_unstable();
        let mut bounds: Vec<usize> = (1..groups)
            .filter_map(|g| {
                sorted
                    .get((g * sorted.len() / groups).saturating_sub(1))
                    .copied()
            })
            .collect();
        bounds.dedup();
        let n = bounds.len() + 1;
        let mut sum = vec![0f64; n];
        let mut sq = vec![0f64; n];
        let mut count = vec![0usize; n];
        let group_of = |len: usize| bounds.iter().position(|&b| len <= b).unwrap_or(n - 1);
        for (&len, s) in lengths.iter().zip(scores) {
            let g = group_of(len);
            for &x in s.iter().filter(|x| x.is_finite()) {
                sum[g] += f64::from(x);
                sq[g] += f64::from(x) * f64::from(x);
                count[g] += 1;
            }
        }
        let moments = |s: f64, q: f64, c: usize| -> Option<(f32, f32)> {
            (c > 0).then(|| {
                let mean = s / c as f64;
                let var = (q / c as f64 - mean * mean).max(0.0);
                (mean as f32, (var.sqrt() as f32).max(1e-3))
            })
        };
        let overall =
            moments(sum.iter().sum(), sq.iter().sum(), count.iter().sum()).unwrap_or((0.0, 1.0));
        let (mean, std) = (0..n)
            .map(|g| moments(sum[g], sq[g], count[g]).unwrap_or(overall))
            .unzip();
        Self {
            bounds,
            mean,
            std,
            strength: strength.clamp(0.0, 1.0),
        }
    }

    /// The group of a history of `len` events.
    pub fn group(&self, len: usize) -> usize {
        self.bounds
            .iter()
            .position(|&b| len <= b)
            .unwrap_or(self.bounds.len())
            .min(self.mean.len().saturating_sub(1))
    }

    /// Confidence `1 + strength·(2·sigmoid((score − mean_g)/std_g) − 1)` of an event whose
    /// log-probability is `score`, for a user with `activity` events; a non-finite score counts
    /// as average (1).
    pub fn confidence(&self, score: f32, activity: usize) -> f32 {
        if !score.is_finite() || self.mean.is_empty() {
            return 1.0;
        }
        let g = self.group(activity);
        let z = (score - self.mean[g]) / self.std[g].max(1e-3);
        1.0 + self.strength * (2.0 / (1.0 + (-z).exp()) - 1.0)
    }
}

/// DUMN's purification, long-term memory and gate, applied to the sequence encoder's states.
#[derive(Module, Debug)]
pub struct UserMemory {
    /// Slot keys `[slots, hidden]`: an event is written to each slot with the softmax weight of
    /// its unit item vector against the key.
    pub keys: Embedding,
    /// Memory read-out into the state space.
    pub read: Linear,
    /// Gate over [purified state; read-out; liked-items mean] → per-dimension weight of the
    /// short-term state.
    pub gate: Linear,
}

/// Temperature of the memory read-out attention (states and slots are unit vectors there).
const READ_TEMPERATURE: f64 = 0.1;
/// Temperature of the memory write attention (unit item vectors against unit slot keys).
const WRITE_TEMPERATURE: f64 = 0.25;

/// Rows scaled to unit length, zero rows staying zero — with a finite gradient there (a plain
/// `x / |x|` has an infinite one at 0, which turns a whole model into NaN after one step).
fn unit_or_zero<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let norm = x.clone().square().sum_dim(D - 1).add_scalar(1e-12).sqrt();
    x / norm
}

impl UserMemory {
    pub fn init(slots: usize, hidden: usize, device: &Device) -> Self {
        let mut gate = LinearConfig::new(3 * hidden, hidden).init(device);
        // Start near the plain model: the gate lets the short-term state through (σ(3) ≈ 0.95).
        // (A fresh parameter: `Param::map` with a new tensor would leave it untrainable.)
        gate.bias = Some(burn::module::Param::from_tensor(Tensor::<1>::full(
            [hidden],
            3.0,
            device,
        )));
        Self {
            keys: EmbeddingConfig::new(slots.max(1), hidden)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 1.0,
                })
                .init(device),
            read: LinearConfig::new(hidden, hidden).init(device),
            gate,
        }
    }

    /// `states` `[b, l, h]` from the sequence encoder, `items` `[b, l, h]` the events' item
    /// vectors (confidence-weighted), `positive`/`negative`/`valid` `[b, l]` 1.0 where an event
    /// is explicit positive / negative feedback / not padding → fused states `[b, l, h]`; the
    /// state at t uses events 0..=t only.
    pub fn forward(
        &self,
        states: Tensor<3>,
        items: Tensor<3>,
        positive: Tensor<2>,
        negative: Tensor<2>,
        valid: Tensor<2>,
    ) -> Tensor<3> {
        let [b, l, h] = states.dims();
        let k = self.keys.weight.dims()[0];
        let neg = negative.clone().reshape([b, l, 1]);
        let pos = positive.reshape([b, l, 1]);
        // Purification: the state loses its component along the disliked items' direction.
        let disliked = unit_or_zero((items.clone() * neg.clone()).cumsum(1));
        let along = (states.clone() * disliked.clone()).sum_dim(2);
        let purified = states - disliked * along;
        // Liked items' running mean.
        let liked = (items.clone() * pos.clone()).cumsum(1)
            / pos.cumsum(1).clamp_min(1.0).expand([b, l, h]);
        // Long-term memory: slot k at t = Σ_{j≤t} w_jk x_j / Σ_{j≤t} w_jk over the clicks
        // (not the dislikes), w_jk = exp(unit(x_j)·key_k). Subtracting each slot's maximum over
        // the whole row keeps exp finite and cancels in the ratio.
        let unit = unit_or_zero(items);
        let keys = unit_or_zero(self.keys.weight.val());
        let logits = unit
            .clone()
            .matmul(keys.transpose().unsqueeze::<3>())
            .div_scalar(WRITE_TEMPERATURE);
        let logits = logits.clone() - logits.detach().max_dim(1);
        let clicked = (valid - negative).clamp_min(0.0).reshape([b, l, 1]);
        let w = logits.exp() * clicked; // [b, l, k]
        let weighted = w.clone().reshape([b, l, k, 1]) * unit.reshape([b, l, 1, h]);
        // Logits lie in ±1/WRITE_TEMPERATURE, so a slot with any click has a denominator of at
        // least exp(-2/WRITE_TEMPERATURE) ≈ 3e-4; the clamp only meets positions before any
        // click (memory 0 there) and keeps their gradient finite.
        let memory = weighted.cumsum(1) / w.cumsum(1).clamp_min(1e-6).reshape([b, l, k, 1]);
        // Read-out: attention of the unit purified state over the slots.
        let query = unit_or_zero(purified.clone()).reshape([b, l, 1, h]);
        let attn = softmax(
            (memory.clone() * query)
                .sum_dim(3)
                .reshape([b, l, k])
                .div_scalar(READ_TEMPERATURE),
            2,
        );
        let recalled = (memory * attn.reshape([b, l, k, 1]))
            .sum_dim(2)
            .reshape([b, l, h]);
        let recalled = self.read.forward(recalled);
        let g = sigmoid(self.gate.forward(Tensor::cat(
            vec![purified.clone(), recalled.clone(), liked],
            2,
        )));
        purified * g.clone() + recalled * g.neg().add_scalar(1.0)
    }
}

/// The behaviour-type embedding (zeros at start).
pub fn kind_embedding(hidden: usize, device: &Device) -> Embedding {
    EmbeddingConfig::new(crate::contracts::NUM_EVENT_KINDS, hidden)
        .with_initializer(Initializer::Zeros)
        .init(device)
}

/// Per-event flags of a batch's kinds `[batch·len]` as `[batch, len]` f32 tensors:
/// (positive, negative).
pub fn feedback_masks(
    kinds: &[i64],
    batch: usize,
    len: usize,
    device: &Device,
) -> (Tensor<2>, Tensor<2>) {
    let flag = |f: fn(EventKind) -> bool| -> Tensor<2> {
        let v: Vec<f32> = kinds
            .iter()
            .map(|&k| {
                let kind = EventKind::ALL
                    .get(k as usize)
                    .copied()
                    .unwrap_or(EventKind::Click);
                if f(kind) { 1.0 } else { 0.0 }
            })
            .collect();
        Tensor::from_data(TensorData::new(v, [batch, len]), device)
    };
    (flag(EventKind::is_positive), flag(EventKind::is_negative))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clsd_groups_standardise_and_never_give_nan() {
        // Two short users with high scores, two long users with low ones: standardising within
        // the activity group makes each group's own average count as 1.
        let lengths = [3, 4, 40, 50];
        let scores = vec![
            vec![-1.0, -3.0],
            vec![-2.0, -2.0, -2.0],
            vec![-6.0; 39],
            vec![-8.0; 49],
        ];
        let stats = ClsdStats::fit(&lengths, &scores, 2, 1.0);
        assert_eq!(stats.bounds, vec![4]);
        assert!((stats.mean[0] + 2.0).abs() < 1e-6, "{stats:?}");
        assert!((stats.confidence(-2.0, 4) - 1.0).abs() < 1e-6);
        assert!(stats.confidence(-1.0, 3) > 1.0);
        assert!(stats.confidence(-3.0, 3) < 1.0);
        // The long group's mean is between -8 and -6; -2 is far above it there.
        assert!(stats.confidence(-2.0, 45) > 1.9);
        // No scores at all, an empty group, or a NaN score: finite confidences.
        let empty = ClsdStats::fit(&[5, 9], &[vec![], vec![]], 3, 1.0);
        for len in [1, 5, 9, 100] {
            let c = empty.confidence(-1.0, len);
            assert!(c.is_finite() && c > 0.0 && c < 2.0, "{c}");
        }
        let partial = ClsdStats::fit(&[2, 100], &[vec![], vec![-4.0, -6.0]], 2, 1.0);
        assert!(partial.mean.iter().all(|m| m.is_finite()), "{partial:?}");
        assert_eq!(stats.confidence(f32::NAN, 3), 1.0);
        // A milder strength keeps confidences within (1 − s, 1 + s).
        let mild = ClsdStats::fit(&lengths, &scores, 2, 0.5);
        assert!((mild.confidence(-100.0, 3) - 0.5).abs() < 1e-3);
        assert!((mild.confidence(100.0, 3) - 1.5).abs() < 1e-3);
    }

    #[test]
    fn a_dislike_changes_states_from_its_event_on_and_memory_is_causal() {
        let (_seeded, device) = crate::fixtures::seeded_cpu(3);
        let (b, l, h) = (1, 4, 6);
        let memory = UserMemory::init(3, h, &device);
        let states = Tensor::<3>::random([b, l, h], burn::tensor::Distribution::Default, &device);
        let items = Tensor::<3>::random([b, l, h], burn::tensor::Distribution::Default, &device);
        let valid = Tensor::<2>::ones([b, l], &device);
        let none = Tensor::<2>::zeros([b, l], &device);
        // Event 1 is a dislike.
        let negative = Tensor::<2>::from_data(
            TensorData::new(vec![0.0f32, 1.0, 0.0, 0.0], [b, l]),
            &device,
        );
        let plain = memory.forward(
            states.clone(),
            items.clone(),
            none.clone(),
            none.clone(),
            valid.clone(),
        );
        let purified = memory.forward(
            states.clone(),
            items.clone(),
            none.clone(),
            negative.clone(),
            valid.clone(),
        );
        let row = |t: Tensor<3>, i: usize| -> Vec<f32> {
            t.slice([0..1, i..i + 1, 0..h])
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        // Before the dislike nothing changes (causal); from it on, the state differs.
        let close = |a: &[f32], c: &[f32]| a.iter().zip(c).all(|(x, y)| (x - y).abs() < 1e-5);
        assert!(close(&row(plain.clone(), 0), &row(purified.clone(), 0)));
        assert!(!close(&row(plain.clone(), 2), &row(purified.clone(), 2)));
        // Changing a later event does not change earlier states.
        let later = items
            .clone()
            .slice_assign([0..1, 3..4, 0..h], Tensor::<3>::ones([1, 1, h], &device));
        let changed = memory.forward(states, later, none.clone(), negative, valid);
        for t in 0..3 {
            assert!(
                close(&row(purified.clone(), t), &row(changed.clone(), t)),
                "t {t}"
            );
        }
        assert!(!close(&row(purified, 3), &row(changed, 3)));
    }
}
