//! HomoDistil's pruning: importance `Σ|θ·∂L/∂θ|` per structure (attention head, feed-forward
//! neuron, hidden column), exponentially smoothed over steps, and a cubic schedule that shrinks
//! the kept counts from the teacher's to the target's — fast at first, gently near the end, so
//! the student stays close to the teacher at every step.

use burn::module::Param;
use burn::nn::{LayerNorm, Linear};
use burn::optim::GradientsParams;
use burn::prelude::*;

use crate::distill::student::Masks;
use crate::text::encoder::BertEncoder;

/// Smoothed importance of every prunable structure.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Importance {
    pub hidden: Vec<f32>,
    pub heads: Vec<Vec<f32>>,
    pub ffn: Vec<Vec<f32>>,
    /// Steps folded in so far (the first one is taken as is).
    pub steps: usize,
}

/// `|θ·g|` of a parameter (inner tensors), or zeros when it has no gradient.
fn taylor<const D: usize>(param: &Param<Tensor<D>>, grads: &GradientsParams) -> Option<Tensor<D>> {
    let g = grads.get::<D>(param.id)?;
    Some((param.val().inner() * g).abs())
}

fn to_vec(t: Tensor<1>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32")
}

/// Adds `v` into `acc` element-wise.
fn add(acc: &mut [f32], v: &[f32]) {
    for (a, b) in acc.iter_mut().zip(v) {
        *a += b;
    }
}

struct Scores {
    hidden: Vec<f32>,
}

impl Scores {
    /// A `[in, out]` linear whose inputs (`rows`) or outputs (`cols`) are hidden columns.
    fn linear_hidden(&mut self, l: &Linear, grads: &GradientsParams, hidden_is_input: bool) {
        if let Some(t) = taylor(&l.weight, grads) {
            let dim = if hidden_is_input { 1 } else { 0 };
            let s = t.sum_dim(dim);
            let n = s.dims()[1 - dim];
            add(&mut self.hidden, &to_vec(s.reshape([n])));
        }
        if !hidden_is_input && let Some(b) = l.bias.as_ref().and_then(|b| taylor(b, grads)) {
            add(&mut self.hidden, &to_vec(b));
        }
    }

    fn norm(&mut self, n: &LayerNorm, grads: &GradientsParams) {
        if let Some(t) = taylor(&n.gamma, grads) {
            add(&mut self.hidden, &to_vec(t));
        }
        if let Some(t) = n.beta.as_ref().and_then(|b| taylor(b, grads)) {
            add(&mut self.hidden, &to_vec(t));
        }
    }
}

/// Per-output-column scores `[out]` of a linear (weight column + bias).
fn out_scores(l: &Linear, grads: &GradientsParams) -> Option<Tensor<1>> {
    let w = taylor(&l.weight, grads)?;
    let [_, out] = w.dims();
    let mut s = w.sum_dim(0).reshape([out]);
    if let Some(b) = l.bias.as_ref().and_then(|b| taylor(b, grads)) {
        s = s + b;
    }
    Some(s)
}

/// Per-input-row scores `[in]` of a linear.
fn in_scores(l: &Linear, grads: &GradientsParams) -> Option<Tensor<1>> {
    let w = taylor(&l.weight, grads)?;
    let [rows, _] = w.dims();
    Some(w.sum_dim(1).reshape([rows]))
}

