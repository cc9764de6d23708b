//! The leave-one-out split, exactly as docs/design.md (Evaluation protocol) says, and the
//! cold-start holdout.

use crate::contracts::{EventKind, SceneContext};
use crate::data::dataset::Dataset;

/// A history and the item that follows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub user: usize,
    /// Item indices, oldest first, at most `max_len` (the most recent).
    pub history: Vec<usize>,
    /// The behaviour type of each `history` event.
    pub kinds: Vec<EventKind>,
    pub target: usize,
    /// The scene of the request (the target event's hour of day).
    pub context: SceneContext,
    /// Every item the user had before the target, uncapped: what "masking seen items" removes
    /// (RecBole masks the whole past, not only the last `max_len`). Empty for training rows.
    pub seen: Vec<usize>,
}

/// Keeps the events of `items` (and their `kinds`, if aligned) whose item passes `keep`.
fn retain_items(items: &mut Vec<usize>, kinds: &mut Vec<EventKind>, keep: impl Fn(&usize) -> bool) {
    if kinds.len() == items.len() {
        let mut k = kinds.iter();
        let mut kept_kinds = Vec::with_capacity(kinds.len());
        items.retain(|i| {
            let kind = *k.next().expect("aligned");
            let keep = keep(i);
            if keep {
                kept_kinds.push(kind);
            }
            keep
        });
        *kinds = kept_kinds;
    } else {
        items.retain(keep);
    }
}

/// The items a cold-start split holds out of training ([`Split::hold_out_items`]), sorted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeldOut {
    /// New items of the test: test users whose target is one of them form the cold test.
    pub test: Vec<usize>,
    /// New items of the validation: their validation examples stay.
    pub valid: Vec<usize>,
}

impl HeldOut {
    /// Every item never seen in training, sorted.
    pub fn all(&self) -> Vec<usize> {
        let mut all: Vec<usize> = self.test.iter().chain(&self.valid).copied().collect();
        all.sort_unstable();
        all
    }
}

/// Leave-one-out split (docs/design.md, Evaluation protocol).
#[derive(Debug, Clone)]
pub struct Split {
    /// Per user, the training part of the sequence (all but the last two).
    pub train: Vec<Vec<usize>>,
    /// The behaviour types of `train`'s events (same shape).
    pub train_kinds: Vec<Vec<EventKind>>,
    /// The scene of each of `train`'s events (its hour of day; same shape).
    pub train_contexts: Vec<Vec<SceneContext>>,
    /// Target = second-to-last item, history = the training part.
    pub valid: Vec<Example>,
    /// Target = last item, history = training part + validation item.
    pub test: Vec<Example>,
    /// Users with fewer than 3 interactions: all their items are training data; they are not
    /// evaluated.
    pub short_users: usize,
    pub max_len: usize,
    /// Items held out of training entirely (cold start), sorted; empty normally. Training
    /// leaves them out of the softmax too: they do not exist yet.
    pub held_out: Vec<usize>,
}

fn tail<T: Clone>(seq: &[T], max_len: usize) -> Vec<T> {
    seq[seq.len().saturating_sub(max_len)..].to_vec()
}

impl Split {
    pub fn leave_one_out(ds: &Dataset, max_len: usize) -> Self {
        let mut split = Split {
            train: Vec::new(),
            train_kinds: Vec::new(),
            train_contexts: Vec::new(),
            valid: Vec::new(),
            test: Vec::new(),
            short_users: 0,
            max_len,
            held_out: Vec::new(),
        };
        for (user, seq) in ds.sequences.iter().enumerate() {
            let n = seq.len();
            let kinds = match ds.kinds.get(user) {
                Some(k) if k.len() == n => k.clone(),
                _ => vec![EventKind::Click; n],
            };
            let contexts: Vec<SceneContext> = match ds.times.get(user) {
                Some(t) if t.len() == n => {
                    t.iter().map(|&ts| SceneContext::at_unix_time(ts)).collect()
                }
                _ => vec![SceneContext::default(); n],
            };
            if n < 3 {
                split.short_users += 1;
                split.train.push(seq.clone());
                split.train_kinds.push(kinds);
                split.train_contexts.push(contexts);
                continue;
            }
            split.train.push(seq[..n - 2].to_vec());
            split.train_kinds.push(kinds[..n - 2].to_vec());
            split.train_contexts.push(contexts[..n - 2].to_vec());
            split.valid.push(Example {
                user,
                history: tail(&seq[..n - 2], max_len),
                kinds: tail(&kinds[..n - 2], max_len),
                target: seq[n - 2],
                context: contexts[n - 2],
                seen: seq[..n - 2].to_vec(),
            });
            split.test.push(Example {
                user,
                history: tail(&seq[..n - 1], max_len),
                kinds: tail(&kinds[..n - 1], max_len),
                target: seq[n - 1],
                context: contexts[n - 1],
                seen: seq[..n - 1].to_vec(),
            });
        }
        split
    }

