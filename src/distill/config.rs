//! The distillation's settings and its learning-rate schedule.

use crate::distill::pruning::Shape;
use crate::text::config::BertConfig;

/// Distillation settings.
#[derive(burn::config::Config, Debug, PartialEq)]
pub struct DistillConfig {
    /// Epochs over the training texts. Default 12.
    #[config(default = 12)]
    pub epochs: usize,
    /// Epochs of stage 1 (COS-NCE alone); the rest are stage 2. Default 4.
    #[config(default = 4)]
    pub stage1_epochs: usize,
    /// Texts per batch (also COS-NCE's negatives). Default 32.
    #[config(default = 32)]
    pub batch_size: usize,
    /// AdamW learning rate. Default 2e-4.
    #[config(default = 2e-4)]
    pub lr: f64,
    /// COS-NCE temperature. Default 0.1.
    #[config(default = 0.1)]
    pub tau: f64,
    /// Temperature of the in-batch similarity distributions (stage 2 KL). Default 0.05.
    #[config(default = 0.05)]
    pub kl_tau: f64,
    /// FGM step on the embedding output in stage 2; 0 turns the perturbation off. Default 0.05.
    #[config(default = 0.05)]
    pub fgm_epsilon: f64,
    /// Teacher layers (0-based) the student keeps, in order; student layer `i` is distilled
    /// towards teacher layer `layer_map[i]`. Default: every layer.
    pub layer_map: Vec<usize>,
    /// HomoDistil's pruning; false keeps every head and neuron. Default true.
    #[config(default = true)]
    pub prune: bool,
    /// Heads and neurons per layer to prune down to (hidden width is kept: the output stays in
    /// the teacher's space).
    pub target: Shape,
    /// Pruning ends at this fraction of the steps (the rest trains the final shape). Default 0.6.
    #[config(default = 0.6)]
    pub prune_until: f64,
    /// Masks are re-selected every this many steps while pruning. Default 4.
    #[config(default = 4)]
    pub prune_every: usize,
    /// Importance smoothing β. Default 0.85.
    #[config(default = 0.85)]
    pub importance_beta: f32,
    /// Vocabulary pruning to the catalog's word-pieces. Default true.
    #[config(default = true)]
    pub prune_vocab: bool,
    /// Word-pieces per text (and rows of the student's position table). Default 128.
    #[config(default = 128)]
    pub max_len: usize,
    /// Shuffling and dropout seed. Default 2020.
    #[config(default = 2020)]
    pub seed: u64,
    /// Probability that a training text is replaced, for one step, by a copy with words dropped
    /// (each with probability 0.2): the teacher labels any text, so variants widen what the
    /// student is taught beyond the catalog's exact strings. Default 0.5; 0 turns it off.
    #[config(default = 0.5)]
    pub augment: f32,
    /// Weight of the output-level losses in stage 2. Default 1.
    #[config(default = 1.0)]
    pub output_weight: f64,
    /// Weight of COS-NCE on the layers; 0 leaves only the output-level losses (HomoDistil's
    /// pruning without LRC-BERT's layer loss — then every epoch is stage 2). Default 1.
    #[config(default = 1.0)]
    pub layer_weight: f64,
    /// Share of an augmented copy's words replaced by a word of another training text (a second
    /// kind of copy besides dropping words; the kinds in use are drawn evenly). Recombined titles teach the
    /// student the teacher's function on texts the catalog does not hold. Default 0: only
    /// dropping.
    #[config(default = 0.0)]
    pub replace_words: f32,
    /// The learning rate falls on a half cosine from `lr` to `lr × lr_floor` over the steps
    /// after pruning ends (over all steps without pruning): the pruned shape is trained at full
    /// rate, then settles. Default 1: constant.
    #[config(default = 1.0)]
    pub lr_floor: f64,
    /// Weight of the word-piece-level loss: each mapped student layer's state of every piece is
    /// pulled towards the teacher layer's (`1 − cos`), in both stages. Default 0: off.
    #[config(default = 0.0)]
    pub token_weight: f64,
    /// Share of an augmented copy's words replaced by random whole words of the teacher's
    /// vocabulary (a third kind of copy besides dropping and catalog words). A catalog's own
    /// texts use a few thousand word-pieces; the teacher's function on the rest of its
    /// vocabulary is what lets the student read pieces the training texts never used (the
    /// held-out texts' rare names). The student then trains with the teacher's whole
    /// embedding table, pruned to the catalog's pieces at the end. Default 0: off.
    #[config(default = 0.0)]
    pub vocab_words: f32,
    /// Share the heads' budget (`target.heads` × layers) out over the layers by importance
    /// instead of the same count in each (at least one per layer; HF's `pruned_heads` holds
    /// any per-layer count, and the compute is the same). Default false.
    #[config(default = false)]
    pub global_heads: bool,
    /// Dropout of the student while it learns (every dropout of the encoder: embeddings,
    /// attention probabilities and outputs, feed-forward outputs). Default `None`: the
    /// teacher's `config.json` (0.1 for MiniLM).
    pub dropout: Option<f64>,
    /// Keep the word-piece embedding table at the teacher's values. Pieces no training text uses
    /// get no gradient; when the trained rows drift, the untrained ones no longer match what the
    /// student's layers expect, and texts with unseen words lose most. Default false.
    #[config(default = false)]
    pub freeze_words: bool,
    /// Weight of MiniLM's self-attention relation loss on the last layer: KL between the
    /// teacher's last mapped layer's attention distributions and value relations and the
    /// student's last layer's, head by head, in both stages. A pooled vector is one target per
    /// text; the relations are one distribution per word-piece and head. Default 0: off.
    #[config(default = 0.0)]
    pub relation_weight: f64,
    /// Polyak averaging: once the shape is final (pruning done), the student that is evaluated
    /// and sliced is the exponential moving average of the weights, updated every step with
    /// this factor (0.998 averages over the last ~500 steps). Default 0: the last weights.
    #[config(default = 0.0)]
    pub average: f64,
    /// Share of an augmented copy's words replaced by one of their nearest whole words in the
    /// teacher's input embedding table (TinyBERT's augmentation; a fourth kind of copy).
    /// Default 0: off.
    #[config(default = 0.0)]
    pub neighbour_words: f32,
}