impl Importance {
    /// One step's importance of every structure of `encoder` from its gradients.
    pub fn of_step(encoder: &BertEncoder, grads: &GradientsParams) -> Self {
        let masks = Masks::full(encoder);
        let mut scores = Scores {
            hidden: vec![0.0; masks.hidden.len()],
        };
        let e = &encoder.embeddings;
        for emb in [
            &e.word_embeddings,
            &e.position_embeddings,
            &e.token_type_embeddings,
        ] {
            if let Some(t) = taylor(&emb.weight, grads) {
                let h = t.dims()[1];
                add(&mut scores.hidden, &to_vec(t.sum_dim(0).reshape([h])));
            }
        }
        scores.norm(&e.layer_norm, grads);
        let mut heads = Vec::new();
        let mut ffn = Vec::new();
        for layer in &encoder.layers {
            let a = &layer.attention;
            let (n, d) = (a.num_heads, a.head_size);
            let mut head = Tensor::<1>::zeros([n * d], &a.query.weight.val().inner().device());
            for l in [&a.query, &a.key, &a.value] {
                if let Some(s) = out_scores(l, grads) {
                    head = head + s;
                }
                scores.linear_hidden(l, grads, true);
            }
            if let Some(s) = in_scores(&a.output, grads) {
                head = head + s;
            }
            scores.linear_hidden(&a.output, grads, false);
            scores.norm(&a.layer_norm, grads);
            heads.push(to_vec(head.reshape([n, d]).sum_dim(1).reshape([n])));
            let f = layer.intermediate.weight.dims()[1];
            let mut neuron = Tensor::<1>::zeros([f], &a.query.weight.val().inner().device());
            if let Some(s) = out_scores(&layer.intermediate, grads) {
                neuron = neuron + s;
            }
            if let Some(s) = in_scores(&layer.output, grads) {
                neuron = neuron + s;
            }
            ffn.push(to_vec(neuron));
            scores.linear_hidden(&layer.intermediate, grads, true);
            scores.linear_hidden(&layer.output, grads, false);
            scores.norm(&layer.layer_norm, grads);
        }
        Self {
            hidden: scores.hidden,
            heads,
            ffn,
            steps: 1,
        }
    }

    /// Folds a new step in: `self ← β·self + (1 − β)·new` (the first step is taken as is).
    pub fn smooth(&mut self, new: &Importance, beta: f32) {
        if self.steps == 0 {
            *self = new.clone();
            return;
        }
        let mix = |a: &mut [f32], b: &[f32]| {
            for (x, y) in a.iter_mut().zip(b) {
                *x = beta * *x + (1.0 - beta) * y;
            }
        };
        mix(&mut self.hidden, &new.hidden);
        for (a, b) in self.heads.iter_mut().zip(&new.heads) {
            mix(a, b);
        }
        for (a, b) in self.ffn.iter_mut().zip(&new.ffn) {
            mix(a, b);
        }
        self.steps += 1;
    }

    /// Nothing seen yet (all zeros), shaped like `masks`.
    pub fn empty(masks: &Masks) -> Self {
        Self {
            hidden: vec![0.0; masks.hidden.len()],
            heads: masks.heads.iter().map(|h| vec![0.0; h.len()]).collect(),
            ffn: masks.ffn.iter().map(|f| vec![0.0; f.len()]).collect(),
            steps: 0,
        }
    }
}

/// Kept counts of a student: hidden columns, heads per layer, neurons per layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    pub hidden: usize,
    pub heads: usize,
    pub ffn: usize,
}

/// The cubic schedule: between `start` and `end` (steps) the kept counts go from `full` to
/// `target` as `target + (full − target)·(1 − p)³`, `p` the fraction of the way.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PruneSchedule {
    pub full: Shape,
    pub target: Shape,
    pub start: usize,
    pub end: usize,
}

impl PruneSchedule {
    /// The kept counts at `step`.
    pub fn at(&self, step: usize) -> Shape {
        let p = if step <= self.start {
            0.0
        } else if step >= self.end || self.end <= self.start {
            1.0
        } else {
            (step - self.start) as f64 / (self.end - self.start) as f64
        };
        let f = (1.0 - p).powi(3);
        let count = |full: usize, target: usize| {
            (target as f64 + (full - target) as f64 * f).round() as usize
        };
        Shape {
            hidden: count(self.full.hidden, self.target.hidden),
            heads: count(self.full.heads, self.target.heads),
            ffn: count(self.full.ffn, self.target.ffn),
        }
    }
}