    /// The cold-start protocol: picks `fraction` of the items (seeded) and removes them from
    /// training entirely — from every training sequence, and from validation as targets — so
    /// the model never sees them interact. Test examples stay; those whose target is held out
    /// are the cold-start test set ([`Split::cold_test`]).
    ///
    /// `valid_fraction` more of the items (drawn after the test's, so a seed holds out the same
    /// test items whatever it is) are removed from training too, but the validation examples
    /// whose target is one of them stay: new items as validation sees them, on which what new
    /// items need (the policies of `eval::new_items`) is chosen without touching the test.
    pub fn hold_out_items(
        &mut self,
        num_items: usize,
        fraction: f64,
        valid_fraction: f64,
        seed: u64,
    ) -> HeldOut {
        let mut rng = crate::rng::SplitMix(seed);
        let mut order: Vec<usize> = (0..num_items).collect();
        for i in (1..order.len()).rev() {
            let j = ((rng.next_f32() * (i + 1) as f32) as usize).min(i);
            order.swap(i, j);
        }
        let count = |f: f64| ((num_items as f64) * f.clamp(0.0, 1.0)).round() as usize;
        let take = count(fraction);
        let more = count(valid_fraction).min(num_items - take);
        let mut test: Vec<usize> = order[..take].to_vec();
        let mut valid: Vec<usize> = order[take..take + more].to_vec();
        test.sort_unstable();
        valid.sort_unstable();
        let mut all: Vec<usize> = test.iter().chain(&valid).copied().collect();
        all.sort_unstable();
        let is_held = |i: &usize| all.binary_search(i).is_ok();
        for ((seq, kinds), contexts) in self
            .train
            .iter_mut()
            .zip(&mut self.train_kinds)
            .zip(&mut self.train_contexts)
        {
            if contexts.len() == seq.len() {
                let mut keep = seq.iter().map(|i| !is_held(i));
                contexts.retain(|_| keep.next().unwrap_or(true));
            }
            retain_items(seq, kinds, |i| !is_held(i));
        }
        self.valid
            .retain(|e| test.binary_search(&e.target).is_err());
        for e in &mut self.valid {
            // A validation history is training data: no held-out item in it.
            retain_items(&mut e.history, &mut e.kinds, |i| !is_held(i));
        }
        self.held_out = all;
        HeldOut { test, valid }
    }

    /// Test examples whose target is one of `held` (sorted).
    pub fn cold_test(&self, held: &[usize]) -> Vec<Example> {
        self.test
            .iter()
            .filter(|e| held.binary_search(&e.target).is_ok())
            .cloned()
            .collect()
    }

