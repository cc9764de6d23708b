//! A batch of item sequences as the recommender reads it: items, next-item targets, behaviour
//! types, confidences and the scene of each position, right-padded.

use crate::contracts::{EventKind, SceneContext};

/// A right-padded batch of item sequences.
#[derive(Debug, Clone)]
pub struct SequenceBatch {
    /// Item indices `[batch, len]` (padding holds 0).
    pub items: Vec<i64>,
    /// Next-item targets at each position (0 where there is none).
    pub targets: Vec<i64>,
    /// 1.0 where a target exists.
    pub weights: Vec<f32>,
    /// Real length of each row.
    pub lens: Vec<usize>,
    /// Behaviour type of each input event (`EventKind as i64`; 0, a click, by default).
    pub kinds: Vec<i64>,
    /// Weight of each input event's item vector (CLSD confidence; 1 by default).
    pub confidence: Vec<f32>,
    /// The scene of the request each position answers (rows of the context encoders; all
    /// unknown by default).
    pub context: Vec<[i64; 3]>,
    pub batch: usize,
    pub len: usize,
}

impl SequenceBatch {
    /// Rows of (input items, next-item targets); targets may be shorter than inputs (an
    /// evaluation row has none).
    pub fn new(rows: &[(&[usize], &[usize])]) -> Self {
        let len = rows.iter().map(|(i, _)| i.len()).max().unwrap_or(1).max(1);
        let batch = rows.len();
        let mut s = Self {
            items: vec![0; batch * len],
            targets: vec![0; batch * len],
            weights: vec![0.0; batch * len],
            lens: Vec::with_capacity(batch),
            kinds: vec![0; batch * len],
            confidence: vec![1.0; batch * len],
            context: vec![[0; 3]; batch * len],
            batch,
            len,
        };
        for (b, (inputs, targets)) in rows.iter().enumerate() {
            for (t, &i) in inputs.iter().enumerate() {
                s.items[b * len + t] = i as i64;
            }
            for (t, &i) in targets.iter().enumerate() {
                s.targets[b * len + t] = i as i64;
                s.weights[b * len + t] = 1.0;
            }
            s.lens.push(inputs.len());
        }
        s
    }

    /// Sets each row's input event types (aligned with its inputs; shorter rows are clicks).
    pub fn with_kinds(mut self, kinds: &[&[EventKind]]) -> Self {
        for (b, row) in kinds.iter().enumerate().take(self.batch) {
            for (t, k) in row.iter().enumerate().take(self.len) {
                self.kinds[b * self.len + t] = *k as i64;
            }
        }
        self
    }

    /// Sets the scene of each row's positions (aligned with its inputs).
    pub fn with_contexts(mut self, contexts: &[&[SceneContext]]) -> Self {
        for (b, row) in contexts.iter().enumerate().take(self.batch) {
            for (t, c) in row.iter().enumerate().take(self.len) {
                self.context[b * self.len + t] = c.rows();
            }
        }
        self
    }

    /// Sets the scene of each row's last position: the request being answered.
    pub fn with_request_context(mut self, contexts: &[SceneContext]) -> Self {
        for (b, c) in contexts.iter().enumerate().take(self.batch) {
            let t = self.lens[b].max(1) - 1;
            self.context[b * self.len + t] = c.rows();
        }
        self
    }

    /// Sets each row's input event weights (aligned with its inputs).
    pub fn with_confidence(mut self, confidence: &[&[f32]]) -> Self {
        for (b, row) in confidence.iter().enumerate().take(self.batch) {
            for (t, c) in row.iter().enumerate().take(self.len) {
                self.confidence[b * self.len + t] = *c;
            }
        }
        self
    }

    /// Multiplies each row's target weights (aligned with its targets) by `weights`.
    pub fn weight_targets(mut self, weights: &[&[f32]]) -> Self {
        for (b, row) in weights.iter().enumerate().take(self.batch) {
            for (t, w) in row.iter().enumerate().take(self.len) {
                self.weights[b * self.len + t] *= *w;
            }
        }
        self
    }
}