/// The learning rate at `step` of `total`: `lr` until `start`, then a half cosine down to
/// `lr × floor` at the last step.
pub fn decayed_lr(lr: f64, floor: f64, step: usize, start: usize, total: usize) -> f64 {
    if floor >= 1.0 || step <= start || total <= start + 1 {
        return lr;
    }
    let p = ((step - start) as f64 / (total - 1 - start) as f64).min(1.0);
    lr * (floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()))
}

impl DistillConfig {
    /// The defaults for a teacher of `teacher`'s shape: every layer kept, pruned to 4 heads
    /// and 384 neurons per layer (`ranklet distill`'s own defaults are the measured recipe).
    pub fn for_teacher(teacher: &BertConfig) -> Self {
        Self::new(
            (0..teacher.num_hidden_layers).collect(),
            Shape {
                hidden: teacher.hidden_size,
                heads: 4,
                ffn: 384,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learning_rate_holds_then_falls_on_a_half_cosine_to_the_floor() {
        let lr = |step| decayed_lr(1.0, 0.1, step, 10, 31);
        assert_eq!(lr(0), 1.0);
        assert_eq!(lr(10), 1.0);
        assert!((lr(20) - 0.55).abs() < 1e-9, "{}", lr(20));
        assert!((lr(30) - 0.1).abs() < 1e-9);
        assert!((1..31).all(|s| lr(s) <= lr(s - 1)));
        assert_eq!(decayed_lr(1.0, 1.0, 30, 10, 31), 1.0);
    }
}
