//! Causal training windows: every next-item pair of the training sequences, cut into windows
//! of the model's history length, with each event's type, CLSD weight and scene.

use crate::contracts::{EventKind, SceneContext};
use crate::data::Split;
use crate::rng::SplitMix;

/// Where each causal training window lies: (user, start, end) in `split.train[user]`. Each
/// training sequence is cut from its end into pieces of `max_len + 1` events overlapping by
/// one, so every next-item pair is supervised once.
pub fn window_spans(split: &Split, max_len: usize) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    for (user, seq) in split.train.iter().enumerate() {
        let mut end = seq.len();
        while end >= 2 {
            let start = end.saturating_sub(max_len + 1);
            out.push((user, start, end));
            if start == 0 {
                break;
            }
            end = start + 1;
        }
    }
    out
}

/// Causal training windows as (inputs, next-item targets); see [`window_spans`].
pub fn windows(split: &Split, max_len: usize) -> Vec<(Vec<usize>, Vec<usize>)> {
    window_spans(split, max_len)
        .into_iter()
        .map(|(u, s, e)| {
            let w = &split.train[u][s..e];
            (w[..w.len() - 1].to_vec(), w[1..].to_vec())
        })
        .collect()
}

/// A training window with its events' types and CLSD weights.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainWindow {
    pub inputs: Vec<usize>,
    pub targets: Vec<usize>,
    /// Behaviour type of each input event.
    pub kinds: Vec<EventKind>,
    /// Confidence of each input event (1 without CLSD).
    pub input_weights: Vec<f32>,
    /// Confidence of each target (1 without CLSD).
    pub target_weights: Vec<f32>,
    /// The scene of each position's request (its target's hour of day).
    pub contexts: Vec<SceneContext>,
}

/// The training windows of `split`, weighted by `confidence` (per user and event) if given.
pub fn train_windows(
    split: &Split,
    max_len: usize,
    confidence: Option<&[Vec<f32>]>,
) -> Vec<TrainWindow> {
    window_spans(split, max_len)
        .into_iter()
        .map(|(u, s, e)| {
            let w = &split.train[u][s..e];
            let kinds = split
                .train_kinds
                .get(u)
                .filter(|k| k.len() == split.train[u].len())
                .map(|k| k[s..e - 1].to_vec())
                .unwrap_or_else(|| vec![EventKind::Click; e - s - 1]);
            let conf = |range: std::ops::Range<usize>| -> Vec<f32> {
                match confidence {
                    Some(c) => c[u][range].to_vec(),
                    None => vec![1.0; range.len()],
                }
            };
            TrainWindow {
                inputs: w[..w.len() - 1].to_vec(),
                targets: w[1..].to_vec(),
                kinds,
                input_weights: conf(s..e - 1),
                target_weights: conf(s + 1..e),
                contexts: split
                    .train_contexts
                    .get(u)
                    .filter(|c| c.len() == split.train[u].len())
                    .map(|c| c[s + 1..e].to_vec())
                    .unwrap_or_else(|| vec![SceneContext::default(); e - s - 1]),
            }
        })
        .collect()
}

/// A copy of `items` with each one dropped with probability `p` (at least one kept).
pub(crate) fn item_drop(items: &[usize], p: f32, rng: &mut SplitMix) -> Vec<usize> {
    let kept: Vec<usize> = items
        .iter()
        .copied()
        .filter(|_| rng.next_f32() >= p)
        .collect();
    if kept.is_empty() {
        items[items.len() - 1..].to_vec()
    } else {
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_supervise_every_pair_once() {
        let split = Split {
            train: vec![(0..7).collect(), vec![1], vec![3, 4]],
            train_kinds: vec![],
            train_contexts: vec![],
            valid: vec![],
            test: vec![],
            short_users: 0,
            max_len: 3,
            held_out: Vec::new(),
        };
        let w = windows(&split, 3);
        let pairs: usize = w.iter().map(|(_, t)| t.len()).sum();
        assert_eq!(pairs, 6 + 1);
        assert_eq!(w[0], (vec![3, 4, 5], vec![4, 5, 6]));
        assert!(w.iter().all(|(i, t)| i.len() == t.len() && i.len() <= 3));
    }
}
