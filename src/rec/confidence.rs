//! CLSD's confidences of history events: the model's own full-softmax log-probability of each
//! event after the events before it, turned into a weight by the model's CLSD statistics.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use crate::rec::batch::SequenceBatch;
use crate::rec::{ItemVectors, Recommender};

/// `values` (`[batch·len]`, one per position) as per-row vectors, NaN where a position has no
/// target inside the catalog's `n` items.
fn per_position(batch: &SequenceBatch, values: &[f32], n: usize) -> Vec<Vec<f32>> {
    let l = batch.len;
    (0..batch.batch)
        .map(|r| {
            (0..batch.lens[r])
                .map(|t| {
                    let k = r * l + t;
                    let target = batch.targets[k];
                    if batch.weights[k] > 0.0 && (0..n as i64).contains(&target) {
                        values[k]
                    } else {
                        f32::NAN
                    }
                })
                .collect()
        })
        .collect()
}

/// `batch` with each position's target set to the next input event (none at a row's end).
fn next_event_targets(batch: &SequenceBatch) -> SequenceBatch {
    let l = batch.len;
    let mut next = batch.clone();
    for r in 0..batch.batch {
        for t in 0..l {
            let k = r * l + t;
            let has_next = t + 1 < batch.lens[r];
            next.targets[k] = if has_next { batch.items[k + 1] } else { 0 };
            next.weights[k] = if has_next { 1.0 } else { 0.0 };
        }
    }
    next
}

/// Per row, the value at t − 1 moved to t (the score of event t from the position before it).
fn shift_right(rows: Vec<Vec<f32>>) -> Vec<Vec<f32>> {
    rows.into_iter()
        .map(|row| {
            let mut shifted = vec![f32::NAN; row.len()];
            if !row.is_empty() {
                shifted[1..].copy_from_slice(&row[..row.len() - 1]);
            }
            shifted
        })
        .collect()
}

impl Recommender {
    /// `[batch·len, 1]` log-probabilities (full softmax over the catalog's items) of each
    /// position's target after inputs 0..=t, the inputs read unweighted.
    fn target_log_prob_tensor(&self, batch: &SequenceBatch, items: &ItemVectors) -> Tensor<2> {
        let unweighted = SequenceBatch {
            confidence: vec![1.0; batch.confidence.len()],
            ..batch.clone()
        };
        let states = self.encode_with(&unweighted, items);
        let [b, l, h] = states.dims();
        let n = items.items;
        let logits = self.scores_of(
            states.reshape([b * l, h]),
            items.unit.clone().slice([0..n, 0..h]),
        );
        let logp = log_softmax(logits, 1);
        let targets: Vec<i64> = batch
            .targets
            .iter()
            .map(|&t| t.clamp(0, n as i64 - 1))
            .collect();
        let targets =
            Tensor::<2, Int>::from_data(TensorData::new(targets, [b * l, 1]), &logp.device());
        logp.gather(1, targets)
    }

    /// Per row and position t, the log-probability (full softmax over the catalog's items) of
    /// the row's target at t after inputs 0..=t; NaN where there is no target. The inputs are
    /// read unweighted: this is what CLSD's confidences are computed from.
    pub fn target_log_probs(&self, batch: &SequenceBatch, items: &ItemVectors) -> Vec<Vec<f32>> {
        let values = self
            .target_log_prob_tensor(batch, items)
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 log-probabilities");
        per_position(batch, &values, items.items)
    }

    /// Per row, the log-probability of each input event after the events before it (NaN for
    /// the first event, and for rows past the catalog such as search queries).
    pub fn event_log_probs(&self, batch: &SequenceBatch, items: &ItemVectors) -> Vec<Vec<f32>> {
        let next = next_event_targets(batch);
        shift_right(self.target_log_probs(&next, items))
    }

    /// Each row's CLSD confidences from its events' log-probabilities (`None` without CLSD).
    fn confidences(&self, scores: &[Vec<f32>], activity: &[usize]) -> Option<Vec<Vec<f32>>> {
        let stats = self.clsd.as_ref()?;
        Some(
            scores
                .iter()
                .zip(activity)
                .map(|(row, &n)| row.iter().map(|&s| stats.confidence(s, n)).collect())
                .collect(),
        )
    }

    /// `batch` with its input events weighted by their CLSD confidence, if the model has CLSD
    /// statistics; `activity[r]` is row r's user's number of events (its group).
    pub fn with_confidence(
        &self,
        batch: SequenceBatch,
        items: &ItemVectors,
        activity: &[usize],
    ) -> SequenceBatch {
        if self.clsd.is_none() {
            return batch;
        }
        let scores = self.event_log_probs(&batch, items);
        let conf = self.confidences(&scores, activity).expect("clsd is set");
        let rows: Vec<&[f32]> = conf.iter().map(Vec::as_slice).collect();
        batch.with_confidence(&rows)
    }

    /// [`Recommender::with_confidence`] with the scores read back by `read` (asynchronously on
    /// WebGPU).
    pub async fn with_confidence_read<R: crate::rec::readback::ReadBack>(
        &self,
        batch: SequenceBatch,
        items: &ItemVectors,
        activity: &[usize],
        read: &R,
    ) -> crate::Result<SequenceBatch> {
        if self.clsd.is_none() {
            return Ok(batch);
        }
        let next = next_event_targets(&batch);
        let values = read.read(self.target_log_prob_tensor(&next, items)).await?;
        let scores = shift_right(per_position(&next, &values, items.items));
        let conf = self.confidences(&scores, activity).expect("clsd is set");
        let rows: Vec<&[f32]> = conf.iter().map(Vec::as_slice).collect();
        Ok(batch.with_confidence(&rows))
    }
}