/// Keeps the `k` most important of `scores` among those `alive` (pruned ones stay pruned).
fn top_k(scores: &[f32], alive: &[bool], k: usize) -> Vec<bool> {
    let mut order: Vec<usize> = (0..scores.len()).filter(|&i| alive[i]).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut keep = vec![false; scores.len()];
    for &i in order.iter().take(k) {
        keep[i] = true;
    }
    keep
}

/// Keeps `per_layer × layers` heads over all layers together, the most important first, at
/// least one per layer (a layer needs a head); pruned heads stay pruned.
fn top_k_global(scores: &[Vec<f32>], alive: &[Vec<bool>], per_layer: usize) -> Vec<Vec<bool>> {
    let mut keep: Vec<Vec<bool>> = scores
        .iter()
        .zip(alive)
        .map(|(s, a)| top_k(s, a, 1))
        .collect();
    let mut order: Vec<(usize, usize)> = alive
        .iter()
        .enumerate()
        .flat_map(|(l, a)| (0..a.len()).filter(|&h| a[h]).map(move |h| (l, h)))
        .filter(|&(l, h)| !keep[l][h])
        .collect();
    order.sort_by(|&(la, ha), &(lb, hb)| {
        scores[lb][hb]
            .total_cmp(&scores[la][ha])
            .then((la, ha).cmp(&(lb, hb)))
    });
    let budget = (per_layer * scores.len()).saturating_sub(scores.len());
    for &(l, h) in order.iter().take(budget) {
        keep[l][h] = true;
    }
    keep
}

