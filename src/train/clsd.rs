//! CLSD's self-distillation pass (click confidence): the previous epoch's model scores every
//! training click in its context, standardised within user activity groups.

use burn::prelude::*;

use crate::contracts::EventKind;
use crate::data::Split;
use crate::rec::signals::ClsdStats;
use crate::rec::{Recommender, SequenceBatch};
use crate::train::windows::window_spans;

/// CLSD's self-distillation pass: `model` (the previous epoch's, in inference mode) scores
/// every training click in its context; the scores are standardised within `groups` activity
/// groups. Returns the statistics and each training event's confidence (the first event of a
/// sequence, which has no context, weighs 1).
pub fn clsd_pass(
    model: &Recommender,
    text: &Tensor<2>,
    split: &Split,
    max_len: usize,
    groups: usize,
    strength: f32,
) -> (ClsdStats, Vec<Vec<f32>>) {
    let items = model.item_vectors(text.clone());
    let spans = window_spans(split, max_len);
    let mut scores: Vec<Vec<f32>> = split
        .train
        .iter()
        .map(|s| vec![f32::NAN; s.len()])
        .collect();
    for chunk in spans.chunks(256) {
        let rows: Vec<(&[usize], &[usize])> = chunk
            .iter()
            .map(|&(u, s, e)| (&split.train[u][s..e - 1], &split.train[u][s + 1..e]))
            .collect();
        let kinds: Vec<&[EventKind]> = chunk
            .iter()
            .map(|&(u, s, e)| split.train_kinds.get(u).map_or(&[][..], |k| &k[s..e - 1]))
            .collect();
        let batch = SequenceBatch::new(&rows).with_kinds(&kinds);
        for (&(u, s, _), row) in chunk.iter().zip(model.target_log_probs(&batch, &items)) {
            for (t, v) in row.into_iter().enumerate() {
                scores[u][s + t + 1] = v;
            }
        }
    }
    let lengths: Vec<usize> = split.train.iter().map(Vec::len).collect();
    let finite: Vec<Vec<f32>> = scores
        .iter()
        .map(|r| r.iter().copied().filter(|x| x.is_finite()).collect())
        .collect();
    let stats = ClsdStats::fit(&lengths, &finite, groups, strength);
    let confidence = scores
        .iter()
        .zip(&lengths)
        .map(|(r, &n)| r.iter().map(|&v| stats.confidence(v, n)).collect())
        .collect();
    (stats, confidence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::SceneContext;
    use crate::data::synthetic::synthetic_dataset;
    use crate::fixtures::SEEDED;
    use crate::jobs::Silent;
    use crate::rec::ItemMode;
    use crate::train::test_support::{small_config, topic_text};
    use crate::train::{CheckpointOptions, TrainConfig, Trained, train};

    /// CLSD on noisy data: after training, the self-distilled confidences of injected noise
    /// clicks are well below those of the real clicks; the model with every signal (types, DUMN,
    /// CLSD) trains, keeps its statistics, and ranks a history made only of dislikes without
    /// NaN (and explains nothing by a disliked item).
    #[test]
    fn clsd_trusts_noise_clicks_less_and_typed_models_rank_any_history() {
        let _seeded = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
        let clean =
            crate::data::synthetic::with_typed_feedback(synthetic_dataset(120, 48, 8, 16, 5));
        let noisy = clean.with_noise_clicks(0.3, 11);
        let split = Split::leave_one_out(&noisy, 10);
        let clean_split = Split::leave_one_out(&clean, 10);
        let device = Device::flex().autodiff();
        device.seed(7);
        let mut config = small_config(
            ItemMode::Inductive,
            clean.items.len(),
            16,
            32,
            (0.0, 0.1),
            10,
        );
        config.signals = crate::rec::SignalsConfig {
            kinds: true,
            memory_slots: 2,
            context: true,
            context_vocabulary: None,
            clsd: None,
            persona: None,
        };
        let text = topic_text(clean.items.len(), &device);
        let train_config = TrainConfig {
            epochs: 12,
            batch_size: 32,
            lr: 5e-3,
            patience: 12,
            max_len: 10,
            clsd_groups: 2,
            clsd_strength: 1.0,
            ..TrainConfig::default()
        };
        let Trained { best, log, .. } = train(
            Recommender::init(&config, &device),
            &text,
            &split,
            &train_config,
            &CheckpointOptions::default(),
            &mut Silent,
        )
        .unwrap();
        assert!(log.last().unwrap().loss < log[0].loss, "{log:?}");
        assert!(
            best.clsd.is_some(),
            "the best model carries its CLSD statistics"
        );
        let plain_text = text.clone().inner();
        let (_, confidence) = clsd_pass(&best, &plain_text, &split, 10, 2, 1.0);
        // Which training events are noise: walk the noisy sequence against the clean one.
        let (mut noise, mut real) = (Vec::new(), Vec::new());
        for (u, seq) in split.train.iter().enumerate() {
            let original = &clean_split.train[u];
            let mut next = 0;
            for (t, &item) in seq.iter().enumerate() {
                let is_real = next < original.len() && original[next] == item;
                next += usize::from(is_real);
                // The first event has no context (confidence 1): not a judgement.
                if t > 0 {
                    if is_real { &mut real } else { &mut noise }.push(confidence[u][t]);
                }
            }
        }
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len().max(1) as f32;
        let (n, r) = (mean(&noise), mean(&real));
        assert!(
            noise.len() > 50 && real.len() > 200,
            "{} / {}",
            noise.len(),
            real.len()
        );
        eprintln!("mean CLSD confidence: noise clicks {n:.3}, real clicks {r:.3}");
        assert!(n < 0.8 * r, "noise clicks {n:.3} vs real clicks {r:.3}");
        assert!(
            confidence
                .iter()
                .flatten()
                .all(|c| c.is_finite() && *c >= 0.0 && *c <= 2.0)
        );

        // A history of dislikes only: finite scores, no disliked item as an explanation.
        // (Through the one recommend path, as `ranklet recommend` and the browser rank.)
        let state = crate::rec::RankingState::new(&best, plain_text, true).unwrap();
        let history = [3usize, 9, 14];
        let kinds = [EventKind::Dislike; 3];
        let recs = state
            .recommend(
                &best,
                &crate::rec::RecommendRequest {
                    history: &history,
                    kinds: &kinds,
                    context: SceneContext {
                        hour: Some(9),
                        ..SceneContext::default()
                    },
                    k: 5,
                    exclude_seen: true,
                    because: 2,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(recs.len(), 5);
        assert!(
            recs.iter()
                .all(|r| r.score.is_finite() && r.because.is_empty())
        );
        assert!(recs.iter().all(|r| !history.contains(&r.item)));
    }
}