    /// RecBole's training rows: every prefix of a training sequence predicts its next item.
    pub fn train_prefixes(&self) -> impl Iterator<Item = Example> + '_ {
        self.train.iter().enumerate().flat_map(move |(user, seq)| {
            (1..seq.len()).map(move |t| Example {
                user,
                history: tail(&seq[..t], self.max_len),
                kinds: tail(&self.train_kinds[user][..t], self.max_len),
                target: seq[t],
                context: self.train_contexts[user][t],
                seen: Vec::new(),
            })
        })
    }

    /// How often each item occurs in the histories the test examples read (`seen`, held-out
    /// items included), less each history's last `drop` events: the figures a shop's catalogue
    /// shows as `popularity` at test time (`drop` 0) and at validation time (`drop` 1), counts
    /// that keep coming after training, new items' too. No example's target is counted.
    pub fn catalogue_counts(&self, num_items: usize, drop: usize) -> Vec<f32> {
        let mut counts = vec![0.0; num_items];
        for e in &self.test {
            let kept = e.seen.len().saturating_sub(drop);
            for &i in &e.seen[..kept] {
                if let Some(c) = counts.get_mut(i) {
                    *c += 1.0;
                }
            }
        }
        counts
    }

    /// Interaction counts per item over the training sequences.
    pub fn train_counts(&self, num_items: usize) -> Vec<u32> {
        let mut counts = vec![0; num_items];
        for &i in self.train.iter().flatten() {
            counts[i] += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::tests::ITEM;

    #[test]
    fn held_out_items_never_reach_training_and_form_the_cold_test_set() {
        let ds = crate::data::synthetic::synthetic_dataset(60, 40, 8, 12, 3);
        let mut split = Split::leave_one_out(&ds, 10);
        let tests_before = split.test.len();
        let held = split.hold_out_items(ds.items.len(), 0.1, 0.0, 5).test;
        assert_eq!(held.len(), 4);
        assert!(split.train.iter().flatten().all(|i| !held.contains(i)));
        assert!(split.valid.iter().all(|e| !held.contains(&e.target)));
        assert_eq!(split.test.len(), tests_before);
        let cold = split.cold_test(&held);
        assert!(cold.iter().all(|e| held.contains(&e.target)));
        assert_eq!(
            cold.len(),
            split
                .test
                .iter()
                .filter(|e| held.contains(&e.target))
                .count()
        );
        // Seeded: the same seed holds out the same items.
        let mut again = Split::leave_one_out(&ds, 10);
        assert_eq!(again.hold_out_items(ds.items.len(), 0.1, 0.0, 5).test, held);
    }

    /// The catalogue's counts read the histories the test reads (held-out items too), never a
    /// target; validation's time drops each history's last event, which is its own target.
    #[test]
    fn catalogue_counts_count_histories_not_targets() {
        let ds = crate::data::synthetic::synthetic_dataset(60, 40, 8, 12, 3);
        let mut split = Split::leave_one_out(&ds, 10);
        let held = split.hold_out_items(ds.items.len(), 0.1, 0.0, 5).test;
        let at_test = split.catalogue_counts(ds.items.len(), 0);
        let at_valid = split.catalogue_counts(ds.items.len(), 1);
        let events: usize = split.test.iter().map(|e| e.seen.len()).sum();
        assert_eq!(at_test.iter().sum::<f32>() as usize, events);
        assert_eq!(
            at_valid.iter().sum::<f32>() as usize,
            events - split.test.len()
        );
        // A held-out item never reaches training, but visitors keep choosing it.
        let train = split.train_counts(ds.items.len());
        assert!(held.iter().all(|&i| train[i] == 0));
        assert!(held.iter().any(|&i| at_test[i] > 0.0), "{held:?}");
        // Each validation target is the last event of its test history: counted at test time,
        // not at validation time.
        let mut by_hand = vec![0.0f32; ds.items.len()];
        for e in &split.test {
            for &i in &e.seen[..e.seen.len() - 1] {
                by_hand[i] += 1.0;
            }
        }
        assert_eq!(at_valid, by_hand);
    }

    #[test]
    fn validation_new_items_leave_training_but_keep_their_validation_examples() {
        let ds = crate::data::synthetic::synthetic_dataset(200, 40, 8, 12, 3);
        let mut plain = Split::leave_one_out(&ds, 10);
        let test_only = plain.hold_out_items(ds.items.len(), 0.1, 0.0, 5);
        let mut split = Split::leave_one_out(&ds, 10);
        let held = split.hold_out_items(ds.items.len(), 0.1, 0.2, 5);
        // The same seed holds out the same test items, whatever the validation's share.
        assert_eq!(held.test, test_only.test);
        assert_eq!(held.valid.len(), 8);
        assert!(held.valid.iter().all(|i| !held.test.contains(i)));
        assert_eq!(split.held_out, held.all());
        assert!(
            split
                .train
                .iter()
                .flatten()
                .all(|i| !split.held_out.contains(i))
        );
        // Validation keeps the examples whose target is a validation new item, drops the test's.
        assert!(split.valid.iter().all(|e| !held.test.contains(&e.target)));
        let new_targets = split
            .valid
            .iter()
            .filter(|e| held.valid.contains(&e.target))
            .count();
        assert!(new_targets > 0, "no validation example targets a new item");
        assert!(
            split
                .valid
                .iter()
                .all(|e| { e.history.iter().all(|i| !split.held_out.contains(i)) })
        );
    }

    #[test]
    fn short_users_train_only_and_history_is_capped() {
        let mut inter =
            String::from("user_id:token\titem_id:token\ttimestamp:float\n1\t1\t1\n1\t2\t2\n");
        for t in 0..10 {
            inter.push_str(&format!("2\t{}\t{t}\n", 1 + t % 4));
        }
        let ds = Dataset::from_recbole("t", inter.as_bytes(), "t.inter", ITEM, "t.item").unwrap();
        let split = Split::leave_one_out(&ds, 3);
        assert_eq!(split.short_users, 1);
        assert_eq!(split.test.len(), 1);
        assert_eq!(split.test[0].history.len(), 3);
        assert_eq!(split.train_prefixes().count(), 1 + 7);
        assert!(split.train_prefixes().all(|e| e.history.len() <= 3));
    }
}