/// The masks for `shape`: the most important heads and neurons of each layer (with
/// `global_heads`, the heads' budget of all layers is shared out by importance instead),
/// globally the most important hidden columns; never reviving a pruned structure.
pub fn select_masks(
    importance: &Importance,
    current: &Masks,
    shape: Shape,
    global_heads: bool,
) -> Masks {
    let heads = if global_heads {
        top_k_global(&importance.heads, &current.heads, shape.heads)
    } else {
        importance
            .heads
            .iter()
            .zip(&current.heads)
            .map(|(s, alive)| top_k(s, alive, shape.heads))
            .collect()
    };
    Masks {
        hidden: top_k(&importance.hidden, &current.hidden, shape.hidden),
        heads,
        ffn: importance
            .ffn
            .iter()
            .zip(&current.ffn)
            .map(|(s, alive)| top_k(s, alive, shape.ffn))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distill::student::{masked_embeddings, masked_layers};
    use crate::fixtures::tiny_bert_files;
    use crate::text::TextEmbedder;
    use crate::text::pooling::masked_mean;

    #[test]
    fn cubic_schedule_shrinks_monotonically_to_the_target() {
        let s = PruneSchedule {
            full: Shape {
                hidden: 384,
                heads: 12,
                ffn: 1536,
            },
            target: Shape {
                hidden: 384,
                heads: 4,
                ffn: 384,
            },
            start: 10,
            end: 110,
        };
        assert_eq!(s.at(0), s.full);
        assert_eq!(s.at(10), s.full);
        assert_eq!(s.at(110), s.target);
        assert_eq!(s.at(500), s.target);
        let mut last = s.full;
        for step in 0..=120 {
            let now = s.at(step);
            assert!(now.heads <= last.heads && now.ffn <= last.ffn);
            last = now;
        }
        // Cubic: most of the pruning happens early.
        assert!(s.at(35).ffn < 1536 - (1536 - 384) / 2, "{:?}", s.at(35));
    }

    /// Importance has the structures' shapes; a masked-out head gets no gradient and so no
    /// importance; selection keeps the most important and never revives a pruned one.
    #[test]
    fn importance_scores_structures_and_selection_follows_it() {
        // Training-mode dropout draws from the shared CPU generator.
        let _seeded = crate::fixtures::SEEDED
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let base = Device::flex();
        let device = base.clone().autodiff();
        let embedder = TextEmbedder::from_files(&tiny_bert_files(4), &base).unwrap();
        let encoder = embedder.encoder.clone().unfreeze().fork(&device).train();
        let mut masks = Masks::full(&encoder);
        masks.heads[1][0] = false;
        masks.ffn[0][3] = false;
        let batch = embedder
            .tokenizer
            .encode_batch(&["red shoes", "blue coffee mug"])
            .unwrap();
        let ids = Tensor::<2, Int>::from_data(
            TensorData::new(batch.ids.clone(), [2, batch.seq_len]),
            &device,
        );
        let mask = Tensor::<2>::from_data(
            TensorData::new(batch.mask.clone(), [2, batch.seq_len]),
            &device,
        );
        let mt = masks.tensors(&device, 1e-12);
        let e = masked_embeddings(&encoder, ids, &mt);
        let last = masked_layers(&encoder, e, mask.clone(), &mt).pop().unwrap();
        let loss = masked_mean(last, mask).powi_scalar(2).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &encoder);
        let imp = Importance::of_step(&encoder, &grads);
        assert_eq!(imp.hidden.len(), 16);
        assert_eq!(imp.heads.len(), 2);
        assert_eq!(imp.heads[0].len(), 2);
        assert_eq!(imp.ffn[0].len(), 32);
        assert_eq!(imp.heads[1][0], 0.0, "a masked head has no gradient");
        assert!(imp.heads[1][1] > 0.0 && imp.heads[0][0] > 0.0);
        assert_eq!(imp.ffn[0][3], 0.0, "a masked neuron has no gradient");
        assert!(imp.hidden.iter().all(|v| *v > 0.0));

        let mut smoothed = Importance::empty(&masks);
        smoothed.smooth(&imp, 0.8);
        assert_eq!(smoothed, imp);
        smoothed.smooth(&Importance::empty(&masks), 0.8);
        assert!((smoothed.hidden[0] - 0.8 * imp.hidden[0]).abs() < 1e-6);

        let shape = Shape {
            hidden: 12,
            heads: 1,
            ffn: 20,
        };
        let next = select_masks(&imp, &masks, shape, false);
        assert_eq!(next.counts(), (12, vec![1, 1], vec![20, 20]));
        assert!(
            next.heads[1][1] && !next.heads[1][0],
            "the pruned head stays pruned"
        );
        assert!(!next.ffn[0][3]);
        let best = (0..32)
            .max_by(|&a, &b| imp.ffn[1][a].total_cmp(&imp.ffn[1][b]))
            .unwrap();
        assert!(next.ffn[1][best]);
    }

    /// A shared head budget goes to the most important heads wherever they are, keeps one per
    /// layer, and never revives a pruned head.
    #[test]
    fn global_heads_share_the_budget_by_importance() {
        let importance = Importance {
            hidden: vec![1.0; 4],
            heads: vec![
                vec![9.0, 8.0, 7.0, 0.5],
                vec![0.1, 0.2, 0.3, 0.4],
                vec![6.0, 5.0, 0.0, 4.0],
            ],
            ffn: vec![vec![1.0; 2]; 3],
            steps: 1,
        };
        let mut current = Masks {
            hidden: vec![true; 4],
            heads: vec![vec![true; 4]; 3],
            ffn: vec![vec![true; 2]; 3],
        };
        current.heads[0][1] = false;
        let shape = Shape {
            hidden: 4,
            heads: 2,
            ffn: 2,
        };
        let next = select_masks(&importance, &current, shape, true);
        assert_eq!(
            next.heads,
            vec![
                vec![true, false, true, false],
                vec![false, false, false, true],
                vec![true, true, false, true],
            ]
        );
        let uniform = select_masks(&importance, &current, shape, false);
        assert_eq!(uniform.counts().1, vec![2, 2, 2]);
    }
}
